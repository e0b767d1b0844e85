//! The Rust builtins named by the stdlib's `external` declarations.
//!
//! Each is `extern "C"` (System V), takes the calling process first and
//! returns a value. None of them unwinds Rust frames: where OCaml's
//! function raises (`int_of_string "x"` raises `Failure "int_of_string"`,
//! `String.get` out of bounds `Invalid_argument "index out of bounds"`)
//! ours raises the same exception ([`caravan_vm::exn`]) after every owned
//! Rust value has been dropped — uncaught, the process crashes with that
//! message; anything else is reported as data (`File.read` returns
//! `Error msg`).

use crate::inspect::{caravan_inspect, caravan_inspect_top};
use crate::int64::*;
use crate::printf::{
    caravan_printf_char, caravan_printf_float, caravan_printf_int, caravan_printf_int64,
    caravan_printf_string,
};
use crate::registry::{
    caravan_registry_new_name, caravan_registry_register, caravan_registry_unregister,
    caravan_registry_whereis,
};
use crate::store::{
    caravan_store_create, caravan_store_delete, caravan_store_fetch, caravan_store_get,
    caravan_store_mem, caravan_store_put, caravan_store_size, caravan_store_swap,
    caravan_store_to_list,
};
pub use caravan_vm::term::text::{escape_bytes, format_float, format_g};
use caravan_vm::value::{self as v, float_of, int_of, of_bool, of_int, string_bytes, UNIT};
use caravan_vm::{alloc_block, alloc_float, alloc_string, Process, Value};
use std::sync::OnceLock;

static ARGS: OnceLock<Vec<String>> = OnceLock::new();

/// Sets the program's arguments (`Sys.args ()`); call once before running.
pub fn set_args(args: Vec<String>) {
    let _ = ARGS.set(args);
}

/// The bytes of a string value, copied out (safe to hold across allocation).
///
/// # Safety
/// `s` must be a live string value.
unsafe fn bytes_of(s: Value) -> Vec<u8> {
    // SAFETY: caller's guarantee.
    unsafe { string_bytes(s) }.to_vec()
}

pub(crate) fn p(proc: *mut Process) -> &'static mut Process {
    // SAFETY: generated code passes its own live process.
    unsafe { &mut *proc }
}

/// Raises `Failure msg`, as OCaml's function does (drops nothing: call
/// with no owned values alive).
fn failure(proc: *mut Process, msg: &'static str) -> ! {
    // SAFETY: called from a builtin, through its trampoline, on the
    // process's own stack.
    unsafe { caravan_vm::exn::raise_failure(proc, msg) }
}

/// Raises `Invalid_argument msg`, as OCaml's function does (drops
/// nothing: call with no owned values alive).
fn invalid_argument(proc: *mut Process, msg: &'static str) -> ! {
    // SAFETY: as [`failure`].
    unsafe { caravan_vm::exn::raise_invalid_argument(proc, msg) }
}

fn cons(proc: *mut Process, head: Value, tail: Value) -> Value {
    let b = alloc_block(p(proc), 0, 2);
    // SAFETY: a fresh block of two fields.
    unsafe {
        *b = head;
        *b.add(1) = tail;
    }
    b as Value
}

fn some(proc: *mut Process, x: Value) -> Value {
    block1(proc, 0, x)
}

fn block1(proc: *mut Process, tag: u8, x: Value) -> Value {
    let b = alloc_block(p(proc), tag, 1);
    // SAFETY: a fresh block of one field.
    unsafe { *b = x };
    b as Value
}

const NONE: Value = UNIT;

fn string_list(proc: *mut Process, items: &[Vec<u8>]) -> Value {
    let mut l = UNIT;
    for it in items.iter().rev() {
        let s = alloc_string(p(proc), it);
        l = cons(proc, s, l);
    }
    l
}

/// `print_string`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_print_string(_proc: *mut Process, s: Value) -> Value {
    // SAFETY: generated code passes a string.
    caravan_vm::stdout_write(unsafe { string_bytes(s) });
    UNIT
}

/// `print_endline`: the string and a newline, flushed (as OCaml's, also
/// into a pipe or a file).
///
/// # Safety
/// Called by generated code only: `s` is a string.
#[no_mangle]
pub unsafe extern "C" fn caravan_print_endline(_proc: *mut Process, s: Value) -> Value {
    // SAFETY: generated code passes a string.
    caravan_vm::stdout_write(unsafe { string_bytes(s) });
    caravan_vm::stdout_write(b"\n");
    caravan_vm::stdout_flush();
    UNIT
}

