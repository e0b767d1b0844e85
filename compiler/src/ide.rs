//! Editor features computed from an [`crate::driver::Analysis`] beyond the
//! position queries of [`crate::query`]: document symbols, inlay hints,
//! signature help, rename checks, doc comments. (Owned by the language
//! server's work.) Positions are byte offsets into a file's text, as
//! everywhere in the compiler; the language server converts them.

use crate::ast::{self, visit, Expr, Item, Pat, Span};
use crate::diagnostic::FileId;
use crate::driver::Analysis;
use crate::types::env::{OccKind, Occurrence, TypeKind};
use crate::types::printer::Printer;
use crate::types::{Label, Ty, TyNode};

/// The language's keywords (never valid as a value name).
pub const KEYWORDS: &[&str] = &[
    "let", "rec", "and", "in", "fun", "function", "match", "with", "when", "if", "then", "else",
    "type", "of", "begin", "end", "true", "false", "receive", "after", "external", "as", "assert",
    "mod", "land", "lor", "lxor", "lsl", "lsr", "asr", "_",
];

/// Whether `s` may name a value: `[a-z_][A-Za-z0-9_']*`, not a keyword.
pub fn is_value_name(s: &str) -> bool {
    let mut cs = s.chars();
    let Some(first) = cs.next() else {
        return false;
    };
    (first.is_ascii_lowercase() || first == '_') && cs.all(is_ident_char) && !KEYWORDS.contains(&s)
}

/// Whether `c` may appear inside an identifier.
pub fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '\''
}

/// The module whose source is `file`: `Some("Geometry")` for a sibling
/// module, `Some("List")` for a standard module, `None` for the main file.
pub fn module_of(a: &Analysis, file: FileId) -> Option<String> {
    if let Some((name, _, _)) = a.files.iter().find(|(_, f, _)| *f == file) {
        return name.clone();
    }
    let path = &a.sources.files.get(file)?.path;
    caravan_stdlib::MODULES
        .iter()
        .find(|(m, _)| caravan_stdlib::file_name(m) == *path)
        .map(|(m, _)| m.to_string())
}

/// The file holding module `m` in this analysis (a sibling or a standard
/// module), if it was loaded.
pub fn file_of_module(a: &Analysis, m: &str) -> Option<FileId> {
    if let Some((_, f, _)) = a.files.iter().find(|(n, _, _)| n.as_deref() == Some(m)) {
        return Some(*f);
    }
    let path = caravan_stdlib::file_name(m);
    if !caravan_stdlib::MODULES.iter().any(|(n, _)| *n == m) {
        return None;
    }
    a.sources.files.iter().position(|f| f.path == path)
}

/// Prints `ty` as seen from inside `file`'s module (its own types
/// unqualified).
pub fn show_in(a: &mut Analysis, file: FileId, ty: Ty) -> String {
    let mut p = Printer::new();
    // A top-level binding whose type is still weak (`let p = spawn f`)
    // shows `'_weak1`, as the REPL does.
    p.mark_weak = true;
    show_in_with(a, file, &mut p, ty)
}

/// [`show_in`] with a shared printer (consistent variable names).
pub fn show_in_with(a: &mut Analysis, file: FileId, p: &mut Printer, ty: Ty) -> String {
    let module = module_of(a, file);
    let saved = std::mem::replace(&mut a.checker.current_name, module);
    let s = a.checker.show_with(p, ty);
    a.checker.current_name = saved;
    s
}

/// The identifier `name` itself within `span` of `text`: occurrence and
/// definition spans may cover a qualifier (`Geometry.area`), trailing
/// blanks (`area ` of `let area s`) or a whole declaration (`Circle of
/// float`, an `external`).
pub fn ident_span(text: &str, span: Span, name: &str) -> Span {
    let start = span.start.min(text.len());
    let end = span.end.clamp(start, text.len());
    let Some(s) = text.get(start..end) else {
        return Span::new(start, end);
    };
    let trimmed = s.trim_end();
    let tend = start + trimmed.len();
    if name.is_empty() {
        return Span::new(start, tend);
    }
    if trimmed.ends_with(name)
        && !trimmed[..trimmed.len() - name.len()]
            .chars()
            .next_back()
            .is_some_and(is_ident_char)
    {
        return Span::new(tend - name.len(), tend);
    }
    // A declaration or a binding: the first whole-word match.
    let mut from = 0;
    while let Some(i) = trimmed[from..].find(name) {
        let i = from + i;
        let before = trimmed[..i].chars().next_back();
        let after = trimmed[i + name.len()..].chars().next();
        if !before.is_some_and(is_ident_char) && !after.is_some_and(is_ident_char) {
            return Span::new(start + i, start + i + name.len());
        }
        from = i + name.len();
    }
    Span::new(start, tend)
}

