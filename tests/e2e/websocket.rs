//! XMPP over WebSocket (RFC 7395) on the HTTPS listener, with a raw client: the handshake and
//! its refusals, `<open/>`/`<close/>` framing, logins through the same modules as TCP (SASL2
//! with channel binding where it is real, Bind 2, legacy SASL with a stream restart), messages
//! with a TCP client, the precise close for each framing violation, XEP-0156 discovery.

use tessera_sasl::Hash;
use tessera_tests::sasl::Sasl2Extras;
use tessera_tests::ws::{BINARY, CONTINUATION, PING, TEXT};
use tessera_tests::{https, Server, ServerOptions, XmppClient};

const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
const STREAMS: &str = "urn:ietf:params:xml:ns:xmpp-streams";

fn server(c2s: &str, tables: &str) -> Server {
    let s = Server::start(&ServerOptions {
        c2s: c2s.into(),
        tables: tables.into(),
        ..ServerOptions::with_modules(&["sasl2", "sasl2_fast", "ping"])
    });
    s.add_user("alice", "correct horse", None);
    s.add_user("bob", "battery staple", None);
    s
}

fn ws(server: &Server) -> XmppClient {
    XmppClient::websocket(server.ports.http, &[]).expect("101 Switching Protocols")
}

/// bob, logged in over direct TLS with SASL2 and Bind 2: the TCP end of a conversation.
fn bob_over_tcp(server: &Server) -> (XmppClient, String) {
    let mut bob = XmppClient::direct_tls(server.ports.direct_tls);
    bob.open();
    let out = bob.sasl2_scram(
        Hash::Sha256,
        true,
        "bob",
        "battery staple",
        &Sasl2Extras::bind("tcp"),
    );
    let jid = out.jid().expect("bob bound");
    (bob, jid)
}

/// A WebSocket login still works: whatever the test did before did not hurt the server.
fn a_fresh_login_works(server: &Server) {
    let mut c = ws(server);
    c.open();
    let out = c.sasl2_scram(
        Hash::Sha256,
        true,
        "alice",
        "correct horse",
        &Sasl2Extras::bind("after"),
    );
    assert!(out.success, "{}", out.xml);
}

