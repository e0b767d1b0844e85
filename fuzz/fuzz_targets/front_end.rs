//! Fuzzes the front end: lexer, parser, type checker and exhaustiveness
//! checker must never panic, hang or overflow the stack, whatever the
//! input; they return a checked program or diagnostics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let text = text.to_string();
    // As `caravan` itself does: the front end runs on a thread with a big
    // stack.
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            let _ = caravan_compiler::driver::check_source("fuzz.cvn", &text);
        })
        .unwrap()
        .join()
        .unwrap();
});