/// The doc comment of the definition starting at `def_start` in `text`: a
/// comment (`(** ... *)` or `(* ... *)`) on the lines just above it, with
/// no blank line between, and only `let`/`rec`/`and`/`type`/`|`/type
/// parameters between the start of its line and the name.
pub fn doc_comment(text: &str, def_start: usize) -> Option<String> {
    let def_start = def_start.min(text.len());
    if !text.is_char_boundary(def_start) {
        return None;
    }
    let line_start = text[..def_start].rfind('\n').map_or(0, |i| i + 1);
    let prefix = &text[line_start..def_start];
    let leading_ok = prefix.split_whitespace().all(|w| {
        matches!(w, "let" | "rec" | "and" | "type" | "external" | "|")
            || w.starts_with('\'')
            || w.starts_with('(')
    });
    if !leading_ok {
        return None;
    }
    let before = &text[..line_start];
    let b = before.trim_end();
    if before[b.len()..].matches('\n').count() > 1 || !b.ends_with("*)") {
        return None;
    }
    // Find the matching `(*`, counting nested comments.
    let bytes = b.as_bytes();
    let mut i = bytes.len();
    let mut depth = 0usize;
    let open = loop {
        if i < 2 {
            return None;
        }
        match &bytes[i - 2..i] {
            b"*)" => {
                depth += 1;
                i -= 2;
            }
            b"(*" => {
                depth -= 1;
                i -= 2;
                if depth == 0 {
                    break i;
                }
            }
            _ => i -= 1,
        }
    };
    // Only whitespace before the comment on its line (not a trailing
    // comment of code).
    let cline = b[..open].rfind('\n').map_or(0, |i| i + 1);
    if !b[cline..open].trim().is_empty() {
        return None;
    }
    let body = &b[open + 2..b.len() - 2];
    let body = body.strip_prefix('*').unwrap_or(body);
    let lines: Vec<&str> = body.lines().map(str::trim).collect();
    let doc = lines.join("\n").trim().to_string();
    (!doc.is_empty()).then_some(doc)
}

/// The variables a pattern binds, with their spans; `annotated` tells
/// whether the variable sits under a type annotation.
pub fn pattern_vars(p: &Pat) -> Vec<(String, Span, bool)> {
    fn go(p: &Pat, annotated: bool, out: &mut Vec<(String, Span, bool)>) {
        match p {
            Pat::Wild(_) | Pat::Lit(..) => {}
            Pat::Var(n, s) => out.push((n.clone(), *s, annotated)),
            Pat::Tuple(ps, _) | Pat::List(ps, _) => {
                for p in ps {
                    go(p, annotated, out);
                }
            }
            Pat::Ctor(_, a, _) => {
                if let Some(a) = a {
                    go(a, annotated, out);
                }
            }
            Pat::Cons(a, b, _) | Pat::Or(a, b, _) => {
                go(a, annotated, out);
                go(b, annotated, out);
            }
            Pat::Record(fs, _, _) => {
                for (_, p, _) in fs {
                    go(p, annotated, out);
                }
            }
            Pat::Alias(p, n, s) => {
                go(p, annotated, out);
                out.push((n.clone(), *s, annotated));
            }
            Pat::Annot(p, _, _) => go(p, true, out),
        }
    }
    let mut out = vec![];
    go(p, false, &mut out);
    out
}

/// The syntax tree of `file`, if it is one of the user's files.
pub fn module_ast(a: &Analysis, file: FileId) -> Option<&ast::Module> {
    a.files
        .iter()
        .find(|(_, f, _)| *f == file)
        .map(|(_, _, m)| m)
}

/// The binding occurrence recorded for a pattern variable starting at
/// `start`.
fn binding_at(a: &Analysis, file: FileId, start: usize) -> Option<&Occurrence> {
    a.checker
        .index
        .iter()
        .find(|o| o.file == file && o.span.start == start && o.kind == OccKind::Binding)
}

// ------------------------------------------------------------ symbols

/// What a [`Symbol`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymbolKind {
    /// A top-level function (`let f x = ...`).
    Function,
    /// A top-level value that is not a function.
    Value,
    /// A variant type.
    Variant,
    /// A record type.
    Record,
    /// Another type (abbreviation, abstract).
    Type,
    /// A constructor of a variant type.
    Constructor,
    /// A record field.
    Field,
    /// An `external` builtin.
    External,
}

/// A named definition of a file, for outlines and workspace symbols.
#[derive(Debug, Clone)]
pub struct Symbol {
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: SymbolKind,
    /// The whole definition.
    pub span: Span,
    /// The name in the definition.
    pub name_span: Span,
    /// Its type, printed, when known.
    pub detail: Option<String>,
    /// Constructors or fields of a type.
    pub children: Vec<Symbol>,
}

