//! The process: its ABI struct, its shared part (mailbox, state, watchers),
//! messages and exit reasons.
//!
//! A process is split in two:
//! * [`Process`] (`#[repr(C)]`, fixed ABI fields first) holds what only the
//!   process itself touches: heap, stack slot, saved stack pointer, the
//!   private part of the mailbox (messages already taken from the inbox,
//!   scanned by selective receive). It is owned by whoever runs it: a
//!   scheduler while running, a run queue while runnable, and — while it
//!   waits — the shared part's `proc` pointer, handed over under the lock
//!   to whoever wakes it.
//! * `Shared` (in an `Arc`, found through the process table by pid)
//!   holds what other processes touch, behind one mutex: the inbox, call
//!   replies, the state, the watchers (`join`, `call`) and the exit reason.
//!   Holding the `Arc` keeps it valid after the process exits, so lookups
//!   are safe against a concurrent exit.

use crate::heap::{Fragment, Heap};
use crate::value::{Value, UNIT};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Reductions per time slice (BEAM's `CONTEXT_REDS` = 4000).
pub const CONTEXT_REDS: i64 = 4000;

/// Bytes the trip point ([`Process::trip`]) rises per reduction: a slice
/// of [`CONTEXT_REDS`] spans 64 KiB of it, so on a stack with that much
/// room above its limit the slice ends exactly when its reductions do.
pub const TRIP_PER_RED: usize = 16;

/// A trip point above every stack address: the next counted function
/// entry takes the cold path.
const TRIP_NOW: usize = 1 << 62;

/// The process struct. The first four fields are read and written by
/// generated code at fixed offsets (`docs/vm-abi.md`, "The process
/// struct"); the rest is private to the VM.
#[repr(C)]
pub struct Process {
    /// Offset 0: the *trip point*, an address on the process's stack that
    /// counts reductions and checks the stack at once (the two checks of
    /// Go's `stackguard0` preemption, fused). Every function adds
    /// [`TRIP_PER_RED`] bytes to it before its first call on each path
    /// (paths that call nothing skip it) and calls its cold path when the
    /// stack pointer is below it. It never starts below `stack_limit`, so a
    /// stack overflow always takes the cold path; reductions are counted
    /// exactly there ([`Process::reds_left`]) and the slice ends when they
    /// run out (`caravan_rt_tick`). Runtime functions charge their work
    /// with [`Process::charge`].
    pub trip: usize,
    /// Offset 8: the lowest stack address generated code may use (slot low
    /// end + guard page + 64 KiB for runtime functions).
    pub stack_limit: u64,
    /// Offset 16: heap bump pointer (next free byte of the current chunk).
    pub heap_ptr: u64,
    /// Offset 24: end of the current heap chunk. Always `heap_ptr <=
    /// heap_limit` (both 0 before the first chunk): generated code's
    /// inline allocation is the one test `heap_ptr + bytes <= heap_limit`.
    pub heap_limit: u64,
    /// Offset 32: set by generated code's allocation trampoline to its own
    /// frame pointer before it calls the collecting allocator: where the
    /// collector starts walking the frames of generated code. 0 otherwise.
    pub exit_fp: u64,
    /// Offset 40: non-zero when the heap has grown past its collection
    /// threshold outside the collecting allocator (a builtin's or a runtime
    /// function's allocation, an adopted message): the trampoline that
    /// called that function collects on its way back to generated code
    /// (`caravan_rt_gc_after`).
    pub gc_pending: u64,
    // The fields one message hop touches (scheduling, switching, the
    // mailbox, the nursery's bookkeeping) come first, in the first four
    // cache lines; the rest is cold. A ring of 1,000 processes touches
    // each process once per lap, after the rest evicted it: every line it
    // touches is a miss.
    /// The value of `trip` at which the slice's reductions run out (it
    /// may lie below `trip`: the slice is overdrawn). Set with `trip` by
    /// [`Process::rebase`].
    pub(crate) reds_zero: usize,
    /// Saved stack pointer while switched out.
    pub(crate) saved_sp: usize,
    pub(crate) shared: Arc<Shared>,
    /// The scheduler currently running this process (set at each switch-in;
    /// a process migrates between schedulers when stolen).
    pub(crate) sched: *const crate::scheduler::Scheduler,
    /// Low address of the stack slot, 0 until the process first runs.
    pub(crate) stack_low: usize,
    /// Lowest stack pointer seen at a switch (decides whether the stack's
    /// pages must be released at exit).
    pub(crate) lowest_sp: usize,
    /// The stack while the process is blocked and its pages are released
    /// (`scheduler::stackpark`); copied back before it runs.
    pub(crate) parked_stack: Option<Box<ParkedStack>>,
    /// The process's grown stack (`crate::stackgrow`), `None` while it
    /// runs on its slot.
    pub(crate) grown: Option<Box<crate::stackgrow::Grown>>,
    /// Collections are skipped while this is non-zero (generated code
    /// entered from Rust, e.g. a signal wrapper run inside `recv_next`:
    /// the frames below it are not walkable).
    pub(crate) gc_inhibit: u32,
    /// Collections so far.
    pub(crate) gc_count: u32,
    /// Collect when the nursery holds this many words
    /// ([`Process::young_words`]): the nursery's size.
    pub(crate) gc_threshold: usize,
    /// Private mailbox: messages moved from the inbox, in arrival order.
    pub(crate) queue: VecDeque<Msg>,
    /// Selective receive: index in `queue` of the next message to return.
    pub(crate) cursor: usize,
    /// Index in `queue` of the message last returned by `recv_next`.
    pub(crate) last: Option<usize>,
    /// The current receive's deadline: `None` until its first `recv_next`,
    /// then `Some(None)` for no deadline.
    pub(crate) recv_deadline: Option<Option<Instant>>,
    /// What the process asks of its scheduler when it switches out.
    pub(crate) request: Request,
    pub(crate) serial: u64,
    pub(crate) vm: *const crate::scheduler::Vm,
    // Cold: collections, spawning, calls, exits (a hop allocates through
    // `heap_ptr` and `heap_limit`; `heap` is for a new chunk).
    /// The nursery: the chunks young blocks are bump-allocated in, and
    /// adopted message fragments (see `gc` for the generations).
    pub(crate) heap: Heap,
    /// Words live after the last collection (after a minor one: the
    /// survivors plus the old generation, its garbage included).
    pub(crate) gc_live: usize,
    /// Allocations through the collecting allocator since the last
    /// collection (torture mode).
    pub(crate) gc_allocs: u64,
    /// Reductions used in the slices that ran out (a slice is
    /// `CONTEXT_REDS`), for introspection.
    pub(crate) reds_done: u64,
    /// The survivor space and the old generation, from the first
    /// collection on (most processes never collect).
    pub(crate) gens: Option<Box<crate::gc::Generations>>,
    /// Blocks of `heap::LARGE_WORDS` words or more, never copied.
    pub(crate) large: crate::heap::LargeSpace,
    /// Erlang's `max_heap_size`, in words (0: no limit): past it the
    /// process crashes with `Crashed "heap limit"` (see `gc`).
    pub(crate) max_heap_words: usize,
    pub(crate) init_closure: Value,
    pub(crate) init_arg: Value,
    pub(crate) next_call_ref: u64,
    /// Calls in progress: (reference, callee's shared part) to demonitor.
    pub(crate) call_watches: Vec<(u64, Arc<Shared>)>,
    pub(crate) exit_reason: Option<ExitReason>,
    /// The `Process.trap_exits` wrapper (`process_id -> exit_reason -> 'm`,
    /// a value of this heap; a GC root), or `UNIT`.
    pub(crate) trap_wrap: Value,
    /// True when the process ended through a crash (stderr line printed).
    pub(crate) crashed: bool,
    /// Who waits for this process on the host side.
    pub(crate) host: crate::scheduler::Host,
}

impl Process {
    pub(crate) fn new(serial: u64, vm: *const crate::scheduler::Vm, shared: Arc<Shared>) -> Self {
        Process {
            trip: 0,
            stack_limit: 0,
            heap_ptr: 0,
            heap_limit: 0,
            exit_fp: 0,
            gc_pending: 0,
            gc_inhibit: 0,
            gc_threshold: crate::gc::MIN_GC_WORDS,
            gc_live: 0,
            gc_count: 0,
            gc_allocs: 0,
            reds_done: 0,
            reds_zero: 0,
            serial,
            vm,
            sched: std::ptr::null(),
            shared,
            heap: Heap::new(),
            gens: None,
            large: Default::default(),
            max_heap_words: 0,
            stack_low: 0,
            saved_sp: 0,
            lowest_sp: usize::MAX,
            grown: None,
            parked_stack: None,
            request: Request::None,
            queue: VecDeque::new(),
            cursor: 0,
            last: None,
            recv_deadline: None,
            init_closure: UNIT,
            init_arg: UNIT,
            next_call_ref: 1,
            call_watches: Vec::new(),
            exit_reason: None,
            trap_wrap: UNIT,
            crashed: false,
            host: crate::scheduler::Host::None,
        }
    }

    /// Reductions left in the current slice (negative when overdrawn):
    /// how far the trip point still is from where they run out (it rose
    /// one [`TRIP_PER_RED`] per counted function entry, more for what
    /// runtime functions charged).
    pub fn reds_left(&self) -> i64 {
        self.reds_zero.wrapping_sub(self.trip) as i64 / TRIP_PER_RED as i64
    }

    /// Charges `n` reductions (negative `n` charges nothing) for work a
    /// runtime function did: the trip point rises, so the slice ends
    /// sooner.
    pub fn charge(&mut self, n: i64) {
        let bytes = (n.max(0) as usize).saturating_mul(TRIP_PER_RED);
        self.trip = self.trip.wrapping_add(bytes);
    }

    /// Settles the count: `left` reductions remain, and generated code's
    /// stack pointer is `sp`. The trip point goes `left` reductions below
    /// `sp`, or to `stack_limit` when the stack has less room than that
    /// (then the cold path comes earlier and settles again), or above every
    /// address when nothing is left. Call it after any change of
    /// `stack_limit`, since the trip point must never be below it.
    pub fn rebase(&mut self, left: i64, sp: usize) {
        let trip = if left <= 0 {
            TRIP_NOW
        } else {
            let room = (left as usize).saturating_mul(TRIP_PER_RED);
            sp.saturating_sub(room).max(self.stack_limit as usize)
        };
        self.trip = trip;
        self.reds_zero = trip.wrapping_add((left as usize).wrapping_mul(TRIP_PER_RED));
    }

    /// This process's serial number (`<0.SERIAL>`).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// This process's pid value (the tagged serial).
    pub fn pid(&self) -> Value {
        pid_of_serial(self.serial)
    }

    /// Takes a message's (or a spawned closure's) fragment into this
    /// process's heap without copying it: its large blocks become young
    /// large objects, the rest is linked in as an adopted fragment (kept
    /// apart from the nursery, see `gc::Generations`). The caller then
    /// calls `gc::note_growth`.
    pub(crate) fn adopt(&mut self, mut f: Fragment) {
        self.large.adopt(f.take_large());
        if f.words() > 0 {
            self.heap.adopt(f);
        }
    }

    /// Words held by this process's heap: its chunks in every generation
    /// (free space included), adopted messages and large objects.
    pub fn heap_words(&self) -> usize {
        self.heap.words() + self.gens.as_ref().map_or(0, |g| g.words()) + self.large.words()
    }

    /// Words allocated young since the last collection: the nursery's
    /// chunks but the free rest of the current one, adopted messages and
    /// new large objects. A minor collection runs when this reaches
    /// `gc_threshold`.
    pub(crate) fn young_words(&self) -> usize {
        let free = (self.heap_limit - self.heap_ptr) as usize / crate::value::WORD;
        self.heap.words() - free + self.large.young_words()
    }

    /// Garbage collections this process has run.
    pub fn gc_count(&self) -> u32 {
        self.gc_count
    }

    /// Words live after this process's last collection.
    pub fn gc_live_words(&self) -> usize {
        self.gc_live
    }

    /// Number of messages in the mailbox not yet taken from the inbox plus
    /// those in the private queue (takes the mailbox lock).
    pub fn mailbox_len(&self) -> usize {
        self.queue.len() + self.shared.lock().inbox.len()
    }
}

/// The pid value of a serial number.
#[inline]
pub const fn pid_of_serial(serial: u64) -> Value {
    (serial << 1) | 1
}

/// The serial number of a pid value.
#[inline]
pub const fn serial_of_pid(pid: Value) -> u64 {
    pid >> 1
}

/// A parked stack (`scheduler::stackpark`).
pub(crate) struct ParkedStack {
    /// The used bytes: from the saved stack pointer up to the slot's top.
    pub bytes: Box<[u8]>,
    /// The scheduler whose batch released the pages, and that batch (see
    /// `Scheduler::wait_park_released`); 0 when no page was released (the
    /// stack left its slot).
    pub sched: u32,
    pub batch: u64,
    /// The slot the bytes came from, when they may go back into any slot
    /// (`stack::movable`): the process gave that slot up when it was
    /// parked (`Process::stack_low` is 0) and takes one when it next runs.
    /// 0 when they go back into their own slot, which the process kept.
    pub from_low: usize,
}

/// What a process asks its scheduler when it switches out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Request {
    #[default]
    None,
    /// Slice over (or `Process.yield ()`): back of the run queue.
    Yield,
    /// Block until `kind` is satisfied or `deadline` passes. The scheduler
    /// takes the decision to wait after the switch, under the mailbox lock.
    Wait {
        kind: WaitKind,
        deadline: Option<Instant>,
    },
    /// The process is over (`exit_reason` is set).
    Exit,
}

