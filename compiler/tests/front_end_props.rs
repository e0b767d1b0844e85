//! Property: the front end (lexer, parser, checker, exhaustiveness) never
//! panics on any input — it returns a checked program or diagnostics. The
//! same property as the cargo-fuzz target `fuzz/fuzz_targets/front_end.rs`,
//! run in CI with proptest.

use proptest::prelude::*;

const VOCAB: &[&str] = &[
    "let",
    "rec",
    "and",
    "in",
    "fun",
    "function",
    "match",
    "with",
    "when",
    "if",
    "then",
    "else",
    "type",
    "of",
    "begin",
    "end",
    "true",
    "false",
    "receive",
    "after",
    "as",
    "assert",
    "mod",
    "_",
    "+",
    "-",
    "*",
    "/",
    "+.",
    "=",
    "<>",
    "<",
    ">=",
    "&&",
    "||",
    "^",
    "::",
    "@",
    "@@",
    "|>",
    "->",
    "|",
    ";",
    ";;",
    ",",
    ".",
    ":",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "x",
    "y",
    "f",
    "g",
    "l",
    "Some",
    "None",
    "Leaf",
    "Node",
    "Ok",
    "List.map",
    "List.length",
    "String.sub",
    "print_int",
    "spawn",
    "send",
    "self",
    "'a",
    "int",
    "list",
    "option",
    "pid",
    "0",
    "1",
    "42",
    "-3",
    "1.5",
    "\"s\"",
    "'c'",
    "()",
    "x.y",
    "{ x = 1 }",
    "type t = A | B of int",
    "type r = { x : int }",
    "inspect",
    "failwith",
    "Map.empty",
    "Foo.bar",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(VOCAB), 0..60).prop_map(|v| v.join(" "))
}

/// Small programs that are mostly well formed, to reach the checker.
fn programs() -> impl Strategy<Value = String> {
    let expr = prop::collection::vec(prop::sample::select(VOCAB), 1..20).prop_map(|v| v.join(" "));
    (prop::sample::select(&["f", "g", "h"][..]), expr.clone(), expr).prop_map(|(n, a, b)| {
        format!("type t = A | B of int * t\nlet rec {n} x = match x with A -> {a} | B (n, r) -> {b}\nlet () = ignore ({n} A)\n")
    })
}

fn check(src: &str) {
    let _ = caravan_compiler::driver::check_source("prop.cvn", src);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        check(&s);
    }

    #[test]
    fn token_soup_never_panics(s in token_soup()) {
        check(&s);
    }

    #[test]
    fn near_programs_never_panic(s in programs()) {
        check(&s);
    }
}