/// The top-level definitions of a parsed file (no types: see
/// [`document_symbols`]).
pub fn module_symbols(text: &str, module: &ast::Module) -> Vec<Symbol> {
    let mut out = vec![];
    for item in &module.items {
        match item {
            Item::Let(_, bs, ispan) => {
                for (i, b) in bs.iter().enumerate() {
                    let span = if i == 0 {
                        Span::new(ispan.start, b.span.end)
                    } else {
                        b.span
                    };
                    let is_fun = matches!(b.expr, Expr::Fun(..) | Expr::Function(..));
                    let single = matches!(b.pat, Pat::Var(..));
                    for (name, vspan, _) in pattern_vars(&b.pat) {
                        out.push(Symbol {
                            name_span: ident_span(text, vspan, &name),
                            name,
                            kind: if is_fun && single {
                                SymbolKind::Function
                            } else {
                                SymbolKind::Value
                            },
                            span,
                            detail: None,
                            children: vec![],
                        });
                    }
                }
            }
            Item::Type(defs, ispan) => {
                for (i, d) in defs.iter().enumerate() {
                    let span = if i == 0 {
                        Span::new(ispan.start, d.span.end)
                    } else {
                        d.span
                    };
                    let (kind, children) = match &d.body {
                        ast::TypeBody::Variant(cs) => (
                            SymbolKind::Variant,
                            cs.iter()
                                .map(|(n, _, s)| Symbol {
                                    name: n.clone(),
                                    kind: SymbolKind::Constructor,
                                    span: *s,
                                    name_span: ident_span(text, *s, n),
                                    detail: None,
                                    children: vec![],
                                })
                                .collect(),
                        ),
                        ast::TypeBody::Record(fs) => (
                            SymbolKind::Record,
                            fs.iter()
                                .map(|(n, _, s)| Symbol {
                                    name: n.clone(),
                                    kind: SymbolKind::Field,
                                    span: *s,
                                    name_span: ident_span(text, *s, n),
                                    detail: None,
                                    children: vec![],
                                })
                                .collect(),
                        ),
                        _ => (SymbolKind::Type, vec![]),
                    };
                    out.push(Symbol {
                        name: d.name.clone(),
                        kind,
                        span,
                        name_span: ident_span(text, d.span, &d.name),
                        detail: None,
                        children,
                    });
                }
            }
            Item::Open(..) => {}
            Item::Exception(name, _, span) => out.push(Symbol {
                name: name.clone(),
                kind: SymbolKind::Constructor,
                span: *span,
                name_span: ident_span(text, *span, name),
                detail: None,
                children: vec![],
            }),
            Item::External(name, _, _, span) => out.push(Symbol {
                name: name.clone(),
                kind: SymbolKind::External,
                span: *span,
                name_span: ident_span(text, *span, name),
                detail: None,
                children: vec![],
            }),
            Item::Expr(_) => {}
        }
    }
    out
}

/// The outline of `file`: its top-level definitions with their inferred
/// types.
pub fn document_symbols(a: &mut Analysis, file: FileId) -> Vec<Symbol> {
    let Some(text) = a.sources.files.get(file).map(|f| f.text.clone()) else {
        return vec![];
    };
    let Some(module) = module_ast(a, file) else {
        return vec![];
    };
    let mut syms = module_symbols(&text, module);
    for s in &mut syms {
        let ty = match s.kind {
            SymbolKind::Function | SymbolKind::Value => {
                // The binding's span may start before the name (`let`).
                a.checker
                    .index
                    .iter()
                    .find(|o| {
                        o.file == file
                            && o.kind == OccKind::Binding
                            && o.name == s.name
                            && o.span.start <= s.name_span.start
                            && s.name_span.end <= o.span.end.max(s.name_span.end)
                            && o.span.start >= s.span.start
                    })
                    .map(|o| o.ty)
            }
            SymbolKind::External => a
                .checker
                .current
                .values
                .get(&s.name)
                .filter(|v| v.def.is_some_and(|d| d.0 == file))
                .map(|v| v.ty),
            _ => None,
        };
        if let Some(t) = ty {
            s.detail = Some(show_in(a, file, t));
        }
    }
    syms
}

// ------------------------------------------------------------ inlay hints

/// What an [`InlayHint`] annotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HintKind {
    /// The name of a `let` binding.
    Binding,
    /// A function parameter.
    Parameter,
}

/// An inferred type to show after a name: `label` (`: int`) at `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlayHint {
    /// Where (just after the name).
    pub offset: usize,
    /// The text, `: int`.
    pub label: String,
    /// What is annotated.
    pub kind: HintKind,
}

