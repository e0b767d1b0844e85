//! Parking the stacks of long-blocked processes, so that an idle process
//! costs the bytes its stack really holds rather than whole pages.
//!
//! A process that blocks (`receive`, a socket, a call, `sleep`) keeps its
//! stack slot, whose touched pages stay resident: 4 KiB at least, 16 KiB
//! on a recycled slot. Once it has been blocked for [`PARK_AFTER_MS`], its
//! scheduler copies the used bytes out and releases the pages
//! ([`crate::stack::StackPool::park`]); the bytes go back when it next
//! runs. The delay keeps the cost (a copy, an `madvise`, page faults on
//! the way back: a few microseconds) off processes that block briefly, as
//! in ping-pong and rings; Erlang's `hibernate` does this on request, Go
//! shrinks idle goroutine stacks at GC time.
//!
//! A parked stack whose only addresses of itself are its frame chain (the
//! usual case, checked word by word: [`crate::stack::movable`]) also
//! gives its slot up, to this scheduler's cache with its top page still
//! resident, and comes back into whichever slot is free when its process
//! next runs ([`crate::stack::StackPool::unpark_moved`]), as Go's stacks
//! are copied anywhere. So a slot does not wait, released, for a process
//! that may sleep for hours while new processes fault in fresh pages: at
//! 2 M processes that each block for seconds (`bench/cvn/growth_spawn.cvn`)
//! it took the run from 6.8 to 4.5 s.
//!
//! Bookkeeping: a scheduler keeps a FIFO of the processes that blocked on
//! it (serial, and when), at most one entry per process
//! (`Inner::park_queued`); the wait's start is `Shared::blocked_at`, in
//! [`Vm::coarse_ms`] milliseconds (a clock sysmon advances, so blocking
//! costs no `clock_gettime`). A busy scheduler looks at the FIFO every
//! `GLOBAL_EVERY` rounds; an idle one before it parks, and it parks no
//! longer than until the next entry is due. Everything about a blocked
//! process is decided under its mailbox lock, where its `Process` is owned
//! by `Inner::proc`, so a wake-up and a park never overlap. Deterministic
//! schedules (`--schedules`) do not park.

use super::*;

/// A process blocked this long (ms) has its stack parked, by default
/// (`CARAVAN_PARK_AFTER_MS` changes it). A second keeps the cost off
/// processes that block briefly even when many wait at once, as the
/// parents of a skynet tree do while it is built.
pub(crate) const PARK_AFTER_MS: u32 = 1000;

/// Stacks parked since the VM started, and how many of them gave up their
/// slot ([`crate::stack::movable`]); read by [`stack_stats`].
static STACKS_PARKED: AtomicU64 = AtomicU64::new(0);
static STACKS_MOVABLE: AtomicU64 = AtomicU64::new(0);

/// `(parked, movable)`: stacks parked since the program started, and how
/// many of them left their slot to come back into whichever slot was free
/// when their process next ran (`CARAVAN_TIMINGS=1` prints them).
pub fn stack_stats() -> (u64, u64) {
    (
        STACKS_PARKED.load(Ordering::Relaxed),
        STACKS_MOVABLE.load(Ordering::Relaxed),
    )
}

/// Stacks a busy scheduler parks per look at its FIFO (bounds the pause).
pub(crate) const PARK_BATCH: usize = 64;

/// Stacks released in one batch at most.
const MAX_BATCH: usize = 256;

/// Milliseconds from `now` until `stamp` is `after` ms old.
#[inline]
fn until(now: u32, stamp: u32, after: u32) -> u32 {
    stamp.wrapping_add(after).wrapping_sub(now).min(after)
}

/// True if `stamp` is at least `after` ms before `now` (wrapping
/// millisecond clocks).
#[inline]
fn due(now: u32, stamp: u32, after: u32) -> bool {
    now.wrapping_sub(stamp) as i32 >= after as i32
}

