//! The stdio transport in front of tower-lsp: it reads every frame from
//! standard input itself, so that
//!
//! - `exit` ends the process at once, with status 0 after `shutdown` and 1
//!   without (the LSP specification's rule), also while standard input
//!   stays open — tower-lsp 0.20 only noticed `exit` at the next message and
//!   then waited for ever on its output task, which left an orphan
//!   `caravan lsp` behind Neovim's `:LspStop`;
//! - a frame that is not JSON-RPC (invalid UTF-8, malformed JSON, a body
//!   that is not a request or notification) gets a JSON-RPC error
//!   response (`-32700` parse error, `-32600` invalid request), and a
//!   broken header or a frame cut short by the end of input is logged on
//!   stderr — never a silent exit.
//!
//! Valid frames are handed to tower-lsp through an in-memory pipe; its
//! output frames and this layer's error responses are written whole to
//! standard output by one writer thread, so they never interleave.

use std::io::{BufRead, BufReader, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};

/// A `shutdown` request was received.
static SHUT_DOWN: AtomicBool = AtomicBool::new(false);

/// One frame read from the client, or why it could not be.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A frame's body.
    Body(Vec<u8>),
    /// A header the transport cannot read (skipped to the next blank line).
    BadHeader(String),
    /// The input ended inside a frame.
    Truncated(String),
    /// The input ended between frames.
    End,
}

/// Reads the next frame: `Content-Length: N` (other headers ignored), a
/// blank line, N bytes.
pub fn read_frame(r: &mut impl BufRead) -> Frame {
    let mut len: Option<usize> = None;
    let mut bad: Option<String> = None;
    let mut any = false;
    loop {
        let mut line = Vec::new();
        match r.read_until(b'\n', &mut line) {
            Ok(0) => {
                return if any {
                    Frame::Truncated("the input ended inside a frame's header".into())
                } else {
                    Frame::End
                }
            }
            Ok(_) => {}
            Err(e) => return Frame::Truncated(format!("cannot read standard input: {e}")),
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            if !any {
                continue; // stray blank lines between frames
            }
            break;
        }
        any = true;
        match text.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("content-length") => {
                match v.trim().parse::<usize>() {
                    Ok(n) => len = Some(n),
                    Err(_) => bad = Some(format!("bad Content-Length: {:?}", v.trim())),
                }
            }
            Some(_) => {}
            None => bad = Some(format!("not a header line: {text:?}")),
        }
    }
    if let Some(b) = bad {
        return Frame::BadHeader(b);
    }
    let Some(n) = len else {
        return Frame::BadHeader("a frame without Content-Length".into());
    };
    let mut body = vec![0; n];
    let mut got = 0;
    while got < n {
        match r.read(&mut body[got..]) {
            Ok(0) => {
                return Frame::Truncated(format!(
                    "the input ended after {got} of the {n} bytes of a frame"
                ))
            }
            Ok(k) => got += k,
            Err(e) => return Frame::Truncated(format!("cannot read standard input: {e}")),
        }
    }
    Frame::Body(body)
}

/// What to do with a frame's body.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Hand it to the server.
    Forward,
    /// The client asked to shut down: hand it on and remember.
    Shutdown,
    /// `exit`: end the process.
    Exit,
    /// Answer this error response instead.
    Reply(serde_json::Value),
}

fn error_response(id: serde_json::Value, code: i64, message: String) -> serde_json::Value {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code, "message": message }
    })
}

/// Judges a frame's body (JSON-RPC 2.0's error codes).
pub fn judge(body: &[u8]) -> Verdict {
    let Ok(text) = std::str::from_utf8(body) else {
        return Verdict::Reply(error_response(
            serde_json::Value::Null,
            -32700,
            "Parse error: the message is not valid UTF-8".into(),
        ));
    };
    let v: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Verdict::Reply(error_response(
                serde_json::Value::Null,
                -32700,
                format!("Parse error: {e}"),
            ))
        }
    };
    let id = v.get("id").cloned().unwrap_or(serde_json::Value::Null);
    let method = v.get("method").and_then(|m| m.as_str());
    let is_response = v.get("result").is_some() || v.get("error").is_some();
    if !v.is_object() || (method.is_none() && !is_response) {
        return Verdict::Reply(error_response(
            id,
            -32600,
            "Invalid Request: not a JSON-RPC request, notification or response".into(),
        ));
    }
    match method {
        Some("exit") => Verdict::Exit,
        Some("shutdown") => Verdict::Shutdown,
        _ => Verdict::Forward,
    }
}

