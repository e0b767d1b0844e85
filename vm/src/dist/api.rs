//! Runtime functions of `Node` and the distributed half of `Registry`
//! (LANGUAGE.md §7), and the `caravan_registry` service that answers
//! `Registry.whereis_on` from other nodes.
//!
//! A global name (`Registry.global "pinger"`) is an immediate id at or
//! above [`GLOBAL_NAME_BASE`], interned by its string and message type; a
//! process that registers it is also an Erlang registered name on this
//! node, so `{pinger, Node} ! Msg` from an Erlang shell reaches it (decoded
//! against its type). `whereis_on` asks the other node's
//! `caravan_registry`, which compares the name's fingerprints.

use super::*;
use crate::heap::alloc::{alloc_block, alloc_string};
use crate::process::{serial_of_pid, Request};
use crate::safepoint::{blocking_section, guard, switch_out, Fail};
use crate::term::etf::{fingerprint, Reader};
use crate::value::{int_of, of_bool, of_int, string_bytes, Value, UNIT};
use std::time::Instant;

/// Global name ids start here (local names count up from 1).
pub const GLOBAL_NAME_BASE: u64 = 1 << 40;

/// How long `whereis_on` waits for the other node's answer (ms).
pub const WHEREIS_TIMEOUT_MS: u64 = 5000;

/// The node name without distribution, as Erlang's.
pub const NONODE: &str = "nonode@nohost";

static GLOBALS: Mutex<Vec<(String, DescId)>> = Mutex::new(Vec::new());

fn globals() -> MutexGuard<'static, Vec<(String, DescId)>> {
    GLOBALS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The (string, message type) of global name `id`.
pub fn global_name(id: u64) -> Option<(String, DescId)> {
    let i = id.checked_sub(GLOBAL_NAME_BASE)? as usize;
    globals().get(i).cloned()
}

fn block(proc: &mut Process, tag: u8, fields: &[Value]) -> Value {
    let b = alloc_block(proc, tag, fields.len());
    for (i, f) in fields.iter().enumerate() {
        // SAFETY: a fresh block of `fields.len()` fields.
        unsafe { *b.add(i) = *f };
    }
    b as Value
}

fn text(v: Value) -> String {
    // SAFETY: called with string values of the running process, read at
    // once.
    String::from_utf8_lossy(unsafe { string_bytes(v) }).into_owned()
}

/// `Registry.global name` (with the descriptor of its message type, passed
/// by the compiler): the same id for the same string and type.
///
/// # Safety
/// `proc` is the running process; `name` a string; `desc` a tagged
/// descriptor id.
#[no_mangle]
pub unsafe extern "C" fn caravan_registry_global(
    _proc: *mut Process,
    name: Value,
    desc: Value,
) -> Value {
    let s = text(name);
    let d = int_of(desc) as DescId;
    let mut g = globals();
    let i = match g.iter().position(|(n, dd)| *n == s && *dd == d) {
        Some(i) => i,
        None => {
            g.push((s, d));
            g.len() - 1
        }
    };
    of_int((GLOBAL_NAME_BASE + i as u64) as i64)
}

/// Called by `Registry.register` for a global name: the holder becomes a
/// registered name of this node (reachable by REG_SEND, by `whereis_on`).
pub fn register_global(id: u64, serial: u64) {
    let (Some(n), Some((s, d))) = (node(), global_name(id)) else {
        return;
    };
    let mut st = n.state();
    st.registered.insert(s, (serial, d));
    st.exported.entry(serial).or_insert(d);
}

/// Called when a global name is freed (its holder ended, `unregister`).
pub fn unregister_global(id: u64, serial: Option<u64>) {
    let (Some(n), Some((s, _))) = (node(), global_name(id)) else {
        return;
    };
    let mut st = n.state();
    if serial.is_none() || st.registered.get(&s).map(|x| x.0) == serial {
        st.registered.remove(&s);
    }
}

/// `Node.self ()`: `name@host`, or `nonode@nohost`.
///
/// # Safety
/// `proc` is the running process.
#[no_mangle]
pub unsafe extern "C" fn caravan_node_self(proc: *mut Process, _u: Value) -> Value {
    let name = node().map_or(NONODE, |n| n.name.as_str());
    // SAFETY: the running process.
    alloc_string(unsafe { &mut *proc }, name.as_bytes())
}

