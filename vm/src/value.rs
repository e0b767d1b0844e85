//! Values: the uniform one-word representation shared with generated code
//! (see `docs/vm-abi.md`, "Values").
//!
//! A [`Value`] is a 64-bit word, as in OCaml: an *immediate* (low bit 1; an
//! int `n` is `(n << 1) | 1`) or a *pointer* (low bit 0, never 0, 8-byte
//! aligned) to the first field of a heap block whose header is the word just
//! before it. Header: `wosize << 10 | color << 8 | tag`.
//!
//! This module also holds the two walkers over user data that the VM needs
//! now — the deep copy used by `send`/`spawn`/`reply`/`global` and OCaml's
//! polymorphic `compare` — both iterative with an explicit work list, never
//! recursive on user data (a deep list must not overflow a process stack).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// One word: a tagged immediate or a pointer to a block's field 0.
pub type Value = u64;

/// Closure or partial application: word 0 = raw code pointer (not a value),
/// word 1 = arity as a tagged int, words 2.. = environment values.
pub const TAG_CLOSURE: u8 = 247;
/// Reply channel of a `call`: raw, word 0 = caller serial, word 1 = call reference.
pub const TAG_REPLY: u8 = 251;
/// String: raw, word 0 = byte length, then the bytes, zero-padded to a word.
pub const TAG_STRING: u8 = 252;
/// Float: raw, word 0 = `f64::to_bits`.
pub const TAG_FLOAT: u8 = 253;
/// Blocks with a tag `>= NO_SCAN_TAG` hold no values (OCaml's `No_scan_tag`).
pub const NO_SCAN_TAG: u8 = 250;
/// Highest tag usable by constructors, tuples, records and `::`.
pub const MAX_CONSTRUCTOR_TAG: u8 = 239;

/// `()`, `false`, `[]`, `None`: the encoding of int 0.
pub const UNIT: Value = 1;
/// `false` (same word as `()`).
pub const FALSE: Value = 1;
/// `true`: the encoding of int 1.
pub const TRUE: Value = 3;
/// Returned by `caravan_rt_recv_next` when the receive's deadline passed.
/// `0` is never a value.
pub const RECV_TIMEOUT: Value = 0;

/// Bytes per word.
pub const WORD: usize = 8;

/// Builds a header word. `wosize` is the number of words after the header.
#[inline]
pub const fn make_header(wosize: u64, tag: u8) -> u64 {
    (wosize << 10) | tag as u64
}

/// The number of words after the header.
#[inline]
pub const fn header_wosize(h: u64) -> u64 {
    h >> 10
}

/// The tag (low 8 bits).
#[inline]
pub const fn header_tag(h: u64) -> u8 {
    (h & 0xff) as u8
}

/// The two GC color bits (unused for now, always 0 in blocks the VM writes).
#[inline]
pub const fn header_color(h: u64) -> u8 {
    ((h >> 8) & 3) as u8
}

/// True for tagged immediates (ints, constant constructors, pids).
#[inline]
pub const fn is_immediate(v: Value) -> bool {
    v & 1 == 1
}

/// True for pointers to blocks (low bit 0 and not the `0` sentinel).
#[inline]
pub const fn is_block(v: Value) -> bool {
    v & 1 == 0 && v != 0
}

/// The tagged encoding of `n` (63-bit, wrapping, as OCaml).
#[inline]
pub const fn of_int(n: i64) -> Value {
    ((n as u64) << 1) | 1
}

/// The int of a tagged immediate (arithmetic shift).
#[inline]
pub const fn int_of(v: Value) -> i64 {
    (v as i64) >> 1
}

/// `true` / `false` as values.
#[inline]
pub const fn of_bool(b: bool) -> Value {
    if b {
        TRUE
    } else {
        FALSE
    }
}

/// The header word of block `v`.
///
/// # Safety
/// `v` must be a pointer value to a live block.
#[inline]
pub unsafe fn header(v: Value) -> u64 {
    // SAFETY: the caller guarantees `v` points at field 0 of a block, whose
    // header is the word before it.
    unsafe { *(v as *const u64).sub(1) }
}

