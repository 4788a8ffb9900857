//! The module on the SDK's test host: roster IQs, pushes, versioning, and subscriptions between
//! two accounts carried by hand from one account's outbound hook to the other's inbound hook
//! (what the server's router does).

use std::sync::Arc;

use tessera_plugin_api::im::{Contact, ContactsQuery, PresenceAvailable, PresenceQuery};
use tessera_plugin_api::protocol::{OptionValue, StreamInfo};
use tessera_plugin_api::testing::{Loaded, TestHost};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{wire, Config, ModuleCalls, StanzaPoint, Verdict};

use super::*;

const DOMAIN: &str = "example.org";

struct World {
    host: Arc<TestHost>,
    roster: Loaded<Roster>,
}

fn world_with(config: Config) -> World {
    let host = TestHost::new(DOMAIN);
    for user in ["alice", "bob"] {
        host.add_account(user, "pw", None);
    }
    // The presence module's answer: one available resource with a status.
    host.on_hook(im::PRESENCE_CURRENT, |payload| {
        let q: PresenceQuery = wire::decode("presence-current", payload).ok()?;
        let presence = Element::new("presence", CLIENT_NS)
            .with_attr("from", format!("{}@{DOMAIN}/desk", q.user))
            .with_child(Element::new("status", CLIENT_NS).with_text("here"));
        wire::encode(&vec![presence]).ok()
    });
    let roster = host.load::<Roster>(config).expect("load");
    World { host, roster }
}

fn world() -> World {
    world_with(Config::default())
}

impl World {
    fn session(&self, user: &str, resource: &str) -> u64 {
        self.host.add_session(user, resource)
    }

    fn iq(&self, stream: u64, iq: Element) -> Element {
        let s = self.host.session(stream).expect("session");
        let request = IqRequest {
            stream: StreamInfo {
                id: stream,
                domain: DOMAIN.into(),
                user: Some(s.user.clone()),
                jid: Some(s.full_jid.clone()),
                ..StreamInfo::default()
            },
            stanza: iq.with_attr("from", &s.full_jid),
        };
        self.roster
            .instance
            .iq(request)
            .expect("iq")
            .expect("answered")
    }

    /// A client's subscription stanza through the outbound hook.
    fn send(&self, stream: u64, presence: Element) -> Verdict {
        let s = self.host.session(stream).expect("session");
        let presence = presence.with_attr("from", &s.full_jid);
        self.roster
            .stanza(
                StanzaPoint::ClientIn,
                &presence,
                Some(&s.user),
                Some(stream),
            )
            .expect("stanza")
            .expect("hooked")
    }

    /// Carry what the module routed to each local recipient's inbound hook (one hop).
    fn carry(&self) -> Vec<Element> {
        let routed = self.host.take_routed();
        for stanza in &routed {
            let to = stanza.attr("to").unwrap_or_default();
            let user = to.split('@').next().unwrap_or_default().to_owned();
            let point = if to.contains('/') {
                StanzaPoint::ToFull
            } else {
                StanzaPoint::ToBare
            };
            // Only subscription stanzas are the module's; presence goes to a presence module.
            let _ = self.roster.stanza(point, stanza, Some(&user), None);
        }
        routed
    }

    /// Alice ("phone") and bob ("desk"), both available, subscribed both ways.
    fn befriended(&self) -> (u64, u64) {
        let alice = self.session("alice", "phone");
        let bob = self.session("bob", "desk");
        self.host.set_presence(alice, Some(0));
        self.host.set_presence(bob, Some(0));
        for (from, kind, to) in [
            (alice, "subscribe", "bob@example.org"),
            (bob, "subscribed", "alice@example.org"),
            (bob, "subscribe", "alice@example.org"),
            (alice, "subscribed", "bob@example.org"),
        ] {
            self.send(from, presence(kind, to));
            self.carry();
        }
        (alice, bob)
    }

