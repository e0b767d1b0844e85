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

/// Parses and checks `text` (shown as `path`) with the standard library
/// and the modules it uses: `Foo.bar` refers to `bar` in `foo.cvn` in the
/// same directory as `path`, loaded (and checked first) on demand. A cycle
/// of modules is an error (E0130). Returns every diagnostic on failure.
pub fn check_source(path: &str, text: &str) -> Result<Checked, (SourceMap, Vec<Diagnostic>)> {
    // Checked once per program: no cache (and no copy of one) needed.
    let (mut checker, mut sources, mut diags) = check_stdlib(false);
    let main_file = sources.add(path, text);
    let main = match parse::parse_module(main_file, text) {
        Ok(m) => m,
        Err(e) => {
            diags.push(e.diagnostic);
            return Err((sources, diags));
        }
    };
    let dir = std::path::Path::new(path)
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let mut loader = Loader {
        dir,
        sources: &mut sources,
        diags: &mut diags,
        order: vec![],
        visiting: vec![],
    };
    loader.visit(main_file, &main);
    let order = std::mem::take(&mut loader.order);
    if !diags.is_empty() {
        // A module failed to parse or modules form a cycle: checking would
        // only add noise about unknown modules.
        return Err((sources, diags));
    }
    for (name, file, module) in &order {
        checker.check_module(*file, Some(name), module);
    }
    checker.check_module(main_file, None, &main);
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

/// The standard library, parsed and checked once per process: a checker
/// holding its modules, their sources, and any diagnostics (none unless the
/// stdlib itself is broken). Each program starts from a clone.
pub fn stdlib_checked() -> (Checker, SourceMap, Vec<Diagnostic>) {
    stdlib_checked_indexed(true)
}

/// [`stdlib_checked`], with or without the semantic index (the index costs
/// time and memory that compiling a program does not need).
pub fn stdlib_checked_indexed(index: bool) -> (Checker, SourceMap, Vec<Diagnostic>) {
    use std::sync::OnceLock;
    type Cached = OnceLock<(Checker, SourceMap, Vec<Diagnostic>)>;
    static WITH: Cached = OnceLock::new();
    static WITHOUT: Cached = OnceLock::new();
    (if index { &WITH } else { &WITHOUT })
        .get_or_init(|| check_stdlib(index))
        .clone()
}

/// Parses and checks the standard library (with or without the semantic
/// index).
fn check_stdlib(index: bool) -> (Checker, SourceMap, Vec<Diagnostic>) {
    let mut sources = SourceMap::default();
    let mut checker = Checker::new();
    checker.record_index = index;
    let mut diags = vec![];
    for (name, src) in caravan_stdlib::MODULES {
        let file = sources.add(caravan_stdlib::file_name(name), *src);
        match parse::parse_module(file, src) {
            Ok(m) => checker.check_module(file, Some(name), &m),
            Err(e) => diags.push(e.diagnostic),
        }
    }
    diags.extend(checker.diagnostics());
    (checker, sources, diags)
}

/// Loads sibling modules depth-first, so each is checked after the
/// modules it uses.
struct Loader<'a> {
    dir: std::path::PathBuf,
    sources: &'a mut SourceMap,
    diags: &'a mut Vec<Diagnostic>,
    /// Modules in dependency order.
    order: Vec<(String, FileId, crate::ast::Module)>,
    /// The chain being loaded (for cycle reports).
    visiting: Vec<String>,
}

impl Loader<'_> {
    fn visit(&mut self, file: FileId, module: &crate::ast::Module) {
        for (name, span) in crate::modules::module_refs(module) {
            if caravan_stdlib::MODULES.iter().any(|(m, _)| *m == name)
                || self.order.iter().any(|(m, _, _)| *m == name)
            {
                continue;
            }
            if let Some(pos) = self.visiting.iter().position(|m| *m == name) {
                let mut chain = self.visiting[pos..].to_vec();
                chain.push(name.clone());
                self.diags.push(
                    Diagnostic::error(
                        "E0130",
                        format!(
                            "Modules depend on each other in a cycle: {}",
                            chain.join(" -> ")
                        ),
                        file,
                        span,
                        format!("`{name}` is used here"),
                    )
                    .with_hint("move what both need into a third module"),
                );
                continue;
            }
            let fname = crate::modules::file_of_module(&name);
            let fpath = self.dir.join(&fname);
            let Ok(text) = std::fs::read_to_string(&fpath) else {
                // Reported by the checker as an unknown module.
                continue;
            };
            let id = self.sources.add(fpath.display().to_string(), text.clone());
            match parse::parse_module(id, &text) {
                Ok(m) => {
                    self.visiting.push(name.clone());
                    self.visit(id, &m);
                    self.visiting.pop();
                    if !self.order.iter().any(|(x, _, _)| *x == name) {
                        self.order.push((name, id, m));
                    }
                }
                Err(e) => {
                    self.diags.push(e.diagnostic);
                    // Stop it from being looked up again.
                    self.order.push((name, id, crate::ast::Module::default()));
                }
            }
        }
    }
}

