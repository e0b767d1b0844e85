//! The conversions of typed `Printf` (`stdlib/src/cvn/printf.cvn`): the
//! compiler expands a formatting call into one of these per conversion,
//! given the conversion's text as written (`%-5d`, `%.3f`, `%S`). Numbers
//! are formatted by C's `snprintf`, as OCaml's runtime formats them
//! (`caml_format_int`, `caml_format_float`), so flags, widths and
//! precisions mean what they mean in OCaml.

use crate::builtins::p;
use caravan_vm::value::{float_of, int_of, string_bytes};
use caravan_vm::{alloc_string, Process, Value};

/// A conversion's parts: flags, width, precision and conversion letter.
struct Spec<'a> {
    flags: &'a [u8],
    width: usize,
    precision: Option<usize>,
    conv: u8,
}

/// Parses `%[flags][width][.precision]conv` (the compiler has checked it).
fn spec(s: &[u8]) -> Spec<'_> {
    let mut i = 1.min(s.len());
    let f0 = i;
    while i < s.len() && matches!(s[i], b'-' | b'0' | b'+' | b' ' | b'#') {
        i += 1;
    }
    let flags = &s[f0..i];
    let num = |i: &mut usize| {
        let mut n = 0usize;
        while *i < s.len() && s[*i].is_ascii_digit() {
            n = n.saturating_mul(10).saturating_add((s[*i] - b'0') as usize);
            *i += 1;
        }
        n.min(1 << 20)
    };
    let width = num(&mut i);
    let precision = if s.get(i) == Some(&b'.') {
        i += 1;
        Some(num(&mut i))
    } else {
        None
    };
    Spec {
        flags,
        width,
        precision,
        conv: s.get(i).copied().unwrap_or(b's'),
    }
}

/// `text` padded to the spec's width: on the right with `-`, else on the
/// left (with zeros for `0`, used by the numeric conversions only).
fn pad(sp: &Spec, text: Vec<u8>) -> Vec<u8> {
    if text.len() >= sp.width {
        return text;
    }
    let fill = sp.width - text.len();
    if sp.flags.contains(&b'-') {
        let mut t = text;
        t.resize(sp.width, b' ');
        t
    } else {
        let mut t = vec![b' '; fill];
        t.extend_from_slice(&text);
        t
    }
}

/// C's `snprintf` of one conversion of `value` (an `i64` or an `f64`).
fn c_format(sp: &Spec, length: &str, value: CArg) -> Vec<u8> {
    let mut f = String::from("%");
    f.push_str(std::str::from_utf8(sp.flags).unwrap_or(""));
    if sp.width > 0 {
        f.push_str(&sp.width.to_string());
    }
    if let Some(p) = sp.precision {
        f.push('.');
        f.push_str(&p.min(1000).to_string());
    }
    f.push_str(length);
    f.push(sp.conv as char);
    let cf = std::ffi::CString::new(f).unwrap_or_default();
    let mut buf = vec![0u8; sp.width.max(64) + sp.precision.unwrap_or(0).min(1000) + 400];
    // SAFETY: a NUL-terminated format with exactly one conversion of the
    // type passed; `buf` is its length.
    let n = unsafe {
        match value {
            CArg::Int(v) => libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), cf.as_ptr(), v),
            CArg::Float(v) => libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), cf.as_ptr(), v),
        }
    };
    buf.truncate((n.max(0) as usize).min(buf.len().saturating_sub(1)));
    buf
}

enum CArg {
    Int(libc::c_long),
    Float(libc::c_double),
}

/// `Printf.format_int spec n`: `%d %i` signed; `%u %x %X %o` of the 63
/// bits of the int, as OCaml prints a negative int in hex.
///
/// # Safety
/// Called by generated code only: `spec` is a string, `n` an int.
#[no_mangle]
pub unsafe extern "C" fn caravan_printf_int(proc: *mut Process, spec_v: Value, n: Value) -> Value {
    // SAFETY: a string.
    let s = unsafe { string_bytes(spec_v) };
    let mut sp = spec(s);
    let n = int_of(n);
    // OCaml shows the 63 bits of an int: `%x` of -1 is 7fffffffffffffff.
    let v = match sp.conv {
        b'u' | b'x' | b'X' | b'o' => n & i64::MAX,
        _ => n,
    };
    if sp.conv == b'i' {
        sp.conv = b'd';
    }
    let out = c_format(&sp, "l", CArg::Int(v as libc::c_long));
    alloc_string(p(proc), &out)
}

