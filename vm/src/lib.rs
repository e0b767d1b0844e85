//! `caravan-vm`: processes, scheduling, memory, mailboxes, timers and the
//! runtime functions that Caravan's generated code calls.
//!
//! The contract with generated code is `docs/vm-abi.md`: value layout
//! ([`value`]), the [`Process`] struct's fixed fields, the `caravan_rt_*`
//! functions ([`runtime`], listed by [`symbols`]) and the entry trampoline
//! ([`EntryFn`]). The host (the CLI) calls [`run`].
//!
//! The model is the BEAM's: isolated processes with private heaps
//! ([`heap`]), messages deep-copied into heap fragments, selective receive,
//! preemption by reduction counting ([`CONTEXT_REDS`] = 4000 per slice),
//! on a multicore work-stealing scheduler ([`scheduler`]) with Go's
//! `runnext`. Processes are stackful, on native stacks carved from large
//! reservations ([`stack`]), switched by a six-register context switch.

pub mod abi;
pub mod context;
pub mod dist;
pub mod exn;
pub mod gc;
pub mod heap;
pub mod io;
pub mod locations;
pub mod net;
pub mod otp_api;
pub mod process;
pub mod safepoint;
pub mod scheduler;
pub mod signals;
pub mod stack;
pub mod stackgrow;
pub mod term;
pub mod timers_api;
pub mod value;

pub use abi::*;
pub use heap::alloc::{alloc_block, alloc_float, alloc_string, alloc_string_uninit};
pub use heap::{literal_block, literal_string};
pub use io::{observe_crashes, CrashObserver};
pub use io::{stderr_write, stdout_flush, stdout_write};
pub use process::{pid_of_serial, serial_of_pid, ExitReason, Process, CONTEXT_REDS};
pub use safepoint::{
    at_exit, blocking_section, crash_process, deadline_after, exit_reason_of_value,
    exit_reason_value, is_alive, now_ms, FOREVER_MS,
};
pub use signals::{
    caravan_rt_alive, caravan_rt_demonitor, caravan_rt_exit_signal, caravan_rt_link,
    caravan_rt_monitor, caravan_rt_spawn_link, caravan_rt_trap_exits, TAG_MONITOR,
};
pub use value::Value;

use std::sync::Arc;

/// The compiled entry trampoline: `entry(proc, closure, arg)` applies
/// `closure` to `arg` (docs/vm-abi.md, "Entering generated code"). Every
/// process runs `entry(proc, closure, self_pid)`; the main process runs
/// `entry(proc, main_closure, unit)`. When it returns the process exits
/// `Normal`.
pub type EntryFn = unsafe extern "C" fn(*mut Process, Value, Value) -> Value;

/// Exit status when the VM itself failed (a scheduler thread panicked or
/// could not start): `EX_SOFTWARE`.
pub const EXIT_VM_FAILURE: i32 = 70;

/// How long [`run`] waits, once the program is over, for scheduler threads
/// to finish their current slice before returning without them.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// How long [`run`] lets a program run before it starts the sysmon thread
/// (half of its 10 ms tick).
const SYSMON_DELAY: std::time::Duration = std::time::Duration::from_millis(5);

/// VM configuration.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// Scheduler threads (`--schedulers N`); at least 1. Default: the
    /// number of available cores.
    pub schedulers: usize,
    /// Bytes per process stack slot, guard page included (rounded up to
    /// pages, at least [`stack::MIN_STACK_SIZE`]). Default 128 KiB; deeper
    /// recursion grows the stack ([`stackgrow`]).
    pub stack_size: usize,
    /// Every process's heap limit in words (Erlang's `max_heap_size`;
    /// `caravan run --max-heap-mb N`), 0 for none (the default, as
    /// Erlang's). Past it a process crashes with `Crashed "heap limit"`
    /// (see [`gc`]); `Process.spawn_limited` sets it for one process.
    pub max_heap_words: usize,
    /// Every process's whole-stack limit in bytes (`caravan run
    /// --max-stack-mb N`): a process starts on a `stack_size` slot and
    /// moves to a grown stack of this size when it recurses deeper
    /// ([`stackgrow`]); past it, `Crashed "stack overflow"`. Default
    /// 1 GiB, as OCaml 5's. At most `stack_size`: stacks never grow.
    pub max_stack_size: usize,
    /// A deterministic schedule (`caravan test --schedules N`): one
    /// scheduler thread whose choices of which process runs and where it
    /// is preempted all come from this seed, and virtual time (see
    /// [`scheduler::now`]). `None` (the default): the multicore scheduler.
    pub schedule_seed: Option<u64>,
    /// The host ends the OS process as soon as [`run`] returns (the CLI's
    /// `caravan run` calls `_exit`). The schedulers then stop without
    /// freeing the processes left, and `run` returns once they stopped,
    /// without joining its threads or freeing the VM: the process's exit
    /// frees it all at once. Freeing it first cost hello world ~0.1 ms:
    /// each exiting thread unmaps its signal stack and glibc releases its
    /// stack's pages, then the stack region is unmapped, and each of
    /// these flushes the TLBs of the other cores. Default `false`: a host
    /// that goes on (the REPL, tests) gets everything freed.
    pub host_exits: bool,
}

