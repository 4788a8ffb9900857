use tessera_plugin_api::protocol::ChannelBindings;

use super::*;

fn stream(secure: bool, exporter: bool, endpoint: bool) -> StreamInfo {
    StreamInfo {
        id: 1,
        domain: "example.org".into(),
        secure,
        channel_bindings: ChannelBindings {
            tls_exporter: exporter.then(|| vec![1; 32]),
            tls_server_end_point: endpoint.then(|| vec![2; 32]),
        },
        ..StreamInfo::default()
    }
}

fn names(stream: &StreamInfo) -> Vec<&'static str> {
    offered(stream).into_iter().map(HtMechanism::name).collect()
}

#[test]
fn offered_mechanisms_follow_the_connections_bindings() {
    assert_eq!(
        names(&stream(true, true, true)),
        ["HT-SHA-256-EXPR", "HT-SHA-256-ENDP", "HT-SHA-256-NONE"]
    );
    assert_eq!(
        names(&stream(true, true, false)),
        ["HT-SHA-256-EXPR", "HT-SHA-256-NONE"]
    );
    assert_eq!(
        names(&stream(true, false, true)),
        ["HT-SHA-256-ENDP", "HT-SHA-256-NONE"]
    );
    assert_eq!(names(&stream(true, false, false)), ["HT-SHA-256-NONE"]);
    assert!(
        names(&stream(false, true, true)).is_empty(),
        "never without TLS"
    );
}

#[test]
fn advertisement_lists_the_offered_mechanisms() {
    let xml = advertisement(&stream(true, true, false)).map(|e| e.to_xml());
    assert_eq!(
        xml.as_deref(),
        Some(
            "<fast xmlns='urn:xmpp:fast:0'><mechanism>HT-SHA-256-EXPR</mechanism>\
             <mechanism>HT-SHA-256-NONE</mechanism></fast>"
        )
    );
    assert!(advertisement(&stream(false, true, true)).is_none());
}

#[test]
fn cb_data_is_the_bindings_value_or_empty_for_none() {
    let s = stream(true, true, false);
    assert_eq!(cb_data(HtMechanism::Sha256Expr, &s), Some(vec![1; 32]));
    assert_eq!(cb_data(HtMechanism::Sha256None, &s), Some(Vec::new()));
    assert_eq!(cb_data(HtMechanism::Sha256Endp, &s), None);
    assert_eq!(
        cb_data(HtMechanism::Sha256None, &stream(false, true, true)),
        None
    );
}

fn authenticate(children: Vec<Element>) -> Element {
    let mut el = Element::new("authenticate", SASL2_NS).with_attr("mechanism", "HT-SHA-256-NONE");
    for c in children {
        el.push_child(c);
    }
    el
}

#[test]
fn fast_child_flags() {
    let parse = |attrs: &[(&str, &str)]| {
        let mut fast = Element::new("fast", FAST_NS);
        for (k, v) in attrs {
            fast.set_attr(*k, *v);
        }
        fast_request(&authenticate(vec![fast]))
    };
    assert_eq!(parse(&[]), Some(FastRequest::default()));
    assert!(parse(&[("invalidate", "true")]).is_some_and(|f| f.invalidate));
    assert!(parse(&[("invalidate", "1")]).is_some_and(|f| f.invalidate));
    assert!(parse(&[("invalidate", "false")]).is_some_and(|f| !f.invalidate));
    assert!(parse(&[("invalidate", "0")]).is_some_and(|f| !f.invalidate));
    assert_eq!(parse(&[("count", "123")]).and_then(|f| f.count), Some(123));
    assert_eq!(parse(&[("count", "x")]).and_then(|f| f.count), None);
    // Wrong namespace: not a FAST request.
    assert_eq!(
        fast_request(&authenticate(vec![Element::new("fast", SASL2_NS)])),
        None
    );
}

#[test]
fn request_token_and_user_agent() {
    let auth = authenticate(vec![
        Element::new("user-agent", SASL2_NS).with_attr("id", "abc"),
        Element::new("request-token", FAST_NS).with_attr("mechanism", "HT-SHA-256-EXPR"),
    ]);
    assert_eq!(requested_mechanism(&auth), Some("HT-SHA-256-EXPR"));
    assert_eq!(user_agent_id(&auth).as_deref(), Some("abc"));
    let long = "x".repeat(129);
    let auth = authenticate(vec![
        Element::new("user-agent", SASL2_NS).with_attr("id", long)
    ]);
    assert_eq!(user_agent_id(&auth), None);
    assert_eq!(requested_mechanism(&auth), None);
}

#[test]
fn uuid_shape() {
    assert!(is_uuid("d4565fa7-4d72-4749-b3d3-740edbf87770"));
    assert!(is_uuid("D4565FA7-4D72-4749-B3D3-740EDBF87770"));
    for bad in [
        "smack-client-instance",
        "d4565fa7-4d72-4749-b3d3-740edbf8777",
        "d4565fa7-4d72-4749-b3d3-740edbf877700",
        "d4565fa74d72-4749-b3d3-740edbf87770",
        "g4565fa7-4d72-4749-b3d3-740edbf87770",
        "d4565fa7-4d72-4749-b3d3-740edbf87770-",
        "",
    ] {
        assert!(!is_uuid(bad), "{bad}");
    }
}

#[test]
fn account_names_and_stream_from() {
    assert_eq!(canonical_user("Alice").as_deref(), Some("alice"));
    assert_eq!(canonical_user("a@b"), None);
    assert_eq!(canonical_user(""), None);
    assert!(from_matches(None, "alice"));
    assert!(from_matches(Some("alice@example.org"), "alice"));
    assert!(from_matches(Some("Alice@example.org/phone"), "alice"));
    assert!(
        from_matches(Some("example.org"), "alice"),
        "no localpart names no account"
    );
    assert!(!from_matches(Some("bob@example.org"), "alice"));
    assert!(!from_matches(Some("@example.org"), "alice"));
}

#[test]
fn token_element_shape() {
    assert_eq!(
        token_element("secret-token:fast-x", "2026-07-21T10:00:00Z").to_xml(),
        "<token xmlns='urn:xmpp:fast:0' token='secret-token:fast-x' expiry='2026-07-21T10:00:00Z'/>"
    );
}
