//! Exhaustiveness and redundancy of pattern matching, after Maranget 2007,
//! "Warnings for pattern matching" (JFP 17(3)): the usefulness predicate
//! `U(P, q)` over pattern matrices, and its witness-producing variant that
//! names a value no row matches.

use crate::check::Checker;
use crate::typed::{CtorRef, TPat};
use crate::types::env::TypeKind;
use crate::types::{builtin, TypeId};

/// A pattern that no arm matches, printed as source text.
#[derive(Debug, Clone, PartialEq)]
enum Witness {
    Wild,
    Lit(String),
    Ctor(TypeId, u32, Vec<Witness>),
    Tuple(Vec<Witness>, Option<TypeId>),
}

/// The constructors of a variant type, in declaration order: (name, arity).
fn signature(c: &Checker, ty: TypeId) -> Vec<(String, usize)> {
    match ty {
        builtin::BOOL => vec![("false".into(), 0), ("true".into(), 0)],
        builtin::LIST => vec![("[]".into(), 0), ("::".into(), 2)],
        _ => match &c.decls[ty as usize].kind {
            TypeKind::Variant(cs) => cs
                .iter()
                .map(|&ci| (c.ctors[ci].name.clone(), c.ctors[ci].args.len()))
                .collect(),
            _ => vec![],
        },
    }
}

/// Strips variables and aliases: what the row tests at its head.
fn norm(p: &TPat) -> &TPat {
    match p {
        TPat::Alias(q, _) => norm(q),
        p => p,
    }
}

fn is_wild(p: &TPat) -> bool {
    matches!(norm(p), TPat::Wild | TPat::Var(_))
}

/// Splits rows whose head is an or-pattern into one row per alternative.
fn expand(rows: &[Vec<TPat>]) -> Vec<Vec<TPat>> {
    let mut out = vec![];
    let mut stack: Vec<Vec<TPat>> = rows.iter().rev().cloned().collect();
    while let Some(row) = stack.pop() {
        let alts = match row.first().map(norm) {
            Some(TPat::Or(a, b)) => Some(((**a).clone(), (**b).clone())),
            _ => None,
        };
        match alts {
            Some((a, b)) => {
                let mut rb = row.clone();
                rb[0] = b;
                let mut ra = row;
                ra[0] = a;
                stack.push(rb);
                stack.push(ra);
            }
            None => out.push(row),
        }
    }
    out
}

/// What a column's head constructor is.
#[derive(Debug, Clone, PartialEq)]
enum Head {
    Ctor(TypeId, u32, usize),
    Tuple(usize, Option<TypeId>),
    Lit(String),
}

fn head_of(p: &TPat) -> Option<Head> {
    Some(match norm(p) {
        TPat::Ctor(CtorRef { ty, index, .. }, args) => Head::Ctor(*ty, *index, args.len()),
        TPat::Tuple(fs, rec) => Head::Tuple(fs.len(), *rec),
        TPat::Imm(n) => Head::Lit(n.to_string()),
        TPat::Char(c) => Head::Lit(char_lit(*c)),
        TPat::Str(s) => Head::Lit(format!(
            "\"{}\"",
            String::from_utf8_lossy(&caravan_stdlib::builtins::escape_bytes(s))
        )),
        TPat::Float(f) => Head::Lit(format!("{f:?}")),
        _ => return None,
    })
}

fn arity(h: &Head) -> usize {
    match h {
        Head::Ctor(_, _, a) | Head::Tuple(a, _) => *a,
        Head::Lit(_) => 0,
    }
}

/// `S(c, P)`: rows whose head matches constructor `h`, with the head
/// replaced by its arguments.
fn specialize(rows: &[Vec<TPat>], h: &Head) -> Vec<Vec<TPat>> {
    let n = arity(h);
    let mut out = vec![];
    for row in expand(rows) {
        let head = norm(&row[0]);
        let mut new: Vec<TPat> = match head {
            TPat::Wild | TPat::Var(_) => vec![TPat::Wild; n],
            p => {
                if head_of(p).as_ref() != Some(h) {
                    continue;
                }
                match p {
                    TPat::Ctor(_, args) | TPat::Tuple(args, _) => args.clone(),
                    _ => vec![],
                }
            }
        };
        new.extend_from_slice(&row[1..]);
        out.push(new);
    }
    out
}

/// `D(P)`: rows with a wildcard head, head removed.
fn default(rows: &[Vec<TPat>]) -> Vec<Vec<TPat>> {
    expand(rows)
        .into_iter()
        .filter(|r| is_wild(&r[0]))
        .map(|r| r[1..].to_vec())
        .collect()
}

