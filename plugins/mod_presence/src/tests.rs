//! The module on the SDK's test host, with a roster answered by a closure: alice has bob
//! (`both`) and carol (`to`: alice sees carol, carol does not see alice); dave is nobody's.

use std::sync::Arc;

use tessera_plugin_api::events::{SessionEvent, SESSION_CLOSED};
use tessera_plugin_api::testing::{Loaded, TestHost};
use tessera_plugin_api::{ModuleCalls, StanzaPoint};

use super::*;

const DOMAIN: &str = "example.org";

fn roster(user: &str) -> Vec<Contact> {
    let c = |jid: &str, to, from| Contact {
        jid: jid.into(),
        to,
        from,
    };
    match user {
        "alice" => vec![
            c("bob@example.org", true, true),
            c("carol@example.org", true, false),
        ],
        "bob" => vec![c("alice@example.org", true, true)],
        "carol" => vec![c("alice@example.org", false, true)],
        _ => vec![],
    }
}

fn world(with_roster: bool) -> (Arc<TestHost>, Loaded<Presence>) {
    let host = TestHost::new(DOMAIN);
    for user in ["alice", "bob", "carol", "dave"] {
        host.add_account(user, "pw", None);
    }
    if with_roster {
        host.on_hook(im::ROSTER_CONTACTS, |payload| {
            let q: ContactsQuery = wire::decode("roster-contacts", payload).ok()?;
            let all = roster(&q.user);
            let picked: Vec<Contact> = match &q.contact {
                Some(jid) => all.into_iter().filter(|c| c.jid == *jid).collect(),
                None => all,
            };
            wire::encode(&picked).ok()
        });
    }
    let loaded = host.load::<Presence>(Config::default()).expect("load");
    (host, loaded)
}

fn send(m: &Loaded<Presence>, stream: u64, presence: Element) -> Option<Verdict> {
    let s = m.test_host().session(stream).expect("session");
    let presence = presence.with_attr("from", &s.full_jid);
    m.stanza(
        StanzaPoint::ClientIn,
        &presence,
        Some(&s.user),
        Some(stream),
    )
    .expect("stanza")
}

fn xmls(els: &[Element]) -> Vec<String> {
    els.iter().map(|e| e.to_xml_in(CLIENT_NS)).collect()
}

fn available(show: &str) -> Element {
    Element::new("presence", CLIENT_NS).with_child(Element::new("show", CLIENT_NS).with_text(show))
}

#[test]
fn priority_is_read_within_its_range_and_defaults_to_zero() {
    let p = |children: &[(&str, &str)], kind: Option<&str>| {
        let mut p = Element::new("presence", CLIENT_NS);
        if let Some(kind) = kind {
            p.set_attr("type", kind);
        }
        for (name, text) in children {
            p.push_child(Element::new(*name, CLIENT_NS).with_text(*text));
        }
        p
    };
    assert_eq!(availability(&p(&[], None)), Some(0));
    assert_eq!(availability(&p(&[("priority", " 5 ")], None)), Some(5));
    assert_eq!(availability(&p(&[("priority", "-128")], None)), Some(-128));
    assert_eq!(availability(&p(&[("priority", "128")], None)), Some(0));
    assert_eq!(availability(&p(&[("priority", "x")], None)), Some(0));
    assert_eq!(
        availability(&p(&[("priority", "5")], Some("unavailable"))),
        None
    );
}

