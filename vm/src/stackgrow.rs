//! Growing a process's stack past its slot: deep non-tail recursion
//! (1,000,000 frames and more) works as in OCaml 5 and Erlang, while every
//! process still starts on a small fixed slot (`crate::stack`).
//!
//! The design is Go's copying stacks (Go 1.4, "Contiguous stacks",
//! Randall 2013), done once per process and without a hot split:
//!
//! * When the prologue of a generated function finds `sp < stack_limit`
//!   on the process's slot, it calls `caravan_rt_stack_overflow` through
//!   its collector trampoline (as before). That symbol is the assembly
//!   stub below: it makes a frame and calls [`grow`] with its own frame
//!   pointer.
//! * [`grow`] maps a *grown stack* ([`FIRST_GROWN`], then twice the last
//!   one, up to the process's whole stack limit `VmConfig::max_stack_size`,
//!   default 1 GiB as OCaml 5's `l=` limit; `MAP_NORESERVE`: only the pages
//!   touched cost memory) and copies every generated frame — from the
//!   stub's frame up to the entry trampoline's frame, found by walking the
//!   frame-pointer chain while return addresses are in generated code — to
//!   its top. Generated code keeps no address of a stack slot across a
//!   call (the code generator recomputes each `stack_addr` at its use:
//!   `docs/vm-abi.md`, "Grown stacks"), so the only words that point
//!   into the stack are the saved frame pointers of that chain (and
//!   `Process::exit_fp`): each is moved by the same delta. Stack torture
//!   mode ([`set_torture`]) tests that rule. It returns the
//!   delta; the stub moves `rsp` by it and returns into the trampoline,
//!   now on the grown stack, which returns into the overflowing function.
//! * The entry trampoline's return address on the grown stack is replaced
//!   by `caravan_stack_return`, with the real return address and the old
//!   stack pointer stored just above it: when the process's outermost
//!   function returns, the stub switches back to the slot, where
//!   `process_start` (Rust, never moved) ends the process.
//! * Stacks only grow, doubling, so the copies cost O(depth) in all and
//!   there is no hot split (Go's old segmented stacks paid a split at every
//!   call across a segment boundary). The stack a process outgrew is
//!   unmapped by its scheduler when the process next switches out. An
//!   overflow of a grown stack of the whole limit is `Crashed "stack
//!   overflow"`, as before.
//! * Growth is refused (the process crashes with `"stack overflow"`) while
//!   Rust frames lie between generated ones — code entered from
//!   `signals::convert_signal`, marked by `gc_inhibit` — since Rust frames
//!   cannot be moved.
//! * The grown stack is unmapped when the process ends; a process with a
//!   grown stack is never parked (`scheduler::stackpark`). Doubling from
//!   [`FIRST_GROWN`] keeps the address space a deep process takes near
//!   what it uses, so many processes can grow at once.

use crate::process::ExitReason;
use crate::process::Process;
use crate::safepoint::{crash, Fail};
use crate::stack::{PAGE, RUNTIME_MARGIN};
use std::sync::atomic::{AtomicBool, Ordering};

/// Default whole-stack limit of a process in bytes: 1 GiB, as OCaml 5's
/// default (`OCAMLRUNPARAM=l=128M` words).
pub const DEFAULT_MAX_STACK: usize = 1 << 30;

/// Size of a process's first grown stack in bytes (then doubled each time).
pub const FIRST_GROWN: usize = 4 << 20;

/// Bytes between a process's stack pointer and its stack limit, at least,
/// after a move in stack torture mode ([`set_torture`]); also how far below
/// the top of its slot a process's first limit is.
pub const TORTURE_GAP: usize = 4 << 10;

static TORTURE: AtomicBool = AtomicBool::new(false);

