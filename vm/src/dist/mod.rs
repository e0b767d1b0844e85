//! Distribution: this VM as a node of an Erlang cluster (LANGUAGE.md §7).
//!
//! The node registers with `epmd` and speaks the Erlang distribution
//! protocol (handshake version 6, External Term Format) through the
//! `erl_dist` crate for the wire parts it has (epmd, the handshake, the
//! flags); the node layer above — connections, control messages, links and
//! monitors across nodes — is ours.
//!
//! **Remote pids are proxies.** A pid of another node gets a local serial
//! at or above [`PROXY_BASE`] the first time it is decoded (interned by
//! node, id, serial, creation and the message type it was decoded at) and
//! a [`Shared`] entry in the process table that never runs. So a remote
//! pid is an immediate like any pid, compares and hashes as one, and the
//! VM's links, monitors and call watches register on the proxy as on a
//! local process; the few places that act on a target — `send`, `reply`,
//! exit signals, link, monitor — ask [`is_proxy`] and hand the work to
//! this module, which puts it on the wire. When a connection goes down,
//! every proxy of that node ends with `Noconnection`, which fires every
//! link, monitor and call across it through the VM's ordinary exit path.
//!
//! **Typed across nodes.** A message is encoded by the static type the
//! sender's pid was decoded at (or a global name's type) and decoded
//! against the receiving mailbox's type: a local process's type is known
//! once one of its pids has been encoded (`exported`) or it holds a global
//! name. A term that does not fit is dropped and reported on stderr.
//!
//! **Threads, not the poller.** Each connection has a reader thread;
//! writes happen on the sending scheduler thread under the connection's
//! lock (one `write` of a whole frame). This keeps a remote round trip to
//! two system calls per side, no hand-off through the poller — the same
//! reason the BEAM's distribution ports write directly from the sending
//! scheduler.

pub mod api;
mod conn;
mod epmd;

use crate::heap::Fragment;
use crate::process::{ExitReason, Msg, ProcState, Process, Shared, Signal, WaitKind};
use crate::scheduler::Vm;
use crate::term::desc::DescId;
use crate::term::etf::{self, EtfError, PidTerm, RefTerm};
use crate::value::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

pub use conn::Conn;

/// Serials at or above this stand for processes of other nodes.
pub const PROXY_BASE: u64 = 1 << 47;

/// Incoming messages larger than this many heap words are refused (the
/// connection stays up; the message is reported and dropped): 16 Mi words,
/// 128 MiB.
pub const MAX_MESSAGE_WORDS: usize = 16 << 20;

/// Frames longer than this close the connection (256 MiB).
pub const MAX_FRAME: usize = 256 << 20;

/// True for the serial of a remote process's proxy.
#[inline]
pub fn is_proxy(serial: u64) -> bool {
    serial >= PROXY_BASE
}

/// How this VM joins a cluster (`caravan run --sname/--name/--cookie`).
#[derive(Debug, Clone)]
pub struct DistConfig {
    /// `name@host`.
    pub name: String,
    /// The shared secret (`~/.erlang.cookie` by default).
    pub cookie: String,
    /// Address to listen on for other nodes (Erlang's default: all).
    pub listen: std::net::IpAddr,
    /// Seconds of silence after which a peer is down (`net_ticktime`).
    pub tick_secs: u64,
}

/// A remote pid's proxy.
pub(crate) struct Proxy {
    pub pid: PidTerm,
    /// The message type it was decoded at (`None`: a `Process.id`).
    pub desc: Option<DescId>,
}

/// A reply channel of a remote caller, as this node holds it.
struct RemoteReply {
    caller: u64,
    tag: RefTerm,
    desc: DescId,
}

/// What a monitor reference we sent stands for.
#[derive(Clone, Copy)]
enum OutMonitor {
    /// `Process.monitor`: the VM's monitor reference (registered on the
    /// proxy, with the local watcher).
    Monitor { reference: u64, proxy: u64 },
    /// A `call`'s watch on its remote callee.
    Call { caller: u64, r: u64, proxy: u64 },
}

/// A monitor a remote process holds on a local one.
struct InMonitor {
    watched: u64,
    watcher: PidTerm,
    tag: RefTerm,
}

/// A `Registry.whereis_on` in progress: who waits, for which reference.
pub(crate) enum Lookup {
    Found(u64),
    NotRegistered,
    Mismatch(String),
    Unreachable,
}

