//! Hot swap (issue 8): `tessera module load | unload | reload` and `tessera config reload` /
//! SIGHUP on a running server, with logged-in sessions that must not notice.

mod hotswap_util;

use std::process::Command;
use std::time::Duration;

use hotswap_util::*;
use tessera_tests::{write_config, Server, ServerOptions, XmppClient};

#[test]
fn reload_hands_state_over_and_lists_every_generation() {
    let plugins = plugin_dir(&["fixture_emitter", "fixture_counter"]);
    let server = Server::start(&ServerOptions {
        plugin_dir: Some(plugins.path().to_path_buf()),
        ..ServerOptions::with_modules(&["fixture_emitter", "fixture_counter"])
    });
    fire_count(&server, 3);
    until("count 3", || (counter(&server)["count"] == 3).then_some(()));
    let out = ok(&server, &["module", "reload", "fixture_counter"]);
    assert!(out.contains("reloaded fixture_counter"), "{out}");
    assert!(out.contains("8 bytes of state"), "{out}");
    assert_eq!(counter(&server)["count"], 3, "the count was handed over");
    fire_count(&server, 1);
    until("count 4", || (counter(&server)["count"] == 4).then_some(()));
    let list = until("the old generation retired", || {
        let list = module_list(&server);
        list.iter()
            .any(|g| g["name"] == "fixture_counter" && g["state"] == "retired")
            .then_some(list)
    });
    let counters: Vec<_> = list
        .iter()
        .filter(|g| g["name"] == "fixture_counter")
        .collect();
    assert_eq!(counters.len(), 2, "{list:?}");
    assert!(counters
        .iter()
        .all(|g| g["mapped_bytes"].as_u64() > Some(0)));
    assert_ne!(counters[0]["staged"], counters[1]["staged"]);

    replace_file(
        &counter_build("build-2"),
        &lib(plugins.path(), "fixture_counter"),
    );
    let out = ok(&server, &["module", "reload", "fixture_counter"]);
    assert!(out.contains("(build build-2)"), "{out}");
    let now = counter(&server);
    assert_eq!(
        (now["count"].as_u64(), now["build"].as_str()),
        (Some(4), Some("build-2"))
    );
    let list = module_list(&server);
    let running: Vec<_> = list.iter().filter(|g| g["state"] == "running").collect();
    assert!(
        running
            .iter()
            .any(|g| g["name"] == "fixture_counter" && g["build"] == "build-2"),
        "{list:?}"
    );
    assert_eq!(
        list.iter()
            .filter(|g| g["name"] == "fixture_counter")
            .count(),
        3
    );
}