/// `print_newline ()`: a newline, flushed.
#[no_mangle]
pub extern "C" fn caravan_print_newline(_proc: *mut Process, _unit: Value) -> Value {
    caravan_vm::stdout_write(b"\n");
    caravan_vm::stdout_flush();
    UNIT
}

/// `prerr_string` (stderr is unbuffered).
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_prerr_string(_proc: *mut Process, s: Value) -> Value {
    // SAFETY: generated code passes a string.
    caravan_vm::stderr_write(unsafe { string_bytes(s) });
    UNIT
}

/// `a ^ b`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_string_concat(proc: *mut Process, a: Value, b: Value) -> Value {
    // SAFETY: strings; nothing moves while this builtin runs (builtins
    // never collect), so both stay valid across the allocation.
    unsafe {
        let (la, lb) = (string_bytes(a).len(), string_bytes(b).len());
        let (s, out) = caravan_vm::alloc_string_uninit(p(proc), la + lb);
        out[..la].copy_from_slice(string_bytes(a));
        out[la..].copy_from_slice(string_bytes(b));
        s
    }
}

/// `string_of_int`.
#[no_mangle]
pub extern "C" fn caravan_string_of_int(proc: *mut Process, n: Value) -> Value {
    let s = int_of(n).to_string();
    alloc_string(p(proc), s.as_bytes())
}

fn parse_int(b: &[u8]) -> Option<i64> {
    parse_int_bits(b, 63)
}

/// OCaml's `int_of_string` for an integer of `bits` bits (63: `int`, 64:
/// `Int64`): an optional sign, then decimal digits or a `0x`/`0o`/`0b`/`0u`
/// prefix; `_` may separate digits but not start them. Decimal must fit in
/// `bits` bits signed; the prefixed forms may use all `bits` bits unsigned
/// and wrap (`0x7fffffffffffffff` is -1 in 63 bits).
pub(crate) fn parse_int_bits(b: &[u8], bits: u32) -> Option<i64> {
    debug_assert!(bits == 63 || bits == 64);
    let s = std::str::from_utf8(b).ok()?;
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (digits, radix, unsigned) = match body.get(..2) {
        Some("0x") | Some("0X") => (&body[2..], 16, true),
        Some("0b") | Some("0B") => (&body[2..], 2, true),
        Some("0o") | Some("0O") => (&body[2..], 8, true),
        Some("0u") | Some("0U") => (&body[2..], 10, true),
        _ => (body, 10, false),
    };
    if !digits.chars().next()?.is_digit(radix) {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if !clean.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = u128::from_str_radix(&clean, radix).ok()?;
    let n: i64 = if unsigned {
        if v >= 1u128 << bits {
            return None;
        }
        // Wrap into `bits` bits.
        let shift = 64 - bits;
        ((v as u64) << shift) as i64 >> shift
    } else {
        let lim = if neg {
            1u128 << (bits - 1)
        } else {
            (1u128 << (bits - 1)) - 1
        };
        if v > lim {
            return None;
        }
        v as u64 as i64
    };
    Some(if neg { n.wrapping_neg() } else { n })
}

/// `int_of_string` (raises `Failure "int_of_string"` on bad input, as
/// OCaml's).
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_int_of_string(proc: *mut Process, s: Value) -> Value {
    // SAFETY: a string.
    match parse_int(unsafe { string_bytes(s) }) {
        Some(n) => of_int(n),
        None => failure(proc, "int_of_string"),
    }
}

/// Whether `int_of_string` would succeed (for `int_of_string_opt`).
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_int_of_string_check(_proc: *mut Process, s: Value) -> Value {
    // SAFETY: a string.
    of_bool(parse_int(unsafe { string_bytes(s) }).is_some())
}

/// A float as the REPL and `inspect` print it: OCaml's toplevel
/// (`Oprint.float_repres`) tries `%.12g`, `%.15g`, then `%.18g`; this
/// takes the shortest `%.{p}g`, `p` from 12 to 17, that reads back as the
/// same float, as utop and OCaml 5 show it (`0.1 +. 0.2` is
/// `0.30000000000000004`, `0.1` is `0.1`), with a `.` when it would read
/// as an int; `nan`, `infinity`, `neg_infinity` (the prelude's names).
pub fn repr_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "infinity" } else { "neg_infinity" }.into();
    }
    let s = (12..17)
        .map(|p| format_g(f, p))
        .find(|s| s.parse::<f64>() == Ok(f))
        .unwrap_or_else(|| format_g(f, 17));
    if s.contains(['.', 'e']) {
        s
    } else {
        format!("{s}.")
    }
}

/// `string_of_float`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_string_of_float(proc: *mut Process, f: Value) -> Value {
    // SAFETY: a float.
    let s = format_float(unsafe { float_of(f) });
    alloc_string(p(proc), s.as_bytes())
}

