//! The Rust builtins of the `Http` module (`cvn/http.cvn`): HTTP/1.1
//! message heads parsed with `httparse` (a parser is not what this project
//! exists for), chunked bodies, and the bytes of responses and requests.
//! The protocol logic — connections, keep-alive, pipelining, limits,
//! timeouts — is written in Caravan on top of `Tcp`.
//!
//! Parsers never crash: malformed input is a result code the Caravan side
//! answers (`400`, `431`, `413`, or an error of `Http.fetch`).

use caravan_vm::value::{int_of, of_bool, of_int, string_bytes, Value, UNIT};
use caravan_vm::{alloc_block, alloc_string, Process};

/// Headers a message head may have at most (more: `431`).
pub const MAX_HEADERS: usize = 100;

/// Result codes of the parsers.
const COMPLETE: i64 = 0;
const PARTIAL: i64 = 1;
const TOO_LARGE: i64 = 2;
const BAD: i64 = 3;

fn p(proc: *mut Process) -> &'static mut Process {
    // SAFETY: generated code passes its own live process.
    unsafe { &mut *proc }
}

fn tuple(proc: *mut Process, fields: &[Value]) -> Value {
    let b = alloc_block(p(proc), 0, fields.len());
    for (i, f) in fields.iter().enumerate() {
        // SAFETY: a fresh block of `fields.len()` fields.
        unsafe { *b.add(i) = *f };
    }
    b as Value
}

fn string(proc: *mut Process, b: &[u8]) -> Value {
    alloc_string(p(proc), b)
}

/// A `(string * string) list` of `(name, value)` pairs, names lowercased.
fn header_list(proc: *mut Process, hs: &[httparse::Header]) -> Value {
    let mut l = UNIT;
    for h in hs.iter().rev() {
        let name = string(proc, h.name.to_ascii_lowercase().as_bytes());
        let value = string(proc, h.value);
        let pair = tuple(proc, &[name, value]);
        l = tuple(proc, &[pair, l]);
    }
    l
}

/// `parse_request buf max_head`: the head of the first request in `buf`:
/// `(code, meth, path, query, minor version, headers, head length)` where
/// `code` is 0 (complete), 1 (partial: read more), 2 (the head is larger
/// than `max_head` bytes or has too many headers: `431`) or 3 (malformed:
/// `400`). Header names are lowercased; `path` is without the query,
/// `query` what follows `?`, as sent.
///
/// # Safety
/// Called by generated code only: `buf` is a string, `max_head` an int.
#[no_mangle]
pub unsafe extern "C" fn caravan_http_parse_request(
    proc: *mut Process,
    buf: Value,
    max_head: Value,
) -> Value {
    // SAFETY: a string; it does not move while this builtin runs.
    let b = unsafe { string_bytes(buf) };
    let max = int_of(max_head).max(0) as usize;
    let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut hs);
    let empty = |proc, code| {
        let e = string(proc, b"");
        tuple(proc, &[of_int(code), e, e, e, of_int(0), UNIT, of_int(0)])
    };
    match req.parse(b) {
        Ok(httparse::Status::Complete(n)) if n <= max => {
            let meth = string(proc, req.method.unwrap_or("").as_bytes());
            let target = req.path.unwrap_or("");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let path = string(proc, path.as_bytes());
            let query = string(proc, query.as_bytes());
            let headers = header_list(proc, req.headers);
            let minor = of_int(req.version.unwrap_or(1) as i64);
            tuple(
                proc,
                &[
                    of_int(COMPLETE),
                    meth,
                    path,
                    query,
                    minor,
                    headers,
                    of_int(n as i64),
                ],
            )
        }
        Ok(httparse::Status::Complete(_)) => empty(proc, TOO_LARGE),
        Ok(httparse::Status::Partial) if b.len() > max => empty(proc, TOO_LARGE),
        Ok(httparse::Status::Partial) => empty(proc, PARTIAL),
        Err(httparse::Error::TooManyHeaders) => empty(proc, TOO_LARGE),
        Err(_) => empty(proc, BAD),
    }
}

