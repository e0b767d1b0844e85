//! The runtime functions generated code calls (`docs/vm-abi.md`, "Runtime
//! functions"), plus the Rust API builtins use.
//!
//! Every function is `extern "C"`, takes the calling process first and never
//! unwinds: its body runs under `guard`, which turns an error — or a Rust
//! panic, caught with `catch_unwind` — into a crash of the calling process
//! (one stderr line, then the process switches away for good and its stack
//! is abandoned, never unwound). No owned Rust state is live across a
//! context switch: locals with destructors are dropped before any switch,
//! and crash reasons are moved into the `Process` struct first.
//!
//! Functions the ABI table lists without a result return `()` (`UNIT`) in
//! `rax`, so they can also be bound directly as `external`s returning
//! `unit` (callers that ignore the result are unaffected).
//!
//! Runtime functions are thin, so a process can block only here: at these
//! calls (and the yield at function entry) it reaches a *safepoint*.

use crate::heap::alloc::{alloc_block, alloc_string};
use crate::heap::literal_copy;
use crate::process::{
    pid_of_serial, serial_of_pid, ExitReason, Msg, Process, Request, Signal, WaitKind, Watcher,
};
use crate::scheduler::{make_msg, report_crash, Local, Scheduler};
use crate::term::{compare_values, COMPARE_FUNCTIONAL, UNORDERED};
use crate::value::{
    self, field, header, header_tag, header_wosize, int_of, is_block, is_immediate, of_bool,
    of_int, Value, RECV_TIMEOUT, TAG_REPLY, TAG_STRING, UNIT,
};
use std::collections::VecDeque;
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Reductions charged for a `spawn` (on top of the caller's own).
pub const SPAWN_REDS: i64 = 20;
/// Reductions charged for a `send`, plus one per 16 words copied.
pub const SEND_REDS: i64 = 2;

/// Why a runtime function fails: the reason, and a source location (a
/// NUL-terminated `file:line:col` string from generated code, or null).
pub(crate) struct Fail {
    pub reason: ExitReason,
    pub loc: *const u8,
}

impl Fail {
    pub(crate) fn msg(m: impl AsRef<[u8]>) -> Self {
        Fail {
            reason: ExitReason::crashed(m),
            loc: std::ptr::null(),
        }
    }
}

/// Runs a runtime function's body: errors and panics become a crash of
/// `proc` (never returns then).
#[inline(always)]
pub(crate) unsafe fn guard<R>(proc: *mut Process, f: impl FnOnce() -> Result<R, Fail>) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) => r,
        // SAFETY: `proc` is the calling process (the ABI's contract).
        Ok(Err(fail)) => unsafe { crash(proc, fail) },
        Err(payload) => {
            let msg = panic_text(&*payload);
            drop(payload);
            // SAFETY: as above.
            unsafe { crash(proc, Fail::msg(msg)) }
        }
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    let m = if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    };
    format!("internal VM error: {m}")
}

/// Ends `proc` with `fail.reason`, printing the crash line. Never returns.
///
/// # Safety
/// `proc` is the calling (running) process and this runs on its stack.
pub(crate) unsafe fn crash(proc: *mut Process, fail: Fail) -> ! {
    // SAFETY: `proc` is the running process; the borrow ends before the
    // switch.
    unsafe {
        print_crash(&*proc, &fail.reason, fail.loc);
        let p = &mut *proc;
        p.exit_reason = Some(fail.reason);
        p.crashed = true;
        exit_now(proc)
    }
}

/// Prints the crash line of `p`. The location is `loc` (a NUL-terminated
/// `file:line:col` from generated code, or null) when it is in the user's
/// code; otherwise — a builtin's failure, or a `failwith` inside the
/// standard library — the innermost call site in the user's code, found
/// from `p`'s trampoline frame (`crate::locations`).
#[inline(never)]
unsafe fn print_crash(p: &Process, reason: &ExitReason, loc: *const u8) {
    let given = if loc.is_null() {
        None
    } else {
        // SAFETY: generated code passes NUL-terminated static strings.
        Some(unsafe { CStr::from_ptr(loc as *const std::ffi::c_char) }.to_bytes())
    };
    let walked = if given.is_none_or(crate::locations::is_stdlib) {
        // SAFETY: `exit_fp` is 0 or the frame of the trampoline through
        // which the running process called into the runtime.
        unsafe { crate::locations::crash_site(p.exit_fp) }
    } else {
        None
    };
    let loc = walked.as_deref().map(str::as_bytes).or(given);
    match reason {
        ExitReason::Crashed(m) => report_crash(p.serial, m, loc),
        r => report_crash(p.serial, r.message().as_bytes(), loc),
    }
}

/// Switches to the scheduler with `Request::Exit`; never returns.
///
/// # Safety
/// `proc` is the calling process, on its own stack; its `exit_reason` is
/// set (or `None` for `Normal`).
pub(crate) unsafe fn exit_now(proc: *mut Process) -> ! {
    // SAFETY: caller's guarantee.
    unsafe {
        (*proc).request = Request::Exit;
        switch_out(proc);
    }
    // The scheduler never resumes an exited process.
    std::process::abort()
}

