//! Distribution (issue 12), against the real things: a private `epmd` (its
//! own port, so tests never meet a user's nodes), real Erlang nodes (`erl`
//! from Debian's erlang-base) and Caravan nodes, on loopback, every wait
//! bounded. Without `erl` the tests are skipped unless
//! `CARAVAN_REQUIRE_ERLANG` is set (CI sets it).

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const COOKIE: &str = "caravantest";

fn have_erlang() -> bool {
    let ok = Command::new("epmd")
        .arg("-help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
        && Command::new("erl")
            .args(["-noshell", "-eval", "halt()."])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
    if !ok {
        assert!(
            std::env::var_os("CARAVAN_REQUIRE_ERLANG").is_none(),
            "CARAVAN_REQUIRE_ERLANG is set but epmd/erl are missing"
        );
        eprintln!("skipped: epmd and erl are not installed (Debian: erlang-base)");
    }
    ok
}

/// A unique node name per test and run.
fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}@127.0.0.1",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A private epmd on a free port; killed on drop.
struct Epmd {
    port: u16,
    child: Child,
}

impl Epmd {
    fn start() -> Epmd {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("epmd")
            .args(["-port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start epmd");
        let end = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < end, "epmd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Epmd { port, child }
    }
}

impl Drop for Epmd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Caravan node running a program; killed on drop. Its output is
/// collected by a thread.
struct Node {
    name: String,
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Node {
    fn start(epmd: &Epmd, prefix: &str, file: &str, args: &[&str]) -> Node {
        let name = unique(prefix);
        let mut child = Command::new(support::caravan())
            .args(["run", "--name", &name, "--cookie", COOKIE])
            .args(["--dist-listen", "127.0.0.1", file])
            .args(args)
            .env("ERL_EPMD_PORT", epmd.port.to_string())
            .current_dir(support::root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start caravan");
        let (tx, rx) = std::sync::mpsc::channel();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
        }
        Node {
            name,
            child,
            lines: rx,
            seen: vec![],
        }
    }

    /// Waits (at most 20 s) for a line containing `text`; the lines so far.
    fn wait_for(&mut self, text: &str) -> String {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(l) = self.seen.iter().find(|l| l.contains(text)) {
                return l.clone();
            }
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => panic!(
                    "{}: no line with {text:?} in 20 s; output:\n{}",
                    self.name,
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Every line until the node exits (at most 30 s).
    fn finish(mut self) -> (String, Option<i32>) {
        let end = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code();
            }
            assert!(Instant::now() < end, "{} did not exit", self.name);
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(300)) {
            self.seen.push(l);
        }
        (self.seen.join("\n"), status)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs an Erlang node evaluating `script` (at most 30 s); its output.
fn erl(epmd: &Epmd, cookie: &str, script: &str) -> String {
    let name = unique("erl");
    let child = Command::new("erl")
        .args(["-name", &name, "-setcookie", cookie, "-noshell", "-eval"])
        .arg(format!("{script}, halt()."))
        .env("ERL_EPMD_PORT", epmd.port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start erl");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(o) => {
            let o = o.unwrap();
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        }
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("erl timed out running {script}");
        }
    }
}

#[test]
fn an_erlang_node_pings_and_talks_to_a_caravan_process_by_its_global_name() {
    if !have_erlang() {
        return;
    }
    let epmd = Epmd::start();
    let mut pong = Node::start(&epmd, "pong", "examples/cluster/pong.cvn", &[]);
    pong.wait_for("ready");
    let out = erl(
        &epmd,
        COOKIE,
        &format!(
            "N = '{}',
             io:format(\"ping ~p~n\", [net_adm:ping(N)]),
             {{pinger, N}} ! {{ping, self()}},
             receive M -> io:format(\"got ~p~n\", [M]) after 5000 -> io:format(\"timeout~n\") end,
             {{pinger, N}} ! {{count, self()}},
             receive M2 -> io:format(\"got ~p~n\", [M2]) after 5000 -> io:format(\"timeout~n\") end,
             {{pinger, N}} ! {{bogus, 1}},
             {{pinger, N}} ! {{ping, not_a_pid}},
             Ref = make_ref(),
             {{pinger, N}} ! {{add, 1, {{self(), Ref}}}},
             receive {{Ref, Sum}} -> io:format(\"sum ~p~n\", [Sum]) after 5000 -> io:format(\"timeout~n\") end",
            pong.name
        ),
    );
    assert!(out.contains("ping pong"), "{out}");
    assert!(out.contains("got pong"), "{out}");
    assert!(out.contains("got {total,1}"), "{out}");
    // A reply channel is a gen_server From: {Pid, Ref}.
    assert!(out.contains("sum 2"), "{out}");
    // Terms that do not fit the mailbox's type are dropped and reported.
    pong.wait_for("no constructor 'bogus' with arguments in the type");
    pong.wait_for("expected a pid");
}

#[test]
fn a_wrong_cookie_is_refused() {
    if !have_erlang() {
        return;
    }
    let epmd = Epmd::start();
    let mut pong = Node::start(&epmd, "pong", "examples/cluster/pong.cvn", &[]);
    pong.wait_for("ready");
    let script = format!("io:format(\"ping ~p~n\", [net_adm:ping('{}')])", pong.name);
    let out = erl(&epmd, "not-the-cookie", &script);
    assert!(out.contains("ping pang"), "{out}");
    // The node goes on serving the right cookie.
    let out = erl(&epmd, COOKIE, &script);
    assert!(out.contains("ping pong"), "{out}");
}

#[test]
fn monitors_across_nodes_fire_with_noconnection_both_ways() {
    if !have_erlang() {
        return;
    }
    let epmd = Epmd::start();
    // Caravan watches an Erlang process; the Erlang node halts.
    let mut w = Node::start(&epmd, "watcher", "tests/dist/watcher.cvn", &[]);
    w.wait_for("watcher: ready");
    let out = erl(
        &epmd,
        COOKIE,
        &format!(
            "{{watcher, '{}'}} ! {{watch, self()}},
             receive M -> io:format(\"got ~p~n\", [M]) after 5000 -> io:format(\"timeout~n\") end",
            w.name
        ),
    );
    assert!(out.contains("got nil"), "{out}");
    w.wait_for("watcher: watching");
    w.wait_for("watcher: peer down Noconnection");
    w.wait_for("watcher: Nodedown");
    // Erlang watches a Caravan process; the Caravan node is killed.
    let epmd2 = Epmd::start();
    let pong = Node::start(&epmd2, "pong", "examples/cluster/pong.cvn", &[]);
    let mut pong = pong;
    pong.wait_for("ready");
    let pid = pong.child.id();
    let out = erl(
        &epmd2,
        COOKIE,
        &format!(
            "N = '{}', pong = net_adm:ping(N),
             erlang:monitor(process, {{pinger, N}}),
             os:cmd(\"kill -9 {pid}\"),
             receive {{'DOWN', _, process, _, R}} -> io:format(\"down ~p~n\", [R]) after 10000 -> io:format(\"timeout~n\") end",
            pong.name
        ),
    );
    assert!(out.contains("down noconnection"), "{out}");
}

#[test]
fn two_caravan_nodes_call_link_monitor_and_check_types() {
    if !have_erlang() {
        return;
    }
    let epmd = Epmd::start();
    let mut server = Node::start(&epmd, "server", "tests/dist/server.cvn", &[]);
    server.wait_for("server: ready");
    let sname = server.name.clone();
    let client = Node::start(&epmd, "client", "tests/dist/client.cvn", &[&sname]);
    let (out, status) = client.finish();
    // A remote pid prints with its node's name, as Erlang's <N.id.serial>.
    let pid_line = format!("client: server pid <{sname}.");
    assert!(out.contains(&pid_line), "{out}");
    let out: String = out
        .lines()
        .filter(|l| !l.starts_with("client: server pid"))
        .collect::<Vec<_>>()
        .join("\n");
    let expected = format!(
        "client: wrong type refused
client: nobody not registered
client: unreachable node
echo hi
client: work 42
client: monitor Crashed \"told to die\"
client: link Killed
client: watching from {sname}
client: nodes {sname}
client: done"
    );
    assert_eq!(out, expected);
    assert_eq!(status, Some(0));
    server.wait_for("server: client Normal");
    server.wait_for("crashed: told to die at tests/dist/server.cvn:16");
}

#[test]
fn two_caravan_nodes_ping_pong_from_the_example() {
    if !have_erlang() {
        return;
    }
    let epmd = Epmd::start();
    let mut pong = Node::start(&epmd, "pong", "examples/cluster/pong.cvn", &[]);
    pong.wait_for("ready");
    let name = pong.name.clone();
    let ping = Node::start(&epmd, "ping", "examples/cluster/ping.cvn", &[&name]);
    let (out, status) = ping.finish();
    assert_eq!(
        out,
        format!("ping: got Pong\nping: 41 + pings = 42\nping: nodes {name}")
    );
    assert_eq!(status, Some(0));
}

// ---------------------------------------------------------------------------
// A hostile node
// ---------------------------------------------------------------------------

/// A tiny xorshift generator (the fuzz is reproducible by its seed).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Connects to `node` as a node named `me` (a real handshake through
/// erl_dist); the raw stream after it.
fn handshake(epmd: &Epmd, me: &str, node: &str) -> Option<TcpStream> {
    let alive = node.split('@').next().unwrap();
    let port = {
        let s = TcpStream::connect(("127.0.0.1", epmd.port)).ok()?;
        let c = erl_dist::epmd::EpmdClient::new(futures::io::AllowStdIo::new(s));
        futures::executor::block_on(c.get_node(alive)).ok()??.port
    };
    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let local =
        erl_dist::node::LocalNode::new(me.parse().ok()?, erl_dist::node::Creation::random());
    let mut hs = erl_dist::handshake::ClientSideHandshake::new(
        futures::io::AllowStdIo::new(s.try_clone().ok()?),
        local,
        COOKIE,
    );
    futures::executor::block_on(hs.execute_send_name(6)).ok()?;
    futures::executor::block_on(hs.execute_rest(true)).ok()?;
    Some(s)
}

fn atom(out: &mut Vec<u8>, a: &str) {
    out.push(119);
    out.push(a.len() as u8);
    out.extend_from_slice(a.as_bytes());
}

fn pid(out: &mut Vec<u8>, node: &str, id: u32) {
    out.push(88);
    atom(out, node);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
}

/// A valid REG_SEND of `{ping, Pid}` to `pinger` from `me`.
fn ping_frame(me: &str) -> Vec<u8> {
    let mut f = vec![112, 131, 104, 4, 97, 6];
    pid(&mut f, me, 1);
    atom(&mut f, "");
    atom(&mut f, "pinger");
    f.extend_from_slice(&[131, 104, 2]);
    atom(&mut f, "ping");
    pid(&mut f, me, 1);
    f
}

/// Reads frames until one that is not a tick; its bytes.
fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    loop {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).ok()?;
        let n = u32::from_be_bytes(len) as usize;
        if n == 0 {
            continue;
        }
        let mut b = vec![0; n];
        s.read_exact(&mut b).ok()?;
        return Some(b);
    }
}

#[test]
fn a_node_survives_thousands_of_hostile_frames() {
    if !have_erlang() {
        return;
    }
    let epmd = Epmd::start();
    let mut pong = Node::start(&epmd, "pong", "examples/cluster/pong.cvn", &[]);
    pong.wait_for("ready");
    let me = unique("fuzz");
    let good = ping_frame(&me);
    let mut rng = Rng(0x5eed_cafe);
    let mut conn = None;
    let mut sent = 0;
    let mut reconnects = 0;
    while sent < 4000 {
        let s: &mut TcpStream = match conn.as_mut() {
            Some(s) => s,
            None => {
                reconnects += 1;
                assert!(reconnects < 2000, "cannot reconnect to the node");
                conn = handshake(&epmd, &me, &pong.name);
                continue;
            }
        };
        let mut f = good.clone();
        match rng.below(6) {
            0 => {
                // Flip bytes.
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(f.len());
                    f[i] = rng.next() as u8;
                }
            }
            1 => f.truncate(rng.below(f.len())),
            2 => {
                // A bogus length inside (a list or binary of 2^31 items).
                let i = rng.below(f.len());
                f.splice(i..i, [108, 0x7f, 0xff, 0xff, 0xff]);
            }
            3 => {
                // Deep nesting: a hundred thousand 1-tuples.
                f = vec![112, 131];
                f.extend(std::iter::repeat_n([104u8, 1], 100_000).flatten());
                f.push(106);
            }
            4 => {
                // Random garbage.
                f = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
            }
            _ => {
                // Insert random bytes.
                let i = rng.below(f.len());
                let extra: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
                f.splice(i..i, extra);
            }
        }
        let mut buf = (f.len() as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(&f);
        if s.write_all(&buf).is_err() {
            conn = None;
        }
        sent += 1;
        if sent % 200 == 0 {
            // The node closes connections that sent garbage: start over.
            conn = None;
        }
    }
    // Still serving: a well-formed ping gets its pong, on a new connection.
    let mut s = handshake(&epmd, &me, &pong.name).expect("the node still accepts connections");
    let mut buf = (good.len() as u32).to_be_bytes().to_vec();
    buf.extend_from_slice(&good);
    s.write_all(&buf).unwrap();
    let reply = read_frame(&mut s).expect("a pong");
    assert!(
        reply.windows(4).any(|w| w == b"pong"),
        "not a pong: {reply:?}"
    );
    assert!(pong.child.try_wait().unwrap().is_none(), "the node died");
}

#[test]
fn a_supervisor_restarts_a_child_whose_remote_peer_died() {
    if !have_erlang() {
        return;
    }
    let epmd = Epmd::start();
    let mut server = Node::start(&epmd, "server", "tests/dist/server.cvn", &[]);
    server.wait_for("server: ready");
    let sname = server.name.clone();
    let mut sup = Node::start(&epmd, "sup", "tests/dist/supervised.cvn", &[&sname]);
    sup.wait_for("worker: linked");
    // The link fires with Noconnection; the supervisor restarts the worker.
    server.kill();
    sup.wait_for("worker: restarted, server Node_unreachable");
    let (out, status) = sup.finish();
    assert!(out.ends_with("supervised: done"), "{out}");
    assert_eq!(status, Some(0));
}
