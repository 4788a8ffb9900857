//! Plugins loaded from their real files: the event bus between separately compiled modules,
//! panics caught at the boundary, refused builds with precise errors, options reaching modules,
//! and the out-of-workspace example module.

use std::time::{Duration, Instant};

use tessera_tests::{
    https, run_cli, target_dir, wait_for_mail, write_config, Server, ServerOptions, XmppClient,
    TIMEOUT,
};

const BUS_MODULES: &[&str] = &[
    "fixture_emitter",
    "fixture_listener_a",
    "fixture_listener_b",
    "fixture_panicker",
];

fn get(server: &Server, path: &str) -> tessera_tests::HttpReply {
    https(server.ports.http, "GET", path, &[], b"")
}

/// Poll a listener's record until `pred` holds (events are delivered asynchronously).
fn seen_until(
    server: &Server,
    listener: &str,
    pred: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let r = get(server, &format!("/test/{listener}/seen"));
        assert_eq!(r.status, 200, "{}", r.body);
        let seen: Vec<serde_json::Value> = serde_json::from_str(&r.body).expect("json");
        if pred(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{listener} never satisfied the condition; saw {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn values(seen: &[serde_json::Value], event: &str) -> Vec<String> {
    seen.iter()
        .filter(|e| e["name"] == event)
        .filter_map(|e| e["payload"]["value"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn events_cross_the_bus_in_priority_order_and_a_handler_can_stop_them() {
    let server = Server::start(&ServerOptions::with_modules(BUS_MODULES));
    assert_eq!(server.modules.len(), 4, "{:?}", server.modules);
    for v in ["one", "stop", "two"] {
        let r = get(
            &server,
            &format!("/test/emitter/fire?event=fixture-ping&value={v}"),
        );
        assert_eq!((r.status, r.body.as_str()), (200, "fired"));
    }
    let a = seen_until(&server, "listener_a", |s| {
        values(s, "fixture-ping").len() == 3
    });
    assert_eq!(values(&a, "fixture-ping"), ["one", "stop", "two"]);
    let b = seen_until(&server, "listener_b", |s| {
        values(s, "fixture-ping").contains(&"two".to_owned())
    });
    assert_eq!(
        values(&b, "fixture-ping"),
        ["one", "two"],
        "listener_a (priority 10) stopped 'stop' before listener_b (0)"
    );
    assert_eq!(a[0]["payload"]["from"], "fixture_emitter");
}

#[test]
fn a_panicking_plugin_is_caught_and_the_server_lives_on() {
    let mut server = Server::start(&ServerOptions::with_modules(BUS_MODULES));
    let r = get(&server, "/test/panicker/boom");
    assert_eq!(r.status, 500);
    assert_eq!(
        r.body, "internal error",
        "no panic detail leaks to the client"
    );
    let log = server.wait_for_log("plugin panicked");
    assert!(log.contains("plugin=fixture_panicker"), "{log}");
    assert!(
        log.contains("deliberate panic"),
        "the panic message is logged: {log}"
    );
    // And counted: `/metrics` has the module's panics and calls.
    let metrics = get(&server, "/metrics").body;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    assert_eq!(
        value("tessera_module_panics_total{module=\"fixture_panicker\"}"),
        1.0,
        "{metrics}"
    );
    assert!(
        value("tessera_module_calls_total{module=\"fixture_panicker\"}") >= 1.0
            && value("tessera_module_failures_total{module=\"fixture_panicker\"}") >= 1.0,
        "{metrics}"
    );

    // A panic inside an event handler: the handlers after it still get the event.
    get(&server, "/test/emitter/fire?event=fixture-ping&value=panic");
    let b = seen_until(&server, "listener_b", |s| {
        values(s, "fixture-ping").contains(&"panic".to_owned())
    });
    assert_eq!(values(&b, "fixture-ping"), ["panic"]);
    assert_eq!(get(&server, "/test/panicker/ok").body, "alive");
    assert!(server.is_running());
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    assert!(c.open().contains("<stream:features>"));
}

#[test]
fn password_change_through_the_host_reaches_every_hooked_module() {
    let server = Server::start(&ServerOptions::with_modules(BUS_MODULES));
    server.add_user("alice", "old secret", None);
    let out = server.cli(&["user", "passwd", "alice@localhost"], "new secret\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for listener in ["listener_a", "listener_b"] {
        let seen = seen_until(&server, listener, |s| {
            s.iter().any(|e| e["name"] == "user-password-changed")
        });
        let ev = seen
            .iter()
            .find(|e| e["name"] == "user-password-changed")
            .expect("event");
        assert_eq!(ev["payload"]["user"], "alice");
    }
}

#[test]
fn module_options_reach_the_module() {
    let server = Server::start(&ServerOptions {
        top: "fixture_emitter_greeting = \"good morning\"".into(),
        ..ServerOptions::with_modules(&["fixture_emitter"])
    });
    assert_eq!(get(&server, "/test/emitter/greeting").body, "good morning");
    let default = Server::start(&ServerOptions::with_modules(&["fixture_emitter"]));
    assert_eq!(get(&default, "/test/emitter/greeting").body, "hello");
}

fn refused(modules: &[&str], plugin_dir: Option<std::path::PathBuf>) -> (i32, String) {
    tessera_tests::ensure_built();
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = ServerOptions {
        plugin_dir,
        ..ServerOptions::with_modules(modules)
    };
    let config = write_config(dir.path(), &opts);
    let check = run_cli(&config, &["check-config"], "");
    let run = run_cli(&config, &["run"], "");
    let check_err = String::from_utf8_lossy(&check.stderr).to_string();
    let run_err = String::from_utf8_lossy(&run.stderr).to_string();
    assert_eq!(
        check.status.code(),
        run.status.code(),
        "check-config and run agree: {check_err} / {run_err}"
    );
    assert!(
        !String::from_utf8_lossy(&run.stdout).contains("tessera ready"),
        "nothing started"
    );
    (run.status.code().unwrap_or(-1), run_err)
}

#[test]
fn a_plugin_built_against_a_changed_api_is_refused_precisely() {
    let (code, err) = refused(
        &["fixture_changed_abi"],
        Some(tessera_tests::build_abi_fixtures()),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("libmod_fixture_changed_abi.so: incompatible plugin ABI (host has plugin API 2.0.0, plugin was built against 2.0.0)"), "{err}");
    assert!(
        err.contains("Error:too many variants")
            && err.contains("Expected: 2")
            && err.contains("Found: 3"),
        "the first layout difference (EventFlow's extra variant) is named: {err}"
    );
}

/// Minor versions add features without breaking anyone: a plugin built against API 2.1 (the
/// real sources plus one host call this host does not know) loads into this 2.0 host, works,
/// and gets `UNSUPPORTED` for the call it asks beyond 2.0, on which it falls back. (The other
/// direction, a host asking an older plugin, is `host/tests/minor_versions.rs`.)
#[test]
fn a_plugin_built_against_a_newer_minor_api_loads_and_falls_back_on_what_the_host_lacks() {
    tessera_tests::ensure_built();
    let plugins = tempfile::tempdir().expect("tempdir");
    for (dir, name) in [
        (target_dir(), "sasl2"),
        (tessera_tests::build_abi_fixtures(), "fixture_newer_minor"),
    ] {
        let file = format!("libmod_{name}.so");
        std::fs::copy(dir.join(&file), plugins.path().join(&file)).expect("copy plugin");
    }
    let server = Server::start(&ServerOptions {
        plugin_dir: Some(plugins.path().to_path_buf()),
        ..ServerOptions::with_modules(&["sasl2", "fixture_newer_minor"])
    });
    assert_eq!(server.modules, ["sasl2 1.0.0", "fixture_newer_minor 1.0.0"]);
    server.add_user("alice", "pw", None);
    let (mut alice, _) = XmppClient::login(server.ports.direct_tls, "alice", "pw", "t");
    alice.send("<iq type='get' id='f1'><future xmlns='urn:tessera:test:future'/></iq>");
    let reply = alice.read_iq("f1");
    assert!(
        reply.contains("type='result'")
            && reply.contains("api='2.1.0'")
            && reply.contains("answer='fallback (unsupported: call kind 900)'"),
        "{reply}"
    );
}

#[test]
fn a_plugin_built_against_plugin_api_1_is_refused_with_a_rebuild_hint() {
    let (code, err) = refused(
        &["fixture_old_api"],
        Some(tessera_tests::build_abi_fixtures()),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("libmod_fixture_old_api.so: built against plugin API 1.0.0 (major 1); this host expects major 2 (API 2.0.0); rebuild it against tessera-plugin-api 2"), "{err}");
}

#[test]
fn a_plugin_of_another_major_version_is_refused_at_the_first_gate() {
    let (code, err) = refused(
        &["fixture_other_major"],
        Some(tessera_tests::build_abi_fixtures()),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("libmod_fixture_other_major.so: built against plugin API 3.0.0 (major 3); this host expects major 2 (API 2.0.0)"), "{err}");
    assert!(
        !err.contains("rebuild"),
        "no rebuild hint for a newer plugin: {err}"
    );
}

#[test]
fn a_file_that_is_not_a_plugin_is_refused() {
    tessera_tests::ensure_built();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("libmod_junk.so"),
        b"this is not an ELF file",
    )
    .expect("write");
    let (code, err) = refused(&["junk"], Some(dir.path().to_path_buf()));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("libmod_junk.so: not a loadable shared library"),
        "{err}"
    );
    // A real shared library without the Tessera symbols.
    let sasl = target_dir().join("libtessera_sasl.so");
    let foreign = std::fs::read_dir(target_dir().join("deps"))
        .expect("deps")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "so") && !p.to_string_lossy().contains("mod_"))
        .unwrap_or(sasl);
    std::fs::copy(&foreign, dir.path().join("libmod_foreign.so")).expect("copy foreign .so");
    let (code, err) = refused(&["foreign"], Some(dir.path().to_path_buf()));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("libmod_foreign.so: not a Tessera plugin (no TESSERA_PLUGIN_MAGIC symbol)"),
        "{err}"
    );
}

#[test]
fn a_module_whose_init_fails_stops_the_start_with_its_reason() {
    tessera_tests::ensure_built();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        &ServerOptions::with_modules(&["fixture_bad_init"]),
    );
    let run = run_cli(&config, &["run"], "");
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "module `fixture_bad_init` failed to start: config: fixture_bad_init refuses to start"
        ),
        "{err}"
    );
}