/// Switches from the running process back to its scheduler; returns when
/// the process is resumed (maybe on another scheduler thread).
///
/// # Safety
/// `proc` is the calling process, running on its own stack, with its
/// `request` set; no `&mut` to it may be live across this call.
#[inline(never)]
pub(crate) unsafe fn switch_out(proc: *mut Process) {
    // SAFETY: `sched` is the scheduler that switched this process in; its
    // saved context is valid until we switch back to it.
    unsafe {
        let sched = (*proc).sched;
        let to = *(*sched).sp.get();
        crate::context::switch(&raw mut (*proc).saved_sp, to);
        let sp = (*proc).saved_sp;
        if sp < (*proc).lowest_sp {
            (*proc).lowest_sp = sp;
        }
    }
}

/// Start of every process, on its own stack (entered from the initial
/// frame built by `context::init_stack`): runs the entry trampoline, then
/// exits the process `Normal`.
pub(crate) unsafe extern "C" fn process_start(proc: *mut Process) -> ! {
    // SAFETY: the scheduler passes the process it switched into.
    unsafe {
        let (entry, closure, arg) = {
            let p = &*proc;
            ((*p.vm).entry, p.init_closure, p.init_arg)
        };
        entry(proc, closure, arg);
        exit_now(proc)
    }
}

/// The scheduler running `proc`.
///
/// # Safety
/// `proc` is the running process; the result must not be kept across a
/// switch (the process may resume on another scheduler).
#[inline(always)]
unsafe fn sched_of<'a>(proc: *mut Process) -> &'a Scheduler {
    // SAFETY: caller's guarantee.
    unsafe { &*(*proc).sched }
}

/// The local state of the scheduler running `proc`.
///
/// # Safety
/// As [`sched_of`], and the borrow must not overlap another `Local` borrow
/// (scheduler methods take their own): keep it to one statement.
#[inline(always)]
unsafe fn local_of<'a>(proc: *mut Process) -> &'a mut Local {
    // SAFETY: caller's guarantee.
    unsafe { (*(*proc).sched).local() }
}

/// Timeouts of at least this many milliseconds never expire: the
/// prelude's `forever` (`max_int`, 2^62 − 1) and anything that far off.
pub const FOREVER_MS: i64 = (1 << 62) - 1;

/// The deadline of a timeout of `ms` milliseconds from now, by the rule
/// every timeout of the language follows (LANGUAGE.md §2): a negative
/// timeout has already passed (as 0: now), [`FOREVER_MS`] or more — or a
/// deadline too far to represent — is `None` (never).
#[inline]
pub fn deadline_after(ms: i64) -> Option<Instant> {
    if ms >= FOREVER_MS {
        return None;
    }
    // Too far to represent: the same as never.
    Instant::now().checked_add(Duration::from_millis(ms.max(0) as u64))
}

/// An exit reason as a value in `proc`'s heap.
pub fn exit_reason_value(proc: &mut Process, r: &ExitReason) -> Value {
    match r {
        ExitReason::Normal => of_int(0),
        ExitReason::Shutdown => of_int(1),
        ExitReason::Killed => of_int(2),
        ExitReason::Timeout => of_int(3),
        ExitReason::Noproc => of_int(4),
        ExitReason::Crashed(m) => {
            let s = alloc_string(proc, m);
            let b = alloc_block(proc, 0, 1);
            // SAFETY: a fresh block of one field.
            unsafe { *b = s };
            b as Value
        }
    }
}

/// The exit reason a value denotes (the inverse of [`exit_reason_value`]).
///
/// # Safety
/// `v` must be a valid `exit_reason` value.
pub unsafe fn exit_reason_of_value(v: Value) -> ExitReason {
    if is_immediate(v) {
        return match int_of(v) {
            0 => ExitReason::Normal,
            1 => ExitReason::Shutdown,
            2 => ExitReason::Killed,
            3 => ExitReason::Timeout,
            _ => ExitReason::Noproc,
        };
    }
    // SAFETY: a `Crashed s` block (caller's guarantee).
    unsafe { ExitReason::crashed(value::string_bytes(field(v, 0))) }
}

/// Crashes the calling process with `Crashed msg` (for builtins: e.g.
/// `int_of_string` on bad input). Prints the crash line; never returns.
///
/// # Safety
/// `proc` must be the calling process, running on its own stack (i.e. this
/// is called from a builtin invoked by generated code). Owned Rust values of
/// the caller are never dropped: drop them first.
pub unsafe fn crash_process(proc: *mut Process, msg: &str) -> ! {
    let fail = Fail::msg(msg);
    // SAFETY: caller's guarantee.
    unsafe { crash(proc, fail) }
}

