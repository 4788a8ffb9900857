//! The SASL side: the two challenges, the uniform final failure, mails, limits, bad input.

use tessera_plugin_api::protocol::{MechanismStep, SaslProfile};

use super::*;
use crate::flow::{CANCELLED, FINAL_TEXT};

fn challenge_text(step: &MechanismStep) -> String {
    match step {
        MechanismStep::Challenge { data } => String::from_utf8(data.clone()).expect("utf-8"),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn failure_of(step: &MechanismStep) -> (&'static str, String, Option<String>, bool) {
    match step {
        MechanismStep::Failure {
            condition,
            text,
            user,
            application,
        } => (
            condition.as_str(),
            text.clone().unwrap_or_default(),
            application.as_ref().map(|a| a.to_xml()),
            user.is_none(),
        ),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn initial_response_names_the_account_and_the_form_asks_only_for_the_address() {
    let (fake, core) = (Fake::new(), core_with(Settings::default()));
    let form = challenge_text(&start(&core, &fake, 1, Some(b"alice")));
    assert!(
        form.starts_with("<x xmlns='jabber:x:data' type='form'>"),
        "{form}"
    );
    assert!(
        form.contains("var='email'") && !form.contains("var='username'"),
        "{form}"
    );
    let last = step(&core, &fake, 1, &submitted(None, "alice@example.NET"));
    fire_timers(&core, &fake);
    let (cond, text, app, no_user) = failure_of(&last);
    assert_eq!((cond, text.as_str()), ("aborted", FINAL_TEXT));
    assert_eq!(
        app.as_deref(),
        Some("<reset-requested xmlns='urn:tessera:password-reset:0'/>")
    );
    assert!(no_user, "no user: mod_sasl2 must not apply password limits");
    assert_eq!(fake.mails().len(), 1);
    let mail = fake.mails()[0].clone();
    assert_eq!(mail.to, "alice@Example.net", "mailed to the stored address");
    assert!(
        mail.body.contains("    alice@example.org\n"),
        "{}",
        mail.body
    );
    assert!(mail
        .body
        .contains("from the IP address 192.0.2.1 on 2023-11-14 22:13:20 UTC"));
    let link = last_link(&fake);
    assert!(
        link.starts_with("https://xmpp.example.org/password-reset/"),
        "{link}"
    );
    assert_eq!(
        link.len(),
        "https://xmpp.example.org/password-reset/".len() + 43
    );
}

#[test]
fn without_initial_response_an_empty_challenge_comes_first_then_the_form_asks_for_the_name() {
    let (fake, core) = (Fake::new(), core_with(Settings::default()));
    assert_eq!(
        start(&core, &fake, 7, None),
        MechanismStep::Challenge { data: Vec::new() }
    );
    let form = challenge_text(&step(&core, &fake, 7, b""));
    assert!(form.contains("var='username'"), "{form}");
    let last = step(
        &core,
        &fake,
        7,
        &submitted(Some("ALICE@Example.org"), "alice@example.net"),
    );
    fire_timers(&core, &fake);
    assert_eq!(failure_of(&last).0, "aborted");
    assert_eq!(fake.mails().len(), 1, "bare JID of this domain, any case");
    assert_eq!(core.exchanges(), 0);
}

#[test]
fn every_path_answers_the_same_and_defers_the_same_store_work() {
    let (fake, core) = (Fake::new(), core_with(Settings::default()));
    let mut answers = Vec::new();
    let mut writes = Vec::new();
    for (user, email) in [
        ("alice", "alice@example.net"),
        ("alice", "mallory@example.net"),
        ("alice", "alice@EXAMPLE.net.evil"),
        ("bob", "bob@example.net"),
        ("nobody", "nobody@example.net"),
        ("alice@other.example", "alice@example.net"),
    ] {
        fake.forget_writes();
        start(&core, &fake, 1, Some(user.as_bytes()));
        answers.push(step(&core, &fake, 1, &submitted(None, email)));
        assert!(fake.writes() == 0, "nothing written before the answer");
        assert!(fake.mails().len() <= 1);
        assert_eq!(fake.timers().len(), 1, "one deferred job on every path");
        fire_timers(&core, &fake);
        writes.push(fake.writes());
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(writes, [2; 6], "two store writes on every path");
    assert_eq!(fake.mails().len(), 1, "only the right address gets a mail");
}

#[test]
fn mails_per_account_and_requests_per_ip_are_limited_silently() {
    let (fake, core) = (Fake::new(), core_with(Settings::default()));
    for _ in 0..5 {
        let answer = request(&core, &fake, "alice", "alice@example.net");
        assert_eq!(answer, crate::flow::final_failure());
    }
    assert_eq!(fake.mails().len(), 3, "3 mails per account per hour");
    fake.advance(3_600_000);
    request(&core, &fake, "alice", "alice@example.net");
    assert_eq!(fake.mails().len(), 4, "the window slid");
    // Wrong addresses never use up the account's mails; the IP limit (10/h) still applies.
    let (fake, core) = (Fake::new(), core_with(Settings::default()));
    for _ in 0..9 {
        request(&core, &fake, "alice", "wrong@example.net");
    }
    request(&core, &fake, "alice", "alice@example.net");
    assert_eq!(
        fake.mails().len(),
        1,
        "10th request from the IP still served"
    );
    request(&core, &fake, "alice", "alice@example.net");
    assert_eq!(
        fake.mails().len(),
        1,
        "11th from the IP: no mail, same answer"
    );
}

#[test]
fn malformed_input_gets_a_precise_failure_and_changes_nothing() {
    let (fake, core) = (Fake::new(), core_with(Settings::default()));
    let cases: [(&[u8], &str); 4] = [
        (b"", "it was empty"),
        (b"<x xmlns='jabber:x:data' type='submit'><field var='email'><value>a@b</value></field></x>", "no FORM_TYPE"),
        (b"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:register:0</value></field></x>", "FORM_TYPE must be urn:tessera:password-reset:0"),
        (b"<x", "not a data form"),
    ];
    for (data, needle) in cases {
        start(&core, &fake, 2, Some(b"alice"));
        let (cond, text, app, _) = failure_of(&step(&core, &fake, 2, data));
        assert_eq!(cond, "malformed-request");
        assert!(text.contains(needle), "{text}");
        assert!(app.is_none());
    }
    start(&core, &fake, 2, Some(b"alice"));
    let long = format!("{}@example.net", "a".repeat(250));
    let (_, text, _, _) = failure_of(&step(&core, &fake, 2, &submitted(None, &long)));
    assert_eq!(text, "Field 'email' is longer than 254 bytes");
    let (cond, text, _, _) = failure_of(&start(&core, &fake, 3, Some(&[0xff, 0xfe])));
    assert_eq!(
        (cond, text.as_str()),
        ("malformed-request", "The account name is not UTF-8")
    );
    let (_, text, _, _) = failure_of(&start(&core, &fake, 3, Some(&[b'a'; 1024])));
    assert_eq!(text, "The account name is longer than 1023 bytes");
    start(&core, &fake, 4, Some(b"alice"));
    let cancel = step(&core, &fake, 4, b"<x xmlns='jabber:x:data' type='cancel'/>");
    assert_eq!(failure_of(&cancel).1, CANCELLED);
    assert!(fake.mails().is_empty() && fake.writes() == 0);
}

#[test]
fn unencrypted_streams_lost_exchanges_and_store_failures_are_refused() {
    let (fake, core) = (Fake::new(), core_with(Settings::default()));
    let mut plain = MechanismStart {
        exchange: 9,
        mechanism: "PASSWORD-RESET".into(),
        stream: stream(9, "192.0.2.1"),
        profile: SaslProfile::Sasl2,
        initial_response: Some(b"alice".to_vec()),
        user_agent_id: None,
        authenticate: None,
    };
    plain.stream.secure = false;
    assert_eq!(
        failure_of(&core.mechanism_start(fake.svc(), &plain)).0,
        "encryption-required"
    );
    assert_eq!(
        failure_of(&step(&core, &fake, 42, b"x")).0,
        "temporary-auth-failure"
    );
    start(&core, &fake, 5, Some(b"alice"));
    fake.store_down();
    let down = step(&core, &fake, 5, &submitted(None, "alice@example.net"));
    assert_eq!(failure_of(&down).0, "temporary-auth-failure");
    assert!(fake.mails().is_empty());
}

#[test]
fn counters_survive_a_hot_swap() {
    let (fake, core) = (Fake::new(), core_with(Settings::default()));
    for _ in 0..3 {
        request(&core, &fake, "alice", "alice@example.net");
    }
    let saved = core.save_state().expect("state");
    let next = core_with(Settings::default());
    next.restore(&saved, fake.now()).expect("restore");
    request(&next, &fake, "alice", "alice@example.net");
    assert_eq!(
        fake.mails().len(),
        3,
        "the 4th is still limited after the swap"
    );
    assert!(next.restore(b"{\"version\":9}", 0).is_err());
}

#[test]
fn without_a_timer_the_work_is_done_at_once_and_stale_job_tags_are_ignored() {
    let (fake, core) = (Fake::new(), core_with(Settings::default()));
    fake.timers_down();
    start(&core, &fake, 1, Some(b"alice"));
    step(&core, &fake, 1, &submitted(None, "alice@example.net"));
    assert_eq!(fake.mails().len(), 1, "mailed inline");
    core.run_job(fake.svc(), "job:1");
    core.run_job(fake.svc(), "job:x");
    assert_eq!(fake.mails().len(), 1);
}

/// The finding: `al\u{AD}ice` and `ａlice` each got a mail after `alice`'s cap was reached,
/// and a link requested under another spelling survived the account's password change. Every
/// spelling now names the account in the host's canonical form.
#[test]
fn every_spelling_of_an_account_shares_its_mail_limit_and_its_links() {
    let (fake, core) = (Fake::new(), core_with(Settings::default()));
    request(&core, &fake, "alice", "alice@example.net");
    request(&core, &fake, "ALICE", "alice@example.net");
    request(&core, &fake, "al\u{AD}ice", "alice@example.net");
    let link = last_link(&fake);
    for name in ["\u{FF41}lice", "Al\u{AD}ice@Example.org", "alice"] {
        request(&core, &fake, name, "alice@example.net");
    }
    assert_eq!(fake.mails().len(), 3, "one cap for every spelling");
    let path = link.strip_prefix(PUBLIC).expect("public url").to_owned();
    assert_eq!(http(&core, &fake, "GET", &path, "").status, 200);
    deliver(
        &core,
        &fake,
        "user-password-changed",
        &password_changed("alice", fake.now()),
    )
    .expect("event");
    assert_eq!(http(&core, &fake, "GET", &path, "").status, 410);
}
