//! VM support for the OTP layer's builtins (`Store`, `Registry`, `Server`,
//! `Supervisor`): values kept outside every process heap ([`Frozen`]),
//! exit hooks on another process ([`at_exit_of`]), ending the caller with
//! a chosen reason ([`caravan_rt_exit_self`]), and waiting for a reply
//! without crashing ([`caravan_rt_try_call_wait`], `Process.try_call`),
//! also from a process spawned after the channel was made
//! ([`caravan_rt_call_watch`]: synchronous `Server.start`).
//!
//! A [`Frozen`] value is a deep copy (sharing and cycles kept, literals
//! shared) in memory it owns — a fragment, exactly as a message in flight
//! — so it holds no pointer into any process heap and a collector need
//! not know of it. It is immutable: any number of threads may copy it out
//! at once ([`Frozen::thaw`] only reads it).

use crate::heap::alloc::alloc_block;
use crate::heap::{is_literal, Fragment};
use crate::process::{
    serial_of_pid, ExitHook, ExitReason, ProcState, Process, Request, WaitKind, Watcher,
};
use crate::safepoint::{
    exit_now, exit_reason_of_value, exit_reason_value, guard, switch_out, Fail,
};
use crate::value::{
    field, header, header_tag, header_wosize, int_of, is_block, is_immediate, make_header, of_int,
    Value, TAG_REPLY, UNIT,
};

/// A value copied out of a process heap into memory of its own.
pub struct Frozen {
    value: Value,
    /// Holds the blocks of `value`; `None` for an immediate or a literal.
    frag: Option<Fragment>,
}

// SAFETY: a frozen value is immutable plain memory owned by the `Frozen`;
// reading it from several threads at once is safe (a copy only reads its
// source) and it may be dropped on any thread.
unsafe impl Send for Frozen {}
// SAFETY: as above: shared access only reads.
unsafe impl Sync for Frozen {}

impl Frozen {
    /// A deep copy of `v` (a value of the calling process), made with the
    /// scheduler's copy buffers. Returns it and the words it takes, or
    /// `None` if memory for it cannot be had.
    ///
    /// # Safety
    /// `proc` is the calling process, running; `v` a valid value of it.
    pub unsafe fn freeze(proc: *mut Process, v: Value) -> Option<(Frozen, usize)> {
        // SAFETY: the running process's scheduler, on its own thread; the
        // borrow of its local state ends with this statement.
        let (m, words) = unsafe {
            crate::process::make_msg(&mut (*(*proc).sched).local().copy, Some(&(*proc).large), v)
        }?;
        Some((
            Frozen {
                value: m.value,
                frag: m.frag,
            },
            words,
        ))
    }

    /// A `Frozen` of a value that needs no copy: an immediate or a value
    /// of the immortal literal area (e.g. built with
    /// [`crate::literal_block`]).
    ///
    /// # Safety
    /// `v` must be an immediate or a valid literal value.
    pub unsafe fn shared(v: Value) -> Frozen {
        Frozen {
            value: v,
            frag: None,
        }
    }

    /// The value and its memory, to become a message's (`Msg::value` and
    /// `Msg::frag`).
    pub(crate) fn into_parts(self) -> (Value, Option<Fragment>) {
        (self.value, self.frag)
    }

    /// The frozen value itself, to read in place (compare, hash). Never
    /// hand it to generated code: it is not in the process heap.
    pub fn value(&self) -> Value {
        self.value
    }

    /// Words held (0 for an immediate or a literal).
    pub fn words(&self) -> usize {
        self.frag.as_ref().map_or(0, |f| f.total_words())
    }

    /// A frozen pair `(v, n)` — `v` deep-copied, `n` an int that
    /// [`Frozen::set_pair_int`] may change until the pair is shared (a
    /// `Store` keeps each value with its version this way). Returns it and
    /// the words it takes, or `None` if memory for it cannot be had.
    ///
    /// # Safety
    /// As [`Frozen::freeze`].
    pub unsafe fn freeze_pair(proc: *mut Process, v: Value, n: i64) -> Option<(Frozen, usize)> {
        // SAFETY: as in `freeze`; the fragment has room for the pair's
        // three words followed by exactly the planned copy.
        unsafe {
            let scratch = &mut (*(*proc).sched).local().copy;
            let words = scratch.plan(v, is_literal)?;
            let Some(f) = Fragment::try_new(words + 3) else {
                scratch.trim();
                return None;
            };
            let d = f.data();
            let inner = if words == 0 {
                v
            } else {
                scratch.emit(d.add(3), is_literal)
            };
            scratch.trim();
            *d = make_header(2, 0);
            *d.add(1) = inner;
            *d.add(2) = of_int(n);
            Some((
                Frozen {
                    value: d.add(1) as Value,
                    frag: Some(f),
                },
                words + 3,
            ))
        }
    }

