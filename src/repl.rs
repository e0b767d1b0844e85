//! `caravan repl`: the interactive toplevel.
//!
//! The VM runs for the whole session (`caravan_vm::Runtime`); each
//! compiled phrase is evaluated in a process of its own, so `call` works
//! from a phrase and processes spawned by phrases keep running. Ctrl-C while
//! a phrase runs kills its process (`Killed`) and prints `Interrupted.`; a
//! phrase that crashes is forgotten (its definitions never got values).

mod input;

use caravan_compiler::codegen::Options;
use caravan_compiler::repl::{PhraseError, Repl};
use caravan_vm::Outcome;
use caravan_vm::{Process, Value};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Editor, Helper};
use std::borrow::Cow;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The REPL's own external, compiled with the standard library: each
/// phrase hands the text to print to it.
const DRIVER: &str = r#"
external repl_print : string -> unit = "caravan_repl_print"
"#;

/// The text of the phrase being evaluated.
static OUTPUT: Mutex<String> = Mutex::new(String::new());

/// `repl_print text`: the phrase's `val ...` lines.
///
/// # Safety
/// Called by generated code; `s` is a string.
unsafe extern "C" fn caravan_repl_print(_proc: *mut Process, s: Value) -> Value {
    // SAFETY: a string value.
    let text = String::from_utf8_lossy(unsafe { caravan_vm::value::string_bytes(s) }).into_owned();
    OUTPUT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push_str(&text);
    caravan_vm::value::UNIT
}

const KEYWORDS: &[&str] = &[
    "let", "rec", "and", "in", "fun", "function", "match", "with", "when", "if", "then", "else",
    "type", "of", "begin", "end", "receive", "after", "as", "assert", "true", "false", "mod",
];

/// Tab completion of names in scope and module members, keyword
/// highlighting.
struct ReplHelper {
    /// Names to complete: refreshed after every phrase.
    names: Arc<Mutex<Vec<String>>>,
    /// Members by module.
    members: Arc<Mutex<std::collections::HashMap<String, Vec<String>>>>,
    color: bool,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '\'' || c == '.'))
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        let pair = |s: String| Pair {
            display: s.clone(),
            replacement: s,
        };
        if let Some((module, prefix)) = word.rsplit_once('.') {
            let members = self.members.lock().unwrap_or_else(|e| e.into_inner());
            let list = members.get(module).cloned().unwrap_or_default();
            let out = list
                .into_iter()
                .filter(|n| n.starts_with(prefix))
                .map(|n| pair(format!("{module}.{n}")))
                .collect();
            return Ok((start, out));
        }
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let out = names
            .iter()
            .chain(
                KEYWORDS
                    .iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .iter(),
            )
            .filter(|n| n.starts_with(word) && !word.is_empty())
            .cloned()
            .map(pair)
            .collect();
        Ok((start, out))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Validator for ReplHelper {}

impl Highlighter for ReplHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if !self.color {
            return Cow::Borrowed(line);
        }
        let mut out = String::with_capacity(line.len() + 16);
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut String| {
            if KEYWORDS.contains(&word.as_str()) {
                out.push_str("\x1b[1;35m");
                out.push_str(word);
                out.push_str("\x1b[0m");
            } else {
                out.push_str(word);
            }
            word.clear();
        };
        for c in line.chars() {
            if c.is_alphanumeric() || c == '_' || c == '\'' {
                word.push(c);
            } else {
                flush(&mut word, &mut out);
                out.push(c);
            }
        }
        flush(&mut word, &mut out);
        Cow::Owned(out)
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.color
    }
}

impl Helper for ReplHelper {}

fn history_path() -> Option<std::path::PathBuf> {
    let dir = dirs::data_dir()?.join("caravan");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("history"))
}

const HELP: &str = "\
Enter definitions (let, let rec, type) or an expression; `;;` is optional
and ends a phrase, also mid-line (`let a = 1;; a + 1;;`). A phrase that
spans lines is read until `;;`, an empty line, or an unindented line that
starts a new phrase; a paste runs as if typed, phrase by phrase.
Commands:
  :type EXPR    show the type of EXPR without running it
  :load FILE    load the definitions of FILE into the session
  :reset        forget every definition (running processes go on)
  :processes    a table of live processes: pid, status, mailbox length,
                reductions, memory
  :help         this text
  :quit         leave (also Ctrl-D)
Ctrl-C interrupts a running phrase, or clears the line being typed.";

