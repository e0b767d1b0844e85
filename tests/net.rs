//! Network I/O (issue 11), with real sockets on loopback: Caravan servers
//! driven by Rust's `std::net` clients (another implementation, as a user's
//! peer would be), and self-contained Caravan programs. Every wait is
//! bounded.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{stderr, stdout, Run};

const LIMIT: Duration = Duration::from_secs(120);

/// The optimised binary for torture runs (as `tests/gc.rs`), else this
/// build's.
fn torture_bin() -> String {
    std::env::var("CARAVAN_TORTURE_BIN").unwrap_or_else(|_| support::caravan().to_string())
}

/// Raises this process's descriptor limit to the hard limit (children
/// inherit it): a thousand clients and their server need more than 1024.
fn more_descriptors() {
    // SAFETY: plain system calls on a local struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// A Caravan server program running in the background; killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// Starts `caravan run OPTS FILE ARGS` and reads its first line, `port
    /// N` — which also shows that `print_endline` flushes into a pipe.
    fn start(file: &str, opts: &[&str], args: &[&str], env: &[(&str, &str)], bin: &str) -> Server {
        let mut cmd = Command::new(bin);
        cmd.arg("run")
            .args(opts)
            .arg(file)
            .args(args)
            .current_dir(support::root())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start caravan");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("{file} printed no port line");
            }
        };
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{file}: unexpected first line {line:?}"));
        Server { child, port }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// Descriptors the server process has open.
    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads one HTTP response (head and Content-Length body) from `r`:
/// `(status, head, body)`; `None` at end of stream.
fn read_response(r: &mut BufReader<TcpStream>) -> Option<(u16, String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((status, head, body))
}

/// Sends `request` on a new connection and reads one response.
fn exchange(s: &Server, request: &[u8]) -> Option<(u16, String, Vec<u8>)> {
    let mut c = s.connect();
    c.write_all(request).ok()?;
    read_response(&mut BufReader::new(c))
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

/// Whether the server closed `c` (end of stream) within the read timeout.
fn closed_by_peer(c: &mut TcpStream) -> bool {
    let mut b = [0u8; 1024];
    loop {
        match c.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(_) => return false,
        }
    }
}

#[test]
fn tcp_errors_are_values() {
    let o = Run::default().file("tests/net/tcp_errors.cvn", LIMIT);
    let out = stdout(&o);
    let expect = "port in use: Error Address_in_use\n\
                  closed port: Error Refused\n\
                  accept timeout: Error Timed_out\n\
                  recv timeout: Error Timed_out\n\
                  owner killed: Error Closed\n\
                  after close: Error Closed\n\
                  peer of a closed socket: (\"\", 0)\n";
    assert!(out.starts_with(expect), "{out}\nstderr: {}", stderr(&o));
    assert!(
        out.ends_with("v6: Ok \"over IPv6\"\ndone\n") || out.contains("v6: no IPv6 here"),
        "{out}"
    );
}

#[test]
fn active_once_events_and_messages_share_a_receive() {
    for s in ["1", "2"] {
        let o = Run {
            opts: &["--schedulers", s],
            ..Default::default()
        }
        .file("tests/net/active.cvn", LIMIT);
        assert_eq!(
            stdout(&o),
            "data one\nother between\ndata two\nclosed\n",
            "stderr: {}",
            stderr(&o)
        );
    }
}