/// `Node.connect name`: connects (epmd lookup and handshake, blocking this
/// process at most a few seconds, not its scheduler); true when connected.
///
/// # Safety
/// `proc` is the running process; `name` a string.
#[no_mangle]
pub unsafe extern "C" fn caravan_node_connect(proc: *mut Process, name: Value) -> Value {
    let peer = text(name);
    let Some(n) = node() else {
        return of_bool(false);
    };
    // SAFETY: the running process, on its own stack.
    of_bool(unsafe { blocking_section(proc, || conn::connect(n, &peer)) })
}

/// `Node.disconnect name`: closes the connection (links and monitors
/// across it fire with `Noconnection`).
///
/// # Safety
/// `name` is a string.
#[no_mangle]
pub unsafe extern "C" fn caravan_node_disconnect(_proc: *mut Process, name: Value) -> Value {
    let peer = text(name);
    if let Some(c) = node().and_then(|n| n.conn(&peer)) {
        c.shutdown();
    }
    UNIT
}

/// `Node.list ()`: the connected nodes, sorted.
///
/// # Safety
/// `proc` is the running process.
#[no_mangle]
pub unsafe extern "C" fn caravan_node_list(proc: *mut Process, _u: Value) -> Value {
    let mut names: Vec<String> =
        node().map_or(vec![], |n| n.state().conns.keys().cloned().collect());
    names.sort();
    // SAFETY: the running process.
    let p = unsafe { &mut *proc };
    let strs: Vec<Value> = names
        .iter()
        .map(|s| alloc_string(p, s.as_bytes()))
        .collect();
    let mut l = UNIT;
    for s in strs.into_iter().rev() {
        l = block(p, 0, &[s, l]);
    }
    l
}

/// `Node.monitor_nodes pid wrap`: `pid` gets `wrap (Nodeup n)` and `wrap
/// (Nodedown n)` as connections come and go.
///
/// # Safety
/// `proc` is the running process; `wrap` a closure of its heap.
#[no_mangle]
pub unsafe extern "C" fn caravan_node_monitor_nodes(
    proc: *mut Process,
    pid: Value,
    wrap: Value,
) -> Value {
    // SAFETY: the running process.
    unsafe {
        guard(proc, || {
            let Some(n) = node() else { return Ok(UNIT) };
            let m = crate::process::make_msg(
                &mut crate::safepoint::local_of(proc).copy,
                Some(&(*proc).large),
                wrap,
            )
            .ok_or_else(|| Fail::msg(crate::process::OUT_OF_MEMORY))?
            .0;
            n.state()
                .node_watchers
                .push((serial_of_pid(pid), Arc::new(Mutex::new(Some(m)))));
            Ok(UNIT)
        })
    }
}

/// `Registry.send_on node name msg`: REG_SEND to the name on that node
/// (connecting if needed); dropped when unreachable, as Erlang's `{Name,
/// Node} ! Msg`.
///
/// # Safety
/// `proc` is the running process; arguments of the declared types.
#[no_mangle]
pub unsafe extern "C" fn caravan_registry_send_on(
    proc: *mut Process,
    node_name: Value,
    name: Value,
    msg: Value,
) -> Value {
    // SAFETY: the running process.
    unsafe {
        guard(proc, || {
            let peer = text(node_name);
            let Some((s, d)) = global_name(int_of(name) as u64) else {
                return Err(Fail::msg("Registry.send_on: not a global name"));
            };
            let n = match node() {
                Some(n) if peer != n.name => n,
                _ => {
                    // This node: an ordinary local send.
                    if peer == node().map_or(NONODE, |n| n.name.as_str()) {
                        let holder = node().and_then(|n| n.state().registered.get(&s).map(|x| x.0));
                        if let Some(h) = holder {
                            crate::abi::caravan_rt_send(
                                proc,
                                crate::process::pid_of_serial(h),
                                msg,
                            );
                        }
                    }
                    return Ok(UNIT);
                }
            };
            let payload =
                encode_payload(n, msg, d).map_err(|e| Fail::msg(format!("send_on: {e}")))?;
            let me = (*proc).serial;
            if !blocking_section(proc, || conn::connect(n, &peer)) {
                return Ok(UNIT);
            }
            if let Some(c) = n.conn(&peer) {
                c.reg_send(&n.local_pid(me), &s, &payload);
            }
            Ok(UNIT)
        })
    }
}