/// Decodes a chunked body at the start of `buf` (RFC 9112 §7.1; chunk
/// extensions and trailers are read and dropped): `(code, body, length
/// used)` with `code` 0 (complete), 1 (partial), 2 (the body is larger
/// than `max` bytes: `413`) or 3 (malformed: `400`).
fn dechunk(b: &[u8], max: usize) -> (i64, Vec<u8>, usize) {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let (size, used) = match httparse::parse_chunk_size(&b[at..]) {
            Ok(httparse::Status::Complete((used, size))) => (size, used),
            Ok(httparse::Status::Partial) => return (PARTIAL, vec![], 0),
            Err(_) => return (BAD, vec![], 0),
        };
        at += used;
        if size == 0 {
            // Trailers: header lines up to an empty line.
            loop {
                let Some(end) = b[at..].windows(2).position(|w| w == b"\r\n") else {
                    return (PARTIAL, vec![], 0);
                };
                at += end + 2;
                if end == 0 {
                    return (COMPLETE, body, at);
                }
            }
        }
        let size = size as usize;
        if body.len().saturating_add(size) > max {
            return (TOO_LARGE, vec![], 0);
        }
        if b.len() < at + size + 2 {
            return (PARTIAL, vec![], 0);
        }
        body.extend_from_slice(&b[at..at + size]);
        at += size;
        if &b[at..at + 2] != b"\r\n" {
            return (BAD, vec![], 0);
        }
        at += 2;
    }
}

/// `dechunk buf max`: see [`dechunk`].
///
/// # Safety
/// Called by generated code only: `buf` is a string, `max` an int.
#[no_mangle]
pub unsafe extern "C" fn caravan_http_dechunk(proc: *mut Process, buf: Value, max: Value) -> Value {
    // SAFETY: a string; copied out before allocating.
    let (code, body, used) = dechunk(unsafe { string_bytes(buf) }, int_of(max).max(0) as usize);
    let body = string(proc, &body);
    tuple(proc, &[of_int(code), body, of_int(used as i64)])
}