/// OCaml's `float_of_string`: C's `strtod` on the text without its `_`
/// separators, which must be read whole — leading white space is skipped,
/// trailing is not (`"1.5 "` is no float); hexadecimal floats (`0x1p3`),
/// `inf`, `nan`.
fn parse_float(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    let s: String = s.chars().filter(|&c| c != '_').collect();
    let s = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    parse_hex_float(s).or_else(|| s.parse::<f64>().ok())
}

/// `[+-]0x<hex>[.<hex>][p[+-]<dec>]`, as C99's `strtod` reads it.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (neg, s) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let s = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    let (mant, exp) = match s.find(['p', 'P']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut m = 0f64;
    for c in int.chars() {
        m = m * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1f64;
    for c in frac.chars() {
        scale /= 16.0;
        m += f64::from(c.to_digit(16)?) * scale;
    }
    let e: i32 = match exp {
        Some(e) => e.parse().ok()?,
        None => 0,
    };
    let r = m * 2f64.powi(e);
    Some(if neg { -r } else { r })
}

/// `float_of_string` (raises `Failure "float_of_string"` on bad input).
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_float_of_string(proc: *mut Process, s: Value) -> Value {
    // SAFETY: a string.
    match parse_float(unsafe { string_bytes(s) }) {
        Some(f) => alloc_float(p(proc), f),
        None => failure(proc, "float_of_string"),
    }
}

/// Whether `float_of_string` would succeed.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_float_of_string_check(_proc: *mut Process, s: Value) -> Value {
    // SAFETY: a string.
    of_bool(parse_float(unsafe { string_bytes(s) }).is_some())
}

/// `a ** b`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_float_pow(proc: *mut Process, a: Value, b: Value) -> Value {
    // SAFETY: floats.
    let r = unsafe { float_of(a).powf(float_of(b)) };
    alloc_float(p(proc), r)
}

/// `Float.sqrt`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_float_sqrt(proc: *mut Process, a: Value) -> Value {
    // SAFETY: a float.
    let r = unsafe { float_of(a).sqrt() };
    alloc_float(p(proc), r)
}

/// `String.length` (bytes).
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_string_length(_proc: *mut Process, s: Value) -> Value {
    // SAFETY: a string.
    of_int(unsafe { string_bytes(s) }.len() as i64)
}

/// `String.get` (raises `Invalid_argument "index out of bounds"`).
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_string_get(proc: *mut Process, s: Value, i: Value) -> Value {
    // SAFETY: a string.
    let b = unsafe { string_bytes(s) };
    let i = int_of(i);
    if i < 0 || i as usize >= b.len() {
        invalid_argument(proc, "index out of bounds");
    }
    of_int(b[i as usize] as i64)
}

/// `String.sub s start len` (raises `Invalid_argument "String.sub /
/// Bytes.sub"`).
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_string_sub(
    proc: *mut Process,
    s: Value,
    start: Value,
    len: Value,
) -> Value {
    // SAFETY: a string.
    let n = unsafe { string_bytes(s) }.len() as i64;
    let (st, ln) = (int_of(start), int_of(len));
    if st < 0 || ln < 0 || st + ln > n {
        invalid_argument(proc, "String.sub / Bytes.sub");
    }
    // SAFETY: as above; `s` does not move while this builtin runs.
    unsafe {
        let (r, out) = caravan_vm::alloc_string_uninit(p(proc), ln as usize);
        out.copy_from_slice(&string_bytes(s)[st as usize..(st + ln) as usize]);
        r
    }
}

/// `String.make n c`.
#[no_mangle]
pub extern "C" fn caravan_string_make(proc: *mut Process, n: Value, c: Value) -> Value {
    let n = int_of(n);
    if n < 0 {
        invalid_argument(proc, "String.make");
    }
    // Built in place: a length beyond memory or the heap limit crashes the
    // process, with no intermediate buffer to exhaust the VM's memory.
    // SAFETY: filled at once.
    unsafe {
        let (s, out) = caravan_vm::alloc_string_uninit(p(proc), n as usize);
        out.fill(int_of(c) as u8);
        s
    }
}

