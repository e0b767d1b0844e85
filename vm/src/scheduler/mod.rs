//! Schedulers, run queues, parking, timers and the process table
//! (architecture decision 6).
//!
//! * One OS thread per scheduler, each with a `crossbeam_deque::Worker`
//!   (FIFO: a yielding process goes to the back), a global `Injector`, and
//!   stealing between schedulers (`steal_batch_and_pop`, random victim).
//! * A `runnext` slot per scheduler (Go's `runnext`): a process woken or
//!   spawned by the running process runs next on the same thread, and
//!   inherits the rest of the time slice, so two processes ping-ponging
//!   cannot starve the local queue (Go does the same).
//! * Idle schedulers steal, spin briefly, then park on a condvar; pushing
//!   stealable work wakes one parked scheduler (SeqCst fences on both
//!   sides, so a push racing with a park is never missed).
//! * Timers (receive `after`, `sleep`, call timeouts): a binary heap per
//!   scheduler with lazy cancellation (each entry names the wait it was set
//!   for, `Shared::wait_seq`); a parked scheduler sleeps until its next
//!   deadline at most.
//! * The wake-up protocol: a process that must block switches to its
//!   scheduler with a `Request::Wait`; the scheduler — off the process's
//!   stack — locks the mailbox, re-checks the condition, and only then marks
//!   it `Waiting` and parks the `Process` pointer in the shared part. A
//!   sender pushes under the same lock and takes the process out if it was
//!   waiting for that event, so no message is lost between "mailbox empty"
//!   and "park".

use crate::context;
use crate::io::report_crash;
use crate::process::{
    ExitHook, ExitReason, ProcState, Process, Request, Shared, WaitKind, Watcher, CONTEXT_REDS,
};
use crate::stack::StackPool;
use crate::term::{CopyScratch, WordMap};
use crate::value::Value;
use crate::EntryFn;
use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use std::cell::UnsafeCell;
use std::collections::BinaryHeap;
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

mod det;
mod netpoll;
mod park;
mod stackpark;
mod sysmon;
mod table;
mod timers;
mod worker;

pub use det::{now, schedule_seed, virtual_ms};
pub(crate) use park::Parker;
pub use stackpark::stack_stats;
pub(crate) use sysmon::{sysmon_main, SYSMON_TICK};
pub(crate) use table::{DeadTable, ProcTable};
pub(crate) use timers::Timer;
pub use worker::Scheduler;
pub(crate) use worker::{scheduler_main, Local};

/// A process pointer in a run queue (the queue owns the process).
pub(crate) struct ProcPtr(pub *mut Process);
// SAFETY: a queued process is owned by the queue and moves between threads
// with it; nobody else touches it meanwhile.
unsafe impl Send for ProcPtr {}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The part of a scheduler that the sysmon (and only it, besides the
/// owner) touches: `runnext`, the timers, and activity counters.
pub(crate) struct Slot {
    runnext: AtomicPtr<Process>,
    timers: Mutex<TimerHeap>,
    /// Entries in `timers` (read without the lock).
    timer_count: AtomicUsize,
    /// Processes switched in so far (written by the owner only).
    switches: AtomicU64,
    /// A process is switched in right now.
    running: AtomicBool,
    /// The last batch of parked stacks whose pages this scheduler has
    /// released (`stackpark`).
    parks_released: AtomicU64,
    /// Set by [`Vm::notify_one`] when it wakes this scheduler to look
    /// for work: it starts out counted in `Vm::num_spinning`.
    woken_to_spin: AtomicBool,
}

pub(crate) struct TimerHeap {
    heap: BinaryHeap<Timer>,
    purge_at: usize,
}

impl Slot {
    fn new() -> Self {
        Slot {
            runnext: AtomicPtr::new(std::ptr::null_mut()),
            timers: Mutex::new(TimerHeap {
                heap: BinaryHeap::new(),
                purge_at: 256,
            }),
            timer_count: AtomicUsize::new(0),
            switches: AtomicU64::new(0),
            running: AtomicBool::new(false),
            parks_released: AtomicU64::new(0),
            woken_to_spin: AtomicBool::new(false),
        }
    }
}

/// Whether the host waits for a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Host {
    None,
    /// The program's main process: its end ends the program.
    Main,
    /// A [`crate::Runtime::eval`] in progress.
    Eval,
}