#[test]
fn sasl2_with_channel_binding_bind2_and_messages_with_a_tcp_client() {
    let server = server("", "");
    let mut alice = ws(&server);
    let features = alice.open();
    let messages = alice.ws_messages();
    assert!(
        messages[0].starts_with(&format!("<open xmlns='{FRAMING}' id='"))
            && messages[0].contains(" from='localhost'")
            && messages[0].contains(" version='1.0'")
            && messages[0].ends_with("/>"),
        "{messages:?}"
    );
    assert!(
        messages[1]
            .starts_with("<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"),
        "each element is a message of its own, its namespace declared: {messages:?}"
    );
    // Our TLS ends the client's: the binding is real, so -PLUS is offered.
    assert!(features.contains("SCRAM-SHA-256-PLUS"), "{features}");
    assert!(features.contains("tls-exporter"), "{features}");
    let out = alice.sasl2_scram(
        Hash::Sha256,
        true,
        "alice",
        "correct horse",
        &Sasl2Extras::bind("web"),
    );
    assert!(out.success, "{}", out.xml);
    let alice_jid = out.jid().expect("jid");
    assert!(
        out.xml.contains("<bound xmlns='urn:xmpp:bind:0'"),
        "{}",
        out.xml
    );

    let (mut bob, bob_jid) = bob_over_tcp(&server);

    bob.send(&format!(
        "<message to='{alice_jid}' type='chat' id='m1'><body>hello over ws</body></message>"
    ));
    alice.read_until("hello over ws</body></message>");
    let delivered = alice.ws_messages().last().cloned().unwrap_or_default();
    assert!(
        delivered.starts_with("<message xmlns='jabber:client' ")
            && delivered.contains(&format!("from='{bob_jid}'")),
        "{delivered}"
    );
    // After authentication a message may be as large as a stanza (here 20 KiB, over the
    // 16 KiB allowed before it).
    let big = "x".repeat(20 * 1024);
    alice.send(&format!(
        "<message xmlns='jabber:client' to='{bob_jid}' type='chat' id='m2'><body>{big}</body></message>"
    ));
    let got = bob.read_until("</message>");
    assert!(got.contains(&big) && got.contains(&format!("from='{alice_jid}'")));
    // /metrics tells the transports apart.
    let metrics = https(server.ports.http, "GET", "/metrics", &[], b"").body;
    for line in [
        "tessera_open_sessions_by_transport{transport=\"websocket\"} 1",
        "tessera_open_sessions_by_transport{transport=\"direct_tls\"} 1",
        "tessera_open_connections_by_transport{transport=\"websocket\"} 1",
        "tessera_stanzas_routed_total{kind=\"message\",origin=\"client\"} 2",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }
    // A ping answered, then the client closes: `<close/>` and a normal close (RFC 7395 §3.6).
    alice.send("<iq xmlns='jabber:client' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
    alice.read_iq("p1");
    alice.send(&format!("<close xmlns='{FRAMING}'/>"));
    alice.read_to_close();
    assert_eq!(
        alice.ws_messages().last().map(String::as_str),
        Some(format!("<close xmlns='{FRAMING}'/>").as_str())
    );
    assert_eq!(alice.ws_close().map(|c| c.0), Some(1000));

    let metrics = https(server.ports.http, "GET", "/metrics", &[], b"").body;
    assert!(
        metrics.contains("tessera_connections_total{transport=\"websocket\"} 1"),
        "{metrics}"
    );
}

#[test]
fn legacy_sasl_restarts_the_stream_with_a_new_open() {
    let server = server("", "");
    let mut c = ws(&server);
    c.open();
    let jid = c.legacy_login("alice", "correct horse", "legacy");
    assert_eq!(jid, "alice@localhost/legacy");
    let opens = c
        .ws_messages()
        .iter()
        .filter(|m| m.starts_with(&format!("<open xmlns='{FRAMING}'")))
        .count();
    assert_eq!(opens, 2, "one <open/> per stream: {:?}", c.ws_messages());
}

/// Behind a proxy that ends TLS the operator turns channel binding off; a request header
/// cannot (anyone in the middle could add one to strip the binding that would catch them).
#[test]
fn channel_binding_is_turned_off_by_the_operator_only() {
    let server = server("", "");
    let mut c =
        XmppClient::websocket(server.ports.http, &[("X-Forwarded-For", "192.0.2.7")]).expect("101");
    assert!(c.open().contains("SCRAM-SHA-256-PLUS"));
    let server = self::server("", "[websocket]\nchannel_binding = false\n");
    let mut c = ws(&server);
    let features = c.open();
    assert!(features.contains("SCRAM-SHA-256<"), "{features}");
    assert!(!features.contains("-PLUS"), "{features}");
    let out = c.sasl2_scram(
        Hash::Sha256,
        false,
        "alice",
        "correct horse",
        &Sasl2Extras::default(),
    );
    assert!(out.success, "{}", out.xml);
}

#[test]
fn handshakes_without_xmpp_or_from_another_origin_are_refused_with_the_reason() {
    let server = server(
        "",
        "[websocket]\nallowed_origins = [\"https://chat.example.org\"]\n",
    );
    let refused = XmppClient::websocket_raw(server.ports.http, &[]).expect_err("no subprotocol");
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains("subprotocol `xmpp` is required"),
        "{}",
        refused.body
    );
    let refused =
        XmppClient::websocket_raw(server.ports.http, &[("Sec-WebSocket-Protocol", "chat")])
            .expect_err("another subprotocol");
    assert_eq!(refused.status, 400);
    let refused = XmppClient::websocket(server.ports.http, &[("Origin", "https://evil.example")])
        .expect_err("another origin");
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("allowed_origins"), "{}", refused.body);
    // The server's own origin and the configured one are let in.
    for origin in ["https://localhost", "https://chat.example.org"] {
        let mut c = XmppClient::websocket(server.ports.http, &[("Origin", origin)]).expect(origin);
        assert!(c.open().contains("<mechanism>"));
    }
    let plain = https(server.ports.http, "GET", "/xmpp-websocket", &[], b"");
    assert_eq!(plain.status, 426);
    assert!(plain.body.contains("RFC 7395"), "{}", plain.body);
    assert_eq!(
        https(server.ports.http, "GET", "/health", &[], b"").body,
        "ok"
    );
}

