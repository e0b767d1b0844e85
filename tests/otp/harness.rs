//! Running `caravan` on a program with a time limit (shared by the
//! `tests/otp_*.rs` tests through `#[path]`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `caravan run --schedulers N FILE ARGS` (FILE relative to the
/// root), failing after `limit` instead of hanging.
pub fn run(file: &Path, schedulers: usize, args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_caravan"))
        .arg("run")
        .arg("--schedulers")
        .arg(schedulers.to_string())
        .arg(file)
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
                "{} (--schedulers {schedulers}) timed out after {limit:?}; stdout so far:\n{}",
                file.display(),
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `file` and checks it printed `expected`, exited 0, and that the VM
/// reported no failure of its own on stderr (crash lines of processes are
/// fine: they crash on purpose).
pub fn check(
    file: &Path,
    schedulers: usize,
    args: &[&str],
    expected: &str,
    limit: Duration,
) -> Output {
    let out = run(file, schedulers, args, limit);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        expected,
        "{} with --schedulers {schedulers}; stderr:\n{stderr}",
        file.display()
    );
    assert!(
        out.status.success(),
        "{} (--schedulers {schedulers}) exited with {:?}; stderr:\n{stderr}",
        file.display(),
        out.status
    );
    for bad in ["panicked", "internal VM error", "fatal"] {
        assert!(
            !stderr.contains(bad),
            "{} (--schedulers {schedulers}): VM failure on stderr:\n{stderr}",
            file.display()
        );
    }
    out
}
