//! Name resolution and type inference: [`ast`] to [`typed`].
//!
//! Algorithm W (Damas & Milner 1982) with level-based generalisation and
//! the syntactic value restriction (Wright 1995, as OCaml: only syntactic
//! values are generalised, so `spawn f` gets a weak, monomorphic type).
//! Errors are collected as data ([`TypeError`]) and checking goes on with a
//! fresh type variable in place of the faulty expression, so several
//! independent errors in one file are all reported.

use crate::ast::visit::{self, Node};
use crate::ast::{self, Expr, Lit, Name, Pat, Span, TypeBody, TypeExpr};
use crate::diagnostic::{Diagnostic, FileId};
use crate::error::TypeError;
use crate::typed::*;
use crate::types::env::*;
use crate::types::{builtin, printer::Printer, Ty, TyNode, TypeId, Types, UnifyError};
use std::collections::HashMap;
use std::sync::atomic::AtomicU32;

mod labels;
pub(crate) mod snapshot;

/// The next id for a declared exception (`caravan_vm::exn`).
static NEXT_EXCEPTION: AtomicU32 = AtomicU32::new(caravan_vm::exn::FIRST_USER);

/// The checker for one program (all its modules). Cloning it snapshots
/// every type and binding (the standard library is checked once and cloned
/// for each program; the REPL keeps one per session).
#[derive(Clone)]
pub struct Checker {
    /// The type arena.
    pub types: Types,
    /// Type declarations by [`TypeId`].
    pub decls: Vec<TypeDecl>,
    /// Constructors.
    pub ctors: Vec<CtorInfo>,
    /// Finished modules by name.
    pub modules: HashMap<String, ModuleEnv>,
    /// The opened prelude.
    pub prelude: ModuleEnv,
    /// The module being checked.
    pub current: ModuleEnv,
    /// Its name (`None` for the main file).
    pub current_name: Option<String>,
    /// Output program.
    pub program: TProgram,
    /// Errors so far.
    pub errors: Vec<TypeError>,
    locals: Locals,
    level: u32,
    file: FileId,
    /// Type variables named in annotations of the current top-level item.
    annot_vars: HashMap<String, Ty>,
    /// The type definition being checked: name and parameters (for hints).
    current_typedef: Option<(String, Vec<String>)>,
    /// Modules opened where the checker is (`open M`, `let open M in`),
    /// innermost last: `printf` after `open Printf` is `Printf.printf`.
    opened: Vec<String>,
    /// Whether to fill [`Checker::index`] and [`Checker::scopes`] (the
    /// language server needs them; `caravan run` and `check` do not).
    pub record_index: bool,
    /// Every identifier seen, with its type and definition (for the LSP and
    /// the REPL).
    pub index: Vec<Occurrence>,
    /// Local scopes (for completion).
    pub scopes: Vec<Scope>,
    /// Declaration sites of record fields: (record type, field index).
    pub field_defs: HashMap<(TypeId, usize), (FileId, Span)>,
    /// Stop collecting errors beyond this many.
    type_error_budget: usize,
    /// `errors.len()` when the current top-level item began (pattern
    /// checks are skipped in items that already have type errors).
    errors_before_item: usize,
}

/// The local values in scope, innermost last, with an index by name: a
/// lookup is a hash probe, not a scan of every enclosing binding (which
/// made deeply nested `let`s and lambdas, and big `let rec ... and`
/// groups, quadratic). Scopes end by truncating to an earlier length.
#[derive(Clone, Default)]
struct Locals {
    entries: Vec<(String, ValueInfo)>,
    /// For each name, the indices into `entries` that bind it, ascending.
    by_name: HashMap<String, Vec<usize>>,
}

impl Locals {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn push(&mut self, (name, info): (String, ValueInfo)) {
        self.by_name
            .entry(name.clone())
            .or_default()
            .push(self.entries.len());
        self.entries.push((name, info));
    }

    fn truncate(&mut self, len: usize) {
        while self.entries.len() > len {
            let (name, _) = self.entries.pop().expect("longer than len");
            if let Some(v) = self.by_name.get_mut(&name) {
                v.pop();
                if v.is_empty() {
                    self.by_name.remove(&name);
                }
            }
        }
    }

    /// The innermost binding of `name`.
    fn find(&self, name: &str) -> Option<&ValueInfo> {
        let &i = self.by_name.get(name)?.last()?;
        Some(&self.entries[i].1)
    }

    fn iter(&self) -> std::slice::Iter<'_, (String, ValueInfo)> {
        self.entries.iter()
    }
}

/// What a value in scope resolves to, after lookup.
struct Resolved {
    ty: Ty,
    kind: ValueKind,
}

impl Default for Checker {
    fn default() -> Self {
        Self::new()
    }
}

/// `[]` in patterns.
pub const NIL: CtorRef = CtorRef {
    repr: CtorRepr::Constant(0),
    ty: builtin::LIST,
    index: 0,
    sole_block: false,
};
/// `::` in patterns.
pub const CONS: CtorRef = CtorRef {
    repr: CtorRepr::Block(0, 2),
    ty: builtin::LIST,
    index: 1,
    sole_block: true,
};

fn imm_of_lit(l: &Lit) -> Option<i64> {
    match l {
        Lit::Int(n) => Some(*n),
        Lit::Char(c) => Some(*c as i64),
        Lit::Bool(b) => Some(*b as i64),
        Lit::Unit => Some(0),
        _ => None,
    }
}

impl Checker {
    /// A checker knowing only the builtin types.
    pub fn new() -> Checker {
        let mut c = Checker {
            types: Types::default(),
            decls: vec![],
            ctors: vec![],
            modules: HashMap::new(),
            prelude: ModuleEnv::default(),
            current: ModuleEnv::default(),
            current_name: None,
            program: TProgram::default(),
            errors: vec![],
            locals: Locals::default(),
            level: 0,
            file: 0,
            annot_vars: HashMap::new(),
            type_error_budget: 200,
            errors_before_item: 0,
            current_typedef: None,
            opened: vec![],
            record_index: true,
            index: vec![],
            scopes: vec![],
            field_defs: HashMap::new(),
        };
        for (i, name) in builtin::NAMES.iter().enumerate() {
            let params = if i as u32 == builtin::LIST {
                vec![c.types.var(crate::types::GENERIC)]
            } else {
                vec![]
            };
            c.decls.push(TypeDecl {
                name: name.to_string(),
                module: None,
                params,
                kind: TypeKind::Builtin,
                def: None,
            });
            c.prelude.types.insert(name.to_string(), i as TypeId);
        }
        c
    }

    /// The display name of a type (qualified when it comes from another
    /// module than the one being checked).
    pub fn type_name(&self, id: TypeId) -> String {
        let d = &self.decls[id as usize];
        match &d.module {
            Some(m) if Some(m) != self.current_name.as_ref() && m != "Prelude" => {
                format!("{m}.{}", d.name)
            }
            _ => d.name.clone(),
        }
    }

    /// Renders a type with a fresh printer.
    pub fn show(&mut self, t: Ty) -> String {
        let mut p = Printer::new();
        self.show_with(&mut p, t)
    }

    /// Renders a type with a shared printer.
    pub fn show_with(&mut self, p: &mut Printer, t: Ty) -> String {
        let names: Vec<String> = (0..self.decls.len() as u32)
            .map(|i| self.type_name(i))
            .collect();
        p.print(&mut self.types, t, &|id| names[id as usize].clone())
    }

    fn error(&mut self, e: TypeError) {
        if self.errors.len() < self.type_error_budget {
            self.errors.push(e);
        }
    }

    /// Renders collected errors as diagnostics.
    pub fn diagnostics(&mut self) -> Vec<Diagnostic> {
        let errors = std::mem::take(&mut self.errors);
        errors.iter().map(|e| e.to_diagnostic(self)).collect()
    }

    fn fresh(&mut self) -> Ty {
        self.types.var(self.level)
    }

    fn con(&mut self, id: TypeId, args: Vec<Ty>) -> Ty {
        self.types.mk(TyNode::Con(id, args))
    }

    fn new_var(&mut self) -> VarId {
        self.program.num_vars += 1;
        self.program.num_vars - 1
    }

    fn loc(&self, span: Span) -> Loc {
        Loc {
            file: self.file,
            span,
        }
    }

    /// [`Checker::expect`] where `fresh` is a variable just created at the
    /// current level and not yet shown to anything else (see
    /// [`Types::link_fresh`]): linked in O(1) when still unbound.
    fn expect_fresh(&mut self, span: Span, actual: Ty, fresh: Ty) -> bool {
        self.types.link_fresh(fresh, actual) || self.expect(span, actual, fresh)
    }

    /// Unifies `actual` (the type of the expression at `span`) with
    /// `expected`; on failure records a mismatch.
    fn expect(&mut self, span: Span, actual: Ty, expected: Ty) -> bool {
        match self.types.unify(actual, expected) {
            Ok(()) => true,
            Err(e) => {
                let (occurs, _) = match e {
                    UnifyError::Mismatch(a, b) => (false, (a, b)),
                    UnifyError::Occurs(a, b) => (true, (a, b)),
                };
                self.error(TypeError::Mismatch {
                    file: self.file,
                    span,
                    expected,
                    actual,
                    occurs,
                    hint: None,
                });
                false
            }
        }
    }

    // ------------------------------------------------------------ lookup

    /// Module `m`'s definitions. Inside a file that shadows a standard
    /// module (a user's `list.cvn`), `List.x` is the standard `List`'s.
    fn module_env(&self, m: &str) -> Option<&ModuleEnv> {
        if Some(m) == self.current_name.as_deref() && !self.modules.contains_key(m) {
            return Some(&self.current);
        }
        self.modules.get(m)
    }

    fn lookup_value(&mut self, name: &Name, span: Span) -> Option<Resolved> {
        let info = match &name.module {
            None => self
                .locals
                .find(&name.name)
                .cloned()
                .or_else(|| self.current.values.get(&name.name).cloned())
                .or_else(|| self.prelude.values.get(&name.name).cloned()),
            Some(m) => match self.module_env(m) {
                None => {
                    self.unknown_module(m, span);
                    return None;
                }
                Some(env) => env.values.get(&name.name).cloned(),
            },
        };
        match info {
            Some(i) => {
                let ty = self.types.instantiate(self.level, i.ty);
                self.note(span, &name.name, ty, i.def, OccKind::Value);
                Some(Resolved { ty, kind: i.kind })
            }
            None => {
                let candidates = self.value_names_in_scope(name.module.as_deref());
                self.error(TypeError::UnboundValue {
                    file: self.file,
                    span,
                    name: name.clone(),
                    suggestion: closest(&name.name, &candidates),
                });
                None
            }
        }
    }

    /// Every value name visible unqualified, or in module `m`.
    pub fn value_names_in_scope(&self, m: Option<&str>) -> Vec<String> {
        match m {
            Some(m) => self
                .module_env(m)
                .map(|e| e.values.keys().cloned().collect())
                .unwrap_or_default(),
            None => self
                .locals
                .iter()
                .map(|(n, _)| n.clone())
                .chain(self.current.values.keys().cloned())
                .chain(self.prelude.values.keys().cloned())
                .collect(),
        }
    }

    fn lookup_ctor(&mut self, name: &Name, span: Span) -> Option<usize> {
        let found = match &name.module {
            None => self
                .current
                .ctors
                .get(&name.name)
                .or_else(|| self.prelude.ctors.get(&name.name))
                .copied(),
            Some(m) => match self.module_env(m) {
                None => {
                    self.unknown_module(m, span);
                    return None;
                }
                Some(env) => env.ctors.get(&name.name).copied(),
            },
        };
        if found.is_none() {
            let candidates: Vec<String> = match &name.module {
                Some(m) => self
                    .module_env(m)
                    .map(|e| e.ctors.keys().cloned().collect())
                    .unwrap_or_default(),
                None => self
                    .current
                    .ctors
                    .keys()
                    .chain(self.prelude.ctors.keys())
                    .cloned()
                    .collect(),
            };
            self.error(TypeError::UnboundCtor {
                file: self.file,
                span,
                name: name.clone(),
                suggestion: closest(&name.name, &candidates),
            });
        }
        found
    }

