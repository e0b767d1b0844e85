//! `caravan fmt` end to end: the differential corpus still prints OCaml's
//! output once formatted (the formatter changes layout, never meaning),
//! and the command line — rewriting in place, `--check`, standard input,
//! files that do not parse.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn caravan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_caravan"))
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("caravan-fmt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

fn fmt_stdin(args: &[&str], input: &str) -> Output {
    let mut child = caravan()
        .arg("fmt")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start caravan fmt");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("caravan fmt output")
}

#[test]
fn formatted_differential_programs_print_the_same() {
    let dir = scratch("differential");
    let mut programs: Vec<PathBuf> = std::fs::read_dir(root().join("tests/differential"))
        .expect("tests/differential")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "cvn"))
        .collect();
    programs.sort();
    assert!(programs.len() > 100, "{} programs", programs.len());
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(vec![]);
    let changed = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(program) = programs.get(i) else {
                    break;
                };
                let name = program.file_name().expect("a file name");
                let src = std::fs::read_to_string(program).expect("readable");
                let out = caravan_compiler::format::format_source(&src).expect("parses");
                if out != src {
                    changed.fetch_add(1, Ordering::SeqCst);
                }
                let copy = dir.join(name);
                std::fs::write(&copy, &out).expect("write the formatted copy");
                let expected = std::fs::read_to_string(program.with_extension("out"))
                    .expect("the expected output");
                let run = caravan()
                    .arg("run")
                    .arg(&copy)
                    .stdin(Stdio::null())
                    .output()
                    .expect("run caravan");
                let stdout = String::from_utf8_lossy(&run.stdout);
                if !run.status.success() || stdout != expected {
                    failures.lock().unwrap().push(format!(
                        "{}: status {:?}, output differs: {}",
                        name.to_string_lossy(),
                        run.status.code(),
                        String::from_utf8_lossy(&run.stderr)
                    ));
                }
            });
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The corpus is not written in the canonical layout: formatting must
    // have had something to do.
    assert!(changed.load(Ordering::SeqCst) > 0);
}

#[test]
fn rewrites_in_place_and_check_names_what_it_would_change() {
    let dir = scratch("check");
    let messy = "let f x=x+1\n";
    let tidy = "let f x = x + 1\n";
    std::fs::create_dir_all(dir.join("sub/.hidden")).unwrap();
    std::fs::write(dir.join("a.cvn"), tidy).unwrap();
    std::fs::write(dir.join("sub/b.cvn"), messy).unwrap();
    std::fs::write(dir.join("sub/.hidden/c.cvn"), messy).unwrap();
    std::fs::write(dir.join("sub/notes.txt"), messy).unwrap();

    // --check: names the file it would change, exits 1, changes nothing.
    let out = caravan()
        .args(["fmt", "--check"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let named = String::from_utf8_lossy(&out.stdout);
    assert_eq!(named.trim(), dir.join("sub/b.cvn").display().to_string());
    assert_eq!(
        std::fs::read_to_string(dir.join("sub/b.cvn")).unwrap(),
        messy
    );

    // Without --check: rewritten in place; hidden directories are skipped.
    let out = caravan().arg("fmt").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join("sub/b.cvn")).unwrap(),
        tidy
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("sub/.hidden/c.cvn")).unwrap(),
        messy
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("sub/notes.txt")).unwrap(),
        messy
    );

    // Now everything is formatted: --check passes silently; with no PATH
    // it works on the current directory.
    let out = caravan()
        .args(["fmt", "--check"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_that_does_not_parse_is_reported_and_left_alone() {
    let dir = scratch("broken");
    let broken = "let x = = 1\n";
    std::fs::write(dir.join("broken.cvn"), broken).unwrap();
    std::fs::write(dir.join("fine.cvn"), "let y=2\n").unwrap();
    let out = caravan()
        .arg("fmt")
        .arg(&dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("E0002") && err.contains("broken.cvn"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("broken.cvn")).unwrap(),
        broken
    );
    // The other files are formatted all the same.
    assert_eq!(
        std::fs::read_to_string(dir.join("fine.cvn")).unwrap(),
        "let y = 2\n"
    );
    let out = caravan()
        .arg("fmt")
        .arg(dir.join("missing.cvn"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn standard_input_to_standard_output() {
    let out = fmt_stdin(&["-"], "let   x =  [1;2]  (* two *)\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "let x = [1; 2] (* two *)\n"
    );
    let out = fmt_stdin(&["--stdin", "--check"], "let x = 1\n");
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    let out = fmt_stdin(&["--stdin", "--check"], "let x=1\n");
    assert_eq!(out.status.code(), Some(1));
    let out = fmt_stdin(&["--stdin"], "let x = (\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("<stdin>"));
}

/// The repository's own sources are kept formatted (CI runs
/// `caravan fmt --check` on the same directories).
#[test]
fn the_repository_sources_are_formatted() {
    let out = caravan()
        .args(["fmt", "--check", "examples", "bench/cvn", "stdlib/src/cvn"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "run `caravan fmt examples bench/cvn stdlib/src/cvn`:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
