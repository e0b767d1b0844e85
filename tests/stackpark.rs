//! Parked stacks (`vm/src/scheduler/stackpark.rs`): the VM releases the
//! stack pages of processes blocked for `CARAVAN_PARK_AFTER_MS` and copies
//! the used bytes back when they run. Deep non-tail frames must come back
//! intact, killed parked processes must free their slots for reuse, and the
//! pages must really be released (RSS against a run without parking). Run
//! with this build's binary (a debug build: its assertions check the saved
//! stack pointer), and in GC torture mode with `CARAVAN_TORTURE_BIN`.

mod support;

use std::process::Output;
use std::time::Duration;
use support::{stderr, stdout, Run};

const PROGRAM: &str = "tests/stackpark/parked.cvn";

/// What the program prints when every check holds, for `shallow`
/// processes (half of them answer, then `shallow / 2` fresh ones).
fn expected(shallow: u64) -> String {
    let m = shallow / 2;
    format!(
        "deep stacks unwound intact: true\nshallow answers right: true\n\
         fresh processes answer: {}\n",
        m * (m - 1)
    )
}

/// The RSS the program printed on stderr after its wait, in kB.
fn rss_kb(o: &Output) -> u64 {
    let err = stderr(o);
    err.lines()
        .find_map(|l| l.strip_prefix("rss: ")?.strip_suffix(" kB")?.parse().ok())
        .unwrap_or_else(|| panic!("no rss line in stderr:\n{err}"))
}

#[test]
fn parked_stacks_come_back_intact_and_their_pages_are_released() {
    let args = ["200", "500", "20000", "400"];
    let limit = Duration::from_secs(120);
    let run = |env| {
        Run {
            args: &args,
            env,
            ..Default::default()
        }
        .file(PROGRAM, limit)
    };
    let parked = run(&[("CARAVAN_PARK_AFTER_MS", "50")]);
    let kept = run(&[("CARAVAN_NO_STACK_PARK", "1")]);
    for o in [&parked, &kept] {
        assert!(o.status.success(), "{}", stderr(o));
        assert_eq!(stdout(o), expected(20_000));
    }
    // 20,000 processes blocked for 400 ms, each with at least one touched
    // stack page: parked, each keeps only the few hundred bytes it uses.
    let (with, without) = (rss_kb(&parked), rss_kb(&kept));
    assert!(
        with + 20_000 < without,
        "parking saved too little: RSS {with} kB parked vs {without} kB not"
    );
}

#[test]
fn parked_stacks_under_gc_torture_and_one_scheduler() {
    let bin = std::env::var("CARAVAN_TORTURE_BIN").ok();
    let args = ["20", "300", "400", "200"];
    let limit = Duration::from_secs(300);
    for (opts, env) in [
        (
            &[][..],
            &[("CARAVAN_PARK_AFTER_MS", "20"), ("CARAVAN_GC_TORTURE", "1")][..],
        ),
        (
            &["--schedulers", "1"][..],
            &[("CARAVAN_PARK_AFTER_MS", "20")][..],
        ),
    ] {
        let o = Run {
            opts,
            args: &args,
            env,
            bin: bin.as_deref(),
            ..Default::default()
        }
        .file(PROGRAM, limit);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), expected(400));
    }
}

/// `(parked, moved)` from the line `CARAVAN_TIMINGS=1` makes `caravan run`
/// print at the end: stacks parked, and how many left their slot.
fn stack_stats(o: &Output) -> (u64, u64) {
    let err = stderr(o);
    let line = err
        .lines()
        .find_map(|l| l.split_once("stacks parked: ").map(|x| x.1))
        .unwrap_or_else(|| panic!("no stack statistics in stderr:\n{err}"));
    let (parked, moved) = line
        .split_once(", of which left their slot: ")
        .unwrap_or_else(|| panic!("unexpected statistics line: {line}"));
    (parked.parse().unwrap(), moved.trim().parse().unwrap())
}

