//! Snapshot tests of rendered diagnostics: `caravan check` and `caravan
//! run` on ill-typed programs print an ariadne report (no colour when
//! piped) and exit with status 1.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn caravan(args: &[&str]) -> (String, Option<i32>) {
    let out = Command::new(env!("CARGO_BIN_EXE_caravan"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("run caravan");
    assert!(out.stdout.is_empty());
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

#[test]
fn send_of_the_wrong_message_type() {
    let (err, code) = caravan(&["check", "tests/check/send_wrong_type.cvn"]);
    assert_eq!(code, Some(1));
    insta::assert_snapshot!(err);
    let (err_run, code) = caravan(&["run", "tests/check/send_wrong_type.cvn"]);
    assert_eq!(code, Some(1));
    assert_eq!(err_run, err);
}

#[test]
fn modules_in_a_cycle() {
    let (err, code) = caravan(&["check", "tests/check/cycle/main.cvn"]);
    assert_eq!(code, Some(1));
    insta::assert_snapshot!(err);
}
