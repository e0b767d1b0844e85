//! OCaml's exceptions: values of the extensible type `exn`, raised by
//! `raise` and caught by `try … with` within the raising process.
//!
//! **Values.** An exception is a block with tag 0 whose field 0 is its
//! constructor's id (a tagged int) and whose next fields are the
//! constructor's arguments: `Not_found` is `[id]`, `Failure s` is
//! `[id; s]`. Ids below [`FIRST_USER`] are the predefined exceptions
//! (constants below); the compiler numbers each `exception` declaration
//! from there and registers its name ([`register_name`]) for printing.
//!
//! **Catching** costs nothing until something is raised, as OCaml's and
//! C++'s zero-cost exceptions: generated code calls inside a `try` body
//! with Cranelift's `try_call`, whose exception table names the handler
//! block, and registers each such call site ([`register_handlers`]:
//! return address → handler address and the frame's FP − SP). No trap
//! frame is pushed at `try`.
//!
//! **Raising** ([`raise`], `caravan_rt_raise`) walks the frame-pointer
//! chain of generated code from the trampoline frame that called the
//! runtime (`exit_fp`, as the collector does) to the innermost call site
//! with a handler, and resumes there: SP and FP of that frame, the
//! exception in the first payload register (`rax`) (the reduction count
//! stays in the process struct, `Process::trip`). Cranelift treats every register as
//! clobbered on a `try_call`'s exceptional edge (the `tail` convention,
//! which every callee at such a site uses), so nothing else needs
//! restoring — the scheme of wasmtime's unwinder. With no handler the
//! process crashes with the exception's text ([`crash_text`]) at the raise
//! site: an exception nobody catches is a crash, as before.
//!
//! Frames of Rust code (a builtin calling back into generated code) end
//! the walk: an exception never crosses them; it crashes the process.

use crate::heap::alloc::{alloc_block, alloc_string};
use crate::process::{ExitReason, Process};
use crate::safepoint::{crash, Fail};
use crate::value::{
    self, field, header, header_tag, header_wosize, int_of, is_block, of_int, Value, TAG_FLOAT,
    TAG_STRING,
};
use std::sync::{Arc, RwLock};

/// `Not_found`.
pub const NOT_FOUND: u32 = 0;
/// `Failure of string` (`failwith`).
pub const FAILURE: u32 = 1;
/// `Invalid_argument of string` (`invalid_arg`).
pub const INVALID_ARGUMENT: u32 = 2;
/// `Exit`.
pub const EXIT: u32 = 3;
/// `Division_by_zero` (`/` and `mod` by zero).
pub const DIVISION_BY_ZERO: u32 = 4;
/// `End_of_file` (`read_line` at the end of input).
pub const END_OF_FILE: u32 = 5;
/// `Sys_error of string`.
pub const SYS_ERROR: u32 = 6;
/// The first id of an exception a program declares.
pub const FIRST_USER: u32 = 16;

/// Names of the predefined exceptions, by id, as OCaml's
/// `Printexc.to_string` prints them.
const PREDEFINED: [&str; 7] = [
    "Not_found",
    "Failure",
    "Invalid_argument",
    "Stdlib.Exit",
    "Division_by_zero",
    "End_of_file",
    "Sys_error",
];

/// The id of a predefined exception, by the name the prelude declares it
/// with (`Exit`, not `Stdlib.Exit`).
pub fn predefined_id(name: &str) -> Option<u32> {
    let declared = [
        "Not_found",
        "Failure",
        "Invalid_argument",
        "Exit",
        "Division_by_zero",
        "End_of_file",
        "Sys_error",
    ];
    declared.iter().position(|n| *n == name).map(|i| i as u32)
}

static NAMES: RwLock<Vec<Option<Arc<str>>>> = RwLock::new(Vec::new());

