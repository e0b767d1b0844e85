//! Helpers to drive the VM without the compiler: process bodies are Rust
//! `extern "C"` functions; a closure's code pointer word names the body and
//! the test entry trampoline calls it, as generated code would.
//!
//! Process bodies must not panic (a panic cannot unwind out of an
//! `extern "C"` body): they record failures in shared state instead, which
//! the test asserts after `run` returns.

#![allow(dead_code)]

use caravan_vm::value::*;
use caravan_vm::*;
use std::sync::mpsc;
use std::time::Duration;

/// A process body: `(proc, its closure, its argument)`.
pub type Body = unsafe extern "C" fn(*mut Process, Value, Value) -> Value;

/// The entry trampoline: applies `closure` (word 0 = a [`Body`]) to `arg`.
pub unsafe extern "C" fn entry(proc: *mut Process, closure: Value, arg: Value) -> Value {
    unsafe {
        let code: Body = std::mem::transmute::<u64, Body>(*(closure as *const u64));
        code(proc, closure, arg)
    }
}

/// A closure in `proc`'s heap.
pub unsafe fn closure(proc: *mut Process, code: Body, env: &[Value]) -> Value {
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

/// A closure in the literal area (for the main process).
pub fn literal_closure(code: Body, env: &[Value]) -> Value {
    let b = literal_block(TAG_CLOSURE, 2 + env.len());
    unsafe {
        *b = code as *const () as u64;
        *b.add(1) = of_int(1);
        for (i, v) in env.iter().enumerate() {
            *b.add(2 + i) = *v;
        }
    }
    b as Value
}

/// Environment value `i` of a closure.
pub unsafe fn env(closure: Value, i: usize) -> Value {
    unsafe { field(closure, 2 + i) }
}

/// A Rust pointer smuggled through a value (as a tagged int).
pub fn ptr_val<T>(p: &'static T) -> Value {
    of_int(p as *const T as i64)
}

/// The pointer back.
pub unsafe fn val_ref<T>(v: Value) -> &'static T {
    unsafe { &*(int_of(v) as *const T) }
}

/// Spawns `code` with `env`.
pub unsafe fn spawn(proc: *mut Process, code: Body, env: &[Value]) -> Value {
    unsafe {
        let c = closure(proc, code, env);
        caravan_rt_spawn(proc, c)
    }
}

/// A block with `tag` and `fields`.
pub unsafe fn block(proc: *mut Process, tag: u8, fields: &[Value]) -> Value {
    unsafe {
        let b = alloc_block(&mut *proc, tag, fields.len());
        for (i, v) in fields.iter().enumerate() {
            *b.add(i) = *v;
        }
        b as Value
    }
}

/// Receives the oldest message.
pub unsafe fn recv_any(proc: *mut Process) -> Value {
    unsafe {
        caravan_rt_recv_start(proc, caravan_rt_self(proc), std::ptr::null());
        let v = caravan_rt_recv_next(proc, i64::MAX);
        caravan_rt_recv_accept(proc);
        v
    }
}

/// Receives the oldest message within `ms` milliseconds.
pub unsafe fn recv_within(proc: *mut Process, ms: i64) -> Option<Value> {
    unsafe {
        caravan_rt_recv_start(proc, caravan_rt_self(proc), std::ptr::null());
        let v = caravan_rt_recv_next(proc, ms);
        if v == RECV_TIMEOUT {
            return None;
        }
        caravan_rt_recv_accept(proc);
        Some(v)
    }
}

/// Selective receive: the oldest message for which `pred` holds.
pub unsafe fn recv_match(
    proc: *mut Process,
    ms: i64,
    pred: impl Fn(Value) -> bool,
) -> Option<Value> {
    unsafe {
        caravan_rt_recv_start(proc, caravan_rt_self(proc), std::ptr::null());
        loop {
            let v = caravan_rt_recv_next(proc, ms);
            if v == RECV_TIMEOUT {
                return None;
            }
            if pred(v) {
                caravan_rt_recv_accept(proc);
                return Some(v);
            }
        }
    }
}

/// Simulates the generated prologue's reduction check: the trip point
/// rises by one reduction; a stack pointer below it (here, the address of
/// a local) takes the cold path. Test bodies never overflow their stack.
#[inline(always)]
pub unsafe fn tick(proc: *mut Process) {
    unsafe {
        (*proc).trip += caravan_vm::process::TRIP_PER_RED;
        let here = 0u8;
        let sp = std::ptr::addr_of!(here) as usize;
        if sp < (*proc).trip {
            caravan_rt_tick(proc, sp);
        }
    }
}

/// A string value's text.
pub unsafe fn text(v: Value) -> String {
    unsafe { String::from_utf8_lossy(string_bytes(v)).into_owned() }
}

/// Renders an exit reason value: "Normal", ..., "Crashed msg".
pub unsafe fn reason_text(v: Value) -> String {
    unsafe {
        match exit_reason_of_value(v) {
            ExitReason::Crashed(m) => format!("Crashed {}", String::from_utf8_lossy(&m)),
            r => r.message().into_owned(),
        }
    }
}

/// Runs a program whose main process runs `code` with `env`, with a
/// watchdog: fails the test instead of hanging after `secs` seconds.
pub fn run_main(schedulers: usize, secs: u64, code: Body, env: &[Value]) -> i32 {
    let main = literal_closure(code, env);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let cfg = VmConfig {
            schedulers,
            stack_size: 256 << 10,
            ..Default::default()
        };
        let _ = tx.send(run(cfg, entry, main));
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(s) => s,
        Err(_) => panic!("watchdog: the VM did not finish within {secs} s"),
    }
}

/// Failures recorded by process bodies.
#[derive(Default)]
pub struct Checks {
    pub failures: std::sync::Mutex<Vec<String>>,
}

impl Checks {
    pub fn new() -> &'static Checks {
        Box::leak(Box::default())
    }
    pub fn check(&self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.failures.lock().unwrap().push(what());
        }
    }
    pub fn assert_ok(&self) {
        let f = self.failures.lock().unwrap();
        assert!(f.is_empty(), "failures: {:?}", &f[..f.len().min(20)]);
    }
}