/// How the VM gives memory its processes freed back to the system, set
/// once by the program that embeds it (the CLI: mimalloc's `mi_collect`,
/// which frees the calling thread's empty pages and purges them at once).
/// A scheduler calls it on its own thread when it has had nothing to run
/// for [`IDLE_RELEASE_MS`]: the allocator keeps freed pages for reuse and
/// would otherwise only return them on a later allocation, so a server
/// that went quiet after a burst of processes kept the burst's memory
/// (Go's background scavenger returns idle memory for the same reason).
pub fn set_memory_release(release: fn()) {
    let _ = MEMORY_RELEASE.set(release);
}

static MEMORY_RELEASE: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// The function set by [`set_memory_release`], if any.
pub(crate) fn memory_release() -> Option<fn()> {
    MEMORY_RELEASE.get().copied()
}

/// Milliseconds a scheduler stays idle before it gives freed memory back
/// ([`set_memory_release`]): long enough that a scheduler which idles
/// between messages (ping-pong, a ring) never pays for it.
pub const IDLE_RELEASE_MS: u32 = 100;

/// The CPUs this process may use (`std::thread::available_parallelism`,
/// 1 if unknown), read once: each read opens the cgroup's CPU quota files
/// (about 20 system calls), and a run asked three times.
pub fn available_cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            schedulers: available_cores(),
            stack_size: stack::DEFAULT_STACK_SIZE,
            max_heap_words: 0,
            max_stack_size: stackgrow::DEFAULT_MAX_STACK,
            schedule_seed: None,
            host_exits: false,
        }
    }
}

/// Runs a program: starts the schedulers, runs `entry(main, main_closure,
/// ())` as the main process, and returns the exit status when the program
/// ends: 0 when the main process returns, 1 when it ends otherwise (a
/// crash, after its crash line, or an exit signal), or the status given to
/// `caravan_rt_exit`. Other processes are stopped and freed; stdout is
/// flushed.
///
/// `main_closure` is passed as is (not copied): it must stay valid until
/// `run` returns — typically a static block or one made with
/// [`literal_block`].
pub fn run(config: VmConfig, entry: EntryFn, main_closure: Value) -> i32 {
    // The program is queued before any scheduler thread exists, so the
    // first one finds it as soon as it starts; the others are made while
    // it runs (making a thread costs the maker 50-100 µs here).
    let mut rt = Runtime::prepare(config, entry);
    rt.vm.start_process(main_closure, scheduler::Host::Main);
    rt.spawn_schedulers(usize::MAX);
    // The sysmon thread's first look is 10 ms away anyway, so it is only
    // started once the program has run for half of that: a program that
    // ends sooner (hello world) never pays for the thread, and one that
    // runs on gets its first look when it would have.
    if !rt.vm.wait_exit_requested_for(SYSMON_DELAY) {
        rt.start_sysmon_after(SYSMON_DELAY);
        rt.vm.wait_exit_requested();
    }
    if rt.vm.host_exits {
        rt.stop_for_exit()
    } else {
        rt.shutdown()
    }
}

