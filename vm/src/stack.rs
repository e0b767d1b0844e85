//! Process stacks: fixed-size slots carved from large `MAP_NORESERVE`
//! regions (architecture decision 3).
//!
//! * A region reserves [`SLOTS_PER_REGION`] slots with one `mmap`, never one
//!   mmap per process (`vm.max_map_count` = 65530 would stop us near 32k
//!   processes). `MADV_NOHUGEPAGE` is set on it so a touched stack costs
//!   4 KiB pages, not 2 MiB.
//! * The lowest page of every slot is a guard page, installed with
//!   `MADV_GUARD_INSTALL` (Linux >= 6.13; it does not split the mapping),
//!   falling back to `mprotect(PROT_NONE)`. Generated code checks
//!   `stack_limit` in its prologue, so the guard is only a backstop.
//! * A process takes a slot when it first runs; on exit the slot goes back
//!   to a free list (LIFO, so the next process reuses resident pages) after
//!   `MADV_DONTNEED` on everything but the top [`KEEP_RESIDENT`] bytes.
//!   At most [`WARM_MAX`] free slots keep those bytes ([`WARM_IDLE`] once
//!   the VM idles): past that, the
//!   oldest are released in one batch and kept apart as *cold* slots, so a
//!   burst of processes does not leave its stacks resident once it ended
//!   (Go frees its stack cache at each collection for the same reason).
//! * `stack_limit` = slot low end + guard page + [`RUNTIME_MARGIN`].

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Page size assumed for guards and rounding (x86_64 Linux).
pub const PAGE: usize = 4096;
/// Default slot size: 128 KiB (including the guard page), which leaves
/// generated code 60 KiB of frames above `stack_limit`. Deeper recursion
/// moves to a grown stack (`crate::stackgrow`); a small slot keeps an idle
/// process's page tables small: one 4 KiB page-table page maps 2 MiB,
/// sixteen slots (about 256 B a process). Page tables are new memory a
/// spawn pays for: with 256 KiB slots, spawning 10 M processes zeroed
/// 5 GB of them (14 % of the run's CPU time); 128 KiB slots took the run
/// from 40.3 and 38.5 s to 35.9 and 34.9 s (`bench/cvn/growth_spawn.cvn`,
/// interleaved runs).
pub const DEFAULT_STACK_SIZE: usize = 128 << 10;
/// Stack kept usable below `stack_limit` for runtime functions (ABI: at
/// least 64 KiB above the guard page).
pub const RUNTIME_MARGIN: usize = 64 << 10;
/// Largest stack frame (bytes below the caller's stack pointer) a
/// generated function may allocate before any check: a function's
/// prologue check runs after Cranelift's prologue made its frame, so the
/// runtime functions its cold path calls have `RUNTIME_MARGIN` less the
/// frame (at least 48 KiB). A function with a larger frame is entered
/// through a check of `sp - frame` against `stack_limit` that grows the
/// stack first (`caravan_rt_stack_reserve`; Go's prologue compares
/// `sp - framesize` for its big frames the same way).
pub const MAX_UNCHECKED_FRAME: usize = 16 << 10;
/// Smallest accepted slot size (56 KiB of frames above `stack_limit`).
pub const MIN_STACK_SIZE: usize = RUNTIME_MARGIN + PAGE + (56 << 10);
/// Slots reserved per `mmap`.
pub const SLOTS_PER_REGION: usize = 1024;
/// Bytes at the top of a slot left resident when it is recycled (the next
/// process's first frames land there without page faults).
pub const KEEP_RESIDENT: usize = 16 << 10;
/// Free slots that may keep their top [`KEEP_RESIDENT`] bytes resident
/// while the VM is busy (typically one 4 KiB page each, 128 MiB; 512 MiB
/// if every one had used its 16 KiB). When more are free, the oldest
/// eighth of this is released in one batch (4 Ki slots: on kernels before
/// 6.13, one `madvise` each). Parked stacks leave their slots (`movable`) as fast as new
/// and waking processes take slots, but not in step: with 1,024, a run
/// spawning 2 M processes that block for seconds (`growth_spawn.cvn`)
/// released 1.7 M slots' pages and faulted 1.2 M back in; 16 Ki and 64 Ki
/// took its spawning from 3.0 to 2.6 and 2.3 s (release builds,
/// interleaved). Once a scheduler idles, [`WARM_IDLE`] applies.
pub const WARM_MAX: usize = 32 << 10;
/// Free slots that keep their resident top page once a scheduler has had
/// nothing to run for `crate::IDLE_RELEASE_MS` ([`StackPool::cool`]): a
/// quiet VM keeps at most 4 MiB of free stack pages.
pub const WARM_IDLE: usize = 1024;

const MADV_GUARD_INSTALL: libc::c_int = 102;

const GUARD_UNKNOWN: u8 = 0;
const GUARD_MADVISE: u8 = 1;
const GUARD_MPROTECT: u8 = 2;
static GUARD_MODE: AtomicU8 = AtomicU8::new(GUARD_UNKNOWN);

struct Pool {
    regions: Vec<(usize, usize)>,
    /// Next never-used slot in the last region, and that region's end.
    carve_next: usize,
    carve_end: usize,
    /// Free slots whose top pages may be resident, oldest first; taken
    /// from the back (LIFO).
    warm: std::collections::VecDeque<usize>,
    /// Free slots with no resident page (released past [`WARM_MAX`]).
    cold: Vec<usize>,
}

