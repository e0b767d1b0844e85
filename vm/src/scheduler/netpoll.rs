//! The scheduler's side of the I/O poller (`crate::net`): publishing a
//! parked process as a socket's waiter, turning readiness into wake-ups
//! and active-once messages, closing sockets, and polling — without
//! blocking when work may be waiting, blocking when a scheduler parks.

use super::*;
use crate::net::tcp::{of_wait_key, read_event, wait_key, TcpEvent};
use crate::net::{Socket, READ, WRITE};
use crate::process::{Msg, Signal};

impl Vm {
    /// Publishes the parked process `serial` as the waiter of the socket
    /// and direction of `key`; true if readiness arrived first (or the
    /// socket is gone): the caller wakes the process at once.
    pub(crate) fn publish_io_waiter(&self, key: u64, serial: u64) -> bool {
        let (token, dir) = of_wait_key(key);
        let Some(s) = self.net.as_ref().and_then(|n| n.sockets.get(token)) else {
            return true;
        };
        if s.closed.load(Ordering::Acquire) {
            return true;
        }
        s.state(dir).publish_waiter(serial)
    }

    /// The process `serial` if it waits for `key`, taken out of its wait.
    fn wake_io(&self, serial: u64, key: u64) -> *mut Process {
        let Some(sh) = self.table.get(serial) else {
            return std::ptr::null_mut();
        };
        let mut g = sh.lock();
        sh.wake_if(&mut g, |k| k == WaitKind::Io(key))
    }

    /// Handles one readiness event: wakes the waiter of each ready
    /// direction, and delivers an active socket's event. Stale tokens (a
    /// closed socket, a reused descriptor) find nothing.
    pub(crate) fn on_readiness(
        &self,
        r: crate::net::poll::Readiness,
        woken: &mut Vec<*mut Process>,
    ) {
        let Some(s) = self.net.as_ref().and_then(|n| n.sockets.get(r.token)) else {
            return;
        };
        if r.read {
            if let Some(serial) = s.read.set_ready() {
                let p = self.wake_io(serial, wait_key(s.token, READ));
                if !p.is_null() {
                    woken.push(p);
                }
            }
            if s.active.load(Ordering::SeqCst) {
                self.deliver_active(&s, woken);
            }
        }
        if r.write {
            if let Some(serial) = s.write.set_ready() {
                let p = self.wake_io(serial, wait_key(s.token, WRITE));
                if !p.is_null() {
                    woken.push(p);
                }
            }
        }
    }

    /// Delivers an active-once socket's next event if one has arrived
    /// (whoever claims the active flag reads; a read that finds nothing
    /// gives the flag back and looks again if an edge came meanwhile).
    pub(crate) fn deliver_active(&self, s: &Socket, woken: &mut Vec<*mut Process>) {
        let mut buf = Vec::new();
        loop {
            if s.active
                .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                return;
            }
            match read_event(s, &mut buf) {
                Some(ev) => {
                    let target = s.active_to.lock().unwrap_or_else(|e| e.into_inner()).take();
                    if let Some(a) = target {
                        self.send_tcp_event(a.to, a.wrap, ev, &mut |p| woken.push(p));
                    }
                    return;
                }
                None => {
                    s.active.store(true, Ordering::SeqCst);
                    if !s.read.consume_ready() {
                        return;
                    }
                }
            }
        }
    }

    /// Puts `wrap event` (to be built by the receiver) in `to`'s mailbox;
    /// `push` gets the receiver if this woke it.
    pub(crate) fn send_tcp_event(
        &self,
        to: u64,
        wrap: crate::otp_api::Frozen,
        event: TcpEvent,
        push: &mut dyn FnMut(*mut Process),
    ) {
        let Some(sh) = self.table.get(to) else {
            return;
        };
        let (value, frag) = wrap.into_parts();
        let m = Msg {
            value,
            frag,
            signal: Some(Box::new(Signal::Tcp(event))),
            small: crate::process::Small::NONE,
        };
        let mut rejected = None;
        let woken = {
            let mut g = sh.lock();
            if g.state == ProcState::Exited {
                rejected = Some(m);
                std::ptr::null_mut()
            } else {
                g.inbox.push(m);
                sh.note_mail();
                sh.wake_if(&mut g, |k| k == WaitKind::Receive)
            }
        };
        drop(rejected);
        if !woken.is_null() {
            push(woken);
        }
    }

    /// Closes a socket: out of the table and the poller, the peer sees end
    /// of stream, and processes waiting on it are woken (they find it
    /// closed). Closing twice does nothing. May run on any thread.
    pub(crate) fn close_socket(&self, s: &Socket) {
        let Some(n) = self.net.as_ref() else {
            return;
        };
        if s.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        n.sockets.remove(s);
        n.poller.deregister(s.fd());
        if let Some(st) = s.stream() {
            let _ = st.shutdown(std::net::Shutdown::Both);
        }
        s.active.store(false, Ordering::SeqCst);
        drop(s.active_to.lock().unwrap_or_else(|e| e.into_inner()).take());
        for dir in [READ, WRITE] {
            if let Some(serial) = s.state(dir).set_ready() {
                let p = self.wake_io(serial, wait_key(s.token, dir));
                if !p.is_null() {
                    self.push_injector(p);
                }
            }
        }
    }

    /// Polls without blocking (if no other thread is polling); the woken
    /// processes are appended to `woken`.
    pub(crate) fn netpoll_now(&self, woken: &mut Vec<*mut Process>) {
        if let Some(n) = self.net.as_ref() {
            n.poller
                .poll(None, || true, |r| self.on_readiness(r, woken));
        }
    }

    /// Closes every socket still open (at shutdown).
    pub(crate) fn close_all_sockets(&self) {
        if let Some(n) = self.net.as_ref() {
            for s in n.sockets.all() {
                self.close_socket(&s);
            }
        }
    }

    /// Wakes parked scheduler `i`: its condition variable, or the poller
    /// if it is the one blocked in `epoll_wait`.
    pub(crate) fn unpark_scheduler(&self, i: usize) {
        let p = &self.parkers[i];
        p.unpark();
        if p.polling.load(Ordering::SeqCst) {
            if let Some(n) = self.net.as_ref() {
                n.poller.wake();
            }
        }
    }
}

impl Scheduler {
    /// Polls without blocking and queues what it woke here; true if it
    /// woke anything.
    pub(crate) fn netpoll_local(&self) -> bool {
        let mut woken = Vec::new();
        self.vm().netpoll_now(&mut woken);
        let any = !woken.is_empty();
        for p in woken {
            self.push_local(p);
        }
        any
    }

    /// Parks this scheduler in `epoll_wait` until `deadline`, new work
    /// (the waker) or readiness; false if another thread is polling (the
    /// caller parks on its condition variable instead).
    pub(crate) fn park_in_poll(&self, deadline: Option<Instant>) -> bool {
        let vm = self.vm();
        let Some(n) = vm.net.as_ref() else {
            return false;
        };
        let parker = &vm.parkers[self.index];
        let mut woken = Vec::new();
        let polled = n.poller.poll(
            Some(deadline),
            || {
                parker.polling.store(true, Ordering::SeqCst);
                // Unparked before it was marked as polling: do not block.
                !parker.is_unparked() && !vm.has_work() && !vm.shutdown.load(Ordering::SeqCst)
            },
            |r| vm.on_readiness(r, &mut woken),
        );
        parker.polling.store(false, Ordering::SeqCst);
        if polled {
            parker.clear();
        }
        for p in woken {
            self.push_local(p);
        }
        polled
    }
}
