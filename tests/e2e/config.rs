//! The binary's configuration handling: bad config exits 2 naming the key and line, nothing
//! starts; the embedded default works with no file; the user CLI works without a server.

use tessera_tests::{run_cli, tessera_bin, write_config, ServerOptions};

fn check(top: &str, tables: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = ServerOptions {
        top: top.into(),
        tables: tables.into(),
        ..ServerOptions::with_modules(&["fixture_emitter"])
    };
    let base = write_config(dir.path(), &opts);
    let out = run_cli(&base, &["check-config"], "");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn bad_config_exits_2_naming_the_key_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "domain = \"localhost\"\n[c2s]\nlisten = [\"localhost:5222\"]\n",
    )
    .expect("write");
    for cmd in ["check-config", "run"] {
        let out = run_cli(&path, &[cmd], "");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(
            err.contains(
                "bad.toml:3: `c2s.listen`: `localhost:5222` is not an IP address with port"
            ),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn unknown_and_mistyped_keys_are_caught_whichever_module_they_belong_to() {
    let (code, err) = check("fixture_emitter_greting = \"hi\"", "");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("`fixture_emitter_greting`: unknown key")
            && err.contains("did you mean fixture_emitter_greeting"),
        "{err}"
    );
    let (code, err) = check("fixture_emitter_greeting = 42", "");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("`fixture_emitter_greeting`: expected a string"),
        "{err}"
    );
    let (code, err) = check("", "[smtp]\nurl = \"smtp://127.0.0.1:25\"\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("`smtp.from`: required in [smtp]"), "{err}");
    let (code, _) = check("", "");
    assert_eq!(code, Some(0));
}

#[test]
fn a_missing_plugin_file_exits_2_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &ServerOptions::with_modules(&["no_such_module"]),
    );
    let out = run_cli(&config, &["run"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`modules_enabled`: module `no_such_module`: plugin file")
            && err.contains("libmod_no_such_module.so not found"),
        "{err}"
    );
}

#[test]
fn the_embedded_default_needs_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(tessera_bin())
        .arg("check-config")
        .current_dir(dir.path())
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("config OK: domain localhost"), "{stdout}");
}

#[test]
fn user_commands_work_on_the_store_without_a_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &ServerOptions::default());
    let add = run_cli(
        &config,
        &[
            "user",
            "add",
            "Alice@localhost",
            "--email",
            "alice@example.org",
        ],
        "pencil\n",
    );
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&add.stdout).trim(), "ok: alice");
    let dup = run_cli(&config, &["user", "add", "alice"], "x\n");
    assert_eq!(dup.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&dup.stderr).contains("account `alice` already exists"));
    let other = run_cli(&config, &["user", "add", "bob@example.org"], "x\n");
    assert_eq!(other.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&other.stderr)
        .contains("this server serves localhost, not example.org"));
    let no_pw = run_cli(&config, &["user", "add", "carol"], "");
    assert_eq!(no_pw.status.code(), Some(2));
    assert!(run_cli(&config, &["user", "passwd", "alice"], "new\n")
        .status
        .success());
    let list = run_cli(&config, &["user", "list"], "");
    assert_eq!(String::from_utf8_lossy(&list.stdout).trim(), "alice");
    assert!(run_cli(&config, &["user", "del", "alice"], "")
        .status
        .success());
    let gone = run_cli(&config, &["user", "del", "alice"], "");
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no such account `alice`"));
}

/// `log_format = "json"`: every line the server writes on stderr during a run with logins (one
/// good, one with a wrong password), a message, a module reload, a password change and a stop
/// is one JSON object with the text log's fields (timestamp, level, target, the event's fields
/// with its message); no password appears. `tessera status` reports version, uptime, listeners,
/// sessions and modules. A log format that does not exist is refused by name.
#[test]
fn json_logs_are_one_object_per_line_with_no_secret_and_status_reports_the_server() {
    use tessera_tests::sasl::{password_login_works, PasswordMechanism};
    use tessera_tests::Server;

    let (code, err) = check("log_format = \"yaml\"", "");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("`log_format`: `yaml` is not a log format (\"text\" or \"json\")"),
        "{err}"
    );

    let mut server = Server::start(&ServerOptions {
        top: "log_format = \"json\"".into(),
        ..ServerOptions::with_modules(&["sasl2", "sasl2_fast", "ping"])
    });
    let (password, wrong, new) = ("correct horse 1", "wrong horse 2", "battery staple 3");
    server.add_user("alice", password, None);
    let addr = server.ports.direct_tls;
    assert!(password_login_works(
        addr,
        "alice",
        password,
        PasswordMechanism::Plain
    ));
    assert!(!password_login_works(
        addr,
        "alice",
        wrong,
        PasswordMechanism::ScramSha256
    ));
    server.cli_ok(&["module", "reload", "ping"]);
    let out = server.cli(&["user", "passwd", "alice"], &format!("{new}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let status: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["status"])).expect("status is JSON");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"), "{status}");
    assert!(status["uptime_s"].is_u64(), "{status}");
    assert_eq!(
        status["listeners"]["direct_tls"],
        serde_json::json!([addr.to_string()]),
        "{status}"
    );
    assert_eq!(
        status["listeners"]["c2s"],
        serde_json::json!([server.ports.c2s.to_string()]),
        "{status}"
    );
    assert!(
        status["sessions"].is_u64() && status["modules"].is_array(),
        "{status}"
    );

    assert!(server.stop().success());
    let log = server.logs();
    let mut lines = 0;
    let mut messages = Vec::new();
    for line in log.lines().filter(|l| !l.starts_with("=== tessera")) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}\n--- log ---\n{log}"));
        assert!(v["timestamp"].is_string(), "{line}");
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
                .contains(&v["level"].as_str().unwrap_or("")),
            "{line}"
        );
        assert!(v["target"].is_string() && v["fields"].is_object(), "{line}");
        messages.push(
            v["fields"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        lines += 1;
    }
    assert!(lines >= 8, "{log}");
    for expected in [
        "listening",
        "authenticated",
        "module loaded",
        "module reloaded",
    ] {
        assert!(
            messages.iter().any(|m| m.starts_with(expected)),
            "no `{expected}` line\n{log}"
        );
    }
    for secret in [password, wrong, new] {
        assert!(!log.contains(secret), "`{secret}` is in the log\n{log}");
    }
}
