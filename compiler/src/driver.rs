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
    check_source_with_prelude(path, text, None)
}

/// [`check_source`], starting from `prelude` (the prelude already checked,
/// [`crate::prelude`]) instead of parsing and checking it, when given. The
/// result is the same either way.
pub fn check_source_with_prelude(
    path: &str,
    text: &str,
    prelude: Option<crate::prelude::Prelude>,
) -> Result<Checked, (SourceMap, Vec<Diagnostic>)> {
    // The fast path checks only the standard modules the program uses.
    // A program with errors is checked again against all of them, so its
    // diagnostics (names suggested from modules it does not use, say) are
    // exactly those of the whole standard library.
    check_source_with(path, text, StdlibPart::Used, prelude)
        .or_else(|_| check_source_with(path, text, StdlibPart::All, None))
}

/// Which standard modules a program is checked with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StdlibPart {
    /// All of them, in [`caravan_stdlib::MODULES`]' order.
    All,
    /// The prelude, the modules the program's files name (`List.map`,
    /// `open Printf`, `Tcp.t`) and, transitively, the standard modules
    /// those name: as OCaml links only the units a program refers to.
    Used,
}

fn check_source_with(
    path: &str,
    text: &str,
    part: StdlibPart,
    prelude: Option<crate::prelude::Prelude>,
) -> Result<Checked, (SourceMap, Vec<Diagnostic>)> {
    let mut sources = SourceMap::default();
    // Every standard module has its file id (the same ids whichever
    // modules are checked), before the program's files.
    let stdlib_files = add_stdlib_files(&mut sources);
    let mut diags = vec![];
    let main_file = sources.add(path, text.to_owned());
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
        dirs: vec![dir],
        without_effects: vec![],
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
    debug_assert_eq!(stdlib_files[0], crate::prelude::PRELUDE_FILE);
    let prelude_checked = prelude.is_some();
    let mut checker = match prelude {
        Some(p) => p.into_checker(),
        None => Checker::new(),
    };
    checker.record_index = false;
    let used = (part == StdlibPart::Used).then(|| {
        std::iter::once(&main)
            .chain(order.iter().map(|(_, _, m)| m))
            .flat_map(crate::modules::module_refs)
            .map(|(name, _)| name)
            .collect::<Vec<_>>()
    });
    check_stdlib_into(
        &mut checker,
        &stdlib_files,
        used,
        prelude_checked,
        &mut diags,
    );
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

/// Adds every standard module's source to `sources`; their ids, in
/// [`caravan_stdlib::MODULES`]' order.
fn add_stdlib_files(sources: &mut SourceMap) -> Vec<FileId> {
    caravan_stdlib::MODULES
        .iter()
        .map(|(name, src)| sources.add(caravan_stdlib::file_name(name), *src))
        .collect()
}

/// Parses and checks standard modules into `checker`, in
/// [`caravan_stdlib::MODULES`]' order (each module after those it uses):
/// all of them when `used` is `None`, else the prelude, the modules
/// `used` names and the standard modules they name in turn. `files` are
/// the modules' file ids, in the same order. With `prelude_checked`, the
/// checker already holds the prelude ([`crate::prelude::Prelude`], which
/// names no other module): it is neither parsed nor checked again.
///
/// One backward sweep finds the closure: a standard module only names
/// modules before it (its own name aside), so by the time the sweep
/// reaches a module, every module that names it has been parsed.
fn check_stdlib_into(
    checker: &mut Checker,
    files: &[FileId],
    used: Option<Vec<String>>,
    prelude_checked: bool,
    diags: &mut Vec<Diagnostic>,
) {
    let modules = caravan_stdlib::MODULES;
    let mut needed = vec![used.is_none(); modules.len()];
    needed[0] = true; // the prelude
    let mark = |needed: &mut Vec<bool>, name: &str| {
        if let Some(i) = modules.iter().position(|(m, _)| *m == name) {
            needed[i] = true;
        }
        // `Format.printf "…"` is expanded into calls of `Printf`'s
        // conversions (crate::printf), which format.cvn does not name.
        if name == "Format" {
            if let Some(i) = modules.iter().position(|(m, _)| *m == "Printf") {
                needed[i] = true;
            }
        }
    };
    for name in used.iter().flatten() {
        mark(&mut needed, name);
    }
    let mut parsed: Vec<Option<crate::ast::Module>> = vec![None; modules.len()];
    for i in (0..modules.len()).rev() {
        if !needed[i] || (i == 0 && prelude_checked) {
            continue;
        }
        match parse::parse_module(files[i], modules[i].1) {
            Ok(m) => {
                if used.is_some() {
                    for (name, _) in crate::modules::module_refs(&m) {
                        mark(&mut needed, &name);
                    }
                }
                parsed[i] = Some(m);
            }
            Err(e) => diags.push(e.diagnostic),
        }
    }
    for (i, m) in parsed.iter().enumerate() {
        if let Some(m) = m {
            checker.check_module(files[i], Some(modules[i].0), m);
        }
    }
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

/// A checker (without the semantic index) that checked the prelude and the
/// standard modules it names (none today), as every program starts;
/// `None` if they have errors. What [`crate::prelude::Prelude`] saves.
pub(crate) fn checked_prelude_only() -> Option<Checker> {
    let mut sources = SourceMap::default();
    let files = add_stdlib_files(&mut sources);
    debug_assert_eq!(files[0], crate::prelude::PRELUDE_FILE);
    let mut checker = Checker::new();
    checker.record_index = false;
    let mut diags = vec![];
    check_stdlib_into(&mut checker, &files, Some(vec![]), false, &mut diags);
    (diags.is_empty() && checker.diagnostics().is_empty()).then_some(checker)
}

/// Parses and checks the standard library (with or without the semantic
/// index).
fn check_stdlib(index: bool) -> (Checker, SourceMap, Vec<Diagnostic>) {
    let mut sources = SourceMap::default();
    let mut checker = Checker::new();
    checker.record_index = index;
    let files = add_stdlib_files(&mut sources);
    let mut diags = vec![];
    check_stdlib_into(&mut checker, &files, None, false, &mut diags);
    diags.extend(checker.diagnostics());
    (checker, sources, diags)
}

/// Loads sibling modules depth-first, so each is checked after the
/// modules it uses.
struct Loader<'a> {
    /// Where modules are looked for, in order.
    dirs: Vec<std::path::PathBuf>,
    /// Modules loaded without their top-level effects (a test's subject).
    without_effects: Vec<String>,
    sources: &'a mut SourceMap,
    diags: &'a mut Vec<Diagnostic>,
    /// Modules in dependency order.
    order: Vec<(String, FileId, crate::ast::Module)>,
    /// The chain being loaded (for cycle reports).
    visiting: Vec<String>,
}

impl Loader<'_> {
    /// The file holding module `name` and its text, in the first directory
    /// that has one of its file names.
    fn find(&self, name: &str) -> Option<(std::path::PathBuf, String)> {
        let names = crate::modules::files_of_module(name);
        self.dirs.iter().find_map(|d| {
            names.iter().find_map(|f| {
                let p = d.join(f);
                std::fs::read_to_string(&p).ok().map(|t| (p, t))
            })
        })
    }

    fn visit(&mut self, file: FileId, module: &crate::ast::Module) {
        for (name, span) in crate::modules::module_refs(module) {
            // A standard module's name is the standard module, unless a
            // file of the program has that name (it shadows the standard
            // one, as a `list.ml` does in OCaml) — and, inside that file,
            // the standard module still.
            let standard = caravan_stdlib::MODULES.iter().any(|(m, _)| *m == name);
            if (standard && (self.visiting.contains(&name) || self.find(&name).is_none()))
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
            self.load(&name);
        }
    }

    /// Loads module `name` and the modules it uses, unless it is loaded
    /// already; nothing when no file holds it (the checker reports an
    /// unknown module).
    fn load(&mut self, name: &str) {
        if self.order.iter().any(|(m, _, _)| m == name) {
            return;
        }
        {
            let name = name.to_string();
            let Some((fpath, text)) = self.find(&name) else {
                return;
            };
            let id = self.sources.add(fpath.display().to_string(), text.clone());
            match parse::parse_module(id, &text) {
                Ok(mut m) => {
                    if self.without_effects.contains(&name) {
                        m.items.retain(|i| !is_effect(i));
                    }
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

/// Whether a top-level item only has effects (`let () = e`, `let _ = e`,
/// a bare expression): the main code of a program, which a test of its
/// definitions does not run.
fn is_effect(item: &crate::ast::Item) -> bool {
    use crate::ast::{Item, Lit, Pat};
    match item {
        Item::Expr(_) => true,
        Item::Let(_, bs, _) => bs
            .iter()
            .all(|b| matches!(b.pat, Pat::Wild(_) | Pat::Lit(Lit::Unit, _))),
        _ => false,
    }
}

/// A test found by `caravan test`: a top-level function named `*_test`
/// of type `unit -> unit` in a file named `*_test.cvn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    /// The file, as the runner was given it.
    pub file: String,
    /// The function's name.
    pub name: String,
}

/// What the test harness is told besides the tests.
#[derive(Debug, Clone, Copy)]
pub struct HarnessOptions {
    /// A test running longer is stopped and fails (milliseconds).
    pub timeout_ms: u64,
    /// Tests running at once, at most.
    pub jobs: usize,
}

/// A test program: the test files checked as modules (each with the
/// module it tests opened), the tests found in them, and a main file that
/// runs them through the harness (`Test_harness.run`).
pub struct TestProgram {
    /// The checked program; `None` when no test was found (or all were
    /// filtered out).
    pub checked: Option<Checked>,
    /// The tests, in the order of the files and, within a file, of their
    /// definitions.
    pub tests: Vec<TestCase>,
}

/// The module name of a test file: `counter_test.cvn` is `Counter_test`.
fn module_of_file(path: &std::path::Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    let mut c = stem.chars();
    let first = c.next()?;
    let ok = first.is_ascii_alphabetic()
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '\'');
    ok.then(|| format!("{}{}", first.to_ascii_uppercase(), c.as_str()))
}

/// Checks test files for `caravan test`: each file `x_test.cvn` is a
/// module (`X_test`) that sees the project's modules: `Foo.bar` is `bar`
/// in `foo.cvn` beside the test file or, for a test file in a directory
/// named `test` or `tests`, in the directory above (the project's root);
/// and the module it tests, `x.cvn` found the same way, is opened in it,
/// so its definitions are used unqualified (LANGUAGE.md §8's example).
/// That module is loaded without its top-level effects (`let () = …`), so
/// a program's main file can be tested without running it. Tests whose
/// name does not contain `filter` are left out. Diagnostics as for
/// [`check_source`]; a `*_test` definition that is not a `unit -> unit`
/// function is an error (E0140), not a test silently skipped.
pub fn check_tests(
    files: &[std::path::PathBuf],
    filter: Option<&str>,
    opts: HarnessOptions,
) -> Result<TestProgram, (SourceMap, Vec<Diagnostic>)> {
    let (mut checker, mut sources, mut diags) = check_stdlib(false);
    let (hname, hsrc) = caravan_stdlib::TEST_HARNESS;
    let hfile = sources.add(caravan_stdlib::file_name(hname), hsrc);
    match parse::parse_module(hfile, hsrc) {
        Ok(m) => checker.check_module(hfile, Some(hname), &m),
        Err(e) => diags.push(e.diagnostic),
    }
    // Each test file: its module name, file id, syntax tree and the
    // module it tests (if there is one).
    struct TestFile {
        path: String,
        module: String,
        file: FileId,
        ast: crate::ast::Module,
        subject: Option<String>,
    }
    let mut test_files: Vec<TestFile> = vec![];
    let mut order: Vec<(String, FileId, crate::ast::Module)> = vec![];
    for path in files {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                let f = sources.add(shown.clone(), "");
                diags.push(Diagnostic::error(
                    "E0141",
                    format!("cannot read {shown}: {e}"),
                    f,
                    Default::default(),
                    "here",
                ));
                continue;
            }
        };
        let file = sources.add(shown.clone(), text.clone());
        let Some(module) = module_of_file(path) else {
            diags.push(Diagnostic::error(
                "E0141",
                format!("`{shown}` is not a module name: a test file is named like `counter_test.cvn` (letters, digits and `_`)"),
                file,
                Default::default(),
                "this file",
            ));
            continue;
        };
        if let Some(other) = test_files.iter().find(|t| t.module == module) {
            diags.push(Diagnostic::error(
                "E0141",
                format!(
                    "two test files are module `{module}`: {} and {shown}; run them apart or rename one",
                    other.path
                ),
                file,
                Default::default(),
                "this file",
            ));
            continue;
        }
        let ast = match parse::parse_module(file, &text) {
            Ok(m) => m,
            Err(e) => {
                diags.push(e.diagnostic);
                continue;
            }
        };
        let dir = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
        let mut dirs = vec![dir.clone()];
        if dir.file_name().is_some_and(|n| n == "test" || n == "tests") {
            dirs.push(dir.parent().map(|p| p.to_path_buf()).unwrap_or_default());
        }
        let subject = module
            .strip_suffix("_test")
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .filter(|s| {
                crate::modules::files_of_module(s)
                    .iter()
                    .any(|f| dirs.iter().any(|d| d.join(f).is_file()))
            });
        let mut loader = Loader {
            dirs,
            without_effects: subject.iter().cloned().collect(),
            sources: &mut sources,
            diags: &mut diags,
            order: std::mem::take(&mut order),
            visiting: vec![module.clone()],
        };
        if let Some(s) = &subject {
            loader.load(s);
        }
        loader.visit(file, &ast);
        order = std::mem::take(&mut loader.order);
        test_files.push(TestFile {
            path: shown,
            module,
            file,
            ast,
            subject,
        });
    }
    if !diags.is_empty() {
        return Err((sources, diags));
    }
    for (name, file, module) in &order {
        checker.check_module(*file, Some(name), module);
    }
    let mut tests = vec![];
    let mut calls = vec![];
    for t in &test_files {
        let open: Vec<&str> = t.subject.iter().map(String::as_str).collect();
        let globals_before = checker.program.globals.len();
        checker.check_module_opening(t.file, Some(&t.module), &t.ast, &open);
        let prefix = format!("{}.", t.module);
        let found: Vec<(String, crate::types::Ty)> = checker.program.globals[globals_before..]
            .iter()
            .filter_map(|g| {
                let n = g.name.strip_prefix(&prefix)?;
                n.ends_with("_test").then(|| (n.to_string(), g.ty))
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        for (name, ty) in found {
            if !seen.insert(name.clone()) {
                continue;
            }
            let shown = checker.show(ty);
            if !is_test_type(&shown) {
                let span = checker
                    .modules
                    .get(&t.module)
                    .and_then(|m| m.values.get(&name))
                    .and_then(|v| v.def)
                    .map_or(Default::default(), |(_, s)| s);
                diags.push(
                    Diagnostic::error(
                        "E0140",
                        format!("`{name}` is named like a test but has type `{shown}`"),
                        t.file,
                        span,
                        "a test is a function of type `unit -> unit`",
                    )
                    .with_hint("rename it (no `_test` at the end), or make it `let name () = ...`"),
                );
                continue;
            }
            if filter.is_some_and(|f| !name.contains(f)) {
                continue;
            }
            calls.push(format!(
                "({}, {}, {}.{name})",
                string_literal(&t.path),
                string_literal(&name),
                t.module
            ));
            tests.push(TestCase {
                file: t.path.clone(),
                name,
            });
        }
    }
    diags.extend(checker.diagnostics());
    if !diags.is_empty() {
        return Err((sources, diags));
    }
    if tests.is_empty() {
        return Ok(TestProgram {
            checked: None,
            tests,
        });
    }
    let main_text = format!(
        "let () =\n  Test_harness.run {} {} [\n    {}\n  ]\n",
        opts.timeout_ms.min(1 << 61),
        opts.jobs,
        calls.join(";\n    ")
    );
    let main_file = sources.add("<caravan test>", main_text.clone());
    match parse::parse_module(main_file, &main_text) {
        Ok(m) => checker.check_module(main_file, None, &m),
        Err(e) => diags.push(e.diagnostic),
    }
    diags.extend(checker.diagnostics());
    if !diags.is_empty() {
        return Err((sources, diags));
    }
    let program = std::mem::take(&mut checker.program);
    Ok(TestProgram {
        checked: Some(Checked {
            sources,
            program,
            checker,
            main_file,
        }),
        tests,
    })
}

/// Whether a printed type is one a test may have: `unit -> unit`, or a
/// more general one that `unit -> unit` is an instance of (`unit -> 'a`,
/// `'a -> unit`, `'a -> 'b`).
fn is_test_type(shown: &str) -> bool {
    let part = |p: &str| p == "unit" || (p.starts_with('\'') && !p.contains(' '));
    match shown.split_once(" -> ") {
        Some((a, b)) => part(a) && part(b),
        None => false,
    }
}

/// `s` as a Caravan string literal.
fn string_literal(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Compiles a checked program to native code.
pub fn compile_checked(
    checked: Checked,
    opts: crate::codegen::Options,
) -> Result<crate::codegen::Compiled, (SourceMap, Vec<Diagnostic>)> {
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

/// Every runtime symbol generated code may call: the VM's and the stdlib
/// builtins'.
pub fn runtime_symbols() -> Vec<(&'static str, *const u8)> {
    let mut s = caravan_vm::symbols();
    s.extend(caravan_stdlib::builtins::symbols());
    s.extend(caravan_stdlib::testing::symbols());
    s.extend(caravan_stdlib::http::symbols());
    s
}

/// Checks and compiles a program to native code.
pub fn compile_source(
    path: &str,
    text: &str,
    opts: crate::codegen::Options,
) -> Result<crate::codegen::Compiled, (SourceMap, Vec<Diagnostic>)> {
    compile_checked(check_source(path, text)?, opts)
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
    let main_file = sources.add(path, text.to_owned());
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
            if order.iter().any(|(m, _, _)| *m == name) || visiting.contains(&name) {
                continue;
            }
            // As `Loader::visit`: a file named as a standard module shadows
            // it.
            let Some((fpath, text)) =
                crate::modules::files_of_module(&name)
                    .into_iter()
                    .find_map(|f| {
                        let p = dir.join(f);
                        read(&p).map(|t| (p, t))
                    })
            else {
                continue;
            };
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
