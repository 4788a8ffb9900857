//! The module on the SDK's test host.

use std::sync::Arc;

use tessera_plugin_api::protocol::OptionValue;
use tessera_plugin_api::testing::{Loaded, TestHost, T0};

use super::*;

const DOMAIN: &str = "example.org";

fn world(max: i64) -> (Arc<TestHost>, Loaded<Offline>) {
    let host = TestHost::new(DOMAIN);
    host.add_account("alice", "pw", None);
    let mut config = Config::default();
    config.set("offline_max_messages", OptionValue::Integer(max));
    let m = host.load::<Offline>(config).expect("load");
    (host, m)
}

fn message(kind: Option<&str>, body: Option<&str>) -> Element {
    let mut m = Element::new("message", CLIENT_NS)
        .with_attr("from", "bob@example.org/desk")
        .with_attr("to", "alice@example.org");
    if let Some(kind) = kind {
        m.set_attr("type", kind);
    }
    if let Some(body) = body {
        m.push_child(Element::new("body", CLIENT_NS).with_text(body));
    }
    m
}

fn offer(m: &Loaded<Offline>, user: &str, msg: &Element) -> Option<Verdict> {
    m.stanza(StanzaPoint::Undeliverable, msg, Some(user), None)
        .expect("stanza")
}

fn available(m: &Loaded<Offline>, stream: u64, priority: i8) {
    m.event(
        im::PRESENCE_AVAILABLE,
        &PresenceAvailable {
            stream_id: stream,
            user: "alice".into(),
            full_jid: "alice@example.org/phone".into(),
            priority,
            initial: true,
        },
    )
    .expect("event");
}

#[test]
fn what_is_kept_and_what_is_not() {
    assert_eq!(decide(&message(Some("chat"), Some("hi"))), Decision::Store);
    assert_eq!(decide(&message(None, Some("hi"))), Decision::Store);
    assert_eq!(
        decide(
            &message(Some("normal"), None)
                .with_child(Element::new("received", "urn:xmpp:receipts"))
        ),
        Decision::Store
    );
    let typing = message(Some("chat"), None).with_child(Element::new("composing", CHATSTATES_NS));
    assert_eq!(decide(&typing), Decision::Drop);
    for wrapper in ["received", "sent"] {
        let carbon =
            message(Some("chat"), None).with_child(Element::new(wrapper, "urn:xmpp:carbons:2"));
        assert_eq!(decide(&carbon), Decision::Drop, "{wrapper}");
    }
    // An archive result for a query whose session ended: never replayed as a message.
    let result = message(None, None).with_child(Element::new("result", "urn:xmpp:mam:2"));
    assert_eq!(decide(&result), Decision::Drop);
    let private = message(Some("chat"), Some("hi")).with_child(Element::new("no-store", HINTS_NS));
    assert_eq!(decide(&private), Decision::Bounce);
    assert_eq!(
        decide(&message(Some("headline"), Some("x"))),
        Decision::Bounce
    );
}

#[test]
fn stored_messages_come_back_in_order_with_a_delay_at_the_first_available_session() {
    let (host, m) = world(500);
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        host.advance(1000);
        assert_eq!(
            offer(&m, "alice", &message(Some("chat"), Some(text))),
            Some(Verdict::Stored),
            "{i}"
        );
    }
    let phone = host.add_session("alice", "phone");
    // A negative priority takes nothing.
    available(&m, phone, -1);
    assert!(host.take_outbox(phone).is_empty());
    available(&m, phone, 0);
    let got: Vec<String> = host
        .take_outbox(phone)
        .iter()
        .map(|e| e.to_xml_in(CLIENT_NS))
        .collect();
    assert_eq!(got.len(), 3);
    for (i, (xml, text)) in got.iter().zip(["one", "two", "three"]).enumerate() {
        let stamp = format_utc_millis(T0 + 1000 * (i as u64 + 1));
        assert_eq!(
            *xml,
            format!("<message from='bob@example.org/desk' to='alice@example.org' type='chat'><body>{text}</body>\
                     <delay xmlns='urn:xmpp:delay' from='example.org' stamp='{stamp}'>Offline Storage</delay></message>")
        );
    }
    // Taken: a second session gets nothing.
    let laptop = host.add_session("alice", "laptop");
    available(&m, laptop, 0);
    assert!(host.take_outbox(laptop).is_empty());
}