/// `Registry.whereis_on node name`: `Ok pid` of the name's holder there,
/// `Error Not_registered`, `Error (Type_mismatch why)` when the two
/// programs give the name different message types, `Error
/// Node_unreachable`.
///
/// # Safety
/// `proc` is the running process; arguments of the declared types.
#[no_mangle]
pub unsafe extern "C" fn caravan_registry_whereis_on(
    proc: *mut Process,
    node_name: Value,
    name: Value,
) -> Value {
    // SAFETY: the running process; borrows end before switches.
    unsafe {
        guard(proc, || {
            let peer = text(node_name);
            let Some((s, d)) = global_name(int_of(name) as u64) else {
                return Ok(lookup_value(&mut *proc, Lookup::NotRegistered));
            };
            let me_name = node().map_or(NONODE, |n| n.name.as_str());
            if peer == me_name {
                let found = node().and_then(|n| n.state().registered.get(&s).copied());
                let l = match found {
                    Some((serial, d2)) if fingerprint(d2) == fingerprint(d) => {
                        Lookup::Found(serial)
                    }
                    Some(_) => Lookup::Mismatch(mismatch_text(&s, me_name)),
                    None => Lookup::NotRegistered,
                };
                return Ok(lookup_value(&mut *proc, l));
            }
            let Some(n) = node() else {
                return Ok(lookup_value(&mut *proc, Lookup::Unreachable));
            };
            if !blocking_section(proc, || conn::connect(n, &peer)) {
                return Ok(lookup_value(&mut *proc, Lookup::Unreachable));
            }
            let Some(c) = n.conn(&peer) else {
                return Ok(lookup_value(&mut *proc, Lookup::Unreachable));
            };
            let p = &mut *proc;
            let r = p.next_call_ref;
            p.next_call_ref += 1;
            let me = p.serial;
            p.shared.lock().x().calls.push(r);
            let mut payload = vec![etf::VERSION];
            etf::put_tuple(&mut payload, 5);
            etf::put_atom(&mut payload, "whereis");
            etf::put_binary(&mut payload, s.as_bytes());
            etf::put_binary(&mut payload, &fingerprint(d).to_be_bytes());
            etf::put_pid(&mut payload, &n.local_pid(me));
            etf::put_int(&mut payload, r as i64);
            c.reg_send(&n.local_pid(me), "caravan_registry", &payload);
            let deadline = Instant::now() + std::time::Duration::from_millis(WHEREIS_TIMEOUT_MS);
            loop {
                let done = {
                    let p = &mut *proc;
                    let mut g = p.shared.lock();
                    let x = g.x();
                    let got = x.replies.iter().position(|y| y.0 == r);
                    let out = got.is_some() || Instant::now() >= deadline;
                    if let Some(i) = got {
                        x.replies.swap_remove(i);
                    }
                    if out {
                        x.calls.retain(|&c| c != r);
                    }
                    out
                };
                if done {
                    break;
                }
                (*proc).request = Request::Wait {
                    kind: WaitKind::Reply(r),
                    deadline: Some(deadline),
                };
                switch_out(proc);
            }
            let answer = n.state().lookups.remove(&(me, r));
            let l = answer.unwrap_or(Lookup::Unreachable);
            if let Lookup::Found(s) = &l {
                type_proxy(*s, d);
            }
            Ok(lookup_value(&mut *proc, l))
        })
    }
}

fn mismatch_text(name: &str, node: &str) -> String {
    format!("the name \"{name}\" has another message type on node {node}")
}

/// The `(pid, lookup_error) result` value of an answer.
fn lookup_value(p: &mut Process, l: Lookup) -> Value {
    match l {
        Lookup::Found(serial) => {
            let v = crate::process::pid_of_serial(serial);
            block(p, 0, &[v])
        }
        Lookup::NotRegistered => block(p, 1, &[of_int(0)]),
        Lookup::Unreachable => block(p, 1, &[of_int(1)]),
        Lookup::Mismatch(why) => {
            let s = alloc_string(p, why.as_bytes());
            let e = block(p, 0, &[s]);
            block(p, 1, &[e])
        }
    }
}

