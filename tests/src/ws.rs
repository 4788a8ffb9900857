//! A raw WebSocket client (RFC 6455) over blocking rustls, for [`crate::XmppClient`]. Written
//! here rather than taken from a library because the tests must also send what a correct
//! library refuses to: binary and invalid UTF-8 text frames, frames over a limit, half
//! elements.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use rustls::{ClientConnection, StreamOwned};

use crate::client::{parse_http, HttpReply};
use crate::TIMEOUT;

/// Continuation frame opcode.
pub const CONTINUATION: u8 = 0x0;
/// Text frame opcode.
pub const TEXT: u8 = 0x1;
/// Binary frame opcode.
pub const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
/// Ping frame opcode.
pub const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// The `<open/>` tests send (RFC 7395 §3.4).
pub const OPEN: &str =
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>";

/// The WebSocket under an [`crate::XmppClient`].
#[allow(missing_debug_implementations)] // holds a TLS stream; XmppClient's Debug covers it
pub struct WsIo {
    pub(crate) tls: StreamOwned<ClientConnection, TcpStream>,
    inbuf: Vec<u8>,
    /// Text of the messages received, not yet read.
    out: Vec<u8>,
    partial: Vec<u8>,
    /// The server's close frame.
    pub(crate) close: Option<(u16, String)>,
    /// Every text message received.
    pub(crate) messages: Vec<String>,
    /// Pongs received.
    pub(crate) pongs: usize,
    mask: u32,
}

