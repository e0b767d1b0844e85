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

/// Header colour bits of a block visited by an owned copy
/// ([`CopyScratch::plan_owned`]): its wosize field then holds the block's
/// index in the copy's plan. Blocks the VM writes always have colour 0.
const VISITED: u64 = 3 << 8;

#[inline]
fn is_visited(h: u64) -> bool {
    h & (3 << 8) == VISITED
}

/// A destination offset with this bit set names a block planned into a
/// chunk of its own ([`CopyScratch::plan_message`]): the low bits are its
/// index in [`CopyScratch::large_sizes`].
const OWN_CHUNK: u64 = 1 << 63;
/// A destination offset with this bit set names a big string shared with
/// the receiver, not copied ([`CopyScratch::plan_message`]): the low bits
/// are its index in [`CopyScratch::shared_blocks`].
const SHARED: u64 = 1 << 62;

/// Whether header `h` is a string's of [`crate::heap::LARGE_WORDS`] words
/// or more: a large object, immutable, which messages share.
#[inline]
fn is_big_string(h: u64) -> bool {
    header_tag(h) == crate::value::TAG_STRING
        && header_wosize(h) as usize >= crate::heap::LARGE_WORDS
}

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
///
/// The forwarding table is a hash map from source address to index, or —
/// for a copy of the calling process's own value ([`CopyScratch::plan_owned`],
/// every send) — the source blocks' headers themselves: `plan_owned`
/// overwrites each visited block's header with its index (colour bits
/// [`VISITED`]) and keeps the original, `emit` reads indices back from the
/// headers and puts every original back. A lookup is then one read of a
/// word next to the fields being copied anyway, instead of a probe of a
/// table that outgrows the caches on large values (the sender owns its
/// heap and nobody else reads it meanwhile; Cheney's copying collector and
/// the BEAM's copy of shared terms forward through the source the same
/// way).
#[derive(Default)]
pub struct CopyScratch {
    /// Source blocks (field-0 addresses) in destination order.
    order: Vec<u64>,
    /// Destination word offset (of the header) of each block in `order`.
    offsets: Vec<u64>,
    /// Original header of each block in `order`.
    headers: Vec<u64>,
    /// Source address -> index in `order`, used once `order` is not small
    /// (for an owned copy: only for blocks of static data, whose headers
    /// are read-only).
    map: WordMap<u32>,
    /// Blocks whose fields are still to be walked (indices in `order`).
    work: Vec<u32>,
    /// Blocks planned into chunks of their own (indices in `order`).
    large: Vec<u32>,
    /// Big strings shared with the receiver (indices in `order`).
    shared: Vec<u32>,
    /// The sender's large objects, during a `plan_message` that shares.
    sender: Option<*const crate::heap::LargeSpace>,
    total: usize,
    root: Value,
    /// This copy forwards through source headers (`plan_owned`).
    owned: bool,
    /// Source headers are overwritten and must be put back
    /// ([`CopyScratch::unmark`]).
    marked: bool,
    /// Blocks of [`crate::heap::LARGE_WORDS`] words or more are planned
    /// into chunks of their own ([`CopyScratch::plan_message`]).
    split: bool,
}

impl CopyScratch {
    /// Whether block `src`, whose header is `h` (as it is now, or as it
    /// was before this plan marked it), holds its forwarding index in its
    /// header in this copy. Big strings never do: one may be shared with
    /// other processes ([`crate::heap::LargeSpace::share`]), which read
    /// its header meanwhile.
    #[inline]
    fn marks(&self, src: u64, h: u64) -> bool {
        self.owned && !crate::heap::is_static(src) && !is_big_string(h)
    }

