//! Standard output and error for all schedulers.
//!
//! stdout is one buffer shared by every scheduler behind a lock: block
//! buffered (flushed at 8 KiB) when stdout is a file or pipe, flushed at
//! each newline when it is a terminal, and always flushed by [`crate::run`]
//! before it returns. stderr is unbuffered; writing to it flushes stdout
//! first so the two streams interleave in program order.
//!
//! Writes are synchronous `write(2)` calls on the scheduler thread; a full
//! pipe blocks that scheduler (acceptable for now). Errors such as `EPIPE`
//! are ignored: printing never crashes a process or the VM.

use std::sync::{Mutex, MutexGuard};

const FLUSH_AT: usize = 8 << 10;

struct Out {
    buf: Vec<u8>,
    /// Whether fd 1 is a terminal (looked up once).
    tty: Option<bool>,
}

static OUT: Mutex<Out> = Mutex::new(Out {
    buf: Vec::new(),
    tty: None,
});

fn lock_out() -> MutexGuard<'static, Out> {
    OUT.lock().unwrap_or_else(|e| e.into_inner())
}

fn write_fd(fd: libc::c_int, mut b: &[u8]) {
    while !b.is_empty() {
        // SAFETY: `b` is a valid readable buffer of `b.len()` bytes.
        let n = unsafe { libc::write(fd, b.as_ptr() as *const libc::c_void, b.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        b = &b[n as usize..];
    }
}

/// Appends `bytes` to the shared stdout buffer.
pub fn stdout_write(bytes: &[u8]) {
    let mut o = lock_out();
    o.buf.extend_from_slice(bytes);
    let tty = *o.tty.get_or_insert_with(|| {
        // SAFETY: isatty only inspects the descriptor.
        unsafe { libc::isatty(1) == 1 }
    });
    if o.buf.len() >= FLUSH_AT || (tty && bytes.contains(&b'\n')) {
        write_fd(1, &o.buf);
        o.buf.clear();
    }
}

/// Writes out the stdout buffer.
pub fn stdout_flush() {
    let mut o = lock_out();
    if !o.buf.is_empty() {
        write_fd(1, &o.buf);
        o.buf.clear();
    }
    if o.buf.capacity() > 4 * FLUSH_AT {
        o.buf.shrink_to(FLUSH_AT);
    }
}

/// Writes `bytes` to stderr at once (after flushing stdout).
pub fn stderr_write(bytes: &[u8]) {
    stdout_flush();
    write_fd(2, bytes);
}

/// A host's observer of crashes, set once (see [`observe_crashes`]).
static CRASH_OBSERVER: std::sync::OnceLock<CrashObserver> = std::sync::OnceLock::new();

/// Called with `(serial, message, location)` of each crash before its line
/// is printed; returns `true` when the host reports the crash itself (the
/// line is then not printed).
pub type CrashObserver = fn(u64, &[u8], Option<&[u8]>) -> bool;

/// Installs the host's crash observer (the test runner, which reports the
/// crash of a test with the test's name); only the first call counts.
pub fn observe_crashes(f: CrashObserver) {
    let _ = CRASH_OBSERVER.set(f);
}

/// Prints `process <0.SERIAL> crashed: MSG at LOC` on stderr: one line,
/// whatever the message holds (newlines and other control characters are
/// escaped as OCaml escapes them: `\n`, `\t`, `\ddd`).
pub(crate) fn report_crash(serial: u64, msg: &[u8], loc: Option<&[u8]>) {
    if CRASH_OBSERVER.get().is_some_and(|f| f(serial, msg, loc)) {
        return;
    }
    let mut line = Vec::with_capacity(msg.len() + 48);
    line.extend_from_slice(format!("process <0.{serial}> crashed: ").as_bytes());
    push_escaped(&mut line, msg);
    if let Some(loc) = loc {
        line.extend_from_slice(b" at ");
        line.extend_from_slice(loc);
    }
    line.push(b'\n');
    stderr_write(&line);
}

/// Appends `msg` with control characters escaped (one line of output).
fn push_escaped(out: &mut Vec<u8>, msg: &[u8]) {
    for &c in msg {
        match c {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\r' => out.extend_from_slice(b"\\r"),
            c if c < 32 || c == 127 => out.extend_from_slice(format!("\\{c:03}").as_bytes()),
            c => out.push(c),
        }
    }
}
