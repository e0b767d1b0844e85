//! The deterministic scheduler of `caravan test --schedules N`
//! (LANGUAGE.md §8): one scheduler thread whose every choice comes from a
//! seed, and a virtual clock, so that one seed is one interleaving,
//! replayed exactly every time.
//!
//! * **Which process runs** — PCT (Burckhardt, Kothari, Musuvathi and
//!   Nagarakatte, "A randomized scheduler with probabilistic guarantees of
//!   finding bugs", ASPLOS 2010): every process gets a random priority when
//!   first seen, and the runnable process with the highest one runs. At a
//!   priority-change point the process that just ran drops below every
//!   other. PCT draws its d − 1 change points among the run's k steps;
//!   here k is not known in advance (and a replay must not depend on an
//!   earlier run), so each step is a change point with a probability drawn
//!   per schedule — the same shape, scale-free.
//! * **Where it is preempted** — a step is a slice, and a slice ends at a
//!   function entry when its reductions run out (or at a blocking receive,
//!   a `Process.yield`, …). The budget of each slice is a seeded choice,
//!   usually small, so slices end at varied function entries.
//! * **Time** — a virtual clock per scheduler thread ([`now`]): every
//!   slice advances it by [`SLICE_NS`] plus [`REDUCTION_NS`] per reduction
//!   used; when nothing is runnable it jumps to the next timer's deadline,
//!   so `after`, `sleep` and timers cost no waiting. While sockets are
//!   open, an idle scheduler waits for readiness in real time instead
//!   (advancing the clock by what it waited): I/O is not virtual.
//! * **I/O** — a process waiting on a socket is not runnable until the
//!   poller reports readiness; the scheduler polls (without blocking) only
//!   when nothing else is runnable.
//!
//! Processes still move through the ordinary queues (`runnext`, the local
//! queue, the global queue): [`Scheduler::det_find_work`] drains them into
//! its own runnable set, in an order that only depends on what ran before.

use super::*;
use std::cell::Cell;
use std::collections::HashMap;
use std::time::Duration;

/// Virtual time every slice costs, besides its reductions.
pub(crate) const SLICE_NS: u64 = 10_000;
/// Virtual time per reduction (a full slice of [`CONTEXT_REDS`] is 1 ms).
pub(crate) const REDUCTION_NS: u64 = 250;
/// Longest real wait for socket readiness before the virtual clock is
/// looked at again.
const IO_WAIT: Duration = Duration::from_millis(10);