#[test]
fn the_quota_bounces_with_resource_constraint_and_keeps_what_it_has() {
    let (host, m) = world(2);
    for _ in 0..2 {
        assert_eq!(
            offer(&m, "alice", &message(Some("chat"), Some("x"))),
            Some(Verdict::Stored)
        );
    }
    assert_eq!(
        offer(&m, "alice", &message(Some("chat"), Some("one too many"))),
        Some(Verdict::Error {
            condition: StanzaCondition::ResourceConstraint,
            text: Some("the recipient's offline storage is full".into())
        })
    );
    let phone = host.add_session("alice", "phone");
    available(&m, phone, 0);
    assert_eq!(host.take_outbox(phone).len(), 2);
}

#[test]
fn unknown_accounts_chat_states_and_no_store_are_not_kept() {
    let (host, m) = world(500);
    assert_eq!(
        offer(&m, "ghost", &message(Some("chat"), Some("hi"))),
        Some(Verdict::Pass)
    );
    let typing = message(Some("chat"), None).with_child(Element::new("composing", CHATSTATES_NS));
    assert_eq!(offer(&m, "alice", &typing), Some(Verdict::Drop));
    for wrapper in ["received", "sent"] {
        let carbon =
            message(Some("chat"), None).with_child(Element::new(wrapper, "urn:xmpp:carbons:2"));
        assert_eq!(decide(&carbon), Decision::Drop, "{wrapper}");
    }
    let private = message(Some("chat"), Some("hi")).with_child(Element::new("no-store", HINTS_NS));
    assert_eq!(offer(&m, "alice", &private), Some(Verdict::Pass));
    let phone = host.add_session("alice", "phone");
    available(&m, phone, 0);
    assert!(host.take_outbox(phone).is_empty());
}

#[test]
fn messages_for_a_session_that_vanished_go_back_to_storage() {
    let (host, m) = world(500);
    offer(&m, "alice", &message(Some("chat"), Some("kept")));
    // Stream 99 does not exist: nothing is lost.
    available(&m, 99, 0);
    let phone = host.add_session("alice", "phone");
    available(&m, phone, 0);
    assert_eq!(host.take_outbox(phone).len(), 1);
}

#[test]
fn a_long_backlog_goes_out_in_batches_a_tick_apart() {
    let (host, m) = world(500);
    for i in 0..70 {
        offer(&m, "alice", &message(Some("chat"), Some(&i.to_string())));
    }
    let phone = host.add_session("alice", "phone");
    available(&m, phone, 0);
    assert_eq!(host.take_outbox(phone).len(), 32);
    assert_eq!(
        m.run_due_timers().expect("timers"),
        0,
        "not before the tick"
    );
    host.advance(TICK_MS);
    m.run_due_timers().expect("timers");
    assert_eq!(host.take_outbox(phone).len(), 32);
    host.advance(TICK_MS);
    m.run_due_timers().expect("timers");
    let last: Vec<String> = host.take_outbox(phone).iter().map(|e| e.text()).collect();
    assert_eq!(last.len(), 6);
    host.advance(TICK_MS);
    assert_eq!(
        m.run_due_timers().expect("timers"),
        0,
        "done: no more ticks"
    );
}

