//! The module on the SDK's test host, whose acknowledgement queue is the host's own counting
//! (`AckQueue`): `acks_written` and `acks_handled` play the connection's part.

use std::sync::Arc;

use tessera_plugin_api::protocol::OptionValue;
use tessera_plugin_api::testing::{Loaded, TestHost};
use tessera_plugin_api::ModuleCalls;

use super::*;
use tessera_plugin_api::stanza::StanzaPoint;

fn world() -> (Arc<TestHost>, Loaded<Smacks>, u64) {
    let host = TestHost::new("example.org");
    host.add_account("alice", "pw", None);
    host.add_account("bob", "pw", None);
    let phone = host.add_session("alice", "phone");
    let mut config = Config::default();
    config.set("smacks_hibernation_time", OptionValue::Integer(300));
    let m = host.load::<Smacks>(config).expect("load");
    (host, m, phone)
}

fn info(id: u64, user: &str, bound: bool) -> StreamInfo {
    StreamInfo {
        id,
        user: Some(user.into()),
        jid: bound.then(|| format!("{user}@example.org/phone")),
        domain: "example.org".into(),
        ..StreamInfo::default()
    }
}

fn element(xml: &str) -> Element {
    tessera_plugin_api::xml::parse(xml.as_bytes(), Default::default()).expect("xml")
}

fn nonza(m: &Loaded<Smacks>, stream: StreamInfo, xml: &str) -> Vec<StreamAction> {
    m.instance
        .stream_element(StreamElement {
            stream,
            element: element(xml),
        })
        .expect("nonza")
}

/// The XML of the `Send` actions.
fn sent(actions: &[StreamAction]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            StreamAction::Send { xml } => Some(xml.clone()),
            _ => None,
        })
        .collect()
}

const UNEXPECTED: &str = "<failed xmlns='urn:xmpp:sm:3'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>";
const NOT_FOUND: &str = "<failed xmlns='urn:xmpp:sm:3'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>";

/// Enable with resumption on `stream`; answers the id.
fn enable(m: &Loaded<Smacks>, stream: u64) -> String {
    let actions = nonza(
        m,
        info(stream, "alice", true),
        "<enable xmlns='urn:xmpp:sm:3' resume='true'/>",
    );
    let [StreamAction::Send { xml }] = actions.as_slice() else {
        panic!("{actions:?}");
    };
    let enabled = element(xml);
    assert_eq!(enabled.attr("resume"), Some("true"));
    assert_eq!(
        enabled.attr("max"),
        Some("300"),
        "capped by smacks_hibernation_time"
    );
    let id = enabled.attr("id").expect("id").to_owned();
    assert_eq!(id.len(), 32, "128 random bits");
    id
}

#[test]
fn enable_after_binding_once_with_the_hosts_queue_and_keep_time() {
    let (host, m, phone) = world();
    assert_eq!(
        sent(&nonza(
            &m,
            info(phone, "alice", false),
            "<enable xmlns='urn:xmpp:sm:3'/>"
        )),
        vec![UNEXPECTED],
        "before binding"
    );
    let id = enable(&m, phone);
    let session = host.session(phone).expect("session");
    let (settings, _) = session.acks.expect("the host's queue is on");
    assert_eq!(settings.keep_ms, 300_000);
    assert_eq!((settings.max_queue, settings.request_after), (500, 0));
    assert_eq!(settings.ack_timeout_ms, 60_000);
    assert_eq!(
        m.host().session_get(phone, ID_KEY).expect("state"),
        Some(id.into_bytes())
    );
    assert_eq!(
        sent(&nonza(
            &m,
            info(phone, "alice", true),
            "<enable xmlns='urn:xmpp:sm:3' resume='true'/>"
        )),
        vec![UNEXPECTED],
        "a second <enable/>"
    );
    assert_eq!(
        host.counted("smacks", "enabled", Some(("resume", "yes"))),
        1
    );
}

