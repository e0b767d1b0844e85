//! `caravan test [PATH...]`: the test runner (LANGUAGE.md §8).
//!
//! Finds the files named `*_test.cvn` under the paths, checks them with the
//! modules they test ([`caravan_compiler::driver::check_tests`]), compiles
//! one program whose main file hands every test to the harness written in
//! Caravan (`stdlib/src/cvn/test_harness.cvn`), and runs it on the VM: each
//! test in a process of its own, in parallel on all schedulers. The
//! harness prints a line per test, the failures (name, exit reason,
//! location, `Assert.equal`'s values) and `N passed, N failed`; the exit
//! status is 1 when any failed.
//!
//! Running goes through [`execute`], given the compiled program and the
//! [`TestOptions`]. With `--schedules N` it goes through [`explore`]
//! instead: each test alone, N times, each time on a deterministic
//! scheduler (`caravan_vm::VmConfig::schedule_seed`: one thread, seeded
//! choices of which process runs and where it is preempted, virtual time)
//! with the seeds S, S+1, …; the first failing schedule of a test is
//! reported with its seed, and `--seed S` replays it exactly.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What `caravan test` was asked to do.
#[derive(Debug, Clone)]
pub struct TestOptions {
    /// Files or directories searched recursively for `*_test.cvn`.
    pub paths: Vec<PathBuf>,
    /// Run only the tests whose name contains this.
    pub filter: Option<String>,
    /// A test running longer fails (milliseconds).
    pub timeout_ms: u64,
    /// The seed of `Check`'s random cases (`None`: drawn, and printed on a
    /// failure).
    pub seed: Option<u64>,
    /// Scheduler threads.
    pub schedulers: usize,
    /// Tests running at once, at most.
    pub jobs: usize,
    /// Deterministic schedules to run each test under (`--schedules N`).
    pub schedules: Option<u64>,
}

/// The files named `*_test.cvn` under `path` (itself, if it is a file),
/// skipping hidden directories and `target`, sorted.
fn test_files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            if !name.starts_with('.') && name != "target" {
                test_files(&p, out)?;
            }
        } else if name.ends_with("_test.cvn") {
            out.push(p.strip_prefix("./").map_or(p.clone(), Path::to_path_buf));
        }
    }
    Ok(())
}

/// `caravan test`: exit status 0 when every test passed, 1 when one failed
/// or a file has errors, 2 when a path cannot be read.
pub fn run(opts: TestOptions) -> ExitCode {
    let paths = if opts.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        opts.paths.clone()
    };
    let mut files = vec![];
    for p in &paths {
        if let Err(e) = test_files(p, &mut files) {
            eprintln!("error: cannot read {}: {e}", p.display());
            return ExitCode::from(2);
        }
    }
    files.dedup();
    let harness = caravan_compiler::driver::HarnessOptions {
        timeout_ms: opts.timeout_ms,
        jobs: opts.jobs,
    };
    let filter = opts.filter.clone();
    // The compiler grows its own stack on deep input (`stack::deep`).
    let checked = caravan_compiler::driver::check_tests(&files, filter.as_deref(), harness)
        .and_then(|t| match t.checked {
            None => Ok(None),
            Some(c) => caravan_compiler::driver::compile_checked(c, Default::default())
                .map(|c| Some((c, t.tests))),
        });
    let (compiled, tests) = match checked {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("no tests found (functions named *_test in files named *_test.cvn)");
            println!("0 passed, 0 failed");
            return ExitCode::SUCCESS;
        }
        Err((sources, diags)) => {
            crate::report(&sources, &diags);
            return ExitCode::from(1);
        }
    };
    let schedules = match (opts.schedules, opts.seed) {
        (None, Some(s)) if s >= SCHEDULE_SEEDS => Some(1),
        (n, _) => n,
    };
    let status = match schedules {
        Some(n) => explore(&compiled, &tests, &opts, n),
        None => execute(&compiled, &opts),
    };
    // As `caravan run`: the compiled program is not dropped on this small
    // stack.
    std::mem::forget(compiled);
    ExitCode::from(status.clamp(0, 255) as u8)
}

