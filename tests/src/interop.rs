//! Third-party XMPP clients as subprocesses for the interop tests: started with their output
//! collected (stdout line by line, parsed when JSON), bounded by [`CLIENT_TIMEOUT`], killed on
//! drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Server;

/// Upper bound for one client run (SCRAM with 10 000 iterations in a debug build takes ~1 s).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(45);
/// What the drivers are told to bound themselves to (less than [`CLIENT_TIMEOUT`]).
pub const DRIVER_TIMEOUT_SECS: &str = "35";

/// `tests/interop`: the drivers and their installed clients.
pub fn interop_dir() -> PathBuf {
    crate::workspace().join("tests").join("interop")
}

/// `tests/interop/.venv/bin/python tests/interop/SCRIPT --host … --port …` against a direct TLS
/// address, run from `tests/interop` (the drivers' own arguments follow).
pub fn slixmpp_driver(script: &str, addr: std::net::SocketAddr) -> Command {
    let dir = interop_dir();
    let python = dir.join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `./tests/run.sh --install-only`",
        python.display()
    );
    let mut cmd = Command::new(python);
    cmd.arg(dir.join(script))
        .args(["--host", &addr.ip().to_string()])
        .args(["--port", &addr.port().to_string()])
        .current_dir(&dir);
    cmd
}

/// `node tests/interop/SCRIPT` run from `tests/interop` with xmpp.js installed, accepting the
/// server's self-signed certificate (the driver's own arguments follow).
pub fn node_driver(script: &str) -> Command {
    let dir = interop_dir();
    assert!(
        dir.join("node_modules/@xmpp/client").is_dir(),
        "@xmpp/client is not installed in {}: run `./tests/run.sh --install-only`",
        dir.display()
    );
    let mut cmd = Command::new("node");
    cmd.arg(dir.join(script))
        .current_dir(&dir)
        // The server's certificate is self-signed; NODE_NO_WARNINGS hides Node's note about it.
        .env("NODE_TLS_REJECT_UNAUTHORIZED", "0")
        .env("NODE_NO_WARNINGS", "1");
    cmd
}

/// `node tests/interop/xmppjs.mjs MODE --service URL --domain localhost --user u:p …` run from
/// `tests/interop` (the driver's own arguments follow).
pub fn xmppjs_driver(mode: &str, service: &str, users: &[(&str, &str)]) -> Command {
    let mut cmd = node_driver("xmppjs.mjs");
    cmd.args([mode, "--service", service, "--domain", "localhost"])
        .args(["--timeout", DRIVER_TIMEOUT_SECS]);
    for (user, password) in users {
        cmd.arg("--user").arg(format!("{user}:{password}"));
    }
    cmd
}

/// A client subprocess: stdout lines are collected (and parsed when JSON), stderr is kept for
/// failure messages. Killed on drop.
#[derive(Debug)]
pub struct ClientProcess {
    name: String,
    child: Child,
    lines_rx: Receiver<String>,
    lines: Vec<String>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// A client run to its end.
#[derive(Debug)]
pub struct Finished {
    /// The name it was started under.
    pub name: String,
    /// `None` when it was killed at the deadline.
    pub status: Option<ExitStatus>,
    /// Its stdout, line by line.
    pub lines: Vec<String>,
    /// Its stderr.
    pub stderr: String,
}

impl Finished {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// Its exit code (`None` if killed).
    pub fn exit_code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// Its stdout as one text.
    pub fn stdout(&self) -> String {
        self.lines.join("\n")
    }

    /// The JSON lines `{"event": EVENT, …}` of stdout.
    pub fn events(&self, event: &str) -> Vec<Value> {
        self.lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["event"] == event)
            .collect()
    }

    /// Everything it said, for a failure message.
    pub fn describe(&self) -> String {
        self.describe_as(&self.name)
    }

    /// The same, under another name.
    pub fn describe_as(&self, name: &str) -> String {
        format!(
            "{name}: exit status {:?}\n--- {name} stdout ---\n{}\n--- {name} stderr ---\n{}",
            self.status,
            self.lines.join("\n"),
            self.stderr
        )
    }
}

impl ClientProcess {
    /// Start `cmd` (with `stdin` as its whole input, or none).
    pub fn spawn(name: &str, mut cmd: Command, stdin: Option<&str>) -> Self {
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {name} ({:?}): {e}; the interop clients are installed by \
                 `./tests/run.sh --install-only`",
                cmd.get_program()
            )
        });
        if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
            input
                .write_all(text.as_bytes())
                .expect("write client stdin");
            // Dropping `input` closes the pipe: the client sees end of input.
        }
        let (tx, lines_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        let out_reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut pipe = child.stderr.take().expect("stderr");
        let err_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        Self {
            name: name.to_owned(),
            child,
            lines_rx,
            lines: Vec::new(),
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }

    /// What the client has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Wait for the JSON line `{"event": EVENT, …}`; panics (with everything the client said) if
    /// the client exits or the deadline passes first.
    pub fn wait_event(&mut self, event: &str, server: &Server) -> Value {
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines_rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    self.lines.push(line.clone());
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        if v["event"] == event {
                            return v;
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{} did not report {event:?} within {CLIENT_TIMEOUT:?}\nstdout:\n{}\nstderr:\n{}\nserver log:\n{}",
                    self.name,
                    self.lines.join("\n"),
                    self.stderr(),
                    server.logs()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!(
                        "{} exited ({status:?}) before reporting {event:?}\nstdout:\n{}\nstderr:\n{}\nserver log:\n{}",
                        self.name,
                        self.lines.join("\n"),
                        self.stderr(),
                        server.logs()
                    );
                }
            }
        }
    }

    /// Wait for the client to exit (killing it at the deadline) and collect its output.
    pub fn finish(mut self) -> Finished {
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        while let Ok(line) = self.lines_rx.try_recv() {
            self.lines.push(line);
        }
        Finished {
            name: self.name.clone(),
            status,
            lines: std::mem::take(&mut self.lines),
            stderr: self.stderr(),
        }
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
