//! Values: the uniform one-word representation shared with generated code
//! (see `docs/vm-abi.md`, "Values").
//!
//! A [`Value`] is a 64-bit word, as in OCaml: an *immediate* (low bit 1; an
//! int `n` is `(n << 1) | 1`) or a *pointer* (low bit 0, never 0, 8-byte
//! aligned) to the first field of a heap block whose header is the word just
//! before it. Header: `wosize << 10 | color << 8 | tag`.
//!
//! Only the representation lives here; allocation is in [`crate::heap`]
//! and the walkers over user data (copy, compare) in [`crate::term`].

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
/// `Int64.t`: raw, word 0 = the `i64` (compared signed, see `term::compare`).
pub const TAG_INT64: u8 = 255;
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
}
