//! SCRAM-SHA-512 and XEP-0480's `UPGR-SCRAM-SHA-512`, with the real mod_scram_upgrade loaded
//! beside this module: what is offered to whom, the task from `<continue/>` to `<success/>`,
//! when it does not run, and every bad answer.

use mod_scram_upgrade::task::{TASK, UPGRADE_NS};
use mod_scram_upgrade::ScramUpgradeModule;
use tessera_sasl::scram::{salted_password, ClientBinding};

use tessera_plugin_api::protocol::{NamedAccount, ScramHash};

use super::flows::scram;
use super::*;

/// mod_sasl2 and mod_scram_upgrade on one test host (alice has no SHA-512 verifier).
fn with_upgrade() -> (Fake, Loaded<ScramUpgradeModule>) {
    let fake = Fake::new();
    let upgrade = fake
        .host
        .load::<ScramUpgradeModule>(Config::default())
        .unwrap_or_else(|e| panic!("load mod_scram_upgrade: {e}"));
    // Logins begin after the password was set (a change in the same millisecond counts as
    // after the login's start).
    fake.advance(1);
    (fake, upgrade)
}

fn ask() -> Element {
    Element::new("upgrade", UPGRADE_NS).with_text(TASK)
}

/// A stream whose header names `from`, with `named_account` as the server computes it from the
/// test host's accounts (a name with no account looks like a current one).
fn on(fake: &Fake, id: u64, from: Option<&str>) -> StreamInfo {
    let named_account = from.map(|jid| {
        let local = jid.split('@').next().unwrap_or_default();
        let mut scram_hashes = vec![ScramHash::Sha1, ScramHash::Sha256];
        if fake
            .host
            .account(local)
            .is_none_or(|a| a.scram_sha512.is_some())
        {
            scram_hashes.push(ScramHash::Sha512);
        }
        NamedAccount { scram_hashes }
    });
    StreamInfo {
        id,
        from: from.map(str::to_owned),
        named_account,
        ..stream(true)
    }
}

/// The `<mechanism/>`s and `<upgrade/>`s of SASL2 `<authentication/>`.
fn offered(fake: &Fake, s: &StreamInfo) -> (Vec<String>, Vec<String>) {
    let features = fake.features(s);
    let auth = features
        .iter()
        .find(|f| f.is("authentication", SASL2_NS))
        .unwrap_or_else(|| panic!("no <authentication/>"));
    let texts = |name: &str, ns: &str| auth.children_named(name, ns).map(Element::text).collect();
    (texts("mechanism", SASL2_NS), texts("upgrade", UPGRADE_NS))
}

fn sha512_of(password: &str) -> ScramSecret {
    secret(Hash::Sha512, password)
}

/// `<task-data/>` with a `<hash/>` of this text.
fn hash_data(text: &str) -> Element {
    Element::new("task-data", SASL2_NS)
        .with_child(Element::new("hash", mod_scram_upgrade::task::SCRAM_UPGRADE_NS).with_text(text))
}

/// PLAIN for alice asking for the upgrade, then `<next/>`: the salt and iteration count sent.
fn start_task(fake: &Fake, s: &StreamInfo) -> (Vec<u8>, u32) {
    let cont = only_send(&fake.send(
        s,
        authenticate("PLAIN", Some(b"\0alice\0pencil"), vec![ask()]),
    ));
    assert_eq!(
        cont,
        "<continue xmlns='urn:xmpp:sasl:2'><tasks><task>UPGR-SCRAM-SHA-512</task></tasks></continue>"
    );
    let next = Element::new("next", SASL2_NS).with_attr("task", TASK);
    let data = only_send(&fake.send(s, next));
    assert!(
        data.starts_with(
            "<task-data xmlns='urn:xmpp:sasl:2'><salt xmlns='urn:xmpp:scram-upgrade:0' iterations='"
        ),
        "{data}"
    );
    let iterations = data
        .split("iterations='")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no iteration count in {data}"));
    (payload_of(&data, "salt"), iterations)
}

fn sha512_verifier(fake: &Fake) -> Option<ScramSecret> {
    fake.host.account("alice").and_then(|a| a.scram_sha512)
}

