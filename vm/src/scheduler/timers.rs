//! Timer entries of the schedulers' timer heaps: wake-ups of waits
//! (`receive ... after`, `sleep`, `call` timeouts) and `Timer.send_after`
//! messages, ordered by deadline with lazy cancellation.

use super::*;

pub(crate) struct Timer {
    pub(crate) deadline: Instant,
    pub(crate) seq: u64,
    pub(crate) shared: Arc<Shared>,
    /// A `Timer.send_after` timer: at the deadline its message goes to
    /// `shared`'s mailbox (`seq` is then the timer's id). `None`: a wake-up
    /// of `shared`'s wait `seq`.
    pub(crate) send: Option<Box<crate::timers_api::SendTimer>>,
}

impl PartialEq for Timer {
    fn eq(&self, o: &Self) -> bool {
        self.deadline == o.deadline && self.seq == o.seq
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Timer {
    // Reversed: BinaryHeap is a max-heap, we want the earliest deadline.
    // Ties by `seq`: `send_after` timers due at the same instant fire in
    // the order they were set.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.deadline, o.seq).cmp(&(self.deadline, self.seq))
    }
}

impl Timer {
    pub(crate) fn is_stale(&self) -> bool {
        match &self.send {
            Some(s) => s.is_cancelled(),
            None => self.shared.wait_seq.load(Ordering::Relaxed) != self.seq,
        }
    }
}
