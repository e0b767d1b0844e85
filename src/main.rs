//! `caravan`: the command-line interface (run, check, repl, lsp).

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
}

fn read_source(file: &PathBuf) -> Result<String, ExitCode> {
    std::fs::read_to_string(file).map_err(|e| {
        eprintln!("error: cannot read {}: {e}", file.display());
        ExitCode::from(2)
    })
}

/// Runs the front end on a thread with a large stack: the checker recurses
/// on the syntax tree, and deeply nested input must give a result, not a
/// crash of `caravan` itself.
fn with_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(1 << 30)
        .spawn(f)
        .expect("spawn compiler thread")
        .join()
        .unwrap_or_else(|_| std::process::exit(70))
}

fn report(
    sources: &caravan_compiler::diagnostic::SourceMap,
    diags: &[caravan_compiler::diagnostic::Diagnostic],
) {
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    for d in diags {
        eprint!("{}", d.render(sources, color));
    }
}

fn check(file: PathBuf) -> ExitCode {
    let text = match read_source(&file) {
        Ok(t) => t,
        Err(c) => return c,
    };
    let path = file.display().to_string();
    with_big_stack(
        move || match caravan_compiler::driver::check_source(&path, &text) {
            Ok(_) => ExitCode::SUCCESS,
            Err((sources, diags)) => {
                report(&sources, &diags);
                ExitCode::from(1)
            }
        },
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check { file }) => check(file),
        Some(Command::Run { file, .. }) => {
            eprintln!(
                "error: `caravan run {}`: code generation is not built yet",
                file.display()
            );
            ExitCode::from(2)
        }
        None => {
            eprintln!("usage: caravan <run|check> FILE (see --help)");
            ExitCode::from(2)
        }
    }
}