/// The reason phrase of a status code.
fn reason(status: i64) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// The `Date` header's value now (RFC 9110 IMF-fixdate), recomputed at
/// most once a second.
fn http_date() -> String {
    use std::sync::Mutex;
    static CACHE: Mutex<(u64, String)> = Mutex::new((u64::MAX, String::new()));
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut c = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if c.0 != secs {
        *c = (secs, imf_fixdate(secs));
    }
    c.1.clone()
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` of a Unix time (civil-from-days, Howard
/// Hinnant's algorithm).
fn imf_fixdate(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(month - 1) as usize];
    format!("{weekday}, {day:02} {mon} {year} {h:02}:{m:02}:{s:02} GMT")
}

/// The `(name, value)` pairs of a `(string * string) list`.
///
/// # Safety
/// `l` is a valid `(string * string) list`; the slices live as long as it
/// does not move (no allocation meanwhile).
unsafe fn pairs<'a>(mut l: Value) -> Vec<(&'a [u8], &'a [u8])> {
    let mut out = vec![];
    // SAFETY: caller's guarantee: cons cells of pairs of strings.
    unsafe {
        while l != UNIT {
            let pair = caravan_vm::value::field(l, 0);
            out.push((
                string_bytes(caravan_vm::value::field(pair, 0)),
                string_bytes(caravan_vm::value::field(pair, 1)),
            ));
            l = caravan_vm::value::field(l, 1);
        }
    }
    out
}

/// `encode_response status headers body keep_alive`: the bytes of a
/// response: the status line, the user's headers, `Date` (unless given),
/// `Content-Length` (always, replacing any given) and `Connection: close`
/// when the connection ends after it.
///
/// # Safety
/// Called by generated code only, with the declared types.
#[no_mangle]
pub unsafe extern "C" fn caravan_http_encode_response(
    proc: *mut Process,
    status: Value,
    headers: Value,
    body: Value,
    keep_alive: Value,
) -> Value {
    let status = int_of(status);
    // SAFETY: the declared types; nothing moves while this builtin runs.
    let (hs, b) = unsafe { (pairs(headers), string_bytes(body)) };
    let mut out = Vec::with_capacity(128 + b.len());
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason(status)).as_bytes());
    let mut has_date = false;
    for (n, v) in &hs {
        if n.eq_ignore_ascii_case(b"content-length") || n.eq_ignore_ascii_case(b"connection") {
            continue;
        }
        has_date |= n.eq_ignore_ascii_case(b"date");
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    if !has_date {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(http_date().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n", b.len()).as_bytes());
    if keep_alive == of_bool(false) {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b);
    string(proc, &out)
}

/// `encode_request meth host path headers body`: the bytes of a client
/// request (`Host`, `Content-Length` and `Connection: close` added).
///
/// # Safety
/// Called by generated code only, with the declared types.
#[no_mangle]
pub unsafe extern "C" fn caravan_http_encode_request(
    proc: *mut Process,
    meth: Value,
    host: Value,
    path: Value,
    headers: Value,
    body: Value,
) -> Value {
    // SAFETY: the declared types; nothing moves while this builtin runs.
    let (m, h, pa, hs, b) = unsafe {
        (
            string_bytes(meth),
            string_bytes(host),
            string_bytes(path),
            pairs(headers),
            string_bytes(body),
        )
    };
    let mut out = Vec::with_capacity(128 + b.len());
    out.extend_from_slice(m);
    out.push(b' ');
    out.extend_from_slice(if pa.is_empty() { b"/" } else { pa });
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(h);
    out.extend_from_slice(b"\r\n");
    for (n, v) in &hs {
        if n.eq_ignore_ascii_case(b"content-length")
            || n.eq_ignore_ascii_case(b"connection")
            || n.eq_ignore_ascii_case(b"host")
        {
            continue;
        }
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        format!("content-length: {}\r\nconnection: close\r\n\r\n", b.len()).as_bytes(),
    );
    out.extend_from_slice(b);
    string(proc, &out)
}

/// `parse_response buf`: the head of a response: `(code, status, headers,
/// head length)`, `code` as [`caravan_http_parse_request`]'s (0, 1, 3).
///
/// # Safety
/// Called by generated code only: `buf` is a string.
#[no_mangle]
pub unsafe extern "C" fn caravan_http_parse_response(proc: *mut Process, buf: Value) -> Value {
    // SAFETY: a string; it does not move while this builtin runs.
    let b = unsafe { string_bytes(buf) };
    let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut hs);
    match resp.parse(b) {
        Ok(httparse::Status::Complete(n)) => {
            let headers = header_list(proc, resp.headers);
            let status = of_int(resp.code.unwrap_or(0) as i64);
            tuple(proc, &[of_int(COMPLETE), status, headers, of_int(n as i64)])
        }
        Ok(httparse::Status::Partial) => {
            tuple(proc, &[of_int(PARTIAL), of_int(0), UNIT, of_int(0)])
        }
        Err(_) => tuple(proc, &[of_int(BAD), of_int(0), UNIT, of_int(0)]),
    }
}

/// `parse_url url`: `Some (host, port, path with query)` of an
/// `http://host[:port][/path]` URL (`[v6]` hosts too), else `None`.
///
/// # Safety
/// Called by generated code only: `url` is a string.
#[no_mangle]
pub unsafe extern "C" fn caravan_http_parse_url(proc: *mut Process, url: Value) -> Value {
    // SAFETY: a string, copied out.
    let u = String::from_utf8_lossy(unsafe { string_bytes(url) }).into_owned();
    let Some(rest) = u.strip_prefix("http://") else {
        return UNIT;
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':').unwrap_or("80")),
            None => return UNIT,
        }
    } else {
        authority.split_once(':').unwrap_or((authority, "80"))
    };
    let Ok(port) = port.parse::<u16>() else {
        return UNIT;
    };
    if host.is_empty() {
        return UNIT;
    }
    let h = string(proc, host.as_bytes());
    let pa = string(proc, path.as_bytes());
    let t = tuple(proc, &[h, of_int(port as i64), pa]);
    tuple(proc, &[t])
}

/// `(symbol, address)` of the HTTP builtins, for the JIT.
pub fn symbols() -> Vec<(&'static str, *const u8)> {
    macro_rules! syms {
        ($($f:ident),* $(,)?) => { vec![$((stringify!($f), $f as *const u8)),*] };
    }
    syms![
        caravan_http_parse_request,
        caravan_http_dechunk,
        caravan_http_encode_response,
        caravan_http_encode_request,
        caravan_http_parse_response,
        caravan_http_parse_url,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies() {
        let b = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let (code, body, used) = dechunk(b, 100);
        assert_eq!((code, body.as_slice()), (COMPLETE, &b"Wikipedia"[..]));
        assert_eq!(&b[used..], b"NEXT");
        assert_eq!(dechunk(b"4\r\nWi", 100).0, PARTIAL);
        assert_eq!(dechunk(b"4\r\nWikiXX", 100).0, BAD);
        assert_eq!(dechunk(b"zz\r\n", 100).0, BAD);
        assert_eq!(dechunk(b"ffffffff\r\n", 100).0, TOO_LARGE);
    }

    #[test]
    fn dates_and_reasons() {
        assert_eq!(imf_fixdate(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(imf_fixdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(imf_fixdate(1_709_251_200), "Fri, 01 Mar 2024 00:00:00 GMT");
        assert_eq!(reason(431), "Request Header Fields Too Large");
    }
}
