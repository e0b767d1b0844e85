//! The External Term Format (Erlang's `term_to_binary`, version 131), typed
//! by [`Desc`]: the distribution layer encodes a value by its static type
//! and decodes an incoming term against the receiving mailbox's type,
//! validating while it reads (LANGUAGE.md §7). Values map onto terms as
//! Gleam maps its own:
//!
//! | Caravan                         | Erlang term                              |
//! |---------------------------------|------------------------------------------|
//! | `int` (63-bit)                  | integer (`SMALL_INTEGER`/`INTEGER`/`SMALL_BIG`) |
//! | `float`                         | float (`NEW_FLOAT`)                      |
//! | `string`                        | binary (a charlist or `[]` is accepted)  |
//! | `char`                          | integer 0–255                            |
//! | `bool`                          | `true` / `false`                         |
//! | `unit`                          | `nil` (Gleam's `Nil`)                    |
//! | `a * b`                         | `{A, B}`                                 |
//! | `'a list`                       | list (a charlist for ints)               |
//! | constant constructor `Pong`     | atom `pong` (snake_case)                 |
//! | `Incr 5`, `Ok x`                | `{incr, 5}`, `{ok, X}`                   |
//! | record `{x; y}` of type `point` | `{point, X, Y}` (fields in order)        |
//! | `'m pid`, `Process.id`          | pid (`NEW_PID`)                          |
//! | `'r reply`                      | `{Pid, Ref}` (a gen_server `From`)       |
//!
//! Functions, abstract handles (stores, timers, sockets), `Map.t` and type
//! variables do not cross nodes: encoding one fails, and the sender
//! crashes with a message naming it.
//!
//! Both directions are iterative with an explicit work list — a deep
//! structure or a hostile frame never recurses on a native stack. Decoding
//! runs twice over the bytes: a first pass checks the term against the type
//! and counts the heap words it needs (so a term that does not fit is
//! refused before anything is allocated), the second builds the value in
//! one [`Fragment`].

use super::desc::{table, Desc, DescId};
use crate::heap::Fragment;
use crate::value::*;

/// `VERSION_MAGIC`.
pub const VERSION: u8 = 131;
const NEW_FLOAT: u8 = 70;
const SMALL_INTEGER: u8 = 97;
const INTEGER: u8 = 98;
const ATOM: u8 = 100;
const PID: u8 = 103;
const SMALL_TUPLE: u8 = 104;
const LARGE_TUPLE: u8 = 105;
const NIL: u8 = 106;
const STRING: u8 = 107;
const LIST: u8 = 108;
const BINARY: u8 = 109;
const SMALL_BIG: u8 = 110;
const SMALL_ATOM: u8 = 115;
const MAP: u8 = 116;
const ATOM_UTF8: u8 = 118;
const SMALL_ATOM_UTF8: u8 = 119;
const NEW_PID: u8 = 88;
const NEWER_REFERENCE: u8 = 90;
const NEW_REFERENCE: u8 = 114;

/// An Erlang pid as it travels: node name, id, serial, creation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PidTerm {
    /// `name@host`.
    pub node: String,
    pub id: u32,
    pub serial: u32,
    pub creation: u32,
}

/// An Erlang reference: node name, creation, id words (1 to 5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RefTerm {
    pub node: String,
    pub creation: u32,
    pub ids: Vec<u32>,
}

/// Why a term was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtfError(pub String);