/// A stream error over WebSocket: the error element, `<close/>`, then the WebSocket close.
fn assert_stream_error_then_close(c: &mut XmppClient, condition: &str, code: u16) {
    let all = c.read_to_close();
    let messages = c.ws_messages();
    let n = messages.len();
    assert!(n >= 2, "{all}");
    assert!(
        messages[n - 2]
            .starts_with("<stream:error xmlns:stream='http://etherx.jabber.org/streams'>")
            && messages[n - 2].contains(&format!("<{condition} xmlns='{STREAMS}'/>")),
        "{messages:?}"
    );
    assert_eq!(messages[n - 1], format!("<close xmlns='{FRAMING}'/>"));
    assert_eq!(c.ws_close().map(|c| c.0), Some(code), "{messages:?}");
}

#[test]
fn each_framing_violation_gets_its_precise_close_and_the_server_lives_on() {
    let server = server(
        "max_pre_auth_stanza_size = 4096\nnegotiation_timeout = 3",
        "",
    );

    // A binary message: <unsupported-encoding/>, then 1003 (unsupported data).
    let mut c = ws(&server);
    c.open();
    c.send_ws_frame(BINARY, b"<presence/>", true);
    assert_stream_error_then_close(&mut c, "unsupported-encoding", 1003);

    // Two elements in one message; half an element; text that is no element.
    for bad in [
        "<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>",
        "<iq xmlns='jabber:client' type='get' id='1'><ping xmlns='urn:xmpp:ping'/>",
        "hello",
    ] {
        let mut c = ws(&server);
        c.open();
        c.send(bad);
        assert_stream_error_then_close(&mut c, "not-well-formed", 1000);
        let why = if bad == "hello" {
            "character data at stream level"
        } else {
            "each WebSocket message must hold one complete XML element"
        };
        assert!(
            c.ws_messages().iter().any(|m| m.contains(why)),
            "{bad}: {:?}",
            c.ws_messages()
        );
    }

    // The old draft's framing: a stream header is half an element.
    let mut c = ws(&server);
    c.send(tessera_tests::HEADER_FOR_TESTS.trim_start_matches("<?xml version='1.0'?>"));
    assert_stream_error_then_close(&mut c, "not-well-formed", 1000);
    assert!(
        c.ws_messages()[0].starts_with("<open "),
        "the <open/> comes first"
    );

    // An <open/> for another domain.
    let mut c = ws(&server);
    c.send(&format!(
        "<open xmlns='{FRAMING}' to='elsewhere.example' version='1.0'/>"
    ));
    assert_stream_error_then_close(&mut c, "host-unknown", 1000);

    // Invalid UTF-8 in a text frame: 1007, no stream error (the WebSocket layer refuses it).
    let mut c = ws(&server);
    c.open();
    c.send_ws_frame(
        TEXT,
        b"<presence xmlns='jabber:client'>\xff\xfe</presence>",
        true,
    );
    c.read_to_close();
    assert_eq!(c.ws_close().map(|c| c.0), Some(1007));

    // A message over the limit before authentication (4096 here): 1009, at once.
    let mut c = ws(&server);
    c.open();
    let big = format!(
        "<message xmlns='jabber:client' to='alice@localhost'><body>{}</body></message>",
        "y".repeat(5000)
    );
    c.send(&big);
    c.read_to_close();
    let close = c.ws_close().expect("closed");
    assert_eq!(close.0, 1009, "{close:?}");
    assert!(close.1.contains("4096"), "{close:?}");

    // The same over the limit in fragments (continuation frames): 1009 as well.
    let mut c = ws(&server);
    c.open();
    c.send_ws_frame(TEXT, &big.as_bytes()[..3000], false);
    c.send_ws_frame(CONTINUATION, &big.as_bytes()[3000..], true);
    c.read_to_close();
    let close = c.ws_close().expect("closed");
    assert_eq!(close.0, 1009, "{close:?}");

    // Pings are answered, and the stream goes on.
    let mut c = ws(&server);
    c.open();
    for _ in 0..3 {
        c.send_ws_frame(PING, b"are you there", true);
    }
    let out = c.sasl2_scram(
        Hash::Sha256,
        true,
        "alice",
        "correct horse",
        &Sasl2Extras::bind("p"),
    );
    assert!(out.success, "{}", out.xml);
    assert_eq!(c.ws_pongs(), 3);

    // Silence: the negotiation timeout holds as on TCP.
    let mut c = ws(&server);
    c.open();
    assert_stream_error_then_close(&mut c, "connection-timeout", 1000);

    a_fresh_login_works(&server);
}