/// `String.concat sep l`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_string_concat_list(
    proc: *mut Process,
    sep: Value,
    l: Value,
) -> Value {
    // SAFETY: a string and a string list (cons cells: field 0 a string,
    // field 1 the rest); nothing moves while this builtin runs.
    unsafe {
        let sep_len = string_bytes(sep).len();
        let (mut total, mut n, mut cur) = (0usize, 0usize, l);
        while cur != UNIT {
            total = total.saturating_add(string_bytes(v::field(cur, 0)).len());
            n += 1;
            cur = v::field(cur, 1);
        }
        total = total.saturating_add(sep_len.saturating_mul(n.saturating_sub(1)));
        let (s, out) = caravan_vm::alloc_string_uninit(p(proc), total);
        let (mut at, mut cur) = (0, l);
        while cur != UNIT {
            if at > 0 || cur != l {
                out[at..at + sep_len].copy_from_slice(string_bytes(sep));
                at += sep_len;
            }
            let b = string_bytes(v::field(cur, 0));
            out[at..at + b.len()].copy_from_slice(b);
            at += b.len();
            cur = v::field(cur, 1);
        }
        s
    }
}

/// `String.split_on_char c s`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_string_split_on_char(
    proc: *mut Process,
    c: Value,
    s: Value,
) -> Value {
    let c = int_of(c) as u8;
    // SAFETY: a string, copied before allocating.
    let b = unsafe { bytes_of(s) };
    let parts: Vec<Vec<u8>> = b.split(|&x| x == c).map(|x| x.to_vec()).collect();
    string_list(proc, &parts)
}

/// `String.uppercase_ascii`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_string_uppercase_ascii(proc: *mut Process, s: Value) -> Value {
    // SAFETY: a string.
    let b = unsafe { bytes_of(s) }.to_ascii_uppercase();
    alloc_string(p(proc), &b)
}

/// `String.lowercase_ascii`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_string_lowercase_ascii(proc: *mut Process, s: Value) -> Value {
    // SAFETY: a string.
    let b = unsafe { bytes_of(s) }.to_ascii_lowercase();
    alloc_string(p(proc), &b)
}

/// `String.trim` (spaces, tabs, newlines, form feeds, carriage returns).
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_string_trim(proc: *mut Process, s: Value) -> Value {
    // SAFETY: a string.
    let b = unsafe { bytes_of(s) };
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 12);
    let start = b.iter().position(|c| !ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !ws(c)).map_or(start, |e| e + 1);
    alloc_string(p(proc), &b[start..end.max(start)])
}

/// `String.index_from_opt s i c`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_string_index_from_opt(
    proc: *mut Process,
    s: Value,
    i: Value,
    c: Value,
) -> Value {
    // SAFETY: a string.
    let b = unsafe { string_bytes(s) };
    let i = int_of(i);
    if i < 0 || i as usize > b.len() {
        invalid_argument(proc, "String.index_from_opt / Bytes.index_from_opt");
    }
    let c = int_of(c) as u8;
    match b[i as usize..].iter().position(|&x| x == c) {
        Some(k) => some(proc, of_int(i + k as i64)),
        None => NONE,
    }
}

/// `Sys.args ()`: the arguments after the script's name.
#[no_mangle]
pub extern "C" fn caravan_sys_args(proc: *mut Process, _unit: Value) -> Value {
    let args: Vec<Vec<u8>> = ARGS
        .get()
        .map(|a| a.iter().map(|s| s.as_bytes().to_vec()).collect())
        .unwrap_or_default();
    string_list(proc, &args)
}

/// `Sys.getenv_opt`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_sys_getenv(proc: *mut Process, name: Value) -> Value {
    // SAFETY: a string.
    let name = unsafe { bytes_of(name) };
    let val = std::str::from_utf8(&name).ok().and_then(std::env::var_os);
    match val {
        Some(v) => {
            use std::os::unix::ffi::OsStrExt;
            let s = alloc_string(p(proc), v.as_bytes());
            some(proc, s)
        }
        None => NONE,
    }
}

fn result(proc: *mut Process, r: Result<Value, String>) -> Value {
    match r {
        Ok(x) => block1(proc, 0, x),
        Err(e) => {
            let s = alloc_string(p(proc), e.as_bytes());
            block1(proc, 1, s)
        }
    }
}

/// `File.read path`: `Ok contents` or `Error "path: reason"`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_file_read(proc: *mut Process, path: Value) -> Value {
    // SAFETY: a string.
    let path = String::from_utf8_lossy(unsafe { string_bytes(path) }).into_owned();
    let r = read_file(&path).map_err(|e| format!("{path}: {e}"));
    let r = r.map(|b| alloc_string(p(proc), &b));
    result(proc, r)
}