impl std::fmt::Display for EtfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(s: impl Into<String>) -> Result<T, EtfError> {
    Err(EtfError(s.into()))
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// Writes an atom (`SMALL_ATOM_UTF8` or `ATOM_UTF8`).
pub fn put_atom(out: &mut Vec<u8>, a: &str) {
    let b = a.as_bytes();
    if b.len() < 256 {
        out.push(SMALL_ATOM_UTF8);
        out.push(b.len() as u8);
    } else {
        out.push(ATOM_UTF8);
        out.extend_from_slice(&(b.len().min(65535) as u16).to_be_bytes());
    }
    out.extend_from_slice(&b[..b.len().min(65535)]);
}

/// Writes an integer (small, 32-bit or a `SMALL_BIG`).
pub fn put_int(out: &mut Vec<u8>, n: i64) {
    if (0..256).contains(&n) {
        out.push(SMALL_INTEGER);
        out.push(n as u8);
    } else if i32::try_from(n).is_ok() {
        out.push(INTEGER);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        let (sign, mut m) = (u8::from(n < 0), n.unsigned_abs());
        let mut digits = vec![];
        while m > 0 {
            digits.push(m as u8);
            m >>= 8;
        }
        out.push(SMALL_BIG);
        out.push(digits.len() as u8);
        out.push(sign);
        out.extend_from_slice(&digits);
    }
}

/// Writes a tuple header of `n` elements.
pub fn put_tuple(out: &mut Vec<u8>, n: usize) {
    if n < 256 {
        out.push(SMALL_TUPLE);
        out.push(n as u8);
    } else {
        out.push(LARGE_TUPLE);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// Writes a pid (`NEW_PID`).
pub fn put_pid(out: &mut Vec<u8>, p: &PidTerm) {
    out.push(NEW_PID);
    put_atom(out, &p.node);
    out.extend_from_slice(&p.id.to_be_bytes());
    out.extend_from_slice(&p.serial.to_be_bytes());
    out.extend_from_slice(&p.creation.to_be_bytes());
}

/// Writes a reference (`NEWER_REFERENCE`).
pub fn put_ref(out: &mut Vec<u8>, r: &RefTerm) {
    out.push(NEWER_REFERENCE);
    out.extend_from_slice(&(r.ids.len() as u16).to_be_bytes());
    put_atom(out, &r.node);
    out.extend_from_slice(&r.creation.to_be_bytes());
    for i in &r.ids {
        out.extend_from_slice(&i.to_be_bytes());
    }
}

/// Writes a binary.
pub fn put_binary(out: &mut Vec<u8>, b: &[u8]) {
    out.push(BINARY);
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

/// Writes `[]`.
pub fn put_nil(out: &mut Vec<u8>) {
    out.push(NIL);
}

/// `Pong` → `pong`, `NotFound` → `not_found`, `HTTP_error` → `http_error`
/// (Gleam's rule: an underscore before an upper-case letter that follows a
/// lower-case one).
pub fn snake_case(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else {
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            s.push(c);
        }
    }
    s
}

/// What the encoder asks of the node layer: how this node's pids and reply
/// channels travel.
pub trait EncodeCtx {
    /// The term of the pid with `serial` (local or a proxy of a remote
    /// one); `msg` is the message type of its mailbox (`None` for a
    /// `Process.id`), recorded so that messages sent back decode by it.
    fn pid(&mut self, serial: u64, msg: Option<DescId>) -> Result<PidTerm, EtfError>;
    /// The `{Pid, Ref}` of reply channel (`caller`, `call reference`) whose
    /// reply has type `reply`.
    fn reply(&mut self, caller: u64, r: u64, reply: DescId)
        -> Result<(PidTerm, RefTerm), EtfError>;
}

/// Appends the term of `v`, a value of type `d`, to `out` (without the
/// version byte). Fails on what cannot cross nodes.
///
/// # Safety
/// `v` must be a valid value of type `d` that stays unmoved during the call.
pub unsafe fn encode(
    v: Value,
    d: DescId,
    out: &mut Vec<u8>,
    ctx: &mut dyn EncodeCtx,
) -> Result<(), EtfError> {
    let descs = table();
    let mut work: Vec<(Value, DescId)> = vec![(v, d)];
    while let Some((v, d)) = work.pop() {
        if d == NIL_MARK {
            put_nil(out);
            continue;
        }
        let Some(desc) = descs.get(d as usize) else {
            return err("unknown type descriptor");
        };
        // SAFETY (for the reads below): `v` is a valid value of type `d`
        // (caller's guarantee, and by induction its fields).
        unsafe {
            match desc {
                Desc::Int => put_int(out, int_of(v)),
                Desc::Char => put_int(out, int_of(v)),
                Desc::Bool => put_atom(out, if v == TRUE { "true" } else { "false" }),
                Desc::Unit => put_atom(out, "nil"),
                Desc::Float => {
                    out.push(NEW_FLOAT);
                    out.extend_from_slice(&float_of(v).to_bits().to_be_bytes());
                }
                Desc::String => put_binary(out, string_bytes(v)),
                Desc::Tuple(ts) => {
                    put_tuple(out, ts.len());
                    for (i, t) in ts.iter().enumerate().rev() {
                        work.push((field(v, i), *t));
                    }
                }
                Desc::Record(fs, name) => {
                    put_tuple(out, fs.len() + 1);
                    put_atom(out, &snake_case(name));
                    for (i, (_, t)) in fs.iter().enumerate().rev() {
                        work.push((field(v, i), *t));
                    }
                }
                Desc::List(t) => {
                    let mut n = 0usize;
                    let mut l = v;
                    while is_block(l) {
                        n += 1;
                        l = field(l, 1);
                    }
                    if n == 0 {
                        put_nil(out);
                        continue;
                    }
                    out.push(LIST);
                    out.extend_from_slice(&(n as u32).to_be_bytes());
                    // The tail `[]` goes last: pushed first.
                    work.push((UNIT, NIL_MARK));
                    let mut items = Vec::with_capacity(n);
                    let mut l = v;
                    while is_block(l) {
                        items.push(field(l, 0));
                        l = field(l, 1);
                    }
                    for x in items.into_iter().rev() {
                        work.push((x, *t));
                    }
                }
                Desc::Variant { consts, blocks } => {
                    if is_immediate(v) {
                        let i = int_of(v) as usize;
                        let Some(c) = consts.get(i) else {
                            return err("constructor out of range");
                        };
                        put_atom(out, &snake_case(c));
                    } else {
                        let tag = header_tag(header(v)) as usize;
                        let Some((name, args)) = blocks.get(tag) else {
                            return err("constructor out of range");
                        };
                        put_tuple(out, args.len() + 1);
                        put_atom(out, &snake_case(name));
                        for (i, t) in args.iter().enumerate().rev() {
                            work.push((field(v, i), *t));
                        }
                    }
                }
                Desc::Pid(m) => put_pid(out, &ctx.pid(crate::process::serial_of_pid(v), Some(*m))?),
                Desc::ProcessId => put_pid(out, &ctx.pid(crate::process::serial_of_pid(v), None)?),
                Desc::Reply(r) => {
                    let (p, rf) = ctx.reply(field(v, 0), field(v, 1), *r)?;
                    put_tuple(out, 2);
                    put_pid(out, &p);
                    put_ref(out, &rf);
                }
                Desc::Fun => return err("a function cannot be sent to another node"),
                Desc::Map(..) => return err("a Map.t cannot be sent to another node yet"),
                Desc::Abstract(n) => {
                    return err(format!(
                        "a value of type {n} cannot be sent to another node"
                    ))
                }
                Desc::Poly | Desc::Pending => {
                    return err("a value of unknown type cannot be sent to another node")
                }
            }
        }
    }
    Ok(())
}

/// Marks "write `[]`" in the encoder's work list.
const NIL_MARK: DescId = DescId::MAX;

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// A cursor over a term's bytes. Every read is bounds-checked.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    pub bytes: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], EtfError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return err("truncated term");
        };
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    /// One byte.
    pub fn u8(&mut self) -> Result<u8, EtfError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, EtfError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, EtfError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn peek(&self) -> Result<u8, EtfError> {
        self.bytes
            .get(self.pos)
            .copied()
            .ok_or(EtfError("truncated term".into()))
    }

    /// The version byte, `131`.
    pub fn version(&mut self) -> Result<(), EtfError> {
        if self.u8()? != VERSION {
            return err("not an External Term Format term (no version 131)");
        }
        Ok(())
    }

    /// An atom's text (any of the four atom encodings).
    pub fn atom(&mut self) -> Result<&'a str, EtfError> {
        let n = match self.u8()? {
            ATOM | ATOM_UTF8 => self.u16()? as usize,
            SMALL_ATOM | SMALL_ATOM_UTF8 => self.u8()? as usize,
            t => return err(format!("expected an atom, found tag {t}")),
        };
        std::str::from_utf8(self.take(n)?).map_err(|_| EtfError("atom is not UTF-8".into()))
    }