/// The distinct head constructors of the first column.
fn heads(rows: &[Vec<TPat>]) -> Vec<Head> {
    let mut hs: Vec<Head> = vec![];
    for row in expand(rows) {
        if let Some(h) = head_of(&row[0]) {
            if !hs.contains(&h) {
                hs.push(h);
            }
        }
    }
    hs
}

/// The complete signature the heads belong to, if they cover it.
fn complete(c: &Checker, hs: &[Head]) -> Option<Vec<Head>> {
    match hs.first()? {
        Head::Tuple(n, r) => Some(vec![Head::Tuple(*n, *r)]),
        Head::Lit(_) => None,
        Head::Ctor(ty, _, _) => {
            let sig = signature(c, *ty);
            let all: Vec<Head> = sig
                .iter()
                .enumerate()
                .map(|(i, (_, a))| Head::Ctor(*ty, i as u32, *a))
                .collect();
            if all.iter().all(|h| hs.contains(h)) {
                Some(all)
            } else {
                None
            }
        }
    }
}

/// `U(P, q)`: whether some value matches `q` and no row of `P`.
fn useful(c: &Checker, rows: &[Vec<TPat>], q: &[TPat]) -> bool {
    if q.is_empty() {
        return rows.is_empty();
    }
    match norm(&q[0]) {
        TPat::Or(a, b) => {
            let mut qa = q.to_vec();
            qa[0] = (**a).clone();
            let mut qb = q.to_vec();
            qb[0] = (**b).clone();
            useful(c, rows, &qa) || useful(c, rows, &qb)
        }
        TPat::Wild | TPat::Var(_) => {
            let hs = heads(rows);
            match complete(c, &hs) {
                Some(all) => all.iter().any(|h| {
                    let mut sq = vec![TPat::Wild; arity(h)];
                    sq.extend_from_slice(&q[1..]);
                    useful(c, &specialize(rows, h), &sq)
                }),
                None => useful(c, &default(rows), &q[1..]),
            }
        }
        p => {
            let h = head_of(p).expect("constructor pattern");
            let sq = &specialize(&[q.to_vec()], &h)[0];
            useful(c, &specialize(rows, &h), sq)
        }
    }
}

