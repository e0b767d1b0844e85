//! The typed, name-resolved program the checker produces and code
//! generation consumes. Names are resolved to [`VarId`]s (locals),
//! [`GlobalId`]s (top-level values) and [`ExternId`]s (runtime builtins);
//! constructors and record fields to their run-time representation (tag,
//! constant or block, field index). Types stay attached where code
//! generation needs them (`inspect`, specialised comparisons).
//! Walks over typed expressions get their children, and the variables
//! bound around each, from [`visit`].

pub mod visit;

use crate::ast::Span;
use crate::diagnostic::FileId;
use crate::types::Ty;
use serde::{Deserialize, Serialize};

/// A local variable, unique within a program.
pub type VarId = u32;
/// A top-level value.
pub type GlobalId = u32;
/// A builtin declared with `external`.
pub type ExternId = u32;

/// How a constructor is represented at run time (as OCaml: constant
/// constructors are immediates numbered in order, the others are blocks
/// tagged in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CtorRepr {
    /// An immediate int.
    Constant(u32),
    /// A block with this tag and this many fields.
    Block(u32, u32),
    /// An exception constructor (`caravan_vm::exn`): a block with tag 0
    /// whose field 0 is this id (a tagged int), then this many arguments.
    Exn(u32, u32),
}

/// A constructor in a pattern: its representation and, for
/// exhaustiveness checking, its type and index among the type's
/// constructors in declaration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtorRef {
    /// Run-time representation.
    pub repr: CtorRepr,
    /// The variant type (`bool` and `list` included).
    pub ty: crate::types::TypeId,
    /// Index in declaration order.
    pub index: u32,
    /// True when this is the type's only constructor with arguments: a
    /// value of the type that is a pointer is then this constructor, and a
    /// match needs no header test (`::`, `Some`, a tree's `Node`).
    pub sole_block: bool,
}

/// A resolved pattern.
#[derive(Debug, Serialize, Deserialize)]
pub enum TPat {
    /// `_`
    Wild,
    /// Binds a variable.
    Var(VarId),
    /// An int literal (compared as an immediate).
    Imm(i64),
    /// A char literal (compared as an immediate).
    Char(u8),
    /// A string literal (bytes).
    Str(Vec<u8>),
    /// A float literal.
    Float(f64),
    /// A constant constructor, `[]`, or a block with its fields (tuples,
    /// records and `::` are blocks with tag 0). `Block(tag, None)` never
    /// occurs; records in patterns list every field (`Wild` where omitted).
    Ctor(CtorRef, Vec<TPat>),
    /// A tuple, record or `()`: always matches; only its fields are tested.
    /// Records carry their type (to print field names in witnesses).
    Tuple(Vec<TPat>, Option<crate::types::TypeId>),
    /// `p | q` (both bind the same variables).
    Or(Box<TPat>, Box<TPat>),
    /// `p as x`
    Alias(Box<TPat>, VarId),
}

impl TPat {
    /// Variables bound, in order of first appearance.
    pub fn vars(&self, out: &mut Vec<VarId>) {
        crate::stack::deep(|| self.vars_inner(out))
    }

    fn vars_inner(&self, out: &mut Vec<VarId>) {
        match self {
            TPat::Var(v) => out.push(*v),
            TPat::Ctor(_, ps) | TPat::Tuple(ps, _) => ps.iter().for_each(|p| p.vars(out)),
            TPat::Or(a, _) => a.vars(out),
            TPat::Alias(p, v) => {
                p.vars(out);
                out.push(*v);
            }
            _ => {}
        }
    }
}

/// One arm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TArm {
    /// The pattern.
    pub pat: TPat,
    /// `when` guard.
    pub guard: Option<TExpr>,
    /// The body.
    pub body: TExpr,
}

/// A resolved function literal: `fun p1 ... pn -> body` with the
/// parameters already bound to variables (destructuring patterns become a
/// `Match` in the body).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TLambda {
    /// Parameters.
    pub params: Vec<VarId>,
    /// Their types (empty when unknown: generated lambdas).
    pub param_tys: Vec<Ty>,
    /// Body.
    pub body: Box<TExpr>,
    /// A name for stack traces and symbols.
    pub name: String,
    /// Where it was written.
    pub span: Span,
    /// The file it was written in (`usize::MAX` for generated code).
    pub file: FileId,
}

