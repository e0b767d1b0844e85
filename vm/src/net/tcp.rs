//! The `Tcp` runtime functions (LANGUAGE.md §6): listen, accept, connect,
//! send, recv, close, peer, give_away and active-once delivery, on the
//! poller (see [`crate::net`]). A blocking call blocks only the calling
//! process: on `EAGAIN` it parks until readiness, its timeout, an exit
//! signal or a close wakes it. Errors are values (`net_error`), never
//! crashes; a handle whose socket was closed answers `Error Closed`.
//!
//! No `Arc<Socket>` is held across a switch (a process killed while it
//! waits never runs destructors on its stack): each attempt looks its
//! socket up by token again.

use super::poll::PollState;
use super::socket::{Active, Kind, Socket};
use super::{READ, WRITE};
use crate::heap::alloc::{alloc_block, alloc_string};
use crate::process::{ExitReason, Process, Request, WaitKind};
use crate::safepoint::{deadline_after, guard, switch_out, Fail};
use crate::value::{int_of, is_immediate, of_int, string_bytes, Value, UNIT};
use std::io::{Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Bytes one `recv` (or one active-once event) returns at most.
pub const RECV_CHUNK: usize = 64 << 10;

/// A network error, as the `net_error` type of the prelude has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    /// End of stream, or the socket was closed.
    Closed,
    /// The timeout passed.
    TimedOut,
    /// Nobody listens there.
    Refused,
    /// The peer reset the connection.
    Reset,
    /// The address is taken.
    AddressInUse,
    /// Anything else, with the system's message.
    Other(String),
}

impl NetError {
    /// The error an I/O error denotes.
    pub fn of_io(e: &std::io::Error) -> NetError {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::ConnectionRefused => NetError::Refused,
            K::ConnectionReset | K::ConnectionAborted => NetError::Reset,
            K::BrokenPipe | K::NotConnected | K::UnexpectedEof => NetError::Closed,
            K::AddrInUse => NetError::AddressInUse,
            K::TimedOut => NetError::TimedOut,
            _ => NetError::Other(e.to_string()),
        }
    }

    /// As a value in `proc`'s heap: `Closed` = 0, `Timed_out` = 1, `Refused`
    /// = 2, `Reset` = 3, `Address_in_use` = 4, `Net_error s` = block tag 0.
    pub fn value(&self, proc: &mut Process) -> Value {
        match self {
            NetError::Closed => of_int(0),
            NetError::TimedOut => of_int(1),
            NetError::Refused => of_int(2),
            NetError::Reset => of_int(3),
            NetError::AddressInUse => of_int(4),
            NetError::Other(m) => {
                let s = alloc_string(proc, m.as_bytes());
                block(proc, 0, &[s])
            }
        }
    }
}

fn block(proc: &mut Process, tag: u8, fields: &[Value]) -> Value {
    let b = alloc_block(proc, tag, fields.len());
    for (i, f) in fields.iter().enumerate() {
        // SAFETY: a fresh block of `fields.len()` fields.
        unsafe { *b.add(i) = *f };
    }
    b as Value
}

/// `Ok v`.
fn ok(proc: &mut Process, v: Value) -> Value {
    block(proc, 0, &[v])
}

/// `Error e`.
fn error(proc: &mut Process, e: &NetError) -> Value {
    let v = e.value(proc);
    block(proc, 1, &[v])
}

/// The result value of `r`.
fn result(proc: &mut Process, r: Result<Value, NetError>) -> Value {
    match r {
        Ok(v) => ok(proc, v),
        Err(e) => error(proc, &e),
    }
}

/// The key of a wait for `dir` on the socket of `token`
/// ([`WaitKind::Io`]).
pub(crate) fn wait_key(token: u64, dir: u8) -> u64 {
    (token << 1) | dir as u64
}

/// The token and direction of a wait key.
pub(crate) fn of_wait_key(key: u64) -> (u64, u8) {
    (key >> 1, (key & 1) as u8)
}