/// What a waiting process waits for (decides which events wake it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitKind {
    /// A new message in the inbox.
    Receive,
    /// The reply (or the callee's death) for this call reference.
    Reply(u64),
    /// The exit of the joined process.
    Join(u64),
    /// Only the deadline.
    Sleep,
    /// Readiness of one direction of a socket: the key of
    /// `net::tcp::wait_key` (its token and direction).
    Io(u64),
}

/// Process states (kept in `Shared::state`, changed under the mailbox lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ProcState {
    /// In a run queue (or about to be).
    Runnable = 0,
    /// On a scheduler right now.
    Running = 1,
    /// Blocked; its `Process` is parked in `Inner::proc`.
    Waiting = 2,
    /// Over; the exit reason is in `Inner::exit_reason`.
    Exited = 3,
}

/// A message: a value and the fragment holding its blocks (none for an
/// immediate, a literal, or once the receiver's heap adopted it).
///
/// A *signal* entry (an exit signal to a process that traps exits, or a
/// monitor notice) becomes an ordinary message when the receiver's
/// `receive` reaches it: the VM then runs the receiver's wrapper function
/// (for a notice, `value` is that wrapper) and stores the result.
///
/// A *small* message (see [`small_msg`]) travels in the entry itself: its
/// words are in `small` until the receiver takes it, and `value` means
/// nothing (0) until then.
pub(crate) struct Msg {
    pub value: Value,
    pub frag: Option<Fragment>,
    pub signal: Option<Box<Signal>>,
    pub small: Small,
}

