//! The per-process garbage collector: precise, moving (Cheney 1970, "A
//! nonrecursive list compacting algorithm"), generational (Ungar 1984,
//! "Generation Scavenging"; see [`Generations`]), run only by the process
//! that owns the heap, only when it allocates — never while it is
//! suspended, and never stopping another process.
//!
//! Roots:
//! - the stack: generated code calls the collecting allocator through a
//!   trampoline that records its own frame pointer in `Process::exit_fp`;
//!   from there the collector walks the frame-pointer chain of generated
//!   frames (`preserve_frame_pointers`) and, at each frame's return
//!   address, reads the Cranelift user stack map registered for it: the
//!   stack slots (`SP + offset`, with `SP = FP - frame size`) that hold
//!   live values. This is how wasmtime finds GC roots in Wasm frames.
//! - the mailbox: messages already adopted into the heap;
//! - a few process fields (`trap_wrap`, `init_closure`, `init_arg`).
//!
//! A value is copied only if it points into one of the chunks being
//! collected (the nursery and survivor space in a minor collection, every
//! generation in a major one): the old generation in a minor collection,
//! literals, static data of the generated code and messages still in their
//! fragments are left alone. A copied block's header is
//! overwritten with 0 (no real block has a zero header: every block has at
//! least one word) and its first word with the new address. A value that
//! points at a large object (`heap::LargeSpace`) marks it instead, and
//! its fields, if it has any, are scanned once; unmarked large objects are
//! freed after the copy.
//!
//! When a collection runs: the collecting allocator (generated code's slow
//! path) collects when the nursery is full; every other
//! allocation — builtins, runtime functions, adopted messages — only
//! counts, and when it passes the threshold sets `Process::gc_pending`, on
//! which the trampoline that called the function collects before it
//! returns to generated code (`caravan_rt_gc_after`, with the function's
//! result as a root). So every allocation counts toward the owner's
//! collections, wherever it was made.
//!
//! Memory limits (LANGUAGE.md §3): an allocation that cannot be had, or a
//! heap past physical memory, crashes the process with `Crashed "out of
//! memory"`; with a heap limit (Erlang's `max_heap_size`), live data past
//! it after a collection, a single block larger than it, or a heap
//! (garbage included) past three times it crash the process with `Crashed
//! "heap limit"`. Never the VM.

use crate::heap::Heap;
use crate::process::Process;
use crate::value::{header_tag, header_wosize, make_header, scan_range, Value, WORD};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;

/// A process collects when its heap holds this many words more than after
/// its last collection, at least (8 KiB; the BEAM starts heaps at 233
/// words).
pub const MIN_GC_WORDS: usize = 1024;

static TORTURE: AtomicBool = AtomicBool::new(false);

/// Torture mode, a test of the collector's roots: every allocation that
/// reaches the runtime (with generated code compiled without inline
/// allocation: every allocation) collects, as long as less than 64 words
/// per allocation since the last collection are live — so programs with
/// millions of live blocks still finish, collecting every few hundred
/// allocations instead of at each one.
pub fn set_torture(on: bool) {
    TORTURE.store(on, Ordering::Relaxed);
}

/// Whether torture mode is on.
pub fn torture() -> bool {
    TORTURE.load(Ordering::Relaxed)
}

/// Where live values are in one frame of generated code at one return
/// address: the frame's size (FP − SP) and the byte offsets from SP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackMap {
    /// Absolute return address the map belongs to.
    pub pc: u64,
    /// FP − SP of the frame at that point, bytes.
    pub frame_size: u32,
    /// Offsets from SP of the slots holding values.
    pub offsets: Vec<u32>,
}

#[derive(Default)]
struct Maps {
    /// Code ranges `[start, end)` of generated functions, sorted.
    code: Vec<(u64, u64)>,
    /// Stack maps sorted by `pc`.
    maps: Vec<StackMap>,
}

static MAPS: RwLock<Maps> = RwLock::new(Maps {
    code: Vec::new(),
    maps: Vec::new(),
});

/// Registers generated code: function ranges `[start, end)` and their stack
/// maps (the compiler calls this after finalising each batch of code).
pub fn register_code(ranges: &[(u64, u64)], maps: Vec<StackMap>) {
    let mut m = MAPS.write().unwrap_or_else(|e| e.into_inner());
    m.code.extend_from_slice(ranges);
    m.code.sort_unstable();
    m.maps.extend(maps);
    m.maps.sort_unstable_by_key(|s| s.pc);
}

/// Whether `pc` is inside a function of generated code.
pub(crate) fn is_generated_code(pc: u64) -> bool {
    in_code(&MAPS.read().unwrap_or_else(|e| e.into_inner()), pc)
}

fn in_code(m: &Maps, pc: u64) -> bool {
    let i = m.code.partition_point(|&(s, _)| s <= pc);
    i > 0 && pc < m.code[i - 1].1
}

/// True if `pc` is inside generated code (a return address of a generated
/// frame's caller); used to find where the generated frames of a stack end.
pub(crate) fn is_generated_pc(pc: u64) -> bool {
    in_code(&MAPS.read().unwrap_or_else(|e| e.into_inner()), pc)
}

fn map_at(m: &Maps, pc: u64) -> Option<&StackMap> {
    m.maps
        .binary_search_by_key(&pc, |s| s.pc)
        .ok()
        .map(|i| &m.maps[i])
}

/// Largest nursery, in words (16 MiB). A process's nursery is its live
/// size after its last collection, clamped to [`MIN_GC_WORDS`]..this:
/// small processes keep small heaps, and the nursery never more than
/// doubles a heap. Measured on binary-trees 20 (sequential), when every
/// nursery still ran to twice its size (a second chunk when the block did
/// not fit the first): a nursery of at most 256 k words (OCaml's default
/// minor heap) took 4.2–4.6 s and 238 MB; 1 M words 3.5 s, 197 MB; 2 M
/// words 3.1–3.3 s, 167 MB; 4 M words no faster and more memory. Held to
/// its size, 2 M words took 2.1–2.2 s and 148 MB (against 1.9–2.0 s and
/// 165–188 MB at twice it). Big trees die young in a big nursery instead
/// of being promoted and copied by major collections.
pub const NURSERY_MAX_WORDS: usize = 2 * 1024 * 1024;