/// The VM's network state.
///
/// # Safety
/// `proc` is the running process.
unsafe fn net<'a>(proc: *mut Process) -> Result<&'a super::Net, NetError> {
    // SAFETY: the VM outlives its processes.
    unsafe { (*(*proc).vm).net.as_ref() }
        .ok_or_else(|| NetError::Other("network I/O is not available".into()))
}

/// The socket of a handle (`Err Closed` when it is gone).
///
/// # Safety
/// `proc` is the running process.
unsafe fn socket(proc: *mut Process, handle: Value) -> Result<Arc<Socket>, NetError> {
    if !is_immediate(handle) {
        return Err(NetError::Closed);
    }
    // SAFETY: caller's guarantee.
    let s = unsafe { net(proc) }?
        .sockets
        .get(int_of(handle) as u64)
        .ok_or(NetError::Closed)?;
    if s.closed.load(Ordering::Acquire) {
        return Err(NetError::Closed);
    }
    Ok(s)
}

/// Parks the calling process until `dir` of socket `token` is ready, the
/// deadline passes, or something else wakes it. Returns `Err TimedOut` if
/// the deadline has passed (before or after the wait).
///
/// # Safety
/// `proc` is the running process, on its own stack, holding no `Arc` of
/// the socket (nor anything else owned).
unsafe fn wait(
    proc: *mut Process,
    token: u64,
    dir: u8,
    deadline: Option<Instant>,
) -> Result<(), NetError> {
    if deadline.is_some_and(|d| crate::scheduler::now() >= d) {
        return Err(NetError::TimedOut);
    }
    // SAFETY: caller's guarantee; the scheduler publishes the waiter once
    // the process is parked (`Scheduler::park_process`).
    unsafe {
        (*proc).request = Request::Wait {
            kind: WaitKind::Io(wait_key(token, dir)),
            deadline,
        };
        switch_out(proc);
        let serial = (*proc).serial;
        if let Ok(n) = net(proc) {
            if let Some(s) = n.sockets.get(token) {
                s.state(dir).withdraw(serial);
            }
        }
    }
    Ok(())
}

/// Installs the exit hook that closes `owner`'s sockets when it ends.
///
/// # Safety
/// `proc` is the running process; `owner` its serial or a pid's serial.
unsafe fn hook_owner(proc: *mut Process, owner: u64) -> bool {
    // SAFETY: the VM outlives every process and so every exit hook.
    let vm = unsafe { (*proc).vm } as usize;
    let hook: crate::process::ExitHook = Box::new(move |serial, _reason: &ExitReason| {
        // SAFETY: exit hooks run while the VM is alive.
        let vm = unsafe { &*(vm as *const crate::scheduler::Vm) };
        if let Some(n) = vm.net.as_ref() {
            for tok in n.sockets.take_owned(serial) {
                if let Some(s) = n.sockets.get(tok) {
                    vm.close_socket(&s);
                }
            }
        }
    });
    // SAFETY: caller's guarantee.
    unsafe {
        if owner == (*proc).serial {
            crate::safepoint::at_exit(proc, hook);
            true
        } else {
            crate::otp_api::at_exit_of(proc, crate::process::pid_of_serial(owner), hook)
        }
    }
}

/// Registers a new socket owned by the calling process and returns its
/// handle.
///
/// # Safety
/// `proc` is the running process.
unsafe fn adopt(proc: *mut Process, token: u64, kind: Kind) -> Result<Value, NetError> {
    // SAFETY: caller's guarantee.
    unsafe {
        let n = net(proc)?;
        let me = (*proc).serial;
        let mut kind = kind;
        let reg = match &mut kind {
            Kind::Listener(l) => n.poller.register(l, token),
            Kind::Stream(s) => n.poller.register(s, token),
        };
        if let Err(e) = reg {
            n.sockets.unreserve(token);
            return Err(NetError::of_io(&e));
        }
        let sock = Arc::new(Socket {
            token,
            kind,
            read: PollState::default(),
            write: PollState::default(),
            owner: std::sync::atomic::AtomicU64::new(me),
            closed: Default::default(),
            active: Default::default(),
            active_to: Default::default(),
        });
        if n.sockets.insert(sock, me) {
            hook_owner(proc, me);
        }
        Ok(of_int(token as i64))
    }
}

