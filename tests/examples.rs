//! Golden tests: every example and test program, run by the real `caravan`
//! binary with one and with four schedulers, must print exactly its
//! expected output and exit with the expected status.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `caravan run --schedulers N FILE ARGS`, failing the test after
/// `limit` instead of hanging.
fn run(schedulers: usize, file: &Path, args: &[&str], limit: Duration) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_caravan"));
    cmd.arg("run")
        .arg("--schedulers")
        .arg(schedulers.to_string())
        .arg(file)
        .args(args)
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().expect("start caravan");
    // Output is read while the program runs (a full pipe would block it).
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("output"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("{} timed out after {limit:?}", file.display());
        }
    }
}

fn golden(name: &str, file: &str, args: &[&str]) {
    let expected = std::fs::read_to_string(root().join("tests/golden").join(format!("{name}.out")))
        .expect("golden file");
    for s in [1, 4] {
        let out = run(s, Path::new(file), args, Duration::from_secs(60));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            expected,
            "{file} with --schedulers {s}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{file} exited with {:?}", out.status);
        assert!(
            out.stderr.is_empty(),
            "{file} wrote to stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn hello() {
    golden("hello", "examples/hello.cvn", &[]);
}

#[test]
fn fib() {
    golden("fib", "examples/fib.cvn", &["30"]);
}

#[test]
fn ping_pong() {
    golden("ping_pong", "examples/ping_pong.cvn", &[]);
}

#[test]
fn counter() {
    golden("counter", "examples/counter.cvn", &[]);
}

#[test]
fn ring() {
    golden("ring", "examples/ring.cvn", &["50", "20"]);
}

#[test]
fn wordfreq() {
    golden(
        "wordfreq",
        "examples/wordfreq.cvn",
        &["examples/data/gpl-3.0.txt"],
    );
}

/// `let rec spin () = spin ()` never stops a ping-pong on one scheduler.
#[test]
fn preemption_with_one_scheduler() {
    let out = run(
        1,
        Path::new("tests/programs/preempt.cvn"),
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ping-pong finished despite the spinner\n"
    );
    assert!(out.status.success());
}

/// A process's allocation is reused by the next spawn of the scheduler it
/// ended on: the newcomer starts with an empty mailbox, no links and a
/// fresh heap (`Scheduler::new_process`).
#[test]
fn recycled_processes_start_clean() {
    for s in [1, 2] {
        let out = run(
            s,
            Path::new("tests/programs/recycled_processes.cvn"),
            &[],
            Duration::from_secs(60),
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "5000 children started clean\n",
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success());
    }
}

/// A crash ends only that process: its reason is observable, one line goes
/// to stderr, and the rest of the program goes on.
#[test]
fn crash_of_a_process_leaves_the_others_running() {
    for s in [1, 4] {
        let out = run(
            s,
            Path::new("tests/programs/crash.cvn"),
            &[],
            Duration::from_secs(60),
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "worker crashed: boom\ndivider crashed: division by zero\nserver still answers: 40\n"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "stderr: {err}");
        assert!(
            lines[0].ends_with("crashed: boom at tests/programs/crash.cvn:11:29"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].contains("crashed: division by zero at tests/programs/crash.cvn:16:"),
            "{}",
            lines[1]
        );
        assert!(out.status.success());
    }
}

/// A crash of the main process prints its reason and exits with status 1.
#[test]
fn crash_of_main_exits_1() {
    let out = run(
        2,
        Path::new("tests/programs/main_crash.cvn"),
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "before\n");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("crashed: main gives up at tests/programs/main_crash.cvn:3:3"),
        "{err}"
    );
}

/// Thousands of processes exchange messages across 4 schedulers on this
/// 2-core machine, many times: no message is lost, duplicated or
/// reordered per sender, and every run terminates.
/// `CARAVAN_STRESS_RUNS` sets the number of runs (default 25).
#[test]
fn message_stress_across_schedulers() {
    let runs: usize = std::env::var("CARAVAN_STRESS_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(25);
    for i in 0..runs {
        // Vary the shape from run to run.
        let procs = 200 + 97 * (i % 9);
        let per = 5 + (i * 7) % 40;
        let fan = 1 + i % 4;
        let (p, k, f) = (procs.to_string(), per.to_string(), fan.to_string());
        let out = run(
            4,
            Path::new("tests/programs/stress.cvn"),
            &[&p, &k, &f],
            Duration::from_secs(120),
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!(
                "all {} messages delivered once, in order\n",
                procs * per * fan
            ),
            "run {i}: stderr {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `Geometry.describe` in `main.cvn` is `describe` in `geometry.cvn` beside
/// it; modules used by modules are loaded too, in dependency order.
#[test]
fn program_over_several_files() {
    golden("multifile", "tests/programs/multifile/main.cvn", &[]);
}

/// Issue 15: `Upper.cvn` is module `Upper` (as OCaml finds `Upper.ml`), and
/// a `list.cvn` beside the program shadows the standard `List` for it —
/// inside that file `List` is still the standard one. Before, `Upper` was
/// an unknown module and `list.cvn` was silently ignored.
#[test]
fn module_file_names_and_shadowing() {
    golden("module_files", "tests/programs/module_files/main.cvn", &[]);
}