/// Inferred types of `let` bindings that are not functions and of
/// function parameters that carry no annotation, within `range` of `file`.
pub fn inlay_hints(a: &mut Analysis, file: FileId, range: Span) -> Vec<InlayHint> {
    let Some(text) = a.sources.files.get(file).map(|f| f.text.clone()) else {
        return vec![];
    };
    let Some(module) = module_ast(a, file) else {
        return vec![];
    };
    let mut wanted: Vec<(String, Span, HintKind)> = vec![];
    let binding = |b: &ast::Binding, wanted: &mut Vec<(String, Span, HintKind)>| {
        if matches!(b.expr, Expr::Fun(..) | Expr::Function(..)) && matches!(b.pat, Pat::Var(..)) {
            return;
        }
        for (n, s, annotated) in pattern_vars(&b.pat) {
            if !annotated {
                wanted.push((n, s, HintKind::Binding));
            }
        }
    };
    for item in &module.items {
        if let Item::Let(_, bs, _) = item {
            for b in bs {
                binding(b, &mut wanted);
            }
        }
    }
    visit::walk_module(module, |e| match e {
        Expr::Let(_, bs, _, _) => {
            for b in bs {
                binding(b, &mut wanted);
            }
        }
        Expr::Fun(ps, _, _) => {
            for p in ps {
                for (n, s, annotated) in pattern_vars(&p.pat) {
                    if !annotated {
                        wanted.push((n, s, HintKind::Parameter));
                    }
                }
            }
        }
        _ => {}
    });
    let mut out = vec![];
    for (name, span, kind) in wanted {
        let id = ident_span(&text, span, &name);
        if id.end < range.start || id.start > range.end {
            continue;
        }
        let Some(ty) = binding_at(a, file, span.start).map(|o| o.ty) else {
            continue;
        };
        let t = show_in(a, file, ty);
        out.push(InlayHint {
            offset: id.end,
            label: format!(": {t}"),
            kind,
        });
    }
    out.sort_by_key(|h| h.offset);
    out.dedup();
    out
}

// ------------------------------------------------------------ signature help

/// The signature of the function applied around a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// `name : a -> b -> c`.
    pub label: String,
    /// Byte ranges of the parameters' types within `label`.
    pub params: Vec<(usize, usize)>,
    /// The parameter being written.
    pub active: usize,
    /// The function's doc comment.
    pub doc: Option<String>,
}

/// Signature help at `offset` of `file`: inside an application `f a b`
/// (or just after `f `), the type of `f` split into its parameters and
/// which of them the cursor is on.
pub fn signature_help(a: &mut Analysis, file: FileId, offset: usize) -> Option<Signature> {
    let text = a.sources.files.get(file)?.text.clone();
    // Blanks after `span` up to `offset` extend an application.
    let reaches = |span: Span| {
        span.start < offset
            && (offset <= span.end
                || text
                    .get(span.end..offset)
                    .is_some_and(|s| s.chars().all(char::is_whitespace)))
    };
    let mut best: Option<(Span, Span, Vec<Span>)> = None;
    if let Some(module) = module_ast(a, file) {
        visit::walk_module(module, |e| {
            if let Expr::App(g, args, span) = e {
                if let Expr::Var(n, vspan) = &**g {
                    let named = n.name.starts_with(|c: char| c.is_alphabetic() || c == '_');
                    if named && reaches(*span) && vspan.end < offset {
                        let inner = best
                            .as_ref()
                            .is_none_or(|(b, _, _)| span.end - span.start <= b.end - b.start);
                        if inner {
                            best = Some((*span, *vspan, args.iter().map(|a| a.span()).collect()));
                        }
                    }
                }
            }
        });
    }
    let (fspan, args) = match best {
        Some((_, v, args)) => (v, args),
        None => {
            // `f |`: a function value followed by blanks.
            let o = a
                .checker
                .index
                .iter()
                .filter(|o| o.file == file && o.kind == OccKind::Value && o.span.end < offset)
                .filter(|o| {
                    text.get(o.span.end..offset)
                        .is_some_and(|s| s.chars().all(char::is_whitespace))
                })
                .max_by_key(|o| o.span.end)?;
            (o.span, vec![])
        }
    };
    let occ = a
        .checker
        .index
        .iter()
        .rfind(|o| o.file == file && o.kind == OccKind::Value && o.span == fspan)?
        .clone();
    let mut params = vec![];
    let mut cur = occ.ty;
    while let TyNode::Arrow(l, p, r) = a.checker.types.node(cur) {
        params.push((l, p));
        cur = r;
    }
    if params.is_empty() {
        return None;
    }
    let mut printer = Printer::new();
    let mut label = format!(
        "{} : ",
        text.get(fspan.start..fspan.end).unwrap_or(&occ.name)
    );
    let mut ranges = vec![];
    for (l, mut p) in params {
        let prefix = match l {
            Label::Positional => String::new(),
            Label::Named(n) => format!("{}:", a.checker.types.label_name(n)),
            Label::Optional(n) => {
                // `?x:int`: the function receives an `int option`.
                if let TyNode::Con(_, args) = a.checker.types.node(p) {
                    if let [inner] = args.as_slice() {
                        p = *inner;
                    }
                }
                format!("?{}:", a.checker.types.label_name(n))
            }
        };
        let mut s = show_in_with(a, file, &mut printer, p);
        if matches!(a.checker.types.node(p), TyNode::Arrow(..)) {
            s = format!("({s})");
        }
        let s = format!("{prefix}{s}");
        ranges.push((label.len(), label.len() + s.len()));
        label.push_str(&s);
        label.push_str(" -> ");
    }
    label.push_str(&show_in_with(a, file, &mut printer, cur));
    let active = args
        .iter()
        .filter(|s| s.end < offset)
        .count()
        .min(ranges.len() - 1);
    let doc = occ.def.and_then(|(f, s)| {
        let t = &a.sources.files.get(f)?.text;
        doc_comment(t, s.start)
    });
    Some(Signature {
        label,
        params: ranges,
        active,
        doc,
    })
}