/// The node's mutable state (one lock: distribution traffic is not where
/// contention lives, and one lock keeps the invariants simple).
#[derive(Default)]
pub(crate) struct State {
    pub conns: HashMap<String, Arc<Conn>>,
    /// Outgoing connects in progress (simultaneous-connect resolution).
    pub connecting: std::collections::HashSet<String>,
    proxy_ids: HashMap<PidTerm, u64>,
    pub proxies: HashMap<u64, Proxy>,
    next_proxy: u64,
    /// Local serial → the message type its pid was sent at.
    exported: HashMap<u64, DescId>,
    /// Sweep `exported` for ended processes when it reaches this size.
    exported_prune_at: usize,
    /// (caller, call reference) → reply type, for replies from the wire.
    calls: HashMap<(u64, u64), DescId>,
    remote_replies: HashMap<u64, RemoteReply>,
    next_reply: u64,
    out_monitors: HashMap<Vec<u32>, OutMonitor>,
    /// The VM's monitor reference (of a local process's `MonitorReg`
    /// whose watcher is a proxy) → the remote monitor.
    in_monitors: HashMap<u64, InMonitor>,
    /// Registered (global) names: name → (serial, type).
    pub registered: HashMap<String, (u64, DescId)>,
    /// `Registry.whereis_on` answers, by (caller, call reference).
    pub lookups: HashMap<(u64, u64), Lookup>,
    /// `Node.monitor_nodes`: (serial, its wrapper `node_event -> 'm`).
    pub node_watchers: Vec<(u64, Arc<Mutex<Option<Msg>>>)>,
}

/// The running node.
pub struct Node {
    /// `name@host`.
    pub name: String,
    pub creation: u32,
    pub(crate) cookie: String,
    pub(crate) tick_secs: u64,
    pub(crate) flags: erl_dist::DistributionFlags,
    state: Mutex<State>,
    vm: OnceLock<Arc<Vm>>,
    next_ref: AtomicU64,
    /// The epmd registration: closing it unregisters the node.
    _epmd: Mutex<Option<std::net::TcpStream>>,
    pub(crate) stopping: AtomicBool,
}

static NODE: OnceLock<Node> = OnceLock::new();

/// The node, when this VM is distributed.
pub fn node() -> Option<&'static Node> {
    NODE.get()
}

