//! Containment (issue 10): a process that exhausts memory in any way —
//! a huge `String.make`, a list or string that grows without end, a flood
//! of big messages into a mailbox — crashes alone with `Crashed "out of
//! memory"` (the system refuses: here an address-space limit, `prlimit
//! --as`) or `Crashed "heap limit"` (`--max-heap-mb`,
//! `Process.spawn_limited`), while a server keeps answering and the
//! program exits 0. Before the fix the first hog aborted the whole VM.
//!
//! `CARAVAN_SOAK=1` adds the long soaks (10 M calls, 10 M `^`).

mod support;

use std::time::Duration;
use support::{stderr, stdout, Run};

/// The optimised binary when CI built one (the hogs allocate gigabytes;
/// the unoptimised collector is slow), else this build's.
fn bin() -> Option<String> {
    std::env::var("CARAVAN_RELEASE_BIN")
        .or_else(|_| std::env::var("CARAVAN_TORTURE_BIN"))
        .ok()
}

const HOGS: &str = "String.make max_int: contained\nserver still answers: 1\n\
String.make 2^40: contained\nserver still answers: 2\n\
a growing list: contained\nserver still answers: 3\n\
a doubling string: contained\nserver still answers: 4\n\
a flood of big messages: contained\nserver still answers: 5\ndone\n";

/// The VM reserves about 7.4 GB of address space at start (stack slots,
/// the literal area, all `MAP_NORESERVE`): the limit leaves the heaps
/// about 1 GB.
#[test]
fn hogs_under_an_address_space_limit_crash_alone() {
    let bin = bin();
    let limit = format!("--as={}", 8704u64 << 20);
    let o = Run {
        wrapper: &["prlimit", &limit],
        bin: bin.as_deref(),
        ..Default::default()
    }
    .file("tests/containment/hogs.cvn", Duration::from_secs(600));
    assert_eq!(stdout(&o), HOGS, "stderr: {}", stderr(&o));
    assert!(o.status.success());
    for l in stderr(&o).lines() {
        assert!(l.contains("crashed: out of memory"), "{l}");
    }
}

#[test]
fn hogs_past_a_heap_limit_crash_alone() {
    let bin = bin();
    let o = Run {
        opts: &["--max-heap-mb", "64"],
        bin: bin.as_deref(),
        ..Default::default()
    }
    .file("tests/containment/hogs.cvn", Duration::from_secs(600));
    assert_eq!(stdout(&o), HOGS, "stderr: {}", stderr(&o));
    assert!(o.status.success());
    let err = stderr(&o);
    assert!(err.contains("crashed: heap limit"), "{err}");
}

#[test]
fn spawn_limited_limits_one_process() {
    let o = Run::default().file("tests/containment/limited.cvn", Duration::from_secs(300));
    assert_eq!(
        stdout(&o),
        "hog: Crashed \"heap limit\"\nmodest: Normal\nunlimited: Normal\n",
        "stderr: {}",
        stderr(&o)
    );
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("crashed: heap limit at tests/containment/limited.cvn:4:"),
        "{err}"
    );
}

/// 10 M `s ^ chunk` (16-byte chunks, starting over at 64 KB) with a
/// bounded heap.
#[test]
fn concat_soak() {
    if std::env::var_os("CARAVAN_SOAK").is_none() {
        return;
    }
    let bin = bin();
    let o = Run {
        args: &["10000000", "10000000", "16", "65536"],
        bin: bin.as_deref(),
        ..Default::default()
    }
    .file("tests/promises/builtin_gc.cvn", Duration::from_secs(3600));
    assert!(
        stdout(&o).ends_with("concat: bounded heap\n"),
        "{}",
        stderr(&o)
    );
}