/// A source location for run-time crash messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Loc {
    /// The file.
    pub file: FileId,
    /// The span.
    pub span: Span,
}

/// A resolved expression.
#[derive(Debug, Serialize, Deserialize)]
pub enum TExpr {
    /// An immediate: int, char, bool, unit, constant constructor (already
    /// the untagged number, e.g. `true` = 1).
    Imm(i64),
    /// A float literal.
    Float(f64),
    /// A string literal (bytes).
    Str(Vec<u8>),
    /// A local variable.
    Local(VarId),
    /// A top-level value.
    Global(GlobalId),
    /// A builtin used as a value (wrapped in a closure).
    Extern(ExternId),
    /// Application `f a1 ... an`, with the type of its result (values of
    /// immediate types need no stack map entry).
    App(Box<TExpr>, Vec<TExpr>, Loc, Ty),
    /// A fully applied builtin (arity matches).
    CallExtern(ExternId, Vec<TExpr>, Loc),
    /// A function literal.
    Lambda(TLambda),
    /// `let x = e in body` (patterns become `Match`).
    Let(VarId, Box<TExpr>, Box<TExpr>),
    /// `let rec f = fun ... and g = fun ... in body`.
    LetRec(Vec<(VarId, TLambda)>, Box<TExpr>),
    /// `match e with arms`; `loc` is where a match failure is reported.
    Match(Box<TExpr>, Vec<TArm>, Loc),
    /// A block (constructor, tuple, record, `::`).
    Block(u32, Vec<TExpr>),
    /// Field `i` of a block.
    Field(Box<TExpr>, u32),
    /// `{ r with i = e; ... }`: copy of `r` with some fields replaced.
    Update(Box<TExpr>, u32, Vec<(u32, TExpr)>),
    /// `if c then a else b`
    If(Box<TExpr>, Box<TExpr>, Box<TExpr>),
    /// `a; b`
    Seq(Box<TExpr>, Box<TExpr>),
    /// `a && b`
    And(Box<TExpr>, Box<TExpr>),
    /// `a || b`
    Or(Box<TExpr>, Box<TExpr>),
    /// `assert e`
    Assert(Box<TExpr>, Loc),
    /// `receive self with arms | after t -> e`
    Receive {
        /// The receiving process's own pid.
        mailbox: Box<TExpr>,
        /// Arms (not necessarily exhaustive).
        arms: Vec<TArm>,
        /// `after ms -> e`
        after: Option<(Box<TExpr>, Box<TExpr>)>,
        /// The mailbox expression: where a receive on another process's
        /// mailbox is reported.
        loc: Loc,
    },
    /// A compiler intrinsic applied to its arguments (`%addint`, …), with the
    /// type of its first argument (for specialising comparisons and for
    /// `inspect`).
    Prim(Prim, Vec<TExpr>, Ty, Loc),
    /// `try body with …` and `match body with … | exception p -> …`: an
    /// exception raised while `body` is evaluated is bound to `exn`, and
    /// `handler` (a `Match` on it whose last arm raises it again) gives
    /// the value instead.
    Try {
        /// Evaluated inside the `try`.
        body: Box<TExpr>,
        /// A `match`'s value arms: the body's value is bound to the
        /// variable and this is the result — evaluated outside the `try`,
        /// so what it raises is not caught here. `None`: the body's value.
        ok: Option<(VarId, Box<TExpr>)>,
        /// The exception, in `handler`.
        exn: VarId,
        /// What the `try` gives when `body` raises.
        handler: Box<TExpr>,
    },
}