/// A VM that stays up between evaluations (for the REPL): processes
/// spawned by one phrase keep running while the host reads the next.
///
/// ```ignore
/// let rt = Runtime::start(VmConfig::default(), entry);
/// let stop = rt.interrupter();          // e.g. for a Ctrl-C handler thread
/// match rt.eval(phrase_closure) { Outcome::Exit(status) => .., _ => .. }
/// let status = rt.shutdown();
/// ```
pub struct Runtime {
    vm: Arc<scheduler::Vm>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// The run queues of the schedulers whose threads are not started yet
    /// (the next indexes after `threads`).
    unstarted: Vec<crossbeam_deque::Worker<scheduler::ProcPtr>>,
    sysmon: Option<std::thread::JoinHandle<()>>,
    failed: bool,
}

/// How an [`Runtime::eval`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The closure returned.
    Returned,
    /// The process ended otherwise: a crash (its line is printed), an exit
    /// signal, or [`Interrupter::interrupt`] (`Killed`).
    Ended(ExitReason),
    /// `caravan_rt_exit` was called: the program must end with this status
    /// (call [`Runtime::shutdown`]).
    Exit(i32),
}

/// What [`Runtime::processes`] tells of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Serial number (`<0.SERIAL>`).
    pub serial: u64,
    /// `runnable`, `running` or `waiting`.
    pub status: &'static str,
    /// Messages in its mailbox.
    pub mailbox: usize,
    /// Reductions used in completed slices (known while it waits).
    pub reductions: Option<u64>,
    /// Heap size in words (known while it waits).
    pub heap_words: Option<usize>,
}

/// Interrupts the evaluation in progress of a [`Runtime`] from any thread.
#[derive(Clone)]
pub struct Interrupter(Arc<scheduler::Vm>);

impl Interrupter {
    /// Ends the process of the evaluation in progress (if any) with
    /// `Killed`, at its next safepoint: even an endless loop is stopped.
    pub fn interrupt(&self) {
        self.0.interrupt_eval();
    }
}

impl Runtime {
    /// Starts the schedulers (idle until something runs) and the sysmon
    /// thread.
    pub fn start(config: VmConfig, entry: EntryFn) -> Runtime {
        let mut rt = Runtime::start_schedulers(config, entry);
        rt.start_sysmon();
        rt
    }

    /// Starts the schedulers only ([`Runtime::start_sysmon`] is to follow).
    fn start_schedulers(config: VmConfig, entry: EntryFn) -> Runtime {
        let mut rt = Runtime::prepare(config, entry);
        rt.spawn_schedulers(usize::MAX);
        rt
    }

    /// Makes the VM without starting any thread
    /// ([`Runtime::spawn_schedulers`] starts them).
    fn prepare(config: VmConfig, entry: EntryFn) -> Runtime {
        use crossbeam_deque::Worker;
        stack::install_fault_handler();
        let det = config.schedule_seed.is_some();
        let n = if det { 1 } else { config.schedulers.max(1) };
        let workers: Vec<Worker<scheduler::ProcPtr>> = (0..n).map(|_| Worker::new_fifo()).collect();
        let stealers = workers.iter().map(|w| w.stealer()).collect();
        let mut vm = scheduler::Vm::new(entry, stealers, config.stack_size, config.max_heap_words);
        vm.schedule_seed = config.schedule_seed;
        vm.host_exits = config.host_exits;
        vm.max_stack = config.max_stack_size.next_multiple_of(stack::PAGE);
        let vm = Arc::new(vm);
        dist::attach(&vm);
        Runtime {
            vm,
            threads: Vec::with_capacity(n),
            unstarted: workers,
            sysmon: None,
            failed: false,
        }
    }

    /// Starts the threads of up to `count` more schedulers, in index
    /// order. A scheduler that starts after work was queued finds it before
    /// it first parks.
    fn spawn_schedulers(&mut self, count: usize) {
        let take = count.min(self.unstarted.len());
        for w in self.unstarted.drain(..take).collect::<Vec<_>>() {
            let i = self.threads.len();
            let vm2 = self.vm.clone();
            let t = std::thread::Builder::new()
                .name(format!("caravan-sched-{i}"))
                .spawn(move || scheduler::scheduler_main(vm2, i, w));
            match t {
                Ok(t) => self.threads.push(t),
                Err(_) => {
                    self.failed = true;
                    self.unstarted.clear();
                    self.vm.request_exit(EXIT_VM_FAILURE);
                    return;
                }
            }
        }
    }