    fn lookup_type(&mut self, name: &Name, span: Span) -> Option<TypeId> {
        if let Some(m) = &name.module {
            if self.module_env(m).is_none() {
                self.unknown_module(m, span);
                return None;
            }
        }
        let found = match &name.module {
            None => self
                .current
                .types
                .get(&name.name)
                .or_else(|| self.prelude.types.get(&name.name))
                .copied(),
            Some(m) => self
                .module_env(m)
                .and_then(|e| e.types.get(&name.name))
                .copied(),
        };
        if found.is_none() {
            let candidates: Vec<String> = self
                .current
                .types
                .keys()
                .chain(self.prelude.types.keys())
                .cloned()
                .collect();
            self.error(TypeError::UnboundType {
                file: self.file,
                span,
                name: name.clone(),
                suggestion: closest(&name.name, &candidates),
            });
        }
        found
    }

    /// `open M` (`local`: false) puts module `M`'s definitions in scope
    /// unqualified for the rest of the file; `let open M in e` and `M.(e)`
    /// (`local`) for `e`, after which the caller restores the saved scope.
    /// Returns the scope before the open. Locals of the enclosing
    /// expression still take precedence over `M`'s values (OCaml's `M`
    /// would shadow them too).
    fn open_module(&mut self, m: &str, span: Span) -> ModuleEnv {
        let before = self.current.clone();
        self.opened.push(m.to_string());
        match self.modules.get(m).cloned() {
            Some(env) => self.current = merge(std::mem::take(&mut self.current), env),
            None => self.unknown_module(m, span),
        }
        before
    }

    /// Reports module `m` unknown, with the closest module name.
    fn unknown_module(&mut self, m: &str, span: Span) {
        let candidates: Vec<String> = self
            .modules
            .keys()
            .filter(|k| *k != "Prelude")
            .cloned()
            .collect();
        self.error(TypeError::UnknownModule {
            file: self.file,
            span,
            name: m.to_string(),
            suggestion: closest(m, &candidates),
        });
    }

    fn lookup_field(&mut self, name: &str, span: Span) -> Option<(TypeId, usize)> {
        // `p.Geo.x`, `{ Geo.x = 1; … }`: a field of module `Geo`'s.
        if let Some((m, f)) = name.split_once('.') {
            let env = self.module_env(m);
            let Some(env) = env else {
                self.unknown_module(m, span);
                return None;
            };
            if let Some(&found) = env.fields.get(f) {
                return Some(found);
            }
            let candidates: Vec<String> = env.fields.keys().cloned().collect();
            self.error(TypeError::UnboundField {
                file: self.file,
                span,
                name: name.to_string(),
                suggestion: closest(f, &candidates).map(|c| format!("{m}.{c}")),
            });
            return None;
        }
        let found = self
            .current
            .fields
            .get(name)
            .or_else(|| self.prelude.fields.get(name))
            .copied()
            .or_else(|| {
                // Fields of records defined in other modules are found by
                // name too (type-directed disambiguation is a later step).
                self.modules
                    .values()
                    .find_map(|m| m.fields.get(name).copied())
            });
        if found.is_none() {
            let candidates: Vec<String> = self
                .current
                .fields
                .keys()
                .chain(self.prelude.fields.keys())
                .chain(self.modules.values().flat_map(|m| m.fields.keys()))
                .cloned()
                .collect();
            self.error(TypeError::UnboundField {
                file: self.file,
                span,
                name: name.to_string(),
                suggestion: closest(name, &candidates),
            });
        }
        found
    }

    /// The field names of record type `tid` (empty for other types).
    fn record_fields(&self, tid: TypeId) -> Vec<String> {
        match &self.decls[tid as usize].kind {
            TypeKind::Record(fs) => fs.iter().map(|f| f.0.clone()).collect(),
            _ => vec![],
        }
    }

    // ------------------------------------------------------------ types

    /// Converts a type expression. `params` maps the declaration's own
    /// parameters (in type definitions, where other variables are errors);
    /// otherwise variables are the item's flexible annotation variables.
    fn type_of(&mut self, te: &TypeExpr, params: Option<&HashMap<String, Ty>>) -> Ty {
        crate::stack::deep(|| self.type_of_inner(te, params))
    }

    fn type_of_inner(&mut self, te: &TypeExpr, params: Option<&HashMap<String, Ty>>) -> Ty {
        match te {
            TypeExpr::Var(v, span) => match params {
                Some(ps) => match ps.get(v) {
                    Some(&t) => t,
                    None => {
                        let (tname, mut tparams) = self.current_typedef.clone().unwrap_or_default();
                        tparams.push(v.clone());
                        self.error(TypeError::UnboundTypeVar {
                            file: self.file,
                            span: *span,
                            name: v.clone(),
                            type_name: tname,
                            params: tparams,
                        });
                        self.fresh()
                    }
                },
                None => {
                    if let Some(&t) = self.annot_vars.get(v) {
                        t
                    } else {
                        let t = self.fresh();
                        self.annot_vars.insert(v.clone(), t);
                        t
                    }
                }
            },
            TypeExpr::Arrow(a, b, _) => {
                let (label, a) = match &**a {
                    TypeExpr::Labelled(l, a, _) => {
                        let label = self.label_of(l);
                        let a = self.type_of(a, params);
                        // `?x:t`: the function receives a `t option`.
                        let a = if label.is_optional() {
                            self.option_of(a)
                        } else {
                            a
                        };
                        (label, a)
                    }
                    a => (crate::types::Label::Positional, self.type_of(a, params)),
                };
                let b = self.type_of(b, params);
                self.types.arrow_l(label, a, b)
            }
            TypeExpr::Paren(t, _) | TypeExpr::Labelled(_, t, _) => self.type_of(t, params),
            TypeExpr::Tuple(xs, _) => {
                let xs = xs.iter().map(|x| self.type_of(x, params)).collect();
                self.types.mk(TyNode::Tuple(xs))
            }
            TypeExpr::Con(name, args, span) => {
                let args: Vec<Ty> = args.iter().map(|x| self.type_of(x, params)).collect();
                let Some(id) = self.lookup_type(name, *span) else {
                    return self.fresh();
                };
                // Not the whole declaration: a variant's constructor list
                // may be tens of thousands long.
                let d = &self.decls[id as usize];
                let (def, nparams) = (d.def, d.params.len());
                let kind = match &d.kind {
                    TypeKind::Alias(body) => Some(Some(*body)),
                    TypeKind::Error => Some(None),
                    _ => None,
                };
                let tty = self.con(id, args.clone());
                self.note(*span, &name.name, tty, def, OccKind::Type);
                if nparams != args.len() {
                    self.error(TypeError::TypeArity {
                        file: self.file,
                        span: *span,
                        name: name.to_string(),
                        expected: nparams,
                        found: args.len(),
                    });
                    return self.fresh();
                }
                match kind {
                    Some(Some(body)) => {
                        let params = self.decls[id as usize].params.clone();
                        self.types.subst(body, &params, &args)
                    }
                    Some(None) => self.fresh(),
                    None => self.con(id, args),
                }
            }
        }
    }

    /// Declares a group of (possibly mutually recursive) types.
    pub fn declare_types(&mut self, defs: &[ast::TypeDef]) {
        // First give every name an id so the bodies can refer to each other.
        let mut ids = vec![];
        let mut names = std::collections::HashSet::new();
        for d in defs {
            if !names.insert(d.name.as_str()) {
                self.error(TypeError::DuplicateDefinition {
                    file: self.file,
                    span: d.span,
                    what: "type",
                    name: d.name.clone(),
                });
            }
            let params: Vec<Ty> = d
                .params
                .iter()
                .map(|_| self.types.var(crate::types::GENERIC))
                .collect();
            let id = self.decls.len() as TypeId;
            self.decls.push(TypeDecl {
                name: d.name.clone(),
                module: self.current_name.clone(),
                params,
                kind: TypeKind::Abstract,
                def: Some((self.file, d.span)),
            });
            self.current.types.insert(d.name.clone(), id);
            ids.push(id);
        }
        for (d, &id) in defs.iter().zip(&ids) {
            self.current_typedef = Some((d.name.clone(), d.params.clone()));
            let params: HashMap<String, Ty> = d
                .params
                .iter()
                .cloned()
                .zip(self.decls[id as usize].params.clone())
                .collect();
            let kind = match &d.body {
                TypeBody::Abstract => TypeKind::Abstract,
                TypeBody::Alias(t) => TypeKind::Alias(self.type_of(t, Some(&params))),
                TypeBody::Record(fields) => {
                    let mut out = vec![];
                    let mut seen = std::collections::HashSet::new();
                    for (i, (name, t, span)) in fields.iter().enumerate() {
                        if !seen.insert(name.as_str()) {
                            self.error(TypeError::DuplicateDefinition {
                                file: self.file,
                                span: *span,
                                what: "field",
                                name: name.clone(),
                            });
                        }
                        let ty = self.type_of(t, Some(&params));
                        out.push((name.clone(), ty));
                        self.current.fields.insert(name.clone(), (id, i));
                        self.field_defs.insert((id, i), (self.file, *span));
                    }
                    TypeKind::Record(out)
                }
                TypeBody::Variant(ctors) => {
                    let mut consts = 0;
                    let mut blocks = 0;
                    let mut list = vec![];
                    // A repeated constructor is reported at its first
                    // declaration.
                    let mut count: HashMap<&str, usize> = HashMap::new();
                    for (name, _, _) in ctors {
                        *count.entry(name.as_str()).or_default() += 1;
                    }
                    let mut seen = std::collections::HashSet::new();
                    for (name, args, span) in ctors {
                        if seen.insert(name.as_str()) && count[name.as_str()] > 1 {
                            self.error(TypeError::DuplicateDefinition {
                                file: self.file,
                                span: *span,
                                what: "constructor",
                                name: name.clone(),
                            });
                        }
                        let args: Vec<Ty> = args
                            .iter()
                            .map(|t| self.type_of(t, Some(&params)))
                            .collect();
                        let repr = if args.is_empty() {
                            consts += 1;
                            CtorRepr::Constant(consts - 1)
                        } else {
                            blocks += 1;
                            CtorRepr::Block(blocks - 1, args.len() as u32)
                        };
                        let ci = self.ctors.len();
                        self.ctors.push(CtorInfo {
                            name: name.clone(),
                            type_id: id,
                            index: list.len() as u32,
                            repr,
                            args,
                            def: Some((self.file, *span)),
                        });
                        self.current.ctors.insert(name.clone(), ci);
                        list.push(ci);
                    }
                    TypeKind::Variant(list)
                }
            };
            self.decls[id as usize].kind = kind;
        }
        self.current_typedef = None;
        self.resolve_group_aliases(defs, &ids);
    }

