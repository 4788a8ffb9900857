//! Tokens die with password changes and account deletion; per-stream notes die with their
//! stream and survive a hot swap.

use tessera_plugin_api::events::{self, SessionEvent, UserDeleted, UserPasswordChanged};

use super::*;

const NONE: &str = "HT-SHA-256-NONE";

fn token(core: &Core, fake: &Fake, ua: &str) -> String {
    password_login(
        core,
        fake,
        &stream(1, false),
        vec![user_agent(ua), request_token(NONE)],
    )
    .unwrap_or_else(|| panic!("no token issued"))
}

#[test]
fn password_change_event_deletes_every_token_of_the_account() {
    let core = core();
    let fake = Fake::new();
    fake.add_account("bob", 0);
    let t = token(&core, &fake, UA);
    token(&core, &fake, "9f0c2a4e-1111-4000-8000-000000000001");
    let bob_auth = authenticate("PLAIN", vec![user_agent(UA), request_token(NONE)]);
    let issued = success_hook_as(&core, &fake, &stream(5, false), "bob", "PLAIN", bob_auth);
    assert!(token_of(&issued).is_some());
    assert_eq!(fake.keys("alice").len(), 2);
    assert_eq!(fake.keys("bob").len(), 1);
    event(
        &core,
        &fake,
        events::USER_PASSWORD_CHANGED,
        &UserPasswordChanged {
            user: "alice".into(),
            origin_stream: None,
            at_ms: T0 + 5,
        },
    );
    assert!(fake.keys("alice").is_empty());
    assert_eq!(fake.keys("bob").len(), 1, "other accounts keep theirs");
    let login = fast_login(&core, &fake, &stream(2, false), NONE, "alice", &t, vec![]);
    assert_eq!(failure_of(&login.step).0, "not-authorized");
}

#[test]
fn tokens_issued_before_a_password_change_are_refused_even_if_the_event_was_missed() {
    let core = core();
    let fake = Fake::new();
    let t = token(&core, &fake, UA);
    fake.advance(10);
    fake.add_account("alice", T0 + 5);
    let login = fast_login(&core, &fake, &stream(2, false), NONE, "alice", &t, vec![]);
    assert_eq!(
        failure_of(&login.step),
        ("credentials-expired".into(), Some("alice".into()))
    );
    // A token issued after the change works.
    let fresh = token(&core, &fake, UA);
    let login = fast_login(
        &core,
        &fake,
        &stream(3, false),
        NONE,
        "alice",
        &fresh,
        vec![],
    );
    assert!(succeeded(&login.step), "{login:?}");
}

/// A token issued after a password change belongs to the new password: the change's event,
/// delivered late, must not delete it (the client would be thrown back to its password).
#[test]
fn a_token_issued_after_a_change_survives_the_late_event_of_that_change() {
    let core = core();
    let fake = Fake::new();
    let old = token(&core, &fake, "9f0c2a4e-1111-4000-8000-000000000001");
    fake.advance(10);
    fake.add_account("alice", T0 + 5);
    fake.advance(10);
    let fresh = token(&core, &fake, UA);
    event(
        &core,
        &fake,
        events::USER_PASSWORD_CHANGED,
        &UserPasswordChanged {
            user: "alice".into(),
            origin_stream: None,
            at_ms: T0 + 5,
        },
    );
    assert_eq!(fake.keys("alice").len(), 1, "only the older token went");
    let login = fast_login(
        &core,
        &fake,
        &stream(2, false),
        NONE,
        "alice",
        &fresh,
        vec![],
    );
    assert!(succeeded(&login.step), "{login:?}");
    let login = fast_login(&core, &fake, &stream(3, false), NONE, "alice", &old, vec![]);
    assert_eq!(failure_of(&login.step).0, "not-authorized");
}

#[test]
fn account_deletion_deletes_the_tokens() {
    let core = core();
    let fake = Fake::new();
    let t = token(&core, &fake, UA);
    let deleted = UserDeleted {
        user: "alice".into(),
    };
    event(&core, &fake, events::USER_DELETED, &deleted);
    assert!(fake.keys("alice").is_empty());
    let login = fast_login(&core, &fake, &stream(2, false), NONE, "alice", &t, vec![]);
    assert_eq!(failure_of(&login.step).0, "not-authorized");
}

#[test]
fn a_malformed_event_is_an_error_and_unknown_events_are_ignored() {
    let core = core();
    let fake = Fake::new();
    let bad = Event {
        name: events::USER_DELETED,
        payload: &[0xff, 0xff],
    };
    assert!(core.on_event(fake.svc(), &bad).is_err());
    let other = Event {
        name: "something-else",
        payload: &[],
    };
    assert!(core.on_event(fake.svc(), &other).is_ok());
}

