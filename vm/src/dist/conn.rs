//! Connections to other nodes: the handshake (both ways, with
//! simultaneous-connect resolution), frames, control messages, ticks.
//!
//! A frame is a 4-byte big-endian length, then (no atom cache is
//! negotiated) the pass-through byte `112`, the control message and, for
//! the send operations, the payload — each a version-131 term. A length of
//! 0 is a tick. See "Distribution Protocol" in the ERTS user's guide.

use super::*;
use crate::signals::{deliver_down, deliver_exit, Via};
use crate::term::etf::Reader;
use futures::io::AllowStdIo;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

const LINK: i64 = 1;
const SEND: i64 = 2;
const EXIT: i64 = 3;
const UNLINK: i64 = 4;
const REG_SEND: i64 = 6;
const EXIT2: i64 = 8;
const MONITOR_P: i64 = 19;
const DEMONITOR_P: i64 = 20;
const MONITOR_P_EXIT: i64 = 21;
const SEND_SENDER: i64 = 22;
const UNLINK_ID: i64 = 35;
const UNLINK_ID_ACK: i64 = 36;

/// A live connection to one node.
pub struct Conn {
    /// The peer's `name@host`.
    pub node: String,
    stream: Mutex<TcpStream>,
    /// Proxies of the peer's processes (ended with `Noconnection` when
    /// the connection goes down).
    pub(crate) proxies: Mutex<Vec<u64>>,
    last_recv: Mutex<Instant>,
    last_sent: Mutex<Instant>,
    down: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Conn {
    /// Writes one frame: control term and optional payload (each with its
    /// version byte). A failed write takes the connection down.
    fn frame(&self, control: &[u8], payload: Option<&[u8]>) {
        let len = 1 + control.len() + payload.map_or(0, |p| p.len());
        let mut buf = Vec::with_capacity(4 + len);
        buf.extend_from_slice(&(len as u32).to_be_bytes());
        buf.push(112);
        buf.extend_from_slice(control);
        if let Some(p) = payload {
            buf.extend_from_slice(p);
        }
        let ok = lock(&self.stream).write_all(&buf).is_ok();
        *lock(&self.last_sent) = Instant::now();
        if !ok {
            self.shutdown();
        }
    }

    /// Closes the socket: the reader thread sees it and runs the
    /// connection-down work.
    pub(crate) fn shutdown(&self) {
        let _ = lock(&self.stream).shutdown(Shutdown::Both);
    }

    /// SEND of a whole payload to `to`.
    pub(crate) fn send_to(&self, to: &PidTerm, payload: &[u8]) {
        let mut c = vec![etf::VERSION];
        etf::put_tuple(&mut c, 3);
        etf::put_int(&mut c, SEND);
        etf::put_atom(&mut c, "");
        etf::put_pid(&mut c, to);
        self.frame(&c, Some(payload));
    }

    /// REG_SEND of a payload to the process registered as `name` there.
    pub(crate) fn reg_send(&self, from: &PidTerm, name: &str, payload: &[u8]) {
        let mut c = vec![etf::VERSION];
        etf::put_tuple(&mut c, 4);
        etf::put_int(&mut c, REG_SEND);
        etf::put_pid(&mut c, from);
        etf::put_atom(&mut c, "");
        etf::put_atom(&mut c, name);
        self.frame(&c, Some(payload));
    }

    /// EXIT (a link's) or EXIT2 (`Process.exit`).
    pub(crate) fn exit(&self, from: &PidTerm, to: &PidTerm, reason: &ExitReason, link: bool) {
        let mut c = vec![etf::VERSION];
        etf::put_tuple(&mut c, 4);
        etf::put_int(&mut c, if link { EXIT } else { EXIT2 });
        etf::put_pid(&mut c, from);
        etf::put_pid(&mut c, to);
        put_reason(&mut c, reason);
        self.frame(&c, None);
    }

    /// LINK.
    pub(crate) fn link(&self, from: &PidTerm, to: &PidTerm) {
        let mut c = vec![etf::VERSION];
        etf::put_tuple(&mut c, 3);
        etf::put_int(&mut c, LINK);
        etf::put_pid(&mut c, from);
        etf::put_pid(&mut c, to);
        self.frame(&c, None);
    }

    /// MONITOR_P.
    pub(crate) fn monitor(&self, from: &PidTerm, to: &PidTerm, tag: &RefTerm) {
        self.monitor_op(MONITOR_P, from, to, tag);
    }

    /// DEMONITOR_P.
    pub(crate) fn demonitor(&self, from: &PidTerm, to: &PidTerm, tag: &RefTerm) {
        self.monitor_op(DEMONITOR_P, from, to, tag);
    }

    /// `{Op, From, To, Ref}`: MONITOR_P or DEMONITOR_P.
    fn monitor_op(&self, op: i64, from: &PidTerm, to: &PidTerm, tag: &RefTerm) {
        let mut c = vec![etf::VERSION];
        etf::put_tuple(&mut c, 4);
        etf::put_int(&mut c, op);
        etf::put_pid(&mut c, from);
        etf::put_pid(&mut c, to);
        etf::put_ref(&mut c, tag);
        self.frame(&c, None);
    }

    /// MONITOR_P_EXIT: `from` (watched, here) ended with `reason`.
    pub(crate) fn monitor_exit(&self, from: &PidTerm, to: &PidTerm, tag: &RefTerm, r: &ExitReason) {
        let mut c = vec![etf::VERSION];
        etf::put_tuple(&mut c, 5);
        etf::put_int(&mut c, MONITOR_P_EXIT);
        etf::put_pid(&mut c, from);
        etf::put_pid(&mut c, to);
        etf::put_ref(&mut c, tag);
        put_reason(&mut c, r);
        self.frame(&c, None);
    }

    fn monitor_exit_raw(&self, from_raw: &[u8], to: &PidTerm, tag_raw: &[u8], r: &ExitReason) {
        let mut c = vec![etf::VERSION];
        etf::put_tuple(&mut c, 5);
        etf::put_int(&mut c, MONITOR_P_EXIT);
        c.extend_from_slice(from_raw);
        etf::put_pid(&mut c, to);
        c.extend_from_slice(tag_raw);
        put_reason(&mut c, r);
        self.frame(&c, None);
    }
}

/// An exit reason as Erlang sees it: `normal`, `shutdown`, `killed`,
/// `timeout`, `noproc`, `noconnection`, or `{crashed, <<Message>>}`.
fn put_reason(out: &mut Vec<u8>, r: &ExitReason) {
    match r {
        ExitReason::Normal => etf::put_atom(out, "normal"),
        ExitReason::Shutdown => etf::put_atom(out, "shutdown"),
        ExitReason::Killed => etf::put_atom(out, "killed"),
        ExitReason::Timeout => etf::put_atom(out, "timeout"),
        ExitReason::Noproc => etf::put_atom(out, "noproc"),
        ExitReason::Noconnection => etf::put_atom(out, "noconnection"),
        ExitReason::Crashed(m) => {
            etf::put_tuple(out, 2);
            etf::put_atom(out, "crashed");
            etf::put_binary(out, m);
        }
    }
}

/// Reads an exit reason (any term; what is not one of ours becomes
/// `Crashed` with a short description).
fn read_reason(r: &mut Reader<'_>) -> Result<ExitReason, EtfError> {
    let start = *r;
    if let Ok(a) = r.atom() {
        return Ok(match a {
            "normal" => ExitReason::Normal,
            "shutdown" => ExitReason::Shutdown,
            "killed" | "kill" => ExitReason::Killed,
            "timeout" => ExitReason::Timeout,
            "noproc" => ExitReason::Noproc,
            "noconnection" => ExitReason::Noconnection,
            other => ExitReason::crashed(other),
        });
    }
    *r = start;
    let mut probe = start;
    if probe.tuple() == Ok(2) && probe.atom() == Ok("crashed") {
        if let Ok(s) = probe.binary() {
            *r = probe;
            return Ok(ExitReason::crashed(s));
        }
    }
    r.skip(64)?;
    Ok(ExitReason::crashed("exit from an Erlang node"))
}

// ---------------------------------------------------------------------------
// Establishing connections
// ---------------------------------------------------------------------------

fn local_node(n: &Node) -> Result<erl_dist::node::LocalNode, String> {
    let name: erl_dist::node::NodeName = n.name.parse().map_err(|e| format!("{e:?}"))?;
    let mut l = erl_dist::node::LocalNode::new(name, erl_dist::node::Creation::new(n.creation));
    l.flags = n.flags;
    Ok(l)
}

/// Serves incoming connections (a thread per handshake, then a reader).
pub(crate) fn accept_loop(listener: TcpListener) {
    for s in listener.incoming() {
        let Some(n) = node() else { return };
        if n.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(s) = s else { continue };
        let _ = std::thread::Builder::new()
            .name("caravan-dist-in".into())
            .spawn(move || {
                if let Err(e) = accept_one(n, s) {
                    if std::env::var_os("CARAVAN_DIST_DEBUG").is_some() {
                        eprintln!("caravan: refused a node connection: {e}");
                    }
                }
            });
    }
}

fn accept_one(n: &'static Node, s: TcpStream) -> Result<(), String> {
    let _ = s.set_nodelay(true);
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let io = AllowStdIo::new(s.try_clone().map_err(|e| e.to_string())?);
    let mut hs = erl_dist::handshake::ServerSideHandshake::new(io, local_node(n)?, &n.cookie);
    let peer = futures::executor::block_on(hs.execute_recv_name())
        .map_err(|e| format!("{e:?}"))?
        .ok_or("a dynamic node name (not supported)")?
        .to_string();
    let status = {
        let st = n.state();
        if st.connecting.contains(&peer) && n.name.as_str() > peer.as_str() {
            // Both connect at once: the greater name's connection wins.
            erl_dist::handshake::HandshakeStatus::Nok
        } else if st.connecting.contains(&peer) {
            erl_dist::handshake::HandshakeStatus::OkSimultaneous
        } else {
            erl_dist::handshake::HandshakeStatus::Ok
        }
    };
    let (_, peer_node) =
        futures::executor::block_on(hs.execute_rest(status)).map_err(|e| format!("{e:?}"))?;
    up(n, peer_node.name.to_string(), s)
}

/// Connects to `peer` (`name@host`) unless connected: epmd lookup on its
/// host, then the handshake. Blocks the calling thread (at most a few
/// seconds). True when a connection is up.
pub(crate) fn connect(n: &'static Node, peer: &str) -> bool {
    if peer == n.name {
        return true;
    }
    if n.conn(peer).is_some() {
        return true;
    }
    {
        let mut st = n.state();
        if st.connecting.contains(peer) {
            drop(st);
            return wait_up(n, peer);
        }
        st.connecting.insert(peer.to_string());
    }
    let r = connect_out(n, peer);
    n.state().connecting.remove(peer);
    match r {
        Ok(()) => true,
        Err(Lost) => wait_up(n, peer),
        Err(_) => false,
    }
}

/// Why an outgoing connect ended without a connection of its own.
enum ConnectError {
    Failed,
    /// The peer's simultaneous connect won: wait for it.
    Lost,
}
use ConnectError::*;

fn wait_up(n: &Node, peer: &str) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if n.conn(peer).is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

fn connect_out(n: &'static Node, peer: &str) -> Result<(), ConnectError> {
    let (alive, host) = peer.split_once('@').ok_or(Failed)?;
    let port = epmd::port_of(host, alive).ok_or(Failed)?;
    let addr = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or(Failed)?;
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|_| Failed)?;
    let _ = s.set_nodelay(true);
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|_| Failed)?;
    let io = AllowStdIo::new(s.try_clone().map_err(|_| Failed)?);
    let mut hs = erl_dist::handshake::ClientSideHandshake::new(
        io,
        local_node(n).map_err(|_| Failed)?,
        &n.cookie,
    );
    use erl_dist::handshake::HandshakeStatus as H;
    let status = futures::executor::block_on(hs.execute_send_name(6)).map_err(|_| Failed)?;
    match status {
        H::Nok => return Err(Lost),
        H::NotAllowed => return Err(Failed),
        _ => {}
    }
    let (_, peer_node) = futures::executor::block_on(hs.execute_rest(true)).map_err(|e| {
        if std::env::var_os("CARAVAN_DIST_DEBUG").is_some() {
            eprintln!("caravan: connecting to {peer}: {e:?}");
        }
        Failed
    })?;
    up(n, peer_node.name.to_string(), s).map_err(|_| Failed)
}