/// The words of a small message not yet taken into the receiver's heap:
/// one block, header first, `len` words (0: none).
#[derive(Clone, Copy)]
pub(crate) struct Small {
    pub len: u32,
    pub words: [u64; SMALL_MSG_WORDS],
}

impl Small {
    /// No small message.
    pub(crate) const NONE: Small = Small {
        len: 0,
        words: [0; SMALL_MSG_WORDS],
    };
}

/// Words (header included) of the largest message a mailbox entry holds
/// itself: `Token k`, `Ping pid`, a pair of ints, `Some x`.
pub(crate) const SMALL_MSG_WORDS: usize = 3;

impl Msg {
    /// An ordinary message.
    pub(crate) fn plain(value: Value, frag: Option<Fragment>) -> Self {
        Msg {
            value,
            frag,
            signal: None,
            small: Small::NONE,
        }
    }

    /// True while the message's blocks are outside the receiver's heap (a
    /// fragment or small words): `value` is then not one of its roots.
    #[inline]
    pub(crate) fn pending(&self) -> bool {
        self.frag.is_some() || self.small.len != 0
    }
}

/// A message for a mailbox, as `send` makes it: a small message (one
/// block of at most [`SMALL_MSG_WORDS`] words whose fields are immediates
/// or literals) is carried in the entry itself, with no fragment to
/// allocate, copy into and free: most messages of rings and ping-pongs,
/// where those were a fifth of each hop's instructions. Anything else
/// goes to [`make_msg`]. Returns the message and its size in words.
///
/// # Safety
/// As [`make_msg`].
#[inline]
pub(crate) unsafe fn mailbox_msg(
    scratch: &mut crate::term::CopyScratch,
    sender: Option<&crate::heap::LargeSpace>,
    v: Value,
) -> Option<(Msg, usize)> {
    // SAFETY: caller's guarantee on `v`.
    if let Some(small) = unsafe { small_msg(v) } {
        let len = small.len as usize;
        let m = Msg {
            value: 0,
            frag: None,
            signal: None,
            small,
        };
        return Some((m, len));
    }
    // SAFETY: caller's guarantee on `v`.
    unsafe { make_msg(scratch, sender, v) }
}

