//! Randomised stress of delivery and work stealing: many processes on more
//! schedulers than cores exchange messages; every message must arrive
//! exactly once and in order per sender–receiver pair, and every run must
//! terminate (a watchdog fails the test instead of hanging).
//!
//! `CARAVAN_STRESS_RUNS=N` sets the number of runs (default 200).

mod common;
use caravan_vm::value::*;
use caravan_vm::*;
use common::*;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

struct Plan {
    n: usize,
    /// Per sender: (receiver, sequence number within that pair).
    sends: Vec<Vec<(u32, u32)>>,
    /// Messages each process must receive.
    expected: Vec<u32>,
    /// Per (receiver, sender): next expected sequence number.
    next: Vec<AtomicU32>,
    received: AtomicUsize,
    errors: AtomicUsize,
    seed: u64,
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn plan(n: usize, per_sender: usize, seed: u64) -> &'static Plan {
    let mut s = seed | 1;
    let mut pair = vec![0u32; n * n];
    let mut sends = vec![Vec::with_capacity(per_sender); n];
    let mut expected = vec![0u32; n];
    for (from, out) in sends.iter_mut().enumerate() {
        for _ in 0..per_sender {
            // Bias towards a few hot receivers now and then.
            let to = if xorshift(&mut s).is_multiple_of(4) {
                (xorshift(&mut s) % 4) as usize
            } else {
                (xorshift(&mut s) % n as u64) as usize
            };
            let q = pair[to * n + from];
            pair[to * n + from] += 1;
            out.push((to as u32, q));
            expected[to] += 1;
        }
    }
    Box::leak(Box::new(Plan {
        n,
        sends,
        expected,
        next: (0..n * n).map(|_| AtomicU32::new(0)).collect(),
        received: AtomicUsize::new(0),
        errors: AtomicUsize::new(0),
        seed,
    }))
}

const START_TAG: u8 = 1;

unsafe extern "C" fn worker(proc: *mut Process, clo: Value, _self: Value) -> Value {
    unsafe {
        let plan: &Plan = val_ref(env(clo, 0));
        let me = int_of(env(clo, 1)) as usize;
        let main = env(clo, 2);
        // Selective receive: the start message (all pids) may arrive after
        // data messages from faster peers.
        let start = recv_match(proc, i64::MAX, |v| {
            is_block(v) && header_tag(header(v)) == START_TAG
        })
        .unwrap_or(UNIT);
        let mut rng = plan.seed ^ (me as u64 + 1).wrapping_mul(0x9E37_79B9);
        for &(to, q) in &plan.sends[me] {
            tick(proc);
            let pid = field(start, to as usize);
            let m = match xorshift(&mut rng) % 3 {
                0 => of_int(((me as i64) << 32) | q as i64),
                1 => block(proc, 0, &[of_int(me as i64), of_int(q as i64)]),
                _ => {
                    let s = alloc_string(&mut *proc, format!("{me}:{q}").as_bytes());
                    block(proc, 2, &[of_int(me as i64), of_int(q as i64), s])
                }
            };
            caravan_rt_send(proc, pid, m);
            if xorshift(&mut rng).is_multiple_of(8) {
                caravan_rt_yield_now(proc);
            }
        }
        let mut got = 0;
        while got < plan.expected[me] {
            tick(proc);
            let m = recv_any(proc);
            let (from, q) = if is_immediate(m) {
                let x = int_of(m);
                ((x >> 32) as usize, (x & 0xffff_ffff) as u32)
            } else {
                let (f, q) = (int_of(field(m, 0)) as usize, int_of(field(m, 1)) as u32);
                if header_tag(header(m)) == 2 && text(field(m, 2)) != format!("{f}:{q}") {
                    plan.errors.fetch_add(1, Ordering::Relaxed);
                }
                (f, q)
            };
            if from >= plan.n {
                plan.errors.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let slot = &plan.next[me * plan.n + from];
            if slot.load(Ordering::Relaxed) != q {
                plan.errors.fetch_add(1, Ordering::Relaxed);
            }
            slot.store(q + 1, Ordering::Relaxed);
            got += 1;
            plan.received.fetch_add(1, Ordering::Relaxed);
        }
        // Nothing extra may be queued.
        if recv_within(proc, 0).is_some() {
            plan.errors.fetch_add(1, Ordering::Relaxed);
        }
        caravan_rt_send(proc, main, of_int(me as i64));
    }
    UNIT
}

unsafe extern "C" fn stress_main(proc: *mut Process, clo: Value, _a: Value) -> Value {
    unsafe {
        let plan: &Plan = val_ref(env(clo, 0));
        let me = caravan_rt_self(proc);
        let mut pids = Vec::with_capacity(plan.n);
        for i in 0..plan.n {
            pids.push(spawn(proc, worker, &[env(clo, 0), of_int(i as i64), me]));
        }
        let start = block(proc, START_TAG, &pids);
        for &p in &pids {
            caravan_rt_send(proc, p, start);
        }
        drop(pids);
        for _ in 0..plan.n {
            recv_any(proc);
        }
    }
    UNIT
}

#[test]
fn no_message_lost_or_duplicated_under_stealing() {
    let runs: usize = std::env::var("CARAVAN_STRESS_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let t = std::time::Instant::now();
    for run in 0..runs {
        let seed = 0x5DEE_CE66_D1CE_4E5Bu64.wrapping_mul(run as u64 + 1);
        let n = 100 + (seed % 400) as usize;
        let per = 5 + (seed >> 20) as usize % 20;
        let schedulers = 2 + run % 3 * 2; // 2, 4, 6 on a 2-core machine
        let p = plan(n, per, seed);
        let status = run_main(schedulers, 60, stress_main, &[ptr_val(p)]);
        assert_eq!(status, 0, "run {run}");
        assert_eq!(
            p.errors.load(Ordering::SeqCst),
            0,
            "run {run}: order/duplicate errors"
        );
        assert_eq!(
            p.received.load(Ordering::SeqCst),
            n * per,
            "run {run}: lost messages"
        );
    }
    eprintln!("{runs} stress runs in {:?}", t.elapsed());
}

/// Many short-lived processes (spawn/exit churn) with joins.
#[test]
fn spawn_exit_churn() {
    static DONE: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn leaf(proc: *mut Process, clo: Value, _s: Value) -> Value {
        unsafe {
            caravan_rt_send(proc, env(clo, 0), of_int(1));
        }
        UNIT
    }
    unsafe extern "C" fn batcher(proc: *mut Process, clo: Value, _s: Value) -> Value {
        unsafe {
            let me = caravan_rt_self(proc);
            for _ in 0..50 {
                for _ in 0..100 {
                    spawn(proc, leaf, &[me]);
                }
                for _ in 0..100 {
                    recv_any(proc);
                }
            }
            caravan_rt_send(proc, env(clo, 0), UNIT);
        }
        UNIT
    }
    unsafe extern "C" fn main(proc: *mut Process, _c: Value, _a: Value) -> Value {
        unsafe {
            let me = caravan_rt_self(proc);
            for _ in 0..8 {
                spawn(proc, batcher, &[me]);
            }
            for _ in 0..8 {
                recv_any(proc);
                DONE.fetch_add(1, Ordering::SeqCst);
            }
        }
        UNIT
    }
    assert_eq!(run_main(4, 60, main, &[]), 0);
    assert_eq!(DONE.load(Ordering::SeqCst), 8);
}