    /// What other modules see through the `roster-contacts` hook: every contact of `user`.
    fn contacts_of(&self, user: &str) -> Vec<Contact> {
        let query = ContactsQuery {
            user: user.into(),
            contact: None,
        };
        let reply = self
            .roster
            .instance
            .hook(
                ROSTER_CONTACTS,
                wire::Bytes::new(&wire::encode(&query).expect("encode")),
            )
            .expect("hook")
            .expect("reply");
        wire::decode("roster-contacts", &reply).expect("decode")
    }

    fn item(&self, user: &str, contact: &str) -> Option<Item> {
        Store::of(self.roster.host(), user)
            .item(contact)
            .expect("store")
    }
}

fn roster_get(ver: Option<&str>) -> Element {
    let mut query = Element::new("query", NS);
    if let Some(ver) = ver {
        query.set_attr("ver", ver);
    }
    Element::new("iq", CLIENT_NS)
        .with_attr("type", "get")
        .with_attr("id", "g")
        .with_child(query)
}

fn roster_set(items: Vec<Element>) -> Element {
    let mut query = Element::new("query", NS);
    for item in items {
        query.push_child(item);
    }
    Element::new("iq", CLIENT_NS)
        .with_attr("type", "set")
        .with_attr("id", "s")
        .with_child(query)
}

fn item_el(jid: &str) -> Element {
    Element::new("item", NS).with_attr("jid", jid)
}

fn presence(kind: &str, to: &str) -> Element {
    Element::new("presence", CLIENT_NS)
        .with_attr("type", kind)
        .with_attr("to", to)
}

fn xml(el: &Element) -> String {
    el.to_xml_in(CLIENT_NS)
}

fn xmls(els: &[Element]) -> Vec<String> {
    els.iter().map(xml).collect()
}

#[test]
fn set_get_versioning_and_pushes_go_to_interested_resources_only() {
    let w = world();
    let phone = w.session("alice", "phone");
    let laptop = w.session("alice", "laptop");
    let first = w.iq(phone, roster_get(Some("")));
    assert_eq!(
        xml(&first),
        "<iq type='result' id='g' to='alice@example.org/phone'><query xmlns='jabber:iq:roster' ver='0'/></iq>"
    );
    let set = item_el("Bob@Example.org")
        .with_attr("name", "Bob")
        .with_child(Element::new("group", NS).with_text("Friends"));
    let answer = w.iq(laptop, roster_set(vec![set]));
    assert_eq!(
        xml(&answer),
        "<iq type='result' id='s' to='alice@example.org/laptop'/>"
    );
    // The phone fetched the roster and gets the push; the laptop did not, and gets none.
    assert_eq!(
        xmls(&w.host.take_outbox(phone)),
        ["<iq type='set' id='roster-push-1' to='alice@example.org/phone'><query xmlns='jabber:iq:roster' ver='1'>\
          <item jid='bob@example.org' name='Bob' subscription='none'><group>Friends</group></item></query></iq>"]
    );
    assert!(w.host.take_outbox(laptop).is_empty());
    // Current version: an empty result; an older one: the whole roster.
    assert_eq!(
        xml(&w.iq(phone, roster_get(Some("1")))),
        "<iq type='result' id='g' to='alice@example.org/phone'/>"
    );
    let full = xml(&w.iq(laptop, roster_get(Some("0"))));
    assert!(
        full.contains(
            "<query xmlns='jabber:iq:roster' ver='1'><item jid='bob@example.org' name='Bob'"
        ),
        "{full}"
    );
    // Now the laptop is interested too; a rename reaches both, with version 2.
    w.iq(
        phone,
        roster_set(vec![item_el("bob@example.org").with_attr("name", "Robert")]),
    );
    for s in [phone, laptop] {
        let pushes = xmls(&w.host.take_outbox(s));
        assert_eq!(pushes.len(), 1);
        assert!(
            pushes[0].contains(
                "ver='2'><item jid='bob@example.org' name='Robert' subscription='none'/>"
            ),
            "{pushes:?}"
        );
    }
}

