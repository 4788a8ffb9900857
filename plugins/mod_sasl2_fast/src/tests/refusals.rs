//! Every way a FAST authentication is refused, with the condition and the account reported for
//! the rate limits.

use tessera_plugin_api::protocol::{MechanismStep, SaslProfile};

use super::*;

const NONE: &str = "HT-SHA-256-NONE";
const EXPR: &str = "HT-SHA-256-EXPR";

fn refused(core: &Core, fake: &Fake, st: &MechanismStart) -> (String, Option<String>) {
    let step = core.mechanism_start(fake.svc(), st);
    assert_eq!(core.pending_len(), 0, "no note after a failure");
    failure_of(&step)
}

fn alice() -> (String, Option<String>) {
    ("not-authorized".into(), Some("alice".into()))
}

#[test]
fn a_token_is_refused_under_another_mechanism() {
    let core = core();
    let fake = Fake::new();
    let token = issued_token(&core, &fake, NONE);
    let login = fast_login(
        &core,
        &fake,
        &stream(2, true),
        EXPR,
        "alice",
        &token,
        vec![],
    );
    assert_eq!(failure_of(&login.step), alice());
    let token = issued_token(&core, &fake, EXPR);
    let login = fast_login(
        &core,
        &fake,
        &stream(3, true),
        NONE,
        "alice",
        &token,
        vec![],
    );
    assert_eq!(failure_of(&login.step), alice());
}

#[test]
fn a_replayed_expr_response_fails_on_another_connection() {
    let core = core();
    let fake = Fake::new();
    let token = issued_token(&core, &fake, EXPR);
    let auth = authenticate(EXPR, vec![user_agent(UA), fast()]);
    let response = build_initial_response("alice", token.as_bytes(), &EXPORTER);
    let mut other = stream(2, true);
    other.channel_bindings.tls_exporter = Some(vec![0x11; 32]);
    assert_eq!(
        refused(
            &core,
            &fake,
            &start(&other, EXPR, Some(response.clone()), auth.clone())
        ),
        alice()
    );
    // The same bytes on the connection they were made for still work.
    assert!(succeeded(&core.mechanism_start(
        fake.svc(),
        &start(&stream(3, true), EXPR, Some(response), auth)
    )));
}

#[test]
fn a_token_is_bound_to_its_user_agent_and_account() {
    let core = core();
    let fake = Fake::new();
    fake.add_account("bob", 0);
    let token = issued_token(&core, &fake, NONE);
    let s = stream(2, false);
    let other_ua = "9f0c2a4e-1111-4000-8000-000000000001";
    let auth = authenticate(NONE, vec![user_agent(other_ua), fast()]);
    let response = build_initial_response("alice", token.as_bytes(), b"");
    assert_eq!(
        refused(&core, &fake, &start(&s, NONE, Some(response), auth)),
        alice()
    );
    let bob = fast_login(&core, &fake, &s, NONE, "bob", &token, vec![]);
    assert_eq!(
        failure_of(&bob.step),
        ("not-authorized".into(), Some("bob".into()))
    );
}

#[test]
fn an_expired_token_is_credentials_expired_and_removed() {
    let core = core_with(3600, 60);
    let fake = Fake::new();
    let token = issued_token(&core, &fake, NONE);
    fake.advance(3_600_000);
    let s = stream(2, false);
    let login = fast_login(&core, &fake, &s, NONE, "alice", &token, vec![]);
    assert_eq!(
        failure_of(&login.step),
        ("credentials-expired".into(), Some("alice".into()))
    );
    assert!(fake.keys("alice").is_empty(), "the stale slot is deleted");
    let again = fast_login(&core, &fake, &s, NONE, "alice", &token, vec![]);
    assert_eq!(failure_of(&again.step), alice());
}

