//! The chaos test (`tests/otp/chaos.cvn`): under load, a random worker of
//! a two-level supervision tree is killed every few milliseconds; every
//! call that was acknowledged must be in the final state and the VM must
//! stay up. Runs 3 s per scheduler count by default; set
//! `CARAVAN_CHAOS_MS` for a longer soak (the bank example runs as a soak
//! too, for the same time).

#[path = "otp/harness.rs"]
mod harness;

use std::path::Path;
use std::time::Duration;

fn duration_ms() -> u64 {
    std::env::var("CARAVAN_CHAOS_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000)
}

#[test]
fn acknowledged_calls_survive_random_kills() {
    let ms = duration_ms();
    let expected = "clients finished: true\nworkers were killed: true\n\
                    every acknowledged call is in the final state: true\nthe VM is still up\n";
    let limit = Duration::from_millis(ms * 3 + 60_000);
    for s in [2, 4] {
        let out = harness::check(
            Path::new("tests/otp/chaos.cvn"),
            s,
            &[&ms.to_string()],
            expected,
            limit,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        for line in stderr.lines().filter(|l| l.starts_with("chaos:")) {
            eprintln!("--schedulers {s}: {line}");
        }
    }
}

#[test]
fn bank_soak() {
    let ms = duration_ms();
    if std::env::var("CARAVAN_CHAOS_MS").is_err() {
        // The example's own test covers the short run.
        return;
    }
    let expected = std::fs::read_to_string(harness::root().join("tests/golden/bank.out"))
        .expect("golden file");
    let limit = Duration::from_millis(ms * 3 + 60_000);
    harness::check(
        Path::new("examples/bank.cvn"),
        4,
        &[&ms.to_string()],
        &expected,
        limit,
    );
}
