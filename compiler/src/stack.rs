//! Deep recursion without overflowing the thread's stack.
//!
//! The front end and code generation recurse on syntax trees, types and
//! pattern matrices, whose depth the program's author chooses (a
//! 1,000,000-term `1 + 1 + …` chain is a left-deep tree of that depth).
//! Every recursive entry point runs its body through [`deep`], which grows
//! the stack on the heap when little of it is left: as rustc
//! (`ensure_sufficient_stack`) and Gleam do, with the `stacker` crate. So
//! the compiler needs no big thread of its own, and a library user (the
//! language server, the REPL, tests) can call it on any thread.

/// Stack that must remain when a recursive step starts: the most that one
/// step may use before it reaches the next [`deep`] (unoptimised builds
/// have large frames).
pub const RED_ZONE: usize = 256 * 1024;

/// Size of each stack segment allocated when the red zone is reached.
pub const SEGMENT: usize = 8 * 1024 * 1024;

/// Runs `f`, on a new stack segment if fewer than [`RED_ZONE`] bytes of
/// the current one remain.
#[inline]
pub fn deep<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(RED_ZONE, SEGMENT, f)
}