#[test]
fn two_accounts_subscribe_to_each_other_and_end_up_both() {
    let w = world();
    let alice = w.session("alice", "phone");
    let bob = w.session("bob", "desk");
    w.host.set_presence(bob, Some(0));
    w.iq(alice, roster_get(None));
    w.iq(bob, roster_get(None));
    // Alice asks, with an extension that must survive (RFC 6121 §3.1.3, pitfall 18).
    let ask = presence("subscribe", "bob@example.org/desk")
        .with_child(Element::new("nick", "http://jabber.org/protocol/nick").with_text("Al"));
    assert_eq!(w.send(alice, ask), Verdict::Handled);
    let routed = w.carry();
    assert_eq!(
        xmls(&routed),
        [
            "<presence type='subscribe' to='bob@example.org' from='alice@example.org'>\
          <nick xmlns='http://jabber.org/protocol/nick'>Al</nick></presence>"
        ],
        "bare from and to"
    );
    assert!(xmls(&w.host.take_outbox(alice))[0].contains("subscription='none' ask='subscribe'"));
    // Bob's available resource sees the request, to his bare JID (RFC 6121 §8.5.2.1: `to` is
    // not rewritten); nothing shows in his roster yet.
    let seen = xmls(&w.host.take_outbox(bob));
    assert_eq!(
        seen,
        [
            "<presence type='subscribe' to='bob@example.org' from='alice@example.org'>\
          <nick xmlns='http://jabber.org/protocol/nick'>Al</nick></presence>"
        ]
    );
    assert_eq!(w.item("bob", "alice@example.org"), None);
    // Bob approves: the answer, his push, then his presence to Alice.
    w.send(bob, presence("subscribed", "alice@example.org"));
    let routed = xmls(&w.carry());
    assert_eq!(
        routed[0],
        "<presence type='subscribed' to='alice@example.org' from='bob@example.org'/>"
    );
    assert_eq!(
        routed[1],
        "<presence from='bob@example.org/desk' to='alice@example.org'><status>here</status></presence>"
    );
    assert!(xmls(&w.host.take_outbox(bob))[0].contains("subscription='from'"));
    // Alice's phone fetched the roster: it gets the answer, then the push (in that order).
    let to_alice = xmls(&w.host.take_outbox(alice));
    assert_eq!(
        to_alice[0],
        "<presence type='subscribed' to='alice@example.org' from='bob@example.org'/>"
    );
    assert!(
        to_alice[1].contains("<item jid='bob@example.org' subscription='to'/>"),
        "{to_alice:?}"
    );
    // And back: Bob subscribes to Alice, she approves.
    w.host.set_presence(alice, Some(0));
    w.send(bob, presence("subscribe", "alice@example.org"));
    w.carry();
    w.send(alice, presence("subscribed", "bob@example.org"));
    w.carry();
    for (user, contact) in [("alice", "bob@example.org"), ("bob", "alice@example.org")] {
        let item = w.item(user, contact).expect("item");
        assert_eq!(
            (item.subscription, item.pending_out, item.approved),
            (Subscription::Both, false, false),
            "{user}"
        );
    }
    // Other modules see it through the hook.
    let contacts = w.contacts_of("alice");
    assert_eq!(
        contacts,
        [Contact {
            jid: "bob@example.org".into(),
            to: true,
            from: true
        }]
    );
}

use crate::subscription::Subscription;