impl WsIo {
    /// The opening handshake; the server's answer if it is not 101.
    pub(crate) fn connect(
        mut tls: StreamOwned<ClientConnection, TcpStream>,
        headers: &[(&str, &str)],
    ) -> Result<Self, HttpReply> {
        let mut req = String::from(
            "GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        tls.write_all(req.as_bytes()).expect("write handshake");
        tls.flush().expect("flush");
        let mut raw = Vec::new();
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = [0u8; 4096];
        let head_end = loop {
            if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            match tls.read(&mut buf) {
                Ok(0) => break raw.len(),
                Ok(n) => raw.extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => break raw.len(),
                Err(e) => panic!("handshake read: {e}"),
            }
            assert!(Instant::now() < deadline, "handshake answer timed out");
        };
        let head = String::from_utf8_lossy(raw.get(..head_end).unwrap_or_default()).into_owned();
        let reply = parse_http(&head);
        if reply.status != 101 {
            // The body follows (Connection: close is not asked for: read what is there).
            let mut reply = reply;
            let mut body = raw.get(head_end..).unwrap_or_default().to_vec();
            let end = Instant::now() + std::time::Duration::from_millis(500);
            while Instant::now() < end {
                match tls.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => body.extend_from_slice(buf.get(..n).unwrap_or_default()),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        if !body.is_empty() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            reply.body = String::from_utf8_lossy(&body).into_owned();
            return Err(reply);
        }
        assert_eq!(
            reply.header("sec-websocket-accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "RFC 6455 §1.3's accept value"
        );
        Ok(Self {
            tls,
            inbuf: raw.get(head_end..).unwrap_or_default().to_vec(),
            out: Vec::new(),
            partial: Vec::new(),
            close: None,
            messages: Vec::new(),
            pongs: 0,
            mask: 0x3715_9a2c,
        })
    }

    /// One frame, masked.
    pub(crate) fn send_frame(
        &mut self,
        opcode: u8,
        payload: &[u8],
        fin: bool,
    ) -> std::io::Result<()> {
        let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        self.mask = self.mask.rotate_left(7) ^ 0x5bd1_e995;
        let mask = self.mask.to_be_bytes();
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.tls.write_all(&frame)?;
        self.tls.flush()
    }

    /// The next complete frame in `inbuf`: (fin, opcode, payload).
    fn next_frame(&mut self) -> Option<(bool, u8, Vec<u8>)> {
        let b = &self.inbuf;
        let (&b0, &b1) = (b.first()?, b.get(1)?);
        let (len, mut at) = match b1 & 0x7F {
            126 => (u16::from_be_bytes([*b.get(2)?, *b.get(3)?]) as usize, 4),
            127 => {
                let bytes: [u8; 8] = b.get(2..10)?.try_into().ok()?;
                (u64::from_be_bytes(bytes) as usize, 10)
            }
            n => (n as usize, 2),
        };
        assert_eq!(b1 & 0x80, 0, "a server must not mask its frames");
        let payload = b.get(at..at + len)?.to_vec();
        at += len;
        self.inbuf.drain(..at);
        Some((b0 & 0x80 != 0, b0 & 0x0F, payload))
    }

    /// Reads message text; `Ok(0)` once the server's close frame (or the end) arrived.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if !self.out.is_empty() {
                let n = self.out.len().min(buf.len());
                buf.get_mut(..n)
                    .unwrap_or_default()
                    .copy_from_slice(self.out.get(..n).unwrap_or_default());
                self.out.drain(..n);
                return Ok(n);
            }
            if self.close.is_some() {
                return Ok(0);
            }
            match self.next_frame() {
                Some((fin, opcode, payload)) => match opcode {
                    CLOSE => {
                        let code = payload
                            .get(..2)
                            .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]));
                        let reason = String::from_utf8_lossy(payload.get(2..).unwrap_or_default())
                            .into_owned();
                        self.close = Some((code, reason));
                        // Answer it, as RFC 6455 §5.5.1 asks.
                        let _ = self.send_frame(CLOSE, payload.get(..2).unwrap_or_default(), true);
                    }
                    PING => {
                        let _ = self.send_frame(PONG, &payload, true);
                    }
                    PONG => self.pongs += 1,
                    _ => {
                        self.partial.extend_from_slice(&payload);
                        if fin {
                            let text = String::from_utf8_lossy(&self.partial).into_owned();
                            self.partial.clear();
                            self.out.extend_from_slice(text.as_bytes());
                            self.messages.push(text);
                        }
                    }
                },
                None => {
                    let mut chunk = [0u8; 16384];
                    match self.tls.read(&mut chunk) {
                        Ok(0) => return Ok(0),
                        Ok(n) => self
                            .inbuf
                            .extend_from_slice(chunk.get(..n).unwrap_or_default()),
                        Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
}

/// A static HTTP server on loopback for the browser test's page (`tests/web/ws/index.html`),
/// xmpp.js's browser build and the SCRAM mechanism's files; stops when dropped.
#[derive(Debug)]
pub struct PageServer {
    /// Its port (the page is at `http://127.0.0.1:{port}/` and, another origin,
    /// `http://localhost:{port}/`).
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PageServer {
    /// Starts serving.
    pub fn start() -> Self {
        let root = crate::workspace().join("tests");
        let interop = root.join("interop/node_modules");
        let files: Vec<(&'static str, std::path::PathBuf, &'static str)> = vec![
            (
                "/",
                root.join("web/ws/index.html"),
                "text/html; charset=utf-8",
            ),
            (
                "/xmpp.min.js",
                interop.join("@xmpp/client/dist/xmpp.min.js"),
                "text/javascript",
            ),
            (
                "/scram/index.js",
                interop.join("sasl-scram-sha-1/index.js"),
                "text/javascript",
            ),
            (
                "/scram/lib/bitops.js",
                interop.join("sasl-scram-sha-1/lib/bitops.js"),
                "text/javascript",
            ),
            (
                "/scram/lib/utils.js",
                interop.join("sasl-scram-sha-1/lib/utils.js"),
                "text/javascript",
            ),
        ];
        for (_, path, _) in &files {
            assert!(
                path.is_file(),
                "{} missing: run ./tests/run.sh --install-only",
                path.display()
            );
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => serve_file(stream, &files),
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

fn serve_file(mut stream: TcpStream, files: &[(&'static str, std::path::PathBuf, &'static str)]) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let mut request = Vec::new();
    let mut buf = [0u8; 2048];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(buf.get(..n).unwrap_or_default()),
        }
    }
    let line = String::from_utf8_lossy(&request);
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let found = files.iter().find(|(p, _, _)| *p == path);
    let (status, body, kind) = match found.and_then(|(_, f, k)| Some((std::fs::read(f).ok()?, *k)))
    {
        Some((body, kind)) => ("200 OK", body, kind),
        None => ("404 Not Found", b"not found".to_vec(), "text/plain"),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `tests/web/ws.mjs` (headless chromium) against the page at `url`, the screenshot going
/// to `shot`; returns its JSON report. `refused_url` is the page from an origin the server
/// must refuse.
pub fn run_browser(
    url: &str,
    refused_url: &str,
    password: &str,
    shot: &std::path::Path,
) -> std::process::Child {
    let web = crate::workspace().join("tests/web");
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "run tests/web/install.sh"
    );
    std::process::Command::new("node")
        .arg(web.join("ws.mjs"))
        .args([
            "--url",
            url,
            "--refused-url",
            refused_url,
            "--password",
            password,
            "--shot",
        ])
        .arg(shot)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run node")
}
