//! RFC 6120 stream handling over real sockets: STARTTLS and direct TLS, and every bad-input
//! case with its exact stream error — after each, the server still serves a new client.

use std::time::Duration;

use tessera_tests::{Server, ServerOptions, XmppClient, HEADER_FOR_TESTS as HEADER};

fn server() -> Server {
    Server::start(&ServerOptions {
        c2s: "max_stanza_size = 4096\nmax_depth = 8\nnegotiation_timeout = 2".into(),
        ..ServerOptions::default()
    })
}

fn still_serving(server: &Server) {
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    let features = c.open();
    assert!(features.contains("<stream:features>"), "{features}");
}

fn error_after_header(server: &Server, bad: &[u8], condition: &str) {
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open();
    c.send_bytes(bad);
    let got = c.read_to_close();
    let expected = format!("<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>");
    assert!(got.contains(&expected), "expected {condition}, got: {got}");
    assert!(got.trim_end().ends_with("</stream:stream>"), "{got}");
    still_serving(server);
}

#[test]
fn starttls_port_offers_only_required_starttls_then_tls_features() {
    let server = server();
    let mut c = XmppClient::plain(server.ports.c2s);
    c.send(HEADER);
    let features = c.read_until("</stream:features>");
    assert!(features.contains("from='localhost'"), "{features}");
    assert!(features.contains("<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"), "{features}");
    // No credential before TLS: SASL is refused with encryption-required, and the stream lives.
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>");
    let failure = c.read_until("</failure>");
    assert!(
        failure.contains("<encryption-required xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"),
        "{failure}"
    );

    let mut tls = XmppClient::starttls(server.ports.c2s);
    let features = tls.open();
    assert!(
        !features.contains("starttls"),
        "STARTTLS offered again after TLS: {features}"
    );
    assert!(tls.tls_version() == Some(rustls::ProtocolVersion::TLSv1_3));
}

#[test]
fn direct_tls_port_speaks_tls_1_3_and_1_2() {
    let server = server();
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    assert!(c.open().contains("<stream:features>"));
    assert_eq!(c.tls_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    let mut c12 = XmppClient::direct_tls_with(server.ports.direct_tls, true);
    assert!(c12.open().contains("<stream:features>"));
    assert_eq!(c12.tls_version(), Some(rustls::ProtocolVersion::TLSv1_2));
}

#[test]
fn stanza_before_tls_is_not_authorized() {
    let server = server();
    let mut c = XmppClient::plain(server.ports.c2s);
    c.send(HEADER);
    c.read_until("</stream:features>");
    c.send("<message to='bob@localhost'><body>hi</body></message>");
    let got = c.read_to_close();
    assert!(
        got.contains("<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{got}"
    );
    still_serving(&server);
}

#[test]
fn data_pipelined_after_starttls_is_refused() {
    let server = server();
    let mut c = XmppClient::plain(server.ports.c2s);
    c.send(HEADER);
    c.read_until("</stream:features>");
    c.send(&format!(
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>{HEADER}"
    ));
    let got = c.read_to_close();
    assert!(
        got.contains("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{got}"
    );
    assert!(!got.contains("<proceed"), "{got}");
}

#[test]
fn oversized_stanza_gets_policy_violation() {
    let server = server();
    let big = format!(
        "<message to='a@localhost'><body>{}</body></message>",
        "x".repeat(8192)
    );
    error_after_header(&server, big.as_bytes(), "policy-violation");
}

#[test]
fn unfinished_oversized_stanza_is_refused_before_it_ends() {
    let server = server();
    let big = format!("<message to='a@localhost'><body>{}", "x".repeat(8192));
    error_after_header(&server, big.as_bytes(), "policy-violation");
}

#[test]
fn dtd_and_entity_declarations_get_restricted_xml() {
    let server = server();
    error_after_header(
        &server,
        b"<!DOCTYPE lol [<!ENTITY lol 'lol'>]>",
        "restricted-xml",
    );
    error_after_header(&server, b"<!ENTITY x 'y'>", "restricted-xml");
}

#[test]
fn processing_instruction_and_comment_get_restricted_xml() {
    let server = server();
    error_after_header(&server, b"<?php echo 1; ?>", "restricted-xml");
    error_after_header(&server, b"<!-- hello -->", "restricted-xml");
}

#[test]
fn broken_xml_gets_not_well_formed() {
    let server = server();
    error_after_header(&server, b"<message><body>hi</message>", "not-well-formed");
    error_after_header(&server, b"<message a='1' a='2'/>", "not-well-formed");
    error_after_header(
        &server,
        b"<message>&undefined;</message>",
        "not-well-formed",
    );
    error_after_header(&server, b"<message>\xff\xfe</message>", "not-well-formed");
}

#[test]
fn nesting_beyond_the_limit_gets_policy_violation() {
    let server = server();
    let deep = format!("{}{}", "<a>".repeat(20), "</a>".repeat(20));
    error_after_header(&server, deep.as_bytes(), "policy-violation");
}

#[test]
fn stanza_before_authentication_is_not_authorized() {
    let server = server();
    error_after_header(
        &server,
        b"<message to='bob@localhost'><body>hi</body></message>",
        "not-authorized",
    );
}

#[test]
fn wrong_header_gets_its_stream_error() {
    let server = server();
    for (header, condition) in [
        ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0'>", "host-unknown"),
        ("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>", "invalid-namespace"),
        ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost'>", "unsupported-version"),
        ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' from='alice@evil.example' version='1.0'>", "invalid-from"),
    ] {
        let mut c = XmppClient::direct_tls(server.ports.direct_tls);
        c.send(header);
        let got = c.read_to_close();
        assert!(got.contains("<stream:stream"), "a header precedes the error: {got}");
        assert!(got.contains(&format!("<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>")), "{condition}: {got}");
    }
    still_serving(&server);
}

#[test]
fn slow_negotiation_is_closed_with_connection_timeout() {
    let server = server();
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open();
    let got = c.read_to_close();
    assert!(
        got.contains("<connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{got}"
    );
    // A plaintext peer that never speaks is closed too.
    let mut silent = XmppClient::plain(server.ports.c2s);
    let got = silent.read_to_close();
    assert!(got.contains("connection-timeout"), "{got}");
    still_serving(&server);
}

#[test]
fn whitespace_keepalives_are_ignored() {
    let server = server();
    let mut c = XmppClient::direct_tls(server.ports.direct_tls);
    c.open();
    c.send("   \n  ");
    assert_eq!(c.read_for(Duration::from_millis(300)), "");
    assert!(!c.is_closed());
    c.send("</stream:stream>");
    assert!(c.read_to_close().contains("</stream:stream>"));
}
