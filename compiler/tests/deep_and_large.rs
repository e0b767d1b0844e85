//! The front end on deep and large input, in process.
//!
//! Deep: 200,000-term `+`, `|>` and `@` chains and 100,000-deep nestings
//! are checked on a thread with a 2 MiB stack (what test threads and the
//! language server's workers have), so they pass only if the checker,
//! the exhaustiveness checker and the destructors grow the stack or use
//! work lists where they recurse.
//!
//! Large: matches of 50,000 arms, a type of 20,000 constructors matched
//! arm by arm, a `let rec … and` group of 20,000 functions. Each must be
//! linear (or n log n); a quadratic path takes minutes here. The 60 s
//! bound only detects such a hang: timings are in `bench/scaling`.

use caravan_compiler::diagnostic::render_all;
use caravan_compiler::driver::check_source;
use std::sync::mpsc;
use std::time::Duration;

/// Checks `src` on a 2 MiB thread; `Ok` or the rendered diagnostics.
/// Fails the test if it takes more than 60 s.
fn check(name: &str, src: String) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let name = name.to_string();
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let r = match check_source(&format!("{name}.cvn"), &src) {
                Ok(_) => Ok(()),
                Err((sources, diags)) => Err(render_all(&diags, &sources, false)),
            };
            let _ = tx.send(r);
        })
        .expect("spawn");
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("checking took more than 60 s"),
        Err(e) => panic!("the checker thread died: {e}"),
    }
}

fn ok(name: &str, src: String) {
    if let Err(d) = check(name, src) {
        panic!("{}", &d[..d.len().min(4000)]);
    }
}

const DEEP: usize = 100_000;
const LONG: usize = 200_000;

#[test]
fn long_operator_chains() {
    ok("plus", format!("let x = {}\n", vec!["1"; LONG].join(" + ")));
    ok(
        "pipe",
        format!("let f x = x + 1\nlet y = 0 {}\n", "|> f ".repeat(LONG)),
    );
    ok(
        "append",
        format!("let l = {}\n", vec!["[1]"; LONG].join(" @ ")),
    );
    ok("cons", format!("let l = {} []\n", "1 :: ".repeat(LONG)));
}

#[test]
fn deep_nestings() {
    ok(
        "parens",
        format!("let x = {}1{}\n", "(".repeat(DEEP), ")".repeat(DEEP)),
    );
    ok(
        "lambdas",
        format!("let f = {}0\n", "fun a -> ".repeat(DEEP)),
    );
    ok(
        "lets",
        format!(
            "let x = {}a{}\n",
            (0..DEEP)
                .map(|i| format!("let a = {i} + 1 in "))
                .collect::<String>(),
            ""
        ),
    );
    ok(
        "options",
        format!(
            "let x = {}None{}\n",
            "Some (".repeat(DEEP),
            ")".repeat(DEEP)
        ),
    );
    ok(
        "lists",
        format!("let x = {}1{}\n", "[".repeat(DEEP), "]".repeat(DEEP)),
    );
    ok(
        "ifs",
        format!("let x = {}0\n", "if true then 1 else ".repeat(DEEP)),
    );
    ok(
        "matches",
        format!("let x = {}0\n", "match 1 with 0 -> 1 | _ -> ".repeat(DEEP)),
    );
    ok(
        "type",
        format!("let f (x : int{}) = x\n", " list".repeat(DEEP)),
    );
}