    /// An integer that fits 63 bits.
    pub fn int(&mut self) -> Result<i64, EtfError> {
        match self.u8()? {
            SMALL_INTEGER => Ok(self.u8()? as i64),
            INTEGER => Ok(self.u32()? as i32 as i64),
            SMALL_BIG => {
                let n = self.u8()? as usize;
                let sign = self.u8()?;
                let digits = self.take(n)?;
                if digits.iter().skip(8).any(|&b| b != 0) {
                    return err("integer does not fit 63 bits");
                }
                let mut m: u64 = 0;
                for (i, &b) in digits.iter().take(8).enumerate() {
                    m |= (b as u64) << (8 * i);
                }
                let v = if sign == 0 {
                    i64::try_from(m).ok()
                } else {
                    0i64.checked_sub_unsigned(m)
                };
                match v {
                    Some(v) if (-(1i64 << 62)..(1i64 << 62)).contains(&v) => Ok(v),
                    _ => err("integer does not fit 63 bits"),
                }
            }
            t => err(format!("expected an integer, found tag {t}")),
        }
    }

    /// A pid (`NEW_PID` or `PID`).
    pub fn pid(&mut self) -> Result<PidTerm, EtfError> {
        let tag = self.u8()?;
        if tag != NEW_PID && tag != PID {
            return err(format!("expected a pid, found tag {tag}"));
        }
        let node = self.atom()?.to_string();
        let id = self.u32()?;
        let serial = self.u32()?;
        let creation = if tag == NEW_PID {
            self.u32()?
        } else {
            self.u8()? as u32
        };
        Ok(PidTerm {
            node,
            id,
            serial,
            creation,
        })
    }

