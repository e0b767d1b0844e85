//! Types, unification and generalisation (Hindley–Milner, Algorithm W as
//! in Damas & Milner 1982, with level-based generalisation as in Rémy 1992
//! and OCaml's checker).
//!
//! Types live in an arena ([`Types`]); a [`Ty`] is an index. Type variables
//! are union–find nodes: unifying a variable links it to a type. Each unbound
//! variable carries the let-nesting level at which it was created; on
//! generalisation the variables whose level is deeper than the current one
//! become generic (level [`GENERIC`]), and instantiation copies them fresh.

pub mod env;
pub mod printer;
pub mod variance;

use serde::{Deserialize, Serialize};

/// A type: an index into [`Types`].
pub type Ty = u32;

/// Identifies a type constructor (`int`, `list`, a user type). A
/// redefinition of a type name gets a new id, as in OCaml's toplevel.
pub type TypeId = u32;

/// The level of generic (quantified) variables.
pub const GENERIC: u32 = u32::MAX;

/// One node of the type arena.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TyNode {
    /// A variable: unbound (`link == None`) at `level`, or an alias of `link`.
    Var {
        /// Union–find link once unified.
        link: Option<Ty>,
        /// Let-level for generalisation; [`GENERIC`] when quantified.
        level: u32,
        /// Stable number used to name it when printed.
        id: u32,
    },
    /// `(args) name`
    Con(TypeId, Vec<Ty>),
    /// `a -> b`, `l:a -> b` or `?l:a -> b` (for an optional parameter
    /// `a` is the `t option` the function receives; it prints as `?l:t`).
    Arrow(Label, Ty, Ty),
    /// `a * b * ...` (at least two components)
    Tuple(Vec<Ty>),
}

/// The label of a function parameter, as OCaml types it: arrows with
/// different labels do not unify. Names are interned in [`Types`]
/// ([`Types::label`], [`Types::label_name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Label {
    /// An ordinary parameter: `a -> b`.
    Positional,
    /// `~x`: `x:a -> b`.
    Named(u32),
    /// `?x`: `?x:a -> b`.
    Optional(u32),
}

impl Label {
    /// The interned name, if labelled.
    pub fn name(self) -> Option<u32> {
        match self {
            Label::Positional => None,
            Label::Named(n) | Label::Optional(n) => Some(n),
        }
    }
    /// Whether it is `?x`.
    pub fn is_optional(self) -> bool {
        matches!(self, Label::Optional(_))
    }
}

/// The built-in type constructors, in their fixed id order.
pub mod builtin {
    use super::TypeId;
    /// `int`
    pub const INT: TypeId = 0;
    /// `float`
    pub const FLOAT: TypeId = 1;
    /// `bool`
    pub const BOOL: TypeId = 2;
    /// `char`
    pub const CHAR: TypeId = 3;
    /// `string`
    pub const STRING: TypeId = 4;
    /// `unit`
    pub const UNIT: TypeId = 5;
    /// `'a list`
    pub const LIST: TypeId = 6;
    /// `exn`: OCaml's extensible type of exceptions (its constructors
    /// come from `exception` declarations).
    pub const EXN: TypeId = 7;
    /// Names of the above, by id.
    pub const NAMES: [&str; 8] = [
        "int", "float", "bool", "char", "string", "unit", "list", "exn",
    ];
}

/// The type arena.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Types {
    nodes: Vec<TyNode>,
    next_var: u32,
    /// Numbers of the weak variables printed so far (`'_weak1`), in the
    /// order they were first printed.
    weak: Vec<Ty>,
    /// Interned parameter labels ([`Label`]).
    labels: Vec<String>,
}

/// Unification failed: the two (resolved) types that clashed, or an
/// occurs-check failure.
#[derive(Debug, Clone, Copy)]
pub enum UnifyError {
    /// Different constructors.
    Mismatch(Ty, Ty),
    /// A variable would contain itself (infinite type).
    Occurs(Ty, Ty),
}

impl Types {
    /// The number of weak variable `v` (a representative), given the first
    /// time it is asked for: 1, 2, … in order.
    pub fn weak_number(&mut self, v: Ty) -> usize {
        match self.weak.iter().position(|&w| w == v) {
            Some(i) => i + 1,
            None => {
                self.weak.push(v);
                self.weak.len()
            }
        }
    }