/// The old generation's size that first triggers a major collection.
pub const MIN_OLD_WORDS: usize = 4 * MIN_GC_WORDS;

/// The generations of a process besides its nursery (`Process::heap`).
///
/// Blocks are allocated in the nursery. A *minor* collection copies the
/// nursery's live blocks to the survivor space (`aged`) and the survivor
/// space's live blocks — live through two minor collections — to the old
/// generation (promotion by age, as the BEAM's high-water mark does), then
/// reuses the nursery's chunk. A *major* collection copies everything live
/// into a fresh old generation; it runs when the old generation has grown
/// to twice what the last major one left.
///
/// No write barrier: values are immutable, so a block only ever points to
/// blocks at least as old as itself. The exceptions are the closures of a
/// `let rec` group, filled in after they are allocated: the compiler
/// allocates a group in one piece, so no collection runs between the
/// allocation and the patching (`caravan_rt_alloc_group_gc`). A big
/// message's fragment is adopted into the nursery, which keeps such
/// fragments apart: a minor collection moves a live one whole to the old
/// generation instead of copying it (they point only into themselves and
/// at literals). So a minor collection's roots are
/// the stack, the mailbox and the process's fields — never the old
/// generation — and the old generation is left untouched.
pub struct Generations {
    /// Blocks that survived one minor collection.
    aged: Heap,
    /// Words the last minor collection copied into `aged`.
    aged_live: usize,
    /// The old generation; promotion bump-allocates in its newest chunk,
    /// from `old_ptr` to `old_limit` (0, 0: none yet).
    old: Heap,
    old_ptr: u64,
    old_limit: u64,
    /// A major collection runs when the old generation (its chunks and its
    /// large objects) holds this many words.
    old_threshold: usize,
}

impl Default for Generations {
    fn default() -> Self {
        Generations {
            aged: Heap::new(),
            aged_live: 0,
            old: Heap::new(),
            old_ptr: 0,
            old_limit: 0,
            old_threshold: MIN_OLD_WORDS,
        }
    }
}

impl Generations {
    /// Words held by the survivor space and the old generation's chunks.
    pub fn words(&self) -> usize {
        self.aged.words() + self.old.words()
    }
}

/// Where a copied block goes.
const TO_AGED: u8 = 0;
const TO_OLD: u8 = 1;

/// What a range of [`Spaces`] is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A chunk being collected: its blocks are copied to this destination
    /// (`TO_AGED`, `TO_OLD`).
    Copy(u8),
    /// Large object `i` (its chunk holds one block): marked, not copied.
    Large(u32),
    /// Adopted message fragment `i` (minor collections): a live one is
    /// kept whole and moved to the old generation, not copied — a 10 MB
    /// message is not copied again by its receiver's next collection.
    Frag(u32),
}

/// The chunks being collected and the large objects, sorted by start
/// address, for membership. A pointer outside every range (the old
/// generation in a minor collection, literals, static data, fragments not
/// adopted) is left as it is.
struct Spaces {
    ranges: Vec<(u64, u64, Kind)>,
}

impl Spaces {
    #[inline]
    fn find(&self, p: u64) -> Option<Kind> {
        let i = self.ranges.partition_point(|&(s, _, _)| s <= p);
        (i > 0 && p < self.ranges[i - 1].1).then(|| self.ranges[i - 1].2)
    }
}

/// One destination of Cheney's copy: a list of chunks filled in order,
/// `free`/`end` bounding the current one, and the scan pointer that
/// follows the copies.
struct ToSpace {
    heap: Heap,
    /// Filled part `[start, end)` of every chunk opened before the current
    /// one, in order.
    done: Vec<(u64, u64)>,
    cur_start: u64,
    free: u64,
    end: u64,
    /// Size of the next chunk opened (doubling up to `MAX_CHUNK_WORDS`).
    chunk_words: usize,
    /// Cheney's scan pointer: in chunk `scan_ci` (an index into `done`, or
    /// the current chunk past them), at address `scan`.
    scan_ci: usize,
    scan: u64,
}

impl ToSpace {
    /// Copies go to `heap`, from `free` up to `end` first (0, 0: open a
    /// chunk of `chunk_words` at the first copy).
    fn new(heap: Heap, free: u64, end: u64, chunk_words: usize) -> Self {
        ToSpace {
            heap,
            done: vec![],
            cur_start: free,
            free,
            end,
            chunk_words: chunk_words.max(1),
            scan_ci: 0,
            scan: free,
        }
    }

    /// Room for `words` words, opening a new chunk if needed; `false` if
    /// memory is exhausted.
    fn reserve(&mut self, words: usize) -> bool {
        if self.free + (words * WORD) as u64 <= self.end {
            return true;
        }
        let size = self.chunk_words.max(words);
        match self.heap.grow_exact(size) {
            Some((s, e)) => {
                self.done.push((self.cur_start, self.free));
                self.cur_start = s;
                self.free = s;
                self.end = e;
                self.chunk_words = (self.chunk_words * 2).min(crate::heap::MAX_CHUNK_WORDS);
                true
            }
            None => false,
        }
    }

    /// The header of the next copied block not scanned yet, if any.
    fn next_to_scan(&mut self) -> Option<*mut u64> {
        loop {
            let (limit, current) = match self.done.get(self.scan_ci) {
                Some(&(_, e)) => (e, false),
                None => (self.free, true),
            };
            if self.scan < limit {
                return Some(self.scan as *mut u64);
            }
            if current {
                return None;
            }
            self.scan_ci += 1;
            self.scan = match self.done.get(self.scan_ci) {
                Some(&(s, _)) => s,
                None => self.cur_start,
            };
        }
    }