/// A pool of stack slots of one size (one per VM).
pub struct StackPool {
    slot_size: usize,
    inner: Mutex<Pool>,
}

/// Why a slot could not be had.
#[derive(Debug)]
pub struct StackError(pub &'static str);

impl StackPool {
    /// A pool of slots of `slot_size` bytes (rounded up to pages, at least
    /// [`MIN_STACK_SIZE`]). Reserves nothing until the first slot (but opens the pidfd that parked stacks are released through).
    pub fn new(slot_size: usize) -> Self {
        self_pidfd();
        let slot_size = slot_size.max(MIN_STACK_SIZE).next_multiple_of(PAGE);
        StackPool {
            slot_size,
            inner: Mutex::new(Pool {
                regions: Vec::new(),
                carve_next: 0,
                carve_end: 0,
                warm: std::collections::VecDeque::new(),
                cold: Vec::new(),
            }),
        }
    }

    /// Slot size in bytes.
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Highest address of a slot (the initial stack pointer, 16-aligned).
    #[inline]
    pub fn top(&self, low: usize) -> usize {
        low + self.slot_size
    }

    /// `stack_limit` for a slot: low end + guard + runtime margin.
    #[inline]
    pub fn limit(&self, low: usize) -> usize {
        low + PAGE + RUNTIME_MARGIN
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes up to `n` slots, appending their low addresses to `out`.
    ///
    /// Slots never used before get their guard pages here, all in one
    /// system call where the kernel allows it ([`install_guards`]), after
    /// the pool's lock is let go.
    pub fn acquire_batch(&self, out: &mut Vec<usize>, n: usize) -> Result<(), StackError> {
        let mut fresh = Vec::new();
        {
            let mut p = self.lock();
            while out.len() + fresh.len() < n {
                if let Some(s) = p.warm.pop_back().or_else(|| p.cold.pop()) {
                    out.push(s);
                    continue;
                }
                if p.carve_next == p.carve_end {
                    let len = self.slot_size * SLOTS_PER_REGION;
                    let Some(base) = reserve(len) else {
                        break;
                    };
                    p.regions.push((base, len));
                    register_region(base, len, self.slot_size);
                    p.carve_next = base;
                    p.carve_end = base + len;
                }
                fresh.push(p.carve_next);
                p.carve_next += self.slot_size;
            }
        }
        // The slots whose guard could not be installed (the system is out
        // of mappings) are lost to the pool; the others are used.
        let (guarded, err) = install_guards(&fresh);
        out.extend_from_slice(&fresh[..guarded]);
        if out.is_empty() && n > 0 {
            return Err(err.unwrap_or(StackError("cannot reserve process stacks (mmap failed)")));
        }
        Ok(())
    }

    /// Returns slots (already [`StackPool::scrub`]bed) to the pool. When
    /// more than [`WARM_MAX`] free slots may hold resident pages, the
    /// oldest go cold: their top pages are released in one batch
    /// ([`release_ranges`], outside the lock) before they can be taken
    /// again.
    pub fn release_batch(&self, slots: &mut Vec<usize>) {
        let cooling: Vec<usize> = {
            let mut p = self.lock();
            p.warm.extend(slots.drain(..));
            if p.warm.len() <= WARM_MAX {
                return;
            }
            let n = p.warm.len() - (WARM_MAX - WARM_MAX / 8);
            p.warm.drain(..n).collect()
        };
        self.cool_slots(cooling);
    }

    /// Releases the resident top pages of the oldest free slots past the
    /// newest `keep` (one batch), as [`StackPool::release_batch`] does past
    /// [`WARM_MAX`]: called with [`WARM_IDLE`] by a scheduler that idles.
    pub fn cool(&self, keep: usize) {
        let cooling: Vec<usize> = {
            let mut p = self.lock();
            let n = p.warm.len().saturating_sub(keep);
            if n == 0 {
                return;
            }
            p.warm.drain(..n).collect()
        };
        self.cool_slots(cooling);
    }

    /// Releases the top pages of free slots taken out of `warm`, then puts
    /// them in `cold`.
    fn cool_slots(&self, cooling: Vec<usize>) {
        let ranges: Vec<Range> = cooling
            .iter()
            .map(|&low| Range {
                start: self.top(low) - KEEP_RESIDENT,
                len: KEEP_RESIDENT,
            })
            .collect();
        // SAFETY: the slots are free (scrubbed, no process on them) and out
        // of both lists until they are pushed back below, so nothing
        // touches their pages meanwhile.
        unsafe { release_ranges(&ranges) };
        self.lock().cold.extend(cooling);
    }

    /// Releases the pages of a slot except the top [`KEEP_RESIDENT`] bytes
    /// (which the next process reuses) and the guard page (whose marker
    /// stays in place across `MADV_DONTNEED`).
    ///
    /// `MADV_DONTNEED` costs a TLB-shootdown IPI round even when nothing is
    /// resident, so it is only done when needed: `lowest_sp` is the lowest
    /// stack pointer seen for the process (sampled at every switch); a slot
    /// whose process stayed within the kept top is not touched, except
    /// every [`AUDIT_EVERY`]th one, for which `mincore` checks the page just
    /// below the kept top (stacks grow page by page: Rust and Cranelift
    /// probe big frames) to catch deep excursions between samples.
    /// Returns true if pages were released.
    pub fn scrub(&self, low: usize, lowest_sp: usize, audit: bool) -> bool {
        let start = low + PAGE;
        let end = self.top(low) - KEEP_RESIDENT;
        let deep = lowest_sp < end || (audit && page_resident(end - PAGE));
        if deep {
            // SAFETY: the range is inside one of our slots, which no process
            // is using (the caller's guarantee); its contents are dead.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        }
        deep
    }

    /// Parks the stack of a blocked process: copies its used bytes (`sp`
    /// up to the slot's top) out, and returns them with the range of the
    /// slot's pages that may be resident (from the lower of `lowest_sp` and
    /// the kept top [`KEEP_RESIDENT`] bytes, up to the top), which the
    /// caller then releases with [`release_ranges`] — in batches: each
    /// release costs a TLB-shootdown round. An idle process then costs the
    /// few hundred bytes it really uses instead of whole 4 KiB pages (the
    /// idea of Erlang's `hibernate`, done for every long-blocked process;
    /// Go shrinks idle goroutine stacks at GC time). [`StackPool::unpark`]
    /// puts the bytes back.
    ///
    /// # Safety
    /// `low` is a slot of this pool whose process is switched out with its
    /// saved stack pointer `sp`, and nothing runs on it until `unpark`.
    pub unsafe fn park(&self, low: usize, sp: usize, lowest_sp: usize) -> (Box<[u8]>, Range) {
        let top = self.top(low);
        debug_assert!(sp > low + PAGE && sp <= top, "saved sp outside its slot");
        // SAFETY: [sp, top) is the live part of the slot (caller's guarantee).
        let used = unsafe { std::slice::from_raw_parts(sp as *const u8, top - sp) };
        let from = (lowest_sp.min(sp).min(top - KEEP_RESIDENT) & !(PAGE - 1)).max(low + PAGE);
        (
            used.into(),
            Range {
                start: from,
                len: top - from,
            },
        )
    }

    /// Puts a parked stack's bytes below the top of slot `low`, which may
    /// differ from the slot `from_low` they were parked from, and returns
    /// how far they moved (new − old address). Every word that pointed
    /// into the old slot is moved by that delta: [`movable`] proved those
    /// are the saved frame pointers of the chain (for any other stack, this
    /// would be wrong). On a slot whose top page is still resident (one a
    /// process just left: the pool is LIFO) this costs no page fault, where
    /// putting the bytes back in their own slot faults in a zeroed page:
    /// the point of moving (Go's stacks move freely between allocations
    /// the same way, Go 1.4 "Contiguous stacks").
    ///
    /// # Safety
    /// `bytes` came from [`StackPool::park`] of slot `from_low`, for which
    /// [`movable`] held, and the process has not run since; `low` is a
    /// slot of this pool the caller owns and nothing runs on.
    pub unsafe fn unpark_moved(&self, low: usize, bytes: &[u8], from_low: usize) -> isize {
        let (top, from_top) = (self.top(low), self.top(from_low));
        let delta = top.wrapping_sub(from_top);
        let at = top - bytes.len();
        // SAFETY: the top `bytes.len()` bytes of an unused slot we own.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), at as *mut u8, bytes.len()) };
        let mut a = at;
        while a < top {
            // SAFETY: inside the copy just made; `park` copies from a saved
            // stack pointer, which is word aligned.
            unsafe {
                let w = *(a as *const usize);
                if w >= from_low && w <= from_top {
                    *(a as *mut usize) = w.wrapping_add(delta);
                }
            }
            a += 8;
        }
        delta as isize
    }

    /// Copies a parked stack's bytes back below the slot's top (the pages
    /// fault in again, zeroed, as they are written).
    ///
    /// # Safety
    /// `bytes` came from [`StackPool::park`] of the same slot `low`, and the
    /// process has not run since.
    pub unsafe fn unpark(&self, low: usize, bytes: &[u8]) {
        let top = self.top(low);
        // SAFETY: the range is the one `park` copied out of this slot.
        unsafe {
            ptr::copy_nonoverlapping(bytes.as_ptr(), (top - bytes.len()) as *mut u8, bytes.len())
        };
    }
}

/// Whether the parked bytes of a stack switched out at `sp` in the slot
/// `[low, top)` may be put back in another slot ([`StackPool::unpark_moved`]):
/// true if the only words among them that hold an address of the slot are
/// the saved frame pointers of one chain, each pointing to the next,
/// upwards. Generated frames keep no other address of their stack (the
/// rule stack growth relies on, tested by stack torture); the Rust frames
/// at both ends of a blocked process's stack (`process_start`, the
/// blocking runtime function, the switch) usually keep none either, but
/// nothing promises it, so this checks, word by word, the copy about to be
/// moved: any other word whose value falls in the slot (an address of a
/// Rust local, or an integer that only looks like one) keeps the stack in
/// its slot. Costs one pass over the bytes (a few hundred, typically).
///
/// The chain starts at the switch frame's saved `rbp`
/// ([`crate::context::SAVED_RBP`]) when that is an address of the slot:
/// the Rust frames below the generated ones left `rbp` alone. When one of
/// them used `rbp` for something else (Rust keeps no frame pointers), it
/// saved the generated caller's `rbp` on entry, right below its return
/// address into generated code (LLVM pushes `rbp` first): the lowest word
/// for which `is_code` holds is taken as that return address, and the
/// chain starts just below it.
///
/// `bytes` are the slot's bytes from `sp` up to `top`.
pub fn movable(
    bytes: &[u8],
    sp: usize,
    low: usize,
    top: usize,
    is_code: impl Fn(usize) -> bool,
) -> bool {
    debug_assert_eq!(bytes.len(), top - sp);
    let in_slot = |v: usize| v >= low && v <= top;
    let n = bytes.len() / 8;
    // SAFETY: `i < n`: inside `bytes` (read unaligned: a boxed byte slice
    // promises no alignment).
    let word = |i: usize| unsafe { (bytes.as_ptr() as *const usize).add(i).read_unaligned() };
    let first = crate::context::SAVED_RBP / 8;
    if n <= first {
        return false;
    }
    let start = if in_slot(word(first)) {
        Some(first)
    } else {
        (first + 2..n)
            .find(|&i| is_code(word(i)))
            .map(|r| r - 1)
            .filter(|&i| in_slot(word(i)))
    };
    // The next word of the chain, or none once it left the slot (0 above
    // the outermost frame: `caravan_vm_start` clears rbp).
    let mut chain = start.map(|i| sp + 8 * i);
    // Word 0 is the switch frame's reserved word (`context::switch` leaves
    // it as it was and never reads it): whatever it holds, dead.
    for i in 1..n {
        let (a, v) = (sp + 8 * i, word(i));
        if chain == Some(a) {
            chain = if !in_slot(v) {
                None
            } else if v > a && v < top && v % 8 == 0 {
                Some(v)
            } else {
                return false;
            };
        } else if in_slot(v) {
            return false;
        }
    }
    // A chain into a word the scan did not reach cannot happen (`v < top`,
    // aligned); refuse it all the same.
    chain.is_none()
}

/// Reserves `len` bytes of stack memory: an anonymous `MAP_NORESERVE`
/// mapping (pages cost memory only once touched) with `MADV_NOHUGEPAGE`,
/// so a touched stack costs 4 KiB pages, not 2 MiB. `None` if the system
/// refuses it.
fn reserve(len: usize) -> Option<usize> {
    // SAFETY: a fresh anonymous private mapping.
    let base = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: advice on our own fresh mapping; failure is harmless.
    unsafe { libc::madvise(base, len, libc::MADV_NOHUGEPAGE) };
    Some(base as usize)
}

/// Maps a grown stack of `len` bytes (`crate::stackgrow`): one
/// `MAP_NORESERVE` mapping, so only the pages a process touches cost
/// memory, with a guard page at its low end (as a slot's). Returns its low
/// address.
pub fn map_grown(len: usize) -> Result<usize, StackError> {
    let low = reserve(len).ok_or(StackError("cannot map a grown stack (mmap failed)"))?;
    if let Err(e) = install_guard(low) {
        // SAFETY: the mapping made above, unused.
        unsafe { unmap_grown(low, len) };
        return Err(e);
    }
    Ok(low)
}

/// Unmaps a grown stack made by [`map_grown`].
///
/// # Safety
/// Nothing runs on it or points into it any more.
pub unsafe fn unmap_grown(low: usize, len: usize) {
    // SAFETY: caller's guarantee; the range is one mapping of ours.
    unsafe { libc::munmap(low as *mut libc::c_void, len) };
}

/// A page-aligned address range of a stack slot (for
/// [`release_ranges`]).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct Range {
    pub start: usize,
    pub len: usize,
}

static SELF_PIDFD: std::sync::OnceLock<Option<libc::c_int>> = std::sync::OnceLock::new();

/// Our own pidfd (for `process_madvise`), opened once: when the first pool
/// is made, so that the descriptor is there from the start rather than
/// appearing the first time stacks are parked (a server's count of open
/// descriptors stays at its baseline).
fn self_pidfd() -> Option<libc::c_int> {
    *SELF_PIDFD.get_or_init(|| {
        // SAFETY: plain system call on our own pid; a pidfd is close-on-exec.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
        (fd >= 0).then_some(fd as libc::c_int)
    })
}
/// False once `process_madvise` was refused.
static BATCH_OK: AtomicBool = AtomicBool::new(true);

/// Releases the pages of parked stacks (`MADV_DONTNEED`): one
/// `process_madvise` call on our own pidfd for the whole batch where the
/// kernel allows it (Linux 6.13 and later accept any advice for the caller
/// itself, and flush the TLB once per call), else one `madvise` per range.
///
/// # Safety
/// Every range is inside a slot of a pool, above its guard page, and holds
/// nothing live: the stacks were copied out by [`StackPool::park`] and their
/// processes do not run until the release is over.
pub unsafe fn release_ranges(ranges: &[Range]) {
    // SAFETY: the caller's guarantee (see above).
    let done = unsafe { advise_batch(ranges, libc::MADV_DONTNEED, &BATCH_OK) };
    for r in &ranges[done..] {
        // SAFETY: the caller's guarantee.
        unsafe { libc::madvise(r.start as *mut libc::c_void, r.len, libc::MADV_DONTNEED) };
    }
}

/// Applies `advice` to `ranges` with `process_madvise` on our own pidfd,
/// up to 1024 ranges (`IOV_MAX`) a call, where the kernel allows it
/// (Linux 6.13 and later accept any advice for the caller itself).
/// Returns how many ranges, from the front, were advised; the caller
/// advises the rest one by one (advising twice is harmless). A refused
/// call (older kernel, a seccomp filter) clears `ok`, so that the calls
/// are not tried again for this kind of advice.
///
/// # Safety
/// `advice` on every range is sound (the caller's own stack memory, in
/// the state that advice expects).
unsafe fn advise_batch(ranges: &[Range], advice: libc::c_int, ok: &AtomicBool) -> usize {
    let Some(fd) = self_pidfd().filter(|_| ok.load(Ordering::Relaxed)) else {
        return 0;
    };
    let mut done_ranges = 0;
    while done_ranges < ranges.len() {
        let rest = &ranges[done_ranges..];
        let n = rest.len().min(1024);
        let want: usize = rest[..n].iter().map(|r| r.len).sum();
        // SAFETY: `Range` has the layout of `iovec`; the advice on these
        // ranges is the caller's to justify.
        let done = unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                fd,
                rest.as_ptr() as *const libc::iovec,
                n,
                advice,
                0,
            )
        };
        if done < 0 || done as usize != want {
            if done < 0 {
                ok.store(false, Ordering::Relaxed);
            }
            break;
        }
        done_ranges += n;
    }
    done_ranges
}

