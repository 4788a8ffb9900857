//! The module on the SDK's test host.

use std::sync::Arc;

use tessera_plugin_api::protocol::StreamInfo;
use tessera_plugin_api::testing::{Loaded, TestHost};
use tessera_plugin_api::ModuleCalls;

use super::*;
use crate::archive::SID_NS;

const DOMAIN: &str = "example.org";
const ALICE: &str = "alice@example.org";

fn world() -> (Arc<TestHost>, Loaded<Mam>, u64) {
    let host = TestHost::new(DOMAIN);
    host.add_account("alice", "pw", None);
    host.add_account("bob", "pw", None);
    let m = host.load::<Mam>(Config::default()).expect("load");
    let phone = host.add_session("alice", "phone");
    (host, m, phone)
}

fn chat(from: &str, to: &str, body: &str) -> Element {
    Element::new("message", CLIENT_NS)
        .with_attr("from", from)
        .with_attr("to", to)
        .with_attr("type", "chat")
        .with_child(Element::new("body", CLIENT_NS).with_text(body))
}

/// bob sends alice `body` (the delivery hook); answers the stanza delivered.
fn receive(m: &Loaded<Mam>, body: &str) -> Element {
    let msg = chat("bob@example.org/desk", ALICE, body);
    match m
        .stanza(StanzaPoint::ToBare, &msg, Some("alice"), None)
        .expect("hook")
    {
        Some(Verdict::Replace(stamped)) => stamped,
        other => panic!("not stamped: {other:?}"),
    }
}

fn iq(set: bool, child: Element) -> Element {
    Element::new("iq", CLIENT_NS)
        .with_attr("type", if set { "set" } else { "get" })
        .with_attr("id", "q1")
        .with_attr("from", "alice@example.org/phone")
        .with_child(child)
}

fn ask(m: &Loaded<Mam>, phone: u64, iq: &Element) -> Option<Verdict> {
    m.stanza(StanzaPoint::ClientIn, iq, Some("alice"), Some(phone))
        .expect("hook")
}

fn field(var: &str, values: &[&str]) -> Element {
    let mut f = Element::new("field", query::FORM_NS).with_attr("var", var);
    for v in values {
        f.push_child(Element::new("value", query::FORM_NS).with_text(*v));
    }
    f
}

/// `<query/>` with these form fields and RSM children.
fn query_el(fields: Vec<Element>, rsm: Vec<Element>) -> Element {
    let mut q = Element::new("query", NS).with_attr("queryid", "f27");
    if !fields.is_empty() {
        let mut x = Element::new("x", query::FORM_NS)
            .with_attr("type", "submit")
            .with_child(field("FORM_TYPE", &[NS]));
        for f in fields {
            x.push_child(f);
        }
        q.push_child(x);
    }
    if !rsm.is_empty() {
        let mut set = Element::new("set", query::RSM_NS);
        for r in rsm {
            set.push_child(r);
        }
        q.push_child(set);
    }
    q
}

fn rsm(name: &str, text: &str) -> Element {
    Element::new(name, query::RSM_NS).with_text(text)
}

/// Runs a query; answers the bodies of the results and the `<fin/>`, which must come last.
fn page(host: &TestHost, m: &Loaded<Mam>, phone: u64, q: Element) -> (Vec<String>, Element) {
    assert_eq!(ask(m, phone, &iq(true, q)), Some(Verdict::Handled));
    let mut out = host.take_outbox(phone);
    let last = out.pop().expect("the IQ result");
    assert_eq!(last.attr("type"), Some("result"), "{last:?}");
    let fin = last.child("fin", NS).expect("fin").clone();
    let bodies = out
        .iter()
        .map(|msg| {
            let result = msg.child("result", NS).expect("result");
            assert_eq!(result.attr("queryid"), Some("f27"));
            let fwd = result
                .child("forwarded", "urn:xmpp:forward:0")
                .expect("fwd");
            assert!(fwd.child("delay", "urn:xmpp:delay").is_some());
            fwd.child("message", CLIENT_NS)
                .and_then(|m| m.child("body", CLIENT_NS))
                .map(Element::text)
                .unwrap_or_default()
        })
        .collect();
    (bodies, fin)
}

fn rsm_text(fin: &Element, name: &str) -> Option<String> {
    fin.child("set", query::RSM_NS)?
        .child(name, query::RSM_NS)
        .map(Element::text)
}

