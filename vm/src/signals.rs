//! Exit signals, links and monitors (LANGUAGE.md §3), Erlang's model:
//!
//! * `Process.exit p reason` sends an *exit signal*: `Killed` ends `p`
//!   whatever it does (untrappable); `Normal` does nothing to a process
//!   that does not trap exits; any other reason ends it with that reason.
//! * A process that *traps exits* (`Process.trap_exits`) gets exit signals
//!   (except an explicit `Killed`) as ordinary messages, built by its
//!   wrapper function `process_id -> exit_reason -> 'm` when its `receive`
//!   reaches them (the wrapper runs in the receiver, never in the sender).
//! * Links are bidirectional: when a linked process ends abnormally, the
//!   other gets an exit signal with its reason (a `Killed` through a link is
//!   trappable, as Erlang's `killed`).
//! * A monitor (`watcher`, `watched`, `wrap`) delivers exactly one notice,
//!   `wrap reason`, to the watcher when the watched process ends (at once,
//!   with `Noproc`, if it is already dead); `demonitor` cancels it.
//!
//! Ending another process is asynchronous: the signal marks it
//! (`Shared::kill` and `pending_exit`, under its lock) and wakes it if it
//! waits; its scheduler ends it at its next safepoint instead of running
//! it (its stack is abandoned, its heap freed, its watchers notified). A
//! process ended by a signal prints no crash line: only the process that
//! crashed does.

use crate::heap::alloc::alloc_block;
use crate::process::make_msg;
use crate::process::{
    pid_of_serial, serial_of_pid, ExitReason, Inner, MonitorReg, Msg, ProcState, Process, Shared,
    Signal, WaitKind,
};
use crate::safepoint::{exit_now, exit_reason_of_value, exit_reason_value, guard, Fail};
use crate::scheduler::Scheduler;
use crate::value::{
    field, header, header_tag, header_wosize, is_block, is_immediate, of_bool, Value, UNIT,
};
use std::sync::atomic::Ordering;

/// Monitor handles: raw block, word 0 = watcher serial, word 1 = watched
/// serial, word 2 = monitor reference (unique in the VM). Compares by
/// identity (raw words), as other handles.
pub const TAG_MONITOR: u8 = 254;

/// How an exit signal travels: `Process.exit` or a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Exit,
    Link,
}

/// Where signals are delivered from: a scheduler (its pid cache, woken
/// processes run next on it) or the VM itself (the distribution layer's
/// reader threads: woken processes go to the global queue).
pub(crate) trait Deliver {
    /// The shared part of process `serial`, if it is in the table.
    fn lookup(&self, serial: u64) -> Option<std::sync::Arc<Shared>>;
    /// Queues a woken process that should run soon (it got a message).
    fn wake_next(&self, p: *mut Process);
    /// Queues a woken process (it is about to end).
    fn wake(&self, p: *mut Process);
}

impl Deliver for Scheduler {
    fn lookup(&self, serial: u64) -> Option<std::sync::Arc<Shared>> {
        Scheduler::lookup(self, serial)
    }
    fn wake_next(&self, p: *mut Process) {
        self.push_runnext(p)
    }
    fn wake(&self, p: *mut Process) {
        self.push_local(p)
    }
}

impl Deliver for crate::scheduler::Vm {
    fn lookup(&self, serial: u64) -> Option<std::sync::Arc<Shared>> {
        self.table.get(serial)
    }
    fn wake_next(&self, p: *mut Process) {
        self.push_injector(p)
    }
    fn wake(&self, p: *mut Process) {
        self.push_injector(p)
    }
}

/// Marks the process to end with `reason` at its next safepoint (an
/// explicit `Killed` overrides an earlier reason); returns it if it was
/// waiting, for the caller to enqueue after unlocking.
pub(crate) fn kill_locked(sh: &Shared, g: &mut Inner, reason: ExitReason) -> *mut Process {
    let x = g.x();
    match &x.pending_exit {
        None => x.pending_exit = Some(reason),
        Some(_) if reason == ExitReason::Killed => x.pending_exit = Some(reason),
        Some(_) => {}
    }
    sh.kill.store(true, Ordering::Release);
    sh.wake_if(g, |_| true)
}