/// Events keep arriving while the module is reloaded, with a successor whose `init` takes 100 ms:
/// before the hand-over gate, the events the old instance took after its state was saved were
/// lost with it. Every event fired must be counted by the generation that ends up running.
#[test]
fn events_taken_during_a_reload_are_not_lost_with_the_old_instance() {
    const RELOADS: usize = 5;
    let plugins = plugin_dir(&["fixture_emitter", "fixture_counter"]);
    let server = std::sync::Arc::new(Server::start(&ServerOptions {
        plugin_dir: Some(plugins.path().to_path_buf()),
        top: "fixture_counter_init_delay_ms = 100\n".into(),
        ..ServerOptions::with_modules(&["fixture_emitter", "fixture_counter"])
    }));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let firer = {
        let (server, stop) = (server.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut fired = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                fire_count(&server, 1);
                fired += 1;
                // Steady, not a busy loop: the other tests of this binary share the cores.
                std::thread::sleep(Duration::from_millis(2));
            }
            fired
        })
    };
    for _ in 0..RELOADS {
        let out = ok(&server, &["module", "reload", "fixture_counter"]);
        assert!(out.contains("reloaded fixture_counter"), "{out}");
        assert!(out.contains("calls paused"), "{out}");
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let fired = firer.join().expect("firer");
    assert!(fired > 50, "events kept coming during the reloads: {fired}");
    // The bus delivers after the firing call returned: give it a moment, then compare.
    let mut counted = 0;
    for _ in 0..100 {
        counted = counter(&server)["count"].as_u64().unwrap_or(0);
        if counted >= fired {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(counted, fired, "every event fired is counted, once");
}

#[test]
fn sessions_and_tokens_survive_reloads_of_sasl2_and_fast() {
    let server = fast_server();
    let token = obtain_token(&server);
    let (mut alice, alice_jid) =
        XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "a");
    let (mut bob, bob_jid) = XmppClient::login(server.ports.direct_tls, "bob", "bob pw", "b");
    for module in ["sasl2", "sasl2_fast", "sasl2"] {
        let out = ok(&server, &["module", "reload", module]);
        assert!(out.contains(&format!("reloaded {module}")), "{out}");
        chat(&mut alice, &mut bob, &bob_jid, &format!("after {module}"));
        chat(
            &mut bob,
            &mut alice,
            &alice_jid,
            &format!("back after {module}"),
        );
        try_login(&server, "bob", "bob pw").expect("a new login works");
        assert!(fast_login(&server, &token), "the old token still works");
    }
    assert!(!alice.is_closed() && !bob.is_closed());
}

fn sasl2_in_own_folder() -> (tempfile::TempDir, Server) {
    let plugins = plugin_dir(&["sasl2", "fixture_bad_init"]);
    let server = Server::start(&ServerOptions {
        plugin_dir: Some(plugins.path().to_path_buf()),
        ..ServerOptions::with_modules(&["sasl2"])
    });
    server.add_user("alice", "alice pw", None);
    (plugins, server)
}

#[test]
fn an_abi_incompatible_build_is_refused_and_the_old_instance_keeps_serving() {
    let (plugins, server) = sasl2_in_own_folder();
    let fixtures = tessera_tests::build_abi_fixtures();
    replace_file(
        &lib(&fixtures, "fixture_changed_abi"),
        &lib(plugins.path(), "sasl2"),
    );
    let err = refused(&server, &["module", "reload", "sasl2"]);
    assert!(
        err.contains("libmod_sasl2.so: incompatible plugin ABI"),
        "{err}"
    );
    assert!(err.contains("Error:too many variants"), "{err}");
    try_login(&server, "alice", "alice pw").expect("the old sasl2 still serves");
    // A 1.x build is refused at the first gate, with the hint.
    replace_file(
        &lib(&fixtures, "fixture_old_api"),
        &lib(plugins.path(), "sasl2"),
    );
    let err = refused(&server, &["module", "reload", "sasl2"]);
    assert!(
        err.contains(
            "libmod_sasl2.so: built against plugin API 1.0.0 (major 1); this host expects major 2"
        ) && err.contains("rebuild it against tessera-plugin-api 2"),
        "{err}"
    );
    try_login(&server, "alice", "alice pw").expect("the old sasl2 still serves");
}

#[test]
fn missing_foreign_and_failing_builds_are_refused_precisely() {
    let (plugins, server) = sasl2_in_own_folder();
    let file = lib(plugins.path(), "sasl2");
    let junk = plugins.path().join("junk");
    std::fs::write(&junk, b"not an ELF file").expect("write");
    replace_file(&junk, &file);
    let err = refused(&server, &["module", "reload", "sasl2"]);
    assert!(
        err.contains("libmod_sasl2.so: not a loadable shared library"),
        "{err}"
    );
    try_login(&server, "alice", "alice pw").expect("the old sasl2 still serves");

    std::fs::remove_file(&file).expect("remove");
    let err = refused(&server, &["module", "reload", "sasl2"]);
    assert!(
        err.contains("libmod_sasl2.so: plugin file not found"),
        "{err}"
    );
    try_login(&server, "alice", "alice pw").expect("the old sasl2 still serves");

    let err = refused(&server, &["module", "load", "fixture_bad_init"]);
    assert!(
        err.contains(
            "module `fixture_bad_init` failed to start: config: fixture_bad_init refuses to start"
        ),
        "{err}"
    );
    let err = refused(&server, &["module", "load", "sasl2"]);
    assert!(err.contains("module `sasl2` is already loaded"), "{err}");
    let err = refused(&server, &["module", "reload", "nothing"]);
    assert!(err.contains("module `nothing` is not loaded"), "{err}");
    try_login(&server, "alice", "alice pw").expect("still serving");
}

#[test]
fn unload_removes_routes_and_events_and_respects_dependencies() {
    let server = Server::start(&ServerOptions::with_modules(&[
        "sasl2",
        "sasl2_fast",
        "fixture_emitter",
        "fixture_listener_a",
    ]));
    server.add_user("alice", "alice pw", None);
    let (mut alice, alice_jid) =
        XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "a");
    let (mut alice2, alice2_jid) =
        XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "b");
    let out = ok(&server, &["module", "unload", "fixture_listener_a"]);
    assert!(out.contains("unloaded fixture_listener_a"), "{out}");
    assert_eq!(get(&server, "/test/listener_a/seen").status, 404);
    get(&server, "/test/emitter/fire?event=fixture-ping&value=away");
    std::thread::sleep(Duration::from_millis(300));
    ok(&server, &["module", "load", "fixture_listener_a"]);
    get(&server, "/test/emitter/fire?event=fixture-ping&value=back");
    let seen = until("listener_a records `back`", || {
        let body = get(&server, "/test/listener_a/seen").body;
        body.contains("\"back\"").then_some(body)
    });
    assert!(
        !seen.contains("\"away\""),
        "delivered while unloaded: {seen}"
    );

    let err = refused(&server, &["module", "unload", "sasl2"]);
    assert!(
        err.contains("module `sasl2` is needed by `sasl2_fast`"),
        "{err}"
    );
    let out = ok(&server, &["module", "unload", "sasl2", "--force"]);
    assert!(out.contains("forced"), "{out}");
    let features = XmppClient::direct_tls(server.ports.direct_tls).open();
    assert!(
        !features.contains("<authentication"),
        "no sasl2: {features}"
    );
    chat(&mut alice, &mut alice2, &alice2_jid, "still here");
    chat(&mut alice2, &mut alice, &alice_jid, "me too");
    ok(&server, &["module", "load", "sasl2"]);
    try_login(&server, "alice", "alice pw").expect("logins work again");
}

