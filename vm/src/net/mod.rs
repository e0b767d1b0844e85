//! Network I/O on the schedulers (LANGUAGE.md §6; architecture decision 9):
//! an I/O poller on mio (edge-triggered epoll), a socket table whose
//! sockets belong to processes, and the `Tcp` runtime functions.
//!
//! The protocol is Go's netpoller (`runtime/netpoll.go`): every socket is
//! registered once, for both directions, edge-triggered, with a token that
//! is its table slot and generation (an event for a closed socket — or for
//! a new socket that reuses its descriptor — is dropped). Each socket has
//! one state word per direction, a `pollDesc`:
//!
//! * `EMPTY` (0): nothing known;
//! * `READY` (1): an edge arrived that nobody consumed yet;
//! * `WAITER(serial)` (`serial << 1`): that process waits for the edge.
//!
//! A process that wants to read consumes `READY` (CAS to `EMPTY`), tries the
//! system call and, on `EAGAIN`, asks its scheduler to park it
//! ([`crate::process::WaitKind::Io`]). The scheduler parks it under its
//! mailbox lock — from then on a timeout, an exit signal or a wake-up can
//! take it — and then publishes the waiter with a CAS from `EMPTY`; if the
//! word is `READY` (the edge arrived between the system call and the
//! publication) it takes the process back at once. The poller swaps the word
//! to `READY` on an edge and, if it held a waiter, wakes it the way a
//! message does (under the process's lock, only if it still waits for this
//! socket and direction): readiness, the timeout, an exit signal and a close
//! race to wake a process, and exactly one wins.
//!
//! Who polls (Go's `findrunnable` and `sysmon`): a scheduler about to park
//! polls without blocking; the scheduler that parks last blocks in
//! `epoll_wait` until its next timer, and a mio `Waker` breaks that wait
//! when work appears; a scheduler also polls every `GLOBAL_EVERY` rounds,
//! and sysmon polls when nobody has for 10 ms, so CPU-bound processes never
//! starve I/O.

pub(crate) mod poll;
mod socket;
pub mod tcp;

pub(crate) use poll::{Poller, READ, WRITE};
pub(crate) use socket::{Socket, SocketTable};

/// The network state of one VM: the poller and the socket table.
pub(crate) struct Net {
    pub(crate) poller: Poller,
    pub(crate) sockets: SocketTable,
}

impl Net {
    /// A poller and an empty socket table; `None` if the system refuses an
    /// epoll instance (the VM then runs without network I/O).
    pub(crate) fn new() -> Option<Net> {
        Some(Net {
            poller: Poller::new()?,
            sockets: SocketTable::new(),
        })
    }
}
