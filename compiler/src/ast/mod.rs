//! The surface syntax tree, as the parser builds it. Every node carries the
//! [`Span`] (byte offsets into its file) that diagnostics point at.
//! Walks over the tree get each node's children from [`visit`].

pub mod visit;

use serde::{Deserialize, Serialize};

/// Byte range `start..end` in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// A possibly qualified name: `x`, `List.map`, `Some`, `Server.Continue`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name {
    /// `Some("List")` for `List.map`.
    pub module: Option<String>,
    /// The name itself.
    pub name: String,
}

impl Name {
    /// An unqualified name.
    pub fn local(name: impl Into<String>) -> Name {
        Name {
            module: None,
            name: name.into(),
        }
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.module {
            Some(m) => write!(f, "{m}.{}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

/// A literal constant.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// `42`
    Int(i64),
    /// `1.5`
    Float(f64),
    /// `"text"`: bytes (OCaml strings are byte sequences).
    Str(Vec<u8>),
    /// `'c'`
    Char(u8),
    /// `true` / `false`
    Bool(bool),
    /// `()`
    Unit,
}

/// A type expression as written.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeExpr {
    /// `'a`
    Var(String, Span),
    /// `int`, `'a list`, `(int, string) result`, `Supervisor.child`
    Con(Name, Vec<TypeExpr>, Span),
    /// `a -> b`
    Arrow(Box<TypeExpr>, Box<TypeExpr>, Span),
    /// `a * b`
    Tuple(Vec<TypeExpr>, Span),
    /// `(t)`: kept so that `external f : unit -> (unit -> t)` has arity 1.
    Paren(Box<TypeExpr>, Span),
    /// `x:t` or `?x:t`: only as the parameter of an [`TypeExpr::Arrow`]
    /// (`x:int -> int`); for `?x:t` the function receives a `t option`.
    Labelled(ArgLabel, Box<TypeExpr>, Span),
}

impl TypeExpr {
    /// Where it was written.
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Var(_, s)
            | TypeExpr::Con(_, _, s)
            | TypeExpr::Arrow(_, _, s)
            | TypeExpr::Tuple(_, s)
            | TypeExpr::Paren(_, s)
            | TypeExpr::Labelled(_, _, s) => *s,
        }
    }
}

/// A pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Pat {
    /// `_`
    Wild(Span),
    /// `x`
    Var(String, Span),
    /// A literal (ints may be negative: `-1`).
    Lit(Lit, Span),
    /// `(a, b)`
    Tuple(Vec<Pat>, Span),
    /// `C`, `C p`, `C (p, q)` — the argument as written (a tuple pattern for
    /// several fields).
    Ctor(Name, Option<Box<Pat>>, Span),
    /// `p :: ps`
    Cons(Box<Pat>, Box<Pat>, Span),
    /// `[p; q]` (desugared by the checker)
    List(Vec<Pat>, Span),
    /// `{ x; y = p; _ }` — fields and whether `; _` closed it.
    Record(Vec<(String, Pat, Span)>, bool, Span),
    /// `p | q`
    Or(Box<Pat>, Box<Pat>, Span),
    /// `p as x`
    Alias(Box<Pat>, String, Span),
    /// `(p : t)`
    Annot(Box<Pat>, TypeExpr, Span),
}

impl Pat {
    /// Where it was written.
    pub fn span(&self) -> Span {
        match self {
            Pat::Wild(s)
            | Pat::Var(_, s)
            | Pat::Lit(_, s)
            | Pat::Tuple(_, s)
            | Pat::Ctor(_, _, s)
            | Pat::Cons(_, _, s)
            | Pat::List(_, s)
            | Pat::Record(_, _, s)
            | Pat::Or(_, _, s)
            | Pat::Alias(_, _, s)
            | Pat::Annot(_, _, s) => *s,
        }
    }
}