    /// Words copied here.
    fn copied(&self) -> usize {
        self.done
            .iter()
            .map(|&(s, e)| ((e - s) as usize) / WORD)
            .sum::<usize>()
            + (self.free - self.cur_start) as usize / WORD
    }
}

/// Cheney's copying state for one collection.
struct Copier<'a> {
    spaces: &'a Spaces,
    /// Indexed by `TO_AGED`, `TO_OLD`.
    to: [ToSpace; 2],
    /// Large objects reached so far, indexed from `large_base` (the first
    /// large object this collection considers).
    marked: Vec<bool>,
    large_base: usize,
    /// Reached large objects whose fields are still to be scanned.
    gray: Vec<u64>,
    /// The adopted fragments (minor collections): their ranges, which are
    /// reached, and those reached but not scanned yet.
    frags: Vec<(u64, u64)>,
    frag_live: Vec<bool>,
    frag_gray: Vec<usize>,
    /// To-space could not be had: copying stopped, the process must crash
    /// once the collector has let go of its locks.
    failed: bool,
}

impl<'a> Copier<'a> {
    /// A collection of `spaces` into `to`, considering the large objects
    /// from `large_base` to `large_len` and the adopted fragments `frags`.
    fn new(
        spaces: &'a Spaces,
        to: [ToSpace; 2],
        large_base: usize,
        large_len: usize,
        frags: Vec<(u64, u64)>,
    ) -> Self {
        Copier {
            spaces,
            to,
            marked: vec![false; large_len - large_base],
            large_base,
            gray: vec![],
            frag_live: vec![false; frags.len()],
            frags,
            frag_gray: vec![],
            failed: false,
        }
    }

    /// Forwards one value: copies its block to its destination the first
    /// time (or marks it, for a large object), and returns the new value.
    ///
    /// # Safety
    /// `v` is a value of the heap being collected.
    #[inline]
    unsafe fn forward(&mut self, v: Value) -> Value {
        if v & 1 != 0 || v == 0 {
            return v;
        }
        match self.spaces.find(v) {
            None => v,
            Some(Kind::Large(i)) => {
                let i = i as usize - self.large_base;
                if !self.marked[i] {
                    self.marked[i] = true;
                    // SAFETY: `v` is field 0 of the large object's block.
                    let h = unsafe { *(v as *const u64).sub(1) };
                    let (a, b) = scan_range(header_tag(h), header_wosize(h) as usize);
                    if a < b {
                        self.gray.push(v);
                    }
                }
                v
            }
            Some(Kind::Frag(i)) => {
                let i = i as usize;
                if !self.frag_live[i] {
                    self.frag_live[i] = true;
                    self.frag_gray.push(i);
                }
                v
            }
            // SAFETY: `v` points at field 0 of a block being collected
            // whose header is the word before; a forwarded block has
            // header 0 and its new address in field 0.
            Some(Kind::Copy(d)) => unsafe {
                let hp = (v as *mut u64).sub(1);
                let h = *hp;
                if h == 0 {
                    return *(v as *const u64);
                }
                let ws = header_wosize(h) as usize;
                let to = &mut self.to[d as usize];
                if self.failed || !to.reserve(ws + 1) {
                    // Left where it is: the process crashes right after.
                    self.failed = true;
                    return v;
                }
                let dst = to.free as *mut u64;
                std::ptr::copy_nonoverlapping(hp, dst, ws + 1);
                to.free += ((ws + 1) * WORD) as u64;
                let nv = dst.add(1) as Value;
                *hp = 0;
                *(v as *mut u64) = nv;
                nv
            },
        }
    }

    /// Scans the fields of the block at `p` (its header), forwarding them.
    ///
    /// # Safety
    /// `p` points at the header of a copied block or a large object.
    #[inline]
    unsafe fn scan_block(&mut self, p: *mut u64) -> usize {
        // SAFETY: caller's guarantee: the block's words follow its header.
        unsafe {
            let h = *p;
            let ws = header_wosize(h) as usize;
            let (a, b) = scan_range(header_tag(h), ws);
            for i in a..b {
                let f = p.add(1 + i);
                *f = self.forward(*f);
            }
            ws
        }
    }

    /// Forwards every root of `proc`: `roots`, the process's fields, the
    /// adopted messages of its mailbox and the live slots of its generated
    /// frames.
    ///
    /// # Safety
    /// As [`collect`].
    unsafe fn roots(&mut self, proc: &mut Process, roots: &mut [Value]) {
        // SAFETY (whole block): roots are values of this heap or outside
        // it; stack slots come from the stack maps the compiler registered.
        unsafe {
            for r in roots.iter_mut() {
                *r = self.forward(*r);
            }
            proc.trap_wrap = self.forward(proc.trap_wrap);
            proc.init_closure = self.forward(proc.init_closure);
            proc.init_arg = self.forward(proc.init_arg);
            // A fragment not yet adopted (or a small message not yet
            // taken) holds nothing of ours.
            for m in proc.queue.iter_mut() {
                if !m.pending() {
                    m.value = self.forward(m.value);
                }
            }
            let maps = MAPS.read().unwrap_or_else(|e| e.into_inner());
            let mut fp = proc.exit_fp;
            if fp != 0 {
                let mut pc = *((fp + 8) as *const u64);
                fp = *(fp as *const u64);
                while fp != 0 && in_code(&maps, pc) {
                    if let Some(m) = map_at(&maps, pc) {
                        let sp = fp - m.frame_size as u64;
                        for &off in &m.offsets {
                            let slot = (sp + off as u64) as *mut u64;
                            *slot = self.forward(*slot);
                        }
                    }
                    pc = *((fp + 8) as *const u64);
                    fp = *(fp as *const u64);
                }
            }
        }
    }