    /// Sets the int of a pair made by [`Frozen::freeze_pair`].
    pub fn set_pair_int(&mut self, n: i64) {
        assert!(self.frag.is_some(), "not a frozen pair");
        // SAFETY: a pair made by `freeze_pair`: field 1 of its own block,
        // not yet shared (we hold it mutably).
        unsafe { *(self.value as *mut u64).add(1) = of_int(n) };
    }

    /// Field `i` of the frozen value (a block), to read or copy out.
    ///
    /// # Safety
    /// The frozen value must be a block of more than `i` fields.
    pub unsafe fn field(&self, i: usize) -> Value {
        // SAFETY: caller's guarantee.
        unsafe { field(self.value, i) }
    }

    /// A copy of the frozen value in `proc`'s heap ([`copy_into`]), or
    /// `None` if memory for it cannot be had.
    ///
    /// # Safety
    /// `proc` is the calling process, running.
    pub unsafe fn thaw(&self, proc: *mut Process) -> Option<Value> {
        // SAFETY: the frozen blocks are live and immutable while `self` is
        // borrowed; caller's guarantee on `proc`.
        unsafe { copy_into(proc, self.value) }
    }
}

/// A deep copy of `v` — a valid value anywhere but in another process's
/// heap that may change meanwhile: a [`Frozen`] value, blocks a builtin
/// built in memory of its own — in `proc`'s heap, as a fragment the heap
/// adopts (as a received message). Literals are shared. Charges a
/// reduction per 16 words and counts toward the next collection. Never
/// crashes or switches: it may run under a lock. `None` if memory for the
/// copy cannot be had (the caller crashes the process, lock released, with
/// `Crashed "out of memory"`).
///
/// # Safety
/// `proc` is the calling process, running; every block reachable from `v`
/// is live and unchanged during the call.
pub unsafe fn copy_into(proc: *mut Process, v: Value) -> Option<Value> {
    // SAFETY: the running process's scheduler, on its own thread; caller's
    // guarantee on `v`; the fragment has exactly the planned size.
    unsafe {
        let scratch = &mut (*(*proc).sched).local().copy;
        let words = scratch.plan(v, is_literal)?;
        if words == 0 {
            return Some(v);
        }
        let Some(f) = Fragment::try_new(words) else {
            scratch.trim();
            return None;
        };
        let c = scratch.emit(f.data(), is_literal);
        scratch.trim();
        let p = &mut *proc;
        p.heap.adopt(f);
        crate::gc::note_growth(p);
        p.charge((words >> 4) as i64);
        Some(c)
    }
}

/// Registers `hook` to run when process `pid` ends (as
/// [`crate::safepoint::at_exit`] does for the caller), e.g. to free a
/// `Registry` name another process holds. Returns false, dropping the
/// hook, if `pid` is dead or unknown.
///
/// # Safety
/// `proc` must be the calling process, running.
pub unsafe fn at_exit_of(proc: *mut Process, pid: Value, hook: ExitHook) -> bool {
    if !is_immediate(pid) {
        return false;
    }
    // SAFETY: the running process's scheduler, on its own thread.
    let sched = unsafe { &*(*proc).sched };
    let Some(sh) = sched.lookup(serial_of_pid(pid)) else {
        return false;
    };
    let mut g = sh.lock();
    if g.state == ProcState::Exited {
        drop(g);
        drop(hook);
        return false;
    }
    g.x().exit_hooks.push(hook);
    true
}

/// Ends the calling process at once with `reason` (an `exit_reason`
/// value), whether it traps exits or not, printing nothing: a deliberate
/// end (`Server.Stop`, a supervisor giving up with `Shutdown`), not a
/// crash. Its links and monitors are told `reason`.
///
/// # Safety
/// `proc` must be the calling process; `reason` an `exit_reason` value.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_exit_self(proc: *mut Process, reason: Value) -> Value {
    // SAFETY: `proc` is the running process; the reason is moved into its
    // struct before the switch (nothing owned stays on the stack).
    unsafe {
        let r = exit_reason_of_value(reason);
        (*proc).exit_reason = match r {
            ExitReason::Normal => None,
            r => Some(r),
        };
        exit_now(proc)
    }
}

/// Also watches `pid` for the call of `reply` (a channel of the caller,
/// from `caravan_rt_call_begin`): if `pid` ends before the reply comes, the
/// wait ends with its exit reason — at once if it is dead already. Lets a
/// process wait for a reply from a process it spawns after making the
/// channel (`Server.start` waits so for its `init`).
///
/// # Safety
/// `proc` must be the calling process; `reply` a valid value.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_call_watch(
    proc: *mut Process,
    reply: Value,
    pid: Value,
) -> Value {
    // SAFETY: `proc` is the running process.
    unsafe {
        guard(proc, || {
            let r = own_call_ref(proc, reply)?;
            if !is_immediate(pid) {
                return Err(Fail::msg("call: not a pid"));
            }
            let sched = &*(*proc).sched;
            let p = &mut *proc;
            let me = p.serial;
            let target = serial_of_pid(pid);
            let dead = match sched.lookup(target) {
                Some(sh) => {
                    let alive = {
                        let mut g = sh.lock();
                        if g.state != ProcState::Exited {
                            g.x().watchers.push(Watcher::Call {
                                serial: me,
                                reference: r,
                            });
                            None
                        } else {
                            Some(g.exit_reason.clone().unwrap_or(ExitReason::Normal))
                        }
                    };
                    if alive.is_none() {
                        p.call_watches.push((r, sh));
                    }
                    alive
                }
                None => Some(sched.vm().dead_reason(target)),
            };
            if let Some(reason) = dead {
                p.shared.lock().x().downs.push((r, reason));
            }
            Ok(UNIT)
        })
    }
}

