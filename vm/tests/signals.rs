//! Exit signals, links, monitors, trapping exits.

mod common;
use caravan_vm::value::*;
use caravan_vm::*;
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

fn checks(cell: &'static OnceLock<&'static Checks>) -> &'static Checks {
    cell.get_or_init(Checks::new)
}

fn reason(r: ExitReason) -> Value {
    match r {
        ExitReason::Normal => of_int(0),
        ExitReason::Shutdown => of_int(1),
        ExitReason::Killed => of_int(2),
        ExitReason::Timeout => of_int(3),
        ExitReason::Noproc => of_int(4),
        ExitReason::Noconnection => of_int(5),
        ExitReason::Crashed(_) => unreachable!(),
    }
}

unsafe extern "C" fn waits(proc: *mut Process, _c: Value, _s: Value) -> Value {
    unsafe { recv_any(proc) };
    UNIT
}

unsafe extern "C" fn spins(proc: *mut Process, _c: Value, _s: Value) -> Value {
    unsafe {
        loop {
            tick(proc);
        }
    }
}

unsafe extern "C" fn fails(proc: *mut Process, _c: Value, _s: Value) -> Value {
    unsafe {
        let m = alloc_string(&mut *proc, b"boom");
        caravan_rt_fail(proc, m, std::ptr::null())
    }
}

/// Trap wrapper, first argument: returns a closure holding `from`.
unsafe extern "C" fn trap_wrap(proc: *mut Process, _c: Value, from: Value) -> Value {
    unsafe { closure(proc, trap_wrap2, &[from]) }
}
/// Second argument: the message `Exit (from, reason)` (tag 5).
unsafe extern "C" fn trap_wrap2(proc: *mut Process, c: Value, r: Value) -> Value {
    unsafe { block(proc, 5, &[env(c, 0), r]) }
}
/// Monitor wrapper: `Down (label, reason)` (tag 6).
unsafe extern "C" fn down_wrap(proc: *mut Process, c: Value, r: Value) -> Value {
    unsafe { block(proc, 6, &[env(c, 0), r]) }
}

unsafe fn is_tag(v: Value, t: u8) -> bool {
    unsafe { is_block(v) && header_tag(header(v)) == t }
}

#[test]
fn exit_signal_ends_waiting_and_running_processes() {
    static C: OnceLock<&'static Checks> = OnceLock::new();
    unsafe extern "C" fn main(proc: *mut Process, clo: Value, _a: Value) -> Value {
        unsafe {
            let ck: &Checks = val_ref(env(clo, 0));
            let w = spawn(proc, waits, &[]);
            let s = spawn(proc, spins, &[]);
            caravan_rt_yield_now(proc);
            ck.check(caravan_rt_alive(proc, w) == TRUE, || "w alive".into());
            caravan_rt_exit_signal(proc, w, reason(ExitReason::Killed));
            caravan_rt_exit_signal(proc, s, reason(ExitReason::Shutdown));
            let rw = reason_text(caravan_rt_join(proc, w));
            ck.check(rw == "Killed", || rw.clone());
            let rs = reason_text(caravan_rt_join(proc, s));
            ck.check(rs == "Shutdown", || rs.clone());
            ck.check(caravan_rt_alive(proc, w) == FALSE, || "w dead".into());
            // Normal does nothing to a process that does not trap exits.
            let n = spawn(proc, waits, &[]);
            caravan_rt_exit_signal(proc, n, reason(ExitReason::Normal));
            caravan_rt_sleep(proc, of_int(5));
            ck.check(caravan_rt_alive(proc, n) == TRUE, || {
                "normal killed it".into()
            });
            caravan_rt_send(proc, n, UNIT);
            let rn = reason_text(caravan_rt_join(proc, n));
            ck.check(rn == "Normal", || rn.clone());
            // A process that never ran.
            let q = spawn(proc, spins, &[]);
            caravan_rt_exit_signal(proc, q, reason(ExitReason::Killed));
            let rq = reason_text(caravan_rt_join(proc, q));
            ck.check(rq == "Killed", || rq.clone());
            // Signals to dead or unknown processes are ignored.
            caravan_rt_exit_signal(proc, q, reason(ExitReason::Killed));
            caravan_rt_exit_signal(proc, pid_of_serial(1 << 40), reason(ExitReason::Killed));
        }
        UNIT
    }
    for schedulers in [1, 2] {
        let ck = checks(&C);
        assert_eq!(run_main(schedulers, 30, main, &[ptr_val(ck)]), 0);
        ck.assert_ok();
    }
}