thread_local! {
    /// A deterministic scheduler thread's clock: when it started, and the
    /// virtual nanoseconds since (`None`: real time).
    static CLOCK: Cell<Option<(Instant, u64)>> = const { Cell::new(None) };
    /// The schedule's seed on its scheduler thread.
    static SEED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// The time every timeout of the language is measured with: the virtual
/// clock on a deterministic scheduler's thread, else the real one.
#[inline]
pub fn now() -> Instant {
    match CLOCK.with(Cell::get) {
        Some((start, ns)) => start + Duration::from_nanos(ns),
        None => Instant::now(),
    }
}

/// Virtual milliseconds since the deterministic run started (`None` off a
/// deterministic scheduler's thread): `Time.now_ms` of a schedule.
pub fn virtual_ms() -> Option<i64> {
    CLOCK.with(Cell::get).map(|(_, ns)| (ns / 1_000_000) as i64)
}

/// The seed of the schedule running on this thread, if it is a
/// deterministic scheduler's (builtins seed their randomness with it, so a
/// replay draws the same numbers).
pub fn schedule_seed() -> Option<u64> {
    SEED.with(Cell::get)
}

fn advance(ns: u64) {
    CLOCK.with(|c| {
        if let Some((start, t)) = c.get() {
            c.set(Some((start, t.saturating_add(ns))));
        }
    });
}

fn advance_to(deadline: Instant) {
    CLOCK.with(|c| {
        if let Some((start, t)) = c.get() {
            let ns = deadline.saturating_duration_since(start).as_nanos() as u64;
            c.set(Some((start, t.max(ns))));
        }
    });
}

/// SplitMix64 (Steele, Lea & Flood 2014): the schedule's random stream.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Slice budgets a schedule draws from (at most this many reductions).
const BUDGETS: [i64; 8] = [1, 2, 4, 8, 16, 64, 256, CONTEXT_REDS];
/// One step in this many is a priority-change point (one choice per
/// schedule).
const CHANGE_EVERY: [u64; 6] = [2, 4, 8, 16, 64, 256];

/// The state of one deterministic schedule (in the scheduler's `Local`).
pub(crate) struct Det {
    rng: u64,
    /// Runnable processes, in the order they became runnable.
    runnable: Vec<*mut Process>,
    /// Priority by serial (higher runs first).
    prio: HashMap<u64, u64>,
    /// The priority the next demoted process gets (below all others).
    lowest: u64,
    change_every: u64,
    max_budget: i64,
    /// The process that ran the last step, and the budget it was given.
    last: Option<u64>,
    budget: i64,
}

impl Det {
    pub(crate) fn new(seed: u64) -> Det {
        let mut d = Det {
            rng: mix(seed),
            runnable: Vec::new(),
            prio: HashMap::new(),
            lowest: 1 << 61,
            change_every: 1,
            max_budget: 1,
            last: None,
            budget: 0,
        };
        d.max_budget = BUDGETS[d.below(BUDGETS.len() as u64) as usize];
        d.change_every = CHANGE_EVERY[d.below(CHANGE_EVERY.len() as u64) as usize];
        d
    }

    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.rng)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Adds a process that became runnable (a new one gets its random
    /// priority, above every demoted one).
    fn push(&mut self, p: *mut Process) {
        // SAFETY: the caller took `p` from a run queue: we own it.
        let serial = unsafe { (*p).serial };
        if !self.prio.contains_key(&serial) {
            let pr = (1 << 62) | (self.next() >> 2);
            self.prio.insert(serial, pr);
        }
        self.runnable.push(p);
    }

    /// The next process to run: the highest priority (ties by serial),
    /// after demoting the last one at a change point.
    fn pick(&mut self) -> Option<*mut Process> {
        if let Some(s) = self.last.take() {
            if self.below(self.change_every) == 0 {
                self.prio.insert(s, self.lowest);
                self.lowest -= 1;
            }
        }
        let key = |p: &*mut Process| {
            // SAFETY: queued processes are ours.
            let s = unsafe { (**p).serial };
            (self.prio.get(&s).copied().unwrap_or(0), s)
        };
        let (i, _) = self
            .runnable
            .iter()
            .enumerate()
            .max_by_key(|(_, p)| key(p))?;
        let p = self.runnable.remove(i);
        // SAFETY: ours, as above.
        self.last = Some(unsafe { (*p).serial });
        Some(p)
    }

    /// The budget of the slice about to start.
    pub(crate) fn slice_budget(&mut self) -> i64 {
        self.budget = 1 + self.below(self.max_budget as u64) as i64;
        self.budget
    }

    /// A slice ended with `left` reductions of its budget: the clock moves.
    pub(crate) fn slice_done(&mut self, left: i64) {
        let used = (self.budget - left).max(0) as u64;
        advance(SLICE_NS + used * REDUCTION_NS);
    }

    /// Frees the processes still in the runnable set (at shutdown).
    pub(crate) fn drain(&mut self) {
        for p in self.runnable.drain(..) {
            // SAFETY: the set owned it.
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

/// Starts the virtual clock and records the seed on this (scheduler)
/// thread.
pub(crate) fn start_thread(seed: u64) {
    CLOCK.with(|c| c.set(Some((Instant::now(), 0))));
    SEED.with(|s| s.set(Some(seed)));
}

impl Scheduler {
    /// Moves every queued process (`runnext`, the local queue, the global
    /// queue, in that order) into the deterministic runnable set.
    fn det_collect(&self, det: &mut Det) {
        let vm = self.vm();
        let rn = self
            .slot()
            .runnext
            .swap(std::ptr::null_mut(), Ordering::AcqRel);
        if !rn.is_null() {
            det.push(rn);
        }
        // SAFETY: owning thread, short borrow.
        while let Some(p) = unsafe { self.local() }.worker.pop() {
            det.push(p.0);
        }
        loop {
            match vm.injector.steal() {
                Steal::Success(p) => det.push(p.0),
                Steal::Retry => continue,
                Steal::Empty => break,
            }
        }
    }

    /// [`Scheduler::find_work`] of a deterministic schedule.
    pub(crate) fn det_find_work(&self) -> Option<(*mut Process, bool)> {
        let vm = self.vm();
        loop {
            if vm.shutdown.load(Ordering::Relaxed) {
                return None;
            }
            let next_deadline = self.fire_timers();
            {
                // Taken out of `Local` while the queues are drained (they
                // borrow it too); put back at once.
                // SAFETY: owning thread, short borrows.
                let mut det = unsafe { self.local() }.det.take()?;
                self.det_collect(&mut det);
                let picked = det.pick();
                // SAFETY: as above.
                unsafe { self.local() }.det = Some(det);
                if let Some(p) = picked {
                    return Some((p, false));
                }
            }
            if self.netpoll_local() {
                continue;
            }
            let sockets = vm.net.as_ref().is_some_and(|n| !n.sockets.all().is_empty());
            if sockets {
                // I/O is real: wait for readiness in real time, at most
                // until the next virtual deadline.
                let wait = next_deadline
                    .map_or(IO_WAIT, |d| d.saturating_duration_since(now()).min(IO_WAIT));
                let t0 = Instant::now();
                if self.park(Some(t0 + wait)) {
                    // Deterministic schedules do not spin.
                    vm.stop_spinning(false);
                }
                advance(t0.elapsed().as_nanos() as u64);
                continue;
            }
            match next_deadline {
                // Everything waits: the clock jumps to the next timer.
                Some(d) => advance_to(d),
                // Nothing will ever run by itself: wait for the host.
                None => {
                    if self.park(None) {
                        vm.stop_spinning(false);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_is_one_stream_of_choices() {
        let draw = |seed| {
            let mut d = Det::new(seed);
            (0..64).map(|_| d.slice_budget()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert!((0..20).any(|s| draw(s) != draw(7)));
        for b in draw(3) {
            assert!((1..=CONTEXT_REDS).contains(&b));
        }
    }

    #[test]
    fn the_virtual_clock_only_moves_on_a_deterministic_thread() {
        std::thread::spawn(|| {
            assert_eq!(virtual_ms(), None);
            start_thread(1);
            let t0 = now();
            advance(2_500_000);
            assert_eq!(virtual_ms(), Some(2));
            assert_eq!(now() - t0, Duration::from_nanos(2_500_000));
            advance_to(t0 + Duration::from_millis(10));
            assert_eq!(virtual_ms(), Some(10));
            advance_to(t0);
            assert_eq!(virtual_ms(), Some(10));
        })
        .join()
        .unwrap();
    }
}