/// Runs the toplevel until `:quit` or end of input; returns the exit
/// status.
pub fn run(schedulers: usize) -> i32 {
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let extra: Vec<(&'static str, *const u8)> =
        vec![("caravan_repl_print", caravan_repl_print as *const u8)];
    let mut repl = match Repl::new(
        DRIVER,
        &extra,
        Some("caravan_repl_print"),
        Options::default(),
    ) {
        Ok(r) => r,
        Err(e) => {
            report(e, color);
            return 70;
        }
    };
    let rt = caravan_vm::Runtime::start(
        caravan_vm::VmConfig {
            schedulers,
            ..Default::default()
        },
        repl.entry(),
    );
    if let Outcome::Ended(r) = rt.eval(repl.init) {
        eprintln!(
            "caravan repl: the standard library failed to start: {}",
            r.message()
        );
        return 70;
    }
    let names = Arc::new(Mutex::new(vec![]));
    let members = Arc::new(Mutex::new(std::collections::HashMap::new()));
    let helper = ReplHelper {
        names: names.clone(),
        members: members.clone(),
        color,
    };
    let config = Config::builder()
        .auto_add_history(false)
        .completion_type(CompletionType::List)
        .build();
    let mut rl: Editor<ReplHelper, rustyline::history::DefaultHistory> =
        match Editor::with_config(config) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("caravan repl: {e}");
                return 70;
            }
        };
    rl.set_helper(Some(helper));
    // Ctrl-C while a phrase runs arrives as SIGINT (the terminal is in
    // cooked mode then): it kills the phrase's process. (Installed after
    // the line editor, which installs a SIGINT handler of its own.)
    let interrupter = rt.interrupter();
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let _ = ctrlc::set_handler(move || {
        flag.store(true, Ordering::SeqCst);
        interrupter.interrupt();
    });
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    refresh_names(&mut repl, &names, &members);
    println!(
        "Caravan {} — :help for help, :quit or Ctrl-D to leave",
        env!("CARGO_PKG_VERSION")
    );
    let mut reader = input::Reader::default();
    loop {
        let parse = |t: &str| match repl.classify(t) {
            caravan_compiler::repl::Completeness::Complete => input::Parse::Complete,
            caravan_compiler::repl::Completeness::Incomplete => input::Parse::Incomplete,
            caravan_compiler::repl::Completeness::Error => input::Parse::Error,
        };
        let next = match reader.next(&parse) {
            Some(i) => i,
            None => {
                let prompt = if reader.continuing() { "  " } else { "# " };
                match rl.readline(prompt) {
                    // A line, or a bracketed paste of several.
                    Ok(l) => {
                        reader.push(&l);
                        continue;
                    }
                    Err(ReadlineError::Interrupted) => {
                        reader.clear();
                        continue;
                    }
                    Err(ReadlineError::Eof) => match reader.finish(&parse) {
                        Some(i) => i,
                        None => break,
                    },
                    Err(e) => {
                        eprintln!("caravan repl: {e}");
                        break;
                    }
                }
            }
        };
        let text = match next {
            input::Input::Command(t) => {
                remember(&mut rl, &history, &t);
                let cmd = &t[1..];
                let (name, arg) = cmd.split_once(' ').unwrap_or((cmd, ""));
                match name {
                    "quit" | "q" => break,
                    "processes" | "ps" => print_processes(&rt),
                    "help" | "h" => println!("{HELP}"),
                    "type" | "t" => match repl.type_of(arg) {
                        Ok(t) => println!("- : {t}"),
                        Err(e) => report(e, color),
                    },
                    "load" | "l" => match std::fs::read_to_string(arg.trim()) {
                        Ok(text) => {
                            if let Some(status) =
                                run_phrase(&mut repl, &rt, &text, arg.trim(), &interrupted, color)
                            {
                                return finish(rt, &mut rl, &history, status);
                            }
                            refresh_names(&mut repl, &names, &members);
                        }
                        Err(e) => eprintln!("cannot read {}: {e}", arg.trim()),
                    },
                    "reset" => match Repl::new(
                        DRIVER,
                        &extra,
                        Some("caravan_repl_print"),
                        Options::default(),
                    ) {
                        // A fresh checker and code generator; the VM and its
                        // processes go on.
                        Ok(r) => {
                            if let Outcome::Ended(e) = rt.eval(r.init) {
                                eprintln!("caravan repl: reset failed: {}", e.message());
                                continue;
                            }
                            repl = r;
                            refresh_names(&mut repl, &names, &members);
                            println!("Session reset.");
                        }
                        Err(e) => report(e, color),
                    },
                    other => println!("unknown command :{other} (try :help)"),
                }
                continue;
            }
            input::Input::Unfinished(t) => {
                remember(&mut rl, &history, &t);
                eprintln!(
                    "unexpected end of phrase: an empty line ends a phrase, and this one is incomplete"
                );
                continue;
            }
            input::Input::Phrase(t) => t,
        };
        remember(&mut rl, &history, &text);
        match repl.compile(&text, "<repl>") {
            Ok(phrase) => {
                for l in &phrase.static_lines {
                    println!("{l}");
                }
                if let Some(status) = eval_phrase(&mut repl, &rt, phrase.closure, &interrupted) {
                    return finish(rt, &mut rl, &history, status);
                }
            }
            Err(e) => report(e, color),
        }
        refresh_names(&mut repl, &names, &members);
    }
    finish(rt, &mut rl, &history, 0)
}

