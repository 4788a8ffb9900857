//! Rate limits through the module, hot-swap state, and stream clean-up.

use tessera_plugin_api::protocol::StreamAction;
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::PluginErrorKind;

use super::*;

fn settings(per_user: usize, per_ip: usize) -> Settings {
    Settings {
        max_retries: 100,
        max_failures_per_user: per_user,
        max_failures_per_ip: per_ip,
        account_backoff_after: 1_000,
        account_backoff_max_ms: 60_000,
        failure_window_ms: 60_000,
    }
}

fn plain(fake: &Fake, id: u64, ip: &str, user: &str, password: &str) -> Vec<StreamAction> {
    let mut s = stream(false);
    s.id = id;
    s.peer_ip = ip.into();
    let ir = format!("\0{user}\0{password}");
    fake.send(&s, authenticate("PLAIN", Some(ir.as_bytes()), vec![]))
}

const LIMITED: &str = "Too many failed attempts; retry in 60 s";

#[test]
fn account_limit_refuses_even_the_right_password_and_looks_the_same_for_unknown_accounts() {
    let fake = Fake::with(settings(2, 100));
    for user in ["alice", "alice", "ghost", "ghost"] {
        let xml = only_send(&plain(&fake, 1, "198.51.100.1", user, "bad"));
        assert_eq!(xml, sasl2_failure("not-authorized", None));
    }
    let alice = only_send(&plain(&fake, 2, "198.51.100.1", "alice", "pencil"));
    let ghost = only_send(&plain(&fake, 3, "198.51.100.1", "ghost", "pencil"));
    assert_eq!(
        alice,
        sasl2_failure("temporary-auth-failure", Some(LIMITED))
    );
    assert_eq!(ghost, alice);
    // The limit is the guessing address's: the owner, elsewhere, logs in.
    let owner = plain(&fake, 4, "203.0.113.1", "alice", "pencil");
    assert!(
        matches!(owner.first(), Some(StreamAction::Authenticated { .. })),
        "{owner:?}"
    );
    // Refused before any credential lookup: no success possible, counters not extended.
    fake.advance(60_000);
    let ok = plain(&fake, 5, "198.51.100.1", "alice", "pencil");
    assert!(
        matches!(ok.first(), Some(StreamAction::Authenticated { .. })),
        "{ok:?}"
    );
}

#[test]
fn scram_is_limited_at_client_first() {
    let fake = Fake::with(settings(1, 100));
    only_send(&plain(&fake, 1, "192.0.2.1", "alice", "bad"));
    let mut s = stream(false);
    s.id = 2;
    s.peer_ip = "192.0.2.1".into();
    let first = b"n,,n=Alice,r=abcdefghijklmnop";
    let xml = only_send(&fake.send(&s, authenticate("SCRAM-SHA-256", Some(first), vec![])));
    assert_eq!(xml, sasl2_failure("temporary-auth-failure", Some(LIMITED)));
}

#[test]
fn address_limit_refuses_before_the_mechanism_runs() {
    let fake = Fake::with(settings(100, 2));
    plain(&fake, 1, "192.0.2.99", "alice", "bad");
    plain(&fake, 1, "192.0.2.99", "bob", "bad");
    let mark = fake.mark();
    fake.advance(15_000);
    let xml = only_send(&plain(&fake, 1, "192.0.2.99", "alice", "pencil"));
    assert_eq!(
        xml,
        sasl2_failure(
            "temporary-auth-failure",
            Some("Too many failed attempts; retry in 45 s")
        )
    );
    assert!(!fake.started_since(mark), "{:?}", fake.calls_since(mark));
    // Another address is unaffected.
    let ok = plain(&fake, 5, "192.0.2.100", "alice", "pencil");
    assert!(matches!(
        ok.first(),
        Some(StreamAction::Authenticated { .. })
    ));
}

#[test]
fn protocol_errors_and_aborts_do_not_count() {
    let fake = Fake::with(settings(1, 1));
    let s = stream(false);
    for _ in 0..3 {
        only_send(&fake.send(&s, authenticate("PLAIN", None, vec![])));
        only_send(&fake.send(&s, Element::new("abort", SASL2_NS)));
        only_send(&fake.send(&s, authenticate("HT-SHA-256-NONE", Some(b"x"), vec![])));
        only_send(&fake.send(&s, authenticate("PLAIN", Some(b"\0alice"), vec![])));
    }
    let ok = fake.send(&s, authenticate("PLAIN", Some(b"\0alice\0pencil"), vec![]));
    assert!(
        matches!(ok.first(), Some(StreamAction::Authenticated { .. })),
        "{ok:?}"
    );
}