/// The call reference of `reply` if it is a channel of the caller.
///
/// # Safety
/// `proc` is the running process; `reply` a valid value.
unsafe fn own_call_ref(proc: *mut Process, reply: Value) -> Result<u64, Fail> {
    // SAFETY: caller's guarantee.
    unsafe {
        if !is_block(reply)
            || header_tag(header(reply)) != TAG_REPLY
            || header_wosize(header(reply)) < 2
            || field(reply, 0) != (*proc).serial
        {
            return Err(Fail::msg("call: not a reply channel of this process"));
        }
        Ok(field(reply, 1))
    }
}

/// Stops every watch of call `r` (on all the processes watched for it).
fn unwatch(p: &mut Process, r: u64) {
    let w = Watcher::Call {
        serial: p.serial,
        reference: r,
    };
    let mut i = 0;
    while i < p.call_watches.len() {
        if p.call_watches[i].0 != r {
            i += 1;
            continue;
        }
        let (_, callee) = p.call_watches.swap_remove(i);
        let mut g = callee.lock();
        if let Some(x) = g.x_opt() {
            if let Some(j) = x.watchers.iter().position(|y| *y == w) {
                x.watchers.swap_remove(j);
            }
        }
    }
}

/// `Process.try_call`'s wait: as `caravan_rt_call_wait`, but returns
/// `Ok reply`, or `Error reason` — `Timeout`, or the exit reason of a
/// watched process that ended first — instead of crashing.
///
/// # Safety
/// `proc` must be the calling process; `reply` a reply channel it made.
#[no_mangle]
pub unsafe extern "C" fn caravan_rt_try_call_wait(
    proc: *mut Process,
    reply: Value,
    timeout_ms: Value,
) -> Value {
    // SAFETY: `proc` is the running process; borrows end before switches.
    unsafe {
        guard(proc, || {
            let r = own_call_ref(proc, reply)?;
            let deadline = crate::safepoint::deadline_after(int_of(timeout_ms));
            loop {
                let outcome = {
                    let p = &mut *proc;
                    let expired = deadline.is_some_and(|d| crate::scheduler::now() >= d);
                    let mut g = p.shared.lock();
                    let x = g.x();
                    let out = if let Some(i) = x.replies.iter().position(|y| y.0 == r) {
                        Some(Ok(x.replies.swap_remove(i).1))
                    } else if let Some(i) = x.downs.iter().position(|y| y.0 == r) {
                        Some(Err(x.downs.swap_remove(i).1))
                    } else if expired {
                        Some(Err(ExitReason::Timeout))
                    } else {
                        None
                    };
                    if out.is_some() {
                        x.calls.retain(|&c| c != r);
                        x.replies.retain(|y| y.0 != r);
                        x.downs.retain(|y| y.0 != r);
                    }
                    out
                };
                match outcome {
                    Some(Ok(mut m)) => {
                        let p = &mut *proc;
                        unwatch(p, r);
                        // `Ok v`: the block first, then the reply's
                        // fragment joins the heap (no heap value is held
                        // across the allocation).
                        let b = alloc_block(p, 0, 1);
                        if let Some(f) = m.frag.take() {
                            p.adopt(f);
                        }
                        *b = m.value;
                        return Ok(b as Value);
                    }
                    Some(Err(reason)) => {
                        let p = &mut *proc;
                        unwatch(p, r);
                        let e = exit_reason_value(p, &reason);
                        drop(reason);
                        // `Error reason`: constructor 1 of `result`.
                        let b = alloc_block(p, 1, 1);
                        *b = e;
                        return Ok(b as Value);
                    }
                    None => {
                        (*proc).request = Request::Wait {
                            kind: WaitKind::Reply(r),
                            deadline,
                        };
                        switch_out(proc);
                    }
                }
            }
        })
    }
}

/// `(name, address)` of the runtime functions defined here.
pub(crate) fn symbols() -> Vec<(&'static str, *const u8)> {
    vec![
        ("caravan_rt_exit_self", caravan_rt_exit_self as *const u8),
        ("caravan_rt_call_watch", caravan_rt_call_watch as *const u8),
        (
            "caravan_rt_try_call_wait",
            caravan_rt_try_call_wait as *const u8,
        ),
    ]
}