/// Compiler intrinsics: externals whose symbol starts with `%`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Prim {
    /// `%addint`
    AddInt,
    /// `%subint`
    SubInt,
    /// `%mulint`
    MulInt,
    /// `%divint` (crashes on zero)
    DivInt,
    /// `%modint` (crashes on zero)
    ModInt,
    /// `%negint`
    NegInt,
    /// `%andint`
    AndInt,
    /// `%orint`
    OrInt,
    /// `%xorint`
    XorInt,
    /// `%lslint`
    LslInt,
    /// `%lsrint`
    LsrInt,
    /// `%asrint`
    AsrInt,
    /// `%addfloat`
    AddFloat,
    /// `%subfloat`
    SubFloat,
    /// `%mulfloat`
    MulFloat,
    /// `%divfloat`
    DivFloat,
    /// `%negfloat`
    NegFloat,
    /// `%equal`
    Equal,
    /// `%notequal`
    NotEqual,
    /// `%lessthan`
    Lt,
    /// `%greaterthan`
    Gt,
    /// `%lessequal`
    Le,
    /// `%greaterequal`
    Ge,
    /// `%compare`
    Compare,
    /// `%eq` (physical equality)
    PhysEq,
    /// `%noteq`
    PhysNe,
    /// `%not`
    Not,
    /// `%identity` (type-level conversions such as `Char.code`)
    Identity,
    /// `%failwith`
    Failwith,
    /// `%raise`
    Raise,
    /// `%inspect`: the type travels with the call.
    Inspect,
    /// `%float_of_int`
    FloatOfInt,
    /// `%int_of_float`
    IntOfFloat,
    /// `%inspect_top`: `inspect` within the toplevel's limits (the REPL).
    InspectTop,
    /// `%assert_equal`: `Assert.equal`, a call of `Assert.equal_typed`
    /// with the descriptor of its arguments' type added in front.
    AssertEqual,
    /// `%check_forall`: `Check.forall`, a call of `Check.forall_typed`
    /// with the descriptor of the generated values' type added in front.
    CheckForall,
    /// `%assert_is_true`: `Assert.is_true`, a call of
    /// `Assert.is_true_typed` (never a tail call, so a failure names the
    /// line of the assertion, not the caller's caller).
    AssertIsTrue,
    /// `%assert_crashes`: `Assert.crashes`, as `%assert_is_true`.
    AssertCrashes,
    /// `%registry_global`: `Registry.global s`, with the descriptor of
    /// the name's message type (the prim's type is its result, `'m name`).
    RegistryGlobal,
}

impl Prim {
    /// `=`, `<>`, `<`, `>`, `<=`, `>=`, `==`, `!=`: compiled to one machine
    /// compare when the operands are immediates (physical equality always).
    pub fn is_comparison(self) -> bool {
        use Prim::*;
        matches!(self, Equal | NotEqual | Lt | Gt | Le | Ge | PhysEq | PhysNe)
    }

    /// For the typed calls (`%assert_equal`, `%check_forall`, …): the
    /// standard-library function they call, with a type descriptor as its
    /// first argument (so polymorphic code written in Caravan can print
    /// the values it was given, as `inspect` at the call site would). The
    /// call is never a tail call: the caller's frame stays, so a crash
    /// inside names the caller's line.
    pub fn typed_target(self) -> Option<&'static str> {
        match self {
            Prim::AssertEqual => Some("Assert.equal_typed"),
            Prim::CheckForall => Some("Check.forall_typed"),
            Prim::AssertIsTrue => Some("Assert.is_true_typed"),
            Prim::AssertCrashes => Some("Assert.crashes_typed"),
            _ => None,
        }
    }

    /// True for the prims whose type (in `TExpr::Prim`) is their result's
    /// rather than their first argument's.
    pub fn typed_by_result(self) -> bool {
        matches!(self, Prim::RegistryGlobal)
    }

    /// The intrinsic named by an `external`'s symbol (without the `%`).
    pub fn from_symbol(s: &str) -> Option<Prim> {
        use Prim::*;
        Some(match s {
            "addint" => AddInt,
            "subint" => SubInt,
            "mulint" => MulInt,
            "divint" => DivInt,
            "modint" => ModInt,
            "negint" => NegInt,
            "andint" => AndInt,
            "orint" => OrInt,
            "xorint" => XorInt,
            "lslint" => LslInt,
            "lsrint" => LsrInt,
            "asrint" => AsrInt,
            "addfloat" => AddFloat,
            "subfloat" => SubFloat,
            "mulfloat" => MulFloat,
            "divfloat" => DivFloat,
            "negfloat" => NegFloat,
            "equal" => Equal,
            "notequal" => NotEqual,
            "lessthan" => Lt,
            "greaterthan" => Gt,
            "lessequal" => Le,
            "greaterequal" => Ge,
            "compare" => Compare,
            "eq" => PhysEq,
            "noteq" => PhysNe,
            "not" => Not,
            "identity" => Identity,
            "failwith" => Failwith,
            "raise" => Raise,
            "inspect" => Inspect,
            "float_of_int" => FloatOfInt,
            "int_of_float" => IntOfFloat,
            "inspect_top" => InspectTop,
            "assert_equal" => AssertEqual,
            "check_forall" => CheckForall,
            "assert_is_true" => AssertIsTrue,
            "assert_crashes" => AssertCrashes,
            "registry_global" => RegistryGlobal,
            _ => return None,
        })
    }
}