    /// Starts the sysmon thread. Without it the VM still works; only stuck
    /// schedulers stay stuck. A deterministic schedule has none: its one
    /// thread decides alone.
    fn start_sysmon(&mut self) {
        self.start_sysmon_after(std::time::Duration::ZERO);
    }

    /// [`Runtime::start_sysmon`] `late` after the VM started: its first
    /// look comes as soon after the start as for one started at once.
    fn start_sysmon_after(&mut self, late: std::time::Duration) {
        if self.vm.schedule_seed.is_some() {
            return;
        }
        let vm2 = self.vm.clone();
        let first = scheduler::SYSMON_TICK.saturating_sub(late);
        self.sysmon = std::thread::Builder::new()
            .name("caravan-sysmon".into())
            .stack_size(64 << 10)
            .spawn(move || scheduler::sysmon_main(vm2, first))
            .ok();
    }

    /// Runs `entry(proc, closure, ())` in a new process and waits until it
    /// ends. `closure` must stay valid until then (it is not copied).
    ///
    /// What the process made that would die with it — `Store` tables,
    /// sockets, anything registered with [`at_exit`] — outlives it when it
    /// returns: it belongs to the session (the REPL's `let s =
    /// Store.create ()` is usable in the next phrase), as ETS tables made
    /// in the Erlang shell belong to the shell. When it crashes or is
    /// interrupted, its exit hooks run as for any process.
    pub fn eval(&self, closure: Value) -> Outcome {
        let serial = self.vm.start_process(closure, scheduler::Host::Eval);
        let r = self.vm.wait_eval(serial);
        io::stdout_flush();
        r
    }

    /// The live processes, for introspection (the REPL's `:processes`).
    pub fn processes(&self) -> Vec<ProcessInfo> {
        self.vm.process_infos()
    }

    /// A handle to interrupt evaluations from another thread.
    pub fn interrupter(&self) -> Interrupter {
        Interrupter(self.vm.clone())
    }

    /// Stops every process and the schedulers; returns the exit status
    /// (that of `caravan_rt_exit` if it was called, else 0).
    pub fn shutdown(self) -> i32 {
        let Runtime {
            vm,
            threads,
            sysmon,
            mut failed,
            ..
        } = self;
        vm.request_exit(0);
        dist::stop();
        if let Some(s) = sysmon {
            let _ = s.join();
        }
        if vm.wait_stopped(threads.len(), SHUTDOWN_GRACE) {
            for t in threads {
                if t.join().is_err() {
                    failed = true;
                    vm.request_exit(EXIT_VM_FAILURE);
                }
            }
            vm.cleanup();
        }
        // Else a scheduler is stuck in a blocking system call: leave it (and
        // every process) be; the host is about to exit.
        let status = vm
            .exit_status()
            .unwrap_or(if failed { EXIT_VM_FAILURE } else { 0 });
        drop(vm);
        io::stdout_flush();
        status
    }

    /// [`Runtime::shutdown`] for a host that exits right after
    /// ([`VmConfig::host_exits`]): stops the schedulers (each parks for
    /// good once it stopped running processes) and flushes the output, but
    /// frees nothing and joins no thread. Returns the exit status.
    fn stop_for_exit(self) -> i32 {
        let Runtime {
            vm,
            threads,
            sysmon,
            failed,
            ..
        } = self;
        vm.request_exit(0);
        dist::stop();
        // A scheduler stuck in a blocking system call is left be, as in
        // `shutdown`.
        vm.wait_stopped(threads.len(), SHUTDOWN_GRACE);
        let status = vm
            .exit_status()
            .unwrap_or(if failed { EXIT_VM_FAILURE } else { 0 });
        io::stdout_flush();
        // The threads and the VM end with the OS process.
        std::mem::forget((threads, sysmon, vm));
        status
    }
}

/// `(name, address)` of every `caravan_rt_*` runtime function, for the
/// JIT's symbol lookup.
pub fn symbols() -> Vec<(&'static str, *const u8)> {
    let mut s = abi::symbol_table();
    s.extend(timers_api::symbols());
    s.extend(otp_api::symbols());
    s.extend(net::tcp::symbols());
    s.extend(dist::api::symbols());
    s
}