/// Records the printed name of exception `id` (`"E"`, or `"M.E"` for one
/// declared in module `M`): the compiler calls this for every `exception`
/// declaration it compiles.
pub fn register_name(id: u32, name: &str) {
    let mut n = NAMES.write().unwrap_or_else(|e| e.into_inner());
    let i = id as usize;
    if n.len() <= i {
        n.resize(i + 1, None);
    }
    n[i] = Some(name.into());
}

/// The printed name of exception `id` (`"_"` if unknown).
pub fn name_of(id: u32) -> Arc<str> {
    if let Some(p) = PREDEFINED.get(id as usize) {
        return (*p).into();
    }
    NAMES
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(id as usize)
        .cloned()
        .flatten()
        .unwrap_or_else(|| "_".into())
}

/// One call site of generated code inside a `try` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handler {
    /// Absolute return address of the call.
    pub pc: u64,
    /// Absolute address of the handler block.
    pub handler: u64,
    /// FP − SP of the calling frame at the call, bytes.
    pub frame_size: u32,
}

static HANDLERS: RwLock<Vec<Handler>> = RwLock::new(Vec::new());

/// Registers the handler call sites of newly finalised code (the compiler
/// calls this with [`crate::gc::register_code`]).
pub fn register_handlers(hs: Vec<Handler>) {
    if hs.is_empty() {
        return;
    }
    let mut all = HANDLERS.write().unwrap_or_else(|e| e.into_inner());
    all.extend(hs);
    all.sort_unstable_by_key(|h| h.pc);
}

fn handler_at(all: &[Handler], pc: u64) -> Option<Handler> {
    all.binary_search_by_key(&pc, |h| h.pc).ok().map(|i| all[i])
}

/// The innermost handler above the trampoline frame `exit_fp`: `(handler
/// address, SP, FP)` to resume at.
///
/// # Safety
/// `exit_fp` is 0 or the frame of the trampoline through which the running
/// process called into the runtime, whose frame-pointer chain leads
/// through generated code.
unsafe fn find_handler(exit_fp: u64) -> Option<(u64, u64, u64)> {
    if exit_fp == 0 {
        return None;
    }
    let all = HANDLERS.read().unwrap_or_else(|e| e.into_inner());
    if all.is_empty() {
        return None;
    }
    // SAFETY: caller's guarantee; the walk stops at the first return
    // address outside generated code.
    unsafe {
        let mut pc = *((exit_fp + 8) as *const u64);
        let mut fp = *(exit_fp as *const u64);
        while fp != 0 && crate::gc::is_generated_code(pc) {
            if let Some(h) = handler_at(&all, pc) {
                return Some((h.handler, fp - h.frame_size as u64, fp));
            }
            pc = *((fp + 8) as *const u64);
            fp = *(fp as *const u64);
        }
    }
    None
}

std::arch::global_asm!(
    // caravan_exn_resume(pc: rdi, sp: rsi, fp: rdx, exn: rcx) -> !
    // Resumes generated code at a `try_call` handler: the tail
    // convention's exception ABI restores only SP and FP; the payload goes
    // in rax (rdx, the second payload register, is zeroed).
    ".text",
    ".p2align 4",
    ".globl caravan_exn_resume",
    ".type caravan_exn_resume,@function",
    "caravan_exn_resume:",
    "mov rax, rcx",
    "mov rsp, rsi",
    "mov rbp, rdx",
    "xor edx, edx",
    "jmp rdi",
    ".size caravan_exn_resume, .-caravan_exn_resume",
);

extern "C" {
    fn caravan_exn_resume(pc: u64, sp: u64, fp: u64, exn: Value) -> !;
}

