//! Process heaps, message fragments and the immortal literal area.
//!
//! * A [`Heap`] is a list of chunks with bump allocation. The bump pointer
//!   and limit of the current chunk live in the `Process` struct
//!   (`heap_ptr`/`heap_limit`, fixed ABI offsets) so generated code
//!   allocates inline. The first chunk is small ([`FIRST_CHUNK_WORDS`];
//!   the BEAM starts at 233 words) and each next one doubles, up to
//!   [`MAX_CHUNK_WORDS`].
//!   The same chunk lists hold a process's survivor space and old
//!   generation; the collector ([`crate::gc`]) copies live data between
//!   them and keeps the nursery's largest chunk for reuse; the whole heap
//!   is freed when the process exits.
//! * A [`LargeSpace`] holds blocks of [`LARGE_WORDS`] words or more (big
//!   strings, mostly), one allocation each: the collector marks them in
//!   place instead of copying them, and frees those it did not reach (the
//!   large-object space of Ungar & Jackson 1988, OCaml's major heap for big
//!   blocks).
//! * A [`Fragment`] is one exactly-sized chunk a sender copies a message
//!   into (the BEAM's "heap fragments"): the sender never touches the
//!   receiver's heap. When the receiver takes the message, the fragment is
//!   *adopted*: linked into its heap's chunk list.
//! * The literal area holds values copied by `caravan_rt_global`: top-level
//!   values shared read-only by all processes, never freed. It is one large
//!   `MAP_NORESERVE` reservation, so "is this a literal" is a range check;
//!   copies share literals instead of copying them.
//!
//! Nothing outside a process points into its heap except its own mailbox
//! entries (adopted messages) and its own stack/roots, so a later precise,
//! moving, per-process collector stays possible.

pub mod alloc;

use crate::value::{make_header, Value, WORD};
use std::alloc::{alloc, dealloc, Layout};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Words of a heap's first chunk (128 bytes: a process that has only
/// taken a message or two, as an idle server that answered one `call`,
/// keeps just this; 32 words made `bench/run`'s idle-after-a-call row
/// 2,131 bytes per process, over the 2,048 target).
pub const FIRST_CHUNK_WORDS: usize = 16;
/// Largest size a heap chunk grows to by doubling (bigger single blocks get
/// a chunk of their own size).
pub const MAX_CHUNK_WORDS: usize = 1 << 20;

/// Header of every chunk (heap chunk or fragment); the payload follows.
#[repr(C)]
struct ChunkHeader {
    next: *mut ChunkHeader,
    /// Payload size in words.
    words: usize,
}

const CHUNK_HEADER_WORDS: usize = size_of::<ChunkHeader>() / WORD;

/// Largest block: the header's `wosize` field has 54 bits, and no chunk
/// may exceed `isize::MAX` bytes.
pub const MAX_WOSIZE: usize = (1 << 40) - 1;

fn chunk_layout(words: usize) -> Option<Layout> {
    let bytes = words.checked_add(CHUNK_HEADER_WORDS)?.checked_mul(WORD)?;
    Layout::from_size_align(bytes, WORD).ok()
}

/// Allocates a chunk with `words` payload words (at most [`MAX_WOSIZE`]);
/// `None` if memory is exhausted.
fn try_chunk_alloc(words: usize) -> Option<NonNull<ChunkHeader>> {
    if words > MAX_WOSIZE + 1 {
        return None;
    }
    let layout = chunk_layout(words)?;
    // SAFETY: the layout has a non-zero size (at least the header).
    let p = unsafe { alloc(layout) } as *mut ChunkHeader;
    let p = NonNull::new(p)?;
    // SAFETY: `p` is a fresh allocation large enough for the header.
    unsafe {
        p.as_ptr().write(ChunkHeader {
            next: ptr::null_mut(),
            words,
        })
    };
    Some(p)
}

/// # Safety
/// `c` came from `chunk_alloc` and is not used afterwards.
unsafe fn chunk_free(c: *mut ChunkHeader) {
    // SAFETY: caller's guarantee; the layout is rebuilt from the header.
    unsafe {
        let words = (*c).words;
        // The layout was valid when the chunk was made.
        if let Some(l) = chunk_layout(words) {
            dealloc(c as *mut u8, l);
        }
    }
}

/// # Safety
/// `c` is a live chunk.
#[inline]
unsafe fn chunk_data(c: *mut ChunkHeader) -> *mut u64 {
    // SAFETY: the payload follows the header inside the same allocation.
    unsafe { (c as *mut u64).add(CHUNK_HEADER_WORDS) }
}

/// Flag in the `words` of a chunk chained behind a message fragment that
/// holds no block but a pointer to a large object the message shares
/// ([`Fragment::try_add_shared`]).
const REF_CHUNK: usize = 1 << 62;

