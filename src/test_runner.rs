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
//! Running goes through one function, [`execute`], given the compiled
//! program and the [`TestOptions`]: a deterministic mode (`--schedules N`,
//! one thread with seeded choices of which process runs) replaces it
//! without touching discovery, checking or reporting.

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
        .map(|t| t.checked)
        .and_then(|c| match c {
            None => Ok(None),
            Some(c) => caravan_compiler::driver::compile_checked(c, Default::default()).map(Some),
        });
    let compiled = match checked {
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
    let status = execute(&compiled, &opts);
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