/// A handshake succeeded: the connection is registered and its reader
/// thread started.
fn up(n: &'static Node, peer: String, s: TcpStream) -> Result<(), String> {
    s.set_read_timeout(None).map_err(|e| e.to_string())?;
    let reader = s.try_clone().map_err(|e| e.to_string())?;
    let c = Arc::new(Conn {
        node: peer.clone(),
        stream: Mutex::new(s),
        proxies: Mutex::new(vec![]),
        last_recv: Mutex::new(Instant::now()),
        last_sent: Mutex::new(Instant::now()),
        down: AtomicBool::new(false),
    });
    let old = n.state().conns.insert(peer.clone(), c.clone());
    if let Some(old) = old {
        // The peer thinks the old one is gone: so it is.
        old.shutdown();
    }
    let c2 = c.clone();
    std::thread::Builder::new()
        .name(format!("caravan-dist-{peer}"))
        .stack_size(1 << 20)
        .spawn(move || read_loop(n, c2, reader))
        .map_err(|e| e.to_string())?;
    node_event(n.vm(), true, &peer);
    Ok(())
}

/// The connection is down: every link, monitor and call across it fires
/// with `Noconnection`; monitors the peer held are dropped.
fn down(n: &Node, c: &Arc<Conn>) {
    if c.down.swap(true, Ordering::SeqCst) {
        return;
    }
    c.shutdown();
    {
        let mut st = n.state();
        if st.conns.get(&c.node).is_some_and(|x| Arc::ptr_eq(x, c)) {
            st.conns.remove(&c.node);
        }
    }
    let vm = n.vm();
    let proxies = std::mem::take(&mut *lock(&c.proxies));
    // Monitors held by the peer's processes on ours: nobody to tell.
    let dropped: Vec<(u64, u64)> = {
        let mut st = n.state();
        let keys: Vec<u64> = st
            .in_monitors
            .iter()
            .filter(|(_, m)| m.watcher.node == c.node)
            .map(|(k, _)| *k)
            .collect();
        keys.into_iter()
            .filter_map(|k| st.in_monitors.remove(&k).map(|m| (k, m.watched)))
            .collect()
    };
    for (reference, watched) in dropped {
        remove_reg(vm, watched, reference);
    }
    for p in proxies {
        end_proxy(vm, p, ExitReason::Noconnection);
    }
    node_event(vm, false, &c.node);
}