#[test]
fn a_thousand_concurrent_clients_each_get_their_own_bytes_back() {
    more_descriptors();
    let s = Server::start(
        "examples/echo_server.cvn",
        &[],
        &["0"],
        &[],
        support::caravan(),
    );
    let port = s.port;
    let threads: Vec<_> = (0..20)
        .map(|t| {
            std::thread::spawn(move || {
                // 50 connections per thread, all open at once.
                let mut conns: Vec<TcpStream> = (0..50)
                    .map(|_| {
                        let c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                        c
                    })
                    .collect();
                for (i, c) in conns.iter_mut().enumerate() {
                    c.write_all(format!("client {t}-{i} says hello").as_bytes())
                        .unwrap();
                }
                for (i, c) in conns.iter_mut().enumerate() {
                    let want = format!("client {t}-{i} says hello");
                    let mut got = vec![0; want.len()];
                    c.read_exact(&mut got).expect("echo");
                    assert_eq!(String::from_utf8_lossy(&got), want);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
}

#[test]
fn one_scheduler_with_a_spinning_process_still_serves() {
    let s = Server::start(
        "tests/net/spinner_echo.cvn",
        &["--schedulers", "1"],
        &[],
        &[],
        support::caravan(),
    );
    let mut c = s.connect();
    let start = Instant::now();
    for i in 0..100 {
        let msg = format!("round trip {i}");
        c.write_all(msg.as_bytes()).unwrap();
        let mut got = vec![0; msg.len()];
        c.read_exact(&mut got).expect("echo despite the spinner");
        assert_eq!(got, msg.as_bytes());
    }
    // Sysmon polls every 10 ms at worst: 100 round trips well within 20 s.
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}

fn http_server(env: &[(&str, &str)], bin: &str) -> Server {
    Server::start("tests/net/http_server.cvn", &[], &[], env, bin)
}

/// Every status of LANGUAGE.md §6, provoked on purpose; the server lives
/// through all of them.
fn statuses(s: &Server) {
    let (st, head, body) = exchange(s, &get("/hello")).expect("200");
    assert_eq!((st, body.as_slice()), (200, &b"path /hello"[..]));
    assert!(head.contains("\r\ndate: "), "{head}");
    assert!(head.contains("\r\ncontent-length: 11\r\n"), "{head}");
    assert!(head.contains("\r\ncontent-type: text/plain\r\n"), "{head}");
    // A crashing handler: 500, and the connection stays usable.
    let mut c = s.connect();
    c.write_all(&get("/crash")).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    assert_eq!(read_response(&mut r).expect("500").0, 500);
    c.write_all(&get("/after")).unwrap();
    assert_eq!(
        read_response(&mut r).expect("200 after 500").2,
        b"path /after"
    );
    // Garbage: 400 and closed.
    let mut c = s.connect();
    c.write_all(b"\x00\x01garbage\xff\r\n\r\n").unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    assert_eq!(read_response(&mut r).expect("400").0, 400);
    assert!(closed_by_peer(&mut c));
    // A head over 4096 bytes: 431.
    let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(5000));
    assert_eq!(exchange(s, big.as_bytes()).expect("431").0, 431);
    // A body over 100,000 bytes: 413, by Content-Length or chunked.
    let big = "POST /echo HTTP/1.1\r\nContent-Length: 200000\r\n\r\n";
    assert_eq!(exchange(s, big.as_bytes()).expect("413").0, 413);
    let chunk = format!("{:x}\r\n{}\r\n", 60_000, "b".repeat(60_000));
    let big =
        format!("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}{chunk}0\r\n\r\n");
    assert_eq!(exchange(s, big.as_bytes()).expect("413 chunked").0, 413);
    // Bodies: Content-Length, chunked; the query and a header.
    let post = "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    let (st, head, body) = exchange(s, post.as_bytes()).expect("echo");
    assert_eq!((st, body.as_slice()), (200, &b"hello"[..]));
    assert!(head.contains("x-method: POST"), "{head}");
    let post = "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n";
    assert_eq!(
        exchange(s, post.as_bytes()).expect("chunked").2,
        b"Wikipedia"
    );
    assert_eq!(
        exchange(s, &get("/query?a=1&b=2")).expect("query").2,
        b"a=1&b=2"
    );
    let h = "GET /header HTTP/1.1\r\nx-TEST: yes\r\n\r\n";
    assert_eq!(exchange(s, h.as_bytes()).expect("header").2, b"yes");
    // Still serving.
    assert_eq!(exchange(s, &get("/end")).expect("alive").0, 200);
}

#[test]
fn http_statuses_keep_alive_and_pipelining() {
    let s = http_server(&[], support::caravan());
    statuses(&s);
    // 200 requests on one keep-alive connection.
    let mut c = s.connect();
    let mut r = BufReader::new(c.try_clone().unwrap());
    for i in 0..200 {
        c.write_all(&get(&format!("/k{i}"))).unwrap();
        let (st, _, body) = read_response(&mut r).expect("keep-alive response");
        assert_eq!((st, body), (200, format!("path /k{i}").into_bytes()));
    }
    // Three pipelined requests in one write, answered in order.
    let mut c = s.connect();
    let mut three = get("/slow");
    three.extend(get("/two"));
    three.extend(get("/three"));
    c.write_all(&three).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    for want in [&b"slow"[..], b"path /two", b"path /three"] {
        assert_eq!(read_response(&mut r).expect("pipelined").2, want);
    }
    // HTTP/1.0 without keep-alive: closed after the response.
    let mut c = s.connect();
    c.write_all(b"GET /old HTTP/1.0\r\n\r\n").unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    let (_, head, _) = read_response(&mut r).expect("1.0");
    assert!(head.contains("connection: close"), "{head}");
    assert!(closed_by_peer(&mut c));
}

#[test]
fn stalled_clients_are_dropped_and_do_not_stop_others() {
    more_descriptors();
    let s = http_server(&[], support::caravan());
    // 50 clients that send half a head and stop.
    let mut stalled: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut c = s.connect();
            c.write_all(b"GET /stalled HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            c
        })
        .collect();
    // Others are served meanwhile.
    for i in 0..20 {
        let start = Instant::now();
        assert_eq!(
            exchange(&s, &get(&format!("/fast{i}"))).expect("served").0,
            200
        );
        assert!(start.elapsed() < Duration::from_secs(5));
    }
    // The stalled ones are dropped after the 500 ms header timeout.
    let start = Instant::now();
    for c in stalled.iter_mut() {
        assert!(closed_by_peer(c), "a stalled client was not dropped");
    }
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn descriptors_return_to_their_baseline_after_ten_thousand_connections() {
    let s = http_server(&[], support::caravan());
    // Warm up (the first connections create the VM's lazily made state).
    for _ in 0..10 {
        exchange(&s, &get("/warm")).expect("warm-up");
    }
    let base = s.open_fds();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let port = s.port;
            std::thread::spawn(move || {
                for _ in 0..2500 {
                    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    c.write_all(b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n")
                        .unwrap();
                    let mut r = BufReader::new(c);
                    assert_eq!(read_response(&mut r).expect("response").0, 200);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    // Connections close asynchronously: give them a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.open_fds() > base && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        s.open_fds() <= base,
        "{} descriptors, baseline {base}",
        s.open_fds()
    );
}

/// A one-shot HTTP server in Rust for `Http.fetch` to talk to: `body` as
/// it is (a chunked or close-delimited response).
fn raw_server(response: &'static [u8]) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut c, _)) = l.accept() {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(response);
        }
    });
    port
}

#[test]
fn fetch_reads_length_chunked_and_close_delimited_responses() {
    let chunked = raw_server(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: a/b\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    );
    let closing = raw_server(b"HTTP/1.0 404 Not Found\r\n\r\nuntil close");
    let u1 = format!("http://127.0.0.1:{chunked}/c");
    let u2 = format!("http://127.0.0.1:{closing}/d");
    let o = Run {
        args: &[&u1, &u2],
        ..Default::default()
    }
    .file("tests/net/fetch.cvn", LIMIT);
    assert_eq!(
        stdout(&o),
        "status 201 body \"POST hello\" content-type Some \"text/plain\"\n\
         status 201 body \"GET \" content-type Some \"text/plain\"\n\
         after stop: error Refused\n\
         error Net_error \"not an http:// URL: ftp://nope\"\n\
         status 200 body \"abcde\" content-type Some \"a/b\"\n\
         status 404 body \"until close\" content-type None\n",
        "stderr: {}",
        stderr(&o)
    );
}

/// The network tests' programs under the collector's torture mode: buffers
/// and messages move at every allocation.
/// Pushes `total` bytes through the echo server on `port` in writes of 16
/// to 64 KiB from one thread while another reads them back, and checks
/// every byte, through reads of every size the server's 64 KiB buffer
/// gives (large objects among them).
fn bulk_echo(port: u16, total: usize, seed: u64) {
    let c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let data: Vec<u8> = (0..total as u64)
        .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) >> 7) as u8)
        .collect();
    let mut w = c.try_clone().expect("clone");
    let out = data.clone();
    let writer = std::thread::spawn(move || {
        let mut at = 0;
        let mut k = 0;
        while at < out.len() {
            let n = (16 << 10) + (k * 7919) % (48 << 10);
            let end = (at + n).min(out.len());
            w.write_all(&out[at..end]).expect("write");
            at = end;
            k += 1;
        }
    });
    let mut r = c;
    let mut got = vec![0; total];
    r.read_exact(&mut got).expect("echo of every byte");
    writer.join().expect("writer");
    assert!(got == data, "the echoed bytes differ");
}

#[test]
fn bulk_transfers_come_back_byte_for_byte() {
    let s = Server::start(
        "examples/echo_server.cvn",
        &[],
        &["0"],
        &[],
        support::caravan(),
    );
    let port = s.port;
    let threads: Vec<_> = (0..4)
        .map(|t| std::thread::spawn(move || bulk_echo(port, 8 << 20, t)))
        .collect();
    for t in threads {
        t.join().expect("bulk client");
    }
}

#[test]
fn network_programs_in_gc_torture_mode() {
    let bin = torture_bin();
    let torture = [("CARAVAN_GC_TORTURE", "1")];
    for f in ["tests/net/tcp_errors.cvn", "tests/net/active.cvn"] {
        let o = Run {
            env: &torture,
            bin: Some(&bin),
            ..Default::default()
        }
        .file(f, LIMIT);
        assert!(o.status.success(), "{f}: {}", stderr(&o));
        assert!(
            stdout(&o).contains("closed") || stdout(&o).ends_with("done\n"),
            "{f}: {}",
            stdout(&o)
        );
    }
    let s = http_server(&torture, &bin);
    statuses(&s);
    // Large received strings (large objects), moved and freed by the
    // collector on every allocation.
    let e = Server::start("examples/echo_server.cvn", &[], &["0"], &torture, &bin);
    bulk_echo(e.port, 2 << 20, 7);
}