/// `v`'s words if it is one heap block of at most [`SMALL_MSG_WORDS`]
/// words (header included) whose fields are all immediates or literals.
///
/// # Safety
/// As [`make_msg`].
#[inline]
unsafe fn small_msg(v: Value) -> Option<Small> {
    // SAFETY: caller's guarantee on `v`.
    let (h, ws) = unsafe { flat_block(v, SMALL_MSG_WORDS - 1) }?;
    let mut small = Small {
        len: (ws + 1) as u32,
        words: [0; SMALL_MSG_WORDS],
    };
    small.words[0] = h;
    // A loop of fixed length with the test inside, not `words[1..=ws]`:
    // that one became a `memcpy` call of `ws` words into the stack, and
    // reading `small` back after it stalled on store forwarding (half of
    // `caravan_rt_send`'s samples in ring on an Intel Xeon). This one is
    // two conditional loads into registers.
    for i in 0..SMALL_MSG_WORDS - 1 {
        if i < ws {
            // SAFETY: `flat_block` checked that `v` is a block of `ws`
            // fields, and `i < ws`.
            small.words[i + 1] = unsafe { *(v as *const u64).add(i) };
        }
    }
    Some(small)
}

/// `v`'s header and size in words if it is one heap block (not a literal
/// or static block) of at most `max_fields` fields, each an immediate or
/// a literal: its copy is its words.
///
/// # Safety
/// As [`make_msg`].
#[inline]
unsafe fn flat_block(v: Value, max_fields: usize) -> Option<(u64, usize)> {
    use crate::heap::is_literal;
    use crate::value::{header_tag, header_wosize, scan_range};
    if v & 1 != 0 || v == 0 || is_literal(v) || crate::heap::is_static_block(v) {
        return None;
    }
    // SAFETY: `v` is a block of the caller's (caller's guarantee): its
    // header is the word before it, its fields follow.
    unsafe {
        let h = *(v as *const u64).sub(1);
        let ws = header_wosize(h) as usize;
        if ws > max_fields {
            return None;
        }
        let (a, b) = scan_range(header_tag(h), ws);
        for i in a..b {
            let f = *(v as *const u64).add(i);
            if f & 1 == 0 && f != 0 && !is_literal(f) {
                return None;
            }
        }
        Some((h, ws))
    }
}

