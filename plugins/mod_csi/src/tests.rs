//! The module on the SDK's test host; `deliver` plays the host's part of writing a stanza to a
//! session through its `SessionOut` hooks, the module's own re-sends included.

use std::sync::Arc;

use tessera_plugin_api::protocol::OptionValue;
use tessera_plugin_api::testing::{Loaded, TestHost};
use tessera_plugin_api::ModuleCalls;

use super::*;

const CLIENT_NS: &str = "jabber:client";

fn world(queue: i64) -> (Arc<TestHost>, Loaded<Csi>, u64) {
    let host = TestHost::new("example.org");
    host.add_account("alice", "pw", None);
    let stream = host.add_session("alice", "phone");
    let mut config = Config::default();
    config.set("csi_queue_size", OptionValue::Integer(queue));
    let m = host.load::<Csi>(config).expect("load");
    (host, m, stream)
}

/// Write `stanza` to the session as the host does; answers what reached the wire, in order.
fn deliver(m: &Loaded<Csi>, stream: u64, stanza: Element) -> Vec<String> {
    let mut wire = Vec::new();
    let mut pending = vec![stanza];
    while !pending.is_empty() {
        for el in std::mem::take(&mut pending) {
            match m
                .stanza(StanzaPoint::SessionOut, &el, Some("alice"), Some(stream))
                .expect("hook")
            {
                Some(Verdict::Pass) | None => wire.push(el.to_xml_in(CLIENT_NS)),
                Some(Verdict::Replace(r)) => wire.push(r.to_xml_in(CLIENT_NS)),
                Some(Verdict::Drop) => {}
                Some(other) => panic!("unexpected {other:?}"),
            }
        }
        // The module's re-sends go through the hooks again.
        pending = m.test_host().take_outbox(stream);
    }
    wire
}

fn nonza(m: &Loaded<Csi>, stream: u64, name: &str) -> Vec<String> {
    let actions = m
        .instance
        .stream_element(StreamElement {
            stream: StreamInfo {
                id: stream,
                user: Some("alice".into()),
                jid: Some("alice@example.org/phone".into()),
                ..StreamInfo::default()
            },
            element: Element::new(name, NS),
        })
        .expect("nonza");
    assert!(actions.is_empty(), "no answer to a CSI nonza");
    // What the nonza released, through the hooks.
    let out = m.test_host().take_outbox(stream);
    out.into_iter()
        .flat_map(|el| deliver(m, stream, el))
        .collect()
}

fn presence(from: &str, show: &str) -> Element {
    Element::new("presence", CLIENT_NS)
        .with_attr("from", from)
        .with_attr("to", "alice@example.org/phone")
        .with_child(Element::new("show", CLIENT_NS).with_text(show))
}

fn message(body: &str) -> Element {
    Element::new("message", CLIENT_NS)
        .with_attr("from", "bob@example.org/desk")
        .with_attr("type", "chat")
        .with_child(Element::new("body", CLIENT_NS).with_text(body))
}

#[test]
fn inactive_holds_presence_until_a_message_then_sends_the_latest_first() {
    let (host, m, phone) = world(256);
    assert!(nonza(&m, phone, "inactive").is_empty());
    assert_eq!(
        host.session(phone).map(|s| s.attached),
        Some(vec!["csi".to_owned()])
    );
    // Presence 1 from bob, presence from carol, presence 2 from bob: nothing reaches the wire.
    for p in [
        presence("bob@example.org/desk", "away"),
        presence("carol@example.org/x", "dnd"),
        presence("bob@example.org/desk", "xa"),
    ] {
        assert!(deliver(&m, phone, p).is_empty());
    }
    let typing = Element::new("message", CLIENT_NS)
        .with_attr("from", "bob@example.org/desk")
        .with_child(Element::new(
            "composing",
            "http://jabber.org/protocol/chatstates",
        ));
    assert!(deliver(&m, phone, typing).is_empty());
    // A message with a body: carol's presence, bob's latest (in the place of his latest), the
    // typing, then the message.
    let wire = deliver(&m, phone, message("hello"));
    assert_eq!(wire.len(), 4, "{wire:?}");
    assert!(wire[0].contains("<show>dnd</show>"), "{wire:?}");
    assert!(wire[1].contains("<show>xa</show>") && !wire.iter().any(|w| w.contains("<show>away")));
    assert!(wire[2].contains("<composing"), "{wire:?}");
    assert!(wire[3].contains("<body>hello</body>"));
    for w in &wire[..3] {
        assert!(
            w.contains("<delay xmlns='urn:xmpp:delay' from='alice@example.org' stamp='"),
            "held stanzas carry a delay from the account: {w}"
        );
        assert!(!w.contains(MARK), "the mark never reaches the wire: {w}");
    }
    assert!(!wire[3].contains("urn:xmpp:delay") && !wire[3].contains(MARK));
    // Still inactive: the next presence is held again; <active/> releases it.
    assert!(deliver(&m, phone, presence("bob@example.org/desk", "chat")).is_empty());
    let released = nonza(&m, phone, "active");
    assert_eq!(released.len(), 1);
    assert!(released[0].contains("<show>chat</show>"));
    // Active: everything passes at once, undecoded.
    assert_eq!(
        deliver(&m, phone, presence("bob@example.org/desk", "away")).len(),
        1
    );
}