/// The addresses `host:port` names (names are resolved by the system's
/// resolver, in a blocking section).
///
/// # Safety
/// `proc` is the running process.
unsafe fn addresses(
    proc: *mut Process,
    host: Value,
    port: Value,
) -> Result<Vec<SocketAddr>, NetError> {
    // SAFETY: a string value; copied before any switch.
    let host = String::from_utf8_lossy(unsafe { string_bytes(host) }).into_owned();
    let port = int_of(port);
    if !(0..=65535).contains(&port) {
        return Err(NetError::Other(format!("port {port} is out of range")));
    }
    let port = port as u16;
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = h.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    // SAFETY: the running process; the resolver may block.
    let r = unsafe {
        crate::safepoint::blocking_section(proc, || {
            (h, port).to_socket_addrs().map(|a| a.collect())
        })
    };
    match r {
        Ok(v) if !Vec::is_empty(&v) => Ok(v),
        Ok(_) => Err(NetError::Other(format!("{host}: no address"))),
        Err(e) => Err(NetError::Other(format!("{host}: {e}"))),
    }
}

/// `Tcp.listen host port`: a listening socket (port 0: any free port).
///
/// # Safety
/// Called by generated code: `proc` is the running process, `host` a
/// string, `port` an int.
#[no_mangle]
pub unsafe extern "C" fn caravan_tcp_listen(proc: *mut Process, host: Value, port: Value) -> Value {
    // SAFETY: caller's guarantee.
    unsafe {
        guard(proc, || {
            let r = (|| {
                let addrs = addresses(proc, host, port)?;
                let mut last = NetError::Other("no address".into());
                for a in addrs {
                    match mio::net::TcpListener::bind(a) {
                        Ok(l) => {
                            let token = net(proc)?.sockets.reserve();
                            return adopt(proc, token, Kind::Listener(l));
                        }
                        Err(e) => last = NetError::of_io(&e),
                    }
                }
                Err(last)
            })();
            Ok(result(&mut *proc, r))
        })
    }
}

/// `Tcp.listener_port l`: the port a listener is bound to (0 if closed).
///
/// # Safety
/// As [`caravan_tcp_listen`].
#[no_mangle]
pub unsafe extern "C" fn caravan_tcp_listener_port(proc: *mut Process, l: Value) -> Value {
    // SAFETY: caller's guarantee.
    let port = match unsafe { socket(proc, l) } {
        Ok(s) => match &s.kind {
            Kind::Listener(l) => l.local_addr().map_or(0, |a| a.port()),
            Kind::Stream(s) => s.local_addr().map_or(0, |a| a.port()),
        },
        Err(_) => 0,
    };
    of_int(port as i64)
}

