//! Type descriptors: the static type of a value, as the runtime needs it
//! where values are untagged (`Leaf`, `0`, `false` and `[]` are the same
//! word). The compiler turns types into [`Desc`] nodes — an append-only
//! global table, a cyclic graph for recursive types — and passes an index
//! where a value's type matters at run time: `inspect` renders by it, and
//! the distribution layer encodes values as Erlang terms and decodes (and
//! validates) incoming terms by it, and hashes it into the fingerprint of a
//! message type.

use std::sync::{RwLock, RwLockReadGuard};

/// An index into the descriptor table.
pub type DescId = u32;

/// A type, as the runtime needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Desc {
    /// `int`
    Int,
    /// `float`
    Float,
    /// `bool`
    Bool,
    /// `char`
    Char,
    /// `string`
    String,
    /// `unit`
    Unit,
    /// A type variable: `<poly>`.
    Poly,
    /// A function: `<fun>`.
    Fun,
    /// A pid of a process whose messages have this type.
    Pid(DescId),
    /// A process id (`Process.id`: no message type).
    ProcessId,
    /// A reply channel for values of this type.
    Reply(DescId),
    /// Another abstract type (a store, a timer, …): `<name>`.
    Abstract(String),
    /// `'a list`
    List(DescId),
    /// `a * b * …`
    Tuple(Vec<DescId>),
    /// A variant: constant constructors by number, block constructors by
    /// tag with their argument types.
    Variant {
        /// Names of the constant constructors, in order.
        consts: Vec<String>,
        /// Names and argument types of the others, by tag.
        blocks: Vec<(String, Vec<DescId>)>,
    },
    /// A record: field names and types in order, and the type's name.
    Record(Vec<(String, DescId)>, String),
    /// `('k, 'v) Map.t` (the standard library's AVL tree): printed as its
    /// bindings, `Map.of_list [(k, v); ...]`, which reads back as the same
    /// map.
    Map(DescId, DescId),
    /// Not yet filled in (while building a recursive type).
    Pending,
}

static TABLE: RwLock<Vec<Desc>> = RwLock::new(Vec::new());

/// Appends descriptors whose ids were allocated from [`next_id`] onwards.
pub fn append(descs: Vec<Desc>) {
    TABLE
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .extend(descs);
}

/// The id the next appended descriptor will get.
pub fn next_id() -> DescId {
    table().len() as DescId
}

/// The table, for reading.
pub fn table() -> RwLockReadGuard<'static, Vec<Desc>> {
    TABLE.read().unwrap_or_else(|e| e.into_inner())
}
