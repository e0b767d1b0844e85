//! The safepoint machinery every runtime function and builtin relies on:
//! crashing the calling process, switching out to its scheduler and back,
//! blocking sections, exit hooks, and the timeout rule. The runtime
//! functions themselves are in [`crate::abi`].
//!
//! Every runtime function is `extern "C"`, takes the calling process first
//! and never unwinds: its body runs under [`guard`], which turns an error — or a Rust
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
use crate::io::report_crash;
use crate::process::{serial_of_pid, ExitReason, Process, Request};
use crate::scheduler::{Local, Scheduler};
use crate::value::{self, field, int_of, is_immediate, of_int, Value};
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

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
pub(crate) unsafe extern "C" fn process_start(proc: usize) -> ! {
    let proc = proc as *mut Process;
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
pub(crate) unsafe fn sched_of<'a>(proc: *mut Process) -> &'a Scheduler {
    // SAFETY: caller's guarantee.
    unsafe { &*(*proc).sched }
}

/// The local state of the scheduler running `proc`.
///
/// # Safety
/// As [`sched_of`], and the borrow must not overlap another `Local` borrow
/// (scheduler methods take their own): keep it to one statement.
#[inline(always)]
pub(crate) unsafe fn local_of<'a>(proc: *mut Process) -> &'a mut Local {
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
    crate::scheduler::now().checked_add(Duration::from_millis(ms.max(0) as u64))
}

/// An exit reason as a value in `proc`'s heap.
pub fn exit_reason_value(proc: &mut Process, r: &ExitReason) -> Value {
    match r {
        ExitReason::Normal => of_int(0),
        ExitReason::Shutdown => of_int(1),
        ExitReason::Killed => of_int(2),
        ExitReason::Timeout => of_int(3),
        ExitReason::Noproc => of_int(4),
        ExitReason::Noconnection => of_int(5),
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
            4 => ExitReason::Noproc,
            _ => ExitReason::Noconnection,
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

/// Monotonic milliseconds since an arbitrary start (`Time.now_ms`); on a
/// deterministic schedule, virtual milliseconds since the run started.
pub fn now_ms() -> i64 {
    if let Some(ms) = crate::scheduler::virtual_ms() {
        return ms;
    }
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as i64
}