/// The state shared by all schedulers of one [`crate::run`].
/// The allocation of a process that ended, dropped in place: memory for
/// the next spawn, with nothing in it; and, when one was free, a shared
/// part reset for a new process (so a core that spawns gets back the
/// shared parts of the processes that ended on another, instead of
/// allocating while that one frees).
pub(crate) struct DeadProcess(
    pub(crate) Box<std::mem::MaybeUninit<Process>>,
    pub(crate) Option<Arc<Shared>>,
);

// SAFETY: the box holds no value (the process was dropped in place), only
// memory from the global allocator, which any thread may reuse or free.
unsafe impl Send for DeadProcess {}

pub struct Vm {
    pub(crate) entry: EntryFn,
    /// Every new process's heap limit in words (0: none).
    pub(crate) max_heap_words: usize,
    /// Every process's whole-stack limit in bytes (`crate::stackgrow`;
    /// at most the slot size: stacks never grow).
    pub(crate) max_stack: usize,
    /// The I/O poller and the sockets (`None` if the system refused an
    /// epoll instance).
    pub(crate) net: Option<crate::net::Net>,
    injector: Injector<ProcPtr>,
    stealers: Vec<Stealer<ProcPtr>>,
    slots: Vec<Padded<Slot>>,
    parkers: Vec<Parker>,
    sleepers: Padded<Mutex<Vec<usize>>>,
    num_sleeping: Padded<AtomicUsize>,
    /// Schedulers looking for work without having found any yet (Go's
    /// `nmspinning`): while one is, new work wakes nobody else.
    num_spinning: Padded<AtomicUsize>,
    /// Schedulers awake at once, at most, unless one blocks in a system
    /// call: the CPUs this process may use (Go's `GOMAXPROCS`; the other
    /// schedulers are its spare threads).
    max_awake: usize,
    shutdown: AtomicBool,
    exit_status: Mutex<Option<i32>>,
    /// Schedulers that stopped, and when shutdown was requested.
    done: Mutex<(usize, Option<Instant>)>,
    done_cv: Condvar,
    pub(crate) table: ProcTable,
    dead: DeadTable,
    pub(crate) stacks: StackPool,
    /// Timers handed over by schedulers entering a blocking section; any
    /// scheduler fires them.
    orphans: Mutex<TimerHeap>,
    orphan_count: Padded<AtomicUsize>,
    /// Allocations of ended processes that a scheduler's own cache had no
    /// room for, for the schedulers whose caches run dry: Go's global
    /// list of free goroutines (`sched.gFree`) behind the per-P lists.
    /// When processes end on another scheduler than the one spawning
    /// them, their memory comes back here in batches instead of being
    /// freed on one thread and allocated anew on the other.
    pub(crate) proc_pool: Mutex<Vec<DeadProcess>>,
    /// `proc_pool`'s length, set under its lock: read without it, so that
    /// a spawn does not lock an empty pool.
    pub(crate) proc_pool_len: AtomicUsize,
    /// Next unallocated serial. Schedulers take blocks of
    /// [`SERIAL_BLOCK`], so this atomic is touched once per block.
    next_serial: Padded<AtomicU64>,
    next_monitor: AtomicU64,
    /// Ends of processes the host waits for (`Host::Eval`).
    host_done: Mutex<WordMap<(ExitReason, bool)>>,
    host_cv: Condvar,
    /// Serial of the evaluation in progress (0: none).
    current_eval: AtomicU64,
    /// Exit hooks of REPL phrases that returned (`Host::Eval`): the
    /// session owns what they made (see `Scheduler::finish`); never run.
    session_hooks: Mutex<Vec<ExitHook>>,
    /// A deterministic schedule's seed (`VmConfig::schedule_seed`).
    pub(crate) schedule_seed: Option<u64>,
    /// When the VM was made (the origin of [`Vm::coarse_ms`]).
    started: Instant,
    /// Milliseconds since `started`, advanced by sysmon (see
    /// [`Vm::coarse_ms`]).
    coarse_ms: Padded<std::sync::atomic::AtomicU32>,
    /// A process blocked this long (ms) has its stack parked (`stackpark`):
    /// [`stackpark::PARK_AFTER_MS`], or `CARAVAN_PARK_AFTER_MS`; `u32::MAX`
    /// (never) with `CARAVAN_NO_STACK_PARK=1`, only to measure the cost.
    park_after_ms: u32,
    /// [`crate::VmConfig::host_exits`]: a stopped scheduler parks for good
    /// instead of freeing its processes and ending its thread.
    pub(crate) host_exits: bool,
}