#[test]
fn without_resume_there_is_no_id_and_no_keeping() {
    let (host, m, phone) = world();
    let actions = nonza(
        &m,
        info(phone, "alice", true),
        "<enable xmlns='urn:xmpp:sm:3' max='30'/>",
    );
    assert_eq!(sent(&actions), vec!["<enabled xmlns='urn:xmpp:sm:3'/>"]);
    let (settings, _) = host.session(phone).and_then(|s| s.acks).expect("on");
    assert_eq!(settings.keep_ms, 0);
    // A client's shorter max is honoured.
    let tablet = host.add_session("alice", "tablet");
    let actions = nonza(
        &m,
        info(tablet, "alice", true),
        "<enable xmlns='urn:xmpp:sm:3' resume='1' max='30'/>",
    );
    assert_eq!(element(&sent(&actions)[0]).attr("max"), Some("30"));
}

#[test]
fn r_and_a_before_enable_fail_and_after_it_count() {
    let (host, m, phone) = world();
    let bound = || info(phone, "alice", true);
    assert_eq!(
        sent(&nonza(&m, bound(), "<r xmlns='urn:xmpp:sm:3'/>")),
        vec![UNEXPECTED]
    );
    assert_eq!(
        sent(&nonza(&m, bound(), "<a xmlns='urn:xmpp:sm:3' h='0'/>")),
        vec![UNEXPECTED]
    );
    enable(&m, phone);
    host.acks_handled(phone, 3);
    assert_eq!(
        sent(&nonza(&m, bound(), "<r xmlns='urn:xmpp:sm:3'/>")),
        vec!["<a xmlns='urn:xmpp:sm:3' h='3'/>"]
    );
    for n in 0..4 {
        host.acks_written(
            phone,
            Element::new("message", "jabber:client").with_attr("id", n.to_string()),
        );
    }
    assert!(nonza(&m, bound(), "<a xmlns='urn:xmpp:sm:3' h='3'/>").is_empty());
    let status = m.host().acks_status(phone).expect("call").expect("on");
    assert_eq!((status.sent, status.acked, status.handled), (4, 3, 3));
}

#[test]
fn an_h_too_high_or_malformed_closes_the_stream_precisely() {
    let (host, m, phone) = world();
    enable(&m, phone);
    host.acks_written(phone, Element::new("message", "jabber:client"));
    let bound = || info(phone, "alice", true);
    assert_eq!(
        nonza(&m, bound(), "<a xmlns='urn:xmpp:sm:3' h='2'/>"),
        vec![StreamAction::Close {
            condition: StreamCondition::UndefinedCondition,
            text: Some("You acknowledged 2 stanzas, but I only sent you 1 so far.".into()),
        }]
    );
    assert_eq!(
        nonza(&m, bound(), "<a xmlns='urn:xmpp:sm:3' h='one'/>"),
        vec![StreamAction::Close {
            condition: StreamCondition::InvalidXml,
            text: Some("<a/>: 'h' must be an integer from 0 to 4294967295, not 'one'".into()),
        }]
    );
    assert_eq!(
        nonza(&m, bound(), "<a xmlns='urn:xmpp:sm:3'/>"),
        vec![StreamAction::Close {
            condition: StreamCondition::InvalidXml,
            text: Some("<a/>: the 'h' attribute is missing".into()),
        }]
    );
    // Nothing was released by the refused ones.
    let status = m.host().acks_status(phone).expect("call").expect("on");
    assert_eq!((status.sent, status.acked), (1, 0));
}

#[test]
fn resume_takes_over_the_accounts_session_with_the_hosts_counters() {
    let (host, m, phone) = world();
    let id = enable(&m, phone);
    host.acks_handled(phone, 5);
    for _ in 0..3 {
        host.acks_written(phone, Element::new("message", "jabber:client"));
    }
    host.detach(phone);
    let next = host.add_session("alice", "next");
    let actions = nonza(
        &m,
        info(next, "alice", false),
        &format!("<resume xmlns='urn:xmpp:sm:3' previd='{id}' h='1'/>"),
    );
    assert_eq!(
        actions,
        vec![
            StreamAction::Send {
                xml: format!("<resumed xmlns='urn:xmpp:sm:3' previd='{id}' h='5'/>")
            },
            StreamAction::Resume {
                session: phone,
                replay: Vec::new(),
                acked: Some(1),
            }
        ]
    );
    assert_eq!(host.counted("smacks", "resumed", None), 1);
}

