//! The promises of LANGUAGE.md that outside testing found broken (issue
//! 10), one regression test each: every one failed before its fix.

mod support;

use std::time::Duration;
use support::{stderr, stdout, Run};

const LIMIT: Duration = Duration::from_secs(120);

/// §2: `receive other with …` on a pid that is not the current process's
/// crashes the receiver — with a different message type it used to read
/// foreign memory (a segfault of the VM), with the same type it silently
/// read its own mailbox.
#[test]
fn receive_on_another_processs_mailbox_crashes_the_receiver() {
    for s in ["1", "2"] {
        let o = Run {
            opts: &["--schedulers", s],
            ..Default::default()
        }
        .file("tests/promises/receive_other.cvn", LIMIT);
        assert_eq!(
            stdout(&o),
            "different type: Crashed \"receive on another process's mailbox\"\n\
             same type: Crashed \"receive on another process's mailbox\"\n\
             a still receives its own\n",
            "stderr: {}",
            stderr(&o)
        );
        let err = stderr(&o);
        assert!(
            err.contains("crashed: receive on another process's mailbox at tests/promises/receive_other.cvn:5:50"),
            "{err}"
        );
        assert!(o.status.success());
    }
}

/// Builtins' allocations count toward the owner's collections: a loop of
/// `string_of_int` used to grow the heap without ever collecting, and so
/// did `s ^ chunk`.
#[test]
fn builtins_trigger_collections() {
    // 1 M `string_of_int`, then 1,000 × `s ^ (64 KiB)` starting over at
    // 10 MB.
    let o = Run {
        args: &["1000000", "1000", "65536", "10000000"],
        ..Default::default()
    }
    .file("tests/promises/builtin_gc.cvn", LIMIT);
    assert_eq!(
        stdout(&o),
        "5888896\nstring_of_int: bounded heap\ncollected\nconcat: bounded heap\n",
        "stderr: {}",
        stderr(&o)
    );
}

/// A 100 MB string built from 1 MB chunks used to peak at 5 GB: each
/// intermediate string is now a large object, freed once unreachable.
/// Under an address-space limit of the VM's start-up reservations plus
/// 1 GiB it must finish.
#[test]
fn a_string_built_from_chunks_is_freed_as_it_grows() {
    let limit = format!("--as={}", (7 << 30) + (1u64 << 30) + (512 << 20));
    let o = Run {
        args: &["100"],
        wrapper: &["prlimit", &limit],
        ..Default::default()
    }
    .file("tests/promises/big_string.cvn", LIMIT);
    assert_eq!(stdout(&o), "100000000\n", "stderr: {}", stderr(&o));
}

/// `call` with replies that hold nested blocks used to leak 16 words per
/// call (3 M calls: 48 M heap words, no collection). `CARAVAN_SOAK=1`
/// makes it 10 M calls.
#[test]
fn calls_with_nested_replies_keep_a_bounded_heap() {
    let n = if std::env::var_os("CARAVAN_SOAK").is_some() {
        "10000000"
    } else {
        "1000000"
    };
    let o = Run {
        args: &[n],
        ..Default::default()
    }
    .file("tests/promises/call_leak.cvn", Duration::from_secs(1800));
    assert_eq!(
        stdout(&o),
        format!("{n}\nbounded heap\n"),
        "stderr: {}",
        stderr(&o)
    );
}