/// Field `i` of block `v` (a raw word for raw blocks).
///
/// # Safety
/// `v` must be a pointer value to a live block with more than `i` words.
#[inline]
pub unsafe fn field(v: Value, i: usize) -> u64 {
    // SAFETY: the caller guarantees that word `i` is inside the block.
    unsafe { *(v as *const u64).add(i) }
}

/// The bytes of a string value.
///
/// # Safety
/// `v` must be a pointer to a live `TAG_STRING` block, and the block must
/// stay alive (and unmoved) for as long as the returned slice is used: the
/// lifetime `'a` is chosen by the caller. Never keep the slice across a
/// runtime call that may allocate or switch processes.
#[inline]
pub unsafe fn string_bytes<'a>(v: Value) -> &'a [u8] {
    // SAFETY: a string block has its byte length in word 0 and the bytes
    // right after it (caller's guarantee).
    unsafe {
        debug_assert_eq!(header_tag(header(v)), TAG_STRING);
        let len = *(v as *const u64) as usize;
        std::slice::from_raw_parts((v as *const u8).add(WORD), len)
    }
}

/// The `f64` of a float value.
///
/// # Safety
/// `v` must be a pointer to a live `TAG_FLOAT` block.
#[inline]
pub unsafe fn float_of(v: Value) -> f64 {
    // SAFETY: word 0 of a float block holds the bits (caller's guarantee).
    unsafe { f64::from_bits(*(v as *const u64)) }
}

/// Words after the header needed by a string of `len` bytes.
#[inline]
pub const fn string_wosize(len: usize) -> usize {
    1 + len.div_ceil(WORD)
}

/// First field index that holds values in a block with `tag` and `wosize`
/// words, and the end of the scanned range: `(start, end)`, empty for raw
/// blocks. A closure's word 0 is a code pointer, not a value.
#[inline]
pub(crate) fn scan_range(tag: u8, wosize: usize) -> (usize, usize) {
    if tag >= NO_SCAN_TAG {
        (0, 0)
    } else if tag == TAG_CLOSURE {
        (1.min(wosize), wosize)
    } else {
        (0, wosize)
    }
}

// ---------------------------------------------------------------------------
// Allocation in a process heap
// ---------------------------------------------------------------------------

/// Allocates a block of `wosize` words with `tag` in `proc`'s heap (bump
/// allocation in the current chunk; a new chunk when full; a large object
/// from [`crate::heap::LARGE_WORDS`] words on). The header is written, the
/// fields are not initialised: fill them before the next allocation.
/// Returns a pointer to field 0 (the block's value). Never collects: when
/// the heap passes its threshold it sets `gc_pending`, and the trampoline
/// that called the running builtin or runtime function collects on its way
/// back to generated code.
///
/// If memory is exhausted, or the block cannot be had within the process's
/// heap limit or physical memory, the process crashes with `Crashed "out
/// of memory"` / `Crashed "heap limit"`: call this only from the process's
/// own stack (builtins, runtime functions), holding no lock, with no owned
/// Rust values alive that must be dropped (they would leak).
#[inline]
pub fn alloc_block(proc: &mut crate::process::Process, tag: u8, wosize: usize) -> *mut u64 {
    let bytes = (wosize.wrapping_add(1).wrapping_mul(WORD)) as u64;
    let p = proc.heap_ptr;
    if proc.heap_limit.wrapping_sub(p) < bytes || p == 0 || wosize >= crate::heap::LARGE_WORDS {
        return alloc_slow(proc, tag, wosize);
    }
    proc.heap_ptr = p + bytes;
    let h = p as *mut u64;
    // SAFETY: `[p, p + bytes)` lies in the current chunk, which we own.
    unsafe {
        *h = make_header(wosize as u64, tag);
        h.add(1)
    }
}

#[cold]
#[inline(never)]
fn alloc_slow(proc: &mut crate::process::Process, tag: u8, wosize: usize) -> *mut u64 {
    let fail = |proc: &mut crate::process::Process, why: &str| -> ! {
        // SAFETY: allocation runs on the process's own stack, holding no
        // lock (documented contract of `alloc_block`).
        unsafe { crate::runtime::crash_process(proc, why) }
    };
    if wosize > crate::heap::MAX_WOSIZE {
        fail(proc, "out of memory");
    }
    if let Some(why) = crate::gc::growth_refused(proc, wosize + 1) {
        fail(proc, why);
    }
    if wosize >= crate::heap::LARGE_WORDS {
        let Some(b) = proc.large.alloc(tag, wosize) else {
            fail(proc, "out of memory")
        };
        crate::gc::note_growth(proc);
        return b;
    }
    let Some((start, end)) = proc.heap.grow(wosize + 1) else {
        fail(proc, "out of memory")
    };
    crate::gc::note_growth(proc);
    proc.heap_ptr = start + ((wosize + 1) * WORD) as u64;
    proc.heap_limit = end;
    let h = start as *mut u64;
    // SAFETY: the fresh chunk holds at least `wosize + 1` words.
    unsafe {
        *h = make_header(wosize as u64, tag);
        h.add(1)
    }
}

