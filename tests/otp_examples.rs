//! The OTP examples: `examples/bank.cvn` (a supervised bank whose accounts
//! crash at random while transfers go on: the totals must balance) and
//! `examples/supervision_tree.cvn` (the three strategies), against their
//! golden outputs in `tests/golden/`, with 1, 2 and 4 schedulers.

#[path = "otp/harness.rs"]
mod harness;

use std::path::Path;
use std::time::Duration;

fn golden(name: &str, args: &[&str]) {
    let expected = std::fs::read_to_string(
        harness::root()
            .join("tests/golden")
            .join(format!("{name}.out")),
    )
    .expect("golden file");
    let file = format!("examples/{name}.cvn");
    for s in [1, 2, 4] {
        harness::check(
            Path::new(&file),
            s,
            args,
            &expected,
            Duration::from_secs(60),
        );
    }
}

#[test]
fn bank_balances_under_chaos() {
    golden("bank", &[]);
}

#[test]
fn supervision_tree() {
    golden("supervision_tree", &[]);
}