/// True if `pid` names a live process.
pub fn is_alive(proc: &Process, pid: Value) -> bool {
    if !is_immediate(pid) {
        return false;
    }
    // SAFETY: `vm` is valid while a process runs.
    let vm = unsafe { &*proc.vm };
    vm.table
        .get(serial_of_pid(pid))
        .is_some_and(|s| !s.is_exited())
}

/// Runs `f`, which may block the thread in a system call (reading stdin, a
/// slow file), without stalling other processes: first this scheduler hands
/// the process it would run next and its pending timers to the other
/// schedulers (which steal its run queue as usual). `f` must not call
/// runtime functions. Use it in builtins around blocking I/O.
///
/// # Safety
/// `proc` must be the calling process, running on its own stack.
pub unsafe fn blocking_section<R>(proc: *mut Process, f: impl FnOnce() -> R) -> R {
    // SAFETY: the running process's scheduler, on its thread.
    unsafe { (*(*proc).sched).enter_blocking() };
    f()
}

/// Registers `hook` to run when the calling process ends (any way: return,
/// crash, exit signal, program end excepted), with its serial and exit
/// reason — e.g. to drop a `Store` table or free `Registry` names it owns.
/// Hooks run on a scheduler thread outside any process, before watchers
/// are told; they must not block for long.
///
/// # Safety
/// `proc` must be the calling process.
pub unsafe fn at_exit(proc: *mut Process, hook: crate::process::ExitHook) {
    // SAFETY: `proc` is the running process.
    unsafe { (*proc).shared.lock().x().exit_hooks.push(hook) };
}

/// Monotonic milliseconds since an arbitrary start (`Time.now_ms`).
pub fn now_ms() -> i64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as i64
}

// ---------------------------------------------------------------------------
// The ABI functions
// ---------------------------------------------------------------------------

/// Reductions ran out: the process goes to the back of its scheduler's run
/// queue; returns (with a fresh budget) when it is scheduled again.
///
/// # Safety
/// `proc` must be the calling process (true of every function here).
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_yield(proc: *mut Process) -> Value {
    // SAFETY: `proc` is the running process.
    unsafe {
        (*proc).reds_done += crate::process::CONTEXT_REDS as u64;
        (*proc).request = Request::Yield;
        switch_out(proc);
    }
    UNIT
}

/// `Process.yield ()`: same as [`caravan_rt_yield`].
///
/// # Safety
/// `proc` must be the calling process.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_yield_now(proc: *mut Process) -> Value {
    // SAFETY: forwarded.
    unsafe { caravan_rt_yield(proc) }
}

/// The prologue found `sp < stack_limit`: crash with `Crashed "stack
/// overflow"`. Runs in the 64 KiB kept below the limit.
///
/// # Safety
/// `proc` must be the calling process.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_stack_overflow(proc: *mut Process, loc: *const u8) -> ! {
    // `loc` (the overflowing function's definition, NUL-terminated) may be
    // null.
    let fail = Fail {
        reason: ExitReason::crashed("stack overflow"),
        loc,
    };
    // SAFETY: forwarded.
    unsafe { crash(proc, fail) }
}

/// Allocates a block of `wosize` words with `tag` in the process heap;
/// header written, fields uninitialised. Returns a pointer to field 0.
///
/// # Safety
/// `proc` must be the calling process; `tag` < 256.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_alloc(proc: *mut Process, tag: u64, wosize: u64) -> Value {
    // SAFETY: `proc` is the running process; nothing here can panic but
    // allocation failure, which aborts.
    let p = unsafe { &mut *proc };
    p.reductions -= (wosize >> 4) as i64;
    alloc_block(p, tag as u8, wosize as usize) as Value
}

/// A string of `len` bytes copied from `bytes` (for builtins).
///
/// # Safety
/// `proc` must be the calling process; `bytes` valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_alloc_string(
    proc: *mut Process,
    bytes: *const u8,
    len: u64,
) -> Value {
    // SAFETY: caller's guarantee.
    unsafe {
        let s = if len == 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(bytes, len as usize)
        };
        alloc_string(&mut *proc, s)
    }
}

/// `failwith msg` / `assert`: crash with `Crashed msg` at `loc` (a
/// NUL-terminated `file:line:col`, or null).
///
/// # Safety
/// `proc` must be the calling process; `msg` a string value; `loc` null or
/// a NUL-terminated string that stays valid.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_fail(proc: *mut Process, msg: Value, loc: *const u8) -> ! {
    // SAFETY: caller's guarantee.
    let fail = unsafe {
        let text: &[u8] = if is_block(msg) && header_tag(header(msg)) == TAG_STRING {
            value::string_bytes(msg)
        } else {
            b"failure"
        };
        Fail {
            reason: ExitReason::crashed(text),
            loc,
        }
    };
    // SAFETY: forwarded.
    unsafe { crash(proc, fail) }
}

/// Integer division (or `mod`) by zero: crash with `Crashed "division by
/// zero"` at `loc`. (An addition to the ABI table.)
///
/// # Safety
/// As [`caravan_rt_fail`].
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_div_by_zero(proc: *mut Process, loc: *const u8) -> ! {
    let fail = Fail {
        reason: ExitReason::crashed("division by zero"),
        loc,
    };
    // SAFETY: forwarded.
    unsafe { crash(proc, fail) }
}

