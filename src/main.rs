//! `caravan`: the command-line interface (run, check, test, fmt, new,
//! repl, lsp).

mod new;
mod prelude_cache;
mod repl;
mod test_runner;

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
        /// Scheduler threads, 1 to 1024 (default: the number of cores; at
        /// most one per core runs at a time, the others stand in for
        /// schedulers blocked in a system call).
        #[arg(long, value_name = "N", value_parser = schedulers_parser())]
        schedulers: Option<u16>,
        /// Heap limit of every process, in megabytes (Erlang's
        /// max_heap_size): past it a process crashes with `Crashed "heap
        /// limit"`, the others go on. Default: none.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        max_heap_mb: Option<u64>,
        /// Stack limit of every process, in megabytes (OCaml 5's `l`):
        /// stacks start small and grow up to it; past it a process
        /// crashes with `Crashed "stack overflow"`. Default: 1024.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
        max_stack_mb: Option<u64>,
        #[command(flatten)]
        dist: DistArgs,
        /// The program's main file (`.cvn`).
        file: PathBuf,
        /// Arguments for the program (`Sys.args ()`): everything after
        /// FILE, as it is (`--help` and `--` included).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the tests: functions named `*_test` (of type `unit -> unit`) in
    /// files named `*_test.cvn`, each in its own process, in parallel.
    Test {
        /// Run only the tests whose name contains TEXT.
        #[arg(long, value_name = "TEXT")]
        filter: Option<String>,
        /// A test running longer than MS milliseconds is stopped and fails.
        #[arg(long, value_name = "MS", default_value_t = 5000)]
        timeout: u64,
        /// Fixes the random cases of `Check.forall` and, with
        /// `--schedules`, the first schedule (a failure prints the seed
        /// that replays it). A schedule's seed as a `--schedules` failure
        /// prints it (10^9 or more) replays that interleaving on its own.
        /// Default: a new seed every run.
        #[arg(long, value_name = "S")]
        seed: Option<u64>,
        /// Scheduler threads, 1 to 1024 (default: the number of cores; at
        /// most one per core runs at a time, the others stand in for
        /// schedulers blocked in a system call).
        #[arg(long, value_name = "N", value_parser = schedulers_parser())]
        schedulers: Option<u16>,
        /// Tests running at once, at most (default: twice the schedulers).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
        jobs: Option<u64>,
        /// Runs each test under N interleavings on a deterministic
        /// scheduler (one thread, seeded choices, virtual time); a failure
        /// prints the seed that replays it with `--seed`.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
        schedules: Option<u64>,
        /// Test files, or directories searched recursively for
        /// `*_test.cvn` (default: the current directory).
        paths: Vec<PathBuf>,
    },
    /// Make a new project: a directory NAME with `main.cvn`, a module, a
    /// test in `test/` and a README, ready for `caravan run` and `caravan
    /// test`.
    New {
        /// The project's directory (created; must not exist). Its last
        /// component names the project.
        name: PathBuf,
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
        /// Scheduler threads, 1 to 1024 (default: the number of cores; at
        /// most one per core runs at a time, the others stand in for
        /// schedulers blocked in a system call).
        #[arg(long, value_name = "N", value_parser = schedulers_parser())]
        schedulers: Option<u16>,
        #[command(flatten)]
        dist: DistArgs,
    },
}

/// Distribution (LANGUAGE.md §7): the program as a node of an Erlang
/// cluster.
#[derive(clap::Args, Debug, Default)]
struct DistArgs {
    /// Run as node NAME@THISHOST (the short host name), as `erl -sname`.
    #[arg(long, value_name = "NAME", conflicts_with = "name")]
    sname: Option<String>,
    /// Run as node NAME@HOST, as `erl -name`.
    #[arg(long, value_name = "NAME@HOST")]
    name: Option<String>,
    /// The cluster's shared secret (default: the `~/.erlang.cookie` file,
    /// created as Erlang creates it when missing).
    #[arg(long, value_name = "COOKIE")]
    cookie: Option<String>,
    /// The address to listen on for other nodes (default: every interface,
    /// as Erlang).
    #[arg(long, value_name = "ADDR")]
    dist_listen: Option<std::net::IpAddr>,
}

impl DistArgs {
    /// Starts the node if asked to; an error message for the user if it
    /// cannot be.
    fn start(&self) -> Result<(), String> {
        let name = match (&self.sname, &self.name) {
            (Some(s), _) => {
                if s.contains('@') {
                    s.clone()
                } else {
                    format!("{s}@{}", short_host_name())
                }
            }
            (None, Some(n)) => {
                if !n.contains('@') {
                    return Err(format!("--name {n}: expected NAME@HOST"));
                }
                n.clone()
            }
            (None, None) => return Ok(()),
        };
        let cookie = match &self.cookie {
            Some(c) => c.clone(),
            None => default_cookie()?,
        };
        let tick_secs = std::env::var("CARAVAN_NET_TICKTIME")
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or(60);
        caravan_vm::dist::start(caravan_vm::dist::DistConfig {
            name,
            cookie,
            listen: self
                .dist_listen
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
            tick_secs,
        })
    }
}