/// The owner count of a large object's chunk, kept in its `next` link
/// (unused once the chunk is a large object): the number of *other*
/// processes, messages and frozen values holding it, 0 when one owner has
/// it alone (as `Arc`, offset by one so a fresh chunk needs no write).
///
/// # Safety
/// `c` is a live large-object chunk.
#[inline]
unsafe fn owners(c: *mut ChunkHeader) -> &'static AtomicUsize {
    // SAFETY: `next` is a pointer-sized, aligned field of a live chunk;
    // while the chunk is a large object it is only accessed atomically.
    unsafe { &*(ptr::addr_of_mut!((*c).next) as *const AtomicUsize) }
}

/// Gives up one owner's hold on large-object chunk `c`, freeing it when
/// that was the last.
///
/// # Safety
/// `c` is a live large-object chunk the caller holds, not used by the
/// caller afterwards.
unsafe fn release_large(c: *mut ChunkHeader) {
    // SAFETY: the caller's hold keeps `c` live until here.
    unsafe {
        let n = owners(c);
        // Alone (0): nobody else can take a hold meanwhile (only holders
        // share). Else the owner that takes the count below zero is last.
        if n.load(Ordering::Acquire) == 0 || n.fetch_sub(1, Ordering::Release) == 0 {
            std::sync::atomic::fence(Ordering::Acquire);
            chunk_free(c);
        }
    }
}

/// What torture mode writes over reused and dead heap memory: even (so
/// it reads as a pointer) and far outside any mapping, so a stale pointer
/// followed through it faults at once.
pub const POISON: u64 = 0xdead_0000_dead_0000;

/// A per-process heap: a singly linked list of chunks. The bump region of
/// the current chunk is kept by the owner (`Process::heap_ptr/heap_limit`).
pub struct Heap {
    chunks: *mut ChunkHeader,
    /// Adopted message fragments, kept apart from the bump chunks: a minor
    /// collection keeps a live one whole instead of copying it.
    adopted: *mut ChunkHeader,
    next_words: usize,
    /// Total payload words of all chunks (bump chunks and fragments).
    words: usize,
}

// SAFETY: a heap is owned by exactly one process at a time and moves
// between scheduler threads with it; chunks are plain memory.
unsafe impl Send for Heap {}

impl Default for Heap {
    fn default() -> Self {
        Self::new()
    }
}

impl Heap {
    /// An empty heap: no chunk is allocated until the first allocation.
    pub const fn new() -> Self {
        Heap {
            chunks: ptr::null_mut(),
            adopted: ptr::null_mut(),
            next_words: FIRST_CHUNK_WORDS,
            words: 0,
        }
    }

    /// Total words held (chunks and adopted fragments), for statistics.
    pub fn words(&self) -> usize {
        self.words
    }

    /// Starts a new bump chunk able to hold at least `need` words (at most
    /// [`MAX_WOSIZE`] + 1); returns its `(start, end)` addresses, or `None`
    /// if memory is exhausted. The rest of the previous chunk is abandoned
    /// (until a GC exists).
    pub fn grow(&mut self, need: usize) -> Option<(u64, u64)> {
        let words = self.next_words.max(need);
        let c = try_chunk_alloc(words)?.as_ptr();
        // The first chunk is small for idle processes; one that outgrows
        // it jumps to four times its size (no 16 + 32 + 64 ladder for a
        // process that allocates a few closures), then doubles.
        if self.next_words == FIRST_CHUNK_WORDS {
            self.next_words *= 4;
        } else if self.next_words < MAX_CHUNK_WORDS {
            self.next_words *= 2;
        }
        // SAFETY: `c` is a fresh chunk; linking it transfers ownership.
        unsafe {
            (*c).next = self.chunks;
            self.chunks = c;
            self.words += words;
            let start = chunk_data(c) as u64;
            Some((start, start + (words * WORD) as u64))
        }
    }

    /// A chunk of exactly `words` payload words, linked into this heap
    /// (the collector's to-space); `None` if memory is exhausted.
    pub fn grow_exact(&mut self, words: usize) -> Option<(u64, u64)> {
        let c = try_chunk_alloc(words)?.as_ptr();
        // SAFETY: `c` is a fresh chunk; linking it transfers ownership.
        unsafe {
            (*c).next = self.chunks;
            self.chunks = c;
            self.words += words;
            let start = chunk_data(c) as u64;
            Some((start, start + (words * WORD) as u64))
        }
    }

    /// The payload ranges `[start, end)` of every chunk (bump chunks and
    /// adopted fragments), unordered: the collector's from-space.
    pub fn chunk_ranges(&self) -> Vec<(u64, u64)> {
        let mut out = self.bump_ranges();
        out.extend(self.adopted_ranges());
        out
    }