/// Adds an entry to the history and appends it to the history file at
/// once (a REPL that is killed keeps what was entered).
fn remember(
    rl: &mut Editor<ReplHelper, rustyline::history::DefaultHistory>,
    history: &Option<std::path::PathBuf>,
    text: &str,
) {
    let entry = text.trim().replace('\n', " ");
    if let Ok(true) = rl.add_history_entry(entry.as_str()) {
        if let Some(h) = history {
            let _ = rl.append_history(h);
        }
    }
}

fn finish(
    rt: caravan_vm::Runtime,
    rl: &mut Editor<ReplHelper, rustyline::history::DefaultHistory>,
    history: &Option<std::path::PathBuf>,
    status: i32,
) -> i32 {
    // The history file was appended to as entries were made.
    let _ = (rl, history);
    let s = rt.shutdown();
    caravan_vm::stdout_flush();
    if status != 0 {
        status
    } else {
        s
    }
}

/// Compiles and evaluates `text`; `Some(status)` when the phrase ended
/// the program (`exit n`).
fn run_phrase(
    repl: &mut Repl,
    rt: &caravan_vm::Runtime,
    text: &str,
    name: &str,
    interrupted: &AtomicBool,
    color: bool,
) -> Option<i32> {
    match repl.compile(text, name) {
        Ok(phrase) => {
            for l in &phrase.static_lines {
                println!("{l}");
            }
            eval_phrase(repl, rt, phrase.closure, interrupted)
        }
        Err(PhraseError::Incomplete) => {
            eprintln!("{name}: unexpected end of input");
            None
        }
        Err(e) => {
            report(e, color);
            None
        }
    }
}

/// Evaluates a compiled phrase in a new process and prints its result, its
/// interruption, or nothing more after a crash (the crash line is on
/// stderr already).
fn eval_phrase(
    repl: &mut Repl,
    rt: &caravan_vm::Runtime,
    closure: u64,
    interrupted: &AtomicBool,
) -> Option<i32> {
    interrupted.store(false, Ordering::SeqCst);
    OUTPUT.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let outcome = rt.eval(closure);
    caravan_vm::stdout_flush();
    match outcome {
        Outcome::Returned => {
            let text = std::mem::take(&mut *OUTPUT.lock().unwrap_or_else(|e| e.into_inner()));
            print!("{text}");
            None
        }
        Outcome::Ended(_) => {
            if interrupted.swap(false, Ordering::SeqCst) {
                println!("Interrupted.");
            }
            repl.undo();
            None
        }
        Outcome::Exit(status) => Some(status),
    }
}

/// A size in bytes with a binary unit: `512 B`, `4.0 KiB`, `1.5 MiB`.
fn bytes(n: usize) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut x = n as f64 / 1024.0;
    let mut u = 0;
    while x >= 1024.0 && u + 1 < UNITS.len() {
        x /= 1024.0;
        u += 1;
    }
    format!("{x:.1} {}", UNITS[u])
}

/// `:processes`: one line per live process. Reductions and memory are
/// known for waiting processes (a running one is busy on a scheduler).
fn print_processes(rt: &caravan_vm::Runtime) {
    let list = rt.processes();
    println!(
        "{:<10} {:<9} {:>8} {:>12} {:>10}",
        "pid", "status", "mailbox", "reductions", "memory"
    );
    for p in &list {
        let reds = p.reductions.map_or("-".to_string(), |r| r.to_string());
        let mem = p.heap_words.map_or("-".to_string(), |w| bytes(w * 8));
        println!(
            "{:<10} {:<9} {:>8} {:>12} {:>10}",
            format!("<0.{}>", p.serial),
            p.status,
            p.mailbox,
            reds,
            mem
        );
    }
    println!("{} process(es)", list.len());
}

fn refresh_names(
    repl: &mut Repl,
    names: &Arc<Mutex<Vec<String>>>,
    members: &Arc<Mutex<std::collections::HashMap<String, Vec<String>>>>,
) {
    let all = repl.names(None);
    let mut m = std::collections::HashMap::new();
    for n in &all {
        if n.starts_with(|c: char| c.is_uppercase()) {
            m.insert(n.clone(), repl.names(Some(n)));
        }
    }
    *names.lock().unwrap_or_else(|e| e.into_inner()) = all;
    *members.lock().unwrap_or_else(|e| e.into_inner()) = m;
}

fn report(e: PhraseError, color: bool) {
    match e {
        PhraseError::Incomplete => eprintln!("unexpected end of input"),
        PhraseError::Diagnostics(sources, diags) => {
            for d in diags {
                eprint!("{}", d.render(&sources, color));
            }
        }
        PhraseError::Codegen(e) => eprintln!("{e}"),
    }
}
