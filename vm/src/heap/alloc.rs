//! Allocation in a process heap: the bump allocator builtins and runtime
//! functions use (generated code bumps inline and calls the collecting
//! allocator, [`crate::gc::caravan_rt_alloc_gc`], when its chunk is full).
//! An allocation that cannot be had crashes the process, never the VM.

use crate::value::{make_header, Value, TAG_FLOAT, TAG_STRING, WORD};

/// Allocates a block of `wosize` words with `tag` in `proc`'s heap (bump
/// allocation in the current chunk; a new chunk when full; a large object
/// from [`super::LARGE_WORDS`] words on). The header is written, the
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
    if proc.heap_limit.wrapping_sub(p) < bytes || p == 0 || wosize >= super::LARGE_WORDS {
        return alloc_slow(proc, tag, wosize, true);
    }
    proc.heap_ptr = p + bytes;
    let h = p as *mut u64;
    // SAFETY: `[p, p + bytes)` lies in the current chunk, which we own.
    unsafe {
        *h = make_header(wosize as u64, tag);
        h.add(1)
    }
}

/// As [`alloc_block`], but in the nursery whatever the size, never as a
/// large object: for a block the caller carves into several (the closures
/// of a `let rec` group, see [`crate::gc::caravan_rt_alloc_group_gc`]),
/// which the collector must copy block by block.
pub fn alloc_block_in_nursery(
    proc: &mut crate::process::Process,
    tag: u8,
    wosize: usize,
) -> *mut u64 {
    let bytes = (wosize.wrapping_add(1).wrapping_mul(WORD)) as u64;
    let p = proc.heap_ptr;
    if proc.heap_limit.wrapping_sub(p) < bytes || p == 0 {
        return alloc_slow(proc, tag, wosize, false);
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
fn alloc_slow(
    proc: &mut crate::process::Process,
    tag: u8,
    wosize: usize,
    large_ok: bool,
) -> *mut u64 {
    let fail = |proc: &mut crate::process::Process, why: &str| -> ! {
        // SAFETY: allocation runs on the process's own stack, holding no
        // lock (documented contract of `alloc_block`).
        unsafe { crate::safepoint::crash_process(proc, why) }
    };
    if wosize > super::MAX_WOSIZE {
        fail(proc, "out of memory");
    }
    if let Some(why) = crate::gc::growth_refused(proc, wosize + 1) {
        fail(proc, why);
    }
    if large_ok && wosize >= super::LARGE_WORDS {
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
    let ws = crate::value::string_wosize(bytes.len());
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
