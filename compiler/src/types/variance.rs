//! Variance of type parameters and the relaxed value restriction
//! (Garrigue, "Relaxing the Value Restriction", FLOPS 2004; OCaml's checker
//! since 3.07).
//!
//! Under the plain value restriction, `let l = List.rev []` gets the weak
//! type `'_a list`. Garrigue's relaxation generalises, even in the type of
//! an expression that is not a syntactic value, every variable that occurs
//! only in *covariant* positions: such a variable can only describe values
//! the expression has not yet built (an empty list, `None`), never a
//! channel through which values of two types could meet. Variables under a
//! function's argument (`'_a -> unit`) or inside an abstract type (`'_m
//! pid`: a pid could be sent values of two types) stay weak.
//!
//! The variance of a declared type's parameters is computed from its
//! definition (a variant's constructor arguments, a record's fields, an
//! abbreviation's body) as a least fixpoint over recursive and mutually
//! recursive types; abstract types (runtime handles such as `pid`) are
//! invariant, as OCaml assumes for an abstract type without annotations.

use super::env::{CtorInfo, TypeDecl, TypeKind};
use super::{builtin, Ty, TyNode, TypeId, Types, GENERIC};
use std::collections::{HashMap, HashSet};

/// How a type parameter (or a position) relates to the whole type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variance {
    /// Does not occur.
    Bivariant,
    /// Occurs only in covariant positions (`'a list`, a function's result).
    Covariant,
    /// Occurs only in contravariant positions (a function's argument).
    Contravariant,
    /// Occurs in both, or inside an abstract type.
    Invariant,
}

use Variance::*;

impl Variance {
    /// Least upper bound (two occurrences).
    pub fn join(self, o: Variance) -> Variance {
        match (self, o) {
            (Bivariant, x) | (x, Bivariant) => x,
            (a, b) if a == b => a,
            _ => Invariant,
        }
    }

    /// A position of variance `inner` inside a position of variance `self`.
    pub fn compose(self, inner: Variance) -> Variance {
        match (self, inner) {
            (Bivariant, _) | (_, Bivariant) => Bivariant,
            (Invariant, _) | (_, Invariant) => Invariant,
            (Covariant, x) => x,
            (Contravariant, Covariant) => Contravariant,
            (Contravariant, Contravariant) => Covariant,
        }
    }
}

/// The variance of every parameter of the declared types in `ids` (and of
/// the types their definitions mention), by type id.
pub fn param_variances(
    types: &Types,
    decls: &[TypeDecl],
    ctors: &[CtorInfo],
    ids: &HashSet<TypeId>,
) -> HashMap<TypeId, Vec<Variance>> {
    // Every type reachable from `ids` through definitions.
    let mut all: Vec<TypeId> = vec![];
    let mut seen: HashSet<TypeId> = HashSet::new();
    let mut work: Vec<TypeId> = ids.iter().copied().collect();
    while let Some(id) = work.pop() {
        if !seen.insert(id) {
            continue;
        }
        all.push(id);
        for t in bodies(decls, ctors, id) {
            cons_in(types, t, &mut work);
        }
    }
    // Least fixpoint: start from "does not occur" and join until stable
    // (each entry only goes up a lattice of height 3).
    let mut v: HashMap<TypeId, Vec<Variance>> = all
        .iter()
        .map(|&id| (id, vec![Bivariant; arity(decls, id)]))
        .collect();
    loop {
        let mut changed = false;
        for &id in &all {
            let Some(d) = decls.get(id as usize) else {
                continue;
            };
            let new: Vec<Variance> = match &d.kind {
                TypeKind::Builtin if id == builtin::LIST => vec![Covariant],
                TypeKind::Builtin => vec![Invariant; d.params.len()],
                TypeKind::Abstract | TypeKind::Error => vec![Invariant; d.params.len()],
                _ => d
                    .params
                    .iter()
                    .map(|&p| {
                        let p = rep(types, p);
                        bodies(decls, ctors, id).iter().fold(Bivariant, |acc, &t| {
                            acc.join(occurrence(types, &v, t, p, Covariant))
                        })
                    })
                    .collect(),
            };
            if v.get(&id) != Some(&new) {
                v.insert(id, new);
                changed = true;
            }
        }
        if !changed {
            return v;
        }
    }
}

/// The representative of `t` (without path compression: a shared borrow).
fn rep(types: &Types, t: Ty) -> Ty {
    let mut cur = t;
    while let TyNode::Var { link: Some(n), .. } = types.nodes[cur as usize] {
        cur = n;
    }
    cur
}

/// The node of `t`'s representative.
fn node(types: &Types, t: Ty) -> &TyNode {
    &types.nodes[rep(types, t) as usize]
}

fn arity(decls: &[TypeDecl], id: TypeId) -> usize {
    decls.get(id as usize).map_or(0, |d| d.params.len())
}