/// A builtin declared by `external`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExternInfo {
    /// Qualified name, for messages.
    pub name: String,
    /// The runtime symbol (`caravan_rt_send`) or intrinsic (`%addint`).
    pub symbol: String,
    /// Number of arguments (from its declared type).
    pub arity: usize,
    /// Its declared type (generic).
    pub ty: Ty,
}

/// A top-level value binding.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GlobalInfo {
    /// Qualified name (`List.map`).
    pub name: String,
    /// Its type scheme.
    pub ty: Ty,
}

/// One top-level definition, in evaluation order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TItem {
    /// `let rec f = fun ... and g = ...` (or a single non-recursive function):
    /// top-level functions, compiled to code with static closures.
    Functions(Vec<(GlobalId, TLambda)>),
    /// `let x = e`: evaluated at start-up, stored in the global's slot.
    Value(GlobalId, TExpr),
    /// `let p = e` with a destructuring pattern: evaluated, matched, and
    /// each bound variable stored in its global.
    Destructure(TExpr, TPat, Vec<(VarId, GlobalId)>, Loc),
    /// `let () = e` / a bare expression: evaluated for its effects.
    Effect(TExpr),
}

/// A whole checked program.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TProgram {
    /// Items of every module in initialisation order.
    pub items: Vec<TItem>,
    /// Top-level values.
    pub globals: Vec<GlobalInfo>,
    /// Builtins.
    pub externs: Vec<ExternInfo>,
    /// Number of local variables (ids are `0..num_vars`).
    pub num_vars: u32,
    /// The exception constructors declared: id and printed name (`E`, or
    /// `M.E` in module `M`), for `caravan_vm::exn::register_name`.
    pub exceptions: Vec<(u32, String)>,
}

// ---------------------------------------------------------------- drop
//
// As the syntax trees (see `ast/mod.rs`): typed trees are as deep as the
// source nests, so they are dropped with a work list, not recursively.

impl TExpr {
    /// The lambda, if this is one (`TExpr` has a destructor, so it cannot
    /// be taken apart by a pattern).
    pub fn into_lambda(mut self) -> Result<TLambda, TExpr> {
        match &mut self {
            TExpr::Lambda(l) => Ok(std::mem::replace(
                l,
                TLambda {
                    params: vec![],
                    param_tys: vec![],
                    body: Box::new(TExpr::Imm(0)),
                    name: String::new(),
                    span: Span::default(),
                    file: 0,
                },
            )),
            _ => Err(self),
        }
    }
}

impl Drop for TExpr {
    fn drop(&mut self) {
        // The sub-expressions move onto the stack, leaving `Imm(0)` in their
        // place (patterns are dropped by their own destructor).
        let take = |e: &mut TExpr, out: &mut Vec<TExpr>| {
            visit::for_each_child_mut(e, |c| out.push(std::mem::replace(c, TExpr::Imm(0))));
        };
        let mut stack = vec![];
        take(self, &mut stack);
        while let Some(mut e) = stack.pop() {
            take(&mut e, &mut stack);
        }
    }
}

