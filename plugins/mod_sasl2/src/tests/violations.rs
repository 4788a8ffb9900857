//! Protocol violations: elements out of place, profile mixing, aborts, the retry limit.

use tessera_plugin_api::protocol::StreamAction;
use tessera_plugin_api::xml::Element;

use super::*;

#[test]
fn authenticate_after_success_closes_with_policy_violation() {
    let fake = Fake::new();
    let s = stream(false);
    fake.send(&s, authenticate("PLAIN", Some(b"\0alice\0pencil"), vec![]));
    let again = fake.send(&s, authenticate("PLAIN", Some(b"\0alice\0pencil"), vec![]));
    assert_eq!(again.len(), 1);
    assert!(is_policy_close(again.first()), "{again:?}");
    // Also when the host reports the stream as authenticated (e.g. after a legacy restart).
    let mut authed = stream(false);
    authed.id = 77;
    authed.user = Some("alice".into());
    assert!(is_policy_close(
        fake.send(&authed, auth("PLAIN", None)).first()
    ));
}

#[test]
fn anything_but_response_or_abort_during_an_exchange_is_a_policy_violation() {
    for intruder in [
        authenticate("PLAIN", None, vec![]),
        auth("PLAIN", None),
        response(SASL_NS, b"x"),
        Element::new("abort", SASL_NS),
        Element::new("next", SASL2_NS),
    ] {
        let fake = Fake::new();
        let s = stream(false);
        only_send(&fake.send(&s, authenticate("SCRAM-SHA-256", None, vec![])));
        let actions = fake.send(&s, intruder.clone());
        assert!(
            is_policy_close(actions.first()),
            "{}: {actions:?}",
            intruder.to_xml()
        );
        assert_eq!(fake.calls_since(0).last(), Some(&"mechanism_end"));
        let outcome = (
            "authentication-failure".to_owned(),
            Some("aborted".to_owned()),
        );
        assert_eq!(fake.outcomes(), vec![outcome]);
        fake.session_closed(42);
    }
}

#[test]
fn abort_answers_aborted_and_allows_a_new_attempt() {
    let fake = Fake::new();
    let s = stream(false);
    only_send(&fake.send(&s, authenticate("SCRAM-SHA-256", None, vec![])));
    let xml = only_send(&fake.send(&s, Element::new("abort", SASL2_NS)));
    assert_eq!(xml, sasl2_failure("aborted", None));
    assert_eq!(fake.core().tracked().1, 0);
    assert_eq!(
        fake.outcomes(),
        vec![(
            "authentication-failure".to_owned(),
            Some("aborted".to_owned())
        )]
    );
    // Abort and response with nothing running.
    assert_eq!(
        only_send(&fake.send(&s, Element::new("abort", SASL2_NS))),
        sasl2_failure("aborted", None)
    );
    assert_eq!(
        only_send(&fake.send(&s, response(SASL2_NS, b"x"))),
        sasl2_failure(
            "malformed-request",
            Some("No authentication exchange in progress")
        )
    );
    let ok = fake.send(&s, authenticate("PLAIN", Some(b"\0alice\0pencil"), vec![]));
    assert!(
        matches!(ok.first(), Some(StreamAction::Authenticated { .. })),
        "{ok:?}"
    );
}

#[test]
fn first_profile_locks_the_stream() {
    let fake = Fake::new();
    let s = stream(false);
    let xml = only_send(&fake.send(&s, auth("PLAIN", Some(b"\0alice\0bad"))));
    assert_eq!(xml, legacy_failure("not-authorized", None));
    let xml = only_send(&fake.send(&s, authenticate("PLAIN", Some(b"\0alice\0pencil"), vec![])));
    assert_eq!(
        xml,
        sasl2_failure(
            "aborted",
            Some("This stream already uses the other SASL profile")
        )
    );
    let ok = fake.send(&s, auth("PLAIN", Some(b"\0alice\0pencil")));
    assert_eq!(ok.last(), Some(&StreamAction::ExpectRestart));
}

#[test]
fn retry_limit_closes_the_stream_after_the_last_failure() {
    let fake = Fake::with(Settings {
        max_retries: 3,
        ..Settings::default()
    });
    let s = stream(false);
    for _ in 0..2 {
        let actions = fake.send(&s, authenticate("PLAIN", Some(b"\0alice\0bad"), vec![]));
        assert_eq!(actions.len(), 1, "{actions:?}");
    }
    let actions = fake.send(&s, authenticate("PLAIN", Some(b"\0alice\0bad"), vec![]));
    assert_eq!(sent(&actions), [sasl2_failure("not-authorized", None)]);
    assert!(is_policy_close(actions.get(1)), "{actions:?}");
}