/// `<max>0</max>`: the count alone (XEP-0059 §2.7).
fn count(m: &Loaded<Mam>, phone: u64) -> u64 {
    let q = query_el(vec![], vec![rsm("max", "0")]);
    let Some(Verdict::Reply(answer)) = ask(m, phone, &iq(true, q)) else {
        panic!("no count")
    };
    let fin = answer.child("fin", NS).expect("fin");
    rsm_text(fin, "count")
        .expect("count")
        .parse()
        .expect("number")
}

fn error_of(v: Option<Verdict>) -> (String, String) {
    let Some(Verdict::Reply(e)) = v else {
        panic!("no error: {v:?}")
    };
    assert_eq!(e.attr("type"), Some("error"));
    let err = e.child("error", CLIENT_NS).expect("error");
    let cond = err
        .child_elements()
        .find(|c| c.name != "text")
        .map(|c| c.name.clone())
        .unwrap_or_default();
    let text = err
        .child_elements()
        .find(|c| c.name == "text")
        .map(Element::text)
        .unwrap_or_default();
    (cond, text)
}

#[test]
fn a_received_message_is_archived_once_and_stamped_and_forged_ids_go() {
    let (host, m, phone) = world();
    let forged = chat("bob@example.org/desk", ALICE, "hi")
        .with_child(
            Element::new("stanza-id", SID_NS)
                .with_attr("id", "forged")
                .with_attr("by", ALICE),
        )
        .with_child(
            Element::new("stanza-id", SID_NS)
                .with_attr("id", "room-1")
                .with_attr("by", "room@muc.example.net"),
        );
    let Some(Verdict::Replace(delivered)) = m
        .stanza(StanzaPoint::ToBare, &forged, Some("alice"), None)
        .expect("hook")
    else {
        panic!("not stamped")
    };
    let ids: Vec<(Option<&str>, Option<&str>)> = delivered
        .children_named("stanza-id", SID_NS)
        .map(|s| (s.attr("id"), s.attr("by")))
        .collect();
    assert_eq!(ids.len(), 2, "one by another entity, one ours: {ids:?}");
    assert_eq!(ids[0], (Some("room-1"), Some("room@muc.example.net")));
    let ours = ids[1].0.expect("id").to_owned();
    assert_eq!(ids[1].1, Some(ALICE));
    // The archive result carries the same id.
    let (bodies, fin) = page(&host, &m, phone, query_el(vec![], vec![]));
    assert_eq!(bodies, ["hi"]);
    assert_eq!(rsm_text(&fin, "first").as_deref(), Some(ours.as_str()));
    assert_eq!(rsm_text(&fin, "count"), None, "pages carry no count");
    assert_eq!(count(&m, phone), 1);
    assert_eq!(fin.attr("complete"), Some("true"));
}

#[test]
fn sent_messages_are_filed_under_the_recipient_and_to_self_only_once() {
    let (host, m, phone) = world();
    let out = chat("alice@example.org/phone", "bob@example.org/desk", "to bob");
    assert_eq!(
        m.stanza(StanzaPoint::ClientIn, &out, Some("alice"), Some(phone))
            .expect("hook"),
        Some(Verdict::Pass)
    );
    let to_self = chat("alice@example.org/phone", ALICE, "note to self");
    m.stanza(StanzaPoint::ClientIn, &to_self, Some("alice"), Some(phone))
        .expect("hook");
    m.stanza(StanzaPoint::ToBare, &to_self, Some("alice"), None)
        .expect("hook");
    let with = |jid: &str| query_el(vec![field("with", &[jid])], vec![]);
    assert_eq!(
        page(&host, &m, phone, with("bob@example.org")).0,
        ["to bob"]
    );
    assert_eq!(page(&host, &m, phone, with(ALICE)).0, ["note to self"]);
}

