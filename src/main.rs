//! `caravan`: the command-line interface (run, check, repl, lsp).

mod repl;

use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Caravan: a statically typed, OCaml-flavoured actor language.
#[derive(Parser)]
#[command(name = "caravan", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Compile a program with Cranelift and run it.
    Run {
        /// Scheduler threads (default: the number of cores).
        #[arg(long, value_name = "N")]
        schedulers: Option<usize>,
        /// The program's main file (`.cvn`).
        file: PathBuf,
        /// Arguments for the program (`Sys.args ()`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Parse and type-check a program; exit status 1 on any error.
    Check {
        /// The program's main file (`.cvn`).
        file: PathBuf,
    },
    /// Start the language server on standard input and output.
    Lsp,
    /// The interactive toplevel (also `caravan` with no arguments).
    Repl {
        /// Scheduler threads (default: the number of cores).
        #[arg(long, value_name = "N")]
        schedulers: Option<usize>,
    },
}

fn read_source(file: &PathBuf) -> Result<String, ExitCode> {
    std::fs::read_to_string(file).map_err(|e| {
        eprintln!("error: cannot read {}: {e}", file.display());
        ExitCode::from(2)
    })
}

fn report(
    sources: &caravan_compiler::diagnostic::SourceMap,
    diags: &[caravan_compiler::diagnostic::Diagnostic],
) {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    eprint!(
        "{}",
        caravan_compiler::diagnostic::render_all(diags, sources, color)
    );
}

fn check(file: PathBuf) -> ExitCode {
    let text = match read_source(&file) {
        Ok(t) => t,
        Err(c) => return c,
    };
    let path = file.display().to_string();
    // The compiler grows its stack where it recurses (`stack::deep`), so
    // deep input needs no big thread here.
    match caravan_compiler::driver::check_source(&path, &text) {
        Ok(_) => ExitCode::SUCCESS,
        Err((sources, diags)) => {
            report(&sources, &diags);
            ExitCode::from(1)
        }
    }
}

fn run(file: PathBuf, schedulers: Option<usize>, args: Vec<String>) -> ExitCode {
    let t0 = std::time::Instant::now();
    let timings = std::env::var_os("CARAVAN_TIMINGS").is_some();
    let text = match read_source(&file) {
        Ok(t) => t,
        Err(c) => return c,
    };
    let path = file.display().to_string();
    // CARAVAN_GC_TORTURE=1: every allocation goes to the runtime and
    // collects (a test mode for the collector's roots).
    let torture = std::env::var_os("CARAVAN_GC_TORTURE").is_some_and(|v| v != "0");
    caravan_vm::gc::set_torture(torture);
    let opts = caravan_compiler::codegen::Options {
        no_reductions: std::env::var_os("CARAVAN_NO_REDUCTIONS").is_some(),
        gc_torture: torture,
    };
    let compiled = match caravan_compiler::driver::compile_source(&path, &text, opts) {
        Ok(c) => c,
        Err((sources, diags)) => {
            report(&sources, &diags);
            return ExitCode::from(1);
        }
    };
    if timings {
        eprintln!(
            "caravan: compiled {} functions in {:.2} ms",
            compiled.functions_compiled,
            t0.elapsed().as_secs_f64() * 1000.0
        );
    }
    caravan_stdlib::builtins::set_args(args);
    let config = caravan_vm::VmConfig {
        schedulers: schedulers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1),
        ..Default::default()
    };
    let status = caravan_vm::run(config, compiled.entry, compiled.main_closure);
    if timings {
        eprintln!(
            "caravan: ran in {:.2} ms (total)",
            t0.elapsed().as_secs_f64() * 1000.0
        );
    }
    // The process ends here: no need to free the compiled program.
    std::mem::forget(compiled);
    ExitCode::from(status.clamp(0, 255) as u8)
}

fn default_schedulers(n: Option<usize>) -> usize {
    n.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check { file }) => check(file),
        Some(Command::Lsp) => {
            caravan_lsp::run_stdio();
            ExitCode::SUCCESS
        }
        Some(Command::Run {
            schedulers,
            file,
            args,
        }) => run(file, schedulers, args),
        Some(Command::Repl { schedulers }) => {
            ExitCode::from(repl::run(default_schedulers(schedulers)).clamp(0, 255) as u8)
        }
        None => ExitCode::from(repl::run(default_schedulers(None)).clamp(0, 255) as u8),
    }
}