/// The reason a pending exit signal ends the process with.
pub(crate) fn take_pending_exit(sh: &Shared) -> ExitReason {
    sh.lock()
        .x()
        .pending_exit
        .take()
        .unwrap_or(ExitReason::Killed)
}

/// What an exit signal does to a process in state `g`.
enum Effect {
    Nothing,
    Message,
    End,
}

fn effect(g: &Inner, reason: &ExitReason, via: Via) -> Effect {
    let untrappable = via == Via::Exit && *reason == ExitReason::Killed;
    if g.traps && !untrappable {
        Effect::Message
    } else if reason.is_normal() {
        Effect::Nothing
    } else {
        Effect::End
    }
}

/// Delivers an exit signal from `from` to process `to` (not the caller's
/// own running process: see [`signal_self`]). Processes it wakes are
/// queued on `sched`.
pub(crate) fn deliver_exit(
    sched: &impl Deliver,
    to: u64,
    from: u64,
    reason: &ExitReason,
    via: Via,
) {
    if crate::dist::is_proxy(to) {
        // A remote process: EXIT (a link's) or EXIT2 on the wire.
        if via == Via::Link {
            if let Some(sh) = sched.lookup(to) {
                if let Some(x) = sh.lock().x_opt() {
                    x.links.retain(|&l| l != from);
                }
            }
        }
        crate::dist::exit_signal(to, from, reason, via == Via::Link);
        return;
    }
    let Some(sh) = sched.lookup(to) else { return };
    let (woken, as_message) = {
        let mut g = sh.lock();
        if g.state == ProcState::Exited {
            return;
        }
        if via == Via::Link {
            if let Some(x) = g.x_opt() {
                x.links.retain(|&l| l != from);
            }
        }
        match effect(&g, reason, via) {
            Effect::Nothing => return,
            Effect::Message => {
                g.inbox
                    .push(signal_msg(UNIT, None, exit_signal(from, reason)));
                (sh.wake_if(&mut g, |k| k == WaitKind::Receive), true)
            }
            Effect::End => (kill_locked(&sh, &mut g, reason.clone()), false),
        }
    };
    if !woken.is_null() {
        if as_message {
            sched.wake_next(woken);
        } else {
            sched.wake(woken);
        }
    }
}

fn exit_signal(from: u64, reason: &ExitReason) -> Signal {
    Signal::Exit {
        from,
        reason: reason.clone(),
    }
}

fn signal_msg(value: Value, frag: Option<crate::heap::Fragment>, s: Signal) -> Msg {
    Msg {
        value,
        frag,
        signal: Some(Box::new(s)),
        small: crate::process::Small::NONE,
    }
}

/// An exit signal to the calling process itself: queued as a message if it
/// traps exits, ignored if `Normal`, else the process ends at once.
///
/// # Safety
/// `proc` is the calling process, on its own stack, with no owned Rust
/// values alive in its callers that must be dropped.
pub(crate) unsafe fn signal_self(proc: *mut Process, from: u64, reason: ExitReason, via: Via) {
    // SAFETY: `proc` is the running process.
    let p = unsafe { &mut *proc };
    let end = {
        let mut g = p.shared.lock();
        match effect(&g, &reason, via) {
            Effect::Nothing => false,
            Effect::Message => {
                g.inbox
                    .push(signal_msg(UNIT, None, exit_signal(from, &reason)));
                false
            }
            Effect::End => true,
        }
    };
    if end {
        p.exit_reason = Some(reason);
        // SAFETY: caller's guarantee; the reason was moved into the struct.
        unsafe { exit_now(proc) }
    }
}

/// Queues a monitor notice (`wrap reason`, built in the watcher) for
/// `watcher`; dropped if it is dead.
pub(crate) fn deliver_down(
    sched: &impl Deliver,
    watcher: u64,
    reference: u64,
    reason: ExitReason,
    wrap: Msg,
) {
    if crate::dist::is_proxy(watcher) {
        // A remote process's monitor on a local one: MONITOR_P_EXIT.
        crate::dist::monitor_exit(reference, &reason);
        return;
    }
    let Some(sh) = sched.lookup(watcher) else {
        return;
    };
    let mut rejected = None;
    let woken = {
        let mut g = sh.lock();
        if g.state == ProcState::Exited {
            rejected = Some(wrap);
            std::ptr::null_mut()
        } else {
            let s = Signal::Down { reference, reason };
            g.inbox.push(signal_msg(wrap.value, wrap.frag, s));
            sh.note_mail();
            sh.wake_if(&mut g, |k| k == WaitKind::Receive)
        }
    };
    drop(rejected);
    if !woken.is_null() {
        sched.wake_next(woken);
    }
}

