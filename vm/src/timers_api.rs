//! `Timer.send_after` and `Timer.cancel` (LANGUAGE.md §4) on the
//! schedulers' timer heaps — the same heaps that time out `receive ...
//! after`, `sleep` and `call`, so every timer of the VM has one mechanism.
//!
//! `send_after pid ms msg` copies `msg` at once (into a fragment, as
//! `send` does) and puts a timer entry carrying it on the caller's
//! scheduler; when it is due, the scheduler that fires it appends the
//! message to `pid`'s mailbox (dropped if `pid` is dead by then). A timer
//! is pending from `send_after` until it fires or is cancelled: the set of
//! pending timer ids (sharded, so setting and cancelling timers from many
//! schedulers does not serialise on one lock) decides which of the two
//! wins, exactly once. `cancel` after the message was sent does nothing
//! (as Erlang's `cancel_timer`): the message stays in the mailbox.
//!
//! A timer handle is the immediate int of its id (unique in the OS
//! process), so handles compare by identity and hold no memory.

use crate::process::make_msg;
use crate::process::{serial_of_pid, Msg, ProcState, Shared, WaitKind};
use crate::safepoint::{guard, Fail};
use crate::scheduler::Scheduler;
use crate::term::WordMap;
use crate::value::{int_of, is_immediate, of_int, Value, UNIT};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const SHARDS: usize = 64;

/// Ids of the timers set and neither fired nor cancelled.
struct Pending {
    shards: [Mutex<WordMap<()>>; SHARDS],
}

static PENDING: std::sync::LazyLock<Pending> = std::sync::LazyLock::new(|| Pending {
    shards: std::array::from_fn(|_| Mutex::new(WordMap::default())),
});

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn shard(id: u64) -> std::sync::MutexGuard<'static, WordMap<()>> {
    PENDING.shards[id as usize % SHARDS]
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Removes `id` from the pending set; true if it was there (the caller
/// won: it fires or cancels the timer).
fn take_pending(id: u64) -> bool {
    shard(id).remove(&id).is_some()
}

/// The payload of a `send_after` timer entry in a scheduler's heap.
pub(crate) struct SendTimer {
    id: u64,
    msg: Option<Msg>,
}

impl SendTimer {
    /// The timer's id (its handle's int).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// True once cancelled (the entry is then dropped unfired).
    pub(crate) fn is_cancelled(&self) -> bool {
        !shard(self.id).contains_key(&self.id)
    }
}

impl Drop for SendTimer {
    fn drop(&mut self) {
        // Dropped unfired (a heap cleared at shutdown): forget the id.
        if self.msg.is_some() {
            take_pending(self.id);
        }
    }
}

/// Fires a due `send_after` timer (scheduler context): unless it was
/// cancelled, its message goes to `to`'s mailbox and a receiver waiting for
/// it is queued on `sched`.
pub(crate) fn fire(sched: &Scheduler, to: &Arc<Shared>, s: &mut SendTimer) {
    let Some(msg) = s.msg.take() else { return };
    if !take_pending(s.id) {
        return;
    }
    let mut rejected = None;
    let woken = {
        let mut g = to.lock();
        if g.state == ProcState::Exited {
            rejected = Some(msg);
            std::ptr::null_mut()
        } else {
            g.inbox.push(msg);
            to.note_mail();
            to.wake_if(&mut g, |k| k == WaitKind::Receive)
        }
    };
    drop(rejected);
    if !woken.is_null() {
        sched.push_local(woken);
    }
}

/// `Timer.send_after pid ms msg`: in `ms` milliseconds (tagged int), sends
/// a copy of `msg` (made now) to `pid`. Returns the timer handle. `ms <= 0`
/// sends at once. A dead `pid` gets nothing.
///
/// # Safety
/// `proc` must be the calling process; `msg` a valid value.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_send_after(
    proc: *mut Process,
    pid: Value,
    ms: Value,
    msg: Value,
) -> Value {
    // SAFETY: `proc` is the running process (the ABI's contract).
    unsafe {
        guard(proc, || {
            if !is_immediate(pid) {
                return Err(Fail::msg("Timer.send_after: not a pid"));
            }
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            let ms = int_of(ms);
            if ms <= 0 {
                crate::abi::caravan_rt_send(proc, pid, msg);
                return Ok(of_int(id as i64));
            }
            let sched = &*(*proc).sched;
            let Some(to) = sched.lookup(serial_of_pid(pid)) else {
                return Ok(of_int(id as i64));
            };
            if to.is_exited() {
                return Ok(of_int(id as i64));
            }
            // `forever`, or too far in the future for an `Instant`: never
            // fires.
            let Some(deadline) = crate::safepoint::deadline_after(ms) else {
                return Ok(of_int(id as i64));
            };
            let (m, words) = make_msg(&mut sched.local().copy, Some(&(*proc).large), msg)
                .ok_or_else(|| Fail::msg(crate::process::OUT_OF_MEMORY))?;
            (*proc).charge(crate::abi::SEND_REDS + (words >> 4) as i64);
            shard(id).insert(id, ());
            let s = Box::new(SendTimer { id, msg: Some(m) });
            sched.add_send_timer(deadline, to, s);
            Ok(of_int(id as i64))
        })
    }
}

/// `Timer.cancel t`: the timer's message will not be sent (if it was
/// already sent, it stays in the receiver's mailbox). Cancelling twice, or
/// a fired timer, does nothing.
///
/// # Safety
/// `proc` must be the calling process.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_cancel_timer(_proc: *mut Process, timer: Value) -> Value {
    if is_immediate(timer) {
        take_pending(int_of(timer) as u64);
    }
    UNIT
}

use crate::process::Process;

/// `(name, address)` of the timer runtime functions.
pub(crate) fn symbols() -> Vec<(&'static str, *const u8)> {
    vec![
        ("caravan_rt_send_after", caravan_rt_send_after as *const u8),
        (
            "caravan_rt_cancel_timer",
            caravan_rt_cancel_timer as *const u8,
        ),
    ]
}