/// Runs the compiled test program: the harness prints the report and
/// exits 0 or 1. A test that ends the whole program (`exit n`) stops the
/// run before the report: that is a failure too.
pub fn execute(compiled: &caravan_compiler::codegen::Compiled, opts: &TestOptions) -> i32 {
    caravan_vm::observe_crashes(caravan_stdlib::testing::crash_observer);
    if let Some(s) = opts.seed {
        caravan_stdlib::testing::set_seed(s);
    }
    caravan_stdlib::builtins::set_args(vec![]);
    let config = caravan_vm::VmConfig {
        schedulers: opts.schedulers,
        ..Default::default()
    };
    let status = caravan_vm::run(config, compiled.entry, compiled.main_closure);
    if !caravan_stdlib::testing::finished() {
        eprintln!(
            "error: the test run ended before its report (a test called `exit {status}`, or the harness crashed)"
        );
        return status.max(1);
    }
    status
}

/// Seeds from here up name a deterministic schedule: `caravan test --seed
/// S` with such an S (and no `--schedules`) replays that one interleaving,
/// as a `--schedules` failure's report says. Seeds drawn for `Check` are
/// below it (`0..10^9`), so their replays run as before.
pub const SCHEDULE_SEEDS: u64 = 1_000_000_000;

/// `--schedules n`: runs each test alone under `n` deterministic
/// schedules, seeds `S`, `S+1`, … (`S` = `--seed`, else drawn), and stops
/// exploring a test at its first failing schedule. The harness hands the
/// outcome of the one test it ran back (`testing::take_outcome`); this
/// prints a line per test, the failures with their seeds, and `N passed,
/// N failed`. Returns the exit status (1 when any failed).
pub fn explore(
    compiled: &caravan_compiler::codegen::Compiled,
    tests: &[caravan_compiler::driver::TestCase],
    opts: &TestOptions,
    n: u64,
) -> i32 {
    use caravan_stdlib::testing;
    caravan_vm::observe_crashes(testing::crash_observer);
    caravan_stdlib::builtins::set_args(vec![]);
    // Drawn schedule seeds are at least SCHEDULE_SEEDS, so that `--seed S`
    // alone knows S names an interleaving (LANGUAGE.md §8).
    let base = opts
        .seed
        .unwrap_or_else(|| testing::base_seed() + SCHEDULE_SEEDS);
    println!(
        "{n} schedule{} per test, seeds {base}..{}",
        if n == 1 { "" } else { "s" },
        base.saturating_add(n - 1)
    );
    let mut failures = vec![];
    for (i, t) in tests.iter().enumerate() {
        let mut failed = None;
        for k in 0..n {
            let seed = base.wrapping_add(k);
            testing::reset();
            testing::set_seed(seed);
            testing::select(Some(i));
            let config = caravan_vm::VmConfig {
                schedule_seed: Some(seed),
                ..Default::default()
            };
            let status = caravan_vm::run(config, compiled.entry, compiled.main_closure);
            match testing::take_outcome() {
                Some((true, _)) => {}
                Some((false, why)) => failed = Some((k, seed, why)),
                None => {
                    failed = Some((
                        k,
                        seed,
                        format!("  ended the whole run (exit {status}) before its end"),
                    ))
                }
            }
            if failed.is_some() {
                break;
            }
        }
        let label = format!("{}: {}", t.file, t.name);
        match failed {
            None => println!("ok     {label} ({n} schedules)"),
            Some((k, seed, why)) => {
                println!("FAILED {label} (schedule {} of {n}, seed {seed})", k + 1);
                failures.push((label, seed, why, t.name.clone()));
            }
        }
    }
    testing::select(None);
    if !failures.is_empty() {
        println!();
        println!("failures:");
        for (label, seed, why, name) in &failures {
            println!();
            println!("{label}");
            println!("{why}");
            if *seed >= SCHEDULE_SEEDS {
                println!(
                    "  schedule seed {seed}: replay it with caravan test --seed {seed} --filter {name}"
                );
            } else {
                println!(
                    "  schedule seed {seed}: replay it with caravan test --schedules 1 --seed {seed} --filter {name}"
                );
            }
        }
    }
    println!();
    println!(
        "{} passed, {} failed",
        tests.len() - failures.len(),
        failures.len()
    );
    caravan_vm::stdout_flush();
    i32::from(!failures.is_empty())
}