/// This host's name up to the first dot (Erlang's short names).
fn short_host_name() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    h.trim()
        .split('.')
        .next()
        .unwrap_or("localhost")
        .to_string()
}

/// The cookie in `~/.erlang.cookie`; created as Erlang creates it (20
/// random capital letters, readable by the owner only) when missing.
fn default_cookie() -> Result<String, String> {
    let home = std::env::var_os("HOME").ok_or("no HOME for ~/.erlang.cookie: give --cookie")?;
    let path = std::path::Path::new(&home).join(".erlang.cookie");
    if let Ok(c) = std::fs::read_to_string(&path) {
        return Ok(c.trim().to_string());
    }
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ (std::process::id() as u64) << 32;
    let cookie: String = (0..20)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (b'A' + (seed % 26) as u8) as char
        })
        .collect();
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    use std::io::Write;
    f.write_all(cookie.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(cookie)
}

/// The most scheduler threads `--schedulers` accepts: far beyond any
/// machine's cores, far below what a mistyped number would start.
const MAX_SCHEDULERS: i64 = 1024;

fn schedulers_parser() -> clap::builder::RangedI64ValueParser<u16> {
    clap::value_parser!(u16).range(1..=MAX_SCHEDULERS)
}

/// Splits the command line of `caravan run [OPTIONS] FILE ARGS...` after
/// FILE: clap parses what comes before, the program gets the rest as it
/// is (`caravan run p.cvn --help` passes `--help` to the program, as
/// LANGUAGE.md §5 says). Other commands are left whole.
fn split_program_args(argv: Vec<String>) -> (Vec<String>, Option<Vec<String>>) {
    // Options of `run` that take a value as the next argument.
    const WITH_VALUE: &[&str] = &[
        "--schedulers",
        "--max-heap-mb",
        "--max-stack-mb",
        "--sname",
        "--name",
        "--cookie",
        "--dist-listen",
    ];
    let Some(sub) = argv.iter().skip(1).position(|a| !a.starts_with('-')) else {
        return (argv, None);
    };
    let sub = sub + 1;
    if argv[sub] != "run" {
        return (argv, None);
    }
    let mut i = sub + 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        i += if WITH_VALUE.contains(&a) { 2 } else { 1 };
    }
    if i >= argv.len() {
        return (argv, None);
    }
    let mut argv = argv;
    let program = argv.split_off(i + 1);
    (argv, Some(program))
}

fn read_source(file: &PathBuf) -> Result<String, ExitCode> {
    std::fs::read_to_string(file).map_err(|e| {
        eprintln!("error: cannot read {}: {e}", file.display());
        ExitCode::from(2)
    })
}