    /// Cheney's scan over both destinations, and the fields of reached
    /// large objects, until none has work left.
    ///
    /// # Safety
    /// As [`collect`], after [`Copier::roots`].
    unsafe fn drain(&mut self) {
        loop {
            let mut progress = false;
            for d in [TO_AGED, TO_OLD] {
                while let Some(p) = self.to[d as usize].next_to_scan() {
                    // SAFETY: `p` is the header of a block copied here.
                    let ws = unsafe { self.scan_block(p) };
                    self.to[d as usize].scan = p as u64 + ((1 + ws) * WORD) as u64;
                    progress = true;
                }
            }
            while let Some(v) = self.gray.pop() {
                // SAFETY: `v` is a reached large object's field 0.
                unsafe { self.scan_block((v as *mut u64).sub(1)) };
                progress = true;
            }
            // A fragment's blocks lie back to back; they point into the
            // fragment itself or at literals, but are scanned all the same.
            while let Some(i) = self.frag_gray.pop() {
                let (mut p, e) = self.frags[i];
                while p < e {
                    // SAFETY: `p` is the header of a block of the fragment.
                    let ws = unsafe { self.scan_block(p as *mut u64) };
                    p += ((1 + ws) * WORD) as u64;
                }
                progress = true;
            }
            if !progress {
                break;
            }
        }
    }
}

/// Words of `proc`'s old generation: its chunks and its old large objects.
fn old_words(proc: &Process) -> usize {
    proc.gens.as_ref().map_or(0, |g| g.old.words()) + proc.large.words() - proc.large.young_words()
}

/// Collects `proc`'s heap: a minor collection, or a major one when the old
/// generation has reached its threshold (or, with a heap limit, when a
/// minor one leaves more than the limit in the heap). `roots` are extra
/// roots (a runtime function's result on its way back to generated code),
/// updated in place. Returns the words live afterwards (large objects
/// included; after a minor collection, the old generation counts whole).
/// Crashes the process (never returns) when to-space cannot be had
/// (`Crashed "out of memory"`) or, with a heap limit, when more than the
/// limit is live (`Crashed "heap limit"`).
///
/// # Safety
/// `proc` is the running process, on its own stack, called from the
/// collecting allocator or a trampoline of generated code (`exit_fp` set,
/// or 0 when no generated frame is live), with no other pointers into its
/// heap held anywhere but its roots, and no lock held.
pub unsafe fn collect(proc: &mut Process, roots: &mut [Value]) -> usize {
    // Torture mode makes every fourth collection a major one, so both
    // kinds run often.
    let threshold = proc
        .gens
        .as_ref()
        .map_or(MIN_OLD_WORDS, |g| g.old_threshold);
    let major = old_words(proc) >= threshold || (torture() && proc.gc_count % 4 == 3);
    // SAFETY (both): the caller's guarantees.
    if major {
        return unsafe { collect_major(proc, roots) };
    }
    let live = unsafe { collect_minor(proc, roots) };
    if proc.max_heap_words != 0 && live > proc.max_heap_words {
        return unsafe { collect_major(proc, roots) };
    }
    live
}

/// The nursery after a collection: its largest chunk is kept (all its
/// blocks are dead or moved) and becomes the allocation area; the nursery's
/// size follows the live size.
fn reset_nursery(proc: &mut Process, live: usize) {
    let n = live.clamp(MIN_GC_WORDS, NURSERY_MAX_WORDS);
    proc.gc_threshold = n;
    proc.heap.set_next_words(n);
    match proc.heap.retain_largest(2 * n, torture()) {
        Some((s, e)) => {
            proc.heap_ptr = s;
            proc.heap_limit = e;
        }
        None => {
            proc.heap_ptr = 0;
            proc.heap_limit = 0;
        }
    }
}

/// What every collection does last: statistics, the next thresholds, and
/// the crash of a process whose copy failed or whose live data is past
/// its heap limit.
fn finish(proc: &mut Process, live: usize, failed: bool) -> usize {
    proc.gc_live = live;
    proc.gc_count = proc.gc_count.wrapping_add(1);
    proc.gc_allocs = 0;
    proc.gc_pending = 0;
    if failed {
        // SAFETY: the running process on its own stack; the collector
        // holds nothing any more.
        unsafe { crate::safepoint::crash_process(proc, "out of memory") }
    }
    reset_nursery(proc, live);
    live
}

/// A minor collection: the nursery's live blocks go to a fresh survivor
/// space, the survivor space's to the old generation; young large objects
/// are marked and the unreached ones freed.
///
/// # Safety
/// As [`collect`].
unsafe fn collect_minor(proc: &mut Process, roots: &mut [Value]) -> usize {
    // Set aside while the collector works (the first collection makes it).
    let mut g = proc.gens.take().unwrap_or_default();
    let mut ranges: Vec<(u64, u64, Kind)> = vec![];
    for (s, e) in proc.heap.bump_ranges() {
        ranges.push((s, e, Kind::Copy(TO_AGED)));
    }
    let frags = proc.heap.adopted_ranges();
    for (i, &(s, e)) in frags.iter().enumerate() {
        ranges.push((s, e, Kind::Frag(i as u32)));
    }
    for (s, e) in g.aged.chunk_ranges() {
        ranges.push((s, e, Kind::Copy(TO_OLD)));
    }
    let base = proc.large.young_from();
    for i in base..proc.large.len() {
        let (s, e) = proc.large.range(i);
        ranges.push((s, e, Kind::Large(i as u32)));
    }
    ranges.sort_unstable_by_key(|r| r.0);
    let spaces = Spaces { ranges };
    let aged_first = (g.aged_live * 3 / 2).max(MIN_GC_WORDS / 4);
    let old_chunk = g.aged_live.max(MIN_GC_WORDS / 4);
    let old = std::mem::take(&mut g.old);
    let to = [
        ToSpace::new(Heap::new(), 0, 0, aged_first),
        ToSpace::new(old, g.old_ptr, g.old_limit, old_chunk),
    ];
    let mut c = Copier::new(&spaces, to, base, proc.large.len(), frags);
    // SAFETY: the caller's guarantees.
    unsafe {
        c.roots(proc, roots);
        c.drain();
    }
    let failed = c.failed;
    let mut keep = vec![true; proc.large.len()];
    keep[base..].copy_from_slice(&c.marked);
    let large_live = proc.large.sweep(&keep);
    // Live fragments join the old generation whole; dead ones are freed.
    let frag_live = std::mem::take(&mut c.frag_live);
    let [aged, old] = c.to;
    let mut old_heap = old.heap;
    for (mut f, live) in proc.heap.take_adopted().into_iter().zip(frag_live) {
        if live {
            old_heap.adopt(f);
        } else if torture() {
            f.poison();
        }
    }
    let aged_live = aged.copied();
    if torture() {
        g.aged.poison();
    }
    g.aged = aged.heap;
    g.aged_live = aged_live;
    g.old = old_heap;
    g.old_ptr = old.free;
    g.old_limit = old.end;
    // The old generation counts up to its bump pointer: garbage included
    // (only a major collection tells), its chunk's free rest not.
    let old_free = (g.old_limit - g.old_ptr) as usize / WORD;
    let live = aged_live + g.old.words() - old_free + large_live;
    proc.gens = Some(g);
    finish(proc, live, failed)
}