    /// The payload ranges of the bump chunks, unordered.
    pub fn bump_ranges(&self) -> Vec<(u64, u64)> {
        list_ranges(self.chunks)
    }

    /// The payload ranges of the adopted fragments, in the order
    /// [`Heap::take_adopted`] returns them.
    pub fn adopted_ranges(&self) -> Vec<(u64, u64)> {
        list_ranges(self.adopted)
    }

    /// Unlinks the adopted fragments (in [`Heap::adopted_ranges`]' order)
    /// and gives them back: a minor collection frees the dead ones and
    /// moves the live ones, whole, to the old generation.
    pub fn take_adopted(&mut self) -> Vec<Fragment> {
        let mut out = vec![];
        let mut c = self.adopted;
        while !c.is_null() {
            // SAFETY: every chunk in the list is live and owned by this
            // heap; ownership passes to the fragment made of it.
            unsafe {
                let next = (*c).next;
                (*c).next = ptr::null_mut();
                self.words -= (*c).words;
                out.push(Fragment(NonNull::new_unchecked(c)));
                c = next;
            }
        }
        self.adopted = ptr::null_mut();
        out
    }

    /// Sets the size of the next chunk [`Heap::grow`] opens (it doubles
    /// from there while below [`MAX_CHUNK_WORDS`]): the collector sizes
    /// the nursery with it, so a nursery is one chunk, reused.
    pub fn set_next_words(&mut self, words: usize) {
        self.next_words = words.max(FIRST_CHUNK_WORDS);
    }

    /// Frees every chunk but the largest bump chunk, and that one too if it
    /// holds more than `max_words` (adopted fragments all go); returns the
    /// payload range of the chunk kept. After
    /// a collection every block of the heap is dead or moved, so the kept
    /// chunk is reused as the next allocation area: the nursery stays in
    /// the cache and costs no page faults (as OCaml's minor heap). With
    /// `poison` its words are overwritten first with a pattern that is not
    /// a value (torture mode: a pointer the collector failed to update
    /// then fails fast instead of reading stale blocks).
    pub fn retain_largest(&mut self, max_words: usize, poison: bool) -> Option<(u64, u64)> {
        let mut keep: *mut ChunkHeader = ptr::null_mut();
        let mut c = self.chunks;
        // SAFETY (both loops): every chunk in the list is live and owned by
        // this heap; each is freed at most once and unlinked.
        unsafe {
            while !c.is_null() {
                if (*c).words <= max_words && (keep.is_null() || (*c).words > (*keep).words) {
                    keep = c;
                }
                c = (*c).next;
            }
            c = self.chunks;
            while !c.is_null() {
                let next = (*c).next;
                if c != keep {
                    chunk_free(c);
                }
                c = next;
            }
            self.chunks = keep;
            // The adopted fragments are dead or moved too.
            drop(self.take_adopted());
            if keep.is_null() {
                self.words = 0;
                return None;
            }
            (*keep).next = ptr::null_mut();
            let words = (*keep).words;
            self.words = words;
            let start = chunk_data(keep);
            if poison {
                std::slice::from_raw_parts_mut(start, words).fill(POISON);
            }
            Some((start as u64, start as u64 + (words * WORD) as u64))
        }
    }

    /// Overwrites every word of every chunk with [`POISON`] (torture mode,
    /// before a collection frees them).
    pub fn poison(&mut self) {
        for mut c in [self.chunks, self.adopted] {
            while !c.is_null() {
                // SAFETY: every chunk in the lists is live and owned by
                // this heap.
                unsafe {
                    std::slice::from_raw_parts_mut(chunk_data(c), (*c).words).fill(POISON);
                    c = (*c).next;
                }
            }
        }
    }

    /// Links a message fragment into this heap (the receiver "adopts" it).
    /// Its large blocks, if any, must have been taken first (they belong
    /// in a [`LargeSpace`]: `Process::adopt`); left on it, they are leaked
    /// rather than freed under the message's pointers.
    pub fn adopt(&mut self, mut frag: Fragment) {
        let large = frag.take_large();
        debug_assert!(large.is_empty(), "adopted a fragment with large blocks");
        std::mem::forget(large);
        let c = frag.0.as_ptr();
        std::mem::forget(frag);
        // SAFETY: the fragment's chunk is owned by us from now on.
        unsafe {
            (*c).next = self.adopted;
            self.words += (*c).words;
        }
        self.adopted = c;
    }
}

/// The payload ranges of a chunk list.
fn list_ranges(mut c: *mut ChunkHeader) -> Vec<(u64, u64)> {
    let mut out = vec![];
    while !c.is_null() {
        // SAFETY: every chunk in a heap's lists is live and owned by it.
        unsafe {
            let s = chunk_data(c) as u64;
            out.push((s, s + ((*c).words * WORD) as u64));
            c = (*c).next;
        }
    }
    out
}

