//! mod_sasl2 over real TLS: every mechanism succeeds, every bad input gets its exact
//! `<failure>` and the stream behaves as XEP-0388 says; no account enumeration; rate limits.

use std::time::Instant;

use tessera_sasl::scram::{ClientBinding, ClientSecret, ScramClient};
use tessera_sasl::{CbType, Hash};
use tessera_tests::sasl::{b64, inner, unb64, Sasl2Extras, SASL2};
use tessera_tests::{Server, ServerOptions, XmppClient};

const SASL_NS: &str = "urn:ietf:params:xml:ns:xmpp-sasl";

fn server_with(top: &str) -> Server {
    let s = Server::start(&ServerOptions {
        top: top.into(),
        ..ServerOptions::with_modules(&["sasl2"])
    });
    s.add_user("alice", "correct horse", None);
    s
}

fn fresh(server: &Server) -> XmppClient {
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open();
    c
}

/// The server-first message a SASL2 SCRAM-SHA-256 exchange for `user` gets on a fresh stream.
fn server_first_for(server: &Server, user: &str) -> String {
    let mut c = fresh(server);
    let scram = scram_client(Hash::Sha256, user, ClientBinding::NotSupported);
    c.sasl2_start(
        "SCRAM-SHA-256",
        Some(&scram.client_first()),
        &Sasl2Extras::default(),
    );
    let challenge = c.read_until("</challenge>");
    String::from_utf8(unb64(inner(&challenge, "challenge").expect("challenge"))).expect("utf-8")
}

/// A SCRAM client of `user` with a fixed client nonce.
fn scram_client(hash: Hash, user: &str, binding: ClientBinding) -> ScramClient {
    ScramClient::new(hash, user, None, binding, "nonceABCDEFGHIJKLMNOPQRSTUV").expect("client")
}

fn condition(xml: &str, cond: &str) -> bool {
    xml.contains(&format!("<{cond} xmlns='{SASL_NS}'/>"))
}

#[test]
fn every_mechanism_succeeds_and_the_server_signature_verifies() {
    let server = server_with("");
    for (hash, plus) in [
        (Hash::Sha256, true),
        (Hash::Sha256, false),
        (Hash::Sha1, true),
        (Hash::Sha1, false),
    ] {
        let mut c = fresh(&server);
        let out = c.sasl2_scram(
            hash,
            plus,
            "alice",
            "correct horse",
            &Sasl2Extras::bind("t"),
        );
        assert!(out.success, "{}: {}", hash.scram_mechanism(plus), out.xml);
        assert!(
            out.xml.contains("<bound xmlns='urn:xmpp:bind:0'"),
            "{}",
            out.xml
        );
        c.read_until("</stream:features>");
    }
    // TLS 1.2 (with Extended Master Secret) also has tls-exporter.
    let mut c = XmppClient::direct_tls_with(server.ports.direct_tls, true);
    c.open();
    assert!(
        c.sasl2_scram(
            Hash::Sha256,
            true,
            "alice",
            "correct horse",
            &Sasl2Extras::default()
        )
        .success
    );
    let mut c = fresh(&server);
    let out = c.sasl2_plain("alice", "correct horse", &Sasl2Extras::default());
    assert!(
        out.success && out.jid().as_deref() == Some("alice@localhost"),
        "no bind → bare JID: {}",
        out.xml
    );
    let features = c.read_until("</stream:features>");
    assert!(
        features.contains("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"),
        "RFC 6120 bind offered after SASL2 without Bind 2: {features}"
    );
}

#[test]
fn unknown_mechanism_gets_invalid_mechanism_and_the_stream_stays_usable() {
    let server = server_with("");
    let mut c = fresh(&server);
    c.sasl2_start("X-NOPE", Some(b"x"), &Sasl2Extras::default());
    let failure = c.read_until("</failure>");
    assert!(condition(&failure, "invalid-mechanism"), "{failure}");
    assert!(
        c.sasl2_plain("alice", "correct horse", &Sasl2Extras::default())
            .success,
        "retry on the same stream"
    );
}