    /// The interned number of label `name`.
    pub fn label(&mut self, name: &str) -> u32 {
        match self.labels.iter().position(|l| l == name) {
            Some(i) => i as u32,
            None => {
                self.labels.push(name.to_string());
                (self.labels.len() - 1) as u32
            }
        }
    }

    /// The name of interned label `n`.
    pub fn label_name(&self, n: u32) -> &str {
        &self.labels[n as usize]
    }

    /// Adds a node.
    pub fn mk(&mut self, node: TyNode) -> Ty {
        self.nodes.push(node);
        (self.nodes.len() - 1) as Ty
    }

    /// The number the next fresh variable will get (variables made from
    /// now on have this number or more).
    pub fn next_var_id(&self) -> u32 {
        self.next_var + 1
    }

    /// A fresh unbound variable at `level`.
    pub fn var(&mut self, level: u32) -> Ty {
        self.next_var += 1;
        let id = self.next_var;
        self.mk(TyNode::Var {
            link: None,
            level,
            id,
        })
    }

    /// `name` with no arguments.
    pub fn con0(&mut self, id: TypeId) -> Ty {
        self.mk(TyNode::Con(id, vec![]))
    }

    /// `a -> b`
    pub fn arrow(&mut self, a: Ty, b: Ty) -> Ty {
        self.mk(TyNode::Arrow(Label::Positional, a, b))
    }

    /// `l:a -> b` (or `?l:a -> b`, `a -> b`, as `l` says).
    pub fn arrow_l(&mut self, l: Label, a: Ty, b: Ty) -> Ty {
        self.mk(TyNode::Arrow(l, a, b))
    }

    /// `a1 -> a2 -> ... -> r`
    pub fn arrows(&mut self, args: &[Ty], r: Ty) -> Ty {
        args.iter().rev().fold(r, |acc, &a| self.arrow(a, acc))
    }

    /// Follows variable links to the representative (path-compressing).
    pub fn repr(&mut self, t: Ty) -> Ty {
        let mut cur = t;
        while let TyNode::Var { link: Some(n), .. } = self.nodes[cur as usize] {
            cur = n;
        }
        // Path compression.
        let mut x = t;
        while let TyNode::Var { link: Some(n), .. } = self.nodes[x as usize] {
            if n == cur {
                break;
            }
            if let TyNode::Var { link, .. } = &mut self.nodes[x as usize] {
                *link = Some(cur);
            }
            x = n;
        }
        cur
    }

    /// The node of the representative.
    pub fn node(&mut self, t: Ty) -> TyNode {
        let r = self.repr(t);
        self.nodes[r as usize].clone()
    }

    /// Unifies `a` and `b` (Robinson unification with an occurs check that
    /// also lowers levels, so generalisation stays sound).
    pub fn unify(&mut self, a: Ty, b: Ty) -> Result<(), UnifyError> {
        let mut work = vec![(a, b)];
        while let Some((a, b)) = work.pop() {
            let a = self.repr(a);
            let b = self.repr(b);
            if a == b {
                continue;
            }
            match (
                self.nodes[a as usize].clone(),
                self.nodes[b as usize].clone(),
            ) {
                (TyNode::Var { level, .. }, _) => self.bind(a, level, b)?,
                (_, TyNode::Var { level, .. }) => self.bind(b, level, a)?,
                (TyNode::Con(x, xs), TyNode::Con(y, ys)) if x == y && xs.len() == ys.len() => {
                    work.extend(xs.into_iter().zip(ys));
                }
                (TyNode::Arrow(l1, a1, r1), TyNode::Arrow(l2, a2, r2)) if l1 == l2 => {
                    work.push((r1, r2));
                    work.push((a1, a2));
                }
                (TyNode::Tuple(xs), TyNode::Tuple(ys)) if xs.len() == ys.len() => {
                    work.extend(xs.into_iter().zip(ys));
                }
                _ => return Err(UnifyError::Mismatch(a, b)),
            }
        }
        Ok(())
    }

    fn bind(&mut self, var: Ty, level: u32, t: Ty) -> Result<(), UnifyError> {
        // Occurs check + level adjustment, iteratively.
        let mut stack = vec![t];
        let mut seen = Visited::default();
        while let Some(x) = stack.pop() {
            let x = self.repr(x);
            if !seen.first_visit(x) {
                continue;
            }
            if x == var {
                return Err(UnifyError::Occurs(var, t));
            }
            match &mut self.nodes[x as usize] {
                TyNode::Var { level: l, .. } => {
                    if *l > level {
                        *l = level;
                    }
                }
                TyNode::Con(_, args) | TyNode::Tuple(args) => stack.extend(args.iter().copied()),
                TyNode::Arrow(_, a, b) => {
                    stack.push(*a);
                    stack.push(*b);
                }
            }
        }
        if let TyNode::Var { link, .. } = &mut self.nodes[var as usize] {
            *link = Some(t);
        }
        Ok(())
    }