/// Removes monitor registration `reference` from process `watched`.
fn remove_reg(vm: &Vm, watched: u64, reference: u64) -> Option<crate::process::MonitorReg> {
    let sh = vm.table.get(watched)?;
    let mut g = sh.lock();
    let x = g.x_opt()?;
    let i = x.monitors.iter().position(|m| m.reference == reference)?;
    Some(x.monitors.swap_remove(i))
}

/// Sends ticks when idle and takes down peers silent for the tick time.
pub(crate) fn tick_loop() {
    loop {
        let Some(n) = node() else { return };
        let quarter = Duration::from_secs(n.tick_secs) / 4;
        std::thread::sleep(quarter.min(Duration::from_secs(1)));
        if n.stopping.load(Ordering::SeqCst) {
            return;
        }
        let conns: Vec<Arc<Conn>> = n.state().conns.values().cloned().collect();
        for c in conns {
            if lock(&c.last_recv).elapsed() > Duration::from_secs(n.tick_secs) {
                c.shutdown();
                continue;
            }
            if lock(&c.last_sent).elapsed() >= quarter {
                let ok = lock(&c.stream).write_all(&[0, 0, 0, 0]).is_ok();
                *lock(&c.last_sent) = Instant::now();
                if !ok {
                    c.shutdown();
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

fn read_loop(n: &'static Node, c: Arc<Conn>, mut s: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            break;
        }
        *lock(&c.last_recv) = Instant::now();
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 {
            continue;
        }
        if len > MAX_FRAME {
            eprintln!(
                "caravan: node {} sent a frame of {len} bytes (limit {MAX_FRAME}): disconnected",
                c.node
            );
            break;
        }
        buf.resize(len, 0);
        if s.read_exact(&mut buf).is_err() {
            break;
        }
        if let Err(e) = dispatch(n, &c, &buf) {
            eprintln!(
                "caravan: malformed frame from node {}: {e}: disconnected",
                c.node
            );
            break;
        }
    }
    down(n, &c);
}

/// The existing proxy of a remote pid, if any.
fn proxy_of(n: &Node, p: &PidTerm) -> Option<u64> {
    n.state().proxy_ids.get(p).copied()
}

/// Reads a pid or an atom (a registered name) naming a process here:
/// `Ok(Some(serial))`, `Ok(None)` for a name nobody holds.
fn target(n: &Node, r: &mut Reader<'_>) -> Result<Option<u64>, EtfError> {
    let mut probe = *r;
    if let Ok(a) = probe.atom() {
        *r = probe;
        return Ok(n.state().registered.get(a).map(|x| x.0));
    }
    let p = r.pid()?;
    if p.node != n.name {
        return Err(EtfError("a pid of another node as a target".into()));
    }
    Ok(Some(n.serial_of(&p, None)).filter(|&s| s != 0))
}

/// One frame: the control message and its payload.
fn dispatch(n: &'static Node, c: &Arc<Conn>, frame: &[u8]) -> Result<(), EtfError> {
    let vm = n.vm();
    let mut r = Reader::new(frame);
    if r.u8()? != 112 {
        return Err(EtfError(
            "no pass-through byte (atom cache not negotiated)".into(),
        ));
    }
    r.version()?;
    let arity = r.tuple()?;
    if arity == 0 {
        return Err(EtfError("empty control message".into()));
    }
    let op = r.int()?;
    match op {
        LINK => {
            let from = r.pid()?;
            let to = r.pid()?;
            let p = n.serial_of(&from, None);
            track(c, p);
            let local = n.serial_of(&to, None);
            if !link_local(vm, local, p) {
                c.exit(&to, &from, &ExitReason::Noproc, true);
            }
        }
        SEND | SEND_SENDER => {
            if op == SEND {
                r.skip(8)?;
            } else {
                r.pid()?;
            }
            let to = r.pid()?;
            r.version()?;
            let local = n.serial_of(&to, None);
            on_send(n, c, vm, local, &mut r);
        }
        REG_SEND => {
            let from = r.pid()?;
            r.skip(8)?;
            let name = r.atom()?.to_string();
            r.version()?;
            on_reg_send(n, c, vm, &from, &name, &mut r)?;
        }
        EXIT | EXIT2 => {
            let from = r.pid()?;
            let to = r.pid()?;
            let reason = read_reason(&mut r)?;
            let local = n.serial_of(&to, None);
            if op == EXIT {
                let Some(p) = proxy_of(n, &from) else {
                    return Ok(());
                };
                if unlink_local(vm, local, p) {
                    deliver_exit(&**vm, local, p, &reason, Via::Link);
                }
            } else {
                let p = n.serial_of(&from, None);
                track(c, p);
                deliver_exit(&**vm, local, p, &reason, Via::Exit);
            }
        }
        UNLINK => {
            let from = r.pid()?;
            let to = r.pid()?;
            if let Some(p) = proxy_of(n, &from) {
                unlink_local(vm, n.serial_of(&to, None), p);
            }
        }
        UNLINK_ID => {
            let id_start = r.pos;
            r.skip(4)?;
            let id = frame[id_start..r.pos].to_vec();
            let from = r.pid()?;
            let to = r.pid()?;
            if let Some(p) = proxy_of(n, &from) {
                unlink_local(vm, n.serial_of(&to, None), p);
            }
            let mut ctl = vec![etf::VERSION];
            etf::put_tuple(&mut ctl, 4);
            etf::put_int(&mut ctl, UNLINK_ID_ACK);
            ctl.extend_from_slice(&id);
            etf::put_pid(&mut ctl, &to);
            etf::put_pid(&mut ctl, &from);
            c.frame(&ctl, None);
        }
        UNLINK_ID_ACK => {}
        MONITOR_P => {
            let from = r.pid()?;
            let target_start = r.pos;
            let watched = target(n, &mut r)?;
            let target_raw = frame[target_start..r.pos].to_vec();
            let tag_start = r.pos;
            let tag = r.reference()?;
            let tag_raw = frame[tag_start..r.pos].to_vec();
            let is_kernel = {
                let mut p = Reader::new(&target_raw);
                p.atom()
                    .is_ok_and(|a| a == "net_kernel" || a == "caravan_registry")
            };
            if is_kernel {
                // The node's own services never exit.
                return Ok(());
            }
            let p = n.serial_of(&from, None);
            track(c, p);
            let ok = watched.is_some_and(|w| {
                let reference = vm.next_monitor_ref();
                let Some(sh) = vm.table.get(w) else {
                    return false;
                };
                let mut g = sh.lock();
                if g.state == ProcState::Exited {
                    return false;
                }
                g.x().monitors.push(crate::process::MonitorReg {
                    watcher: p,
                    reference,
                    wrap: Msg::plain(crate::value::UNIT, None),
                });
                drop(g);
                n.state().in_monitors.insert(
                    reference,
                    InMonitor {
                        watched: w,
                        watcher: from.clone(),
                        tag: tag.clone(),
                    },
                );
                true
            });
            if !ok {
                c.monitor_exit_raw(&target_raw, &from, &tag_raw, &ExitReason::Noproc);
            }
        }
        DEMONITOR_P => {
            r.pid()?;
            let _ = target(n, &mut r)?;
            let tag = r.reference()?;
            let found = {
                let mut st = n.state();
                let k = st
                    .in_monitors
                    .iter()
                    .find(|(_, m)| m.tag == tag)
                    .map(|(k, _)| *k);
                k.and_then(|k| st.in_monitors.remove(&k).map(|m| (k, m.watched)))
            };
            if let Some((reference, watched)) = found {
                remove_reg(vm, watched, reference);
            }
        }
        MONITOR_P_EXIT => {
            r.skip(8)?;
            r.pid()?;
            let tag = r.reference()?;
            let reason = read_reason(&mut r)?;
            let what = n.state().out_monitors.remove(&tag.ids);
            match what {
                Some(OutMonitor::Monitor { reference, proxy }) => {
                    if let Some(reg) = remove_reg(vm, proxy, reference) {
                        let watcher = reg.watcher;
                        if let Some(w) = vm.table.get(watcher) {
                            let mut g = w.lock();
                            if let Some(x) = g.x_opt() {
                                x.held_monitors.retain(|h| h.0 != reference);
                            }
                        }
                        deliver_down(&**vm, watcher, reference, reason, reg.wrap);
                    }
                }
                Some(OutMonitor::Call { caller, r, .. }) => {
                    n.state().calls.remove(&(caller, r));
                    crate::signals::fail_call(&**vm, caller, r, reason);
                }
                None => {}
            }
        }
        _ => {
            // Operations we did not negotiate (spawn, aliases, payload
            // exits): ignored, as the protocol allows for unknown ones.
        }
    }
    Ok(())
}

/// Remembers that proxy `p` lives on `c`'s node.
fn track(c: &Conn, p: u64) {
    let mut v = lock(&c.proxies);
    if !v.contains(&p) {
        v.push(p);
    }
}

/// Links local `local` and proxy `p`; false if `local` is dead.
fn link_local(vm: &Vm, local: u64, p: u64) -> bool {
    let Some(sh) = vm.table.get(local) else {
        return false;
    };
    {
        let mut g = sh.lock();
        if g.state == ProcState::Exited {
            return false;
        }
        let x = g.x();
        if !x.links.contains(&p) {
            x.links.push(p);
        }
    }
    if let Some(ps) = vm.table.get(p) {
        let mut g = ps.lock();
        let x = g.x();
        if !x.links.contains(&local) {
            x.links.push(local);
        }
    }
    true
}

/// Removes the link between local `local` and proxy `p`; true if there
/// was one.
fn unlink_local(vm: &Vm, local: u64, p: u64) -> bool {
    if let Some(ps) = vm.table.get(p) {
        let mut g = ps.lock();
        if let Some(x) = g.x_opt() {
            x.links.retain(|&l| l != local);
        }
    }
    let Some(sh) = vm.table.get(local) else {
        return false;
    };
    let mut g = sh.lock();
    g.x_opt().is_some_and(|x| {
        let had = x.links.contains(&p);
        x.links.retain(|&l| l != p);
        had
    })
}

/// A SEND to local `to`: a call's reply, a whereis answer, or a message
/// checked against its mailbox's type.
fn on_send(n: &'static Node, c: &Conn, vm: &Arc<Vm>, to: u64, r: &mut Reader<'_>) {
    // `{Tag, Reply}` where Tag is one of our call references.
    let mut probe = *r;
    if probe.tuple() == Ok(2) {
        let mut p2 = probe;
        if let Ok(tag) = p2.reference() {
            if tag.node == n.name && tag.ids.len() == 4 {
                let rr = tag.ids[0] as u64 | ((tag.ids[1] as u64) << 32);
                let caller = tag.ids[2] as u64 | ((tag.ids[3] as u64) << 32);
                let d = n.state().calls.get(&(caller, rr)).copied();
                if caller == to {
                    if let Some(d) = d {
                        match decode_payload(n, &mut p2, d) {
                            Ok((v, f)) => deliver_reply(vm, caller, rr, v, f),
                            Err(e) => report(c, to, &e),
                        }
                    }
                    return;
                }
            }
        }
        // `{caravan_whereis, Id, Answer}` is 3-tuple: below.
    }
    let mut probe = *r;
    if probe.tuple() == Ok(3) && probe.atom() == Ok("caravan_whereis") {
        api::whereis_answer(n, vm, to, &mut probe);
        return;
    }
    let Some(d) = n.mailbox_type(to) else {
        if vm.table.get(to).is_some() {
            report(
                c,
                to,
                &EtfError(
                    "its message type is not known to this node (no pid of it was sent)".into(),
                ),
            );
        }
        return;
    };
    match decode_payload(n, r, d) {
        Ok((v, f)) => deliver(vm, to, v, f),
        Err(e) => report(c, to, &e),
    }
}

/// Reports a dropped message on stderr.
fn report(c: &Conn, to: u64, e: &EtfError) {
    eprintln!(
        "caravan: dropped a message from node {} to <0.{to}>: {e}",
        c.node
    );
}

/// A REG_SEND: `net_kernel` (ping), `caravan_registry` (whereis_on) or a
/// registered global name.
fn on_reg_send(
    n: &'static Node,
    c: &Conn,
    vm: &Arc<Vm>,
    from: &PidTerm,
    name: &str,
    r: &mut Reader<'_>,
) -> Result<(), EtfError> {
    match name {
        "net_kernel" => {
            // `{'$gen_call', {From, Tag}, {is_auth, Node}}` → `{Tag, yes}`.
            let mut p = *r;
            if p.tuple() != Ok(3) || p.atom() != Ok("$gen_call") || p.tuple() != Ok(2) {
                return Ok(());
            }
            let to = p.pid()?;
            let tag_start = p.pos;
            p.skip(16)?;
            let tag = &p.bytes[tag_start..p.pos];
            let mut out = vec![etf::VERSION];
            etf::put_tuple(&mut out, 2);
            out.extend_from_slice(tag);
            etf::put_atom(&mut out, "yes");
            c.send_to(&to, &out);
        }
        "caravan_registry" => api::whereis_request(n, c, from, r)?,
        _ => {
            let Some((serial, d)) = n.state().registered.get(name).copied() else {
                return Ok(());
            };
            match decode_payload(n, r, d) {
                Ok((v, f)) => deliver(vm, serial, v, f),
                Err(e) => report(c, serial, &e),
            }
        }
    }
    Ok(())
}
