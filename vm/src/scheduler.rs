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
use crate::heap::Fragment;
use crate::io::stderr_write;
use crate::process::{
    ExitReason, Msg, ProcState, Process, Request, Shared, WaitKind, Watcher, CONTEXT_REDS,
};
use crate::stack::StackPool;
use crate::value::{CopyScratch, Value, WordMap};
use crate::EntryFn;
use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use std::cell::UnsafeCell;
use std::collections::BinaryHeap;
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// A process pointer in a run queue (the queue owns the process).
pub(crate) struct ProcPtr(pub *mut Process);
// SAFETY: a queued process is owned by the queue and moves between threads
// with it; nobody else touches it meanwhile.
unsafe impl Send for ProcPtr {}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// Process table
// ---------------------------------------------------------------------------

const TABLE_SHARDS: usize = 64;

/// Live processes by serial. Sharded by the low bits of the serial (serials
/// are sequential, so shards fill evenly). A dead process's entry is
/// removed when it exits; holders of its `Arc<Shared>` still see it as
/// `Exited`.
pub(crate) struct ProcTable {
    shards: Box<[Mutex<WordMap<Arc<Shared>>>]>,
}

impl ProcTable {
    fn new() -> Self {
        ProcTable {
            shards: (0..TABLE_SHARDS)
                .map(|_| Mutex::new(WordMap::default()))
                .collect(),
        }
    }

    #[inline]
    fn shard(&self, serial: u64) -> &Mutex<WordMap<Arc<Shared>>> {
        &self.shards[serial as usize % TABLE_SHARDS]
    }

    #[inline]
    pub(crate) fn get(&self, serial: u64) -> Option<Arc<Shared>> {
        lock(self.shard(serial)).get(&serial).cloned()
    }

    fn insert(&self, serial: u64, s: Arc<Shared>) {
        lock(self.shard(serial)).insert(serial, s);
    }

    fn remove(&self, serial: u64) {
        let old = lock(self.shard(serial)).remove(&serial);
        drop(old);
    }

    /// Every live entry (a snapshot).
    pub(crate) fn all(&self) -> Vec<(u64, Arc<Shared>)> {
        let mut out = Vec::new();
        for s in self.shards.iter() {
            out.extend(lock(s).iter().map(|(k, v)| (*k, v.clone())));
        }
        out
    }

    fn drain(&self) -> Vec<Arc<Shared>> {
        let mut out = Vec::new();
        for s in self.shards.iter() {
            out.extend(lock(s).drain().map(|(_, v)| v));
        }
        out
    }
}

const DEAD_SHARDS: usize = 16;

/// Exit reasons of dead processes, for `join` on a pid whose process is
/// gone. Only abnormal reasons are stored: a serial that was allocated and
/// is neither live nor here exited `Normal`. Never shrinks: each crashed
/// process costs one entry (about 64 bytes plus its message) for the life
/// of the VM.
struct DeadTable {
    shards: Box<[Mutex<WordMap<ExitReason>>]>,
}

impl DeadTable {
    fn new() -> Self {
        DeadTable {
            shards: (0..DEAD_SHARDS)
                .map(|_| Mutex::new(WordMap::default()))
                .collect(),
        }
    }
    fn insert(&self, serial: u64, r: ExitReason) {
        lock(&self.shards[serial as usize % DEAD_SHARDS]).insert(serial, r);
    }
    fn get(&self, serial: u64) -> Option<ExitReason> {
        lock(&self.shards[serial as usize % DEAD_SHARDS])
            .get(&serial)
            .cloned()
    }
}

// ---------------------------------------------------------------------------
// Parking
// ---------------------------------------------------------------------------

struct Parker {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Parker {
    fn new() -> Self {
        Parker {
            flag: Mutex::new(false),
            cv: Condvar::new(),
        }
    }

