//! Crashes, join, exit status, call/reply, deep copy through messages and
//! spawn, preemption.

mod common;
use caravan_vm::value::*;
use caravan_vm::*;
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

fn checks(cell: &'static OnceLock<&'static Checks>) -> &'static Checks {
    cell.get_or_init(Checks::new)
}

unsafe extern "C" fn returns(_p: *mut Process, _c: Value, _s: Value) -> Value {
    UNIT
}

unsafe extern "C" fn fails(proc: *mut Process, _c: Value, _s: Value) -> Value {
    unsafe {
        let m = alloc_string(&mut *proc, b"boom");
        caravan_rt_fail(proc, m, c"test.cvn:3:7".as_ptr() as *const u8)
    }
}

unsafe extern "C" fn divides_by_zero(proc: *mut Process, _c: Value, _s: Value) -> Value {
    unsafe { caravan_rt_div_by_zero(proc, std::ptr::null()) }
}

/// Non-tail recursion with the generated prologue's stack check.
#[inline(never)]
unsafe fn deep(proc: *mut Process, n: u64) -> u64 {
    unsafe {
        let marker = [n; 8];
        let sp = &marker as *const _ as u64;
        if sp < (*proc).stack_limit {
            // Called from Rust frames (not generated code): never grows.
            let overflow: unsafe extern "C" fn(*mut Process, *const u8) -> Value =
                std::mem::transmute(stackgrow::caravan_rt_stack_overflow as *const ());
            // (It crashes the process: never returns.)
            return overflow(proc, std::ptr::null());
        }
        tick(proc);
        std::hint::black_box(&marker);
        deep(proc, n + 1) + std::hint::black_box(marker[3])
    }
}

unsafe extern "C" fn overflows(proc: *mut Process, _c: Value, _s: Value) -> Value {
    unsafe { of_int(deep(proc, 0) as i64) }
}

#[test]
fn join_returns_exit_reasons() {
    static C: OnceLock<&'static Checks> = OnceLock::new();
    unsafe extern "C" fn main(proc: *mut Process, clo: Value, _a: Value) -> Value {
        unsafe {
            let ck: &Checks = val_ref(env(clo, 0));
            let a = spawn(proc, returns, &[]);
            let b = spawn(proc, fails, &[]);
            let c = spawn(proc, divides_by_zero, &[]);
            let d = spawn(proc, overflows, &[]);
            let ra = reason_text(caravan_rt_join(proc, a));
            ck.check(ra == "Normal", || ra.clone());
            let rb = reason_text(caravan_rt_join(proc, b));
            ck.check(rb == "Crashed boom", || rb.clone());
            let rc = reason_text(caravan_rt_join(proc, c));
            ck.check(rc == "Crashed division by zero", || rc.clone());
            let rd = reason_text(caravan_rt_join(proc, d));
            ck.check(rd == "Crashed stack overflow", || rd.clone());
            // Again, long after they died: the stored reasons.
            caravan_rt_sleep(proc, of_int(5));
            let rb2 = reason_text(caravan_rt_join(proc, b));
            ck.check(rb2 == "Crashed boom", || rb2.clone());
            let ra2 = reason_text(caravan_rt_join(proc, a));
            ck.check(ra2 == "Normal", || ra2.clone());
            let rn = reason_text(caravan_rt_join(proc, pid_of_serial(1 << 40)));
            ck.check(rn == "Noproc", || rn.clone());
            // Several joiners of one process.
            let slow = spawn(proc, sleeps_then_fails, &[]);
            let me = caravan_rt_self(proc);
            for _ in 0..5 {
                spawn(proc, joiner, &[slow, me]);
            }
            for _ in 0..5 {
                let r = reason_text(recv_any(proc));
                ck.check(r == "Crashed late", || r.clone());
            }
        }
        UNIT
    }
    unsafe extern "C" fn sleeps_then_fails(proc: *mut Process, _c: Value, _s: Value) -> Value {
        unsafe {
            caravan_rt_sleep(proc, of_int(20));
            let m = alloc_string(&mut *proc, b"late");
            caravan_rt_fail(proc, m, std::ptr::null())
        }
    }
    unsafe extern "C" fn joiner(proc: *mut Process, clo: Value, _s: Value) -> Value {
        unsafe {
            let r = caravan_rt_join(proc, env(clo, 0));
            caravan_rt_send(proc, env(clo, 1), r);
        }
        UNIT
    }
    let ck = checks(&C);
    assert_eq!(run_main(2, 30, main, &[ptr_val(ck)]), 0);
    ck.assert_ok();
}