/// A major collection: everything live is copied into a fresh old
/// generation; every large object is marked and the unreached ones freed.
/// Crashes the process when, with a heap limit, more than the limit is
/// live.
///
/// # Safety
/// As [`collect`].
unsafe fn collect_major(proc: &mut Process, roots: &mut [Value]) -> usize {
    // Set aside while the collector works (the first collection makes it).
    let mut g = proc.gens.take().unwrap_or_default();
    let mut ranges: Vec<(u64, u64, Kind)> = vec![];
    for h in [&proc.heap, &g.aged, &g.old] {
        for (s, e) in h.chunk_ranges() {
            ranges.push((s, e, Kind::Copy(TO_OLD)));
        }
    }
    for i in 0..proc.large.len() {
        let (s, e) = proc.large.range(i);
        ranges.push((s, e, Kind::Large(i as u32)));
    }
    ranges.sort_unstable_by_key(|r| r.0);
    let spaces = Spaces { ranges };
    // Guess the live size from last time; more chunks are added if needed.
    let first = (proc.gc_live * 3 / 2).max(MIN_GC_WORDS / 4);
    let to = [
        ToSpace::new(Heap::new(), 0, 0, 1),
        ToSpace::new(Heap::new(), 0, 0, first),
    ];
    let mut c = Copier::new(&spaces, to, 0, proc.large.len(), vec![]);
    // SAFETY: the caller's guarantees.
    unsafe {
        c.roots(proc, roots);
        c.drain();
    }
    let failed = c.failed;
    let large_live = proc.large.sweep(&c.marked);
    let [_, old] = c.to;
    let live = old.copied() + large_live;
    if torture() {
        g.aged.poison();
        g.old.poison();
    }
    g.aged = Heap::new();
    g.aged_live = 0;
    g.old = old.heap;
    g.old_ptr = old.free;
    g.old_limit = old.end;
    g.old_threshold = (2 * live).max(MIN_OLD_WORDS);
    proc.gens = Some(g);
    let live = finish(proc, live, failed);
    if proc.max_heap_words != 0 && live > proc.max_heap_words {
        // SAFETY: as in `finish`.
        unsafe { crate::safepoint::crash_process(proc, HEAP_LIMIT) }
    }
    live
}

/// The crash reason of a process past its heap limit.
pub const HEAP_LIMIT: &str = "heap limit";

/// Words of physical memory (a heap can never usefully be larger).
fn physical_words() -> usize {
    static WORDS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *WORDS.get_or_init(|| {
        // SAFETY: sysconf has no memory-safety preconditions.
        let (pages, size) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if pages <= 0 || size <= 0 {
            usize::MAX
        } else {
            (pages as usize).saturating_mul(size as usize) / WORD
        }
    })
}

/// Why `proc` may not grow its heap by `extra` more words, if it may not:
/// the heap limit (a block larger than the limit, or a heap — garbage
/// included — past three times it, as when a builtin keeps allocating
/// where no collection can run), or physical memory.
pub(crate) fn growth_refused(proc: &Process, extra: usize) -> Option<&'static str> {
    let total = proc.heap_words().saturating_add(extra);
    let max = proc.max_heap_words;
    if max != 0 && (extra > max || total > max.saturating_mul(3)) {
        return Some(HEAP_LIMIT);
    }
    if total > physical_words() {
        return Some("out of memory");
    }
    None
}

/// Records that the heap grew outside the collecting allocator: past the
/// threshold, the next trampoline collects (`Process::gc_pending`).
#[inline]
pub(crate) fn note_growth(proc: &mut Process) {
    if proc.young_words() >= proc.gc_threshold {
        proc.gc_pending = 1;
    }
}

/// The collecting allocator, called by generated code through its
/// allocation trampoline (which sets `exit_fp`): collects when the heap has
/// grown past the process's threshold (always in torture mode), then
/// allocates.
///
/// # Safety
/// `proc` is the running process; called only through the trampoline.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_alloc_gc(proc: *mut Process, tag: u64, wosize: u64) -> Value {
    // SAFETY: the caller's guarantees.
    unsafe { alloc_gc(proc, tag, wosize, crate::heap::alloc::alloc_block) }
}

/// The collecting allocator for a `let rec` group: collects as
/// [`caravan_rt_alloc_gc`] does, then allocates one block of `wosize`
/// words in the nursery (never as a large object, whatever its size),
/// which generated code carves into the group's closures and fills in. No
/// collection can run between the closures' allocation and the patching
/// of their environments, so none is promoted while another is younger:
/// the old generation never points into the young one (see
/// [`Generations`]).
///
/// # Safety
/// `proc` is the running process; called only through the trampoline.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_alloc_group_gc(proc: *mut Process, wosize: u64) -> Value {
    // SAFETY: the caller's guarantees.
    unsafe { alloc_gc(proc, 0, wosize, crate::heap::alloc::alloc_block_in_nursery) }
}