/// Stack torture mode (`CARAVAN_STACK_TORTURE=1`), a test mode for code
/// that must survive a process's stack moving: a process's first stack
/// limit is [`TORTURE_GAP`] below the top of its slot, and each move makes
/// a stack just big enough for the frames plus a quarter (at least
/// `TORTURE_GAP`), so any process a few calls deep moves, and a deep one
/// moves about every 25 % of added depth (O(log depth) moves, each
/// copying the whole stack). A value that keeps an address into the old
/// stack across a call — a spilled slot's address a compiler kept in a
/// register — then reads stale data at once, where normally it takes a
/// recursion past the slot.
pub fn set_torture(on: bool) {
    TORTURE.store(on, Ordering::Relaxed);
}

/// Whether stack torture mode is on.
pub fn torture() -> bool {
    TORTURE.load(Ordering::Relaxed)
}

/// The `stack_limit` a process starts with on a slot whose limit is
/// `limit` and whose top is `top`: `limit`, or [`TORTURE_GAP`] below the
/// top in stack torture mode.
pub(crate) fn first_limit(limit: usize, top: usize) -> usize {
    if torture() {
        top - TORTURE_GAP
    } else {
        limit
    }
}

/// A process's grown stack, and those it outgrew but still ran on during
/// its current slice.
#[derive(Debug)]
pub struct Grown {
    /// Low address and length of the stack in use.
    pub low: usize,
    pub len: usize,
    /// Stacks outgrown since the process last switched out.
    outgrown: Vec<(usize, usize)>,
}

impl Grown {
    /// Unmaps the stacks the process outgrew.
    ///
    /// # Safety
    /// The process is switched out (not running on any of them).
    pub unsafe fn release_outgrown(&mut self) {
        for (low, len) in self.outgrown.drain(..) {
            // SAFETY: caller's guarantee; frames moved off it.
            unsafe { crate::stack::unmap_grown(low, len) };
        }
    }

    /// Unmaps every stack.
    ///
    /// # Safety
    /// The process is over.
    pub unsafe fn release(mut self) {
        // SAFETY: caller's guarantee.
        unsafe {
            self.release_outgrown();
            crate::stack::unmap_grown(self.low, self.len);
        }
    }
}

std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl caravan_rt_stack_overflow",
    ".hidden caravan_rt_stack_overflow",
    ".type caravan_rt_stack_overflow,@function",
    // caravan_rt_stack_overflow(proc: rdi, loc: rsi) -> unit, System V.
    "caravan_rt_stack_overflow:",
    ".cfi_startproc",
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset rbp, -16",
    "mov rbp, rsp",
    ".cfi_def_cfa_register rbp",
    "mov rdx, rbp",
    "xor ecx, ecx",
    "call {grow}",
    // rax: how far the frames moved. rsp == rbp == this frame's old place.
    "add rsp, rax",
    "pop rbp",
    ".cfi_def_cfa rsp, 8",
    // UNIT (the runtime function's result: the trampoline's value is a
    // stack-map root, so it must be a valid value).
    "mov eax, 1",
    "ret",
    ".cfi_endproc",
    ".size caravan_rt_stack_overflow, .-caravan_rt_stack_overflow",
    "",
    ".p2align 4",
    ".globl caravan_rt_stack_reserve",
    ".hidden caravan_rt_stack_reserve",
    ".type caravan_rt_stack_reserve,@function",
    // caravan_rt_stack_reserve(proc: rdi, loc: rsi, bytes: rdx) -> unit,
    // System V: as above, growing until `bytes` fit above the new limit.
    "caravan_rt_stack_reserve:",
    ".cfi_startproc",
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset rbp, -16",
    "mov rbp, rsp",
    ".cfi_def_cfa_register rbp",
    "mov rcx, rdx",
    "mov rdx, rbp",
    "call {grow}",
    "add rsp, rax",
    "pop rbp",
    ".cfi_def_cfa rsp, 8",
    "mov eax, 1",
    "ret",
    ".cfi_endproc",
    ".size caravan_rt_stack_reserve, .-caravan_rt_stack_reserve",
    "",
    ".p2align 4",
    ".globl caravan_stack_return",
    ".hidden caravan_stack_return",
    ".type caravan_stack_return,@function",
    // Entered by the entry trampoline's `ret` on the grown stack: [rsp] is
    // the real return address, [rsp + 8] the slot's stack pointer after
    // that return. rax (the result) is kept.
    "caravan_stack_return:",
    ".cfi_startproc",
    ".cfi_undefined rip",
    "mov rcx, [rsp]",
    "mov rsp, [rsp + 8]",
    "jmp rcx",
    ".cfi_endproc",
    ".size caravan_stack_return, .-caravan_stack_return",
    grow = sym grow,
);

