//! The runtime side of `caravan test`, `Assert` and `Check`
//! (LANGUAGE.md §8): which processes are tests, where they crashed, the
//! seeds of property tests, and the quiet processes whose crashes are
//! expected (`Assert.crashes`, a property run by `Check.forall`).
//!
//! Crash lines come from the VM; the test runner installs
//! [`crash_observer`] with `caravan_vm::observe_crashes`, which records the
//! location of each crash of a test (the runner prints it with the test's
//! name) and keeps quiet the crashes that a test expects. Programs run
//! with `caravan run` never install it: their crash lines are as always.

use caravan_vm::value::{int_of, of_int, string_bytes, Value};
use caravan_vm::{alloc_string, serial_of_pid, Process};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

/// What the runtime knows of a process that took part in a test.
#[derive(Default)]
struct Entry {
    /// The test's name, for a test's own process.
    test: Option<String>,
    /// Crashes are expected (no crash line).
    quiet: bool,
    /// Where it crashed (`file:line:col`), once it has.
    crash_site: Option<String>,
    /// `Check.forall` calls made so far (each gets its own seed).
    foralls: u64,
}

static ENTRIES: Mutex<Option<HashMap<u64, Entry>>> = Mutex::new(None);

/// The base seed of `Check` (`caravan test --seed S`), or 0 until one is
/// chosen.
static BASE_SEED: AtomicU64 = AtomicU64::new(0);
static SEED_SET: AtomicBool = AtomicBool::new(false);

/// Whether the test harness ran to its end (it calls
/// `caravan_test_finished` before `exit`).
static FINISHED: AtomicBool = AtomicBool::new(false);

/// The one test the harness runs (its number), or -1 for all.
static SELECTED: AtomicI64 = AtomicI64::new(-1);

/// The selected test's outcome: passed, and the explanation of a failure.
static OUTCOME: Mutex<Option<(bool, String)>> = Mutex::new(None);

/// Makes the harness run only test `index` (`None`: all) and hand its
/// outcome to [`take_outcome`] instead of printing a report (`caravan
/// test --schedules`).
pub fn select(index: Option<usize>) {
    SELECTED.store(index.map_or(-1, |i| i as i64), Ordering::SeqCst);
}

/// The outcome of the selected test in the last run: whether it passed,
/// and the harness's explanation of its failure (`None`: the run ended
/// before the test did).
pub fn take_outcome() -> Option<(bool, String)> {
    OUTCOME.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// Forgets what the last run recorded (crash sites, quiet processes, the
/// outcome, that it finished): serials start again at 1 in every VM, so a
/// run must not see its predecessor's entries.
pub fn reset() {
    with_entries(HashMap::clear);
    FINISHED.store(false, Ordering::SeqCst);
    take_outcome();
}

fn with_entries<T>(f: impl FnOnce(&mut HashMap<u64, Entry>) -> T) -> T {
    let mut g = ENTRIES.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(HashMap::new))
}

/// Fixes the base seed of every `Check.forall` (`caravan test --seed S`).
pub fn set_seed(seed: u64) {
    BASE_SEED.store(seed, Ordering::SeqCst);
    SEED_SET.store(true, Ordering::SeqCst);
}

/// The base seed: the one set with [`set_seed`], else one drawn from the
/// clock once per run (and printed by `Check.forall` on a failure, so the
/// run can be replayed).
pub fn base_seed() -> u64 {
    if !SEED_SET.load(Ordering::SeqCst) {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        // Seeds are printed and typed back: keep them short (0..10^9).
        let s = mix(t ^ u64::from(std::process::id())) % 1_000_000_000;
        if SEED_SET
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            BASE_SEED.store(s, Ordering::SeqCst);
        }
    }
    BASE_SEED.load(Ordering::SeqCst)
}

/// Whether the harness reached its end.
pub fn finished() -> bool {
    FINISHED.load(Ordering::SeqCst)
}

/// The crash observer for `caravan_vm::observe_crashes`: records where a
/// test or quiet process crashed and keeps its line off stderr (the runner
/// reports a test's crash itself; a quiet process's crash was expected).
/// Other processes' crashes are printed as usual.
pub fn crash_observer(serial: u64, _msg: &[u8], loc: Option<&[u8]>) -> bool {
    with_entries(|m| match m.get_mut(&serial) {
        Some(e) => {
            e.crash_site = loc.map(|l| String::from_utf8_lossy(l).into_owned());
            true
        }
        None => false,
    })
}