/// Releases of shallow slots between two `mincore` audits.
pub const AUDIT_EVERY: u32 = 64;

/// True if the page at `addr` is resident (`mincore`).
fn page_resident(addr: usize) -> bool {
    let mut v = 0u8;
    // SAFETY: `addr` is page aligned inside our mapping; `v` receives one
    // byte for one page.
    let r = unsafe { libc::mincore(addr as *mut libc::c_void, PAGE, &mut v) };
    r != 0 || v & 1 == 1
}

/// Installs the guard pages of the fresh slots `lows`: one
/// `process_madvise(MADV_GUARD_INSTALL)` ([`advise_batch`]) where the
/// kernel allows it (Linux 6.13 and later: 0.37 → 0.30 µs a
/// slot measured from C, the page-table walk being most of the cost), else
/// [`install_guard`] slot by slot for what the calls did not cover.
/// Returns how many slots, from the front, have their guard, and the
/// error that stopped it before the end.
fn install_guards(lows: &[usize]) -> (usize, Option<StackError>) {
    let mut guarded = 0;
    if GUARD_MODE.load(Ordering::Relaxed) != GUARD_MPROTECT {
        let guards: Vec<Range> = lows
            .iter()
            .map(|&low| Range {
                start: low,
                len: PAGE,
            })
            .collect();
        // SAFETY: each range is the lowest page of a slot of our own
        // mapping that no one uses yet.
        guarded = unsafe { advise_batch(&guards, MADV_GUARD_INSTALL, &GUARD_BATCH_OK) };
        if guarded > 0 {
            GUARD_MODE.store(GUARD_MADVISE, Ordering::Relaxed);
        }
    }
    for &low in &lows[guarded..] {
        if let Err(e) = install_guard(low) {
            return (guarded, Some(e));
        }
        guarded += 1;
    }
    (guarded, None)
}