    fn park(&self, deadline: Option<Instant>) {
        let mut g = lock(&self.flag);
        while !*g {
            match deadline {
                None => g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    g = self
                        .cv
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        *g = false;
    }

    fn unpark(&self) {
        *lock(&self.flag) = true;
        self.cv.notify_one();
    }
}

// ---------------------------------------------------------------------------
// The VM
// ---------------------------------------------------------------------------

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
}

struct TimerHeap {
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
pub struct Vm {
    pub(crate) entry: EntryFn,
    /// Every new process's heap limit in words (0: none).
    pub(crate) max_heap_words: usize,
    injector: Injector<ProcPtr>,
    stealers: Vec<Stealer<ProcPtr>>,
    slots: Vec<Padded<Slot>>,
    parkers: Vec<Parker>,
    sleepers: Padded<Mutex<Vec<usize>>>,
    num_sleeping: Padded<AtomicUsize>,
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
    /// Next unallocated serial. Schedulers take blocks of
    /// [`SERIAL_BLOCK`], so this atomic is touched once per block.
    next_serial: Padded<AtomicU64>,
    next_monitor: AtomicU64,
    /// Ends of processes the host waits for (`Host::Eval`).
    host_done: Mutex<WordMap<(ExitReason, bool)>>,
    host_cv: Condvar,
    /// Serial of the evaluation in progress (0: none).
    current_eval: AtomicU64,
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
            entry,
            injector: Injector::new(),
            slots: (0..n).map(|_| Padded(Slot::new())).collect(),
            stealers,
            parkers: (0..n).map(|_| Parker::new()).collect(),
            sleepers: Padded(Mutex::new(Vec::with_capacity(n))),
            num_sleeping: Padded(AtomicUsize::new(0)),
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
            next_serial: Padded(AtomicU64::new(1)),
            next_monitor: AtomicU64::new(1),
            host_done: Mutex::new(WordMap::default()),
            host_cv: Condvar::new(),
            current_eval: AtomicU64::new(0),
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
        self.notify_one();
        if self.has_work() {
            self.notify_one();
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
        let shared = Arc::new(Shared::new());
        self.table.insert(serial, shared.clone());
        let mut p = Box::new(Process::new(serial, self, shared));
        p.max_heap_words = self.max_heap_words;
        Box::into_raw(p)
    }

    pub(crate) fn push_injector(&self, p: *mut Process) {
        self.injector.push(ProcPtr(p));
        self.notify_one();
    }

