//! Running the real `caravan` binary from integration tests: a watchdog
//! (a test fails instead of hanging), output read while the program runs
//! (a full pipe would block it), extra environment, and an optional
//! wrapper command (`prlimit`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `caravan` binary under test.
pub fn caravan() -> &'static str {
    env!("CARGO_BIN_EXE_caravan")
}

/// How to run one program.
#[derive(Default)]
pub struct Run<'a> {
    /// Options before the file (`--schedulers 1`, `--max-heap-mb 64`).
    pub opts: &'a [&'a str],
    /// The program's arguments.
    pub args: &'a [&'a str],
    /// Environment variables to set.
    pub env: &'a [(&'a str, &'a str)],
    /// A command to run `caravan` under (`["prlimit", "--as=…"]`).
    pub wrapper: &'a [&'a str],
    /// The binary (default: this build's `caravan`).
    pub bin: Option<&'a str>,
}

impl Run<'_> {
    /// Runs `caravan run OPTS FILE ARGS` from the repository root; fails
    /// the test after `limit`.
    pub fn file(&self, file: &str, limit: Duration) -> Output {
        let bin = self.bin.unwrap_or(caravan());
        let mut cmd = match self.wrapper.split_first() {
            Some((w, rest)) => {
                let mut c = Command::new(w);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.arg("run")
            .args(self.opts)
            .arg(file)
            .args(self.args)
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in self.env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start caravan");
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(limit) {
            Ok(out) => out.expect("output"),
            Err(_) => {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
                panic!("{file} timed out after {limit:?}");
            }
        }
    }
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether `path` exists relative to the repository root.
pub fn exists(path: &str) -> bool {
    Path::new(&root()).join(path).exists()
}