#[test]
fn initial_presence_goes_to_subscribers_and_own_resources_and_probes_the_contacts() {
    let (host, m) = world(true);
    let laptop = host.add_session("alice", "laptop");
    let phone = host.add_session("alice", "phone");
    let quiet = host.add_session("alice", "quiet");
    assert_eq!(send(&m, laptop, available("away")), Some(Verdict::Handled));
    assert_eq!(host.session(laptop).and_then(|s| s.presence), Some(0));
    // The sender sees its own presence; a sibling that is not available does not.
    assert_eq!(
        xmls(&host.take_outbox(laptop)),
        ["<presence from='alice@example.org/laptop'><show>away</show></presence>"]
    );
    assert!(host.take_outbox(quiet).is_empty());
    // Bob sees alice (from/both); carol does not. Bob and carol are probed (to/both).
    assert_eq!(
        xmls(&host.take_routed()),
        [
            "<presence from='alice@example.org/laptop' to='bob@example.org'><show>away</show></presence>",
            "<presence type='probe' from='alice@example.org' to='bob@example.org'/>",
            "<presence type='probe' from='alice@example.org' to='carol@example.org'/>",
        ]
    );
    let fired: Vec<PresenceAvailable> = host.fired_as(im::PRESENCE_AVAILABLE);
    assert_eq!(fired.len(), 1);
    assert!(fired[0].initial && fired[0].stream_id == laptop);
    // A second resource comes up: it is shown the first; the first sees it.
    send(&m, phone, Element::new("presence", CLIENT_NS));
    let to_phone = xmls(&host.take_outbox(phone));
    assert_eq!(
        to_phone,
        [
            "<presence from='alice@example.org/phone'/>",
            "<presence from='alice@example.org/laptop'><show>away</show></presence>"
        ]
    );
    assert_eq!(
        xmls(&host.take_outbox(laptop)),
        ["<presence from='alice@example.org/phone'/>"]
    );
}

#[test]
fn probes_are_answered_by_subscription() {
    let (host, m) = world(true);
    let laptop = host.add_session("alice", "laptop");
    let probe = |from: &str, to: &str| {
        Element::new("presence", CLIENT_NS)
            .with_attr("type", "probe")
            .with_attr("id", "p1")
            .with_attr("from", from)
            .with_attr("to", to)
    };
    let ask = |from: &str, to: &str, point| {
        let user = to.split('@').next().unwrap_or_default().to_owned();
        m.stanza(point, &probe(from, to), Some(&user), None)
            .expect("stanza")
    };
    // Not available yet: unavailable, with the probe's id.
    ask("bob@example.org", "alice@example.org", StanzaPoint::ToBare);
    assert_eq!(
        xmls(&host.take_routed()),
        ["<presence type='unavailable' from='alice@example.org' to='bob@example.org' id='p1'/>"]
    );
    send(&m, laptop, available("dnd"));
    host.take_routed();
    // Bob is subscribed: the last presence. Carol and dave are not: unsubscribed.
    ask("bob@example.org", "alice@example.org", StanzaPoint::ToBare);
    assert_eq!(
        xmls(&host.take_routed()),
        ["<presence from='alice@example.org/laptop' to='bob@example.org'><show>dnd</show></presence>"]
    );
    for stranger in ["carol@example.org", "dave@example.org"] {
        ask(stranger, "alice@example.org", StanzaPoint::ToBare);
        assert_eq!(
            xmls(&host.take_routed()),
            [format!(
                "<presence type='unsubscribed' from='alice@example.org' to='{stranger}'/>"
            )]
        );
    }
    // A probe to another resource of alice learns nothing about the laptop.
    ask(
        "bob@example.org",
        "alice@example.org/phone",
        StanzaPoint::ToFull,
    );
    assert_eq!(
        xmls(&host.take_routed()),
        ["<presence type='unavailable' from='alice@example.org/phone' to='bob@example.org' id='p1'/>"]
    );
    // To an account that does not exist: dropped.
    assert_eq!(
        ask("bob@example.org", "ghost@example.org", StanzaPoint::ToBare),
        Some(Verdict::Drop)
    );
}

#[test]
fn without_a_roster_module_probes_are_dropped_and_presence_stays_home() {
    let (host, m) = world(false);
    let laptop = host.add_session("alice", "laptop");
    send(&m, laptop, available("chat"));
    assert!(host.take_routed().is_empty());
    let probe = Element::new("presence", CLIENT_NS)
        .with_attr("type", "probe")
        .with_attr("from", "bob@example.org")
        .with_attr("to", "alice@example.org");
    assert_eq!(
        m.stanza(StanzaPoint::ToBare, &probe, Some("alice"), None)
            .expect("stanza"),
        Some(Verdict::Drop)
    );
}

