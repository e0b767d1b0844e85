//! Fuzzes the front end: lexer, parser, type checker and exhaustiveness
//! checker must never panic, hang or overflow the stack, whatever the
//! input; they return a checked program or diagnostics, which must render.
#![no_main]

use caravan_compiler::{diagnostic::render_all, driver, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `driver::check_source` without its sibling-module loader (inputs name
    // no files) and starting from the standard library checked once per
    // process, not once per input: ~20 times the executions per second.
    // As `caravan check`, on the calling thread (the compiler grows its
    // stack where it recurses), and every diagnostic rendered.
    let (mut checker, mut sources, mut diags) = driver::stdlib_checked_indexed(false);
    let file = sources.add("fuzz.cvn", text);
    match parse::parse_module(file, text) {
        Ok(m) => {
            checker.check_module(file, None, &m);
            diags.extend(checker.diagnostics());
        }
        Err(e) => diags.push(e.diagnostic),
    }
    if !diags.is_empty() {
        let _ = render_all(&diags, &sources, false);
    }
});