    /// A reference (`NEWER_REFERENCE` or `NEW_REFERENCE`).
    pub fn reference(&mut self) -> Result<RefTerm, EtfError> {
        let tag = self.u8()?;
        if tag != NEWER_REFERENCE && tag != NEW_REFERENCE {
            return err(format!("expected a reference, found tag {tag}"));
        }
        let n = self.u16()? as usize;
        if n == 0 || n > 5 {
            return err("reference with a bad length");
        }
        let node = self.atom()?.to_string();
        let creation = if tag == NEWER_REFERENCE {
            self.u32()?
        } else {
            self.u8()? as u32
        };
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(self.u32()?);
        }
        Ok(RefTerm {
            node,
            creation,
            ids,
        })
    }

    /// A binary's bytes (`BINARY_EXT`).
    pub fn binary(&mut self) -> Result<&'a [u8], EtfError> {
        if self.u8()? != BINARY {
            return err("expected a binary");
        }
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// A tuple's arity.
    pub fn tuple(&mut self) -> Result<usize, EtfError> {
        match self.u8()? {
            SMALL_TUPLE => Ok(self.u8()? as usize),
            LARGE_TUPLE => Ok(self.u32()? as usize),
            t => err(format!("expected a tuple, found tag {t}")),
        }
    }

    /// Skips one whole term of any kind (iteratively; at most `limit`
    /// nested levels), for control messages' fields we do not read.
    pub fn skip(&mut self, limit: usize) -> Result<(), EtfError> {
        let mut pending: usize = 1;
        let mut depth = 0usize;
        let mut stack: Vec<usize> = vec![];
        while pending > 0 || !stack.is_empty() {
            if pending == 0 {
                pending = stack.pop().unwrap_or(0);
                depth = depth.saturating_sub(1);
                continue;
            }
            pending -= 1;
            let mut children = 0usize;
            match self.peek()? {
                SMALL_INTEGER | INTEGER | SMALL_BIG => {
                    // Any width: skip without the 63-bit check.
                    match self.u8()? {
                        SMALL_INTEGER => {
                            self.take(1)?;
                        }
                        INTEGER => {
                            self.take(4)?;
                        }
                        _ => {
                            let n = self.u8()? as usize;
                            self.take(n + 1)?;
                        }
                    }
                }
                NEW_FLOAT => {
                    self.take(9)?;
                }
                ATOM | ATOM_UTF8 | SMALL_ATOM | SMALL_ATOM_UTF8 => {
                    self.atom()?;
                }
                NEW_PID | PID => {
                    self.pid()?;
                }
                NEWER_REFERENCE | NEW_REFERENCE => {
                    self.reference()?;
                }
                SMALL_TUPLE | LARGE_TUPLE => children = self.tuple()?,
                NIL => {
                    self.take(1)?;
                }
                STRING => {
                    self.take(1)?;
                    let n = self.u16()? as usize;
                    self.take(n)?;
                }
                BINARY => {
                    self.take(1)?;
                    let n = self.u32()? as usize;
                    self.take(n)?;
                }
                LIST => {
                    self.take(1)?;
                    children = (self.u32()? as usize)
                        .checked_add(1)
                        .ok_or(EtfError("bad list".into()))?;
                }
                MAP => {
                    self.take(1)?;
                    children = (self.u32()? as usize)
                        .checked_mul(2)
                        .ok_or(EtfError("bad map".into()))?;
                }
                t => return err(format!("unsupported term tag {t}")),
            }
            if children > 0 {
                if children > self.bytes.len() - self.pos {
                    return err("a length larger than the frame");
                }
                depth += 1;
                if depth > limit {
                    return err("term nested too deeply");
                }
                stack.push(pending);
                pending = children;
            }
        }
        Ok(())
    }
}