/// A string with a copy of `bytes` in `proc`'s heap.
pub fn alloc_string(proc: &mut crate::process::Process, bytes: &[u8]) -> Value {
    let ws = string_wosize(bytes.len());
    let p = alloc_block(proc, TAG_STRING, ws);
    // SAFETY: `p` has `ws` words: the length, then room for the bytes; the
    // last word is zeroed first so the padding is zero.
    unsafe {
        *p.add(ws - 1) = 0;
        *p = bytes.len() as u64;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.add(1) as *mut u8, bytes.len());
    }
    p as Value
}

/// A string of `len` bytes in `proc`'s heap whose bytes the caller fills:
/// returns the value and its bytes (padding zeroed, contents not). Builds
/// a big string in place, with no intermediate buffer: a length that
/// cannot be had crashes only the process, as [`alloc_block`] does.
///
/// # Safety
/// As [`alloc_block`]; the slice is valid until the process's next
/// allocation (the caller chooses `'a`): fill it at once.
pub unsafe fn alloc_string_uninit<'a>(
    proc: &mut crate::process::Process,
    len: usize,
) -> (Value, &'a mut [u8]) {
    let ws = 1 + len.div_ceil(WORD);
    let p = alloc_block(proc, TAG_STRING, ws);
    // SAFETY: `p` has `ws` words: the length, then room for the bytes; the
    // last word is zeroed first so the padding is zero.
    unsafe {
        *p.add(ws - 1) = 0;
        *p = len as u64;
        (
            p as Value,
            std::slice::from_raw_parts_mut(p.add(1) as *mut u8, len),
        )
    }
}

/// A float in `proc`'s heap.
pub fn alloc_float(proc: &mut crate::process::Process, x: f64) -> Value {
    let p = alloc_block(proc, TAG_FLOAT, 1);
    // SAFETY: one fresh word.
    unsafe { *p = x.to_bits() };
    p as Value
}

// ---------------------------------------------------------------------------
// Deep copy
// ---------------------------------------------------------------------------

/// Hasher for addresses and serials: a multiplicative (Fibonacci) hash.
#[derive(Default, Clone, Copy)]
pub(crate) struct WordHasher(u64);

impl Hasher for WordHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub(crate) type WordMap<V> = HashMap<u64, V, BuildHasherDefault<WordHasher>>;

/// Below this many distinct blocks the forwarding table is a linear scan.
const SMALL_COPY: usize = 16;

/// Reusable buffers of the deep copy (one per scheduler, so a send
/// allocates nothing but its fragment in the steady state).
///
/// The copy runs in two passes: [`CopyScratch::plan`] walks the value once,
/// giving every distinct block (by address) its offset in the destination —
/// this is the forwarding table, so sharing and cycles are kept — and the
/// exact number of words; [`CopyScratch::emit`] then copies each block into
/// a destination area of exactly that size and rewrites its pointer fields
/// through the table. The exact size lets a message fragment be one
/// allocation with no slack.
#[derive(Default)]
pub struct CopyScratch {
    /// Source blocks (field-0 addresses) in destination order.
    order: Vec<u64>,
    /// Destination word offset (of the header) of each block in `order`.
    offsets: Vec<u64>,
    /// Source address -> index in `order`, used once `order` is not small.
    map: WordMap<u32>,
    /// Blocks whose fields are still to be walked.
    work: Vec<u64>,
    total: usize,
    root: Value,
}

impl CopyScratch {
    #[inline]
    fn find(&self, src: u64) -> Option<usize> {
        if self.order.len() <= SMALL_COPY {
            self.order.iter().position(|&s| s == src)
        } else {
            self.map.get(&src).map(|&i| i as usize)
        }
    }

