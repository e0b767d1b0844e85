//! Runtime functions on values: allocation, the literal area, and OCaml's
//! polymorphic `compare` and `=`.

use super::*;

/// Allocates a block of `wosize` words with `tag` in the process heap;
/// header written, fields uninitialised. Returns a pointer to field 0.
///
/// # Safety
/// `proc` must be the calling process; `tag` < 256.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_alloc(proc: *mut Process, tag: u64, wosize: u64) -> Value {
    // SAFETY: `proc` is the running process; nothing here can panic but
    // allocation failure, which aborts.
    let p = unsafe { &mut *proc };
    p.charge((wosize >> 4) as i64);
    alloc_block(p, tag as u8, wosize as usize) as Value
}

/// A string of `len` bytes copied from `bytes` (for builtins).
///
/// # Safety
/// `proc` must be the calling process; `bytes` valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_alloc_string(
    proc: *mut Process,
    bytes: *const u8,
    len: u64,
) -> Value {
    // SAFETY: caller's guarantee.
    unsafe {
        let s = if len == 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(bytes, len as usize)
        };
        alloc_string(&mut *proc, s)
    }
}

/// Copies `v` into the immortal literal area (top-level values shared by
/// all processes) and returns the copy. Literals already there are shared.
///
/// # Safety
/// `proc` must be the calling process; `v` a valid value.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_global(proc: *mut Process, v: Value) -> Value {
    // SAFETY: `proc` is the running process.
    unsafe {
        guard(proc, || {
            let l = local_of(proc);
            let r = literal_copy(&mut l.copy, v);
            l.copy.trim();
            r.ok_or_else(|| Fail::msg("literal area exhausted"))
        })
    }
}

/// Polymorphic `compare` (OCaml's): -1, 0 or 1 as a raw `i64` (not
/// tagged). Crashes with `Crashed "compare: functional value"` on closures.
///
/// # Safety
/// `proc` must be the calling process; `a`, `b` valid values.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_compare(proc: *mut Process, a: Value, b: Value) -> i64 {
    if a == b {
        return 0;
    }
    if is_immediate(a) && is_immediate(b) {
        return (int_of(a).cmp(&int_of(b))) as i64;
    }
    // SAFETY: `proc` is the running process.
    unsafe { compare_slow(proc, a, b, true) }
}

/// Polymorphic `=` (OCaml's): a tagged bool. NaN is not equal to itself;
/// crashes with `Crashed "compare: functional value"` on closures.
///
/// # Safety
/// `proc` must be the calling process; `a`, `b` valid values.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_equal(proc: *mut Process, a: Value, b: Value) -> Value {
    if is_immediate(a) || is_immediate(b) {
        return of_bool(a == b);
    }
    // SAFETY: `proc` is the running process.
    let r = unsafe { compare_slow(proc, a, b, false) };
    of_bool(r == 0)
}

unsafe fn compare_slow(proc: *mut Process, a: Value, b: Value, total: bool) -> i64 {
    // SAFETY: `proc` is the running process.
    unsafe {
        guard(proc, || {
            let l = local_of(proc);
            let mut work = std::mem::take(&mut l.cmp_work);
            let r = compare_values(a, b, total, &mut work);
            if work.capacity() <= 4096 {
                l.cmp_work = work;
            }
            match r {
                Ok(r) if r == UNORDERED => Ok(UNORDERED),
                Ok(r) => Ok(r),
                Err(_) => Err(Fail::msg(COMPARE_FUNCTIONAL)),
            }
        })
    }
}
