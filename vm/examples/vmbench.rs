//! Micro-benchmarks of the VM alone (process bodies in Rust, calling the
//! runtime functions as generated code would).
//!
//! `cargo run --release -p caravan-vm --example vmbench -- WORKLOAD [N] [SCHEDULERS]`
//! with WORKLOAD one of `pingpong` (N round trips, default 1M), `ring`
//! (1000 processes x N laps, default 1000), `spawn` (N spawn-and-exit in
//! batches of 1000, default 1M), `idle` (N processes blocked in receive,
//! default 1M: prints resident memory per process), `skynet` (1M leaves).

use caravan_vm::value::*;
use caravan_vm::*;
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Body = unsafe extern "C" fn(*mut Process, Value, Value) -> Value;

unsafe extern "C" fn entry(proc: *mut Process, closure: Value, arg: Value) -> Value {
    unsafe {
        let code: Body = std::mem::transmute::<u64, Body>(*(closure as *const u64));
        code(proc, closure, arg)
    }
}

unsafe fn closure(proc: *mut Process, code: Body, env: &[Value]) -> Value {
    unsafe {
        let b = alloc_block(&mut *proc, TAG_CLOSURE, 2 + env.len());
        *b = code as *const () as u64;
        *b.add(1) = of_int(1);
        for (i, v) in env.iter().enumerate() {
            *b.add(2 + i) = *v;
        }
        b as Value
    }
}

unsafe fn env(c: Value, i: usize) -> Value {
    unsafe { field(c, 2 + i) }
}

unsafe fn spawn(proc: *mut Process, code: Body, env: &[Value]) -> Value {
    unsafe {
        let c = closure(proc, code, env);
        caravan_rt_spawn(proc, c)
    }
}

#[inline(always)]
unsafe fn recv(proc: *mut Process) -> Value {
    unsafe {
        caravan_rt_recv_start(proc, caravan_rt_self(proc), std::ptr::null());
        let v = caravan_rt_recv_next(proc, i64::MAX);
        caravan_rt_recv_accept(proc);
        v
    }
}

#[inline(always)]
unsafe fn tick(proc: *mut Process) {
    // As the generated prologue: the trip point rises one reduction; a
    // stack pointer (here, a local's address) below it takes the cold path.
    unsafe {
        (*proc).trip += caravan_vm::process::TRIP_PER_RED;
        let here = 0u8;
        let sp = std::ptr::addr_of!(here) as usize;
        if sp < (*proc).trip {
            caravan_rt_tick(proc, sp);
        }
    }
}

fn rss_kib() -> u64 {
    status_kib("VmRSS:") + status_kib("VmPTE:")
}

fn status_kib(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|x| x.parse().ok())
        .unwrap_or(0)
}

static mut N: i64 = 0;
fn n() -> i64 {
    // SAFETY: written once before `run`.
    unsafe { N }
}

// ---- ping-pong ----
unsafe extern "C" fn ponger(proc: *mut Process, _c: Value, _s: Value) -> Value {
    unsafe {
        loop {
            tick(proc);
            let from = recv(proc);
            if from == UNIT {
                return UNIT;
            }
            caravan_rt_send(proc, from, UNIT);
        }
    }
}
unsafe extern "C" fn pingpong(proc: *mut Process, _c: Value, _a: Value) -> Value {
    unsafe {
        let me = caravan_rt_self(proc);
        let p = spawn(proc, ponger, &[]);
        for _ in 0..n() {
            tick(proc);
            caravan_rt_send(proc, p, me);
            recv(proc);
        }
        caravan_rt_send(proc, p, UNIT);
    }
    UNIT
}

// ---- ring ----
unsafe extern "C" fn ring_node(proc: *mut Process, _c: Value, _s: Value) -> Value {
    unsafe {
        let next = recv(proc);
        loop {
            tick(proc);
            let m = recv(proc);
            caravan_rt_send(proc, next, m);
            if int_of(m) == 0 {
                return UNIT;
            }
        }
    }
}
unsafe extern "C" fn ring(proc: *mut Process, _c: Value, _a: Value) -> Value {
    unsafe {
        let me = caravan_rt_self(proc);
        let size = 1000;
        let mut first = me;
        let mut prev = UNIT;
        // Build: each node learns its successor; the last points to main.
        let mut pids = Vec::with_capacity(size);
        for _ in 0..size {
            pids.push(spawn(proc, ring_node, &[]));
        }
        for i in 0..size {
            let next = if i + 1 < size { pids[i + 1] } else { me };
            caravan_rt_send(proc, pids[i], next);
        }
        if let Some(&f) = pids.first() {
            first = f;
        }
        drop(pids);
        let laps = n();
        for lap in (0..laps).rev() {
            tick(proc);
            caravan_rt_send(proc, first, of_int(lap));
            prev = recv(proc);
        }
        let _ = prev;
    }
    UNIT
}

