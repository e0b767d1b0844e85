//! The shape of the code the compiler emits, read from `CARAVAN_DUMP`
//! (the CLIF of the functions whose name contains its value, on stderr).

mod support;

use std::time::Duration;
use support::{stderr, stdout, Run};

/// The number of direct calls a dumped function makes to itself: its
/// `function u0:N(` header, the `fnK = colocated u0:N` reference to the
/// same function, and the `call fnK(` / `return_call fnK(` instructions.
fn self_calls(clif: &str) -> usize {
    let first = clif.lines().next().expect("a dumped function");
    let id = first
        .strip_prefix("function ")
        .and_then(|r| r.split('(').next())
        .expect("`function u0:N(` header");
    let decl = format!("= colocated {id} ");
    let fref = clif
        .lines()
        .find(|l| l.contains(&decl))
        .and_then(|l| l.split_whitespace().next())
        .expect("a reference to the function itself");
    let call = format!("call {fref}(");
    clif.lines().filter(|l| l.contains(&call)).count()
}

/// fib's body calls fib twice; each call is compiled as a copy of the
/// body (one level of recursive inlining), whose own two calls are calls:
/// four in all, each two levels down, so fib 40 makes half the frames and
/// reduction checks. (Without the unrolling: two.)
#[test]
fn calls_of_a_small_function_from_its_body_are_unrolled_one_level() {
    let out = Run {
        args: &["20"],
        env: &[("CARAVAN_DUMP", "fib")],
        ..Default::default()
    }
    .file("bench/cvn/fib.cvn", Duration::from_secs(60));
    assert_eq!(stdout(&out), "6765\n");
    let err = stderr(&out);
    assert_eq!(self_calls(&err), 4, "fib's CLIF:\n{err}");
}

/// Runs `source` with `CARAVAN_DUMP=dump`: its output and the dump.
fn dumped(name: &str, source: &str, dump: &str) -> (String, String) {
    let dir = std::env::temp_dir().join(format!("caravan-codegen-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join(format!("{name}.cvn"));
    std::fs::write(&file, source).expect("write program");
    let out = Run {
        env: &[("CARAVAN_DUMP", dump)],
        ..Default::default()
    }
    .file(file.to_str().expect("utf-8 path"), Duration::from_secs(60));
    let _ = std::fs::remove_dir_all(&dir);
    (stdout(&out), stderr(&out))
}

/// A local `let rec` function is unrolled as a top-level one: its copy
/// reads the same free variables (`k`).
#[test]
fn calls_of_a_local_function_from_its_body_are_unrolled_too() {
    let (out, err) = dumped(
        "local",
        "let scaled k n =\n\
         \x20 let rec sfib i = if i < 2 then i * k else sfib (i - 1) + sfib (i - 2) in\n\
         \x20 sfib n\n\
         let () = print_endline (string_of_int (scaled 3 20))\n",
        "sfib",
    );
    assert_eq!(out, "20295\n");
    assert_eq!(self_calls(&err), 4, "sfib's CLIF:\n{err}");
}

/// A body that defines a function is not copied (its code would be
/// compiled twice): its calls stay calls.
#[test]
fn a_body_with_a_function_literal_is_not_unrolled() {
    let (out, err) = dumped(
        "walk",
        "let rec walk n = if n = 0 then 0 else List.fold_left (fun a x -> a + x) 0 [n] + walk (n - 1)\n\
         let () = print_endline (string_of_int (walk 10))\n",
        "walk",
    );
    assert_eq!(out, "55\n");
    assert_eq!(self_calls(&err), 1, "walk's CLIF:\n{err}");
}

/// Runtime trampolines of one parameter count share the code of the first
/// one compiled, with the call retargeted: this program reaches about a
/// dozen (`string_of_int`, `print_string`, `(^)`, `( ** )`, the allocator,
/// ...) of two counts, so two are compiled, and each builtin is still the
/// one called, also when every allocation collects.
#[test]
fn trampolines_of_one_parameter_count_share_their_code() {
    let source = "let () =\n\
                  \x20 let a = string_of_int 42 in\n\
                  \x20 let b = string_of_float 1.5 in\n\
                  \x20 let c = int_of_string \"17\" in\n\
                  \x20 print_string (a ^ \"|\" ^ b ^ \"|\");\n\
                  \x20 print_endline (string_of_int (c + 1));\n\
                  \x20 prerr_string \"err\\n\";\n\
                  \x20 print_endline (string_of_float (2.0 ** 3.0))\n";
    let (out, err) = dumped("trampolines", source, "__trampoline");
    assert_eq!(out, "42|1.5|18\n8.\n");
    let compiled = err.lines().filter(|l| l.starts_with("function ")).count();
    assert_eq!(compiled, 2, "trampolines compiled:\n{err}");
    assert!(err.contains("err\n"), "{err}");
    let dir = std::env::temp_dir().join(format!("caravan-codegen-{}-torture", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("trampolines.cvn");
    std::fs::write(&file, source).expect("write program");
    let tortured = Run {
        env: &[("CARAVAN_GC_TORTURE", "1")],
        ..Default::default()
    }
    .file(file.to_str().expect("utf-8 path"), Duration::from_secs(60));
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        stdout(&tortured),
        "42|1.5|18\n8.\n",
        "{}",
        stderr(&tortured)
    );
}
