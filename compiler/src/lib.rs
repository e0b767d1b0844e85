//! The Caravan compiler: lexer, parser, type checker and Cranelift code
//! generator, as a library with one entry point per tool.

pub mod ast;
pub mod check;
pub mod codegen;
pub mod diagnostic;
pub mod driver;
pub mod error;
pub mod exhaustive;
pub mod format;
pub mod ide;
pub mod lexer;
pub mod modules;
pub mod parse;
pub mod prelude;
pub mod printf;
pub mod query;
pub mod repl;
pub mod stack;
pub mod typed;
pub mod types;

#[allow(clippy::all, unused)]
mod grammar {
    lalrpop_util::lalrpop_mod!(pub parser);
}
pub use grammar::parser;