#[test]
fn only_messages_worth_keeping_are_archived() {
    let (_host, m, phone) = world();
    let hint = |name: &str| Element::new(name, "urn:xmpp:hints");
    let skipped = [
        chat("bob@example.org/d", ALICE, "x").with_attr("type", "headline"),
        chat("bob@example.org/d", ALICE, "x").with_attr("type", "error"),
        chat("bob@example.org/d", ALICE, "x").with_attr("type", "groupchat"),
        chat("bob@example.org/d", ALICE, "x").with_child(hint("no-store")),
        chat("bob@example.org/d", ALICE, "x").with_child(hint("no-permanent-store")),
        // A chat state alone.
        Element::new("message", CLIENT_NS)
            .with_attr("from", "bob@example.org/d")
            .with_attr("type", "chat")
            .with_child(Element::new(
                "composing",
                "http://jabber.org/protocol/chatstates",
            )),
    ];
    for s in &skipped {
        assert_eq!(
            m.stanza(StanzaPoint::ToBare, s, Some("alice"), None)
                .expect("hook"),
            Some(Verdict::Pass),
            "{s:?}"
        );
    }
    let omemo = Element::new("message", CLIENT_NS)
        .with_attr("from", "bob@example.org/d")
        .with_attr("type", "chat")
        .with_child(Element::new("encrypted", "eu.siacs.conversations.axolotl"));
    assert!(matches!(
        m.stanza(StanzaPoint::ToBare, &omemo, Some("alice"), None)
            .expect("hook"),
        Some(Verdict::Replace(_))
    ));
    assert_eq!(count(&m, phone), 1);
}

#[test]
fn rsm_pages_forward_backward_and_flipped_without_gaps() {
    let (host, m, phone) = world();
    for i in 1..=5 {
        receive(&m, &format!("m{i}"));
        host.advance(1000);
    }
    let max = |n: &str| rsm("max", n);
    let (first, fin) = page(&host, &m, phone, query_el(vec![], vec![max("2")]));
    assert_eq!(first, ["m1", "m2"]);
    assert_eq!(fin.attr("complete"), None, "more to come");
    let last_id = rsm_text(&fin, "last").expect("last");
    let (second, _) = page(
        &host,
        &m,
        phone,
        query_el(vec![], vec![max("2"), rsm("after", &last_id)]),
    );
    assert_eq!(second, ["m3", "m4"]);
    // The last page, then the one before it: each in chronological order.
    let (tail, fin) = page(
        &host,
        &m,
        phone,
        query_el(vec![], vec![max("2"), rsm("before", "")]),
    );
    assert_eq!(tail, ["m4", "m5"]);
    let first_of_tail = rsm_text(&fin, "first").expect("first");
    let (before, fin) = page(
        &host,
        &m,
        phone,
        query_el(vec![], vec![max("2"), rsm("before", &first_of_tail)]),
    );
    assert_eq!(before, ["m2", "m3"]);
    assert_eq!(fin.attr("complete"), None);
    // Flipped: newest first.
    let mut flipped = query_el(vec![], vec![max("3"), rsm("before", "")]);
    flipped.push_child(Element::new("flip-page", NS));
    assert_eq!(page(&host, &m, phone, flipped).0, ["m5", "m4", "m3"]);
    // The count alone.
    assert_eq!(count(&m, phone), 5);
}

#[test]
fn time_and_id_filters() {
    let (host, m, phone) = world();
    let t0 = host.now_ms();
    let mut ids = Vec::new();
    for i in 1..=4 {
        let d = receive(&m, &format!("m{i}"));
        ids.push(
            d.child("stanza-id", SID_NS)
                .and_then(|s| s.attr("id"))
                .expect("id")
                .to_owned(),
        );
        host.advance(60_000);
    }
    let at = |ms: u64| tessera_plugin_api::datetime::format_utc_millis(ms);
    let window = query_el(
        vec![
            field("start", &[&at(t0 + 60_000)]),
            field("end", &[&at(t0 + 120_000)]),
        ],
        vec![],
    );
    assert_eq!(page(&host, &m, phone, window).0, ["m2", "m3"]);
    let after = query_el(vec![field("after-id", &[&ids[1]])], vec![]);
    assert_eq!(page(&host, &m, phone, after).0, ["m3", "m4"]);
    let some = query_el(vec![field("ids", &[&ids[0], &ids[3]])], vec![]);
    let (bodies, fin) = page(&host, &m, phone, some);
    assert_eq!(bodies, ["m1", "m4"]);
    assert_eq!(
        rsm_text(&fin, "count"),
        None,
        "no count for a filtered query"
    );
}