#[test]
fn host_meta_lists_the_websocket_endpoint_and_disabling_removes_it_all() {
    let server = server("", "");
    let port = server.ports.http.port();
    let href = format!("wss://localhost:{port}/xmpp-websocket");
    let xrd = https(server.ports.http, "GET", "/.well-known/host-meta", &[], b"");
    assert_eq!(xrd.status, 200);
    assert_eq!(xrd.header("content-type"), Some("application/xrd+xml"));
    assert_eq!(xrd.header("access-control-allow-origin"), Some("*"));
    assert!(
        xrd.body.contains(&format!(
            "<Link rel='urn:xmpp:alt-connections:websocket' href='{href}'/>"
        )),
        "{}",
        xrd.body
    );
    let json = https(
        server.ports.http,
        "GET",
        "/.well-known/host-meta.json",
        &[],
        b"",
    );
    assert_eq!(json.header("content-type"), Some("application/json"));
    let doc: serde_json::Value = serde_json::from_str(&json.body).expect("JSON");
    assert_eq!(doc["links"][0]["rel"], "urn:xmpp:alt-connections:websocket");
    assert_eq!(doc["links"][0]["href"], href.as_str());

    let off = self::server("", "[websocket]\nenabled = false\n");
    for path in [
        "/.well-known/host-meta",
        "/.well-known/host-meta.json",
        "/xmpp-websocket",
    ] {
        assert_eq!(
            https(off.ports.http, "GET", path, &[], b"").status,
            404,
            "{path}"
        );
    }
    assert_eq!(
        XmppClient::websocket(off.ports.http, &[])
            .expect_err("disabled")
            .status,
        404
    );
}

