//! Runtime functions of request/reply: `call` (a fresh reply channel and
//! a watch on the callee) and `reply`.

use super::*;

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
                        let callee = serial_of_pid(callee);
                        if crate::dist::is_proxy(callee) {
                            crate::dist::watch_call(me, r, callee);
                        }
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
    crate::dist::call_done(p.serial, r);
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
                    let expired = deadline.is_some_and(|d| crate::scheduler::now() >= d);
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
            if crate::dist::is_proxy(caller) {
                // The caller is on another node: `{Tag, V}` on the wire.
                (*proc).charge(SEND_REDS);
                return crate::dist::reply(r, v).map(|()| UNIT).map_err(Fail::msg);
            }
            let sched = sched_of(proc);
            let Some(target) = sched.lookup_ptr(caller) else {
                return Ok(UNIT);
            };
            // SAFETY: borrowed from the pid cache, stable during this call.
            let target: &crate::process::Shared = &*target;
            let (m, words) = make_msg(&mut local_of(proc).copy, Some(&(*proc).large), v)
                .ok_or_else(|| Fail::msg(crate::process::OUT_OF_MEMORY))?;
            (*proc).charge(SEND_REDS + (words >> 4) as i64);
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