/// Pitfall 16: two sessions becoming available at once each take different messages; every
/// message is delivered exactly once.
#[test]
fn two_sessions_coming_up_together_never_both_get_a_message() {
    let (host, m) = world(500);
    for i in 0..40 {
        offer(&m, "alice", &message(Some("chat"), Some(&i.to_string())));
    }
    let phone = host.add_session("alice", "phone");
    let laptop = host.add_session("alice", "laptop");
    let m = Arc::new(m);
    let threads: Vec<_> = [phone, laptop]
        .into_iter()
        .map(|s| {
            let m = m.clone();
            std::thread::spawn(move || available(&m, s, 0))
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    for _ in 0..3 {
        host.advance(TICK_MS);
        m.run_due_timers().expect("timers");
    }
    let mut bodies: Vec<u32> = [phone, laptop]
        .iter()
        .flat_map(|s| host.take_outbox(*s))
        .filter_map(|e| {
            e.child("body", CLIENT_NS)
                .map(|b| b.text().parse().unwrap_or(999))
        })
        .collect();
    bodies.sort_unstable();
    assert_eq!(bodies, (0..40).collect::<Vec<u32>>());
}

/// A hot swap in the middle of a replay: the new generation picks it up (review finding).
#[test]
fn a_reload_in_the_middle_of_a_replay_carries_it_on() {
    let (host, m) = world(500);
    for i in 0..70 {
        offer(&m, "alice", &message(Some("chat"), Some(&i.to_string())));
    }
    let phone = host.add_session("alice", "phone");
    available(&m, phone, 0);
    assert_eq!(host.take_outbox(phone).len(), 32);
    let m = m.reload(None).expect("reload");
    let mut rest = 0;
    for _ in 0..4 {
        host.advance(TICK_MS);
        m.run_due_timers().expect("timers");
        rest += host.take_outbox(phone).len();
    }
    assert_eq!(rest, 38, "the other 38 came after the reload");
    assert!(host.timers().is_empty(), "and then no more ticks");
}

fn world_with(options: &[(&str, i64)]) -> (Arc<TestHost>, Loaded<Offline>) {
    let host = TestHost::new(DOMAIN);
    host.add_account("alice", "pw", None);
    let mut config = Config::default();
    for (key, value) in options {
        config.set(key, OptionValue::Integer(*value));
    }
    let m = host.load::<Offline>(config).expect("load");
    (host, m)
}

/// A roster module in which alice has one contact, bob.
fn roster_with_bob(host: &TestHost) {
    host.on_hook(im::ROSTER_CONTACTS, |payload| {
        let query: ContactsQuery = wire::decode("query", payload).ok()?;
        let bob = "bob@example.org";
        let contacts: Vec<Contact> = match query.contact.as_deref() {
            Some(jid) if jid != bob => Vec::new(),
            _ => vec![Contact {
                jid: bob.into(),
                to: true,
                from: true,
            }],
        };
        wire::encode(&contacts).ok()
    });
}

fn from(sender: &str, body: &str) -> Element {
    let mut m = message(Some("chat"), Some(body));
    m.set_attr("from", format!("{sender}/res"));
    m
}

fn bounced(text: &str) -> Option<Verdict> {
    Some(Verdict::Error {
        condition: StanzaCondition::ResourceConstraint,
        text: Some(text.into()),
    })
}

#[test]
fn the_byte_quota_bounces_what_would_go_beyond_it() {
    let (host, m) = world_with(&[("offline_max_bytes", 65_536)]);
    let big = "x".repeat(20_000);
    for _ in 0..3 {
        assert_eq!(
            offer(&m, "alice", &message(Some("chat"), Some(&big))),
            Some(Verdict::Stored)
        );
    }
    assert_eq!(
        offer(&m, "alice", &message(Some("chat"), Some(&big))),
        bounced("the recipient's offline storage is full (size)")
    );
    // A small one still fits in what is left.
    assert_eq!(
        offer(&m, "alice", &message(Some("chat"), Some("small"))),
        Some(Verdict::Stored)
    );
    let phone = host.add_session("alice", "phone");
    available(&m, phone, 0);
    assert_eq!(host.take_outbox(phone).len(), 4, "nothing stored was lost");
}

#[test]
fn strangers_share_of_the_mailbox_is_bounded_and_contacts_still_get_through() {
    let (host, m) = world_with(&[("offline_max_messages_from_strangers", 2)]);
    roster_with_bob(&host);
    for (i, sender) in ["mallory@example.org", "trudy@example.org"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            offer(&m, "alice", &from(sender, &i.to_string())),
            Some(Verdict::Stored)
        );
    }
    assert_eq!(
        offer(&m, "alice", &from("eve@example.org", "third stranger")),
        bounced("the recipient keeps no more offline messages from senders outside their contacts")
    );
    for i in 0..5 {
        assert_eq!(
            offer(&m, "alice", &from("bob@example.org", &format!("bob {i}"))),
            Some(Verdict::Stored),
            "a contact is not held back by strangers"
        );
    }
    // The server and the account itself are no strangers either.
    assert_eq!(
        offer(&m, "alice", &from("alice@example.org", "note to self")),
        Some(Verdict::Stored)
    );
    // Put back after a failed delivery, the strangers' messages keep their class.
    available(&m, 99, 0);
    assert_eq!(
        offer(&m, "alice", &from("eve@example.org", "still no")),
        bounced("the recipient keeps no more offline messages from senders outside their contacts")
    );
    let phone = host.add_session("alice", "phone");
    available(&m, phone, 0);
    assert_eq!(host.take_outbox(phone).len(), 8);
}

#[test]
fn without_a_roster_there_are_no_strangers() {
    let (_host, m) = world_with(&[("offline_max_messages_from_strangers", 1)]);
    for i in 0..3 {
        assert_eq!(
            offer(&m, "alice", &from(&format!("s{i}@example.org"), "hi")),
            Some(Verdict::Stored)
        );
    }
}

#[test]
fn strangers_share_zero_stores_nothing_of_theirs() {
    let (host, m) = world_with(&[("offline_max_messages_from_strangers", 0)]);
    roster_with_bob(&host);
    assert_eq!(
        offer(&m, "alice", &from("eve@example.org", "hi")),
        bounced("the recipient keeps no more offline messages from senders outside their contacts")
    );
    assert_eq!(
        offer(&m, "alice", &from("bob@example.org", "hi")),
        Some(Verdict::Stored)
    );
}