#[test]
fn deep_patterns() {
    let pat = format!("{}x{}", "Some (".repeat(DEEP), ")".repeat(DEEP));
    ok(
        "deep_pattern",
        format!("let f v = match v with {pat} -> x | _ -> 0\n"),
    );
    // The same pattern against a value whose deep type is already known
    // (the pattern is checked against the parts of that type, top-down).
    let value = format!("{}None{}", "Some (".repeat(DEEP), ")".repeat(DEEP));
    ok(
        "deep_pattern_known_type",
        format!("let v = {value}\nlet n = match v with {pat} -> 1 | _ -> 0\n"),
    );
    let tuple_pat = format!("{}x{}", "(".repeat(DEEP), ", _)".repeat(DEEP));
    let tuple_value = format!("{}0{}", "(".repeat(DEEP), ", 1)".repeat(DEEP));
    ok(
        "deep_tuple_pattern_known_type",
        format!("let v = {tuple_value}\nlet n = match v with {tuple_pat} -> x\n"),
    );
    let list_pat = format!("{}x{}", "[".repeat(DEEP), "]".repeat(DEEP));
    let list_value = format!("{}0{}", "[".repeat(DEEP), "]".repeat(DEEP));
    ok(
        "deep_list_pattern_known_type",
        format!("let v = {list_value}\nlet n = match v with {list_pat} -> x | _ -> 0\n"),
    );
    // Not exhaustive: the missing value is as deep as the pattern.
    let err = check(
        "deep_pattern_missing",
        format!("let f v = match v with {pat} -> x\n"),
    )
    .expect_err("not exhaustive");
    assert!(err.contains("E0"), "{}", &err[..err.len().min(2000)]);
}

#[test]
fn errors_in_deep_input_are_reported() {
    let err = check(
        "deep_error",
        format!("let x = {} \"a\"\n", "1 + ".repeat(LONG)),
    )
    .expect_err("type error");
    assert!(err.contains("E0100"), "{}", &err[..err.len().min(2000)]);
}

const ARMS: usize = 50_000;

#[test]
fn many_literal_arms() {
    let arms: String = (0..ARMS).map(|i| format!("  | {i} -> {i}\n")).collect();
    ok(
        "ints",
        format!("let f x = match x with\n{arms}  | _ -> 0\n"),
    );
    let arms: String = (0..ARMS)
        .map(|i| format!("  | \"s{i}\" -> {i}\n"))
        .collect();
    ok(
        "strings",
        format!("let f x = match x with\n{arms}  | _ -> 0\n"),
    );
    // Without the wildcard: not exhaustive, and the missing value is one
    // no arm names.
    let arms: String = (0..ARMS).map(|i| format!("  | {i} -> {i}\n")).collect();
    let err = check("ints_missing", format!("let f x = match x with\n{arms}")).unwrap_err();
    assert!(
        err.contains(&format!("`{ARMS}`")),
        "{}",
        &err[..err.len().min(2000)]
    );
}

const CTORS: usize = 20_000;

#[test]
fn many_constructors_matched_arm_by_arm() {
    let ctors: String = (0..CTORS).map(|i| format!(" | C{i} of int")).collect();
    let arms: String = (0..CTORS)
        .map(|i| format!("  | C{i} n -> n + {i}\n"))
        .collect();
    let uses: String = (0..CTORS)
        .map(|i| format!("let v{i} = f (C{i} {i})\n"))
        .collect();
    ok(
        "ctors",
        format!("type t ={ctors}\nlet f x = match x with\n{arms}{uses}"),
    );
    // One arm fewer: the missing constructor is named; one arm twice: it
    // is unused.
    let arms: String = (1..CTORS).map(|i| format!("  | C{i} n -> n\n")).collect();
    let err = check(
        "ctors_missing",
        format!("type t ={ctors}\nlet f x = match x with\n{arms}  | C5 _ -> 0\n"),
    )
    .unwrap_err();
    assert!(err.contains("C0"), "{}", &err[..err.len().min(2000)]);
    assert!(
        err.contains("E0121") || err.contains("unused"),
        "{}",
        &err[..err.len().min(2000)]
    );
}

#[test]
fn large_let_rec_group() {
    let fns: Vec<String> = (0..CTORS)
        .map(|i| {
            format!(
                "f{i} n = if n = 0 then {i} else f{} (n - 1)",
                (i + 1) % CTORS
            )
        })
        .collect();
    ok(
        "letrec",
        format!("let rec {}\nlet x = f0 3\n", fns.join("\nand ")),
    );
    ok(
        "letrec_local",
        format!("let x =\n  let rec {}\n  in f0 3\n", fns.join("\n  and ")),
    );
}
