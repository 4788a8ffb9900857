//! mod_sasl2_fast (XEP-0484) over real TLS: obtaining a token with a password login, logging in
//! with the token alone (HT-SHA-256-NONE and -EXPR), rotation, and every refusal with its
//! condition: replayed channel binding, another user agent, another mechanism, invalidate,
//! expiry, password change.

use std::time::Duration;

use tessera_sasl::ht::{build_initial_response, responder_hmac};
use tessera_sasl::Hash;
use tessera_tests::sasl::{inner, unb64, Sasl2Extras};
use tessera_tests::{Server, ServerOptions, XmppClient};

const UA: &str = "d4565fa7-4d72-4749-b3d3-740edbf87770";
const OTHER_UA: &str = "0b6a8f4e-3c1d-4e2f-9a7b-5c6d7e8f9a0b";
const SASL_NS: &str = "urn:ietf:params:xml:ns:xmpp-sasl";

fn server(top: &str) -> Server {
    let s = Server::start(&ServerOptions {
        top: top.into(),
        ..ServerOptions::with_modules(&["sasl2", "sasl2_fast"])
    });
    s.add_user("alice", "alice pw", None);
    s
}

fn fresh(server: &Server) -> XmppClient {
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open();
    c
}

fn token_attr(xml: &str) -> Option<String> {
    let start = xml.find("<token xmlns='urn:xmpp:fast:0'")?;
    let rest = xml.get(start..)?;
    let t = rest.find("token='")? + 7;
    let end = rest.get(t..)?.find('\'')?;
    rest.get(t..t + end).map(str::to_owned)
}

/// Password login that asks for a token for `mechanism`; returns the token.
fn obtain_token(server: &Server, mechanism: &str, ua: &str) -> String {
    let mut c = fresh(server);
    let extras = Sasl2Extras {
        user_agent_id: Some(ua.into()),
        bind_tag: None,
        raw: format!("<request-token xmlns='urn:xmpp:fast:0' mechanism='{mechanism}'/>"),
    };
    let out = c.sasl2_scram(Hash::Sha256, true, "alice", "alice pw", &extras);
    assert!(out.success, "{}", out.xml);
    let token = token_attr(&out.xml).unwrap_or_else(|| panic!("no token in {}", out.xml));
    assert!(
        out.xml.contains("expiry='") && out.xml.contains("Z'"),
        "{}",
        out.xml
    );
    token
}

struct FastTry {
    success: bool,
    xml: String,
}

fn fast_login(
    c: &mut XmppClient,
    mechanism: &str,
    token: &str,
    ua: &str,
    fast_attrs: &str,
    cb: &[u8],
) -> FastTry {
    let ir = build_initial_response("alice", token.as_bytes(), cb);
    let extras = Sasl2Extras {
        user_agent_id: Some(ua.into()),
        bind_tag: Some("fast".into()),
        raw: format!("<fast xmlns='urn:xmpp:fast:0'{fast_attrs}/>"),
    };
    c.sasl2_start(mechanism, Some(&ir), &extras);
    let xml = c.read_until_any(&["</success>", "</failure>"]);
    let success = xml.contains("<success");
    if success {
        let data = unb64(inner(&xml, "additional-data").expect("additional-data"));
        assert_eq!(
            data,
            responder_hmac(token.as_bytes(), cb).to_vec(),
            "server proves it knows the token (raw -09 responder HMAC)"
        );
    }
    FastTry { success, xml }
}

fn condition(xml: &str, cond: &str) -> bool {
    xml.contains(&format!("<{cond} xmlns='{SASL_NS}'/>"))
}

#[test]
fn fast_is_advertised_with_the_bindings_this_connection_has() {
    let server = server("");
    let features = XmppClient::direct_tls(server.ports.direct_tls).open();
    let fast = inner(&features, "fast").expect("<fast> in SASL2 inline");
    for m in ["HT-SHA-256-EXPR", "HT-SHA-256-ENDP", "HT-SHA-256-NONE"] {
        assert!(
            fast.contains(&format!("<mechanism>{m}</mechanism>")),
            "{features}"
        );
    }
    let sasl2 = inner(&features, "authentication").expect("sasl2");
    assert!(
        !sasl2
            .split("<inline>")
            .next()
            .unwrap_or_default()
            .contains("HT-"),
        "HT-* only inside <fast>: {features}"
    );
    assert!(
        !inner(&features, "mechanisms")
            .unwrap_or_default()
            .contains("HT-"),
        "never in RFC 6120 SASL"
    );
}