/// At a process's exit: the exit signals, monitor notices and monitor
/// clean-up it owes. Runs in scheduler context.
pub(crate) fn on_exit(
    sched: &impl Deliver,
    serial: u64,
    reason: &ExitReason,
    links: Vec<u64>,
    monitors: Vec<MonitorReg>,
    held: Vec<(u64, u64)>,
) {
    for l in links {
        deliver_exit(sched, l, serial, reason, Via::Link);
    }
    for m in monitors {
        deliver_down(sched, m.watcher, m.reference, reason.clone(), m.wrap);
    }
    for (reference, watched) in held {
        remove_monitor_reg(sched, watched, reference);
    }
}

/// At a process's (or a proxy's) exit: the `join`s and `call`s waiting
/// on it learn its exit reason.
pub(crate) fn notify_watchers(
    sched: &impl Deliver,
    serial: u64,
    reason: &ExitReason,
    watchers: Vec<crate::process::Watcher>,
) {
    use crate::process::Watcher;
    for w in watchers {
        match w {
            Watcher::Join { serial: j } => {
                let Some(sh) = sched.lookup(j) else { continue };
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
                    sched.wake_next(woken);
                }
            }
            Watcher::Call {
                serial: c,
                reference: r,
            } => fail_call(sched, c, r, reason.clone()),
        }
    }
}

/// Ends call `r` of `caller` because its callee ended with `reason` (a
/// callee that ends `Normal` without replying fails the call too,
/// LANGUAGE.md §2: never a normal exit of the caller); nothing if the call
/// is over.
pub(crate) fn fail_call(sched: &impl Deliver, caller: u64, r: u64, reason: ExitReason) {
    let Some(sh) = sched.lookup(caller) else {
        return;
    };
    let woken = {
        let mut g = sh.lock();
        if g.state != ProcState::Exited && g.x().calls.contains(&r) {
            let why = if reason.is_normal() {
                ExitReason::crashed(crate::scheduler::CALL_NO_REPLY)
            } else {
                reason
            };
            g.x().downs.push((r, why));
            sh.wake_if(&mut g, |k| k == WaitKind::Reply(r))
        } else {
            std::ptr::null_mut()
        }
    };
    if !woken.is_null() {
        sched.wake_next(woken);
    }
}

/// Removes the registration of monitor `reference` from `watched`; true if
/// it was there (so its notice will never be sent).
fn remove_monitor_reg(sched: &impl Deliver, watched: u64, reference: u64) -> bool {
    let Some(sh) = sched.lookup(watched) else {
        return false;
    };
    let reg = {
        let mut g = sh.lock();
        g.x_opt().and_then(|x| {
            let i = x.monitors.iter().position(|m| m.reference == reference)?;
            Some(x.monitors.swap_remove(i))
        })
    };
    reg.is_some()
}

/// Turns a signal entry into its message, running the wrapper in the
/// receiving process. `value` is the entry's value (a monitor's wrapper).
/// Must not be kept across anything: may run user code (which may yield).
///
/// # Safety
/// `proc` is the calling process, inside `recv_next`, on its own stack.
pub(crate) unsafe fn convert_signal(proc: *mut Process, s: Signal, value: Value) -> Value {
    // SAFETY: `proc` is the running process; `vm` outlives it.
    unsafe {
        let entry = (*(*proc).vm).entry;
        // Generated code entered from here cannot have the frames below it
        // walked by the collector: no collection until it returns.
        (*proc).gc_inhibit += 1;
        let v = match s {
            Signal::Exit { from, reason } => {
                let r = exit_reason_value(&mut *proc, &reason);
                drop(reason);
                let wrap = (*proc).trap_wrap;
                let f = entry(proc, wrap, pid_of_serial(from));
                entry(proc, f, r)
            }
            Signal::Down { reason, .. } => {
                let r = exit_reason_value(&mut *proc, &reason);
                drop(reason);
                entry(proc, value, r)
            }
            Signal::Tcp(event) => {
                let e = event.value(&mut *proc);
                drop(event);
                entry(proc, value, e)
            }
            Signal::Node { up, name } => {
                let e = crate::dist::api::node_event_value(&mut *proc, up, &name);
                drop(name);
                entry(proc, value, e)
            }
            Signal::Done { .. } => value,
        };
        (*proc).gc_inhibit -= 1;
        v
    }
}