/// What a signal entry in a mailbox stands for.
pub(crate) enum Signal {
    /// An exit signal from `from` to a process trapping exits: becomes
    /// `trap_wrap from reason`.
    Exit { from: u64, reason: ExitReason },
    /// A monitor notice: becomes `wrap reason` (`wrap` is the entry's
    /// value, copied into the entry's fragment).
    Down { reference: u64, reason: ExitReason },
    /// Already turned into its message (the entry's value); a monitor
    /// notice keeps its reference so `demonitor` can still remove it.
    Done { reference: Option<u64> },
    /// An active-once socket's event: becomes `wrap event` (`wrap` is the
    /// entry's value, copied into the entry's fragment).
    Tcp(crate::net::tcp::TcpEvent),
    /// A `Node.monitor_nodes` event: becomes `wrap (Nodeup name)` or
    /// `wrap (Nodedown name)`.
    Node { up: bool, name: Arc<str> },
}

/// A monitor on this process, kept by the watched process.
pub(crate) struct MonitorReg {
    pub watcher: u64,
    pub reference: u64,
    /// The watcher's wrapper (`exit_reason -> 'm`), copied.
    pub wrap: Msg,
}

/// How a process ended. `Crashed` carries the message bytes.
///
/// As a value (`docs/vm-abi.md`): `Normal` = imm 0, `Shutdown` = 1,
/// `Killed` = 2, `Timeout` = 3, `Noproc` = 4, `Noconnection` = 5, `Crashed
/// s` = block tag 0 with the string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    Normal,
    Shutdown,
    Killed,
    Timeout,
    Noproc,
    /// The connection to the process's node went down (distribution).
    Noconnection,
    Crashed(Arc<[u8]>),
}

impl ExitReason {
    /// `Crashed msg`.
    pub fn crashed(msg: impl AsRef<[u8]>) -> Self {
        ExitReason::Crashed(Arc::from(msg.as_ref()))
    }

    /// The text printed in the crash line.
    pub fn message(&self) -> std::borrow::Cow<'_, str> {
        match self {
            ExitReason::Normal => "Normal".into(),
            ExitReason::Shutdown => "Shutdown".into(),
            ExitReason::Killed => "Killed".into(),
            ExitReason::Timeout => "Timeout".into(),
            ExitReason::Noproc => "Noproc".into(),
            ExitReason::Noconnection => "Noconnection".into(),
            ExitReason::Crashed(m) => String::from_utf8_lossy(m),
        }
    }

    /// True for `Normal`.
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal)
    }
}

/// Who watches a process's exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Watcher {
    /// A `join` in progress by this serial.
    Join { serial: u64 },
    /// A `call` in progress by this serial with this reference.
    Call { serial: u64, reference: u64 },
}

/// The part of a process other processes touch (behind `Shared::inner`).
pub(crate) struct Inner {
    pub state: ProcState,
    pub waiting_for: WaitKind,
    /// The parked process while `state == Waiting`, else null.
    pub proc: *mut Process,
    /// Messages sent and not yet moved to the private queue, in order.
    pub inbox: Vec<Msg>,
    /// Words of the messages in `inbox` (their fragments, saturating),
    /// counted against the process's heap limit: a mailbox flooded past it
    /// ends the process, as Erlang's `max_heap_size` counts an on-heap
    /// queue.
    pub inbox_words: u32,
    pub exit_reason: Option<ExitReason>,
    /// Exit signals arrive as messages (`Process.trap_exits`).
    pub traps: bool,
    /// The process is in some scheduler's list of blocked processes whose
    /// stacks may be parked (`scheduler::stackpark`).
    pub park_queued: bool,
    /// Call and watch bookkeeping, allocated on first use (most processes
    /// never call, join or get watched: this keeps them small).
    extra: Option<Box<Extra>>,
}

/// The rarely used part of [`Inner`].
#[derive(Default)]
pub(crate) struct Extra {
    /// Call references this process is waiting on or about to (replies to
    /// anything else are dropped).
    pub calls: Vec<u64>,
    /// Replies received for active calls.
    pub replies: Vec<(u64, Msg)>,
    /// Callees that died during an active call: (reference, reason).
    pub downs: Vec<(u64, ExitReason)>,
    /// Result of the `join` in progress: (joined serial, reason).
    pub join_result: Option<(u64, ExitReason)>,
    pub watchers: Vec<Watcher>,
    /// An exit signal that will end the process at its next safepoint.
    pub pending_exit: Option<ExitReason>,
    /// The process's own heap limit in words, when it differs from the
    /// VM's (`Process.spawn_limited`), for senders to check.
    pub max_heap_words: Option<usize>,
    /// Linked processes.
    pub links: Vec<u64>,
    /// Monitors on this process.
    pub monitors: Vec<MonitorReg>,
    /// Monitors this process is the watcher of: (reference, watched).
    pub held_monitors: Vec<(u64, u64)>,
    /// Run when the process ends ([`crate::safepoint::at_exit`]).
    pub exit_hooks: Vec<ExitHook>,
}

impl Extra {
    /// True if it holds nothing: dropping it loses nothing.
    fn is_empty(&self) -> bool {
        let Extra {
            calls,
            replies,
            downs,
            join_result,
            watchers,
            pending_exit,
            max_heap_words,
            links,
            monitors,
            held_monitors,
            exit_hooks,
        } = self;
        calls.is_empty()
            && replies.is_empty()
            && downs.is_empty()
            && join_result.is_none()
            && watchers.is_empty()
            && pending_exit.is_none()
            && max_heap_words.is_none()
            && links.is_empty()
            && monitors.is_empty()
            && held_monitors.is_empty()
            && exit_hooks.is_empty()
    }
}