#[test]
fn a_request_to_an_offline_account_is_kept_and_shown_at_each_new_available_resource() {
    let w = world();
    let alice = w.session("alice", "phone");
    let ask = presence("subscribe", "bob@example.org")
        .with_child(Element::new("status", CLIENT_NS).with_text("it's Alice"));
    w.send(alice, ask);
    w.carry();
    // Bob connects later: each resource that becomes available gets the request, whole.
    for resource in ["desk", "phone"] {
        let bob = w.session("bob", resource);
        w.roster
            .event(
                im::PRESENCE_AVAILABLE,
                &PresenceAvailable {
                    stream_id: bob,
                    user: "bob".into(),
                    full_jid: format!("bob@example.org/{resource}"),
                    priority: 0,
                    initial: true,
                },
            )
            .expect("event");
        assert_eq!(
            xmls(&w.host.take_outbox(bob)),
            [
                "<presence type='subscribe' to='bob@example.org' from='alice@example.org'>\
              <status>it's Alice</status></presence>"
            ],
            "{resource}"
        );
    }
    // Denied: forgotten, and Alice's request is no longer pending.
    let bob = w.session("bob", "laptop");
    w.send(bob, presence("unsubscribed", "alice@example.org"));
    w.carry();
    assert_eq!(
        Store::of(w.roster.host(), "bob")
            .summary()
            .expect("store")
            .requests(),
        0
    );
    let item = w.item("alice", "bob@example.org").expect("item");
    assert_eq!(
        (item.subscription, item.pending_out),
        (Subscription::None, false)
    );
}

#[test]
fn pre_approval_answers_the_later_request_without_asking() {
    let w = world();
    let bob = w.session("bob", "desk");
    w.iq(bob, roster_get(None));
    assert_eq!(
        w.send(bob, presence("subscribed", "alice@example.org")),
        Verdict::Handled
    );
    assert!(
        w.host.take_routed().is_empty(),
        "a pre-approval is not routed"
    );
    assert!(xmls(&w.host.take_outbox(bob))[0].contains("subscription='none' approved='true'"));
    let alice = w.session("alice", "phone");
    w.send(alice, presence("subscribe", "bob@example.org"));
    let routed = xmls(&w.carry());
    assert_eq!(routed.len(), 1);
    // Bob's server answered for him, and sent his presence; he was not asked.
    let answers = xmls(&w.carry());
    assert_eq!(
        answers[0],
        "<presence type='subscribed' from='bob@example.org' to='alice@example.org'/>"
    );
    assert!(
        answers[1].starts_with("<presence from='bob@example.org/desk'"),
        "{answers:?}"
    );
    let to_bob = xmls(&w.host.take_outbox(bob));
    assert!(
        to_bob.iter().all(|x| !x.contains("type='subscribe'")),
        "{to_bob:?}"
    );
    assert_eq!(
        w.item("alice", "bob@example.org").map(|i| i.subscription),
        Some(Subscription::To)
    );
}

#[test]
fn removing_an_item_unsubscribes_both_ways_on_the_accounts_behalf() {
    let w = world();
    let (alice, _bob) = w.befriended();
    let answer = w.iq(
        alice,
        roster_set(vec![
            item_el("bob@example.org").with_attr("subscription", "remove")
        ]),
    );
    assert_eq!(answer.attr("type"), Some("result"));
    let routed = xmls(&w.carry());
    assert_eq!(
        routed,
        [
            "<presence type='unsubscribe' from='alice@example.org' to='bob@example.org'/>",
            "<presence type='unavailable' from='alice@example.org/phone' to='bob@example.org'/>",
            "<presence type='unsubscribed' from='alice@example.org' to='bob@example.org'/>",
        ]
    );
    assert_eq!(w.item("alice", "bob@example.org"), None);
    assert_eq!(
        w.item("bob", "alice@example.org").map(|i| i.subscription),
        Some(Subscription::None)
    );
    // Removing it again: item-not-found.
    let again = xml(&w.iq(
        alice,
        roster_set(vec![
            item_el("bob@example.org").with_attr("subscription", "remove")
        ]),
    ));
    assert!(
        again.contains("<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"),
        "{again}"
    );
}