    /// Records `src` if it was not seen (offsets are read back with `find`
    /// during `emit`). `false` if memory for the bookkeeping cannot be had.
    ///
    /// # Safety
    /// `src` must point to a live block.
    #[inline]
    unsafe fn discover(&mut self, src: u64) -> bool {
        if self.find(src).is_some() {
            return true;
        }
        let idx = self.order.len();
        // The bookkeeping grows with the value: it must fail cleanly, as
        // the copy's own memory does, on a value too big for memory.
        if idx == self.order.capacity() && !self.grow() {
            return false;
        }
        self.order.push(src);
        self.offsets.push(self.total as u64);
        if idx == SMALL_COPY {
            // Switch to the hash map: index everything seen so far.
            self.map.clear();
            for (i, &s) in self.order.iter().enumerate() {
                self.map.insert(s, i as u32);
            }
        } else if idx > SMALL_COPY {
            self.map.insert(src, idx as u32);
        }
        // SAFETY: `src` points to a live block (caller's guarantee).
        let h = unsafe { header(src) };
        let ws = header_wosize(h) as usize;
        self.total += 1 + ws;
        let (a, b) = scan_range(header_tag(h), ws);
        if a < b {
            if self.work.len() == self.work.capacity()
                && self.work.try_reserve(self.work.len().max(16)).is_err()
            {
                return false;
            }
            self.work.push(src);
        }
        true
    }

    /// Doubles the room of the forwarding table; `false` if memory for it
    /// cannot be had.
    #[cold]
    fn grow(&mut self) -> bool {
        let more = self.order.len().max(16);
        self.order.try_reserve(more).is_ok()
            && self.offsets.try_reserve(more).is_ok()
            && (self.order.len() + more <= SMALL_COPY
                || self
                    .map
                    .try_reserve(self.order.len() + more - self.map.len())
                    .is_ok())
    }

    /// Pass 1: the number of words (headers included) a copy of `v` needs.
    /// Blocks for which `skip` returns true (the immortal literal area) are
    /// shared, not copied. Returns 0 for immediates and skipped roots, and
    /// `None` if memory for the plan's bookkeeping cannot be had (a value
    /// too big to copy: the caller crashes the process that asked).
    ///
    /// # Safety
    /// `v` must be a valid value: every block reachable from it is live and
    /// well formed, and nobody mutates them during the copy.
    pub unsafe fn plan(&mut self, v: Value, skip: impl Fn(u64) -> bool) -> Option<usize> {
        self.order.clear();
        self.offsets.clear();
        self.work.clear();
        self.total = 0;
        self.root = v;
        if !is_block(v) || skip(v) {
            return Some(0);
        }
        // SAFETY: caller's guarantee on `v` and everything reachable.
        unsafe {
            if !self.discover(v) {
                self.trim();
                return None;
            }
            while let Some(b) = self.work.pop() {
                let h = header(b);
                let (start, end) = scan_range(header_tag(h), header_wosize(h) as usize);
                for i in start..end {
                    let f = field(b, i);
                    if is_block(f) && !skip(f) && !self.discover(f) {
                        self.trim();
                        return None;
                    }
                }
            }
        }
        Some(self.total)
    }

    /// Pass 2: copies the planned value into `dst` (which must hold the
    /// number of words `plan` returned) and returns the copy's root value.
    /// For an immediate or skipped root, returns it unchanged.
    ///
    /// # Safety
    /// `plan` was just called on a value that is still unchanged, with the
    /// same `skip`; `dst` is valid for writes of `plan`'s result in words
    /// and 8-byte aligned.
    pub unsafe fn emit(&mut self, dst: *mut u64, skip: impl Fn(u64) -> bool) -> Value {
        if self.order.is_empty() {
            return self.root;
        }
        // SAFETY: every source block was live during `plan` and still is;
        // every destination offset is inside `dst` by construction.
        unsafe {
            for i in 0..self.order.len() {
                let src = self.order[i];
                let off = self.offsets[i] as usize;
                let h = header(src);
                let ws = header_wosize(h) as usize;
                let tag = header_tag(h);
                let d = dst.add(off);
                *d = make_header(ws as u64, tag);
                let dfields = d.add(1);
                std::ptr::copy_nonoverlapping(src as *const u64, dfields, ws);
                let (start, end) = scan_range(tag, ws);
                for j in start..end {
                    let f = *dfields.add(j);
                    if is_block(f) && !skip(f) {
                        let k = self.find(f).expect("copy: block missing from plan");
                        *dfields.add(j) = dst.add(self.offsets[k] as usize + 1) as u64;
                    }
                }
            }
            dst.add(self.offsets[0] as usize + 1) as u64
        }
    }