/// The label of a function parameter or of an argument, as OCaml's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ArgLabel {
    /// An ordinary, positional parameter or argument.
    Positional,
    /// `~x` (parameter), `~x:e` / `~x` (argument).
    Labelled(String),
    /// `?x` / `?(x = e)` (parameter), `?x:e` / `?x` (argument: an option).
    Optional(String),
}

impl ArgLabel {
    /// The label's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        match self {
            ArgLabel::Positional => None,
            ArgLabel::Labelled(n) | ArgLabel::Optional(n) => Some(n),
        }
    }
}

/// One parameter of `fun` or of a function binding: `p`, `~x`, `~x:p`,
/// `~(x : t)`, `?x`, `?(x = e)`, `?x:(p = e)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Its label.
    pub label: ArgLabel,
    /// The pattern the argument is matched with (for `?x` without a
    /// default, against the `t option` received).
    pub pat: Pat,
    /// `?(x = e)`: the value when the argument is omitted (the pattern then
    /// matches the unwrapped value).
    pub default: Option<Box<Expr>>,
    /// The whole parameter.
    pub span: Span,
}

impl Param {
    /// An ordinary parameter.
    pub fn positional(pat: Pat) -> Param {
        let span = pat.span();
        Param {
            label: ArgLabel::Positional,
            pat,
            default: None,
            span,
        }
    }
}

/// One arm of `match`, `function` or `receive`.
#[derive(Debug, Clone, PartialEq)]
pub struct Arm {
    /// The pattern.
    pub pat: Pat,
    /// `| exception p -> e` (in a `match` only): the arm matches an
    /// exception raised by the scrutinee, not its value.
    pub exception: bool,
    /// `when` guard.
    pub guard: Option<Expr>,
    /// The body.
    pub body: Expr,
}

/// One binding of `let` / `let rec ... and ...`: `f p1 p2 : t = body` is
/// stored with the parameters already turned into `fun p1 p2 -> (body : t)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The left-hand side (a variable for function bindings).
    pub pat: Pat,
    /// The right-hand side.
    pub expr: Expr,
    /// The whole binding.
    pub span: Span,
}

/// Binary operators with a fixed meaning (the rest are applications of the
/// operator's function value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `&&` (short-circuit)
    And,
    /// `||` (short-circuit)
    Or,
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Lit(Lit, Span),
    /// A variable or a qualified value `List.map`; operators as functions
    /// are variables named by their symbol (`+`).
    Var(Name, Span),
    /// A constructor, with its argument as written.
    Ctor(Name, Option<Box<Expr>>, Span),
    /// `f a b`
    App(Box<Expr>, Vec<Expr>, Span),
    /// `fun p1 p2 -> e` (parameters may be labelled: `fun ~x ?(y = 1) -> e`)
    Fun(Vec<Param>, Box<Expr>, Span),
    /// `~x:e`, `~x`, `?x:e`, `?x`: only as an argument of [`Expr::App`].
    Labelled(ArgLabel, Box<Expr>, Span),
    /// `function | ...`
    Function(Vec<Arm>, Span),
    /// `let [rec] b1 and b2 in e`
    Let(bool, Vec<Binding>, Box<Expr>, Span),
    /// `match e with ...`
    Match(Box<Expr>, Vec<Arm>, Span),
    /// `if c then a [else b]`
    If(Box<Expr>, Box<Expr>, Option<Box<Expr>>, Span),
    /// `a; b`
    Seq(Box<Expr>, Box<Expr>, Span),
    /// `(a, b)`
    Tuple(Vec<Expr>, Span),
    /// `[a; b]`
    List(Vec<Expr>, Span),
    /// `x :: xs`
    Cons(Box<Expr>, Box<Expr>, Span),
    /// `&&`, `||`
    BinOp(BinOp, Box<Expr>, Box<Expr>, Span),
    /// `{ x = 1; y = 2 }`, `{ r with x = 1 }`
    Record(Option<Box<Expr>>, Vec<(String, Expr, Span)>, Span),
    /// `r.x`
    Field(Box<Expr>, String, Span),
    /// `(e : t)`
    Annot(Box<Expr>, TypeExpr, Span),
    /// `assert e`
    Assert(Box<Expr>, Span),
    /// `receive self with arms [| after t -> e]`
    Receive(Box<Expr>, Vec<Arm>, Option<(Box<Expr>, Box<Expr>)>, Span),
    /// `for i = a to b do body done` (or `downto`)
    For(Box<ForLoop>, Span),
    /// `try e with arms`: the arms match an exception raised while `e`
    /// is evaluated; one none of them matches goes on up.
    Try(Box<Expr>, Vec<Arm>, Span),
    /// `let open M in e` and (`true`) `M.(e)`: `e` with module `M`'s
    /// definitions in scope unqualified.
    Open(String, Box<Expr>, bool, Span),
}

