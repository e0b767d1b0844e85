//! A minimal blocking LSP client over a child process's stdio: JSON-RPC
//! framing, requests with time-outs, notifications kept for inspection.
//! The integration tests drive `caravan lsp` with it.

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A client speaking to a language server child process.
pub struct LspClient {
    child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<Value>,
    next_id: i64,
    /// Notifications (and server requests) received and not yet taken.
    pub pending: VecDeque<Value>,
    /// How long any wait may take before it fails.
    pub timeout: Duration,
}

fn read_message(r: &mut impl BufRead) -> Option<Value> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length:") {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let mut buf = vec![0; len?];
    r.read_exact(&mut buf).ok()?;
    serde_json::from_slice(&buf).ok()
}

impl LspClient {
    /// Starts `cmd` with piped stdin/stdout (stderr is inherited).
    pub fn spawn(cmd: &mut Command) -> std::io::Result<LspClient> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            while let Some(v) = read_message(&mut r) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Ok(LspClient {
            child,
            stdin,
            rx,
            next_id: 1,
            pending: VecDeque::new(),
            timeout: Duration::from_secs(30),
        })
    }

    /// Sends one message.
    pub fn send(&mut self, msg: &Value) -> Result<(), String> {
        let body = msg.to_string();
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        write!(stdin, "Content-Length: {}\r\n\r\n{body}", body.len())
            .and_then(|_| stdin.flush())
            .map_err(|e| format!("write to server: {e}"))
    }

    /// Sends bytes as they are (malformed frames, for tests).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        stdin
            .write_all(bytes)
            .and_then(|_| stdin.flush())
            .map_err(|e| format!("write to server: {e}"))
    }

    /// The next message from the server (those kept in [`Self::pending`]
    /// first), waiting at most [`Self::timeout`].
    pub fn next_message(&mut self) -> Result<Value, String> {
        if let Some(v) = self.pending.pop_front() {
            return Ok(v);
        }
        let deadline = Instant::now() + self.timeout;
        self.recv(deadline)
    }

    /// The server's exit status, if it ends within `within` (its input
    /// stays open meanwhile).
    pub fn exit_status(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a notification.
    pub fn notify(&mut self, method: &str, params: Value) -> Result<(), String> {
        let mut msg = json!({"jsonrpc": "2.0", "method": method});
        if !params.is_null() {
            msg["params"] = params;
        }
        self.send(&msg)
    }

    fn recv(&mut self, deadline: Instant) -> Result<Value, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(v) => {
                // Answer the server's own requests (configuration,
                // capability registration) with an empty result.
                if v.get("id").is_some() && v.get("method").is_some() {
                    let id = v["id"].clone();
                    self.send(&json!({"jsonrpc": "2.0", "id": id, "result": null}))?;
                }
                Ok(v)
            }
            Err(RecvTimeoutError::Timeout) => Err("timed out waiting for the server".into()),
            Err(RecvTimeoutError::Disconnected) => Err("the server closed its output".into()),
        }
    }

    /// Sends a request and waits for its response: `Ok(result)` or
    /// `Err(error message)`.
    pub fn request(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if !params.is_null() {
            msg["params"] = params;
        }
        self.send(&msg)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let v = self.recv(deadline)?;
            if v.get("method").is_none() && v.get("id") == Some(&json!(id)) {
                if let Some(e) = v.get("error") {
                    return Err(e["message"].as_str().unwrap_or("error").to_string());
                }
                return Ok(v.get("result").cloned().unwrap_or(Value::Null));
            }
            self.pending.push_back(v);
        }
    }

    /// Waits for a notification `method` whose params satisfy `pred`
    /// (looking at those already received first), and takes it.
    pub fn wait_for(
        &mut self,
        method: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        if let Some(i) = self
            .pending
            .iter()
            .position(|v| v["method"] == method && pred(&v["params"]))
        {
            return Ok(self.pending.remove(i).expect("index in range")["params"].clone());
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let v = self.recv(deadline).map_err(|e| format!("{e} ({method})"))?;
            if v["method"] == method && pred(&v["params"]) {
                return Ok(v["params"].clone());
            }
            self.pending.push_back(v);
        }
    }

    /// `initialize` with a workspace root, then `initialized`; returns the
    /// server's capabilities.
    pub fn initialize(&mut self, root_uri: &str) -> Result<Value, String> {
        let r = self.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": root_uri,
                "capabilities": {},
                "workspaceFolders": [{"uri": root_uri, "name": "root"}],
            }),
        )?;
        self.notify("initialized", json!({}))?;
        Ok(r["capabilities"].clone())
    }

    /// `shutdown` and `exit`; waits (bounded) for the process to end and
    /// returns whether it did.
    pub fn shutdown(mut self) -> Result<bool, String> {
        self.request("shutdown", Value::Null)?;
        self.notify("exit", Value::Null)?;
        self.stdin = None;
        let deadline = Instant::now() + self.timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(false)
    }

    /// Closes the server's input without `exit` and waits (bounded) for it
    /// to end.
    pub fn close_input(mut self) -> bool {
        self.stdin = None;
        let deadline = Instant::now() + self.timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for LspClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
