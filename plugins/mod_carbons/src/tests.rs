//! The module on the SDK's test host.

use std::sync::Arc;

use tessera_plugin_api::testing::{Loaded, TestHost};
use tessera_plugin_api::ModuleCalls;

use super::*;

const DOMAIN: &str = "example.org";

fn world() -> (Arc<TestHost>, Loaded<Carbons>) {
    let host = TestHost::new(DOMAIN);
    host.add_account("alice", "pw", None);
    host.add_account("bob", "pw", None);
    let m = host.load::<Carbons>(Config::default()).expect("load");
    (host, m)
}

fn iq(m: &Loaded<Carbons>, stream: u64, child: &str) -> Element {
    let s = m.test_host().session(stream).expect("session");
    m.instance
        .iq(IqRequest {
            stream: StreamInfo {
                id: stream,
                domain: DOMAIN.into(),
                user: Some(s.user.clone()),
                jid: Some(s.full_jid.clone()),
                ..StreamInfo::default()
            },
            stanza: Element::new("iq", CLIENT_NS)
                .with_attr("type", "set")
                .with_attr("id", "c1")
                .with_attr("from", &s.full_jid)
                .with_child(Element::new(child, NS)),
        })
        .expect("iq")
        .expect("answered")
}

fn chat(from: &str, to: &str, body: &str) -> Element {
    Element::new("message", CLIENT_NS)
        .with_attr("from", from)
        .with_attr("to", to)
        .with_attr("type", "chat")
        .with_child(Element::new("body", CLIENT_NS).with_text(body))
}

fn xmls(els: &[Element]) -> Vec<String> {
    els.iter().map(|e| e.to_xml_in(CLIENT_NS)).collect()
}

#[test]
fn eligibility_follows_the_recommended_rules() {
    let c = chat("a@x/r", "b@x", "hi");
    assert!(eligible(&c, Direction::Sent));
    let normal = |body: bool| {
        let m = Element::new("message", CLIENT_NS);
        if body {
            m.with_child(Element::new("body", CLIENT_NS).with_text("x"))
        } else {
            m
        }
    };
    assert!(eligible(&normal(true), Direction::Received));
    assert!(!eligible(&normal(false), Direction::Received));
    let receipt = normal(false).with_child(Element::new("received", "urn:xmpp:receipts"));
    assert!(eligible(&receipt, Direction::Received));
    for marked in [
        c.clone().with_child(Element::new("private", NS)),
        c.clone().with_child(Element::new("no-copy", HINTS_NS)),
        c.clone().with_child(Element::new("sent", NS)),
        c.clone().with_attr("type", "groupchat"),
        c.clone().with_attr("type", "error"),
    ] {
        assert!(!eligible(&marked, Direction::Sent), "{marked:?}");
    }
    let pm = c.clone().with_child(Element::new("x", MUC_USER_NS));
    assert!(!eligible(&pm, Direction::Received), "a MUC private message");
    assert!(eligible(&pm, Direction::Sent));
    let invite = normal(false)
        .with_child(Element::new("x", MUC_USER_NS).with_child(Element::new("invite", MUC_USER_NS)));
    assert!(eligible(&invite, Direction::Received));
}

#[test]
fn sent_and_received_copies_go_to_the_other_enabled_sessions() {
    let (host, m) = world();
    let phone = host.add_session("alice", "phone");
    let laptop = host.add_session("alice", "laptop");
    let tablet = host.add_session("alice", "tablet");
    for s in [phone, laptop, tablet] {
        host.set_presence(s, Some(0));
    }
    host.set_presence(phone, Some(5));
    let answer = iq(&m, laptop, "enable");
    assert_eq!(
        answer.to_xml_in(CLIENT_NS),
        "<iq type='result' id='c1' to='alice@example.org/laptop' from='alice@example.org'/>"
    );
    iq(&m, phone, "enable");
    // Sent by the phone: the laptop (enabled) gets a copy; the tablet (not enabled) and the
    // sender do not.
    let sent = chat("alice@example.org/phone", "bob@example.org", "hi bob");
    assert_eq!(
        m.stanza(StanzaPoint::ClientIn, &sent, Some("alice"), Some(phone))
            .expect("hook"),
        Some(Verdict::Pass)
    );
    assert_eq!(
        xmls(&host.take_outbox(laptop)),
        ["<message from='alice@example.org' to='alice@example.org/laptop' type='chat'>\
          <sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>\
          <message xmlns='jabber:client' from='alice@example.org/phone' to='bob@example.org' type='chat'>\
          <body>hi bob</body></message></forwarded></sent></message>"]
    );
    assert!(host.take_outbox(phone).is_empty() && host.take_outbox(tablet).is_empty());
    // Received at the bare JID: the phone (top priority) takes it; the laptop gets a copy.
    let received = chat("bob@example.org/desk", "alice@example.org", "hi alice");
    m.stanza(StanzaPoint::ToBare, &received, Some("alice"), None)
        .expect("hook");
    let copies = xmls(&host.take_outbox(laptop));
    assert_eq!(copies.len(), 1);
    assert!(
        copies[0].contains("<received xmlns='urn:xmpp:carbons:2'>"),
        "{copies:?}"
    );
    assert!(
        host.take_outbox(phone).is_empty(),
        "the phone got the original, no copy"
    );
    // To the laptop's full JID: the phone gets the copy.
    let direct = chat("bob@example.org/desk", "alice@example.org/laptop", "psst");
    m.stanza(StanzaPoint::ToFull, &direct, Some("alice"), Some(laptop))
        .expect("hook");
    assert_eq!(host.take_outbox(phone).len(), 1);
    assert!(host.take_outbox(laptop).is_empty());
    // Private: no copies at all. Disabled: no more copies.
    let private = received.clone().with_child(Element::new("private", NS));
    m.stanza(StanzaPoint::ToBare, &private, Some("alice"), None)
        .expect("hook");
    assert!(host.take_outbox(laptop).is_empty());
    iq(&m, laptop, "disable");
    m.stanza(StanzaPoint::ToBare, &received, Some("alice"), None)
        .expect("hook");
    assert!(host.take_outbox(laptop).is_empty());
}

