use tessera_sasl::ht::{build_initial_response, parse_initial_response, HtMechanism};
use tessera_sasl::{decode_base64_lenient, encode_base64};

use super::*;

const UA: &str = "d4565fa7-4d72-4749-b3d3-740edbf87770";
const NOW: u64 = 1_700_000_000_000;
const TTL: u64 = 21 * 86_400_000;
const EXPR_CB: [u8; 32] = [0x5a; 32];

fn key() -> TokenKey {
    TokenKey::new(&[7u8; 32]).unwrap_or_else(|e| panic!("{e}"))
}

fn record(mechanism: HtMechanism, fill: u8, issued_at: u64) -> TokenRecord {
    issue(mechanism, &[fill; TOKEN_ID_BYTES], issued_at, TTL).unwrap_or_else(|| panic!("issue"))
}

/// The proof a client holding `record`'s token sends over `cb`.
fn proof(record: &TokenRecord, ua: &str, cb: &[u8]) -> Vec<u8> {
    let token = derive(&key(), record, "alice", ua);
    let msg = build_initial_response("alice", token.as_bytes(), cb);
    parse_initial_response(&msg)
        .unwrap_or_else(|e| panic!("{e}"))
        .1
}

fn attempt<'a>(mechanism: HtMechanism, cb: &'a [u8], proof: &'a [u8]) -> Attempt<'a> {
    Attempt {
        user: "alice",
        ua_id: UA,
        mechanism,
        cb_data: cb,
        proof,
        now_ms: NOW,
        password_changed_at_ms: Some(0),
    }
}

fn slots(
    new: Option<TokenRecord>,
    current: Option<TokenRecord>,
) -> Vec<(Slot, Option<TokenRecord>)> {
    vec![(Slot::New, new), (Slot::Current, current)]
}

#[test]
fn derived_tokens_are_ascii_prefixed_and_bound_to_every_input() {
    let r = record(HtMechanism::Sha256None, 1, NOW);
    let t = derive(&key(), &r, "alice", UA);
    assert!(t.starts_with(TOKEN_PREFIX), "{t}");
    assert_eq!(
        t.len(),
        TOKEN_PREFIX.len() + 43,
        "32 bytes, base64url unpadded"
    );
    assert!(t.is_ascii() && !t.contains('='));
    assert_eq!(t, derive(&key(), &r, "alice", UA), "deterministic");
    let other_key = TokenKey::new(&[8u8; 32]).unwrap_or_else(|e| panic!("{e}"));
    let mut other_mech = r.clone();
    other_mech.mechanism = HtMechanism::Sha256Expr.name().into();
    let variants = [
        derive(&other_key, &r, "alice", UA),
        derive(
            &key(),
            &record(HtMechanism::Sha256None, 2, NOW),
            "alice",
            UA,
        ),
        derive(&key(), &r, "bob", UA),
        derive(&key(), &r, "alice", "another-ua"),
        derive(&key(), &other_mech, "alice", UA),
        // Length prefixes: moving a character between fields changes the token.
        derive(&key(), &r, "alicea", &UA[1..]),
    ];
    for v in variants {
        assert_ne!(v, t);
    }
}

#[test]
fn the_stored_record_does_not_contain_the_token() {
    let r = record(HtMechanism::Sha256Expr, 0xab, NOW);
    assert_eq!(r.token_id.len(), 64);
    assert_eq!(r.expires_at_ms, NOW + TTL);
    let stored = serde_json::to_string(&r).unwrap_or_default();
    let token = derive(&key(), &r, "alice", UA);
    let secret = token.trim_start_matches(TOKEN_PREFIX);
    assert!(!stored.contains(secret), "{stored}");
    assert!(
        stored.contains("\"mechanism\":\"HT-SHA-256-EXPR\""),
        "{stored}"
    );
}

#[test]
fn short_randomness_issues_nothing() {
    assert!(issue(HtMechanism::Sha256None, &[1; 15], NOW, TTL).is_none());
    assert!(issue(HtMechanism::Sha256None, &[1; 16], NOW, TTL).is_some());
}

#[test]
fn new_slot_is_tried_first_and_current_still_works() {
    let old = record(HtMechanism::Sha256None, 1, NOW - 2 * 86_400_000);
    let new = record(HtMechanism::Sha256None, 2, NOW - 1000);
    let both = slots(Some(new.clone()), Some(old.clone()));
    let p_new = proof(&new, UA, b"");
    match verify(
        &key(),
        &attempt(HtMechanism::Sha256None, b"", &p_new),
        &both,
    ) {
        Verdict::Accepted { slot, record, .. } => {
            assert_eq!(slot, Slot::New);
            assert_eq!(record, new);
        }
        other => panic!("{other:?}"),
    }
    let p_old = proof(&old, UA, b"");
    let v = verify(
        &key(),
        &attempt(HtMechanism::Sha256None, b"", &p_old),
        &both,
    );
    assert!(
        matches!(
            v,
            Verdict::Accepted {
                slot: Slot::Current,
                ..
            }
        ),
        "{v:?}"
    );
}

