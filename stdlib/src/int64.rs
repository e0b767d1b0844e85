//! `Int64`: the builtins of `stdlib/src/cvn/int64.cvn`.
//!
//! An `Int64.t` is a raw block of one word, tag [`TAG_INT64`], holding the
//! `i64` itself (Caravan's `int` has only 63 bits, as OCaml's). Arithmetic
//! wraps modulo 2^64, as OCaml's `Int64`; structural `compare` and `=`
//! order these blocks as signed integers (`caravan_vm::term::compare`),
//! so `compare`, `min`, `max` and `Map` keys work on them unchanged.

use crate::builtins::p;
use caravan_vm::exn;
use caravan_vm::value::{field, float_of, int_of, of_int, TAG_INT64};
use caravan_vm::{alloc_block, alloc_float, alloc_string, Process, Value};

/// A fresh `Int64.t` holding `n`.
fn boxed(proc: *mut Process, n: i64) -> Value {
    let b = alloc_block(p(proc), TAG_INT64, 1);
    // SAFETY: a fresh raw block of one word.
    unsafe { *b = n as u64 };
    b as Value
}

/// The `i64` inside an `Int64.t`.
///
/// # Safety
/// `v` is a live `Int64.t`.
unsafe fn unboxed(v: Value) -> i64 {
    // SAFETY: caller's guarantee.
    unsafe { field(v, 0) as i64 }
}

/// Raises `Division_by_zero`.
fn division_by_zero(proc: *mut Process) -> ! {
    // SAFETY: called from a builtin, through its trampoline, with no owned
    // Rust value alive.
    unsafe { exn::raise_constant(proc, exn::DIVISION_BY_ZERO) }
}