#[test]
fn bad_input_gets_its_precise_error_and_changes_nothing() {
    let mut config = Config::default();
    config.set("roster_max_items", OptionValue::Integer(1));
    let w = world_with(config);
    let alice = w.session("alice", "phone");
    w.iq(alice, roster_set(vec![item_el("carol@example.org")]));
    w.host.take_outbox(alice);
    let error_of = |answer: &Element| -> String {
        let e = answer.child("error", CLIENT_NS).expect("an error");
        e.child_elements()
            .next()
            .map(|c| c.name.clone())
            .unwrap_or_default()
    };
    let cases = [
        (
            roster_set(vec![item_el("a@example.org"), item_el("b@example.org")]),
            "bad-request",
        ),
        (
            roster_set(vec![item_el("a b@example.org")]),
            "jid-malformed",
        ),
        (
            roster_set(vec![item_el("dave@example.org")]),
            "policy-violation",
        ),
        (
            roster_set(vec![item_el("alice@example.org")]),
            "not-allowed",
        ),
    ];
    for (iq, condition) in cases {
        let answer = w.iq(alice, iq);
        assert_eq!(answer.attr("type"), Some("error"));
        assert_eq!(error_of(&answer), condition);
    }
    // A subscription to oneself, and one with no `to`.
    assert_eq!(
        w.send(alice, presence("subscribe", "alice@example.org/phone")),
        Verdict::Error {
            condition: StanzaCondition::NotAllowed,
            text: Some("an account is always subscribed to its own presence".into())
        }
    );
    let no_to = Element::new("presence", CLIENT_NS).with_attr("type", "subscribe");
    assert!(matches!(
        w.send(alice, no_to),
        Verdict::Error {
            condition: StanzaCondition::BadRequest,
            ..
        }
    ));
    // A subscription that would add a second item to a full roster.
    assert!(matches!(
        w.send(alice, presence("subscribe", "dave@example.org")),
        Verdict::Error {
            condition: StanzaCondition::PolicyViolation,
            ..
        }
    ));
    // Nothing was routed, pushed or stored; the one good item is intact.
    assert!(w.host.take_routed().is_empty());
    assert!(w.host.take_outbox(alice).is_empty());
    let items = Store::of(w.roster.host(), "alice").items().expect("items");
    assert_eq!(items, [Item::new("carol@example.org")]);
    assert_eq!(
        Store::of(w.roster.host(), "alice")
            .summary()
            .expect("ver")
            .ver,
        1
    );
}

#[test]
fn stanzas_to_an_account_that_does_not_exist_are_dropped_silently() {
    let w = world();
    let alice = w.session("alice", "phone");
    w.send(alice, presence("subscribe", "ghost@example.org"));
    let routed = w.host.take_routed();
    let verdict = w
        .roster
        .stanza(StanzaPoint::ToBare, &routed[0], Some("ghost"), None)
        .expect("stanza");
    assert_eq!(verdict, Some(Verdict::Drop));
    assert!(w.host.kv("roster", Some("ghost")).is_empty());
}

#[test]
fn features_are_offered_after_authentication_only() {
    let w = world();
    let mut stream = StreamInfo {
        secure: true,
        ..StreamInfo::default()
    };
    assert!(w
        .roster
        .instance
        .stream_features(stream.clone())
        .expect("features")
        .is_empty());
    stream.user = Some("alice".into());
    let features = xmls(&w.roster.instance.stream_features(stream).expect("features"));
    assert_eq!(
        features,
        [
            "<ver xmlns='urn:xmpp:features:rosterver'/>",
            "<sub xmlns='urn:xmpp:features:pre-approval'/>"
        ]
    );
}

