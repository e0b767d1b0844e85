//! Exhaustiveness and redundancy of pattern matching, after Maranget 2007,
//! "Warnings for pattern matching" (JFP 17(3)): the usefulness predicate
//! `U(P, q)` over pattern matrices, and its witness-producing variant that
//! names a value no row matches.

use crate::check::Checker;
use crate::typed::{CtorRef, TPat};
use crate::types::env::TypeKind;
use crate::types::{builtin, TypeId};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// A pattern that no arm matches, printed as source text.
#[derive(Debug, Clone, PartialEq)]
enum Witness {
    Wild,
    Lit(String),
    Ctor(TypeId, u32, Vec<Witness>),
    Tuple(Vec<Witness>, Option<TypeId>),
}

/// Witnesses are as deep as the patterns they answer (a missing
/// `S (S (... Z))` 100,000 deep): dropped with a work list, not
/// recursively.
impl Drop for Witness {
    fn drop(&mut self) {
        let mut stack: Vec<Witness> = match self {
            Witness::Ctor(_, _, ws) | Witness::Tuple(ws, _) => std::mem::take(ws),
            _ => return,
        };
        while let Some(mut w) = stack.pop() {
            if let Witness::Ctor(_, _, ws) | Witness::Tuple(ws, _) = &mut w {
                stack.append(ws);
            }
        }
    }
}

/// The arities of a variant type's constructors, in declaration order.
fn signature(c: &Checker, ty: TypeId) -> Vec<usize> {
    match ty {
        builtin::BOOL => vec![0, 0],
        builtin::LIST => vec![0, 2],
        _ => match &c.decls[ty as usize].kind {
            TypeKind::Variant(cs) => cs.iter().map(|&ci| c.ctors[ci].args.len()).collect(),
            _ => vec![],
        },
    }
}

/// The name of constructor `i` of `ty`.
fn ctor_name(c: &Checker, ty: TypeId, i: u32) -> &str {
    match (ty, i) {
        (builtin::BOOL, 0) => "false",
        (builtin::BOOL, _) => "true",
        (builtin::LIST, 0) => "[]",
        (builtin::LIST, _) => "::",
        // An exception constructor's index is its place among all
        // constructors.
        (builtin::EXN, _) => c.ctors.get(i as usize).map_or("_", |ci| ci.name.as_str()),
        _ => match &c.decls[ty as usize].kind {
            TypeKind::Variant(cs) => cs
                .get(i as usize)
                .map_or("_", |&ci| c.ctors[ci].name.as_str()),
            _ => "_",
        },
    }
}

/// A wildcard to point at where a row needs one (rows borrow their
/// patterns; nothing is cloned).
static WILD: TPat = TPat::Wild;

/// Strips aliases: what the pattern tests.
fn norm(mut p: &TPat) -> &TPat {
    while let TPat::Alias(q, _) = p {
        p = q;
    }
    p
}

/// What a column's head constructor is. Literals are compared by value
/// (hashing them is what keeps a match of 20,000 literal arms linear).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Head<'p> {
    Ctor(TypeId, u32, usize),
    Tuple(usize, Option<TypeId>),
    Int(i64),
    Char(u8),
    Str(&'p [u8]),
    /// The bits of the float (`0.0` and `-0.0` differ, as their source text
    /// does).
    Float(u64),
}

impl Head<'_> {
    fn arity(&self) -> usize {
        match self {
            Head::Ctor(_, _, a) | Head::Tuple(a, _) => *a,
            _ => 0,
        }
    }

    /// A literal as source text.
    fn lit_text(&self) -> Option<String> {
        Some(match self {
            Head::Int(n) => n.to_string(),
            Head::Char(c) => char_lit(*c),
            Head::Str(s) => format!(
                "\"{}\"",
                String::from_utf8_lossy(&caravan_stdlib::builtins::escape_bytes(s))
            ),
            Head::Float(f) => format!("{:?}", f64::from_bits(*f)),
            _ => return None,
        })
    }
}