impl Drop for TPat {
    fn drop(&mut self) {
        let take = |p: &mut TPat, out: &mut Vec<TPat>| match p {
            TPat::Ctor(_, ps) | TPat::Tuple(ps, _) => out.append(ps),
            TPat::Or(a, b) => {
                out.push(std::mem::replace(&mut **a, TPat::Wild));
                out.push(std::mem::replace(&mut **b, TPat::Wild));
            }
            TPat::Alias(a, _) => out.push(std::mem::replace(&mut **a, TPat::Wild)),
            _ => {}
        };
        let mut stack = vec![];
        take(self, &mut stack);
        while let Some(mut p) = stack.pop() {
            take(&mut p, &mut stack);
        }
    }
}

// Cloned as derived, but through `stack::deep` at every node: code
// generation clones lambdas whose bodies may be 1,000,000 deep.

impl Clone for TPat {
    fn clone(&self) -> Self {
        crate::stack::deep(|| match self {
            TPat::Wild => TPat::Wild,
            TPat::Var(v) => TPat::Var(*v),
            TPat::Imm(n) => TPat::Imm(*n),
            TPat::Char(c) => TPat::Char(*c),
            TPat::Str(s) => TPat::Str(s.clone()),
            TPat::Float(f) => TPat::Float(*f),
            TPat::Ctor(c, ps) => TPat::Ctor(*c, ps.clone()),
            TPat::Tuple(ps, r) => TPat::Tuple(ps.clone(), *r),
            TPat::Or(a, b) => TPat::Or(a.clone(), b.clone()),
            TPat::Alias(p, v) => TPat::Alias(p.clone(), *v),
        })
    }
}

impl Clone for TExpr {
    fn clone(&self) -> Self {
        crate::stack::deep(|| match self {
            TExpr::Imm(n) => TExpr::Imm(*n),
            TExpr::Float(f) => TExpr::Float(*f),
            TExpr::Str(s) => TExpr::Str(s.clone()),
            TExpr::Local(v) => TExpr::Local(*v),
            TExpr::Global(g) => TExpr::Global(*g),
            TExpr::Extern(x) => TExpr::Extern(*x),
            TExpr::App(f, args, loc, t) => TExpr::App(f.clone(), args.clone(), *loc, *t),
            TExpr::CallExtern(x, args, loc) => TExpr::CallExtern(*x, args.clone(), *loc),
            TExpr::Lambda(l) => TExpr::Lambda(l.clone()),
            TExpr::Let(v, a, b) => TExpr::Let(*v, a.clone(), b.clone()),
            TExpr::LetRec(g, b) => TExpr::LetRec(g.clone(), b.clone()),
            TExpr::Match(s, arms, loc) => TExpr::Match(s.clone(), arms.clone(), *loc),
            TExpr::Block(tag, fs) => TExpr::Block(*tag, fs.clone()),
            TExpr::Field(a, i) => TExpr::Field(a.clone(), *i),
            TExpr::Update(a, n, fs) => TExpr::Update(a.clone(), *n, fs.clone()),
            TExpr::If(a, b, c) => TExpr::If(a.clone(), b.clone(), c.clone()),
            TExpr::Seq(a, b) => TExpr::Seq(a.clone(), b.clone()),
            TExpr::And(a, b) => TExpr::And(a.clone(), b.clone()),
            TExpr::Or(a, b) => TExpr::Or(a.clone(), b.clone()),
            TExpr::Assert(a, loc) => TExpr::Assert(a.clone(), *loc),
            TExpr::Receive {
                mailbox,
                arms,
                after,
                loc,
            } => TExpr::Receive {
                mailbox: mailbox.clone(),
                arms: arms.clone(),
                after: after.clone(),
                loc: *loc,
            },
            TExpr::Prim(p, args, t, loc) => TExpr::Prim(*p, args.clone(), *t, *loc),
            TExpr::Try {
                body,
                ok,
                exn,
                handler,
            } => TExpr::Try {
                body: body.clone(),
                ok: ok.clone(),
                exn: *exn,
                handler: handler.clone(),
            },
        })
    }
}
