//! `Registry`: typed names for processes (LANGUAGE.md §4).
//!
//! A name is the immediate int of a fresh id (`Registry.new_name`), so it
//! is shared freely (a top-level value) and compares by identity; its type
//! `'m name` ties it to one message type. The table maps a name to the
//! serial of the process holding it, in shards by name (no global lock).
//! A name is freed when its holder ends: registering puts an exit hook on
//! the holder that removes the name if the holder still has it, and it runs
//! before the holder's links and monitors are told — so a supervisor that
//! restarts the holder finds the name free, and the new process registers
//! it again.

use caravan_vm::otp_api::at_exit_of;
use caravan_vm::value::{int_of, is_immediate, of_int, UNIT};
use caravan_vm::{
    alloc_block, crash_process, is_alive, pid_of_serial, serial_of_pid, Process, Value,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

const SHARDS: usize = 32;

static NAMES: LazyLock<Vec<Mutex<HashMap<u64, u64>>>> =
    LazyLock::new(|| (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect());
static NEXT_NAME: AtomicU64 = AtomicU64::new(1);

fn shard(name: u64) -> MutexGuard<'static, HashMap<u64, u64>> {
    NAMES[name as usize % SHARDS]
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Removes `name` if `serial` still holds it.
fn free(name: u64, serial: u64) {
    let mut g = shard(name);
    if g.get(&name) == Some(&serial) {
        g.remove(&name);
        caravan_vm::dist::api::unregister_global(name, Some(serial));
    }
}

/// `Registry.new_name label`: a fresh name (the label is for people).
#[no_mangle]
pub extern "C" fn caravan_registry_new_name(_proc: *mut Process, _label: Value) -> Value {
    of_int(NEXT_NAME.fetch_add(1, Ordering::Relaxed) as i64)
}

/// `Registry.register name pid`: `pid` holds `name` until it ends. Crashes
/// the caller if a live process holds it already. Registering a dead
/// process does nothing (the name stays free).
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_registry_register(
    proc: *mut Process,
    name: Value,
    pid: Value,
) -> Value {
    let n = int_of(name) as u64;
    if !is_immediate(pid) {
        // SAFETY: nothing owned is alive; the process's own stack.
        unsafe { crash_process(proc, "Registry.register: not a pid") }
    }
    let serial = serial_of_pid(pid);
    let taken = {
        let mut g = shard(n);
        // SAFETY: `proc` is the running process.
        let p = unsafe { &*proc };
        match g.get(&n) {
            Some(&h) if is_alive(p, pid_of_serial(h)) => true,
            _ => {
                g.insert(n, serial);
                false
            }
        }
    };
    if taken {
        // SAFETY: the guard is dropped; nothing owned is alive.
        unsafe { crash_process(proc, "Registry.register: the name is already registered") }
    }
    caravan_vm::dist::api::register_global(n, serial);
    let hook = Box::new(move |_s: u64, _r: &caravan_vm::ExitReason| free(n, serial));
    // SAFETY: `proc` is the running process.
    if !unsafe { at_exit_of(proc, pid, hook) } {
        free(n, serial);
    }
    UNIT
}

/// `Registry.unregister name`: frees the name (whoever holds it).
#[no_mangle]
pub extern "C" fn caravan_registry_unregister(_proc: *mut Process, name: Value) -> Value {
    let n = int_of(name) as u64;
    shard(n).remove(&n);
    caravan_vm::dist::api::unregister_global(n, None);
    UNIT
}

/// `Registry.whereis name`: `Some pid` of the holder, or `None`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process.
#[no_mangle]
pub unsafe extern "C" fn caravan_registry_whereis(proc: *mut Process, name: Value) -> Value {
    let n = int_of(name) as u64;
    let holder = shard(n).get(&n).copied();
    match holder {
        None => UNIT,
        Some(s) => {
            // SAFETY: the running process; no owned value is alive.
            let b = alloc_block(unsafe { &mut *proc }, 0, 1);
            // SAFETY: a fresh block of one field.
            unsafe { *b = pid_of_serial(s) };
            b as Value
        }
    }
}