/// `for var = from to|downto to do body done`: the bounds are evaluated
/// once, `from` first; the body (of type `unit`) runs for each `var` from
/// `from` up (or down) to `to` inclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct ForLoop {
    /// The loop variable (`_` when unused).
    pub var: String,
    /// Where the loop variable is written.
    pub var_span: Span,
    /// The first value.
    pub from: Expr,
    /// The last value.
    pub to: Expr,
    /// `to` (counting up) rather than `downto`.
    pub up: bool,
    /// The body.
    pub body: Expr,
}

impl Expr {
    /// Where it was written.
    pub fn span(&self) -> Span {
        match self {
            Expr::Lit(_, s)
            | Expr::Var(_, s)
            | Expr::Ctor(_, _, s)
            | Expr::App(_, _, s)
            | Expr::Fun(_, _, s)
            | Expr::Labelled(_, _, s)
            | Expr::Function(_, s)
            | Expr::Let(_, _, _, s)
            | Expr::Match(_, _, s)
            | Expr::If(_, _, _, s)
            | Expr::Seq(_, _, s)
            | Expr::Tuple(_, s)
            | Expr::List(_, s)
            | Expr::Cons(_, _, s)
            | Expr::BinOp(_, _, _, s)
            | Expr::Record(_, _, s)
            | Expr::Field(_, _, s)
            | Expr::Annot(_, _, s)
            | Expr::Assert(_, s)
            | Expr::Receive(_, _, _, s)
            | Expr::For(_, s)
            | Expr::Try(_, _, s)
            | Expr::Open(_, _, _, s) => *s,
        }
    }
}

/// The right-hand side of a type definition.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeBody {
    /// `| A | B of t * u`: constructors with their field types.
    Variant(Vec<(String, Vec<TypeExpr>, Span)>),
    /// `{ x : int; y : int }`
    Record(Vec<(String, TypeExpr, Span)>),
    /// `= t` (an abbreviation)
    Alias(TypeExpr),
    /// No body: an abstract type (stdlib handles such as `pid`).
    Abstract,
}

/// One type definition of a `type ... and ...` group.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeDef {
    /// The type's name.
    pub name: String,
    /// Its parameters, `'a`.
    pub params: Vec<String>,
    /// What it is.
    pub body: TypeBody,
    /// The whole definition.
    pub span: Span,
}

/// A top-level item of a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `let [rec] ... [and ...]` without `in`.
    Let(bool, Vec<Binding>, Span),
    /// `type ... [and ...]`
    Type(Vec<TypeDef>, Span),
    /// `external name : type = "symbol"` (stdlib only: a runtime builtin)
    External(String, TypeExpr, String, Span),
    /// `exception E [of t1 * … * tn]`: a new constructor of `exn`.
    Exception(String, Vec<TypeExpr>, Span),
    /// `open M`: module `M`'s definitions in scope unqualified for the
    /// rest of the file.
    Open(String, Span),
    /// A bare expression (REPL phrases, or after `;;`).
    Expr(Expr),
}