#[test]
fn sha512_is_offered_only_to_a_stream_naming_an_account_that_can_pass_it() {
    let (fake, _upgrade) = with_upgrade();
    let no_sha512 = [
        "SCRAM-SHA-256-PLUS",
        "SCRAM-SHA-256",
        "SCRAM-SHA-1-PLUS",
        "SCRAM-SHA-1",
        "PLAIN",
    ];
    // No `from`, or an account whose password predates SHA-512 verifiers: not offered (a
    // client preferring it would fail a login that SHA-256 passes). The task is listed alike.
    for from in [None, Some("alice@example.org"), Some("ALICE@example.org/x")] {
        let (mechanisms, upgrades) = offered(&fake, &on(&fake, 1, from));
        assert_eq!(mechanisms, no_sha512, "from {from:?}");
        assert_eq!(upgrades, [TASK]);
    }
    // A name that does not exist looks like an account that has it.
    let (mechanisms, _) = offered(&fake, &on(&fake, 1, Some("ghost@example.org")));
    assert_eq!(
        mechanisms[..3],
        ["SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-512"]
    );
    // Once alice has a verifier, it is offered to her, and she logs in with it.
    fake.host.change_account_silently("alice", |a| {
        if let Some(a) = a {
            a.scram_sha512 = Some(sha512_of("pencil"));
        }
    });
    let s = on(&fake, 2, Some("alice@example.org"));
    let (mechanisms, _) = offered(&fake, &s);
    assert_eq!(mechanisms.len(), 7);
    let binding = ClientBinding::Bound {
        cb_type: tessera_sasl::CbType::TlsExporter,
        data: EXPORTER.to_vec(),
    };
    let (actions, verdict) = scram(
        &fake,
        &s,
        true,
        (Hash::Sha512, binding),
        ("alice", "pencil"),
        vec![],
    );
    assert_eq!(verdict, Some(true), "{actions:?}");
    // Without mod_scram_upgrade nothing is listed.
    let plain = Fake::new();
    assert!(offered(&plain, &on(&fake, 1, None)).1.is_empty());
}

#[test]
fn a_login_that_asks_runs_the_task_and_the_account_gets_its_verifier() {
    let (fake, _upgrade) = with_upgrade();
    let s = on(&fake, 7, Some("alice@example.org"));
    // SCRAM-SHA-256: the <continue/> carries the server signature.
    let (actions, _) = scram(
        &fake,
        &s,
        true,
        (Hash::Sha256, ClientBinding::NotSupported),
        ("alice", "pencil"),
        vec![ask()],
    );
    let cont = only_send(&actions);
    assert!(
        cont.starts_with("<continue xmlns='urn:xmpp:sasl:2'><additional-data>"),
        "{cont}"
    );
    assert!(
        cont.ends_with("<tasks><task>UPGR-SCRAM-SHA-512</task></tasks></continue>"),
        "{cont}"
    );
    assert!(payload_of(&cont, "additional-data").starts_with(b"v="));
    let next = Element::new("next", SASL2_NS).with_attr("task", TASK);
    let data = only_send(&fake.send(&s, next));
    let salt = payload_of(&data, "salt");
    assert_eq!(salt.len(), 16);
    // The host's `scram_iteration_count` (the test host says 10,000).
    assert!(data.contains("iterations='10000'"), "{data}");
    let salted = salted_password(Hash::Sha512, "pencil", &salt, 10_000).unwrap();
    let actions = fake.send(&s, hash_data(&encode_base64(&salted)));
    assert_eq!(
        actions.first(),
        Some(&StreamAction::Authenticated {
            user: "alice".into(),
            user_agent_id: None
        })
    );
    assert!(sent(&actions)[0].starts_with("<success xmlns='urn:xmpp:sasl:2'>"));
    let stored = sha512_verifier(&fake).expect("a SHA-512 verifier");
    assert_eq!((stored.salt, stored.iterations), (salt, 10_000));
    // The test host keeps the SaltedPassword it was given in place of the keys.
    assert_eq!(stored.stored_key, salted);

    // Asking again: the account has it, so the login succeeds at once.
    let again = on(&fake, 8, Some("alice@example.org"));
    let actions = fake.send(
        &again,
        authenticate("PLAIN", Some(b"\0alice\0pencil"), vec![ask()]),
    );
    assert!(sent(&actions)[0].starts_with("<success"), "{actions:?}");
}

#[test]
fn no_task_without_a_password_login_a_request_or_with_another_task_name() {
    let (fake, _upgrade) = with_upgrade();
    let fake = fake.with_hidden("HT-SHA-256-NONE");
    let cases = [
        // A token login proves no password: never.
        authenticate("HT-SHA-256-NONE", Some(b"alice"), vec![ask()]),
        // Not asked for.
        authenticate("PLAIN", Some(b"\0alice\0pencil"), vec![]),
        // Another task (or another namespace).
        authenticate(
            "PLAIN",
            Some(b"\0alice\0pencil"),
            vec![Element::new("upgrade", UPGRADE_NS).with_text("UPGR-SCRAM-SHA-256")],
        ),
        authenticate(
            "PLAIN",
            Some(b"\0alice\0pencil"),
            vec![Element::new("upgrade", "urn:example").with_text(TASK)],
        ),
    ];
    for (i, start) in cases.into_iter().enumerate() {
        let s = on(&fake, 20 + i as u64, None);
        let actions = fake.send(&s, start);
        assert!(
            sent(&actions)[0].starts_with("<success"),
            "case {i}: {actions:?}"
        );
    }
    assert_eq!(sha512_verifier(&fake), None);
}