impl Drop for Heap {
    fn drop(&mut self) {
        for mut c in [self.chunks, self.adopted] {
            while !c.is_null() {
                // SAFETY: every chunk in the lists is owned by this heap.
                unsafe {
                    let next = (*c).next;
                    chunk_free(c);
                    c = next;
                }
            }
        }
    }
}

/// An exactly-sized chunk holding a copied message (or a spawned closure)
/// until a heap adopts it. Dropping it frees it (a message to a dead
/// process, a late reply).
///
/// A message's blocks of [`LARGE_WORDS`] words or more may travel in
/// chunks of their own, one block each, chained behind the main chunk
/// (its `next` link, unused while the fragment is not adopted): the
/// receiver takes them into its [`LargeSpace`] as they are
/// ([`Fragment::take_large`]), so a big string is copied once, by its
/// sender, and never again by the receiver's collector.
pub struct Fragment(NonNull<ChunkHeader>);

// SAFETY: a fragment is plain memory owned by exactly one message.
unsafe impl Send for Fragment {}

impl Fragment {
    /// A fragment of `words` words (0 only when large blocks are added
    /// with [`Fragment::try_add_large`]); `None` if memory is exhausted —
    /// the caller crashes the process that asked for it (a sender whose
    /// message cannot be copied), never the VM.
    pub fn try_new(words: usize) -> Option<Self> {
        try_chunk_alloc(words).map(Fragment)
    }

    /// Chains a chunk of `words` words (one large block, header included)
    /// behind the main chunk and returns its payload; `None` if memory is
    /// exhausted (the fragment, and what it holds, stays as it was).
    pub fn try_add_large(&mut self, words: usize) -> Option<*mut u64> {
        let c = try_chunk_alloc(words)?.as_ptr();
        // SAFETY: `c` is fresh; the main chunk is ours and its `next` link
        // heads the chain of large chunks.
        unsafe {
            let main = self.0.as_ptr();
            (*c).next = (*main).next;
            (*main).next = c;
            Some(chunk_data(c))
        }
    }

    /// Chains a hold on a large object (a big string of the sender's,
    /// which the message shares instead of copying: the caller has taken
    /// the hold with [`LargeSpace::share`]); `false` if memory for the
    /// link cannot be had (the hold is then given up).
    ///
    /// # Safety
    /// `block` is the large object's field 0, held by the caller for this
    /// fragment.
    pub unsafe fn try_add_shared(&mut self, block: u64) -> bool {
        // SAFETY: a large object's block is the first payload word of its
        // chunk, which follows the chunk's header.
        let target = unsafe { (block as *mut u64).sub(1 + CHUNK_HEADER_WORDS) } as *mut ChunkHeader;
        let Some(c) = try_chunk_alloc(1) else {
            // SAFETY: the caller's hold, given up.
            unsafe { release_large(target) };
            return false;
        };
        // SAFETY: `c` is fresh, one payload word; the main chunk is ours.
        unsafe {
            let c = c.as_ptr();
            (*c).words = 1 | REF_CHUNK;
            *chunk_data(c) = target as u64;
            let main = self.0.as_ptr();
            (*c).next = (*main).next;
            (*main).next = c;
        }
        true
    }

    /// Unlinks the chunks of the large blocks ([`Fragment::try_add_large`])
    /// and the holds on shared ones ([`Fragment::try_add_shared`]) and
    /// gives them back, for a [`LargeSpace`] to take.
    pub fn take_large(&mut self) -> LargeChunks {
        // SAFETY: the main chunk is ours; its chain passes to the result.
        unsafe {
            let main = self.0.as_ptr();
            LargeChunks(std::mem::replace(&mut (*main).next, ptr::null_mut()))
        }
    }

    /// Whether a large block that holds pointers travels with this one
    /// (it may point into the main chunk, which must then not move).
    pub fn large_has_pointers(&self) -> bool {
        // SAFETY: the main chunk and its chain are ours.
        unsafe {
            let mut c = (*self.0.as_ptr()).next;
            while !c.is_null() {
                if (*c).words & REF_CHUNK != 0 {
                    // A shared big string: no pointers.
                    c = (*c).next;
                    continue;
                }
                let h = *chunk_data(c);
                let (a, b) = crate::value::scan_range(
                    crate::value::header_tag(h),
                    crate::value::header_wosize(h) as usize,
                );
                if a < b {
                    return true;
                }
                c = (*c).next;
            }
        }
        false
    }

    /// Start of the payload (8-byte aligned, `words` words).
    pub fn data(&self) -> *mut u64 {
        // SAFETY: the chunk is live while the fragment exists.
        unsafe { chunk_data(self.0.as_ptr()) }
    }

