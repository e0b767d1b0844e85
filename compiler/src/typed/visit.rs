//! The children of each kind of typed expression, enumerated in one place,
//! with the variables each child has in scope that its parent binds.
//!
//! Every generic walk over a [`TExpr`] (free variables, substitution of
//! locals, dropping) asks these functions for an expression's children
//! instead of matching on it, so a new kind of expression is taught to all
//! of them here, binders included; the matches have no catch-all arm, so
//! forgetting one is a compile error in this file.
//!
//! The functions only enumerate one level: the walks keep their own work
//! lists, so they need no stack however deep the tree. Children come in
//! source order (the order in which they are evaluated).

use super::{TArm, TExpr, TLambda, TPat, VarId};

/// The variables an expression binds around one of its children (besides
/// those its own scope has).
#[derive(Debug, Clone, Copy)]
pub enum Binds<'a> {
    /// None: the child sees only the variables its parent sees.
    Nothing,
    /// `let x = e in child`.
    Var(VarId),
    /// A function's parameters: `fun params -> child`.
    Params(&'a [VarId]),
    /// A `let rec` group's names, seen by each of its functions and by its
    /// body, and (for a function of the group) the function's parameters:
    /// `let rec f = fun params -> child and … in …`.
    Rec(&'a [(VarId, TLambda)], &'a [VarId]),
    /// An arm's pattern, around its guard and its body.
    Pat(&'a TPat),
}

impl Binds<'_> {
    /// Pushes the variables bound onto `out`, in order.
    pub fn vars(self, out: &mut Vec<VarId>) {
        match self {
            Binds::Nothing => {}
            Binds::Var(x) => out.push(x),
            Binds::Params(ps) => out.extend_from_slice(ps),
            Binds::Rec(group, ps) => {
                out.extend(group.iter().map(|(x, _)| *x));
                out.extend_from_slice(ps);
            }
            Binds::Pat(p) => p.vars(out),
        }
    }
}

/// Calls `f` on each expression directly inside `e`, in evaluation order,
/// with what `e` binds around it. An arm gives its guard, then its body; a
/// `let rec` its functions' bodies, then its body.
pub fn for_each_child<'a>(e: &'a TExpr, mut f: impl FnMut(&'a TExpr, Binds<'a>)) {
    fn arms<'a>(arms: &'a [TArm], f: &mut impl FnMut(&'a TExpr, Binds<'a>)) {
        for a in arms {
            if let Some(g) = &a.guard {
                f(g, Binds::Pat(&a.pat));
            }
            f(&a.body, Binds::Pat(&a.pat));
        }
    }
    match e {
        TExpr::Imm(_)
        | TExpr::Float(_)
        | TExpr::Str(_)
        | TExpr::Local(_)
        | TExpr::Global(_)
        | TExpr::Extern(_) => {}
        TExpr::App(g, args, _, _) => {
            f(g, Binds::Nothing);
            args.iter().for_each(|a| f(a, Binds::Nothing));
        }
        TExpr::CallExtern(_, args, _) | TExpr::Prim(_, args, _, _) | TExpr::Block(_, args) => {
            args.iter().for_each(|a| f(a, Binds::Nothing))
        }
        TExpr::Lambda(l) => f(&l.body, Binds::Params(&l.params)),
        TExpr::Let(x, a, b) => {
            f(a, Binds::Nothing);
            f(b, Binds::Var(*x));
        }
        TExpr::LetRec(group, body) => {
            for (_, l) in group {
                f(&l.body, Binds::Rec(group, &l.params));
            }
            f(body, Binds::Rec(group, &[]));
        }
        TExpr::Match(scrutinee, a, _) => {
            f(scrutinee, Binds::Nothing);
            arms(a, &mut f);
        }
        TExpr::Try {
            body,
            ok,
            exn,
            handler,
        } => {
            f(body, Binds::Nothing);
            if let Some((x, k)) = ok {
                f(k, Binds::Var(*x));
            }
            f(handler, Binds::Var(*exn));
        }
        TExpr::Field(a, _) | TExpr::Assert(a, _) => f(a, Binds::Nothing),
        TExpr::Update(a, _, fields) => {
            f(a, Binds::Nothing);
            fields.iter().for_each(|(_, x)| f(x, Binds::Nothing));
        }
        TExpr::If(a, b, c) => {
            f(a, Binds::Nothing);
            f(b, Binds::Nothing);
            f(c, Binds::Nothing);
        }
        TExpr::Seq(a, b) | TExpr::And(a, b) | TExpr::Or(a, b) => {
            f(a, Binds::Nothing);
            f(b, Binds::Nothing);
        }
        TExpr::Receive {
            mailbox,
            arms: a,
            after,
            ..
        } => {
            f(mailbox, Binds::Nothing);
            arms(a, &mut f);
            if let Some((t, b)) = after {
                f(t, Binds::Nothing);
                f(b, Binds::Nothing);
            }
        }
    }
}

