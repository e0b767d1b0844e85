//! Position queries on an [`Analysis`]: the type at a position, where a
//! name is defined, its references, and what completes at a position. The
//! language server and the REPL answer from these.

use crate::ast::Span;
use crate::diagnostic::FileId;
use crate::driver::Analysis;
use crate::types::env::Occurrence;

/// The innermost identifier at byte `offset` of `file`.
pub fn occurrence_at(a: &Analysis, file: FileId, offset: usize) -> Option<&Occurrence> {
    a.checker
        .index
        .iter()
        .filter(|o| o.file == file && o.span.start <= offset && offset <= o.span.end)
        .min_by_key(|o| o.span.end - o.span.start)
}

/// The type of the identifier at `offset`, printed (`'a list -> int`), with
/// its span and name.
pub fn type_at(a: &mut Analysis, file: FileId, offset: usize) -> Option<(Span, String, String)> {
    let o = occurrence_at(a, file, offset)?.clone();
    let mut p = crate::types::printer::Printer::new();
    p.mark_weak = true;
    let t = a.checker.show_with(&mut p, o.ty);
    Some((o.span, o.name, t))
}

/// Where the name at `offset` is defined.
pub fn definition_at(a: &Analysis, file: FileId, offset: usize) -> Option<(FileId, Span)> {
    occurrence_at(a, file, offset)?.def
}

/// Every occurrence (definition included) of what the name at `offset`
/// names.
pub fn references_at(a: &Analysis, file: FileId, offset: usize) -> Vec<(FileId, Span)> {
    let Some(def) = definition_at(a, file, offset) else {
        return vec![];
    };
    let mut out: Vec<(FileId, Span)> = a
        .checker
        .index
        .iter()
        .filter(|o| o.def == Some(def))
        .map(|o| (o.file, o.span))
        .collect();
    if !out.contains(&def) {
        out.push(def);
    }
    out.sort_by_key(|(f, s)| (*f, s.start));
    out.dedup();
    out
}

/// What a completion item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompletionKind {
    /// A local or top-level value.
    Value,
    /// A constructor.
    Ctor,
    /// A module.
    Module,
    /// A record field.
    Field,
}

/// A completion candidate: name, printed type, kind.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The name to insert.
    pub name: String,
    /// Its type, printed.
    pub detail: String,
    /// What it is.
    pub kind: CompletionKind,
    /// Its doc comment, if it has one.
    pub doc: Option<String>,
}

/// The doc comment above a definition.
fn doc_of(a: &Analysis, def: Option<(FileId, crate::ast::Span)>) -> Option<String> {
    let (f, s) = def?;
    crate::ide::doc_comment(&a.sources.files.get(f)?.text, s.start)
}

/// Names that complete at `offset`: locals in scope there, top-level
/// values of the file, the prelude, constructors and modules; or, with
/// `module` (after `List.`), that module's members.
pub fn completions_at(
    a: &mut Analysis,
    file: FileId,
    offset: usize,
    module: Option<&str>,
) -> Vec<Completion> {
    let mut out: Vec<Completion> = vec![];
    let push = |out: &mut Vec<Completion>, name: String, detail: String, kind, doc| {
        if !out
            .iter()
            .any(|c: &Completion| c.name == name && c.kind == kind)
        {
            out.push(Completion {
                name,
                detail,
                kind,
                doc,
            });
        }
    };
    if let Some(m) = module {
        let env = a.checker.modules.get(m).cloned().unwrap_or_default();
        let mut vals: Vec<_> = env.values.into_iter().collect();
        vals.sort_by(|x, y| x.0.cmp(&y.0));
        for (n, info) in vals {
            let t = a.checker.show(info.ty);
            let doc = doc_of(a, info.def);
            push(&mut out, n, t, CompletionKind::Value, doc);
        }
        let mut ctors: Vec<_> = env.ctors.into_iter().collect();
        ctors.sort();
        for (n, ci) in ctors {
            let ty = a.checker.ctors[ci].type_id;
            push(
                &mut out,
                n,
                a.checker.type_name(ty),
                CompletionKind::Ctor,
                None,
            );
        }
        return out;
    }
    // Innermost scope containing the offset.
    let scope = a
        .checker
        .scopes
        .iter()
        .filter(|s| s.file == file && s.span.start <= offset && offset <= s.span.end)
        .min_by_key(|s| s.span.end - s.span.start)
        .cloned();
    if let Some(s) = scope {
        for (n, t) in s.names.iter().rev() {
            let d = a.checker.show(*t);
            push(&mut out, n.clone(), d, CompletionKind::Value, None);
        }
    }
    // Top-level values of the file (the checker knows them all).
    let globals: Vec<(String, crate::types::Ty, _)> = a
        .checker
        .current
        .values
        .iter()
        .map(|(n, i)| (n.clone(), i.ty, i.def))
        .collect();
    for (n, t, def) in globals {
        let d = a.checker.show(t);
        let doc = doc_of(a, def);
        push(&mut out, n, d, CompletionKind::Value, doc);
    }
    let mut prelude: Vec<_> = a
        .checker
        .prelude
        .values
        .iter()
        .map(|(n, i)| (n.clone(), i.ty, i.def))
        .filter(|(n, _, _)| n.starts_with(|c: char| c.is_alphabetic()))
        .collect();
    prelude.sort_by(|x, y| x.0.cmp(&y.0));
    for (n, t, def) in prelude {
        let d = a.checker.show(t);
        let doc = doc_of(a, def);
        push(&mut out, n, d, CompletionKind::Value, doc);
    }
    let ctors: Vec<(String, usize)> = a
        .checker
        .current
        .ctors
        .iter()
        .chain(a.checker.prelude.ctors.iter())
        .map(|(n, c)| (n.clone(), *c))
        .collect();
    for (n, ci) in ctors {
        let ty = a.checker.ctors[ci].type_id;
        push(
            &mut out,
            n,
            a.checker.type_name(ty),
            CompletionKind::Ctor,
            None,
        );
    }
    let mut mods: Vec<String> = a
        .checker
        .modules
        .keys()
        .filter(|m| *m != "Prelude")
        .cloned()
        .collect();
    mods.sort();
    for m in mods {
        push(&mut out, m, "module".into(), CompletionKind::Module, None);
    }
    out
}