    /// Wakes one parked scheduler if any (after new stealable work).
    #[inline]
    fn notify_one(&self) {
        fence(Ordering::SeqCst);
        if self.num_sleeping.load(Ordering::Relaxed) == 0 {
            return;
        }
        let idx = {
            let mut s = lock(&self.sleepers);
            let i = s.pop();
            if i.is_some() {
                self.num_sleeping.fetch_sub(1, Ordering::SeqCst);
            }
            i
        };
        if let Some(i) = idx {
            self.parkers[i].unpark();
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
        for p in &self.parkers {
            p.unpark();
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

// ---------------------------------------------------------------------------
// Timers
// ---------------------------------------------------------------------------

struct Timer {
    deadline: Instant,
    seq: u64,
    shared: Arc<Shared>,
    /// A `Timer.send_after` timer: at the deadline its message goes to
    /// `shared`'s mailbox (`seq` is then the timer's id). `None`: a wake-up
    /// of `shared`'s wait `seq`.
    send: Option<Box<crate::timers_api::SendTimer>>,
}

impl PartialEq for Timer {
    fn eq(&self, o: &Self) -> bool {
        self.deadline == o.deadline && self.seq == o.seq
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Timer {
    // Reversed: BinaryHeap is a max-heap, we want the earliest deadline.
    // Ties by `seq`: `send_after` timers due at the same instant fire in
    // the order they were set.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.deadline, o.seq).cmp(&(self.deadline, self.seq))
    }
}

impl Timer {
    fn is_stale(&self) -> bool {
        match &self.send {
            Some(s) => s.is_cancelled(),
            None => self.shared.wait_seq.load(Ordering::Relaxed) != self.seq,
        }
    }
}

// ---------------------------------------------------------------------------
// Schedulers
// ---------------------------------------------------------------------------

/// Entries of a scheduler's pid cache (each keeps at most one exited
/// process's small shared part alive).
const PID_CACHE: usize = 256;
/// Stack slots a scheduler keeps for itself before returning them to the
/// pool.
const STACK_CACHE_MAX: usize = 64;
const STACK_BATCH: usize = 16;
/// Idle rounds spent spinning (then yielding) before parking.
const SPIN_ROUNDS: u32 = 8;
const YIELD_ROUNDS: u32 = 4;

/// Longest local run queue; beyond it the oldest half moves to the global
/// queue (Go's `runqput` does the same with 256). This bounds the breadth
/// of a fan-out: recent processes (deep in a spawn tree) run first instead
/// of the whole tree being spawned before any leaf runs.
const LOCAL_MAX: usize = 256;
/// Scheduling rounds between two looks at the global queue first.
const GLOBAL_EVERY: u32 = 61;

impl Local {
    /// Appends `p` to the local run queue, spilling the oldest half to the
    /// global queue when it is full.
    #[inline]
    fn enqueue(&mut self, vm: &Vm, p: *mut Process) {
        self.worker.push(ProcPtr(p));
        if self.worker.len() > LOCAL_MAX {
            for _ in 0..LOCAL_MAX / 2 {
                match self.worker.pop() {
                    Some(x) => vm.injector.push(x),
                    None => break,
                }
            }
        }
    }
}

/// Scheduler-local state. Only the owning thread touches it: the scheduler
/// loop, or a runtime function of the process it is running.
pub(crate) struct Local {
    /// Scheduling rounds (for [`GLOBAL_EVERY`]).
    ticks: u32,
    worker: Worker<ProcPtr>,
    /// Reductions left in the current slice, inherited by `runnext`.
    slice_left: i64,
    stack_cache: Vec<usize>,
    /// Recently used pids (see [`Scheduler::lookup`]).
    pid_cache: Box<[(u64, Option<Arc<Shared>>)]>,
    /// This scheduler's block of serials: next, end.
    serials: (u64, u64),
    /// Counts stack releases (for the periodic residency audit).
    audit: u32,
    /// Reusable buffers of the deep copy.
    pub(crate) copy: CopyScratch,
    /// Reusable work list of compare.
    pub(crate) cmp_work: Vec<(Value, Value)>,
    rng: u64,
}

/// One scheduler (one OS thread).
pub struct Scheduler {
    index: usize,
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
        let e = &mut l.pid_cache[serial as usize % PID_CACHE];
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
        let e = &mut l.pid_cache[serial as usize % PID_CACHE];
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
    fn slot(&self) -> &Slot {
        &self.vm().slots[self.index]
    }

    /// Makes `p` run next on this scheduler (Go's `runnext`); a process
    /// already there moves to the back of the local queue, where other
    /// schedulers may steal it.
    pub(crate) fn push_runnext(&self, p: *mut Process) {
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
    fn fire_timers(&self) -> Option<Instant> {
        let vm = self.vm();
        let slot = self.slot();
        let mine = slot.timer_count.load(Ordering::Relaxed) > 0;
        if !mine && vm.orphan_count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let now = Instant::now();
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

    fn park(&self, deadline: Option<Instant>) {
        let vm = self.vm();
        {
            let mut s = lock(&vm.sleepers);
            s.push(self.index);
            vm.num_sleeping.fetch_add(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        if !vm.has_work() && !vm.shutdown.load(Ordering::SeqCst) {
            vm.parkers[self.index].park(deadline);
        }
        self.unregister_sleeper();
    }

    /// The next process to run, and whether it comes from `runnext`.
    /// `None` when the VM shuts down.
    fn find_work(&self) -> Option<(*mut Process, bool)> {
        let vm = self.vm();
        let mut idle = 0u32;
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
            idle += 1;
            if idle <= SPIN_ROUNDS {
                for _ in 0..64 {
                    std::hint::spin_loop();
                }
            } else if idle <= SPIN_ROUNDS + YIELD_ROUNDS {
                std::thread::yield_now();
            } else {
                self.park(next_deadline);
                idle = 0;
            }
        }
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

    fn release_stack(&self, low: usize, lowest_sp: usize) {
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
            if proc.shared.kill.load(Ordering::Acquire) {
                // An exit signal ended it while it was queued.
                proc.exit_reason = Some(crate::signals::take_pending_exit(&proc.shared));
                self.finish(p);
                return;
            }
            if proc.stack_low == 0 {
                match self.take_stack() {
                    Ok(low) => {
                        proc.stack_low = low;
                        proc.stack_limit = self.vm().stacks.limit(low) as u64;
                        let top = self.vm().stacks.top(low);
                        // SAFETY: the slot is ours and unused; its top is
                        // page aligned.
                        proc.saved_sp = unsafe { context::init_stack(top, p as usize) };
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
            proc.reductions = if from_runnext {
                // SAFETY: owning thread, short borrow.
                unsafe { self.local() }.slice_left
            } else {
                CONTEXT_REDS
            };
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
        // SAFETY: owning thread, short borrow.
        unsafe { self.local() }.slice_left = proc.reductions;
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
        // SAFETY: we own `p` until it is parked below.
        let sh = unsafe { (*p).shared.clone() };
        let mut g = sh.lock();
        let ready = match kind {
            WaitKind::Receive => !g.inbox.is_empty(),
            WaitKind::Reply(r) => g.x_opt().is_some_and(|x| {
                x.replies.iter().any(|y| y.0 == r) || x.downs.iter().any(|y| y.0 == r)
            }),
            WaitKind::Join(t) => g
                .x_opt()
                .is_some_and(|x| x.join_result.as_ref().is_some_and(|y| y.0 == t)),
            WaitKind::Sleep => false,
        };
        if sh.kill.load(Ordering::Acquire) {
            // Ended by an exit signal before it could wait.
            drop(g);
            // SAFETY: still ours: it was not parked.
            unsafe { (*p).exit_reason = Some(crate::signals::take_pending_exit(&sh)) };
            self.finish(p);
            return;
        }
        if ready {
            drop(g);
            sh.state.store(ProcState::Runnable as u8, Ordering::Relaxed);
            self.push_local(p);
            return;
        }
        sh.set_state(&mut g, ProcState::Waiting);
        g.waiting_for = kind;
        g.proc = p;
        let seq = sh.wait_seq.load(Ordering::Relaxed);
        drop(g);
        // From here on `p` may already run elsewhere: do not touch it.
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
        for h in hooks {
            // A panicking hook must not take the scheduler down.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h(serial, &reason)));
        }
        for w in watchers {
            match w {
                Watcher::Join { serial: j } => {
                    let Some(sh) = self.lookup(j) else { continue };
                    let woken = {
                        let mut g = sh.lock();
                        if g.state == ProcState::Exited {
                            std::ptr::null_mut()
                        } else {
                            g.x().join_result = Some((serial, reason.clone()));
                            sh.wake_if(&mut g, |k| k == WaitKind::Join(serial))
                        }
                    };
                    if !woken.is_null() {
                        self.push_runnext(woken);
                    }
                }
                Watcher::Call {
                    serial: c,
                    reference: r,
                } => {
                    let Some(sh) = self.lookup(c) else { continue };
                    let woken = {
                        let mut g = sh.lock();
                        if g.state != ProcState::Exited && g.x().calls.contains(&r) {
                            // A callee that ends without replying fails the
                            // call, also when it ends `Normal` (LANGUAGE.md
                            // §2: never a normal exit of the caller).
                            let why = if reason.is_normal() {
                                ExitReason::crashed(CALL_NO_REPLY)
                            } else {
                                reason.clone()
                            };
                            g.x().downs.push((r, why));
                            sh.wake_if(&mut g, |k| k == WaitKind::Reply(r))
                        } else {
                            std::ptr::null_mut()
                        }
                    };
                    if !woken.is_null() {
                        self.push_runnext(woken);
                    }
                }
            }
        }
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
        if proc.stack_low != 0 {
            self.release_stack(proc.stack_low, proc.lowest_sp.min(proc.saved_sp));
            proc.stack_low = 0;
        }
        let host = proc.host;
        let crashed = proc.crashed;
        drop(proc);
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
        l.pid_cache.iter_mut().for_each(|e| e.1 = None);
    }
}

/// Sysmon period while some scheduler runs a process, and at most when
/// all are idle.
const SYSMON_TICK: std::time::Duration = std::time::Duration::from_millis(10);
const SYSMON_IDLE_TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// Body of the sysmon thread (Go's `sysmon`, reduced): a scheduler seen
/// in the same slice at two consecutive ticks is stuck (a system call
/// outside `blocking_section`, a huge copy): its `runnext` and timers are
/// handed off and parked schedulers are woken to steal its queue.
pub(crate) fn sysmon_main(vm: Arc<Vm>) {
    let n = vm.slots.len();
    let mut last = vec![u64::MAX; n];
    let mut handled = vec![false; n];
    let mut tick = SYSMON_TICK;
    loop {
        {
            let d = lock(&vm.done);
            if vm.shutdown.load(Ordering::SeqCst) {
                return;
            }
            let _ = vm.done_cv.wait_timeout(d, tick);
        }
        if vm.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let mut any_running = false;
        for i in 0..n {
            let s = &vm.slots[i];
            let switches = s.switches.load(Ordering::Relaxed);
            let running = s.running.load(Ordering::Relaxed);
            any_running |= running;
            if running && switches == last[i] {
                if !handled[i] {
                    handled[i] = true;
                    vm.handoff(i);
                } else if !vm.stealers[i].is_empty() {
                    vm.notify_one();
                }
            } else {
                handled[i] = false;
            }
            last[i] = switches;
        }
        tick = if any_running {
            SYSMON_TICK
        } else {
            (tick * 2).min(SYSMON_IDLE_TICK)
        };
    }
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
    let sched = Box::new(Scheduler {
        index,
        vm: Arc::as_ptr(&vm),
        sp: UnsafeCell::new(0),
        local: UnsafeCell::new(Local {
            worker,
            ticks: 0,
            slice_left: 0,
            stack_cache: Vec::new(),
            audit: 0,
            serials: (0, 0),
            pid_cache: (0..PID_CACHE).map(|_| (0, None)).collect(),
            copy: CopyScratch::default(),
            cmp_work: Vec::new(),
            rng: 0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D),
        }),
    });
    while let Some((p, from_runnext)) = sched.find_work() {
        sched.run(p, from_runnext);
    }
    sched.drain();
    // SAFETY: owning thread, no overlapping borrow.
    let cache = std::mem::take(&mut unsafe { sched.local() }.stack_cache);
    let mut cache = cache;
    vm.stacks.release_batch(&mut cache);
}

/// A host's observer of crashes, set once (see [`observe_crashes`]).
static CRASH_OBSERVER: std::sync::OnceLock<CrashObserver> = std::sync::OnceLock::new();

/// Called with `(serial, message, location)` of each crash before its line
/// is printed; returns `true` when the host reports the crash itself (the
/// line is then not printed).
pub type CrashObserver = fn(u64, &[u8], Option<&[u8]>) -> bool;

/// Installs the host's crash observer (the test runner, which reports the
/// crash of a test with the test's name); only the first call counts.
pub fn observe_crashes(f: CrashObserver) {
    let _ = CRASH_OBSERVER.set(f);
}

/// Prints `process <0.SERIAL> crashed: MSG at LOC` on stderr: one line,
/// whatever the message holds (newlines and other control characters are
/// escaped as OCaml escapes them: `\n`, `\t`, `\ddd`).
pub(crate) fn report_crash(serial: u64, msg: &[u8], loc: Option<&[u8]>) {
    if CRASH_OBSERVER.get().is_some_and(|f| f(serial, msg, loc)) {
        return;
    }
    let mut line = Vec::with_capacity(msg.len() + 48);
    line.extend_from_slice(format!("process <0.{serial}> crashed: ").as_bytes());
    push_escaped(&mut line, msg);
    if let Some(loc) = loc {
        line.extend_from_slice(b" at ");
        line.extend_from_slice(loc);
    }
    line.push(b'\n');
    stderr_write(&line);
}

/// Appends `msg` with control characters escaped (one line of output).
fn push_escaped(out: &mut Vec<u8>, msg: &[u8]) {
    for &c in msg {
        match c {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\r' => out.extend_from_slice(b"\\r"),
            c if c < 32 || c == 127 => out.extend_from_slice(format!("\\{c:03}").as_bytes()),
            c => out.push(c),
        }
    }
}

/// Copies `v` into a fresh fragment (nothing for immediates and literals).
/// Returns the message and the words copied, or `None` when memory for
/// the copy cannot be had (the caller crashes the process that asked,
/// with `Crashed "out of memory"` — never the VM).
///
/// # Safety
/// `v` must be a valid value of the calling process.
pub(crate) unsafe fn make_msg(scratch: &mut CopyScratch, v: Value) -> Option<(Msg, usize)> {
    use crate::heap::is_literal;
    // SAFETY: caller's guarantee on `v`.
    let words = unsafe { scratch.plan(v, is_literal) }?;
    if words == 0 {
        return Some((Msg::plain(v, None), 0));
    }
    let Some(f) = Fragment::try_new(words) else {
        scratch.trim();
        return None;
    };
    // SAFETY: the fragment has exactly the planned number of words.
    let value = unsafe { scratch.emit(f.data(), is_literal) };
    scratch.trim();
    Some((Msg::plain(value, Some(f)), words))
}

/// The crash reason of a process whose allocation cannot be had.
pub(crate) const OUT_OF_MEMORY: &str = "out of memory";