macro_rules! binary {
    ($($(#[$doc:meta])* $name:ident = $op:expr;)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// Called by generated code only: the arguments are `Int64.t`s.
        #[no_mangle]
        pub unsafe extern "C" fn $name(proc: *mut Process, a: Value, b: Value) -> Value {
            let op: fn(i64, i64) -> i64 = $op;
            // SAFETY: generated code passes two `Int64.t`s.
            let r = op(unsafe { unboxed(a) }, unsafe { unboxed(b) });
            boxed(proc, r)
        }
    )*};
}

binary! {
    /// `Int64.add` (wraps).
    caravan_int64_add = i64::wrapping_add;
    /// `Int64.sub` (wraps).
    caravan_int64_sub = i64::wrapping_sub;
    /// `Int64.mul` (wraps).
    caravan_int64_mul = i64::wrapping_mul;
    /// `Int64.logand`.
    caravan_int64_logand = |a, b| a & b;
    /// `Int64.logor`.
    caravan_int64_logor = |a, b| a | b;
    /// `Int64.logxor`.
    caravan_int64_logxor = |a, b| a ^ b;
}

macro_rules! division {
    ($($(#[$doc:meta])* $name:ident = $op:expr;)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// Called by generated code only: the arguments are `Int64.t`s.
        #[no_mangle]
        pub unsafe extern "C" fn $name(proc: *mut Process, a: Value, b: Value) -> Value {
            let op: fn(i64, i64) -> i64 = $op;
            // SAFETY: generated code passes two `Int64.t`s.
            let (a, b) = unsafe { (unboxed(a), unboxed(b)) };
            if b == 0 {
                division_by_zero(proc);
            }
            boxed(proc, op(a, b))
        }
    )*};
}

division! {
    /// `Int64.div`: rounds toward zero; `div min_int (-1)` is `min_int`
    /// (wraps); raises `Division_by_zero`.
    caravan_int64_div = i64::wrapping_div;
    /// `Int64.rem`: the sign of the dividend; `rem min_int (-1)` is 0;
    /// raises `Division_by_zero`.
    caravan_int64_rem = i64::wrapping_rem;
    /// `Int64.unsigned_div`: both taken as unsigned; raises
    /// `Division_by_zero`.
    caravan_int64_unsigned_div = |a, b| (a as u64 / b as u64) as i64;
    /// `Int64.unsigned_rem`: both taken as unsigned; raises
    /// `Division_by_zero`.
    caravan_int64_unsigned_rem = |a, b| (a as u64 % b as u64) as i64;
}

macro_rules! shift {
    ($($(#[$doc:meta])* $name:ident = $op:expr;)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// Called by generated code only: `a` is an `Int64.t`, `n` an int.
        #[no_mangle]
        pub unsafe extern "C" fn $name(proc: *mut Process, a: Value, n: Value) -> Value {
            let op: fn(i64, u32) -> i64 = $op;
            // The count modulo 64, as the x86-64 instructions OCaml emits
            // (OCaml leaves a count outside 0..63 unspecified).
            // SAFETY: generated code passes an `Int64.t`.
            let r = op(unsafe { unboxed(a) }, (int_of(n) & 63) as u32);
            boxed(proc, r)
        }
    )*};
}

shift! {
    /// `Int64.shift_left`.
    caravan_int64_shift_left = |a, n| a << n;
    /// `Int64.shift_right`: arithmetic (copies the sign bit).
    caravan_int64_shift_right = |a, n| a >> n;
    /// `Int64.shift_right_logical`: fills with zeros.
    caravan_int64_shift_right_logical = |a, n| ((a as u64) >> n) as i64;
}

/// `Int64.neg` (wraps: `neg min_int` is `min_int`).
///
/// # Safety
/// Called by generated code only: `a` is an `Int64.t`.
#[no_mangle]
pub unsafe extern "C" fn caravan_int64_neg(proc: *mut Process, a: Value) -> Value {
    // SAFETY: an `Int64.t`.
    boxed(proc, unsafe { unboxed(a) }.wrapping_neg())
}

/// `Int64.lognot`.
///
/// # Safety
/// Called by generated code only: `a` is an `Int64.t`.
#[no_mangle]
pub unsafe extern "C" fn caravan_int64_lognot(proc: *mut Process, a: Value) -> Value {
    // SAFETY: an `Int64.t`.
    boxed(proc, !unsafe { unboxed(a) })
}

/// `Int64.of_int`: every int fits.
#[no_mangle]
pub extern "C" fn caravan_int64_of_int(proc: *mut Process, n: Value) -> Value {
    boxed(proc, int_of(n))
}

/// `Int64.to_int`: the low 63 bits (wraps, as OCaml's).
///
/// # Safety
/// Called by generated code only: `a` is an `Int64.t`.
#[no_mangle]
pub unsafe extern "C" fn caravan_int64_to_int(_proc: *mut Process, a: Value) -> Value {
    // SAFETY: an `Int64.t`; `of_int` drops the top bit.
    of_int(unsafe { unboxed(a) })
}

/// `Int64.unsigned_compare`: both taken as unsigned; -1, 0 or 1.
///
/// # Safety
/// Called by generated code only: the arguments are `Int64.t`s.
#[no_mangle]
pub unsafe extern "C" fn caravan_int64_unsigned_compare(
    _proc: *mut Process,
    a: Value,
    b: Value,
) -> Value {
    // SAFETY: two `Int64.t`s.
    let (a, b) = unsafe { (unboxed(a) as u64, unboxed(b) as u64) };
    of_int(a.cmp(&b) as i64)
}

/// `Int64.to_float` (the nearest float).
///
/// # Safety
/// Called by generated code only: `a` is an `Int64.t`.
#[no_mangle]
pub unsafe extern "C" fn caravan_int64_to_float(proc: *mut Process, a: Value) -> Value {
    // SAFETY: an `Int64.t`.
    alloc_float(p(proc), unsafe { unboxed(a) } as f64)
}

/// `Int64.of_float`: truncates toward zero. Out of range (or nan) OCaml
/// leaves the result unspecified; this gives `min_int`, as OCaml on
/// x86-64 does.
///
/// # Safety
/// Called by generated code only: `f` is a float.
#[no_mangle]
pub unsafe extern "C" fn caravan_int64_of_float(proc: *mut Process, f: Value) -> Value {
    // SAFETY: a float.
    let f = unsafe { float_of(f) };
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    let n = if !(-TWO_63..TWO_63).contains(&f) {
        // Also nan, which no range contains.
        i64::MIN
    } else {
        f as i64
    };
    boxed(proc, n)
}

/// `Int64.bits_of_float`: the IEEE 754 bits of a float.
///
/// # Safety
/// Called by generated code only: `f` is a float.
#[no_mangle]
pub unsafe extern "C" fn caravan_int64_bits_of_float(proc: *mut Process, f: Value) -> Value {
    // SAFETY: a float.
    boxed(proc, unsafe { float_of(f) }.to_bits() as i64)
}

/// `Int64.float_of_bits`: the float of these IEEE 754 bits.
///
/// # Safety
/// Called by generated code only: `a` is an `Int64.t`.
#[no_mangle]
pub unsafe extern "C" fn caravan_int64_float_of_bits(proc: *mut Process, a: Value) -> Value {
    // SAFETY: an `Int64.t`.
    alloc_float(p(proc), f64::from_bits(unsafe { unboxed(a) } as u64))
}

/// `Int64.to_string` (decimal, `-` for negatives).
///
/// # Safety
/// Called by generated code only: `a` is an `Int64.t`.
#[no_mangle]
pub unsafe extern "C" fn caravan_int64_to_string(proc: *mut Process, a: Value) -> Value {
    // SAFETY: an `Int64.t`.
    let s = unsafe { unboxed(a) }.to_string();
    alloc_string(p(proc), s.as_bytes())
}

/// OCaml's `Int64.of_string`: an optional sign, then decimal digits, or
/// `0x`/`0o`/`0b`/`0u` and digits of that base; `_` may separate digits
/// but not start them. Decimal must fit in 64 bits signed
/// (`-9223372036854775808` does); the prefixed forms may use all 64 bits
/// unsigned and wrap (`0xffffffffffffffff` is -1).
pub fn parse_int64(b: &[u8]) -> Option<i64> {
    crate::builtins::parse_int_bits(b, 64)
}

/// `Int64.of_string` (raises `Failure "Int64.of_string"` on bad input, as
/// OCaml's).
///
/// # Safety
/// Called by generated code only: `s` is a string.
#[no_mangle]
pub unsafe extern "C" fn caravan_int64_of_string(proc: *mut Process, s: Value) -> Value {
    // SAFETY: a string.
    match parse_int64(unsafe { caravan_vm::value::string_bytes(s) }) {
        Some(n) => boxed(proc, n),
        // SAFETY: as `division_by_zero`.
        None => unsafe { exn::raise_failure(proc, "Int64.of_string") },
    }
}

/// `Int64.of_string_opt`: `None` where `of_string` raises.
///
/// # Safety
/// Called by generated code only: `s` is a string.
#[no_mangle]
pub unsafe extern "C" fn caravan_int64_of_string_opt(proc: *mut Process, s: Value) -> Value {
    // SAFETY: a string.
    match parse_int64(unsafe { caravan_vm::value::string_bytes(s) }) {
        Some(n) => {
            // Allocation never collects, so `x` stays valid.
            let x = boxed(proc, n);
            let b = alloc_block(p(proc), 0, 1);
            // SAFETY: a fresh block of one field.
            unsafe { *b = x };
            b as Value
        }
        None => caravan_vm::value::UNIT,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_int64;

    #[test]
    fn int64s_parse_as_ocaml() {
        assert_eq!(parse_int64(b"42"), Some(42));
        assert_eq!(parse_int64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_int64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_int64(b"9223372036854775808"), None);
        assert_eq!(parse_int64(b"0xffffffffffffffff"), Some(-1));
        assert_eq!(parse_int64(b"0x8000000000000000"), Some(i64::MIN));
        assert_eq!(parse_int64(b"0x1_0000_0000_0000_0000"), None);
        assert_eq!(parse_int64(b"-0x1f"), Some(-31));
        assert_eq!(parse_int64(b"0u18446744073709551615"), Some(-1));
        assert_eq!(parse_int64(b"1_000"), Some(1000));
        assert_eq!(parse_int64(b"_1"), None);
        assert_eq!(parse_int64(b""), None);
        assert_eq!(parse_int64(b"-"), None);
        assert_eq!(parse_int64(b"12a"), None);
    }
}
