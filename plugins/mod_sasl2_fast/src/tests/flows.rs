//! Getting, using, rotating and invalidating tokens.

use tessera_plugin_api::events::hooks;
use tessera_plugin_api::protocol::MechanismStep;
use tessera_sasl::ht::responder_hmac;

use super::*;
use crate::token::{slot_key, Slot};

const NONE: &str = "HT-SHA-256-NONE";
const EXPR: &str = "HT-SHA-256-EXPR";

#[test]
fn password_login_with_request_token_issues_a_stored_token() {
    let core = core();
    let fake = Fake::new();
    let s = stream(1, true);
    let auth = authenticate("SCRAM-SHA-256", vec![user_agent(UA), request_token(EXPR)]);
    let tokens = success_hook(&core, &fake, &s, "SCRAM-SHA-256", auth);
    let el = tokens.first().unwrap_or_else(|| panic!("no token"));
    let token = el.attr("token").unwrap_or_default();
    assert!(token.starts_with("secret-token:fast-"), "{token}");
    // T0 = 2023-11-14T22:13:20Z; + 21 days.
    assert_eq!(el.attr("expiry"), Some("2023-12-05T22:13:20Z"));
    assert_eq!(fake.keys("alice"), [slot_key(UA, Slot::New)]);
    let stored = fake
        .test
        .kv("sasl2_fast", Some("alice"))
        .into_iter()
        .map(|(_, v)| v)
        .collect::<Vec<_>>()
        .join("");
    assert!(stored.contains(EXPR), "{stored}");
    assert!(!stored.contains(token.trim_start_matches("secret-token:fast-")));
}