// ------------------------------------------------------------ hover

/// What to show when hovering over the identifier at `offset` of `file`:
/// its span and a signature line (`area : shape -> float`, `Circle : float
/// -> shape`, `type shape = ...`), with the definition's doc comment.
pub fn hover_at(
    a: &mut Analysis,
    file: FileId,
    offset: usize,
) -> Option<(Span, String, Option<String>)> {
    let o = match crate::query::occurrence_at(a, file, offset) {
        Some(o) => o.clone(),
        None => type_definition_at(a, file, offset)?,
    };
    let text = a.sources.files.get(file)?.text.clone();
    let written = text
        .get(o.span.start..o.span.end)
        .unwrap_or(&o.name)
        .trim_end()
        .to_string();
    // `Geometry.area`: over the qualifier, show the module.
    if let Some(dot) = written.rfind('.') {
        if offset < o.span.start + dot {
            let m = &written[..dot];
            let path = file_of_module(a, m).map(|f| a.sources.files[f].path.clone());
            let sig = match path {
                Some(p) => format!("module {m} ({p})"),
                None => format!("module {m}"),
            };
            return Some((Span::new(o.span.start, o.span.start + dot), sig, None));
        }
    }
    let sig = match o.kind {
        OccKind::Value | OccKind::Binding | OccKind::Field => {
            format!("{} : {}", o.name, show_in(a, file, o.ty))
        }
        OccKind::Ctor => {
            let ci = a
                .checker
                .ctors
                .iter()
                .position(|c| c.def == o.def && c.name == o.name);
            match ci {
                Some(ci) => {
                    let c = a.checker.ctors[ci].clone();
                    let params = a.checker.decls[c.type_id as usize].params.clone();
                    let res = a.checker.types.mk(TyNode::Con(c.type_id, params));
                    let mut p = Printer::new();
                    let args: Vec<String> = c
                        .args
                        .iter()
                        .map(|t| {
                            let s = show_in_with(a, file, &mut p, *t);
                            if matches!(
                                a.checker.types.node(*t),
                                TyNode::Arrow(..) | TyNode::Tuple(..)
                            ) {
                                format!("({s})")
                            } else {
                                s
                            }
                        })
                        .collect();
                    let r = show_in_with(a, file, &mut p, res);
                    if args.is_empty() {
                        format!("{} : {r}", o.name)
                    } else {
                        format!("{} : {} -> {r}", o.name, args.join(" * "))
                    }
                }
                None => format!("{} : {}", o.name, show_in(a, file, o.ty)),
            }
        }
        OccKind::Type => match o.def {
            Some((f, s)) => {
                let src = a
                    .sources
                    .files
                    .get(f)
                    .and_then(|x| x.text.get(s.start..s.end));
                match src {
                    Some(src) if src.lines().count() <= 12 => {
                        let src = src.trim();
                        if src.starts_with("type") {
                            src.to_string()
                        } else {
                            format!("type {src}")
                        }
                    }
                    _ => format!("type {}", show_in(a, file, o.ty)),
                }
            }
            None => format!("type {}", show_in(a, file, o.ty)),
        },
    };
    let doc = o.def.and_then(|(f, s)| {
        let t = &a.sources.files.get(f)?.text;
        doc_comment(t, s.start)
    });
    Some((o.span, sig, doc))
}

/// The name of a type at its definition (`type point = ...`, the cursor
/// on `point`), as an occurrence of that type.
fn type_definition_at(a: &mut Analysis, file: FileId, offset: usize) -> Option<Occurrence> {
    let text = &a.sources.files.get(file)?.text;
    let b = text.as_bytes();
    let is_word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'\'';
    let mut start = offset.min(b.len());
    while start > 0 && is_word(b[start - 1]) {
        start -= 1;
    }
    let mut end = offset.min(b.len());
    while end < b.len() && is_word(b[end]) {
        end += 1;
    }
    let word = text.get(start..end)?;
    let id = a.checker.decls.iter().position(|d| {
        d.name == word
            && d.def
                .is_some_and(|(f, s)| f == file && s.start <= start && end <= s.end)
    })?;
    let d = a.checker.decls[id].clone();
    let ty = a.checker.types.mk(TyNode::Con(id as u32, d.params.clone()));
    Some(Occurrence {
        file,
        span: Span::new(start, end),
        name: word.to_string(),
        ty,
        def: d.def,
        kind: OccKind::Type,
    })
}