/// A vector of `n` witnesses matched by no row, if there is one.
fn missing(c: &Checker, rows: &[Vec<TPat>], n: usize) -> Option<Vec<Witness>> {
    if n == 0 {
        return if rows.is_empty() { Some(vec![]) } else { None };
    }
    let hs = heads(rows);
    if let Some(all) = complete(c, &hs) {
        for h in &all {
            let a = arity(h);
            if let Some(mut w) = missing(c, &specialize(rows, h), a + n - 1) {
                let rest = w.split_off(a);
                let head = match h {
                    Head::Ctor(ty, i, _) => Witness::Ctor(*ty, *i, w),
                    Head::Tuple(_, r) => Witness::Tuple(w, *r),
                    Head::Lit(_) => Witness::Wild,
                };
                let mut out = vec![head];
                out.extend(rest);
                return Some(out);
            }
        }
        return None;
    }
    let mut w = missing(c, &default(rows), n - 1)?;
    // A constructor the column lacks, when the type is finite.
    let head = match hs.first() {
        Some(Head::Ctor(ty, _, _)) => {
            let sig = signature(c, *ty);
            sig.iter()
                .enumerate()
                .find(|(i, (_, a))| !hs.contains(&Head::Ctor(*ty, *i as u32, *a)))
                .map(|(i, (_, a))| Witness::Ctor(*ty, i as u32, vec![Witness::Wild; *a]))
                .unwrap_or(Witness::Wild)
        }
        Some(Head::Lit(_)) => {
            // A literal of the same kind that no row names.
            let used: Vec<String> = hs
                .iter()
                .filter_map(|h| match h {
                    Head::Lit(s) => Some(s.clone()),
                    _ => None,
                })
                .collect();
            let first = &used[0];
            let candidates: Vec<String> = if first.starts_with('\'') {
                (b'a'..=b'z').chain(b'0'..=b'9').map(char_lit).collect()
            } else if first.starts_with('"') {
                ["\"\"", "\"a\"", "\"b\"", "\"c\""]
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            } else if first.contains('.') || first.contains("inf") || first.contains("NaN") {
                ["0.0", "1.0", "2.0", "3.0"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            } else {
                (0..=used.len() as i64 + 1).map(|n| n.to_string()).collect()
            };
            candidates
                .into_iter()
                .find(|c| !used.contains(c))
                .map_or(Witness::Wild, Witness::Lit)
        }
        _ => Witness::Wild,
    };
    w.insert(0, head);
    Some(w)
}

fn char_lit(c: u8) -> String {
    match c {
        b'\'' => "'\\''".into(),
        b'\\' => "'\\\\'".into(),
        b'\n' => "'\\n'".into(),
        b'\t' => "'\\t'".into(),
        32..=126 => format!("'{}'", c as char),
        _ => format!("'\\{c:03}'"),
    }
}

fn show(c: &Checker, w: &Witness, out: &mut String, arg: bool) {
    match w {
        Witness::Wild => out.push('_'),
        Witness::Lit(s) => {
            let neg = s.starts_with('-');
            if neg && arg {
                out.push('(');
            }
            out.push_str(s);
            if neg && arg {
                out.push(')');
            }
        }
        Witness::Tuple(ws, None) => {
            if ws.is_empty() {
                out.push_str("()");
                return;
            }
            out.push('(');
            for (i, x) in ws.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                show(c, x, out, false);
            }
            out.push(')');
        }
        Witness::Tuple(ws, Some(rec)) => {
            let names: Vec<String> = match &c.decls[*rec as usize].kind {
                TypeKind::Record(fs) => fs.iter().map(|f| f.0.clone()).collect(),
                _ => vec![],
            };
            out.push_str("{ ");
            let mut first = true;
            for (x, name) in ws.iter().zip(&names) {
                if matches!(x, Witness::Wild) {
                    continue;
                }
                if !first {
                    out.push_str("; ");
                }
                first = false;
                out.push_str(name);
                out.push_str(" = ");
                show(c, x, out, false);
            }
            if first {
                out.push('_');
            } else if ws.iter().any(|x| matches!(x, Witness::Wild)) {
                out.push_str("; _");
            }
            out.push_str(" }");
        }
        Witness::Ctor(ty, i, args) => {
            let sig = signature(c, *ty);
            let name = &sig[*i as usize].0;
            if *ty == builtin::LIST && *i == 1 {
                // A list whose spine is fully known prints as `[a; b]`.
                let mut items = vec![];
                let mut cur = w;
                let closed = loop {
                    match cur {
                        Witness::Ctor(t, 1, a) if *t == builtin::LIST => {
                            items.push(&a[0]);
                            cur = &a[1];
                        }
                        Witness::Ctor(t, 0, _) if *t == builtin::LIST => break true,
                        _ => break false,
                    }
                };
                if closed {
                    out.push('[');
                    for (k, it) in items.iter().enumerate() {
                        if k > 0 {
                            out.push_str("; ");
                        }
                        show(c, it, out, false);
                    }
                    out.push(']');
                    return;
                }
                if arg {
                    out.push('(');
                }
                show(c, &args[0], out, true);
                out.push_str(" :: ");
                show(c, &args[1], out, false);
                if arg {
                    out.push(')');
                }
                return;
            }
            if args.is_empty() {
                out.push_str(name);
                return;
            }
            if arg {
                out.push('(');
            }
            out.push_str(name);
            out.push(' ');
            if args.len() == 1 {
                show(c, &args[0], out, true);
            } else {
                show(c, &Witness::Tuple(args.clone(), None), out, false);
            }
            if arg {
                out.push(')');
            }
        }
    }
}

/// The result of checking one `match`.
#[derive(Debug, Default)]
pub struct MatchReport {
    /// A value no arm matches, as source text (`Node (_, _, Leaf)`).
    pub missing: Option<String>,
    /// Arms (by index) that can never be selected.
    pub redundant: Vec<usize>,
}

/// Checks the arms of a `match` (`guarded[i]`: arm `i` has a `when`
/// guard, so it does not count as covering anything). With `exhaustive`
/// false (for `receive`), only redundancy is checked.
pub fn check_arms(c: &Checker, pats: &[TPat], guarded: &[bool], exhaustive: bool) -> MatchReport {
    let mut report = MatchReport::default();
    let mut rows: Vec<Vec<TPat>> = vec![];
    for (i, p) in pats.iter().enumerate() {
        let q = vec![p.clone()];
        if !useful(c, &rows, &q) {
            report.redundant.push(i);
        }
        if !guarded[i] {
            rows.push(q);
        }
    }
    if exhaustive {
        if let Some(w) = missing(c, &rows, 1) {
            let mut s = String::new();
            show(c, &w[0], &mut s, false);
            report.missing = Some(s);
        }
    }
    report
}
