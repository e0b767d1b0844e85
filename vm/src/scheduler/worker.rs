//! One scheduler thread: its local run queue and `runnext`, finding work
//! (timers, the queues, stealing, parking), running a process until it
//! switches back and carrying out its request, and a process's end.

use super::*;

/// Entries of each scheduler's pid cache, direct-mapped by serial (16
/// bytes each: 64 KiB; each keeps at most one exited process's small
/// shared part alive). 256 missed on every hop of a 1,000-process ring.
const PID_CACHE: usize = 4096;
/// Stack slots a scheduler keeps for itself before returning them to the
/// pool.
const STACK_CACHE_MAX: usize = 64;
/// Dead processes' allocations a scheduler keeps for its next spawns
/// ([`Scheduler::new_process`]).
const PROC_CACHE_MAX: usize = 64;
/// Allocations moved at once between a scheduler's cache and the VM's
/// pool (`Vm::proc_pool`), and the most the pool keeps.
const PROC_BATCH: usize = PROC_CACHE_MAX / 2;
const PROC_POOL_MAX: usize = 4096;
const STACK_BATCH: usize = 16;
/// Idle rounds spent spinning (then yielding) before parking.
const SPIN_ROUNDS: u32 = 8;
const YIELD_ROUNDS: u32 = 4;

/// Longest local run queue; beyond it the oldest half moves to the global
/// queue (Go's `runqput` does the same with 256). This bounds the breadth
/// of a fan-out: recent processes (deep in a spawn tree) run first instead
/// of the whole tree being spawned before any leaf runs.
///
/// Why 63, not Go's 256: the queue is a `crossbeam_deque::Worker`, whose
/// buffer starts at 64 entries, doubles when a push finds it full and
/// halves when a pop leaves it under a quarter full. With 256, a queue
/// swinging between empty and full (every fan-out) resized its buffer
/// again and again, and each resize pins the epoch and runs deferred
/// frees (`crossbeam_epoch::Global::collect`, whose bags of 64 deferred
/// calls sit on the stack) — inside `spawn`, on the spawning process's own
/// stack. Skynet 1 M: 12 k of its 26 k page faults outside the heap were
/// there, and 30 % of the process stacks alive at its peak had three
/// pages resident instead of one. With at most 63 entries before a push,
/// the buffer stays at its first 64 and never resizes.
const LOCAL_MAX: usize = 63;
/// Scheduling rounds between two looks at the global queue first.
const GLOBAL_EVERY: u32 = 61;

impl Local {
    /// Appends `p` to the local run queue, spilling the oldest half to the
    /// global queue when it is full.
    #[inline]
    fn enqueue(&mut self, vm: &Vm, p: *mut Process) {
        push_bounded(&self.worker, ProcPtr(p), |x| vm.injector.push(x));
    }
}

/// Asks the cache for the hot part of `p` (its first four lines, see
/// `Process`) without waiting for it.
///
/// Why: a process that wakes another (a send) makes it the next to run on
/// this core; when the woken one last ran long ago (a ring of 1,000
/// processes), each of its lines is a cache miss, taken one after another
/// as the scheduler reads it. Started at the wake-up, the loads overlap
/// with the rest of the sender's slice.
#[inline(always)]
fn prefetch_process(p: *mut Process) {
    prefetch_lines(p as usize, 0..4);
}

/// Asks the cache for the stack lines a process switched in at `sp` uses
/// first: the saved context just above `sp`, and the frames of the
/// runtime functions it returns through and calls again just below it.
#[inline(always)]
fn prefetch_stack(sp: usize) {
    prefetch_lines(sp, -6..4);
}