/// The contents of a file; memory that cannot be had is an error like
/// any other (`Error "path: out of memory"`), never an abort of the VM.
fn read_file(path: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let size = f.metadata().map(|m| m.len() as usize).unwrap_or(0);
    let mut buf = Vec::new();
    let oom = || std::io::Error::new(std::io::ErrorKind::OutOfMemory, "out of memory");
    buf.try_reserve_exact(size).map_err(|_| oom())?;
    let mut chunk = [0u8; 64 << 10];
    loop {
        let n = match f.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        buf.try_reserve(n).map_err(|_| oom())?;
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `File.write path contents`: `Ok ()` or `Error "path: reason"`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_file_write(proc: *mut Process, path: Value, data: Value) -> Value {
    // SAFETY: strings.
    let path = String::from_utf8_lossy(unsafe { string_bytes(path) }).into_owned();
    // SAFETY: a string.
    let r = std::fs::write(&path, unsafe { string_bytes(data) })
        .map(|_| UNIT)
        .map_err(|e| format!("{path}: {e}"));
    result(proc, r)
}

/// `IO.read_line ()`: a line of standard input without its newline, or
/// `None` at end of input (standard output is flushed first, as OCaml's
/// `read_line` does). Blocks the scheduler thread while it waits.
///
/// # Safety
/// Called by generated code only: `proc` is the running process.
#[no_mangle]
pub unsafe extern "C" fn caravan_io_read_line(proc: *mut Process, _unit: Value) -> Value {
    // As OCaml's read_line: a prompt printed before it shows.
    caravan_vm::stdout_flush();
    // SAFETY: the running process, on its own stack.
    let line = unsafe { caravan_vm::blocking_section(proc, read_stdin_line) };
    match line {
        Ok(None) | Err(_) => NONE,
        Ok(Some(mut line)) => {
            if line.last() == Some(&b'\n') {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
            }
            let s = alloc_string(p(proc), &line);
            some(proc, s)
        }
    }
}

/// One line of standard input with its newline (`None` at end of input),
/// as bytes (text need not be UTF-8). A line longer than memory allows is
/// an error (`IO.read_line` then answers `None`), never an abort.
fn read_stdin_line() -> std::io::Result<Option<Vec<u8>>> {
    use std::io::BufRead;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut line = Vec::new();
    loop {
        let buf = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok((!line.is_empty()).then_some(line));
        }
        let (n, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        line.try_reserve(n)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::OutOfMemory, "out of memory"))?;
        line.extend_from_slice(&buf[..n]);
        input.consume(n);
        if done {
            return Ok(Some(line));
        }
    }
}

/// `Time.now_ms ()`: monotonic milliseconds.
#[no_mangle]
pub extern "C" fn caravan_time_now_ms(_proc: *mut Process, _unit: Value) -> Value {
    of_int(caravan_vm::now_ms())
}

/// The first state of a scheduler thread's generator: from the clock, or
/// on a deterministic schedule (`caravan test --schedules`) from the
/// schedule's seed, so a replay draws the same numbers.
fn random_start() -> u64 {
    if let Some(s) = caravan_vm::scheduler::schedule_seed() {
        return (s.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03) | 1;
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64);
    t | 1
}

thread_local! {
    static RNG: std::cell::Cell<u64> = std::cell::Cell::new(random_start());
}

/// Whether `Random.init` chose the generator: then every scheduler thread
/// draws from [`SEEDED_RNG`], one sequence for the whole program, so a
/// program that seeds it draws the same numbers on every run whichever
/// thread runs it (processes move between scheduler threads). Until then,
/// and again after `Random.self_init`, each thread draws from its own
/// [`RNG`], without contention.
static SEEDED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The state of the generator `Random.init` seeds (never 0).
static SEEDED_RNG: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// One xorshift64 step (the state stays non-zero).
fn xorshift(mut x: u64) -> u64 {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    x
}