#[test]
fn config_reload_and_sighup_apply_modules_enabled_or_refuse_a_bad_config() {
    let mut opts = ServerOptions::with_modules(&["sasl2"]);
    let server = Server::start(&opts);
    let dir = server.dir.path().to_path_buf();
    opts.modules.push("fixture_emitter".into());
    write_config(&dir, &opts);
    let out = ok(&server, &["config", "reload"]);
    assert!(out.contains("loaded fixture_emitter"), "{out}");
    assert_eq!(get(&server, "/test/emitter/greeting").status, 200);

    let bad = ServerOptions {
        top: "sasl2_max_retires = 3".into(),
        ..opts.clone()
    };
    write_config(&dir, &bad);
    let err = refused(&server, &["config", "reload"]);
    assert!(err.contains("tessera.toml:5: `sasl2_max_retires`"), "{err}");
    assert_eq!(get(&server, "/test/emitter/greeting").status, 200, "kept");

    let sighup = || {
        let status = Command::new("kill")
            .args(["-HUP", &server.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    };
    std::fs::write(server.config_path(), "modules_enabled = [\n").expect("write");
    let err = refused(&server, &["config", "reload"]);
    assert!(
        err.contains("tessera.toml") && err.contains("nothing was reloaded"),
        "{err}"
    );
    sighup();
    server.wait_for_log("SIGHUP: config reload refused");
    assert_eq!(get(&server, "/test/emitter/greeting").status, 200, "kept");
    write_config(&dir, &ServerOptions::with_modules(&["sasl2"]));
    sighup();
    let log = server.wait_for_log("SIGHUP: config reloaded");
    assert!(log.contains("unloaded fixture_emitter"), "{log}");
    assert_eq!(get(&server, "/test/emitter/greeting").status, 404);
}

#[test]
fn logins_never_fail_while_fast_is_reloaded_ten_times() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let server = fast_server();
    let token = obtain_token(&server);
    let stop = AtomicBool::new(false);
    let failures = std::thread::scope(|s| {
        let workers: Vec<_> = [false, true]
            .into_iter()
            .map(|fast| {
                let (server, token, stop) = (&server, &token, &stop);
                s.spawn(move || {
                    let mut failed = Vec::new();
                    let mut n = 0;
                    while n < 200 && (n < 5 || !stop.load(Ordering::Relaxed)) {
                        let result = if fast {
                            fast_login(server, token)
                                .then_some(())
                                .ok_or_else(|| "FAST login failed".to_owned())
                        } else {
                            try_login(server, "alice", "alice pw")
                        };
                        failed.extend(result.err());
                        n += 1;
                    }
                    (n, failed)
                })
            })
            .collect();
        for _ in 0..10 {
            ok(&server, &["module", "reload", "sasl2_fast"]);
        }
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect::<Vec<_>>()
    });
    for (n, failed) in failures {
        assert!(n >= 5);
        assert!(
            failed.is_empty(),
            "{} of {n} logins failed: {failed:?}",
            failed.len()
        );
    }
}

#[test]
fn retained_generations_are_bounded_and_reported() {
    let server = Server::start(&ServerOptions::with_modules(&[
        "fixture_emitter",
        "fixture_counter",
    ]));
    for _ in 1..64 {
        ok(&server, &["module", "reload", "fixture_counter"]);
    }
    let err = refused(&server, &["module", "reload", "fixture_counter"]);
    assert!(
        err.contains("module `fixture_counter`: 64 generations are mapped (limit 64;")
            && err.contains("restart the server to reclaim them"),
        "{err}"
    );
    let list = module_list(&server);
    let counters: Vec<_> = list
        .iter()
        .filter(|g| g["name"] == "fixture_counter")
        .collect();
    assert_eq!(counters.len(), 64);
    assert_eq!(
        counters.iter().filter(|g| g["state"] == "running").count(),
        1
    );
    assert!(counters
        .iter()
        .all(|g| g["mapped_bytes"].as_u64() > Some(0)));
    assert_eq!(
        get(&server, "/test/counter/count").status,
        200,
        "still serving"
    );
}

#[test]
fn a_sasl_exchange_begun_before_a_reload_completes_on_its_generation() {
    use tessera_sasl::scram::{ClientBinding, ClientSecret, ScramClient};
    use tessera_tests::sasl::{b64, inner, unb64, Sasl2Extras, SASL2};
    let server = Server::start(&ServerOptions::with_modules(&["sasl2"]));
    server.add_user("alice", "alice pw", None);
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open();
    let scram = ScramClient::new(
        tessera_sasl::Hash::Sha256,
        "alice",
        None,
        ClientBinding::NotSupported,
        "pinnednonce0123456789ABCDEF",
    )
    .expect("client");
    c.sasl2_start(
        "SCRAM-SHA-256",
        Some(&scram.client_first()),
        &Sasl2Extras::default(),
    );
    let challenge = c.read_until("</challenge>");
    // The module is replaced between the challenge and the response.
    let out = ok(&server, &["module", "reload", "sasl2"]);
    assert!(out.contains("reloaded sasl2"), "{out}");
    let (client_final, verifier) = scram
        .server_first(
            &unb64(inner(&challenge, "challenge").expect("challenge")),
            ClientSecret::Password("alice pw"),
        )
        .expect("server-first");
    c.send(&format!(
        "<response xmlns='{SASL2}'>{}</response>",
        b64(&client_final)
    ));
    let outcome = c.read_until_any(&["</success>", "</failure>"]);
    assert!(
        outcome.contains("<success"),
        "the exchange completed on the old generation: {outcome}"
    );
    verifier
        .server_final(&unb64(
            inner(&outcome, "additional-data").expect("additional-data"),
        ))
        .expect("server signature");
    // New streams are served by the new generation.
    let (_fresh, jid) = XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "new");
    assert!(jid.starts_with("alice@localhost/new/"));
}

