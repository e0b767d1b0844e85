//! The compiler side of the interactive toplevel: each phrase is parsed,
//! checked against the definitions so far, and compiled into the same JIT
//! module as a function that runs the phrase and returns the text to show
//! (`val f : int -> int = <fun>`, `- : int = 3`), values printed by the
//! same `inspect` printer as programs.

use crate::ast::{self, Item, Pat};
use crate::check::Checker;
use crate::codegen::{CodegenError, Options, Session};
use crate::diagnostic::{Diagnostic, SourceMap};
use crate::parse;
use crate::typed::{GlobalId, Loc, Prim, TExpr};
use crate::types::printer::Printer;

/// The name an expression phrase's value is bound to: not an identifier, so
/// no program can refer to it or shadow anything with it.
const EXPR_NAME: &str = "- ";

/// Why a phrase was not compiled.
#[derive(Debug)]
pub enum PhraseError {
    /// The input stopped before the phrase was complete: read more lines.
    Incomplete,
    /// Syntax or type errors (render them with `sources`).
    Diagnostics(SourceMap, Vec<Diagnostic>),
    /// Code generation failed.
    Codegen(CodegenError),
}

/// What a text is to the phrase parser ([`Repl::classify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completeness {
    /// A whole phrase.
    Complete,
    /// Cut short: more input could complete it.
    Incomplete,
    /// A syntax error that more input cannot fix.
    Error,
}

/// A compiled phrase.
pub struct Phrase {
    /// Static closure to run in a process: it evaluates the phrase and
    /// hands the lines to print to the sink (or returns them).
    pub closure: u64,
    /// Lines known without running it (`type t = ...`).
    pub static_lines: Vec<String>,
}

/// A REPL session: the checker and the code generator, kept across
/// phrases.
pub struct Repl {
    session: Session,
    /// A copy of the checker from before the last phrase: restored with
    /// [`Repl::undo`] when the phrase crashed at run time (its definitions
    /// never got values).
    before: Option<Checker>,
    phrases: usize,
    /// The static closure that initialises the standard library.
    pub init: u64,
    /// The symbol of an `external : string -> unit` (declared by the
    /// driver) that receives each phrase's text; without one the phrase
    /// returns it.
    sink: Option<String>,
}