/// xorshift64* (Vigna 2014).
fn next_random() -> u64 {
    use std::sync::atomic::Ordering;
    let x = if SEEDED.load(Ordering::Acquire) {
        let mut x = SEEDED_RNG.load(Ordering::Relaxed);
        loop {
            let next = xorshift(x);
            match SEEDED_RNG.compare_exchange_weak(x, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break next,
                Err(now) => x = now,
            }
        }
    } else {
        RNG.with(|r| {
            let x = xorshift(r.get());
            r.set(x);
            x
        })
    };
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// `Random.init seed`: from now on every process draws from one generator
/// started from `seed` (SplitMix64's finaliser spreads nearby seeds apart),
/// so the numbers drawn after it are the same on every run.
#[no_mangle]
pub extern "C" fn caravan_random_init(_proc: *mut Process, seed: Value) -> Value {
    use std::sync::atomic::Ordering;
    let mut z = (int_of(seed) as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    SEEDED_RNG.store(z | 1, Ordering::Relaxed);
    SEEDED.store(true, Ordering::Release);
    UNIT
}

/// `Random.self_init ()`: back to a generator per scheduler thread, the
/// calling thread's restarted from the clock (or, on a deterministic
/// schedule, left as the schedule's seed made it, so a replay draws the
/// same numbers).
#[no_mangle]
pub extern "C" fn caravan_random_self_init(_proc: *mut Process, _unit: Value) -> Value {
    use std::sync::atomic::Ordering;
    SEEDED.store(false, Ordering::Release);
    if caravan_vm::scheduler::schedule_seed().is_none() {
        RNG.with(|r| r.set((random_start() ^ r.get()) | 1));
    }
    UNIT
}

/// `Random.int bound` (raises `Invalid_argument "Random.int"` when
/// `bound <= 0`, as OCaml's).
#[no_mangle]
pub extern "C" fn caravan_random_int(proc: *mut Process, bound: Value) -> Value {
    let b = int_of(bound);
    if b <= 0 {
        invalid_argument(proc, "Random.int");
    }
    of_int((next_random() % b as u64) as i64)
}

/// `Random.float bound`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments have the types of the `external` declaration.
#[no_mangle]
pub unsafe extern "C" fn caravan_random_float(proc: *mut Process, bound: Value) -> Value {
    // SAFETY: a float.
    let b = unsafe { float_of(bound) };
    let u = (next_random() >> 11) as f64 / (1u64 << 53) as f64;
    alloc_float(p(proc), u * b)
}

macro_rules! float_fns {
    ($($name:ident => $f:expr),* $(,)?) => {
        $(
            /// A float function of the prelude / `Float` (`sqrt`, `floor`, …).
            ///
            /// # Safety
            /// Called by generated code only: `proc` is the running process
            /// and `a` a float.
            #[no_mangle]
            pub unsafe extern "C" fn $name(proc: *mut Process, a: Value) -> Value {
                let f: fn(f64) -> f64 = $f;
                // SAFETY: a float.
                let r = f(unsafe { float_of(a) });
                alloc_float(p(proc), r)
            }
        )*
    };
}

float_fns!(
    caravan_float_exp => f64::exp,
    caravan_float_log => f64::ln,
    caravan_float_log10 => f64::log10,
    caravan_float_sin => f64::sin,
    caravan_float_cos => f64::cos,
    caravan_float_tan => f64::tan,
    caravan_float_atan => f64::atan,
    caravan_float_floor => f64::floor,
    caravan_float_ceil => f64::ceil,
    caravan_float_round => f64::round,
    caravan_float_trunc => f64::trunc,
    caravan_float_asin => f64::asin,
    caravan_float_acos => f64::acos,
    caravan_float_sinh => f64::sinh,
    caravan_float_cosh => f64::cosh,
    caravan_float_tanh => f64::tanh,
    caravan_float_asinh => f64::asinh,
    caravan_float_acosh => f64::acosh,
    caravan_float_atanh => f64::atanh,
    caravan_float_expm1 => f64::exp_m1,
    caravan_float_log1p => f64::ln_1p,
    caravan_float_log2 => f64::log2,
    caravan_float_exp2 => f64::exp2,
    caravan_float_cbrt => f64::cbrt,
);

macro_rules! float_fns2 {
    ($($name:ident => $f:expr),* $(,)?) => {
        $(
            /// A two-argument float function of the C library (`hypot`,
            /// `copysign`).
            ///
            /// # Safety
            /// Called by generated code only: `proc` is the running process
            /// and `a`, `b` floats.
            #[no_mangle]
            pub unsafe extern "C" fn $name(proc: *mut Process, a: Value, b: Value) -> Value {
                let f: fn(f64, f64) -> f64 = $f;
                // SAFETY: floats.
                let r = f(unsafe { float_of(a) }, unsafe { float_of(b) });
                alloc_float(p(proc), r)
            }
        )*
    };
}

float_fns2!(
    caravan_float_hypot => f64::hypot,
    caravan_float_copysign => f64::copysign,
);

/// `ldexp x n`: x * 2^n, exactly (as C's `ldexp`).
///
/// # Safety
/// Called by generated code only: `proc` is the running process, `a` a
/// float and `n` an int.
#[no_mangle]
pub unsafe extern "C" fn caravan_float_ldexp(proc: *mut Process, a: Value, n: Value) -> Value {
    // SAFETY: a float.
    let x = unsafe { float_of(a) };
    let n = int_of(n).clamp(-2200, 2200) as i32;
    // Scale in steps that cannot overflow or underflow an intermediate.
    let mut r = x;
    let mut k = n;
    while k > 1000 {
        r *= 2f64.powi(1000);
        k -= 1000;
    }
    while k < -1000 {
        r *= 2f64.powi(-1000);
        k += 1000;
    }
    alloc_float(p(proc), r * 2f64.powi(k))
}

/// `mod_float a b` (C's `fmod`).
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments are floats.
#[no_mangle]
pub unsafe extern "C" fn caravan_float_rem(proc: *mut Process, a: Value, b: Value) -> Value {
    // SAFETY: floats.
    let r = unsafe { float_of(a) % float_of(b) };
    alloc_float(p(proc), r)
}

/// `atan2 y x`.
///
/// # Safety
/// Called by generated code only: `proc` is the running process and the
/// arguments are floats.
#[no_mangle]
pub unsafe extern "C" fn caravan_float_atan2(proc: *mut Process, a: Value, b: Value) -> Value {
    // SAFETY: floats.
    let r = unsafe { float_of(a).atan2(float_of(b)) };
    alloc_float(p(proc), r)
}

/// A string made of a list of chars (`String.map`, `String.init`, … are
/// written in Caravan on top of it).
///
/// # Safety
/// Called by generated code only: `l` is a `char list`.
#[no_mangle]
pub unsafe extern "C" fn caravan_string_of_char_list(proc: *mut Process, l: Value) -> Value {
    // SAFETY: cons cells of a char list; nothing moves while this builtin
    // runs.
    unsafe {
        let (mut n, mut cur) = (0usize, l);
        while cur != UNIT {
            n += 1;
            cur = v::field(cur, 1);
        }
        let (s, out) = caravan_vm::alloc_string_uninit(p(proc), n);
        let mut cur = l;
        for b in out.iter_mut() {
            *b = int_of(v::field(cur, 0)) as u8;
            cur = v::field(cur, 1);
        }
        s
    }
}

/// `String.escaped`.
///
/// # Safety
/// Called by generated code only: `s` is a string.
#[no_mangle]
pub unsafe extern "C" fn caravan_string_escaped(proc: *mut Process, s: Value) -> Value {
    // SAFETY: a string.
    let e = escape_bytes(unsafe { string_bytes(s) });
    alloc_string(p(proc), &e)
}

/// `Printexc.to_string`: the exception as OCaml prints it
/// ([`caravan_vm::exn::to_string`]).
///
/// # Safety
/// Called by generated code only: `e` is an exception value.
#[no_mangle]
pub unsafe extern "C" fn caravan_printexc_to_string(proc: *mut Process, e: Value) -> Value {
    // SAFETY: an exception value.
    let text = unsafe { caravan_vm::exn::to_string(e) };
    alloc_string(p(proc), &text)
}

/// `Char.escaped` (as OCaml: `'` is escaped, `"` is not).
#[no_mangle]
pub extern "C" fn caravan_char_escaped(proc: *mut Process, c: Value) -> Value {
    let c = int_of(c) as u8;
    let e = match c {
        b'\'' => b"\\'".to_vec(),
        b'"' => b"\"".to_vec(),
        c => escape_bytes(&[c]),
    };
    alloc_string(p(proc), &e)
}

macro_rules! table {
    ($($f:ident),* $(,)?) => {
        /// `(symbol, address)` of every builtin, for the JIT.
        pub fn symbols() -> Vec<(&'static str, *const u8)> {
            vec![$((stringify!($f), $f as *const u8)),*]
        }
    };
}

table!(
    caravan_print_string,
    caravan_print_endline,
    caravan_print_newline,
    caravan_prerr_string,
    caravan_string_concat,
    caravan_string_of_int,
    caravan_int_of_string,
    caravan_int_of_string_check,
    caravan_string_of_float,
    caravan_float_of_string,
    caravan_float_of_string_check,
    caravan_float_pow,
    caravan_float_sqrt,
    caravan_string_length,
    caravan_string_get,
    caravan_string_sub,
    caravan_string_make,
    caravan_string_concat_list,
    caravan_string_split_on_char,
    caravan_string_uppercase_ascii,
    caravan_string_lowercase_ascii,
    caravan_string_trim,
    caravan_string_index_from_opt,
    caravan_sys_args,
    caravan_sys_getenv,
    caravan_file_read,
    caravan_file_write,
    caravan_io_read_line,
    caravan_time_now_ms,
    caravan_random_int,
    caravan_random_float,
    caravan_random_init,
    caravan_random_self_init,
    caravan_inspect,
    caravan_inspect_top,
    caravan_float_exp,
    caravan_float_log,
    caravan_float_log10,
    caravan_float_sin,
    caravan_float_cos,
    caravan_float_tan,
    caravan_float_atan,
    caravan_float_floor,
    caravan_float_ceil,
    caravan_float_round,
    caravan_float_trunc,
    caravan_float_rem,
    caravan_float_atan2,
    caravan_float_asin,
    caravan_float_acos,
    caravan_float_sinh,
    caravan_float_cosh,
    caravan_float_tanh,
    caravan_float_asinh,
    caravan_float_acosh,
    caravan_float_atanh,
    caravan_float_expm1,
    caravan_float_log1p,
    caravan_float_log2,
    caravan_float_exp2,
    caravan_float_cbrt,
    caravan_float_hypot,
    caravan_float_copysign,
    caravan_float_ldexp,
    caravan_string_of_char_list,
    caravan_string_escaped,
    caravan_printexc_to_string,
    caravan_char_escaped,
    caravan_printf_int,
    caravan_printf_int64,
    caravan_printf_float,
    caravan_printf_string,
    caravan_printf_char,
    caravan_store_create,
    caravan_store_put,
    caravan_store_get,
    caravan_store_delete,
    caravan_store_fetch,
    caravan_store_swap,
    caravan_store_to_list,
    caravan_store_size,
    caravan_store_mem,
    caravan_registry_new_name,
    caravan_registry_register,
    caravan_registry_unregister,
    caravan_registry_whereis,
    caravan_int64_add,
    caravan_int64_sub,
    caravan_int64_mul,
    caravan_int64_logand,
    caravan_int64_logor,
    caravan_int64_logxor,
    caravan_int64_div,
    caravan_int64_rem,
    caravan_int64_unsigned_div,
    caravan_int64_unsigned_rem,
    caravan_int64_shift_left,
    caravan_int64_shift_right,
    caravan_int64_shift_right_logical,
    caravan_int64_neg,
    caravan_int64_lognot,
    caravan_int64_of_int,
    caravan_int64_to_int,
    caravan_int64_unsigned_compare,
    caravan_int64_to_float,
    caravan_int64_of_float,
    caravan_int64_bits_of_float,
    caravan_int64_float_of_bits,
    caravan_int64_to_string,
    caravan_int64_of_string,
    caravan_int64_of_string_opt,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_ocaml() {
        assert_eq!(format_float(3.0), "3.");
        assert_eq!(format_float(0.1), "0.1");
        assert_eq!(format_float(12.375), "12.375");
        assert_eq!(format_float(1e20), "1e+20");
        assert_eq!(format_float(-2.5), "-2.5");
        assert_eq!(format_float(1.0 / 3.0), "0.333333333333");
        assert_eq!(format_float(123456789012.0), "123456789012.");
        assert_eq!(format_float(1e-7), "1e-07");
        assert_eq!(format_float(1e-5), "1e-05");
        assert_eq!(format_float(1.234e-5), "1.234e-05");
        assert_eq!(format_float(0.0001), "0.0001");
        assert_eq!(format_float(999_999_999_999.999_9), "1e+12");
    }

    #[test]
    fn toplevel_floats_read_back() {
        assert_eq!(repr_float(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(repr_float(0.1), "0.1");
        assert_eq!(repr_float(3.0), "3.");
        assert_eq!(repr_float(1e20), "1e+20");
        assert_eq!(repr_float(-1.5), "-1.5");
        assert_eq!(repr_float(1.0 / 3.0), "0.3333333333333333");
        assert_eq!(repr_float(f64::INFINITY), "infinity");
        assert_eq!(repr_float(f64::NEG_INFINITY), "neg_infinity");
        for x in [0.1 + 0.2, 1.0 / 3.0, 2.0f64.sqrt(), 1e-300, 123456.789e10] {
            assert_eq!(repr_float(x).parse::<f64>(), Ok(x));
        }
    }

    #[test]
    fn ints_parse_as_ocaml() {
        assert_eq!(parse_int(b"42"), Some(42));
        assert_eq!(parse_int(b"-0x1f"), Some(-31));
        assert_eq!(parse_int(b"1_000"), Some(1000));
        assert_eq!(parse_int(b"x"), None);
        assert_eq!(parse_int(b"_1"), None);
        assert_eq!(parse_int(b"--1"), None);
        assert_eq!(parse_int(b"+-1"), None);
        assert_eq!(parse_int(b"0u42"), Some(42));
        assert_eq!(parse_int(b"0x4000000000000000"), Some(-4611686018427387904));
        assert_eq!(parse_int(b"0x7fffffffffffffff"), Some(-1));
        assert_eq!(parse_int(b"4611686018427387903"), Some(4611686018427387903));
        assert_eq!(parse_int(b"4611686018427387904"), None);
        assert_eq!(
            parse_int(b"-4611686018427387904"),
            Some(-4611686018427387904)
        );
        assert_eq!(parse_int(b""), None);
    }
}