// ---- spawn and exit ----
unsafe extern "C" fn leaf(proc: *mut Process, c: Value, _s: Value) -> Value {
    unsafe { caravan_rt_send(proc, env(c, 0), UNIT) };
    UNIT
}
unsafe extern "C" fn spawner(proc: *mut Process, _c: Value, _a: Value) -> Value {
    unsafe {
        let me = caravan_rt_self(proc);
        for _ in 0..n() / 1000 {
            for _ in 0..1000 {
                tick(proc);
                spawn(proc, leaf, &[me]);
            }
            for _ in 0..1000 {
                recv(proc);
            }
        }
    }
    UNIT
}

// ---- idle processes ----
unsafe extern "C" fn idler(proc: *mut Process, c: Value, _s: Value) -> Value {
    unsafe {
        recv(proc);
        caravan_rt_send(proc, env(c, 0), UNIT);
    }
    UNIT
}
unsafe extern "C" fn idle(proc: *mut Process, _c: Value, _a: Value) -> Value {
    unsafe {
        let me = caravan_rt_self(proc);
        let before = rss_kib();
        let t = Instant::now();
        let mut pids = Vec::with_capacity(n() as usize);
        for _ in 0..n() {
            tick(proc);
            pids.push(spawn(proc, idler, &[me]));
        }
        // Let all of them run into their receive.
        caravan_rt_sleep(proc, of_int(200));
        let spawned = t.elapsed();
        let after = rss_kib();
        eprintln!(
            "{} idle processes: spawned+parked in {:?}, RSS+page tables {} MiB (page tables {} MiB), {} bytes/process",
            n(),
            spawned,
            after / 1024,
            status_kib("VmPTE:") / 1024,
            (after - before) * 1024 / n() as u64
        );
        for &p in &pids {
            tick(proc);
            caravan_rt_send(proc, p, UNIT);
        }
        drop(pids);
        for _ in 0..n() {
            tick(proc);
            recv(proc);
        }
    }
    UNIT
}

// ---- skynet ----
unsafe extern "C" fn skynet_node(proc: *mut Process, c: Value, _s: Value) -> Value {
    unsafe {
        let parent = env(c, 0);
        let num = int_of(env(c, 1));
        let size = int_of(env(c, 2));
        if size == 1 {
            caravan_rt_send(proc, parent, of_int(num));
            return UNIT;
        }
        let me = caravan_rt_self(proc);
        let sub = size / 10;
        for i in 0..10 {
            spawn(proc, skynet_node, &[me, of_int(num + i * sub), of_int(sub)]);
        }
        let mut sum = 0;
        for _ in 0..10 {
            sum += int_of(recv(proc));
        }
        caravan_rt_send(proc, parent, of_int(sum));
    }
    UNIT
}
unsafe extern "C" fn skynet(proc: *mut Process, _c: Value, _a: Value) -> Value {
    unsafe {
        let me = caravan_rt_self(proc);
        spawn(proc, skynet_node, &[me, of_int(0), of_int(1_000_000)]);
        let r = int_of(recv(proc));
        eprintln!("skynet result {r}");
    }
    UNIT
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let w = args.get(1).map(String::as_str).unwrap_or("pingpong");
    let (body, default): (Body, i64) = match w {
        "pingpong" => (pingpong, 1_000_000),
        "ring" => (ring, 1000),
        "spawn" => (spawner, 1_000_000),
        "idle" => (idle, 1_000_000),
        "skynet" => (skynet, 1),
        _ => panic!("unknown workload {w}"),
    };
    let count = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(default);
    // SAFETY: before any process runs.
    unsafe { N = count };
    let mut cfg = VmConfig::default();
    if let Some(s) = args.get(3).and_then(|s| s.parse().ok()) {
        cfg.schedulers = s;
    }
    let b = literal_block(TAG_CLOSURE, 2);
    // SAFETY: a fresh literal block of two words.
    unsafe {
        *b = body as *const () as u64;
        *b.add(1) = of_int(1);
    }
    let t = Instant::now();
    let status = run(cfg.clone(), entry, b as Value);
    eprintln!(
        "{w} {count} on {} schedulers: {:?} (status {status}, peak RSS {} MiB)",
        cfg.schedulers,
        t.elapsed(),
        peak_rss_kib() / 1024
    );
}

fn peak_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|x| x.parse().ok())
        .unwrap_or(0)
}