pub(crate) fn report(
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
    let prelude = prelude_cache::load();
    match caravan_compiler::driver::check_source_with_prelude(&path, &text, prelude) {
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
            sources.add(path, text.to_owned());
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
    schedulers: Option<u16>,
    max_heap_mb: Option<u64>,
    max_stack_mb: Option<u64>,
    dist: DistArgs,
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
    // CARAVAN_STACK_TORTURE=1: processes move to new stacks every few
    // calls of added depth (a test mode for stack growth).
    caravan_vm::stackgrow::set_torture(
        std::env::var_os("CARAVAN_STACK_TORTURE").is_some_and(|v| v != "0"),
    );
    let opts = caravan_compiler::codegen::Options {
        no_reductions: std::env::var_os("CARAVAN_NO_REDUCTIONS").is_some(),
        gc_torture: torture,
    };
    let prelude = prelude_cache::load();
    let checked = caravan_compiler::driver::check_source_with_prelude(&path, &text, prelude);
    let compiled = match checked.and_then(|c| {
        if timings {
            eprintln!(
                "caravan: checked in {:.2} ms",
                t0.elapsed().as_secs_f64() * 1000.0
            );
        }
        caravan_compiler::driver::compile_checked(c, opts)
    }) {
        Ok(c) => c,
        Err((sources, diags)) => {
            report(&sources, &diags);
            return ExitCode::from(1);
        }
    };
    if timings {
        eprintln!(
            "caravan: compiled {} functions by {:.2} ms",
            compiled.functions_compiled,
            t0.elapsed().as_secs_f64() * 1000.0
        );
    }
    caravan_stdlib::builtins::set_args(args);
    if let Err(e) = dist.start() {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    let config = caravan_vm::VmConfig {
        schedulers: default_schedulers(schedulers),
        max_heap_words: max_heap_mb.map_or(0, |mb| {
            (mb as usize).saturating_mul((1 << 20) / caravan_vm::value::WORD)
        }),
        max_stack_size: max_stack_mb.map_or(caravan_vm::stackgrow::DEFAULT_MAX_STACK, |mb| {
            (mb as usize) << 20
        }),
        host_exits: true,
        ..Default::default()
    };
    let status = caravan_vm::run(config, compiled.entry, compiled.main_closure);
    if timings {
        let (parked, moved) = caravan_vm::scheduler::stack_stats();
        eprintln!(
            "caravan: ran by {:.2} ms; stacks parked: {parked}, of which left their slot: {moved}",
            t0.elapsed().as_secs_f64() * 1000.0
        );
    }
    // The process ends here: the VM has stopped every process and flushed
    // its output, so nothing is left to free or flush but Rust's own
    // streams. `_exit` skips the allocator's teardown (mimalloc returns
    // every arena page to the system at exit) and the shared libraries'
    // destructors: about 0.3 ms of hello world's 8.
    std::mem::forget(compiled);
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` ends the process at once; no Rust state of ours
    // needs dropping (see above).
    unsafe { libc::_exit(status.clamp(0, 255)) }
}

/// Turn transparent huge pages off for this process (Linux
/// `prctl(PR_SET_THP_DISABLE)`, checked by the kernel at every page fault,
/// so it also covers the arenas mimalloc maps and `madvise(MADV_HUGEPAGE)`s).
///
/// Why: mimalloc asks for huge pages on its arenas, and each first touch of
/// a 2 MiB-aligned region then faults in and zeroes a whole 2 MiB page.
/// Measured on hello world: 62 % of `caravan run`'s samples were the kernel
/// zeroing those pages, and peak RSS fell from 35 MB to 18 MB without them;
/// binary-trees 20 keeps its time and drops ~15 % of its RSS. The same
/// switch as `MIMALLOC_ALLOW_THP=0`, without needing the environment.
///
/// It runs as an ELF constructor (`.init_array`), before Rust's runtime
/// starts: `std::rt` allocates its thread info before `main`, and when the
/// switch was thrown from `main`, that first allocation had already
/// faulted in (and zeroed) one huge page.
extern "C" fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes one integer flag and touches no
    // memory of ours; a failure (old kernel) only leaves THP as it was.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// The constructor entry for [`disable_transparent_huge_pages`]: the
/// dynamic loader calls every function pointer in `.init_array` before
/// `main`, as C's `__attribute__((constructor))`.
// SAFETY: the function takes no arguments, touches no Rust state (no
// allocation, no `std`), so running it before Rust's runtime is set up is
// sound.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static DISABLE_THP_AT_START: extern "C" fn() = disable_transparent_huge_pages;

/// Makes the C library's `malloc` keep one arena for all threads
/// (`mallopt(M_ARENA_MAX, 1)`, as `MALLOC_ARENA_MAX=1`). Rust's
/// allocations go to mimalloc; glibc's `malloc` serves only the C
/// library's own few, but the first of them on each new thread (a cpu set
/// in `pthread_getattr_np`, which std calls as the thread starts) made
/// that thread a 64 MiB arena: a 128 MiB `mmap`, two `munmap`s, an
/// `mprotect` and a page fault, for each scheduler and sysmon thread.
/// Called before any thread starts.
fn one_c_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets a tunable of glibc's allocator; no
    // thread has been started yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

fn default_schedulers(n: Option<u16>) -> usize {
    n.map(usize::from)
        .unwrap_or_else(caravan_vm::available_cores)
        .clamp(1, MAX_SCHEDULERS as usize)
}

/// Returns the freed memory of the calling thread's allocator to the
/// system: mimalloc frees its empty pages and purges them now rather than
/// after its delay. Handed to the VM ([`caravan_vm::set_memory_release`]),
/// whose schedulers call it when they idle.
fn release_memory() {
    // SAFETY: `mi_collect` takes a flag and only works on mimalloc's own
    // state; any thread may call it.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

fn main() -> ExitCode {
    one_c_malloc_arena();
    caravan_vm::set_memory_release(release_memory);
    let (argv, program_args) = split_program_args(std::env::args().collect());
    let cli = Cli::parse_from(argv);
    match cli.command {
        Some(Command::Check { file }) => check(file),
        Some(Command::Fmt {
            check,
            stdin,
            paths,
        }) => fmt(check, stdin, paths),
        Some(Command::Lsp) => ExitCode::from(caravan_lsp::run_stdio().clamp(0, 255) as u8),
        Some(Command::Run {
            schedulers,
            max_heap_mb,
            max_stack_mb,
            dist,
            file,
            args,
        }) => run(
            file,
            schedulers,
            max_heap_mb,
            max_stack_mb,
            dist,
            program_args.unwrap_or(args),
        ),
        Some(Command::Test {
            filter,
            timeout,
            seed,
            schedulers,
            jobs,
            schedules,
            paths,
        }) => {
            let schedulers = default_schedulers(schedulers);
            test_runner::run(test_runner::TestOptions {
                paths,
                filter,
                timeout_ms: timeout,
                seed,
                schedulers,
                jobs: jobs.map_or(2 * schedulers, |j| j as usize),
                schedules,
            })
        }
        Some(Command::New { name }) => new::run(&name),
        Some(Command::Repl { schedulers, dist }) => {
            if let Err(e) = dist.start() {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
            ExitCode::from(repl::run(default_schedulers(schedulers)).clamp(0, 255) as u8)
        }
        None => ExitCode::from(repl::run(default_schedulers(None)).clamp(0, 255) as u8),
    }
}