/// Raises `exn` in the running process: resumes at the innermost handler
/// of generated code, or crashes the process with the exception's text
/// at `loc` (a NUL-terminated `file:line:col`, or null) when there is none.
///
/// # Safety
/// `proc` is the running process and this runs on its stack, called
/// (directly or through a builtin) from a trampoline of generated code
/// that set `exit_fp`; no lock is held and
/// no Rust value with a destructor is live in the frames being abandoned.
pub unsafe fn raise(proc: *mut Process, exn: Value, loc: *const u8) -> ! {
    // SAFETY: caller's guarantee.
    unsafe {
        let p = &mut *proc;
        if let Some((pc, sp, fp)) = find_handler(p.exit_fp) {
            p.exit_fp = 0;
            caravan_exn_resume(pc, sp, fp, exn);
        }
        let text = crash_text(exn);
        crash(
            proc,
            Fail {
                reason: ExitReason::crashed(text),
                loc,
            },
        )
    }
}

/// An exception value `[id; args…]` in `proc`'s heap.
pub fn make(proc: &mut Process, id: u32, args: &[Value]) -> Value {
    let b = alloc_block(proc, 0, 1 + args.len());
    // SAFETY: a fresh block of `1 + args.len()` fields.
    unsafe {
        *b = of_int(id as i64);
        for (i, a) in args.iter().enumerate() {
            *b.add(1 + i) = *a;
        }
    }
    b as Value
}

/// Raises `Failure msg` (what OCaml's `failwith` raises).
///
/// # Safety
/// As [`raise`].
pub unsafe fn raise_failure(proc: *mut Process, msg: &str) -> ! {
    // SAFETY: caller's guarantee.
    unsafe { raise_with_string(proc, FAILURE, msg) }
}

/// Raises `Invalid_argument msg` (what OCaml's `invalid_arg` raises).
///
/// # Safety
/// As [`raise`].
pub unsafe fn raise_invalid_argument(proc: *mut Process, msg: &str) -> ! {
    // SAFETY: caller's guarantee.
    unsafe { raise_with_string(proc, INVALID_ARGUMENT, msg) }
}

/// Raises a constant predefined exception (`Not_found`, `Exit`, …).
///
/// # Safety
/// As [`raise`].
pub unsafe fn raise_constant(proc: *mut Process, id: u32) -> ! {
    // SAFETY: caller's guarantee.
    unsafe {
        let e = make(&mut *proc, id, &[]);
        raise(proc, e, std::ptr::null())
    }
}

unsafe fn raise_with_string(proc: *mut Process, id: u32, msg: &str) -> ! {
    // SAFETY: caller's guarantee; the string is reachable from nothing
    // until the block holds it, and no collection happens in between
    // (`alloc_block` never collects).
    unsafe {
        let s = alloc_string(&mut *proc, msg.as_bytes());
        let e = make(&mut *proc, id, &[s]);
        raise(proc, e, std::ptr::null())
    }
}

/// The constructor id of an exception value.
///
/// # Safety
/// `v` is an exception value.
pub unsafe fn id_of(v: Value) -> u32 {
    // SAFETY: caller's guarantee.
    unsafe { int_of(field(v, 0)) as u32 }
}

/// OCaml's `Printexc.to_string`: the constructor's name, then its
/// arguments in parentheses — ints as `%d` (constant constructors of
/// other types too: they are ints underneath), strings as `%S`, floats as
/// `string_of_float`, anything else as `_`.
///
/// # Safety
/// `v` is a live exception value.
pub unsafe fn to_string(v: Value) -> Vec<u8> {
    // SAFETY: caller's guarantee.
    unsafe {
        let id = id_of(v);
        let mut out = name_of(id).as_bytes().to_vec();
        let n = header_wosize(header(v)) as usize;
        if n > 1 {
            out.push(b'(');
            for i in 1..n {
                if i > 1 {
                    out.extend_from_slice(b", ");
                }
                out.extend(field_text(field(v, i)));
            }
            out.push(b')');
        }
        out
    }
}