/// Pitfall 20: a client's roster set racing the contact's `subscribed`, 200 times over on two
/// threads: every time, the final item holds both the name and the subscription.
#[test]
fn a_roster_set_racing_an_inbound_subscribed_loses_neither() {
    let w = Arc::new(world());
    let alice = w.session("alice", "phone");
    for round in 0..200 {
        let contact = format!("c{round}@example.org");
        w.send(alice, presence("subscribe", &contact));
        w.host.take_routed();
        let name = format!("Contact {round}");
        let setter = {
            let w = w.clone();
            let (contact, name) = (contact.clone(), name.clone());
            std::thread::spawn(move || {
                w.iq(
                    alice,
                    roster_set(vec![item_el(&contact).with_attr("name", &name)]),
                );
            })
        };
        let answer = presence("subscribed", "alice@example.org").with_attr("from", &contact);
        w.roster
            .stanza(StanzaPoint::ToBare, &answer, Some("alice"), None)
            .expect("stanza");
        setter.join().expect("setter");
        let item = w.item("alice", &contact).expect("item");
        assert_eq!(
            (item.name.as_deref(), item.subscription, item.pending_out),
            (Some(name.as_str()), Subscription::To, false),
            "round {round}"
        );
    }
}

/// Deleting an account: before its roster goes, every contact is told (unsubscribe and
/// unsubscribed for a mutual subscription, unavailable first), so nobody who registers the name
/// again inherits the subscriptions.
#[test]
fn an_account_about_to_be_deleted_ends_its_subscriptions() {
    let w = world();
    let (_alice, _bob) = w.befriended();
    let payload = wire::encode(&tessera_plugin_api::events::UserDeleted {
        user: "alice".into(),
    })
    .expect("encode");
    let reply = w
        .roster
        .instance
        .hook(
            tessera_plugin_api::events::hooks::ACCOUNT_DELETING,
            wire::Bytes::new(&payload),
        )
        .expect("hook");
    assert_eq!(reply, None);
    let routed = xmls(&w.carry());
    assert_eq!(
        routed,
        [
            "<presence type='unsubscribe' from='alice@example.org' to='bob@example.org'/>",
            "<presence type='unavailable' from='alice@example.org/phone' to='bob@example.org'/>",
            "<presence type='unsubscribed' from='alice@example.org' to='bob@example.org'/>",
        ]
    );
    let item = w.item("bob", "alice@example.org").expect("item");
    assert_eq!(
        item.subscription,
        Subscription::None,
        "bob no longer shares with the name"
    );
}

fn config(options: &[(&str, i64)]) -> Config {
    let mut config = Config::default();
    for (key, value) in options {
        config.set(key, OptionValue::Integer(*value));
    }
    config
}

/// A contact's `subscribe` arriving for alice (through her inbound hook).
fn request_from(w: &World, contact: &str, extra: Option<Element>) {
    let mut stanza = presence("subscribe", "alice@example.org").with_attr("from", contact);
    if let Some(extra) = extra {
        stanza.push_child(extra);
    }
    w.roster
        .stanza(StanzaPoint::ToBare, &stanza, Some("alice"), None)
        .expect("stanza");
}

fn announce(w: &World, stream: u64) {
    w.roster
        .event(
            im::PRESENCE_AVAILABLE,
            &PresenceAvailable {
                stream_id: stream,
                user: "alice".into(),
                full_jid: w.host.session(stream).expect("session").full_jid,
                priority: 0,
                initial: true,
            },
        )
        .expect("event");
}

fn senders(outbox: &[Element]) -> Vec<String> {
    outbox
        .iter()
        .filter_map(|e| e.attr("from").map(str::to_owned))
        .collect()
}