#[test]
fn bad_answers_fail_the_login_precisely_and_store_nothing() {
    let (fake, _upgrade) = with_upgrade();
    let failure = |condition: &str, text: &str| {
        format!(
            "<failure xmlns='urn:xmpp:sasl:2'><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>\
             <text xml:lang='en'>{text}</text></failure>"
        )
    };
    let salted = |salt: &[u8], i: u32| salted_password(Hash::Sha512, "pencil", salt, i).unwrap();
    /// A client's answer to `<salt/>`: salt and iteration count in, `<task-data/>` out.
    type Answer = Box<dyn Fn(&[u8], u32) -> Element>;
    let cases: Vec<(Answer, String)> = vec![
        (
            Box::new(|_, _| Element::new("task-data", SASL2_NS)),
            failure(
                "malformed-request",
                "Expected &lt;hash xmlns='urn:xmpp:scram-upgrade:0'/&gt;",
            ),
        ),
        (
            Box::new(|_, _| hash_data("not base64!")),
            failure("incorrect-encoding", "The hash is not base64"),
        ),
        (
            // A SHA-256 SaltedPassword where SHA-512's is due.
            Box::new(move |salt, i| {
                let s256 = salted_password(Hash::Sha256, "pencil", salt, i).unwrap();
                hash_data(&encode_base64(&s256))
            }),
            failure(
                "malformed-request",
                "a SCRAM-SHA-512 SaltedPassword is 64 bytes, not 32",
            ),
        ),
    ];
    for (i, (answer, expected)) in cases.iter().enumerate() {
        let s = on(&fake, 30 + i as u64, None);
        let (salt, iterations) = start_task(&fake, &s);
        let actions = fake.send(&s, answer(&salt, iterations));
        assert_eq!(sent(&actions), std::slice::from_ref(expected), "case {i}");
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, StreamAction::Authenticated { .. })),
            "case {i}"
        );
    }
    assert_eq!(sha512_verifier(&fake), None);

    // The password changes between <next/> and <hash/>: the SaltedPassword may be of the old
    // one, so nothing is stored and the login fails.
    let s = on(&fake, 40, None);
    let (salt, iterations) = start_task(&fake, &s);
    fake.advance(5);
    fake.module_host()
        .set_password("alice", "new password", None)
        .unwrap_or_else(|e| panic!("set_password: {e}"));
    let actions = fake.send(&s, hash_data(&encode_base64(&salted(&salt, iterations))));
    assert_eq!(
        sent(&actions),
        [failure(
            "not-authorized",
            "Authentication is no longer valid"
        )]
    );
    assert_eq!(sha512_verifier(&fake), None);
}

#[test]
fn a_salt_sent_survives_a_reload_of_the_upgrade_module_and_dies_with_its_stream() {
    let (fake, upgrade) = with_upgrade();
    let s = on(&fake, 50, None);
    let (salt, iterations) = start_task(&fake, &s);
    // Hot swap between <next/> and <hash/>: the successor knows the salt.
    let upgrade = upgrade
        .reload(None)
        .unwrap_or_else(|e| panic!("reload: {e}"));
    let salted = salted_password(Hash::Sha512, "pencil", &salt, iterations).unwrap();
    let actions = fake.send(&s, hash_data(&encode_base64(&salted)));
    assert!(sent(&actions)[0].starts_with("<success"), "{actions:?}");
    assert_eq!(sha512_verifier(&fake).map(|v| v.salt), Some(salt));

    // A stream that closes between the two forgets its salt.
    fake.host.change_account_silently("alice", |a| {
        if let Some(a) = a {
            a.scram_sha512 = None;
        }
    });
    let s = on(&fake, 51, None);
    let (salt, iterations) = start_task(&fake, &s);
    let closed = SessionEvent {
        stream_id: 51,
        jid: None,
        reason: Some("disconnected".into()),
    };
    upgrade
        .event(events::SESSION_CLOSED, &closed)
        .unwrap_or_else(|e| panic!("session-closed: {e}"));
    let salted = salted_password(Hash::Sha512, "pencil", &salt, iterations).unwrap();
    let actions = fake.send(&s, hash_data(&encode_base64(&salted)));
    assert!(
        sent(&actions)[0].contains("<text xml:lang='en'>No salt was sent</text>"),
        "{actions:?}"
    );
}