/// The head of a pattern, `None` for a wildcard or variable. Or-patterns
/// are expanded before this is asked.
fn head_of(p: &TPat) -> Option<Head<'_>> {
    Some(match norm(p) {
        TPat::Ctor(CtorRef { ty, index, .. }, args) => Head::Ctor(*ty, *index, args.len()),
        TPat::Tuple(fs, rec) => Head::Tuple(fs.len(), *rec),
        TPat::Imm(n) => Head::Int(*n),
        TPat::Char(c) => Head::Char(*c),
        TPat::Str(s) => Head::Str(s),
        TPat::Float(f) => Head::Float(f.to_bits()),
        _ => return None,
    })
}

/// The patterns a row still has to test, first column first: a
/// persistent list, so that specialising a row (replacing its head by the
/// head's arguments) costs the arity, not the row's length; rows of deeply
/// nested tuples have as many columns as the nesting is deep.
struct Cols<'p> {
    pat: &'p TPat,
    rest: Option<Rc<Cols<'p>>>,
    /// Whether this pattern and all after it are wildcards (such a row
    /// matches everything: the matrix needs no more splitting, which
    /// would otherwise walk every remaining column of it, quadratic in
    /// nested patterns).
    wild: bool,
}

fn cons<'p>(pat: &'p TPat, rest: Option<Rc<Cols<'p>>>) -> Option<Rc<Cols<'p>>> {
    let wild = is_wild(pat) && rest.as_ref().is_none_or(|r| r.wild);
    Some(Rc::new(Cols { pat, rest, wild }))
}

fn is_wild(p: &TPat) -> bool {
    matches!(norm(p), TPat::Wild | TPat::Var(_))
}

/// Lists as long as a pattern is deep are dropped with a loop.
impl Drop for Cols<'_> {
    fn drop(&mut self) {
        let mut next = self.rest.take();
        while let Some(rc) = next {
            match Rc::try_unwrap(rc) {
                Ok(mut c) => next = c.rest.take(),
                Err(_) => break,
            }
        }
    }
}

/// One row of a pattern matrix: the patterns still to test (borrowed from
/// the arms), the arm it comes from and whether that arm is guarded.
#[derive(Clone)]
struct Row<'p> {
    cols: Option<Rc<Cols<'p>>>,
    arm: usize,
    guarded: bool,
}

impl<'p> Row<'p> {
    /// The first column's pattern (rows given to it are not empty).
    fn head(&self) -> &'p TPat {
        self.cols.as_ref().expect("a column").pat
    }

    /// Whether every pattern left is a wildcard (or none is left).
    fn all_wild(&self) -> bool {
        self.cols.as_ref().is_none_or(|c| c.wild)
    }

    /// The row with its head replaced by `pats`.
    fn replace_head(&self, pats: impl DoubleEndedIterator<Item = &'p TPat>) -> Row<'p> {
        let mut cols = self.cols.as_ref().and_then(|c| c.rest.clone());
        for pat in pats.rev() {
            cols = cons(pat, cols);
        }
        Row {
            cols,
            arm: self.arm,
            guarded: self.guarded,
        }
    }
}

/// Splits rows whose head is an or-pattern into one row per alternative,
/// in order.
fn expand<'p>(rows: Vec<Row<'p>>) -> Vec<Row<'p>> {
    if !rows.iter().any(|r| matches!(norm(r.head()), TPat::Or(..))) {
        return rows;
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut stack: Vec<Row<'p>> = vec![];
    for row in rows {
        stack.push(row);
        while let Some(row) = stack.pop() {
            match norm(row.head()) {
                TPat::Or(a, b) => {
                    stack.push(row.replace_head(std::iter::once(&**b)));
                    stack.push(row.replace_head(std::iter::once(&**a)));
                }
                _ => out.push(row),
            }
        }
    }
    out
}

/// The first column of a matrix, grouped: its distinct heads in order of
/// first appearance, the rows under each head, and the rows with a
/// wildcard head (row indices, ascending). One pass with a hash map, so
/// that a column of n distinct constructors or literals costs O(n), not
/// O(n²).
struct Split<'p> {
    heads: Vec<Head<'p>>,
    rows_of: Vec<Vec<usize>>,
    wild: Vec<usize>,
}