/// False once `process_madvise(MADV_GUARD_INSTALL)` was refused.
static GUARD_BATCH_OK: AtomicBool = AtomicBool::new(true);

fn install_guard(low: usize) -> Result<(), StackError> {
    let mode = GUARD_MODE.load(Ordering::Relaxed);
    if mode != GUARD_MPROTECT {
        // SAFETY: the page belongs to a slot of our own mapping that no one
        // uses yet.
        let r = unsafe { libc::madvise(low as *mut libc::c_void, PAGE, MADV_GUARD_INSTALL) };
        if r == 0 {
            GUARD_MODE.store(GUARD_MADVISE, Ordering::Relaxed);
            return Ok(());
        }
        GUARD_MODE.store(GUARD_MPROTECT, Ordering::Relaxed);
    }
    // SAFETY: as above; PROT_NONE on one page of our own mapping.
    let r = unsafe { libc::mprotect(low as *mut libc::c_void, PAGE, libc::PROT_NONE) };
    if r != 0 {
        return Err(StackError("cannot install a stack guard page"));
    }
    Ok(())
}

/// True if the guard pages are `MADV_GUARD_INSTALL` markers (false: the
/// `mprotect` fallback, or no slot made yet).
pub fn guard_uses_madvise() -> bool {
    GUARD_MODE.load(Ordering::Relaxed) == GUARD_MADVISE
}

