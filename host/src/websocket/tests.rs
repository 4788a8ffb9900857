use super::*;

fn request(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

const GOOD: &[(&str, &str)] = &[
    ("upgrade", "websocket"),
    ("connection", "keep-alive, Upgrade"),
    ("sec-websocket-version", "13"),
    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("sec-websocket-protocol", "chat, xmpp"),
];

fn policy() -> OriginPolicy {
    OriginPolicy::new(
        "example.com",
        Some("https://xmpp.example.com:5281/"),
        &["https://chat.example.org".into()],
    )
}

#[test]
fn accept_key_matches_rfc_6455_example() {
    // RFC 6455 §1.3.
    assert_eq!(
        accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn a_good_handshake_is_accepted_and_each_defect_refused_precisely() {
    let ok = check_handshake(&Method::GET, &request(GOOD), &policy());
    assert_eq!(ok.unwrap(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    let with = |k: &str, v: &str| {
        let mut pairs: Vec<(&str, &str)> = GOOD.iter().copied().filter(|(n, _)| *n != k).collect();
        if !v.is_empty() {
            pairs.push((k, v));
        }
        check_handshake(&Method::GET, &request(&pairs), &policy())
    };
    assert_eq!(
        check_handshake(&Method::POST, &request(GOOD), &policy()),
        Err(Refusal::Method)
    );
    assert_eq!(with("upgrade", ""), Err(Refusal::NotWebSocket));
    assert_eq!(with("connection", "keep-alive"), Err(Refusal::NotWebSocket));
    assert_eq!(with("sec-websocket-version", "8"), Err(Refusal::Version));
    assert_eq!(with("sec-websocket-key", "c2hvcnQ="), Err(Refusal::Key));
    assert_eq!(
        with("sec-websocket-protocol", "chat"),
        Err(Refusal::Subprotocol)
    );
    assert_eq!(
        with("sec-websocket-protocol", "XMPP"),
        Err(Refusal::Subprotocol)
    );
    assert_eq!(
        with("sec-websocket-protocol", ""),
        Err(Refusal::Subprotocol)
    );
    assert_eq!(with("origin", "https://evil.example"), Err(Refusal::Origin));
    assert!(with("origin", "https://chat.example.org").is_ok());
    assert_eq!(Refusal::Subprotocol.status(), 400);
    assert_eq!(Refusal::Origin.status(), 403);
}

#[test]
fn origins_default_to_the_server_s_own() {
    let p = policy();
    assert!(p.allows(None), "a non-browser client sends no Origin");
    assert!(p.allows(Some("https://example.com")));
    assert!(p.allows(Some("HTTPS://XMPP.example.com:5281")));
    assert!(p.allows(Some("https://chat.example.org")));
    assert!(!p.allows(Some("https://xmpp.example.com")), "another port");
    assert!(!p.allows(Some("http://example.com")), "another scheme");
    assert!(!p.allows(Some("https://example.com.evil.org")));
    assert!(!p.allows(Some("null")));
    let any = OriginPolicy::new("example.com", None, &["*".into()]);
    assert!(any.allows(Some("https://anything.example")));
}

#[test]
fn origin_of_keeps_scheme_host_and_port() {
    assert_eq!(
        origin_of("https://Example.COM:5281/reset?x").as_deref(),
        Some("https://example.com:5281")
    );
    assert_eq!(origin_of("example.com"), None);
    assert_eq!(origin_of("https://user@host"), None);
    assert_eq!(origin_of("https:///path"), None);
}

#[test]
fn default_ports_match_and_an_undecodable_origin_is_refused() {
    let p = OriginPolicy::new("example.com", Some("https://chat.example.com:443/app"), &[]);
    assert!(p.allows(Some("https://chat.example.com")));
    assert!(p.allows(Some("https://example.com:443")));
    let mut h = request(GOOD);
    h.insert(
        "origin",
        HeaderValue::from_bytes(b"https://\xffexample.com").unwrap(),
    );
    assert_eq!(check_handshake(&Method::GET, &h, &p), Err(Refusal::Origin));
}

#[test]
fn host_meta_lists_the_endpoint_in_both_forms() {
    let url = "wss://example.com/xmpp-websocket";
    let xrd = host_meta_xrd(url);
    assert!(xrd.contains(
        "<Link rel='urn:xmpp:alt-connections:websocket' href='wss://example.com/xmpp-websocket'/>"
    ));
    let json: serde_json::Value = serde_json::from_str(&host_meta_json(url)).unwrap();
    assert_eq!(json["links"][0]["rel"], ALT_CONNECTIONS_WEBSOCKET);
    assert_eq!(json["links"][0]["href"], url);
}

fn limits() -> Limits {
    Limits {
        max_stanza_bytes: 1024,
        ..Limits::default()
    }
}

#[test]
fn open_becomes_the_tcp_stream_header() {
    // RFC 7395 §3.4's example.
    let open = "<open xmlns=\"urn:ietf:params:xml:ns:xmpp-framing\" to=\"example.com\" version=\"1.0\" xml:lang=\"fr\"/>";
    let Ok(Inbound::Open(header)) = inbound(open.into(), limits()) else {
        panic!("not an open");
    };
    let mut f = Framer::new(limits());
    f.push(header.as_bytes()).unwrap();
    let Some(Frame::StreamHeader(raw)) = f.next_frame().unwrap() else {
        panic!("not a header: {header}");
    };
    let h = parse_stream_header(&raw).unwrap();
    assert_eq!(h.to.as_deref(), Some("example.com"));
    assert_eq!(h.version.as_deref(), Some("1.0"));
    assert_eq!(h.lang.as_deref(), Some("fr"));
    assert_eq!(h.default_ns.as_deref(), Some("jabber:client"));
    // Attribute values are escaped again, never passed through raw.
    let Ok(Inbound::Open(header)) = inbound(
        format!("<open xmlns='{FRAMING_NS}' to='a&apos;&gt;b'/>"),
        limits(),
    ) else {
        panic!("not an open");
    };
    assert!(header.contains("to='a&apos;&gt;b'"), "{header}");
}

#[test]
fn close_and_stanzas_and_keepalives() {
    assert_eq!(
        inbound(format!("<close xmlns='{FRAMING_NS}'/>"), limits()),
        Ok(Inbound::Close)
    );
    let msg = "<message xmlns='jabber:client' to='a@example.com'><body>hi</body></message>";
    assert_eq!(
        inbound(msg.into(), limits()),
        Ok(Inbound::Element(msg.into()))
    );
    // `open` in another namespace is just an element (the connection will refuse it).
    let other = "<open xmlns='urn:example'/>";
    assert_eq!(
        inbound(other.into(), limits()),
        Ok(Inbound::Element(other.into()))
    );
    assert_eq!(inbound(" \r\n".into(), limits()), Ok(Inbound::Keepalive));
}

#[test]
fn a_message_must_hold_exactly_one_complete_element() {
    let expect_nwf = |text: &str| {
        let err = inbound(text.into(), limits()).unwrap_err();
        assert_eq!(err.condition, StreamCondition::NotWellFormed, "{text}");
    };
    expect_nwf("<message xmlns='jabber:client'><body>half");
    expect_nwf("<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>");
    expect_nwf("</message>");
    expect_nwf("just text");
    let err = inbound(
        format!(
            "<message xmlns='jabber:client'><body>{}</body></message>",
            "x".repeat(2000)
        ),
        limits(),
    )
    .unwrap_err();
    assert_eq!(err.condition, StreamCondition::PolicyViolation);
    let err = inbound("<?xml version='1.0'?><open/>".into(), limits()).unwrap_err();
    assert_eq!(err.condition, StreamCondition::RestrictedXml);
}

#[test]
fn the_encoder_cuts_the_tcp_form_into_rfc_7395_messages() {
    let mut e = Encoder::new();
    let mut out = Vec::new();
    let header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='example.com' version='1.0' xml:lang='en'>";
    e.encode(header.as_bytes(), &mut out).unwrap();
    e.encode(b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></stream:features><message to='a@b'><body>x</body></mes", &mut out)
        .unwrap();
    e.encode(b"sage><success xmlns='urn:xmpp:sasl:2'/>", &mut out)
        .unwrap();
    assert_eq!(
        out,
        [
            format!("<open xmlns='{FRAMING_NS}' id='s1' from='example.com' version='1.0' xml:lang='en'/>"),
            format!("<stream:features xmlns:stream='{STREAM_NS}'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></stream:features>"),
            "<message xmlns='jabber:client' to='a@b'><body>x</body></message>".to_owned(),
            "<success xmlns='urn:xmpp:sasl:2'/>".to_owned(),
        ]
    );
    // A stream restart: a new header after elements.
    out.clear();
    e.restart();
    e.encode(header.as_bytes(), &mut out).unwrap();
    assert!(out[0].starts_with("<open "), "{out:?}");
    // A stream error and the end of the stream.
    out.clear();
    e.encode(
        b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
        &mut out,
    )
    .unwrap();
    assert_eq!(
        out,
        [
            format!("<stream:error xmlns:stream='{STREAM_NS}'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"),
            close_element(),
        ]
    );
    assert!(e.closed());
}

#[test]
fn the_encoder_keeps_a_declared_namespace_and_an_attribute_that_only_looks_like_one() {
    assert_eq!(
        with_namespace(b"<iq xmlns='jabber:client' id='1'/>"),
        "<iq xmlns='jabber:client' id='1'/>"
    );
    assert_eq!(
        with_namespace(b"<iq id='xmlns=x'/>"),
        "<iq xmlns='jabber:client' id='xmlns=x'/>"
    );
    assert_eq!(
        with_namespace(b"<stream:error xmlns:stream='http://etherx.jabber.org/streams'/>"),
        "<stream:error xmlns:stream='http://etherx.jabber.org/streams'/>"
    );
}
