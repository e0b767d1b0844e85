//! Typed `Printf` and `Format`: `Printf.printf "%d: %s\n" n s` with the
//! format a string literal, checked when the program is compiled.
//!
//! OCaml types a format with its `format6` type, which the compiler infers
//! from the literal (Printf, OCaml manual §29). Caravan only accepts literal
//! formats, so the same types come from expanding the call, before type
//! inference, into ordinary code: one parameter per conversion, each
//! converted by a function of the standard `Printf` module, the pieces
//! concatenated and printed (or returned, for `sprintf`):
//!
//! ```text
//! Printf.printf "%d: %5s\n"
//!   ==> fun %1 %2 -> Printf.output [Printf.format_int "%d" %1; ": ";
//!                                   Printf.format_string "%5s" %2; "\n"]
//! ```
//!
//! so `Printf.printf "%d: %5s\n" : int -> string -> unit`, partial
//! application works (`List.iter (Printf.printf "%d ")`), and a wrong
//! argument is the ordinary type error at that argument ("has type string
//! but an expression was expected of type int"), as in OCaml. A malformed
//! format is an error at the literal that names the conversion.
//!
//! Conversions: `%d %i %u %x %X %o` (int), `%Ld %Li %Lu %Lx %LX %Lo`
//! (`Int64.t`), `%f %F %e %E %g %G` (float),
//! `%s %S` (string), `%c %C` (char), `%b %B` (bool), `%a` (a printer and a
//! value: with `sprintf`, `unit -> 'a -> string`), `%%`, `%!` (flush:
//! nothing to do), with the flags `-`, `0`, `+`, ` `, `#`, a width and a
//! precision. `Format.printf` and friends take the same conversions and
//! read `@.` and `@\n` as a newline, `@ ` and `@;` as a space, and drop
//! the other boxes and break hints (`@[`, `@]`, `@,`, `@?`); `@@` is `@`.

use crate::ast::{self, Expr, Lit, Name, Pat, Span};

/// Which module's formats (`Format` knows `@` directives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `Printf`.
    Printf,
    /// `Format`.
    Format,
}

/// Where the formatted text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// Standard output (`printf`, `fprintf stdout`).
    Stdout,
    /// Standard error (`eprintf`, `fprintf stderr`).
    Stderr,
    /// Returned as a string (`sprintf`, `asprintf`).
    String,
}

/// The function `name` names, if it is a formatting one: its family, and
/// its sink (`None` for `fprintf`, whose sink is its first argument).
pub fn target(name: &Name) -> Option<(Family, Option<Sink>)> {
    let family = match name.module.as_deref() {
        Some("Printf") => Family::Printf,
        Some("Format") => Family::Format,
        _ => return None,
    };
    let sink = match name.name.as_str() {
        "printf" => Some(Sink::Stdout),
        "eprintf" => Some(Sink::Stderr),
        "sprintf" => Some(Sink::String),
        "asprintf" if family == Family::Format => Some(Sink::String),
        "fprintf" => None,
        _ => return None,
    };
    Some((family, sink))
}

/// The sink named by `fprintf`'s channel argument (`stdout`, `stderr`,
/// `Format.std_formatter`, `Format.err_formatter`).
pub fn channel(e: &Expr) -> Option<Sink> {
    match e {
        Expr::Var(n, _) => match (n.module.as_deref(), n.name.as_str()) {
            (None, "stdout") | (Some("Format"), "std_formatter") => Some(Sink::Stdout),
            (None, "stderr") | (Some("Format"), "err_formatter") => Some(Sink::Stderr),
            _ => None,
        },
        _ => None,
    }
}