/// A parsed file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Module {
    /// Its items in order.
    pub items: Vec<Item>,
}

/// `v` in the opposite order (the grammar builds arm lists backwards).
pub fn reversed<T>(mut v: Vec<T>) -> Vec<T> {
    v.reverse();
    v
}

/// `a op b` as the application of the operator's function value.
pub fn binop(op: &str, op_span: Span, a: Expr, b: Expr, span: Span) -> Expr {
    Expr::App(
        Box::new(Expr::Var(Name::local(op), op_span)),
        vec![a, b],
        span,
    )
}

// ---------------------------------------------------------------- drop
//
// Syntax trees are as deep as their source nests (a 1,000,000-term
// `1 + 1 + …` is a left-deep tree of that depth), and the drop glue Rust
// derives recurses once per level. These destructors move the children out
// onto a work list instead, so dropping a tree of any depth uses constant
// stack (the way rustc's and Gleam's deep trees are dropped is with a grown
// stack; here a work list suffices, and costs nothing on shallow trees).

/// A leaf to leave in a child's place.
fn unit_expr() -> Expr {
    Expr::Lit(Lit::Unit, Span::default())
}

impl Drop for Expr {
    fn drop(&mut self) {
        // The sub-expressions move onto the stack, leaving leaves in their
        // place (patterns and types are dropped by their own destructors).
        let take = |e: &mut Expr, out: &mut Vec<Expr>| {
            visit::expr_children_mut(e, |c| out.push(std::mem::replace(c, unit_expr())));
        };
        let mut stack = vec![];
        take(self, &mut stack);
        while let Some(mut e) = stack.pop() {
            take(&mut e, &mut stack);
        }
    }
}

impl Pat {
    fn take_children(&mut self, out: &mut Vec<Pat>) {
        let take = |b: &mut Pat, out: &mut Vec<Pat>| {
            out.push(std::mem::replace(b, Pat::Wild(Span::default())))
        };
        match self {
            Pat::Wild(_) | Pat::Var(..) | Pat::Lit(..) => {}
            Pat::Tuple(ps, _) | Pat::List(ps, _) => out.append(ps),
            Pat::Ctor(_, a, _) => {
                if let Some(a) = a {
                    take(a, out);
                }
            }
            Pat::Cons(a, b, _) | Pat::Or(a, b, _) => {
                take(a, out);
                take(b, out);
            }
            Pat::Record(fs, _, _) => {
                for f in fs.iter_mut() {
                    take(&mut f.1, out);
                }
            }
            Pat::Alias(p, _, _) | Pat::Annot(p, _, _) => take(p, out),
        }
    }
}

impl Drop for Pat {
    fn drop(&mut self) {
        let mut stack = vec![];
        self.take_children(&mut stack);
        while let Some(mut p) = stack.pop() {
            p.take_children(&mut stack);
        }
    }
}

impl TypeExpr {
    fn take_children(&mut self, out: &mut Vec<TypeExpr>) {
        let take = |b: &mut TypeExpr, out: &mut Vec<TypeExpr>| {
            out.push(std::mem::replace(
                b,
                TypeExpr::Var(String::new(), Span::default()),
            ))
        };
        match self {
            TypeExpr::Var(..) => {}
            TypeExpr::Con(_, args, _) | TypeExpr::Tuple(args, _) => out.append(args),
            TypeExpr::Arrow(a, b, _) => {
                take(a, out);
                take(b, out);
            }
            TypeExpr::Paren(t, _) | TypeExpr::Labelled(_, t, _) => take(t, out),
        }
    }
}

impl Drop for TypeExpr {
    fn drop(&mut self) {
        let mut stack = vec![];
        self.take_children(&mut stack);
        while let Some(mut t) = stack.pop() {
            t.take_children(&mut stack);
        }
    }
}