#[test]
fn each_bad_query_gets_its_precise_error() {
    let (_host, m, phone) = world();
    receive(&m, "one");
    let q = |fields, rsm| iq(true, query_el(fields, rsm));
    let cases: Vec<(Element, &str, &str)> = vec![
        (
            q(vec![], vec![rsm("max", "300")]),
            "policy-violation",
            "at most 250 results per page",
        ),
        (
            q(vec![], vec![rsm("max", "ten")]),
            "bad-request",
            "RSM <max/>: 'ten' is not a number",
        ),
        (
            q(vec![], vec![rsm("max", "-1")]),
            "bad-request",
            "RSM <max/>: '-1' is not a number",
        ),
        (
            q(vec![], vec![rsm("after", "nope")]),
            "item-not-found",
            "no archived message has that id (after-id, before-id or RSM)",
        ),
        (
            q(vec![field("after-id", &["nope"])], vec![]),
            "item-not-found",
            "no archived message has that id (after-id, before-id or RSM)",
        ),
        (
            q(vec![field("colour", &["red"])], vec![]),
            "feature-not-implemented",
            "unknown field 'colour'",
        ),
        (
            q(vec![field("start", &["yesterday"])], vec![]),
            "bad-request",
            "field 'start': 'yesterday' is not a XEP-0082 date and time",
        ),
        (
            q(vec![field("with", &["a@b@c"])], vec![]),
            "bad-request",
            "field 'with': 'a@b@c' is not a JID",
        ),
        (
            q(vec![field("with", &[])], vec![]),
            "bad-request",
            "field 'with' needs exactly one value",
        ),
        (
            q(
                vec![
                    field("start", &["2026-01-02T00:00:00Z"]),
                    field("end", &["2026-01-01T00:00:00Z"]),
                ],
                vec![],
            ),
            "bad-request",
            "'start' is after 'end'",
        ),
        (
            q(vec![], vec![rsm("after", "a"), rsm("before", "b")]),
            "bad-request",
            "RSM <after/> and <before/> together",
        ),
        (
            q(vec![field("with", &[ALICE])], vec![rsm("max", "0")]),
            "bad-request",
            "<max>0</max> (the count alone) is answered for an unfiltered query only",
        ),
        (
            q(vec![], vec![rsm("index", "3")]),
            "feature-not-implemented",
            "RSM <index/> is not supported; page with <after/> and <before/>",
        ),
    ];
    for (request, condition, text) in cases {
        assert_eq!(
            error_of(ask(&m, phone, &request)),
            (condition.to_owned(), text.to_owned()),
            "{request:?}"
        );
    }
    let wrong_form = Element::new("query", NS).with_child(
        Element::new("x", query::FORM_NS)
            .with_attr("type", "submit")
            .with_child(field("FORM_TYPE", &["urn:xmpp:mam:1"])),
    );
    assert_eq!(
        error_of(ask(&m, phone, &iq(true, wrong_form))),
        (
            "bad-request".into(),
            "FORM_TYPE must be urn:xmpp:mam:2".into()
        )
    );
    // Another entity's archive, or a full JID (the client there), is not ours to answer.
    let muc = iq(true, query_el(vec![], vec![])).with_attr("to", "room@muc.example.net");
    assert_eq!(ask(&m, phone, &muc), Some(Verdict::Pass));
    let full = iq(true, query_el(vec![], vec![])).with_attr("to", "alice@example.org/laptop");
    assert_eq!(ask(&m, phone, &full), Some(Verdict::Pass));
    let own = iq(true, query_el(vec![], vec![])).with_attr("to", "Alice@Example.org");
    assert_eq!(ask(&m, phone, &own), Some(Verdict::Handled));
    // An id in `ids` that no entry has (§4.1.4).
    let one = receive(&m, "two");
    let id = one
        .child("stanza-id", SID_NS)
        .and_then(|s| s.attr("id"))
        .expect("id")
        .to_owned();
    let ids = iq(true, query_el(vec![field("ids", &[&id, "nope"])], vec![]));
    assert_eq!(
        error_of(ask(&m, phone, &ids)),
        (
            "item-not-found".into(),
            "no archived message has one of those ids".into()
        )
    );
}

