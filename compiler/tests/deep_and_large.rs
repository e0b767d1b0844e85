//! The front end on deep input, in process.
//!
//! 200,000-term `+`, `|>`, `@` and `::` chains and 100,000-deep nestings
//! are checked on a thread with a 2 MiB stack (what test threads and the
//! language server's workers have), so they pass only if the checker and
//! the destructors grow the stack or use work lists where they recurse.
//! The 60 s bound only detects a hang: timings are in `bench/scaling`.

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
    ok(
        "plus",
        format!("let x = {}\n", vec!["1"; LONG].join(" + ")),
    );
    ok(
        "pipe",
        format!(
            "let f x = x + 1\nlet y = 0 {}\n",
            "|> f ".repeat(LONG)
        ),
    );
    ok(
        "append",
        format!("let l = {}\n", vec!["[1]"; LONG].join(" @ ")),
    );
    ok(
        "cons",
        format!("let l = {} []\n", "1 :: ".repeat(LONG)),
    );
}

#[test]
fn deep_nestings() {
    ok(
        "parens",
        format!("let x = {}1{}\n", "(".repeat(DEEP), ")".repeat(DEEP)),
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
fn errors_in_deep_input_are_reported() {
    let err = check(
        "deep_error",
        format!("let x = {} \"a\"\n", "1 + ".repeat(LONG)),
    )
    .expect_err("type error");
    assert!(err.contains("E0100"), "{}", &err[..err.len().min(2000)]);
}

