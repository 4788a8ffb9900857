//! Test harness for Tessera's end-to-end tests: builds the workspace artefacts once, starts the
//! real `tessera` binary on OS-chosen loopback ports with a temporary data directory, and talks
//! to it over real TCP + TLS (rustls) as a raw XMPP client or an HTTPS client.
//!
//! Everything is bounded: every read has a deadline, every server is killed on drop.

#![allow(clippy::missing_panics_doc)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

mod client;
pub mod interop;
pub mod mitm;
pub mod relay;
pub mod reset;
pub mod sasl;
pub mod ws;
pub use client::{https, HttpReply, XmppClient, HEADER as HEADER_FOR_TESTS};

/// How long a test waits for anything before failing.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The cargo output folder with the `tessera` binary and the plugin libraries.
pub fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("debug");
    }
    workspace().join("target").join("debug")
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Build the server binary and every plugin once per test process (cheap when up to date).
/// The load tool and this crate are left out: they are built by their own test targets.
pub fn ensure_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = cargo()
            .args([
                "build",
                "--workspace",
                "--exclude",
                "tessera-load",
                "--exclude",
                "tessera-tests",
                "--quiet",
            ])
            .current_dir(workspace())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --workspace failed");
    });
}

/// Build the out-of-workspace example module once; returns the folder with `libmod_hello.so`.
pub fn build_mod_hello() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = target_dir().join("mod_hello-target");
        let status = cargo()
            .args(["build", "--quiet", "--manifest-path"])
            .arg(workspace().join("examples/mod_hello/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("run cargo build for mod_hello");
        assert!(status.success(), "building examples/mod_hello failed");
        target.join("debug")
    })
    .clone()
}

/// Build the plugins made against ABI-incompatible API copies (their own workspace, see
/// tests/abi-fixtures/Cargo.toml); returns the folder with their libraries.
pub fn build_abi_fixtures() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = target_dir().join("abi-fixtures-target");
        let status = cargo()
            .args(["build", "--quiet", "--manifest-path"])
            .arg(workspace().join("tests/abi-fixtures/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("run cargo build for the ABI fixtures");
        assert!(status.success(), "building tests/abi-fixtures failed");
        target.join("debug")
    })
    .clone()
}

/// The `tessera` binary.
pub fn tessera_bin() -> PathBuf {
    ensure_built();
    target_dir().join("tessera")
}

/// Addresses a started server listens on (from its ready line).
#[derive(Debug, Clone)]
pub struct Ports {
    /// STARTTLS listener.
    pub c2s: SocketAddr,
    /// Direct TLS listener.
    pub direct_tls: SocketAddr,
    /// HTTPS listener.
    pub http: SocketAddr,
}

/// A TCP connection to `addr` from the local address `from` (another loopback address, so that
/// tests can be several clients).
pub fn tcp_from(from: std::net::IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.bind(&SocketAddr::new(from, 0).into())?;
    socket.connect_timeout(&addr.into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

/// The resident memory of a process, in KiB (from `/proc`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A running `tessera run`, killed on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// The temporary folder with the config and data directory.
    pub dir: tempfile::TempDir,
    /// The listeners.
    pub ports: Ports,
    /// Modules reported by the ready line.
    pub modules: Vec<String>,
    log: Arc<Mutex<String>>,
    nofile: Option<u64>,
}

/// Options for [`Server::start`].
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `modules_enabled`.
    pub modules: Vec<String>,
    /// Extra TOML at the top level (module options, `allow_registration`, …).
    pub top: String,
    /// Extra TOML appended at the end (tables such as `[smtp]`).
    pub tables: String,
    /// Override `plugin_dir`.
    pub plugin_dir: Option<PathBuf>,
    /// Extra `[c2s]` keys.
    pub c2s: String,
    /// Extra `[http]` keys (e.g. `public_url`).
    pub http: String,
    /// Run the server under this descriptor limit (soft and hard), through `prlimit`.
    pub nofile: Option<u64>,
}

impl ServerOptions {
    /// Options with these modules enabled.
    pub fn with_modules(modules: &[&str]) -> Self {
        Self {
            modules: modules.iter().map(|m| (*m).to_owned()).collect(),
            ..Self::default()
        }
    }
}