/// `Printf.format_int64 spec x`: `%Ld %Li` signed; `%Lu %Lx %LX %Lo` of
/// the 64 bits (`%Lx` of -1 is ffffffffffffffff).
///
/// # Safety
/// Called by generated code only: `spec` is a string, `x` an `Int64.t`.
#[no_mangle]
pub unsafe extern "C" fn caravan_printf_int64(
    proc: *mut Process,
    spec_v: Value,
    x: Value,
) -> Value {
    // SAFETY: a string and an `Int64.t` (its `i64` in word 0).
    let (s, n) = unsafe { (string_bytes(spec_v), caravan_vm::value::field(x, 0) as i64) };
    // The spec without its `L`: C's length modifier is `l`.
    let plain: Vec<u8> = s.iter().copied().filter(|&c| c != b'L').collect();
    let mut sp = spec(&plain);
    if sp.conv == b'i' {
        sp.conv = b'd';
    }
    let out = c_format(&sp, "l", CArg::Int(n as libc::c_long));
    alloc_string(p(proc), &out)
}

/// `Printf.format_float spec x`: `%f %e %E %g %G` as C's printf; `%F` as
/// OCaml's float literal (`string_of_float`), padded.
///
/// # Safety
/// Called by generated code only: `spec` is a string, `x` a float.
#[no_mangle]
pub unsafe extern "C" fn caravan_printf_float(
    proc: *mut Process,
    spec_v: Value,
    x: Value,
) -> Value {
    // SAFETY: a string and a float.
    let (s, x) = unsafe { (string_bytes(spec_v), float_of(x)) };
    let sp = spec(s);
    let out = if sp.conv == b'F' {
        let text = if x.is_infinite() {
            if x > 0.0 { "infinity" } else { "neg_infinity" }.to_string()
        } else {
            crate::builtins::format_float(x)
        };
        pad(&sp, text.into_bytes())
    } else {
        c_format(&sp, "", CArg::Float(x))
    };
    alloc_string(p(proc), &out)
}

/// `Printf.format_string spec s`: `%s` padded; `%S` quoted and escaped
/// as an OCaml string literal.
///
/// # Safety
/// Called by generated code only: both arguments are strings.
#[no_mangle]
pub unsafe extern "C" fn caravan_printf_string(
    proc: *mut Process,
    spec_v: Value,
    s: Value,
) -> Value {
    // SAFETY: strings.
    let (sp, s) = unsafe { (spec(string_bytes(spec_v)), string_bytes(s)) };
    let text = if sp.conv == b'S' {
        let mut t = vec![b'"'];
        t.extend(crate::builtins::escape_bytes(s));
        t.push(b'"');
        t
    } else {
        s.to_vec()
    };
    let out = pad(&sp, text);
    alloc_string(p(proc), &out)
}

/// `Printf.format_char spec c`: `%c` as it is, `%C` quoted as an OCaml
/// char literal (a width is ignored, as OCaml does).
///
/// # Safety
/// Called by generated code only: `spec` is a string, `c` a char.
#[no_mangle]
pub unsafe extern "C" fn caravan_printf_char(proc: *mut Process, spec_v: Value, c: Value) -> Value {
    // SAFETY: a string.
    let sp = spec(unsafe { string_bytes(spec_v) });
    let c = int_of(c) as u8;
    let text = if sp.conv == b'C' {
        let mut t = vec![b'\''];
        match c {
            b'\'' => t.extend_from_slice(b"\\'"),
            b'"' => t.push(b'"'),
            c => t.extend(crate::builtins::escape_bytes(&[c])),
        }
        t.push(b'\'');
        t
    } else {
        vec![c]
    };
    // OCaml's %c and %C ignore a width.
    alloc_string(p(proc), &text)
}