#[test]
fn a_token_logs_in_alone_and_is_bound_to_client_mechanism_and_channel() {
    let server = server("");
    let token = obtain_token(&server, "HT-SHA-256-NONE", UA);
    let mut c = fresh(&server);
    let ok = fast_login(&mut c, "HT-SHA-256-NONE", &token, UA, "", b"");
    assert!(ok.success, "{}", ok.xml);
    assert!(
        ok.xml.contains("<bound xmlns='urn:xmpp:bind:0'"),
        "{}",
        ok.xml
    );
    let other_ua = fast_login(
        &mut fresh(&server),
        "HT-SHA-256-NONE",
        &token,
        OTHER_UA,
        "",
        b"",
    );
    assert!(
        condition(&other_ua.xml, "not-authorized"),
        "another user agent: {}",
        other_ua.xml
    );
    let mut c = fresh(&server);
    let cb = c.tls_exporter();
    let other_mech = fast_login(&mut c, "HT-SHA-256-EXPR", &token, UA, "", &cb);
    assert!(
        condition(&other_mech.xml, "not-authorized"),
        "a NONE token under EXPR: {}",
        other_mech.xml
    );
    assert!(fast_login(
        &mut fresh(&server),
        "HT-SHA-256-NONE",
        &"x".repeat(40),
        UA,
        "",
        b""
    )
    .xml
    .contains("not-authorized"));

    // EXPR: the proof covers this connection's tls-exporter value; replayed elsewhere it fails.
    let expr = obtain_token(&server, "HT-SHA-256-EXPR", OTHER_UA);
    let mut first = fresh(&server);
    let first_cb = first.tls_exporter();
    assert!(
        fast_login(
            &mut first,
            "HT-SHA-256-EXPR",
            &expr,
            OTHER_UA,
            "",
            &first_cb
        )
        .success
    );
    let replayed = fast_login(
        &mut fresh(&server),
        "HT-SHA-256-EXPR",
        &expr,
        OTHER_UA,
        "",
        &first_cb,
    );
    assert!(
        condition(&replayed.xml, "not-authorized"),
        "{}",
        replayed.xml
    );
    // After a failed token the stream stays usable for the password (xmpp.js falls back at once).
    let mut c = fresh(&server);
    assert!(!fast_login(&mut c, "HT-SHA-256-NONE", "wrong-token", UA, "", b"").success);
    assert!(
        c.sasl2_plain("alice", "alice pw", &Sasl2Extras::default())
            .success
    );
}

#[test]
fn invalidate_deletes_the_token() {
    let server = server("");
    let token = obtain_token(&server, "HT-SHA-256-NONE", UA);
    assert!(
        fast_login(
            &mut fresh(&server),
            "HT-SHA-256-NONE",
            &token,
            UA,
            " invalidate='true'",
            b""
        )
        .success
    );
    let again = fast_login(&mut fresh(&server), "HT-SHA-256-NONE", &token, UA, "", b"");
    assert!(condition(&again.xml, "not-authorized"), "{}", again.xml);
}

