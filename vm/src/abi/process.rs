//! Runtime functions of processes: yielding, spawning, identity, joining,
//! sleeping, crashing and ending the program (`docs/vm-abi.md`).

use super::*;

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

/// The cold path of a function entry whose stack pointer `sp` fell below
/// the trip point (`Process::trip`) while it was above `stack_limit`
/// (generated code tests that first and calls `caravan_rt_stack_overflow`
/// instead). The reductions the trip point counted are settled: with some
/// left, the trip point goes back below `sp` and the function runs on;
/// with none, the slice ends as in [`caravan_rt_yield`]. Called through a
/// trampoline, whose `exit_fp` tells the scheduler where the next slice's
/// trip point is measured from.
///
/// # Safety
/// `proc` must be the calling process.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_tick(proc: *mut Process, sp: usize) -> Value {
    // SAFETY: `proc` is the running process.
    unsafe {
        let p = &mut *proc;
        let left = p.reds_left();
        if left > 0 {
            p.rebase(left, sp);
            return UNIT;
        }
        caravan_rt_yield(proc)
    }
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

/// `raise exn` outside any `try` of the calling function: resumes at the
/// innermost handler of the process's generated frames, or crashes the
/// process with the exception's text at `loc` ([`crate::exn`]).
///
/// # Safety
/// `proc` must be the calling process, called through a trampoline;
/// `exn` an exception value; `loc` as [`caravan_rt_fail`].
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_raise(proc: *mut Process, exn: Value, loc: *const u8) -> ! {
    // SAFETY: forwarded.
    unsafe { crate::exn::raise(proc, exn, loc) }
}

/// `failwith msg`: raises `Failure msg` (uncaught, the process crashes
/// with `Crashed msg` at `loc`).
///
/// # Safety
/// As [`caravan_rt_raise`]; `msg` a string.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_failwith(proc: *mut Process, msg: Value, loc: *const u8) -> ! {
    // SAFETY: forwarded; `msg` is reachable from the new block only, and
    // `make` does not collect.
    unsafe {
        let e = crate::exn::make(&mut *proc, crate::exn::FAILURE, &[msg]);
        crate::exn::raise(proc, e, loc)
    }
}

/// Integer division (or `mod`) by zero: raises `Division_by_zero`
/// (uncaught: `Crashed "division by zero"` at `loc`).
///
/// # Safety
/// As [`caravan_rt_fail`].
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_div_by_zero(proc: *mut Process, loc: *const u8) -> ! {
    // SAFETY: forwarded.
    unsafe {
        let e = crate::exn::make(&mut *proc, crate::exn::DIVISION_BY_ZERO, &[]);
        crate::exn::raise(proc, e, loc)
    }
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
        let (m, _) = make_msg(&mut local_of(proc).copy, Some(&(*proc).large), closure)
            .ok_or_else(|| Fail::msg(crate::process::OUT_OF_MEMORY))?;
        let child = sched.new_process(sched.next_serial());
        let c = &mut *child;
        if let Some(w) = max_heap_words {
            c.max_heap_words = w;
            c.shared.lock().x().max_heap_words = Some(w);
        }
        c.init_closure = m.value;
        if let Some(f) = m.frag {
            c.adopt(f);
        }
        let pid = pid_of_serial(c.serial);
        c.init_arg = pid;
        if link {
            c.shared.lock().x().links.push((*proc).serial);
            (*proc).shared.lock().x().links.push(c.serial);
        }
        (*proc).charge(SPAWN_REDS);
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
            // Not through the pid cache: an entry left there would hold
            // the child's shared part after it ends, which could then not
            // be reused for the next spawn (a join is seldom repeated).
            let now = match vm.table.get(t) {
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
    while d.is_none_or(|d| crate::scheduler::now() < d) {
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