fn frame_bytes(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// Starts the writer thread: frames sent to it go to standard output,
/// whole and in order; it ends when every sender is gone.
pub fn writer() -> (Sender<Vec<u8>>, std::thread::JoinHandle<()>) {
    let (tx, rx) = channel::<Vec<u8>>();
    let handle = std::thread::Builder::new()
        .name("caravan-lsp-out".into())
        .spawn(move || {
            let mut out = std::io::stdout().lock();
            while let Ok(frame) = rx.recv() {
                if out.write_all(&frame).and_then(|()| out.flush()).is_err() {
                    break;
                }
            }
        })
        .expect("spawn the output thread");
    (tx, handle)
}

/// Reads standard input on this thread, forwarding valid frames to
/// `to_server` and answering the others through `out`; returns at the end
/// of input, or ends the process on `exit`.
pub fn pump_stdin(to_server: tokio::sync::mpsc::UnboundedSender<Vec<u8>>, out: Sender<Vec<u8>>) {
    let stdin = std::io::stdin();
    let mut r = BufReader::new(stdin.lock());
    loop {
        match read_frame(&mut r) {
            Frame::End => return,
            Frame::Truncated(why) => {
                eprintln!("caravan lsp: {why}");
                return;
            }
            Frame::BadHeader(why) => {
                eprintln!("caravan lsp: skipped a frame: {why}");
                let e = error_response(
                    serde_json::Value::Null,
                    -32700,
                    format!("Parse error: {why}"),
                );
                let _ = out.send(frame_bytes(e.to_string().as_bytes()));
            }
            Frame::Body(body) => match judge(&body) {
                Verdict::Exit => {
                    // Let the writer finish what it holds, briefly.
                    drop(to_server);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    std::process::exit(if SHUT_DOWN.load(Ordering::SeqCst) {
                        0
                    } else {
                        1
                    });
                }
                Verdict::Reply(e) => {
                    eprintln!("caravan lsp: answered a malformed message with an error");
                    let _ = out.send(frame_bytes(e.to_string().as_bytes()));
                }
                Verdict::Shutdown => {
                    SHUT_DOWN.store(true, Ordering::SeqCst);
                    if to_server.send(frame_bytes(&body)).is_err() {
                        return;
                    }
                }
                Verdict::Forward => {
                    if to_server.send(frame_bytes(&body)).is_err() {
                        return;
                    }
                }
            },
        }
    }
}

/// Whether `shutdown` was received (the status at the end of input).
pub fn shut_down() -> bool {
    SHUT_DOWN.load(Ordering::SeqCst)
}

/// Copies tower-lsp's output frames to the writer thread until it closes.
pub async fn forward_output(r: impl tokio::io::AsyncRead + Unpin, out: Sender<Vec<u8>>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let mut r = tokio::io::BufReader::new(r);
    loop {
        let mut len = None;
        loop {
            let mut line = String::new();
            match r.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.strip_prefix("Content-Length:") {
                len = v.trim().parse::<usize>().ok();
            }
        }
        let Some(n) = len else { continue };
        let mut body = vec![0; n];
        if r.read_exact(&mut body).await.is_err() || out.send(frame_bytes(&body)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8]) -> Vec<Frame> {
        let mut r = std::io::Cursor::new(input.to_vec());
        let mut out = vec![];
        loop {
            let f = read_frame(&mut r);
            let end = matches!(f, Frame::End | Frame::Truncated(_));
            out.push(f);
            if end {
                return out;
            }
        }
    }

    #[test]
    fn frames_and_their_failures() {
        assert_eq!(
            frames(b"Content-Length: 2\r\n\r\n{}Content-Length: 1\r\nContent-Type: x\r\n\r\n7"),
            vec![
                Frame::Body(b"{}".to_vec()),
                Frame::Body(b"7".to_vec()),
                Frame::End
            ]
        );
        assert!(matches!(
            frames(b"Content-Length: 10\r\n\r\n{}")[0],
            Frame::Truncated(_)
        ));
        assert!(matches!(
            frames(b"Content-Length: 5")[0],
            Frame::Truncated(_)
        ));
        let bad = frames(b"Content-Length: x\r\n\r\nContent-Length: 2\r\n\r\n{}");
        assert!(matches!(bad[0], Frame::BadHeader(_)));
        assert_eq!(bad[1], Frame::Body(b"{}".to_vec()));
    }

    #[test]
    fn bodies_are_judged_as_json_rpc() {
        assert_eq!(
            judge(br#"{"jsonrpc":"2.0","method":"exit"}"#),
            Verdict::Exit
        );
        assert_eq!(
            judge(br#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#),
            Verdict::Shutdown
        );
        assert_eq!(
            judge(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#),
            Verdict::Forward
        );
        let code = |v: Verdict| match v {
            Verdict::Reply(e) => e["error"]["code"].as_i64(),
            _ => None,
        };
        assert_eq!(code(judge(b"{not json")), Some(-32700));
        assert_eq!(code(judge(b"\xff\xfe{}")), Some(-32700));
        assert_eq!(code(judge(br#"{"jsonrpc":"2.0","id":3}"#)), Some(-32600));
        assert_eq!(code(judge(b"[1, 2]")), Some(-32600));
    }
}