#[test]
fn responder_is_the_raw_hmac_over_the_same_cb_data() {
    let r = record(HtMechanism::Sha256Expr, 3, NOW);
    let p = proof(&r, UA, &EXPR_CB);
    let token = derive(&key(), &r, "alice", UA);
    match verify(
        &key(),
        &attempt(HtMechanism::Sha256Expr, &EXPR_CB, &p),
        &slots(None, Some(r)),
    ) {
        Verdict::Accepted { responder, .. } => {
            assert_eq!(responder, ht::responder_hmac(token.as_bytes(), &EXPR_CB));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_token_only_works_under_its_own_mechanism() {
    // Issued for NONE: an EXPR attempt (with the proof a client would compute) is refused.
    let r = record(HtMechanism::Sha256None, 4, NOW);
    let p = proof(&r, UA, &EXPR_CB);
    let v = verify(
        &key(),
        &attempt(HtMechanism::Sha256Expr, &EXPR_CB, &p),
        &slots(Some(r.clone()), None),
    );
    assert_eq!(v, Verdict::Rejected);
    // Even the NONE proof presented under EXPR's name.
    let p = proof(&r, UA, b"");
    let v = verify(
        &key(),
        &attempt(HtMechanism::Sha256Expr, b"", &p),
        &slots(Some(r), None),
    );
    assert_eq!(v, Verdict::Rejected);
}

#[test]
fn a_token_of_another_user_agent_is_refused() {
    let r = record(HtMechanism::Sha256None, 5, NOW);
    let p = proof(&r, "9f0c2a4e-0000-4000-8000-000000000001", b"");
    let v = verify(
        &key(),
        &attempt(HtMechanism::Sha256None, b"", &p),
        &slots(Some(r), None),
    );
    assert_eq!(v, Verdict::Rejected);
}

#[test]
fn a_replayed_expr_proof_fails_on_another_connection() {
    let r = record(HtMechanism::Sha256Expr, 6, NOW);
    let p = proof(&r, UA, &EXPR_CB);
    let other_cb = [0x5b; 32];
    let v = verify(
        &key(),
        &attempt(HtMechanism::Sha256Expr, &other_cb, &p),
        &slots(Some(r), None),
    );
    assert_eq!(v, Verdict::Rejected);
}

#[test]
fn empty_slots_and_wrong_proofs_are_rejected() {
    let r = record(HtMechanism::Sha256None, 7, NOW);
    let p = proof(&r, UA, b"");
    let v = verify(
        &key(),
        &attempt(HtMechanism::Sha256None, b"", &p),
        &slots(None, None),
    );
    assert_eq!(v, Verdict::Rejected);
    let v = verify(
        &key(),
        &attempt(HtMechanism::Sha256None, b"", &[0u8; 32]),
        &slots(Some(r), None),
    );
    assert_eq!(v, Verdict::Rejected);
}

#[test]
fn expiry_is_credentials_expired_from_the_expiry_instant_on() {
    let r = record(HtMechanism::Sha256None, 8, NOW - TTL);
    let p = proof(&r, UA, b"");
    let at = |now| {
        let mut a = attempt(HtMechanism::Sha256None, b"", &p);
        a.now_ms = now;
        verify(&key(), &a, &slots(None, Some(r.clone())))
    };
    assert!(matches!(at(NOW - 1), Verdict::Accepted { .. }));
    let expired = Verdict::Stale {
        slot: Slot::Current,
        reason: Stale::Expired,
    };
    assert_eq!(at(NOW), expired);
    assert_eq!(at(NOW + 1), expired);
}

#[test]
fn tokens_issued_before_the_password_change_are_revoked() {
    let r = record(HtMechanism::Sha256None, 9, NOW - 5000);
    let p = proof(&r, UA, b"");
    let with_change = |changed| {
        let mut a = attempt(HtMechanism::Sha256None, b"", &p);
        a.password_changed_at_ms = changed;
        verify(&key(), &a, &slots(Some(r.clone()), None))
    };
    assert_eq!(
        with_change(Some(NOW - 4999)),
        Verdict::Stale {
            slot: Slot::New,
            reason: Stale::Revoked
        }
    );
    // A change in the token's own millisecond may have come after it: revoked too.
    assert_eq!(
        with_change(Some(NOW - 5000)),
        Verdict::Stale {
            slot: Slot::New,
            reason: Stale::Revoked
        }
    );
    assert!(matches!(
        with_change(Some(NOW - 5001)),
        Verdict::Accepted { .. }
    ));
    // A deleted account whose records were not cleaned up yet.
    assert_eq!(with_change(None), Verdict::Rejected);
}

#[test]
fn rotation_is_due_only_past_min_ttl() {
    let r = record(HtMechanism::Sha256None, 1, NOW);
    assert!(!rotation_due(&r, NOW + 86_400_000, 86_400_000));
    assert!(rotation_due(&r, NOW + 86_400_001, 86_400_000));
    assert!(
        !rotation_due(&r, NOW, 0),
        "age 0 is not past a min_ttl of 0"
    );
    assert!(rotation_due(&r, NOW + 1, 0));
    assert!(
        !rotation_due(&r, NOW - 10, 0),
        "a clock going back never rotates"
    );
}

#[test]
fn slot_keys_hide_the_user_agent_and_differ_per_slot() {
    let new = slot_key(UA, Slot::New);
    let current = slot_key(UA, Slot::Current);
    assert!(new.starts_with(&client_prefix(UA)) && current.starts_with(&client_prefix(UA)));
    assert!(new.ends_with(":new") && current.ends_with(":current"));
    assert!(new.starts_with(KEY_PREFIX) && !new.contains(UA));
    assert_eq!(client_prefix(UA).len(), KEY_PREFIX.len() + 64 + 1);
    assert_ne!(client_prefix(UA), client_prefix("other"));
}

#[test]
fn pruning_drops_garbage_expired_and_the_oldest_beyond_the_cap() {
    let entry = |key: &str, issued: u64| {
        let r = record(HtMechanism::Sha256None, 1, issued);
        (
            key.to_owned(),
            serde_json::to_string(&r).unwrap_or_default(),
        )
    };
    let entries = vec![
        entry("fast:a:new", NOW - 10),
        entry("fast:b:new", NOW - TTL),
        ("fast:c:new".to_owned(), "not json".to_owned()),
        entry("fast:d:new", NOW - 30),
        entry("fast:e:new", NOW - 20),
    ];
    let mut doomed = prunable(&entries, NOW, 10);
    doomed.sort();
    assert_eq!(doomed, ["fast:b:new", "fast:c:new"]);
    let mut doomed = prunable(&entries, NOW, 1);
    doomed.sort();
    assert_eq!(
        doomed,
        ["fast:b:new", "fast:c:new", "fast:d:new", "fast:e:new"]
    );
}

/// protocols.md §6.7, through the same proof check the server uses.
#[test]
fn protocol_vectors_verify_through_the_server_path() {
    const TOKEN: &[u8] = b"WXZzciBwYmFmdmZnZiBqdmd1IGp2eXFhcmZm";
    let expr_cb: Vec<u8> = (0..32)
        .map(|i| {
            let s = "c72842f39d04378f7783acc25980595ddd8356b55a1d6d60f4c1c1589dd74554";
            u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).unwrap_or(0)
        })
        .collect();
    let cases: [(&[u8], &str, &str); 2] = [
        (
            b"",
            "dXNlcgCQl3h0YaGE4PqE7ADBOBGQtsTRao7ERTx7KsXn/Pk17Q==",
            "TlE0CWMUdIY7mGyfPoweJ8op0derntQJfnr9YAe/nGI=",
        ),
        (
            &expr_cb,
            "dXNlcgCJccG41Ohh0VSHguwbbUGlXeAEw/o/vNOngkbvqr/5pQ==",
            "ze2lacKsalDnmlTJoIee0OZoig2jQEOU+0H9WozuE+4=",
        ),
    ];
    for (cb, initial, additional) in cases {
        let msg = decode_base64_lenient(initial).unwrap_or_default();
        let (authcid, proof) = parse_initial_response(&msg).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(authcid, "user");
        let responder = check_proof(TOKEN, cb, &proof).unwrap_or_else(|| panic!("vector"));
        assert_eq!(encode_base64(&responder), additional);
        assert!(check_proof(b"another token", cb, &proof).is_none());
    }
    // The NONE proof is not valid with the EXPR binding, and vice versa.
    let none = decode_base64_lenient(cases[0].1).unwrap_or_default();
    let (_, none_proof) = parse_initial_response(&none).unwrap_or_else(|e| panic!("{e}"));
    assert!(check_proof(TOKEN, &expr_cb, &none_proof).is_none());
}
