//! `caravan`: the command-line interface (run, check, fmt, repl, lsp).

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
        /// Heap limit of every process, in megabytes (Erlang's
        /// max_heap_size): past it a process crashes with `Crashed "heap
        /// limit"`, the others go on. Default: none.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        max_heap_mb: Option<u64>,
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
    /// Format `.cvn` files in place in the one canonical layout.
    Fmt {
        /// Change nothing: name the files that formatting would change and
        /// exit with status 1 if there are any.
        #[arg(long)]
        check: bool,
        /// Read a source from standard input and write it formatted to
        /// standard output (as does the path `-`).
        #[arg(long)]
        stdin: bool,
        /// Files, or directories searched recursively for `*.cvn`
        /// (default: the current directory).
        paths: Vec<PathBuf>,
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

/// The `.cvn` files under `dir`, skipping hidden directories and `target`.
fn cvn_files(dir: &std::path::Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                cvn_files(&path, out)?;
            }
        } else if path.extension().is_some_and(|e| e == "cvn") {
            out.push(path);
        }
    }
    Ok(())
}

/// Formats one source: the formatted text, or the syntax error reported.
fn format_one(path: &str, text: &str) -> Option<String> {
    match caravan_compiler::format::format_source(text) {
        Ok(out) => Some(out),
        Err(failure) => {
            let mut sources = caravan_compiler::diagnostic::SourceMap::default();
            sources.add(path, text);
            report(&sources, &[failure.diagnostic]);
            None
        }
    }
}

/// `caravan fmt`: exit status 1 if a file does not parse (it is left as
/// it is) or, with `--check`, if a file is not formatted; 2 if a file
/// cannot be read or written.
fn fmt(check: bool, stdin: bool, paths: Vec<PathBuf>) -> ExitCode {
    if stdin || paths.iter().any(|p| p.as_os_str() == "-") {
        let mut text = String::new();
        if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
            eprintln!("error: cannot read standard input: {e}");
            return ExitCode::from(2);
        }
        return match format_one("<stdin>", &text) {
            None => ExitCode::from(1),
            Some(out) if check => ExitCode::from(u8::from(out != text)),
            Some(out) => {
                print!("{out}");
                ExitCode::SUCCESS
            }
        };
    }
    let paths = if paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        paths
    };
    let mut files = vec![];
    for p in &paths {
        let found = if p.is_dir() {
            cvn_files(p, &mut files)
        } else if p.exists() {
            files.push(p.clone());
            Ok(())
        } else {
            Err(std::io::Error::from(std::io::ErrorKind::NotFound))
        };
        if let Err(e) = found {
            eprintln!("error: cannot read {}: {e}", p.display());
            return ExitCode::from(2);
        }
    }
    files.sort();
    {
        let mut status = 0u8;
        for file in files {
            let text = match read_source(&file) {
                Ok(t) => t,
                Err(_) => return ExitCode::from(2),
            };
            let path = file.display().to_string();
            let Some(out) = format_one(&path, &text) else {
                status = status.max(1);
                continue;
            };
            if out == text {
                continue;
            }
            if check {
                println!("{path}");
                status = status.max(1);
            } else if let Err(e) = std::fs::write(&file, out) {
                eprintln!("error: cannot write {path}: {e}");
                return ExitCode::from(2);
            }
        }
        ExitCode::from(status)
    }
}

fn run(
    file: PathBuf,
    schedulers: Option<usize>,
    max_heap_mb: Option<u64>,
    args: Vec<String>,
) -> ExitCode {
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
        max_heap_words: max_heap_mb.map_or(0, |mb| {
            (mb as usize).saturating_mul((1 << 20) / caravan_vm::value::WORD)
        }),
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
        Some(Command::Fmt {
            check,
            stdin,
            paths,
        }) => fmt(check, stdin, paths),
        Some(Command::Lsp) => {
            caravan_lsp::run_stdio();
            ExitCode::SUCCESS
        }
        Some(Command::Run {
            schedulers,
            max_heap_mb,
            file,
            args,
        }) => run(file, schedulers, max_heap_mb, args),
        Some(Command::Repl { schedulers }) => {
            ExitCode::from(repl::run(default_schedulers(schedulers)).clamp(0, 255) as u8)
        }
        None => ExitCode::from(repl::run(default_schedulers(None)).clamp(0, 255) as u8),
    }
}
