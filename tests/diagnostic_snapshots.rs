//! Snapshot suite of rendered diagnostics: every `tests/diagnostics/*.cvn`
//! (except `pending_*.cvn`, known-bad diagnostics awaiting a compiler fix)
//! is checked with `caravan check`, must fail with exit status 1, and its
//! stderr is compared with `tests/snapshots/diagnostic_snapshots__<name>.snap`.

use std::path::Path;
use std::process::Command;

/// The `.cvn` files of the suite, sorted, as paths relative to the crate root.
fn cases() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diagnostics");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("read tests/diagnostics")
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".cvn") && !n.starts_with("pending_"))
        .collect();
    names.sort();
    names
}

#[test]
fn diagnostics() {
    let cases = cases();
    assert!(cases.len() >= 45, "only {} diagnostic cases", cases.len());
    for file in cases {
        let name = file.trim_end_matches(".cvn");
        let path = format!("tests/diagnostics/{file}");
        let out = Command::new(env!("CARGO_BIN_EXE_caravan"))
            .args(["check", &path])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("NO_COLOR", "1")
            .output()
            .expect("run caravan");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{path}: exit status\n{stderr}");
        assert!(out.stdout.is_empty(), "{path}: unexpected stdout");
        insta::assert_snapshot!(name, stderr);
    }
}