/// The body of the collecting allocators, with `alloc` the allocation.
///
/// # Safety
/// As [`caravan_rt_alloc_gc`].
#[inline(always)]
unsafe fn alloc_gc(
    proc: *mut Process,
    tag: u64,
    wosize: u64,
    alloc: fn(&mut Process, u8, usize) -> *mut u64,
) -> Value {
    // SAFETY: `proc` is the running process on its own stack.
    let p = unsafe { &mut *proc };
    p.charge((wosize >> 4) as i64);
    p.gc_allocs += 1;
    let tortured = torture() && p.gc_allocs * 64 >= p.gc_live as u64;
    // The block counts: a nursery chunk of the threshold's size is full
    // when the block does not fit in its last few words, and taking a
    // second chunk then would double the nursery.
    let full = p.young_words() + wosize as usize + 1 > p.gc_threshold;
    if p.gc_inhibit == 0 && (tortured || p.gc_pending != 0 || full) {
        // SAFETY: called through the trampoline: `exit_fp` describes the
        // generated frames, which hold every other root.
        unsafe { collect(p, &mut []) };
    }
    // `exit_fp` stays set: a crash here (out of memory, heap limit) names
    // the caller's location.
    let b = alloc(p, tag as u8, wosize as usize) as Value;
    p.exit_fp = 0;
    // The block's fields are not filled yet: the trampoline must not
    // collect with it as a root. The heap's threshold makes the next slow
    // path collect instead.
    p.gc_pending = 0;
    b
}

/// Called by a trampoline of generated code, after the runtime function
/// or builtin it called returned `result`, when that function's
/// allocations set `gc_pending`: collects (with `result` as a root) and
/// returns `result`, moved.
///
/// # Safety
/// `proc` is the running process; called only by a trampoline, whose
/// frame `exit_fp` still names.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_gc_after(proc: *mut Process, result: Value) -> Value {
    // SAFETY: `proc` is the running process on its own stack.
    let p = unsafe { &mut *proc };
    if p.gc_inhibit != 0 || p.exit_fp == 0 {
        return result;
    }
    let mut roots = [result];
    // SAFETY: `exit_fp` is the trampoline's frame: the generated frames
    // above it hold every other root.
    unsafe { collect(p, &mut roots) };
    roots[0]
}

/// Messages of at most this many words are copied into the receiver's
/// heap when taken (and their fragment freed at once); bigger ones are
/// adopted, fragment and all.
pub const COPY_MESSAGE_WORDS: usize = 512;

/// Moves a message's fragment into `p`'s heap and returns the message's
/// value there: a small fragment is copied into the current allocation
/// area with its internal pointers relocated (so a process that receives
/// many small messages keeps one compact heap, not a chunk per message);
/// a big one is linked in as it is.
///
/// # Safety
/// `v` is the message's value, pointing into `f` (or outside it: a literal
/// or an immediate); `p` is the running process.
pub(crate) unsafe fn take_fragment(
    p: &mut Process,
    mut f: crate::heap::Fragment,
    v: Value,
) -> Value {
    let words = f.words();
    // A large block with pointers may point into the main chunk, which
    // then stays where it is.
    if words == 0 || words > COPY_MESSAGE_WORDS || f.large_has_pointers() {
        p.adopt(f);
        note_growth(p);
        return v;
    }
    // Large blocks (big strings, without pointers) become large objects
    // as they are; the small rest is copied below.
    if p.large.adopt(f.take_large()) > 0 {
        note_growth(p);
    }
    let src = f.data() as u64;
    let src_end = src + (words * WORD) as u64;
    // SAFETY: `alloc_block` gives `words` fresh words (one "block" whose
    // header we overwrite with the copy's first header).
    unsafe {
        let dst = crate::heap::alloc::alloc_block(p, 0, words - 1).sub(1);
        std::ptr::copy_nonoverlapping(src as *const u64, dst, words);
        let delta = (dst as u64).wrapping_sub(src);
        let reloc = |x: u64| {
            if x & 1 == 0 && x >= src && x < src_end {
                x.wrapping_add(delta)
            } else {
                x
            }
        };
        // The fragment is blocks laid out back to back.
        let mut q = dst;
        let end = dst.add(words);
        while q < end {
            let h = *q;
            let ws = header_wosize(h) as usize;
            let (a, b) = scan_range(header_tag(h), ws);
            for i in a..b {
                let fp = q.add(1 + i);
                *fp = reloc(*fp);
            }
            q = q.add(1 + ws);
        }
        drop(f);
        reloc(v)
    }
}

/// Takes a small message's words (one block, header first, fields that
/// are immediates or literals: nothing to relocate) into `p`'s heap and
/// returns the block.
///
/// # Safety
/// `p` is the running process (allocation may collect, and the message
/// is not yet one of its roots).
pub(crate) unsafe fn take_small(p: &mut Process, small: &crate::process::Small) -> Value {
    let words = small.len as usize;
    debug_assert!((1..=crate::process::SMALL_MSG_WORDS).contains(&words));
    // SAFETY: `alloc_block` gives `words` fresh words (one block whose
    // header we overwrite with the message's).
    unsafe {
        let dst = crate::heap::alloc::alloc_block(p, 0, words - 1).sub(1);
        std::ptr::copy_nonoverlapping(small.words.as_ptr(), dst, words);
        dst.add(1) as Value
    }
}

/// Collects if the heap has grown past the threshold, when the frames of
/// generated code are walkable (`exit_fp` set by a trampoline) and
/// collection is not inhibited.
pub fn maybe_collect(p: &mut Process) {
    if p.exit_fp != 0 && p.gc_inhibit == 0 && p.young_words() >= p.gc_threshold {
        // SAFETY: `exit_fp` was set by a trampoline of generated code, whose
        // frames hold every root besides the process's own fields.
        unsafe { collect(p, &mut []) };
    }
}

/// Header check used by tests: a block that was not forwarded.
#[doc(hidden)]
pub fn is_live_header(h: u64) -> bool {
    h != 0 && h == make_header(header_wosize(h), header_tag(h))
}