/// A FAST success whose stream closes before the hook: the note goes with it.
#[test]
fn session_closed_drops_the_stream_note() {
    let core = core();
    let fake = Fake::new();
    let t = token(&core, &fake, UA);
    let s = stream(9, false);
    let auth = authenticate(NONE, vec![user_agent(UA), fast()]);
    let st = start(
        &s,
        NONE,
        Some(build_initial_response("alice", t.as_bytes(), b"")),
        auth,
    );
    assert!(succeeded(&core.mechanism_start(fake.svc(), &st)));
    assert_eq!(core.pending_len(), 1);
    event(
        &core,
        &fake,
        events::SESSION_CLOSED,
        &SessionEvent {
            stream_id: 9,
            jid: None,
            reason: None,
        },
    );
    assert_eq!(core.pending_len(), 0);
}

#[test]
fn hot_swap_carries_the_notes() {
    let old = core_with(3600, 60);
    let fake = Fake::new();
    let t = token(&old, &fake, UA);
    fake.advance(61_000);
    let s = stream(4, false);
    let auth = authenticate(NONE, vec![user_agent(UA), fast()]);
    let st = start(
        &s,
        NONE,
        Some(build_initial_response("alice", t.as_bytes(), b"")),
        auth.clone(),
    );
    assert!(succeeded(&old.mechanism_start(fake.svc(), &st)));
    let bytes = old.save_state().unwrap_or_else(|e| panic!("{e}"));
    let new = core_with(3600, 60);
    new.restore(&bytes).unwrap_or_else(|e| panic!("{e}"));
    // The new generation answers the hook with the rotation the old one decided.
    assert!(token_of(&success_hook(&new, &fake, &s, NONE, auth)).is_some());
    assert!(new.restore(&[9]).is_err());
}

/// XEP-0494 through the two client hooks: the tokens are listed by client (its `client_ref`,
/// never the user-agent id), and revoking one client kills its tokens at once and no other's.
#[test]
fn client_hooks_list_tokens_by_client_and_revoke_one_client() {
    use tessera_plugin_api::clients::ClientRevoke;
    use tessera_plugin_api::clients::{client_ref, hooks as client_hooks, ClientCredential};
    const OTHER: &str = "9f0c2a4e-1111-4000-8000-000000000001";
    let core = core();
    let fake = Fake::new();
    let mine = token(&core, &fake, UA);
    let other = token(&core, &fake, OTHER);
    let ask = |name: &str, payload: Vec<u8>| {
        core.hook(fake.svc(), name, &payload)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .unwrap_or_else(|| panic!("{name}: no reply"))
    };
    let listed: Vec<ClientCredential> = wire::decode(
        "t",
        &ask(
            client_hooks::CLIENT_CREDENTIALS,
            wire::encode(&"alice".to_owned()).unwrap(),
        ),
    )
    .unwrap();
    let mut clients: Vec<&str> = listed.iter().map(|c| c.client.as_str()).collect();
    clients.sort_unstable();
    let mut expected = [client_ref(UA), client_ref(OTHER)];
    expected.sort();
    assert_eq!(clients, expected);
    assert!(listed
        .iter()
        .all(|c| c.kind == "fast" && c.issued_at_ms == T0 && c.expires_at_ms > T0));

    let revoke = ClientRevoke {
        user: "alice".into(),
        client: client_ref(UA),
    };
    let removed: Result<u32, String> = wire::decode(
        "t",
        &ask(client_hooks::CLIENT_REVOKE, wire::encode(&revoke).unwrap()),
    )
    .unwrap();
    assert_eq!(removed, Ok(1));
    let s = stream(3, false);
    let refused = fast_login(&core, &fake, &s, NONE, "alice", &mine, vec![]);
    assert_eq!(failure_of(&refused.step).0, "not-authorized");
    let auth = authenticate(NONE, vec![user_agent(OTHER), fast()]);
    let st = start(
        &s,
        NONE,
        Some(build_initial_response("alice", other.as_bytes(), b"")),
        auth,
    );
    assert!(
        succeeded(&core.mechanism_start(fake.svc(), &st)),
        "the other client is untouched"
    );
    // Revoking again removes nothing.
    let again: Result<u32, String> = wire::decode(
        "t",
        &ask(client_hooks::CLIENT_REVOKE, wire::encode(&revoke).unwrap()),
    )
    .unwrap();
    assert_eq!(again, Ok(0));
    // A store that fails: the failure is the answer (a hook's error would be dropped).
    fake.store_down();
    let failed: Result<u32, String> = wire::decode(
        "t",
        &ask(client_hooks::CLIENT_REVOKE, wire::encode(&revoke).unwrap()),
    )
    .unwrap();
    assert!(failed.is_err(), "{failed:?}");
}
