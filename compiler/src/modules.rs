//! Finding the modules a file refers to: `Foo.bar` in `main.cvn` is `bar`
//! in `foo.cvn` beside it, as in OCaml.

use crate::ast::*;

/// Every module name used qualified in `m` (`Foo.bar`, `Foo.Ctor`,
/// `Foo.t`), with the first place it is used, in order of first use.
pub fn module_refs(m: &Module) -> Vec<(String, Span)> {
    let mut out: Vec<(String, Span)> = vec![];
    let mut add = |n: &Name, s: Span| {
        if let Some(md) = &n.module {
            if !out.iter().any(|(x, _)| x == md) {
                out.push((md.clone(), s));
            }
        }
    };
    let mut exprs: Vec<&Expr> = vec![];
    let mut pats: Vec<&Pat> = vec![];
    let mut tys: Vec<&TypeExpr> = vec![];
    for item in &m.items {
        match item {
            Item::Let(_, bs, _) => {
                for b in bs {
                    pats.push(&b.pat);
                    exprs.push(&b.expr);
                }
            }
            Item::Type(defs, _) => {
                for d in defs {
                    match &d.body {
                        TypeBody::Variant(cs) => cs.iter().for_each(|c| tys.extend(c.1.iter())),
                        TypeBody::Record(fs) => fs.iter().for_each(|f| tys.push(&f.1)),
                        TypeBody::Alias(t) => tys.push(t),
                        TypeBody::Abstract => {}
                    }
                }
            }
            Item::External(_, t, _, _) => tys.push(t),
            Item::Exception(_, ts, _) => tys.extend(ts.iter()),
            Item::Open(m, s) => add(
                &Name {
                    module: Some(m.clone()),
                    name: String::new(),
                },
                *s,
            ),
            Item::Expr(e) => exprs.push(e),
        }
    }
    loop {
        if let Some(e) = exprs.pop() {
            match e {
                Expr::Lit(..) => {}
                Expr::Var(n, s) => add(n, *s),
                Expr::Open(m, b, _, s) => {
                    add(
                        &Name {
                            module: Some(m.clone()),
                            name: String::new(),
                        },
                        *s,
                    );
                    exprs.push(b);
                }
                Expr::Ctor(n, a, s) => {
                    add(n, *s);
                    exprs.extend(a.as_deref());
                }
                Expr::App(f, args, _) => {
                    exprs.push(f);
                    exprs.extend(args.iter());
                }
                Expr::Fun(ps, b, _) => {
                    pats.extend(ps.iter());
                    exprs.push(b);
                }
                Expr::Function(arms, _) => push_arms(arms, &mut exprs, &mut pats),
                Expr::Let(_, bs, b, _) => {
                    for x in bs {
                        pats.push(&x.pat);
                        exprs.push(&x.expr);
                    }
                    exprs.push(b);
                }
                Expr::Match(s, arms, _) | Expr::Try(s, arms, _) => {
                    exprs.push(s);
                    push_arms(arms, &mut exprs, &mut pats);
                }
                Expr::If(c, a, b, _) => {
                    exprs.push(c);
                    exprs.push(a);
                    exprs.extend(b.as_deref());
                }
                Expr::Seq(a, b, _) | Expr::Cons(a, b, _) | Expr::BinOp(_, a, b, _) => {
                    exprs.push(a);
                    exprs.push(b);
                }
                Expr::Tuple(es, _) | Expr::List(es, _) => exprs.extend(es.iter()),
                Expr::Record(b, fs, _) => {
                    exprs.extend(b.as_deref());
                    exprs.extend(fs.iter().map(|f| &f.1));
                }
                Expr::Field(e, _, _) | Expr::Assert(e, _) => exprs.push(e),
                Expr::Annot(e, t, _) => {
                    exprs.push(e);
                    tys.push(t);
                }
                Expr::Receive(m, arms, after, _) => {
                    exprs.push(m);
                    push_arms(arms, &mut exprs, &mut pats);
                    if let Some((t, b)) = after {
                        exprs.push(t);
                        exprs.push(b);
                    }
                }
                Expr::For(l, _) => {
                    exprs.push(&l.from);
                    exprs.push(&l.to);
                    exprs.push(&l.body);
                }
            }
        } else if let Some(p) = pats.pop() {
            match p {
                Pat::Wild(_) | Pat::Var(..) | Pat::Lit(..) => {}
                Pat::Tuple(ps, _) | Pat::List(ps, _) => pats.extend(ps.iter()),
                Pat::Ctor(n, a, s) => {
                    add(n, *s);
                    pats.extend(a.as_deref());
                }
                Pat::Cons(a, b, _) | Pat::Or(a, b, _) => {
                    pats.push(a);
                    pats.push(b);
                }
                Pat::Record(fs, _, _) => pats.extend(fs.iter().map(|f| &f.1)),
                Pat::Alias(p, _, _) => pats.push(p),
                Pat::Annot(p, t, _) => {
                    pats.push(p);
                    tys.push(t);
                }
            }
        } else if let Some(t) = tys.pop() {
            match t {
                TypeExpr::Var(..) => {}
                TypeExpr::Con(n, args, s) => {
                    add(n, *s);
                    tys.extend(args.iter());
                }
                TypeExpr::Arrow(a, b, _) => {
                    tys.push(a);
                    tys.push(b);
                }
                TypeExpr::Tuple(xs, _) => tys.extend(xs.iter()),
                TypeExpr::Paren(t, _) => tys.push(t),
            }
        } else {
            break;
        }
    }
    out.sort_by_key(|(_, s)| s.start);
    out
}

fn push_arms<'a>(arms: &'a [Arm], exprs: &mut Vec<&'a Expr>, pats: &mut Vec<&'a Pat>) {
    for a in arms {
        pats.push(&a.pat);
        exprs.extend(a.guard.as_ref());
        exprs.push(&a.body);
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
