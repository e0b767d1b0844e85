//! The socket table: every socket the VM's processes opened, by a token
//! that is its slot and a generation (so a handle or an event that outlived
//! its socket finds nothing), with its owner and its poll states.
//!
//! A socket belongs to the process that opened or accepted it (or was
//! given it, `Tcp.give_away`); when that process ends, however it ends, an
//! exit hook closes every socket it still owns. A handle is the immediate
//! int of the token: handles compare by identity and hold no memory.

use super::poll::PollState;
use crate::term::WordMap;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// What a socket is.
pub(crate) enum Kind {
    /// A listening socket (`Tcp.listener`).
    Listener(mio::net::TcpListener),
    /// A connected (or connecting) stream (`Tcp.socket`).
    Stream(mio::net::TcpStream),
}

/// Where an active-once socket delivers its next event: the owner's
/// serial and the wrapper (`tcp_event -> 'm`), copied out of its heap.
pub(crate) struct Active {
    /// The receiving process.
    pub to: u64,
    /// The wrapper, frozen (a copy in memory of its own).
    pub wrap: crate::otp_api::Frozen,
}

/// One socket.
pub(crate) struct Socket {
    /// Slot and generation: the handle's int and the poller's token.
    pub token: u64,
    /// The mio socket (non-blocking, registered once).
    pub kind: Kind,
    /// Go's `pollDesc.rg`.
    pub read: PollState,
    /// Go's `pollDesc.wg`.
    pub write: PollState,
    /// The owning process's serial.
    pub owner: AtomicU64,
    /// Closed: every operation answers `Closed`.
    pub closed: AtomicBool,
    /// Active once (`Tcp.activate`): the next event goes to `active_to`.
    pub active: AtomicBool,
    /// Where the next active event goes.
    pub active_to: Mutex<Option<Active>>,
}

impl Socket {
    /// The descriptor.
    pub(crate) fn fd(&self) -> RawFd {
        match &self.kind {
            Kind::Listener(l) => l.as_raw_fd(),
            Kind::Stream(s) => s.as_raw_fd(),
        }
    }

    /// The state word of direction `dir` (`READ` or `WRITE`).
    pub(crate) fn state(&self, dir: u8) -> &PollState {
        if dir == super::READ {
            &self.read
        } else {
            &self.write
        }
    }

    /// The stream, if this is one.
    pub(crate) fn stream(&self) -> Option<&mio::net::TcpStream> {
        match &self.kind {
            Kind::Stream(s) => Some(s),
            Kind::Listener(_) => None,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Slots {
    /// (generation, socket) per slot.
    slots: Vec<(u32, Option<Arc<Socket>>)>,
    free: Vec<u32>,
}

/// The table.
pub(crate) struct SocketTable {
    slots: Mutex<Slots>,
    /// Sockets by owner serial (for the exit hook).
    owned: Mutex<WordMap<Vec<u64>>>,
}

/// Token of slot `i` at generation `g` (`g >= 1`: no token is 0, the
/// waker's).
fn token(i: u32, g: u32) -> u64 {
    ((g as u64) << 32) | i as u64
}

impl SocketTable {
    pub(crate) fn new() -> Self {
        SocketTable {
            slots: Mutex::new(Slots {
                slots: Vec::new(),
                free: Vec::new(),
            }),
            owned: Mutex::new(WordMap::default()),
        }
    }

    /// Reserves a slot: the token the new socket will have.
    pub(crate) fn reserve(&self) -> u64 {
        let mut s = lock(&self.slots);
        let i = match s.free.pop() {
            Some(i) => i,
            None => {
                s.slots.push((0, None));
                (s.slots.len() - 1) as u32
            }
        };
        let slot = &mut s.slots[i as usize];
        // Generations stay below 2^31 (a token shifted by one still fits).
        slot.0 = if slot.0 >= (1 << 31) - 1 {
            1
        } else {
            slot.0 + 1
        };
        token(i, slot.0)
    }

    /// Gives back a reserved slot that got no socket.
    pub(crate) fn unreserve(&self, tok: u64) {
        let mut s = lock(&self.slots);
        s.free.push(tok as u32);
    }

    /// Installs `sock` (made for a token from [`SocketTable::reserve`])
    /// owned by `owner`. Returns true if `owner` owned no socket before (its
    /// exit hook must be installed).
    pub(crate) fn insert(&self, sock: Arc<Socket>, owner: u64) -> bool {
        let tok = sock.token;
        lock(&self.slots).slots[tok as u32 as usize].1 = Some(sock);
        let mut o = lock(&self.owned);
        let list = o.entry(owner).or_default();
        list.push(tok);
        list.len() == 1
    }

    /// The socket of a handle's token, if it is still open.
    pub(crate) fn get(&self, tok: u64) -> Option<Arc<Socket>> {
        let i = tok as u32 as usize;
        let g = (tok >> 32) as u32;
        let s = lock(&self.slots);
        match s.slots.get(i) {
            Some((gen, Some(sock))) if *gen == g => Some(sock.clone()),
            _ => None,
        }
    }

    /// Removes a socket from the table (its slot is free again, with a new
    /// generation at its next use) and from its owner's list.
    pub(crate) fn remove(&self, sock: &Socket) -> bool {
        let tok = sock.token;
        let i = tok as u32 as usize;
        let removed = {
            let mut s = lock(&self.slots);
            match s.slots.get_mut(i) {
                Some((gen, slot)) if *gen == (tok >> 32) as u32 && slot.is_some() => {
                    *slot = None;
                    s.free.push(i as u32);
                    true
                }
                _ => false,
            }
        };
        if removed {
            let owner = sock.owner.load(Ordering::Acquire);
            let mut o = lock(&self.owned);
            if let Some(list) = o.get_mut(&owner) {
                list.retain(|&t| t != tok);
                if list.is_empty() {
                    o.remove(&owner);
                }
            }
        }
        removed
    }

    /// Moves a socket to a new owner; returns true if `to` owned no socket
    /// before (its exit hook must be installed).
    pub(crate) fn transfer(&self, sock: &Socket, to: u64) -> bool {
        let tok = sock.token;
        let mut o = lock(&self.owned);
        let from = sock.owner.swap(to, Ordering::AcqRel);
        if let Some(list) = o.get_mut(&from) {
            list.retain(|&t| t != tok);
            if list.is_empty() {
                o.remove(&from);
            }
        }
        let list = o.entry(to).or_default();
        list.push(tok);
        list.len() == 1
    }

    /// The tokens `owner` owns (taken out: its exit hook closes them).
    pub(crate) fn take_owned(&self, owner: u64) -> Vec<u64> {
        lock(&self.owned).remove(&owner).unwrap_or_default()
    }

    /// Every open socket (at shutdown).
    pub(crate) fn all(&self) -> Vec<Arc<Socket>> {
        lock(&self.slots)
            .slots
            .iter()
            .filter_map(|s| s.1.clone())
            .collect()
    }
}