/// Every runtime symbol generated code may call: the VM's and the stdlib
/// builtins'.
pub fn runtime_symbols() -> Vec<(&'static str, *const u8)> {
    let mut s = caravan_vm::symbols();
    s.extend(caravan_stdlib::builtins::symbols());
    s.extend(caravan_stdlib::http::symbols());
    s
}

/// Checks and compiles a program to native code.
pub fn compile_source(
    path: &str,
    text: &str,
    opts: crate::codegen::Options,
) -> Result<crate::codegen::Compiled, (SourceMap, Vec<Diagnostic>)> {
    let checked = check_source(path, text)?;
    let symbols = runtime_symbols();
    let main_file = checked.main_file;
    let sources = checked.sources.clone();
    crate::codegen::compile(
        checked.program,
        checked.checker,
        checked.sources,
        &symbols,
        opts,
    )
    .map_err(|e| {
        (
            sources,
            vec![Diagnostic::error(
                "E0900",
                e.to_string(),
                main_file,
                Default::default(),
                "while compiling this program",
            )],
        )
    })
}

/// Everything the checker learnt about a program, also when it has errors
/// (for the language server): sources, the checker's state with its
/// semantic index, all diagnostics, and the parsed files.
pub struct Analysis {
    /// All sources.
    pub sources: SourceMap,
    /// The checker (types, declarations, the semantic index).
    pub checker: Checker,
    /// Every diagnostic, syntax and type errors alike.
    pub diagnostics: Vec<Diagnostic>,
    /// The main file.
    pub main_file: FileId,
    /// The user's files with their module names (`None` for the main
    /// file) and syntax trees, in checking order.
    pub files: Vec<(Option<String>, FileId, crate::ast::Module)>,
}

/// Analyses a program with error recovery: syntax errors skip to the next
/// item, and checking goes on past errors. `read` supplies the text of
/// sibling modules (from an editor's open buffers, or the disk).
pub fn analyze(
    path: &str,
    text: &str,
    read: &dyn Fn(&std::path::Path) -> Option<String>,
) -> Analysis {
    let (mut checker, mut sources, mut diagnostics) = stdlib_checked();
    let main_file = sources.add(path, text);
    let (main, d) = parse::parse_module_recovering(main_file, text);
    diagnostics.extend(d);
    let dir = std::path::Path::new(path)
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    // Depth-first over module references, as `check_source`.
    let mut order: Vec<(String, FileId, crate::ast::Module)> = vec![];
    let mut visiting: Vec<String> = vec![];
    fn visit(
        module: &crate::ast::Module,
        dir: &std::path::Path,
        read: &dyn Fn(&std::path::Path) -> Option<String>,
        sources: &mut SourceMap,
        diagnostics: &mut Vec<Diagnostic>,
        order: &mut Vec<(String, FileId, crate::ast::Module)>,
        visiting: &mut Vec<String>,
    ) {
        for (name, _) in crate::modules::module_refs(module) {
            if caravan_stdlib::MODULES.iter().any(|(m, _)| *m == name)
                || order.iter().any(|(m, _, _)| *m == name)
                || visiting.contains(&name)
            {
                continue;
            }
            let fpath = dir.join(crate::modules::file_of_module(&name));
            let Some(text) = read(&fpath) else { continue };
            let id = sources.add(fpath.display().to_string(), text.clone());
            let (m, d) = parse::parse_module_recovering(id, &text);
            diagnostics.extend(d);
            visiting.push(name.clone());
            visit(&m, dir, read, sources, diagnostics, order, visiting);
            visiting.pop();
            order.push((name, id, m));
        }
    }
    visit(
        &main,
        &dir,
        read,
        &mut sources,
        &mut diagnostics,
        &mut order,
        &mut visiting,
    );
    let mut files = vec![];
    for (name, file, module) in order {
        checker.check_module(file, Some(&name), &module);
        files.push((Some(name), file, module));
    }
    checker.check_module(main_file, None, &main);
    files.push((None, main_file, main));
    diagnostics.extend(checker.diagnostics());
    Analysis {
        sources,
        checker,
        diagnostics,
        main_file,
        files,
    }
}
