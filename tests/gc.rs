//! Memory and the collector, at CI sizes: a server handling 1,000,000
//! messages keeps a bounded heap; a 100,000-process skynet sums right;
//! stack overflow crashes only its process; and the whole example suite and
//! the differential corpus pass in GC torture mode (every allocation goes
//! to the runtime and collects), which makes a missing root fail fast, and
//! in stack torture mode (processes move to new stacks every few calls),
//! which makes an address kept into a moved stack fail fast.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The binary for torture runs: `CARAVAN_TORTURE_BIN` (CI points it at the
/// release build: the collector's own code is slow unoptimised), else this
/// build's.
fn torture_bin() -> String {
    std::env::var("CARAVAN_TORTURE_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_caravan").to_string())
}

fn run(file: &str, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let bin = if env.iter().any(|(k, _)| *k == "CARAVAN_GC_TORTURE") {
        torture_bin()
    } else {
        env!("CARGO_BIN_EXE_caravan").to_string()
    };
    let mut cmd = Command::new(bin);
    cmd.arg("run")
        .arg(file)
        .args(args)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("start caravan");
    // Output is read while the program runs (a full pipe would block it).
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("output"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("{} timed out after {limit:?}", file);
        }
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_server_handling_a_million_messages_keeps_a_bounded_heap() {
    // The server's heap (as `Gc.heap_words` reports it) stays under a
    // million words although a million messages were adopted into it.
    let o = run(
        "tests/programs/flat_heap_server.cvn",
        &[],
        &[],
        Duration::from_secs(120),
    );
    assert_eq!(
        stdout(&o),
        "500003500000\nheap bounded\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs `file` plain and in torture mode; both print `expected` and
/// succeed.
fn plain_and_torture(file: &str, expected: &str) {
    for env in [&[][..], &[("CARAVAN_GC_TORTURE", "1")][..]] {
        let o = run(file, &[], env, Duration::from_secs(120));
        assert_eq!(
            stdout(&o),
            expected,
            "{env:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "{env:?}: {:?}", o.status);
    }
}

/// The generational collector's edge cases (`tests/programs/generations.cvn`):
/// `let rec` closures made while collections run (in torture mode, the
/// program dies of SIGSEGV if a group is split across generations), a list
/// promoted in several steps, big messages adopted into a full nursery,
/// big strings in messages and a spawned closure taken as large objects,
/// and one string shared by twenty receivers after its sender ended. Run
/// plain and in torture mode.
#[test]
fn generations_keep_let_rec_groups_promoted_lists_and_adopted_messages() {
    let expected = "let rec groups: 396249906\npromoted list: 100001\n\
                    collections ran: true\nadopted messages: 40020000\n\
                    big strings: 651968\nclosure string: 50000\n\
                    shared string: 802240\n";
    plain_and_torture("tests/programs/generations.cvn", expected);
}

/// Messages and spawn closures share the program's static data (constant
/// lists and strings, closures without free variables) instead of copying
/// it (`heap::is_static_block`): receivers collect many times with it in
/// their heaps and use it after its sender ended. Run plain and in
/// torture mode, where a shared block taken for a heap block would be
/// poisoned or moved.
#[test]
fn messages_share_static_data() {
    let expected = "32 hello ada,hello grace,hello barbara 200200\n".repeat(4) + "done\n";
    plain_and_torture("tests/programs/static_messages.cvn", &expected);
}

/// Small messages travel inside their mailbox entries until `receive`
/// copies them into the receiver's heap (`process::mailbox_msg`): the
/// receiver collects while they wait unreached and after a selective
/// receive copied them, then sums them (with fragment messages mixed in).
/// Run plain and in torture mode, where every allocation collects.
#[test]
fn small_messages_wait_in_the_mailbox_across_collections() {
    plain_and_torture(
        "tests/programs/small_messages.cvn",
        "323092 80000\n8016893 80000\ndone\n",
    );
}

#[test]
fn skynet_with_100_000_processes() {
    let o = run(
        "tests/programs/skynet.cvn",
        &["100000"],
        &[],
        Duration::from_secs(120),
    );
    assert_eq!(stdout(&o), "4999950000\n");
    assert!(o.status.success());
}

#[test]
fn stack_overflow_crashes_only_that_process() {
    let o = run(
        "tests/programs/stack_overflow.cvn",
        &[],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(
        stdout(&o),
        "deep process: stack overflow\n10000\nthe VM and other processes go on\n"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("crashed: stack overflow at tests/programs/stack_overflow.cvn:4:15"),
        "{err}"
    );
    assert!(o.status.success());
}

/// Recursion deeper than the 1 MiB slot grows the stack (roots in moved
/// frames, exceptions, receive, kill and crash at depth); with
/// `--max-stack-mb 1` (no room to grow) the same recursion is a stack
/// overflow of that process only.
#[test]
fn stacks_grow_past_the_slot_up_to_the_limit() {
    let expected = std::fs::read_to_string(root().join("tests/golden/deep_stacks.out")).unwrap();
    let o = run(
        "tests/programs/deep_stacks.cvn",
        &[],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(stdout(&o), expected);
    assert!(o.status.success());
    let o = Command::new(env!("CARGO_BIN_EXE_caravan"))
        .args(["run", "--max-stack-mb", "8"])
        .arg("tests/differential/201_deep_recursion.cvn")
        .current_dir(root())
        .output()
        .expect("run caravan");
    assert_eq!(stdout(&o), "");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("crashed: stack overflow at tests/differential/201_deep_recursion.cvn:6:13"),
        "{err}"
    );
    assert_eq!(o.status.code(), Some(1));
}

/// Runs `(file, args, expected stdout)` cases in GC torture mode, with
/// stacks moving too (stack torture), a few at a time.
fn torture(cases: Vec<(String, Vec<String>, String)>) {
    run_cases(
        cases,
        &[
            ("CARAVAN_GC_TORTURE", "1"),
            ("CARAVAN_STACK_TORTURE", "1"),
            ("CARAVAN_PARK_AFTER_MS", "0"),
        ],
        "GC torture",
    );
}

/// Runs `(file, args, expected stdout)` cases with `env`, a few at a time;
/// `mode` names the run in failures.
fn run_cases(cases: Vec<(String, Vec<String>, String)>, env: &[(&str, &str)], mode: &str) {
    let cases = std::sync::Mutex::new(cases.into_iter());
    let failures = std::sync::Mutex::new(vec![]);
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| loop {
                let Some((file, args, expected)) = cases.lock().unwrap().next() else {
                    return;
                };
                let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
                let o = run(&file, &a, env, Duration::from_secs(300));
                if stdout(&o) != expected {
                    failures.lock().unwrap().push(format!(
                        "{file}: got {:?}…, stderr {}",
                        stdout(&o).chars().take(200).collect::<String>(),
                        String::from_utf8_lossy(&o.stderr)
                    ));
                }
            });
        }
    });
    let f = failures.into_inner().unwrap();
    assert!(
        f.is_empty(),
        "{} failures under {mode}:\n{}",
        f.len(),
        f.join("\n")
    );
}

#[test]
fn examples_pass_in_gc_torture_mode() {
    let golden = |n: &str| {
        std::fs::read_to_string(root().join("tests/golden").join(format!("{n}.out"))).unwrap()
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    torture(vec![
        ("examples/hello.cvn".into(), vec![], golden("hello")),
        ("examples/fib.cvn".into(), s(&["25"]), "75025\n".into()),
        ("examples/ping_pong.cvn".into(), vec![], golden("ping_pong")),
        ("examples/counter.cvn".into(), vec![], golden("counter")),
        ("examples/ring.cvn".into(), s(&["50", "20"]), golden("ring")),
        (
            "examples/wordfreq.cvn".into(),
            s(&["examples/data/gpl-3.0.txt"]),
            golden("wordfreq"),
        ),
        (
            "tests/programs/multifile/main.cvn".into(),
            vec![],
            golden("multifile"),
        ),
        (
            "tests/programs/skynet.cvn".into(),
            s(&["10000"]),
            "49995000\n".into(),
        ),
        (
            "tests/programs/deep_stacks.cvn".into(),
            vec![],
            golden("deep_stacks"),
        ),
    ]);
}

/// Every program of the differential corpus, the deep ones included, with
/// processes moving to a new stack every few calls of added depth
/// (`CARAVAN_STACK_TORTURE`), and every blocked process's stack parked
/// as soon as its scheduler looks and put back into another slot
/// (`CARAVAN_PARK_AFTER_MS=0`), on this build (debug assertions check each
/// move's frame walk). Fails without `stack_addrs_at_their_uses` in the
/// code generator: 076_lambda_calculus and 245_grown_stack_in_closure then
/// read spilled values from the stack they moved off.
#[test]
fn the_differential_corpus_passes_with_stacks_moving_every_few_calls() {
    let cases = corpus(|_| true);
    assert!(cases.len() >= 200);
    run_cases(
        cases,
        &[
            ("CARAVAN_STACK_TORTURE", "1"),
            ("CARAVAN_PARK_AFTER_MS", "0"),
        ],
        "stack torture",
    );
}

/// The differential corpus's `(program, no arguments, expected output)`
/// cases, in name order, whose text `keep` accepts.
fn corpus(keep: impl Fn(&str) -> bool) -> Vec<(String, Vec<String>, String)> {
    let dir = root().join("tests/differential");
    let mut entries: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.path());
    let mut cases = vec![];
    for e in entries {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "cvn") {
            if !keep(&std::fs::read_to_string(&p).unwrap()) {
                continue;
            }
            let expected = std::fs::read_to_string(p.with_extension("out")).unwrap();
            let rel = p.strip_prefix(root()).unwrap().display().to_string();
            cases.push((rel, vec![], expected));
        }
    }
    cases
}

#[test]
fn the_differential_corpus_passes_in_gc_torture_mode() {
    // Under torture every allocation walks the whole stack: a program
    // allocating at a depth of 10^6 frames would take hours. Such programs
    // say so; `deep_stacks.cvn` covers grown stacks under torture.
    let mut cases = corpus(|text| !text.contains("(* gc-torture: skip"));
    assert!(cases.len() >= 100);
    // Without an optimised binary, a sample (every 5th program) keeps the
    // debug test suite fast; CI runs them all with the release build.
    if std::env::var_os("CARAVAN_TORTURE_BIN").is_none() {
        cases = cases.into_iter().step_by(5).collect();
    }
    torture(cases);
}
