//! The contract with generated code (`docs/vm-abi.md`): the offsets of the
//! process struct's fixed fields, and the runtime functions generated code
//! calls, grouped by what they do. Every function is `extern "C"`, takes
//! the calling process first and never unwinds (see [`crate::safepoint`]).

mod call;
mod message;
pub mod offsets;
mod process;
mod values;

pub use call::*;
pub use message::*;
pub use process::*;
pub use values::*;

pub(crate) use process::spawn_process;

use crate::heap::alloc::{alloc_block, alloc_string};
use crate::heap::literal_copy;
use crate::io::report_crash;
use crate::process::{mailbox_msg, make_msg, Small};
use crate::process::{
    pid_of_serial, serial_of_pid, ExitReason, Msg, Process, Request, Signal, WaitKind, Watcher,
};
use crate::safepoint::{
    crash, deadline_after, exit_now, exit_reason_value, guard, local_of, sched_of, switch_out, Fail,
};
use crate::term::{compare_values, COMPARE_FUNCTIONAL, UNORDERED};
use crate::value::{
    self, field, header, header_tag, header_wosize, int_of, is_block, is_immediate, of_bool, Value,
    RECV_TIMEOUT, TAG_REPLY, TAG_STRING, UNIT,
};
use std::collections::VecDeque;
use std::sync::Arc;

/// Reductions charged for a `spawn` (on top of the caller's own).
pub const SPAWN_REDS: i64 = 20;
/// Reductions charged for a `send`, plus one per 16 words copied.
pub const SEND_REDS: i64 = 2;

/// Name and address of every runtime function, for the JIT's symbol
/// lookup (`caravan_vm::symbols()`).
pub(crate) fn symbol_table() -> Vec<(&'static str, *const u8)> {
    use crate::gc::{
        caravan_gc_collections, caravan_gc_heap_words, caravan_gc_live_words, caravan_rt_alloc_gc,
        caravan_rt_alloc_group_gc, caravan_rt_gc_after,
    };
    use crate::signals::{
        caravan_rt_alive, caravan_rt_demonitor, caravan_rt_exit_signal, caravan_rt_link,
        caravan_rt_monitor, caravan_rt_spawn_link, caravan_rt_trap_exits,
    };
    use crate::stackgrow::{caravan_rt_stack_overflow, caravan_rt_stack_reserve};
    macro_rules! syms {
        ($($f:ident),* $(,)?) => { vec![$((stringify!($f), $f as *const u8)),*] };
    }
    syms![
        caravan_rt_alloc_gc,
        caravan_rt_alloc_group_gc,
        caravan_rt_gc_after,
        caravan_gc_heap_words,
        caravan_gc_live_words,
        caravan_gc_collections,
        caravan_rt_yield,
        caravan_rt_tick,
        caravan_rt_yield_now,
        caravan_rt_stack_overflow,
        caravan_rt_stack_reserve,
        caravan_rt_alloc,
        caravan_rt_alloc_string,
        caravan_rt_fail,
        caravan_rt_raise,
        caravan_rt_failwith,
        caravan_rt_div_by_zero,
        caravan_rt_spawn,
        caravan_rt_spawn_limited,
        caravan_rt_self,
        caravan_rt_send,
        caravan_rt_recv_start,
        caravan_rt_recv_next,
        caravan_rt_recv_accept,
        caravan_rt_join,
        caravan_rt_sleep,
        caravan_rt_call_begin,
        caravan_rt_call_wait,
        caravan_rt_reply,
        caravan_rt_global,
        caravan_rt_exit,
        caravan_rt_compare,
        caravan_rt_equal,
        caravan_rt_alive,
        caravan_rt_exit_signal,
        caravan_rt_link,
        caravan_rt_spawn_link,
        caravan_rt_trap_exits,
        caravan_rt_monitor,
        caravan_rt_demonitor,
    ]
}