#[test]
fn resume_failures_are_precise_and_leak_nothing() {
    let (host, m, phone) = world();
    let id = enable(&m, phone);
    host.acks_written(phone, Element::new("message", "jabber:client"));
    host.detach(phone);
    let next = host.add_session("alice", "next");
    let resume = |stream: StreamInfo, previd: &str, h: &str| {
        sent(&nonza(
            &m,
            stream,
            &format!("<resume xmlns='urn:xmpp:sm:3' previd='{previd}' h='{h}'/>"),
        ))
    };
    // Another account cannot resume it, even with the right id: the answer is the same as
    // for an id that never existed.
    let bobs = host.add_session("bob", "desk");
    assert_eq!(resume(info(bobs, "bob", false), &id, "0"), vec![NOT_FOUND]);
    assert_eq!(
        resume(
            info(next, "alice", false),
            "0123456789abcdef0123456789abcdef",
            "0"
        ),
        vec![NOT_FOUND]
    );
    assert_eq!(resume(info(next, "alice", false), "", "0"), vec![NOT_FOUND]);
    // An h beyond what was sent: nothing is resumed.
    assert_eq!(
        resume(info(next, "alice", false), &id, "2"),
        vec!["<failed xmlns='urn:xmpp:sm:3' h='0'><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
              <handled-count-too-high h='2' send-count='1'/></failed>"]
    );
    assert_eq!(
        resume(info(next, "alice", false), &id, "x"),
        vec!["<failed xmlns='urn:xmpp:sm:3'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"]
    );
    assert_eq!(
        resume(info(next, "alice", true), &id, "0"),
        vec![UNEXPECTED],
        "after binding"
    );
    // The session is gone (expired, or a password change ended it): unknown.
    host.end_session(phone);
    assert_eq!(
        resume(info(next, "alice", false), &id, "0"),
        vec![NOT_FOUND]
    );
    assert_eq!(
        host.counted("smacks", "resume_failed", Some(("reason", "unknown"))),
        4
    );
    assert_eq!(
        host.counted("smacks", "resume_failed", Some(("reason", "h_too_high"))),
        1
    );
}

#[test]
fn bind2_inline_enable_answers_in_bound_and_the_id_survives_a_reload() {
    let (host, m, phone) = world();
    let answer = |m: &Loaded<Smacks>, features: bool| {
        let name = if features {
            hooks::BIND2_INLINE_FEATURES
        } else {
            hooks::BIND2_BOUND
        };
        let payload = if features {
            wire::encode(&info(phone, "alice", false)).expect("encode")
        } else {
            wire::encode(&Bind2Bound {
                stream: info(phone, "alice", false),
                user: "alice".into(),
                resource: "phone".into(),
                bind: Element::new("bind", "urn:xmpp:bind:0")
                    .with_child(element("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")),
            })
            .expect("encode")
        };
        let bytes = m
            .instance
            .hook(name, wire::Bytes::new(&payload))
            .expect("hook")
            .expect("an answer");
        wire::decode::<Vec<Element>>("answer", &bytes).expect("elements")
    };
    assert_eq!(
        answer(&m, true)[0].to_xml(),
        "<feature xmlns='urn:xmpp:bind:0' var='urn:xmpp:sm:3'/>"
    );
    let enabled = answer(&m, false);
    let id = enabled[0].attr("id").expect("id").to_owned();
    assert!(host.session(phone).and_then(|s| s.acks).is_some());
    // Inline twice (the queue is on): failed.
    assert_eq!(answer(&m, false)[0].to_xml(), UNEXPECTED);
    // A hot swap before the session is bound keeps the id; `session-bound` files it.
    let m = m.reload(None).expect("reload");
    m.event(
        events::SESSION_BOUND,
        &SessionEvent {
            stream_id: phone,
            jid: Some("alice@example.org/phone".into()),
            reason: None,
        },
    )
    .expect("event");
    assert_eq!(
        m.host().session_get(phone, ID_KEY).expect("state"),
        Some(id.clone().into_bytes())
    );
    host.detach(phone);
    let next = host.add_session("alice", "next");
    let actions = nonza(
        &m,
        info(next, "alice", false),
        &format!("<resume xmlns='urn:xmpp:sm:3' previd='{id}' h='0'/>"),
    );
    assert!(
        matches!(actions.last(), Some(StreamAction::Resume { session, .. }) if *session == phone)
    );
}

#[test]
fn features_only_after_authentication_and_hibernation_zero_means_no_resumption() {
    let (_, m, phone) = world();
    let pre = StreamInfo::default();
    assert!(m
        .instance
        .stream_features(pre)
        .expect("features")
        .is_empty());
    assert_eq!(
        m.instance
            .stream_features(info(phone, "alice", false))
            .expect("features")
            .iter()
            .map(Element::to_xml)
            .collect::<Vec<_>>(),
        vec!["<sm xmlns='urn:xmpp:sm:3'/>"]
    );
    // Not offered again once on (Bind 2 enabled it inline).
    enable(&m, phone);
    assert!(m
        .instance
        .stream_features(info(phone, "alice", true))
        .expect("features")
        .is_empty());
    let host = TestHost::new("example.org");
    host.add_account("alice", "pw", None);
    let stream = host.add_session("alice", "phone");
    let mut config = Config::default();
    config.set("smacks_hibernation_time", OptionValue::Integer(0));
    let m = host.load::<Smacks>(config).expect("load");
    let actions = nonza(
        &m,
        info(stream, "alice", true),
        "<enable xmlns='urn:xmpp:sm:3' resume='true'/>",
    );
    assert_eq!(sent(&actions), vec!["<enabled xmlns='urn:xmpp:sm:3'/>"]);
}

#[test]
fn unacknowledged_messages_bounce_as_recipient_unavailable_only_to_those_who_saw_the_session() {
    let (host, m, phone) = world();
    host.on_hook(im::ROSTER_CONTACTS, |payload| {
        let query: ContactsQuery = wire::decode("q", payload).ok()?;
        let contacts = match query.contact.as_deref() {
            Some("bob@example.org") => vec![Contact {
                jid: "bob@example.org".into(),
                to: true,
                from: true,
            }],
            _ => Vec::new(),
        };
        wire::encode(&contacts).ok()
    });
    let leftover = |from: &str| {
        Element::new("message", "jabber:client")
            .with_attr("from", from)
            .with_attr("to", "alice@example.org/phone")
            .with_attr("type", "chat")
            .with_child(Element::new("body", "jabber:client").with_text("hi"))
    };
    let at = |m: &Loaded<Smacks>, from: &str, session: u64| {
        m.stanza(
            StanzaPoint::Undeliverable,
            &leftover(from),
            Some("alice"),
            Some(session),
        )
        .expect("hook")
    };
    // Not one of its sessions: the host's rule.
    assert_eq!(at(&m, "bob@example.org/desk", phone), Some(Verdict::Pass));
    enable(&m, phone);
    assert_eq!(
        at(&m, "bob@example.org/desk", phone),
        Some(Verdict::Error {
            condition: StanzaCondition::RecipientUnavailable,
            text: None
        })
    );
    // A stranger learns nothing: the host's <service-unavailable/>.
    assert_eq!(at(&m, "eve@example.org/x", phone), Some(Verdict::Pass));
    // The session is followed across a resumption and a reload, and forgotten when it ends.
    let next = host.add_session("alice", "next");
    m.event(
        events::SESSION_RESUMED,
        &SessionResumed {
            stream_id: next,
            previous_stream_id: phone,
            jid: "alice@example.org/phone".into(),
        },
    )
    .expect("event");
    let m = m.reload(None).expect("reload");
    assert!(matches!(
        at(&m, "bob@example.org/desk", next),
        Some(Verdict::Error { .. })
    ));
    m.event(
        events::SESSION_CLOSED,
        &SessionEvent {
            stream_id: next,
            jid: None,
            reason: None,
        },
    )
    .expect("event");
    assert_eq!(at(&m, "bob@example.org/desk", next), Some(Verdict::Pass));
}
