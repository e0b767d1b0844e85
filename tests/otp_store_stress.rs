//! Store stress (`tests/otp/store_stress.cvn`): 32 writers update 64 keys
//! of one table with `Store.update` while readers check that values only
//! grow — no update may be lost — then read throughput with 1, 2, 4 and 8
//! reader processes (printed; run with `--nocapture` to see the figures).
//! `CARAVAN_STORE_UPDATES` and `CARAVAN_STORE_READS` size it.

#[path = "otp/harness.rs"]
mod harness;

use std::path::Path;
use std::time::Duration;

#[test]
fn no_lost_update_and_read_throughput() {
    let updates = std::env::var("CARAVAN_STORE_UPDATES").unwrap_or_else(|_| "2000".into());
    let reads = std::env::var("CARAVAN_STORE_READS").unwrap_or_else(|_| "100000".into());
    let n: u64 = updates.parse().expect("CARAVAN_STORE_UPDATES");
    let expected = format!(
        "updates: {}, in the table: {}\nno lost update: true\nkeys: 64\ndone\n",
        32 * n,
        32 * n
    );
    for s in [1, 2, 4] {
        let out = harness::check(
            Path::new("tests/otp/store_stress.cvn"),
            s,
            &[&updates, &reads],
            &expected,
            Duration::from_secs(300),
        );
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            eprintln!("--schedulers {s}: {line}");
        }
    }
}