    /// Payload size in words of the main chunk (large blocks not counted).
    pub fn words(&self) -> usize {
        // SAFETY: the chunk is live while the fragment exists.
        unsafe { (*self.0.as_ptr()).words }
    }

    /// Words of the main chunk and of every large block chained behind it
    /// (shared ones included).
    pub fn total_words(&self) -> usize {
        // SAFETY: the main chunk and its chain are ours; a held large
        // object is live.
        unsafe {
            let mut n = 0;
            let mut c = self.0.as_ptr();
            while !c.is_null() {
                n += match (*c).words {
                    w if w & REF_CHUNK != 0 => (*(*chunk_data(c) as *mut ChunkHeader)).words,
                    w => w,
                };
                c = (*c).next;
            }
            n
        }
    }

    /// Overwrites the payload, large blocks included (shared ones not:
    /// others read them), with [`POISON`] (torture mode, before a
    /// collection frees a dead fragment).
    pub fn poison(&mut self) {
        // SAFETY: the main chunk and its chain are ours.
        unsafe {
            let mut c = self.0.as_ptr();
            while !c.is_null() {
                if (*c).words & REF_CHUNK == 0 {
                    std::slice::from_raw_parts_mut(chunk_data(c), (*c).words).fill(POISON);
                }
                c = (*c).next;
            }
        }
    }
}

impl Drop for Fragment {
    fn drop(&mut self) {
        // SAFETY: we own the chunk and its chain; nobody uses them after us.
        unsafe {
            drop(self.take_large());
            chunk_free(self.0.as_ptr())
        }
    }
}

/// The chunks of a message's large blocks, one block each, taken from its
/// [`Fragment`]; freed when dropped unless a [`LargeSpace`] adopts them.
pub struct LargeChunks(*mut ChunkHeader);

// SAFETY: plain memory owned by exactly one message or process.
unsafe impl Send for LargeChunks {}

impl LargeChunks {
    /// True when there is no chunk.
    pub fn is_empty(&self) -> bool {
        self.0.is_null()
    }

    /// Unlinks the first chunk: a large block's own chunk (`false`), or a
    /// shared large object whose hold passes to the caller (`true`; the
    /// link that held it is freed).
    fn pop(&mut self) -> Option<(*mut ChunkHeader, bool)> {
        let c = self.0;
        if c.is_null() {
            return None;
        }
        // SAFETY: a chunk of the chain, ours; unlinked before it is given
        // out (or freed, for a link).
        unsafe {
            self.0 = (*c).next;
            (*c).next = ptr::null_mut();
            if (*c).words & REF_CHUNK != 0 {
                let target = *chunk_data(c) as *mut ChunkHeader;
                (*c).words &= !REF_CHUNK;
                chunk_free(c);
                Some((target, true))
            } else {
                Some((c, false))
            }
        }
    }
}