    /// Generalises the variables of `t` created deeper than `level`: they
    /// become [`GENERIC`] (in place, so every use of `t` sees it).
    pub fn generalize(&mut self, level: u32, t: Ty) {
        let mut stack = vec![t];
        let mut seen = std::collections::HashSet::new();
        while let Some(x) = stack.pop() {
            let x = self.repr(x);
            if !seen.insert(x) {
                continue;
            }
            match &mut self.nodes[x as usize] {
                TyNode::Var { level: l, .. } => {
                    if *l > level && *l != GENERIC {
                        *l = GENERIC;
                    }
                }
                TyNode::Con(_, args) | TyNode::Tuple(args) => stack.extend(args.iter().copied()),
                TyNode::Arrow(_, a, b) => {
                    stack.push(*a);
                    stack.push(*b);
                }
            }
        }
    }

    /// Links `var` to `t` without the occurs check and level adjustment of
    /// [`Types::unify`], if `var` is still an unbound variable; returns
    /// whether it did. Only for a variable the checker has just created
    /// at the current level and shown to no one (the result type of a
    /// lambda or match, a constructor's instantiated parameter): it cannot
    /// occur in `t`, and every variable of `t` is at the current level or
    /// below. Unifying such a variable with a type of size n costs O(n),
    /// which made `Some (Some (… None))` and similar nestings quadratic.
    pub fn link_fresh(&mut self, var: Ty, t: Ty) -> bool {
        if self.repr(var) != var {
            return false;
        }
        let t = self.repr(t);
        if let TyNode::Var { link, .. } = &mut self.nodes[var as usize] {
            if t != var {
                *link = Some(t);
            }
            return true;
        }
        false
    }

    /// Lowers the level of every variable of `t` to at most `level`: the
    /// type of a `let` that is not generalised (value restriction) must not
    /// keep variables of the inner level, or a later `let` at that level
    /// would generalise them (`let p = spawn f in let h () = p in …` made
    /// `h ()` a pid of any message type).
    pub fn lower(&mut self, level: u32, t: Ty) {
        let mut stack = vec![t];
        let mut seen = Visited::default();
        while let Some(x) = stack.pop() {
            let x = self.repr(x);
            if !seen.first_visit(x) {
                continue;
            }
            match &mut self.nodes[x as usize] {
                TyNode::Var { level: l, .. } => {
                    if *l > level && *l != GENERIC {
                        *l = level;
                    }
                }
                TyNode::Con(_, args) | TyNode::Tuple(args) => stack.extend(args.iter().copied()),
                TyNode::Arrow(_, a, b) => {
                    stack.push(*a);
                    stack.push(*b);
                }
            }
        }
    }

    /// A copy of `t` with every generic variable replaced by a fresh one at
    /// `level` (shared variables stay shared).
    pub fn instantiate(&mut self, level: u32, t: Ty) -> Ty {
        if !self.has_generic(t) {
            return t;
        }
        let mut map = std::collections::HashMap::new();
        self.copy_generic(t, level, &mut map)
    }

    /// Copies the parts of `t` that mention generic variables, sharing the
    /// rest; `map` memoises every node visited (changed or not), so each
    /// node is visited once, also in types that share subterms.
    fn copy_generic(
        &mut self,
        t: Ty,
        level: u32,
        map: &mut std::collections::HashMap<Ty, Ty>,
    ) -> Ty {
        crate::stack::deep(|| {
            let t = self.repr(t);
            if let Some(&n) = map.get(&t) {
                return n;
            }
            let n = match self.nodes[t as usize].clone() {
                TyNode::Var { level: l, .. } if l == GENERIC => self.var(level),
                TyNode::Var { .. } => t,
                TyNode::Con(id, args) => {
                    let (args, changed) = self.copy_all(&args, level, map);
                    if changed {
                        self.mk(TyNode::Con(id, args))
                    } else {
                        t
                    }
                }
                TyNode::Arrow(l, a, b) => {
                    let (ab, changed) = self.copy_all(&[a, b], level, map);
                    if changed {
                        self.arrow_l(l, ab[0], ab[1])
                    } else {
                        t
                    }
                }
                TyNode::Tuple(xs) => {
                    let (xs, changed) = self.copy_all(&xs, level, map);
                    if changed {
                        self.mk(TyNode::Tuple(xs))
                    } else {
                        t
                    }
                }
            };
            map.insert(t, n);
            n
        })
    }

