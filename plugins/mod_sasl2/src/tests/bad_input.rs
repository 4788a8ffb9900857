//! Issue 4's "bad input" list and the other protocol violations, each with its exact answer.

use tessera_plugin_api::protocol::StreamAction;
use tessera_plugin_api::xml::Element;
use tessera_sasl::scram::ClientBinding;
use tessera_sasl::{CbType, Hash};

use super::flows::scram;
use super::*;

#[test]
fn unknown_mechanism_is_invalid_mechanism_and_stream_stays_usable() {
    let fake = Fake::new();
    let s = stream(false);
    for name in [
        "X-UNKNOWN",
        "",
        "SCRAM-SHA-256-PLUS",
        "A-VERY-LONG-MECHANISM-NAME",
    ] {
        let xml = only_send(&fake.send(&s, authenticate(name, Some(b"x"), vec![])));
        assert_eq!(xml, sasl2_failure("invalid-mechanism", None), "{name}");
    }
    assert!(!fake.started_since(0), "{:?}", fake.host.calls());
    let ok = fake.send(&s, authenticate("PLAIN", Some(b"\0alice\0pencil"), vec![]));
    assert!(
        matches!(ok.first(), Some(StreamAction::Authenticated { .. })),
        "{ok:?}"
    );
}

#[test]
fn malformed_base64_is_incorrect_encoding_in_both_places() {
    let fake = Fake::new();
    let s = stream(false);
    let bad_ir = Element::new("authenticate", SASL2_NS)
        .with_attr("mechanism", "PLAIN")
        .with_child(Element::new("initial-response", SASL2_NS).with_text("AGFsaWNl*"));
    assert_eq!(
        only_send(&fake.send(&s, bad_ir)),
        sasl2_failure("incorrect-encoding", None)
    );

    only_send(&fake.send(&s, authenticate("SCRAM-SHA-1", None, vec![])));
    let bad = Element::new("response", SASL2_NS).with_text("not base64!");
    assert_eq!(
        only_send(&fake.send(&s, bad)),
        sasl2_failure("incorrect-encoding", None)
    );
    assert_eq!(fake.calls_since(0).last(), Some(&"mechanism_end"));
    assert_eq!(fake.core().tracked().1, 0);

    let legacy = Fake::new();
    let mut s2 = stream(false);
    s2.id = 9;
    let xml = only_send(
        &legacy.send(
            &s2,
            Element::new("auth", SASL_NS)
                .with_attr("mechanism", "PLAIN")
                .with_text("@@"),
        ),
    );
    assert_eq!(xml, legacy_failure("incorrect-encoding", None));
}

#[test]
fn wrong_proof_is_not_authorized_with_scram_error_text() {
    let fake = Fake::new();
    let s = stream(false);
    let (actions, verdict) = scram(
        &fake,
        &s,
        true,
        (Hash::Sha256, ClientBinding::NotSupported),
        ("alice", "wrong"),
        vec![],
    );
    assert_eq!(verdict, None);
    assert_eq!(
        only_send(&actions),
        sasl2_failure("not-authorized", Some("invalid-proof"))
    );
    let outcomes = fake.outcomes();
    assert_eq!(
        outcomes,
        vec![(
            "authentication-failure".to_owned(),
            Some("not-authorized".to_owned())
        )]
    );
    assert_eq!(fake.outcome_events()[0].user.as_deref(), Some("alice"));
}

#[test]
fn wrong_channel_binding_data_is_not_authorized() {
    let fake = Fake::new();
    let s = stream(true);
    let binding = ClientBinding::Bound {
        cb_type: CbType::TlsExporter,
        data: vec![0; 32],
    };
    let (actions, _) = scram(
        &fake,
        &s,
        true,
        (Hash::Sha256, binding),
        ("alice", "pencil"),
        vec![],
    );
    assert_eq!(
        only_send(&actions),
        sasl2_failure("not-authorized", Some("channel-bindings-dont-match"))
    );
}

#[test]
fn unsupported_channel_binding_type_is_malformed_request() {
    let fake = Fake::new();
    let s = stream(true);
    let first = b"p=tls-server-end-point,,n=alice,r=abcdefghijklmnop";
    let xml = only_send(&fake.send(&s, authenticate("SCRAM-SHA-1-PLUS", Some(first), vec![])));
    assert_eq!(
        xml,
        sasl2_failure(
            "malformed-request",
            Some("unsupported-channel-binding-type")
        )
    );
}

#[test]
fn downgrade_is_detected_when_plus_was_offered() {
    let fake = Fake::new();
    let s = stream(true);
    let xml = only_send(&fake.send(
        &s,
        authenticate(
            "SCRAM-SHA-1",
            Some(b"y,,n=alice,r=abcdefghijklmnop"),
            vec![],
        ),
    ));
    assert_eq!(
        xml,
        sasl2_failure(
            "not-authorized",
            Some("server-does-support-channel-binding")
        )
    );
    // Without channel binding on the stream, "y" is fine.
    let plain = stream(false);
    let mut s2 = plain.clone();
    s2.id = 5;
    let xml = only_send(&fake.send(
        &s2,
        authenticate(
            "SCRAM-SHA-1",
            Some(b"y,,n=alice,r=abcdefghijklmnop"),
            vec![],
        ),
    ));
    assert!(xml.starts_with("<challenge"), "{xml}");
}