/// One conversion of a format.
#[derive(Debug, Clone, PartialEq)]
enum Conv {
    /// Text copied as it is.
    Text(Vec<u8>),
    /// A conversion taking one argument: its spec as written (`%-5d`) and
    /// the `Printf` function that formats it.
    Arg { spec: Vec<u8>, func: &'static str },
    /// `%a`: a printer and a value.
    Printer,
}

/// Parses a format: its pieces, or a message naming the bad conversion.
fn parse(fmt: &[u8], family: Family) -> Result<Vec<Conv>, String> {
    let mut out = vec![];
    let mut text = vec![];
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        if c == b'@' && family == Family::Format {
            i += 1;
            match fmt.get(i) {
                Some(b'.') | Some(b'\n') => text.push(b'\n'),
                Some(b' ') | Some(b';') => text.push(b' '),
                Some(b'@') => text.push(b'@'),
                Some(b',') | Some(b'?') | Some(b']') | Some(b'}') => {}
                Some(b'[') | Some(b'{') => {
                    // `@[<hov 2>`: the box's kind and indent are dropped.
                    if fmt.get(i + 1) == Some(&b'<') {
                        match fmt[i + 1..].iter().position(|&b| b == b'>') {
                            Some(k) => i += k + 1,
                            None => return Err("an unclosed `@[<` box".into()),
                        }
                    }
                }
                Some(_) | None => {
                    text.push(b'@');
                    continue;
                }
            }
            i += 1;
            continue;
        }
        if c != b'%' {
            text.push(c);
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < fmt.len() && matches!(fmt[i], b'-' | b'0' | b'+' | b' ' | b'#') {
            i += 1;
        }
        if fmt.get(i) == Some(&b'*') {
            return Err("`*` widths are not supported: write the width in the format".into());
        }
        while i < fmt.len() && fmt[i].is_ascii_digit() {
            i += 1;
        }
        if fmt.get(i) == Some(&b'.') {
            i += 1;
            if fmt.get(i) == Some(&b'*') {
                return Err(
                    "`*` precisions are not supported: write the precision in the format".into(),
                );
            }
            while i < fmt.len() && fmt[i].is_ascii_digit() {
                i += 1;
            }
        }
        // `%Ld` and the other `L` conversions: an `Int64.t`.
        let int64 = fmt.get(i) == Some(&b'L')
            && matches!(
                fmt.get(i + 1),
                Some(b'd' | b'i' | b'u' | b'x' | b'X' | b'o')
            );
        if int64 {
            i += 1;
        }
        let Some(&conv) = fmt.get(i) else {
            return Err(
                "the format ends inside a conversion (a lone `%`; write `%%` for a percent sign)"
                    .into(),
            );
        };
        i += 1;
        let spec = fmt[start..i].to_vec();
        let plain = spec.len() == 2;
        let func = match conv {
            b'%' if plain => {
                text.push(b'%');
                continue;
            }
            b'!' if plain => continue,
            b'd' | b'i' | b'u' | b'x' | b'X' | b'o' if int64 => "format_int64",
            b'd' | b'i' | b'u' | b'x' | b'X' | b'o' => "format_int",
            b'f' | b'F' | b'e' | b'E' | b'g' | b'G' => "format_float",
            b's' | b'S' => "format_string",
            b'c' | b'C' => "format_char",
            b'b' | b'B' => "format_bool",
            b'a' if plain => {
                flush(&mut text, &mut out);
                out.push(Conv::Printer);
                continue;
            }
            b'l' | b'L' | b'n' => {
                return Err(format!(
                    "`{}` (an int32 or nativeint conversion) is not supported: Caravan has Int64 (`%Ld`) and OCaml's int",
                    String::from_utf8_lossy(&spec)
                ))
            }
            _ => {
                return Err(format!(
                    "`{}` is not a conversion Caravan knows (`%d %i %u %x %X %o %f %F %e %E %g %G %s %S %c %C %b %B %a %%`)",
                    String::from_utf8_lossy(&spec)
                ))
            }
        };
        flush(&mut text, &mut out);
        out.push(Conv::Arg { spec, func });
    }
    flush(&mut text, &mut out);
    Ok(out)
}

fn flush(text: &mut Vec<u8>, out: &mut Vec<Conv>) {
    if !text.is_empty() {
        out.push(Conv::Text(std::mem::take(text)));
    }
}

fn printf_var(name: &str, span: Span) -> Expr {
    Expr::Var(
        Name {
            module: Some("Printf".into()),
            name: name.into(),
        },
        span,
    )
}

/// The expansion of a formatting call's head, `Printf.printf "fmt"`, for
/// the literal `fmt` at `fmt_span`: a function of one parameter per
/// argument the format takes (none: the formatting itself), and for each
/// parameter the conversion it is for (`%d`, or `%a` twice: printer, then
/// value). `Err` is the message of a malformed format.
pub fn expand(
    family: Family,
    sink: Sink,
    fmt: &[u8],
    fmt_span: Span,
) -> Result<(Expr, Vec<String>), String> {
    let convs = parse(fmt, family)?;
    if sink != Sink::String && convs.contains(&Conv::Printer) {
        return Err(
            "`%a` is supported by `sprintf` only (its printer has type `unit -> 'a -> string`)"
                .into(),
        );
    }
    let mut params = vec![];
    let mut parts = vec![];
    let mut specs = vec![];
    let fresh = |params: &mut Vec<Pat>| {
        // `%` cannot start a user's name: no capture.
        let name = format!("%{}", params.len() + 1);
        params.push(Pat::Var(name.clone(), fmt_span));
        Expr::Var(Name::local(name), fmt_span)
    };
    for c in convs {
        match c {
            Conv::Text(t) => parts.push(Expr::Lit(Lit::Str(t), fmt_span)),
            Conv::Arg { spec, func } => {
                specs.push(String::from_utf8_lossy(&spec).into_owned());
                let arg = fresh(&mut params);
                parts.push(Expr::App(
                    Box::new(printf_var(func, fmt_span)),
                    vec![Expr::Lit(Lit::Str(spec), fmt_span), arg],
                    fmt_span,
                ));
            }
            Conv::Printer => {
                specs.push("%a".into());
                specs.push("%a".into());
                let printer = fresh(&mut params);
                let value = fresh(&mut params);
                parts.push(Expr::App(
                    Box::new(printer),
                    vec![Expr::Lit(Lit::Unit, fmt_span), value],
                    fmt_span,
                ));
            }
        }
    }
    let out = match sink {
        Sink::Stdout => "output",
        Sink::Stderr => "output_err",
        Sink::String => "concat",
    };
    let body = Expr::App(
        Box::new(printf_var(out, fmt_span)),
        vec![Expr::List(parts, fmt_span)],
        fmt_span,
    );
    let f = if params.is_empty() {
        body
    } else {
        Expr::Fun(
            params.into_iter().map(ast::Param::positional).collect(),
            Box::new(body),
            fmt_span,
        )
    };
    Ok((f, specs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(fmt: &str, family: Family) -> Result<Vec<String>, String> {
        Ok(parse(fmt.as_bytes(), family)?
            .into_iter()
            .map(|c| match c {
                Conv::Text(t) => format!("text {}", String::from_utf8_lossy(&t)),
                Conv::Arg { spec, func } => format!("{func} {}", String::from_utf8_lossy(&spec)),
                Conv::Printer => "printer".into(),
            })
            .collect())
    }

    #[test]
    fn conversions_flags_widths_and_text() {
        assert_eq!(
            specs("n=%-5d x=%08.3f %s%%%!%c", Family::Printf).unwrap(),
            [
                "text n=",
                "format_int %-5d",
                "text  x=",
                "format_float %08.3f",
                "text  ",
                "format_string %s",
                "text %",
                "format_char %c"
            ]
        );
    }

    #[test]
    fn format_directives_only_in_format() {
        assert_eq!(
            specs("@[<v 2>a@ b@]@.", Family::Format).unwrap(),
            ["text a b\n"]
        );
        assert_eq!(specs("a@.", Family::Printf).unwrap(), ["text a@."]);
    }

    #[test]
    fn bad_conversions_are_named() {
        assert!(specs("%q", Family::Printf).unwrap_err().contains("`%q`"));
        assert!(specs("50%", Family::Printf)
            .unwrap_err()
            .contains("lone `%`"));
        assert!(specs("%*d", Family::Printf).unwrap_err().contains("`*`"));
        assert!(specs("%ld", Family::Printf).unwrap_err().contains("`%l`"));
        assert!(specs("%L", Family::Printf).unwrap_err().contains("`%L`"));
        assert!(specs("%Lf", Family::Printf).unwrap_err().contains("`%L`"));
    }

    #[test]
    fn int64_conversions() {
        assert_eq!(
            specs("%Ld|%-8Lx|%Lu", Family::Printf).unwrap(),
            [
                "format_int64 %Ld",
                "text |",
                "format_int64 %-8Lx",
                "text |",
                "format_int64 %Lu"
            ]
        );
    }
}
