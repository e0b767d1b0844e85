//! Deep inputs get a result or an error, never a crash of `caravan`
//! itself: a 10,000-deep nested expression, a 100,000-element list
//! literal, a 10,000-term sum and 10,000 nested `let`s; 200,000-term `+`,
//! `|>` and `@` chains and 20,000-deep nestings (on the main thread's
//! stack: the compiler grows its stack where it recurses).

use std::process::Command;

fn run_source(name: &str, src: &str) -> (String, String, Option<i32>) {
    let dir = std::env::temp_dir().join(format!("caravan-deep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.cvn"));
    std::fs::write(&path, src).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_caravan"))
        .arg("run")
        .arg(&path)
        .output()
        .expect("run caravan");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

#[test]
fn ten_thousand_nested_parentheses() {
    let src = format!(
        "let x = {}1{}\nlet () = print_int x\n",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    let (out, err, code) = run_source("parens", &src);
    assert_eq!((out.as_str(), code), ("1", Some(0)), "{err}");
}

#[test]
fn hundred_thousand_element_list_literal() {
    let items: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
    let src = format!(
        "let l = [{}]\nlet () = print_int (List.length l); print_string \" \"; print_int (List.fold_left (+) 0 l)\n",
        items.join("; ")
    );
    let (out, err, code) = run_source("biglist", &src);
    assert_eq!(
        (out.as_str(), code),
        ("100000 4999950000", Some(0)),
        "{err}"
    );
}

#[test]
fn ten_thousand_term_sum_and_nested_lets() {
    let sum = vec!["1"; 10_000].join(" + ");
    let lets: String = (0..10_000).map(|i| format!("let a{i} = {i} in ")).collect();
    let src = format!("let x = {sum}\nlet y = {lets} a9999\nlet () = print_int (x + y)\n");
    let (out, err, code) = run_source("sum", &src);
    assert_eq!((out.as_str(), code), ("19999", Some(0)), "{err}");
}

#[test]
fn deep_unbalanced_input_is_a_syntax_error() {
    let src = format!("let x = {}1\n", "(".repeat(10_000));
    let (_, err, code) = run_source("unbalanced", &src);
    assert_eq!(code, Some(1));
    assert!(err.contains("E0003"), "{err}");
}

/// `run_source`, asserting the output and a zero exit status.
fn runs_to(name: &str, src: &str, expected: &str) {
    let (out, err, code) = run_source(name, src);
    assert_eq!(
        (out.as_str(), code),
        (expected, Some(0)),
        "{}",
        &err[..err.len().min(3000)]
    );
}

#[test]
fn two_hundred_thousand_term_chains() {
    let n = 200_000;
    runs_to(
        "plus_chain",
        &format!(
            "let x = {}\nlet () = print_int x\n",
            vec!["1"; n].join(" + ")
        ),
        "200000",
    );
    runs_to(
        "pipe_chain",
        &format!(
            "let f x = x + 1\nlet y = 0 {}\nlet () = print_int y\n",
            "|> f ".repeat(n)
        ),
        "200000",
    );
    runs_to(
        "append_chain",
        &format!(
            "let l = {}\nlet () = print_int (List.length l)\n",
            vec!["[1]"; n].join(" @ ")
        ),
        "200000",
    );
}

/// Compiled and run: code generation recurses too (100,000-deep nestings
/// are checked in process by `compiler/tests/deep_and_large.rs`; compiling
/// them takes minutes in a debug build, mostly in Cranelift).
#[test]
fn twenty_thousand_deep_nestings() {
    let n = 20_000;
    runs_to(
        "deep_parens",
        &format!("let () = print_int {}1{}\n", "(".repeat(n), ")".repeat(n)),
        "1",
    );
    let lets: String = (0..n).map(|_| "let a = a + 1 in ").collect();
    runs_to(
        "deep_lets",
        &format!("let a = 0\nlet () = print_int ({lets}a)\n"),
        "20000",
    );
    runs_to(
        "deep_ifs",
        &format!(
            "let () = print_int ({}1{})\n",
            "if true then (".repeat(n),
            ") else 0".repeat(n)
        ),
        "1",
    );
    let some = |inner: &str| format!("{}{inner}{}", "Some (".repeat(n), ")".repeat(n));
    runs_to(
        "deep_options",
        &format!(
            "let x = {}\nlet () = match x with {} -> print_int k | _ -> ()\n",
            some("7"),
            some("k")
        ),
        "7",
    );
    // Each lambda is applied in its parent's tail position: 2,000
    // functions, compiled when reached (code generation is still
    // quadratic in the nesting of lambdas: each copies and scans its body).
    let mut e = "a".to_string();
    for _ in 0..2_000 {
        e = format!("(fun a -> {e}) a");
    }
    runs_to(
        "deep_lambdas",
        &format!("let f = fun a -> {e}\nlet () = print_int (f 5)\n"),
        "5",
    );
}
