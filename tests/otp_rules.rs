//! The OTP layer's rules (LANGUAGE.md §3–§4), one Caravan program each in
//! `tests/otp/`: run by the real `caravan` binary with 1, 2 and 4
//! schedulers, each must print exactly `tests/otp/NAME.out` and exit 0.
//! Crash lines on stderr are expected (processes crash on purpose); a VM
//! failure (a panic, an internal error) is not.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `caravan run --schedulers N tests/otp/NAME.cvn ARGS`, failing
/// after `limit` instead of hanging.
pub fn run_otp(name: &str, schedulers: usize, args: &[&str], limit: Duration) -> Output {
    let file = root().join("tests/otp").join(format!("{name}.cvn"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_caravan"))
        .arg("run")
        .arg("--schedulers")
        .arg(schedulers.to_string())
        .arg(&file)
        .args(args)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start caravan");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{name} (--schedulers {schedulers}) timed out after {limit:?}; stdout so far:\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn golden(name: &str) {
    let expected = std::fs::read_to_string(root().join("tests/otp").join(format!("{name}.out")))
        .expect("expected output");
    for s in [1, 2, 4] {
        let out = run_otp(name, s, &[], Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            expected,
            "{name} with --schedulers {s}; stderr:\n{stderr}"
        );
        assert!(
            out.status.success(),
            "{name} (--schedulers {s}) exited with {:?}; stderr:\n{stderr}",
            out.status
        );
        for bad in ["panicked", "internal VM error", "fatal"] {
            assert!(
                !stderr.contains(bad),
                "{name} (--schedulers {s}): VM failure on stderr:\n{stderr}"
            );
        }
    }
}

#[test]
fn linked_crash_propagates() {
    golden("links");
}

#[test]
fn trapped_exit_arrives_as_a_message() {
    golden("trap_exits");
}

#[test]
fn monitor_notice_exactly_once() {
    golden("monitors");
}

#[test]
fn strategies_restart_the_right_children_in_order() {
    golden("strategies");
}

#[test]
fn restart_intensity_over_a_sliding_window() {
    golden("intensity");
}

#[test]
fn nested_supervisor_restarts_with_a_fresh_count() {
    golden("nested");
}

#[test]
fn shutdown_in_reverse_order_with_timeout_then_killed() {
    golden("shutdown");
}

#[test]
fn server_init_handle_call_stop() {
    golden("server");
}

#[test]
fn registry_names_are_freed_and_re_registered() {
    golden("registry");
}

#[test]
fn store_copies_and_dies_with_its_owner() {
    golden("store");
}

#[test]
fn timers_send_after_and_cancel() {
    golden("timer");
}