impl Drop for StackPool {
    fn drop(&mut self) {
        let p = self.lock();
        for &(base, len) in &p.regions {
            unregister_region(base);
            // SAFETY: the VM is gone: no process runs on these stacks.
            unsafe { libc::munmap(base as *mut libc::c_void, len) };
        }
    }
}

// ---------------------------------------------------------------------------
// Guard page faults
// ---------------------------------------------------------------------------

/// Regions known to the fault handler (read lock-free from a signal
/// handler): base, length, slot size. Slots are reused, never moved.
const MAX_REGIONS: usize = 4096;
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];
static REGIONS: [[AtomicUsize; 3]; MAX_REGIONS] = [EMPTY; MAX_REGIONS];

fn register_region(base: usize, len: usize, slot: usize) {
    for r in REGIONS.iter() {
        if r[0]
            .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            r[1].store(len, Ordering::Relaxed);
            r[2].store(slot, Ordering::Relaxed);
            r[0].store(base, Ordering::Release);
            return;
        }
    }
}

fn unregister_region(base: usize) {
    for r in REGIONS.iter() {
        if r[0].load(Ordering::Acquire) == base {
            r[0].store(0, Ordering::Release);
            return;
        }
    }
}

/// True if `addr` is in the guard page of a stack slot.
pub fn is_guard_page(addr: usize) -> bool {
    REGIONS.iter().any(|r| {
        let base = r[0].load(Ordering::Acquire);
        if base == 0 || base == usize::MAX {
            return false;
        }
        let (len, slot) = (r[1].load(Ordering::Relaxed), r[2].load(Ordering::Relaxed));
        addr >= base && addr < base + len && (addr - base) % slot < PAGE
    })
}