/// A parked stack whose only addresses of itself are its frame chain (the
/// usual case: `stack::movable`) gives its slot up and comes back, when
/// its process next runs, into whichever slot is free, with the chain
/// moved. First plainly: 200 processes blocked 500 calls deep, and 400
/// shallow ones, all parked; they come back into the slots other parked
/// processes left (the cache is LIFO), and every frame is checked as they
/// unwind. Then with stack torture, where the slot is never the one the
/// stack left (the deep processes, on grown stacks then, are not parked),
/// and GC torture, which collects at every allocation on the moved
/// stacks. Fails without the moves: nothing leaves its slot.
#[test]
fn parked_stacks_come_back_into_other_slots() {
    let bin = std::env::var("CARAVAN_TORTURE_BIN").ok();
    let limit = Duration::from_secs(300);
    for (args, torture, least) in [
        (["200", "500", "400", "200"], "0", 600),
        (["20", "300", "400", "200"], "1", 400),
    ] {
        let o = Run {
            args: &args,
            env: &[
                ("CARAVAN_PARK_AFTER_MS", "20"),
                ("CARAVAN_STACK_TORTURE", torture),
                ("CARAVAN_GC_TORTURE", torture),
                ("CARAVAN_TIMINGS", "1"),
            ],
            bin: if torture == "1" { bin.as_deref() } else { None },
            ..Default::default()
        }
        .file(PROGRAM, limit);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), expected(400));
        let (parked, moved) = stack_stats(&o);
        // Every blocked process is parked once at least; a few (blocked in
        // Rust frames that keep addresses of themselves) may stay.
        assert!(parked >= least, "only {parked} stacks parked");
        assert!(
            moved * 10 >= parked * 9,
            "{moved} of {parked} parked stacks moved"
        );
    }
}

/// The RSS line `rss <what>: N kB` the program printed on stderr.
fn rss_line_kb(o: &Output, what: &str) -> u64 {
    let err = stderr(o);
    let prefix = format!("rss {what}: ");
    err.lines()
        .find_map(|l| l.strip_prefix(&prefix)?.strip_suffix(" kB")?.parse().ok())
        .unwrap_or_else(|| panic!("no `rss {what}` line in stderr:\n{err}"))
}

/// 50,000 processes live at once, each touching a page of its stack, then
/// end. Their slots go back to the pool, which may keep a bounded number
/// resident for the next spawns, and their heaps to the allocator; the
/// rest must go back to the system once the VM idles. Before: every free
/// slot kept its top page (4 KiB) forever, and mimalloc kept the freed
/// heaps until a later allocation, so this run kept about 190 MB, and a
/// burst of a million processes left over 4 GB resident.
#[test]
fn a_burst_of_processes_gives_its_memory_back() {
    let n = 50_000;
    let o = Run {
        args: &["50000"],
        env: &[("CARAVAN_NO_STACK_PARK", "1")],
        ..Default::default()
    }
    .file("tests/stackpark/burst.cvn", Duration::from_secs(120));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("answers: {n}\n"));
    let (before, after) = (rss_line_kb(&o, "before"), rss_line_kb(&o, "after"));
    // Under half a KB per ended process (a kept stack page alone is 4 KiB;
    // measured: about 205 B, mostly the bounded caches of slots and
    // process structures; the process table gives its capacity back).
    assert!(
        after < before + n / 2,
        "RSS {before} kB before the burst, {after} kB after its {n} processes ended"
    );
}

/// 20,000 idle processes, then 20,000 more that each answered one `call`
/// first: the second set must cost about what the first does. Before, a
/// process that had answered a call kept its emptied mailbox buffer, its
/// call bookkeeping (`process::Extra`, about 400 bytes) and the memory
/// those freed was not given back once the VM idled: about 860 bytes more
/// per process (debug build; 900 in the dist build). Measured after: about
/// 200 (the process table's second doubling, the caller's lazily
/// cancelled call timers).
#[test]
fn processes_that_answered_a_call_idle_as_small_as_the_others() {
    let n = 20_000;
    let o = Run {
        args: &["20000"],
        env: &[("CARAVAN_PARK_AFTER_MS", "50")],
        ..Default::default()
    }
    .file("tests/stackpark/called.cvn", Duration::from_secs(120));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "done\n");
    let start = rss_line_kb(&o, "start");
    let idle = rss_line_kb(&o, "idle");
    let called = rss_line_kb(&o, "called");
    let (quiet, answered) = ((idle - start) * 1024 / n, (called - idle) * 1024 / n);
    assert!(
        answered < quiet + 400,
        "per idle process: {quiet} B, {answered} B after answering a call"
    );
}