#[test]
fn trapping_exits_turns_signals_into_messages() {
    static C: OnceLock<&'static Checks> = OnceLock::new();
    unsafe extern "C" fn trapper(proc: *mut Process, clo: Value, me: Value) -> Value {
        unsafe {
            let w = closure(proc, trap_wrap, &[]);
            caravan_rt_trap_exits(proc, me, w);
            caravan_rt_send(proc, env(clo, 0), UNIT); // ready
                                                      // Ordinary messages and signals arrive in order.
            loop {
                let m = recv_any(proc);
                caravan_rt_send(proc, env(clo, 0), m);
            }
        }
    }
    unsafe extern "C" fn main(proc: *mut Process, clo: Value, _a: Value) -> Value {
        unsafe {
            let ck: &Checks = val_ref(env(clo, 0));
            let me = caravan_rt_self(proc);
            let t = spawn(proc, trapper, &[me]);
            recv_any(proc);
            caravan_rt_send(proc, t, of_int(1));
            caravan_rt_exit_signal(proc, t, reason(ExitReason::Shutdown));
            caravan_rt_exit_signal(proc, t, reason(ExitReason::Normal));
            caravan_rt_send(proc, t, of_int(2));
            let a = recv_any(proc);
            ck.check(a == of_int(1), || "first".into());
            let b = recv_any(proc);
            ck.check(
                is_tag(b, 5) && field(b, 0) == me && field(b, 1) == of_int(1),
                || "Exit (main, Shutdown)".into(),
            );
            let c = recv_any(proc);
            ck.check(is_tag(c, 5) && field(c, 1) == of_int(0), || {
                "Exit (main, Normal)".into()
            });
            let d = recv_any(proc);
            ck.check(d == of_int(2), || "last".into());
            // An explicit Killed cannot be trapped.
            caravan_rt_exit_signal(proc, t, reason(ExitReason::Killed));
            let r = reason_text(caravan_rt_join(proc, t));
            ck.check(r == "Killed", || r.clone());
        }
        UNIT
    }
    let ck = checks(&C);
    assert_eq!(run_main(2, 30, main, &[ptr_val(ck)]), 0);
    ck.assert_ok();
}

#[test]
fn links_propagate_abnormal_exits() {
    static C: OnceLock<&'static Checks> = OnceLock::new();
    /// Links to env0 then waits forever.
    unsafe extern "C" fn linker(proc: *mut Process, clo: Value, _s: Value) -> Value {
        unsafe {
            caravan_rt_link(proc, env(clo, 0));
            caravan_rt_send(proc, env(clo, 1), UNIT);
            recv_any(proc);
        }
        UNIT
    }
    /// Waits for a message, then crashes (0) or returns (1).
    unsafe extern "C" fn dies(proc: *mut Process, _c: Value, _s: Value) -> Value {
        unsafe {
            if recv_any(proc) == of_int(0) {
                let m = alloc_string(&mut *proc, b"linked crash");
                caravan_rt_fail(proc, m, std::ptr::null());
            }
        }
        UNIT
    }
    unsafe extern "C" fn main(proc: *mut Process, clo: Value, _a: Value) -> Value {
        unsafe {
            let ck: &Checks = val_ref(env(clo, 0));
            let me = caravan_rt_self(proc);
            // A crash kills the linked process with the same reason.
            let d = spawn(proc, dies, &[]);
            let l = spawn(proc, linker, &[d, me]);
            recv_any(proc);
            caravan_rt_send(proc, d, of_int(0));
            let r = reason_text(caravan_rt_join(proc, l));
            ck.check(r == "Crashed linked crash", || r.clone());
            // A normal exit does not.
            let d = spawn(proc, dies, &[]);
            let l = spawn(proc, linker, &[d, me]);
            recv_any(proc);
            caravan_rt_send(proc, d, of_int(1));
            caravan_rt_join(proc, d);
            caravan_rt_sleep(proc, of_int(5));
            ck.check(caravan_rt_alive(proc, l) == TRUE, || {
                "normal exit propagated".into()
            });
            // And the other way round: killing the linker kills the linked.
            let d = spawn(proc, dies, &[]);
            let l2 = spawn(proc, linker, &[d, me]);
            recv_any(proc);
            caravan_rt_exit_signal(proc, l2, reason(ExitReason::Killed));
            let r = reason_text(caravan_rt_join(proc, d));
            ck.check(r == "Killed", || r.clone());
            caravan_rt_send(proc, l, UNIT);
            caravan_rt_join(proc, l);
            // Linking to a dead process: Noproc.
            let dead = spawn(proc, dies, &[]);
            caravan_rt_send(proc, dead, of_int(1));
            caravan_rt_join(proc, dead);
            let l3 = spawn(proc, linker, &[dead, me]);
            let r = reason_text(caravan_rt_join(proc, l3));
            ck.check(r == "Noproc", || r.clone());
            // Trapping: spawn_link child crashes -> a message.
            let w = closure(proc, trap_wrap, &[]);
            caravan_rt_trap_exits(proc, me, w);
            let c = closure(proc, fails, &[]);
            let child = caravan_rt_spawn_link(proc, c);
            let m = recv_match(proc, 5000, |v| is_tag(v, 5));
            ck.check(m.is_some_and(|m| field(m, 0) == child), || {
                "no Exit message".into()
            });
            if let Some(m) = m {
                let r = reason_text(field(m, 1));
                ck.check(r == "Crashed boom", || r.clone());
            }
        }
        UNIT
    }
    let ck = checks(&C);
    assert_eq!(run_main(2, 30, main, &[ptr_val(ck)]), 0);
    ck.assert_ok();
}