/// The types a definition is made of.
fn bodies(decls: &[TypeDecl], ctors: &[CtorInfo], id: TypeId) -> Vec<Ty> {
    let Some(d) = decls.get(id as usize) else {
        return vec![];
    };
    match &d.kind {
        TypeKind::Variant(cs) => cs
            .iter()
            .filter_map(|&c| ctors.get(c))
            .flat_map(|c| c.args.iter().copied())
            .collect(),
        TypeKind::Record(fields) => fields.iter().map(|(_, t)| *t).collect(),
        TypeKind::Alias(t) => vec![*t],
        _ => vec![],
    }
}

/// Pushes the type constructors occurring in `t`.
fn cons_in(types: &Types, t: Ty, out: &mut Vec<TypeId>) {
    let mut stack = vec![t];
    while let Some(x) = stack.pop() {
        match node(types, x) {
            TyNode::Var { .. } => {}
            TyNode::Con(id, args) => {
                out.push(*id);
                stack.extend(args.iter().copied());
            }
            TyNode::Tuple(args) => stack.extend(args.iter().copied()),
            TyNode::Arrow(_, a, b) => {
                stack.push(*a);
                stack.push(*b);
            }
        }
    }
}

/// The variance of the occurrences of variable `p` in `t`, `t` being at a
/// position of variance `pol`.
fn occurrence(
    types: &Types,
    v: &HashMap<TypeId, Vec<Variance>>,
    t: Ty,
    p: Ty,
    pol: Variance,
) -> Variance {
    let t = rep(types, t);
    if t == p {
        return pol;
    }
    match node(types, t) {
        TyNode::Var { .. } => Bivariant,
        TyNode::Con(id, args) => args.iter().enumerate().fold(Bivariant, |acc, (i, &a)| {
            let inner = v
                .get(id)
                .and_then(|vs| vs.get(i))
                .copied()
                .unwrap_or(Invariant);
            acc.join(occurrence(types, v, a, p, pol.compose(inner)))
        }),
        TyNode::Tuple(args) => args.iter().fold(Bivariant, |acc, &a| {
            acc.join(occurrence(types, v, a, p, pol))
        }),
        TyNode::Arrow(_, a, b) => occurrence(types, v, *a, p, pol.compose(Contravariant))
            .join(occurrence(types, v, *b, p, pol)),
    }
}

impl Types {
    /// The type constructors occurring in `t`.
    pub fn constructors(&self, t: Ty) -> HashSet<TypeId> {
        let mut out = vec![];
        cons_in(self, t, &mut out);
        out.into_iter().collect()
    }

    /// Generalisation under the relaxed value restriction (Garrigue 2004),
    /// for the type `t` of an expression that is not a syntactic value:
    /// the variables created deeper than `level` that occur only in
    /// covariant positions become generic; the others are lowered to
    /// `level` (weak), as [`Types::lower`] does. `variances` gives the
    /// variance of each type constructor's parameters (a constructor
    /// missing there is taken as invariant).
    pub fn generalize_relaxed(
        &mut self,
        level: u32,
        t: Ty,
        variances: &HashMap<TypeId, Vec<Variance>>,
    ) {
        // Variables met anywhere but in a covariant position.
        let mut weak: HashSet<Ty> = HashSet::new();
        let mut vars: Vec<Ty> = vec![];
        let mut seen: HashSet<(Ty, u8)> = HashSet::new();
        let mut stack = vec![(t, Covariant)];
        while let Some((x, pol)) = stack.pop() {
            let x = rep(self, x);
            if !seen.insert((x, pol as u8)) {
                continue;
            }
            match node(self, x) {
                TyNode::Var { level: l, .. } => {
                    if *l > level && *l != GENERIC {
                        vars.push(x);
                        if pol != Covariant {
                            weak.insert(x);
                        }
                    }
                }
                TyNode::Con(id, args) => {
                    for (i, &a) in args.iter().enumerate() {
                        let inner = variances
                            .get(id)
                            .and_then(|vs| vs.get(i))
                            .copied()
                            .unwrap_or(Invariant);
                        // A parameter that does not occur cannot carry a
                        // value: its variable is free to generalise.
                        if inner != Bivariant {
                            stack.push((a, pol.compose(inner)));
                        }
                    }
                }
                TyNode::Tuple(args) => stack.extend(args.iter().map(|&a| (a, pol))),
                TyNode::Arrow(_, a, b) => {
                    stack.push((*a, pol.compose(Contravariant)));
                    stack.push((*b, pol));
                }
            }
        }
        for x in vars {
            let generic = !weak.contains(&x);
            if let TyNode::Var { level: l, .. } = &mut self.nodes[x as usize] {
                if *l > level && *l != GENERIC {
                    *l = if generic { GENERIC } else { level };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variance_lattice() {
        assert_eq!(Covariant.join(Contravariant), Invariant);
        assert_eq!(Bivariant.join(Contravariant), Contravariant);
        assert_eq!(Contravariant.compose(Contravariant), Covariant);
        assert_eq!(Covariant.compose(Invariant), Invariant);
        assert_eq!(Contravariant.compose(Bivariant), Bivariant);
    }
}
