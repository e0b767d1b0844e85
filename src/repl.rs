//! `caravan repl`: the interactive toplevel.
//!
//! The VM runs in a background thread for the whole session. Its main
//! process supervises a *worker* process that takes compiled phrases from
//! this thread (through the builtin `caravan_repl_next`), runs them, and
//! hands back the text to print (`caravan_repl_done`); a crashed or
//! interrupted worker is replaced by a fresh one, so processes spawned by
//! phrases keep running and `call` works from a phrase. Ctrl-C while a
//! phrase runs kills the worker (`Killed`), printing `Interrupted.`.

use caravan_compiler::codegen::Options;
use caravan_compiler::repl::{PhraseError, Repl};
use caravan_vm::{Process, Value};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Config, Editor, Helper};
use std::borrow::Cow;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

/// The worker's loop and its supervisor, compiled with the standard
/// library. The top-level effect runs in the VM's main process forever.
const DRIVER: &str = r#"
external repl_next : unit -> (unit -> string) = "caravan_repl_next"
external repl_done : string -> unit = "caravan_repl_done"
external repl_exited : exit_reason -> unit = "caravan_repl_exited"
let rec repl_serve () = repl_done ((repl_next ()) ()); repl_serve ()
let rec repl_supervise () =
  let w = spawn (fun _ -> repl_serve ()) in
  repl_exited (Process.join w);
  repl_supervise ()
let () = repl_supervise ()
"#;

/// What the VM side tells the REPL thread.
enum Event {
    /// A phrase finished: the text to print.
    Done(String),
    /// The worker exited (crashed or was killed) with this message.
    Exited(#[allow(dead_code)] String),
}

struct Channels {
    phrases: Mutex<Receiver<u64>>,
    events: Mutex<Sender<Event>>,
}

static CHANNELS: OnceLock<Channels> = OnceLock::new();
/// The pid (as a value) of the worker currently waiting for or running a
/// phrase.
static WORKER: AtomicU64 = AtomicU64::new(0);

/// `repl_next ()`: blocks (outside the scheduler's hot path) until the
/// REPL thread sends the next compiled phrase.
///
/// # Safety
/// Called by generated code with its own running process.
unsafe extern "C" fn caravan_repl_next(proc: *mut Process, _unit: Value) -> Value {
    // SAFETY: generated code passes its own live process.
    let me = unsafe { &mut *proc };
    WORKER.store(me.pid(), Ordering::SeqCst);
    let Some(ch) = CHANNELS.get() else {
        return caravan_vm::value::UNIT;
    };
    let next = caravan_vm::blocking_section(me, || {
        let rx = ch.phrases.lock().unwrap_or_else(|e| e.into_inner());
        rx.recv().ok()
    });
    match next {
        Some(closure) => closure,
        // The REPL thread is gone: the session is over.
        None => std::process::exit(0),
    }
}

/// `repl_done text`: hands a phrase's output to the REPL thread.
///
/// # Safety
/// Called by generated code; `s` is a string.
unsafe extern "C" fn caravan_repl_done(_proc: *mut Process, s: Value) -> Value {
    // SAFETY: a string value.
    let text = String::from_utf8_lossy(unsafe { caravan_vm::value::string_bytes(s) }).into_owned();
    if let Some(ch) = CHANNELS.get() {
        let _ = ch
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Event::Done(text));
    }
    caravan_vm::value::UNIT
}

/// `repl_exited reason`: the worker ended; the supervisor starts another.
///
/// # Safety
/// Called by generated code; `r` is an `exit_reason`.
unsafe extern "C" fn caravan_repl_exited(_proc: *mut Process, r: Value) -> Value {
    // SAFETY: an exit_reason value.
    let reason = unsafe { caravan_vm::exit_reason_of_value(r) };
    if let Some(ch) = CHANNELS.get() {
        let _ = ch
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Event::Exited(reason.message().into_owned()));
    }
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
Enter definitions (let, let rec, type) or an expression; `;;` is optional.
A phrase spanning several lines is read until it is complete.
Commands:
  :type EXPR    show the type of EXPR without running it
  :load FILE    load the definitions of FILE into the session
  :reset        forget every definition (running processes go on)
  :help         this text
  :quit         leave (also Ctrl-D)
Ctrl-C interrupts a running phrase, or clears the line being typed.";

