//! The children of each kind of syntax-tree node, enumerated in one place.
//!
//! Every generic walk over the tree (the modules a file uses, the editor's
//! searches, the value restriction, dropping) asks these functions for a
//! node's children instead of matching on the node itself, so a new kind
//! of expression is taught to all of them by one arm here; the matches have
//! no catch-all arm, so forgetting it is a compile error in this file.
//!
//! The functions only enumerate one level: the walks keep their own work
//! lists, so they need no stack however deep the tree (a 1,000,000-term
//! `1 + 1 + …` is a tree of that depth). Children come in source order.

use super::{Arm, Expr, Item, Module, Pat, TypeBody, TypeExpr};

/// A node below the items of a file: what the enumerators hand out.
#[derive(Debug, Clone, Copy)]
pub enum Node<'a> {
    /// An expression.
    Expr(&'a Expr),
    /// A pattern.
    Pat(&'a Pat),
    /// A type expression.
    Type(&'a TypeExpr),
}

/// Calls `f` on each node directly inside `item`, in source order: a
/// `let`'s pattern and right-hand side for each binding, a type
/// definition's field and constructor argument types, an `external`'s
/// type, a bare expression.
pub fn item_children<'a>(item: &'a Item, mut f: impl FnMut(Node<'a>)) {
    match item {
        Item::Let(_, bindings, _) => {
            for b in bindings {
                f(Node::Pat(&b.pat));
                f(Node::Expr(&b.expr));
            }
        }
        Item::Type(defs, _) => {
            for d in defs {
                match &d.body {
                    TypeBody::Variant(ctors) => {
                        for (_, args, _) in ctors {
                            args.iter().for_each(|t| f(Node::Type(t)));
                        }
                    }
                    TypeBody::Record(fields) => fields.iter().for_each(|x| f(Node::Type(&x.1))),
                    TypeBody::Alias(t) => f(Node::Type(t)),
                    TypeBody::Abstract => {}
                }
            }
        }
        Item::External(_, t, _, _) => f(Node::Type(t)),
        Item::Exception(_, args, _) => args.iter().for_each(|t| f(Node::Type(t))),
        Item::Open(..) => {}
        Item::Expr(e) => f(Node::Expr(e)),
    }
}

/// Calls `f` on each child of `node`, in source order: the
/// [`expr_children`], [`pat_children`] or [`type_children`] of what it
/// holds.
pub fn children<'a>(node: Node<'a>, mut f: impl FnMut(Node<'a>)) {
    match node {
        Node::Expr(e) => expr_children(e, f),
        Node::Pat(p) => pat_children(p, f),
        Node::Type(t) => type_children(t, |t| f(Node::Type(t))),
    }
}

/// Calls `f` on each node directly inside `e`, in source order:
/// sub-expressions, the patterns that bind variables (`fun` parameters,
/// `let` left-hand sides, arm patterns) and annotations' types. An arm
/// gives its pattern, its guard, then its body.
pub fn expr_children<'a>(e: &'a Expr, mut f: impl FnMut(Node<'a>)) {
    fn arms<'a>(arms: &'a [Arm], f: &mut impl FnMut(Node<'a>)) {
        for a in arms {
            f(Node::Pat(&a.pat));
            if let Some(g) = &a.guard {
                f(Node::Expr(g));
            }
            f(Node::Expr(&a.body));
        }
    }
    match e {
        Expr::Lit(..) | Expr::Var(..) => {}
        Expr::Ctor(_, arg, _) => {
            if let Some(a) = arg {
                f(Node::Expr(a));
            }
        }
        Expr::App(g, args, _) => {
            f(Node::Expr(g));
            args.iter().for_each(|a| f(Node::Expr(a)));
        }
        Expr::Fun(params, body, _) => {
            for p in params {
                f(Node::Pat(&p.pat));
                if let Some(d) = &p.default {
                    f(Node::Expr(d));
                }
            }
            f(Node::Expr(body));
        }
        Expr::Labelled(_, e, _) => f(Node::Expr(e)),
        Expr::Function(a, _) => arms(a, &mut f),
        Expr::Let(_, bindings, body, _) => {
            for b in bindings {
                f(Node::Pat(&b.pat));
                f(Node::Expr(&b.expr));
            }
            f(Node::Expr(body));
        }
        Expr::Match(scrutinee, a, _) | Expr::Try(scrutinee, a, _) => {
            f(Node::Expr(scrutinee));
            arms(a, &mut f);
        }
        Expr::Open(_, body, _, _) => f(Node::Expr(body)),
        Expr::If(c, then, otherwise, _) => {
            f(Node::Expr(c));
            f(Node::Expr(then));
            if let Some(e) = otherwise {
                f(Node::Expr(e));
            }
        }
        Expr::Seq(a, b, _) | Expr::Cons(a, b, _) | Expr::BinOp(_, a, b, _) => {
            f(Node::Expr(a));
            f(Node::Expr(b));
        }
        Expr::Tuple(es, _) | Expr::List(es, _) => es.iter().for_each(|e| f(Node::Expr(e))),
        Expr::Record(base, fields, _) => {
            if let Some(b) = base {
                f(Node::Expr(b));
            }
            fields.iter().for_each(|x| f(Node::Expr(&x.1)));
        }
        Expr::Field(e, _, _) | Expr::Assert(e, _) => f(Node::Expr(e)),
        Expr::Annot(e, t, _) => {
            f(Node::Expr(e));
            f(Node::Type(t));
        }
        Expr::Receive(mailbox, a, after, _) => {
            f(Node::Expr(mailbox));
            arms(a, &mut f);
            if let Some((t, e)) = after {
                f(Node::Expr(t));
                f(Node::Expr(e));
            }
        }
        Expr::For(l, _) => {
            f(Node::Expr(&l.from));
            f(Node::Expr(&l.to));
            f(Node::Expr(&l.body));
        }
    }
}

/// Calls `f` on each expression directly inside `e`, mutably: the
/// expressions of [`expr_children`], in the same order (patterns and
/// types are left out).
pub fn expr_children_mut<'a>(e: &'a mut Expr, mut f: impl FnMut(&'a mut Expr)) {
    fn arms<'a>(arms: &'a mut [Arm], f: &mut impl FnMut(&'a mut Expr)) {
        for a in arms {
            if let Some(g) = &mut a.guard {
                f(g);
            }
            f(&mut a.body);
        }
    }
    match e {
        Expr::Lit(..) | Expr::Var(..) => {}
        Expr::Ctor(_, arg, _) => {
            if let Some(a) = arg {
                f(a);
            }
        }
        Expr::App(g, args, _) => {
            f(g);
            args.iter_mut().for_each(f);
        }
        Expr::Fun(params, body, _) => {
            for p in params {
                if let Some(d) = &mut p.default {
                    f(d);
                }
            }
            f(body)
        }
        Expr::Labelled(_, e, _) => f(e),
        Expr::Function(a, _) => arms(a, &mut f),
        Expr::Let(_, bindings, body, _) => {
            for b in bindings {
                f(&mut b.expr);
            }
            f(body);
        }
        Expr::Match(scrutinee, a, _) | Expr::Try(scrutinee, a, _) => {
            f(scrutinee);
            arms(a, &mut f);
        }
        Expr::Open(_, body, _, _) => f(body),
        Expr::If(c, then, otherwise, _) => {
            f(c);
            f(then);
            if let Some(e) = otherwise {
                f(e);
            }
        }
        Expr::Seq(a, b, _) | Expr::Cons(a, b, _) | Expr::BinOp(_, a, b, _) => {
            f(a);
            f(b);
        }
        Expr::Tuple(es, _) | Expr::List(es, _) => es.iter_mut().for_each(f),
        Expr::Record(base, fields, _) => {
            if let Some(b) = base {
                f(b);
            }
            fields.iter_mut().for_each(|x| f(&mut x.1));
        }
        Expr::Field(e, _, _) | Expr::Assert(e, _) | Expr::Annot(e, _, _) => f(e),
        Expr::Receive(mailbox, a, after, _) => {
            f(mailbox);
            arms(a, &mut f);
            if let Some((t, e)) = after {
                f(t);
                f(e);
            }
        }
        Expr::For(l, _) => {
            f(&mut l.from);
            f(&mut l.to);
            f(&mut l.body);
        }
    }
}

/// Calls `f` on each node directly inside `p`, in source order:
/// sub-patterns and annotations' types.
pub fn pat_children<'a>(p: &'a Pat, mut f: impl FnMut(Node<'a>)) {
    match p {
        Pat::Wild(_) | Pat::Var(..) | Pat::Lit(..) => {}
        Pat::Tuple(ps, _) | Pat::List(ps, _) => ps.iter().for_each(|p| f(Node::Pat(p))),
        Pat::Ctor(_, arg, _) => {
            if let Some(a) = arg {
                f(Node::Pat(a));
            }
        }
        Pat::Cons(a, b, _) | Pat::Or(a, b, _) => {
            f(Node::Pat(a));
            f(Node::Pat(b));
        }
        Pat::Record(fields, _, _) => fields.iter().for_each(|x| f(Node::Pat(&x.1))),
        Pat::Alias(p, _, _) => f(Node::Pat(p)),
        Pat::Annot(p, t, _) => {
            f(Node::Pat(p));
            f(Node::Type(t));
        }
    }
}

/// Calls `f` on each type directly inside `t`, in source order.
pub fn type_children<'a>(t: &'a TypeExpr, mut f: impl FnMut(&'a TypeExpr)) {
    match t {
        TypeExpr::Var(..) => {}
        TypeExpr::Con(_, args, _) | TypeExpr::Tuple(args, _) => args.iter().for_each(f),
        TypeExpr::Arrow(a, b, _) => {
            f(a);
            f(b);
        }
        TypeExpr::Paren(t, _) | TypeExpr::Labelled(_, t, _) => f(t),
    }
}

/// Calls `f` on `e` and on every expression inside it, in source order,
/// each before the expressions inside it (patterns and types are not
/// entered: they hold no expressions). Iterative: any depth.
pub fn walk_expr<'a>(e: &'a Expr, mut f: impl FnMut(&'a Expr)) {
    let mut work = vec![e];
    while let Some(e) = work.pop() {
        f(e);
        let first = work.len();
        expr_children(e, |c| {
            if let Node::Expr(c) = c {
                work.push(c);
            }
        });
        // Popped last-in first: the first child is visited first.
        work[first..].reverse();
    }
}

/// [`walk_expr`] on each expression of `m`'s items, in order.
pub fn walk_module<'a>(m: &'a Module, mut f: impl FnMut(&'a Expr)) {
    for item in &m.items {
        item_children(item, |n| {
            if let Node::Expr(e) = n {
                walk_expr(e, &mut f);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{Lit, Span};

    fn parse(src: &str) -> Module {
        crate::parse::parse_module(0, src).unwrap_or_else(|e| panic!("{:?}", e.diagnostic))
    }

    /// The variables `walk_module` meets, in order.
    fn vars_walked(src: &str) -> Vec<String> {
        let m = parse(src);
        let mut out = vec![];
        walk_module(&m, |e| {
            if let Expr::Var(n, _) = e {
                out.push(n.to_string());
            }
        });
        out
    }

    #[test]
    fn walks_in_source_order_outermost_first() {
        assert_eq!(
            vars_walked("let x = f (g a) (if c then d else e)\nlet () = h"),
            ["f", "g", "a", "c", "d", "e", "h"]
        );
        assert_eq!(
            vars_walked(
                "let y = match s with Some p when p -> q | None -> (let z = r in z)\n\
                 let w = receive m with _ -> u | after t -> v"
            ),
            ["s", "p", "q", "r", "z", "m", "u", "t", "v"]
        );
    }

    #[test]
    fn children_include_patterns_and_types() {
        let m = parse("let f (x : M.t) = (fun (y : int) -> y : N.u)");
        let mut kinds = vec![];
        let mut work: Vec<Node> = vec![];
        for item in &m.items {
            item_children(item, |n| work.push(n));
        }
        work.reverse();
        while let Some(n) = work.pop() {
            kinds.push(match n {
                Node::Expr(_) => 'e',
                Node::Pat(_) => 'p',
                Node::Type(_) => 't',
            });
            let first = work.len();
            children(n, |c| work.push(c));
            work[first..].reverse();
        }
        // `f`, `fun (x : M.t) -> ((fun (y : int) -> y) : N.u)`, preorder:
        // f, fun, (x : M.t), x, M.t, (… : N.u), fun, (y : int), y, int, y, N.u.
        assert_eq!(kinds.iter().collect::<String>(), "peppteepptet");
    }

    #[test]
    fn a_million_deep_tree_is_walked_and_dropped_on_a_small_stack() {
        let unit = || Expr::Lit(Lit::Unit, Span::default());
        let mut e = unit();
        for _ in 0..1_000_000 {
            e = Expr::Seq(Box::new(e), Box::new(unit()), Span::default());
        }
        let mut n = 0;
        walk_expr(&e, |_| n += 1);
        assert_eq!(n, 2_000_001);
    }
}
