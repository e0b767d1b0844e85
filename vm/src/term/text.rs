//! Text of values as OCaml's runtime prints them: `string_of_float`,
//! C's `%g`, and `String.escaped`. A leaf module: the runtime (exception
//! texts), the stdlib's builtins and `Printf`, and the compiler's
//! diagnostics all print through it, so they agree byte for byte.

/// OCaml's `string_of_float`: `%.12g`, with a trailing `.` when the result
/// looks like an integer (`3.`, `0.1`, `1e+20`, `inf`, `nan`).
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        // As OCaml on x86-64 Linux (printf of a NaN with its sign bit).
        return if f.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = format_g(f, 12);
    if s.contains(['.', 'e', 'n', 'i']) {
        s
    } else {
        format!("{s}.")
    }
}

/// C's `%.{prec}g` of a finite float: `prec` significant digits, fixed
/// notation when the (rounded) exponent X satisfies `-4 <= X < prec`, else
/// `d.ddde+XX`; trailing zeros removed.
pub fn format_g(f: f64, prec: usize) -> String {
    let prec = prec.max(1);
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // The exponent after rounding to `prec` digits decides the notation.
    let m = format!("{:.*e}", prec - 1, f);
    let (mant, e) = m.split_once('e').unwrap_or((&m, "0"));
    let x: i32 = e.parse().unwrap_or(0);
    let trim = |t: &str| -> String {
        if t.contains('.') {
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            t.to_string()
        }
    };
    if x < -4 || x >= prec as i32 {
        format!(
            "{}e{}{:02}",
            trim(mant),
            if x < 0 { '-' } else { '+' },
            x.abs()
        )
    } else {
        trim(&format!("{:.*}", (prec as i32 - 1 - x).max(0) as usize, f))
    }
}

/// OCaml's `String.escaped`: `\n`, `\t`, `\"`, `\\`, and `\ddd` for
/// bytes outside printable ASCII.
pub fn escape_bytes(b: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    for &c in b {
        match c {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\r' => out.extend_from_slice(b"\\r"),
            8 => out.extend_from_slice(b"\\b"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            32..=126 => out.push(c),
            c => out.extend_from_slice(format!("\\{c:03}").as_bytes()),
        }
    }
    out
}