/// What the decoder asks of the node layer: local serials for incoming
/// pids and reply channels.
pub trait DecodeCtx {
    /// The serial standing for pid `p` here (a local process, or a proxy
    /// of a remote one whose messages have type `msg`).
    fn pid(&mut self, p: &PidTerm, msg: Option<DescId>) -> u64;
    /// The (caller serial, call reference) of a reply channel `{Pid, Ref}`
    /// whose reply has type `reply`.
    fn reply(&mut self, p: &PidTerm, r: &RefTerm, reply: DescId) -> (u64, u64);
}

/// One step of the decoder's work list.
enum Step {
    /// Read a term of this type; its value goes to `slot`.
    Term(DescId, *mut u64),
    /// Read the tail of a list (must be `[]`).
    Nil,
}

/// Decodes one term of type `d` from `r` into a fresh fragment: the value
/// and its fragment (`None` when it needs no heap block). At most
/// `max_words` heap words. The term is checked completely before anything
/// is allocated.
///
/// # Errors
/// A term that does not fit the type (naming what was expected), a
/// truncated or malformed term, or one larger than `max_words`.
pub fn decode(
    r: &mut Reader<'_>,
    d: DescId,
    max_words: usize,
    ctx: &mut dyn DecodeCtx,
) -> Result<(Value, Option<Fragment>), EtfError> {
    let start = *r;
    let words = walk(r, d, max_words, None, ctx)?;
    let end = r.pos;
    if words == 0 {
        let mut again = start;
        let mut root: u64 = UNIT;
        walk(
            &mut again,
            d,
            max_words,
            Some((&mut root as *mut u64, std::ptr::null_mut())),
            ctx,
        )?;
        return Ok((root, None));
    }
    let Some(f) = Fragment::try_new(words) else {
        return err("out of memory for an incoming message");
    };
    let mut again = start;
    let mut root: u64 = UNIT;
    walk(
        &mut again,
        d,
        max_words,
        Some((&mut root as *mut u64, f.data())),
        ctx,
    )?;
    debug_assert_eq!(again.pos, end);
    Ok((root, Some(f)))
}

