//! Spawn, send, receive (ordering, selective receive, timeouts), sleep.

mod common;
use caravan_vm::value::*;
use caravan_vm::*;
use common::*;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Instant;

#[test]
fn main_returns_zero() {
    unsafe extern "C" fn main(_p: *mut Process, _c: Value, arg: Value) -> Value {
        arg
    }
    assert_eq!(run_main(2, 20, main, &[]), 0);
}

#[test]
fn spawn_send_receive_in_order() {
    static CHECKS: std::sync::OnceLock<&'static Checks> = std::sync::OnceLock::new();
    let checks = *CHECKS.get_or_init(Checks::new);

    unsafe extern "C" fn child(proc: *mut Process, clo: Value, _self: Value) -> Value {
        unsafe {
            let parent = env(clo, 0);
            for i in 0..200 {
                // Alternate immediates and blocks (copied).
                let m = if i % 2 == 0 {
                    of_int(i)
                } else {
                    let s = alloc_string(&mut *proc, format!("m{i}").as_bytes());
                    block(proc, 0, &[of_int(i), s])
                };
                caravan_rt_send(proc, parent, m);
            }
        }
        UNIT
    }
    unsafe extern "C" fn main(proc: *mut Process, clo: Value, _arg: Value) -> Value {
        unsafe {
            let checks: &Checks = val_ref(env(clo, 0));
            let me = caravan_rt_self(proc);
            let c = spawn(proc, child, &[me]);
            checks.check(is_immediate(c) && c != me, || "pid".into());
            for i in 0..200 {
                let m = recv_any(proc);
                let n = if is_immediate(m) {
                    int_of(m)
                } else {
                    let s = text(field(m, 1));
                    checks.check(s == format!("m{}", int_of(field(m, 0))), || {
                        format!("bad {s}")
                    });
                    int_of(field(m, 0))
                };
                checks.check(n == i, || format!("got {n} expected {i}"));
            }
            // Nothing more.
            checks.check(recv_within(proc, 0).is_none(), || "extra message".into());
        }
        UNIT
    }
    assert_eq!(run_main(2, 20, main, &[ptr_val(checks)]), 0);
    checks.assert_ok();
}

#[test]
fn selective_receive_keeps_others_in_order() {
    static CHECKS: std::sync::OnceLock<&'static Checks> = std::sync::OnceLock::new();
    let checks = *CHECKS.get_or_init(Checks::new);
    unsafe extern "C" fn main(proc: *mut Process, clo: Value, _arg: Value) -> Value {
        unsafe {
            let checks: &Checks = val_ref(env(clo, 0));
            let me = caravan_rt_self(proc);
            for i in 1..=6 {
                caravan_rt_send(proc, me, of_int(i));
            }
            // Take 4, then 2: the rest stays queued in order.
            let a = recv_match(proc, i64::MAX, |v| v == of_int(4));
            checks.check(a == Some(of_int(4)), || format!("{a:?}"));
            let b = recv_match(proc, i64::MAX, |v| v == of_int(2));
            checks.check(b == Some(of_int(2)), || format!("{b:?}"));
            // No match: the receive times out and leaves everything queued.
            let c = recv_match(proc, 10, |v| v == of_int(99));
            checks.check(c.is_none(), || "matched 99".into());
            for want in [1, 3, 5, 6] {
                let m = recv_any(proc);
                checks.check(m == of_int(want), || {
                    format!("got {} want {want}", int_of(m))
                });
            }
            // A match on a message that arrives while waiting (after scanning
            // unmatched ones).
            caravan_rt_send(proc, me, of_int(7));
            let s = spawn(proc, sender, &[me]);
            let _ = s;
            let d = recv_match(proc, 5000, |v| v == of_int(8));
            checks.check(d == Some(of_int(8)), || format!("{d:?}"));
            let e = recv_any(proc);
            checks.check(e == of_int(7), || format!("{}", int_of(e)));
        }
        UNIT
    }
    unsafe extern "C" fn sender(proc: *mut Process, clo: Value, _s: Value) -> Value {
        unsafe {
            caravan_rt_sleep(proc, of_int(5));
            caravan_rt_send(proc, env(clo, 0), of_int(8));
        }
        UNIT
    }
    assert_eq!(run_main(2, 20, main, &[ptr_val(checks)]), 0);
    checks.assert_ok();
}

#[test]
fn after_timeout_and_poll() {
    static ELAPSED: AtomicI64 = AtomicI64::new(-1);
    static POLL: AtomicI64 = AtomicI64::new(-1);
    unsafe extern "C" fn main(proc: *mut Process, _clo: Value, _arg: Value) -> Value {
        unsafe {
            let t = Instant::now();
            caravan_rt_recv_start(proc, caravan_rt_self(proc), std::ptr::null());
            let v = caravan_rt_recv_next(proc, 0);
            POLL.store(v as i64, Ordering::SeqCst);
            caravan_rt_recv_start(proc, caravan_rt_self(proc), std::ptr::null());
            let v = caravan_rt_recv_next(proc, 60);
            if v == RECV_TIMEOUT {
                ELAPSED.store(t.elapsed().as_millis() as i64, Ordering::SeqCst);
            }
        }
        UNIT
    }
    assert_eq!(run_main(2, 20, main, &[]), 0);
    assert_eq!(POLL.load(Ordering::SeqCst), RECV_TIMEOUT as i64);
    let e = ELAPSED.load(Ordering::SeqCst);
    assert!((60..2000).contains(&e), "elapsed {e} ms");
}