static PREV_SEGV: AtomicUsize = AtomicUsize::new(0);
static PREV_BUS: AtomicUsize = AtomicUsize::new(0);
static PREV_SET: std::sync::Once = std::sync::Once::new();

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SIGSEGV/SIGBUS.
    let addr = unsafe { (*info).si_addr() } as usize;
    if is_guard_page(addr) {
        const MSG: &[u8] = b"caravan: fatal: a process ran into its stack guard page \
(a VM or code generator bug: a stack_limit check is missing)\n";
        // SAFETY: write(2) and abort are async-signal-safe.
        unsafe {
            libc::write(2, MSG.as_ptr() as *const libc::c_void, MSG.len());
            libc::abort();
        }
    }
    let prev = if sig == libc::SIGSEGV {
        &PREV_SEGV
    } else {
        &PREV_BUS
    };
    let p = prev.load(Ordering::Acquire) as *const libc::sigaction;
    // SAFETY: `p` is null or the leaked previous action; chaining to it (or
    // falling back to the default action, which re-faults and terminates)
    // is what a signal handler that is not ours expects.
    unsafe {
        if !p.is_null() && (*p).sa_sigaction > libc::SIG_IGN {
            if (*p).sa_flags & libc::SA_SIGINFO != 0 {
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    std::mem::transmute((*p).sa_sigaction);
                f(sig, info, ctx);
            } else {
                let f: extern "C" fn(libc::c_int) = std::mem::transmute((*p).sa_sigaction);
                f(sig);
            }
            return;
        }
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &dfl, std::ptr::null_mut());
    }
}

/// Installs the SIGSEGV/SIGBUS handler that reports guard page hits
/// (once per OS process; other faults go to the previous handler).
pub fn install_fault_handler() {
    PREV_SET.call_once(|| {
        for (sig, prev) in [(libc::SIGSEGV, &PREV_SEGV), (libc::SIGBUS, &PREV_BUS)] {
            // SAFETY: plain sigaction calls with valid structs; the previous
            // action is leaked so the handler can read it at any time.
            unsafe {
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = on_fault as *const () as usize;
                act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut act.sa_mask);
                let old = Box::into_raw(Box::new(std::mem::zeroed::<libc::sigaction>()));
                if libc::sigaction(sig, &act, old) == 0 {
                    prev.store(old as usize, Ordering::Release);
                }
            }
        }
    });
}