/// Calls `f` on each expression directly inside `e`, mutably, in the order
/// of [`for_each_child`] (what is bound around each is not given).
pub fn for_each_child_mut<'a>(e: &'a mut TExpr, mut f: impl FnMut(&'a mut TExpr)) {
    fn arms<'a>(arms: &'a mut [TArm], f: &mut impl FnMut(&'a mut TExpr)) {
        for a in arms {
            if let Some(g) = &mut a.guard {
                f(g);
            }
            f(&mut a.body);
        }
    }
    match e {
        TExpr::Imm(_)
        | TExpr::Float(_)
        | TExpr::Str(_)
        | TExpr::Local(_)
        | TExpr::Global(_)
        | TExpr::Extern(_) => {}
        TExpr::App(g, args, _, _) => {
            f(g);
            args.iter_mut().for_each(f);
        }
        TExpr::CallExtern(_, args, _) | TExpr::Prim(_, args, _, _) | TExpr::Block(_, args) => {
            args.iter_mut().for_each(f)
        }
        TExpr::Lambda(l) => f(&mut l.body),
        TExpr::Let(_, a, b) | TExpr::Seq(a, b) | TExpr::And(a, b) | TExpr::Or(a, b) => {
            f(a);
            f(b);
        }
        TExpr::LetRec(group, body) => {
            for (_, l) in group {
                f(&mut l.body);
            }
            f(body);
        }
        TExpr::Match(scrutinee, a, _) => {
            f(scrutinee);
            arms(a, &mut f);
        }
        TExpr::Try {
            body, ok, handler, ..
        } => {
            f(body);
            if let Some((_, k)) = ok {
                f(k);
            }
            f(handler);
        }
        TExpr::Field(a, _) | TExpr::Assert(a, _) => f(a),
        TExpr::Update(a, _, fields) => {
            f(a);
            fields.iter_mut().for_each(|(_, x)| f(x));
        }
        TExpr::If(a, b, c) => {
            f(a);
            f(b);
            f(c);
        }
        TExpr::Receive {
            mailbox,
            arms: a,
            after,
            ..
        } => {
            f(mailbox);
            arms(a, &mut f);
            if let Some((t, b)) = after {
                f(t);
                f(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::typed::Loc;

    fn lambda(params: Vec<VarId>, body: TExpr) -> TLambda {
        TLambda {
            params,
            param_tys: vec![],
            body: Box::new(body),
            name: String::new(),
            span: Default::default(),
            file: 0,
        }
    }

    /// Each child of `e`, as the variable it is (or `None`), with the
    /// variables bound around it.
    fn scoped_children(e: &TExpr) -> Vec<(Option<VarId>, Vec<VarId>)> {
        let mut out = vec![];
        for_each_child(e, |c, binds| {
            let mut vs = vec![];
            binds.vars(&mut vs);
            let var = match c {
                TExpr::Local(v) => Some(*v),
                _ => None,
            };
            out.push((var, vs));
        });
        out
    }

    #[test]
    fn children_come_with_their_binders() {
        // let x = 1 in x
        let e = TExpr::Let(1, Box::new(TExpr::Imm(1)), Box::new(TExpr::Local(1)));
        assert_eq!(scoped_children(&e), [(None, vec![]), (Some(1), vec![1])]);
        // let rec f a = g and g b = f in f
        let e = TExpr::LetRec(
            vec![
                (1, lambda(vec![3], TExpr::Local(2))),
                (2, lambda(vec![4], TExpr::Local(1))),
            ],
            Box::new(TExpr::Local(1)),
        );
        assert_eq!(
            scoped_children(&e),
            [
                (Some(2), vec![1, 2, 3]),
                (Some(1), vec![1, 2, 4]),
                (Some(1), vec![1, 2])
            ]
        );
        // match s with (y as z) when y -> z
        let loc = Loc {
            file: 0,
            span: Default::default(),
        };
        let arm = TArm {
            pat: TPat::Alias(Box::new(TPat::Var(5)), 6),
            guard: Some(TExpr::Local(5)),
            body: TExpr::Local(6),
        };
        let e = TExpr::Match(Box::new(TExpr::Local(7)), vec![arm], loc);
        assert_eq!(
            scoped_children(&e),
            [
                (Some(7), vec![]),
                (Some(5), vec![5, 6]),
                (Some(6), vec![5, 6])
            ]
        );
    }

    #[test]
    fn mutable_children_are_the_same_in_the_same_order() {
        let mut e = TExpr::If(
            Box::new(TExpr::Local(1)),
            Box::new(TExpr::Lambda(lambda(vec![9], TExpr::Local(2)))),
            Box::new(TExpr::Local(3)),
        );
        let mut seen = vec![];
        for_each_child(&e, |c, _| seen.push(format!("{c:?}")));
        let mut seen_mut = vec![];
        for_each_child_mut(&mut e, |c| seen_mut.push(format!("{c:?}")));
        assert_eq!(seen, seen_mut);
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn a_million_deep_tree_is_walked_and_dropped_on_a_small_stack() {
        let mut e = TExpr::Imm(0);
        for _ in 0..1_000_000 {
            e = TExpr::Seq(Box::new(e), Box::new(TExpr::Local(1)));
        }
        let (mut n, mut work) = (0, vec![&e]);
        while let Some(e) = work.pop() {
            n += 1;
            for_each_child(e, |c, _| work.push(c));
        }
        assert_eq!(n, 2_000_001);
    }
}