#[test]
fn a_lost_session_is_announced_unavailable_to_subscribers_and_directed_targets() {
    let (host, m) = world(true);
    let laptop = host.add_session("alice", "laptop");
    let phone = host.add_session("alice", "phone");
    send(&m, laptop, available("chat"));
    send(&m, phone, Element::new("presence", CLIENT_NS));
    // Directed presence to dave (no subscription) is remembered; to bob (both) it is not.
    for to in ["dave@example.org", "bob@example.org"] {
        let directed = Element::new("presence", CLIENT_NS).with_attr("to", to);
        assert_eq!(send(&m, laptop, directed), Some(Verdict::Pass));
    }
    host.take_routed();
    host.take_outbox(phone);
    m.event(
        SESSION_CLOSED,
        &SessionEvent {
            stream_id: laptop,
            jid: Some("alice@example.org/laptop".into()),
            reason: Some("disconnected".into()),
        },
    )
    .expect("event");
    assert_eq!(
        xmls(&host.take_routed()),
        [
            "<presence type='unavailable' from='alice@example.org/laptop' to='bob@example.org'/>",
            "<presence type='unavailable' from='alice@example.org/laptop' to='dave@example.org'/>",
        ]
    );
    assert_eq!(
        xmls(&host.take_outbox(phone)),
        ["<presence type='unavailable' from='alice@example.org/laptop'/>"]
    );
    // Its presence is no longer current.
    let current = m
        .instance
        .hook(
            PRESENCE_CURRENT,
            wire::Bytes::new(
                &wire::encode(&PresenceQuery {
                    user: "alice".into(),
                })
                .expect("encode"),
            ),
        )
        .expect("hook")
        .expect("reply");
    let current: Vec<Element> = wire::decode("presence-current", &current).expect("decode");
    assert_eq!(
        xmls(&current),
        ["<presence from='alice@example.org/phone'/>"]
    );
}

#[test]
fn unavailable_undoes_directed_presence_and_state_survives_a_reload() {
    let (host, m) = world(true);
    let laptop = host.add_session("alice", "laptop");
    send(
        &m,
        laptop,
        Element::new("presence", CLIENT_NS)
            .with_child(Element::new("priority", CLIENT_NS).with_text("-1")),
    );
    let directed =
        Element::new("presence", CLIENT_NS).with_attr("to", "room@conference.example.org/alice");
    send(&m, laptop, directed);
    let m = m.reload(None).expect("reload");
    // Priority up from negative: messages are due (not an initial presence).
    send(&m, laptop, Element::new("presence", CLIENT_NS));
    let fired: Vec<PresenceAvailable> = host.fired_as(im::PRESENCE_AVAILABLE);
    assert_eq!(
        fired
            .iter()
            .map(|f| (f.initial, f.priority))
            .collect::<Vec<_>>(),
        [(true, -1), (false, 0)]
    );
    host.take_routed();
    let bye = Element::new("presence", CLIENT_NS).with_attr("type", "unavailable");
    send(&m, laptop, bye);
    assert_eq!(host.session(laptop).and_then(|s| s.presence), None);
    assert_eq!(
        xmls(&host.take_routed()),
        [
            "<presence type='unavailable' from='alice@example.org/laptop' to='bob@example.org'/>",
            "<presence type='unavailable' from='alice@example.org/laptop' to='room@conference.example.org/alice'/>",
        ]
    );
}

/// A reconnect that takes over the same full JID (Bind 2's stable resource) before the old
/// stream's close is handled: contacts are not told the resource went away.
#[test]
fn a_resource_taken_over_by_a_reconnect_is_not_announced_gone() {
    let (host, m) = world(true);
    let old = host.add_session("alice", "phone");
    send(&m, old, available("chat"));
    // The new stream binds the same resource; the old one's close arrives afterwards.
    let new = host.add_session("alice", "phone");
    send(&m, new, available("chat"));
    host.take_routed();
    host.take_outbox(new);
    m.event(
        SESSION_CLOSED,
        &SessionEvent {
            stream_id: old,
            jid: Some("alice@example.org/phone".into()),
            reason: Some("conflict".into()),
        },
    )
    .expect("event");
    assert!(host.take_routed().is_empty(), "no unavailable to contacts");
    assert!(host.take_outbox(new).is_empty(), "nor to the new session");
}