#[test]
fn a_password_change_revokes_tokens_and_closes_sessions() {
    let server = server("");
    let token = obtain_token(&server, "HT-SHA-256-NONE", UA);
    let mut online = fresh(&server);
    assert!(fast_login(&mut online, "HT-SHA-256-NONE", &token, UA, "", b"").success);
    online.read_until("</stream:features>");
    let out = server.cli(&["user", "passwd", "alice"], "brand new pw\n");
    assert!(out.status.success());
    assert!(online
        .read_to_close()
        .contains("<reset xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));
    let refused = fast_login(&mut fresh(&server), "HT-SHA-256-NONE", &token, UA, "", b"");
    assert!(
        !refused.success
            && (condition(&refused.xml, "credentials-expired")
                || condition(&refused.xml, "not-authorized")),
        "{}",
        refused.xml
    );
}

#[test]
fn an_expired_token_gets_credentials_expired() {
    let server = server("sasl2_fast_token_ttl = 1\nsasl2_fast_token_min_ttl = 0");
    let token = obtain_token(&server, "HT-SHA-256-NONE", UA);
    std::thread::sleep(Duration::from_millis(1300));
    let expired = fast_login(&mut fresh(&server), "HT-SHA-256-NONE", &token, UA, "", b"");
    assert!(
        condition(&expired.xml, "credentials-expired"),
        "{}",
        expired.xml
    );
}

#[test]
fn an_old_token_is_rotated_and_stays_valid_until_the_new_one_is_used() {
    let server = server("sasl2_fast_token_min_ttl = 1");
    let old = obtain_token(&server, "HT-SHA-256-NONE", UA);
    std::thread::sleep(Duration::from_millis(1200));
    let rotated = fast_login(&mut fresh(&server), "HT-SHA-256-NONE", &old, UA, "", b"");
    assert!(rotated.success, "{}", rotated.xml);
    let new = token_attr(&rotated.xml).expect("a rotated token without request-token");
    assert_ne!(new, old);
    // The old token still works until the new one has been used (a lost <success> must not
    // lock the client out); it rotates again, replacing the unused new token (XEP-0484 §5).
    let again = fast_login(&mut fresh(&server), "HT-SHA-256-NONE", &old, UA, "", b"");
    assert!(
        again.success,
        "old still valid before the new one is used: {}",
        again.xml
    );
    let newer = token_attr(&again.xml).expect("rotated again");
    assert!(
        !fast_login(&mut fresh(&server), "HT-SHA-256-NONE", &new, UA, "", b"").success,
        "the unused rotated token was replaced"
    );
    assert!(fast_login(&mut fresh(&server), "HT-SHA-256-NONE", &newer, UA, "", b"").success);
    let stale = fast_login(&mut fresh(&server), "HT-SHA-256-NONE", &old, UA, "", b"");
    assert!(
        !stale.success,
        "using the new token retired the old one: {}",
        stale.xml
    );
}

#[test]
fn failed_token_attempts_count_toward_the_password_rate_limit() {
    let server = server("sasl2_max_failures_per_user = 2");
    for _ in 0..2 {
        assert!(!fast_login(&mut fresh(&server), "HT-SHA-256-NONE", "guess", UA, "", b"").success);
    }
    let mut c = fresh(&server);
    let limited = c.sasl2_plain("alice", "alice pw", &Sasl2Extras::default());
    assert!(
        condition(&limited.xml, "temporary-auth-failure"),
        "{}",
        limited.xml
    );
}

#[test]
fn min_ttl_not_below_ttl_is_a_config_error_naming_both_keys() {
    tessera_tests::ensure_built();
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = ServerOptions {
        top: "sasl2_fast_token_ttl = 3600\nsasl2_fast_token_min_ttl = 3600".into(),
        ..ServerOptions::with_modules(&["sasl2", "sasl2_fast"])
    };
    let config = tessera_tests::write_config(dir.path(), &opts);
    let run = tessera_tests::run_cli(&config, &["run"], "");
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(
        err.contains("sasl2_fast_token_min_ttl") && err.contains("sasl2_fast_token_ttl"),
        "{err}"
    );
}

/// The value of one series of a Prometheus exposition (0 when absent).
fn series(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn scrape(server: &Server) -> String {
    let reply = tessera_tests::https(server.ports.http, "GET", "/metrics", &[], b"");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    reply.body
}

/// `/metrics` (issue 17): scraped before and after a password login that asks for a token, a
/// FAST login, a failed login and a module reload, its counters move by exactly those.
#[test]
fn metrics_count_logins_by_mechanism_and_outcome_and_module_reloads() {
    let server = server("");
    let before = scrape(&server);
    let token = obtain_token(&server, "HT-SHA-256-NONE", UA);
    let fast = fast_login(&mut fresh(&server), "HT-SHA-256-NONE", &token, UA, "", b"");
    assert!(fast.success, "{}", fast.xml);
    let forged = "secret-token:fast-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let wrong = fast_login(&mut fresh(&server), "HT-SHA-256-NONE", forged, UA, "", b"");
    assert!(!wrong.success, "{}", wrong.xml);
    let failed = fresh(&server).sasl2_scram(
        Hash::Sha256,
        false,
        "alice",
        "not the password",
        &Sasl2Extras::default(),
    );
    assert!(!failed.success);
    server.cli_ok(&["module", "reload", "sasl2_fast"]);
    let after = scrape(&server);
    let moved = |name: &str| series(&after, name) - series(&before, name);
    let context = format!("--- before ---\n{before}\n--- after ---\n{after}");
    for (name, by) in [
        (
            "tessera_logins_total{mechanism=\"SCRAM-SHA-256-PLUS\",outcome=\"success\"}",
            1.0,
        ),
        (
            "tessera_logins_total{mechanism=\"HT-SHA-256-NONE\",outcome=\"success\"}",
            1.0,
        ),
        (
            "tessera_logins_total{mechanism=\"SCRAM-SHA-256\",outcome=\"not-authorized\"}",
            1.0,
        ),
        (
            "tessera_module_operations_total{module=\"sasl2_fast\",operation=\"reload\",result=\"ok\"}",
            1.0,
        ),
        (
            "tessera_logins_total{mechanism=\"HT-SHA-256-NONE\",outcome=\"not-authorized\"}",
            1.0,
        ),
        ("tessera_connections_total{transport=\"direct_tls\"}", 4.0),
        (
            "tessera_events_total{event=\"authentication-failure\"}",
            2.0,
        ),
        // mod_sasl2_fast's own counters: one token issued, one used, one forged refused.
        ("tessera_mod_sasl2_fast_tokens_total{event=\"issued\"}", 1.0),
        ("tessera_mod_sasl2_fast_tokens_total{event=\"used\"}", 1.0),
        ("tessera_mod_sasl2_fast_tokens_total{event=\"rejected\"}", 1.0),
        ("tessera_events_total{event=\"authentication-success\"}", 2.0),
    ] {
        assert_eq!(moved(name), by, "{name}\n{context}");
    }
    assert!(
        series(&after, "tessera_module_generations{state=\"draining\"}")
            + series(&after, "tessera_module_generations{state=\"retired\"}")
            >= 1.0,
        "{context}"
    );
    assert!(after.contains("# TYPE tessera_sessions gauge"), "{context}");
    // A path that is not one: a plain 404, not the exposition.
    let other = tessera_tests::https(server.ports.http, "GET", "/metrics/x", &[], b"");
    assert_eq!(other.status, 404);
}
