//! The deep copy: a value into an exactly-sized area (a message fragment,
//! the literal area), keeping sharing and cycles.

use crate::value::{
    field, header, header_tag, header_wosize, is_block, make_header, scan_range, Value,
};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

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