/// Fields of every record type declared in the user's files or the
/// standard library (completion after `r.` when the type of `r` is not
/// known).
pub fn all_record_fields(a: &mut Analysis, file: FileId) -> Vec<(String, String)> {
    let decls: Vec<_> = a
        .checker
        .decls
        .iter()
        .filter_map(|d| match &d.kind {
            TypeKind::Record(fs) => Some(fs.clone()),
            _ => None,
        })
        .collect();
    let mut out = vec![];
    for fs in decls {
        for (n, t) in fs {
            let s = show_in(a, file, t);
            if !out.iter().any(|(m, _): &(String, String)| *m == n) {
                out.push((n, s));
            }
        }
    }
    out
}

// ------------------------------------------------------------ rename

/// Whether renaming what is defined at `target` from `old` to `new`
/// changes what some name means in this analysis: `Some(reason)` when it
/// would clash with a definition of the same module, be captured by a
/// local of that name where it is used, or capture a use of `new`.
pub fn rename_clash(a: &Analysis, target: (FileId, Span), old: &str, new: &str) -> Option<String> {
    let file_text = |f: FileId| a.sources.files.get(f).map_or("", |x| x.text.as_ref());
    let qualified = |o: &Occurrence| {
        file_text(o.file)
            .get(o.span.start..o.span.end)
            .is_some_and(|s| s.contains('.'))
    };
    let line = |f: FileId, off: usize| a.sources.line_col(f, off).0;
    // A top-level value: found in the environment of its module.
    let envs = std::iter::once(&a.checker.current).chain(a.checker.modules.values());
    let mut top_env = None;
    for env in envs {
        if env.values.values().any(|v| v.def == Some(target)) {
            top_env = Some(env);
            break;
        }
    }
    if let Some(env) = top_env {
        if env.values.contains_key(new) {
            return Some(format!("`{new}` is already defined in this module"));
        }
    }
    let refs: Vec<&Occurrence> = a
        .checker
        .index
        .iter()
        .filter(|o| o.def == Some(target))
        .collect();
    let binding_ty = refs
        .iter()
        .find(|o| o.kind == OccKind::Binding && (o.file, o.span) == target)
        .map(|o| o.ty);
    // The scopes where the target is visible (locals only).
    let target_index = |names: &[(String, Ty)]| names.iter().rposition(|(n, _)| n == old);
    let mut regions: Vec<(FileId, Span)> = vec![];
    if top_env.is_some() {
        regions.push((
            target.0,
            Span::new(target.1.start, file_text(target.0).len()),
        ));
    } else {
        for s in &a.checker.scopes {
            if s.file != target.0 {
                continue;
            }
            if let Some(i) = target_index(&s.names) {
                if Some(s.names[i].1) == binding_ty && s.span.start >= target.1.start {
                    regions.push((s.file, s.span));
                    if let Some(j) = s.names.iter().rposition(|(n, _)| n == new) {
                        if j > i {
                            return Some(format!(
                                "`{new}` is bound in the same scope (line {})",
                                line(s.file, s.span.start)
                            ));
                        }
                    }
                }
            }
        }
    }
    // Captured where it is used.
    for r in &refs {
        if r.kind != OccKind::Value || qualified(r) {
            continue;
        }
        let scope = a
            .checker
            .scopes
            .iter()
            .filter(|s| {
                s.file == r.file && s.span.start <= r.span.start && r.span.end <= s.span.end
            })
            .min_by_key(|s| s.span.end - s.span.start);
        if let Some(s) = scope {
            if let Some(j) = s.names.iter().rposition(|(n, _)| n == new) {
                let captured = match target_index(&s.names) {
                    Some(i) if top_env.is_none() => j > i,
                    _ => true,
                };
                if captured {
                    return Some(format!(
                        "the use at line {} would refer to the local `{new}`",
                        line(r.file, r.span.start)
                    ));
                }
            }
        }
    }
    // Capturing a use of `new` defined outside the region.
    let inside = |f: FileId, s: Span| {
        regions
            .iter()
            .any(|(rf, r)| *rf == f && r.start <= s.start && s.end <= r.end)
    };
    for o in &a.checker.index {
        if o.name != new || o.kind != OccKind::Value || qualified(o) || !inside(o.file, o.span) {
            continue;
        }
        let bound_inside = o
            .def
            .is_some_and(|(f, s)| inside(f, s) && Some((f, s)) != Some(target));
        if !bound_inside {
            return Some(format!(
                "the use of `{new}` at line {} would refer to the renamed definition",
                line(o.file, o.span.start)
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(src: &str) -> Analysis {
        crate::driver::analyze("/nonexistent/ide.cvn", src, &|_| None)
    }

    #[test]
    fn doc_comments() {
        let src = "(* header *)\n\n(** Adds one.\n    Really. *)\nlet succ x = x + 1\n(* not this *) let y = 2\nlet z = 3 (* trailing *)\nlet w = 4\n";
        let at = |s: &str| src.find(s).unwrap();
        assert_eq!(
            doc_comment(src, at("succ")).as_deref(),
            Some("Adds one.\nReally.")
        );
        assert_eq!(doc_comment(src, at("y =")), None);
        assert_eq!(doc_comment(src, at("w =")), None);
        assert_eq!(doc_comment(src, at("z =")), None);
    }

    #[test]
    fn ident_spans() {
        let t = "let area s = Geometry.area s";
        assert_eq!(ident_span(t, Span::new(4, 9), "area"), Span::new(4, 8));
        assert_eq!(ident_span(t, Span::new(13, 26), "area"), Span::new(22, 26));
        let t = "| Circle of float";
        assert_eq!(ident_span(t, Span::new(2, 17), "Circle"), Span::new(2, 8));
    }

    #[test]
    fn symbols_hints_signature() {
        let src = "type shape = Circle of float | Square of float\ntype p = { x : int }\n(** Area. *)\nlet area s = match s with Circle r -> r *. r | Square w -> w *. w\nlet two = 2\nlet () = let k = area (Circle 1.0) in print_float k\n";
        let mut a = analysis(src);
        assert!(a.diagnostics.is_empty(), "{:?}", a.diagnostics);
        let f = a.main_file;
        let syms = document_symbols(&mut a, f);
        let names: Vec<_> = syms.iter().map(|s| (s.name.as_str(), s.kind)).collect();
        assert_eq!(
            names,
            [
                ("shape", SymbolKind::Variant),
                ("p", SymbolKind::Record),
                ("area", SymbolKind::Function),
                ("two", SymbolKind::Value)
            ]
        );
        assert_eq!(syms[0].children.len(), 2);
        assert_eq!(syms[2].detail.as_deref(), Some("shape -> float"));
        let hints = inlay_hints(&mut a, f, Span::new(0, src.len()));
        let labels: Vec<_> = hints
            .iter()
            .map(|h| (&src[..h.offset], h.label.as_str()))
            .collect();
        assert!(
            labels
                .iter()
                .any(|(b, l)| b.ends_with("let area s") && *l == ": shape"),
            "{labels:?}"
        );
        assert!(labels
            .iter()
            .any(|(b, l)| b.ends_with("let two") && *l == ": int"));
        assert!(labels
            .iter()
            .any(|(b, l)| b.ends_with("let k") && *l == ": float"));
        let off = src.find("(Circle 1.0)").unwrap() + 2;
        let sig = signature_help(&mut a, f, off).unwrap();
        assert_eq!(sig.label, "area : shape -> float");
        assert_eq!(&sig.label[sig.params[0].0..sig.params[0].1], "shape");
        assert_eq!(sig.doc.as_deref(), Some("Area."));
        let (_, h, doc) = hover_at(&mut a, f, src.find("Circle 1.0").unwrap()).unwrap();
        assert_eq!(h, "Circle : float -> shape");
        assert_eq!(doc, None);
    }

    #[test]
    fn rename_clashes() {
        let src = "let helper = 1\nlet f x y = x + y\nlet g a = let b = a in b + helper\nlet h q = q + 1\n";
        let a = analysis(src);
        let def = |s: &str| {
            let o = crate::query::occurrence_at(&a, a.main_file, src.find(s).unwrap()).unwrap();
            (o.def.unwrap(), o.name.clone())
        };
        let (x, _) = def("x y");
        assert!(rename_clash(&a, x, "x", "y").is_some());
        assert!(rename_clash(&a, x, "x", "z").is_none());
        let (b, _) = def("b =");
        assert!(rename_clash(&a, b, "b", "helper").is_some());
        assert!(rename_clash(&a, b, "b", "a").is_none());
        assert!(rename_clash(&a, b, "b", "c").is_none());
        let (helper, _) = def("helper =");
        assert!(rename_clash(&a, helper, "helper", "f").is_some());
        assert!(rename_clash(&a, helper, "helper", "b").is_some());
        assert!(rename_clash(&a, helper, "helper", "print_int").is_none());
        let (q, _) = def("q =");
        assert!(rename_clash(&a, q, "q", "helper").is_none());
    }
}

/// What a stretch of source is, for highlighting (LSP semantic tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SemanticKind {
    /// `let`, `match`, …
    Keyword,
    /// `(* … *)`
    Comment,
    /// A string or character literal.
    String,
    /// An int or float literal.
    Number,
    /// An operator (`+`, `|>`, `::`, …).
    Operator,
    /// A value of function type.
    Function,
    /// Any other value.
    Variable,
    /// A constructor.
    Constructor,
    /// A record field.
    Field,
    /// A type name.
    Type,
    /// A module name (`List` in `List.map`).
    Module,
    /// A type variable (`'a`).
    TypeParameter,
}

/// Every token of `file` classified for highlighting, in source order,
/// not overlapping: keywords, literals and operators from the lexer,
/// comments from the gaps between tokens, identifiers from the semantic
/// index (a value of function type is a function; names the checker did
/// not reach are variables). `List.map` is two tokens, the module and the
/// name.
pub fn semantic_tokens(a: &Analysis, file: FileId) -> Vec<(Span, SemanticKind)> {
    use crate::lexer::Tok;
    use SemanticKind as K;
    let Some(f) = a.sources.files.get(file) else {
        return vec![];
    };
    let text = &f.text;
    let mut occ: std::collections::HashMap<usize, (OccKind, Ty)> = Default::default();
    for o in a.checker.index.iter().filter(|o| o.file == file) {
        occ.entry(o.span.start).or_insert((o.kind, o.ty));
    }
    let mut types = a.checker.types.clone();
    let mut value_kind = |start: usize| match occ.get(&start) {
        Some((OccKind::Ctor, _)) => K::Constructor,
        Some((OccKind::Field, _)) => K::Field,
        Some((OccKind::Type, _)) => K::Type,
        Some((_, t)) => {
            let r = types.repr(*t);
            if matches!(types.node(r), TyNode::Arrow(..)) {
                K::Function
            } else {
                K::Variable
            }
        }
        None => K::Variable,
    };
    let (toks, _) = crate::lexer::tokenize_lossy(text);
    let mut out: Vec<(Span, SemanticKind)> = vec![];
    let mut prev_end = 0;
    // After `type` (and its parameters): the name being defined.
    let mut defining_type = false;
    for (start, tok, end) in toks {
        let naming = defining_type;
        defining_type = matches!(tok, Tok::Type)
            || (naming && matches!(tok, Tok::TyVar(_) | Tok::LParen | Tok::Comma | Tok::RParen));
        // Comments are what lies between tokens besides white space.
        if start > prev_end {
            let gap = &text[prev_end..start];
            if let Some(i) = gap.find("(*") {
                let s = prev_end + i;
                let e = prev_end + gap.rfind("*)").map_or(gap.len(), |j| j + 2);
                out.push((Span::new(s, e.max(s)), K::Comment));
            }
        }
        prev_end = end;
        let span = Span::new(start, end);
        let kind = match &tok {
            Tok::Comment => K::Comment,
            Tok::Let
            | Tok::Rec
            | Tok::And
            | Tok::In
            | Tok::Fun
            | Tok::Function
            | Tok::Match
            | Tok::With
            | Tok::When
            | Tok::If
            | Tok::Then
            | Tok::Else
            | Tok::Type
            | Tok::Of
            | Tok::Begin
            | Tok::End
            | Tok::True
            | Tok::False
            | Tok::Receive
            | Tok::After
            | Tok::External
            | Tok::As
            | Tok::Assert => K::Keyword,
            Tok::Mod | Tok::Land | Tok::Lor | Tok::Lxor | Tok::Lsl | Tok::Lsr | Tok::Asr => {
                K::Operator
            }
            Tok::Int(_) | Tok::Float(_) => K::Number,
            Tok::Char(_) | Tok::Str(_) => K::String,
            Tok::TyVar(_) => K::TypeParameter,
            Tok::LIdent(_) if naming => K::Type,
            Tok::LIdent(_) => value_kind(start),
            Tok::UIdent(_) => match occ.get(&start) {
                Some((OccKind::Ctor, _)) => K::Constructor,
                Some((OccKind::Type, _)) => K::Type,
                _ if text[end..].starts_with('.') => K::Module,
                _ => K::Constructor,
            },
            Tok::QLIdent((m, _)) | Tok::QUIdent((m, _)) => {
                let dot = start + m.len();
                out.push((Span::new(start, dot), K::Module));
                let kind = match &tok {
                    Tok::QUIdent(_) => K::Constructor,
                    _ => value_kind(start),
                };
                out.push((Span::new(dot + 1, end), kind));
                continue;
            }
            Tok::Underscore
            | Tok::LParen
            | Tok::RParen
            | Tok::LBracket
            | Tok::RBracket
            | Tok::LBrace
            | Tok::RBrace
            | Tok::Comma
            | Tok::Semi
            | Tok::SemiSemi
            | Tok::Dot
            | Tok::Colon => continue,
            _ => K::Operator,
        };
        out.push((span, kind));
    }
    if let Some(i) = text[prev_end..].find("(*") {
        out.push((Span::new(prev_end + i, text.len()), K::Comment));
    }
    out
}
