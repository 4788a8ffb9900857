//! Smoke tests for CI: a real server and the built `tessera-load`, a short bounded run of each
//! mode (logins with SCRAM and FAST, idle, fanout, mixed, slow-reader), each report checked for
//! the work done and zero errors, and the accounts the tool created deleted afterwards.

use std::process::Command;

use serde_json::Value;
use tessera_tests::{Server, ServerOptions};

fn fast_server() -> Server {
    Server::start(&ServerOptions::with_modules(&["sasl2", "sasl2_fast"]))
}

/// Run `tessera-load MODE --server <direct TLS> ARGS --tessera-config … --server-pid …`;
/// returns the JSON report (the run must succeed).
fn load(server: &Server, mode: &str, args: &[&str]) -> (Value, String) {
    load_at(server, server.ports.direct_tls, mode, args)
}

/// [`load`] against `addr`.
fn load_at(
    server: &Server,
    addr: std::net::SocketAddr,
    mode: &str,
    args: &[&str],
) -> (Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera-load"))
        .args([mode, "--server"])
        .arg(addr.to_string())
        .args(args)
        .arg("--tessera-config")
        .arg(server.config_path())
        .arg("--tessera-bin")
        .arg(tessera_tests::tessera_bin())
        .args(["--server-pid", &server.pid().to_string()])
        .output()
        .expect("run tessera-load");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "tessera-load {mode} failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let report: Value = serde_json::from_str(line).expect("one JSON line");
    assert_eq!(report["mode"], mode, "{report}");
    assert_eq!(
        report["errors_total"].as_u64().unwrap_or(0),
        0,
        "{report}\n{stderr}"
    );
    (report, stderr)
}

/// The accounts the tool created are gone again.
fn assert_cleaned_up(server: &Server) {
    let out = server.cli(&["user", "list"], "");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listed}");
    assert!(
        !listed.lines().any(|l| l.starts_with("load")),
        "accounts left behind: {listed}"
    );
}

#[test]
fn fast_logins_report_server_cpu() {
    let server = fast_server();
    let (r, _) = load(
        &server,
        "logins",
        &[
            "--mechanism",
            "fast-expr",
            "--concurrency",
            "2",
            "--duration",
            "2",
            "--create",
            "2",
        ],
    );
    assert!(r["logins"].as_u64().unwrap_or(0) > 10, "{r}");
    assert_eq!(r["tls_version"], "TLSv1_3", "{r}");
    assert!(
        r["server_cpu_ms_per_login"].as_f64().unwrap_or(0.0) > 0.0,
        "{r}"
    );
    assert_cleaned_up(&server);
}

/// `--tls websocket`: SCRAM and FAST logins over XMPP over WebSocket (RFC 7395) at the HTTPS
/// listener, as many as over direct TLS and with no error.
#[test]
fn websocket_logins_with_scram_and_fast() {
    let server = fast_server();
    for mechanism in ["scram-sha-256", "fast-none"] {
        let (r, stderr) = load_at(
            &server,
            server.ports.http,
            "logins",
            &[
                "--tls",
                "websocket",
                "--mechanism",
                mechanism,
                "--concurrency",
                "2",
                "--duration",
                "2",
                "--create",
                "2",
            ],
        );
        assert!(r["logins"].as_u64().unwrap_or(0) > 10, "{r}\n{stderr}");
        assert_eq!(r["tls_version"], "TLSv1_3", "{r}");
    }
    let metrics = tessera_tests::https(server.ports.http, "GET", "/metrics", &[], b"").body;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tessera_connections_total{transport=\"websocket\"}")),
        "{metrics}"
    );
    assert_cleaned_up(&server);
}

