//! Finding the modules a file refers to: `Foo.bar` in `main.cvn` is `bar`
//! in `foo.cvn` beside it, as in OCaml.

use crate::ast::visit::{self, Node};
use crate::ast::*;

/// Every module name used qualified in `m` (`Foo.bar`, `Foo.Ctor`,
/// `Foo.t`), with the first place it is used, in order of first use.
pub fn module_refs(m: &Module) -> Vec<(String, Span)> {
    let mut out: Vec<(String, Span)> = vec![];
    let mut add = |md: &str, s: Span| {
        if !out.iter().any(|(x, _)| x == md) {
            out.push((md.to_string(), s));
        }
    };
    // A qualified record field `Geo.x`.
    let field_module = |f: &str| f.split_once('.').map(|(m, _)| m.to_string());
    let mut work = Work::default();
    for item in &m.items {
        if let Item::Open(md, s) = item {
            add(md, *s);
        }
        visit::item_children(item, |n| work.push(n));
    }
    while let Some(node) = work.pop() {
        // The nodes that hold a possibly qualified name.
        match node {
            Node::Expr(Expr::Var(n, s) | Expr::Ctor(n, _, s))
            | Node::Pat(Pat::Ctor(n, _, s))
            | Node::Type(TypeExpr::Con(n, _, s)) => {
                if let Some(md) = &n.module {
                    add(md, *s);
                }
            }
            Node::Expr(Expr::Open(md, _, _, s)) => add(md, *s),
            Node::Expr(Expr::Field(_, f, s)) => {
                if let Some(md) = field_module(f) {
                    add(&md, *s);
                }
            }
            Node::Expr(Expr::Record(_, fs, _)) => {
                for (f, _, s) in fs.iter() {
                    if let Some(md) = field_module(f) {
                        add(&md, *s);
                    }
                }
            }
            Node::Pat(Pat::Record(fs, _, _)) => {
                for (f, _, s) in fs.iter() {
                    if let Some(md) = field_module(f) {
                        add(&md, *s);
                    }
                }
            }
            _ => {}
        }
        visit::children(node, |n| work.push(n));
    }
    out.sort_by_key(|(_, s)| s.start);
    out
}

/// The nodes left to visit: one stack per kind, expressions taken first,
/// then patterns, then types (the order decides which use of a module is
/// the one recorded).
#[derive(Default)]
struct Work<'a> {
    exprs: Vec<&'a Expr>,
    pats: Vec<&'a Pat>,
    tys: Vec<&'a TypeExpr>,
}

impl<'a> Work<'a> {
    fn push(&mut self, n: Node<'a>) {
        match n {
            Node::Expr(e) => self.exprs.push(e),
            Node::Pat(p) => self.pats.push(p),
            Node::Type(t) => self.tys.push(t),
        }
    }

    fn pop(&mut self) -> Option<Node<'a>> {
        (self.exprs.pop().map(Node::Expr))
            .or_else(|| self.pats.pop().map(Node::Pat))
            .or_else(|| self.tys.pop().map(Node::Type))
    }
}

/// The file name of module `M`: `m.cvn` with the first letter lowercased
/// (`FooBar` → `fooBar.cvn`, as OCaml's `fooBar.ml`).
pub fn file_of_module(m: &str) -> String {
    let mut c = m.chars();
    match c.next() {
        Some(f) => format!("{}{}.cvn", f.to_lowercase(), c.as_str()),
        None => String::new(),
    }
}

/// The file names that hold module `M`, in the order they are tried:
/// [`file_of_module`], then `M.cvn` as written (OCaml accepts both
/// `fooBar.ml` and `FooBar.ml`).
pub fn files_of_module(m: &str) -> Vec<String> {
    let lower = file_of_module(m);
    let exact = format!("{m}.cvn");
    if lower == exact {
        vec![lower]
    } else {
        vec![lower, exact]
    }
}