    /// Drops oversized buffers so a one-off huge copy does not pin memory.
    pub(crate) fn trim(&mut self) {
        if self.order.capacity() > 4096 {
            *self = CopyScratch::default();
        }
    }
}

// ---------------------------------------------------------------------------
// Polymorphic compare
// ---------------------------------------------------------------------------

/// Returned by [`compare_values`] in non-total mode when floats are
/// unordered (a NaN is involved): `=` is then false.
pub const UNORDERED: i64 = i64::MIN;

/// The one failure of compare: a functional value was reached.
pub const COMPARE_FUNCTIONAL: &str = "compare: functional value";

#[inline]
fn sign(o: std::cmp::Ordering) -> i64 {
    o as i64
}

/// OCaml's polymorphic comparison (`compare_val` in `runtime/compare.c`).
///
/// `total = true` is `compare` (physical equality short-cut, NaN equal to
/// itself and below every float); `total = false` is `=`/`<>` (NaN is
/// unordered: the result is [`UNORDERED`]). Order: immediates before blocks
/// and by value; blocks by tag, then size, then fields left to right;
/// strings lexicographically by bytes (a prefix first); floats by value;
/// reply channels by identity. Reaching a closure is an error
/// ([`COMPARE_FUNCTIONAL`]). Iterative: `work` is the explicit stack (its
/// buffer is reused across calls). Cyclic values can only be built from
/// closures, so the walk reaches a closure (and fails) before looping.
///
/// Returns -1, 0 or 1 (or `UNORDERED`).
///
/// # Safety
/// `a` and `b` must be valid values (all reachable blocks live).
pub unsafe fn compare_values(
    a: Value,
    b: Value,
    total: bool,
    work: &mut Vec<(Value, Value)>,
) -> Result<i64, &'static str> {
    work.clear();
    let (mut a, mut b) = (a, b);
    loop {
        // SAFETY: `a` and `b` are reachable from the caller's valid values.
        let r = unsafe { compare_step(a, b, total, work) }?;
        if r != 0 {
            work.clear();
            return Ok(r);
        }
        match work.pop() {
            Some((x, y)) => {
                a = x;
                b = y;
            }
            None => return Ok(0),
        }
    }
}