#[test]
fn a_flipped_page_names_its_bounds_in_time_so_paging_back_moves_on() {
    let (host, m, phone) = world();
    for i in 1..=6 {
        receive(&m, &format!("m{i}"));
    }
    let mut flipped = query_el(vec![], vec![rsm("max", "2"), rsm("before", "")]);
    flipped.push_child(Element::new("flip-page", NS));
    let (bodies, fin) = page(&host, &m, phone, flipped);
    assert_eq!(bodies, ["m6", "m5"], "sent newest first");
    let first = rsm_text(&fin, "first").expect("first");
    let mut back = query_el(vec![], vec![rsm("max", "2"), rsm("before", &first)]);
    back.push_child(Element::new("flip-page", NS));
    assert_eq!(page(&host, &m, phone, back).0, ["m4", "m3"]);
}

#[test]
fn nothing_is_kept_for_a_name_without_an_account() {
    let (host, m, _phone) = world();
    let to_nobody = chat("bob@example.org/desk", "nobody@example.org", "hello?").with_child(
        Element::new("stanza-id", SID_NS)
            .with_attr("id", "forged")
            .with_attr("by", "nobody@example.org"),
    );
    let verdict = m
        .stanza(StanzaPoint::ToBare, &to_nobody, Some("nobody"), None)
        .expect("hook");
    let Some(Verdict::Replace(clean)) = verdict else {
        panic!("forged id not stripped: {verdict:?}")
    };
    assert!(clean.child("stanza-id", SID_NS).is_none());
    // Whoever registers the name later finds nothing.
    host.add_account("nobody", "pw", None);
    let later = host.add_session("nobody", "x");
    let q = iq(true, query_el(vec![], vec![])).with_attr("from", "nobody@example.org/x");
    assert_eq!(
        m.stanza(StanzaPoint::ClientIn, &q, Some("nobody"), Some(later))
            .expect("hook"),
        Some(Verdict::Handled)
    );
    let out = host.take_outbox(later);
    assert_eq!(out.len(), 1, "only the <fin/>: {out:?}");
}

#[test]
fn a_page_of_large_messages_stops_within_its_byte_budget() {
    let (host, m, phone) = world();
    let big = "x".repeat(100 * 1024);
    for _ in 0..5 {
        receive(&m, &big);
    }
    let (bodies, fin) = page(&host, &m, phone, query_el(vec![], vec![rsm("max", "5")]));
    assert_eq!(bodies.len(), 2, "256 KiB hold two of 100 KiB");
    assert_eq!(fin.attr("complete"), None, "the rest is for the next page");
    let last = rsm_text(&fin, "last").expect("last");
    let next = query_el(vec![], vec![rsm("max", "5"), rsm("after", &last)]);
    assert_eq!(page(&host, &m, phone, next).0.len(), 2);
    // Backwards, the newest are kept.
    let back = query_el(vec![], vec![rsm("max", "5"), rsm("before", "")]);
    let (tail, fin) = page(&host, &m, phone, back);
    assert_eq!(tail.len(), 2);
    assert_eq!(fin.attr("complete"), None);
}

#[test]
fn the_query_form_lists_the_fields() {
    let (_host, m, phone) = world();
    let Some(Verdict::Reply(form)) = ask(&m, phone, &iq(false, Element::new("query", NS))) else {
        panic!("no form")
    };
    let x = form
        .child("query", NS)
        .and_then(|q| q.child("x", query::FORM_NS))
        .expect("form");
    let vars: Vec<&str> = x
        .children_named("field", query::FORM_NS)
        .filter_map(|f| f.attr("var"))
        .collect();
    assert_eq!(
        vars,
        [
            "FORM_TYPE",
            "with",
            "start",
            "end",
            "after-id",
            "before-id",
            "ids"
        ]
    );
}