#[test]
fn malformed_base64_gets_incorrect_encoding() {
    let server = server_with("");
    let mut c = fresh(&server);
    c.send(&format!("<authenticate xmlns='{SASL2}' mechanism='PLAIN'><initial-response>@@not base64@@</initial-response></authenticate>"));
    assert!(condition(&c.read_until("</failure>"), "incorrect-encoding"));
    // Whitespace inside base64 is tolerated (the XEP's own examples wrap lines).
    let ir = b64(b"\0alice\0correct horse");
    let (a, b) = ir.split_at(8);
    c.send(&format!("<authenticate xmlns='{SASL2}' mechanism='PLAIN'><initial-response>{a}\n  {b}</initial-response></authenticate>"));
    assert!(c
        .read_until_any(&["</success>", "</failure>"])
        .contains("<success"));
}

#[test]
fn wrong_scram_proof_gets_not_authorized_with_the_scram_error() {
    let server = server_with("");
    let mut c = fresh(&server);
    let out = c.sasl2_scram(
        Hash::Sha256,
        false,
        "alice",
        "wrong horse",
        &Sasl2Extras::default(),
    );
    assert!(
        !out.success && condition(&out.xml, "not-authorized"),
        "{}",
        out.xml
    );
    assert!(
        out.xml.contains("invalid-proof"),
        "the e= value is in <text>: {}",
        out.xml
    );
}

/// A SCRAM-SHA-256-PLUS client of alice with tls-exporter data `cb`.
fn alice_sha256_plus(cb: Vec<u8>) -> ScramClient {
    scram_client(
        Hash::Sha256,
        "alice",
        ClientBinding::Bound {
            cb_type: CbType::TlsExporter,
            data: cb,
        },
    )
}

fn scram_plus_with_cb(c: &mut XmppClient, cb: Vec<u8>) -> String {
    let scram = alice_sha256_plus(cb);
    c.sasl2_start(
        "SCRAM-SHA-256-PLUS",
        Some(&scram.client_first()),
        &Sasl2Extras::default(),
    );
    let challenge = c.read_until("</challenge>");
    let (fin, _) = scram
        .server_first(
            &unb64(inner(&challenge, "challenge").expect("challenge")),
            ClientSecret::Password("correct horse"),
        )
        .expect("server-first");
    c.send(&format!(
        "<response xmlns='{SASL2}' mechanism='SCRAM-SHA-256-PLUS'>{}</response>",
        b64(&fin)
    ));
    c.read_until("</failure>")
}

#[test]
fn wrong_channel_binding_data_is_refused() {
    let server = server_with("");
    let mut c = fresh(&server);
    // The exporter value of ANOTHER connection: what a man in the middle would relay.
    let other = XmppClient::direct_tls(server.ports.direct_tls).tls_exporter();
    let failure = scram_plus_with_cb(&mut c, other);
    assert!(
        condition(&failure, "not-authorized") && failure.contains("channel-bindings-dont-match"),
        "{failure}"
    );
}

#[test]
fn a_downgraded_client_flag_y_is_detected() {
    let server = server_with("");
    let mut c = fresh(&server);
    let scram = scram_client(Hash::Sha256, "alice", ClientBinding::NotUsed);
    c.sasl2_start(
        "SCRAM-SHA-256",
        Some(&scram.client_first()),
        &Sasl2Extras::default(),
    );
    let failure = c.read_until("</failure>");
    assert!(
        failure.contains("server-does-support-channel-binding"),
        "{failure}"
    );
}