impl Vm {
    /// Milliseconds since the VM started, advanced by sysmon at each of
    /// its ticks (10 ms while anything runs) and by a scheduler waking
    /// from a park: cheap to read, never ahead of the real clock.
    #[inline]
    pub(crate) fn coarse_ms(&self) -> u32 {
        self.coarse_ms.load(Ordering::Relaxed)
    }

    /// Milliseconds since the VM started, now; also advances
    /// [`Vm::coarse_ms`].
    pub(crate) fn precise_ms(&self) -> u32 {
        let now = self.started.elapsed().as_millis() as u32;
        self.coarse_ms.fetch_max(now, Ordering::Relaxed);
        now
    }
}

impl Scheduler {
    /// Called by `park_process` under the mailbox lock `g`, as the process
    /// `serial` starts to wait: stamps the wait and queues the process here
    /// unless it already is.
    pub(crate) fn note_blocked(&self, sh: &Shared, g: &mut crate::process::Inner, serial: u64) {
        let vm = self.vm();
        if vm.schedule_seed.is_some() || vm.park_after_ms == u32::MAX {
            return;
        }
        let now = vm.coarse_ms();
        sh.blocked_at.store(now, Ordering::Relaxed);
        if !g.park_queued {
            g.park_queued = true;
            // SAFETY: owning thread, short borrow.
            unsafe { self.local() }.blocked.push_back((serial, now));
        }
    }

    /// Parks the stacks of this scheduler's processes blocked for
    /// [`PARK_AFTER_MS`] or more at `now` (coarse ms), at most `limit` of
    /// them. Returns how long until the next queued process is due (ms),
    /// if any.
    ///
    /// The stacks are copied out one by one under each process's lock,
    /// then their pages released in one batch (one TLB shootdown), and the
    /// batch's number published in this scheduler's `Slot::parks_released`:
    /// a parked process that is woken meanwhile waits for that number
    /// before its bytes go back ([`Scheduler::unpark_stack`]), and so does
    /// the release of its slot when it is killed while parked.
    pub(crate) fn park_stacks(&self, now: u32, limit: usize) -> Option<u32> {
        let vm = self.vm();
        let after = vm.park_after_ms;
        let (batch, mut ranges) = {
            // SAFETY: owning thread, short borrow.
            let l = unsafe { self.local() };
            if l.blocked.front().is_none_or(|e| !due(now, e.1, after)) {
                return l.blocked.front().map(|e| until(now, e.1, after));
            }
            l.park_batches += 1;
            (l.park_batches, std::mem::take(&mut l.park_ranges))
        };
        // Slots given up by stacks that may move (released after the
        // loop, outside the mailbox locks).
        let mut freed = Vec::new();
        let next = loop {
            // SAFETY: owning thread, short borrow.
            let Some(&(serial, stamp)) = unsafe { self.local() }.blocked.front() else {
                break None;
            };
            if !due(now, stamp, after) {
                break Some(until(now, stamp, after));
            }
            // Stacks parked in place and stacks that left their slot both
            // count: each costs a copy (and a slot's release).
            if ranges.len() + freed.len() >= limit.min(MAX_BATCH) {
                break Some(0);
            }
            // SAFETY: owning thread, short borrow.
            unsafe { self.local() }.blocked.pop_front();
            let Some(sh) = vm.table.get(serial) else {
                continue;
            };
            let mut g = sh.lock();
            if g.state != ProcState::Waiting || g.proc.is_null() {
                g.park_queued = false;
                continue;
            }
            let blocked_at = sh.blocked_at.load(Ordering::Relaxed);
            if !due(now, blocked_at, after) {
                // It ran and blocked again since it was queued.
                let again = blocked_at;
                drop(g);
                // SAFETY: owning thread, short borrow.
                unsafe { self.local() }.blocked.push_back((serial, again));
                continue;
            }
            g.park_queued = false;
            // SAFETY: a waiting process is owned by `Inner::proc` and only
            // taken out under this lock, which we hold: nothing runs it or
            // touches its stack meanwhile.
            let p = unsafe { &mut *g.proc };
            // A grown stack (`crate::stackgrow`) is not parked: its frames
            // are not below the slot's top.
            if p.stack_low != 0 && p.grown.is_none() && p.parked_stack.is_none() {
                let low = p.stack_low;
                // SAFETY: its slot, switched out at `saved_sp`; it does not
                // run before `unpark_stack`, which waits for this batch.
                let (bytes, range) = unsafe { vm.stacks.park(low, p.saved_sp, p.lowest_sp) };
                // Rust frames between generated ones (`gc_inhibit`) are
                // never moved, whatever their words look like.
                let moves = p.gc_inhibit == 0
                    && crate::stack::movable(&bytes, p.saved_sp, low, vm.stacks.top(low), |pc| {
                        crate::gc::is_generated_pc(pc as u64)
                    });
                if moves {
                    // The slot is free now: the next process to run here
                    // (maybe this one) takes it with its top page resident.
                    freed.push((low, p.lowest_sp.min(p.saved_sp)));
                    p.stack_low = 0;
                    STACKS_MOVABLE.fetch_add(1, Ordering::Relaxed);
                } else {
                    ranges.push(range);
                }
                p.parked_stack = Some(Box::new(crate::process::ParkedStack {
                    bytes,
                    sched: self.index as u32,
                    batch: if moves { 0 } else { batch },
                    from_low: if moves { low } else { 0 },
                }));
                p.lowest_sp = p.saved_sp;
                STACKS_PARKED.fetch_add(1, Ordering::Relaxed);
            }
            // Empty mailbox buffers and bookkeeping go too.
            g.shrink_idle(&mut p.queue);
        };
        // SAFETY: the ranges' stacks were copied out, and their processes
        // wait for `parks_released` to reach `batch` before running.
        unsafe { crate::stack::release_ranges(&ranges) };
        for (low, lowest_sp) in freed {
            self.release_stack(low, lowest_sp);
        }
        self.slot().parks_released.store(batch, Ordering::Release);
        ranges.clear();
        // SAFETY: owning thread, short borrow.
        unsafe { self.local() }.park_ranges = ranges;
        next
    }