/// Write a config file for `opts` into `dir`.
pub fn write_config(dir: &Path, opts: &ServerOptions) -> PathBuf {
    let plugin_dir = opts.plugin_dir.clone().unwrap_or_else(target_dir);
    let modules: Vec<String> = opts.modules.iter().map(|m| format!("\"{m}\"")).collect();
    let text = format!(
        "domain = \"localhost\"\ndata_dir = \"data\"\nplugin_dir = \"{}\"\nmodules_enabled = [{}]\n{}\n\n[c2s]\nlisten = [\"127.0.0.1:0\"]\ndirect_tls = [\"127.0.0.1:0\"]\n{}\n\n[http]\nlisten = [\"127.0.0.1:0\"]\n{}\n\n{}\n",
        plugin_dir.display(),
        modules.join(", "),
        opts.top,
        opts.c2s,
        opts.http,
        opts.tables
    );
    let path = dir.join("tessera.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

impl Server {
    /// Start a server and wait for its ready line.
    pub fn start(opts: &ServerOptions) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = write_config(dir.path(), opts);
        let log = Arc::new(Mutex::new(String::new()));
        let (child, ports, modules) = Self::spawn(&config, opts.nofile, &log);
        Server {
            child,
            dir,
            ports,
            modules,
            log,
            nofile: opts.nofile,
        }
    }

    /// Kill the server with SIGKILL (no shutdown of any kind) and wait for it; returns how it
    /// ended. The log gets a marker line. [`Server::restart`] starts it again.
    pub fn kill9(&mut self) -> std::process::ExitStatus {
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for the killed server");
        if let Ok(mut l) = self.log.lock() {
            l.push_str(&format!("=== tessera killed: {status} ===\n"));
        }
        status
    }

    /// Start a stopped server again on the same config and data directory, exactly as
    /// [`Server::start`] does, and wait for its ready line. The listeners are on new OS-chosen
    /// ports: [`Server::ports`] is updated. The log keeps the earlier process's lines.
    pub fn restart(&mut self) {
        assert!(!self.is_running(), "restart: the server is still running");
        let (child, ports, modules) = Self::spawn(&self.config_path(), self.nofile, &self.log);
        self.child = child;
        self.ports = ports;
        self.modules = modules;
    }

    /// Stop the server as an operator does (SIGTERM: a graceful stop) and wait for it to exit;
    /// answers its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                if let Ok(mut l) = self.log.lock() {
                    l.push_str(&format!("=== tessera stopped: {status} ===\n"));
                }
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not stop within {TIMEOUT:?} of SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// [`Server::stop`], then [`Server::restart`].
    pub fn stop_and_restart(&mut self) {
        let status = self.stop();
        assert!(status.success(), "a graceful stop exits 0, not {status}");
        self.restart();
    }

    /// [`Server::kill9`], then [`Server::restart`].
    pub fn kill9_and_restart(&mut self) {
        self.kill9();
        self.restart();
    }

    /// Run `tessera -c CONFIG run` (under `prlimit` when `nofile` is set), copy its stderr into
    /// `log`, and wait for the ready line; returns the process, its listeners and its modules.
    /// For tests that prepare a config and data directory of their own.
    pub fn spawn(
        config: &Path,
        nofile: Option<u64>,
        log: &Arc<Mutex<String>>,
    ) -> (Child, Ports, Vec<String>) {
        let mut command = match nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}"))
                    .arg("--")
                    .arg(tessera_bin());
                c
            }
            None => Command::new(tessera_bin()),
        };
        let mut child = command
            .arg("-c")
            .arg(config)
            .arg("run")
            .env("RUST_LOG", "info,tessera_host=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tessera");
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(json) = line.strip_prefix("tessera ready ") {
                    let _ = tx.send(json.to_owned());
                }
            }
        });
        let ready = match rx.recv_timeout(TIMEOUT) {
            Ok(r) => r,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "server did not become ready; log:\n{}",
                    log.lock().map(|l| l.clone()).unwrap_or_default()
                );
            }
        };
        let v: serde_json::Value = serde_json::from_str(&ready).expect("ready json");
        let addr = |k: &str| -> SocketAddr {
            v[k][0]
                .as_str()
                .expect("addr")
                .parse()
                .expect("socket addr")
        };
        let ports = Ports {
            c2s: addr("c2s"),
            direct_tls: addr("direct_tls"),
            http: addr("http"),
        };
        let modules = v["modules"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        (child, ports, modules)
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Wait until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let logs = self.logs();
            if logs.contains(needle) {
                return logs;
            }
            assert!(
                Instant::now() < deadline,
                "log never contained {needle:?}; log:\n{logs}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `tessera status` of the running server, parsed.
    pub fn status(&self) -> serde_json::Value {
        let out = self.cli(&["status"], "");
        assert!(
            out.status.success(),
            "tessera status: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status json")
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("tessera.toml")
    }

    /// Run the CLI against this server's config with `stdin`.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        run_cli(&self.config_path(), args, stdin)
    }

    /// Run a CLI command that must succeed (its stderr is the failure message); its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args, "");
        assert!(
            out.status.success(),
            "tessera {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The server's process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Create an account through the CLI (admin socket).
    pub fn add_user(&self, user: &str, password: &str, email: Option<&str>) {
        let mut args = vec!["user", "add", user];
        if let Some(e) = email {
            args.extend(["--email", e]);
        }
        let out = self.cli(&args, &format!("{password}\n"));
        assert!(
            out.status.success(),
            "user add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The live store, opened beside the server (SQLite lets both at it; writes wait their turn).
    fn store(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.dir.path().join("data/tessera.sqlite"))
            .expect("open the store");
        conn.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        conn
    }

    /// Make `user` an account whose password predates SCRAM-SHA-512 verifiers, as every account
    /// of a store migrated from schema 3 is: its SHA-512 columns are cleared in the live store
    /// (the server reads accounts from the store at each login).
    pub fn forget_sha512_verifier(&self, user: &str) {
        let n = self
            .store()
            .execute(
                "UPDATE accounts SET sha512_salt = NULL, sha512_iterations = NULL,
                    sha512_stored_key = NULL, sha512_server_key = NULL WHERE user = ?1",
                [user],
            )
            .expect("clear the SHA-512 verifier");
        assert_eq!(n, 1, "no account `{user}`");
    }

    /// Whether `user` has a SCRAM-SHA-512 verifier, and its iteration count.
    pub fn sha512_iterations(&self, user: &str) -> Option<u32> {
        self.store()
            .query_row(
                "SELECT sha512_iterations FROM accounts WHERE user = ?1",
                [user],
                |row| row.get(0),
            )
            .expect("read the account")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `tessera -c CONFIG ARGS…` with `stdin`, bounded by [`TIMEOUT`].
pub fn run_cli(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new(tessera_bin());
    command.arg("-c").arg(config).args(args);
    run_with_stdin(command, stdin)
}

/// Run `command` (with `RUST_LOG=warn`) feeding it `stdin`, bounded by [`TIMEOUT`] (killed past
/// it); returns what it printed and how it ended.
pub fn run_with_stdin(mut command: Command, stdin: &str) -> Output {
    let mut child = command
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a command");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin.as_bytes());
    }
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_end(&mut stdout);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_end(&mut stderr);
    }
    let status = child.wait().expect("wait cli");
    Output {
        status,
        stdout,
        stderr,
    }
}

/// The complete mails in an outbox folder (the server writes each under a hidden name and
/// renames it to `*.eml` when done), oldest name first.
pub fn outbox_mails(outbox: &Path) -> Vec<PathBuf> {
    let mut mails: Vec<PathBuf> = std::fs::read_dir(outbox)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect()
        })
        .unwrap_or_default();
    mails.sort();
    mails
}

/// Wait (bounded) for the first complete mail in an outbox folder and read it.
pub fn wait_for_mail(outbox: &Path) -> (PathBuf, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(path) = outbox_mails(outbox).into_iter().next() {
            let text = std::fs::read_to_string(&path).expect("read mail");
            return (path, text);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no mail in {}",
            outbox.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Connect a plain TCP socket (for pre-TLS tests).
pub fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    s
}