#[test]
fn monitors_notify_exactly_once() {
    static C: OnceLock<&'static Checks> = OnceLock::new();
    unsafe extern "C" fn main(proc: *mut Process, clo: Value, _a: Value) -> Value {
        unsafe {
            let ck: &Checks = val_ref(env(clo, 0));
            let me = caravan_rt_self(proc);
            let w = spawn(proc, waits, &[]);
            let wrap = closure(proc, down_wrap, &[of_int(7)]);
            let m = caravan_rt_monitor(proc, me, w, wrap);
            ck.check(is_tag(m, TAG_MONITOR), || "handle".into());
            caravan_rt_exit_signal(proc, w, reason(ExitReason::Shutdown));
            let n = recv_within(proc, 5000);
            ck.check(
                n.is_some_and(|n| {
                    is_tag(n, 6) && field(n, 0) == of_int(7) && field(n, 1) == of_int(1)
                }),
                || "Down (7, Shutdown)".into(),
            );
            ck.check(recv_within(proc, 20).is_none(), || "second notice".into());
            // Already dead: Noproc at once.
            let wrap = closure(proc, down_wrap, &[of_int(8)]);
            caravan_rt_monitor(proc, me, w, wrap);
            let n = recv_within(proc, 5000);
            ck.check(
                n.is_some_and(|n| field(n, 0) == of_int(8) && field(n, 1) == of_int(4)),
                || "Down (8, Noproc)".into(),
            );
            // Demonitor before the end: no notice.
            let w2 = spawn(proc, waits, &[]);
            let wrap = closure(proc, down_wrap, &[of_int(9)]);
            let m2 = caravan_rt_monitor(proc, me, w2, wrap);
            caravan_rt_demonitor(proc, m2);
            caravan_rt_exit_signal(proc, w2, reason(ExitReason::Killed));
            caravan_rt_join(proc, w2);
            ck.check(recv_within(proc, 20).is_none(), || {
                "notice after demonitor".into()
            });
            // Demonitor after the end, before receiving: the notice is purged.
            let w3 = spawn(proc, waits, &[]);
            let wrap = closure(proc, down_wrap, &[of_int(10)]);
            let m3 = caravan_rt_monitor(proc, me, w3, wrap);
            caravan_rt_exit_signal(proc, w3, reason(ExitReason::Killed));
            caravan_rt_join(proc, w3);
            caravan_rt_demonitor(proc, m3);
            ck.check(recv_within(proc, 20).is_none(), || {
                "notice not purged".into()
            });
            // Monitoring on behalf of another process (watcher != caller).
            let watcher = spawn(proc, forwards_one, &[me]);
            let w4 = spawn(proc, waits, &[]);
            let wrap = closure(proc, down_wrap, &[of_int(11)]);
            caravan_rt_monitor(proc, watcher, w4, wrap);
            caravan_rt_send(proc, w4, UNIT);
            let n = recv_within(proc, 5000);
            ck.check(
                n.is_some_and(|n| field(n, 0) == of_int(11) && field(n, 1) == of_int(0)),
                || "forwarded Down (11, Normal)".into(),
            );
        }
        UNIT
    }
    unsafe extern "C" fn forwards_one(proc: *mut Process, clo: Value, _s: Value) -> Value {
        unsafe {
            let m = recv_any(proc);
            caravan_rt_send(proc, env(clo, 0), m);
        }
        UNIT
    }
    let ck = checks(&C);
    assert_eq!(run_main(2, 30, main, &[ptr_val(ck)]), 0);
    ck.assert_ok();
}