/// Starts the node: starts `epmd` if none answers, listens for other
/// nodes on `config.listen` (any port), registers the name with `epmd`
/// (hidden) and keeps that socket. Connections are served once the VM is
/// attached ([`attach`]).
///
/// # Errors
/// A message for the user: `epmd` not installed or not reachable, the name
/// taken, a malformed name.
pub fn start(config: DistConfig) -> Result<(), String> {
    let Some((alive, host)) = config.name.split_once('@') else {
        return Err(format!("node name {} has no @host", config.name));
    };
    if alive.is_empty() || host.is_empty() {
        return Err(format!("malformed node name {}", config.name));
    }
    epmd::ensure_running()?;
    let listener = std::net::TcpListener::bind((config.listen, 0))
        .map_err(|e| format!("cannot listen for other nodes on {}: {e}", config.listen))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let (sock, creation) = epmd::register(alive, port)?;
    let flags =
        erl_dist::DistributionFlags::mandatory() | erl_dist::DistributionFlags::DIST_MONITOR;
    let node = Node {
        name: config.name.clone(),
        creation,
        cookie: config.cookie,
        tick_secs: config.tick_secs.max(4),
        flags,
        state: Mutex::new(State {
            next_proxy: PROXY_BASE,
            next_reply: 1,
            exported_prune_at: 1024,
            ..Default::default()
        }),
        vm: OnceLock::new(),
        next_ref: AtomicU64::new(1),
        _epmd: Mutex::new(Some(sock)),
        stopping: AtomicBool::new(false),
    };
    NODE.set(node)
        .map_err(|_| "this VM is already a node".to_string())?;
    std::thread::Builder::new()
        .name("caravan-dist-accept".into())
        .spawn(move || conn::accept_loop(listener))
        .map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("caravan-dist-tick".into())
        .spawn(conn::tick_loop)
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Hands the node its VM (at [`crate::Runtime::start`]); connections are
/// served from then on.
pub(crate) fn attach(vm: &Arc<Vm>) {
    if let Some(n) = node() {
        let _ = n.vm.set(vm.clone());
    }
}

/// At VM shutdown: closes every connection (peers see the node go down).
pub(crate) fn stop() {
    if let Some(n) = node() {
        n.stopping.store(true, Ordering::SeqCst);
        let conns: Vec<Arc<Conn>> = n.state().conns.values().cloned().collect();
        for c in conns {
            c.shutdown();
        }
    }
}

impl Node {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The VM, once attached (blocks the caller until then: connections
    /// accepted before the program starts wait for it).
    pub(crate) fn vm(&self) -> &Arc<Vm> {
        loop {
            if let Some(v) = self.vm.get() {
                return v;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// A fresh reference term of this node.
    pub(crate) fn make_ref(&self) -> RefTerm {
        let n = self.next_ref.fetch_add(1, Ordering::Relaxed);
        RefTerm {
            node: self.name.clone(),
            creation: self.creation,
            ids: vec![n as u32, (n >> 32) as u32, 0x00ca_7a7a],
        }
    }

    /// The pid term of a local serial.
    pub(crate) fn local_pid(&self, serial: u64) -> PidTerm {
        PidTerm {
            node: self.name.clone(),
            id: (serial & 0x0fff_ffff) as u32,
            serial: (serial >> 28) as u32,
            creation: self.creation,
        }
    }

    /// The serial a pid term stands for here: a local process, or a proxy
    /// (made if new) of a remote one with message type `desc`.
    pub(crate) fn serial_of(&self, p: &PidTerm, desc: Option<DescId>) -> u64 {
        if p.node == self.name {
            if p.creation != self.creation {
                // A pid of an earlier incarnation of this node: nobody.
                return 0;
            }
            return ((p.serial as u64) << 28) | p.id as u64;
        }
        let mut st = self.state();
        if let Some(&s) = st.proxy_ids.get(p) {
            // One proxy per remote pid: the first message type it is seen
            // at is the one its messages are encoded by.
            if let (Some(d), Some(px)) = (desc, st.proxies.get_mut(&s)) {
                px.desc.get_or_insert(d);
            }
            return s;
        }
        let s = st.next_proxy;
        st.next_proxy += 1;
        st.proxy_ids.insert(p.clone(), s);
        st.proxies.insert(
            s,
            Proxy {
                pid: p.clone(),
                desc,
            },
        );
        let conn = st.conns.get(&p.node).cloned();
        drop(st);
        let vm = self.vm();
        let sh = Arc::new(Shared::new());
        vm.table.insert(s, sh.clone());
        match conn {
            Some(c) => c.proxies.lock().unwrap_or_else(|e| e.into_inner()).push(s),
            None => end_proxy(vm, s, ExitReason::Noconnection),
        }
        s
    }

    /// The pid term and message type of a proxy.
    pub(crate) fn proxy(&self, serial: u64) -> Option<(PidTerm, Option<DescId>)> {
        self.state()
            .proxies
            .get(&serial)
            .map(|p| (p.pid.clone(), p.desc))
    }

    /// The connection to `node`, if up.
    pub(crate) fn conn(&self, node: &str) -> Option<Arc<Conn>> {
        self.state().conns.get(node).cloned()
    }

    /// The message type of local process `serial`'s mailbox, if known.
    pub(crate) fn mailbox_type(&self, serial: u64) -> Option<DescId> {
        self.state().exported.get(&serial).copied()
    }
}

/// `<name@host.id.serial>` for the serial of a remote process's proxy
/// (what `inspect` prints), `None` for a local serial.
pub fn remote_label(serial: u64) -> Option<String> {
    if !is_proxy(serial) {
        return None;
    }
    let p = node()?.proxy(serial)?.0;
    Some(format!("<{}.{}.{}>", p.node, p.id, p.serial))
}

/// Ends a proxy with `reason`: its links, monitors and call watchers fire
/// as for a local process's exit.
pub(crate) fn end_proxy(vm: &Vm, serial: u64, reason: ExitReason) {
    let Some(sh) = vm.table.get(serial) else {
        return;
    };
    let extra = {
        let mut g = sh.lock();
        if g.state == ProcState::Exited {
            return;
        }
        sh.set_state(&mut g, ProcState::Exited);
        g.exit_reason = Some(reason.clone());
        g.take_extra()
    };
    vm.table.remove(serial);
    if let Some(n) = node() {
        let mut st = n.state();
        if let Some(p) = st.proxies.remove(&serial) {
            st.proxy_ids.remove(&p.pid);
        }
    }
    if let Some(x) = extra {
        let x = *x;
        crate::signals::notify_watchers(vm, serial, &reason, x.watchers);
        crate::signals::on_exit(vm, serial, &reason, x.links, x.monitors, x.held_monitors);
    }
}

// ---------------------------------------------------------------------------
// Encoding and decoding contexts
// ---------------------------------------------------------------------------

/// How this node's pids and reply channels go out.
struct Out<'a> {
    node: &'a Node,
}

impl etf::EncodeCtx for Out<'_> {
    fn pid(&mut self, serial: u64, msg: Option<DescId>) -> Result<PidTerm, EtfError> {
        if is_proxy(serial) {
            return self
                .node
                .proxy(serial)
                .map(|p| p.0)
                .ok_or_else(|| EtfError("a pid whose node is down".into()));
        }
        if let Some(d) = msg {
            let mut st = self.node.state();
            st.exported.entry(serial).or_insert(d);
            if st.exported.len() >= st.exported_prune_at {
                // Forget the types of processes that have ended (amortised:
                // the table is swept when it doubles).
                let vm = self.node.vm.get();
                st.exported
                    .retain(|s, _| vm.is_some_and(|vm| vm.table.get(*s).is_some()));
                st.exported_prune_at = (st.exported.len() * 2).max(1024);
            }
        }
        Ok(self.node.local_pid(serial))
    }

    fn reply(
        &mut self,
        caller: u64,
        r: u64,
        reply: DescId,
    ) -> Result<(PidTerm, RefTerm), EtfError> {
        if is_proxy(caller) {
            // A remote caller's channel passed on: the same {Pid, Tag}.
            let st = self.node.state();
            let Some(rr) = st.remote_replies.get(&r) else {
                return Err(EtfError("a reply channel already answered".into()));
            };
            let pid = st.proxies.get(&rr.caller).map(|p| p.pid.clone());
            let tag = rr.tag.clone();
            drop(st);
            return pid
                .map(|p| (p, tag))
                .ok_or_else(|| EtfError("a reply channel whose node is down".into()));
        }
        self.node.state().calls.insert((caller, r), reply);
        let tag = RefTerm {
            node: self.node.name.clone(),
            creation: self.node.creation,
            ids: vec![
                r as u32,
                (r >> 32) as u32,
                caller as u32,
                (caller >> 32) as u32,
            ],
        };
        Ok((self.node.local_pid(caller), tag))
    }
}

/// How incoming pids and reply channels become local serials.
struct In<'a> {
    node: &'a Node,
}

impl etf::DecodeCtx for In<'_> {
    fn pid(&mut self, p: &PidTerm, msg: Option<DescId>) -> u64 {
        self.node.serial_of(p, msg)
    }

    fn reply(&mut self, p: &PidTerm, tag: &RefTerm, reply: DescId) -> (u64, u64) {
        let caller = self.node.serial_of(p, None);
        let mut st = self.node.state();
        let r = st.next_reply;
        st.next_reply += 1;
        st.remote_replies.insert(
            r,
            RemoteReply {
                caller,
                tag: tag.clone(),
                desc: reply,
            },
        );
        (caller, r)
    }
}

/// Encodes `v` of type `d` as a whole payload (`131` + term).
///
/// # Safety
/// `v` must be a valid value of type `d`, unmoved during the call.
pub(crate) unsafe fn encode_payload(node: &Node, v: Value, d: DescId) -> Result<Vec<u8>, EtfError> {
    let mut out = vec![etf::VERSION];
    // SAFETY: caller's guarantee.
    unsafe { etf::encode(v, d, &mut out, &mut Out { node })? };
    Ok(out)
}

/// Decodes a payload term of type `d` into a message.
pub(crate) fn decode_payload(
    node: &Node,
    r: &mut etf::Reader<'_>,
    d: DescId,
) -> Result<(Value, Option<Fragment>), EtfError> {
    etf::decode(r, d, MAX_MESSAGE_WORDS, &mut In { node })
}

// ---------------------------------------------------------------------------
// Hooks called by the VM for proxies
// ---------------------------------------------------------------------------

/// Why a send to a remote pid failed (the sender crashes with it).
pub(crate) type SendError = String;

/// `send` to proxy `to`: encodes by the proxy's message type and writes a
/// SEND frame. Dropped (as a send to a dead process) when its node is down.
///
/// # Safety
/// `v` is a valid value of the calling process.
pub(crate) unsafe fn send(to: u64, v: Value) -> Result<(), SendError> {
    let Some(n) = node() else { return Ok(()) };
    let Some((pid, desc)) = n.proxy(to) else {
        return Ok(());
    };
    let Some(d) = desc else {
        return Err("send: a Process.id has no message type".into());
    };
    // SAFETY: caller's guarantee.
    let payload = unsafe { encode_payload(n, v, d) }.map_err(|e| format!("send: {e}"))?;
    if let Some(c) = n.conn(&pid.node) {
        c.send_to(&pid, &payload);
    }
    Ok(())
}

/// `reply` on a reply channel whose caller is remote (`caller` a proxy,
/// `r` our id of its `{Pid, Tag}`): sends `{Tag, V}` to the caller.
///
/// # Safety
/// `v` is a valid value of the calling process.
pub(crate) unsafe fn reply(r: u64, v: Value) -> Result<(), SendError> {
    let Some(n) = node() else { return Ok(()) };
    let Some(rr) = n.state().remote_replies.remove(&r) else {
        return Ok(());
    };
    let Some((pid, _)) = n.proxy(rr.caller) else {
        return Ok(());
    };
    let mut out = vec![etf::VERSION];
    etf::put_tuple(&mut out, 2);
    etf::put_ref(&mut out, &rr.tag);
    // SAFETY: caller's guarantee.
    unsafe { etf::encode(v, rr.desc, &mut out, &mut Out { node: n }) }
        .map_err(|e| format!("reply: {e}"))?;
    if let Some(c) = n.conn(&pid.node) {
        c.send_to(&pid, &out);
    }
    Ok(())
}

/// An exit signal from local `from` to proxy `to` (a link's, or
/// `Process.exit`'s): EXIT or EXIT2 on the wire.
pub(crate) fn exit_signal(to: u64, from: u64, reason: &ExitReason, link: bool) {
    let Some(n) = node() else { return };
    let Some((pid, _)) = n.proxy(to) else { return };
    if let Some(c) = n.conn(&pid.node) {
        c.exit(&n.local_pid(from), &pid, reason, link);
    }
}

/// Local `from` linked to proxy `to`: LINK on the wire.
pub(crate) fn link(from: u64, to: u64) {
    let Some(n) = node() else { return };
    let Some((pid, _)) = n.proxy(to) else { return };
    if let Some(c) = n.conn(&pid.node) {
        c.link(&n.local_pid(from), &pid);
    }
}

/// `Process.monitor` of proxy `watched` by local `watcher` (VM reference
/// `reference`): MONITOR_P on the wire.
pub(crate) fn monitor(watcher: u64, watched: u64, reference: u64) {
    watch(
        watcher,
        watched,
        OutMonitor::Monitor {
            reference,
            proxy: watched,
        },
    );
}

/// A `call` of local `caller` (reference `r`) to proxy `callee`: the
/// callee is monitored for the call's duration.
pub(crate) fn watch_call(caller: u64, r: u64, callee: u64) {
    watch(
        caller,
        callee,
        OutMonitor::Call {
            caller,
            r,
            proxy: callee,
        },
    );
}

fn watch(watcher: u64, watched: u64, what: OutMonitor) {
    let Some(n) = node() else { return };
    let Some((pid, _)) = n.proxy(watched) else {
        return;
    };
    let tag = n.make_ref();
    n.state().out_monitors.insert(tag.ids.clone(), what);
    if let Some(c) = n.conn(&pid.node) {
        c.monitor(&n.local_pid(watcher), &pid, &tag);
    }
}

/// A call to a remote callee is over: DEMONITOR_P.
pub(crate) fn call_done(caller: u64, r: u64) {
    let Some(n) = node() else { return };
    let found = {
        let mut st = n.state();
        let key = st.out_monitors.iter().find_map(|(k, v)| match v {
            OutMonitor::Call {
                caller: c,
                r: rr,
                proxy,
            } if *c == caller && *rr == r => Some((k.clone(), *proxy)),
            _ => None,
        });
        if let Some((k, _)) = &key {
            st.out_monitors.remove(k);
        }
        st.calls.remove(&(caller, r));
        key
    };
    if let Some((ids, proxy)) = found {
        demonitor_wire(n, caller, proxy, ids);
    }
}

/// `Process.demonitor` of a monitor on a proxy.
pub(crate) fn demonitor(watcher: u64, reference: u64) {
    let Some(n) = node() else { return };
    let found = {
        let mut st = n.state();
        let key = st.out_monitors.iter().find_map(|(k, v)| match v {
            OutMonitor::Monitor {
                reference: rf,
                proxy,
            } if *rf == reference => Some((k.clone(), *proxy)),
            _ => None,
        });
        if let Some((k, _)) = &key {
            st.out_monitors.remove(k);
        }
        key
    };
    if let Some((ids, proxy)) = found {
        demonitor_wire(n, watcher, proxy, ids);
    }
}

fn demonitor_wire(n: &Node, watcher: u64, proxy: u64, ids: Vec<u32>) {
    let Some((pid, _)) = n.proxy(proxy) else {
        return;
    };
    let tag = RefTerm {
        node: n.name.clone(),
        creation: n.creation,
        ids,
    };
    if let Some(c) = n.conn(&pid.node) {
        c.demonitor(&n.local_pid(watcher), &pid, &tag);
    }
}

/// A local process with a monitor held by a remote one ended: the VM's
/// notice to the proxy watcher becomes MONITOR_P_EXIT.
pub(crate) fn monitor_exit(reference: u64, reason: &ExitReason) {
    let Some(n) = node() else { return };
    let Some(m) = n.state().in_monitors.remove(&reference) else {
        return;
    };
    if let Some(c) = n.conn(&m.watcher.node) {
        c.monitor_exit(&n.local_pid(m.watched), &m.watcher, &m.tag, reason);
    }
}

/// Delivers a `Node.monitor_nodes` event to every watcher.
pub(crate) fn node_event(vm: &Vm, up: bool, name: &str) {
    let Some(n) = node() else { return };
    let watchers = n.state().node_watchers.clone();
    for (serial, wrap) in watchers {
        let Some(sh) = vm.table.get(serial) else {
            continue;
        };
        // The wrapper is copied per event (a fragment is adopted once).
        let m = {
            let w = wrap.lock().unwrap_or_else(|e| e.into_inner());
            match w.as_ref() {
                Some(Msg {
                    value,
                    frag: Some(_),
                    ..
                }) => {
                    // SAFETY: the stored wrapper is a valid value of its
                    // fragment, which stays alive under the lock.
                    unsafe {
                        crate::process::make_msg(
                            &mut crate::term::CopyScratch::default(),
                            None,
                            *value,
                        )
                    }
                    .map(|x| x.0)
                }
                Some(Msg { value, .. }) => Some(Msg::plain(*value, None)),
                None => None,
            }
        };
        let Some(m) = m else { continue };
        let woken = {
            let mut g = sh.lock();
            if g.state == ProcState::Exited {
                std::ptr::null_mut()
            } else {
                g.inbox.push(Msg {
                    value: m.value,
                    frag: m.frag,
                    signal: Some(Box::new(Signal::Node {
                        up,
                        name: Arc::from(name),
                    })),
                    small: m.small,
                });
                sh.note_mail();
                sh.wake_if(&mut g, |k| k == WaitKind::Receive)
            }
        };
        if !woken.is_null() {
            vm.push_injector(woken);
        }
    }
}

/// Delivers a decoded message to local process `to`; dropped if it is dead.
pub(crate) fn deliver(vm: &Vm, to: u64, value: Value, frag: Option<Fragment>) {
    let Some(sh) = vm.table.get(to) else { return };
    let woken = {
        let mut g = sh.lock();
        if g.state == ProcState::Exited || g.inbox.try_reserve(1).is_err() {
            return;
        }
        let words = frag.as_ref().map_or(0, |f| f.total_words());
        g.inbox.push(Msg::plain(value, frag));
        sh.note_mail();
        g.inbox_words = g
            .inbox_words
            .saturating_add(words.min(u32::MAX as usize) as u32);
        sh.wake_if(&mut g, |k| k == WaitKind::Receive)
    };
    if !woken.is_null() {
        vm.push_injector(woken);
    }
}

/// Delivers the reply of call `r` to local `caller`, if it still waits.
pub(crate) fn deliver_reply(vm: &Vm, caller: u64, r: u64, value: Value, frag: Option<Fragment>) {
    let Some(sh) = vm.table.get(caller) else {
        return;
    };
    let woken = {
        let mut g = sh.lock();
        if g.state != ProcState::Exited
            && g.x_opt()
                .is_some_and(|x| x.calls.contains(&r) && !x.replies.iter().any(|y| y.0 == r))
        {
            g.x().replies.push((r, Msg::plain(value, frag)));
            sh.wake_if(&mut g, |k| k == WaitKind::Reply(r))
        } else {
            std::ptr::null_mut()
        }
    };
    if !woken.is_null() {
        vm.push_injector(woken);
    }
}