fn split<'p>(rows: &[Row<'p>]) -> Split<'p> {
    let mut index: HashMap<Head<'p>, usize> = HashMap::new();
    let mut sp = Split {
        heads: vec![],
        rows_of: vec![],
        wild: vec![],
    };
    for (i, r) in rows.iter().enumerate() {
        match head_of(r.head()) {
            None => sp.wild.push(i),
            Some(h) => {
                let k = *index.entry(h).or_insert_with(|| {
                    sp.heads.push(h);
                    sp.rows_of.push(vec![]);
                    sp.heads.len() - 1
                });
                sp.rows_of[k].push(i);
            }
        }
    }
    sp
}

/// The complete signature the heads belong to, if they cover it.
fn complete<'p>(c: &Checker, hs: &[Head<'p>]) -> Option<Vec<Head<'p>>> {
    match hs.first()? {
        Head::Tuple(n, r) => Some(vec![Head::Tuple(*n, *r)]),
        // `exn` is open: no list of constructors is ever complete.
        Head::Ctor(builtin::EXN, _, _) => None,
        Head::Ctor(ty, _, _) => {
            let sig = signature(c, *ty);
            let mut present = vec![false; sig.len()];
            for h in hs {
                if let Head::Ctor(t, i, _) = h {
                    if t == ty {
                        if let Some(p) = present.get_mut(*i as usize) {
                            *p = true;
                        }
                    }
                }
            }
            present.iter().all(|&p| p).then(|| {
                sig.iter()
                    .enumerate()
                    .map(|(i, &a)| Head::Ctor(*ty, i as u32, a))
                    .collect()
            })
        }
        _ => None,
    }
}

/// `S(c, P)` restricted to the rows `which` (ascending): each row with its
/// head replaced by the head's arguments (wildcards for a wildcard head).
fn specialize<'p>(rows: &[Row<'p>], which: &[usize], arity: usize) -> Vec<Row<'p>> {
    which
        .iter()
        .map(|&i| {
            let r = &rows[i];
            match norm(r.head()) {
                TPat::Ctor(_, args) | TPat::Tuple(args, _) => r.replace_head(args.iter()),
                TPat::Wild | TPat::Var(_) => r.replace_head(std::iter::repeat_n(&WILD, arity)),
                _ => r.replace_head(std::iter::empty()),
            }
        })
        .collect()
}