/// `mam`: an archive filled through a real session, then timed queries for its latest page.
#[test]
fn mam_fills_an_archive_and_times_queries_for_the_latest_page() {
    let server = Server::start(&ServerOptions::with_modules(&["sasl2", "mam"]));
    let (r, stderr) = load(
        &server,
        "mam",
        &[
            "--fill",
            "300",
            "--queries",
            "20",
            "--page",
            "50",
            "--create",
            "2",
        ],
    );
    assert_eq!(r["queries"], 20, "{r}\n{stderr}");
    assert!(r["latency_ms"]["p50"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
    assert!(r["server_cpu_ms_per_query"].as_f64().is_some(), "{r}");
    assert_cleaned_up(&server);
}

#[test]
fn idle_holds_sessions_and_reports_memory() {
    let server = fast_server();
    let (r, _) = load(
        &server,
        "idle",
        &[
            "--count",
            "40",
            "--checkpoints",
            "20",
            "--duration",
            "1",
            "--create",
            "2",
        ],
    );
    assert_eq!(r["sessions_alive_at_end"], 40, "{r}");
    assert!(r["kib_per_session"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
    assert_eq!(r["checkpoints"][0]["sessions"], 20, "{r}");
    assert_cleaned_up(&server);
}

#[test]
fn fanout_resets_every_session_and_refuses_every_token() {
    let server = fast_server();
    let (r, _) = load(&server, "fanout", &["--count", "20", "--tokens"]);
    assert_eq!(r["resets"], 20, "{r}");
    assert_eq!(r["tokens_refused"], 20, "{r}");
    assert_eq!(r["not_reset"], serde_json::json!({}), "{r}");
    assert!(r["all_reset_ms"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
    assert_cleaned_up(&server);
}

#[test]
fn mixed_runs_every_part_without_errors() {
    let server = fast_server();
    let (r, _) = load(
        &server,
        "mixed",
        &[
            "--duration",
            "3",
            "--idle",
            "10",
            "--ping-every",
            "0.5",
            "--scram",
            "1",
            "--fast",
            "1",
            "--password-every",
            "1",
            "--fanout",
            "5",
            "--create",
            "2",
        ],
    );
    assert_eq!(r["idle"]["alive_at_end"], 10, "{r}");
    assert!(r["idle"]["pings"].as_u64().unwrap_or(0) >= 30, "{r}");
    assert!(r["scram"]["logins"].as_u64().unwrap_or(0) > 0, "{r}");
    assert!(r["fast"]["logins"].as_u64().unwrap_or(0) > 0, "{r}");
    assert!(
        r["password_changes"]["changes"].as_u64().unwrap_or(0) >= 1,
        "{r}"
    );
    assert_cleaned_up(&server);
}

#[test]
fn slow_reader_fills_a_reader_that_does_not_read_while_others_ping() {
    // A 2 s send timeout: the reader is closed during the run.
    let server = Server::start(&ServerOptions {
        c2s: "send_timeout = 2\nreceive_rate = 1073741824\nreceive_burst = 1073741824\n".into(),
        ..ServerOptions::with_modules(&["sasl2", "ping"])
    });
    let (r, _) = load(
        &server,
        "slow-reader",
        &[
            "--flood",
            "10000",
            "--pingers",
            "2",
            "--idle",
            "0.5",
            "--create",
            "4",
        ],
    );
    assert_eq!(r["messages_sent"], 10000, "{r}");
    assert!(
        r["idle_ping_ms"]["samples"].as_u64().unwrap_or(0) > 0,
        "{r}"
    );
    assert!(
        r["loaded_ping_ms"]["samples"].as_u64().unwrap_or(0) > 0,
        "{r}"
    );
    // What the reader never read came back: 10 MB is more than its kernel buffers and half its
    // send buffer hold, so the flood is shed while the sender still listens.
    assert!(r["errors_received"].as_u64().unwrap_or(0) > 0, "{r}");
    assert_cleaned_up(&server);
}

#[test]
fn logins_against_a_real_server() {
    let server = Server::start(&ServerOptions::with_modules(&["sasl2"]));
    server.add_user("smoke0", "password zero", None);
    server.add_user("smoke1", "password one", None);
    let accounts = server.dir.path().join("accounts.txt");
    std::fs::write(
        &accounts,
        "smoke0@localhost:password zero\nsmoke1@localhost:password one\n",
    )
    .expect("write accounts");
    let out = Command::new(env!("CARGO_BIN_EXE_tessera-load"))
        .args(["logins", "--server"])
        .arg(server.ports.direct_tls.to_string())
        .args(["--concurrency", "2", "--duration", "2", "--accounts"])
        .arg(&accounts)
        .output()
        .expect("run tessera-load");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tessera-load failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let report: serde_json::Value = serde_json::from_str(line).expect("one JSON line");
    assert!(
        report["logins"].as_u64().unwrap_or(0) > 0,
        "{report}\n{stderr}"
    );
    assert_eq!(
        report["errors_total"].as_u64(),
        Some(0),
        "{report}\n{stderr}"
    );
    assert_eq!(report["mechanism"], "scram-sha-256");
}

#[test]
fn refuses_a_non_loopback_server() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera-load"))
        .args([
            "logins",
            "--server",
            "192.0.2.1:5223",
            "--accounts",
            "/dev/null",
        ])
        .output()
        .expect("run tessera-load");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");
}