#[test]
fn a_full_queue_flushes_instead_of_dropping() {
    let (_host, m, phone) = world(3);
    nonza(&m, phone, "inactive");
    let mut wire = Vec::new();
    for i in 0..10 {
        wire.extend(deliver(
            &m,
            phone,
            presence(&format!("c{i}@example.org/r"), "away"),
        ));
    }
    wire.extend(nonza(&m, phone, "active"));
    assert_eq!(wire.len(), 10, "none lost: {wire:?}");
    for (i, w) in wire.iter().enumerate() {
        assert!(
            w.contains(&format!("from='c{i}@example.org/r'")),
            "in order: {wire:?}"
        );
    }
}

#[test]
fn bind2_inline_inactive_and_resumption_and_reload() {
    let (host, m, phone) = world(256);
    let bound = Bind2Bound {
        stream: StreamInfo {
            id: phone,
            ..StreamInfo::default()
        },
        user: "alice".into(),
        resource: "phone".into(),
        bind: Element::new("bind", "urn:xmpp:bind:0").with_child(Element::new("inactive", NS)),
    };
    let answer = m
        .instance
        .hook(
            hooks::BIND2_BOUND,
            wire::Bytes::new(&wire::encode(&bound).expect("encode")),
        )
        .expect("hook");
    assert_eq!(answer, None);
    m.event(
        events::SESSION_BOUND,
        &SessionEvent {
            stream_id: phone,
            jid: Some("alice@example.org/phone".into()),
            reason: None,
        },
    )
    .expect("event");
    assert!(deliver(&m, phone, presence("bob@example.org/desk", "away")).is_empty());
    // A hot swap keeps what is held.
    let m = m.reload(None).expect("reload");
    // Resumed on a new stream: it starts active and gets what was held.
    let next = host.add_session("alice", "phone2");
    m.event(
        events::SESSION_RESUMED,
        &SessionResumed {
            stream_id: next,
            previous_stream_id: phone,
            jid: "alice@example.org/phone".into(),
        },
    )
    .expect("event");
    let out = host.take_outbox(next);
    let wire: Vec<String> = out
        .into_iter()
        .flat_map(|el| deliver(&m, next, el))
        .collect();
    assert_eq!(wire.len(), 1);
    assert!(wire[0].contains("<show>away</show>") && !wire[0].contains(MARK));
    assert_eq!(
        deliver(&m, next, presence("bob@example.org/desk", "xa")).len(),
        1
    );
}

#[test]
fn the_feature_is_offered_after_authentication() {
    let (_host, m, _) = world(256);
    let mut stream = StreamInfo::default();
    assert!(m
        .instance
        .stream_features(stream.clone())
        .expect("f")
        .is_empty());
    stream.user = Some("alice".into());
    let f = m.instance.stream_features(stream).expect("f");
    assert_eq!(f[0].to_xml_in(CLIENT_NS), "<csi xmlns='urn:xmpp:csi:0'/>");
}

/// Stanzas written while the module's re-sends are still on their way join them at the back:
/// nothing overtakes a flush (the host applies effects in order, after the current write).
#[test]
fn nothing_overtakes_a_flush_in_flight() {
    let (host, m, phone) = world(256);
    nonza(&m, phone, "inactive");
    assert!(deliver(&m, phone, presence("bob@example.org/desk", "away")).is_empty());
    // The important message flushes: the held presence and it are re-sent (not yet written).
    let first = m
        .stanza(
            StanzaPoint::SessionOut,
            &message("one"),
            Some("alice"),
            Some(phone),
        )
        .expect("hook");
    assert_eq!(first, Some(Verdict::Drop));
    // Before those re-sends come through, two more stanzas are written.
    for body in ["two", "three"] {
        let v = m
            .stanza(
                StanzaPoint::SessionOut,
                &message(body),
                Some("alice"),
                Some(phone),
            )
            .expect("hook");
        assert_eq!(v, Some(Verdict::Drop), "{body} waits behind the flush");
    }
    // The host now writes the effects, in order, through the hook.
    let mut wire = Vec::new();
    for el in host.take_outbox(phone) {
        wire.extend(deliver(&m, phone, el));
    }
    assert_eq!(wire.len(), 4, "{wire:?}");
    assert!(wire[0].contains("<show>away</show>"));
    for (w, body) in wire[1..].iter().zip(["one", "two", "three"]) {
        assert!(w.contains(&format!("<body>{body}</body>")), "{wire:?}");
    }
}