#[test]
fn sleep_many_processes_at_once() {
    static DONE: AtomicUsize = AtomicUsize::new(0);
    static ELAPSED: AtomicI64 = AtomicI64::new(-1);
    unsafe extern "C" fn sleeper(proc: *mut Process, clo: Value, _s: Value) -> Value {
        unsafe {
            let t = Instant::now();
            caravan_rt_sleep(proc, of_int(30));
            if t.elapsed().as_millis() >= 30 {
                DONE.fetch_add(1, Ordering::SeqCst);
            }
            caravan_rt_send(proc, env(clo, 0), UNIT);
        }
        UNIT
    }
    unsafe extern "C" fn main(proc: *mut Process, _clo: Value, _arg: Value) -> Value {
        unsafe {
            let t = Instant::now();
            let me = caravan_rt_self(proc);
            for _ in 0..200 {
                spawn(proc, sleeper, &[me]);
            }
            for _ in 0..200 {
                recv_any(proc);
            }
            ELAPSED.store(t.elapsed().as_millis() as i64, Ordering::SeqCst);
        }
        UNIT
    }
    assert_eq!(run_main(2, 20, main, &[]), 0);
    assert_eq!(DONE.load(Ordering::SeqCst), 200);
    let e = ELAPSED.load(Ordering::SeqCst);
    assert!((30..3000).contains(&e), "elapsed {e} ms");
}

#[test]
fn sending_to_a_dead_process_is_dropped() {
    static OK: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn quick(_p: *mut Process, _c: Value, _s: Value) -> Value {
        UNIT
    }
    unsafe extern "C" fn main(proc: *mut Process, _clo: Value, _arg: Value) -> Value {
        unsafe {
            let c = spawn(proc, quick, &[]);
            let r = caravan_rt_join(proc, c);
            if r == of_int(0) {
                OK.fetch_add(1, Ordering::SeqCst);
            }
            let s = alloc_string(&mut *proc, b"to nobody");
            caravan_rt_send(proc, c, s);
            caravan_rt_send(proc, of_int(123456), s);
            OK.fetch_add(1, Ordering::SeqCst);
        }
        UNIT
    }
    assert_eq!(run_main(1, 20, main, &[]), 0);
    assert_eq!(OK.load(Ordering::SeqCst), 2);
}

#[test]
fn blocking_section_does_not_stall_timers_or_runnext() {
    static TIMER_MS: AtomicI64 = AtomicI64::new(-1);
    static WOKEN_MS: AtomicI64 = AtomicI64::new(-1);
    unsafe extern "C" fn blocks(proc: *mut Process, _c: Value, _s: Value) -> Value {
        // Blocks its thread as a builtin reading stdin would.
        unsafe { blocking_section(proc, || libc::usleep(400_000)) };
        UNIT
    }
    unsafe extern "C" fn wakes_then_blocks(proc: *mut Process, clo: Value, _s: Value) -> Value {
        unsafe {
            // Puts the main process in this scheduler's runnext first.
            caravan_rt_send(proc, env(clo, 0), of_int(1));
            blocking_section(proc, || libc::usleep(400_000));
        }
        UNIT
    }
    unsafe extern "C" fn main(proc: *mut Process, _c: Value, _a: Value) -> Value {
        unsafe {
            // The blocker runs next here, after main parks with its timer on
            // this scheduler: the timer must still fire on time.
            spawn(proc, blocks, &[]);
            let t = Instant::now();
            if recv_within(proc, 100).is_none() {
                TIMER_MS.store(t.elapsed().as_millis() as i64, Ordering::SeqCst);
            }
            let me = caravan_rt_self(proc);
            spawn(proc, wakes_then_blocks, &[me]);
            let t = Instant::now();
            if recv_within(proc, 5000) == Some(of_int(1)) {
                WOKEN_MS.store(t.elapsed().as_millis() as i64, Ordering::SeqCst);
            }
        }
        UNIT
    }
    assert_eq!(run_main(3, 20, main, &[]), 0);
    let (t, w) = (
        TIMER_MS.load(Ordering::SeqCst),
        WOKEN_MS.load(Ordering::SeqCst),
    );
    assert!((100..350).contains(&t), "timer fired after {t} ms");
    assert!((0..300).contains(&w), "woken after {w} ms");
}

#[test]
fn huge_timeouts_mean_forever() {
    static OK: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn sleeps_forever(proc: *mut Process, _c: Value, _s: Value) -> Value {
        unsafe { caravan_rt_sleep(proc, of_int(i64::MAX >> 2)) };
        UNIT
    }
    unsafe extern "C" fn replies_late(proc: *mut Process, _c: Value, _s: Value) -> Value {
        unsafe {
            let r = recv_any(proc);
            caravan_rt_sleep(proc, of_int(10));
            caravan_rt_reply(proc, r, of_int(42));
        }
        UNIT
    }
    unsafe extern "C" fn main(proc: *mut Process, _c: Value, _a: Value) -> Value {
        unsafe {
            spawn(proc, sleeps_forever, &[]);
            let me = caravan_rt_self(proc);
            caravan_rt_send(proc, me, of_int(5));
            // A message present: returned despite the huge timeout.
            if recv_within(proc, i64::MAX >> 2) == Some(of_int(5)) {
                OK.fetch_add(1, Ordering::SeqCst);
            }
            let srv = spawn(proc, replies_late, &[]);
            let r = caravan_rt_call_begin(proc, srv);
            caravan_rt_send(proc, srv, r);
            if caravan_rt_call_wait(proc, r, of_int(i64::MAX >> 2)) == of_int(42) {
                OK.fetch_add(1, Ordering::SeqCst);
            }
        }
        UNIT
    }
    assert_eq!(run_main(2, 20, main, &[]), 0);
    assert_eq!(OK.load(Ordering::SeqCst), 2);
}