#[test]
fn fast_login_succeeds_with_the_raw_responder_and_promotes_the_token() {
    let core = core();
    let fake = Fake::new();
    let token = issued_token(&core, &fake, EXPR);
    fake.advance(1000);
    let s = stream(2, true);
    let login = fast_login(&core, &fake, &s, EXPR, "alice", &token, vec![]);
    match &login.step {
        MechanismStep::Success {
            user,
            additional_data,
        } => {
            assert_eq!(user, "alice");
            let expected = responder_hmac(token.as_bytes(), &EXPORTER).to_vec();
            assert_eq!(additional_data.as_deref(), Some(expected.as_slice()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(login.issued, None, "not due for rotation, none requested");
    assert_eq!(fake.keys("alice"), [slot_key(UA, Slot::Current)]);
    // Used again from `current`.
    let again = fast_login(
        &core,
        &fake,
        &stream(3, true),
        EXPR,
        "alice",
        &token,
        vec![],
    );
    assert!(succeeded(&again.step), "{again:?}");
    assert_eq!(core.pending_len(), 0, "the hook consumed the notes");
}

#[test]
fn authcid_case_is_folded_like_mod_sasl2() {
    let core = core();
    let fake = Fake::new();
    let token = issued_token(&core, &fake, NONE);
    let login = fast_login(
        &core,
        &fake,
        &stream(2, false),
        NONE,
        "Alice",
        &token,
        vec![],
    );
    assert!(succeeded(&login.step), "{login:?}");
}

/// The store writes the module made so far (host call names), oldest first.
fn store_writes(fake: &Fake) -> Vec<&'static str> {
    fake.test
        .calls()
        .into_iter()
        .map(|(_, call)| call)
        .filter(|call| matches!(*call, "kv_put" | "kv_delete" | "kv_write"))
        .collect()
}

#[test]
fn rotation_issues_a_new_token_and_the_old_one_works_until_it_is_used() {
    let core = core_with(3600, 60);
    let fake = Fake::new();
    let old = issued_token(&core, &fake, NONE);
    let s = stream(2, false);
    // Young token: no rotation.
    let first = fast_login(&core, &fake, &s, NONE, "alice", &old, vec![]);
    assert!(
        succeeded(&first.step) && first.issued.is_none(),
        "{first:?}"
    );
    fake.advance(61_000);
    let writes_before = store_writes(&fake);
    let second = fast_login(&core, &fake, &s, NONE, "alice", &old, vec![]);
    assert!(succeeded(&second.step));
    // Issuing the new token is one transaction, pruning included (the old token was
    // `current`, so nothing is promoted).
    assert_eq!(
        store_writes(&fake)[writes_before.len()..],
        ["kv_write"],
        "one transaction per store change, no loose put or delete"
    );
    let new = second.issued.unwrap_or_else(|| panic!("rotation due"));
    assert_ne!(new, old);
    let mut keys = fake.keys("alice");
    keys.sort();
    let mut expected = vec![slot_key(UA, Slot::Current), slot_key(UA, Slot::New)];
    expected.sort();
    assert_eq!(keys, expected);
    // The old token still works (and, still due, gets another fresh token)...
    let third = fast_login(&core, &fake, &s, NONE, "alice", &old, vec![]);
    assert!(succeeded(&third.step));
    let newest = third.issued.unwrap_or_else(|| panic!("rotation due"));
    // ...which replaced the unused one.
    let stale = fast_login(&core, &fake, &s, NONE, "alice", &new, vec![]);
    assert_eq!(failure_of(&stale.step).0, "not-authorized");
    // Using the newest retires the old one: promoting it is one transaction too.
    let writes_before = store_writes(&fake).len();
    let fourth = fast_login(&core, &fake, &s, NONE, "alice", &newest, vec![]);
    assert_eq!(store_writes(&fake)[writes_before..], ["kv_write"]);
    assert!(
        succeeded(&fourth.step) && fourth.issued.is_none(),
        "{fourth:?}"
    );
    let fifth = fast_login(&core, &fake, &s, NONE, "alice", &old, vec![]);
    assert_eq!(
        failure_of(&fifth.step),
        ("not-authorized".into(), Some("alice".into()))
    );
    // What /metrics shows: one token asked for, two rotations, four uses, two refusals.
    let counted = |event| {
        fake.test
            .counted("sasl2_fast", "tokens", Some(("event", event)))
    };
    assert_eq!(
        ["issued", "rotated", "used", "rejected"].map(counted),
        [1, 2, 4, 2]
    );
}

#[test]
fn request_token_during_fast_login_gives_a_new_token() {
    let core = core();
    let fake = Fake::new();
    let token = issued_token(&core, &fake, EXPR);
    let login = fast_login(
        &core,
        &fake,
        &stream(2, true),
        EXPR,
        "alice",
        &token,
        vec![request_token(NONE)],
    );
    let new = login.issued.unwrap_or_else(|| panic!("requested"));
    // Bound to the requested mechanism.
    let with_none = fast_login(&core, &fake, &stream(3, true), NONE, "alice", &new, vec![]);
    assert!(succeeded(&with_none.step), "{with_none:?}");
}

#[test]
fn invalidate_deletes_both_slots_and_issues_nothing_even_when_due() {
    let core = core_with(3600, 60);
    let fake = Fake::new();
    let old = issued_token(&core, &fake, NONE);
    let s = stream(2, false);
    fake.advance(61_000);
    let rotated = fast_login(&core, &fake, &s, NONE, "alice", &old, vec![]);
    let new = rotated.issued.unwrap_or_else(|| panic!("rotation due"));
    let fast_invalidate = Element::new("fast", FAST_NS).with_attr("invalidate", "true");
    let auth = authenticate(NONE, vec![user_agent(UA), fast_invalidate]);
    let st = start(
        &s,
        NONE,
        Some(build_initial_response("alice", old.as_bytes(), b"")),
        auth.clone(),
    );
    assert!(succeeded(&core.mechanism_start(fake.svc(), &st)));
    assert!(fake.keys("alice").is_empty(), "both slots gone at once");
    assert!(success_hook(&core, &fake, &s, NONE, auth).is_empty());
    for t in [&old, &new] {
        let after = fast_login(&core, &fake, &s, NONE, "alice", t, vec![]);
        assert_eq!(failure_of(&after.step).0, "not-authorized");
    }
}

#[test]
fn invalidate_with_request_token_issues_a_fresh_token() {
    let core = core();
    let fake = Fake::new();
    let old = issued_token(&core, &fake, NONE);
    let s = stream(2, false);
    let fast_invalidate = Element::new("fast", FAST_NS).with_attr("invalidate", "1");
    let auth = authenticate(
        NONE,
        vec![user_agent(UA), fast_invalidate, request_token(NONE)],
    );
    let st = start(
        &s,
        NONE,
        Some(build_initial_response("alice", old.as_bytes(), b"")),
        auth.clone(),
    );
    assert!(succeeded(&core.mechanism_start(fake.svc(), &st)));
    let fresh = token_of(&success_hook(&core, &fake, &s, NONE, auth))
        .unwrap_or_else(|| panic!("requested"));
    assert!(succeeded(
        &fast_login(&core, &fake, &s, NONE, "alice", &fresh, vec![]).step
    ));
    assert_eq!(
        failure_of(&fast_login(&core, &fake, &s, NONE, "alice", &old, vec![]).step).0,
        "not-authorized"
    );
}

#[test]
fn no_token_without_a_uuid_an_offered_mechanism_or_tls() {
    let core = core();
    let fake = Fake::new();
    let s = stream(1, false);
    let cases = [
        vec![request_token(NONE)],
        vec![user_agent("smack-client-instance"), request_token(NONE)],
        vec![user_agent(UA), request_token(EXPR)], // no tls-exporter on this stream
        vec![user_agent(UA), request_token("HT-SHA-256-UNIQ")],
        vec![user_agent(UA), request_token("SCRAM-SHA-256")],
        vec![user_agent(UA)],
    ];
    for children in cases {
        assert_eq!(
            password_login(&core, &fake, &s, children.clone()),
            None,
            "{children:?}"
        );
    }
    let mut plain = stream(2, true);
    plain.secure = false;
    assert_eq!(
        password_login(
            &core,
            &fake,
            &plain,
            vec![user_agent(UA), request_token(NONE)]
        ),
        None
    );
    assert!(fake.keys("alice").is_empty());
}

#[test]
fn inline_feature_is_advertised_only_on_encrypted_streams() {
    let core = core();
    let fake = Fake::new();
    let call = |s: &StreamInfo| {
        let payload = wire::encode(s).unwrap_or_else(|e| panic!("{e}"));
        core.hook(fake.svc(), hooks::SASL2_INLINE_FEATURES, &payload)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let reply = call(&stream(1, true)).unwrap_or_else(|| panic!("advertised"));
    let els: Vec<Element> = wire::decode("reply", &reply).unwrap_or_default();
    let xml: Vec<String> = els.iter().map(Element::to_xml).collect();
    assert_eq!(
        xml,
        [
            "<fast xmlns='urn:xmpp:fast:0'><mechanism>HT-SHA-256-EXPR</mechanism>\
          <mechanism>HT-SHA-256-NONE</mechanism></fast>"
        ]
    );
    let mut plain = stream(1, true);
    plain.secure = false;
    assert_eq!(call(&plain), None);
    assert_eq!(
        core.hook(fake.svc(), "something-else", &[]).ok().flatten(),
        None
    );
}
