//! The persistent VM (`Runtime`) used by the REPL.

mod common;
use caravan_vm::value::*;
use caravan_vm::*;
use common::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static SERVER: AtomicU64 = AtomicU64::new(0);
static GOT: AtomicU64 = AtomicU64::new(0);

/// Counts the ints it receives; replies the total to a `(reply,)` block.
unsafe extern "C" fn counter(proc: *mut Process, _c: Value, _s: Value) -> Value {
    unsafe {
        let mut n = 0;
        loop {
            let m = recv_any(proc);
            if is_immediate(m) {
                n += int_of(m);
            } else {
                caravan_rt_reply(proc, field(m, 0), of_int(n));
            }
        }
    }
}

unsafe extern "C" fn phrase1(proc: *mut Process, _c: Value, _a: Value) -> Value {
    unsafe {
        let s = spawn(proc, counter, &[]);
        caravan_rt_send(proc, s, of_int(40));
        SERVER.store(s, Ordering::SeqCst);
    }
    UNIT
}

unsafe extern "C" fn phrase2(proc: *mut Process, _c: Value, _a: Value) -> Value {
    unsafe {
        let s = SERVER.load(Ordering::SeqCst);
        caravan_rt_send(proc, s, of_int(2));
        let r = caravan_rt_call_begin(proc, s);
        let m = block(proc, 0, &[r]);
        caravan_rt_send(proc, s, m);
        GOT.store(
            int_of(caravan_rt_call_wait(proc, r, of_int(1000))) as u64,
            Ordering::SeqCst,
        );
    }
    UNIT
}

unsafe extern "C" fn spins(proc: *mut Process, _c: Value, _a: Value) -> Value {
    unsafe {
        loop {
            tick(proc);
        }
    }
}

unsafe extern "C" fn waits(proc: *mut Process, _c: Value, _a: Value) -> Value {
    unsafe { recv_any(proc) }
}

unsafe extern "C" fn fails(proc: *mut Process, _c: Value, _a: Value) -> Value {
    unsafe {
        let m = alloc_string(&mut *proc, b"phrase failed");
        caravan_rt_fail(proc, m, std::ptr::null())
    }
}

unsafe extern "C" fn exits(proc: *mut Process, _c: Value, _a: Value) -> Value {
    unsafe { caravan_rt_exit(proc, of_int(7)) }
}

#[test]
fn processes_outlive_phrases_and_phrases_can_be_interrupted() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = Runtime::start(
            VmConfig {
                schedulers: 2,
                stack_size: 256 << 10,
                ..Default::default()
            },
            entry,
        );
        let mut outcomes = vec![
            rt.eval(literal_closure(phrase1, &[])),
            rt.eval(literal_closure(phrase2, &[])),
        ];
        for body in [spins as Body, waits] {
            let stop = rt.interrupter();
            let t = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                stop.interrupt();
            });
            outcomes.push(rt.eval(literal_closure(body, &[])));
            t.join().unwrap();
        }
        outcomes.push(rt.eval(literal_closure(fails, &[])));
        outcomes.push(rt.eval(literal_closure(exits, &[])));
        let status = rt.shutdown();
        let _ = tx.send((outcomes, status));
    });
    let (outcomes, status) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("watchdog: the runtime hung");
    assert_eq!(
        outcomes,
        vec![
            Outcome::Returned,
            Outcome::Returned,
            Outcome::Ended(ExitReason::Killed),
            Outcome::Ended(ExitReason::Killed),
            Outcome::Ended(ExitReason::crashed("phrase failed")),
            Outcome::Exit(7),
        ]
    );
    assert_eq!(GOT.load(Ordering::SeqCst), 42, "the server kept its state");
    assert_eq!(status, 7);
}

#[test]
fn shutdown_of_an_idle_runtime() {
    unsafe extern "C" fn leaves_a_waiter(proc: *mut Process, _c: Value, _a: Value) -> Value {
        unsafe { spawn(proc, waits, &[]) };
        UNIT
    }
    let rt = Runtime::start(VmConfig::default(), entry);
    assert_eq!(
        rt.eval(literal_closure(leaves_a_waiter, &[])),
        Outcome::Returned
    );
    assert_eq!(rt.shutdown(), 0);
}