#[test]
fn nobody_reading_means_no_copies_and_own_messages_are_not_mirrored_twice() {
    let (host, m) = world();
    let phone = host.add_session("alice", "phone");
    let laptop = host.add_session("alice", "laptop");
    iq(&m, phone, "enable");
    iq(&m, laptop, "enable");
    // Nobody available: the message goes offline; no copies.
    let received = chat("bob@example.org/desk", "alice@example.org", "later");
    m.stanza(StanzaPoint::ToBare, &received, Some("alice"), None)
        .expect("hook");
    assert!(host.take_outbox(phone).is_empty() && host.take_outbox(laptop).is_empty());
    // From the phone to the laptop: the laptop gets the original, nobody a copy.
    let own = chat(
        "alice@example.org/phone",
        "alice@example.org/laptop",
        "note to self",
    );
    m.stanza(StanzaPoint::ClientIn, &own, Some("alice"), Some(phone))
        .expect("hook");
    m.stanza(StanzaPoint::ToFull, &own, Some("alice"), Some(laptop))
        .expect("hook");
    assert!(host.take_outbox(phone).is_empty() && host.take_outbox(laptop).is_empty());
}

#[test]
fn bind2_inline_enable_state_handover_and_unbound_streams() {
    let (host, m) = world();
    let phone = host.add_session("alice", "phone");
    let laptop = host.add_session("alice", "laptop");
    let bound = Bind2Bound {
        stream: StreamInfo {
            id: laptop,
            ..StreamInfo::default()
        },
        user: "alice".into(),
        resource: "laptop".into(),
        bind: Element::new("bind", "urn:xmpp:bind:0").with_child(Element::new("enable", NS)),
    };
    let answer = m
        .instance
        .hook(
            hooks::BIND2_BOUND,
            wire::Bytes::new(&wire::encode(&bound).expect("encode")),
        )
        .expect("hook");
    assert_eq!(answer, None, "nothing inside <bound/>");
    let features = m
        .instance
        .hook(
            hooks::BIND2_INLINE_FEATURES,
            wire::Bytes::new(&wire::encode(&StreamInfo::default()).expect("encode")),
        )
        .expect("hook")
        .expect("reply");
    let features: Vec<Element> = wire::decode("features", &features).expect("decode");
    assert_eq!(
        xmls(&features),
        ["<feature xmlns='urn:xmpp:bind:0' var='urn:xmpp:carbons:2'/>"]
    );
    let m = m.reload(None).expect("reload");
    let sent = chat("alice@example.org/phone", "bob@example.org", "x");
    m.stanza(StanzaPoint::ClientIn, &sent, Some("alice"), Some(phone))
        .expect("hook");
    assert_eq!(
        host.take_outbox(laptop).len(),
        1,
        "enabled inline, kept over a reload"
    );
    // An IQ on a stream without a bound resource: not-allowed.
    let unbound = m
        .instance
        .iq(IqRequest {
            stream: StreamInfo {
                id: 99,
                user: Some("alice".into()),
                ..StreamInfo::default()
            },
            stanza: Element::new("iq", CLIENT_NS)
                .with_attr("type", "set")
                .with_attr("id", "u")
                .with_child(Element::new("enable", NS)),
        })
        .expect("iq")
        .expect("answered");
    assert!(unbound.to_xml_in(CLIENT_NS).contains("<not-allowed "));
}

/// Pitfall 8: three resources with priorities 5, 5 and 0, all with carbons: a message to the
/// bare JID reaches each exactly once — the two at 5 the original, the one at 0 a copy.
#[test]
fn each_resource_gets_a_message_exactly_once_with_tied_priorities() {
    let (host, m) = world();
    let a = host.add_session("alice", "a");
    let b = host.add_session("alice", "b");
    let c = host.add_session("alice", "c");
    for (s, p) in [(a, 5), (b, 5), (c, 0)] {
        host.set_presence(s, Some(p));
        iq(&m, s, "enable");
    }
    let received = chat("bob@example.org/desk", "alice@example.org", "once");
    m.stanza(StanzaPoint::ToBare, &received, Some("alice"), None)
        .expect("hook");
    let targets = bare_message_targets(
        [a, b, c].map(|s| (s, host.session(s).and_then(|x| x.presence))),
        Some("chat"),
    );
    assert_eq!(targets, [a, b], "the host delivers the original to these");
    assert!(host.take_outbox(a).is_empty() && host.take_outbox(b).is_empty());
    let copies = xmls(&host.take_outbox(c));
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(copies[0].contains("<received xmlns='urn:xmpp:carbons:2'>"));
}

/// To one's own resource that is not connected: the host delivers by the bare-JID rule, so the
/// sessions that rule picks get the original and no `<sent/>` copy besides.
#[test]
fn a_message_to_an_absent_own_resource_is_not_copied_to_who_gets_it() {
    let (host, m) = world();
    let phone = host.add_session("alice", "phone");
    let laptop = host.add_session("alice", "laptop");
    host.set_presence(laptop, Some(5));
    iq(&m, laptop, "enable");
    let own = chat(
        "alice@example.org/phone",
        "alice@example.org/gone",
        "to myself",
    );
    m.stanza(StanzaPoint::ClientIn, &own, Some("alice"), Some(phone))
        .expect("hook");
    assert!(
        host.take_outbox(laptop).is_empty(),
        "the laptop gets the original only"
    );
}
