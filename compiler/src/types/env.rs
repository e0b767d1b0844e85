//! The checker's environment: type declarations, constructors, record
//! fields, and the values visible in each module.

use super::{Ty, TypeId};
use crate::ast::Span;
use crate::diagnostic::FileId;
use crate::typed::{CtorRepr, ExternId, GlobalId, VarId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What a type name stands for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TypeKind {
    /// `int`, `list`, …: known to the compiler.
    Builtin,
    /// Declared without a body (`type 'm pid`): a runtime handle.
    Abstract,
    /// A variant type: its constructors (indices into `Env::ctors`).
    Variant(Vec<usize>),
    /// A record type: field names and types (over the declaration's
    /// parameters).
    Record(Vec<(String, Ty)>),
    /// An abbreviation, expanded where it is used.
    Alias(Ty),
    /// A definition that had an error (a cyclic abbreviation): every use
    /// is a fresh type variable, so it causes no follow-on errors.
    Error,
}

/// A declared type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TypeDecl {
    /// Its name as written.
    pub name: String,
    /// Defining module (`None` for builtins and the main file's own types).
    pub module: Option<String>,
    /// Generic variables standing for its parameters.
    pub params: Vec<Ty>,
    /// What it is.
    pub kind: TypeKind,
    /// Where it was defined.
    pub def: Option<(FileId, Span)>,
}

/// A constructor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CtorInfo {
    /// Its name.
    pub name: String,
    /// The variant type it builds.
    pub type_id: TypeId,
    /// Its index among that type's constructors, in declaration order.
    pub index: u32,
    /// Run-time representation.
    pub repr: CtorRepr,
    /// Argument types, over the type's generic parameters.
    pub args: Vec<Ty>,
    /// Where it was declared.
    pub def: Option<(FileId, Span)>,
}

/// How a value name is implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValueKind {
    /// A local variable.
    Local(VarId),
    /// A top-level value of some module.
    Global(GlobalId),
    /// A builtin.
    Extern(ExternId),
}

/// A value in scope: its type scheme and implementation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValueInfo {
    /// Type (generic variables are quantified).
    pub ty: Ty,
    /// Implementation.
    pub kind: ValueKind,
    /// Where it was defined.
    pub def: Option<(FileId, Span)>,
}

/// What a module exports (also used for the module being checked).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModuleEnv {
    /// Values by name (later definitions replace earlier ones).
    pub values: HashMap<String, ValueInfo>,
    /// Types by name.
    pub types: HashMap<String, TypeId>,
    /// Constructors by name.
    pub ctors: HashMap<String, usize>,
    /// Record fields by name: (record type, field index).
    pub fields: HashMap<String, (TypeId, usize)>,
}

/// What kind of name an [`Occurrence`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OccKind {
    /// A use of a value (`x`, `List.map`).
    Value,
    /// A binding of a value (pattern variable, parameter, `let` name).
    Binding,
    /// A constructor (in an expression or a pattern).
    Ctor,
    /// A record field.
    Field,
    /// A type name.
    Type,
}

/// One identifier in the source with what the checker knows of it: the
/// semantic index behind hover, go-to-definition, references and rename.
#[derive(Debug, Clone)]
pub struct Occurrence {
    /// File and span of the identifier.
    pub file: FileId,
    /// Its span.
    pub span: Span,
    /// The name as written (unqualified).
    pub name: String,
    /// Its type (resolve through the checker's arena when queried).
    pub ty: Ty,
    /// Where what it names is defined.
    pub def: Option<(FileId, Span)>,
    /// Kind.
    pub kind: OccKind,
}

/// The local names visible in a region (for completion).
#[derive(Debug, Clone)]
pub struct Scope {
    /// File.
    pub file: FileId,
    /// The region (a `let` body, a function body, a match arm).
    pub span: Span,
    /// Visible locals, innermost last: (name, type).
    pub names: Vec<(String, Ty)>,
}