/// Starts a process running `entry(new, closure', pid)` where `closure'` is
/// a deep copy of `closure` in the new process's heap. Returns its pid at
/// once; the new process runs next on this scheduler (Go's `runnext`).
/// A process costs only its struct, mailbox and closure copy until it first
/// runs (then it takes a stack slot).
///
/// # Safety
/// `proc` must be the calling process; `closure` a valid value.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_spawn(proc: *mut Process, closure: Value) -> Value {
    // SAFETY: `proc` is the running process (see `guard`).
    unsafe { guard(proc, || spawn_process(proc, closure, false, None)) }
}

/// `Process.spawn_limited mb f`: as `spawn`, with a heap limit of `mb`
/// megabytes for the new process (Erlang's `max_heap_size` for one
/// process; `mb` a tagged int). Past it the process crashes with `Crashed
/// "heap limit"`. A limit below 1 MB crashes the caller.
///
/// # Safety
/// `proc` must be the calling process; `closure` a valid value.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_spawn_limited(
    proc: *mut Process,
    mb: Value,
    closure: Value,
) -> Value {
    // SAFETY: `proc` is the running process (see `guard`).
    unsafe {
        guard(proc, || {
            let mb = int_of(mb);
            if mb < 1 {
                return Err(Fail::msg(
                    "Process.spawn_limited: the limit must be at least 1 MB",
                ));
            }
            let words = (mb as usize).saturating_mul((1 << 20) / value::WORD);
            spawn_process(proc, closure, false, Some(words))
        })
    }
}

/// Spawns a process running `closure` (copied), linked to the caller if
/// `link`; it runs next on this scheduler. Returns its pid.
///
/// # Safety
/// `proc` is the calling process; `closure` a valid value.
pub(crate) unsafe fn spawn_process(
    proc: *mut Process,
    closure: Value,
    link: bool,
    max_heap_words: Option<usize>,
) -> Result<Value, Fail> {
    // SAFETY: `proc` is the running process; the child is ours until queued.
    unsafe {
        let sched = sched_of(proc);
        let vm = sched.vm();
        let (m, _) = make_msg(&mut local_of(proc).copy, closure)
            .ok_or_else(|| Fail::msg(crate::scheduler::OUT_OF_MEMORY))?;
        let child = vm.new_process(sched.next_serial());
        let c = &mut *child;
        if let Some(w) = max_heap_words {
            c.max_heap_words = w;
            c.shared.lock().x().max_heap_words = Some(w);
        }
        c.init_closure = m.value;
        if let Some(f) = m.frag {
            c.heap.adopt(f);
        }
        let pid = pid_of_serial(c.serial);
        c.init_arg = pid;
        if link {
            c.shared.lock().x().links.push((*proc).serial);
            (*proc).shared.lock().x().links.push(c.serial);
        }
        (*proc).reductions -= SPAWN_REDS;
        sched.push_runnext(child);
        Ok(pid)
    }
}

/// The calling process's pid.
///
/// # Safety
/// `proc` must be the calling process.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_self(proc: *mut Process) -> Value {
    // SAFETY: `proc` is valid.
    unsafe { pid_of_serial((*proc).serial) }
}

/// Sends a deep copy of `msg` (sharing and cycles kept) to `pid`'s mailbox;
/// dropped if the receiver is dead. When this returns the message is in
/// the mailbox. A receiver waiting for a message runs next on this
/// scheduler. Costs [`SEND_REDS`] plus one per 16 words.
///
/// # Safety
/// `proc` must be the calling process; `msg` a valid value.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_send(proc: *mut Process, pid: Value, msg: Value) -> Value {
    // SAFETY: `proc` is the running process.
    unsafe {
        guard(proc, || {
            if !is_immediate(pid) {
                return Err(Fail::msg("send: not a pid"));
            }
            let serial = serial_of_pid(pid);
            let sched = sched_of(proc);
            let p = &mut *proc;
            // Borrowed from the pid cache (or ourselves): the entry cannot
            // change during this call, so no reference count traffic.
            let target: &crate::process::Shared = if serial == p.serial {
                &*Arc::as_ptr(&p.shared)
            } else {
                match sched.lookup_ptr(serial) {
                    Some(t) => &*t,
                    None => {
                        p.reductions -= SEND_REDS;
                        return Ok(UNIT);
                    }
                }
            };
            let (m, words) = make_msg(&mut local_of(proc).copy, msg)
                .ok_or_else(|| Fail::msg(crate::scheduler::OUT_OF_MEMORY))?;
            p.reductions -= SEND_REDS + (words >> 4) as i64;
            let mut rejected = None;
            let mut full = false;
            let woken = {
                let mut g = target.lock();
                if g.state == crate::process::ProcState::Exited {
                    rejected = Some(m);
                    std::ptr::null_mut()
                } else if g.inbox.try_reserve(1).is_err() {
                    // A mailbox flooded past memory: the message is not
                    // accepted, and the sender crashes (never the VM).
                    rejected = Some(m);
                    full = true;
                    std::ptr::null_mut()
                } else {
                    g.inbox.push(m);
                    g.inbox_words = g
                        .inbox_words
                        .saturating_add(words.min(u32::MAX as usize) as u32);
                    let limit = g
                        .x_opt()
                        .and_then(|x| x.max_heap_words)
                        .unwrap_or(sched.vm().max_heap_words);
                    if limit != 0
                        && g.inbox_words as usize > limit
                        && !target.kill.load(std::sync::atomic::Ordering::Acquire)
                    {
                        // Flooded past its heap limit: the receiver ends
                        // (the message stays accepted, in its mailbox).
                        report_crash(serial, crate::gc::HEAP_LIMIT.as_bytes(), None);
                        crate::signals::kill_locked(
                            target,
                            &mut g,
                            ExitReason::crashed(crate::gc::HEAP_LIMIT),
                        )
                    } else {
                        target.wake_if(&mut g, |k| k == WaitKind::Receive)
                    }
                }
            };
            drop(rejected);
            if full {
                return Err(Fail::msg(crate::scheduler::OUT_OF_MEMORY));
            }
            if !woken.is_null() {
                sched.push_runnext(woken);
            }
            Ok(UNIT)
        })
    }
}

