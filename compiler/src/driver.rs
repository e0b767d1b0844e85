//! Loading and checking whole programs: the main file, the standard
//! library, and (later) sibling modules.

use crate::check::Checker;
use crate::diagnostic::{Diagnostic, FileId, SourceMap};
use crate::parse;
use crate::typed::TProgram;

/// A checked program, ready for code generation.
pub struct Checked {
    /// All sources (stdlib and user files), for diagnostics and locations.
    pub sources: SourceMap,
    /// The typed program.
    pub program: TProgram,
    /// The checker's state (types, for `inspect`, the REPL and the LSP).
    pub checker: Checker,
    /// The main file's id.
    pub main_file: FileId,
}

/// Parses and checks `text` (shown as `path`) with the standard library.
/// Returns every diagnostic on failure.
pub fn check_source(path: &str, text: &str) -> Result<Checked, (SourceMap, Vec<Diagnostic>)> {
    let mut sources = SourceMap::default();
    let mut checker = Checker::new();
    let mut diags = vec![];
    for (name, src) in caravan_stdlib::MODULES {
        let file = sources.add(caravan_stdlib::file_name(name), *src);
        match parse::parse_module(file, src) {
            Ok(m) => checker.check_module(file, Some(name), &m),
            Err(e) => diags.push(e.diagnostic),
        }
    }
    diags.extend(checker.diagnostics());
    let main_file = sources.add(path, text);
    match parse::parse_module(main_file, text) {
        Ok(m) => checker.check_module(main_file, None, &m),
        Err(e) => diags.push(e.diagnostic),
    }
    diags.extend(checker.diagnostics());
    if !diags.is_empty() {
        return Err((sources, diags));
    }
    let program = std::mem::take(&mut checker.program);
    Ok(Checked {
        sources,
        program,
        checker,
        main_file,
    })
}

/// Every runtime symbol generated code may call: the VM's and the stdlib
/// builtins'.
pub fn runtime_symbols() -> Vec<(&'static str, *const u8)> {
    let mut s = caravan_vm::symbols();
    s.extend(caravan_stdlib::builtins::symbols());
    s
}

/// Checks and compiles a program to native code.
pub fn compile_source(
    path: &str,
    text: &str,
    opts: crate::codegen::Options,
) -> Result<(Checked, crate::codegen::Compiled), (SourceMap, Vec<Diagnostic>)> {
    let mut checked = check_source(path, text)?;
    let symbols = runtime_symbols();
    match crate::codegen::compile(
        &checked.program,
        &mut checked.checker,
        &checked.sources,
        &symbols,
        opts,
    ) {
        Ok(c) => Ok((checked, c)),
        Err(e) => Err((
            checked.sources.clone(),
            vec![Diagnostic::error(
                "E0900",
                e.to_string(),
                checked.main_file,
                Default::default(),
                "while compiling this program",
            )],
        )),
    }
}