impl Repl {
    /// A session with the standard library checked and compiled (run
    /// [`Repl::init`] first). `extra` symbols are added to the runtime's
    /// (the REPL's own builtins).
    ///
    /// `driver` is Caravan source checked and compiled with the standard
    /// library, before any phrase (the REPL's own externals).
    pub fn new(
        driver: &str,
        extra: &[(&'static str, *const u8)],
        sink: Option<&str>,
        opts: Options,
    ) -> Result<Repl, PhraseError> {
        let (mut checker, mut sources, mut diags) = crate::driver::stdlib_checked_indexed(false);
        let file = sources.add("<repl>", driver.to_owned());
        match parse::parse_module(file, driver) {
            Ok(m) => checker.check_items(file, &m.items),
            Err(e) => diags.push(e.diagnostic),
        }
        diags.extend(checker.diagnostics());
        if !diags.is_empty() {
            return Err(PhraseError::Diagnostics(sources, diags));
        }
        let program = std::mem::take(&mut checker.program);
        let mut symbols = crate::driver::runtime_symbols();
        symbols.extend_from_slice(extra);
        let mut session = Session::new(program, checker, sources, &symbols, opts)
            .map_err(PhraseError::Codegen)?;
        let init = session.compile_new_items().map_err(PhraseError::Codegen)?;
        Ok(Repl {
            session,
            before: None,
            phrases: 0,
            init,
            sink: sink.map(str::to_string),
        })
    }

    /// The System V entry trampoline for the VM.
    pub fn entry(&self) -> caravan_vm::EntryFn {
        self.session.entry()
    }

    /// Compiles one phrase (definitions, or an expression) of `text`, or
    /// several items as `:load` does.
    pub fn compile(&mut self, text: &str, name: &str) -> Result<Phrase, PhraseError> {
        self.phrases += 1;
        let (program, checker, sources) = self.session.parts();
        let file = sources.add(name, text.to_owned());
        let items = match parse::parse_phrase(file, text) {
            Ok(items) => items,
            Err(e) if e.incomplete => return Err(PhraseError::Incomplete),
            Err(e) => {
                return Err(PhraseError::Diagnostics(
                    sources.clone(),
                    vec![e.diagnostic],
                ))
            }
        };
        // An expression phrase is bound to a name nobody can write.
        let items: Vec<Item> = items
            .into_iter()
            .map(|item| match item {
                Item::Expr(e) => {
                    let span = e.span();
                    Item::Let(
                        false,
                        vec![ast::Binding {
                            pat: Pat::Var(EXPR_NAME.into(), span),
                            expr: e,
                            span,
                        }],
                        span,
                    )
                }
                other => other,
            })
            .collect();
        let saved = checker.clone();
        checker.program = std::mem::take(program);
        let globals_before = checker.program.globals.len();
        let (items_before, externs_before) =
            (checker.program.items.len(), checker.program.externs.len());
        checker.check_items(file, &items);
        let diags = checker.diagnostics();
        if !diags.is_empty() {
            // Back to the state before the phrase: the program loses what
            // the phrase added, the checker its bindings.
            let mut prog = std::mem::take(&mut checker.program);
            prog.items.truncate(items_before);
            prog.globals.truncate(globals_before);
            prog.externs.truncate(externs_before);
            *checker = saved;
            *program = prog;
            return Err(PhraseError::Diagnostics(sources.clone(), diags));
        }
        *program = std::mem::take(&mut checker.program);
        // What to print: every global the phrase defined, in order, and
        // type definitions.
        let mut static_lines = vec![];
        for item in &items {
            if let Item::Type(defs, span) = item {
                // Echoed in full, as OCaml's toplevel does, in caravan
                // fmt's layout.
                let src = text.get(span.start..span.end).unwrap_or("");
                match crate::format::format_source(src) {
                    Ok(f) if !f.trim().is_empty() => static_lines.push(f.trim_end().to_string()),
                    _ => {
                        for d in defs {
                            static_lines.push(format!("type {}", type_head(d)));
                        }
                    }
                }
            }
        }
        let new_globals: Vec<(GlobalId, String, crate::types::Ty)> = program.globals
            [globals_before..]
            .iter()
            .enumerate()
            .map(|(i, g)| ((globals_before + i) as GlobalId, g.name.clone(), g.ty))
            .collect();
        let mut parts: Vec<TExpr> = vec![];
        let concat = find_extern(program, "caravan_string_concat");
        let sink = self.sink.as_deref().map(|sym| find_extern(program, sym));
        for (g, name, ty) in new_globals {
            let mut p = Printer::new();
            p.mark_weak = true;
            let tstr = checker.show_with(&mut p, ty);
            let head = if name == EXPR_NAME {
                format!("- : {tstr} = ")
            } else {
                format!("val {name} : {tstr} = ")
            };
            parts.push(TExpr::Str(head.into_bytes()));
            parts.push(TExpr::Prim(
                Prim::InspectTop,
                vec![TExpr::Global(g)],
                ty,
                no_loc(),
            ));
            parts.push(TExpr::Str(b"\n".to_vec()));
        }
        let text = parts
            .into_iter()
            .rev()
            .reduce(|acc, part| TExpr::CallExtern(concat, vec![part, acc], no_loc()))
            .unwrap_or(TExpr::Str(vec![]));
        // Hand the text to the sink builtin, or return it.
        let result = match sink {
            Some(x) => TExpr::CallExtern(x, vec![text], no_loc()),
            None => text,
        };
        self.before = Some(saved);
        let closure = self
            .session
            .compile_new_items_returning(Some(result))
            .map_err(PhraseError::Codegen)?;
        Ok(Phrase {
            closure,
            static_lines,
        })
    }

    /// Whether `text` is a whole phrase, the start of one, or a syntax
    /// error more input cannot fix.
    pub fn classify(&self, text: &str) -> Completeness {
        match parse::parse_phrase(0, text) {
            Ok(_) => Completeness::Complete,
            Err(e) if e.incomplete => Completeness::Incomplete,
            Err(_) => Completeness::Error,
        }
    }

    /// Whether `text` parses as a complete phrase.
    pub fn would_parse(&self, text: &str) -> bool {
        parse::parse_phrase(0, text).is_ok()
    }

    /// Whether `text` is a phrase cut short (more input could complete it).
    pub fn is_incomplete(&self, text: &str) -> bool {
        matches!(parse::parse_phrase(0, text), Err(e) if e.incomplete)
    }

    /// Forgets the definitions of the last phrase (it crashed before they
    /// got their values).
    pub fn undo(&mut self) {
        if let Some(saved) = self.before.take() {
            let (program, checker, _) = self.session.parts();
            let prog = std::mem::take(program);
            *checker = saved;
            *program = prog;
        }
    }

    /// The type of an expression, without running it (`:type e`).
    pub fn type_of(&mut self, text: &str) -> Result<String, PhraseError> {
        let (program, checker, sources) = self.session.parts();
        let file = sources.add("<type>", text.to_owned());
        let expr = match crate::parser::ExprParser::new()
            .parse(&mut vec![], crate::lexer::tokenize(text))
        {
            Ok(e) => e,
            Err(e) => {
                let f = parse::parse_phrase(file, text).err();
                let d = f.map(|f| f.diagnostic).unwrap_or_else(|| {
                    Diagnostic::error(
                        "E0002",
                        format!("syntax error: {e:?}"),
                        file,
                        Default::default(),
                        "here",
                    )
                });
                return Err(PhraseError::Diagnostics(sources.clone(), vec![d]));
            }
        };
        let mut scratch = checker.clone();
        scratch.program = program.clone();
        scratch.check_items(file, &[]);
        let fresh = scratch.types.next_var_id();
        let (_, t) = scratch.infer(&expr);
        let diags = scratch.diagnostics();
        if !diags.is_empty() {
            return Err(PhraseError::Diagnostics(sources.clone(), diags));
        }
        // Weak variables as the `val` lines name them.
        let mut p = Printer::new();
        p.mark_weak = true;
        p.weak_before = Some(fresh);
        Ok(scratch.show_with(&mut p, t))
    }

    /// Names for completion: every value in scope, or the members of
    /// `module`.
    pub fn names(&mut self, module: Option<&str>) -> Vec<String> {
        let (_, checker, _) = self.session.parts();
        let mut v = checker.value_names_in_scope(module);
        if module.is_none() {
            v.extend(checker.modules.keys().filter(|m| *m != "Prelude").cloned());
        }
        v.retain(|n| n != EXPR_NAME && n.starts_with(|c: char| c.is_alphabetic() || c == '_'));
        v.sort();
        v.dedup();
        v
    }
}

fn no_loc() -> Loc {
    Loc {
        file: usize::MAX,
        span: Default::default(),
    }
}

fn find_extern(program: &crate::typed::TProgram, symbol: &str) -> u32 {
    program
        .externs
        .iter()
        .position(|x| x.symbol == symbol)
        .expect("the prelude declares string concatenation") as u32
}

fn type_head(d: &ast::TypeDef) -> String {
    match d.params.len() {
        0 => d.name.clone(),
        1 => format!("'{} {}", d.params[0], d.name),
        _ => format!(
            "({}) {}",
            d.params
                .iter()
                .map(|p| format!("'{p}"))
                .collect::<Vec<_>>()
                .join(", "),
            d.name
        ),
    }
}