impl Drop for LargeChunks {
    fn drop(&mut self) {
        while let Some((c, shared)) = self.pop() {
            // SAFETY: `c` is ours (or our hold on it), given up once.
            unsafe {
                if shared {
                    release_large(c);
                } else {
                    chunk_free(c);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Large objects
// ---------------------------------------------------------------------------

/// Blocks of at least this many words (header excluded; 16 KiB) are large
/// objects: allocated one by one in the process's [`LargeSpace`], never
/// copied by the collector.
pub const LARGE_WORDS: usize = 2048;

/// How many holds large object `block` (field 0) has besides one: 0 when
/// one owner has it alone.
///
/// # Safety
/// `block` is a live large object.
#[cfg(test)]
pub(crate) unsafe fn other_holders(block: u64) -> usize {
    // SAFETY: the caller's guarantee.
    unsafe {
        let c = (block as *mut u64).sub(1 + CHUNK_HEADER_WORDS) as *mut ChunkHeader;
        owners(c).load(Ordering::Acquire)
    }
}

/// How many of the newest large objects [`LargeSpace::holds`] looks at.
const HOLDS_SCAN: usize = 64;

/// A process's large objects: one chunk per block, freed by the collector
/// when unreachable and all at once when the process exits.
#[derive(Default)]
pub struct LargeSpace {
    objs: Vec<NonNull<ChunkHeader>>,
    /// Total payload words (headers of the blocks included).
    words: usize,
    /// Objects from this index on were allocated since the last
    /// collection: young (a minor collection marks them; older ones cannot
    /// point to young blocks and are left alone until a major one).
    young_from: u32,
}

// SAFETY: owned by one process, moved between threads with it; plain memory.
unsafe impl Send for LargeSpace {}

impl LargeSpace {
    /// Allocates a block of `wosize` words with `tag` (header written,
    /// fields uninitialised); returns a pointer to field 0, or `None` if
    /// memory is exhausted.
    pub fn alloc(&mut self, tag: u8, wosize: usize) -> Option<*mut u64> {
        let c = try_chunk_alloc(wosize.checked_add(1)?)?;
        self.objs.push(c);
        self.words += wosize + 1;
        // SAFETY: a fresh chunk of `wosize + 1` payload words.
        unsafe {
            let d = chunk_data(c.as_ptr());
            *d = make_header(wosize as u64, tag);
            Some(d.add(1))
        }
    }

    /// Words held (headers included).
    pub fn words(&self) -> usize {
        self.words
    }

    /// Takes a message's large blocks as young large objects, without
    /// copying them; returns the words taken, or `None` if memory for the
    /// index cannot be had (the chunks not taken are then given back).
    pub fn adopt(&mut self, mut chunks: LargeChunks) -> usize {
        let mut taken = 0;
        while let Some((c, _)) = chunks.pop() {
            // SAFETY: a large-object chunk (ours, or our hold on it), live.
            unsafe {
                taken += (*c).words;
                self.objs.push(NonNull::new_unchecked(c));
            }
        }
        self.words += taken;
        taken
    }

    /// Whether `block` (a block's field 0) is one of this space's large
    /// objects. Looks at the newest objects only (a string about to be
    /// sent was most likely made or received lately): an older one is
    /// reported absent, and the caller copies it instead.
    pub fn holds(&self, block: u64) -> bool {
        self.objs
            .iter()
            .rev()
            .take(HOLDS_SCAN)
            // SAFETY: a live chunk of this space.
            .any(|c| unsafe { chunk_data(c.as_ptr()) } as u64 + WORD as u64 == block)
    }

    /// Takes one more hold on large object `block` (field 0), for a
    /// message or a frozen value that shares it with this space's owner.
    ///
    /// # Safety
    /// `holds(block)` is true.
    pub unsafe fn share(block: u64) {
        // SAFETY: the caller's guarantee: a live large-object chunk, held
        // by the calling process (so its count cannot reach zero now).
        unsafe {
            let c = (block as *mut u64).sub(1 + CHUNK_HEADER_WORDS) as *mut ChunkHeader;
            owners(c).fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Words of the objects allocated since the last collection (few:
    /// each is 16 KiB or more).
    pub fn young_words(&self) -> usize {
        self.objs[self.young_from()..]
            .iter()
            // SAFETY: a live chunk of this space.
            .map(|c| unsafe { (*c.as_ptr()).words })
            .sum()
    }

    /// Index of the first object allocated since the last collection
    /// (objects `young_from()..len()` are young).
    pub fn young_from(&self) -> usize {
        self.young_from as usize
    }

    /// Number of large objects.
    pub fn len(&self) -> usize {
        self.objs.len()
    }

    /// True when there is none.
    pub fn is_empty(&self) -> bool {
        self.objs.is_empty()
    }

    /// `(payload start, payload end)` of object `i` (the block's header is
    /// the first payload word).
    pub fn range(&self, i: usize) -> (u64, u64) {
        let c = self.objs[i].as_ptr();
        // SAFETY: a live chunk of this space.
        unsafe {
            let s = chunk_data(c) as u64;
            (s, s + ((*c).words * WORD) as u64)
        }
    }

    /// Frees every object whose `keep` flag is false (indexed as
    /// [`LargeSpace::range`]); returns the words still held. Every object
    /// left is old from now on.
    pub fn sweep(&mut self, keep: &[bool]) -> usize {
        debug_assert_eq!(keep.len(), self.objs.len());
        let mut words = 0;
        let mut i = 0;
        self.objs.retain(|c| {
            let k = keep[i];
            i += 1;
            // SAFETY: a live chunk of this space, freed at most once.
            unsafe {
                if k {
                    words += (*c.as_ptr()).words;
                } else {
                    release_large(c.as_ptr());
                }
            }
            k
        });
        self.words = words;
        // Fewer than 2^32 objects: each takes 16 KiB or more.
        self.young_from = self.objs.len() as u32;
        words
    }
}

impl Drop for LargeSpace {
    fn drop(&mut self) {
        for c in self.objs.drain(..) {
            // SAFETY: every chunk is held by this space.
            unsafe { release_large(c.as_ptr()) }
        }
    }
}

// ---------------------------------------------------------------------------
// Literal area
// ---------------------------------------------------------------------------

/// Virtual size reserved for the literal area (`MAP_NORESERVE`: only pages
/// actually written cost memory).
pub const LITERAL_AREA_BYTES: usize = 4 << 30;

static LIT_BASE: AtomicU64 = AtomicU64::new(0);
static LIT_SIZE: AtomicU64 = AtomicU64::new(0);

struct LiteralArea {
    base: u64,
    used: usize,
}

static LITERALS: Mutex<LiteralArea> = Mutex::new(LiteralArea { base: 0, used: 0 });

/// True if `p` points into the immortal literal area (shared, never freed,
/// never copied).
#[inline]
pub fn is_literal(p: u64) -> bool {
    p.wrapping_sub(LIT_BASE.load(Ordering::Acquire)) < LIT_SIZE.load(Ordering::Relaxed)
}

/// Lowest and one-past-highest address of the generated code's static
/// data (constant blocks, static closures, boxed float literals), widened
/// by [`note_static_data`]; 0..0 until code is compiled.
static STATIC_LO: AtomicU64 = AtomicU64::new(u64::MAX);
static STATIC_HI: AtomicU64 = AtomicU64::new(0);

/// Records that `lo..hi` holds read-only static data of generated code
/// (blocks the deep copy must never write to, see
/// [`crate::term::CopyScratch::plan_owned`]). The recorded range is the
/// smallest one covering every call's: a few words of other memory
/// caught between two ranges are only copied the slower way.
pub fn note_static_data(lo: u64, hi: u64) {
    if lo < hi {
        STATIC_LO.fetch_min(lo, Ordering::AcqRel);
        STATIC_HI.fetch_max(hi, Ordering::AcqRel);
    }
}

/// Most compiling sessions whose static data get a span
/// ([`new_static_span`]); later ones only widen the coarse range.
const MAX_STATIC_SPANS: usize = 8;

/// Per compiling session, the lowest and one-past-highest address of its
/// static data ([`note_static_span`]): u64::MAX..0 while empty.
static SPANS: [(AtomicU64, AtomicU64); MAX_STATIC_SPANS] =
    [const { (AtomicU64::new(u64::MAX), AtomicU64::new(0)) }; MAX_STATIC_SPANS];
static SPAN_COUNT: AtomicUsize = AtomicUsize::new(0);

/// A span for one compiling session's static data, or `None` when all
/// [`MAX_STATIC_SPANS`] are taken (its data is then only noted in the
/// coarse range, and copied when sent).
pub fn new_static_span() -> Option<usize> {
    let i = SPAN_COUNT.fetch_add(1, Ordering::AcqRel);
    (i < MAX_STATIC_SPANS).then_some(i)
}

/// Records that `lo..hi` holds read-only static data of the session that
/// owns `span`, as [`note_static_data`] does, and widens the span to
/// cover it.
///
/// # Safety
/// Everything between the lowest and highest address ever noted for
/// `span` stays mapped for the life of the process, and every block a
/// value can point at in it is immutable static data whose fields point
/// only at such blocks, literals or immediates: [`is_static_block`] lets
/// messages share these blocks instead of copying them. One session's
/// JIT arena (a single reservation, never freed once finalised) is such
/// a region.
pub unsafe fn note_static_span(span: usize, lo: u64, hi: u64) {
    note_static_data(lo, hi);
    if lo < hi {
        SPANS[span].0.fetch_min(lo, Ordering::AcqRel);
        SPANS[span].1.fetch_max(hi, Ordering::AcqRel);
    }
}

/// True if `p` points into a session's span of static data
/// ([`note_static_span`]): an immutable block that lives as long as the
/// process, which a message can share instead of copying. Exact, unlike
/// [`is_static`]. A span only widens within its arena, so even a read
/// that mixes an old bound with a new one gives a range inside it.
#[inline]
pub fn is_static_block(p: u64) -> bool {
    if !is_static(p) {
        return false;
    }
    let n = SPAN_COUNT.load(Ordering::Acquire).min(MAX_STATIC_SPANS);
    SPANS[..n]
        .iter()
        .any(|(lo, hi)| p >= lo.load(Ordering::Relaxed) && p < hi.load(Ordering::Relaxed))
}

/// True if `p` may point into the generated code's read-only static data
/// (see [`note_static_data`]).
#[inline]
pub fn is_static(p: u64) -> bool {
    p >= STATIC_LO.load(Ordering::Relaxed) && p < STATIC_HI.load(Ordering::Relaxed)
}

fn lock_literals() -> std::sync::MutexGuard<'static, LiteralArea> {
    LITERALS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` with `(destination, words)` allocated in the literal area,
/// holding its lock. Returns `None` if the area is exhausted.
pub(crate) fn with_literal_space<R>(words: usize, f: impl FnOnce(*mut u64) -> R) -> Option<R> {
    let mut area = lock_literals();
    if area.base == 0 {
        // SAFETY: a fresh anonymous private mapping; no existing memory is
        // affected.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                LITERAL_AREA_BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        area.base = p as u64;
        LIT_SIZE.store(LITERAL_AREA_BYTES as u64, Ordering::Relaxed);
        LIT_BASE.store(p as u64, Ordering::Release);
    }
    let bytes = words * WORD;
    if area.used + bytes > LITERAL_AREA_BYTES {
        return None;
    }
    let dst = (area.base + area.used as u64) as *mut u64;
    area.used += bytes;
    Some(f(dst))
}

/// Allocates a block of `wosize` words with `tag` in the literal area (for
/// the host: e.g. the main closure, or constants built before any process
/// runs). Fields are zeroed (0 is not a value: fill them in). Returns a
/// pointer to field 0. Panics if the area is exhausted
/// ([`LITERAL_AREA_BYTES`]).
pub fn literal_block(tag: u8, wosize: usize) -> *mut u64 {
    with_literal_space(wosize + 1, |dst| {
        // SAFETY: `dst` has `wosize + 1` fresh (zeroed) words.
        unsafe {
            *dst = make_header(wosize as u64, tag);
            dst.add(1)
        }
    })
    .expect("literal area exhausted")
}

/// A string in the literal area.
pub fn literal_string(bytes: &[u8]) -> Value {
    let ws = crate::value::string_wosize(bytes.len());
    let p = literal_block(crate::value::TAG_STRING, ws);
    // SAFETY: `p` has `ws` zeroed words: the length, then room for the
    // bytes (padding stays zero).
    unsafe {
        *p = bytes.len() as u64;
        ptr::copy_nonoverlapping(bytes.as_ptr(), p.add(1) as *mut u8, bytes.len());
    }
    p as Value
}

/// Deep-copies `v` into the literal area (what `caravan_rt_global` does),
/// using `scratch`. Returns `None` if the area is exhausted.
///
/// # Safety
/// `v` must be a valid value whose blocks nobody mutates during the copy.
pub(crate) unsafe fn literal_copy(
    scratch: &mut crate::term::CopyScratch,
    v: Value,
) -> Option<Value> {
    // SAFETY: caller's guarantee on `v`.
    let words = unsafe { scratch.plan(v, is_literal) }?;
    if words == 0 {
        return Some(v);
    }
    // SAFETY: `dst` has exactly `words` words, as planned.
    with_literal_space(words, |dst| unsafe { scratch.emit(dst, is_literal) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::*;

    #[test]
    fn heap_grows_and_adopts() {
        let mut h = Heap::new();
        let (s, e) = h.grow(10).unwrap();
        assert_eq!((e - s) as usize, FIRST_CHUNK_WORDS * 8);
        let (s2, e2) = h.grow(1).unwrap();
        assert_eq!((e2 - s2) as usize, FIRST_CHUNK_WORDS * 4 * 8);
        let f = Fragment::try_new(3).unwrap();
        assert_eq!(f.words(), 3);
        // SAFETY: the fragment has 3 words.
        unsafe { *f.data() = 7 };
        h.adopt(f);
        assert_eq!(h.words(), FIRST_CHUNK_WORDS * 5 + 3);
    }

    #[test]
    fn large_objects_are_swept() {
        let mut l = LargeSpace::default();
        let a = l.alloc(TAG_STRING, LARGE_WORDS).unwrap();
        let b = l.alloc(0, LARGE_WORDS + 5).unwrap();
        assert_eq!(l.words(), 2 * LARGE_WORDS + 7);
        // SAFETY: headers written by `alloc`.
        unsafe {
            assert_eq!(
                header(a as Value),
                make_header(LARGE_WORDS as u64, TAG_STRING)
            );
            assert_eq!(header(b as Value), make_header(LARGE_WORDS as u64 + 5, 0));
        }
        let (s, e) = l.range(1);
        assert_eq!(s + 8, b as u64);
        assert_eq!(e - s, (LARGE_WORDS as u64 + 6) * 8);
        assert_eq!(l.sweep(&[false, true]), LARGE_WORDS + 6);
        assert_eq!(l.len(), 1);
        // Absurd sizes fail cleanly.
        assert!(l.alloc(0, usize::MAX - 1).is_none());
        assert!(Fragment::try_new(usize::MAX / 4).is_none());
    }

    #[test]
    fn literals() {
        let s = literal_string(b"hello literal");
        assert!(is_literal(s));
        // SAFETY: `s` is a string block.
        assert_eq!(unsafe { string_bytes(s) }, b"hello literal");
        let b = literal_block(0, 2);
        // SAFETY: two fields.
        unsafe {
            *b = s;
            *b.add(1) = of_int(3);
        }
        let mut sc = crate::term::CopyScratch::default();
        // A literal is shared, not copied.
        // SAFETY: valid value.
        assert_eq!(
            unsafe { literal_copy(&mut sc, b as Value) },
            Some(b as Value)
        );
        let x = 0u64;
        assert!(!is_literal(&x as *const u64 as u64));
    }
}
