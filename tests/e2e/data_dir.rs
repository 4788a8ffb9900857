//! The data directory against the real binary (issue 12, findings 5 and 3): everything in it is
//! owner-only, a folder others can write is refused, older wider modes are tightened, the admin
//! socket serves only its own user (and root), one server per folder, and an offline `tessera
//! user` command never writes the store behind a server it cannot reach.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tessera_tests::reset::Profile;
use tessera_tests::sasl::{password_login_works, PasswordMechanism};
use tessera_tests::{
    run_cli, run_with_stdin, tessera_bin, wait_for_mail, write_config, Server, ServerOptions,
    XmppClient, TIMEOUT,
};

const OLD: &str = "old password 1";
const NEW: &str = "brand new passphrase";

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn login_works(direct_tls: std::net::SocketAddr, password: &str) -> bool {
    password_login_works(direct_tls, "alice", password, PasswordMechanism::Plain)
}

/// `tessera run` on a config of our own (so the data directory can be prepared before it
/// starts); killed on drop. Returns once the ready line is out.
struct Running {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Running {
    fn start(config: &Path) -> Running {
        let log = Arc::new(Mutex::new(String::new()));
        let (child, _, _) = Server::spawn(config, None, &log);
        Running { child, log }
    }

    fn logs(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Wait until a log line contains every one of `needles`.
    fn wait_for_line(&self, needles: &[&str]) {
        let deadline = Instant::now() + TIMEOUT;
        while !self
            .logs()
            .lines()
            .any(|l| needles.iter().all(|n| l.contains(n)))
        {
            assert!(
                Instant::now() < deadline,
                "no line with {needles:?}:\n{}",
                self.logs()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn everything_in_the_data_dir_is_owner_only_including_reset_mails() {
    let server = Server::start(&ServerOptions {
        http: "public_url = \"https://chat.example.test\"".into(),
        ..ServerOptions::with_modules(&["sasl2", "password_reset"])
    });
    server.add_user("alice", OLD, Some("alice@example.net"));
    // No [smtp]: the reset mail, with its live link, goes to data_dir/outbox.
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open();
    c.password_reset(Profile::Sasl2, "alice", "alice@example.net");
    let data = server.dir.path().join("data");
    let (mail, text) = wait_for_mail(&data.join("outbox"));
    assert!(text.contains("chat.example.test"), "{text}");

    for folder in ["", "outbox", "tls"] {
        assert_eq!(mode(&data.join(folder)), 0o700, "{folder}/");
    }
    for file in [
        "server-secret",
        "tessera.sqlite",
        "tessera.sqlite-wal",
        "tessera.sqlite-shm",
        "tessera.lock",
        "tls/localhost.key",
        "tls/localhost.crt",
        "admin.sock",
    ] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&mail), 0o600, "{}", mail.display());
    // And nothing else anywhere below is open to group or others.
    let mut folders = vec![data.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("read_dir").flatten() {
            let path = entry.path();
            assert_eq!(mode(&path) & 0o077, 0, "{}", path.display());
            if path.is_dir() {
                folders.push(path);
            }
        }
    }
}

#[test]
fn a_data_dir_others_can_write_is_refused_naming_it_and_its_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &ServerOptions::with_modules(&["sasl2"]));
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    chmod(&data, 0o777);
    let out = run_cli(&config, &["run"], "");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "data_dir {} is writable by other users (mode 0777)",
            data.display()
        )),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&data).expect("read_dir").count(),
        0,
        "nothing was created in it"
    );
    assert_eq!(mode(&data), 0o777, "nor was it changed");
    // The offline CLI refuses it the same way.
    let add = run_cli(&config, &["user", "add", "alice"], "pw\n");
    assert_eq!(add.status.code(), Some(1));
    assert!(stderr(&add).contains("(mode 0777)"), "{}", stderr(&add));
    assert_eq!(std::fs::read_dir(&data).expect("read_dir").count(), 0);
}

#[test]
fn folders_and_files_left_wider_by_an_older_version_are_tightened_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &ServerOptions::with_modules(&["sasl2"]));
    let data = dir.path().join("data");
    // What an older build left: an account in a 0644 store, a 0755 folder, a 0644 mail.
    let add = run_cli(&config, &["user", "add", "alice"], &format!("{OLD}\n"));
    assert!(add.status.success(), "{}", stderr(&add));
    std::fs::create_dir(data.join("outbox")).expect("mkdir");
    std::fs::write(data.join("outbox/1-00.eml"), "an old reset link").expect("write");
    for folder in ["", "outbox"] {
        chmod(&data.join(folder), 0o755);
    }
    for file in ["outbox/1-00.eml", "tessera.sqlite", "tessera.lock"] {
        chmod(&data.join(file), 0o644);
    }
    let server = Running::start(&config);
    for folder in ["", "outbox", "tls"] {
        assert_eq!(mode(&data.join(folder)), 0o700, "{folder}/");
    }
    for file in ["outbox/1-00.eml", "tessera.sqlite", "tessera.lock"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    for path in ["outbox/1-00.eml", "tessera.sqlite"] {
        let path = format!("path={}", data.join(path).display());
        server.wait_for_line(&[
            "tightened permissions to owner-only",
            &path,
            "from=0644 to=0600",
        ]);
    }
    server.wait_for_line(&["tightened permissions", "from=0755 to=0700"]);
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let server = Server::start(&ServerOptions::with_modules(&["sasl2"]));
    let second = server.cli(&["run"], "");
    let err = stderr(&second);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "a Tessera server (pid {}) holds data_dir {} (lock file tessera.lock); refusing to \
             start a second server on it",
            server.pid(),
            server.dir.path().join("data").display()
        )),
        "{err}"
    );
    // The first one is untouched and still answers.
    server.add_user("alice", OLD, None);
    assert!(login_works(server.ports.direct_tls, OLD));
}