/// The decoder's two passes: without `emit`, checks and counts words; with
/// `emit = (root slot, bump pointer)`, builds the value.
fn walk(
    r: &mut Reader<'_>,
    d: DescId,
    max_words: usize,
    emit: Option<(*mut u64, *mut u64)>,
    ctx: &mut dyn DecodeCtx,
) -> Result<usize, EtfError> {
    let descs = table();
    let mut words = 0usize;
    let mut scratch: u64 = 0;
    let (root, mut bump) = match emit {
        Some((root, bump)) => (root, bump),
        None => (&mut scratch as *mut u64, std::ptr::null_mut()),
    };
    let building = emit.is_some();
    let mut work = vec![Step::Term(d, root)];
    // Allocates a block of `n` fields (pass 2) or counts it (pass 1).
    let mut block = |tag: u8, n: usize, words: &mut usize| -> Result<*mut u64, EtfError> {
        *words = words
            .checked_add(n + 1)
            .ok_or(EtfError("too large".into()))?;
        if *words > max_words {
            return err(format!(
                "message larger than the limit of {max_words} words"
            ));
        }
        if !building {
            return Ok(std::ptr::null_mut());
        }
        // SAFETY: pass 2 allocates exactly what pass 1 counted, inside the
        // fragment.
        unsafe {
            *bump = make_header(n as u64, tag);
            let b = bump.add(1);
            bump = bump.add(n + 1);
            Ok(b)
        }
    };
    // Writes `v` into `slot` in pass 2.
    let put = |slot: *mut u64, v: u64| {
        if building {
            // SAFETY: `slot` is the root or a field of a block of this
            // fragment allocated above.
            unsafe { *slot = v };
        }
    };
    while let Some(step) = work.pop() {
        let (d, slot) = match step {
            Step::Term(d, slot) => (d, slot),
            Step::Nil => {
                if r.u8()? != NIL {
                    return err("an improper list");
                }
                continue;
            }
        };
        let Some(desc) = descs.get(d as usize) else {
            return err("unknown type descriptor");
        };
        // The field slot of child `i` of block `b` (pass 1: nowhere).
        let child = |b: *mut u64, i: usize| -> *mut u64 {
            if building {
                // SAFETY: `i` is within the block just allocated.
                unsafe { b.add(i) }
            } else {
                std::ptr::null_mut()
            }
        };
        match desc {
            Desc::Int => put(slot, of_int(r.int()?)),
            Desc::Char => {
                let n = r.int()?;
                if !(0..256).contains(&n) {
                    return err("expected a char (an integer 0-255)");
                }
                put(slot, of_int(n))
            }
            Desc::Bool => match r.atom()? {
                "true" => put(slot, TRUE),
                "false" => put(slot, FALSE),
                a => return err(format!("expected a bool, found '{a}'")),
            },
            Desc::Unit => match r.atom()? {
                "nil" | "ok" => put(slot, UNIT),
                a => return err(format!("expected nil (unit), found '{a}'")),
            },
            Desc::Float => {
                if r.u8()? != NEW_FLOAT {
                    return err("expected a float");
                }
                let b = r.take(8)?;
                let f = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                let p = block(TAG_FLOAT, 1, &mut words)?;
                if building {
                    // SAFETY: a fresh one-word block.
                    unsafe { *p = f.to_bits() };
                }
                put(slot, p as u64);
            }
            Desc::String => {
                let bytes: Vec<u8> = match r.u8()? {
                    BINARY => {
                        let n = r.u32()? as usize;
                        r.take(n)?.to_vec()
                    }
                    STRING => {
                        let n = r.u16()? as usize;
                        r.take(n)?.to_vec()
                    }
                    NIL => vec![],
                    _ => return err("expected a string (a binary)"),
                };
                let p = block(TAG_STRING, string_wosize(bytes.len()), &mut words)?;
                if building {
                    // SAFETY: a fresh string block of the right size.
                    unsafe {
                        let ws = string_wosize(bytes.len());
                        std::ptr::write_bytes(p, 0, ws);
                        *p = bytes.len() as u64;
                        std::ptr::copy_nonoverlapping(
                            bytes.as_ptr(),
                            p.add(1) as *mut u8,
                            bytes.len(),
                        );
                    }
                }
                put(slot, p as u64);
            }
            Desc::Tuple(ts) => {
                let n = r.tuple()?;
                if n != ts.len() {
                    return err(format!("expected a {}-tuple, found {n} elements", ts.len()));
                }
                let b = block(0, n, &mut words)?;
                put(slot, b as u64);
                for (i, t) in ts.iter().enumerate().rev() {
                    work.push(Step::Term(*t, child(b, i)));
                }
            }
            Desc::Record(fs, name) => {
                let n = r.tuple()?;
                if n != fs.len() + 1 {
                    return err(format!("expected a {name} record ({} fields)", fs.len()));
                }
                let a = r.atom()?;
                if a != snake_case(name) {
                    return err(format!("expected a {name} record, found '{a}'"));
                }
                let b = block(0, fs.len(), &mut words)?;
                put(slot, b as u64);
                for (i, (_, t)) in fs.iter().enumerate().rev() {
                    work.push(Step::Term(*t, child(b, i)));
                }
            }
            Desc::List(t) => match r.u8()? {
                NIL => put(slot, UNIT),
                STRING => {
                    let elem = descs.get(*t as usize);
                    if !matches!(elem, Some(Desc::Int | Desc::Char)) {
                        return err("expected a list, found a charlist");
                    }
                    let n = r.u16()? as usize;
                    let bytes = r.take(n)?;
                    let mut s = slot;
                    for &c in bytes {
                        let b = block(0, 2, &mut words)?;
                        put(s, b as u64);
                        put(child(b, 0), of_int(c as i64));
                        s = child(b, 1);
                    }
                    put(s, UNIT);
                }
                LIST => {
                    let n = r.u32()? as usize;
                    if n > r.bytes.len() - r.pos {
                        return err("a list longer than the frame");
                    }
                    work.push(Step::Nil);
                    let mut s = slot;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        let b = block(0, 2, &mut words)?;
                        put(s, b as u64);
                        items.push(child(b, 0));
                        s = child(b, 1);
                    }
                    put(s, UNIT);
                    for it in items.into_iter().rev() {
                        work.push(Step::Term(*t, it));
                    }
                }
                _ => return err("expected a list"),
            },
            Desc::Variant { consts, blocks } => {
                let tag = r.peek()?;
                if matches!(tag, ATOM | ATOM_UTF8 | SMALL_ATOM | SMALL_ATOM_UTF8) {
                    let a = r.atom()?;
                    let Some(i) = consts.iter().position(|c| snake_case(c) == a) else {
                        return err(format!("no constant constructor '{a}' in the type"));
                    };
                    put(slot, of_int(i as i64));
                } else {
                    let n = r.tuple()?;
                    if n == 0 {
                        return err("expected a constructor, found {}");
                    }
                    let a = r.atom()?;
                    let Some(i) = blocks.iter().position(|(c, _)| snake_case(c) == a) else {
                        return err(format!("no constructor '{a}' with arguments in the type"));
                    };
                    let args = &blocks[i].1;
                    if n != args.len() + 1 {
                        return err(format!(
                            "constructor '{a}' takes {} arguments, found {}",
                            args.len(),
                            n - 1
                        ));
                    }
                    let b = block(i as u8, args.len(), &mut words)?;
                    put(slot, b as u64);
                    for (j, t) in args.iter().enumerate().rev() {
                        work.push(Step::Term(*t, child(b, j)));
                    }
                }
            }
            Desc::Pid(m) => {
                let p = r.pid()?;
                if building {
                    put(slot, crate::process::pid_of_serial(ctx.pid(&p, Some(*m))));
                }
            }
            Desc::ProcessId => {
                let p = r.pid()?;
                if building {
                    put(slot, crate::process::pid_of_serial(ctx.pid(&p, None)));
                }
            }
            Desc::Reply(t) => {
                if r.tuple()? != 2 {
                    return err("expected a reply channel {Pid, Ref}");
                }
                let p = r.pid()?;
                let rf = r.reference()?;
                let b = block(TAG_REPLY, 2, &mut words)?;
                if building {
                    let (caller, reference) = ctx.reply(&p, &rf, *t);
                    // SAFETY: a fresh two-word block.
                    unsafe {
                        *b = caller;
                        *b.add(1) = reference;
                    }
                }
                put(slot, b as u64);
            }
            Desc::Fun | Desc::Map(..) | Desc::Abstract(_) | Desc::Poly | Desc::Pending => {
                return err("a message of this type cannot come from another node")
            }
        }
    }
    Ok(words)
}