/// Compares one pair; pushes field pairs of equal-shaped blocks on `work`
/// (rightmost first, so the leftmost is compared next).
#[inline]
unsafe fn compare_step(
    a: Value,
    b: Value,
    total: bool,
    work: &mut Vec<(Value, Value)>,
) -> Result<i64, &'static str> {
    if a == b && total {
        return Ok(0);
    }
    match (is_immediate(a), is_immediate(b)) {
        (true, true) => return Ok(sign(int_of(a).cmp(&int_of(b)))),
        (true, false) => return Ok(-1),
        (false, true) => return Ok(1),
        (false, false) => {}
    }
    // SAFETY: both are pointers to live blocks (caller's guarantee).
    unsafe {
        let (ha, hb) = (header(a), header(b));
        let (ta, tb) = (header_tag(ha), header_tag(hb));
        if ta != tb {
            return Ok(sign(ta.cmp(&tb)));
        }
        let (sa, sb) = (header_wosize(ha) as usize, header_wosize(hb) as usize);
        match ta {
            TAG_STRING => Ok(sign(string_bytes(a).cmp(string_bytes(b)))),
            TAG_FLOAT => {
                let (fa, fb) = (float_of(a), float_of(b));
                if fa < fb {
                    Ok(-1)
                } else if fa > fb {
                    Ok(1)
                } else if fa != fb {
                    if !total {
                        Ok(UNORDERED)
                    } else if !fa.is_nan() {
                        Ok(1) // fb is NaN: NaN sorts below every float
                    } else if !fb.is_nan() {
                        Ok(-1)
                    } else {
                        Ok(0)
                    }
                } else {
                    Ok(0)
                }
            }
            TAG_CLOSURE => Err(COMPARE_FUNCTIONAL),
            t if t >= NO_SCAN_TAG => {
                // Other raw blocks (reply channels): by size, then words.
                if sa != sb {
                    return Ok(sign(sa.cmp(&sb)));
                }
                for i in 0..sa {
                    let (x, y) = (field(a, i), field(b, i));
                    if x != y {
                        return Ok(sign(x.cmp(&y)));
                    }
                }
                Ok(0)
            }
            _ => {
                if sa != sb {
                    return Ok(sign(sa.cmp(&sb)));
                }
                if sa == 0 {
                    return Ok(0);
                }
                for i in (1..sa).rev() {
                    work.push((field(a, i), field(b, i)));
                }
                // Compare field 0 right away, without a round trip.
                let (x, y) = (field(a, 0), field(b, 0));
                work.push((x, y));
                Ok(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_round_trip() {
        for n in [0i64, 1, -1, 42, -42, (1 << 62) - 1, -(1 << 62)] {
            assert_eq!(int_of(of_int(n)), n);
            assert!(is_immediate(of_int(n)));
        }
        assert_eq!(of_int(0), UNIT);
        assert_eq!(of_int(1), TRUE);
        // 63-bit wrapping.
        assert_eq!(int_of(of_int(i64::MAX)), -1);
    }

    #[test]
    fn header_round_trip() {
        let h = make_header(12345, TAG_STRING);
        assert_eq!(header_wosize(h), 12345);
        assert_eq!(header_tag(h), TAG_STRING);
        assert_eq!(header_color(h), 0);
        assert_eq!(string_wosize(0), 1);
        assert_eq!(string_wosize(1), 2);
        assert_eq!(string_wosize(8), 2);
        assert_eq!(string_wosize(9), 3);
    }

    /// A tiny test heap: blocks in a Vec that never reallocates.
    struct Arena(Vec<u64>);
    impl Arena {
        fn new() -> Self {
            Arena(Vec::with_capacity(1 << 18))
        }
        fn block(&mut self, tag: u8, fields: &[u64]) -> Value {
            assert!(self.0.len() + fields.len() < self.0.capacity());
            self.0.push(make_header(fields.len() as u64, tag));
            let at = self.0.len();
            self.0.extend_from_slice(fields);
            &self.0[at] as *const u64 as u64
        }
        fn string(&mut self, s: &str) -> Value {
            let mut f = vec![s.len() as u64];
            let mut words = vec![0u64; s.len().div_ceil(8)];
            // SAFETY: `words` has at least `s.len()` bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(s.as_ptr(), words.as_mut_ptr() as *mut u8, s.len())
            };
            f.extend(words);
            self.block(TAG_STRING, &f)
        }
        fn float(&mut self, x: f64) -> Value {
            self.block(TAG_FLOAT, &[x.to_bits()])
        }
    }

    fn cmp(a: Value, b: Value) -> i64 {
        let mut w = Vec::new();
        // SAFETY: test values are well formed.
        unsafe { compare_values(a, b, true, &mut w).unwrap() }
    }

    #[test]
    fn compare_follows_ocaml() {
        let mut h = Arena::new();
        assert_eq!(cmp(of_int(1), of_int(2)), -1);
        assert_eq!(cmp(of_int(-5), of_int(-7)), 1);
        let t = h.block(0, &[of_int(1)]);
        assert_eq!(cmp(of_int(1000), t), -1);
        assert_eq!(cmp(t, of_int(1000)), 1);
        let s1 = h.string("abc");
        let s2 = h.string("abd");
        let s3 = h.string("ab");
        let s4 = h.string("abc");
        assert_eq!(cmp(s1, s2), -1);
        assert_eq!(cmp(s1, s3), 1);
        assert_eq!(cmp(s1, s4), 0);
        let e = h.string("");
        assert_eq!(cmp(e, s3), -1);
        // Tags first, then sizes, then fields left to right.
        let a = h.block(0, &[of_int(9), of_int(9)]);
        let b = h.block(1, &[of_int(0)]);
        assert_eq!(cmp(a, b), -1);
        let c = h.block(0, &[of_int(9)]);
        assert_eq!(cmp(a, c), 1);
        let d = h.block(0, &[of_int(1), of_int(100)]);
        let e2 = h.block(0, &[of_int(2), of_int(0)]);
        assert_eq!(cmp(d, e2), -1);
        // Floats, NaN.
        let f1 = h.float(1.5);
        let f2 = h.float(2.5);
        let nan = h.float(f64::NAN);
        let nan2 = h.float(f64::NAN);
        assert_eq!(cmp(f1, f2), -1);
        assert_eq!(cmp(nan, f1), -1);
        assert_eq!(cmp(f1, nan), 1);
        assert_eq!(cmp(nan, nan2), 0);
        let mut w = Vec::new();
        // SAFETY: well-formed test values.
        unsafe {
            assert_eq!(compare_values(nan, nan2, false, &mut w), Ok(UNORDERED));
            assert_eq!(compare_values(nan, nan, false, &mut w), Ok(UNORDERED));
        }
        // A long list compares iteratively (no recursion).
        let mut l1 = of_int(0);
        let mut l2 = of_int(0);
        for i in 0..20000 {
            l1 = h.block(0, &[of_int(i), l1]);
            l2 = h.block(0, &[of_int(i), l2]);
        }
        assert_eq!(cmp(l1, l2), 0);
        // Closures fail.
        let f = h.block(TAG_CLOSURE, &[0x1000, of_int(1)]);
        let g = h.block(TAG_CLOSURE, &[0x1000, of_int(1)]);
        // SAFETY: well-formed test values.
        unsafe {
            assert_eq!(compare_values(f, g, true, &mut w), Err(COMPARE_FUNCTIONAL));
            // `compare f f` is 0 by physical equality, `f = f` fails (as OCaml).
            assert_eq!(compare_values(f, f, true, &mut w), Ok(0));
            assert_eq!(compare_values(f, f, false, &mut w), Err(COMPARE_FUNCTIONAL));
        }
    }

    #[test]
    fn copy_keeps_sharing_and_cycles() {
        let mut h = Arena::new();
        let s = h.string("shared");
        let pair = h.block(0, &[s, s]);
        // A cyclic closure: env word points back to itself.
        let clo = h.block(TAG_CLOSURE, &[0x1000, of_int(1), 0]);
        // SAFETY: patch the env field to make the cycle.
        unsafe { *(clo as *mut u64).add(2) = clo };
        let root = h.block(0, &[pair, clo, of_int(7)]);
        let mut sc = CopyScratch::default();
        // SAFETY: well-formed test values; dst sized by plan.
        unsafe {
            let n = sc.plan(root, |_| false).unwrap();
            assert_eq!(n, 4 + 3 + 4 + 3);
            let mut dst = vec![0u64; n];
            let c = sc.emit(dst.as_mut_ptr(), |_| false);
            assert_ne!(c, root);
            let cpair = field(c, 0);
            assert_eq!(field(cpair, 0), field(cpair, 1), "sharing kept");
            assert_ne!(field(cpair, 0), s);
            assert_eq!(string_bytes(field(cpair, 0)), b"shared");
            let cclo = field(c, 1);
            assert_eq!(field(cclo, 2), cclo, "cycle kept");
            assert_eq!(field(cclo, 0), 0x1000, "code pointer untouched");
            assert_eq!(field(c, 2), of_int(7));
            let mut w = Vec::new();
            assert_eq!(compare_values(field(c, 0), pair, true, &mut w), Ok(0));
        }
        // Many blocks: exercises the hash-map forwarding table.
        let mut l = of_int(0);
        let shared = h.block(0, &[of_int(5)]);
        for i in 0..1000 {
            l = h.block(0, &[if i % 2 == 0 { shared } else { of_int(i) }, l]);
        }
        // SAFETY: as above.
        unsafe {
            let n = sc.plan(l, |_| false).unwrap();
            assert_eq!(n, 1000 * 3 + 2);
            let mut dst = vec![0u64; n];
            let c = sc.emit(dst.as_mut_ptr(), |_| false);
            let mut w = Vec::new();
            assert_eq!(compare_values(c, l, true, &mut w), Ok(0));
            let x = field(field(c, 1), 0);
            let y = field(field(field(field(c, 1), 1), 1), 0);
            assert!(is_block(x));
            assert_eq!(x, y);
        }
    }
}
