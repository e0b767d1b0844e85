//! `epmd`, the Erlang port mapper: started like `erl` starts it when none
//! answers, our name registered (the socket kept: closing it unregisters),
//! peers' ports looked up. The protocol is `erl_dist`'s.

use erl_dist::epmd::{EpmdClient, NodeEntry};
use futures::io::AllowStdIo;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// epmd's port.
pub const EPMD_PORT: u16 = 4369;

fn epmd_port() -> u16 {
    std::env::var("ERL_EPMD_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(EPMD_PORT)
}

fn connect_local() -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], epmd_port())),
        Duration::from_secs(2),
    )
}

/// Starts `epmd -daemon` unless one answers on this host.
///
/// # Errors
/// `epmd` is not installed, or did not start within 5 s.
pub(crate) fn ensure_running() -> Result<(), String> {
    if connect_local().is_ok() {
        return Ok(());
    }
    match std::process::Command::new("epmd")
        .arg("-daemon")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(
                "epmd is not installed: distribution needs Erlang's port mapper \
                 (Debian: apt install erlang-base)"
                    .into(),
            )
        }
        Err(e) => return Err(format!("cannot start epmd: {e}")),
        Ok(_) => {}
    }
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if connect_local().is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err("epmd did not start".into())
}

/// Registers `alive` (the name before `@`) as a hidden node listening on
/// `port`: the kept socket and this incarnation's creation.
///
/// # Errors
/// The name is taken, or epmd refused.
pub(crate) fn register(alive: &str, port: u16) -> Result<(TcpStream, u32), String> {
    let s = connect_local().map_err(|e| format!("cannot reach epmd: {e}"))?;
    let client = EpmdClient::new(AllowStdIo::new(s));
    let entry = NodeEntry::new_hidden(alive, port);
    match futures::executor::block_on(client.register(entry)) {
        Ok((s, creation)) => Ok((s.into_inner(), creation.get())),
        Err(e) => Err(format!(
            "epmd refused the node name {alive} (is another node running with it?): {e:?}"
        )),
    }
}

/// The distribution port of node `alive` on `host`, from that host's epmd.
pub(crate) fn port_of(host: &str, alive: &str) -> Option<u16> {
    use std::net::ToSocketAddrs;
    let addr = (host, epmd_port()).to_socket_addrs().ok()?.next()?;
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let client = EpmdClient::new(AllowStdIo::new(s));
    futures::executor::block_on(client.get_node(alive))
        .ok()
        .flatten()
        .map(|e| e.port)
}
