//! The poller: one mio `Poll` (epoll, edge-triggered) per VM, polled by one
//! thread at a time, and the per-direction state words of Go's `pollDesc`
//! (see the module above for the protocol).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Direction index of the read state word.
pub(crate) const READ: u8 = 0;
/// Direction index of the write state word.
pub(crate) const WRITE: u8 = 1;

/// Nothing known.
const EMPTY: u64 = 0;
/// An edge arrived that nobody consumed.
const READY: u64 = 1;

/// The token the waker's events carry (no socket has it: socket tokens
/// have a generation of at least 1 in their high half).
const WAKE_TOKEN: mio::Token = mio::Token(0);

/// Events taken per `epoll_wait`.
const EVENTS: usize = 256;

/// What [`Poller::poll`] reports of one event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Readiness {
    /// The socket's token.
    pub token: u64,
    /// Readable, read side closed, or an error: readers should retry.
    pub read: bool,
    /// Writable, write side closed, or an error: writers should retry.
    pub write: bool,
}

/// The VM's poller.
pub(crate) struct Poller {
    poll: Mutex<(mio::Poll, mio::Events)>,
    registry: mio::Registry,
    waker: mio::Waker,
    /// A scheduler is blocked in `epoll_wait` (the waker must break it).
    blocking: AtomicBool,
    /// When the last poll ended, in ms since `epoch` (for sysmon).
    last_poll_ms: AtomicU64,
    epoch: Instant,
}