/// Runs the toplevel until `:quit` or end of input; returns the exit
/// status.
pub fn run(schedulers: usize) -> i32 {
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let extra: Vec<(&'static str, *const u8)> = vec![
        ("caravan_repl_next", caravan_repl_next as *const u8),
        ("caravan_repl_done", caravan_repl_done as *const u8),
        ("caravan_repl_exited", caravan_repl_exited as *const u8),
    ];
    let mut repl = match Repl::new(DRIVER, &extra, Options::default()) {
        Ok(r) => r,
        Err(e) => {
            report(e, color);
            return 70;
        }
    };
    let (phrase_tx, phrase_rx) = channel::<u64>();
    let (event_tx, event_rx) = channel::<Event>();
    let _ = CHANNELS.set(Channels {
        phrases: Mutex::new(phrase_rx),
        events: Mutex::new(event_tx),
    });
    let entry = repl.entry();
    let init = repl.init;
    std::thread::Builder::new()
        .name("caravan-vm".into())
        .spawn(move || {
            let status = caravan_vm::run(
                caravan_vm::VmConfig {
                    schedulers,
                    ..Default::default()
                },
                entry,
                init,
            );
            std::process::exit(status);
        })
        .expect("start the VM thread");
    // Ctrl-C while a phrase runs arrives as SIGINT (the terminal is in
    // cooked mode then): forward it to the waiting loop.
    let (int_tx, int_rx) = channel::<()>();
    let _ = ctrlc::set_handler(move || {
        let _ = int_tx.send(());
    });
    let names = Arc::new(Mutex::new(vec![]));
    let members = Arc::new(Mutex::new(std::collections::HashMap::new()));
    let helper = ReplHelper {
        names: names.clone(),
        members: members.clone(),
        color,
    };
    let config = Config::builder().auto_add_history(false).build();
    let mut rl: Editor<ReplHelper, rustyline::history::DefaultHistory> =
        match Editor::with_config(config) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("caravan repl: {e}");
                return 70;
            }
        };
    rl.set_helper(Some(helper));
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    refresh_names(&mut repl, &names, &members);
    println!(
        "Caravan {} — :help for help, :quit or Ctrl-D to leave",
        env!("CARGO_PKG_VERSION")
    );
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() { "# " } else { "  " };
        let line = match rl.readline(prompt) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("caravan repl: {e}");
                break;
            }
        };
        if buffer.is_empty() {
            let t = line.trim();
            if t.is_empty() {
                continue;
            }
            if let Some(cmd) = t.strip_prefix(':') {
                let _ = rl.add_history_entry(t);
                let (name, arg) = cmd.split_once(' ').unwrap_or((cmd, ""));
                match name {
                    "quit" | "q" => break,
                    "help" | "h" => println!("{HELP}"),
                    "type" | "t" => match repl.type_of(arg) {
                        Ok(t) => println!("- : {t}"),
                        Err(e) => report(e, color),
                    },
                    "load" | "l" => match std::fs::read_to_string(arg.trim()) {
                        Ok(text) => {
                            run_phrase(
                                &mut repl,
                                &text,
                                arg.trim(),
                                &phrase_tx,
                                &event_rx,
                                &int_rx,
                                color,
                            );
                            refresh_names(&mut repl, &names, &members);
                        }
                        Err(e) => eprintln!("cannot read {}: {e}", arg.trim()),
                    },
                    "reset" => match Repl::new(DRIVER, &extra, Options::default()) {
                        // A fresh checker and code generator; the VM and its
                        // processes go on.
                        Ok(r) => {
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
        }
        // A phrase that started incomplete goes on until `;;` or an empty
        // line: its next line may still extend it (`if ... then 1` then
        // `else ...`).
        let continuing = !buffer.is_empty();
        if continuing {
            if line.trim().is_empty() {
                // Submit what we have.
            } else {
                buffer.push('\n');
                buffer.push_str(&line);
                if !line.trim_end().ends_with(";;") {
                    match repl.would_parse(&buffer) {
                        true => continue,
                        false if repl.is_incomplete(&buffer) => continue,
                        false => {}
                    }
                }
            }
        } else {
            buffer.push_str(&line);
        }
        let text = buffer.clone();
        match repl.compile(&text, "<repl>") {
            Err(PhraseError::Incomplete) => continue,
            other => {
                let _ = rl.add_history_entry(text.replace('\n', " ").as_str());
                buffer.clear();
                match other {
                    Ok(phrase) => {
                        for l in &phrase.static_lines {
                            println!("{l}");
                        }
                        wait_phrase(&mut repl, phrase.closure, &phrase_tx, &event_rx, &int_rx);
                    }
                    Err(e) => report(e, color),
                }
                refresh_names(&mut repl, &names, &members);
            }
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    caravan_vm::stdout_flush();
    0
}

fn run_phrase(
    repl: &mut Repl,
    text: &str,
    name: &str,
    tx: &Sender<u64>,
    rx: &Receiver<Event>,
    int_rx: &Receiver<()>,
    color: bool,
) {
    match repl.compile(text, name) {
        Ok(phrase) => {
            for l in &phrase.static_lines {
                println!("{l}");
            }
            wait_phrase(repl, phrase.closure, tx, rx, int_rx);
        }
        Err(PhraseError::Incomplete) => eprintln!("{name}: unexpected end of input"),
        Err(e) => report(e, color),
    }
}

/// Sends a phrase to the worker and waits for its result, its crash, or
/// Ctrl-C.
fn wait_phrase(
    repl: &mut Repl,
    closure: u64,
    tx: &Sender<u64>,
    rx: &Receiver<Event>,
    int_rx: &Receiver<()>,
) {
    while int_rx.try_recv().is_ok() {}
    if tx.send(closure).is_err() {
        return;
    }
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(20)) {
            Ok(Event::Done(text)) => {
                caravan_vm::stdout_flush();
                print!("{text}");
                return;
            }
            Ok(Event::Exited(_)) => {
                // The crash line is already on stderr; the phrase's
                // definitions never got values.
                caravan_vm::stdout_flush();
                repl.undo();
                return;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if int_rx.try_recv().is_ok() {
                    let w = WORKER.load(Ordering::SeqCst);
                    if !kill_worker(w) {
                        // No way to interrupt the phrase: leave.
                        println!("Interrupted.");
                        std::process::exit(130);
                    }
                    // Wait for the supervisor to notice.
                    while let Ok(ev) = rx.recv_timeout(std::time::Duration::from_secs(5)) {
                        if let Event::Exited(_) = ev {
                            break;
                        }
                    }
                    caravan_vm::stdout_flush();
                    println!("Interrupted.");
                    repl.undo();
                    return;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Kills the worker with `Killed`; false when the VM cannot do it.
fn kill_worker(_pid: u64) -> bool {
    false
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