#[test]
fn a_crash_leaves_others_running() {
    static DONE: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn worker(proc: *mut Process, clo: Value, _s: Value) -> Value {
        unsafe {
            let mut acc = 0i64;
            for i in 0..100_000 {
                tick(proc);
                acc = acc.wrapping_add(i);
            }
            caravan_rt_send(proc, env(clo, 0), of_int(acc));
        }
        UNIT
    }
    unsafe extern "C" fn main(proc: *mut Process, _clo: Value, _a: Value) -> Value {
        unsafe {
            let me = caravan_rt_self(proc);
            for _ in 0..4 {
                spawn(proc, worker, &[me]);
                spawn(proc, fails, &[]);
                spawn(proc, overflows, &[]);
            }
            for _ in 0..4 {
                if int_of(recv_any(proc)) == (0..100_000i64).sum::<i64>() {
                    DONE.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        UNIT
    }
    assert_eq!(run_main(2, 30, main, &[]), 0);
    assert_eq!(DONE.load(Ordering::SeqCst), 4);
}

#[test]
fn main_crash_exits_one_and_exit_sets_status() {
    assert_eq!(run_main(2, 20, fails, &[]), 1);
    assert_eq!(run_main(1, 20, overflows, &[]), 1);
    unsafe extern "C" fn exits(proc: *mut Process, _c: Value, _a: Value) -> Value {
        unsafe {
            // Other processes are stopped, even a busy one.
            spawn(proc, spins, &[]);
            caravan_rt_yield_now(proc);
            caravan_rt_exit(proc, of_int(3))
        }
    }
    unsafe extern "C" fn child_exits(proc: *mut Process, _c: Value, _a: Value) -> Value {
        unsafe {
            spawn(proc, exits, &[]);
            recv_any(proc) // never arrives
        }
    }
    assert_eq!(run_main(2, 20, exits, &[]), 3);
    assert_eq!(run_main(2, 20, child_exits, &[]), 3);
}

unsafe extern "C" fn spins(proc: *mut Process, _c: Value, _s: Value) -> Value {
    unsafe {
        loop {
            tick(proc);
        }
    }
}

#[test]
fn spinning_process_does_not_stop_ping_pong_on_one_scheduler() {
    static ROUNDS: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn ponger(proc: *mut Process, _c: Value, _s: Value) -> Value {
        unsafe {
            loop {
                tick(proc);
                let from = recv_any(proc);
                if from == UNIT {
                    return UNIT;
                }
                caravan_rt_send(proc, from, of_int(1));
            }
        }
    }
    unsafe extern "C" fn main(proc: *mut Process, _clo: Value, _a: Value) -> Value {
        unsafe {
            spawn(proc, spins, &[]);
            spawn(proc, spins, &[]);
            let me = caravan_rt_self(proc);
            let p = spawn(proc, ponger, &[]);
            for _ in 0..20_000 {
                tick(proc);
                caravan_rt_send(proc, p, me);
                recv_any(proc);
                ROUNDS.fetch_add(1, Ordering::Relaxed);
            }
            caravan_rt_send(proc, p, UNIT);
        }
        UNIT
    }
    assert_eq!(run_main(1, 30, main, &[]), 0);
    assert_eq!(ROUNDS.load(Ordering::SeqCst), 20_000);
}

#[test]
fn call_reply_timeout_and_callee_death() {
    static C: OnceLock<&'static Checks> = OnceLock::new();
    /// Serves `(reply, n, mode)`: mode 0 replies 2n; 1 replies twice
    /// (second dropped) after an ordinary message; 2 never replies; 3 dies.
    unsafe extern "C" fn server(proc: *mut Process, _c: Value, _s: Value) -> Value {
        unsafe {
            loop {
                let m = recv_any(proc);
                if is_immediate(m) {
                    return UNIT;
                }
                let (r, n, mode) = (field(m, 0), int_of(field(m, 1)), int_of(field(m, 2)));
                match mode {
                    0 => {
                        caravan_rt_reply(proc, r, of_int(2 * n));
                    }
                    1 => {
                        caravan_rt_send(proc, field(m, 3), of_int(-1));
                        caravan_rt_reply(proc, r, of_int(2 * n));
                        caravan_rt_reply(proc, r, of_int(777));
                    }
                    2 => {}
                    _ => {
                        let s = alloc_string(&mut *proc, b"server died");
                        caravan_rt_fail(proc, s, std::ptr::null());
                    }
                }
            }
        }
    }
    unsafe fn call(proc: *mut Process, srv: Value, n: i64, mode: i64, timeout: i64) -> Value {
        unsafe {
            let r = caravan_rt_call_begin(proc, srv);
            let me = caravan_rt_self(proc);
            let msg = block(proc, 0, &[r, of_int(n), of_int(mode), me]);
            caravan_rt_send(proc, srv, msg);
            caravan_rt_call_wait(proc, r, of_int(timeout))
        }
    }
    /// Calls with `mode` and reports what happened (if it survives).
    unsafe extern "C" fn caller(proc: *mut Process, clo: Value, _s: Value) -> Value {
        unsafe {
            let v = call(
                proc,
                env(clo, 0),
                5,
                int_of(env(clo, 1)),
                int_of(env(clo, 2)),
            );
            caravan_rt_send(proc, env(clo, 3), v);
        }
        UNIT
    }
    unsafe extern "C" fn main(proc: *mut Process, clo: Value, _a: Value) -> Value {
        unsafe {
            let ck: &Checks = val_ref(env(clo, 0));
            let me = caravan_rt_self(proc);
            let srv = spawn(proc, server, &[]);
            // Plain calls, many of them.
            for i in 0..1000 {
                let v = call(proc, srv, i, 0, 1000);
                ck.check(v == of_int(2 * i), || {
                    format!("call {i} gave {}", int_of(v))
                });
            }
            // Reply kept apart from ordinary messages; second reply dropped.
            let v = call(proc, srv, 21, 1, 1000);
            ck.check(v == of_int(42), || format!("gave {}", int_of(v)));
            let o = recv_within(proc, 50);
            ck.check(o == Some(of_int(-1)), || format!("ordinary {o:?}"));
            let extra = recv_within(proc, 30);
            ck.check(extra.is_none(), || format!("late reply seen {extra:?}"));
            // Timeout: the caller crashes with Timeout.
            let c = spawn(proc, caller, &[srv, of_int(2), of_int(20), me]);
            let r = reason_text(caravan_rt_join(proc, c));
            ck.check(r == "Timeout", || r.clone());
            // A dead callee: Noproc.
            let dead = spawn(proc, returns, &[]);
            caravan_rt_join(proc, dead);
            let c = spawn(proc, caller, &[dead, of_int(0), of_int(1000), me]);
            let r = reason_text(caravan_rt_join(proc, c));
            ck.check(r == "Noproc", || r.clone());
            // The callee dies during the call: its exit reason.
            let c = spawn(proc, caller, &[srv, of_int(3), of_int(5000), me]);
            let r = reason_text(caravan_rt_join(proc, c));
            ck.check(r == "Crashed server died", || r.clone());
            ck.check(recv_within(proc, 0).is_none(), || "stray message".into());
        }
        UNIT
    }
    let ck = checks(&C);
    assert_eq!(run_main(2, 30, main, &[ptr_val(ck)]), 0);
    ck.assert_ok();
}

#[test]
fn copy_keeps_sharing_and_cycles_across_processes() {
    static C: OnceLock<&'static Checks> = OnceLock::new();
    unsafe fn check_shape(ck: &Checks, v: Value, orig: Option<Value>) {
        unsafe {
            // v = (clo, pair, pair) where clo's env[0] = clo and pair = (s, s).
            let clo = field(v, 0);
            ck.check(header_tag(header(clo)) == TAG_CLOSURE, || "tag".into());
            ck.check(env(clo, 0) == clo, || "cycle lost".into());
            ck.check(field(v, 1) == field(v, 2), || "sharing lost (pair)".into());
            let pair = field(v, 1);
            ck.check(field(pair, 0) == field(pair, 1), || {
                "sharing lost (string)".into()
            });
            ck.check(text(field(pair, 0)) == "shared", || "text".into());
            if let Some(o) = orig {
                ck.check(o != v && field(o, 0) != clo, || "not copied".into());
            }
        }
    }
    unsafe extern "C" fn receiver(proc: *mut Process, clo: Value, _s: Value) -> Value {
        unsafe {
            let ck: &Checks = val_ref(env(clo, 0));
            // The spawn closure itself was copied: check its env[1].
            check_shape(ck, env(clo, 1), None);
            let v = recv_any(proc);
            check_shape(ck, v, None);
            caravan_rt_send(proc, env(clo, 2), UNIT);
        }
        UNIT
    }
    unsafe extern "C" fn main(proc: *mut Process, clo: Value, _a: Value) -> Value {
        unsafe {
            let ck: &Checks = val_ref(env(clo, 0));
            let s = alloc_string(&mut *proc, b"shared");
            let pair = block(proc, 0, &[s, s]);
            let c = closure(proc, returns, &[UNIT]);
            *(c as *mut u64).add(2) = c;
            let v = block(proc, 0, &[c, pair, pair]);
            let me = caravan_rt_self(proc);
            let r = spawn(proc, receiver, &[env(clo, 0), v, me]);
            caravan_rt_send(proc, r, v);
            recv_any(proc);
            check_shape(ck, v, None);
            // And into the literal area.
            let g = caravan_rt_global(proc, v);
            check_shape(ck, g, Some(v));
            ck.check(heap::is_literal(g), || "not literal".into());
            ck.check(caravan_rt_global(proc, g) == g, || {
                "literal recopied".into()
            });
        }
        UNIT
    }
    let ck = checks(&C);
    assert_eq!(run_main(2, 30, main, &[ptr_val(ck)]), 0);
    ck.assert_ok();
}

#[test]
fn compare_and_equal_through_the_runtime() {
    static C: OnceLock<&'static Checks> = OnceLock::new();
    unsafe extern "C" fn cmp_closures(proc: *mut Process, _c: Value, _s: Value) -> Value {
        unsafe {
            let f = closure(proc, returns, &[]);
            let g = closure(proc, returns, &[]);
            let t1 = block(proc, 0, &[of_int(1), f]);
            let t2 = block(proc, 0, &[of_int(1), g]);
            caravan_rt_compare(proc, t1, t2);
        }
        UNIT
    }
    unsafe extern "C" fn main(proc: *mut Process, clo: Value, _a: Value) -> Value {
        unsafe {
            let ck: &Checks = val_ref(env(clo, 0));
            let a = alloc_string(&mut *proc, b"apple");
            let b = alloc_string(&mut *proc, b"banana");
            ck.check(caravan_rt_compare(proc, a, b) == -1, || "a<b".into());
            ck.check(caravan_rt_compare(proc, b, a) == 1, || "b>a".into());
            let a2 = alloc_string(&mut *proc, b"apple");
            ck.check(caravan_rt_equal(proc, a, a2) == TRUE, || "a=a2".into());
            ck.check(caravan_rt_equal(proc, a, b) == FALSE, || "a<>b".into());
            let n = alloc_float(&mut *proc, f64::NAN);
            ck.check(caravan_rt_equal(proc, n, n) == FALSE, || "nan<>nan".into());
            ck.check(caravan_rt_compare(proc, n, n) == 0, || {
                "compare nan nan".into()
            });
            ck.check(
                caravan_rt_compare(proc, of_int(-3), of_int(2)) == -1,
                || "ints".into(),
            );
            let c = spawn(proc, cmp_closures, &[]);
            let r = reason_text(caravan_rt_join(proc, c));
            ck.check(r == "Crashed compare: functional value", || r.clone());
        }
        UNIT
    }
    let ck = checks(&C);
    assert_eq!(run_main(1, 30, main, &[ptr_val(ck)]), 0);
    ck.assert_ok();
}

#[test]
fn symbols_list_every_runtime_function() {
    let s = symbols();
    let names: Vec<&str> = s.iter().map(|x| x.0).collect();
    for n in [
        "caravan_rt_yield",
        "caravan_rt_tick",
        "caravan_rt_stack_overflow",
        "caravan_rt_stack_reserve",
        "caravan_rt_alloc",
        "caravan_rt_fail",
        "caravan_rt_spawn",
        "caravan_rt_self",
        "caravan_rt_send",
        "caravan_rt_recv_start",
        "caravan_rt_recv_next",
        "caravan_rt_recv_accept",
        "caravan_rt_join",
        "caravan_rt_sleep",
        "caravan_rt_yield_now",
        "caravan_rt_call_begin",
        "caravan_rt_call_wait",
        "caravan_rt_reply",
        "caravan_rt_global",
        "caravan_rt_exit",
        "caravan_rt_div_by_zero",
        "caravan_rt_compare",
        "caravan_rt_equal",
        "caravan_rt_alloc_string",
        "caravan_rt_alive",
        "caravan_rt_exit_signal",
        "caravan_rt_link",
        "caravan_rt_spawn_link",
        "caravan_rt_trap_exits",
        "caravan_rt_monitor",
        "caravan_rt_demonitor",
    ] {
        assert!(names.contains(&n), "{n} missing");
    }
    assert!(s.iter().all(|x| !x.1.is_null()));
}

#[test]
fn run_returns_even_if_a_scheduler_is_stuck_in_a_system_call() {
    use std::sync::atomic::AtomicBool;
    static STARTED: AtomicBool = AtomicBool::new(false);
    unsafe extern "C" fn blocks(proc: *mut Process, _c: Value, _s: Value) -> Value {
        STARTED.store(true, Ordering::SeqCst);
        // A blocking builtin (think: reading stdin) holds its scheduler
        // thread well past the program's end.
        unsafe { blocking_section(proc, || libc::usleep(3_000_000)) };
        UNIT
    }
    unsafe extern "C" fn main(proc: *mut Process, _c: Value, _a: Value) -> Value {
        unsafe {
            spawn(proc, blocks, &[]);
            while !STARTED.load(Ordering::SeqCst) {
                caravan_rt_yield_now(proc);
            }
        }
        UNIT
    }
    let t = std::time::Instant::now();
    assert_eq!(run_main(2, 20, main, &[]), 0);
    assert!(
        t.elapsed() < std::time::Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
}

/// With `host_exits` (the CLI's `caravan run`), `run` returns the status
/// given to `exit` once the schedulers stopped, without freeing or
/// joining them: also while one is stuck in a blocking system call, and
/// with another process still waiting for a message.
#[test]
fn a_host_that_exits_gets_the_status_without_joining_the_schedulers() {
    use std::sync::atomic::AtomicBool;
    static STARTED: AtomicBool = AtomicBool::new(false);
    unsafe extern "C" fn blocks(proc: *mut Process, _c: Value, _s: Value) -> Value {
        STARTED.store(true, Ordering::SeqCst);
        unsafe { blocking_section(proc, || libc::usleep(3_000_000)) };
        UNIT
    }
    unsafe extern "C" fn waits(proc: *mut Process, _c: Value, _s: Value) -> Value {
        unsafe { caravan_rt_recv_next(proc, i64::MAX) };
        UNIT
    }
    unsafe extern "C" fn main(proc: *mut Process, _c: Value, _a: Value) -> Value {
        unsafe {
            spawn(proc, waits, &[]);
            spawn(proc, blocks, &[]);
            while !STARTED.load(Ordering::SeqCst) {
                caravan_rt_yield_now(proc);
            }
            caravan_rt_exit(proc, of_int(7))
        }
    }
    let closure = literal_closure(main, &[]);
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::time::Instant::now();
    std::thread::spawn(move || {
        let cfg = VmConfig {
            schedulers: 2,
            host_exits: true,
            ..Default::default()
        };
        let _ = tx.send(run(cfg, entry, closure));
    });
    let status = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("run returned");
    assert_eq!(status, 7);
    assert!(
        t.elapsed() < std::time::Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn guard_page_hit_is_reported_as_fatal() {
    unsafe extern "C" fn touches_guard(proc: *mut Process, _c: Value, _s: Value) -> Value {
        unsafe {
            let guard = (*proc).stack_limit as usize - stack::RUNTIME_MARGIN - stack::PAGE;
            std::ptr::write_volatile((guard + 100) as *mut u8, 1);
        }
        UNIT
    }
    if std::env::var_os("CARAVAN_GUARD_CHILD").is_some() {
        run_main(1, 20, touches_guard, &[]);
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "guard_page_hit_is_reported_as_fatal",
            "--nocapture",
        ])
        .env("CARAVAN_GUARD_CHILD", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("stack guard page"), "stderr: {err}");
}

#[test]
fn absurd_allocations_crash_the_process_only() {
    static C: OnceLock<&'static Checks> = OnceLock::new();
    unsafe extern "C" fn allocates(proc: *mut Process, clo: Value, _s: Value) -> Value {
        unsafe { caravan_rt_alloc(proc, 0, int_of(env(clo, 0)) as u64) };
        UNIT
    }
    unsafe extern "C" fn main(proc: *mut Process, clo: Value, _a: Value) -> Value {
        unsafe {
            let ck: &Checks = val_ref(env(clo, 0));
            // Beyond the header's range, and beyond any memory (4 TiB).
            for words in [1i64 << 50, 1 << 39] {
                let c = spawn(proc, allocates, &[of_int(words)]);
                let r = reason_text(caravan_rt_join(proc, c));
                ck.check(r == "Crashed out of memory", || format!("{words}: {r}"));
            }
        }
        UNIT
    }
    let ck = checks(&C);
    assert_eq!(run_main(2, 30, main, &[ptr_val(ck)]), 0);
    ck.assert_ok();
}

#[test]
fn sysmon_rescues_work_behind_a_scheduler_stuck_outside_blocking_section() {
    use std::sync::atomic::AtomicI64;
    static TIMER_MS: AtomicI64 = AtomicI64::new(-1);
    static WOKEN_MS: AtomicI64 = AtomicI64::new(-1);
    unsafe extern "C" fn blocks(_p: *mut Process, _c: Value, _s: Value) -> Value {
        // Not announced: only the sysmon can notice.
        unsafe { libc::usleep(600_000) };
        UNIT
    }
    unsafe extern "C" fn wakes_then_blocks(proc: *mut Process, clo: Value, _s: Value) -> Value {
        unsafe {
            caravan_rt_send(proc, env(clo, 0), of_int(1));
            libc::usleep(600_000);
        }
        UNIT
    }
    unsafe extern "C" fn main(proc: *mut Process, _c: Value, _a: Value) -> Value {
        unsafe {
            // Timer on the scheduler that then blocks.
            spawn(proc, blocks, &[]);
            let t = std::time::Instant::now();
            if recv_within(proc, 50).is_none() {
                TIMER_MS.store(t.elapsed().as_millis() as i64, Ordering::SeqCst);
            }
            // Woken into the runnext of the scheduler that then blocks.
            let me = caravan_rt_self(proc);
            spawn(proc, wakes_then_blocks, &[me]);
            let t = std::time::Instant::now();
            if recv_within(proc, 5000) == Some(of_int(1)) {
                WOKEN_MS.store(t.elapsed().as_millis() as i64, Ordering::SeqCst);
            }
            // Queued behind it (a yield with nothing else queued).
            spawn(proc, blocks, &[]);
            let t = std::time::Instant::now();
            caravan_rt_yield_now(proc);
            caravan_rt_yield_now(proc);
            let _ = t;
        }
        UNIT
    }
    let t = std::time::Instant::now();
    assert_eq!(run_main(3, 20, main, &[]), 0);
    let (a, b) = (
        TIMER_MS.load(Ordering::SeqCst),
        WOKEN_MS.load(Ordering::SeqCst),
    );
    assert!((50..400).contains(&a), "timer fired after {a} ms");
    assert!((0..400).contains(&b), "woken after {b} ms");
    assert!(
        t.elapsed() < std::time::Duration::from_millis(1800),
        "{:?}",
        t.elapsed()
    );
}