/// Begins a receive on `mailbox`: the scan cursor goes back to the oldest
/// message; no deadline is set yet. `mailbox` must be the calling
/// process's own pid: a receive on another process's mailbox crashes the
/// caller with `Crashed "receive on another process's mailbox"` at `loc`
/// (LANGUAGE.md §2; the types alone cannot rule it out, since pids are
/// values).
///
/// # Safety
/// `proc` must be the calling process; `loc` null or a NUL-terminated
/// `file:line:col` that stays valid.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_recv_start(
    proc: *mut Process,
    mailbox: Value,
    loc: *const u8,
) -> Value {
    // SAFETY: `proc` is the running process.
    let p = unsafe { &mut *proc };
    if mailbox != pid_of_serial(p.serial) {
        let fail = Fail {
            reason: ExitReason::crashed("receive on another process's mailbox"),
            loc,
        };
        // SAFETY: the running process, on its own stack; nothing owned is
        // live.
        unsafe { crash(proc, fail) }
    }
    p.cursor = 0;
    p.last = None;
    p.recv_deadline = None;
    UNIT
}

/// Moves the inbox (messages sent so far) behind the private queue.
/// Returns false if the inbox was empty.
fn refill(p: &mut Process) -> bool {
    let mut g = p.shared.lock();
    if g.inbox.is_empty() {
        return false;
    }
    g.inbox_words = 0;
    if p.queue.is_empty() {
        // Swap buffers: no allocation in the steady state.
        let spare: Vec<Msg> = Vec::from(std::mem::take(&mut p.queue));
        let full = std::mem::replace(&mut g.inbox, spare);
        drop(g);
        p.queue = VecDeque::from(full);
    } else {
        p.queue.extend(g.inbox.drain(..));
    }
    true
}

/// The next message after the cursor (advancing it); its fragment is
/// adopted into the process heap, the message stays in the mailbox until
/// [`caravan_rt_recv_accept`]. When none is left, blocks until one arrives
/// or the deadline — `timeout_ms` after the first `recv_next` of this
/// receive, by [`deadline_after`]'s rule: `<= 0` polls, [`FOREVER_MS`] or
/// more never expires — passes, then returns `RECV_TIMEOUT` (0).
///
/// # Safety
/// `proc` must be the calling process, inside a receive (after
/// `caravan_rt_recv_start`).
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_recv_next(proc: *mut Process, timeout_ms: i64) -> Value {
    // SAFETY: `proc` is the running process; every `&mut` to it ends before
    // `switch_out`.
    unsafe {
        guard(proc, || {
            if (*proc).recv_deadline.is_none() {
                (*proc).recv_deadline = Some(deadline_after(timeout_ms));
            }
            loop {
                let p = &mut *proc;
                if p.cursor < p.queue.len() {
                    let i = p.cursor;
                    p.cursor += 1;
                    p.last = Some(i);
                    p.reductions -= 1;
                    if let Some(f) = p.queue[i].frag.take() {
                        let v = p.queue[i].value;
                        p.queue[i].value = crate::gc::take_fragment(p, f, v);
                        // Taken messages grow the heap: collect here too
                        // (generated code calls this through a trampoline
                        // that sets `exit_fp`; the message is a mailbox root).
                        crate::gc::maybe_collect(p);
                    }
                    let m = &mut p.queue[i];
                    let pending = match m.signal.as_deref() {
                        None | Some(Signal::Done { .. }) => None,
                        Some(_) => m.signal.take(),
                    };
                    let Some(sig) = pending else {
                        return Ok(m.value);
                    };
                    // An exit signal or monitor notice: build its message in
                    // this process (runs the wrapper; nothing owned is kept
                    // across it).
                    let reference = match &*sig {
                        Signal::Down { reference, .. } => Some(*reference),
                        _ => None,
                    };
                    let wrap = m.value;
                    let v = crate::signals::convert_signal(proc, *sig, wrap);
                    let m = &mut (&mut *proc).queue[i];
                    m.value = v;
                    m.signal = reference.map(|r| Box::new(Signal::Done { reference: Some(r) }));
                    return Ok(v);
                }
                if refill(p) {
                    continue;
                }
                let deadline = p.recv_deadline.flatten();
                if let Some(d) = deadline {
                    if Instant::now() >= d {
                        return Ok(RECV_TIMEOUT);
                    }
                }
                p.request = Request::Wait {
                    kind: WaitKind::Receive,
                    deadline,
                };
                switch_out(proc);
            }
        })
    }
}