unsafe fn field_text(f: Value) -> Vec<u8> {
    use crate::term::text::{escape_bytes, format_float};
    if !is_block(f) {
        return int_of(f).to_string().into_bytes();
    }
    // SAFETY: a live block (caller's guarantee).
    unsafe {
        match header_tag(header(f)) {
            TAG_STRING => {
                let mut s = vec![b'"'];
                s.extend(escape_bytes(value::string_bytes(f)));
                s.push(b'"');
                s
            }
            TAG_FLOAT => format_float(value::float_of(f)).into_bytes(),
            _ => b"_".to_vec(),
        }
    }
}

/// The text a process crashes with when nobody catches `v`: `Failure s`,
/// `Invalid_argument s` and `Sys_error s` give `s` (what `failwith s` and
/// the builtins always crashed with),
/// `Division_by_zero` gives `division by zero`, any other exception its
/// [`to_string`].
///
/// # Safety
/// `v` is a live exception value.
pub unsafe fn crash_text(v: Value) -> Vec<u8> {
    // SAFETY: caller's guarantee.
    unsafe {
        if !is_block(v) || header_wosize(header(v)) == 0 {
            return b"exception".to_vec();
        }
        match id_of(v) {
            FAILURE | INVALID_ARGUMENT | SYS_ERROR
                if header_wosize(header(v)) == 2
                    && is_block(field(v, 1))
                    && header_tag(header(field(v, 1))) == TAG_STRING =>
            {
                value::string_bytes(field(v, 1)).to_vec()
            }
            DIVISION_BY_ZERO => b"division by zero".to_vec(),
            _ => to_string(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::make_header;

    fn block(words: &mut Vec<Vec<u64>>, tag: u8, fields: &[u64]) -> Value {
        let mut b = vec![make_header(fields.len() as u64, tag)];
        b.extend_from_slice(fields);
        words.push(b);
        words.last().unwrap().as_ptr() as u64 + 8
    }

    fn string(words: &mut Vec<Vec<u64>>, s: &str) -> Value {
        let mut f = vec![s.len() as u64];
        let mut bytes = s.as_bytes().to_vec();
        bytes.resize(s.len().div_ceil(8) * 8 + 8, 0);
        for c in bytes.chunks(8).take(s.len().div_ceil(8).max(1)) {
            f.push(u64::from_le_bytes(c.try_into().unwrap()));
        }
        block(words, TAG_STRING, &f)
    }

    #[test]
    fn printed_as_printexc_prints() {
        let mut w = vec![];
        let nf = block(&mut w, 0, &[of_int(NOT_FOUND as i64)]);
        let s = string(&mut w, "a\"b\n");
        let fail = block(&mut w, 0, &[of_int(FAILURE as i64), s]);
        register_name(FIRST_USER + 7, "Pair");
        let pair = block(
            &mut w,
            0,
            &[of_int((FIRST_USER + 7) as i64), of_int(-3), fail],
        );
        let exit = block(&mut w, 0, &[of_int(EXIT as i64)]);
        // SAFETY: the blocks above live in `w`.
        unsafe {
            assert_eq!(to_string(nf), b"Not_found");
            assert_eq!(to_string(fail), b"Failure(\"a\\\"b\\n\")");
            assert_eq!(to_string(pair), b"Pair(-3, _)");
            assert_eq!(to_string(exit), b"Stdlib.Exit");
            assert_eq!(crash_text(fail), b"a\"b\n");
            assert_eq!(crash_text(pair), b"Pair(-3, _)");
        }
    }

    #[test]
    fn handlers_are_found_by_return_address() {
        let hs = vec![
            Handler {
                pc: 300,
                handler: 3,
                frame_size: 16,
            },
            Handler {
                pc: 100,
                handler: 1,
                frame_size: 32,
            },
        ];
        let mut all = hs.clone();
        all.sort_unstable_by_key(|h| h.pc);
        assert_eq!(handler_at(&all, 100).map(|h| h.handler), Some(1));
        assert_eq!(handler_at(&all, 300).map(|h| h.frame_size), Some(16));
        assert_eq!(handler_at(&all, 200), None);
    }
}
