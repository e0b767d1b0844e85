//! The x86_64 System V context switch (architecture decision 3: stackful
//! processes on native stacks, switched only inside runtime calls, so only
//! the callee-saved registers move).
//!
//! [`switch`] saves `rbp, rbx, r12–r15` on the current stack, stores the
//! stack pointer through `save`, loads the other context's stack pointer
//! and restores the same registers from it. Everything else is
//! caller-saved, so the Rust compiler already assumes a call clobbers it.
//! The MXCSR and x87 control words are callee-saved too, but every context
//! runs with the defaults (nothing in the VM, the runtime or generated
//! code changes rounding or exception masks), so the switch leaves them
//! alone, as Go's `gogo` does: `ldmxcsr` and `fldcw` are serialising and
//! cost more than the rest of the switch (a word is still reserved for
//! them, so frames keep their layout).
//!
//! A new context starts from [`init_stack`]'s frame: the first switch into
//! it "returns" into `caravan_vm_start`, which calls the start function it
//! was handed (kept in `r13`) with its argument (kept in `r12`), aligning
//! the stack first. This module knows nothing of processes.

use core::arch::global_asm;

/// Offset (bytes) of the saved `rbp` in the frame [`switch`] leaves at a
/// switched-out context's stack pointer: a reserved word, `r15`, `r14`,
/// `r13`, `r12`, `rbx`, then `rbp` and the return address (`init_stack`
/// builds the same frame).
pub const SAVED_RBP: usize = 48;

/// MXCSR default (all exceptions masked, round to nearest).
const MXCSR_DEFAULT: u64 = 0x1F80;
/// x87 control word default (extended precision, exceptions masked).
const FPUCW_DEFAULT: u64 = 0x037F;

global_asm!(
    ".text",
    ".p2align 4",
    ".globl caravan_vm_switch",
    ".hidden caravan_vm_switch",
    ".type caravan_vm_switch,@function",
    "caravan_vm_switch:",
    ".cfi_startproc",
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "sub rsp, 8",
    "mov [rdi], rsp",
    "mov rsp, rsi",
    "add rsp, 8",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
    ".cfi_endproc",
    ".size caravan_vm_switch, . - caravan_vm_switch",
    "",
    ".p2align 4",
    ".globl caravan_vm_start",
    ".hidden caravan_vm_start",
    ".type caravan_vm_start,@function",
    "caravan_vm_start:",
    ".cfi_startproc",
    ".cfi_undefined rip",
    "xor ebp, ebp",
    "mov rdi, r12",
    "and rsp, -16",
    "call r13",
    "ud2",
    ".cfi_endproc",
    ".size caravan_vm_start, . - caravan_vm_start",
);

extern "C" {
    fn caravan_vm_switch(save: *mut usize, to: usize);
    fn caravan_vm_start();
}

/// Saves the current context's stack pointer into `*save` and resumes the
/// context whose saved stack pointer is `to`. Returns when something
/// switches back to the saved context.
///
/// # Safety
/// `to` must be a stack pointer saved by `switch` (or made by
/// [`init_stack`]) whose stack is still mapped and not running anywhere;
/// `save` must be valid for a write. No owned Rust state of the caller may
/// be relied on to be dropped if the context is never resumed.
#[inline(always)]
pub unsafe fn switch(save: *mut usize, to: usize) {
    // SAFETY: forwarded to the caller: `to` is a valid suspended context.
    unsafe { caravan_vm_switch(save, to) }
}

/// The start of a context: called with the argument given to
/// [`init_stack`], on the new stack; it must never return.
pub type StartFn = unsafe extern "C" fn(usize) -> !;

/// Writes the initial frame of a new context at the top of its stack and
/// returns the stack pointer to pass to [`switch`]. When first resumed, it
/// calls `start(arg)` on this stack.
///
/// # Safety
/// `[top - 80, top)` must be writable memory of an unused stack; `top` must
/// be 16-byte aligned.
pub unsafe fn init_stack(top: usize, start: StartFn, arg: usize) -> usize {
    debug_assert_eq!(top % 16, 0);
    let frame: [u64; 9] = [
        MXCSR_DEFAULT | (FPUCW_DEFAULT << 32),
        0,                                    // r15
        0,                                    // r14
        start as usize as u64,                // r13: the start function
        arg as u64,                           // r12: the Process pointer
        0,                                    // rbx
        0,                                    // rbp
        caravan_vm_start as *const () as u64, // return address
        0,                                    // never used: keeps `top` 16-aligned
    ];
    let sp = top - frame.len() * 8;
    // SAFETY: the caller guarantees these words are writable.
    unsafe { core::ptr::copy_nonoverlapping(frame.as_ptr(), sp as *mut u64, frame.len()) };
    sp
}
