//! The Caravan compiler: lexer, parser, type checker and Cranelift code
//! generator, as a library with one entry point per tool.

pub mod ast;
pub mod diagnostic;
pub mod lexer;
pub mod parse;

#[allow(clippy::all, unused)]
mod grammar {
    lalrpop_util::lalrpop_mod!(pub parser);
}
pub use grammar::parser;