/// Removes the message last returned by `recv_next` from the mailbox (the
/// receive matched it). Ends the receive.
///
/// # Safety
/// `proc` must be the calling process.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_recv_accept(proc: *mut Process) -> Value {
    // SAFETY: `proc` is the running process.
    let p = unsafe { &mut *proc };
    if let Some(i) = p.last.take() {
        if i < p.queue.len() {
            let m = p.queue.remove(i);
            if p.cursor > i {
                p.cursor -= 1;
            }
            drop(m);
        }
    }
    p.recv_deadline = None;
    UNIT
}

/// Blocks until process `pid` exits and returns its exit reason; at once
/// if it is already dead (`Noproc` for a pid that never existed). Joining
/// oneself crashes (it could never return).
///
/// # Safety
/// `proc` must be the calling process.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_join(proc: *mut Process, pid: Value) -> Value {
    // SAFETY: `proc` is the running process; borrows end before switches.
    unsafe {
        guard(proc, || {
            if !is_immediate(pid) {
                return Err(Fail::msg("join: not a pid"));
            }
            let t = serial_of_pid(pid);
            let me = (*proc).serial;
            if t == me {
                return Err(Fail::msg("join: a process cannot join itself"));
            }
            let sched = sched_of(proc);
            let vm = sched.vm();
            let now = match sched.lookup(t) {
                None => Some(vm.dead_reason(t)),
                Some(sh) => {
                    let mut g = sh.lock();
                    if g.state == crate::process::ProcState::Exited {
                        Some(g.exit_reason.clone().unwrap_or(ExitReason::Normal))
                    } else {
                        g.x().watchers.push(Watcher::Join { serial: me });
                        None
                    }
                }
            };
            if let Some(r) = now {
                return Ok(exit_reason_value(&mut *proc, &r));
            }
            loop {
                let got = {
                    let p = &mut *proc;
                    let mut g = p.shared.lock();
                    let x = g.x();
                    match x.join_result.take() {
                        Some((s, r)) if s == t => Some(r),
                        other => {
                            x.join_result = other;
                            None
                        }
                    }
                };
                if let Some(r) = got {
                    return Ok(exit_reason_value(&mut *proc, &r));
                }
                (*proc).request = Request::Wait {
                    kind: WaitKind::Join(t),
                    deadline: None,
                };
                switch_out(proc);
            }
        })
    }
}

/// `Process.sleep ms` (`ms` a tagged int; `<= 0` just yields).
///
/// # Safety
/// `proc` must be the calling process.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_sleep(proc: *mut Process, ms: Value) -> Value {
    let ms = int_of(ms);
    if ms <= 0 {
        // SAFETY: forwarded.
        return unsafe { caravan_rt_yield(proc) };
    }
    // `None`: too far to represent, i.e. forever.
    let d = deadline_after(ms);
    while d.is_none_or(|d| Instant::now() < d) {
        // SAFETY: `proc` is the running process.
        unsafe {
            (*proc).request = Request::Wait {
                kind: WaitKind::Sleep,
                deadline: d,
            };
            switch_out(proc);
        }
    }
    UNIT
}

/// Begins a `call` to `callee`: a fresh reply channel (`TAG_REPLY` block:
/// caller serial, call reference), and a watch on the callee for this call
/// (if it is dead or unknown already, the wait fails with `Noproc`).
///
/// # Safety
/// `proc` must be the calling process.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_call_begin(proc: *mut Process, callee: Value) -> Value {
    // SAFETY: `proc` is the running process.
    unsafe {
        guard(proc, || {
            let sched = sched_of(proc);
            let p = &mut *proc;
            let r = p.next_call_ref;
            p.next_call_ref += 1;
            let me = p.serial;
            let b = alloc_block(p, TAG_REPLY, 2);
            *b = me;
            *b.add(1) = r;
            p.shared.lock().x().calls.push(r);
            let target = if is_immediate(callee) {
                sched.lookup(serial_of_pid(callee))
            } else {
                None
            };
            let watched = match target {
                Some(sh) => {
                    let ok = {
                        let mut g = sh.lock();
                        if g.state != crate::process::ProcState::Exited {
                            g.x().watchers.push(Watcher::Call {
                                serial: me,
                                reference: r,
                            });
                            true
                        } else {
                            false
                        }
                    };
                    if ok {
                        p.call_watches.push((r, sh));
                    }
                    ok
                }
                None => false,
            };
            if !watched {
                p.shared.lock().x().downs.push((r, ExitReason::Noproc));
            }
            Ok(b as Value)
        })
    }
}