/// Merges two ascending index lists.
fn merged(a: &[usize], b: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if j == b.len() || (i < a.len() && a[i] < b[j]) {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out
}

/// Marks `useful[arm]` for every arm that is the first to match some
/// value (a guarded arm does not stop the arms after it). One traversal
/// of the whole matrix, as rustc's `compute_exhaustiveness_and_usefulness`,
/// instead of Maranget's `U(P, q)` per arm against all the arms before it
/// (quadratic in the number of arms). Each branch of the traversal is the
/// set of values that start with one constructor, or (when the column
/// lacks some) with any constructor the column does not name.
fn mark_useful(c: &Checker, rows: Vec<Row<'_>>, useful: &mut [bool]) {
    crate::stack::deep(|| {
        if rows.iter().all(Row::all_wild) {
            // Every row matches every value left: the first ones up to an
            // unguarded one are useful.
            for r in &rows {
                useful[r.arm] = true;
                if !r.guarded {
                    break;
                }
            }
            return;
        }
        let rows = expand(rows);
        let sp = split(&rows);
        for (h, which) in sp.heads.iter().zip(&sp.rows_of) {
            let sub = specialize(&rows, &merged(which, &sp.wild), h.arity());
            mark_useful(c, sub, useful);
        }
        if complete(c, &sp.heads).is_none() && !sp.wild.is_empty() {
            mark_useful(c, specialize(&rows, &sp.wild, 0), useful);
        }
    })
}

/// A vector of `n` witnesses matched by no row, if there is one
/// (Maranget's witness-producing `I(P, n)`; guarded rows must not be
/// given), LAST COLUMN FIRST: replacing the first `a` witnesses by their
/// constructor is then O(a), not O(n). The witness is the first in
/// declaration order, as before rows were grouped by head.
fn missing(c: &Checker, rows: Vec<Row<'_>>, n: usize) -> Option<Vec<Witness>> {
    crate::stack::deep(|| {
        if rows.is_empty() {
            return Some(vec![Witness::Wild; n]);
        }
        if n == 0 || rows.iter().any(Row::all_wild) {
            return None;
        }
        let rows = expand(rows);
        let sp = split(&rows);
        if let Some(all) = complete(c, &sp.heads) {
            let index: HashMap<Head, usize> =
                sp.heads.iter().enumerate().map(|(i, h)| (*h, i)).collect();
            for h in &all {
                let a = h.arity();
                let which = match index.get(h) {
                    Some(&k) => merged(&sp.rows_of[k], &sp.wild),
                    None => sp.wild.clone(),
                };
                if let Some(mut w) = missing(c, specialize(&rows, &which, a), a + n - 1) {
                    let mut args = w.split_off(w.len() - a);
                    args.reverse();
                    let head = match h {
                        Head::Ctor(ty, i, _) => Witness::Ctor(*ty, *i, args),
                        Head::Tuple(_, r) => Witness::Tuple(args, *r),
                        _ => Witness::Wild,
                    };
                    w.push(head);
                    return Some(w);
                }
            }
            return None;
        }
        let mut w = missing(c, specialize(&rows, &sp.wild, 0), n - 1)?;
        w.push(missing_head(c, &sp.heads));
        Some(w)
    })
}

/// A constructor or literal the column lacks (its heads do not cover
/// their type).
fn missing_head(c: &Checker, hs: &[Head]) -> Witness {
    match hs.first() {
        Some(Head::Ctor(ty, _, _)) => {
            let sig = signature(c, *ty);
            let mut present = vec![false; sig.len()];
            for h in hs {
                if let Head::Ctor(_, i, _) = h {
                    if let Some(p) = present.get_mut(*i as usize) {
                        *p = true;
                    }
                }
            }
            sig.iter()
                .enumerate()
                .find(|(i, _)| !present[*i])
                .map(|(i, &a)| Witness::Ctor(*ty, i as u32, vec![Witness::Wild; a]))
                .unwrap_or(Witness::Wild)
        }
        Some(first) if first.lit_text().is_some() => {
            // A literal of the same kind that no row names.
            let used: HashSet<String> = hs.iter().filter_map(Head::lit_text).collect();
            let candidates: Vec<String> = match first {
                Head::Char(_) => (b'a'..=b'z').chain(b'0'..=b'9').map(char_lit).collect(),
                Head::Str(_) => ["\"\"", "\"a\"", "\"b\"", "\"c\""]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                Head::Float(_) => ["0.0", "1.0", "2.0", "3.0"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                _ => (0..=used.len() as i64 + 1).map(|n| n.to_string()).collect(),
            };
            candidates
                .into_iter()
                .find(|c| !used.contains(c))
                .map_or(Witness::Wild, Witness::Lit)
        }
        _ => Witness::Wild,
    }
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
    crate::stack::deep(|| show_inner(c, w, out, arg))
}

fn show_inner(c: &Checker, w: &Witness, out: &mut String, arg: bool) {
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
            let name = ctor_name(c, *ty, *i);
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
pub fn check_arms(c: &Checker, pats: &[&TPat], guarded: &[bool], exhaustive: bool) -> MatchReport {
    let rows = |all: bool| -> Vec<Row<'_>> {
        pats.iter()
            .enumerate()
            .filter(|&(i, _)| all || !guarded[i])
            .map(|(i, &p)| Row {
                cols: cons(p, None),
                arm: i,
                guarded: guarded[i],
            })
            .collect()
    };
    let mut useful = vec![false; pats.len()];
    mark_useful(c, rows(true), &mut useful);
    let mut report = MatchReport {
        missing: None,
        redundant: (0..pats.len()).filter(|&i| !useful[i]).collect(),
    };
    if exhaustive {
        // Guarded arms cover nothing: the witness is sought among the
        // values the unguarded arms miss.
        if let Some(w) = missing(c, rows(false), 1) {
            let mut s = String::new();
            show(c, &w[0], &mut s, false);
            report.missing = Some(s);
        }
    }
    report
}