/// SplitMix64's output function (Steele, Lea & Flood 2014): a bijective
/// mix of 64 bits.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a name (to derive a test's seeds from its name).
fn hash_name(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `register name` (the harness, first thing in a test's process): this
/// process is the test `name`; its crash is reported by the runner.
///
/// # Safety
/// Called by generated code: `proc` is the running process, `name` a
/// string.
#[no_mangle]
pub unsafe extern "C" fn caravan_test_register(proc: *mut Process, name: Value) -> Value {
    // SAFETY: generated code passes its live process and a string.
    let (serial, name) = unsafe {
        (
            (*proc).serial(),
            String::from_utf8_lossy(string_bytes(name)).into_owned(),
        )
    };
    with_entries(|m| {
        m.entry(serial).or_default().test = Some(name);
    });
    caravan_vm::value::UNIT
}

/// `quiet ()`: the calling process's crash is expected (`Assert.crashes`,
/// a property under `Check.forall`): no crash line.
///
/// # Safety
/// Called by generated code: `proc` is the running process.
#[no_mangle]
pub unsafe extern "C" fn caravan_test_quiet(proc: *mut Process, _unit: Value) -> Value {
    // SAFETY: generated code passes its live process.
    let serial = unsafe { (*proc).serial() };
    with_entries(|m| m.entry(serial).or_default().quiet = true);
    caravan_vm::value::UNIT
}

/// `crash_site id`: where the process `id` crashed (`file:line:col`), or
/// `""`; forgets it (and the process).
///
/// # Safety
/// Called by generated code: `proc` is the running process, `id` a
/// process id.
#[no_mangle]
pub unsafe extern "C" fn caravan_test_crash_site(proc: *mut Process, id: Value) -> Value {
    let site = with_entries(|m| m.remove(&serial_of_pid(id)))
        .and_then(|e| e.crash_site)
        .unwrap_or_default();
    // SAFETY: generated code passes its live process.
    alloc_string(unsafe { &mut *proc }, site.as_bytes())
}

/// `finished ()`: the harness has printed its summary.
#[no_mangle]
pub extern "C" fn caravan_test_finished(_proc: *mut Process, _unit: Value) -> Value {
    FINISHED.store(true, Ordering::SeqCst);
    caravan_vm::value::UNIT
}

/// `selected ()`: the one test to run, or -1 for all (see [`select`]).
#[no_mangle]
pub extern "C" fn caravan_test_selected(_proc: *mut Process, _unit: Value) -> Value {
    of_int(SELECTED.load(Ordering::SeqCst))
}

/// `outcome index passed why`: the selected test's outcome (see
/// [`take_outcome`]).
///
/// # Safety
/// Called by generated code: `why` is a string.
#[no_mangle]
pub unsafe extern "C" fn caravan_test_outcome(
    _proc: *mut Process,
    _index: Value,
    passed: Value,
    why: Value,
) -> Value {
    // SAFETY: generated code passes a string.
    let why = String::from_utf8_lossy(unsafe { string_bytes(why) }).into_owned();
    *OUTCOME.lock().unwrap_or_else(|e| e.into_inner()) =
        Some((passed == caravan_vm::value::TRUE, why));
    caravan_vm::value::UNIT
}

/// `Check`'s seed for the next `forall` of the calling process: derived
/// from the base seed, the test's name (or the process) and how many
/// `forall`s the process ran before, so `--seed S` replays every property
/// of every test however the tests interleave. Non-negative, 62 bits.
///
/// # Safety
/// Called by generated code: `proc` is the running process.
#[no_mangle]
pub unsafe extern "C" fn caravan_check_seed(proc: *mut Process, _unit: Value) -> Value {
    // SAFETY: generated code passes its live process.
    let serial = unsafe { (*proc).serial() };
    let base = base_seed();
    let (who, n) = with_entries(|m| {
        let e = m.entry(serial).or_default();
        e.foralls += 1;
        let who = e.test.as_deref().map_or(serial, hash_name);
        (who, e.foralls)
    });
    of_int((mix(mix(base ^ mix(who)) ^ n) >> 2) as i64)
}

/// `Check`'s base seed, as `--seed` takes it.
#[no_mangle]
pub extern "C" fn caravan_check_base_seed(_proc: *mut Process, _unit: Value) -> Value {
    of_int(base_seed() as i64)
}

/// `random seed index bound`: the `index`-th pseudo-random choice of the
/// stream `seed`, uniform in `[0, bound]` (`bound >= 0`; 0 when it is
/// negative). A pure function: the same arguments give the same choice.
#[no_mangle]
pub extern "C" fn caravan_check_random(
    _proc: *mut Process,
    seed: Value,
    index: Value,
    bound: Value,
) -> Value {
    let (seed, index, bound) = (int_of(seed) as u64, int_of(index) as u64, int_of(bound));
    if bound <= 0 {
        return of_int(0);
    }
    let r = mix(mix(seed) ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
    // Bound + 1 fits in u64 (bound < 2^62); the modulo bias is below
    // 2^-1 for the largest bounds and negligible for small ones.
    of_int((r % (bound as u64 + 1)) as i64)
}

/// `(symbol, address)` of the testing builtins, for the JIT.
pub fn symbols() -> Vec<(&'static str, *const u8)> {
    vec![
        ("caravan_test_register", caravan_test_register as *const u8),
        ("caravan_test_quiet", caravan_test_quiet as *const u8),
        (
            "caravan_test_crash_site",
            caravan_test_crash_site as *const u8,
        ),
        ("caravan_test_finished", caravan_test_finished as *const u8),
        ("caravan_test_selected", caravan_test_selected as *const u8),
        ("caravan_test_outcome", caravan_test_outcome as *const u8),
        ("caravan_check_seed", caravan_check_seed as *const u8),
        (
            "caravan_check_base_seed",
            caravan_check_base_seed as *const u8,
        ),
        ("caravan_check_random", caravan_check_random as *const u8),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_choices_are_pure_and_in_bounds() {
        let p = std::ptr::null_mut();
        for i in 0..1000 {
            let a = caravan_check_random(p, of_int(7), of_int(i), of_int(10));
            assert_eq!(a, caravan_check_random(p, of_int(7), of_int(i), of_int(10)));
            assert!((0..=10).contains(&int_of(a)));
        }
        let big = caravan_check_random(p, of_int(1), of_int(2), of_int(i64::MAX >> 1));
        assert!(int_of(big) >= 0);
        assert_eq!(
            int_of(caravan_check_random(p, of_int(1), of_int(2), of_int(-5))),
            0
        );
    }
}