/// Stops watching the callee of call `r`.
fn demonitor(p: &mut Process, r: u64) {
    if let Some(i) = p.call_watches.iter().position(|x| x.0 == r) {
        let (_, callee) = p.call_watches.swap_remove(i);
        let w = Watcher::Call {
            serial: p.serial,
            reference: r,
        };
        let mut g = callee.lock();
        if let Some(x) = g.x_opt() {
            if let Some(j) = x.watchers.iter().position(|y| *y == w) {
                x.watchers.swap_remove(j);
            }
        }
    }
}

/// Waits for the reply of the call `reply` (ordinary messages stay queued)
/// at most `timeout_ms` (tagged; [`deadline_after`]'s rule) and returns it (copied
/// into this heap). Crashes the caller with `Timeout`, or with the callee's
/// exit reason if it dies first (`Noproc` if it was already dead).
///
/// # Safety
/// `proc` must be the calling process; `reply` a reply channel it made.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_call_wait(
    proc: *mut Process,
    reply: Value,
    timeout_ms: Value,
) -> Value {
    // SAFETY: `proc` is the running process; borrows end before switches.
    unsafe {
        guard(proc, || {
            if !is_block(reply)
                || header_tag(header(reply)) != TAG_REPLY
                || header_wosize(header(reply)) < 2
                || field(reply, 0) != (*proc).serial
            {
                return Err(Fail::msg("call: not a reply channel of this process"));
            }
            let r = field(reply, 1);
            let deadline = deadline_after(int_of(timeout_ms));
            loop {
                let outcome = {
                    let p = &mut *proc;
                    let expired = deadline.is_some_and(|d| Instant::now() >= d);
                    let mut g = p.shared.lock();
                    let g = g.x();
                    let out = if let Some(i) = g.replies.iter().position(|x| x.0 == r) {
                        Some(Ok(g.replies.swap_remove(i).1))
                    } else if let Some(i) = g.downs.iter().position(|x| x.0 == r) {
                        Some(Err(g.downs.swap_remove(i).1))
                    } else if expired {
                        Some(Err(ExitReason::Timeout))
                    } else {
                        None
                    };
                    if out.is_some() {
                        if let Some(i) = g.calls.iter().position(|&c| c == r) {
                            g.calls.swap_remove(i);
                        }
                    }
                    out
                };
                match outcome {
                    Some(Ok(mut m)) => {
                        let p = &mut *proc;
                        demonitor(p, r);
                        if let Some(f) = m.frag.take() {
                            m.value = crate::gc::take_fragment(p, f, m.value);
                        }
                        return Ok(m.value);
                    }
                    Some(Err(reason)) => {
                        demonitor(&mut *proc, r);
                        return Err(Fail {
                            reason,
                            loc: std::ptr::null(),
                        });
                    }
                    None => {
                        (*proc).request = Request::Wait {
                            kind: WaitKind::Reply(r),
                            deadline,
                        };
                        switch_out(proc);
                    }
                }
            }
        })
    }
}

/// Sends a deep copy of `v` to the caller of the call `reply` names; dropped
/// if that call is over (late or second reply, caller dead).
///
/// # Safety
/// `proc` must be the calling process; `v` a valid value.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_reply(proc: *mut Process, reply: Value, v: Value) -> Value {
    // SAFETY: `proc` is the running process.
    unsafe {
        guard(proc, || {
            if !is_block(reply)
                || header_tag(header(reply)) != TAG_REPLY
                || header_wosize(header(reply)) < 2
            {
                return Err(Fail::msg("reply: not a reply channel"));
            }
            let (caller, r) = (field(reply, 0), field(reply, 1));
            let sched = sched_of(proc);
            let Some(target) = sched.lookup_ptr(caller) else {
                return Ok(UNIT);
            };
            // SAFETY: borrowed from the pid cache, stable during this call.
            let target: &crate::process::Shared = &*target;
            let (m, words) = make_msg(&mut local_of(proc).copy, v)
                .ok_or_else(|| Fail::msg(crate::scheduler::OUT_OF_MEMORY))?;
            (*proc).reductions -= SEND_REDS + (words >> 4) as i64;
            let mut rejected = None;
            let woken = {
                let mut g = target.lock();
                if g.state != crate::process::ProcState::Exited
                    && g.x_opt().is_some_and(|x| {
                        x.calls.contains(&r) && !x.replies.iter().any(|y| y.0 == r)
                    })
                {
                    g.x().replies.push((r, m));
                    target.wake_if(&mut g, |k| k == WaitKind::Reply(r))
                } else {
                    rejected = Some(m);
                    std::ptr::null_mut()
                }
            };
            drop(rejected);
            if !woken.is_null() {
                sched.push_runnext(woken);
            }
            Ok(UNIT)
        })
    }
}