/// §2/ARCHITECTURE: with one scheduler and a busy process, 2,000 woken
/// processes each waited behind the busy one (24–35 s in all before the
/// fix; about 2 ms after). The bound is generous for a loaded machine:
/// the defect was four orders of magnitude above it.
#[test]
fn a_busy_process_does_not_delay_woken_processes() {
    let o = Run {
        opts: &["--schedulers", "1"],
        ..Default::default()
    }
    .file("tests/promises/fairness.cvn", LIMIT);
    let out = stdout(&o);
    let ms: u64 = out
        .trim()
        .strip_prefix("worst wake latency: ")
        .and_then(|s| s.strip_suffix(" ms"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {out:?}; stderr {}", stderr(&o)));
    assert!(ms <= 200, "worst wake latency {ms} ms");
}

/// §3: one stderr line per crash with the pid, the message and the user's
/// source location — for builtins, standard-library functions, `compare`
/// on functions and call timeouts too (they used to give none, or a place
/// inside the standard library), with newlines in a message escaped.
#[test]
fn crash_lines_name_the_users_call_site() {
    let o = Run::default().file("tests/promises/crash_reports.cvn", LIMIT);
    assert_eq!(stdout(&o), "caught\ndone\n");
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    let expect = [
        "int_of_string at tests/promises/crash_reports.cvn:8:15",
        "nth at tests/promises/crash_reports.cvn:14:25",
        "two\\nlines at tests/promises/crash_reports.cvn:15:17",
        "compare: functional value at tests/promises/crash_reports.cvn:16:25",
        "String.sub / Bytes.sub at tests/promises/crash_reports.cvn:17:25",
        "index out of bounds at tests/promises/crash_reports.cvn:18:25",
        "Timeout at tests/promises/crash_reports.cvn:21:15",
        "Store: no such table (its owner has exited) at tests/promises/crash_reports.cvn:25:48",
        "Parse_error(3, \"x\") at tests/promises/crash_reports.cvn:28:17",
        "Not_found at tests/promises/crash_reports.cvn:29:25",
        "negative at tests/promises/crash_reports.cvn:30:25",
    ];
    assert_eq!(lines.len(), expect.len(), "{err}");
    for (line, e) in lines.iter().zip(expect) {
        assert!(
            line.starts_with("process <0.") && line.ends_with(&format!("> crashed: {e}")),
            "{line:?} should end with {e:?}"
        );
    }
}

/// §2: a main process ended by an exit signal through a link says so on
/// stderr (it used to print nothing of its own) and the program exits 1.
#[test]
fn a_main_process_killed_through_a_link_says_so() {
    let o = Run::default().file("tests/promises/main_linked.cvn", LIMIT);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("crashed: worker died at tests/promises/main_linked.cvn:4:"),
        "{err}"
    );
    assert!(
        err.contains("process <0.1> crashed: worker died (exit signal)"),
        "{err}"
    );
}

/// §2: a callee that exits `Normal` without replying fails the call (it
/// used to end the caller `Normal`); a negative timeout has already passed
/// (`after (-1)` and `try_call … (-5)` used to hang); `forever` never
/// expires.
#[test]
fn call_semantics_and_timeouts() {
    let o = Run::default().file("tests/promises/call_semantics.cvn", LIMIT);
    assert_eq!(
        stdout(&o),
        "no reply: Error (Crashed \"call: callee exited without replying\")\n\
         caller of a silent callee: Crashed \"call: callee exited without replying\"\n\
         negative try_call: Error Timeout\n\
         after (-1) fired at once\n\
         forever: 42\n\
         negative timer fires at once\n\
         done\n",
        "stderr: {}",
        stderr(&o)
    );
}

/// `inspect` printed non-ASCII text as mojibake (`"hÃ©llo"`).
#[test]
fn inspect_prints_utf8_as_text() {
    let o = Run::default().file("tests/promises/utf8.cvn", LIMIT);
    assert_eq!(
        stdout(&o),
        "\"héllo wörld — ✓\"\n\"tab\\there\\n\\001\"\n\"bad \\233 byte\"\n'\\233'\n(\"ok\", Some \"naïve\")\n",
        "stderr: {}",
        stderr(&o)
    );
}

/// `--schedulers` beyond the cores: at most one scheduler per core runs
/// processes at a time, so new work does not wake the others — but a
/// scheduler blocked in a system call (three readers of a standard input
/// that stays open and empty) is stood in for by a spare, woken past that
/// cap, and the program's work still runs.
#[test]
fn spare_schedulers_stand_in_for_blocked_ones() {
    use std::process::{Command, Stdio};
    let mut child = Command::new(support::caravan())
        .args([
            "run",
            "--schedulers",
            "4",
            "tests/promises/spare_schedulers.cvn",
        ])
        .current_dir(support::root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("caravan runs");
    // Held open (and empty) until the program has ended.
    let stdin = child.stdin.take();
    let start = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("the work never ran: no scheduler stood in for the blocked ones");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stdin);
    let o = child.wait_with_output().expect("output");
    assert_eq!(stdout(&o), "sum 1020001800000\n", "stderr: {}", stderr(&o));
    assert!(o.status.success());
}