// ---------------------------------------------------------------------------
// Runtime functions
// ---------------------------------------------------------------------------

/// `Process.alive p`: a tagged bool.
///
/// # Safety
/// `proc` must be the calling process.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_alive(proc: *mut Process, pid: Value) -> Value {
    // SAFETY: `proc` is the running process.
    of_bool(crate::safepoint::is_alive(unsafe { &*proc }, pid))
}

/// `Process.exit p reason`: sends an exit signal (see the module docs).
/// Ending oneself takes effect at once.
///
/// # Safety
/// `proc` must be the calling process; `reason` an `exit_reason` value.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_exit_signal(
    proc: *mut Process,
    pid: Value,
    reason: Value,
) -> Value {
    // SAFETY: `proc` is the running process.
    unsafe {
        guard(proc, || {
            if !is_immediate(pid) {
                return Err(Fail::msg("Process.exit: not a pid"));
            }
            let r = exit_reason_of_value(reason);
            let (to, me) = (serial_of_pid(pid), (*proc).serial);
            if to == me {
                signal_self(proc, me, r, Via::Exit);
            } else {
                let sched = &*(*proc).sched;
                deliver_exit(sched, to, me, &r, Via::Exit);
            }
            Ok(UNIT)
        })
    }
}

/// Links the caller with `pid` (both ways). Linking to a dead or unknown
/// process delivers an exit signal with `Noproc` to the caller.
///
/// # Safety
/// `proc` must be the calling process.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_link(proc: *mut Process, pid: Value) -> Value {
    // SAFETY: `proc` is the running process.
    unsafe {
        guard(proc, || {
            if !is_immediate(pid) {
                return Err(Fail::msg("Process.link: not a pid"));
            }
            let (to, me) = (serial_of_pid(pid), (*proc).serial);
            if to != me && !link_both(&*(*proc).sched, &*proc, to) {
                signal_self(proc, to, ExitReason::Noproc, Via::Link);
            }
            Ok(UNIT)
        })
    }
}

/// Records a link between the running process `p` and `to`; false if `to`
/// is dead or unknown.
fn link_both(sched: &Scheduler, p: &Process, to: u64) -> bool {
    let Some(sh) = sched.lookup(to) else {
        return false;
    };
    {
        let mut g = sh.lock();
        if g.state == ProcState::Exited {
            return false;
        }
        let x = g.x();
        if !x.links.contains(&p.serial) {
            x.links.push(p.serial);
        }
    }
    {
        let mut g = p.shared.lock();
        let x = g.x();
        if !x.links.contains(&to) {
            x.links.push(to);
        }
    }
    if crate::dist::is_proxy(to) {
        crate::dist::link(p.serial, to);
    }
    true
}

/// `spawn_link`: spawns `closure` (as `caravan_rt_spawn`) linked to the
/// caller before it can run.
///
/// # Safety
/// `proc` must be the calling process; `closure` a valid value.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_spawn_link(proc: *mut Process, closure: Value) -> Value {
    // SAFETY: `proc` is the running process.
    unsafe {
        guard(proc, || {
            crate::abi::spawn_process(proc, closure, true, None)
        })
    }
}

/// `Process.trap_exits self wrap`: from now on exit signals (except an
/// explicit `Killed`) arrive as messages `wrap from reason`. `pid` must be
/// the caller's own.
///
/// # Safety
/// `proc` must be the calling process; `wrap` a closure of its heap.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_trap_exits(
    proc: *mut Process,
    pid: Value,
    wrap: Value,
) -> Value {
    // SAFETY: `proc` is the running process.
    unsafe {
        guard(proc, || {
            let p = &mut *proc;
            if !is_immediate(pid) || serial_of_pid(pid) != p.serial {
                return Err(Fail::msg(
                    "Process.trap_exits: a process can only trap its own exits",
                ));
            }
            p.trap_wrap = wrap;
            p.shared.lock().traps = true;
            Ok(UNIT)
        })
    }
}