#[test]
fn the_byte_budget_refuses_what_would_go_beyond_it_and_counts_replacements_once() {
    let w = world_with(config(&[("roster_max_bytes", 65_536)]));
    let phone = w.session("alice", "phone");
    let groups = |n: usize| {
        (0..n)
            .map(|i| Element::new("group", NS).with_text(format!("{i:04}{}", "g".repeat(996))))
            .collect::<Vec<_>>()
    };
    let with_groups = |jid: &str, n: usize| {
        let mut item = item_el(jid);
        for g in groups(n) {
            item.push_child(g);
        }
        item
    };
    let ok = w.iq(phone, roster_set(vec![with_groups("big@example.org", 60)]));
    assert_eq!(ok.attr("type"), Some("result"), "{}", xml(&ok));
    let refused = w.iq(phone, roster_set(vec![with_groups("more@example.org", 10)]));
    assert!(
        xml(&refused).contains("<policy-violation")
            && xml(&refused).contains("the roster is full (65536 bytes)"),
        "{}",
        xml(&refused)
    );
    // Replacing the big item with a bigger one counts its old size once: 62 groups fit.
    let replaced = w.iq(phone, roster_set(vec![with_groups("big@example.org", 62)]));
    assert_eq!(replaced.attr("type"), Some("result"), "{}", xml(&replaced));
    // A subscription that would add an item is refused the same way, and nothing is sent:
    // fill the roster to 10 bytes short of the budget first.
    let used = || {
        Store::of(w.roster.host(), "alice")
            .summary()
            .expect("summary")
            .bytes()
    };
    let mut pad = Item::new("pad@example.org");
    while used() + pad.encode().len() < 65_536 - 10 {
        let room = 65_536 - 10 - used() - pad.encode().len();
        // A group costs its text, two quotes and a comma (and `"g":[]` for the first).
        let overhead = if pad.groups.is_empty() { 8 } else { 3 };
        let text = format!("{:02}", pad.groups.len());
        let len = room.saturating_sub(overhead).clamp(text.len(), 1000);
        pad.groups
            .push(format!("{text}{}", "p".repeat(len - text.len())));
        if used() + pad.encode().len() > 65_536 - 10 {
            pad.groups.pop();
            break;
        }
    }
    let mut pad_el = item_el(&pad.jid);
    for g in &pad.groups {
        pad_el.push_child(Element::new("group", NS).with_text(g));
    }
    let padded = w.iq(phone, roster_set(vec![pad_el]));
    assert_eq!(padded.attr("type"), Some("result"), "{}", xml(&padded));
    assert!(used() > 65_536 - 33, "{} bytes used", used());
    let verdict = w.send(phone, presence("subscribe", "new@example.org"));
    assert!(
        matches!(&verdict, Verdict::Error { condition: StanzaCondition::PolicyViolation, text: Some(t) } if t == "the roster is full (65536 bytes)"),
        "{verdict:?}"
    );
    assert!(w.host.take_routed().is_empty());
    assert_eq!(w.item("alice", "new@example.org"), None);
}

#[test]
fn requests_beyond_those_kept_are_shown_once_and_approving_them_still_answers() {
    let w = world_with(config(&[("roster_max_pending_requests", 2)]));
    let phone = w.session("alice", "phone");
    w.host.set_presence(phone, Some(0));
    for contact in ["a@example.net", "b@example.net", "c@example.net"] {
        request_from(&w, contact, None);
    }
    // All three are shown to the resource available now.
    assert_eq!(
        senders(&w.host.take_outbox(phone)),
        ["a@example.net", "b@example.net", "c@example.net"]
    );
    let summary = Store::of(w.roster.host(), "alice")
        .summary()
        .expect("summary");
    assert_eq!((summary.requests(), summary.kept_requests()), (3, 2));
    // A new resource is shown the two kept ones only.
    let laptop = w.session("alice", "laptop");
    announce(&w, laptop);
    assert_eq!(
        senders(&w.host.take_outbox(laptop)),
        ["a@example.net", "b@example.net"]
    );
    // Approving the one not kept still sends `subscribed` (it is pending), then her presence.
    w.send(phone, presence("subscribed", "c@example.net"));
    let routed = w.host.take_routed();
    assert!(
        routed
            .iter()
            .any(|s| s.attr("type") == Some("subscribed") && s.attr("to") == Some("c@example.net")),
        "{:?}",
        xmls(&routed)
    );
    let item = w.item("alice", "c@example.net").expect("item");
    assert_eq!(item.subscription, Subscription::From);
}