    /// [`Types::copy_generic`] of each of `ts`, and whether any changed.
    fn copy_all(
        &mut self,
        ts: &[Ty],
        level: u32,
        map: &mut std::collections::HashMap<Ty, Ty>,
    ) -> (Vec<Ty>, bool) {
        let mut changed = false;
        let out = ts
            .iter()
            .map(|&a| {
                let c = self.copy_generic(a, level, map);
                changed |= c != self.repr(a);
                c
            })
            .collect();
        (out, changed)
    }

    /// Whether `t` mentions a generic variable.
    pub fn has_generic(&mut self, t: Ty) -> bool {
        let mut stack = vec![t];
        let mut seen = Visited::default();
        while let Some(x) = stack.pop() {
            let x = self.repr(x);
            if !seen.first_visit(x) {
                continue;
            }
            match &self.nodes[x as usize] {
                TyNode::Var { level, .. } => {
                    if *level == GENERIC {
                        return true;
                    }
                }
                TyNode::Con(_, args) | TyNode::Tuple(args) => stack.extend(args.iter().copied()),
                TyNode::Arrow(_, a, b) => {
                    stack.push(*a);
                    stack.push(*b);
                }
            }
        }
        false
    }

    /// Substitutes `params[i]` for the generic variables `vars[i]` in `t`
    /// (used for constructor argument types and aliases declared with
    /// parameters).
    pub fn subst(&mut self, t: Ty, vars: &[Ty], params: &[Ty]) -> Ty {
        let mut map: std::collections::HashMap<Ty, Ty> = std::collections::HashMap::new();
        for (&v, &p) in vars.iter().zip(params) {
            let v = self.repr(v);
            map.insert(v, p);
        }
        self.subst_map(t, &mut map)
    }

    /// `map` holds the substitution and memoises every node done (types
    /// share subterms: without it a DAG is copied as the tree it unfolds
    /// to, exponentially).
    fn subst_map(&mut self, t: Ty, map: &mut std::collections::HashMap<Ty, Ty>) -> Ty {
        crate::stack::deep(|| {
            let t = self.repr(t);
            if let Some(&p) = map.get(&t) {
                return p;
            }
            let n = self.subst_node(t, map);
            map.insert(t, n);
            n
        })
    }

    fn subst_node(&mut self, t: Ty, map: &mut std::collections::HashMap<Ty, Ty>) -> Ty {
        match self.nodes[t as usize].clone() {
            TyNode::Var { .. } => t,
            TyNode::Con(id, args) => {
                if args.is_empty() {
                    return t;
                }
                let args = args.into_iter().map(|a| self.subst_map(a, map)).collect();
                self.mk(TyNode::Con(id, args))
            }
            TyNode::Arrow(l, a, b) => {
                let a = self.subst_map(a, map);
                let b = self.subst_map(b, map);
                self.arrow_l(l, a, b)
            }
            TyNode::Tuple(xs) => {
                let xs = xs.into_iter().map(|a| self.subst_map(a, map)).collect();
                self.mk(TyNode::Tuple(xs))
            }
        }
    }

    /// The constructor at the head of `t`, if any.
    pub fn head(&mut self, t: Ty) -> Option<TypeId> {
        match self.node(t) {
            TyNode::Con(id, _) => Some(id),
            _ => None,
        }
    }
}

/// The nodes a walk over a type has seen. Types are DAGs (unification
/// shares subterms: `let p = (x, x) in (p, p)`), so a walk without it is
/// exponential in the worst case; most walks visit a handful of nodes, so
/// the set is only built past a few dozen.
#[derive(Default)]
struct Visited {
    count: usize,
    set: Option<std::collections::HashSet<Ty>>,
}

impl Visited {
    /// Whether `t` is seen for the first time (always true for the first
    /// 64 nodes, which may then be walked twice: harmless).
    fn first_visit(&mut self, t: Ty) -> bool {
        self.count += 1;
        if self.count <= 64 {
            return true;
        }
        self.set
            .get_or_insert_with(std::collections::HashSet::new)
            .insert(t)
    }
}