    /// Abbreviations of a group may refer to one another (`type a = b list
    /// and b = int`): expand those references, and report abbreviations
    /// that expand to themselves (`type t = t list`), which would make an
    /// infinite type.
    fn resolve_group_aliases(&mut self, defs: &[ast::TypeDef], ids: &[TypeId]) {
        let aliases: Vec<TypeId> = ids
            .iter()
            .copied()
            .filter(|&id| matches!(self.decls[id as usize].kind, TypeKind::Alias(_)))
            .collect();
        if aliases.is_empty() {
            return;
        }
        // Depth-first over alias-to-alias references.
        let mentions = |c: &mut Checker, t: Ty| -> Vec<TypeId> {
            let mut out = vec![];
            let mut stack = vec![t];
            while let Some(x) = stack.pop() {
                match c.types.node(x) {
                    TyNode::Con(id, args) => {
                        if aliases.contains(&id) {
                            out.push(id);
                        }
                        stack.extend(args);
                    }
                    TyNode::Arrow(_, a, b) => {
                        stack.push(a);
                        stack.push(b);
                    }
                    TyNode::Tuple(xs) => stack.extend(xs),
                    TyNode::Var { .. } => {}
                }
            }
            out
        };
        let mut cyclic = vec![];
        for &a in &aliases {
            let mut seen = vec![];
            let mut stack = vec![a];
            while let Some(x) = stack.pop() {
                let TypeKind::Alias(body) = self.decls[x as usize].kind else {
                    continue;
                };
                for m in mentions(self, body) {
                    if m == a {
                        cyclic.push(a);
                        stack.clear();
                        break;
                    }
                    if !seen.contains(&m) {
                        seen.push(m);
                        stack.push(m);
                    }
                }
            }
        }
        for &a in &cyclic {
            let pos = ids.iter().position(|&x| x == a).unwrap_or(0);
            self.error(TypeError::CyclicAbbreviation {
                file: self.file,
                span: defs[pos].span,
                name: defs[pos].name.clone(),
            });
            // Later uses become fresh variables: no loops, no follow-on errors.
            self.decls[a as usize].kind = TypeKind::Error;
        }
        // Expand references to (acyclic) group aliases everywhere in the group.
        for _ in 0..aliases.len() {
            for &id in ids {
                match self.decls[id as usize].kind.clone() {
                    TypeKind::Alias(body) => {
                        let b = self.expand_aliases(body, &aliases);
                        self.decls[id as usize].kind = TypeKind::Alias(b);
                    }
                    TypeKind::Record(fs) => {
                        let fs = fs
                            .into_iter()
                            .map(|(n, t)| (n, self.expand_aliases(t, &aliases)))
                            .collect();
                        self.decls[id as usize].kind = TypeKind::Record(fs);
                    }
                    TypeKind::Variant(cs) => {
                        for ci in cs {
                            let args = self.ctors[ci].args.clone();
                            let args = args
                                .into_iter()
                                .map(|t| self.expand_aliases(t, &aliases))
                                .collect();
                            self.ctors[ci].args = args;
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Replaces `Con(alias)` by the alias's body, for aliases in `which`.
    fn expand_aliases(&mut self, t: Ty, which: &[TypeId]) -> Ty {
        crate::stack::deep(|| self.expand_aliases_inner(t, which))
    }

    fn expand_aliases_inner(&mut self, t: Ty, which: &[TypeId]) -> Ty {
        match self.types.node(t) {
            TyNode::Con(id, args) => {
                let args: Vec<Ty> = args
                    .into_iter()
                    .map(|a| self.expand_aliases(a, which))
                    .collect();
                if which.contains(&id) {
                    if let TypeKind::Alias(body) = self.decls[id as usize].kind {
                        let params = self.decls[id as usize].params.clone();
                        return self.types.subst(body, &params, &args);
                    }
                }
                self.con(id, args)
            }
            TyNode::Arrow(l, a, b) => {
                let a = self.expand_aliases(a, which);
                let b = self.expand_aliases(b, which);
                self.types.arrow_l(l, a, b)
            }
            TyNode::Tuple(xs) => {
                let xs = xs
                    .into_iter()
                    .map(|x| self.expand_aliases(x, which))
                    .collect();
                self.types.mk(TyNode::Tuple(xs))
            }
            TyNode::Var { .. } => t,
        }
    }

    // ------------------------------------------------------------ patterns

    /// Checks a pattern against `expected`, appending the variables it binds.
    fn pattern(
        &mut self,
        p: &Pat,
        expected: Ty,
        bound: &mut Vec<(String, VarId, Ty, Span)>,
        reuse: Option<&[(String, VarId, Ty, Span)]>,
    ) -> TPat {
        crate::stack::deep(|| self.pattern_inner(p, expected, bound, reuse))
    }

    fn pattern_inner(
        &mut self,
        p: &Pat,
        expected: Ty,
        bound: &mut Vec<(String, VarId, Ty, Span)>,
        reuse: Option<&[(String, VarId, Ty, Span)]>,
    ) -> TPat {
        match p {
            Pat::Wild(_) => TPat::Wild,
            Pat::Var(name, span) => {
                if bound.iter().any(|(n, ..)| n == name) {
                    self.error(TypeError::DuplicateBinding {
                        file: self.file,
                        span: *span,
                        name: name.clone(),
                    });
                    return TPat::Wild;
                }
                let v = match reuse.and_then(|r| r.iter().find(|(n, ..)| n == name)) {
                    Some((_, v, t, _)) => {
                        self.expect(*span, expected, *t);
                        *v
                    }
                    None => self.new_var(),
                };
                bound.push((name.clone(), v, expected, *span));
                TPat::Var(v)
            }
            Pat::Lit(l, span) => {
                let t = self.lit_type(l);
                self.expect(*span, t, expected);
                match l {
                    Lit::Str(s) => TPat::Str(s.clone()),
                    Lit::Float(f) => TPat::Float(*f),
                    Lit::Unit => TPat::Tuple(vec![], None),
                    Lit::Bool(b) => TPat::Ctor(
                        CtorRef {
                            repr: CtorRepr::Constant(*b as u32),
                            ty: builtin::BOOL,
                            index: *b as u32,
                            sole_block: false,
                        },
                        vec![],
                    ),
                    Lit::Char(c) => TPat::Char(*c),
                    l => TPat::Imm(imm_of_lit(l).unwrap_or(0)),
                }
            }
            Pat::Tuple(ps, span) => {
                // Patterns are checked top-down: where the expected type is
                // already known, its parts are used instead of fresh
                // variables unified with it (each unification walks the
                // part: quadratic in a deeply nested pattern of a known type).
                let ts = match self.types.node(expected) {
                    TyNode::Tuple(ts) if ts.len() == ps.len() => ts,
                    _ => {
                        let ts: Vec<Ty> = ps.iter().map(|_| self.fresh()).collect();
                        let tt = self.types.mk(TyNode::Tuple(ts.clone()));
                        self.expect(*span, tt, expected);
                        ts
                    }
                };
                let fields = ps
                    .iter()
                    .zip(ts)
                    .map(|(p, t)| self.pattern(p, t, bound, reuse))
                    .collect();
                TPat::Tuple(fields, None)
            }
            Pat::List(ps, span) => {
                let (elem, _) = self.list_pattern_type(*span, expected);
                let mut out = TPat::Ctor(NIL, vec![]);
                let items: Vec<TPat> = ps
                    .iter()
                    .map(|p| self.pattern(p, elem, bound, reuse))
                    .collect();
                for item in items.into_iter().rev() {
                    out = TPat::Ctor(CONS, vec![item, out]);
                }
                out
            }
            Pat::Cons(h, t, span) => {
                let (elem, lt) = self.list_pattern_type(*span, expected);
                let h = self.pattern(h, elem, bound, reuse);
                let t = self.pattern(t, lt, bound, reuse);
                TPat::Ctor(CONS, vec![h, t])
            }
            Pat::Ctor(name, arg, span) => {
                let Some(ci) = self.lookup_ctor(name, *span) else {
                    self.bind_anyway(arg.as_deref(), bound, reuse);
                    return TPat::Wild;
                };
                let tid = self.ctors[ci].type_id;
                let (result, args) = match self.types.node(expected) {
                    TyNode::Con(id, targs) if id == tid => {
                        (expected, self.ctor_args_at(ci, &targs))
                    }
                    _ => {
                        let (result, args) = self.instantiate_ctor(ci);
                        self.expect(*span, result, expected);
                        (result, args)
                    }
                };
                let def = self.ctors[ci].def;
                let nspan = Span::new(span.start, span.start + name.to_string().len());
                self.note(nspan, &name.name, result, def, OccKind::Ctor);
                let repr = self.ctor_ref(ci);
                let sub: Vec<&Pat> = match (arg.as_deref(), args.len()) {
                    (None, 0) => vec![],
                    (Some(Pat::Wild(_)), n) if n > 0 => {
                        return TPat::Ctor(repr, (0..n).map(|_| TPat::Wild).collect())
                    }
                    (Some(Pat::Tuple(ps, _)), n) if n > 1 && ps.len() == n => ps.iter().collect(),
                    (Some(p), 1) => vec![p],
                    (a, n) => {
                        let found = match a {
                            None => 0,
                            Some(Pat::Tuple(ps, _)) => ps.len(),
                            Some(_) => 1,
                        };
                        self.error(TypeError::CtorArity {
                            file: self.file,
                            span: *span,
                            name: name.to_string(),
                            expected: n,
                            found,
                        });
                        self.bind_anyway(a, bound, reuse);
                        return TPat::Wild;
                    }
                };
                let fields = sub
                    .into_iter()
                    .zip(args)
                    .map(|(p, t)| self.pattern(p, t, bound, reuse))
                    .collect();
                TPat::Ctor(repr, fields)
            }
            Pat::Record(fields, _open, span) => {
                let Some((first, _)) = fields.first().map(|(n, _, s)| (n.clone(), *s)) else {
                    return TPat::Wild;
                };
                let Some((tid, _)) = self.lookup_field(&first, *span) else {
                    for (_, fp, _) in fields {
                        self.bind_anyway(Some(fp), bound, reuse);
                    }
                    return TPat::Wild;
                };
                let (rt, ftys) = self.instantiate_record(tid);
                self.expect(*span, rt, expected);
                let mut pats: Vec<TPat> = ftys.iter().map(|_| TPat::Wild).collect();
                let mut seen: Vec<&str> = vec![];
                for (fname, fp, fspan) in fields {
                    if seen.contains(&fname.as_str()) {
                        self.error(TypeError::DuplicateDefinition {
                            file: self.file,
                            span: *fspan,
                            what: "field",
                            name: fname.clone(),
                        });
                        continue;
                    }
                    seen.push(fname);
                    match self.field_index(tid, fname) {
                        Some(i) => pats[i] = self.pattern(fp, ftys[i], bound, reuse),
                        None => {
                            let suggestion = closest(fname, &self.record_fields(tid));
                            self.error(TypeError::FieldNotInRecord {
                                file: self.file,
                                span: *fspan,
                                field: fname.clone(),
                                record: self.decls[tid as usize].name.clone(),
                                suggestion,
                            });
                            self.bind_anyway(Some(fp), bound, reuse);
                        }
                    }
                }
                TPat::Tuple(pats, Some(tid))
            }
            Pat::Or(a, b, span) => {
                let before = bound.len();
                let ta = self.pattern(a, expected, bound, reuse);
                let left: Vec<_> = bound[before..].to_vec();
                let mut right = vec![];
                let tb = self.pattern(b, expected, &mut right, Some(&left));
                let mut ln: Vec<&String> = left.iter().map(|x| &x.0).collect();
                let mut rn: Vec<&String> = right.iter().map(|x| &x.0).collect();
                ln.sort();
                rn.sort();
                if ln != rn {
                    let missing = left
                        .iter()
                        .map(|x| &x.0)
                        .find(|n| !rn.contains(n))
                        .or_else(|| right.iter().map(|x| &x.0).find(|n| !ln.contains(n)))
                        .cloned()
                        .unwrap_or_default();
                    self.error(TypeError::OrPatternVars {
                        file: self.file,
                        span: *span,
                        name: missing,
                    });
                    // Bind what only the right side binds, to avoid
                    // follow-on "unknown variable" errors.
                    for r in right {
                        if !bound.iter().any(|b| b.0 == r.0) {
                            bound.push(r);
                        }
                    }
                }
                TPat::Or(Box::new(ta), Box::new(tb))
            }
            Pat::Alias(p, name, span) => {
                let tp = self.pattern(p, expected, bound, reuse);
                let v = match reuse.and_then(|r| r.iter().find(|(n, ..)| n == name)) {
                    Some((_, v, _, _)) => *v,
                    None => self.new_var(),
                };
                bound.push((name.clone(), v, expected, *span));
                TPat::Alias(Box::new(tp), v)
            }
            Pat::Annot(p, t, span) => {
                let t = self.type_of(t, None);
                self.expect(*span, t, expected);
                self.pattern(p, expected, bound, reuse)
            }
        }
    }

    /// The element type and list type a list pattern has where `expected`
    /// is expected: `expected`'s own when it is a list already.
    fn list_pattern_type(&mut self, span: Span, expected: Ty) -> (Ty, Ty) {
        if let TyNode::Con(builtin::LIST, args) = self.types.node(expected) {
            if let [elem] = args[..] {
                return (elem, expected);
            }
        }
        let elem = self.fresh();
        let lt = self.con(builtin::LIST, vec![elem]);
        self.expect(span, lt, expected);
        (elem, lt)
    }

    /// The argument types of constructor `ci` at the type arguments
    /// `targs` of its type.
    fn ctor_args_at(&mut self, ci: usize, targs: &[Ty]) -> Vec<Ty> {
        let info = &self.ctors[ci];
        let params = self.decls[info.type_id as usize].params.clone();
        let args = info.args.clone();
        args.iter()
            .map(|&a| self.types.subst(a, &params, targs))
            .collect()
    }

    /// The pattern-side description of constructor `ci`.
    pub fn ctor_ref(&self, ci: usize) -> CtorRef {
        let c = &self.ctors[ci];
        let sole_block = matches!(c.repr, CtorRepr::Block(..))
            && match &self.decls[c.type_id as usize].kind {
                TypeKind::Variant(list) => {
                    list.iter()
                        .filter(|&&k| matches!(self.ctors[k].repr, CtorRepr::Block(..)))
                        .count()
                        == 1
                }
                _ => false,
            };
        CtorRef {
            repr: c.repr,
            ty: c.type_id,
            index: c.index,
            sole_block,
        }
    }

    /// After an error in a pattern, still binds the variables of `p` (with
    /// fresh types), so their uses do not cause follow-on errors.
    fn bind_anyway(
        &mut self,
        p: Option<&Pat>,
        bound: &mut Vec<(String, VarId, Ty, Span)>,
        reuse: Option<&[(String, VarId, Ty, Span)]>,
    ) {
        if let Some(p) = p {
            let t = self.fresh();
            let saved = self.errors.len();
            self.pattern(p, t, bound, reuse);
            self.errors.truncate(saved);
        }
    }

    fn field_index(&self, tid: TypeId, name: &str) -> Option<usize> {
        // `p.Geo.x`: the record's own field names are unqualified.
        let name = name.rsplit('.').next().unwrap_or(name);
        match &self.decls[tid as usize].kind {
            TypeKind::Record(fs) => fs.iter().position(|(n, _)| n == name),
            _ => None,
        }
    }

    fn instantiate_ctor(&mut self, ci: usize) -> (Ty, Vec<Ty>) {
        let info = self.ctors[ci].clone();
        let params = self.decls[info.type_id as usize].params.clone();
        let fresh: Vec<Ty> = params.iter().map(|_| self.fresh()).collect();
        let args = info
            .args
            .iter()
            .map(|&a| self.types.subst(a, &params, &fresh))
            .collect();
        (self.con(info.type_id, fresh), args)
    }

    fn instantiate_record(&mut self, tid: TypeId) -> (Ty, Vec<Ty>) {
        let decl = &self.decls[tid as usize];
        let params = decl.params.clone();
        let ftys: Vec<Ty> = match &decl.kind {
            TypeKind::Record(fs) => fs.iter().map(|(_, t)| *t).collect(),
            _ => vec![],
        };
        let fresh: Vec<Ty> = params.iter().map(|_| self.fresh()).collect();
        let fields = ftys
            .into_iter()
            .map(|t| self.types.subst(t, &params, &fresh))
            .collect();
        (self.con(tid, fresh), fields)
    }

    fn lit_type(&mut self, l: &Lit) -> Ty {
        let id = match l {
            Lit::Int(_) => builtin::INT,
            Lit::Float(_) => builtin::FLOAT,
            Lit::Str(_) => builtin::STRING,
            Lit::Char(_) => builtin::CHAR,
            Lit::Bool(_) => builtin::BOOL,
            Lit::Unit => builtin::UNIT,
        };
        self.con(id, vec![])
    }

    /// Records an identifier in the semantic index.
    fn note(&mut self, span: Span, name: &str, ty: Ty, def: Option<(FileId, Span)>, kind: OccKind) {
        if !self.record_index {
            return;
        }
        self.index.push(Occurrence {
            file: self.file,
            span,
            name: name.to_string(),
            ty,
            def,
            kind,
        });
    }

    /// Records the locals visible in `span`.
    fn note_scope(&mut self, span: Span) {
        if !self.record_index {
            return;
        }
        let names = self.locals.iter().map(|(n, i)| (n.clone(), i.ty)).collect();
        self.scopes.push(Scope {
            file: self.file,
            span,
            names,
        });
    }

    fn push_bound(&mut self, bound: &[(String, VarId, Ty, Span)]) {
        for (name, _, t, span) in bound {
            self.note(*span, name, *t, Some((self.file, *span)), OccKind::Binding);
        }
        for (name, v, t, span) in bound {
            self.locals.push((
                name.clone(),
                ValueInfo {
                    ty: *t,
                    kind: ValueKind::Local(*v),
                    def: Some((self.file, *span)),
                },
            ));
        }
    }

    // ------------------------------------------------------------ expressions

    /// Infers the type of `e`, returning the resolved expression.
    pub fn infer(&mut self, e: &Expr) -> (TExpr, Ty) {
        crate::stack::deep(|| self.infer_inner(e))
    }

    fn infer_inner(&mut self, e: &Expr) -> (TExpr, Ty) {
        match e {
            Expr::Lit(l, _) => {
                let t = self.lit_type(l);
                let te = match l {
                    Lit::Str(s) => TExpr::Str(s.clone()),
                    Lit::Float(f) => TExpr::Float(*f),
                    l => TExpr::Imm(imm_of_lit(l).unwrap_or(0)),
                };
                (te, t)
            }
            Expr::Var(name, span) if crate::printf::target(name).is_some() => {
                let (family, sink) = crate::printf::target(name).unwrap_or((
                    crate::printf::Family::Printf,
                    Some(crate::printf::Sink::Stdout),
                ));
                let sink = sink.or(Some(crate::printf::Sink::Stdout));
                self.infer_printf(name, *span, family, sink, &[], *span)
            }
            Expr::Var(name, span) => match self.lookup_value(name, *span) {
                None => (TExpr::Imm(0), self.fresh()),
                Some(r) => (self.value_ref(r.kind, *span, r.ty), r.ty),
            },
            Expr::Ctor(name, arg, span) => self.infer_ctor(name, arg.as_deref(), *span),
            Expr::App(f, args, span) => self.infer_app(f, args, *span),
            // Only an argument of an application (the parser makes no other).
            Expr::Labelled(_, e, _) => self.infer(e),
            Expr::Fun(params, body, span) => {
                let (lam, t) = self.infer_lambda(params, body, *span, "fun");
                (TExpr::Lambda(lam), t)
            }
            Expr::Function(arms, span) => {
                self.no_exception_arms(arms, "function");
                let arg = self.fresh();
                let res = self.fresh();
                let v = self.new_var();
                let tarms = self.infer_arms(arms, arg, res);
                self.check_match(arms, &tarms, Span::new(span.start, span.start + 8), true);
                let t = self.types.arrow(arg, res);
                let body = TExpr::Match(Box::new(TExpr::Local(v)), tarms, self.loc(*span));
                (
                    TExpr::Lambda(TLambda {
                        params: vec![v],
                        param_tys: vec![arg],
                        body: Box::new(body),
                        name: "function".into(),
                        span: *span,
                        file: self.file,
                    }),
                    t,
                )
            }
            Expr::Let(rec, bindings, body, _) => {
                let depth = self.locals.len();
                let wrap = self.infer_let(*rec, bindings);
                self.note_scope(body.span());
                let (tb, t) = self.infer(body);
                self.locals.truncate(depth);
                (wrap(tb), t)
            }
            Expr::Try(body, arms, span) => {
                self.no_exception_arms(arms, "try");
                let (tb, res) = self.infer(body);
                // The arms must give the body's type.
                let (exn, handler) = self.exn_handler(arms, res, *span);
                let te = TExpr::Try {
                    body: Box::new(tb),
                    ok: None,
                    exn,
                    handler: Box::new(handler),
                };
                (te, res)
            }
            Expr::Open(m, body, _, span) => {
                let depth = self.opened.len();
                let saved = self.open_module(m, Span::new(span.start, span.start + m.len()));
                let r = self.infer(body);
                self.current = saved;
                self.opened.truncate(depth);
                r
            }
            Expr::Match(scrut, arms, span) if arms.iter().any(|a| a.exception) => {
                let (ts, st) = self.infer(scrut);
                let res = self.fresh();
                let (values, exns): (Vec<ast::Arm>, Vec<ast::Arm>) =
                    arms.iter().cloned().partition(|a| !a.exception);
                let tarms = self.infer_arms(&values, st, res);
                let head = Span::new(span.start, scrut.span().end);
                self.check_match(&values, &tarms, head, true);
                let (exn, handler) = self.exn_handler(&exns, res, *span);
                let v = self.new_var();
                let loc = self.loc(*span);
                let on_value = TExpr::Match(Box::new(TExpr::Local(v)), tarms, loc);
                let te = TExpr::Try {
                    body: Box::new(ts),
                    ok: Some((v, Box::new(on_value))),
                    exn,
                    handler: Box::new(handler),
                };
                (te, res)
            }
            Expr::Match(scrut, arms, span) => {
                let (ts, st) = self.infer(scrut);
                let res = self.fresh();
                let tarms = self.infer_arms(arms, st, res);
                self.check_match(arms, &tarms, Span::new(span.start, scrut.span().end), true);
                (TExpr::Match(Box::new(ts), tarms, self.loc(*span)), res)
            }
            Expr::If(c, a, b, _) => {
                let (tc, ct) = self.infer(c);
                let bool_t = self.con(builtin::BOOL, vec![]);
                self.expect(c.span(), ct, bool_t);
                let (ta, at) = self.infer(a);
                match b {
                    Some(b) => {
                        let (tb, bt) = self.infer(b);
                        self.expect(b.span(), bt, at);
                        (TExpr::If(Box::new(tc), Box::new(ta), Box::new(tb)), at)
                    }
                    None => {
                        let unit = self.con(builtin::UNIT, vec![]);
                        self.expect(a.span(), at, unit);
                        (
                            TExpr::If(Box::new(tc), Box::new(ta), Box::new(TExpr::Imm(0))),
                            unit,
                        )
                    }
                }
            }
            Expr::Seq(a, b, _) => {
                let (ta, _) = self.infer(a);
                let (tb, bt) = self.infer(b);
                (TExpr::Seq(Box::new(ta), Box::new(tb)), bt)
            }
            Expr::Tuple(es, _) => {
                let (tes, ts): (Vec<_>, Vec<_>) = es.iter().map(|e| self.infer(e)).unzip();
                let t = self.types.mk(TyNode::Tuple(ts));
                (TExpr::Block(0, tes), t)
            }
            Expr::List(es, _) => {
                let elem = self.fresh();
                let lt = self.con(builtin::LIST, vec![elem]);
                let mut items = vec![];
                for e in es {
                    let (te, t) = self.infer(e);
                    self.expect_fresh(e.span(), t, elem);
                    items.push(te);
                }
                let mut out = TExpr::Imm(0);
                for item in items.into_iter().rev() {
                    out = TExpr::Block(0, vec![item, out]);
                }
                (out, lt)
            }
            Expr::Cons(h, t, _) => {
                let (th, ht) = self.infer(h);
                let lt = self.con(builtin::LIST, vec![ht]);
                let (tt, tt_ty) = self.infer(t);
                self.expect(t.span(), tt_ty, lt);
                (TExpr::Block(0, vec![th, tt]), lt)
            }
            Expr::BinOp(op, a, b, _) => {
                let bool_t = self.con(builtin::BOOL, vec![]);
                let (ta, at) = self.infer(a);
                self.expect(a.span(), at, bool_t);
                let (tb, bt) = self.infer(b);
                self.expect(b.span(), bt, bool_t);
                let e = match op {
                    ast::BinOp::And => TExpr::And(Box::new(ta), Box::new(tb)),
                    ast::BinOp::Or => TExpr::Or(Box::new(ta), Box::new(tb)),
                };
                (e, bool_t)
            }
            Expr::Record(base, fields, span) => self.infer_record(base.as_deref(), fields, *span),
            Expr::Field(r, name, span) => {
                let (tr, rt) = self.infer(r);
                // A record whose type is known already and lacks the
                // field: name the type, as OCaml does.
                let fspan = Span::new(span.end.saturating_sub(name.len()), span.end);
                if let Some(tid) = self.types.head(rt) {
                    let fields = self.record_fields(tid);
                    let bare = name.rsplit('.').next().unwrap_or(name);
                    if !fields.is_empty() && !fields.iter().any(|f| f == bare) {
                        self.error(TypeError::FieldNotInRecord {
                            file: self.file,
                            span: fspan,
                            field: name.clone(),
                            record: self.type_name(tid),
                            suggestion: closest(name, &fields),
                        });
                        return (TExpr::Imm(0), self.fresh());
                    }
                }
                let Some((tid, _)) = self.lookup_field(name, fspan) else {
                    return (TExpr::Imm(0), self.fresh());
                };
                let (rec_t, ftys) = self.instantiate_record(tid);
                self.expect(r.span(), rt, rec_t);
                let i = self.field_index(tid, name).unwrap_or(0);
                let def = self.field_defs.get(&(tid, i)).copied();
                self.note(fspan, name, ftys[i], def, OccKind::Field);
                (TExpr::Field(Box::new(tr), i as u32), ftys[i])
            }
            Expr::Annot(e, t, _) => {
                let (te, et) = self.infer(e);
                let t = self.type_of(t, None);
                self.expect(e.span(), et, t);
                (te, t)
            }
            Expr::Assert(e, span) => {
                let (te, t) = self.infer(e);
                let bool_t = self.con(builtin::BOOL, vec![]);
                self.expect(e.span(), t, bool_t);
                // `assert false` never returns, so it has every type, as
                // in OCaml (`| _ -> assert false`).
                let result = if matches!(**e, Expr::Lit(Lit::Bool(false), _)) {
                    self.fresh()
                } else {
                    self.con(builtin::UNIT, vec![])
                };
                (TExpr::Assert(Box::new(te), self.loc(*span)), result)
            }
            Expr::For(l, span) => self.infer_for(l, *span),
            Expr::Receive(mailbox, arms, after, _) => {
                self.no_exception_arms(arms, "receive");
                let (tm, mt) = self.infer(mailbox);
                let msg = self.fresh();
                let pid_id = self.prelude.types.get("pid").copied();
                if let Some(pid_id) = pid_id {
                    let pt = self.con(pid_id, vec![msg]);
                    self.expect(mailbox.span(), mt, pt);
                }
                let res = self.fresh();
                let tarms = self.infer_arms(arms, msg, res);
                self.check_match(arms, &tarms, mailbox.span(), false);
                let after = after.as_ref().map(|(t, e)| {
                    let (tt, tty) = self.infer(t);
                    let int_t = self.con(builtin::INT, vec![]);
                    self.expect(t.span(), tty, int_t);
                    let (te, ety) = self.infer(e);
                    self.expect(e.span(), ety, res);
                    (Box::new(tt), Box::new(te))
                });
                (
                    TExpr::Receive {
                        mailbox: Box::new(tm),
                        arms: tarms,
                        after,
                        loc: self.loc(mailbox.span()),
                    },
                    res,
                )
            }
        }
    }

    /// Exhaustiveness (unless `exhaustive` is false, as for `receive`) and
    /// redundancy of a group of arms; `span` is what to point at for a
    /// missing case. Skipped when the arms already had errors.
    /// A destructuring `let` or parameter pattern must match every value
    /// of its type (E0120 otherwise, naming a value it misses).
    fn check_irrefutable(&mut self, pat: &TPat, span: Span) {
        if self.errors.len() != self.errors_before_item {
            return;
        }
        let report = crate::exhaustive::check_arms(self, &[pat], &[false], true);
        if let Some(missing) = report.missing {
            self.error(TypeError::RefutablePattern {
                file: self.file,
                span,
                missing,
            });
        }
    }

    /// Reports a name bound twice by one `let ... and ...` group.
    fn check_duplicate_names(&mut self, bindings: &[ast::Binding]) {
        let mut seen = std::collections::HashSet::new();
        for b in bindings {
            if let Pat::Var(n, s) = &b.pat {
                if !seen.insert(n.as_str()) {
                    self.error(TypeError::DuplicateBinding {
                        file: self.file,
                        span: *s,
                        name: n.clone(),
                    });
                }
            }
        }
    }

    /// The handler of a `try` (or of a `match`'s `exception` arms) whose
    /// arms give `res`: the variable the exception is bound to, and a
    /// `Match` on it that raises it again when no arm matches (so the arms
    /// need not be exhaustive, but an unused one is still an error).
    fn exn_handler(&mut self, arms: &[ast::Arm], res: Ty, span: Span) -> (VarId, TExpr) {
        let exn = self.con(builtin::EXN, vec![]);
        let mut tarms = self.infer_arms(arms, exn, res);
        self.check_match(arms, &tarms, Span::new(span.start, span.start + 3), false);
        let caught = self.new_var();
        let other = self.new_var();
        let loc = self.loc(span);
        tarms.push(TArm {
            pat: TPat::Var(other),
            guard: None,
            body: TExpr::Prim(Prim::Raise, vec![TExpr::Local(other)], exn, loc),
        });
        (
            caught,
            TExpr::Match(Box::new(TExpr::Local(caught)), tarms, loc),
        )
    }

    /// Reports the `exception p` arms of a construct other than `match`.
    fn no_exception_arms(&mut self, arms: &[ast::Arm], context: &'static str) {
        for a in arms.iter().filter(|a| a.exception) {
            self.error(TypeError::MisplacedExceptionArm {
                file: self.file,
                span: a.pat.span(),
                context,
            });
        }
    }

    fn check_match(&mut self, arms: &[ast::Arm], tarms: &[TArm], span: Span, exhaustive: bool) {
        if self.errors.len() != self.errors_before_item {
            return;
        }
        let pats: Vec<&TPat> = tarms.iter().map(|a| &a.pat).collect();
        let guarded: Vec<bool> = tarms.iter().map(|a| a.guard.is_some()).collect();
        let report = crate::exhaustive::check_arms(self, &pats, &guarded, exhaustive);
        for i in report.redundant {
            self.error(TypeError::UnusedArm {
                file: self.file,
                span: arms[i].pat.span(),
            });
        }
        if let Some(missing) = report.missing {
            let last = arms.last();
            self.error(TypeError::NonExhaustive {
                file: self.file,
                span,
                missing,
                insert_at: last.map_or(span.end, |a| a.body.span().end),
                last_arm: last.map_or(span.start, |a| a.pat.span().start),
            });
        }
    }

    fn value_ref(&mut self, kind: ValueKind, span: Span, ty: Ty) -> TExpr {
        match kind {
            ValueKind::Local(v) => TExpr::Local(v),
            ValueKind::Global(g) => TExpr::Global(g),
            ValueKind::Extern(x) => {
                // A primitive used as a value still needs its type (for
                // `inspect` and comparisons); the code generator wraps it.
                let _ = (span, ty);
                TExpr::Extern(x)
            }
        }
    }

    fn infer_ctor(&mut self, name: &Name, arg: Option<&Expr>, span: Span) -> (TExpr, Ty) {
        let found = self.lookup_ctor(name, span);
        if let Some(ci) = found {
            let (res, _) = self.instantiate_ctor(ci);
            let def = self.ctors[ci].def;
            let nspan = Span::new(span.start, span.start + name.to_string().len());
            self.note(nspan, &name.name, res, def, OccKind::Ctor);
        }
        let Some(ci) = found else {
            if let Some(a) = arg {
                self.infer(a);
            }
            return (TExpr::Imm(0), self.fresh());
        };
        let (result, args) = self.instantiate_ctor(ci);
        let fresh_params = match self.types.node(result) {
            TyNode::Con(_, ps) => ps,
            _ => vec![],
        };
        let repr = self.ctors[ci].repr;
        let sub: Vec<&Expr> = match (arg, args.len()) {
            (None, 0) => vec![],
            (Some(Expr::Tuple(es, _)), n) if n > 1 && es.len() == n => es.iter().collect(),
            (Some(e), 1) => vec![e],
            (a, n) => {
                let found = match a {
                    None => 0,
                    Some(Expr::Tuple(es, _)) => es.len(),
                    Some(_) => 1,
                };
                self.error(TypeError::CtorArity {
                    file: self.file,
                    span,
                    name: name.to_string(),
                    expected: n,
                    found,
                });
                if let Some(a) = a {
                    self.infer(a);
                }
                // The constructor's type is unknown here: no follow-on errors.
                let _ = result;
                return (TExpr::Imm(0), self.fresh());
            }
        };
        let mut fields = vec![];
        for (e, t) in sub.into_iter().zip(args) {
            let (te, et) = self.infer(e);
            // An argument typed by a bare parameter (`Some of 'a`) has a
            // fresh variable of this instantiation as its type.
            if fresh_params.contains(&t) {
                self.expect_fresh(e.span(), et, t);
            } else {
                self.expect(e.span(), et, t);
            }
            fields.push(te);
        }
        let te = match repr {
            CtorRepr::Constant(n) => TExpr::Imm(n as i64),
            CtorRepr::Block(tag, _) => TExpr::Block(tag, fields),
            CtorRepr::Exn(id, _) => {
                let mut all = vec![TExpr::Imm(id as i64)];
                all.extend(fields);
                TExpr::Block(0, all)
            }
        };
        (te, result)
    }

    fn infer_app(&mut self, f: &Expr, args: &[Expr], span: Span) -> (TExpr, Ty) {
        if let Expr::Var(n, fspan) = f {
            // `printf` after `open Printf` (unless a local shadows it).
            let opened = (n.module.is_none() && self.locals.find(&n.name).is_none())
                .then(|| {
                    self.opened.iter().rev().find_map(|m| {
                        let q = Name {
                            module: Some(m.clone()),
                            name: n.name.clone(),
                        };
                        crate::printf::target(&q).map(|t| (q, t))
                    })
                })
                .flatten();
            if let Some((q, (family, sink))) = opened {
                return self.infer_printf(&q, *fspan, family, sink, args, span);
            }
            if let Some((family, sink)) = crate::printf::target(n) {
                return self.infer_printf(n, *fspan, family, sink, args, span);
            }
        }
        let (tf, ft) = self.infer(f);
        if args.iter().any(|a| matches!(a, Expr::Labelled(..))) || self.has_labels(ft) {
            return self.infer_labelled_app(f, tf, ft, args, span);
        }
        let mut targs = vec![];
        let mut cur = ft;
        let arith_op = match f {
            Expr::Var(n, _) if n.module.is_none() => {
                matches!(n.name.as_str(), "+" | "-" | "*" | "/" | "~-" | "mod")
            }
            _ => false,
        };
        let float_op = match f {
            Expr::Var(n, _) if n.module.is_none() => {
                matches!(n.name.as_str(), "+." | "-." | "*." | "/." | "~-.")
            }
            _ => false,
        };
        let mut first_arg_ty = None;
        for (i, a) in args.iter().enumerate() {
            let (mut ta, mut at) = self.infer(a);
            if i == 0 {
                first_arg_ty = Some(at);
            }
            let res = self.fresh();
            match self.types.node(cur) {
                TyNode::Arrow(_, p, r) => {
                    let ident = matches!(a, Expr::Var(..)).then(|| a.span());
                    (ta, at) = self.drop_optionals(ident, ta, at, p);
                    if i == 0 {
                        first_arg_ty = Some(at);
                    }
                    if let Err(e) = self.types.unify(at, p) {
                        let occurs = matches!(e, UnifyError::Occurs(..));
                        let hint = self.operator_hint(arith_op, float_op, at);
                        self.error(TypeError::Mismatch {
                            file: self.file,
                            span: a.span(),
                            expected: p,
                            actual: at,
                            occurs,
                            hint,
                        });
                    }
                    let _ = res;
                    cur = r;
                }
                TyNode::Var { .. } => {
                    let arrow = self.types.arrow(at, res);
                    if let Err(e) = self.types.unify(cur, arrow) {
                        let occurs = matches!(e, UnifyError::Occurs(..));
                        self.error(TypeError::Mismatch {
                            file: self.file,
                            span: a.span(),
                            expected: cur,
                            actual: arrow,
                            occurs,
                            hint: None,
                        });
                    }
                    cur = res;
                }
                _ => {
                    if i == 0 {
                        self.error(TypeError::NotAFunction {
                            file: self.file,
                            span: f.span(),
                            ty: ft,
                            args: args.len(),
                            applied_span: a.span(),
                        });
                    } else {
                        self.error(TypeError::TooManyArguments {
                            file: self.file,
                            span: f.span(),
                            ty: ft,
                            expected: i,
                            extra_span: a.span(),
                        });
                    }
                    for rest in &args[i + 1..] {
                        self.infer(rest);
                    }
                    return (TExpr::Imm(0), self.fresh());
                }
            }
            targs.push(ta);
        }
        let loc = self.loc(span);
        self.finish_app(tf, targs, cur, first_arg_ty, loc)
    }

    /// The application of `tf` to `targs` (positional, in order) with
    /// result type `cur`; `first_arg_ty` types intrinsics such as `=`.
    fn finish_app(
        &mut self,
        tf: TExpr,
        mut targs: Vec<TExpr>,
        cur: Ty,
        first_arg_ty: Option<Ty>,
        loc: Loc,
    ) -> (TExpr, Ty) {
        // Fully applied builtins become direct calls or intrinsics.
        if let TExpr::Extern(x) = tf {
            let info = self.program.externs[x as usize].clone();
            if targs.len() >= info.arity && info.arity > 0 {
                let rest = targs.split_off(info.arity);
                let call =
                    if let Some(p) = info.symbol.strip_prefix('%').and_then(Prim::from_symbol) {
                        let t = if p.typed_by_result() && rest.is_empty() {
                            cur
                        } else {
                            first_arg_ty.unwrap_or_else(|| self.fresh())
                        };
                        TExpr::Prim(p, targs, t, loc)
                    } else {
                        TExpr::CallExtern(x, targs, loc)
                    };
                if rest.is_empty() {
                    return (call, cur);
                }
                return (TExpr::App(Box::new(call), rest, loc, cur), cur);
            }
        }
        (TExpr::App(Box::new(tf), targs, loc, cur), cur)
    }

    /// `Printf.printf "fmt" a b` and the like: the call expanded by
    /// [`crate::printf::expand`] and inferred as ordinary code; a format
    /// that is not a literal, or is malformed, is an error at it.
    fn infer_printf(
        &mut self,
        name: &Name,
        fspan: Span,
        family: crate::printf::Family,
        sink: Option<crate::printf::Sink>,
        args: &[Expr],
        span: Span,
    ) -> (TExpr, Ty) {
        let shown = format!("{}.{}", name.module.as_deref().unwrap_or(""), name.name);
        let (sink, args) = match sink {
            Some(s) => (s, args),
            None => match args.first().and_then(crate::printf::channel) {
                Some(s) => (s, &args[1..]),
                None => {
                    let at = args.first().map_or(fspan, |a| a.span());
                    self.error(TypeError::BadFormat {
                        file: self.file,
                        span: at,
                        message: format!(
                            "`{shown}` writes to `stdout` or `stderr` only (Caravan has no other channels)"
                        ),
                    });
                    for a in args {
                        self.infer(a);
                    }
                    return (TExpr::Imm(0), self.fresh());
                }
            },
        };
        let result = match args.first() {
            Some(Expr::Lit(Lit::Str(fmt), lspan)) => {
                crate::printf::expand(family, sink, fmt, *lspan).map_err(|m| (*lspan, m))
            }
            first => Err((
                first.map_or(fspan, |a| a.span()),
                format!("the format of `{shown}` must be a string literal (it is checked when the program is compiled)"),
            )),
        };
        let (head, specs) = match result {
            Ok(x) => x,
            Err((at, message)) => {
                self.error(TypeError::BadFormat {
                    file: self.file,
                    span: at,
                    message,
                });
                for a in args.iter().skip(1) {
                    self.infer(a);
                }
                return (TExpr::Imm(0), self.fresh());
            }
        };
        let rest = &args[1..];
        if rest.len() > specs.len() {
            // More arguments than conversions: the ordinary error.
            let call = Expr::App(Box::new(head), rest.to_vec(), span);
            return self.infer(&call);
        }
        let (tf, mut cur) = self.infer(&head);
        if rest.is_empty() {
            return (tf, cur);
        }
        // Each argument against its conversion, so that a mismatch names
        // the conversion it is for.
        let mut targs = vec![];
        for (a, spec) in rest.iter().zip(&specs) {
            let (ta, at) = self.infer(a);
            // The expansion takes one parameter per conversion.
            let TyNode::Arrow(_, p, r) = self.types.node(cur) else {
                targs.push(ta);
                continue;
            };
            if let Err(e) = self.types.unify(at, p) {
                self.error(TypeError::Mismatch {
                    file: self.file,
                    span: a.span(),
                    expected: p,
                    actual: at,
                    occurs: matches!(e, UnifyError::Occurs(..)),
                    hint: Some(format!("this argument is for the format's `{spec}`")),
                });
            }
            targs.push(ta);
            cur = r;
        }
        let loc = self.loc(span);
        (TExpr::App(Box::new(tf), targs, loc, cur), cur)
    }

    fn operator_hint(&mut self, arith_op: bool, float_op: bool, at: Ty) -> Option<String> {
        let head = self.types.head(at);
        if arith_op && head == Some(builtin::FLOAT) {
            Some("`+ - * /` work on ints; use `+. -. *. /.` for floats".into())
        } else if float_op && head == Some(builtin::INT) {
            Some("`+. -. *. /.` work on floats; use `+ - * /` for ints, or convert with `float_of_int`".into())
        } else {
            None
        }
    }

    /// `fun p1 ... pn -> body`
    /// `for i = a to b do body done`: the bounds are evaluated once, `a`
    /// first, then a local recursive function runs the body (of type
    /// `unit`) for each `i` (a tail call per step, so the loop runs in
    /// constant stack). It compares `i` with `b` after the body rather
    /// than `i + 1`, so a loop up to `max_int` ends:
    /// `let lo = a in let hi = b in let rec loop i = body; if i = hi then
    /// () else loop (i + 1) in if lo > hi then () else loop lo`.
    fn infer_for(&mut self, l: &ast::ForLoop, span: Span) -> (TExpr, Ty) {
        let int = self.con(builtin::INT, vec![]);
        let unit = self.con(builtin::UNIT, vec![]);
        let (from, ft) = self.infer(&l.from);
        self.expect(l.from.span(), ft, int);
        let (to, tt) = self.infer(&l.to);
        self.expect(l.to.span(), tt, int);
        let (lo, hi, i, step) = (
            self.new_var(),
            self.new_var(),
            self.new_var(),
            self.new_var(),
        );
        let depth = self.locals.len();
        if l.var != "_" {
            self.push_bound(&[(l.var.clone(), i, int, l.var_span)]);
        }
        self.note_scope(l.body.span());
        let (body, bt) = self.infer(&l.body);
        self.expect(l.body.span(), bt, unit);
        self.locals.truncate(depth);
        let loc = self.loc(span);
        let (past, next) = if l.up {
            (Prim::Gt, Prim::AddInt)
        } else {
            (Prim::Lt, Prim::SubInt)
        };
        let prim = |p: Prim, a: VarId, b: TExpr| TExpr::Prim(p, vec![TExpr::Local(a), b], int, loc);
        let call = |arg: TExpr| TExpr::App(Box::new(TExpr::Local(step)), vec![arg], loc, unit);
        let lam_body = TExpr::Seq(
            Box::new(body),
            Box::new(TExpr::If(
                Box::new(prim(Prim::Equal, i, TExpr::Local(hi))),
                Box::new(TExpr::Imm(0)),
                Box::new(call(prim(next, i, TExpr::Imm(1)))),
            )),
        );
        let lam = TLambda {
            params: vec![i],
            param_tys: vec![int],
            body: Box::new(lam_body),
            name: "for".into(),
            span,
            file: self.file,
        };
        let run = TExpr::If(
            Box::new(prim(past, lo, TExpr::Local(hi))),
            Box::new(TExpr::Imm(0)),
            Box::new(call(TExpr::Local(lo))),
        );
        let e = TExpr::Let(
            lo,
            Box::new(from),
            Box::new(TExpr::Let(
                hi,
                Box::new(to),
                Box::new(TExpr::LetRec(vec![(step, lam)], Box::new(run))),
            )),
        );
        (e, unit)
    }

    fn infer_lambda(
        &mut self,
        params: &[ast::Param],
        body: &Expr,
        span: Span,
        name: &str,
    ) -> (TLambda, Ty) {
        self.infer_lambda_expecting(params, body, span, name, None)
    }

    /// `fun p1 ... pn -> body`; with `expected` (the provisional type of a
    /// `let rec` function) the parameter and result types are unified with
    /// it first, so a wrong recursive call is reported at its argument.
    /// Labelled parameters give labelled arrows; `?(p = e)` receives an
    /// option and matches `p` with its contents or `e` (the defaults are
    /// typed with every parameter in scope, and evaluated once all the
    /// arguments are given).
    fn infer_lambda_expecting(
        &mut self,
        params: &[ast::Param],
        body: &Expr,
        span: Span,
        name: &str,
        expected: Option<Ty>,
    ) -> (TLambda, Ty) {
        /// What the body starts with, for one parameter.
        enum Wrap<'e> {
            /// `match v with p -> body`
            Destructure(VarId, TPat, Span),
            /// `let w = match slot with Some x -> x | None -> default`
            Default(VarId, VarId, Ty, &'e Expr),
        }
        let depth = self.locals.len();
        let mut vars = vec![];
        let mut ptys = vec![];
        let mut labels = vec![];
        let mut wraps = vec![];
        let mut all_bound: Vec<(String, VarId, Ty, Span)> = vec![];
        for param in params {
            let p = &param.pat;
            labels.push(self.label_of(&param.label));
            let t = self.fresh();
            let received = self.param_type(param, t);
            ptys.push(received);
            if let Some(default) = &param.default {
                let slot = self.new_var();
                vars.push(slot);
                let tp = self.pattern(p, t, &mut all_bound, None);
                let w = match tp {
                    TPat::Var(v) => v,
                    tp => {
                        let w = self.new_var();
                        self.check_irrefutable(&tp, p.span());
                        wraps.push(Wrap::Default(slot, w, t, default));
                        wraps.push(Wrap::Destructure(w, tp, p.span()));
                        continue;
                    }
                };
                wraps.push(Wrap::Default(slot, w, t, default));
                continue;
            }
            match p {
                Pat::Wild(_) => vars.push(self.new_var()),
                Pat::Var(..) => {
                    let tp = self.pattern(p, t, &mut all_bound, None);
                    match tp {
                        TPat::Var(v) => vars.push(v),
                        _ => vars.push(self.new_var()),
                    }
                }
                p => {
                    let v = self.new_var();
                    vars.push(v);
                    let tp = self.pattern(p, t, &mut all_bound, None);
                    self.check_irrefutable(&tp, p.span());
                    wraps.push(Wrap::Destructure(v, tp, p.span()));
                }
            }
        }
        self.push_bound(&all_bound);
        // The result type: with `expected`, a variable unified with it first;
        // without, the body's own type (unifying a fresh variable with it
        // would cost the size of that type per nested lambda).
        let res = expected.map(|exp| {
            let res = self.fresh();
            let t = self.arrows_labelled(&labels, &ptys, res);
            let _ = self.types.unify(t, exp);
            res
        });
        let mut defaults = vec![];
        for w in &wraps {
            if let Wrap::Default(_, _, t, d) = w {
                let (td, dt) = self.infer(d);
                self.expect(d.span(), dt, *t);
                defaults.push(td);
            }
        }
        self.note_scope(body.span());
        let (mut tb, bt) = self.infer(body);
        let bt = match res {
            Some(res) => {
                self.expect(body.span(), bt, res);
                res
            }
            None => bt,
        };
        self.locals.truncate(depth);
        for w in wraps.into_iter().rev() {
            tb = match w {
                Wrap::Destructure(v, tp, pspan) => TExpr::Match(
                    Box::new(TExpr::Local(v)),
                    vec![TArm {
                        pat: tp,
                        guard: None,
                        body: tb,
                    }],
                    self.loc(pspan),
                ),
                Wrap::Default(slot, w, _, d) => {
                    let td = defaults.pop().expect("one default per parameter");
                    let value = self.unwrap_default(slot, td, d.span());
                    TExpr::Let(w, Box::new(value), Box::new(tb))
                }
            };
        }
        let t = self.arrows_labelled(&labels, &ptys, bt);
        (
            TLambda {
                params: vars,
                param_tys: ptys,
                body: Box::new(tb),
                name: name.to_string(),
                span,
                file: self.file,
            },
            t,
        )
    }

    /// `l1:a1 -> ... -> ln:an -> r`.
    fn arrows_labelled(&mut self, labels: &[crate::types::Label], args: &[Ty], r: Ty) -> Ty {
        labels
            .iter()
            .zip(args)
            .rev()
            .fold(r, |acc, (&l, &a)| self.types.arrow_l(l, a, acc))
    }

    fn infer_arms(&mut self, arms: &[ast::Arm], scrut: Ty, res: Ty) -> Vec<TArm> {
        let mut out = vec![];
        for arm in arms {
            let depth = self.locals.len();
            let mut bound = vec![];
            let pat = self.pattern(&arm.pat, scrut, &mut bound, None);
            self.push_bound(&bound);
            let region = match &arm.guard {
                Some(g) => g.span().to(arm.body.span()),
                None => arm.body.span(),
            };
            self.note_scope(region);
            let guard = arm.guard.as_ref().map(|g| {
                let (tg, gt) = self.infer(g);
                let bool_t = self.con(builtin::BOOL, vec![]);
                self.expect(g.span(), gt, bool_t);
                tg
            });
            let (tb, bt) = self.infer(&arm.body);
            // `res` is fresh (see the callers) until the first arm links it.
            self.expect_fresh(arm.body.span(), bt, res);
            self.locals.truncate(depth);
            out.push(TArm {
                pat,
                guard,
                body: tb,
            });
        }
        out
    }

    fn infer_record(
        &mut self,
        base: Option<&Expr>,
        fields: &[(String, Expr, Span)],
        span: Span,
    ) -> (TExpr, Ty) {
        let Some((first, fspan)) = fields.first().map(|(n, _, s)| (n.clone(), *s)) else {
            return (TExpr::Imm(0), self.fresh());
        };
        let Some((tid, _)) = self.lookup_field(&first, fspan) else {
            for (_, e, _) in fields {
                self.infer(e);
            }
            return (TExpr::Imm(0), self.fresh());
        };
        let (rt, ftys) = self.instantiate_record(tid);
        let mut given: Vec<Option<TExpr>> = ftys.iter().map(|_| None).collect();
        for (name, e, fs) in fields {
            let (te, et) = self.infer(e);
            match self.field_index(tid, name) {
                Some(i) => {
                    if given[i].is_some() {
                        self.error(TypeError::DuplicateDefinition {
                            file: self.file,
                            span: *fs,
                            what: "field",
                            name: name.clone(),
                        });
                    }
                    self.expect(e.span(), et, ftys[i]);
                    given[i] = Some(te);
                    // For hover and go-to-definition on `{ r with f = e }`.
                    let def = self.field_defs.get(&(tid, i)).copied();
                    let nspan = Span::new(fs.start, fs.start + name.len());
                    self.note(nspan, name, ftys[i], def, OccKind::Field);
                }
                None => {
                    let fields = self.record_fields(tid);
                    self.error(TypeError::FieldNotInRecord {
                        file: self.file,
                        span: *fs,
                        field: name.clone(),
                        record: self.decls[tid as usize].name.clone(),
                        suggestion: closest(name, &fields),
                    })
                }
            }
        }
        match base {
            Some(b) => {
                let (tb, bt) = self.infer(b);
                self.expect(b.span(), bt, rt);
                let n = ftys.len() as u32;
                let updates = given
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, g)| g.map(|g| (i as u32, g)))
                    .collect();
                (TExpr::Update(Box::new(tb), n, updates), rt)
            }
            None => {
                let names: Vec<String> = match &self.decls[tid as usize].kind {
                    TypeKind::Record(fs) => fs.iter().map(|f| f.0.clone()).collect(),
                    _ => vec![],
                };
                let missing: Vec<String> = given
                    .iter()
                    .zip(&names)
                    .filter(|(g, _)| g.is_none())
                    .map(|(_, n)| n.clone())
                    .collect();
                if !missing.is_empty() {
                    self.error(TypeError::MissingFields {
                        file: self.file,
                        span,
                        record: self.decls[tid as usize].name.clone(),
                        fields: missing,
                    });
                    return (TExpr::Imm(0), rt);
                }
                (
                    TExpr::Block(
                        0,
                        given
                            .into_iter()
                            .map(|g| g.unwrap_or(TExpr::Imm(0)))
                            .collect(),
                    ),
                    rt,
                )
            }
        }
    }

    /// Checks the bindings of a local `let`, pushes their names, and returns
    /// how to wrap the body.
    fn infer_let(
        &mut self,
        rec: bool,
        bindings: &[ast::Binding],
    ) -> Box<dyn FnOnce(TExpr) -> TExpr> {
        if rec {
            let lams = self.infer_rec_group(bindings);
            let mut group = vec![];
            for (name, v, lam, t, span) in lams {
                self.locals.push((
                    name,
                    ValueInfo {
                        ty: t,
                        kind: ValueKind::Local(v),
                        def: Some((self.file, span)),
                    },
                ));
                group.push((v, lam));
            }
            return Box::new(move |body| TExpr::LetRec(group, Box::new(body)));
        }
        // Non-recursive: every right-hand side sees the outer scope.
        self.check_duplicate_names(bindings);
        let mut wraps: Vec<Box<dyn FnOnce(TExpr) -> TExpr>> = vec![];
        let mut all_bound = vec![];
        for b in bindings {
            self.level += 1;
            let (te, t) = self.infer(&b.expr);
            self.level -= 1;
            if is_value(&b.expr) {
                self.types.generalize(self.level, t);
            } else {
                self.generalize_relaxed(t);
            }
            match &b.pat {
                Pat::Var(n, s) => {
                    let v = self.new_var();
                    all_bound.push((n.clone(), v, t, *s));
                    wraps.push(Box::new(move |body| {
                        TExpr::Let(v, Box::new(te), Box::new(body))
                    }));
                }
                p => {
                    let mut bound = vec![];
                    let tp = self.pattern(p, t, &mut bound, None);
                    self.check_irrefutable(&tp, p.span());
                    let loc = self.loc(p.span());
                    all_bound.extend(bound);
                    wraps.push(Box::new(move |body| {
                        TExpr::Match(
                            Box::new(te),
                            vec![TArm {
                                pat: tp,
                                guard: None,
                                body,
                            }],
                            loc,
                        )
                    }));
                }
            }
        }
        self.push_bound(&all_bound);
        Box::new(move |body| wraps.into_iter().rev().fold(body, |acc, w| w(acc)))
    }

    /// A lambda standing in for an erroneous `let rec` right-hand side.
    fn placeholder_lambda(&mut self, name: &str, span: Span) -> TLambda {
        let v = self.new_var();
        TLambda {
            params: vec![v],
            param_tys: vec![],
            body: Box::new(TExpr::Imm(0)),
            name: name.to_string(),
            span,
            file: self.file,
        }
    }

    /// Checks a `let rec` group; every right-hand side must be a function.
    #[allow(clippy::type_complexity)]
    fn infer_rec_group(
        &mut self,
        bindings: &[ast::Binding],
    ) -> Vec<(String, VarId, TLambda, Ty, Span)> {
        self.check_duplicate_names(bindings);
        self.level += 1;
        let mut pre = vec![];
        for b in bindings {
            let t = self.fresh();
            let (name, span) = match &b.pat {
                Pat::Var(n, s) => (n.clone(), *s),
                p => {
                    self.error(TypeError::BadLetRec {
                        file: self.file,
                        span: p.span(),
                    });
                    ("_".to_string(), p.span())
                }
            };
            let v = self.new_var();
            self.note(span, &name, t, Some((self.file, span)), OccKind::Binding);
            pre.push((name.clone(), v, t, span));
            self.locals.push((
                name,
                ValueInfo {
                    ty: t,
                    kind: ValueKind::Local(v),
                    def: Some((self.file, span)),
                },
            ));
        }
        let mut out = vec![];
        for (b, (name, v, t, span)) in bindings.iter().zip(pre.clone()) {
            let lam = match &b.expr {
                Expr::Fun(ps, body, fspan) => {
                    let (mut lam, lt) =
                        self.infer_lambda_expecting(ps, body, *fspan, &name, Some(t));
                    lam.name = name.clone();
                    self.expect(b.expr.span(), lt, t);
                    lam
                }
                Expr::Function(..) | Expr::Annot(..) => {
                    let (te, et) = self.infer(&b.expr);
                    self.expect(b.expr.span(), et, t);
                    match te.into_lambda() {
                        Ok(mut l) => {
                            l.name = name.clone();
                            l
                        }
                        Err(_) => {
                            self.error(TypeError::BadLetRec {
                                file: self.file,
                                span: b.expr.span(),
                            });
                            self.placeholder_lambda(&name, span)
                        }
                    }
                }
                other => {
                    self.infer(other);
                    self.error(TypeError::BadLetRec {
                        file: self.file,
                        span: other.span(),
                    });
                    // The name stays bound (to what the error left), so its
                    // uses cause no follow-on errors; no code is generated.
                    self.placeholder_lambda(&name, span)
                }
            };
            out.push((name, v, lam, t, span));
        }
        // Remove the provisional monomorphic bindings; the caller pushes
        // the generalised ones.
        let n = pre.len();
        let len = self.locals.len();
        self.locals.truncate(len - n);
        self.level -= 1;
        for (_, _, _, t, _) in &out {
            self.types.generalize(self.level, *t);
        }
        out
    }

    /// Generalises the type `t` of a `let` whose right-hand side is not a
    /// syntactic value under the relaxed value restriction (Garrigue 2004,
    /// `types::variance`): `let l = List.rev []` is `'a list`, while a
    /// variable under an arrow's argument or inside `pid` stays weak.
    fn generalize_relaxed(&mut self, t: Ty) {
        let ids = self.types.constructors(t);
        let v =
            crate::types::variance::param_variances(&self.types, &self.decls, &self.ctors, &ids);
        self.types.generalize_relaxed(self.level, t, &v);
    }

    // ------------------------------------------------------------ items

    /// Checks the items of one module (file) and appends them to the
    /// program. `name` is the module name (`None` for the main file).
    pub fn check_module(&mut self, file: FileId, name: Option<&str>, module: &ast::Module) {
        self.check_module_opening(file, name, module, &[]);
    }

    /// [`Checker::check_module`] with the definitions of the finished
    /// modules `open` in scope unqualified, as after OCaml's `open` (a
    /// test file sees the module it tests).
    pub fn check_module_opening(
        &mut self,
        file: FileId,
        name: Option<&str>,
        module: &ast::Module,
        open: &[&str],
    ) {
        self.file = file;
        self.current_name = name.map(str::to_string);
        self.opened.clear();
        self.current = open
            .iter()
            .filter_map(|m| self.modules.get(*m).cloned())
            .fold(ModuleEnv::default(), merge);
        for item in &module.items {
            self.annot_vars.clear();
            self.errors_before_item = self.errors.len();
            self.check_item(item);
        }
        let env = std::mem::take(&mut self.current);
        match name {
            Some("Prelude") => {
                self.prelude = merge(std::mem::take(&mut self.prelude), env.clone());
                self.modules.insert("Prelude".into(), env);
            }
            Some(n) => {
                self.modules.insert(n.to_string(), env);
            }
            None => self.current = env,
        }
    }

    /// Checks items appended to the main module (a REPL phrase): unlike
    /// [`Checker::check_module`], the module's earlier definitions stay.
    pub fn check_items(&mut self, file: FileId, items: &[ast::Item]) {
        self.file = file;
        self.current_name = None;
        for item in items {
            self.annot_vars.clear();
            self.errors_before_item = self.errors.len();
            self.check_item(item);
        }
    }

    /// `exception E of t1 * … * tn`: a new constructor of `exn`, numbered
    /// for the runtime (`caravan_vm::exn`): the prelude's predefined
    /// exceptions keep the VM's fixed ids, every other declaration gets a
    /// fresh one, unique in this compiler's process (so REPL phrases and
    /// modules never share one). Its arguments may not mention type
    /// variables, as in OCaml.
    fn declare_exception(&mut self, name: &str, args: &[TypeExpr], span: Span) {
        let params = HashMap::new();
        self.current_typedef = Some(("exn".to_string(), vec![]));
        let args: Vec<Ty> = args
            .iter()
            .map(|t| self.type_of(t, Some(&params)))
            .collect();
        self.current_typedef = None;
        let predefined = caravan_vm::exn::predefined_id(name);
        let id = match (self.current_name.as_deref(), predefined) {
            (Some("Prelude"), Some(id)) => id,
            _ => NEXT_EXCEPTION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        let ci = self.ctors.len();
        self.ctors.push(CtorInfo {
            name: name.to_string(),
            type_id: builtin::EXN,
            index: ci as u32,
            repr: CtorRepr::Exn(id, args.len() as u32),
            args,
            def: Some((self.file, span)),
        });
        self.current.ctors.insert(name.to_string(), ci);
        if predefined.is_none() || self.current_name.as_deref() != Some("Prelude") {
            let printed = self.qualified(name);
            self.program.exceptions.push((id, printed));
        }
    }

    fn qualified(&self, n: &str) -> String {
        match &self.current_name {
            Some(m) => format!("{m}.{n}"),
            None => n.to_string(),
        }
    }

    fn define_global(&mut self, name: &str, ty: Ty, span: Span) -> GlobalId {
        if !self
            .index
            .iter()
            .rev()
            .take(64)
            .any(|o| o.span == span && o.file == self.file && o.kind == OccKind::Binding)
        {
            self.note(span, name, ty, Some((self.file, span)), OccKind::Binding);
        }
        let g = self.program.globals.len() as GlobalId;
        self.program.globals.push(GlobalInfo {
            name: self.qualified(name),
            ty,
        });
        self.current.values.insert(
            name.to_string(),
            ValueInfo {
                ty,
                kind: ValueKind::Global(g),
                def: Some((self.file, span)),
            },
        );
        g
    }

    /// Checks one top-level item.
    pub fn check_item(&mut self, item: &ast::Item) {
        match item {
            ast::Item::Type(defs, _) => self.declare_types(defs),
            ast::Item::Exception(name, args, span) => self.declare_exception(name, args, *span),
            ast::Item::Open(m, span) => {
                self.open_module(m, *span);
            }
            ast::Item::External(name, te, sym, span) => {
                self.level += 1;
                let t = self.type_of(te, None);
                self.level -= 1;
                self.types.generalize(self.level, t);
                // Arity as written: `unit -> (unit -> t)` takes one argument.
                let mut arity = 0;
                let mut cur = te;
                while let TypeExpr::Arrow(_, r, _) = cur {
                    arity += 1;
                    cur = r;
                }
                let x = self.program.externs.len() as ExternId;
                self.program.externs.push(ExternInfo {
                    name: self.qualified(name),
                    symbol: sym.clone(),
                    arity,
                    ty: t,
                });
                self.current.values.insert(
                    name.clone(),
                    ValueInfo {
                        ty: t,
                        kind: ValueKind::Extern(x),
                        def: Some((self.file, *span)),
                    },
                );
            }
            ast::Item::Expr(e) => {
                self.level += 1;
                let (te, t) = self.infer(e);
                self.level -= 1;
                self.types.lower(self.level, t);
                self.program.items.push(TItem::Effect(te));
            }
            ast::Item::Let(true, bindings, _) => {
                let group = self.infer_rec_group(bindings);
                let mut fns = vec![];
                for (name, v, lam, t, span) in group {
                    let g = self.define_global(&name, t, span);
                    fns.push((g, v, lam));
                }
                // The lambdas refer to each other through their local
                // variables; map those to the globals.
                let map: HashMap<VarId, GlobalId> = fns.iter().map(|(g, v, _)| (*v, *g)).collect();
                let fns = fns
                    .into_iter()
                    .map(|(g, _, mut lam)| {
                        subst_locals(&mut lam.body, &map);
                        (g, lam)
                    })
                    .collect();
                self.program.items.push(TItem::Functions(fns));
            }
            ast::Item::Let(false, bindings, _) => {
                self.check_duplicate_names(bindings);
                let mut pending = vec![];
                for b in bindings {
                    self.level += 1;
                    let (te, t) = self.infer(&b.expr);
                    self.level -= 1;
                    if is_value(&b.expr) {
                        self.types.generalize(self.level, t);
                    } else {
                        self.generalize_relaxed(t);
                    }
                    pending.push((b, te, t));
                }
                for (b, te, t) in pending {
                    match &b.pat {
                        Pat::Var(n, s) => {
                            let g = self.define_global(n, t, *s);
                            match te.into_lambda() {
                                Ok(mut l) => {
                                    l.name = self.qualified(n);
                                    self.program.items.push(TItem::Functions(vec![(g, l)]));
                                }
                                Err(te) => self.program.items.push(TItem::Value(g, te)),
                            }
                        }
                        Pat::Lit(Lit::Unit, _) | Pat::Wild(_) => {
                            let unit = self.con(builtin::UNIT, vec![]);
                            if matches!(b.pat, Pat::Lit(..)) {
                                self.expect(b.expr.span(), t, unit);
                            }
                            self.program.items.push(TItem::Effect(te));
                        }
                        p => {
                            let mut bound = vec![];
                            let tp = self.pattern(p, t, &mut bound, None);
                            self.check_irrefutable(&tp, p.span());
                            let mut outs = vec![];
                            for (n, v, vt, s) in bound {
                                let g = self.define_global(&n, vt, s);
                                outs.push((v, g));
                            }
                            let loc = self.loc(p.span());
                            self.program
                                .items
                                .push(TItem::Destructure(te, tp, outs, loc));
                        }
                    }
                }
            }
        }
    }
}

fn merge(mut a: ModuleEnv, b: ModuleEnv) -> ModuleEnv {
    a.values.extend(b.values);
    a.types.extend(b.types);
    a.ctors.extend(b.ctors);
    a.fields.extend(b.fields);
    a
}

/// Replaces references to the given locals with globals (top-level
/// `let rec` groups are checked as local groups first).
fn subst_locals(e: &mut TExpr, map: &HashMap<VarId, GlobalId>) {
    let mut stack: Vec<&mut TExpr> = vec![e];
    while let Some(e) = stack.pop() {
        if let TExpr::Local(v) = *e {
            if let Some(&g) = map.get(&v) {
                *e = TExpr::Global(g);
            }
        } else {
            crate::typed::visit::for_each_child_mut(e, |c| stack.push(c));
        }
    }
}

/// Syntactic values (generalisable under the value restriction):
/// constants, variables, functions, and constructors, tuples, lists,
/// records, annotations and `let`s all of whose sub-expressions are
/// values. Every kind of expression is listed, so a new one must be
/// classified here.
pub fn is_value(e: &Expr) -> bool {
    // A work list, not recursion: any depth (`1 :: 2 :: … :: []`).
    let mut work = vec![e];
    while let Some(e) = work.pop() {
        match e {
            Expr::Lit(..) | Expr::Var(..) | Expr::Fun(..) | Expr::Function(..) => {}
            Expr::Ctor(..)
            | Expr::Tuple(..)
            | Expr::List(..)
            | Expr::Cons(..)
            | Expr::Record(None, ..)
            | Expr::Annot(..)
            | Expr::Labelled(..)
            | Expr::Let(..) => visit::expr_children(e, |c| {
                if let Node::Expr(c) = c {
                    work.push(c);
                }
            }),
            Expr::App(..)
            | Expr::Match(..)
            | Expr::If(..)
            | Expr::Seq(..)
            | Expr::BinOp(..)
            | Expr::Record(Some(_), ..)
            | Expr::Field(..)
            | Expr::Assert(..)
            | Expr::Receive(..)
            | Expr::For(..)
            | Expr::Try(..)
            | Expr::Open(..) => return false,
        }
    }
    true
}

/// The candidate closest to `name` by edit distance, if close enough to be
/// a plausible typo.
pub fn closest(name: &str, candidates: &[String]) -> Option<String> {
    if !name.starts_with(|ch: char| ch.is_alphanumeric() || ch == '_') {
        return None;
    }
    let mut best: Option<(usize, &String)> = None;
    for c in candidates {
        if c == name || c.starts_with(|ch: char| !ch.is_alphanumeric() && ch != '_') {
            continue;
        }
        let d = levenshtein(name, c);
        if d <= (name.len().max(2) / 3).max(1)
            && best.is_none_or(|(bd, bc)| d < bd || (d == bd && c < bc))
        {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c.clone())
}

/// Edit distance counting an insertion, a deletion, a substitution or a
/// swap of two adjacent characters as one edit (Damerau's optimal string
/// alignment: `Lsit` is one edit from `List`).
fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}