/// A function run (on a scheduler thread, outside any process) when a
/// process ends, with its serial and exit reason.
pub type ExitHook = Box<dyn FnOnce(u64, &ExitReason) + Send>;

impl Inner {
    /// The call/watch bookkeeping, allocated if needed.
    #[inline]
    pub(crate) fn x(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// The call/watch bookkeeping if any was ever needed.
    #[inline]
    pub(crate) fn x_opt(&mut self) -> Option<&mut Extra> {
        self.extra.as_deref_mut()
    }

    /// Frees what an idle process holds for nothing: empty mailbox
    /// buffers (the inbox and the process's private `queue`, 56 bytes an
    /// entry), and the call/watch bookkeeping once nothing is left in it
    /// (a process that answered one `call` keeps about 400 bytes of it
    /// otherwise). Run when its stack is parked.
    pub(crate) fn shrink_idle(&mut self, queue: &mut VecDeque<Msg>) {
        if queue.is_empty() && queue.capacity() != 0 {
            *queue = VecDeque::new();
        }
        if self.inbox.is_empty() && self.inbox.capacity() != 0 {
            self.inbox = Vec::new();
        }
        if self.extra.as_deref().is_some_and(Extra::is_empty) {
            self.extra = None;
        }
    }

    /// Takes the whole bookkeeping out (at exit).
    pub(crate) fn take_extra(&mut self) -> Option<Box<Extra>> {
        self.extra.take()
    }
}

// SAFETY: `proc` is only dereferenced by whoever takes it out under the
// lock (ownership transfer); everything else is plain data.
unsafe impl Send for Inner {}

/// The shared part of a process (see the module docs).
pub(crate) struct Shared {
    /// A mirror of `Inner::state` for lock-free reads (written under the lock).
    pub state: AtomicU8,
    /// Bumped at every wake-up; a timer only fires for the wait it was set for.
    pub wait_seq: AtomicU64,
    /// An exit signal is pending (`Extra::pending_exit`): the scheduler
    /// ends the process instead of running it.
    pub kill: AtomicBool,
    /// The inbox may hold messages: set (under the lock) by every push,
    /// cleared (under the lock) when the owner finds it empty or takes it.
    /// Read without the lock by the owner's `refill`, which then skips
    /// locking an empty inbox. A stale `false` costs nothing but a round
    /// trip: a process only waits after `park_process` checked the inbox
    /// under the lock, and that check sets the flag again when it finds
    /// mail.
    pub mail: AtomicBool,
    /// When the current wait began, in `Vm::coarse_ms` milliseconds
    /// (written and read under the lock, while `state == Waiting`; here
    /// rather than in `Inner` only because it fits in padding).
    pub blocked_at: std::sync::atomic::AtomicU32,
    pub inner: Mutex<Inner>,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Shared {
            state: AtomicU8::new(ProcState::Runnable as u8),
            wait_seq: AtomicU64::new(0),
            kill: AtomicBool::new(false),
            mail: AtomicBool::new(false),
            blocked_at: std::sync::atomic::AtomicU32::new(0),
            inner: Mutex::new(Inner {
                state: ProcState::Runnable,
                waiting_for: WaitKind::Sleep,
                proc: std::ptr::null_mut(),
                park_queued: false,
                inbox: Vec::new(),
                inbox_words: 0,
                exit_reason: None,
                traps: false,
                extra: None,
            }),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the inbox as holding mail ([`Shared::mail`]): called, under
    /// the lock, after every push to `Inner::inbox`.
    #[inline]
    pub(crate) fn note_mail(&self) {
        self.mail.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn set_state(&self, g: &mut Inner, s: ProcState) {
        g.state = s;
        self.state.store(s as u8, Ordering::Release);
    }

    pub(crate) fn is_exited(&self) -> bool {
        self.state.load(Ordering::Acquire) == ProcState::Exited as u8
    }

    /// If the process waits for something `event` satisfies, marks it
    /// runnable and returns it for the caller to enqueue (after unlocking).
    #[inline]
    pub(crate) fn wake_if(&self, g: &mut Inner, event: impl Fn(WaitKind) -> bool) -> *mut Process {
        if g.state == ProcState::Waiting && event(g.waiting_for) {
            self.set_state(g, ProcState::Runnable);
            // Only written under the lock: no read-modify-write needed.
            let seq = self.wait_seq.load(Ordering::Relaxed);
            self.wait_seq.store(seq + 1, Ordering::Relaxed);
            std::mem::replace(&mut g.proc, std::ptr::null_mut())
        } else {
            std::ptr::null_mut()
        }
    }
}

/// Copies `v` into a fresh fragment (nothing for immediates, literals and
/// the static blocks of generated code, `heap::is_static_block`: shared,
/// as the BEAM shares literals). Big blocks travel in chunks of their own,
/// and big strings among `sender`'s large objects (the calling process's)
/// are shared, not copied ([`crate::term::CopyScratch::plan_message`]).
/// Returns the message and the words copied, or `None` when memory for
/// the copy cannot be had (the caller crashes the process that asked,
/// with `Crashed "out of memory"` — never the VM).
///
/// # Safety
/// `v` must be a valid value of the calling process — its own heap and
/// fragments, static data and literals, or a fragment held under a lock —
/// which no other thread reads during the call (the copy forwards through
/// the source's headers: [`crate::term::CopyScratch::plan_owned`]).
pub(crate) unsafe fn make_msg(
    scratch: &mut crate::term::CopyScratch,
    sender: Option<&crate::heap::LargeSpace>,
    v: Value,
) -> Option<(Msg, usize)> {
    use crate::heap::{is_literal, is_static_block};
    // SAFETY: caller's guarantee on `v`.
    if let Some(flat) = unsafe { flat_msg(v) } {
        return flat;
    }
    let shared = |p| is_literal(p) || is_static_block(p);
    // SAFETY: caller's guarantee on `v`: the calling process's own value
    // (its heap and fragments, or a fragment held under a lock), which
    // nothing else reads until `emit` or `trim` below.
    let words = unsafe { scratch.plan_message(v, shared, sender) }?;
    let n_large = scratch.large_sizes().len();
    if words == 0 && n_large == 0 && scratch.shared_blocks().len() == 0 {
        return Some((Msg::plain(v, None), 0));
    }
    let Some(mut f) = Fragment::try_new(words) else {
        scratch.trim();
        return None;
    };
    // Big blocks (strings, mostly) each get a chunk of their own, which
    // the receiver's large-object space takes as it is.
    let mut large = Vec::with_capacity(n_large);
    let mut total = words;
    for ws in scratch.large_sizes() {
        match f.try_add_large(ws + 1) {
            Some(d) => large.push(d),
            None => break,
        }
        total += ws + 1;
    }
    if large.len() < n_large {
        scratch.trim();
        return None;
    }
    // Big strings of the sender's are shared, not copied: the message
    // holds them.
    let mut held = true;
    for b in scratch.shared_blocks() {
        // SAFETY: the plan found `b` among the sender's large objects.
        held = held
            && unsafe {
                crate::heap::LargeSpace::share(b);
                f.try_add_shared(b)
            };
    }
    if !held {
        scratch.trim();
        return None;
    }
    // SAFETY: the fragment has exactly the planned number of words, and
    // each large destination its block's.
    let value = unsafe { scratch.emit_split(f.data(), &large, shared) };
    scratch.trim();
    Some((Msg::plain(value, Some(f)), total))
}

/// Blocks of at most this many words take [`flat_msg`]'s path.
const FLAT_MSG_WORDS: usize = 32;

/// The common message, copied without the general copier's planning: one
/// small block (`Token k`, a short string, a pair of ints) whose fields
/// are all immediates or literals, so its copy is its words. `None` when
/// `v` is not such a block; `Some(None)` when memory cannot be had.
///
/// # Safety
/// As [`make_msg`].
#[inline]
unsafe fn flat_msg(v: Value) -> Option<Option<(Msg, usize)>> {
    // SAFETY: caller's guarantee on `v`.
    let (_, ws) = unsafe { flat_block(v, FLAT_MSG_WORDS) }?;
    // SAFETY: `flat_block` checked that `v` is a block of `ws` fields.
    unsafe {
        let Some(frag) = Fragment::try_new(ws + 1) else {
            return Some(None);
        };
        let d = frag.data();
        std::ptr::copy_nonoverlapping((v as *const u64).sub(1), d, ws + 1);
        let value = d.add(1) as Value;
        Some(Some((Msg::plain(value, Some(frag)), ws + 1)))
    }
}

/// The crash reason of a process whose allocation cannot be had.
pub(crate) const OUT_OF_MEMORY: &str = "out of memory";

#[cfg(test)]
mod tests {
    use super::*;

    /// The trip point's bookkeeping (`rebase`, `charge`, `reds_left`): the
    /// count is exact, and the trip point is never below the stack limit.
    #[test]
    fn trip_point_counts_reductions_and_stays_above_the_limit() {
        let mut p = Process::new(1, std::ptr::null(), Arc::new(Shared::new()));
        let limit = 0x7000_0000_usize;
        p.stack_limit = limit as u64;
        let sp = limit + (1 << 20);
        // Room for the whole slice: the trip point is the slice below sp.
        p.rebase(CONTEXT_REDS, sp);
        assert_eq!(p.trip, sp - CONTEXT_REDS as usize * TRIP_PER_RED);
        assert_eq!(p.reds_left(), CONTEXT_REDS);
        // Each counted entry raises it by one reduction; it trips at sp
        // exactly when the slice is spent.
        p.trip += TRIP_PER_RED;
        assert_eq!(p.reds_left(), CONTEXT_REDS - 1);
        p.charge(99);
        assert_eq!(p.reds_left(), CONTEXT_REDS - 100);
        p.charge(-5);
        assert_eq!(p.reds_left(), CONTEXT_REDS - 100);
        p.trip += (CONTEXT_REDS as usize - 100) * TRIP_PER_RED;
        assert_eq!((p.reds_left(), p.trip), (0, sp));
        // Overdrawn by a runtime function's charge.
        p.charge(7);
        assert_eq!(p.reds_left(), -7);
        // Little room left on the stack: the trip point stops at the limit
        // and the count stays exact across the early settle.
        p.rebase(300, limit + 100 * TRIP_PER_RED);
        assert_eq!((p.trip, p.reds_left()), (limit, 300));
        p.trip += 100 * TRIP_PER_RED;
        assert_eq!(p.reds_left(), 200);
        p.rebase(p.reds_left(), limit + 50 * TRIP_PER_RED);
        assert_eq!((p.trip, p.reds_left()), (limit, 200));
        // Nothing left: the next counted entry trips wherever sp is.
        for left in [0, -12] {
            p.rebase(left, sp);
            assert!(p.trip > usize::MAX >> 17, "above every user address");
            assert_eq!(p.reds_left(), left);
        }
    }

    #[test]
    fn per_process_structs_stay_small() {
        // A process that has not run yet costs these (plus its closure copy
        // and a table entry); keep them in check.
        let p = size_of::<Process>();
        let s = size_of::<Shared>() + 16; // + Arc counters
        eprintln!(
            "Process {p} bytes, Shared {s} bytes, Msg {}",
            size_of::<Msg>()
        );
        // 320 + 80 for the collector's bookkeeping (exit_fp, gc_pending,
        // threshold, live size, counters, large objects, heap limit) + 8
        // for the parked stack (which saves a page or more per idle
        // process).
        // + 8 for the grown stack's address (deep recursion).
        // + 8 for the generations (boxed: made by the first collection)
        // and + 8 for the index of the young large objects.
        // + 8 for the nursery's list of adopted fragments (kept whole by
        // minor collections). + 8 for where the slice's reductions run out
        // (`reds_zero`). Still mimalloc's 448-byte size class.
        assert!(p <= 448, "Process is {p} bytes");
        assert!(s <= 128, "Shared is {s} bytes");
        // value, fragment, signal, and a small message's three words.
        assert_eq!(size_of::<Msg>(), 56);
        // The fields a message hop touches stay in the first four cache
        // lines (see the struct).
        use std::mem::offset_of;
        let hot_end = [
            offset_of!(Process, reds_zero) + 8,
            offset_of!(Process, saved_sp) + 8,
            offset_of!(Process, shared) + 8,
            offset_of!(Process, parked_stack) + 8,
            offset_of!(Process, gc_threshold) + 8,
            offset_of!(Process, queue) + size_of::<VecDeque<Msg>>(),
            offset_of!(Process, last) + size_of::<Option<usize>>(),
            offset_of!(Process, recv_deadline) + size_of::<Option<Option<Instant>>>(),
            offset_of!(Process, request) + size_of::<Request>(),
            offset_of!(Process, vm) + 8,
        ];
        for end in hot_end {
            assert!(end <= 4 * 64, "a hot field ends at byte {end}");
        }
    }

    /// A block of the sender's, as in its heap: header, then fields.
    fn block(tag: u8, fields: &[u64]) -> Vec<u64> {
        let mut b = vec![crate::value::make_header(fields.len() as u64, tag)];
        b.extend_from_slice(fields);
        b
    }

    #[test]
    fn flat_messages_are_copied_word_for_word_and_others_planned() {
        use crate::value::{of_int, TAG_STRING};
        let mut scratch = crate::term::CopyScratch::default();
        // `Token 41`: one immediate field, copied as it is.
        let token = block(0, &[of_int(41)]);
        let v = token.as_ptr() as u64 + 8;
        // SAFETY: `v` is a valid block nobody else reads.
        let (m, words) = unsafe { make_msg(&mut scratch, None, v) }.unwrap();
        assert_eq!(words, 2);
        assert_ne!(m.value, v, "copied, not shared");
        // SAFETY: the copy is a block of one field.
        unsafe {
            assert_eq!(*(m.value as *const u64), of_int(41));
            assert_eq!(*(m.value as *const u64).sub(1), token[0]);
        }
        // A string: raw bytes, never scanned.
        let s = block(TAG_STRING, &[5, u64::from_le_bytes(*b"hello\0\0\0")]);
        // SAFETY: as above.
        let (m, words) = unsafe { make_msg(&mut scratch, None, s.as_ptr() as u64 + 8) }.unwrap();
        assert_eq!(words, 3);
        // SAFETY: a string block.
        assert_eq!(unsafe { crate::value::string_bytes(m.value) }, b"hello");
        // A pair pointing at the token: the general copier copies both.
        let pair = block(0, &[v, of_int(1)]);
        // SAFETY: as above.
        let (m, words) = unsafe { make_msg(&mut scratch, None, pair.as_ptr() as u64 + 8) }.unwrap();
        assert_eq!(words, 5);
        // SAFETY: the copy is a pair whose field 0 is a copied token.
        unsafe {
            let inner = *(m.value as *const u64);
            assert_ne!(inner, v);
            assert_eq!(*(inner as *const u64), of_int(41));
        }
    }
}