/// On the answering node: `{whereis, Name, Fingerprint, From, R}` to
/// `caravan_registry` → `{caravan_whereis, R, Answer}` to `From`, Answer
/// `{ok, Pid}`, `not_registered` or `{type_mismatch, Why}`.
pub(crate) fn whereis_request(
    n: &Node,
    c: &Conn,
    _from: &PidTerm,
    r: &mut Reader<'_>,
) -> Result<(), EtfError> {
    if r.tuple()? != 5 || r.atom()? != "whereis" {
        return Ok(());
    }
    let name = String::from_utf8_lossy(r.binary()?).into_owned();
    let fp = r.binary()?.to_vec();
    let from = r.pid()?;
    let id = r.int()?;
    let found = n.state().registered.get(&name).copied();
    let mut out = vec![etf::VERSION];
    etf::put_tuple(&mut out, 3);
    etf::put_atom(&mut out, "caravan_whereis");
    etf::put_int(&mut out, id);
    match found {
        Some((serial, d)) if fingerprint(d).to_be_bytes().as_slice() == fp.as_slice() => {
            etf::put_tuple(&mut out, 2);
            etf::put_atom(&mut out, "ok");
            etf::put_pid(&mut out, &n.local_pid(serial));
        }
        Some(_) => {
            etf::put_tuple(&mut out, 2);
            etf::put_atom(&mut out, "type_mismatch");
            etf::put_binary(&mut out, mismatch_text(&name, &n.name).as_bytes());
        }
        None => etf::put_atom(&mut out, "not_registered"),
    }
    c.send_to(&from, &out);
    Ok(())
}

/// On the asking node: the answer for local process `to`'s lookup.
pub(crate) fn whereis_answer(n: &Node, vm: &Vm, to: u64, r: &mut Reader<'_>) {
    let Ok(id) = r.int() else { return };
    let r_id = id as u64;
    let answer = {
        let mut probe = *r;
        if let Ok(a) = probe.atom() {
            match a {
                "not_registered" => Some(Lookup::NotRegistered),
                _ => None,
            }
        } else if r.tuple() == Ok(2) {
            match r.atom() {
                // The proxy gets the name's message type from the caller
                // (`type_proxy`), which knows the name.
                Ok("ok") => r.pid().ok().map(|p| Lookup::Found(n.serial_of(&p, None))),
                Ok("type_mismatch") => {
                    let why = r
                        .binary()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default();
                    Some(Lookup::Mismatch(why))
                }
                _ => None,
            }
        } else {
            None
        }
    };
    let Some(answer) = answer else { return };
    n.state().lookups.insert((to, r_id), answer);
    deliver_reply(vm, to, r_id, UNIT, None);
}

/// Sets the message type of a proxy found by `whereis_on` (the name's).
pub(crate) fn type_proxy(serial: u64, d: DescId) {
    if let Some(n) = node() {
        if let Some(p) = n.state().proxies.get_mut(&serial) {
            p.desc.get_or_insert(d);
        }
    }
}

/// A `node_event` value: `Nodeup name` (block tag 0) or `Nodedown name`
/// (tag 1).
pub(crate) fn node_event_value(p: &mut Process, up: bool, name: &str) -> Value {
    let s = alloc_string(p, name.as_bytes());
    block(p, if up { 0 } else { 1 }, &[s])
}

/// `(name, address)` of the distribution's runtime functions, for the JIT.
pub fn symbols() -> Vec<(&'static str, *const u8)> {
    macro_rules! syms {
        ($($f:ident),* $(,)?) => { vec![$((stringify!($f), $f as *const u8)),*] };
    }
    syms![
        caravan_registry_global,
        caravan_node_self,
        caravan_node_connect,
        caravan_node_disconnect,
        caravan_node_list,
        caravan_node_monitor_nodes,
        caravan_registry_send_on,
        caravan_registry_whereis_on,
    ]
}