#[test]
fn preferences_decide_what_is_kept_and_survive_a_reload() {
    let (host, m, phone) = world();
    let prefs = Element::new("prefs", NS)
        .with_attr("default", "roster")
        .with_child(
            Element::new("never", NS)
                .with_child(Element::new("jid", NS).with_text("bob@example.org")),
        );
    let Some(Verdict::Reply(answer)) = ask(&m, phone, &iq(true, prefs)) else {
        panic!("no answer")
    };
    assert_eq!(answer.attr("type"), Some("result"));
    // bob is never archived (even as a roster contact); carol is in the roster; dave is not.
    host.on_hook(im::ROSTER_CONTACTS, |payload| {
        let query: ContactsQuery = wire::decode("query", payload).ok()?;
        let contacts: Vec<Contact> = match query.contact.as_deref() {
            Some("carol@example.org" | "bob@example.org") => vec![Contact {
                jid: query.contact.clone().unwrap_or_default(),
                to: true,
                from: true,
            }],
            _ => Vec::new(),
        };
        wire::encode(&contacts).ok()
    });
    let m = m.reload(None).expect("reload");
    for from in [
        "bob@example.org/x",
        "carol@example.org/x",
        "dave@example.org/x",
    ] {
        m.stanza(
            StanzaPoint::ToBare,
            &chat(from, ALICE, from),
            Some("alice"),
            None,
        )
        .expect("hook");
    }
    assert_eq!(
        page(&host, &m, phone, query_el(vec![], vec![])).0,
        ["carol@example.org/x"]
    );
    let Some(Verdict::Reply(got)) = ask(&m, phone, &iq(false, Element::new("prefs", NS))) else {
        panic!("no prefs")
    };
    assert_eq!(
        got.child("prefs", NS).expect("prefs").to_xml(),
        "<prefs xmlns='urn:xmpp:mam:2' default='roster'><always/><never><jid>bob@example.org</jid></never></prefs>"
    );
    let bad = Element::new("prefs", NS).with_attr("default", "sometimes");
    assert_eq!(
        error_of(ask(&m, phone, &iq(true, bad))),
        (
            "bad-request".into(),
            "default='sometimes' is not always, never or roster".into()
        )
    );
}

#[test]
fn bind2_bound_and_the_metadata_iq_give_the_archive_bounds() {
    let (host, m, phone) = world();
    let bound = |m: &Loaded<Mam>| {
        let payload = Bind2Bound {
            stream: StreamInfo::default(),
            user: "alice".into(),
            resource: "phone".into(),
            bind: Element::new("bind", "urn:xmpp:bind:0"),
        };
        let answer = m
            .instance
            .hook(
                hooks::BIND2_BOUND,
                wire::Bytes::new(&wire::encode(&payload).expect("encode")),
            )
            .expect("hook")
            .expect("reply");
        let els: Vec<Element> = wire::decode("bound", &answer).expect("decode");
        els
    };
    assert_eq!(
        bound(&m)[0].to_xml(),
        "<metadata xmlns='urn:xmpp:mam:2'/>",
        "an empty archive"
    );
    let first = receive(&m, "first");
    host.advance(5000);
    let last = receive(&m, "last");
    let id = |e: &Element| {
        e.child("stanza-id", SID_NS)
            .and_then(|s| s.attr("id"))
            .map(str::to_owned)
    };
    let meta = &bound(&m)[0];
    assert_eq!(
        meta.child("start", NS)
            .and_then(|s| s.attr("id"))
            .map(str::to_owned),
        id(&first)
    );
    assert_eq!(
        meta.child("end", NS)
            .and_then(|s| s.attr("id"))
            .map(str::to_owned),
        id(&last)
    );
    let Some(Verdict::Reply(by_iq)) = ask(&m, phone, &iq(false, Element::new("metadata", NS)))
    else {
        panic!("no metadata")
    };
    assert_eq!(by_iq.child("metadata", NS), Some(meta));
}

#[test]
fn old_entries_expire_and_a_zero_keeps_everything() {
    let (host, m, phone) = world();
    receive(&m, "old");
    host.advance(89 * 86_400_000);
    receive(&m, "recent");
    host.advance(2 * 86_400_000);
    m.run_due_timers().expect("timers");
    assert_eq!(
        page(&host, &m, phone, query_el(vec![], vec![])).0,
        ["recent"]
    );
    // Forever.
    let host = TestHost::new(DOMAIN);
    host.add_account("alice", "pw", None);
    let mut config = Config::default();
    config.set(
        "archive_expires_after",
        tessera_plugin_api::protocol::OptionValue::Integer(0),
    );
    let m = host.load::<Mam>(config).expect("load");
    let phone = host.add_session("alice", "phone");
    receive(&m, "kept");
    host.advance(400 * 86_400_000);
    m.run_due_timers().expect("timers");
    assert_eq!(page(&host, &m, phone, query_el(vec![], vec![])).0, ["kept"]);
    assert!(host.timers().is_empty(), "no expiry timer at all");
}