    /// The index in `order` of `src`, if it was seen.
    ///
    /// # Safety
    /// `src` must point to a live block.
    #[inline]
    unsafe fn find(&self, src: u64) -> Option<usize> {
        if self.owned && !crate::heap::is_static(src) {
            // SAFETY: caller's guarantee.
            let h = unsafe { header(src) };
            if is_visited(h) {
                return Some(header_wosize(h) as usize);
            }
            if self.marks(src, h) {
                return None;
            }
            return self.map.get(&src).map(|&i| i as usize);
        }
        if !self.owned && self.order.len() <= SMALL_COPY {
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
        // SAFETY: caller's guarantee.
        if unsafe { self.find(src) }.is_some() {
            return true;
        }
        let idx = self.order.len();
        // The bookkeeping grows with the value: it must fail cleanly, as
        // the copy's own memory does, on a value too big for memory.
        if idx == self.order.capacity() && !self.grow() {
            return false;
        }
        // SAFETY: `src` points to a live block (caller's guarantee).
        let h = unsafe { header(src) };
        let ws = header_wosize(h) as usize;
        if self.split && ws >= crate::heap::LARGE_WORDS {
            if self.large.try_reserve(1).is_err() || self.shared.try_reserve(1).is_err() {
                return false;
            }
            // A big string of the sender's large-object space is shared,
            // not copied.
            let shares = is_big_string(h)
                && self
                    .sender
                    // SAFETY: `plan_message`'s contract: the sender's
                    // space, unchanged during the plan.
                    .is_some_and(|l| unsafe { (*l).holds(src) });
            if shares {
                self.offsets.push(SHARED | self.shared.len() as u64);
                self.shared.push(idx as u32);
            } else {
                self.offsets.push(OWN_CHUNK | self.large.len() as u64);
                self.large.push(idx as u32);
            }
        } else {
            self.offsets.push(self.total as u64);
            self.total += 1 + ws;
        }
        self.order.push(src);
        self.headers.push(h);
        if self.marks(src, h) {
            self.marked = true;
            // SAFETY: a block of the calling process's own value
            // (`plan_owned`'s contract), not static data: writable, and
            // read by nobody else until `unmark` puts the header back.
            unsafe { *(src as *mut u64).sub(1) = ((idx as u64) << 10) | VISITED };
        } else if self.owned {
            if self.map.try_reserve(1).is_err() {
                return false;
            }
            self.map.insert(src, idx as u32);
        } else if idx == SMALL_COPY {
            // Switch to the hash map: index everything seen so far.
            self.map.clear();
            for (i, &s) in self.order.iter().enumerate() {
                self.map.insert(s, i as u32);
            }
        } else if idx > SMALL_COPY {
            self.map.insert(src, idx as u32);
        }
        let (a, b) = scan_range(header_tag(h), ws);
        if a < b {
            if self.work.len() == self.work.capacity()
                && self.work.try_reserve(self.work.len().max(16)).is_err()
            {
                return false;
            }
            self.work.push(idx as u32);
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
            && self.headers.try_reserve(more).is_ok()
            && (self.owned
                || self.order.len() + more <= SMALL_COPY
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
        self.owned = false;
        self.split = false;
        self.sender = None;
        // SAFETY: caller's guarantee.
        unsafe { self.plan_inner(v, skip) }
    }

    /// As [`CopyScratch::plan`], for a value the calling process owns: the
    /// plan is kept in the source blocks' headers (see the type's notes),
    /// which stay overwritten until [`CopyScratch::emit`] or
    /// [`CopyScratch::trim`] — one of which must follow before anything
    /// else reads the value.
    ///
    /// # Safety
    /// As `plan`; besides, every block reachable from `v` that is neither
    /// skipped nor static data ([`crate::heap::is_static`]) is writable
    /// and read by no other thread until `emit` or `trim` returns: the
    /// running process's own heap and message fragments, or a fragment
    /// held under a lock.
    pub unsafe fn plan_owned(&mut self, v: Value, skip: impl Fn(u64) -> bool) -> Option<usize> {
        self.owned = true;
        self.split = false;
        self.sender = None;
        // SAFETY: caller's guarantee.
        unsafe { self.plan_inner(v, skip) }
    }

    /// As [`CopyScratch::plan_owned`], for a message: every block of
    /// [`crate::heap::LARGE_WORDS`] words or more (a big string, mostly)
    /// is planned into a chunk of its own, sized by
    /// [`CopyScratch::large_sizes`], which the receiver takes into its
    /// large-object space as it is — so the receiver's collections mark it
    /// instead of copying it again. A big string that is one of `sender`'s
    /// large objects ([`crate::heap::LargeSpace::holds`]) is not copied
    /// at all: it is listed by [`CopyScratch::shared_blocks`] for the
    /// caller to share ([`crate::heap::LargeSpace::share`]), and the copy
    /// points at it — strings are immutable, so the receiver cannot tell
    /// (the BEAM's reference-counted binaries). Returns the words of
    /// everything else (0 when there is nothing else);
    /// [`CopyScratch::emit_split`] copies.
    ///
    /// # Safety
    /// As [`CopyScratch::plan_owned`]; `sender`, if given, is the calling
    /// process's large-object space, unchanged until `emit_split`.
    pub unsafe fn plan_message(
        &mut self,
        v: Value,
        skip: impl Fn(u64) -> bool,
        sender: Option<&crate::heap::LargeSpace>,
    ) -> Option<usize> {
        self.owned = true;
        self.split = true;
        self.sender = sender.map(|l| l as *const _);
        // SAFETY: caller's guarantee.
        unsafe { self.plan_inner(v, skip) }
    }

    /// The field counts (wosize) of the blocks the last plan put in chunks
    /// of their own, in the order [`CopyScratch::emit_split`] wants their
    /// destinations; each needs `wosize + 1` words, header included.
    pub fn large_sizes(&self) -> impl ExactSizeIterator<Item = usize> + '_ {
        self.large
            .iter()
            .map(|&i| header_wosize(self.headers[i as usize]) as usize)
    }

    /// The big strings the last plan shares instead of copying (field-0
    /// addresses of the sender's large objects).
    pub fn shared_blocks(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        self.shared.iter().map(|&i| self.order[i as usize])
    }

    /// # Safety
    /// As [`CopyScratch::plan_owned`] when `self.owned`, else as
    /// [`CopyScratch::plan`].
    unsafe fn plan_inner(&mut self, v: Value, skip: impl Fn(u64) -> bool) -> Option<usize> {
        debug_assert!(!self.marked, "a plan_owned was neither emitted nor trimmed");
        self.order.clear();
        self.offsets.clear();
        self.headers.clear();
        self.work.clear();
        self.large.clear();
        self.shared.clear();
        // Not cleared when empty: a table kept from an earlier large copy
        // would cost a pass over its buckets on every send.
        if !self.map.is_empty() {
            self.map.clear();
        }
        self.total = 0;
        self.root = v;
        if !is_block(v) || skip(v) {
            return Some(0);
        }
        // SAFETY: caller's guarantee on `v` and everything reachable; a
        // block's header may be a mark, so sizes come from `headers`.
        unsafe {
            if !self.discover(v) {
                self.trim();
                return None;
            }
            while let Some(i) = self.work.pop() {
                let (b, h) = (self.order[i as usize], self.headers[i as usize]);
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

    /// Puts back the headers an owned plan overwrote.
    fn unmark(&mut self) {
        if !self.marked {
            return;
        }
        for (i, &src) in self.order.iter().enumerate() {
            if self.marks(src, self.headers[i]) {
                // SAFETY: the plan overwrote this header (a writable block
                // of the owned value) and kept the original.
                unsafe { *(src as *mut u64).sub(1) = self.headers[i] };
            }
        }
        self.marked = false;
    }

    /// Pass 2: copies the planned value into `dst` (which must hold the
    /// number of words `plan` returned) and returns the copy's root value.
    /// For an immediate or skipped root, returns it unchanged. After an
    /// owned plan, the source's headers are back as they were.
    ///
    /// # Safety
    /// `plan`, `plan_owned` or `plan_message` (with no block put in a
    /// chunk of its own) was just called on a value that is still
    /// unchanged, with the same `skip`; `dst` is valid for writes of the
    /// plan's result in words and 8-byte aligned.
    pub unsafe fn emit(&mut self, dst: *mut u64, skip: impl Fn(u64) -> bool) -> Value {
        // SAFETY: caller's guarantee.
        unsafe { self.emit_split(dst, &[], skip) }
    }

    /// Pass 2 of [`CopyScratch::plan_message`]: as [`CopyScratch::emit`],
    /// and block `j` of [`CopyScratch::large_sizes`] goes to `large[j]`
    /// (its header there, then its fields).
    ///
    /// # Safety
    /// As `emit`; besides, `large` has one destination per entry of
    /// `large_sizes`, each valid for writes of `wosize + 1` words, 8-byte
    /// aligned, and overlapping nothing else.
    pub unsafe fn emit_split(
        &mut self,
        dst: *mut u64,
        large: &[*mut u64],
        skip: impl Fn(u64) -> bool,
    ) -> Value {
        if self.order.is_empty() {
            return self.root;
        }
        debug_assert_eq!(large.len(), self.large.len());
        // Where block `k` of the plan goes (its header).
        let dest = |order: &[u64], offsets: &[u64], k: usize| {
            let off = offsets[k];
            if off & OWN_CHUNK != 0 {
                large[(off & !OWN_CHUNK) as usize]
            } else if off & SHARED != 0 {
                // Not copied: the copy points at the block itself.
                (order[k] as *mut u64).wrapping_sub(1)
            } else {
                // SAFETY: every offset is inside `dst` by construction.
                unsafe { dst.add(off as usize) }
            }
        };
        // SAFETY: every source block was live during `plan` and still is;
        // every destination is inside `dst` or one of `large`.
        let root = unsafe {
            for i in 0..self.order.len() {
                if self.offsets[i] & SHARED != 0 {
                    continue;
                }
                let src = self.order[i];
                let h = self.headers[i];
                let ws = header_wosize(h) as usize;
                let tag = header_tag(h);
                let d = dest(&self.order, &self.offsets, i);
                *d = make_header(ws as u64, tag);
                let dfields = d.add(1);
                std::ptr::copy_nonoverlapping(src as *const u64, dfields, ws);
                let (start, end) = scan_range(tag, ws);
                for j in start..end {
                    let f = *dfields.add(j);
                    if is_block(f) && !skip(f) {
                        let k = self.find(f).expect("copy: block missing from plan");
                        *dfields.add(j) = dest(&self.order, &self.offsets, k).add(1) as u64;
                    }
                }
            }
            dest(&self.order, &self.offsets, 0).add(1) as u64
        };
        self.unmark();
        root
    }

    /// Puts back any headers an owned plan overwrote (a plan not followed
    /// by `emit`: the caller could not have the destination), and drops
    /// oversized buffers so a one-off huge copy does not pin memory.
    pub(crate) fn trim(&mut self) {
        self.unmark();
        if self.order.capacity() > 4096 {
            *self = CopyScratch::default();
        }
    }
}