/// Gives the calling thread an alternate signal stack if it has none (the
/// fault handler must not run on the overflowed stack). The stack is leaked
/// (one per scheduler thread).
pub fn ensure_altstack() {
    // SAFETY: querying and setting the signal stack of this thread.
    unsafe {
        let mut old: libc::stack_t = std::mem::zeroed();
        if libc::sigaltstack(std::ptr::null(), &mut old) != 0
            || old.ss_flags & libc::SS_DISABLE == 0
        {
            return;
        }
        let size = 64 << 10;
        let mem = libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if mem == libc::MAP_FAILED {
            return;
        }
        let st = libc::stack_t {
            ss_sp: mem,
            ss_flags: 0,
            ss_size: size,
        };
        libc::sigaltstack(&st, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fresh slot of a 70-slot batch gets its guard page: a write to
    /// any of them kills a forked child with SIGSEGV, and a write just
    /// above it does not.
    #[test]
    fn every_fresh_slot_of_a_batch_is_guarded() {
        // As when a VM ran in this test binary: the children reset it.
        install_fault_handler();
        let pool = StackPool::new(DEFAULT_STACK_SIZE);
        let mut slots = Vec::new();
        pool.acquire_batch(&mut slots, 70).expect("slots");
        assert_eq!(slots.len(), 70);
        for (i, &low) in slots.iter().enumerate() {
            for (addr, guarded) in [(low + 8, true), (low + PAGE + 8, false)] {
                // SAFETY: the child writes one byte and exits at once
                // (no locks, no allocation).
                let pid = unsafe { libc::fork() };
                assert!(pid >= 0, "fork");
                if pid == 0 {
                    // SAFETY: the default action for SIGSEGV (another test
                    // of this binary may have installed the VM's handler,
                    // which aborts on a guard page) and no core dump; then
                    // a write inside the slot's mapping (guard or not: the
                    // point of the test).
                    unsafe {
                        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
                        libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                        std::ptr::write_volatile(addr as *mut u8, 1);
                        libc::_exit(0);
                    }
                }
                let mut status = 0;
                // SAFETY: waits for our own child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                let segv = libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSEGV;
                assert_eq!(segv, guarded, "slot {i}: write at low + {}", addr - low);
            }
        }
        pool.release_batch(&mut slots);
    }

    /// A grown stack is a large lazily committed mapping: writable from
    /// just above its guard page to its top, and gone after unmapping.
    #[test]
    fn grown_stacks_map_lazily_and_unmap() {
        let len = 256 << 20;
        let low = map_grown(len).expect("map a grown stack");
        assert_eq!(low % PAGE, 0);
        // SAFETY: both words are inside the mapping, above the guard page.
        unsafe {
            *((low + PAGE) as *mut u64) = 1;
            *((low + len - 8) as *mut u64) = 2;
            assert_eq!(
                *((low + PAGE) as *const u64) + *((low + len - 8) as *const u64),
                3
            );
        }
        // Only the two touched pages (and no more than a few) are resident.
        let mut v = vec![0u8; len / PAGE];
        // SAFETY: `v` has one byte per page of the mapping.
        let r = unsafe { libc::mincore(low as *mut libc::c_void, len, v.as_mut_ptr()) };
        assert_eq!(r, 0);
        assert!(v.iter().filter(|b| **b & 1 == 1).count() <= 4);
        // SAFETY: nothing uses it any more.
        unsafe { unmap_grown(low, len) };
        // SAFETY: probing a page we just unmapped: mincore reports ENOMEM.
        let r = unsafe { libc::mincore(low as *mut libc::c_void, PAGE, v.as_mut_ptr()) };
        assert_eq!(r, -1);
    }

    /// Writes a switched-out stack at the top of slot `low` the way
    /// `context::switch` and frame-pointer-keeping code leave one: the
    /// switch frame (its saved rbp at `SAVED_RBP`), then three frames
    /// linked upwards, the outermost with a saved rbp of 0, with data words
    /// between them (`data`, then an address outside the slot, an odd
    /// integer). Returns the saved stack pointer and the chain's addresses.
    fn fake_stack(pool: &StackPool, low: usize, data: usize) -> (usize, Vec<usize>) {
        let top = pool.top(low);
        let sp = top - 256;
        let frames = [sp + 64, sp + 128, sp + 192];
        let mut words = [0usize; 32];
        words[crate::context::SAVED_RBP / 8] = frames[0];
        words[7] = 0x40_1000; // a return address
        for (i, &f) in frames.iter().enumerate() {
            let at = (f - sp) / 8;
            words[at] = frames.get(i + 1).copied().unwrap_or(0);
            words[at + 1] = 0x40_2000 + i;
            words[at + 2] = data;
            words[at + 3] = 0x1234_5679;
            words[at + 4] = &words as *const _ as usize;
        }
        // SAFETY: the top 256 bytes of a slot the test owns.
        unsafe { ptr::copy_nonoverlapping(words.as_ptr(), sp as *mut usize, words.len()) };
        (sp, frames.to_vec())
    }

    /// A parked stack whose only addresses of its slot are the frame chain
    /// moves to another slot with the chain (and nothing else) moved by the
    /// slots' distance; one holding any other address of its slot, or a
    /// chain that does not go upwards, stays.
    #[test]
    fn parked_stacks_move_only_when_the_frame_chain_is_their_only_address() {
        // The fake stack's return addresses into "generated code".
        let is_code = |v: usize| (0x40_2000..0x40_2003).contains(&v);
        let pool = StackPool::new(DEFAULT_STACK_SIZE);
        let mut v = Vec::new();
        pool.acquire_batch(&mut v, 2).unwrap();
        let (a, b) = (v[0], v[1]);
        let (top_a, top_b) = (pool.top(a), pool.top(b));
        let (sp, frames) = fake_stack(&pool, a, 77);
        // SAFETY: slot `a` holds the switched-out stack written above.
        let (bytes, _) = unsafe { pool.park(a, sp, sp) };
        assert!(movable(&bytes, sp, a, top_a, is_code));
        // SAFETY: parked from `a`, movable; `b` is ours and unused.
        let delta = unsafe { pool.unpark_moved(b, &bytes, a) };
        assert_eq!(delta, top_b.wrapping_sub(top_a) as isize);
        let moved = |x: usize| x.wrapping_add_signed(delta);
        let new_sp = moved(sp);
        // SAFETY: the bytes just written below `b`'s top.
        let word = |x: usize| unsafe { *(x as *const usize) };
        assert_eq!(word(new_sp + crate::context::SAVED_RBP), moved(frames[0]));
        assert_eq!(word(moved(frames[0])), moved(frames[1]));
        assert_eq!(word(moved(frames[1])), moved(frames[2]));
        assert_eq!(word(moved(frames[2])), 0);
        for &f in &frames {
            assert_eq!(word(moved(f) + 16), 77);
            assert_eq!(word(moved(f) + 24), 0x1234_5679);
        }
        // The switch frame's reserved word is never read: whatever it
        // holds does not matter.
        let (sp, _) = fake_stack(&pool, a, 77);
        // SAFETY: the first word of the fake stack.
        unsafe { *(sp as *mut usize) = sp + 64 };
        // SAFETY: as above.
        let (bytes, _) = unsafe { pool.park(a, sp, sp) };
        assert!(movable(&bytes, sp, a, top_a, is_code));
        // A Rust frame that used rbp for data: the chain starts below the
        // lowest return address into generated code instead (word 9, the
        // first frame's; the rbp saved at word 8 points to the second).
        let (sp, frames) = fake_stack(&pool, a, 77);
        // SAFETY: a word of the fake stack.
        unsafe { *((sp + crate::context::SAVED_RBP) as *mut usize) = 0x08be_96b6 };
        // SAFETY: as above.
        let (bytes, _) = unsafe { pool.park(a, sp, sp) };
        assert!(movable(&bytes, sp, a, top_a, is_code));
        assert!(!movable(&bytes, sp, a, top_a, |_| false));
        // SAFETY: parked from `a`, movable; `b` is ours and unused.
        let delta = unsafe { pool.unpark_moved(b, &bytes, a) };
        let moved = |x: usize| x.wrapping_add_signed(delta);
        // SAFETY: the bytes just written below `b`'s top.
        let word = |x: usize| unsafe { *(x as *const usize) };
        assert_eq!(word(moved(sp + crate::context::SAVED_RBP)), 0x08be_96b6);
        assert_eq!(word(moved(frames[0])), moved(frames[1]));
        assert_eq!(word(moved(frames[1])), moved(frames[2]));
        // Any other word holding an address of the slot (its top included)
        // keeps the stack in place.
        for data in [sp + 8, top_a, a, a + PAGE + 5 * 8] {
            let (sp, _) = fake_stack(&pool, a, data);
            // SAFETY: as above.
            let (bytes, _) = unsafe { pool.park(a, sp, sp) };
            assert!(
                !movable(&bytes, sp, a, top_a, is_code),
                "{data:#x} was not seen"
            );
        }
        // A chain that points down, or at an unaligned word.
        for bad in [sp + 8, sp + 100] {
            let (sp, _) = fake_stack(&pool, a, 77);
            // SAFETY: a word of the fake stack.
            unsafe { *((sp + 64) as *mut usize) = bad };
            // SAFETY: as above.
            let (bytes, _) = unsafe { pool.park(a, sp, sp) };
            assert!(!movable(&bytes, sp, a, top_a, is_code), "chain to {bad:#x}");
        }
        pool.release_batch(&mut v);
    }

    /// An idle VM keeps the top pages of only the newest `keep` free slots.
    #[test]
    fn cooling_keeps_only_the_newest_free_slots_resident() {
        let pool = StackPool::new(MIN_STACK_SIZE);
        let (n, keep) = (40, 10);
        let mut v = Vec::new();
        pool.acquire_batch(&mut v, n).unwrap();
        for &low in &v {
            // SAFETY: the top byte of a slot we hold.
            unsafe { *((pool.top(low) - 1) as *mut u8) = 1 };
        }
        let order = v.clone();
        pool.release_batch(&mut v);
        assert!(order.iter().all(|&low| page_resident(pool.top(low) - PAGE)));
        pool.cool(keep);
        for (i, &low) in order.iter().enumerate() {
            let resident = page_resident(pool.top(low) - PAGE);
            assert_eq!(resident, i >= n - keep, "slot {i} of {n}");
        }
        // Nothing more to cool.
        pool.cool(keep);
        assert!(page_resident(pool.top(order[n - 1]) - PAGE));
    }

    #[test]
    fn slots_are_distinct_and_recycled() {
        let pool = StackPool::new(256 << 10);
        let mut v = Vec::new();
        pool.acquire_batch(&mut v, 10).unwrap();
        assert_eq!(v.len(), 10);
        let mut sorted = v.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 10);
        for &low in &v {
            // The usable part is writable.
            // SAFETY: inside the slot, above the guard.
            unsafe {
                let top = pool.top(low) as *mut u8;
                *top.sub(1) = 1;
                *((low + PAGE) as *mut u8) = 2;
            }
            assert_eq!(pool.limit(low), low + PAGE + RUNTIME_MARGIN);
        }
        for &low in &v {
            assert!(is_guard_page(low));
            assert!(is_guard_page(low + PAGE - 1));
            assert!(!is_guard_page(low + PAGE));
        }
        let first = v.clone();
        for &low in &v {
            // Written at `low + PAGE` above: deep.
            assert!(pool.scrub(low, low + PAGE, false));
            assert!(!pool.scrub(low, pool.top(low) - 64, false));
            assert!(!pool.scrub(low, pool.top(low) - 64, true));
        }
        pool.release_batch(&mut v);
        assert!(v.is_empty());
        pool.acquire_batch(&mut v, 10).unwrap();
        v.sort();
        let mut f = first;
        f.sort();
        assert_eq!(v, f);
    }

    /// Past [`WARM_MAX`] free slots, the oldest lose their resident top
    /// pages; slots are handed out again warm ones first, newest first.
    #[test]
    fn free_slots_past_the_warm_limit_release_their_pages() {
        let pool = StackPool::new(MIN_STACK_SIZE);
        let n = WARM_MAX + 8;
        let mut v = Vec::new();
        pool.acquire_batch(&mut v, n).unwrap();
        for &low in &v {
            // SAFETY: the top byte of a slot we hold.
            unsafe { *((pool.top(low) - 1) as *mut u8) = 1 };
            assert!(page_resident(pool.top(low) - PAGE));
        }
        let order = v.clone();
        pool.release_batch(&mut v);
        // The oldest went cold, down to `kept`; the newest stayed warm.
        let kept = WARM_MAX - WARM_MAX / 8;
        let cooled = n - kept;
        for (i, &low) in order.iter().enumerate() {
            let resident = page_resident(pool.top(low) - PAGE);
            assert_eq!(resident, i >= cooled, "slot {i} of {n}");
        }
        // Warm slots first, the last released first; then cold ones.
        pool.acquire_batch(&mut v, kept + 1).unwrap();
        assert_eq!(v[0], order[n - 1]);
        assert_eq!(v[kept - 1], order[cooled]);
        assert!(order[..cooled].contains(&v[kept]));
        // A cold slot is usable again (its pages fault back in, zeroed).
        let low = v[kept];
        // SAFETY: the top byte of a slot we hold.
        assert_eq!(unsafe { *((pool.top(low) - 1) as *const u8) }, 0);
    }
}