#[test]
fn save_and_restore_carry_counters_and_interrupt_running_exchanges() {
    let fake = Fake::with(settings(1, 100));
    only_send(&plain(&fake, 1, "192.0.2.1", "alice", "bad"));
    let mut s = stream(false);
    s.id = 8;
    only_send(&fake.send(&s, authenticate("SCRAM-SHA-256", None, vec![])));
    let bytes = fake.core().save_state().unwrap_or_default();
    assert_eq!(bytes.first(), Some(&1));

    let fresh = fake.reload();
    let xml = only_send(&plain(&fresh, 2, "192.0.2.1", "alice", "pencil"));
    assert_eq!(xml, sasl2_failure("temporary-auth-failure", Some(LIMITED)));
    let mark = fresh.mark();
    // The exchange on stream 8 did not survive: the client is told to retry.
    let xml = only_send(&fresh.send(&s, response(SASL2_NS, b"n,,n=bob,r=abcdefghijklmnop")));
    assert_eq!(
        xml,
        sasl2_failure(
            "temporary-auth-failure",
            Some("Authentication was interrupted by a server module reload; please retry")
        )
    );
    assert_eq!(fresh.calls_since(mark), ["mechanism_end"]);
    let xml = only_send(&fresh.send(&s, authenticate("PLAIN", Some(b"\0bob\0x"), vec![])));
    assert_eq!(xml, sasl2_failure("not-authorized", None));

    let err = fresh
        .core()
        .restore(&[9, b'{', b'}'], 0)
        .expect_err("unknown version");
    assert_eq!(err.kind, PluginErrorKind::BAD_STATE);
}

#[test]
fn session_closed_drops_stream_and_exchange_state() {
    let fake = Fake::new();
    let s = stream(false);
    only_send(&fake.send(
        &s,
        authenticate(
            "SCRAM-SHA-256",
            Some(b"n,,n=alice,r=abcdefghijklmnop"),
            vec![],
        ),
    ));
    assert_eq!(fake.core().tracked(), (1, 1));
    fake.session_closed(s.id);
    assert_eq!(fake.core().tracked(), (0, 0));
    // A late response on that id is now a stray response.
    let xml = only_send(&fake.send(&s, response(SASL2_NS, b"x")));
    assert_eq!(
        xml,
        sasl2_failure(
            "malformed-request",
            Some("No authentication exchange in progress")
        )
    );
}

/// The finding: ten failures from three addresses locked the account for 300 s, its owner and
/// FAST token included. Now the guessing addresses back off, and the owner is not held back.
#[test]
fn guessing_from_many_addresses_locks_out_neither_the_owner_nor_a_token_login() {
    let fake = Fake::with(Settings {
        account_backoff_after: 3,
        ..settings(100, 100)
    })
    .with_hidden("HT-SHA-256-NONE");
    for (i, ip) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        .iter()
        .enumerate()
    {
        let xml = only_send(&plain(&fake, 10 + i as u64, ip, "alice", "bad"));
        assert_eq!(xml, sasl2_failure("not-authorized", None));
    }
    // A guessing address waits (1 s, doubling with each further failure) ...
    let again = only_send(&plain(&fake, 20, "198.51.100.1", "alice", "bad"));
    let wait = |s: u64| {
        sasl2_failure(
            "temporary-auth-failure",
            Some(&format!("Too many failed attempts; retry in {s} s")),
        )
    };
    assert_eq!(again, wait(1));
    fake.advance(1_000);
    only_send(&plain(&fake, 21, "198.51.100.1", "alice", "bad"));
    assert_eq!(
        only_send(&plain(&fake, 22, "198.51.100.1", "alice", "bad")),
        wait(2)
    );
    // ... a token login from that very address is not held back by the account's backoff ...
    let mut s = stream(false);
    s.id = 23;
    s.peer_ip = "198.51.100.1".into();
    let token = fake.send(&s, authenticate("HT-SHA-256-NONE", Some(b"alice"), vec![]));
    assert!(
        token
            .iter()
            .any(|a| matches!(a, StreamAction::Authenticated { .. })),
        "{token:?}"
    );
    // ... and the owner, from an address that did not guess, logs in with the password.
    let owner = plain(&fake, 24, "203.0.113.1", "alice", "pencil");
    assert!(
        matches!(owner.first(), Some(StreamAction::Authenticated { .. })),
        "{owner:?}"
    );
}

/// `straße` and `strasse` are one account (nodeprep): failures under either spelling count
/// on one key, and a login under either names the stored account.
#[test]
fn spellings_of_one_account_share_its_failure_counter() {
    let fake = Fake::with(settings(2, 100));
    fake.host.add_account("strasse", "pencil", None);
    only_send(&plain(&fake, 1, "192.0.2.5", "Straße", "bad"));
    only_send(&plain(&fake, 2, "192.0.2.5", "STRASSE", "bad"));
    let xml = only_send(&plain(&fake, 3, "192.0.2.5", "strasse", "pencil"));
    assert_eq!(xml, sasl2_failure("temporary-auth-failure", Some(LIMITED)));
    let ok = plain(&fake, 4, "192.0.2.6", "Straße", "pencil");
    assert!(
        matches!(ok.first(), Some(StreamAction::Authenticated { user, .. }) if user == "strasse"),
        "{ok:?}"
    );
}