#[test]
fn killing_the_main_process_exits_one() {
    unsafe extern "C" fn killer(proc: *mut Process, clo: Value, _s: Value) -> Value {
        unsafe { caravan_rt_exit_signal(proc, env(clo, 0), of_int(2)) };
        UNIT
    }
    unsafe extern "C" fn main(proc: *mut Process, _c: Value, _a: Value) -> Value {
        unsafe {
            let me = caravan_rt_self(proc);
            spawn(proc, killer, &[me]);
            recv_any(proc)
        }
    }
    assert_eq!(run_main(2, 30, main, &[]), 1);
    unsafe extern "C" fn exits_self(proc: *mut Process, _c: Value, _a: Value) -> Value {
        unsafe {
            let me = caravan_rt_self(proc);
            caravan_rt_exit_signal(proc, me, of_int(0)); // Normal: ignored
            caravan_rt_exit_signal(proc, me, of_int(1)); // Shutdown: ends now
        }
        of_int(99)
    }
    assert_eq!(run_main(1, 30, exits_self, &[]), 1);
}

/// Processes killed at random moments while exchanging messages and
/// calls: the VM must stay sound and terminate.
#[test]
fn random_kills_under_load() {
    static DONE: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn chatter(proc: *mut Process, clo: Value, _s: Value) -> Value {
        unsafe {
            let peer = env(clo, 0);
            let mut i = 0i64;
            loop {
                tick(proc);
                i += 1;
                let s = alloc_string(&mut *proc, b"payload");
                let m = block(proc, 0, &[of_int(i), s]);
                caravan_rt_send(proc, peer, m);
                if i % 3 == 0 {
                    recv_within(proc, 1);
                }
                if i % 7 == 0 {
                    caravan_rt_yield_now(proc);
                }
            }
        }
    }
    unsafe extern "C" fn main(proc: *mut Process, _c: Value, _a: Value) -> Value {
        unsafe {
            let me = caravan_rt_self(proc);
            let mut rng = 0x1234_5678_9abc_def1u64;
            for round in 0..20 {
                let mut pids = [UNIT; 64];
                for i in 0..64 {
                    let peer = if i == 0 { me } else { pids[i - 1] };
                    pids[i] = spawn(proc, chatter, &[peer]);
                    if i % 2 == 1 {
                        caravan_rt_link(proc, pids[i]);
                    }
                }
                let w = closure(proc, trap_wrap, &[]);
                caravan_rt_trap_exits(proc, me, w);
                caravan_rt_sleep(proc, of_int(1 + round % 3));
                for _ in 0..64 {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let victim = pids[(rng % 64) as usize];
                    let r = of_int((rng >> 8) as i64 % 3);
                    caravan_rt_exit_signal(proc, victim, r);
                }
                for &p in &pids {
                    caravan_rt_exit_signal(proc, p, of_int(2));
                    caravan_rt_join(proc, p);
                }
                // Drain what arrived.
                while recv_within(proc, 0).is_some() {}
                DONE.fetch_add(1, Ordering::SeqCst);
            }
        }
        UNIT
    }
    assert_eq!(run_main(4, 60, main, &[]), 0);
    assert_eq!(DONE.load(Ordering::SeqCst), 20);
}

#[test]
fn exit_hooks_run_when_a_process_ends() {
    use std::sync::Mutex;
    static SEEN: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    unsafe extern "C" fn hooked(proc: *mut Process, clo: Value, _s: Value) -> Value {
        unsafe {
            at_exit(
                proc,
                Box::new(|serial, r| {
                    SEEN.lock()
                        .unwrap()
                        .push((serial, r.message().into_owned()))
                }),
            );
            match int_of(env(clo, 0)) {
                0 => UNIT,
                1 => fails(proc, clo, UNIT),
                _ => recv_any(proc),
            }
        }
    }
    unsafe extern "C" fn main(proc: *mut Process, _c: Value, _a: Value) -> Value {
        unsafe {
            let a = spawn(proc, hooked, &[of_int(0)]);
            let b = spawn(proc, hooked, &[of_int(1)]);
            let c = spawn(proc, hooked, &[of_int(2)]);
            caravan_rt_join(proc, a);
            caravan_rt_join(proc, b);
            caravan_rt_yield_now(proc);
            caravan_rt_exit_signal(proc, c, reason(ExitReason::Killed));
            caravan_rt_join(proc, c);
            let mut seen = SEEN.lock().unwrap().clone();
            seen.sort();
            let want = vec![
                (serial_of_pid(a), "Normal".to_string()),
                (serial_of_pid(b), "boom".to_string()),
                (serial_of_pid(c), "Killed".to_string()),
            ];
            of_bool(seen == want)
        }
    }
    static OK: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn outer(proc: *mut Process, c: Value, a: Value) -> Value {
        unsafe {
            if main(proc, c, a) == TRUE {
                OK.store(1, Ordering::SeqCst);
            }
        }
        UNIT
    }
    assert_eq!(run_main(2, 30, outer, &[]), 0);
    assert_eq!(OK.load(Ordering::SeqCst), 1, "{:?}", SEEN.lock().unwrap());
}