extern "C" {
    /// `caravan_rt_stack_overflow(proc, loc) -> unit` (System V): the
    /// runtime function generated code calls on a failed stack check
    /// (`docs/vm-abi.md`): grows the stack, or crashes the process.
    /// Declared without parameters: only its address is used.
    pub fn caravan_rt_stack_overflow();
    /// `caravan_rt_stack_reserve(proc, loc, bytes) -> unit` (System V):
    /// the runtime function the entry of a function with a large frame
    /// calls when `bytes` (its frame) do not fit between its stack pointer
    /// and `stack_limit` (`docs/vm-abi.md`, "Large frames"): grows the
    /// stack until they do, or crashes the process with `"stack
    /// overflow"`. Declared without parameters: only its address is used.
    pub fn caravan_rt_stack_reserve();
    fn caravan_stack_return();
}

/// Word at `addr`.
///
/// # Safety
/// `addr` is a readable, aligned stack word.
#[inline]
unsafe fn word(addr: usize) -> usize {
    // SAFETY: caller's guarantee.
    unsafe { *(addr as *const usize) }
}

/// Grows the running process's stack (see the module doc) and returns how
/// many bytes its frames moved (new − old address); never returns if it
/// cannot, crashing the process with `Crashed "stack overflow"` (`loc`:
/// the overflowing function's definition, or null). The new stack is
/// twice the old one (at least [`FIRST_GROWN`]), or larger until `need`
/// bytes fit between the caller's stack pointer and the new
/// `stack_limit` (a large frame about to be entered; 0 for a prologue's
/// overflow).
///
/// # Safety
/// Called only from the `caravan_rt_stack_overflow` and
/// `caravan_rt_stack_reserve` stubs, by generated code through its
/// collector trampoline: `proc` is the running process, `stub_fp` the
/// stub's frame pointer on the process's slot.
unsafe extern "C" fn grow(
    proc: *mut Process,
    loc: *const u8,
    stub_fp: usize,
    need: usize,
) -> isize {
    let overflow = move || -> ! {
        let fail = Fail {
            reason: ExitReason::crashed("stack overflow"),
            loc,
        };
        // SAFETY: `proc` is the running process, on its own stack.
        unsafe { crash(proc, fail) }
    };
    // SAFETY (whole block): `proc` is the running process; every address
    // read is a frame of its slot, found through the frame-pointer chain
    // that generated code keeps (the collector walks the same chain).
    unsafe {
        let p = &mut *proc;
        let limit = (*p.vm).max_stack;
        // Where the frames are now: the slot, or the last grown stack.
        let (cur_low, cur_top) = match &p.grown {
            None => (p.stack_low, (*p.vm).stacks.top(p.stack_low)),
            Some(g) => (g.low, g.low + g.len),
        };
        let cur_len = cur_top - cur_low;
        let torture = torture();
        let mut len = match &p.grown {
            None => FIRST_GROWN.max(2 * cur_len).min(limit),
            Some(_) => (2 * cur_len).min(limit),
        };
        let real_limit = cur_low + PAGE + RUNTIME_MARGIN;
        if torture
            && (p.gc_inhibit != 0 || len <= cur_len)
            && stub_fp.saturating_sub(need) > real_limit
        {
            // Torture's limit was above the real one, and the frames
            // cannot (or need not) move: go on with the real limit (room
            // for the `need` bytes of a large frame included).
            p.stack_limit = real_limit as u64;
            p.rebase(p.reds_left(), stub_fp);
            return 0;
        }
        if p.gc_inhibit != 0 || len <= cur_len {
            overflow();
        }
        let in_stack = |a: usize| a > cur_low && a < cur_top;
        // Called from anything but a generated trampoline (a Rust caller
        // of this symbol): nothing we may move.
        if !crate::gc::is_generated_pc(word(stub_fp + 8) as u64) {
            overflow();
        }
        // The outermost generated frame: the first whose return address is
        // not in generated code (the entry trampoline, called by
        // `process_start`; on a grown stack, returning to
        // `caravan_stack_return`).
        let mut fp = stub_fp;
        let boundary = loop {
            debug_assert!(in_stack(fp), "frame pointer {fp:#x} outside the stack");
            if !crate::gc::is_generated_pc(word(fp + 8) as u64) {
                break fp;
            }
            let next = word(fp);
            if !in_stack(next) || next <= fp {
                // Not a chain we understand: do not move it.
                overflow();
            }
            fp = next;
        };
        let back = caravan_stack_return as *const () as usize;
        // On a grown stack, the two words above the boundary frame (the
        // way back to the slot) move with the frames; they sit at its top.
        let old_end = if p.grown.is_some() {
            debug_assert_eq!(word(boundary + 8), back);
            debug_assert_eq!(boundary + 32, cur_top);
            boundary + 32
        } else {
            boundary + 16
        };
        let used = old_end - stub_fp;
        // Room for the frames, the way back to the slot, the guard page,
        // the runtime's margin and the frame about to be entered.
        let room = used
            .saturating_add(need)
            .saturating_add(32 + PAGE + RUNTIME_MARGIN);
        while len <= room && len < limit {
            len = len.saturating_mul(2).min(limit);
        }
        if torture {
            // Just room for the frames and a quarter more (at least
            // TORTURE_GAP): the process moves again soon.
            let gap = (used / 4).max(TORTURE_GAP);
            len = room
                .saturating_add(gap)
                .checked_next_multiple_of(PAGE)
                .map_or(limit, |l| l.min(limit));
        }
        if room >= len {
            overflow();
        }
        let Ok(low) = crate::stack::map_grown(len) else {
            overflow();
        };
        let top = low + len;
        // Both ends are 16-aligned (a frame pointer is, on x86-64 System V
        // and Cranelift's tail convention), so the delta keeps alignment.
        let new_end = if p.grown.is_some() { top } else { top - 16 };
        debug_assert_eq!(old_end % 16, 0);
        let delta = new_end.wrapping_sub(old_end);
        let moved = |a: usize| a.wrapping_add(delta);
        std::ptr::copy_nonoverlapping(stub_fp as *const u8, moved(stub_fp) as *mut u8, used);
        // The chain's saved frame pointers point into the copied range.
        let mut fp = stub_fp;
        while fp != boundary {
            let next = word(fp);
            *(moved(fp) as *mut usize) = moved(next);
            fp = next;
        }
        if p.grown.is_none() {
            // The way back to the slot when the outermost function returns.
            let ret = word(boundary + 8);
            *(moved(boundary + 8) as *mut usize) = back;
            *(new_end as *mut usize) = ret;
            *((new_end + 8) as *mut usize) = old_end;
        }
        if (p.exit_fp as usize) >= stub_fp && (p.exit_fp as usize) < old_end {
            p.exit_fp = moved(p.exit_fp as usize) as u64;
        }
        match &mut p.grown {
            None => {
                p.grown = Some(Box::new(Grown {
                    low,
                    len,
                    outgrown: vec![],
                }));
                // The whole slot was used: release all its pages when it
                // is freed.
                p.lowest_sp = p.stack_low + PAGE;
            }
            Some(g) => {
                // We still run on the old one (this frame): unmapped when
                // the process next switches out.
                g.outgrown.push((g.low, g.len));
                g.low = low;
                g.len = len;
            }
        }
        p.stack_limit = (low + PAGE + RUNTIME_MARGIN) as u64;
        // The trip point belongs to the old stack: measure the reductions
        // left from the stub's frame on the new one.
        p.rebase(p.reds_left(), moved(stub_fp));
        delta as isize
    }
}