/// Copies `v` into the immortal literal area (top-level values shared by
/// all processes) and returns the copy. Literals already there are shared.
///
/// # Safety
/// `proc` must be the calling process; `v` a valid value.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_global(proc: *mut Process, v: Value) -> Value {
    // SAFETY: `proc` is the running process.
    unsafe {
        guard(proc, || {
            let l = local_of(proc);
            let r = literal_copy(&mut l.copy, v);
            l.copy.trim();
            r.ok_or_else(|| Fail::msg("literal area exhausted"))
        })
    }
}

/// Ends the whole program with `status` (tagged int): every scheduler
/// stops, [`crate::run`] flushes stdout and returns the status.
///
/// # Safety
/// `proc` must be the calling process.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_exit(proc: *mut Process, status: Value) -> ! {
    // SAFETY: `proc` is the running process.
    unsafe {
        let vm = &*(*proc).vm;
        vm.request_exit(int_of(status) as i32);
        exit_now(proc)
    }
}

/// Polymorphic `compare` (OCaml's): -1, 0 or 1 as a raw `i64` (not
/// tagged). Crashes with `Crashed "compare: functional value"` on closures.
///
/// # Safety
/// `proc` must be the calling process; `a`, `b` valid values.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_compare(proc: *mut Process, a: Value, b: Value) -> i64 {
    if a == b {
        return 0;
    }
    if is_immediate(a) && is_immediate(b) {
        return (int_of(a).cmp(&int_of(b))) as i64;
    }
    // SAFETY: `proc` is the running process.
    unsafe { compare_slow(proc, a, b, true) }
}

/// Polymorphic `=` (OCaml's): a tagged bool. NaN is not equal to itself;
/// crashes with `Crashed "compare: functional value"` on closures.
///
/// # Safety
/// `proc` must be the calling process; `a`, `b` valid values.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_equal(proc: *mut Process, a: Value, b: Value) -> Value {
    if is_immediate(a) || is_immediate(b) {
        return of_bool(a == b);
    }
    // SAFETY: `proc` is the running process.
    let r = unsafe { compare_slow(proc, a, b, false) };
    of_bool(r == 0)
}

unsafe fn compare_slow(proc: *mut Process, a: Value, b: Value, total: bool) -> i64 {
    // SAFETY: `proc` is the running process.
    unsafe {
        guard(proc, || {
            let l = local_of(proc);
            let mut work = std::mem::take(&mut l.cmp_work);
            let r = compare_values(a, b, total, &mut work);
            if work.capacity() <= 4096 {
                l.cmp_work = work;
            }
            match r {
                Ok(r) if r == UNORDERED => Ok(UNORDERED),
                Ok(r) => Ok(r),
                Err(_) => Err(Fail::msg(COMPARE_FUNCTIONAL)),
            }
        })
    }
}

/// Name and address of every runtime function, for the JIT's symbol
/// lookup (`caravan_vm::symbols()`).
pub(crate) fn symbol_table() -> Vec<(&'static str, *const u8)> {
    use crate::gc::{
        caravan_gc_collections, caravan_gc_heap_words, caravan_gc_live_words, caravan_rt_alloc_gc,
        caravan_rt_gc_after,
    };
    use crate::signals::{
        caravan_rt_alive, caravan_rt_demonitor, caravan_rt_exit_signal, caravan_rt_link,
        caravan_rt_monitor, caravan_rt_spawn_link, caravan_rt_trap_exits,
    };
    macro_rules! syms {
        ($($f:ident),* $(,)?) => { vec![$((stringify!($f), $f as *const u8)),*] };
    }
    syms![
        caravan_rt_alloc_gc,
        caravan_rt_gc_after,
        caravan_gc_heap_words,
        caravan_gc_live_words,
        caravan_gc_collections,
        caravan_rt_yield,
        caravan_rt_yield_now,
        caravan_rt_stack_overflow,
        caravan_rt_alloc,
        caravan_rt_alloc_string,
        caravan_rt_fail,
        caravan_rt_div_by_zero,
        caravan_rt_spawn,
        caravan_rt_spawn_limited,
        caravan_rt_self,
        caravan_rt_send,
        caravan_rt_recv_start,
        caravan_rt_recv_next,
        caravan_rt_recv_accept,
        caravan_rt_join,
        caravan_rt_sleep,
        caravan_rt_call_begin,
        caravan_rt_call_wait,
        caravan_rt_reply,
        caravan_rt_global,
        caravan_rt_exit,
        caravan_rt_compare,
        caravan_rt_equal,
        caravan_rt_alive,
        caravan_rt_exit_signal,
        caravan_rt_link,
        caravan_rt_spawn_link,
        caravan_rt_trap_exits,
        caravan_rt_monitor,
        caravan_rt_demonitor,
    ]
}
