//! The `<continue/>` task API: a fake TOTP module answering the task hooks.

use tessera_plugin_api::events::Sasl2Success;
use tessera_plugin_api::protocol::StreamAction;
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::SaslCondition;

use super::*;
use crate::api::{TaskCall, TaskStep, SASL2_TASK, SASL2_TASKS};

const OTP_NS: &str = "urn:example:otp";

/// A module requiring TOTP (or HOTP) for alice: `<next>` gets a challenge, `<task-data>` with
/// `<code>123456</code>` passes, anything else fails.
fn totp(fake: Fake) -> Fake {
    fake.hook(SASL2_TASKS, |p: Sasl2Success| {
        if p.user == "alice" {
            Some(vec!["TOTP-EXAMPLE", "HOTP-EXAMPLE"])
        } else {
            None
        }
    })
    // A reply that is not a TaskStep first (another module's): skipped.
    .hook_raw(SASL2_TASK, |_| Some(vec![0xff]))
    .hook_raw(SASL2_TASK, |p: &[u8]| {
        let call = wire::decode::<TaskCall>("sasl2-task", p).ok()?;
        let step = if call.element.name == "next" {
            TaskStep::Data {
                children: vec![Element::new("challenge", OTP_NS)],
            }
        } else if call
            .element
            .child("code", OTP_NS)
            .map(|c| c.text())
            .as_deref()
            == Some("123456")
        {
            TaskStep::Done {
                children: vec![Element::new("ok", OTP_NS)],
            }
        } else {
            TaskStep::Failure {
                condition: SaslCondition::NotAuthorized,
                text: Some("bad code".into()),
            }
        };
        wire::encode(&step).ok()
    })
}

fn code(value: &str) -> Element {
    Element::new("task-data", SASL2_NS).with_child(Element::new("code", OTP_NS).with_text(value))
}

fn next(task: &str) -> Element {
    Element::new("next", SASL2_NS).with_attr("task", task)
}

fn start(fake: &Fake, s: &StreamInfo) -> String {
    only_send(&fake.send(s, authenticate("PLAIN", Some(b"\0alice\0pencil"), vec![])))
}

#[test]
fn continue_task_data_and_success() {
    let fake = totp(Fake::new());
    let s = stream(false);
    assert_eq!(
        start(&fake, &s),
        "<continue xmlns='urn:xmpp:sasl:2'><tasks><task>TOTP-EXAMPLE</task><task>HOTP-EXAMPLE</task></tasks></continue>"
    );
    let xml = only_send(&fake.send(&s, next("TOTP-EXAMPLE")));
    assert_eq!(
        xml,
        "<task-data xmlns='urn:xmpp:sasl:2'><challenge xmlns='urn:example:otp'/></task-data>"
    );
    assert!(
        fake.outcomes().is_empty(),
        "no outcome before the task ends"
    );
    let actions = fake.send(&s, code("123456"));
    assert_eq!(
        actions.first(),
        Some(&StreamAction::Authenticated {
            user: "alice".into(),
            user_agent_id: None
        })
    );
    assert_eq!(
        sent(&actions),
        ["<success xmlns='urn:xmpp:sasl:2'><authorization-identifier>alice@example.org</authorization-identifier>\
          <ok xmlns='urn:example:otp'/></success>"]
    );
    assert_eq!(actions.last(), Some(&StreamAction::SendFeatures));
    assert_eq!(
        fake.outcomes(),
        vec![("authentication-success".to_owned(), None)]
    );
}

#[test]
fn failed_task_fails_and_a_new_authenticate_is_a_stream_error() {
    let fake = totp(Fake::new());
    let s = stream(false);
    start(&fake, &s);
    only_send(&fake.send(&s, next("HOTP-EXAMPLE")));
    let xml = only_send(&fake.send(&s, code("000000")));
    assert_eq!(xml, sasl2_failure("not-authorized", Some("bad code")));
    assert_eq!(fake.outcome_events()[0].user.as_deref(), Some("alice"));
    let again = fake.send(&s, authenticate("PLAIN", Some(b"\0alice\0pencil"), vec![]));
    assert!(is_policy_close(again.first()), "{again:?}");
}

#[test]
fn task_protocol_violations() {
    let fake = totp(Fake::new());
    let s = stream(false);
    start(&fake, &s);
    // An unoffered task.
    let xml = only_send(&fake.send(&s, next("SMS")));
    assert_eq!(
        xml,
        sasl2_failure("malformed-request", Some("Task not offered"))
    );

    let mut s2 = stream(false);
    s2.id = 2;
    start(&fake, &s2);
    // <task-data> before <next>.
    assert!(is_policy_close(fake.send(&s2, code("123456")).first()));
    let last = fake
        .outcome_events()
        .last()
        .map(|o| (o.condition.is_some(), o.stream_id));
    assert_eq!(last, Some((true, 2)), "a failure on stream 2");

    let mut s3 = stream(false);
    s3.id = 3;
    start(&fake, &s3);
    assert_eq!(
        only_send(&fake.send(&s3, Element::new("abort", SASL2_NS))),
        sasl2_failure("aborted", None)
    );
}

#[test]
fn task_without_owner_is_temporary_failure_and_malformed_replies_are_ignored() {
    // Three modules answer: one with a task, one with none, one with garbage.
    let fake = Fake::new()
        .hook_raw(SASL2_TASKS, |_| wire::encode(&vec!["LONELY"]).ok())
        .hook_raw(SASL2_TASKS, |_| wire::encode(&Vec::<String>::new()).ok())
        .hook_raw(SASL2_TASKS, |_| Some(vec![0xff, 0x01]));
    let s = stream(false);
    let xml = start(&fake, &s);
    assert_eq!(
        xml,
        "<continue xmlns='urn:xmpp:sasl:2'><tasks><task>LONELY</task></tasks></continue>"
    );
    let xml = only_send(&fake.send(&s, next("LONELY")));
    assert_eq!(
        xml,
        sasl2_failure("temporary-auth-failure", Some("Task unavailable"))
    );
}