#[test]
fn authenticate_after_success_is_a_policy_violation() {
    let server = server_with("");
    let mut c = fresh(&server);
    assert!(
        c.sasl2_plain("alice", "correct horse", &Sasl2Extras::bind("x"))
            .success
    );
    c.read_until("</stream:features>");
    c.sasl2_start(
        "PLAIN",
        Some(b"\0alice\0correct horse"),
        &Sasl2Extras::default(),
    );
    let closed = c.read_to_close();
    assert!(
        closed.contains("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{closed}"
    );
}

#[test]
fn abort_gets_aborted() {
    let server = server_with("");
    let mut c = fresh(&server);
    let scram = scram_client(Hash::Sha1, "alice", ClientBinding::NotSupported);
    c.sasl2_start(
        "SCRAM-SHA-1",
        Some(&scram.client_first()),
        &Sasl2Extras::default(),
    );
    c.read_until("</challenge>");
    c.send(&format!("<abort xmlns='{SASL2}'/>"));
    assert!(condition(&c.read_until("</failure>"), "aborted"));
}

#[test]
fn unknown_accounts_and_wrong_passwords_look_the_same() {
    let server = server_with("sasl2_max_failures_per_ip = 1000");
    let attempt = |user: &str| -> (String, std::time::Duration) {
        let mut c = fresh(&server);
        let started = Instant::now();
        let out = c.sasl2_scram(
            Hash::Sha256,
            false,
            user,
            "wrong horse",
            &Sasl2Extras::default(),
        );
        (out.xml, started.elapsed())
    };
    let (known, _) = attempt("alice");
    let (unknown, _) = attempt("nobody");
    assert_eq!(known, unknown, "identical failure for an unknown account");
    // The salt and iteration count offered to an unknown account are stable (not random per try).
    let salt_of = |user: &str| -> String {
        server_first_for(&server, user)
            .split(',')
            .filter(|p| p.starts_with("s=") || p.starts_with("i="))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(salt_of("nobody"), salt_of("nobody"));
    assert_ne!(salt_of("nobody"), salt_of("alice"));
    // Timing: medians of a few tries each stay within a small factor (no early exit). The tries
    // alternate, so a burst of load on the machine falls on both series alike.
    let (mut known_us, mut unknown_us) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        known_us.push(attempt("alice").1.as_micros());
        unknown_us.push(attempt("nobody").1.as_micros());
    }
    let median = |mut v: Vec<u128>| -> u128 {
        v.sort_unstable();
        v[3]
    };
    let (k, u) = (median(known_us), median(unknown_us));
    assert!(
        k * 3 > u && u * 3 > k,
        "timing differs too much: known {k} µs, unknown {u} µs"
    );
}

#[test]
fn repeated_failures_are_rate_limited_with_a_retry_hint_and_retries_are_bounded() {
    let server = server_with("sasl2_max_failures_per_user = 3\nsasl2_max_retries = 10");
    for _ in 0..3 {
        let mut c = fresh(&server);
        assert!(
            !c.sasl2_plain("alice", "nope", &Sasl2Extras::default())
                .success
        );
    }
    let mut c = fresh(&server);
    let limited = c.sasl2_plain("alice", "correct horse", &Sasl2Extras::default());
    assert!(
        !limited.success && condition(&limited.xml, "temporary-auth-failure"),
        "{}",
        limited.xml
    );
    assert!(limited.xml.contains("retry in"), "{}", limited.xml);
    // The operator sees the refusal in /metrics (counted by mod_sasl2).
    let metrics = tessera_tests::https(server.ports.http, "GET", "/metrics", &[], b"").body;
    assert!(
        metrics
            .lines()
            .any(|l| l == "tessera_mod_sasl2_rate_limited_total{scope=\"account\"} 1"),
        "{metrics}"
    );
    // Same answer for an unknown account under attack.
    let server = server_with("sasl2_max_retries = 2");
    let mut c = fresh(&server);
    assert!(
        !c.sasl2_plain("alice", "bad1", &Sasl2Extras::default())
            .success
    );
    c.sasl2_start("PLAIN", Some(b"\0alice\0bad2"), &Sasl2Extras::default());
    let closed = c.read_to_close();
    assert!(
        condition(&closed, "not-authorized")
            && closed.contains("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{closed}"
    );
}

#[test]
fn legacy_profile_reports_failures_in_its_own_namespace() {
    let server = server_with("");
    let mut c = fresh(&server);
    c.send(&format!(
        "<auth xmlns='{SASL_NS}' mechanism='PLAIN'>{}</auth>",
        b64(b"\0alice\0wrong")
    ));
    let failure = c.read_until("</failure>");
    assert!(
        failure.contains(&format!("<failure xmlns='{SASL_NS}'><not-authorized/>"))
            || condition(&failure, "not-authorized"),
        "{failure}"
    );
    c.send(&format!(
        "<auth xmlns='{SASL_NS}' mechanism='HT-SHA-256-NONE'>AAAA</auth>"
    ));
    assert!(
        c.read_until("</failure>").contains("invalid-mechanism"),
        "HT-* is never served over RFC 6120 SASL"
    );
    c.send(&format!(
        "<auth xmlns='{SASL_NS}' mechanism='PLAIN'>{}</auth>",
        b64(b"\0alice\0correct horse")
    ));
    assert!(c
        .read_until_any(&["</success>", "<success"])
        .contains("success"));
}

/// `scram_iteration_count` applies to passwords set under it, and an unknown account shows the
/// same count, so the `i=` of server-first tells nobody whether an account exists; a login
/// with the new verifiers works.
#[test]
fn the_configured_iteration_count_is_used_for_new_passwords_and_unknown_accounts_alike() {
    let server = server_with("scram_iteration_count = 4096\n");
    server.add_user("bob", "bob's password", None);
    let iterations_for = |user: &str| {
        server_first_for(&server, user)
            .split(',')
            .find_map(|a| a.strip_prefix("i="))
            .expect("i=")
            .to_owned()
    };
    assert_eq!(iterations_for("bob"), "4096");
    assert_eq!(
        iterations_for("nobody-at-all"),
        "4096",
        "an unknown account looks the same"
    );
    assert!(
        fresh(&server)
            .sasl2_plain("bob", "bob's password", &Sasl2Extras::bind("x"))
            .success
    );
}

/// The `<mechanism/>`s of one list in `features` (the text inside `<mechanisms>` or
/// `<authentication>`), and the advertised channel-binding types.
fn offered(features: &str, sasl2: bool) -> (Vec<String>, Vec<String>) {
    let list = inner(
        features,
        if sasl2 {
            "authentication"
        } else {
            "mechanisms"
        },
    )
    .unwrap_or("");
    let list = list.split("<inline").next().unwrap_or(list);
    let mechanisms = list
        .split("<mechanism>")
        .skip(1)
        .filter_map(|m| m.split("</mechanism>").next())
        .map(str::to_owned)
        .collect();
    let types = features
        .split("<channel-binding type='")
        .skip(1)
        .filter_map(|t| t.split('\'').next())
        .map(str::to_owned)
        .collect();
    (mechanisms, types)
}

/// XEP-0474 with the project's own client, both profiles, on a server whose two lists differ
/// (`password_reset_legacy_sasl = false`: PASSWORD-RESET only in SASL2): each login checks
/// `h=` against the list of its own profile and succeeds; checked against the other
/// profile's list, the client refuses before it sends a proof.
#[test]
fn the_downgrade_hash_is_of_the_profile_in_use_for_the_projects_own_client() {
    let server = Server::start(&ServerOptions {
        top: "password_reset_legacy_sasl = false\n".into(),
        http: "public_url = \"https://localhost\"\n".into(),
        ..ServerOptions::with_modules(&["sasl2", "password_reset"])
    });
    server.add_user("alice", "correct horse", None);
    let login = |sasl2: bool, hashed_profile: bool| {
        let mut c = XmppClient::direct_tls(server.ports.direct_tls);
        let features = c.open();
        let (mechanisms, types) = offered(&features, hashed_profile);
        let m: Vec<&str> = mechanisms.iter().map(String::as_str).collect();
        let t: Vec<&str> = types.iter().map(String::as_str).collect();
        let expected = tessera_sasl::ssdp::downgrade_hash(Hash::Sha256, &m, &t);
        let scram = scram_client(Hash::Sha256, "alice", ClientBinding::NotSupported)
            .expect_downgrade_hash(expected);
        let ns = if sasl2 { SASL2 } else { SASL_NS };
        if sasl2 {
            c.sasl2_start(
                "SCRAM-SHA-256",
                Some(&scram.client_first()),
                &Sasl2Extras::default(),
            );
        } else {
            c.send(&format!(
                "<auth xmlns='{SASL_NS}' mechanism='SCRAM-SHA-256'>{}</auth>",
                b64(&scram.client_first())
            ));
        }
        let challenge = c.read_until("</challenge>");
        let server_first = unb64(inner(&challenge, "challenge").expect("challenge"));
        let (client_final, verifier) =
            scram.server_first(&server_first, ClientSecret::Password("correct horse"))?;
        c.send(&format!(
            "<response xmlns='{ns}'>{}</response>",
            b64(&client_final)
        ));
        let success = c.read_until("</success>");
        let data =
            inner(&success, if sasl2 { "additional-data" } else { "success" }).expect("data");
        verifier.server_final(&unb64(data))
    };
    let (sasl2_list, _) = offered(
        &XmppClient::direct_tls(server.ports.direct_tls).open(),
        true,
    );
    assert!(
        sasl2_list.iter().any(|m| m == "PASSWORD-RESET"),
        "{sasl2_list:?}"
    );
    login(true, true).expect("SASL2, hashed as SASL2");
    login(false, false).expect("RFC 6120, hashed as RFC 6120");
    for (sasl2, other) in [(true, false), (false, true)] {
        let err = login(sasl2, other).expect_err("the other profile's list does not match");
        assert!(
            matches!(
                err,
                tessera_sasl::scram::ScramError::DowngradeHashMismatch { .. }
            ),
            "{err}"
        );
    }
}

/// A SCRAM-SHA-256-PLUS login of alice asking for XEP-0480's `UPGR-SCRAM-SHA-512`, up to the
/// `<continue/>`: checks the server signature it carries.
fn sha256_plus_asking_for_the_upgrade(c: &mut XmppClient, password: &str) -> String {
    let scram = alice_sha256_plus(c.tls_exporter());
    c.sasl2_start(
        "SCRAM-SHA-256-PLUS",
        Some(&scram.client_first()),
        &Sasl2Extras {
            raw: "<upgrade xmlns='urn:xmpp:sasl:upgrade:0'>UPGR-SCRAM-SHA-512</upgrade>".into(),
            ..Sasl2Extras::default()
        },
    );
    let challenge = c.read_until("</challenge>");
    let (client_final, verifier) = scram
        .server_first(
            &unb64(inner(&challenge, "challenge").expect("challenge")),
            ClientSecret::Password(password),
        )
        .expect("server-first");
    c.send(&format!(
        "<response xmlns='{SASL2}'>{}</response>",
        b64(&client_final)
    ));
    let cont = c.read_until_any(&["</continue>", "</failure>", "</success>"]);
    assert!(
        cont.contains("<tasks><task>UPGR-SCRAM-SHA-512</task></tasks></continue>"),
        "{cont}"
    );
    verifier
        .server_final(&unb64(
            inner(&cont, "additional-data").expect("additional-data"),
        ))
        .expect("the <continue/> carries the server signature");
    c.send(&format!(
        "<next xmlns='{SASL2}' task='UPGR-SCRAM-SHA-512'/>"
    ));
    c.read_until_any(&["</task-data>", "</failure>"])
}

/// The salt and iteration count of a `<task-data><salt iterations='…'>…</salt></task-data>`.
fn upgrade_salt(task_data: &str) -> (Vec<u8>, u32) {
    let iterations = task_data
        .split("iterations='")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no iteration count: {task_data}"));
    (unb64(inner(task_data, "salt").expect("salt")), iterations)
}

fn hash_answer(salted: &[u8]) -> String {
    format!(
        "<task-data xmlns='{SASL2}'><hash xmlns='urn:xmpp:scram-upgrade:0'>{}</hash></task-data>",
        b64(salted)
    )
}

/// XEP-0480 with the project's own client: an account whose password predates SHA-512
/// verifiers is not offered SCRAM-SHA-512; a password login that asks runs the task; bad
/// answers fail precisely and store nothing; a good one stores the verifier with the server's
/// iteration count, after which SCRAM-SHA-512(-PLUS) is offered to that account and works.
#[test]
fn an_old_account_gets_its_sha512_verifier_through_the_upgrade_task_and_then_uses_it() {
    let server = Server::start(&ServerOptions::with_modules(&["sasl2", "scram_upgrade"]));
    server.add_user("alice", "correct horse", None);
    assert_eq!(
        server.sha512_iterations("alice"),
        Some(10_000),
        "new accounts have one"
    );
    server.forget_sha512_verifier("alice");

    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    let features = c.open_from("alice@localhost");
    assert!(!features.contains("<mechanism>SCRAM-SHA-512"), "{features}");
    assert!(
        features.contains("<upgrade xmlns='urn:xmpp:sasl:upgrade:0'>UPGR-SCRAM-SHA-512</upgrade>"),
        "{features}"
    );
    // An unknown name is offered SHA-512 like an upgraded account (no enumeration of names).
    let mut ghost = XmppClient::direct_tls(server.ports.direct_tls);
    let ghost_features = ghost.open_from("ghost@localhost");
    assert!(
        ghost_features.contains("<mechanism>SCRAM-SHA-512-PLUS</mechanism>"),
        "{ghost_features}\n{}",
        server.logs()
    );

    // Bad answers, each on its own login: precise failures, nothing stored, server alive.
    let failure = |condition: &str, text: &str| {
        format!(
            "<failure xmlns='urn:xmpp:sasl:2'><{condition} xmlns='{SASL_NS}'/>\
             <text xml:lang='en'>{text}</text></failure>"
        )
    };
    /// A client's answer to `<salt/>`: salt and iteration count in, `<task-data/>` out.
    type Answer<'a> = &'a dyn Fn(&[u8], u32) -> String;
    let bad: [(Answer, String); 3] = [
        (
            // The salt sent back instead of a hash.
            &|salt, i| {
                format!(
                    "<task-data xmlns='{SASL2}'><salt xmlns='urn:xmpp:scram-upgrade:0' \
                     iterations='{i}'>{}</salt></task-data>",
                    b64(salt)
                )
            },
            failure(
                "malformed-request",
                "Expected &lt;hash xmlns='urn:xmpp:scram-upgrade:0'/&gt;",
            ),
        ),
        (
            &|_, _| {
                format!("<task-data xmlns='{SASL2}'><hash xmlns='urn:xmpp:scram-upgrade:0'>**</hash></task-data>")
            },
            failure("incorrect-encoding", "The hash is not base64"),
        ),
        (
            // A SHA-256 SaltedPassword: a proof of the wrong length.
            &|salt, i| {
                hash_answer(
                    &tessera_sasl::scram::salted_password(Hash::Sha256, "correct horse", salt, i)
                        .expect("Hi"),
                )
            },
            failure(
                "malformed-request",
                "a SCRAM-SHA-512 SaltedPassword is 64 bytes, not 32",
            ),
        ),
    ];
    for (answer, expected) in bad {
        let mut c = XmppClient::direct_tls(server.ports.direct_tls);
        c.open_from("alice@localhost");
        let (salt, iterations) =
            upgrade_salt(&sha256_plus_asking_for_the_upgrade(&mut c, "correct horse"));
        c.send(&answer(&salt, iterations));
        let outcome = c.read_until("</failure>");
        assert!(
            outcome.ends_with(&expected),
            "{outcome}\nexpected {expected}"
        );
        assert_eq!(server.sha512_iterations("alice"), None);
    }

    // The real thing.
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open_from("alice@localhost");
    let task_data = sha256_plus_asking_for_the_upgrade(&mut c, "correct horse");
    let (salt, iterations) = upgrade_salt(&task_data);
    assert_eq!((salt.len(), iterations), (16, 10_000), "{task_data}");
    let salted =
        tessera_sasl::scram::salted_password(Hash::Sha512, "correct horse", &salt, iterations)
            .expect("Hi");
    c.send(&hash_answer(&salted));
    let success = c.read_until_any(&["</success>", "</failure>"]);
    assert!(
        success.contains("<authorization-identifier>alice@localhost</authorization-identifier>"),
        "{success}"
    );
    assert_eq!(server.sha512_iterations("alice"), Some(10_000));
    assert!(
        server.logs().contains("SCRAM-SHA-512 verifier added"),
        "{}",
        server.logs()
    );

    // Now offered to alice, and both SHA-512 mechanisms log in (server signatures verified).
    for plus in [true, false] {
        let mut c = XmppClient::direct_tls(server.ports.direct_tls);
        let features = c.open_from("alice@localhost");
        assert!(
            features.contains("<mechanism>SCRAM-SHA-512-PLUS</mechanism>"),
            "{features}"
        );
        let out = c.sasl2_scram(
            Hash::Sha512,
            plus,
            "alice",
            "correct horse",
            &Sasl2Extras::default(),
        );
        assert!(out.success, "{}", out.xml);
    }
    // A login that asks again goes straight to <success/>.
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open_from("alice@localhost");
    let out = c.sasl2_plain(
        "alice",
        "correct horse",
        &Sasl2Extras {
            raw: "<upgrade xmlns='urn:xmpp:sasl:upgrade:0'>UPGR-SCRAM-SHA-512</upgrade>".into(),
            ..Sasl2Extras::default()
        },
    );
    assert!(out.success, "{}", out.xml);
}