#[test]
fn the_third_party_example_module_loads_from_its_own_build() {
    let hello_dir = tessera_tests::build_mod_hello();
    let plugins = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        hello_dir.join("libmod_hello.so"),
        plugins.path().join("libmod_hello.so"),
    )
    .expect("copy hello");
    std::fs::copy(
        target_dir().join("libmod_sasl2.so"),
        plugins.path().join("libmod_sasl2.so"),
    )
    .expect("copy sasl2");
    let server = Server::start(&ServerOptions {
        plugin_dir: Some(plugins.path().to_path_buf()),
        ..ServerOptions::with_modules(&["sasl2", "hello"])
    });
    assert_eq!(server.modules, ["sasl2 1.0.0", "hello 1.0.0"]);
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    let features = c.open();
    assert!(
        features.contains("<hello xmlns='urn:example:hello'/>"),
        "{features}"
    );
    let stats = https(server.ports.http, "GET", "/hello/stats", &[], b"");
    assert_eq!(stats.status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stats.body).expect("json")["sessions_bound"],
        0
    );
    // A shipped module (sasl2) and the third-party one cooperate: a bound session reaches
    // mod_hello as a `session-bound` event, and its IQ handler answers.
    server.add_user("alice", "pw", None);
    let (mut alice, jid) = XmppClient::login(server.ports.direct_tls, "alice", "pw", "t");
    alice.send("<iq type='get' id='h1' to='localhost'><hello xmlns='urn:example:hello'/></iq>");
    let reply = alice.read_until("</iq>");
    assert!(
        reply.contains("type='result'") && reply.contains(&format!("Hello, {jid}!")),
        "{reply}"
    );
    // Its stanza hook answers `/hello` in place of delivering it; other messages pass.
    alice.send(&format!(
        "<message to='{jid}' type='chat' id='m1'><body>/hello</body></message>"
    ));
    alice.send(&format!(
        "<message to='{jid}' type='chat' id='m2'><body>hi me</body></message>"
    ));
    let answer = alice.read_until("</message>");
    assert!(
        answer.contains("from='localhost'") && answer.contains(&format!("Hello, {jid}!")),
        "{answer}"
    );
    let passed = alice.read_until("</message>");
    assert!(
        passed.contains("id='m2'") && passed.contains("hi me"),
        "{passed}"
    );
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let stats = https(server.ports.http, "GET", "/hello/stats", &[], b"");
        if serde_json::from_str::<serde_json::Value>(&stats.body).expect("json")["sessions_bound"]
            == 1
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "session-bound never reached mod_hello: {}",
            stats.body
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let list = server.cli(&["module", "list"], "");
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("\"name\": \"hello\"") && text.contains("libmod_hello.so"),
        "{text}"
    );
}