#[test]
fn a_request_too_big_to_keep_is_kept_without_its_extensions() {
    let w = world();
    let status = Element::new("status", CLIENT_NS).with_text("x".repeat(5000));
    request_from(&w, "big@example.net", Some(status));
    let phone = w.session("alice", "phone");
    announce(&w, phone);
    assert_eq!(
        xmls(&w.host.take_outbox(phone)),
        ["<presence type='subscribe' from='big@example.net' to='alice@example.org'/>"]
    );
}

#[test]
fn a_long_list_of_requests_is_shown_in_batches_a_tick_apart_and_survives_a_reload() {
    let w = world();
    for i in 0..40 {
        request_from(&w, &format!("c{i:02}@example.net"), None);
    }
    let phone = w.session("alice", "phone");
    announce(&w, phone);
    let first = senders(&w.host.take_outbox(phone));
    assert_eq!(first.len(), REQUEST_BATCH);
    assert_eq!(
        w.roster.run_due_timers().expect("timers"),
        0,
        "not before the tick"
    );
    let roster = w.roster.reload(None).expect("reload");
    let mut all = first;
    for _ in 0..4 {
        w.host.advance(REQUEST_TICK_MS);
        roster.run_due_timers().expect("timers");
        all.extend(senders(&w.host.take_outbox(phone)));
    }
    let expected: Vec<String> = (0..40).map(|i| format!("c{i:02}@example.net")).collect();
    assert_eq!(all, expected, "each once, in order, across the reload");
    assert!(w.host.timers().is_empty(), "and then no more ticks");
}

#[test]
fn a_roster_from_before_the_summary_is_read_and_then_kept_in_one_entry() {
    let w = world();
    let host = w.roster.host();
    let scope = tessera_plugin_api::protocol::KvScope::Account("alice");
    let mut bob = Item::new("bob@example.org");
    bob.subscription = Subscription::Both;
    host.kv_put(scope, "i:bob@example.org", &bob.encode())
        .expect("put");
    host.kv_put(
        scope,
        "r:eve@example.org",
        "<presence xmlns='jabber:client' type='subscribe' from='eve@example.org'/>",
    )
    .expect("put");
    host.kv_put(scope, "ver", "7").expect("put");
    let contacts = w.contacts_of("alice");
    assert_eq!(
        contacts,
        [Contact {
            jid: "bob@example.org".into(),
            to: true,
            from: true
        }]
    );
    let phone = w.session("alice", "phone");
    assert_eq!(
        w.iq(phone, roster_get(None))
            .child("query", NS)
            .and_then(|q| q.attr("ver")),
        Some("7")
    );
    w.iq(phone, roster_set(vec![item_el("carol@example.org")]));
    assert_eq!(
        host.kv_get(scope, "ver").expect("get"),
        None,
        "the old entry went"
    );
    let summary = Store::of(host, "alice").summary().expect("summary");
    assert_eq!(
        (summary.ver, summary.items(), summary.requests()),
        (8, 2, 1)
    );
}

#[test]
fn a_damaged_summary_is_rebuilt_past_its_version() {
    let w = world();
    let host = w.roster.host();
    let scope = tessera_plugin_api::protocol::KvScope::Account("alice");
    host.kv_put(
        scope,
        "i:bob@example.org",
        &Item::new("bob@example.org").encode(),
    )
    .expect("put");
    host.kv_put(scope, "idx", "v 9\ni bob@example.org\n")
        .expect("put");
    let summary = Store::of(host, "alice").summary().expect("summary");
    assert_eq!(
        (summary.ver, summary.items()),
        (10, 1),
        "a client at 9 is not current"
    );
}
