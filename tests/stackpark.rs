//! Parked stacks (`vm/src/scheduler/stackpark.rs`): the VM releases the
//! stack pages of processes blocked for `CARAVAN_PARK_AFTER_MS` and copies
//! the used bytes back when they run. Deep non-tail frames must come back
//! intact, killed parked processes must free their slots for reuse, and the
//! pages must really be released (RSS against a run without parking). Run
//! with this build's binary (a debug build: its assertions check the saved
//! stack pointer), and in GC torture mode with `CARAVAN_TORTURE_BIN`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const PROGRAM: &str = "tests/stackpark/parked.cvn";

fn run(bin: &str, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let mut cmd = Command::new(bin);
    cmd.arg("run")
        .arg(PROGRAM)
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
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
            panic!("{PROGRAM} timed out after {limit:?}");
        }
    }
}

/// What the program prints when every check holds, for `shallow`
/// processes (half of them answer, then `shallow / 2` fresh ones).
fn expected(shallow: u64) -> String {
    let m = shallow / 2;
    format!(
        "deep stacks unwound intact: true\nshallow answers right: true\n\
         fresh processes answer: {}\n",
        m * (m - 1)
    )
}

/// The RSS the program printed on stderr after its wait, in kB.
fn rss_kb(o: &Output) -> u64 {
    let err = String::from_utf8_lossy(&o.stderr);
    err.lines()
        .find_map(|l| l.strip_prefix("rss: ")?.strip_suffix(" kB")?.parse().ok())
        .unwrap_or_else(|| panic!("no rss line in stderr:\n{err}"))
}

#[test]
fn parked_stacks_come_back_intact_and_their_pages_are_released() {
    let bin = env!("CARGO_BIN_EXE_caravan");
    let args = ["200", "500", "20000", "400"];
    let limit = Duration::from_secs(120);
    let parked = run(bin, &args, &[("CARAVAN_PARK_AFTER_MS", "50")], limit);
    let kept = run(bin, &args, &[("CARAVAN_NO_STACK_PARK", "1")], limit);
    for o in [&parked, &kept] {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(String::from_utf8_lossy(&o.stdout), expected(20_000));
    }
    // 20,000 processes blocked for 400 ms, each with at least one touched
    // stack page: parked, each keeps only the few hundred bytes it uses.
    let (with, without) = (rss_kb(&parked), rss_kb(&kept));
    assert!(
        with + 20_000 < without,
        "parking saved too little: RSS {with} kB parked vs {without} kB not"
    );
}

#[test]
fn parked_stacks_under_gc_torture_and_one_scheduler() {
    let bin = std::env::var("CARAVAN_TORTURE_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_caravan").to_string());
    let args = ["20", "300", "400", "200"];
    let env = [("CARAVAN_PARK_AFTER_MS", "20"), ("CARAVAN_GC_TORTURE", "1")];
    let o = run(&bin, &args, &env, Duration::from_secs(300));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), expected(400));
    let mut cmd = Command::new(&bin);
    let o = cmd
        .arg("run")
        .args(["--schedulers", "1", PROGRAM])
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .env("CARAVAN_PARK_AFTER_MS", "20")
        .output()
        .expect("start caravan");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), expected(400));
}