#[test]
fn modules_use_host_timers_mail_and_the_sessions_api() {
    let server = Server::start(&ServerOptions::with_modules(&[
        "sasl2",
        "fixture_emitter",
        "fixture_listener_a",
    ]));
    assert_eq!(
        get(&server, "/test/emitter/timer?ms=50&event=fixture-ping").body,
        "armed"
    );
    let seen = seen_until(&server, "listener_a", |s| {
        values(s, "fixture-ping").contains(&"timer".to_owned())
    });
    assert_eq!(values(&seen, "fixture-ping"), ["timer"]);

    // No [smtp]: the host writes the mail into data_dir/outbox.
    let op = get(&server, "/test/emitter/mail?to=carol%40example.org");
    assert_eq!(op.status, 200, "{}", op.body);
    let outbox = server.dir.path().join("data/outbox");
    let (_, mail) = wait_for_mail(&outbox);
    assert!(
        mail.contains("To: carol@example.org") && mail.contains("Subject: Fixture mail"),
        "{mail}"
    );
    server.wait_for_log("mail sent");

    server.add_user("alice", "pw", None);
    let (_alice, jid) = XmppClient::login(server.ports.direct_tls, "alice", "pw", "t");
    let sessions: serde_json::Value =
        serde_json::from_str(&get(&server, "/test/emitter/sessions?user=alice").body)
            .expect("json");
    assert_eq!(sessions[0]["jid"], jid.as_str());
}
