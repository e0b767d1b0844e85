//! Where generated code finds things, by name (as wasmtime's
//! `vmoffsets.rs`): the fixed fields at the start of the process struct and
//! the layout of a closure. Code generation uses these constants, never
//! numbers; the assertions below tie them to the Rust structs.
//!
//! ```text
//! Process (#[repr(C)], docs/vm-abi.md "The process struct")
//!   +0   trip         u64  reductions and stack check in one address
//!   +8   stack_limit  u64  lowest stack address generated code may use
//!   +16  heap_ptr     u64  bump pointer of the current heap chunk
//!   +24  heap_limit   u64  end of the current heap chunk
//!   +32  exit_fp      u64  a trampoline's frame pointer, else 0
//!   +40  gc_pending   u64  collect when the trampoline returns
//!
//! Closure block (tag TAG_CLOSURE; value = address of word 0)
//!   +0   code         raw code pointer
//!   +8   arity        tagged int
//!   +16  env[0] ...   free variables (values)
//! ```

use crate::process::Process;
use std::mem::offset_of;

/// `Process::trip`.
pub const TRIP: i32 = 0;
/// `Process::stack_limit`.
pub const STACK_LIMIT: i32 = 8;
/// `Process::heap_ptr`.
pub const HEAP_PTR: i32 = 16;
/// `Process::heap_limit`.
pub const HEAP_LIMIT: i32 = 24;
/// `Process::exit_fp`.
pub const EXIT_FP: i32 = 32;
/// `Process::gc_pending`.
pub const GC_PENDING: i32 = 40;

/// A closure's code pointer.
pub const CLOSURE_CODE: i32 = 0;
/// A closure's arity (a tagged int).
pub const CLOSURE_ARITY: i32 = 8;
/// A closure's first free variable.
pub const CLOSURE_ENV: i32 = 16;

const _: () = {
    assert!(offset_of!(Process, trip) == TRIP as usize);
    assert!(offset_of!(Process, stack_limit) == STACK_LIMIT as usize);
    assert!(offset_of!(Process, heap_ptr) == HEAP_PTR as usize);
    assert!(offset_of!(Process, heap_limit) == HEAP_LIMIT as usize);
    assert!(offset_of!(Process, exit_fp) == EXIT_FP as usize);
    assert!(offset_of!(Process, gc_pending) == GC_PENDING as usize);
};