/// Why a `call` fails when its callee exits `Normal` without replying.
pub const CALL_NO_REPLY: &str = "call: callee exited without replying";

/// Serials a scheduler takes from the VM at a time.
pub(crate) const SERIAL_BLOCK: u64 = 64;

/// Keeps a written-to atomic on its own cache line (away from read-mostly
/// fields): false sharing between schedulers costs more than the work.
#[repr(align(128))]
pub(crate) struct Padded<T>(pub T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl Vm {
    pub(crate) fn new(
        entry: EntryFn,
        stealers: Vec<Stealer<ProcPtr>>,
        stack_size: usize,
        max_heap_words: usize,
    ) -> Self {
        let n = stealers.len();
        Vm {
            max_heap_words,
            max_stack: crate::stackgrow::DEFAULT_MAX_STACK,
            net: crate::net::Net::new(),
            entry,
            injector: Injector::new(),
            slots: (0..n).map(|_| Padded(Slot::new())).collect(),
            stealers,
            parkers: (0..n).map(|_| Parker::new()).collect(),
            sleepers: Padded(Mutex::new(Vec::with_capacity(n))),
            num_sleeping: Padded(AtomicUsize::new(0)),
            num_spinning: Padded(AtomicUsize::new(0)),
            max_awake: crate::available_cores().clamp(1, n.max(1)),
            shutdown: AtomicBool::new(false),
            exit_status: Mutex::new(None),
            done: Mutex::new((0, None)),
            done_cv: Condvar::new(),
            table: ProcTable::new(),
            dead: DeadTable::new(),
            stacks: StackPool::new(stack_size),
            orphans: Mutex::new(TimerHeap {
                heap: BinaryHeap::new(),
                purge_at: usize::MAX,
            }),
            orphan_count: Padded(AtomicUsize::new(0)),
            proc_pool: Mutex::new(Vec::new()),
            proc_pool_len: AtomicUsize::new(0),
            next_serial: Padded(AtomicU64::new(1)),
            next_monitor: AtomicU64::new(1),
            host_done: Mutex::new(WordMap::default()),
            host_cv: Condvar::new(),
            current_eval: AtomicU64::new(0),
            session_hooks: Mutex::new(Vec::new()),
            schedule_seed: None,
            started: Instant::now(),
            coarse_ms: Padded(std::sync::atomic::AtomicU32::new(0)),
            park_after_ms: if std::env::var_os("CARAVAN_NO_STACK_PARK").is_some_and(|v| v == "1") {
                u32::MAX
            } else {
                std::env::var("CARAVAN_PARK_AFTER_MS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(stackpark::PARK_AFTER_MS)
                    .min(u32::MAX / 4)
            },
            host_exits: false,
        }
    }

    /// Creates and queues a process running `entry(proc, closure, ())` for
    /// the host; returns its serial.
    pub(crate) fn start_process(&self, closure: Value, host: Host) -> u64 {
        let serial = self.alloc_serials(1);
        let p = self.new_process(serial);
        // SAFETY: a fresh process nobody else knows of yet.
        unsafe {
            (*p).init_closure = closure;
            (*p).init_arg = crate::value::UNIT;
            (*p).host = host;
        }
        if host == Host::Eval {
            self.current_eval.store(serial, Ordering::SeqCst);
        }
        self.push_injector(p);
        serial
    }

    /// Waits for the end of the host-watched process `serial`.
    pub(crate) fn wait_eval(&self, serial: u64) -> crate::Outcome {
        let mut d = lock(&self.host_done);
        let out = loop {
            // First: `caravan_rt_exit` also ends its own process normally.
            if self.shutdown.load(Ordering::SeqCst) {
                d.remove(&serial);
                break crate::Outcome::Exit(self.exit_status().unwrap_or(0));
            }
            if let Some((r, _crashed)) = d.remove(&serial) {
                break if r.is_normal() {
                    crate::Outcome::Returned
                } else {
                    crate::Outcome::Ended(r)
                };
            }
            d = self.host_cv.wait(d).unwrap_or_else(|e| e.into_inner());
        };
        let _ = self
            .current_eval
            .compare_exchange(serial, 0, Ordering::SeqCst, Ordering::SeqCst);
        out
    }

    /// Waits until the program's end is requested (main process over, or
    /// `caravan_rt_exit`).
    pub(crate) fn wait_exit_requested(&self) {
        let mut d = lock(&self.host_done);
        while !self.shutdown.load(Ordering::SeqCst) {
            d = self.host_cv.wait(d).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// [`Vm::wait_exit_requested`] for at most `limit`; true if the exit
    /// was requested.
    pub(crate) fn wait_exit_requested_for(&self, limit: std::time::Duration) -> bool {
        let until = Instant::now() + limit;
        let mut d = lock(&self.host_done);
        while !self.shutdown.load(Ordering::SeqCst) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            d = self
                .host_cv
                .wait_timeout(d, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    fn report_to_host(&self, serial: u64, reason: ExitReason, crashed: bool) {
        lock(&self.host_done).insert(serial, (reason, crashed));
        self.host_cv.notify_all();
    }

    /// Ends the evaluation in progress with `Killed` (from any thread).
    /// A snapshot of the live processes: state and mailbox length always;
    /// reductions and heap size of waiting processes (whose `Process` is
    /// parked under the lock, so nothing runs it meanwhile).
    pub(crate) fn process_infos(&self) -> Vec<crate::ProcessInfo> {
        let mut out = vec![];
        for (serial, sh) in self.table.all() {
            let g = sh.lock();
            let status = match g.state {
                ProcState::Runnable => "runnable",
                ProcState::Running => "running",
                ProcState::Waiting => "waiting",
                ProcState::Exited => continue,
            };
            let mut mailbox = g.inbox.len();
            let (mut reductions, mut heap_words) = (None, None);
            if g.state == ProcState::Waiting && !g.proc.is_null() {
                // SAFETY: a waiting process is parked in `Inner::proc` and
                // only resumed by whoever takes it out under this lock.
                let p = unsafe { &*g.proc };
                mailbox += p.queue.len();
                reductions = Some(p.reds_done);
                heap_words = Some(p.heap.words());
            }
            out.push(crate::ProcessInfo {
                serial,
                status,
                mailbox,
                reductions,
                heap_words,
            });
        }
        out.sort_by_key(|i| i.serial);
        out
    }

    pub(crate) fn interrupt_eval(&self) {
        let serial = self.current_eval.load(Ordering::SeqCst);
        if serial == 0 {
            return;
        }
        let Some(sh) = self.table.get(serial) else {
            return;
        };
        let p = {
            let mut g = sh.lock();
            if g.state == ProcState::Exited {
                return;
            }
            crate::signals::kill_locked(&sh, &mut g, ExitReason::Killed)
        };
        if !p.is_null() {
            self.push_injector(p);
        }
    }

    /// Hands scheduler `i`'s `runnext` and timers to the others and wakes
    /// one to steal its queue: `i` is (about to be) stuck in one slice — a
    /// blocking system call, a very long runtime call (Go's `handoffp`).
    pub(crate) fn handoff(&self, i: usize) {
        let slot = &self.slots[i];
        let rn = slot.runnext.swap(std::ptr::null_mut(), Ordering::AcqRel);
        if slot.timer_count.load(Ordering::Relaxed) > 0 {
            let mut t = lock(&slot.timers);
            let mut o = lock(&self.orphans);
            let moved: Vec<Timer> = t.heap.drain().collect();
            o.heap.extend(moved);
            slot.timer_count.store(0, Ordering::Relaxed);
            self.orphan_count.store(o.heap.len(), Ordering::Relaxed);
        }
        if !rn.is_null() {
            self.injector.push(ProcPtr(rn));
        }
        // Wake one even if no work moved: a parked scheduler must learn the
        // new earliest deadline.
        self.wake_one();
        if self.has_work() {
            self.wake_one();
        }
    }

    /// A fresh monitor reference (unique in this VM).
    pub(crate) fn next_monitor_ref(&self) -> u64 {
        self.next_monitor.fetch_add(1, Ordering::Relaxed)
    }

    /// Allocates `n` consecutive serials; returns the first.
    pub(crate) fn alloc_serials(&self, n: u64) -> u64 {
        self.next_serial.fetch_add(n, Ordering::Relaxed)
    }

    /// Creates a process with `serial` (not yet queued) and registers it in
    /// the table.
    pub(crate) fn new_process(&self, serial: u64) -> *mut Process {
        self.new_process_in(serial, Box::new_uninit(), None)
    }

    /// [`Vm::new_process`] in the allocation `mem` (fresh, or one a
    /// scheduler kept from a process that ended), with `shared` for its
    /// shared part if given (a fresh one a scheduler kept, see
    /// `Scheduler::recycle`).
    pub(crate) fn new_process_in(
        &self,
        serial: u64,
        mut mem: Box<std::mem::MaybeUninit<Process>>,
        shared: Option<Arc<Shared>>,
    ) -> *mut Process {
        let shared = shared.unwrap_or_else(|| Arc::new(Shared::new()));
        self.table.insert(serial, shared.clone());
        let mut p = Process::new(serial, self, shared);
        p.max_heap_words = self.max_heap_words;
        mem.write(p);
        // SAFETY: initialised just above.
        Box::into_raw(unsafe { mem.assume_init() })
    }

    pub(crate) fn push_injector(&self, p: *mut Process) {
        self.injector.push(ProcPtr(p));
        self.notify_one();
    }

    /// After new stealable work: wakes one parked scheduler to look for
    /// it, unless a scheduler is looking for work already (it will find
    /// this too) — Go's `wakep`: at most one scheduler is woken per burst
    /// of work, and it starts out spinning, so a burst of sends or
    /// readiness events does not wake every sleeper at once (on a machine
    /// with fewer cores than schedulers, each extra runnable thread is
    /// latency for the others).
    ///
    /// Nor is one woken while as many schedulers are awake as the process
    /// has CPUs (`max_awake`): more threads than cores only take turns on
    /// them, and a process whose scheduler waits for its turn waits with
    /// it (`--schedulers 8` on 2 cores measured a p99 of 8-10 ms serving
    /// HTTP, against 2 ms). A scheduler entering a blocking system call
    /// wakes a replacement past this cap ([`Vm::handoff`]).
    #[inline]
    fn notify_one(&self) {
        fence(Ordering::SeqCst);
        let sleeping = self.num_sleeping.load(Ordering::SeqCst);
        if sleeping == 0
            || self.slots.len() - sleeping >= self.max_awake
            || self.num_spinning.load(Ordering::SeqCst) != 0
            || self
                .num_spinning
                .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            return;
        }
        match self.pop_sleeper(true) {
            Some(i) => self.unpark_scheduler(i),
            None => {
                self.num_spinning.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Wakes one parked scheduler if any, spinning or not (it must see a
    /// change of timers).
    fn wake_one(&self) {
        fence(Ordering::SeqCst);
        if self.num_sleeping.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(i) = self.pop_sleeper(false) {
            self.unpark_scheduler(i);
        }
    }

    /// Takes a scheduler off the sleepers' list; `spin`: it is told it
    /// counts as spinning. The flag is set under the list's lock, which
    /// the scheduler takes to leave the list before it reads the flag, so
    /// it cannot miss it (and leave `num_spinning` counting it forever).
    fn pop_sleeper(&self, spin: bool) -> Option<usize> {
        let mut s = lock(&self.sleepers);
        let i = s.pop();
        if let Some(i) = i {
            self.num_sleeping.fetch_sub(1, Ordering::SeqCst);
            if spin {
                self.slots[i].woken_to_spin.store(true, Ordering::SeqCst);
            }
        }
        i
    }

    /// A scheduler out of work may look for some (spin) if fewer than half
    /// the schedulers not parked are already looking (Go's `findrunnable`:
    /// `2*nmspinning < gomaxprocs-npidle`); true if it now counts as
    /// spinning.
    pub(crate) fn try_spin(&self) -> bool {
        let busy = self.slots.len() - self.num_sleeping.load(Ordering::SeqCst);
        let n = self.num_spinning.load(Ordering::SeqCst);
        2 * n < busy
            && self
                .num_spinning
                .compare_exchange(n, n + 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    /// A spinning scheduler stops looking. `found` if it found work: if it
    /// was the last one looking and more work waits, another is woken to
    /// look (Go's `resetspinning`), so parallelism still ramps up.
    pub(crate) fn stop_spinning(&self, found: bool) {
        let was = self.num_spinning.fetch_sub(1, Ordering::SeqCst);
        if found && was == 1 && self.has_work() {
            self.notify_one();
        }
    }

    fn has_work(&self) -> bool {
        !self.injector.is_empty() || self.stealers.iter().any(|s| !s.is_empty())
    }

    /// Ends the program with `status` (the first request wins): every
    /// scheduler stops at its next scheduling point.
    pub(crate) fn request_exit(&self, status: i32) {
        {
            let mut st = lock(&self.exit_status);
            if st.is_none() {
                *st = Some(status);
            }
        }
        self.shutdown.store(true, Ordering::SeqCst);
        for i in 0..self.parkers.len() {
            self.unpark_scheduler(i);
        }
        {
            let mut d = lock(&self.done);
            d.1.get_or_insert_with(Instant::now);
            self.done_cv.notify_all();
        }
        let _g = lock(&self.host_done);
        self.host_cv.notify_all();
    }

    /// Waits until all `n` schedulers stopped; after shutdown is requested,
    /// gives them `grace` to get there (a scheduler thread can be stuck in
    /// a blocking system call of a builtin, e.g. reading stdin). Returns
    /// true if they all stopped.
    pub(crate) fn wait_stopped(&self, n: usize, grace: std::time::Duration) -> bool {
        let mut d = lock(&self.done);
        loop {
            if d.0 >= n {
                return true;
            }
            d = match d.1 {
                None => self.done_cv.wait(d).unwrap_or_else(|e| e.into_inner()),
                Some(t) => {
                    let left = grace.saturating_sub(t.elapsed());
                    if left.is_zero() {
                        return false;
                    }
                    self.done_cv
                        .wait_timeout(d, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    fn scheduler_stopped(&self) {
        let mut d = lock(&self.done);
        d.0 += 1;
        self.done_cv.notify_all();
    }

    pub(crate) fn exit_status(&self) -> Option<i32> {
        *lock(&self.exit_status)
    }

    /// The exit reason of a process that is not in the table. (A serial of
    /// a block taken by a scheduler but not yet used counts as exited
    /// `Normal`: no pid with it exists.)
    pub(crate) fn dead_reason(&self, serial: u64) -> ExitReason {
        if serial == 0 || serial >= self.next_serial.load(Ordering::Relaxed) {
            return ExitReason::Noproc;
        }
        self.dead.get(serial).unwrap_or(ExitReason::Normal)
    }

    /// After all schedulers stopped: frees every process still alive.
    pub(crate) fn cleanup(&self) {
        self.close_all_sockets();
        loop {
            match self.injector.steal() {
                // SAFETY: the queue owned it; no scheduler runs any more.
                Steal::Success(ProcPtr(p)) => drop(unsafe { Box::from_raw(p) }),
                Steal::Retry => continue,
                Steal::Empty => break,
            }
        }
        for sh in self.table.drain() {
            let p = {
                let mut g = sh.lock();
                std::mem::replace(&mut g.proc, std::ptr::null_mut())
            };
            if !p.is_null() {
                // SAFETY: a waiting process is owned by its shared part.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}