/// The browser test: Debian's headless chromium runs a page on xmpp.js's browser build
/// from another origin (allowed by `[websocket] allowed_origins`), logs in over WSS with SCRAM
/// through SASL2 and Bind 2, keeps the FAST token it asked for in localStorage, reloads, logs
/// in with the token alone and exchanges a message with a TCP client. The same page from an
/// origin not allowed cannot connect. The screenshot lands in `target/test-artifacts/`.
#[test]
fn a_browser_logs_in_with_scram_keeps_a_fast_token_and_comes_back_with_it_alone() {
    let pages = tessera_tests::ws::PageServer::start();
    let origin = format!("http://127.0.0.1:{}", pages.port);
    let server = server(
        "",
        &format!("[websocket]\nallowed_origins = [\"{origin}\"]\n"),
    );
    let (mut bob, bob_jid) = bob_over_tcp(&server);
    let service = format!(
        "wss://localhost:{}/xmpp-websocket",
        server.ports.http.port()
    );
    let query = format!("/?service={service}&domain=localhost&user=alice&peer={bob_jid}");
    let shot = tessera_tests::reset::artifacts_dir().join("websocket-browser.png");
    let _ = std::fs::remove_file(&shot);
    let browser = tessera_tests::ws::run_browser(
        &format!("{origin}{query}"),
        &format!("http://localhost:{}{query}", pages.port),
        "correct horse",
        &shot,
    );

    // The TCP side: the browser's message arrives (from its token login), and is answered.
    let got = bob.read_until("ping from the browser</body>");
    let from = got
        .rsplit("<message")
        .next()
        .and_then(|m| m.split("from='").nth(1))
        .and_then(|f| f.split('\'').next())
        .expect("from")
        .to_owned();
    assert!(from.starts_with("alice@localhost/"), "{got}");
    bob.send(&format!(
        "<message to='{from}' type='chat' id='pong'><body>pong from tcp</body></message>"
    ));

    let out = browser.wait_with_output().expect("browser");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("browser JSON");
    let first = &report["first"];
    assert_eq!(first["mechanism"], "SCRAM-SHA-1", "{report}");
    assert_eq!(first["requestToken"], "HT-SHA-256-NONE", "{report}");
    assert_eq!(first["bind2"], true, "{report}");
    assert!(
        !report["addressAfterLogin"]
            .as_str()
            .unwrap_or_default()
            .contains("password"),
        "{report}"
    );
    let second = &report["second"];
    assert_eq!(second["mechanism"], "HT-SHA-256-NONE", "{report}");
    assert_eq!(second["fast"], true, "{report}");
    assert_eq!(second["withPassword"], false, "{report}");
    assert_eq!(second["jid"].as_str(), Some(from.as_str()), "{report}");
    assert_eq!(report["received"]["body"], "pong from tcp", "{report}");
    assert_eq!(report["received"]["from"], bob_jid.as_str(), "{report}");
    assert!(report["storedToken"]["token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    assert_eq!(report["refused"]["logins"], 0, "{report}");
    assert!(report["refused"]["error"].is_string(), "{report}");
    assert_eq!(report["consoleErrors"], serde_json::json!([]), "{report}");
    assert!(shot.is_file(), "screenshot at {}", shot.display());
    a_fresh_login_works(&server);
}

/// The connection caps hold for WebSocket as for TCP: a WebSocket takes a client place of its
/// address, and one over the cap is refused with 503 before any XMPP; the places come back.
#[test]
fn the_per_address_cap_counts_websockets_with_tcp_clients() {
    let server = server("max_connections_per_ip = 2", "");
    let mut first = ws(&server);
    first.open();
    let mut second = XmppClient::direct_tls(server.ports.direct_tls);
    second.open();
    let refused = XmppClient::websocket(server.ports.http, &[]).expect_err("over the cap");
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(
        refused.body.contains("too many connections"),
        "{}",
        refused.body
    );
    first.send(&format!("<close xmlns='{FRAMING}'/>"));
    first.read_to_close();
    // The place is given back when the WebSocket ends (bounded wait: the task is finishing).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match XmppClient::websocket(server.ports.http, &[]) {
            Ok(mut c) => {
                assert!(c.open().contains("<mechanism>"));
                break;
            }
            Err(r) => {
                assert_eq!(r.status, 503);
                assert!(
                    std::time::Instant::now() < deadline,
                    "the place never came back"
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
}

/// mod_password_reset's SASL2 mechanism works unchanged over WebSocket: the request gets the
/// same answer as over TCP and the link is mailed.
#[test]
fn a_password_reset_can_be_requested_over_websocket() {
    let s = Server::start(&ServerOptions {
        http: "public_url = \"https://chat.example.test\"".into(),
        ..ServerOptions::with_modules(&["sasl2", "password_reset"])
    });
    s.add_user("alice", "old password 1", Some("alice@example.net"));
    let mut c = ws(&s);
    c.open();
    let failure = c.password_reset(
        tessera_tests::reset::Profile::Sasl2,
        "alice",
        "alice@example.net",
    );
    let requested = format!(
        "<reset-requested xmlns='{}'/>",
        tessera_tests::reset::RESET_NS
    );
    assert!(failure.contains(&requested), "{failure}");
    let (_, mail) = tessera_tests::wait_for_mail(&s.dir.path().join("data/outbox"));
    assert!(mail.contains("https://chat.example.test/"), "{mail}");
}