/// `Process.monitor watcher watched wrap`: the watcher will get exactly
/// one notice `wrap reason` when `watched` ends (`Noproc` at once if it is
/// dead). Returns the monitor handle ([`TAG_MONITOR`]).
///
/// # Safety
/// `proc` must be the calling process; `wrap` a valid value.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_monitor(
    proc: *mut Process,
    watcher: Value,
    watched: Value,
    wrap: Value,
) -> Value {
    // SAFETY: `proc` is the running process.
    unsafe {
        guard(proc, || {
            if !is_immediate(watcher) || !is_immediate(watched) {
                return Err(Fail::msg("Process.monitor: not a pid"));
            }
            let sched = &*(*proc).sched;
            let (watcher, watched) = (serial_of_pid(watcher), serial_of_pid(watched));
            let reference = sched.vm().next_monitor_ref();
            let b = alloc_block(&mut *proc, TAG_MONITOR, 3);
            *b = watcher;
            *b.add(1) = watched;
            *b.add(2) = reference;
            let (m, _) = make_msg(&mut sched.local().copy, None, wrap)
                .ok_or_else(|| Fail::msg(crate::process::OUT_OF_MEMORY))?;
            let mut wrap = Some(m);
            if let Some(sh) = sched.lookup(watched) {
                let mut g = sh.lock();
                if g.state != ProcState::Exited {
                    g.x().monitors.push(MonitorReg {
                        watcher,
                        reference,
                        wrap: wrap.take().expect("unused"),
                    });
                }
            }
            match wrap {
                None => {
                    if let Some(w) = sched.lookup(watcher) {
                        let mut g = w.lock();
                        if g.state != ProcState::Exited {
                            g.x().held_monitors.push((reference, watched));
                        }
                    }
                    if crate::dist::is_proxy(watched) {
                        crate::dist::monitor(watcher, watched, reference);
                    }
                }
                Some(m) => deliver_down(sched, watcher, reference, ExitReason::Noproc, m),
            }
            Ok(b as Value)
        })
    }
}

/// `Process.demonitor m`: no notice of `m` will be received (a notice
/// already queued is removed; one the watcher's current receive already
/// examined stays, unless the caller is the watcher).
///
/// # Safety
/// `proc` must be the calling process; `m` a monitor handle.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_demonitor(proc: *mut Process, m: Value) -> Value {
    // SAFETY: `proc` is the running process.
    unsafe {
        guard(proc, || {
            if !is_block(m) || header_tag(header(m)) != TAG_MONITOR || header_wosize(header(m)) < 3
            {
                return Err(Fail::msg("Process.demonitor: not a monitor"));
            }
            let (watcher, watched, reference) = (field(m, 0), field(m, 1), field(m, 2));
            let sched = &*(*proc).sched;
            if remove_monitor_reg(sched, watched, reference) {
                if crate::dist::is_proxy(watched) {
                    crate::dist::demonitor(watcher, reference);
                }
                if let Some(w) = sched.lookup(watcher) {
                    let mut g = w.lock();
                    if let Some(x) = g.x_opt() {
                        x.held_monitors.retain(|h| h.0 != reference);
                    }
                }
                return Ok(UNIT);
            }
            // The notice was sent (or is being): purge it.
            let is_ref = |e: &Msg| {
                matches!(e.signal.as_deref(), Some(Signal::Down { reference: r, .. })
                    | Some(Signal::Done { reference: Some(r) }) if *r == reference)
            };
            let purged: Vec<Msg> = match sched.lookup(watcher) {
                Some(w) => {
                    let mut g = w.lock();
                    let (out, keep): (Vec<Msg>, Vec<Msg>) =
                        std::mem::take(&mut g.inbox).into_iter().partition(is_ref);
                    g.inbox = keep;
                    out
                }
                None => Vec::new(),
            };
            drop(purged);
            let p = &mut *proc;
            if watcher == p.serial {
                let mut i = 0;
                while i < p.queue.len() {
                    if is_ref(&p.queue[i]) {
                        drop(p.queue.remove(i));
                        if p.cursor > i {
                            p.cursor -= 1;
                        }
                        match p.last {
                            Some(l) if l == i => p.last = None,
                            Some(l) if l > i => p.last = Some(l - 1),
                            _ => {}
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            Ok(UNIT)
        })
    }
}
