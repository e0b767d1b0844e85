//! Runtime functions of messages: `send` and selective receive (BEAM's
//! `loop_rec` / `remove_message` / `wait_timeout`).

use super::*;

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
            if crate::dist::is_proxy(serial) {
                // A process of another node: encoded by its message type
                // and written to the connection.
                p.charge(SEND_REDS);
                return crate::dist::send(serial, msg)
                    .map(|()| UNIT)
                    .map_err(Fail::msg);
            }
            let target: &crate::process::Shared = if serial == p.serial {
                &*Arc::as_ptr(&p.shared)
            } else {
                match sched.lookup_ptr(serial) {
                    Some(t) => &*t,
                    None => {
                        p.charge(SEND_REDS);
                        return Ok(UNIT);
                    }
                }
            };
            let (m, words) = mailbox_msg(&mut local_of(proc).copy, Some(&p.large), msg)
                .ok_or_else(|| Fail::msg(crate::process::OUT_OF_MEMORY))?;
            p.charge(SEND_REDS + (words >> 4) as i64);
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
                    target.note_mail();
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
                        let w = target.wake_if(&mut g, |k| k == WaitKind::Receive);
                        if !w.is_null() {
                            // SAFETY: `w` was just woken under the lock:
                            // parked, run by no thread until we queue it.
                            take_inbox(target, &mut g, &mut *w);
                        }
                        w
                    }
                }
            };
            drop(rejected);
            if full {
                return Err(Fail::msg(crate::process::OUT_OF_MEMORY));
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
    // Without the lock: an empty inbox (the common case before a
    // receive blocks) costs no lock round trip. See `Shared::mail` for
    // why a stale answer is harmless.
    if !p.shared.mail.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    // SAFETY: a process's `shared` outlives it; the borrow does not
    // alias `p`'s own fields, which `take_inbox` writes.
    let sh = unsafe { &*Arc::as_ptr(&p.shared) };
    let mut g = sh.lock();
    take_inbox(sh, &mut g, p)
}

/// Moves `sh`'s inbox behind `p`'s private queue, under the lock `g`;
/// returns false if the inbox was empty. Run by the owner (`refill`), or
/// by the sender that wakes a process blocked in `receive`, for it: the
/// woken process then finds its message without taking its lock again
/// (a Go channel send hands its value to a waiting receiver the same
/// way), which saves one lock round trip a hop in a ring.
fn take_inbox(sh: &crate::process::Shared, g: &mut crate::process::Inner, p: &mut Process) -> bool {
    sh.mail.store(false, std::sync::atomic::Ordering::Relaxed);
    if g.inbox.is_empty() {
        return false;
    }
    g.inbox_words = 0;
    if p.queue.is_empty() {
        // Swap buffers: no allocation in the steady state. `clear` puts
        // the empty deque's head back at 0, so the conversion to a `Vec`
        // moves nothing (it would make the deque contiguous otherwise).
        p.queue.clear();
        let spare: Vec<Msg> = Vec::from(std::mem::take(&mut p.queue));
        let full = std::mem::replace(&mut g.inbox, spare);
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
    // The process waits here, in this small frame, not inside the work of
    // `recv_step`: the stack a blocked process keeps (and that parking
    // copies out, vm/src/scheduler/stackpark.rs) holds only this frame
    // above the generated code's. With the work inlined, an LTO build's
    // frame was 536 bytes, and every idle process kept them.
    loop {
        // SAFETY: `proc` is the running process (caller's guarantee).
        if let Some(v) = unsafe { recv_step(proc, timeout_ms) } {
            return v;
        }
        // SAFETY: as above; `recv_step` set the wait request, and no
        // borrow of the process is live.
        unsafe { switch_out(proc) };
    }
}

/// One look at the mailbox for [`caravan_rt_recv_next`]: the next
/// message after the cursor, or `RECV_TIMEOUT` once the deadline has
/// passed; `None` when there is none yet, with the process's request set
/// to wait for one.
///
/// # Safety
/// As [`caravan_rt_recv_next`].
#[inline(never)]
unsafe fn recv_step(proc: *mut Process, timeout_ms: i64) -> Option<Value> {
    // SAFETY: `proc` is the running process; every `&mut` to it ends
    // before the wrapper of a signal runs.
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
                    p.charge(1);
                    if p.queue[i].small.len != 0 {
                        let small = std::mem::replace(&mut p.queue[i].small, Small::NONE);
                        p.queue[i].value = crate::gc::take_small(p, &small);
                        crate::gc::maybe_collect(p);
                    } else if let Some(f) = p.queue[i].frag.take() {
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
                        return Ok(Some(m.value));
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
                    return Ok(Some(v));
                }
                if refill(p) {
                    continue;
                }
                let deadline = p.recv_deadline.flatten();
                if let Some(d) = deadline {
                    if crate::scheduler::now() >= d {
                        return Ok(Some(RECV_TIMEOUT));
                    }
                }
                p.request = Request::Wait {
                    kind: WaitKind::Receive,
                    deadline,
                };
                return Ok(None);
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