/// `Tcp.accept l timeout`: the next connection (owned by the caller).
///
/// # Safety
/// As [`caravan_tcp_listen`].
#[no_mangle]
pub unsafe extern "C" fn caravan_tcp_accept(proc: *mut Process, l: Value, timeout: Value) -> Value {
    // SAFETY: caller's guarantee; no `Arc` lives across `wait`.
    unsafe {
        guard(proc, || {
            let deadline = deadline_after(int_of(timeout));
            let r = loop {
                let (token, got) = {
                    let s = match socket(proc, l) {
                        Ok(s) => s,
                        Err(e) => break Err(e),
                    };
                    let Kind::Listener(lis) = &s.kind else {
                        break Err(NetError::Other("not a listener".into()));
                    };
                    s.read.consume_ready();
                    (s.token, lis.accept())
                };
                match got {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        let token = match net(proc) {
                            Ok(n) => n.sockets.reserve(),
                            Err(e) => break Err(e),
                        };
                        break adopt(proc, token, Kind::Stream(stream));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if let Err(e) = wait(proc, token, READ, deadline) {
                            break Err(e);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    // A connection reset before it was accepted, or out of
                    // descriptors: an error of this accept.
                    Err(e) => break Err(NetError::of_io(&e)),
                }
            };
            Ok(result(&mut *proc, r))
        })
    }
}

/// `Tcp.connect host port timeout`: a connection (owned by the caller).
///
/// # Safety
/// As [`caravan_tcp_listen`].
#[no_mangle]
pub unsafe extern "C" fn caravan_tcp_connect(
    proc: *mut Process,
    host: Value,
    port: Value,
    timeout: Value,
) -> Value {
    // SAFETY: caller's guarantee; no `Arc` lives across `wait`.
    unsafe {
        guard(proc, || {
            let deadline = deadline_after(int_of(timeout));
            let r = (|| {
                let addrs = addresses(proc, host, port)?;
                let mut last = NetError::Refused;
                for a in addrs {
                    match connect_one(proc, a, deadline) {
                        Ok(v) => return Ok(v),
                        Err(NetError::TimedOut) => return Err(NetError::TimedOut),
                        Err(e) => last = e,
                    }
                }
                Err(last)
            })();
            Ok(result(&mut *proc, r))
        })
    }
}

/// One connection attempt: a non-blocking connect, then a wait for the
/// socket to become writable (or the deadline).
///
/// # Safety
/// `proc` is the running process, on its own stack.
unsafe fn connect_one(
    proc: *mut Process,
    addr: SocketAddr,
    deadline: Option<Instant>,
) -> Result<Value, NetError> {
    // SAFETY: caller's guarantee.
    unsafe {
        let stream = mio::net::TcpStream::connect(addr).map_err(|e| NetError::of_io(&e))?;
        let _ = stream.set_nodelay(true);
        let token = net(proc)?.sockets.reserve();
        let handle = adopt(proc, token, Kind::Stream(stream))?;
        loop {
            let state = {
                let s = socket(proc, handle)?;
                s.write.consume_ready();
                let st = s.stream().expect("a stream");
                match st.take_error() {
                    Ok(Some(e)) | Err(e) => Err(NetError::of_io(&e)),
                    Ok(None) => match st.peer_addr() {
                        Ok(_) => Ok(true),
                        Err(e) if e.kind() == std::io::ErrorKind::NotConnected => Ok(false),
                        Err(e) => Err(NetError::of_io(&e)),
                    },
                }
            };
            match state {
                Ok(true) => return Ok(handle),
                Ok(false) => {
                    if let Err(e) = wait(proc, token, WRITE, deadline) {
                        close_handle(proc, handle);
                        return Err(e);
                    }
                }
                Err(e) => {
                    close_handle(proc, handle);
                    return Err(e);
                }
            }
        }
    }
}

/// Closes the socket of a handle, if it is open.
///
/// # Safety
/// `proc` is the running process.
unsafe fn close_handle(proc: *mut Process, handle: Value) {
    // SAFETY: caller's guarantee.
    unsafe {
        if let (Ok(s), Ok(_)) = (socket(proc, handle), net(proc)) {
            (*(*proc).vm).close_socket(&s);
        }
    }
}

/// `Tcp.send s data`: writes all the bytes (waiting while the socket's
/// buffer is full).
///
/// # Safety
/// As [`caravan_tcp_listen`]; `data` a string.
#[no_mangle]
pub unsafe extern "C" fn caravan_tcp_send(proc: *mut Process, s: Value, data: Value) -> Value {
    // SAFETY: caller's guarantee. The string stays where it is while the
    // process waits (only the process itself collects its heap, and it
    // does not allocate here); no `Arc` lives across `wait`.
    unsafe {
        guard(proc, || {
            let bytes = string_bytes(data);
            let mut at = 0;
            let r = loop {
                if at == bytes.len() {
                    break Ok(UNIT);
                }
                let (token, wrote) = {
                    let sock = match socket(proc, s) {
                        Ok(x) => x,
                        Err(e) => break Err(e),
                    };
                    let Some(mut st) = sock.stream() else {
                        break Err(NetError::Other("not a connected socket".into()));
                    };
                    sock.write.consume_ready();
                    (sock.token, st.write(&bytes[at..]))
                };
                match wrote {
                    Ok(0) => break Err(NetError::Closed),
                    Ok(n) => {
                        at += n;
                        (*proc).charge((n >> 10) as i64);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if let Err(e) = wait(proc, token, WRITE, None) {
                            break Err(e);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(NetError::of_io(&e)),
                }
            };
            Ok(result(&mut *proc, r))
        })
    }
}

/// Reads what has arrived on `st` (at most [`RECV_CHUNK`] bytes) into
/// `buf`: `Ok(n)`, `Ok(0)` at end of stream.
fn read_some(mut st: &mio::net::TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    buf.resize(RECV_CHUNK, 0);
    loop {
        match st.read(&mut buf[..]) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// `Tcp.recv s timeout`: the bytes that have arrived (at least one), or
/// `Error Closed` at end of stream.
///
/// # Safety
/// As [`caravan_tcp_listen`].
#[no_mangle]
pub unsafe extern "C" fn caravan_tcp_recv(proc: *mut Process, s: Value, timeout: Value) -> Value {
    // SAFETY: caller's guarantee; no `Arc` lives across `wait`; the read
    // buffer is the scheduler's, used only between switches.
    unsafe {
        guard(proc, || {
            let deadline = deadline_after(int_of(timeout));
            let r = loop {
                let (token, got) = {
                    let sock = match socket(proc, s) {
                        Ok(x) => x,
                        Err(e) => break Err(e),
                    };
                    let Some(st) = sock.stream() else {
                        break Err(NetError::Other("not a connected socket".into()));
                    };
                    sock.read.consume_ready();
                    let buf = &mut crate::safepoint::local_of(proc).io_buf;
                    (sock.token, read_some(st, buf))
                };
                match got {
                    Ok(0) => break Err(NetError::Closed),
                    Ok(n) => {
                        let buf = &crate::safepoint::local_of(proc).io_buf;
                        // Copied out of the scheduler's buffer into the heap
                        // before anything else can use it.
                        let v = alloc_string(&mut *proc, &buf[..n]);
                        (*proc).charge((n >> 10) as i64);
                        break Ok(v);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if let Err(e) = wait(proc, token, READ, deadline) {
                            break Err(e);
                        }
                    }
                    Err(e) => break Err(NetError::of_io(&e)),
                }
            };
            Ok(result(&mut *proc, r))
        })
    }
}

/// `Tcp.close s` / `Tcp.close_listener l`: closes the socket (the peer sees
/// end of stream; a process waiting on it gets `Error Closed`). Closing a
/// closed socket does nothing.
///
/// # Safety
/// As [`caravan_tcp_listen`].
#[no_mangle]
pub unsafe extern "C" fn caravan_tcp_close(proc: *mut Process, s: Value) -> Value {
    // SAFETY: caller's guarantee.
    unsafe { close_handle(proc, s) };
    UNIT
}

/// `Tcp.peer s`: the peer's address and port (`("", 0)` when closed).
///
/// # Safety
/// As [`caravan_tcp_listen`].
#[no_mangle]
pub unsafe extern "C" fn caravan_tcp_peer(proc: *mut Process, s: Value) -> Value {
    // SAFETY: caller's guarantee.
    unsafe {
        let addr = socket(proc, s)
            .ok()
            .and_then(|x| x.stream().and_then(|st| st.peer_addr().ok()));
        let (host, port) = match addr {
            Some(a) => (a.ip().to_string(), a.port()),
            None => (String::new(), 0),
        };
        let p = &mut *proc;
        let h = alloc_string(p, host.as_bytes());
        block(p, 0, &[h, of_int(port as i64)])
    }
}

/// `Tcp.give_away s pid`: `pid` owns the socket from now on (its end
/// closes it), as `gen_tcp:controlling_process`. If `pid` is dead, the
/// socket is closed.
///
/// # Safety
/// As [`caravan_tcp_listen`]; `pid` a pid.
#[no_mangle]
pub unsafe extern "C" fn caravan_tcp_give_away(proc: *mut Process, s: Value, pid: Value) -> Value {
    // SAFETY: caller's guarantee.
    unsafe {
        guard(proc, || {
            let (Ok(sock), Ok(n)) = (socket(proc, s), net(proc)) else {
                return Ok(UNIT);
            };
            if !is_immediate(pid) {
                return Err(Fail::msg("Tcp.give_away: not a pid"));
            }
            let to = crate::process::serial_of_pid(pid);
            if n.sockets.transfer(&sock, to) && !hook_owner(proc, to) {
                // Dead: nobody would ever close it.
                (*(*proc).vm).close_socket(&sock);
            }
            Ok(UNIT)
        })
    }
}

/// `Tcp.activate s pid wrap`: the socket's next event — data, end of
/// stream or an error — arrives in `pid`'s mailbox as `wrap event`
/// (Erlang's `{active, once}`). Activate again for the next one.
///
/// # Safety
/// As [`caravan_tcp_listen`]; `pid` a pid, `wrap` a closure.
#[no_mangle]
pub unsafe extern "C" fn caravan_tcp_activate(
    proc: *mut Process,
    s: Value,
    pid: Value,
    wrap: Value,
) -> Value {
    // SAFETY: caller's guarantee.
    unsafe {
        guard(proc, || {
            if !is_immediate(pid) {
                return Err(Fail::msg("Tcp.activate: not a pid"));
            }
            let to = crate::process::serial_of_pid(pid);
            let (w, _) = crate::otp_api::Frozen::freeze(proc, wrap)
                .ok_or_else(|| Fail::msg(crate::process::OUT_OF_MEMORY))?;
            let vm = &*(*proc).vm;
            match socket(proc, s) {
                Ok(sock) => {
                    *sock.active_to.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(Active { to, wrap: w });
                    sock.active.store(true, Ordering::SeqCst);
                    let mut woken = vec![];
                    vm.deliver_active(&sock, &mut woken);
                    let sched = &*(*proc).sched;
                    for p in woken {
                        sched.push_runnext(p);
                    }
                }
                // A closed socket's event is `Tcp_closed`, at once.
                Err(_) => vm.send_tcp_event(to, w, TcpEvent::Closed, &mut |p| {
                    (*(*proc).sched).push_runnext(p)
                }),
            }
            Ok(UNIT)
        })
    }
}

/// An active-once event, turned into a `tcp_event` value by the receiver.
#[derive(Debug)]
pub enum TcpEvent {
    /// `Tcp_data s`.
    Data(Vec<u8>),
    /// `Tcp_closed`.
    Closed,
    /// `Tcp_error e`.
    Error(NetError),
}

impl TcpEvent {
    /// As a value in `proc`'s heap: `Tcp_data s` = block tag 0, `Tcp_closed`
    /// = 0, `Tcp_error e` = block tag 1.
    pub fn value(&self, proc: &mut Process) -> Value {
        match self {
            TcpEvent::Data(b) => {
                let s = alloc_string(proc, b);
                block(proc, 0, &[s])
            }
            TcpEvent::Closed => of_int(0),
            TcpEvent::Error(e) => {
                let v = e.value(proc);
                block(proc, 1, &[v])
            }
        }
    }
}

/// Reads an active socket's next event, if one is there (scheduler
/// context: never blocks). `None` when nothing has arrived.
pub(crate) fn read_event(sock: &Socket, buf: &mut Vec<u8>) -> Option<TcpEvent> {
    let st = sock.stream()?;
    match read_some(st, buf) {
        Ok(0) => Some(TcpEvent::Closed),
        Ok(n) => Some(TcpEvent::Data(buf[..n].to_vec())),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
        Err(e) => Some(TcpEvent::Error(NetError::of_io(&e))),
    }
}

/// `(name, address)` of the `Tcp` runtime functions.
pub(crate) fn symbols() -> Vec<(&'static str, *const u8)> {
    macro_rules! syms {
        ($($f:ident),* $(,)?) => { vec![$((stringify!($f), $f as *const u8)),*] };
    }
    syms![
        caravan_tcp_listen,
        caravan_tcp_listener_port,
        caravan_tcp_accept,
        caravan_tcp_connect,
        caravan_tcp_send,
        caravan_tcp_recv,
        caravan_tcp_close,
        caravan_tcp_peer,
        caravan_tcp_give_away,
        caravan_tcp_activate,
    ]
}