/// The `<seen/>` element fixture_emitter adds to the stream features (empty if absent).
fn seen(features: &str) -> String {
    features
        .split_once("<seen ")
        .and_then(|(_, rest)| rest.split_once("/>"))
        .map(|(attrs, _)| attrs.to_owned())
        .unwrap_or_default()
}

fn pre_auth_features(server: &Server, from: Option<&str>) -> String {
    let mut client = XmppClient::direct_tls(server.ports.direct_tls);
    match from {
        None => client.open(),
        Some(from) => {
            client.send(
                &tessera_tests::HEADER_FOR_TESTS
                    .replace("to='localhost'", &format!("to='localhost' from='{from}'")),
            );
            client.read_until("</stream:features>")
        }
    }
}

#[test]
fn pre_auth_features_are_shared_per_stream_class_and_rebuilt_by_a_reload() {
    let mut opts = ServerOptions::with_modules(&["sasl2", "fixture_emitter"]);
    let server = Server::start(&opts);
    // Two streams naming accounts of one kind (here: names with no account) are one class;
    // the names themselves are not part of it.
    let first = pre_auth_features(&server, Some("alice@localhost"));
    let second = pre_auth_features(&server, Some("bob@localhost"));
    let seen_first = seen(&first);
    assert!(seen_first.contains("greeting='hello'"), "{first}");
    assert!(seen_first.contains("calls='1'"), "{first}");
    // The module was asked about the stream class only: no id, address or `from` to leak.
    for attr in ["stream='0'", "peer=''", "from=''", "user=''"] {
        assert!(seen_first.contains(attr), "{attr} in {first}");
    }
    assert_eq!(seen_first, seen(&second), "one stream class, asked once");
    assert!(second.contains("<authentication"), "{second}");

    // A STARTTLS stream is another class, built for itself.
    let mut starttls = XmppClient::starttls(server.ports.c2s);
    let features = starttls.open();
    assert!(seen(&features).contains("greeting='hello'"), "{features}");
    assert!(seen(&features).contains("calls='2'"), "{features}");

    // A changed option applies at the module's reload, which rebuilds the features.
    opts.top = "fixture_emitter_greeting = \"bonjour\"".into();
    write_config(server.dir.path(), &opts);
    ok(&server, &["config", "reload"]);
    ok(&server, &["module", "reload", "fixture_emitter"]);
    let after = pre_auth_features(&server, None);
    assert!(seen(&after).contains("greeting='bonjour'"), "{after}");
    assert!(
        seen(&after).contains("calls='1'"),
        "a new generation: {after}"
    );

    ok(&server, &["module", "unload", "fixture_emitter"]);
    let unloaded = pre_auth_features(&server, None);
    assert!(!unloaded.contains("<seen"), "{unloaded}");
    assert!(unloaded.contains("<authentication"), "{unloaded}");
}