/// `Gc.heap_words ()`: words held by the calling process's heap (all its
/// chunks, free space included).
///
/// # Safety
/// Called by generated code with its own running process.
#[no_mangle]
pub unsafe extern "C" fn caravan_gc_heap_words(proc: *mut Process, _unit: Value) -> Value {
    // SAFETY: the running process.
    crate::value::of_int(unsafe { (*proc).heap_words() } as i64)
}

/// `Gc.live_words ()`: words live after the calling process's last
/// collection.
///
/// # Safety
/// Called by generated code with its own running process.
#[no_mangle]
pub unsafe extern "C" fn caravan_gc_live_words(proc: *mut Process, _unit: Value) -> Value {
    // SAFETY: the running process.
    crate::value::of_int(unsafe { (*proc).gc_live } as i64)
}

/// `Gc.collections ()`: collections the calling process has run.
///
/// # Safety
/// Called by generated code with its own running process.
#[no_mangle]
pub unsafe extern "C" fn caravan_gc_collections(proc: *mut Process, _unit: Value) -> Value {
    // SAFETY: the running process.
    crate::value::of_int(unsafe { (*proc).gc_count } as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Shared;
    use std::sync::Arc;

    /// Allocates a 3-word block (header and two fields) as generated code
    /// does: a bump in the current chunk, the collecting allocator when
    /// the block does not fit.
    fn bump(p: &mut Process) {
        const BYTES: u64 = 3 * WORD as u64;
        if p.heap_ptr == 0 || p.heap_limit - p.heap_ptr < BYTES {
            // SAFETY: `p` is a process no generated frame is running on
            // (`exit_fp` 0: no stack roots), with nothing live.
            let b = unsafe { caravan_rt_alloc_gc(p, 0, 2) } as *mut u64;
            // SAFETY: the block's two fields.
            unsafe { b.write_bytes(0, 2) };
        } else {
            let h = p.heap_ptr as *mut u64;
            // SAFETY: the three words fit in the current chunk.
            unsafe { h.write(make_header(2, 0)) };
            p.heap_ptr += BYTES;
        }
    }

    /// The nursery holds its threshold's worth of words, not twice that:
    /// when a block did not fit in the last few words of a full nursery
    /// chunk, the allocator took a second chunk of the same size instead
    /// of collecting (the words in use were just under the threshold), so
    /// every nursery ran to twice its size (binary-trees 20: 32 MB instead
    /// of 16 MB, at every minor collection).
    #[test]
    fn a_full_nursery_collects_instead_of_taking_a_second_chunk() {
        let mut p = Process::new(1, std::ptr::null(), Arc::new(Shared::new()));
        for _ in 0..100_000 {
            bump(&mut p);
        }
        let mut most = 0;
        for _ in 0..100_000 {
            bump(&mut p);
            most = most.max(p.heap.words());
        }
        assert!(p.gc_count > 100, "{} collections", p.gc_count);
        assert_eq!(p.gc_threshold, MIN_GC_WORDS, "nothing is live");
        assert!(
            most <= MIN_GC_WORDS,
            "the nursery grew to {most} words (threshold {})",
            p.gc_threshold
        );
    }

    /// A block of the sender's, as in its heap: header, then fields.
    fn block(tag: u8, fields: &[u64]) -> Vec<u64> {
        let mut b = vec![make_header(fields.len() as u64, tag)];
        b.extend_from_slice(fields);
        b
    }

    /// The value of a block made by [`block`].
    fn value_of(b: &[u64]) -> Value {
        b.as_ptr() as u64 + WORD as u64
    }

    /// A string block of `len` bytes, all `byte`.
    fn string_block(len: usize, byte: u8) -> Vec<u64> {
        let ws = crate::value::string_wosize(len);
        let mut f = vec![u64::from_ne_bytes([byte; 8]); ws];
        f[0] = len as u64;
        block(crate::value::TAG_STRING, &f)
    }

    /// A message `Str (s, 7)` with a 100 KB string travels with the string
    /// in a chunk of its own, which the receiver takes as a large object:
    /// its collections, major ones included, mark the string and never
    /// copy it. Before, the string was part of the message's fragment,
    /// which a minor collection kept whole but the next major collection
    /// copied (10 MB string messages: 18 % of the receiver's time went to
    /// copying each one again), so this test failed on the string's
    /// address after `collect_major`.
    #[test]
    fn a_big_string_in_a_message_is_never_copied_by_the_receiver() {
        use crate::value::{field, string_bytes};
        let s = string_block(100_000, b'x');
        let msg = block(0, &[value_of(&s), crate::value::of_int(7)]);
        let mut scratch = crate::term::CopyScratch::default();
        // SAFETY: `msg` and `s` are valid blocks nobody else reads.
        let (m, words) =
            unsafe { crate::process::make_msg(&mut scratch, None, value_of(&msg)) }.unwrap();
        assert_eq!(words, 3 + s.len(), "the pair and the string, each once");
        let mut p = Process::new(1, std::ptr::null(), Arc::new(Shared::new()));
        // SAFETY: the message's value points into its fragment; `p` runs
        // no generated code (`exit_fp` 0: its roots are `roots` alone).
        unsafe {
            let v = take_fragment(&mut p, m.frag.unwrap(), m.value);
            assert_eq!(p.large.len(), 1, "the string is a large object");
            let str_at = field(v, 0);
            let mut roots = [v];
            collect_minor(&mut p, &mut roots);
            collect_major(&mut p, &mut roots);
            collect_major(&mut p, &mut roots);
            assert_eq!(field(roots[0], 0), str_at, "the string was copied");
            assert_eq!(field(roots[0], 1), crate::value::of_int(7));
            let bytes = string_bytes(field(roots[0], 0));
            assert_eq!(bytes.len(), 100_000);
            assert!(bytes.iter().all(|&b| b == b'x'));
            // Unreached, it is freed.
            collect_major(&mut p, &mut []);
            assert_eq!(p.large.len(), 0);
            assert_eq!(p.large.words(), 0);
        }
    }

    /// A big block that holds pointers (a 3,000-field tuple of strings)
    /// also travels in a chunk of its own; the rest of the message (what
    /// it points at) is then adopted as it is, since the big block points
    /// into it, and every field reads right after collections. Sharing
    /// inside the message is kept.
    #[test]
    fn a_big_block_with_pointers_keeps_the_message_it_points_into() {
        use crate::value::{field, string_bytes};
        let strs: Vec<Vec<u64>> = (0..3)
            .map(|i| string_block(10 + i, b'a' + i as u8))
            .collect();
        let fields: Vec<u64> = (0..3000).map(|i| value_of(&strs[i % 3])).collect();
        let big = block(0, &fields);
        let mut scratch = crate::term::CopyScratch::default();
        // SAFETY: as above.
        let (m, _) =
            unsafe { crate::process::make_msg(&mut scratch, None, value_of(&big)) }.unwrap();
        let mut p = Process::new(1, std::ptr::null(), Arc::new(Shared::new()));
        // SAFETY: as above.
        unsafe {
            let v = take_fragment(&mut p, m.frag.unwrap(), m.value);
            assert_eq!(p.large.len(), 1);
            let mut roots = [v];
            for _ in 0..3 {
                collect_minor(&mut p, &mut roots);
                collect_major(&mut p, &mut roots);
            }
            let v = roots[0];
            for i in 0..3000 {
                let s = field(v, i);
                assert_eq!(s, field(v, i % 3), "sharing kept");
                assert_eq!(string_bytes(s), vec![b'a' + (i % 3) as u8; 10 + i % 3]);
            }
        }
    }

    /// A message whose root is itself big (a bare 20 KB string): nothing
    /// is left for the main chunk, and the string is still taken whole.
    #[test]
    fn a_message_that_is_one_big_string_is_taken_whole() {
        let s = string_block(20_000, b'z');
        let mut scratch = crate::term::CopyScratch::default();
        // SAFETY: as above.
        let (m, words) =
            unsafe { crate::process::make_msg(&mut scratch, None, value_of(&s)) }.unwrap();
        assert_eq!(words, s.len());
        let f = m.frag.unwrap();
        assert_eq!((f.words(), f.total_words()), (0, s.len()));
        let mut p = Process::new(1, std::ptr::null(), Arc::new(Shared::new()));
        // SAFETY: as above.
        unsafe {
            let v = take_fragment(&mut p, f, m.value);
            assert_eq!(p.large.len(), 1);
            assert_eq!(p.heap.words(), 0, "no empty fragment adopted");
            let mut roots = [v];
            collect_major(&mut p, &mut roots);
            assert_eq!(roots[0], v);
            assert_eq!(crate::value::string_bytes(v), vec![b'z'; 20_000]);
        }
    }

    /// A big string of the sender's own (a large object in its heap) is
    /// shared by the message, not copied: the receiver's value points at
    /// the sender's block, which lives on, held, after the sender is gone
    /// and after the receiver's collections; each hold is given up when
    /// its message is dropped or its receiver lets go of the string.
    #[test]
    fn a_big_string_of_the_senders_is_shared_and_held() {
        use crate::heap::other_holders;
        use crate::value::{field, string_bytes, TAG_STRING};
        let mut sender = Process::new(1, std::ptr::null(), Arc::new(Shared::new()));
        let len = 50_000;
        let s = crate::heap::alloc::alloc_string(&mut sender, &vec![b'k'; len]);
        // SAFETY: `s` is the block `alloc_string` just made.
        let h = unsafe { crate::value::header(s) };
        assert_eq!(header_tag(h), TAG_STRING);
        assert!(sender.large.holds(s), "a big string is a large object");
        let pair = block(0, &[s, crate::value::of_int(3)]);
        let mut scratch = crate::term::CopyScratch::default();
        // SAFETY: `pair` and the sender's string are valid and read by no
        // other thread; the receivers run no generated code.
        unsafe {
            let send = |scratch: &mut crate::term::CopyScratch, sender: &Process| {
                crate::process::make_msg(scratch, Some(&sender.large), value_of(&pair)).unwrap()
            };
            let (m1, words) = send(&mut scratch, &sender);
            assert_eq!(words, 3, "the string is not copied");
            let (m2, _) = send(&mut scratch, &sender);
            assert_eq!(other_holders(s), 2, "each message holds it");
            // A message dropped unreceived gives its hold up.
            drop(m2);
            assert_eq!(other_holders(s), 1);
            let mut r = Process::new(2, std::ptr::null(), Arc::new(Shared::new()));
            let v = take_fragment(&mut r, m1.frag.unwrap(), m1.value);
            assert_eq!(field(v, 0), s, "the receiver reads the sender's block");
            // The sender ends: the receiver's hold keeps the string.
            drop(sender);
            assert_eq!(other_holders(s), 0, "the receiver holds it alone");
            let mut roots = [v];
            collect_minor(&mut r, &mut roots);
            collect_major(&mut r, &mut roots);
            assert_eq!(field(roots[0], 0), s);
            assert_eq!(string_bytes(s), vec![b'k'; len]);
            // The receiver sends it on: shared again, from its own space.
            let (m3, words) =
                crate::process::make_msg(&mut scratch, Some(&r.large), field(roots[0], 0)).unwrap();
            assert_eq!((words, m3.value), (0, s), "a bare shared string");
            assert_eq!(other_holders(s), 1);
            let mut r2 = Process::new(3, std::ptr::null(), Arc::new(Shared::new()));
            let v2 = take_fragment(&mut r2, m3.frag.unwrap(), m3.value);
            assert_eq!(v2, s);
            // The first receiver lets go of it; the second still reads it.
            collect_major(&mut r, &mut []);
            assert_eq!(r.large.len(), 0);
            assert_eq!(other_holders(s), 0);
            let mut roots = [v2];
            collect_major(&mut r2, &mut roots);
            assert_eq!(string_bytes(roots[0]), vec![b'k'; len]);
        }
    }
}