    /// Waits until the pages of `p`'s parked stack have been released (a
    /// sweep on another scheduler may be between its copy and its
    /// release; a few microseconds).
    pub(crate) fn wait_park_released(&self, parked: &crate::process::ParkedStack) {
        let (sched, batch) = (parked.sched, parked.batch);
        let slot = &self.vm().slots[sched as usize];
        let mut spins = 0u32;
        while slot.parks_released.load(Ordering::Acquire) < batch {
            spins += 1;
            if spins < 100 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Puts a parked stack back before the process runs: into its own
    /// slot, or — when it gave its slot up — into the slot the caller just
    /// gave it (`Process::stack_low`), moving the addresses it holds.
    #[inline]
    pub(crate) fn unpark_stack(&self, p: &mut Process) {
        if let Some(parked) = p.parked_stack.take() {
            if parked.from_low != 0 {
                // SAFETY: the bytes were parked from `from_low` and found
                // movable; `stack_low` is a slot this scheduler took for
                // the process, which has not run since it was parked.
                let delta = unsafe {
                    self.vm()
                        .stacks
                        .unpark_moved(p.stack_low, &parked.bytes, parked.from_low)
                };
                let old = parked.from_low..=self.vm().stacks.top(parked.from_low);
                p.saved_sp = p.saved_sp.wrapping_add_signed(delta);
                if old.contains(&(p.exit_fp as usize)) {
                    p.exit_fp = (p.exit_fp as usize).wrapping_add_signed(delta) as u64;
                }
                p.lowest_sp = p.saved_sp;
                return;
            }
            self.wait_park_released(&parked);
            // SAFETY: parked from this slot, and the process has not run
            // since (it was waiting; now it is ours).
            unsafe { self.vm().stacks.unpark(p.stack_low, &parked.bytes) };
        }
    }
}