#[test]
fn the_cli_refuses_to_write_the_store_behind_a_server_it_cannot_reach() {
    let server = Server::start(&ServerOptions::with_modules(&["sasl2"]));
    server.add_user("alice", OLD, None);
    // The server holds the folder, but its admin socket is out of reach (as when it has no
    // descriptor left to accept with).
    let data = server.dir.path().join("data");
    std::fs::rename(data.join("admin.sock"), data.join("away.sock")).expect("rename");
    let expected = format!(
        "a Tessera server (pid {}) holds {}; its admin socket did not answer: ",
        server.pid(),
        data.display()
    );
    for (args, stdin) in [
        (&["user", "passwd", "alice"][..], format!("{NEW}\n")),
        (&["user", "add", "bob"][..], format!("{NEW}\n")),
        (&["user", "del", "alice"][..], String::new()),
    ] {
        let out = server.cli(args, &stdin);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&expected) && err.contains("refusing to write the store behind its back"),
            "{args:?}: {err}"
        );
    }
    let list = server.cli(&["module", "list"], "");
    assert!(
        stderr(&list).contains(&format!(
            "a Tessera server (pid {}) holds {}, but its admin socket did not answer",
            server.pid(),
            data.display()
        )),
        "{}",
        stderr(&list)
    );
    std::fs::rename(data.join("away.sock"), data.join("admin.sock")).expect("rename back");
    // The stored verifier is the old one: the old password works, the new one does not.
    assert!(login_works(server.ports.direct_tls, OLD));
    assert!(!login_works(server.ports.direct_tls, NEW));
    let users = server.cli(&["user", "list"], "");
    assert_eq!(String::from_utf8_lossy(&users.stdout).trim(), "alice");
}

#[test]
fn with_no_server_running_the_cli_acts_offline_even_after_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &ServerOptions::with_modules(&["sasl2"]));
    let data = dir.path().join("data");
    let add = run_cli(&config, &["user", "add", "alice"], &format!("{OLD}\n"));
    assert!(add.status.success(), "{}", stderr(&add));
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("tessera.sqlite")), 0o600);
    assert_eq!(mode(&data.join("tessera.lock")), 0o600);
    // A server killed with SIGKILL leaves its lock file and socket behind, but not its lock.
    Running::start(&config).kill();
    assert!(data.join("admin.sock").exists());
    let passwd = run_cli(&config, &["user", "passwd", "alice"], &format!("{NEW}\n"));
    assert!(passwd.status.success(), "{}", stderr(&passwd));
    assert_eq!(String::from_utf8_lossy(&passwd.stdout).trim(), "ok: alice");
    // The stale socket is no obstacle to the next server either.
    Running::start(&config).kill();
}

/// Run the `tessera` binary as `nobody` (uid 65534) with `stdin`.
fn as_nobody(args: &[&str], stdin: &str) -> Output {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(tessera_bin())
        .args(args);
    run_with_stdin(command, stdin)
}

#[test]
fn another_local_user_cannot_use_the_admin_socket() {
    // The client runs as `nobody` through setpriv, which only root may do (CI and tests/run.sh
    // run as root): without it this test would prove nothing, so it fails instead of skipping.
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid());
    assert_eq!(
        uid.ok(),
        Some(0),
        "this test runs a client as another user (setpriv to nobody): run it as root"
    );
    let server = Server::start(&ServerOptions::with_modules(&["sasl2"]));
    server.add_user("alice", OLD, None);
    let config = server.config_path();
    let config_arg = config.to_str().expect("utf-8 path");
    let data = server.dir.path().join("data");

    // As things are, nobody cannot reach the socket (data_dir is 0700), and the offline mode
    // refuses a folder of another user.
    chmod(server.dir.path(), 0o711);
    chmod(&config, 0o644);
    // `tessera user passwd alice` as nobody: refused (exit 1) with `reason`.
    let refused_as_nobody = |reason: &str| {
        let out = as_nobody(
            &["-c", config_arg, "user", "passwd", "alice"],
            &format!("{NEW}\n"),
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(reason), "{err}");
    };
    refused_as_nobody("belongs to uid 0, not to this process (uid 65534)");

    // Open every door but the last: data_dir passable, socket 0666.
    chmod(&data, 0o711);
    chmod(&data.join("admin.sock"), 0o666);
    refused_as_nobody("refused: this server runs as uid 0; uid 65534 may not use its admin socket");
    server.wait_for_log("admin socket: connection from another user refused");
    assert!(login_works(server.ports.direct_tls, OLD), "nothing changed");
    // Root (any user the server runs as) still gets in.
    let list = server.cli(&["user", "list"], "");
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), "alice");
}