#[test]
fn plain_on_unencrypted_stream_is_encryption_required() {
    let fake = Fake::new();
    let mut s = stream(false);
    s.secure = false;
    let xml = only_send(&fake.send(&s, authenticate("PLAIN", Some(b"\0alice\0pencil"), vec![])));
    assert_eq!(xml, sasl2_failure("encryption-required", None));
    let xml = only_send(&fake.send(&s, auth("PLAIN", Some(b"\0alice\0pencil"))));
    assert_eq!(
        xml,
        legacy_failure(
            "aborted",
            Some("This stream already uses the other SASL profile")
        )
    );
    // Defensive check in the mechanism itself, should the host ever route it.
    let mut start = tessera_plugin_api::protocol::MechanismStart {
        exchange: 1,
        mechanism: "PLAIN".into(),
        stream: s.clone(),
        profile: SaslProfile::Rfc6120,
        initial_response: Some(b"\0alice\0pencil".to_vec()),
        user_agent_id: None,
        authenticate: None,
    };
    let step = fake.mechanism_start(start.clone());
    assert!(
        matches!(step, MechanismStep::Failure { ref condition, .. } if *condition == SaslCondition::EncryptionRequired),
        "{step:?}"
    );
    start.initial_response = None;
    assert!(matches!(
        fake.mechanism_start(start),
        MechanismStep::Failure { .. }
    ));
}

#[test]
fn foreign_authzid_is_invalid_authzid() {
    let fake = Fake::new();
    let s = stream(false);
    let xml = only_send(&fake.send(
        &s,
        authenticate("PLAIN", Some(b"admin@example.org\0alice\0pencil"), vec![]),
    ));
    assert_eq!(xml, sasl2_failure("invalid-authzid", None));
    let first = b"n,a=admin@example.org,n=alice,r=abcdefghijklmnop";
    let xml = only_send(&fake.send(&s, authenticate("SCRAM-SHA-256", Some(first), vec![])));
    assert_eq!(xml, sasl2_failure("invalid-authzid", None));
    let first = b"n,a=alice@example.org,n=alice,r=abcdefghijklmnop";
    let xml = only_send(&fake.send(&s, authenticate("SCRAM-SHA-256", Some(first), vec![])));
    assert!(xml.starts_with("<challenge"), "own bare JID is fine: {xml}");
}

#[test]
fn unknown_account_and_wrong_password_get_identical_answers() {
    let run = |user: &str, id: u64| {
        let fake = Fake::new();
        let mut s = stream(false);
        s.id = id;
        let (actions, _) = scram(
            &fake,
            &s,
            true,
            (Hash::Sha256, ClientBinding::NotSupported),
            (user, "wrong"),
            vec![],
        );
        only_send(&actions)
    };
    assert_eq!(run("alice", 1), run("mallory", 2));
    // The fake salt is stable for an unknown account (no tell-tale fresh salt per attempt).
    let first = |id: u64| {
        let fake = Fake::new();
        let mut s = stream(false);
        s.id = id;
        let xml = only_send(&fake.send(
            &s,
            authenticate(
                "SCRAM-SHA-1",
                Some(b"n,,n=mallory,r=abcdefghijklmnop"),
                vec![],
            ),
        ));
        let text = String::from_utf8(payload_of(&xml, "challenge")).unwrap_or_default();
        text.split(',').skip(1).collect::<Vec<_>>().join(",")
    };
    let (a, b) = (first(3), first(4));
    assert_eq!(a, b);
    assert!(a.contains(",i=10000,h="), "{a}");
    let plain = |user: &str, id: u64| {
        let fake = Fake::new();
        let mut s = stream(false);
        s.id = id;
        let ir = format!("\0{user}\0wrong");
        only_send(&fake.send(&s, authenticate("PLAIN", Some(ir.as_bytes()), vec![])))
    };
    assert_eq!(plain("alice", 5), plain("nobody", 6));
}

#[test]
fn store_failure_and_mechanism_errors_are_temporary() {
    let fake = Fake::new();
    fake.host
        .fail_when(|_, call| (call == "get_credentials").then(|| PluginError::host("store down")));
    let s = stream(false);
    let xml = only_send(&fake.send(&s, authenticate("PLAIN", Some(b"\0alice\0pencil"), vec![])));
    assert_eq!(xml, sasl2_failure("temporary-auth-failure", None));
    // A step for an exchange the provider does not know.
    let step = fake
        .sasl2
        .instance
        .mechanism_step(tessera_plugin_api::protocol::MechanismResponse {
            exchange: 999,
            response: vec![],
        })
        .unwrap_or_else(|e| panic!("mechanism_step: {e}"));
    assert!(
        matches!(step, MechanismStep::Failure { ref condition, .. } if *condition == SaslCondition::TemporaryAuthFailure)
    );
}

#[test]
fn malformed_scram_and_plain_messages_are_malformed_request() {
    let fake = Fake::new();
    let s = stream(false);
    let xml = only_send(&fake.send(&s, authenticate("SCRAM-SHA-1", Some(b"garbage"), vec![])));
    assert_eq!(
        xml,
        sasl2_failure("malformed-request", Some("invalid-encoding"))
    );
    let xml = only_send(&fake.send(
        &s,
        authenticate("SCRAM-SHA-1", Some(b"n,,m=ext,n=alice,r=abc"), vec![]),
    ));
    assert_eq!(
        xml,
        sasl2_failure("malformed-request", Some("extensions-not-supported"))
    );
    let xml = only_send(&fake.send(&s, authenticate("PLAIN", Some(b"alice\0pencil"), vec![])));
    assert_eq!(xml, sasl2_failure("malformed-request", None));
}