#[test]
fn pre_auth_features_built_while_a_module_failed_are_not_kept() {
    let server = Server::start(&ServerOptions {
        top: "fixture_emitter_greeting = \"fail-first\"".into(),
        ..ServerOptions::with_modules(&["sasl2", "fixture_emitter"])
    });
    let first = pre_auth_features(&server, None);
    assert!(
        !first.contains("<seen"),
        "the failed part is left out: {first}"
    );
    assert!(
        first.contains("<authentication"),
        "the rest is served: {first}"
    );
    let second = pre_auth_features(&server, None);
    assert!(seen(&second).contains("calls='2'"), "built again: {second}");
    let third = pre_auth_features(&server, None);
    assert_eq!(seen(&third), seen(&second), "then kept");
}

/// A stanza module reloaded 20 times, alternating two builds, while two clients exchange
/// messages through its hook: every message arrives once, in order, numbered by the hook
/// without a gap (the per-session count lives in the host's session state, so it carries
/// across generations), and both builds took part.
#[test]
fn a_stanza_module_reloaded_under_message_load_loses_and_duplicates_nothing() {
    const MESSAGES: usize = 600;
    const RELOADS: usize = 20;
    // The workspace's own build (build id `dev`) and a second one.
    let builds = [
        lib(&tessera_tests::target_dir(), "fixture_counter"),
        counter_build("build-2"),
    ];
    let plugins = plugin_dir(&["sasl2", "fixture_counter"]);
    let server = Server::start(&ServerOptions {
        plugin_dir: Some(plugins.path().to_path_buf()),
        ..ServerOptions::with_modules(&["sasl2", "fixture_counter"])
    });
    server.add_user("alice", "alice pw", None);
    server.add_user("bob", "bob pw", None);
    let (mut alice, _) = XmppClient::login(server.ports.direct_tls, "alice", "alice pw", "a");
    let (mut bob, bob_jid) = XmppClient::login(server.ports.direct_tls, "bob", "bob pw", "b");
    let to = bob_jid.clone();
    // The second half of the messages waits until build-2 has been installed once, so that
    // both builds take part however slowly the reloads run on a loaded machine.
    let (build2_in, build2_installed) = std::sync::mpsc::channel::<()>();
    let sender = std::thread::spawn(move || {
        for i in 0..MESSAGES {
            if i == MESSAGES / 2 {
                let _ = build2_installed.recv_timeout(Duration::from_secs(60));
            }
            alice.send(&format!(
                "<message to='{to}' type='chat' id='m{i}'><body>{i}</body>\
                 <count xmlns='urn:tessera:test:count'/></message>"
            ));
            if i % 20 == 19 {
                std::thread::sleep(Duration::from_millis(15));
            }
        }
        alice
    });
    let receiver = std::thread::spawn(move || {
        let mut got = Vec::new();
        while got.len() < MESSAGES {
            let xml = bob.read_until("</message>");
            for message in xml.split("</message>").filter(|m| m.contains("<body>")) {
                got.push(message.to_owned());
            }
        }
        (bob, got)
    });
    for i in 0..RELOADS {
        replace_file(&builds[i % 2], &lib(plugins.path(), "fixture_counter"));
        let out = ok(&server, &["module", "reload", "fixture_counter"]);
        assert!(out.contains("reloaded fixture_counter"), "{out}");
        if i == 1 {
            let _ = build2_in.send(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut alice = sender.join().expect("sender");
    let (mut bob, got) = receiver.join().expect("receiver");
    assert_eq!(got.len(), MESSAGES, "nothing lost, nothing duplicated");
    let mut builds_seen = std::collections::BTreeSet::new();
    for (i, message) in got.iter().enumerate() {
        assert!(
            message.contains(&format!("<body>{i}</body>")),
            "in order: {message}"
        );
        let expected = format!("n='{}'", i + 1);
        assert!(
            message.contains(&expected),
            "message {i} numbered without a gap ({expected}): {message}"
        );
        let build = message
            .split("build='")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_default();
        builds_seen.insert(build.to_owned());
    }
    assert!(
        builds_seen.contains("dev") && builds_seen.contains("build-2"),
        "both builds handled messages: {builds_seen:?}"
    );
    assert!(!alice.is_closed() && !bob.is_closed());
    // And the stream still carries traffic both ways.
    chat(&mut alice, &mut bob, &bob_jid, "after the reloads");
}