/// The record fields of the type of the expression ending just before a
/// `.` at `offset` (for completion after `r.`), with their types.
pub fn fields_of_type_at(a: &mut Analysis, file: FileId, offset: usize) -> Vec<Completion> {
    let Some(o) = occurrence_at(a, file, offset).cloned() else {
        return vec![];
    };
    let Some(tid) = a.checker.types.head(o.ty) else {
        return vec![];
    };
    let fields = match &a.checker.decls[tid as usize].kind {
        crate::types::env::TypeKind::Record(fs) => fs.clone(),
        _ => return vec![],
    };
    fields
        .into_iter()
        .map(|(n, t)| Completion {
            detail: a.checker.show(t),
            name: n,
            kind: CompletionKind::Field,
            doc: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(src: &str) -> Analysis {
        crate::driver::analyze("/nonexistent/q.cvn", src, &|_| None)
    }

    #[test]
    fn hover_definition_references_completion() {
        let src = "type point = { x : int; y : int }\nlet norm p = p.x + p.y\nlet twice f v = f (f v)\nlet () = print_int (norm { x = 1; y = 2 })\n";
        let mut a = analysis(src);
        assert!(a.diagnostics.is_empty(), "{:?}", a.diagnostics);
        let f = a.main_file;
        let at = |s: &str, nth: usize| src.match_indices(s).nth(nth).unwrap().0 + 1;
        let (_, name, ty) = type_at(&mut a, f, at("norm", 0)).unwrap();
        assert_eq!((name.as_str(), ty.as_str()), ("norm", "point -> int"));
        let (_, _, ty) = type_at(&mut a, f, at("twice", 0)).unwrap();
        assert_eq!(ty, "('a -> 'a) -> 'a -> 'a");
        let def = definition_at(&a, f, at("norm", 1)).unwrap();
        assert_eq!(def.1.start, at("norm", 0) - 1);
        assert_eq!(references_at(&a, f, at("norm", 1)).len(), 2);
        let c = completions_at(&mut a, f, at("p.x", 0), None);
        assert!(c.iter().any(|c| c.name == "p" && c.detail == "point"));
        assert!(c.iter().any(|c| c.name == "twice"));
        let c = completions_at(&mut a, f, 0, Some("List"));
        assert!(c
            .iter()
            .any(|c| c.name == "map" && c.detail == "('a -> 'b) -> 'a list -> 'b list"));
    }

    #[test]
    fn broken_files_still_answer() {
        let src = "let good x = x + 1\nlet bad = = 3\nlet also y = good y\n";
        let mut a = analysis(src);
        assert!(!a.diagnostics.is_empty());
        let f = a.main_file;
        let off = src.find("good y").unwrap() + 1;
        let (_, _, ty) = type_at(&mut a, f, off).unwrap();
        assert_eq!(ty, "int -> int");
    }
}