#[test]
fn unknown_accounts_look_like_wrong_tokens() {
    let core = core();
    let fake = Fake::new();
    let token = issued_token(&core, &fake, NONE);
    let s = stream(2, false);
    let nobody = fast_login(&core, &fake, &s, NONE, "nobody", &token, vec![]);
    let wrong = fast_login(
        &core,
        &fake,
        &s,
        NONE,
        "alice",
        "secret-token:fast-guess",
        vec![],
    );
    let strip = |step: &MechanismStep| match step {
        MechanismStep::Failure {
            condition, text, ..
        } => (*condition, text.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(strip(&nobody.step), strip(&wrong.step));
    assert_eq!(failure_of(&nobody.step).1.as_deref(), Some("nobody"));
}

#[test]
fn stream_from_must_name_the_same_account() {
    let core = core();
    let fake = Fake::new();
    let token = issued_token(&core, &fake, NONE);
    let mut s = stream(2, false);
    s.from = Some("bob@example.org".into());
    let login = fast_login(&core, &fake, &s, NONE, "alice", &token, vec![]);
    assert_eq!(failure_of(&login.step), alice());
    s.from = Some("Alice@example.org".into());
    let login = fast_login(&core, &fake, &s, NONE, "alice", &token, vec![]);
    assert!(succeeded(&login.step), "{login:?}");
}

#[test]
fn malformed_requests() {
    let core = core();
    let fake = Fake::new();
    let token = issued_token(&core, &fake, NONE);
    let s = stream(2, false);
    let good = build_initial_response("alice", token.as_bytes(), b"");
    let malformed = |st: MechanismStart| {
        let (condition, _) = refused(&core, &fake, &st);
        assert_eq!(condition, "malformed-request", "{st:?}");
    };
    // No <fast/>.
    malformed(start(
        &s,
        NONE,
        Some(good.clone()),
        authenticate(NONE, vec![user_agent(UA)]),
    ));
    // No user-agent id.
    malformed(start(
        &s,
        NONE,
        Some(good.clone()),
        authenticate(NONE, vec![fast()]),
    ));
    // No initial response, no NUL, a short HMAC.
    let auth = authenticate(NONE, vec![user_agent(UA), fast()]);
    malformed(start(&s, NONE, None, auth.clone()));
    malformed(start(&s, NONE, Some(b"alice".to_vec()), auth.clone()));
    malformed(start(
        &s,
        NONE,
        Some(good[..good.len() - 1].to_vec()),
        auth.clone(),
    ));
    // EXPR on a connection without tls-exporter.
    let expr = authenticate(EXPR, vec![user_agent(UA), fast()]);
    malformed(start(&s, EXPR, Some(good.clone()), expr));
    // The HMAC may contain NULs: the split is at the first one only.
    let mut nul_hmac = b"alice\0".to_vec();
    nul_hmac.extend_from_slice(&[0u8; 32]);
    let (condition, _) = refused(&core, &fake, &start(&s, NONE, Some(nul_hmac), auth));
    assert_eq!(condition, "not-authorized");
}

#[test]
fn other_refusals() {
    let core = core();
    let fake = Fake::new();
    let token = issued_token(&core, &fake, NONE);
    let auth = authenticate(NONE, vec![user_agent(UA), fast()]);
    let good = build_initial_response("alice", token.as_bytes(), b"");
    let mut plain = stream(2, false);
    plain.secure = false;
    let (c, _) = refused(
        &core,
        &fake,
        &start(&plain, NONE, Some(good.clone()), auth.clone()),
    );
    assert_eq!(c, "encryption-required");
    let mut legacy = start(&stream(2, false), NONE, Some(good.clone()), auth.clone());
    legacy.profile = SaslProfile::Rfc6120;
    assert_eq!(refused(&core, &fake, &legacy).0, "invalid-mechanism");
    let uniq = start(
        &stream(2, false),
        "HT-SHA-256-UNIQ",
        Some(good.clone()),
        auth.clone(),
    );
    assert_eq!(refused(&core, &fake, &uniq).0, "invalid-mechanism");
    let bad_name = build_initial_response("a@b", token.as_bytes(), b"");
    let (c, user) = refused(
        &core,
        &fake,
        &start(&stream(2, false), NONE, Some(bad_name), auth.clone()),
    );
    assert_eq!((c.as_str(), user), ("not-authorized", None));
    fake.store_down();
    let st = start(&stream(2, false), NONE, Some(good), auth);
    assert_eq!(
        refused(&core, &fake, &st),
        ("temporary-auth-failure".into(), Some("alice".into()))
    );
}

#[test]
fn a_second_step_is_a_protocol_error() {
    let core = core();
    assert_eq!(failure_of(&core.mechanism_step()).0, "malformed-request");
}
