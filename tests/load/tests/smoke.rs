//! Smoke test for CI: a real server with mod_sasl2, two accounts, and the built `tessera-load`
//! doing SCRAM-SHA-256 logins over direct TLS for two seconds with two clients.

use std::process::Command;

use tessera_tests::{Server, ServerOptions};

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