// ---------------------------------------------------------------------------
// Fingerprints
// ---------------------------------------------------------------------------

/// The structural fingerprint of type `d`: a 64-bit FNV-1a hash of its
/// closed structure with constructor, field and record names, recursive
/// types numbered by first visit (as Unison hashes types). A pid's
/// message type is part of it. Two programs agree on a message type
/// exactly when the fingerprints are equal.
pub fn fingerprint(d: DescId) -> u64 {
    let descs = table();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    };
    let mut seen: std::collections::HashMap<DescId, u32> = Default::default();
    let mut work = vec![d];
    while let Some(d) = work.pop() {
        if let Some(n) = seen.get(&d) {
            mix(b"@");
            mix(&n.to_le_bytes());
            continue;
        }
        let n = seen.len() as u32;
        seen.insert(d, n);
        let Some(desc) = descs.get(d as usize) else {
            mix(b"?");
            continue;
        };
        let name = |s: &str, mix: &mut dyn FnMut(&[u8])| {
            mix(&(s.len() as u32).to_le_bytes());
            mix(s.as_bytes());
        };
        match desc {
            Desc::Int => mix(b"i"),
            Desc::Float => mix(b"f"),
            Desc::Bool => mix(b"b"),
            Desc::Char => mix(b"c"),
            Desc::String => mix(b"s"),
            Desc::Unit => mix(b"u"),
            Desc::Poly => mix(b"'"),
            Desc::Fun => mix(b">"),
            Desc::Pending => mix(b"?"),
            Desc::ProcessId => mix(b"I"),
            Desc::Pid(m) => {
                mix(b"P");
                work.push(*m);
            }
            Desc::Reply(m) => {
                mix(b"R");
                work.push(*m);
            }
            Desc::Abstract(a) => {
                mix(b"A");
                name(a, &mut mix);
            }
            Desc::List(t) => {
                mix(b"L");
                work.push(*t);
            }
            Desc::Map(k, v) => {
                mix(b"M");
                work.push(*v);
                work.push(*k);
            }
            Desc::Tuple(ts) => {
                mix(b"T");
                mix(&(ts.len() as u32).to_le_bytes());
                work.extend(ts.iter().rev());
            }
            Desc::Record(fs, rn) => {
                mix(b"{");
                name(rn, &mut mix);
                mix(&(fs.len() as u32).to_le_bytes());
                for (f, _) in fs {
                    name(f, &mut mix);
                }
                work.extend(fs.iter().rev().map(|x| x.1));
            }
            Desc::Variant { consts, blocks } => {
                mix(b"V");
                mix(&(consts.len() as u32).to_le_bytes());
                for c in consts {
                    name(c, &mut mix);
                }
                mix(&(blocks.len() as u32).to_le_bytes());
                for (c, args) in blocks {
                    name(c, &mut mix);
                    mix(&(args.len() as u32).to_le_bytes());
                }
                for (_, args) in blocks.iter().rev() {
                    work.extend(args.iter().rev());
                }
            }
        }
    }
    h
}