/// Prefetches the 64-byte lines `lines` (in lines, relative to `addr`).
#[inline(always)]
fn prefetch_lines(addr: usize, lines: std::ops::Range<isize>) {
    #[cfg(target_arch = "x86_64")]
    for line in lines {
        // SAFETY: a prefetch is only a hint: it never faults, whatever the
        // address.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>((addr as *const i8).wrapping_offset(line * 64));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (addr, lines);
}

/// Pushes `p` on a local run queue, then hands the oldest half to `spill`
/// (the global queue) if it holds more than [`LOCAL_MAX`].
#[inline]
fn push_bounded(worker: &Worker<ProcPtr>, p: ProcPtr, mut spill: impl FnMut(ProcPtr)) {
    worker.push(p);
    if worker.len() > LOCAL_MAX {
        for _ in 0..LOCAL_MAX / 2 {
            match worker.pop() {
                Some(x) => spill(x),
                None => break,
            }
        }
    }
}

/// An idle scheduler's progress towards giving freed memory back to the
/// system, over one search for work: the resident pages of free stack
/// slots past [`crate::stack::WARM_IDLE`], and what the allocator keeps
/// ([`crate::set_memory_release`], if set).
enum Release {
    /// Nothing armed yet: the next park arms it.
    Arm,
    /// Due at this `Vm::precise_ms` time.
    Due(u32),
    /// Done.
    Done,
}

impl Release {
    /// Called at each park of an idle scheduler at `now` (ms): arms the
    /// release, or runs it once due. Returns how long the park may last
    /// at most (ms) for the release to run in time, if it is pending.
    fn step(&mut self, now: u32, stacks: &crate::stack::StackPool) -> Option<u32> {
        if let Release::Arm = self {
            *self = Release::Due(now.wrapping_add(crate::IDLE_RELEASE_MS));
        }
        let Release::Due(at) = *self else {
            return None;
        };
        let left = at.wrapping_sub(now) as i32;
        if left > 0 {
            return Some(left as u32);
        }
        stacks.cool(crate::stack::WARM_IDLE);
        if let Some(release) = crate::memory_release() {
            release();
        }
        *self = Release::Done;
        None
    }
}

/// Scheduler-local state. Only the owning thread touches it: the scheduler
/// loop, or a runtime function of the process it is running.
pub(crate) struct Local {
    /// Scheduling rounds (for [`GLOBAL_EVERY`]).
    ticks: u32,
    pub(super) worker: Worker<ProcPtr>,
    /// Reductions left in the current slice, inherited by `runnext`.
    slice_left: i64,
    stack_cache: Vec<usize>,
    /// Allocations of processes that ended here, for the next spawns:
    /// dropped in place, so only their memory is kept (at most
    /// [`PROC_CACHE_MAX`]). Boxed on purpose: the allocations are what
    /// is kept.
    #[allow(clippy::vec_box)]
    proc_cache: Vec<Box<std::mem::MaybeUninit<Process>>>,
    /// Shared parts of ended processes that nothing else held, reset for
    /// the next spawn (at most [`PROC_CACHE_MAX`]).
    shared_cache: Vec<Arc<Shared>>,
    /// Recently used pids (see [`Scheduler::lookup`]): [`PID_CACHE`]
    /// entries, made at the first lookup ([`pid_entry`]).
    pid_cache: Box<[PidEntry]>,
    /// This scheduler's block of serials: next, end.
    serials: (u64, u64),
    /// Counts stack releases (for the periodic residency audit).
    audit: u32,
    /// Reusable buffers of the deep copy.
    pub(crate) copy: CopyScratch,
    /// Reusable work list of compare.
    pub(crate) cmp_work: Vec<(Value, Value)>,
    /// Reusable buffer of socket reads (`Tcp.recv`).
    pub(crate) io_buf: Vec<u8>,
    rng: u64,
    /// A deterministic schedule (`--schedules`), if this is one.
    pub(crate) det: Option<Box<super::det::Det>>,
    /// Processes that blocked here and may have their stacks parked:
    /// (serial, coarse ms when queued), oldest first (`stackpark`).
    pub(crate) blocked: std::collections::VecDeque<(u64, u32)>,
    /// Batches of parked stacks so far, and the reused list of ranges.
    pub(crate) park_batches: u64,
    pub(crate) park_ranges: Vec<crate::stack::Range>,
}

/// One scheduler (one OS thread).
pub struct Scheduler {
    pub(crate) index: usize,
    vm: *const Vm,
    /// The scheduler's own saved stack pointer while a process runs.
    pub(crate) sp: UnsafeCell<usize>,
    local: UnsafeCell<Local>,
}

impl Scheduler {
    #[inline]
    pub(crate) fn vm(&self) -> &Vm {
        // SAFETY: the VM outlives its schedulers (it is in an `Arc` held by
        // every scheduler thread).
        unsafe { &*self.vm }
    }

    /// The scheduler-local state.
    ///
    /// # Safety
    /// Only from the owning thread, and the returned reference must not
    /// overlap another one (keep it short; never across a switch).
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn local(&self) -> &mut Local {
        // SAFETY: caller's guarantee (single thread, no overlap).
        unsafe { &mut *self.local.get() }
    }

    /// The shared part of process `serial`, through this scheduler's
    /// direct-mapped cache (serials are never reused, so a cached entry is
    /// always the right process; whether it is still alive is checked
    /// under its lock by the caller). Misses go to the process table.
    #[inline]
    pub(crate) fn lookup(&self, serial: u64) -> Option<Arc<Shared>> {
        // SAFETY: owning thread, short borrow.
        let l = unsafe { self.local() };
        let e = pid_entry(&mut l.pid_cache, serial);
        if e.0 == serial {
            if let Some(sh) = &e.1 {
                return Some(sh.clone());
            }
        }
        let sh = self.vm().table.get(serial)?;
        *e = (serial, Some(sh.clone()));
        Some(sh)
    }

    /// Like [`Scheduler::lookup`] but borrowing the cache entry: the
    /// pointer stays valid until this scheduler's next lookup (the entry is
    /// not replaced before).
    #[inline]
    pub(crate) fn lookup_ptr(&self, serial: u64) -> Option<*const Shared> {
        // SAFETY: owning thread, short borrow.
        let l = unsafe { self.local() };
        let e = pid_entry(&mut l.pid_cache, serial);
        if e.0 != serial || e.1.is_none() {
            let sh = self.vm().table.get(serial)?;
            *e = (serial, Some(sh));
        }
        e.1.as_ref().map(Arc::as_ptr)
    }

    /// A fresh serial from this scheduler's block.
    pub(crate) fn next_serial(&self) -> u64 {
        // SAFETY: owning thread, no overlapping borrow.
        let l = unsafe { self.local() };
        if l.serials.0 == l.serials.1 {
            let first = self.vm().alloc_serials(SERIAL_BLOCK);
            l.serials = (first, first + SERIAL_BLOCK);
        }
        l.serials.0 += 1;
        l.serials.0 - 1
    }

    #[inline]
    pub(super) fn slot(&self) -> &Slot {
        &self.vm().slots[self.index]
    }

    /// Makes `p` run next on this scheduler (Go's `runnext`); a process
    /// already there moves to the back of the local queue, where other
    /// schedulers may steal it.
    pub(crate) fn push_runnext(&self, p: *mut Process) {
        // It runs next, on this core: start loading its hot lines now,
        // and the top of its stack (a switch pops its saved registers
        // there first).
        prefetch_process(p);
        // SAFETY: `p` is live and queued by us alone: nobody runs it yet.
        let (sp, heap) = unsafe { ((*p).saved_sp, (*p).heap_ptr) };
        prefetch_stack(sp);
        // Where it allocates next: a ring's processes come back to their
        // nursery long after its lines left the cache, and a store that
        // misses holds up the next lock (a locked instruction waits for
        // the store buffer to drain).
        prefetch_lines(heap as usize, 0..2);
        let old = self.slot().runnext.swap(p, Ordering::AcqRel);
        // SAFETY: called on the owning thread, no other `Local` borrow live.
        let l = unsafe { self.local() };
        if !old.is_null() {
            l.enqueue(self.vm(), old);
            self.vm().notify_one();
        }
    }

    /// Puts `p` at the back of the local queue.
    pub(crate) fn push_local(&self, p: *mut Process) {
        // SAFETY: owning thread, no overlapping borrow.
        let l = unsafe { self.local() };
        let busy = !l.worker.is_empty();
        l.enqueue(self.vm(), p);
        if busy {
            self.vm().notify_one();
        }
    }

    /// Fires due timers; returns the next deadline.
    pub(super) fn fire_timers(&self) -> Option<Instant> {
        let vm = self.vm();
        let slot = self.slot();
        let mine = slot.timer_count.load(Ordering::Relaxed) > 0;
        if !mine && vm.orphan_count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let now = super::now();
        let mut due = Vec::new();
        let mut next = None;
        for (heap, count) in [
            (&slot.timers, &slot.timer_count),
            (&vm.orphans, &vm.orphan_count),
        ] {
            if count.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let mut t = lock(heap);
            while let Some(x) = t.heap.peek() {
                if x.deadline > now {
                    break;
                }
                let x = t.heap.pop().expect("peeked");
                if !x.is_stale() {
                    due.push(x);
                }
            }
            if let Some(x) = t.heap.peek() {
                next = Some(next.map_or(x.deadline, |n: Instant| n.min(x.deadline)));
            }
            count.store(t.heap.len(), Ordering::Relaxed);
        }
        for t in due {
            if let Some(mut s) = t.send {
                crate::timers_api::fire(self, &t.shared, &mut s);
                continue;
            }
            let p = {
                let mut g = t.shared.lock();
                if t.shared.wait_seq.load(Ordering::Relaxed) == t.seq {
                    t.shared.wake_if(&mut g, |_| true)
                } else {
                    std::ptr::null_mut()
                }
            };
            if !p.is_null() {
                self.push_local(p);
            }
        }
        next
    }

    /// The running process is about to block its thread in a system call:
    /// hand `runnext` and this scheduler's timers to the others (Go's
    /// `entersyscall`/`handoffp`, simplified) and wake one of them.
    pub(crate) fn enter_blocking(&self) {
        self.vm().handoff(self.index);
    }

    fn add_timer(&self, deadline: Instant, seq: u64, shared: Arc<Shared>) {
        self.push_timer(Timer {
            deadline,
            seq,
            shared,
            send: None,
        });
    }

    /// Sets a `Timer.send_after` timer on this scheduler: at `deadline` the
    /// message of `s` goes to `to`'s mailbox, unless cancelled first.
    pub(crate) fn add_send_timer(
        &self,
        deadline: Instant,
        to: Arc<Shared>,
        s: Box<crate::timers_api::SendTimer>,
    ) {
        self.push_timer(Timer {
            deadline,
            seq: s.id(),
            shared: to,
            send: Some(s),
        });
    }

    fn push_timer(&self, timer: Timer) {
        let slot = self.slot();
        let mut t = lock(&slot.timers);
        t.heap.push(timer);
        if t.heap.len() >= t.purge_at {
            // Lazy cancellation: drop entries for waits already over.
            t.heap.retain(|x| !x.is_stale());
            t.purge_at = (t.heap.len() * 2).max(256);
        }
        slot.timer_count.store(t.heap.len(), Ordering::Relaxed);
    }

    fn steal(&self) -> Option<*mut Process> {
        let vm = self.vm();
        // SAFETY: owning thread, no overlapping borrow.
        let l = unsafe { self.local() };
        for _ in 0..4 {
            let mut retry = false;
            match vm.injector.steal_batch_and_pop(&l.worker) {
                Steal::Success(p) => return Some(p.0),
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
            let n = vm.stealers.len();
            l.rng ^= l.rng << 13;
            l.rng ^= l.rng >> 7;
            l.rng ^= l.rng << 17;
            let start = (l.rng % n as u64) as usize;
            for i in 0..n {
                let v = (start + i) % n;
                if v == self.index {
                    continue;
                }
                match vm.stealers[v].steal_batch_and_pop(&l.worker) {
                    Steal::Success(p) => return Some(p.0),
                    Steal::Retry => retry = true,
                    Steal::Empty => {}
                }
            }
            if !retry {
                break;
            }
        }
        None
    }

    fn unregister_sleeper(&self) {
        let vm = self.vm();
        let mut s = lock(&vm.sleepers);
        if let Some(i) = s.iter().position(|&x| x == self.index) {
            s.swap_remove(i);
            vm.num_sleeping.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Sleeps as a registered sleeper until there is work, `deadline`, or a
    /// wake-up. Returns true if [`Vm::notify_one`] woke it to look for
    /// work: it then counts in `Vm::num_spinning`, which the caller must
    /// give back (`Vm::stop_spinning`) once it stops looking.
    pub(super) fn park(&self, deadline: Option<Instant>) -> bool {
        let vm = self.vm();
        {
            let mut s = lock(&vm.sleepers);
            s.push(self.index);
            vm.num_sleeping.fetch_add(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        while !vm.has_work() && !vm.shutdown.load(Ordering::SeqCst) {
            if self.park_in_poll(deadline) {
                break;
            }
            // Another thread holds the poller. If it is blocked in
            // `epoll_wait`, it serves I/O: wait on the condition variable.
            // If it only looks without blocking (sysmon, a busy scheduler),
            // it lets go at once: try again, or nobody would be left
            // waiting for I/O.
            if vm.net.as_ref().is_none_or(|n| n.poller.is_blocking()) {
                vm.parkers[self.index].park(deadline);
                break;
            }
            std::thread::yield_now();
        }
        self.unregister_sleeper();
        // Read after leaving the sleepers' list under its lock: a
        // `notify_one` that took us off it set the flag under that lock.
        self.slot().woken_to_spin.swap(false, Ordering::SeqCst)
    }

    /// The next process to run, and whether it comes from `runnext`.
    /// `None` when the VM shuts down.
    fn find_work(&self) -> Option<(*mut Process, bool)> {
        let vm = self.vm();
        if vm.schedule_seed.is_some() {
            return self.det_find_work();
        }
        // Counted in `Vm::num_spinning` (see `Vm::try_spin`).
        let mut spinning = false;
        let found = self.find_work_spinning(&mut spinning);
        if spinning {
            vm.stop_spinning(found.is_some());
        }
        found
    }

    /// `find_work`'s loop; `spinning` tells whether this scheduler counts
    /// as looking for work when it returns.
    fn find_work_spinning(&self, spinning: &mut bool) -> Option<(*mut Process, bool)> {
        let vm = self.vm();
        let mut idle = 0u32;
        // Giving freed memory back after `IDLE_RELEASE_MS` without work:
        // armed at the first park of this call (something ran before it),
        // done at a park past the due time.
        let mut release = Release::Arm;
        loop {
            if vm.shutdown.load(Ordering::Relaxed) {
                return None;
            }
            let next_deadline = self.fire_timers();
            {
                // SAFETY: owning thread, no overlapping borrow.
                let l = unsafe { self.local() };
                let slot = self.slot();
                // A plain load first: no locked instruction when empty.
                let rn = if slot.runnext.load(Ordering::Relaxed).is_null() {
                    std::ptr::null_mut()
                } else {
                    slot.runnext.swap(std::ptr::null_mut(), Ordering::AcqRel)
                };
                if !rn.is_null() {
                    if l.slice_left > 0 {
                        return Some((rn, true));
                    }
                    l.enqueue(vm, rn);
                }
                // Now and then the global queue first, so what spilled
                // there (or was injected) cannot wait behind a busy local
                // queue forever (Go checks every 61 ticks).
                l.ticks = l.ticks.wrapping_add(1);
                if l.ticks % GLOBAL_EVERY == 0 {
                    // And the poller: a busy scheduler still serves I/O.
                    self.netpoll_local();
                    // And the stacks of long-blocked processes.
                    self.park_stacks(vm.coarse_ms(), super::stackpark::PARK_BATCH);
                    if let Steal::Success(p) = vm.injector.steal() {
                        return Some((p.0, false));
                    }
                }
                if let Some(p) = l.worker.pop() {
                    return Some((p.0, false));
                }
            }
            if let Some(p) = self.steal() {
                return Some((p, false));
            }
            if idle == 0 && self.netpoll_local() {
                continue;
            }
            idle += 1;
            if idle == 1 && !*spinning {
                *spinning = vm.try_spin();
            }
            if *spinning && idle <= SPIN_ROUNDS {
                for _ in 0..64 {
                    std::hint::spin_loop();
                }
            } else if *spinning && idle <= SPIN_ROUNDS + YIELD_ROUNDS {
                std::thread::yield_now();
            } else {
                // Not looking any more: work that arrives from now on wakes
                // a sleeper, and `park` checks for work once registered as
                // one, so nothing is missed in between.
                if std::mem::take(spinning) {
                    vm.stop_spinning(false);
                }
                // Idle: park the stacks that are due, and wake up when
                // the next ones are.
                let now = vm.precise_ms();
                // SAFETY: owning thread, short borrow.
                let batches = unsafe { self.local() }.park_batches;
                let due = self
                    .park_stacks(now, usize::MAX)
                    .map(|ms| Instant::now() + std::time::Duration::from_millis(ms as u64));
                // A sweep frees what the parked processes held (copied
                // stacks aside): give it back too, once idle again.
                // SAFETY: as above.
                if unsafe { self.local() }.park_batches != batches {
                    release = Release::Arm;
                }
                let mut deadline = match (next_deadline, due) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                if let Some(wait) = release.step(now, &vm.stacks) {
                    let at = Instant::now() + std::time::Duration::from_millis(wait as u64);
                    deadline = Some(deadline.map_or(at, |d| d.min(at)));
                }
                // Woken by `notify_one`: counted as spinning already.
                *spinning = self.park(deadline);
                vm.precise_ms();
                idle = 0;
            }
        }
    }

    /// A slot for a process that left `from` (0: none) when its stack was
    /// parked: the cache's last one, but in stack torture mode never
    /// `from` itself, so that the move is tested.
    fn take_stack_except(&self, from: usize) -> Result<usize, &'static str> {
        let low = self.take_stack()?;
        if low != from || from == 0 || !crate::stackgrow::torture() {
            return Ok(low);
        }
        let other = self.take_stack();
        // SAFETY: owning thread, no overlapping borrow.
        unsafe { self.local() }.stack_cache.push(low);
        other
    }

    fn take_stack(&self) -> Result<usize, &'static str> {
        // SAFETY: owning thread, no overlapping borrow.
        let l = unsafe { self.local() };
        if let Some(s) = l.stack_cache.pop() {
            return Ok(s);
        }
        self.vm()
            .stacks
            .acquire_batch(&mut l.stack_cache, STACK_BATCH)
            .map_err(|e| e.0)?;
        l.stack_cache.pop().ok_or("out of stack slots")
    }

    /// Creates a process with `serial` (not yet queued) and registers it
    /// in the table, as [`Vm::new_process`], in the allocation of a process
    /// that ended on this scheduler if one is cached: a spawn-heavy program
    /// then neither allocates nor frees a `Process`, and writes its fields
    /// into memory that is still in this core's cache (Go keeps dead
    /// goroutines on per-P free lists, `gfput`/`gfget`, for the same
    /// reason).
    pub(crate) fn new_process(&self, serial: u64) -> *mut Process {
        // SAFETY: owning thread, no overlapping borrow.
        let l = unsafe { self.local() };
        let vm = self.vm();
        if l.proc_cache.is_empty() && vm.proc_pool_len.load(Ordering::Relaxed) != 0 {
            let mut pool = lock(&vm.proc_pool);
            let keep = pool.len().saturating_sub(PROC_BATCH);
            for DeadProcess(mem, shared) in pool.drain(keep..) {
                l.proc_cache.push(mem);
                l.shared_cache.extend(shared);
            }
            vm.proc_pool_len.store(pool.len(), Ordering::Relaxed);
        }
        match l.proc_cache.pop() {
            Some(mem) => vm.new_process_in(serial, mem, l.shared_cache.pop()),
            None => vm.new_process_in(serial, Box::new_uninit(), l.shared_cache.pop()),
        }
    }

    /// Drops a finished process in place and keeps its allocation for
    /// [`Scheduler::new_process`]: in this scheduler's cache, half of which
    /// goes to the VM's pool when it is full (freed when both are).
    fn recycle(&self, proc: Box<Process>) {
        // The shared part too, when nothing else holds it (no watcher, no
        // cached pid lookup): `get_mut` proves it unique, and it is reset
        // to a fresh one. The table no longer has it (`finish`).
        let mut shared = Some(proc.shared.clone());
        let raw = Box::into_raw(proc);
        // SAFETY: `raw` came from a live Box; after the drop its memory is
        // uninitialised, which is what a `MaybeUninit<Process>` may hold,
        // with the same layout.
        let mem = unsafe {
            std::ptr::drop_in_place(raw);
            Box::from_raw(raw.cast::<std::mem::MaybeUninit<Process>>())
        };
        // SAFETY: owning thread, no overlapping borrow.
        let l = unsafe { self.local() };
        if l.proc_cache.len() == PROC_CACHE_MAX {
            let vm = self.vm();
            let mut pool = lock(&vm.proc_pool);
            let room = PROC_POOL_MAX.saturating_sub(pool.len()).min(PROC_BATCH);
            let from = PROC_CACHE_MAX - room;
            let shared = &mut l.shared_cache;
            pool.extend(
                l.proc_cache
                    .drain(from..)
                    .map(|mem| DeadProcess(mem, shared.pop())),
            );
            vm.proc_pool_len.store(pool.len(), Ordering::Relaxed);
        }
        if l.proc_cache.len() < PROC_CACHE_MAX {
            l.proc_cache.push(mem);
        }
        if let Some(sh) = shared.as_mut().and_then(Arc::get_mut) {
            *sh = Shared::new();
            if l.shared_cache.len() < PROC_CACHE_MAX {
                l.shared_cache.extend(shared);
            }
        }
    }

    pub(crate) fn release_stack(&self, low: usize, lowest_sp: usize) {
        let vm = self.vm();
        // SAFETY: owning thread, no overlapping borrow.
        let l = unsafe { self.local() };
        l.audit = l.audit.wrapping_add(1);
        vm.stacks
            .scrub(low, lowest_sp, l.audit % crate::stack::AUDIT_EVERY == 0);
        l.stack_cache.push(low);
        if l.stack_cache.len() > STACK_CACHE_MAX {
            let mut rest = l.stack_cache.split_off(STACK_CACHE_MAX / 2);
            vm.stacks.release_batch(&mut rest);
        }
    }

    /// Runs `p` until it switches back, then carries out its request.
    fn run(&self, p: *mut Process, from_runnext: bool) {
        let sp_to = {
            // SAFETY: we own `p` (taken from a queue); nothing else aliases it.
            let proc = unsafe { &mut *p };
            prefetch_stack(proc.saved_sp);
            if proc.shared.kill.load(Ordering::Acquire) {
                // An exit signal ended it while it was queued.
                proc.exit_reason = Some(crate::signals::take_pending_exit(&proc.shared));
                self.finish(p);
                return;
            }
            if proc.stack_low == 0 {
                // Its first run, or its stack was parked out of its slot.
                let from = proc.parked_stack.as_ref().map_or(0, |s| s.from_low);
                match self.take_stack_except(from) {
                    Ok(low) => {
                        proc.stack_low = low;
                        let top = self.vm().stacks.top(low);
                        proc.stack_limit =
                            crate::stackgrow::first_limit(self.vm().stacks.limit(low), top) as u64;
                        if proc.parked_stack.is_none() {
                            // SAFETY: the slot is ours and unused; its top
                            // is page aligned.
                            proc.saved_sp = unsafe {
                                context::init_stack(
                                    top,
                                    crate::safepoint::process_start,
                                    p as usize,
                                )
                            };
                        }
                    }
                    Err(msg) => {
                        report_crash(proc.serial, msg.as_bytes(), None);
                        proc.exit_reason = Some(ExitReason::crashed(msg));
                        proc.crashed = true;
                        self.finish(p);
                        return;
                    }
                }
            }
            proc.sched = self;
            self.unpark_stack(proc);
            // SAFETY: owning thread, short borrow.
            let det = unsafe { self.local() }
                .det
                .as_mut()
                .map(|d| d.slice_budget());
            let budget = if let Some(budget) = det {
                budget
            } else if from_runnext {
                // SAFETY: owning thread, short borrow.
                unsafe { self.local() }.slice_left
            } else {
                CONTEXT_REDS
            };
            // The trip point is measured from generated code's stack
            // pointer where the process stopped: the frame of the
            // trampoline it switched out in (a blocking runtime call, or
            // `caravan_rt_tick` when its reductions ran out), or (first
            // run, or a switch outside generated code) its saved context.
            let sp = if proc.exit_fp != 0 {
                proc.exit_fp as usize
            } else {
                proc.saved_sp
            };
            proc.rebase(budget, sp);
            proc.shared
                .state
                .store(ProcState::Running as u8, Ordering::Relaxed);
            proc.saved_sp
        };
        let slot = self.slot();
        let n = slot.switches.load(Ordering::Relaxed);
        slot.switches.store(n + 1, Ordering::Relaxed);
        slot.running.store(true, Ordering::Relaxed);
        // SAFETY: `sp_to` is the process's suspended context on its own
        // stack; we save ours in `self.sp`, where the process switches back.
        unsafe { context::switch(self.sp.get(), sp_to) };
        self.slot().running.store(false, Ordering::Relaxed);
        // SAFETY: the process switched back to us: we own it again.
        let proc = unsafe { &mut *p };
        if let Some(g) = proc.grown.as_mut() {
            // Stacks it outgrew during the slice (it ran on them until it
            // moved off; now it is switched out).
            // SAFETY: the process is not running: nothing is on them.
            unsafe { g.release_outgrown() };
        }
        // SAFETY: owning thread, short borrow.
        let l = unsafe { self.local() };
        l.slice_left = proc.reds_left();
        if let Some(d) = l.det.as_mut() {
            d.slice_done(l.slice_left);
        }
        let request = std::mem::take(&mut proc.request);
        if request != Request::Exit && proc.shared.kill.load(Ordering::Acquire) {
            // An exit signal arrived while it ran: its safepoint is now.
            proc.exit_reason = Some(crate::signals::take_pending_exit(&proc.shared));
            self.finish(p);
            return;
        }
        match request {
            Request::Wait { kind, deadline } => self.park_process(p, kind, deadline),
            Request::Exit => self.finish(p),
            Request::Yield | Request::None => {
                proc.shared
                    .state
                    .store(ProcState::Runnable as u8, Ordering::Relaxed);
                self.requeue(p);
            }
        }
    }

    /// Queues a process whose slice is over behind everything runnable:
    /// the back of the local queue, or — when processes wait in the global
    /// queue (spilled from a full local queue, or injected) — the back of
    /// the global queue, which the local queue is refilled from in batches
    /// once it runs dry. So a run-queue round runs every runnable process
    /// before a busy one gets its next slice, as the BEAM's does; without
    /// this, a busy process kept in the local queue would let the global
    /// queue be served one process per `GLOBAL_EVERY` rounds.
    fn requeue(&self, p: *mut Process) {
        let vm = self.vm();
        if vm.injector.is_empty() {
            self.push_local(p);
        } else {
            vm.push_injector(p);
        }
    }

    /// The scheduler's half of the wake-up protocol: off the process's
    /// stack, under its mailbox lock, re-check and only then wait.
    fn park_process(&self, p: *mut Process, kind: WaitKind, deadline: Option<Instant>) {
        // Borrowed, not cloned: the `Arc`'s two atomic updates were a
        // measurable part of every blocking receive (ring). The borrow is
        // good while we own `p`, which ends where it is parked; what uses
        // the shared part after that (a timer, an I/O waiter) takes its
        // own count first.
        // SAFETY: we own `p` until it is parked below.
        let (sh, serial) = unsafe { (&*Arc::as_ptr(&(*p).shared), (*p).serial) };
        let keep = (deadline.is_some() || matches!(kind, WaitKind::Io(_)))
            // SAFETY: as above.
            .then(|| unsafe { (*p).shared.clone() });
        let mut g = sh.lock();
        let ready = match kind {
            WaitKind::Receive => !g.inbox.is_empty(),
            WaitKind::Reply(r) => g.x_opt().is_some_and(|x| {
                x.replies.iter().any(|y| y.0 == r) || x.downs.iter().any(|y| y.0 == r)
            }),
            WaitKind::Join(t) => g
                .x_opt()
                .is_some_and(|x| x.join_result.as_ref().is_some_and(|y| y.0 == t)),
            WaitKind::Sleep | WaitKind::Io(_) => false,
        };
        if sh.kill.load(Ordering::Acquire) {
            // Ended by an exit signal before it could wait.
            drop(g);
            // SAFETY: still ours: it was not parked.
            unsafe { (*p).exit_reason = Some(crate::signals::take_pending_exit(sh)) };
            self.finish(p);
            return;
        }
        if ready {
            if kind == WaitKind::Receive {
                // Mail that `refill` did not see (`Shared::mail`).
                sh.note_mail();
            }
            drop(g);
            sh.state.store(ProcState::Runnable as u8, Ordering::Relaxed);
            self.push_local(p);
            return;
        }
        sh.set_state(&mut g, ProcState::Waiting);
        g.waiting_for = kind;
        g.proc = p;
        self.note_blocked(sh, &mut g, serial);
        let seq = sh.wait_seq.load(Ordering::Relaxed);
        drop(g);
        // From here on `p` may already run elsewhere (and end): do not
        // touch it, nor the borrowed `sh`.
        let Some(sh) = keep else {
            return;
        };
        if let WaitKind::Io(key) = kind {
            // Go's netpollblock: publish the waiter now that the process is
            // parked; an edge that arrived first means it must retry now.
            if self.vm().publish_io_waiter(key, serial) {
                let woken = {
                    let mut g = sh.lock();
                    sh.wake_if(&mut g, |k| k == kind)
                };
                if !woken.is_null() {
                    self.push_local(woken);
                }
            }
        }
        if let Some(d) = deadline {
            self.add_timer(d, seq, sh);
        }
    }

    /// A process is over: record its exit, notify watchers, free it.
    fn finish(&self, p: *mut Process) {
        let vm = self.vm();
        // SAFETY: the process switched away for good; we own it.
        let mut proc = unsafe { Box::from_raw(p) };
        let reason = proc.exit_reason.take().unwrap_or(ExitReason::Normal);
        let serial = proc.serial;
        // Record the reason before leaving the table, so that a `join`
        // that misses the table finds it.
        if !reason.is_normal() {
            vm.dead.insert(serial, reason.clone());
        }
        let (extra, inbox) = {
            let mut g = proc.shared.lock();
            proc.shared.set_state(&mut g, ProcState::Exited);
            g.exit_reason = Some(reason.clone());
            (g.take_extra(), std::mem::take(&mut g.inbox))
        };
        vm.table.remove(serial);
        drop(inbox);
        let (watchers, links, monitors, held, hooks) = match extra {
            Some(x) => {
                let x = *x;
                (
                    x.watchers,
                    x.links,
                    x.monitors,
                    x.held_monitors,
                    x.exit_hooks,
                )
            }
            None => Default::default(),
        };
        if proc.host == Host::Eval && reason.is_normal() {
            // A REPL phrase that returned: what it made that dies with its
            // owner (stores, sockets) belongs to the session from now on,
            // as an Erlang shell's ETS tables do; it lasts until the VM
            // stops. (A phrase that crashed takes its things with it.)
            lock(&vm.session_hooks).extend(hooks);
        } else {
            self.run_exit_hooks(serial, &reason, hooks);
        }
        crate::signals::notify_watchers(self, serial, &reason, watchers);
        crate::signals::on_exit(self, serial, &reason, links, monitors, held);
        // Calls this process had in progress: stop watching the callees.
        for (r, callee) in std::mem::take(&mut proc.call_watches) {
            let w = Watcher::Call {
                serial,
                reference: r,
            };
            let mut g = callee.lock();
            if let Some(x) = g.x_opt() {
                if let Some(i) = x.watchers.iter().position(|y| *y == w) {
                    x.watchers.swap_remove(i);
                }
            }
        }
        if let Some(parked) = proc.parked_stack.take() {
            // Killed while parked: its pages may still be being released.
            self.wait_park_released(&parked);
        }
        if let Some(g) = proc.grown.take() {
            // SAFETY: the process is over: nothing runs on its grown stacks.
            unsafe { g.release() };
        }
        if proc.stack_low != 0 {
            self.release_stack(proc.stack_low, proc.lowest_sp.min(proc.saved_sp));
            proc.stack_low = 0;
        }
        let host = proc.host;
        let crashed = proc.crashed;
        self.recycle(proc);
        match host {
            Host::Main => {
                if !crashed && !reason.is_normal() {
                    // Ended by an exit signal (a link, `Process.exit`): its
                    // own line, since the program ends with it.
                    let mut m = reason.message().into_owned().into_bytes();
                    m.extend_from_slice(b" (exit signal)");
                    report_crash(serial, &m, None);
                }
                vm.request_exit(if crashed || !reason.is_normal() { 1 } else { 0 })
            }
            Host::Eval => vm.report_to_host(serial, reason, crashed),
            Host::None => {}
        }
    }

    fn run_exit_hooks(&self, serial: u64, reason: &ExitReason, hooks: Vec<ExitHook>) {
        for h in hooks {
            // A panicking hook must not take the scheduler down.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h(serial, reason)));
        }
    }

    /// At shutdown: frees the processes still queued here.
    fn drain(&self) {
        // SAFETY: owning thread, no overlapping borrow.
        let l = unsafe { self.local() };
        let rn = self
            .slot()
            .runnext
            .swap(std::ptr::null_mut(), Ordering::AcqRel);
        if !rn.is_null() {
            // SAFETY: the slot owned it.
            drop(unsafe { Box::from_raw(rn) });
        }
        while let Some(ProcPtr(p)) = l.worker.pop() {
            // SAFETY: the queue owned it.
            drop(unsafe { Box::from_raw(p) });
        }
        let mut t = lock(&self.slot().timers);
        t.heap.clear();
        drop(t);
        self.slot().timer_count.store(0, Ordering::Relaxed);
        // Only occupied entries are written: the table's untouched pages
        // are the shared zero page, and a write to one is a
        // copy-on-write fault whose TLB flush interrupts the other
        // cores (a cross-CPU call, costly in a virtual machine: 16 such
        // pages per scheduler were 0.35 ms of hello world's run).
        for e in l.pid_cache.iter_mut().filter(|e| e.1.is_some()) {
            e.1 = None;
        }
        if let Some(d) = l.det.as_mut() {
            d.drain();
        }
    }
}

/// A pid-cache entry: a serial and the shared part of its process.
type PidEntry = (u64, Option<Arc<Shared>>);

/// The entry of the pid cache `cache` for `serial`. The cache is made at
/// the first lookup rather than when the scheduler starts: it is 64 KiB,
/// zeroed by a `memset` that faulted its 16 pages in on every scheduler's
/// way to its first process, also in programs that never look a pid up
/// (hello world).
#[inline]
fn pid_entry(cache: &mut Box<[PidEntry]>, serial: u64) -> &mut PidEntry {
    if cache.is_empty() {
        *cache = (0..PID_CACHE).map(|_| (0, None)).collect();
    }
    &mut cache[serial as usize % PID_CACHE]
}

/// Body of a scheduler thread.
pub(crate) fn scheduler_main(vm: Arc<Vm>, index: usize, worker: Worker<ProcPtr>) {
    /// Reports the stop (also when unwinding from a VM bug).
    struct Stopped<'a>(&'a Vm);
    impl Drop for Stopped<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                self.0.request_exit(crate::EXIT_VM_FAILURE);
            }
            self.0.scheduler_stopped();
        }
    }
    let _stopped = Stopped(&vm);
    crate::stack::ensure_altstack();
    if let Some(seed) = vm.schedule_seed {
        super::det::start_thread(seed);
    }
    let sched = Box::new(Scheduler {
        index,
        vm: Arc::as_ptr(&vm),
        sp: UnsafeCell::new(0),
        local: UnsafeCell::new(Local {
            worker,
            ticks: 0,
            slice_left: 0,
            stack_cache: Vec::new(),
            proc_cache: Vec::new(),
            shared_cache: Vec::new(),
            audit: 0,
            serials: (0, 0),
            pid_cache: Box::new([]),
            copy: CopyScratch::default(),
            cmp_work: Vec::new(),
            io_buf: Vec::new(),
            blocked: std::collections::VecDeque::new(),
            park_batches: 0,
            park_ranges: Vec::new(),
            rng: 0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D),
            det: vm.schedule_seed.map(|s| Box::new(super::det::Det::new(s))),
        }),
    });
    while let Some((p, from_runnext)) = sched.find_work() {
        sched.run(p, from_runnext);
    }
    if vm.host_exits {
        // The host ends the OS process as soon as every scheduler stopped
        // (`Runtime::stop_for_exit`): nothing is freed, and the thread
        // waits here to end with it.
        std::mem::forget(_stopped);
        vm.scheduler_stopped();
        loop {
            std::thread::park();
        }
    }
    sched.drain();
    // SAFETY: owning thread, no overlapping borrow.
    let cache = std::mem::take(&mut unsafe { sched.local() }.stack_cache);
    let mut cache = cache;
    vm.stacks.release_batch(&mut cache);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        /// Allocations made by this thread (see [`Counting`]).
        static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    }

    /// The system allocator, counting each thread's allocations (this test
    /// binary's global allocator; other tests only pay the count).
    struct Counting;

    // SAFETY: forwards to `System`; the count is a thread-local `Cell`.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
            // SAFETY: the caller's guarantee on `layout`.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` came from `alloc` above with `layout`.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    /// A local run queue swinging between empty and overfull (every
    /// fan-out) never reallocates its buffer. Each reallocation of a
    /// crossbeam deque's buffer pinned the epoch and ran deferred frees,
    /// several KiB deep on the spawning process's stack: with the old bound
    /// of 256 the buffer grew past 256 and shrank as it drained, round
    /// after round, and skynet's process stacks kept three pages resident
    /// instead of one.
    #[test]
    fn a_swinging_local_queue_never_reallocates() {
        let worker = Worker::new_fifo();
        let mut spilled = Vec::with_capacity(100_000);
        let before = ALLOCATIONS.with(Cell::get);
        for _ in 0..20 {
            for i in 1..=1000usize {
                push_bounded(&worker, ProcPtr(i as *mut Process), |x| spilled.push(x));
                assert!(worker.len() <= LOCAL_MAX);
            }
            while worker.pop().is_some() {}
            spilled.clear();
        }
        let allocations = ALLOCATIONS.with(Cell::get) - before;
        assert_eq!(allocations, 0, "the queue's buffer was reallocated");
    }
}