impl Poller {
    /// A new epoll instance with its waker; `None` if the system refuses.
    pub(crate) fn new() -> Option<Poller> {
        let poll = mio::Poll::new().ok()?;
        let registry = poll.registry().try_clone().ok()?;
        let waker = mio::Waker::new(poll.registry(), WAKE_TOKEN).ok()?;
        Some(Poller {
            poll: Mutex::new((poll, mio::Events::with_capacity(EVENTS))),
            registry,
            waker,
            blocking: AtomicBool::new(false),
            last_poll_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// Registers `source` once, for both directions, edge-triggered.
    pub(crate) fn register(
        &self,
        source: &mut impl mio::event::Source,
        token: u64,
    ) -> std::io::Result<()> {
        self.registry.register(
            source,
            mio::Token(token as usize),
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )
    }

    /// Stops watching descriptor `fd` (before it is closed).
    pub(crate) fn deregister(&self, fd: std::os::fd::RawFd) {
        let _ = self.registry.deregister(&mut mio::unix::SourceFd(&fd));
    }

    /// Breaks a blocking poll (after new work appeared for a parked
    /// scheduler).
    pub(crate) fn wake(&self) {
        if self.blocking.load(Ordering::SeqCst) {
            let _ = self.waker.wake();
        }
    }

    /// Whether a thread is blocked in `epoll_wait` (and so serves I/O).
    pub(crate) fn is_blocking(&self) -> bool {
        self.blocking.load(Ordering::SeqCst)
    }

    /// Milliseconds since the last poll ended (0 while a scheduler is
    /// blocked in one).
    pub(crate) fn idle_ms(&self) -> u64 {
        if self.blocking.load(Ordering::Relaxed) {
            return 0;
        }
        let now = self.epoch.elapsed().as_millis() as u64;
        now.saturating_sub(self.last_poll_ms.load(Ordering::Relaxed))
    }

    /// Polls once — without blocking for `None`, else until `deadline` (or
    /// forever for `Some(None)`), or until [`Poller::wake`] — and calls
    /// `on` for every socket event. Returns false, doing nothing, when
    /// another thread is polling. `before_block` runs once the poller is
    /// marked as blocking and must return false to skip the wait (work
    /// arrived meanwhile).
    pub(crate) fn poll(
        &self,
        deadline: Option<Option<Instant>>,
        before_block: impl FnOnce() -> bool,
        mut on: impl FnMut(Readiness),
    ) -> bool {
        let Ok(mut g) = self.poll.try_lock() else {
            return false;
        };
        let (poll, events) = &mut *g;
        let timeout = match deadline {
            None => Some(Duration::ZERO),
            Some(d) => {
                self.blocking.store(true, Ordering::SeqCst);
                if !before_block() {
                    Some(Duration::ZERO)
                } else {
                    d.map(|d| d.saturating_duration_since(Instant::now()))
                }
            }
        };
        let r = poll.poll(events, timeout);
        self.blocking.store(false, Ordering::SeqCst);
        self.last_poll_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        if r.is_err() {
            // EINTR: nothing happened; the caller looks again.
            return true;
        }
        for e in events.iter() {
            if e.token() == WAKE_TOKEN {
                continue;
            }
            let err = e.is_error();
            on(Readiness {
                token: e.token().0 as u64,
                read: e.is_readable() || e.is_read_closed() || err,
                write: e.is_writable() || e.is_write_closed() || err,
            });
        }
        true
    }
}

/// One direction's state word of a socket (Go's `pollDesc.rg`/`wg`).
#[derive(Default)]
pub(crate) struct PollState(AtomicU64);

impl PollState {
    /// Takes an unconsumed edge: true if there was one (retry the system
    /// call before waiting).
    pub(crate) fn consume_ready(&self) -> bool {
        self.0
            .compare_exchange(READY, EMPTY, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Publishes `serial` as the waiter (its process is already parked);
    /// returns true if an edge arrived first — the caller must wake the
    /// process itself. A stale waiter (a process woken otherwise) is
    /// replaced: one waiter per direction.
    pub(crate) fn publish_waiter(&self, serial: u64) -> bool {
        let me = serial << 1;
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            if cur == READY {
                // Consume it: the process retries its system call.
                match self
                    .0
                    .compare_exchange(READY, EMPTY, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => return true,
                    Err(c) => cur = c,
                }
                continue;
            }
            match self
                .0
                .compare_exchange(cur, me, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return false,
                Err(c) => cur = c,
            }
        }
    }

    /// An edge: marks the direction ready and returns the waiter to wake,
    /// if one was published.
    pub(crate) fn set_ready(&self) -> Option<u64> {
        let old = self.0.swap(READY, Ordering::AcqRel);
        (old != EMPTY && old != READY).then_some(old >> 1)
    }

    /// After a wait ended (timeout, close, a signal): withdraws `serial`
    /// as the waiter if it is still published.
    pub(crate) fn withdraw(&self, serial: u64) {
        let _ = self
            .0
            .compare_exchange(serial << 1, EMPTY, Ordering::AcqRel, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edge_before_publication_is_not_lost() {
        let s = PollState::default();
        assert!(!s.consume_ready());
        // The edge arrives between EAGAIN and the publication.
        assert_eq!(s.set_ready(), None);
        assert!(s.publish_waiter(7), "the waiter must retry at once");
        // Consumed: the next publication waits.
        assert!(!s.publish_waiter(7));
        // The edge now wakes the waiter, once.
        assert_eq!(s.set_ready(), Some(7));
        assert_eq!(s.set_ready(), None);
        assert!(s.consume_ready());
        assert!(!s.consume_ready());
    }

    #[test]
    fn a_withdrawn_waiter_is_not_woken() {
        let s = PollState::default();
        assert!(!s.publish_waiter(9));
        s.withdraw(3);
        assert!(!s.consume_ready());
        s.withdraw(9);
        assert_eq!(s.set_ready(), None);
        // A stale waiter is replaced by a new one.
        let t = PollState::default();
        assert!(!t.publish_waiter(4));
        assert!(!t.publish_waiter(5));
        assert_eq!(t.set_ready(), Some(5));
    }

    #[test]
    fn the_waker_breaks_a_blocking_poll() {
        let p = std::sync::Arc::new(Poller::new().unwrap());
        let q = p.clone();
        let t = std::thread::spawn(move || {
            let start = Instant::now();
            let mut n = 0;
            assert!(q.poll(Some(None), || true, |_| n += 1));
            (start.elapsed(), n)
        });
        // Until the poller is blocking, a wake is not needed (and skipped).
        while !p.blocking.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(20));
        p.wake();
        let (waited, n) = t.join().unwrap();
        assert!(waited >= Duration::from_millis(20));
        assert_eq!(n, 0, "the waker's own event is not a socket's");
        // Another thread polling: a second poll does nothing.
        assert!(p.poll(None, || true, |_| {}));
    }
}
