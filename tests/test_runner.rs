//! `caravan test` end to end (LANGUAGE.md §8): the real binary on test
//! files, its report (snapshots with insta), its exit status; the
//! repository's own example tests; and `caravan new`, whose project must
//! run and pass its tests at once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn caravan(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_caravan"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run caravan")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The report after the per-test lines (which come in the order the tests
/// end): the failures in file order and the closing count.
fn report(o: &Output) -> String {
    let out = stdout(o);
    match out.find("\nfailures:\n") {
        Some(i) => out[i + 1..].to_string(),
        None => out.lines().last().unwrap_or("").to_string(),
    }
}

#[test]
fn failures_name_the_test_its_reason_location_and_values() {
    let o = caravan(
        &root(),
        &[
            "test",
            "--seed",
            "1",
            // Long enough for the busiest test on a loaded machine.
            "--timeout",
            "3000",
            "tests/test_runner/failing",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    // One line per test, whatever order they end in.
    for (status, name) in [
        ("ok    ", "passes_test"),
        ("ok    ", "crash_expected_test"),
        ("ok    ", "holds_test"),
        ("FAILED", "values_differ_test"),
        ("FAILED", "times_out_test"),
        ("FAILED", "shrinks_test"),
    ] {
        let line = format!("{status} tests/test_runner/failing/shapes_test.cvn: {name}\n");
        assert!(out.contains(&line), "no line {line:?} in:\n{out}");
    }
    // The module under test is loaded without its main code.
    assert!(!out.contains("main code ran"), "{out}");
    // The expected crashes (Assert.crashes, properties) print no crash
    // line; a linked process's crash does, as in any program.
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("process <0."), "{err}");
    assert!(
        err.ends_with(" crashed: linked at tests/test_runner/failing/shapes_test.cvn:19:32\n"),
        "{err}"
    );
    assert!(out.ends_with("\n3 passed, 9 failed\n"), "{out}");
    insta::assert_snapshot!("failing_report", report(&o));
}

#[test]
fn a_seed_replays_the_same_counterexamples() {
    let run = || {
        let o = caravan(
            &root(),
            &[
                "test",
                "--seed",
                "42",
                "--filter",
                "shrinks",
                "tests/test_runner/failing",
            ],
        );
        assert_eq!(o.status.code(), Some(1));
        report(&o)
    };
    let first = run();
    assert!(first.contains("seed 42 (caravan test --seed 42 replays it)"));
    assert!(first.contains("\n      [0; 100; 0]\n"), "{first}");
    assert_eq!(first, run());
}

#[test]
fn without_a_seed_a_failure_prints_the_one_drawn() {
    let o = caravan(
        &root(),
        &[
            "test",
            "--filter",
            "property_crashes",
            "tests/test_runner/failing",
        ],
    );
    let out = stdout(&o);
    let seed: String = out
        .split("seed ")
        .nth(1)
        .expect("a seed")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let again = caravan(
        &root(),
        &[
            "test",
            "--seed",
            &seed,
            "--filter",
            "property_crashes",
            "tests/test_runner/failing",
        ],
    );
    assert_eq!(report(&o), report(&again));
}

#[test]
fn filter_runs_only_matching_tests() {
    let o = caravan(
        &root(),
        &["test", "--filter", "passes", "tests/test_runner/failing"],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "ok     tests/test_runner/failing/shapes_test.cvn: passes_test\n\n1 passed, 0 failed\n"
    );
}

#[test]
fn a_test_that_is_not_unit_to_unit_is_an_error() {
    let o = caravan(&root(), &["test", "tests/test_runner/bad_type"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("[E0140] Error: `sum_test` is named like a test but has type `int -> unit`"),
        "{err}"
    );
    assert!(
        err.contains("`data_test` is named like a test but has type `int list`"),
        "{err}"
    );
    assert!(stdout(&o).is_empty());
}

#[test]
fn a_test_that_exits_the_program_fails_the_run() {
    let o = caravan(&root(), &["test", "tests/test_runner/exits"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("the test run ended before its report"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn no_tests_is_zero_and_zero() {
    let o = caravan(&root(), &["test", "tests/programs"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).ends_with("0 passed, 0 failed\n"));
    let missing = caravan(&root(), &["test", "tests/test_runner/missing"]);
    assert_eq!(missing.status.code(), Some(2));
}

/// The repository's examples have tests (examples/test/): they pass.
#[test]
fn the_examples_tests_pass() {
    let o = caravan(&root(), &["test", "examples"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let last = stdout(&o).lines().last().unwrap_or("").to_string();
    let passed: usize = last
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("N passed");
    assert!(passed >= 9, "{last}");
    assert!(last.ends_with(" passed, 0 failed"));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn the_examples_tests_pass_under_schedules() {
    let o = caravan(&root(), &["test", "--schedules", "10", "examples"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(
        out.lines()
            .filter(|l| l.ends_with("(10 schedules)"))
            .count()
            >= 9,
        "{out}"
    );
    assert!(out.ends_with(" passed, 0 failed\n"), "{out}");
}

#[test]
fn a_new_project_runs_and_passes_its_tests() {
    let dir = std::env::temp_dir().join(format!("caravan-new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let o = caravan(&dir, &["new", "hello"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let project = dir.join("hello");
    for f in [
        "main.cvn",
        "greeting.cvn",
        "test/greeting_test.cvn",
        "README.md",
    ] {
        assert!(project.join(f).is_file(), "{f} missing");
    }
    let run = caravan(&project, &["run", "main.cvn"]);
    assert_eq!(stdout(&run), "Hello, world!\n");
    let test = caravan(&project, &["test"]);
    assert_eq!(test.status.code(), Some(0), "{}", stdout(&test));
    assert!(stdout(&test).ends_with("\n2 passed, 0 failed\n"));
    // The project is formatted as caravan fmt would.
    let fmt = caravan(&project, &["fmt", "--check"]);
    assert!(fmt.status.success(), "{}", stdout(&fmt));
    // A second `new` of the same name changes nothing.
    let again = caravan(&dir, &["new", "hello"]);
    assert_eq!(again.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn everything_after_the_file_is_the_programs() {
    let dir = std::env::temp_dir().join(format!("caravan-args-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("args.cvn");
    std::fs::write(&file, "let () = List.iter print_endline (Sys.args ())\n").unwrap();
    let f = file.to_str().unwrap();
    let o = caravan(&dir, &["run", f, "--help", "--", "x", "-v"]);
    assert_eq!(stdout(&o), "--help\n--\nx\n-v\n", "{}", stderr(&o));
    let o = caravan(&dir, &["run", "--schedulers", "2", f, "--schedulers", "3"]);
    assert_eq!(stdout(&o), "--schedulers\n3\n");
    let o = caravan(&dir, &["run", "--", f, "a"]);
    assert_eq!(stdout(&o), "a\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn schedulers_out_of_range_are_an_error() {
    for n in ["0", "1025", "14600"] {
        let o = caravan(&root(), &["run", "--schedulers", n, "examples/hello.cvn"]);
        assert_eq!(o.status.code(), Some(2), "--schedulers {n}");
        assert!(stderr(&o).contains("--schedulers"), "{}", stderr(&o));
        assert!(stdout(&o).is_empty());
    }
    let o = caravan(
        &root(),
        &["run", "--schedulers", "1024", "examples/hello.cvn"],
    );
    assert_eq!(stdout(&o), "Hello, world!\n");
}

/// The seed a `--schedules` failure names (`schedule seed S: replay ...`).
fn schedule_seed(out: &str) -> String {
    out.split("schedule seed ")
        .nth(1)
        .unwrap_or_else(|| panic!("no schedule seed in:\n{out}"))
        .chars()
        .take_while(char::is_ascii_digit)
        .collect()
}

#[test]
fn schedules_find_a_lost_update_and_its_seed_replays_it() {
    // Two processes doing Store.get then Store.put: plain runs almost
    // never interleave them; 1,000 deterministic schedules must.
    let o = caravan(
        &root(),
        &["test", "--schedules", "1000", "tests/test_runner/race"],
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    assert!(
        out.contains("FAILED tests/test_runner/race/counter_test.cvn: lost_update_test (schedule "),
        "{out}"
    );
    assert!(out.contains("expected: Some 2"), "{out}");
    assert!(out.ends_with("0 passed, 1 failed\n"), "{out}");
    let seed = schedule_seed(&out);
    // A drawn schedule seed replays with `--seed` alone (LANGUAGE.md §8).
    assert!(out.contains(&format!(
        "replay it with caravan test --seed {seed} --filter lost_update_test"
    )));
    let alone = caravan(
        &root(),
        &["test", "--seed", &seed, "tests/test_runner/race"],
    );
    assert_eq!(alone.status.code(), Some(1), "{}", stdout(&alone));
    assert_eq!(report(&alone), report(&o));
    // The seed replays that interleaving: the first schedule fails, with
    // the same report, every time.
    let replay = || {
        let r = caravan(
            &root(),
            &[
                "test",
                "--schedules",
                "1",
                "--seed",
                &seed,
                "tests/test_runner/race",
            ],
        );
        assert_eq!(r.status.code(), Some(1), "{}", stdout(&r));
        assert!(
            stdout(&r).contains("(schedule 1 of 1, seed "),
            "{}",
            stdout(&r)
        );
        report(&r)
    };
    let first = replay();
    assert_eq!(first, report(&o));
    for _ in 0..3 {
        assert_eq!(replay(), first);
    }
}

#[test]
fn a_correct_program_passes_every_schedule_on_virtual_time() {
    // virtual_time_test sleeps and waits 3.5 s in all: on real time 200
    // schedules would take minutes (and the default 5 s timeout would not
    // be the limit either).
    let t0 = std::time::Instant::now();
    let o = caravan(
        &root(),
        &[
            "test",
            "--schedules",
            "200",
            "tests/test_runner/schedules_ok",
        ],
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    for name in [
        "atomic_update_test",
        "messages_in_order_test",
        "virtual_time_test",
    ] {
        assert!(
            out.contains(&format!(
                "ok     tests/test_runner/schedules_ok/counter_test.cvn: {name} (200 schedules)"
            )),
            "{out}"
        );
    }
    assert!(out.ends_with("3 passed, 0 failed\n"), "{out}");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        t0.elapsed()
    );
}
