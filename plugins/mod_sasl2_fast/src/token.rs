//! FAST tokens (XEP-0484 §3–§5), pure: issue, derive, verify, rotate and prune, with the clock
//! (`now_ms`) and randomness passed in by the caller. No host, no store.
//!
//! # At rest
//! A stored [`TokenRecord`] holds a random `token_id`, never the token. The token the client
//! gets is `secret-token:fast-` followed by base64url (no padding) of
//! `HMAC-SHA-256(K, lp(token_id) ‖ lp(user) ‖ lp(ua_id) ‖ lp(mechanism))`, where `lp(x)` is `x`
//! prefixed with its length as a 4-byte big-endian integer and `K` is the host's
//! `derive_secret("fast-token")` (a key derived from the server secret, which lives outside the
//! database). A copy of the database alone therefore cannot rebuild any token. The token is
//! also bound to the account, the user-agent id and the mechanism: a record moved to another
//! account or client derives a different token.
//!
//! # Slots
//! Each (account, user-agent id) has two slots, `new` and `current`. Issuing writes `new`
//! (dropping an unused older `new`); the first use of `new` moves it to `current`
//! (dropping the older `current`). A token is accepted only under the mechanism it was issued
//! for, before its expiry, and if it was issued no earlier than the last password change.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tessera_plugin_api::clients::client_ref;
use tessera_plugin_api::PluginError;
use tessera_sasl::ht::{self, HtMechanism};

type HmacSha256 = Hmac<Sha256>;

/// Prefix of every token (XEP-0484 example; the `secret-token:` URI scheme of RFC 8959).
pub(crate) const TOKEN_PREFIX: &str = "secret-token:fast-";
/// Random bytes in a token id.
pub(crate) const TOKEN_ID_BYTES: usize = 32;
/// Fewest random bytes accepted for a token id (128 bits, the HT draft's minimum entropy).
const MIN_TOKEN_ID_BYTES: usize = 16;
/// Prefix of this module's keys in an account's store.
pub(crate) const KEY_PREFIX: &str = "fast:";

/// The key tokens are derived with (redacted in `Debug`).
#[derive(Clone)]
pub(crate) struct TokenKey(HmacSha256);

impl TokenKey {
    /// Key the derivation.
    ///
    /// # Errors
    /// An empty key (the host gave no secret).
    pub(crate) fn new(key: &[u8]) -> Result<Self, PluginError> {
        if key.is_empty() {
            return Err(PluginError::internal("empty fast-token key"));
        }
        HmacSha256::new_from_slice(key)
            .map(Self)
            .map_err(|e| PluginError::internal(format!("fast-token key: {e}")))
    }
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

/// One of the two token slots of an (account, user-agent id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Slot {
    /// Issued, not yet used.
    New,
    /// Used at least once.
    Current,
}

impl Slot {
    /// Lookup order: `new` first.
    pub(crate) const ORDER: [Slot; 2] = [Slot::New, Slot::Current];

    fn suffix(self) -> &'static str {
        match self {
            Slot::New => "new",
            Slot::Current => "current",
        }
    }
}

/// What is stored for one slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TokenRecord {
    /// The HT mechanism the token was issued for.
    pub(crate) mechanism: String,
    /// Random id (hex); the token is derived from it (see the module doc).
    pub(crate) token_id: String,
    /// Issue time, ms since the epoch.
    pub(crate) issued_at_ms: u64,
    /// Expiry, ms since the epoch.
    pub(crate) expires_at_ms: u64,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The store key of a slot: `fast:<hex(sha256(ua_id))>:<slot>`.
pub(crate) fn slot_key(ua_id: &str, slot: Slot) -> String {
    format!("{}{}", client_prefix(ua_id), slot.suffix())
}

/// The store key prefix of both slots of a client.
pub(crate) fn client_prefix(ua_id: &str) -> String {
    ref_prefix(&client_ref(ua_id))
}

/// The store key prefix of both slots of a client named by
/// [`tessera_plugin_api::clients::client_ref`] (the keys hold that name, never the id).
pub(crate) fn ref_prefix(client: &str) -> String {
    format!("{KEY_PREFIX}{client}:")
}

/// The client a store key belongs to (its [`client_ref`]).
pub(crate) fn client_of_key(key: &str) -> Option<&str> {
    key.strip_prefix(KEY_PREFIX)?.split(':').next()
}

/// A new record for `mechanism` from `random` (at least 16 bytes), valid `ttl_ms` from `now_ms`;
/// `None` when `random` is too short.
pub(crate) fn issue(
    mechanism: HtMechanism,
    random: &[u8],
    now_ms: u64,
    ttl_ms: u64,
) -> Option<TokenRecord> {
    (random.len() >= MIN_TOKEN_ID_BYTES).then(|| TokenRecord {
        mechanism: mechanism.name().to_owned(),
        token_id: hex(random),
        issued_at_ms: now_ms,
        expires_at_ms: now_ms.saturating_add(ttl_ms),
    })
}

/// The token string of a record for (user, ua_id).
pub(crate) fn derive(key: &TokenKey, record: &TokenRecord, user: &str, ua_id: &str) -> String {
    let mut mac = key.0.clone();
    for field in [
        record.token_id.as_bytes(),
        user.as_bytes(),
        ua_id.as_bytes(),
        record.mechanism.as_bytes(),
    ] {
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        mac.update(&len.to_be_bytes());
        mac.update(field);
    }
    let digest = mac.finalize().into_bytes();
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(digest))
}

/// Whether a token used for FAST is old enough to be replaced.
pub(crate) fn rotation_due(record: &TokenRecord, now_ms: u64, min_ttl_ms: u64) -> bool {
    now_ms.saturating_sub(record.issued_at_ms) > min_ttl_ms
}

/// A FAST authentication attempt, as the verification needs it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attempt<'a> {
    /// Canonical account name.
    pub(crate) user: &'a str,
    /// The SASL2 user-agent id.
    pub(crate) ua_id: &'a str,
    /// The mechanism of `<authenticate/>`.
    pub(crate) mechanism: HtMechanism,
    /// The connection's cb-data for the mechanism (empty for NONE).
    pub(crate) cb_data: &'a [u8],
    /// The client's initiator HMAC.
    pub(crate) proof: &'a [u8],
    /// Now, ms since the epoch.
    pub(crate) now_ms: u64,
    /// The account's last password change; `None` when the account does not exist.
    pub(crate) password_changed_at_ms: Option<u64>,
}

/// Why a matching token is no longer accepted (`credentials-expired`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stale {
    /// Past its expiry.
    Expired,
    /// Issued before the last password change.
    Revoked,
}

/// The result of checking an attempt against an account's slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The token of `slot` matched and is valid.
    Accepted {
        /// The slot that matched.
        slot: Slot,
        /// Its record.
        record: TokenRecord,
        /// The server's final message: the raw responder HMAC (-09 form).
        responder: [u8; 32],
    },
    /// The token of `slot` matched but is expired or revoked.
    Stale {
        /// The slot that matched.
        slot: Slot,
        /// Why it is refused.
        reason: Stale,
    },
    /// No token matched (`not-authorized`).
    Rejected,
}

/// The HT server final message (raw responder HMAC, -09 form) if `proof` is the initiator HMAC
/// of `token` over `cb_data`; compared in constant time.
pub(crate) fn check_proof(token: &[u8], cb_data: &[u8], proof: &[u8]) -> Option<[u8; 32]> {
    ht::verify_initiator(token, cb_data, proof).then(|| ht::responder_hmac(token, cb_data))
}

/// A record that never matches, verified in place of an empty slot so that a miss costs the
/// same HMACs as a hit.
fn decoy(mechanism: HtMechanism) -> TokenRecord {
    TokenRecord {
        mechanism: mechanism.name().to_owned(),
        token_id: "0".repeat(TOKEN_ID_BYTES * 2),
        issued_at_ms: 0,
        expires_at_ms: 0,
    }
}

/// Check an attempt against the `new` and `current` slots (in that order). Both slots are
/// always verified (a decoy stands in for an empty one) and the HMAC comparison is constant
/// time. A slot matches only if its mechanism is the attempt's and its token verifies.
pub(crate) fn verify(
    key: &TokenKey,
    attempt: &Attempt<'_>,
    slots: &[(Slot, Option<TokenRecord>)],
) -> Verdict {
    let mut matched = None;
    for (slot, record) in slots {
        let present = record.is_some();
        let record = record.clone().unwrap_or_else(|| decoy(attempt.mechanism));
        let token = derive(key, &record, attempt.user, attempt.ua_id);
        let responder = check_proof(token.as_bytes(), attempt.cb_data, attempt.proof);
        let same_mechanism = record.mechanism == attempt.mechanism.name();
        if let (true, true, Some(responder), None) = (present, same_mechanism, responder, &matched)
        {
            matched = Some((*slot, record, responder));
        }
    }
    let Some((slot, record, responder)) = matched else {
        return Verdict::Rejected;
    };
    let Some(changed_at) = attempt.password_changed_at_ms else {
        // Tokens of a deleted account that were not cleaned up yet.
        return Verdict::Rejected;
    };
    if attempt.now_ms >= record.expires_at_ms {
        return Verdict::Stale {
            slot,
            reason: Stale::Expired,
        };
    }
    // A token dated in the very millisecond of a change may predate it: revoked.
    if record.issued_at_ms <= changed_at {
        return Verdict::Stale {
            slot,
            reason: Stale::Revoked,
        };
    }
    Verdict::Accepted {
        slot,
        record,
        responder,
    }
}

/// Keys of an account's records to delete before issuing another: unreadable and expired
/// records, then the oldest ones beyond `cap`.
pub(crate) fn prunable(entries: &[(String, String)], now_ms: u64, cap: usize) -> Vec<String> {
    let mut doomed = Vec::new();
    let mut live: Vec<(u64, &str)> = Vec::new();
    for (key, value) in entries {
        match serde_json::from_str::<TokenRecord>(value) {
            Ok(r) if now_ms < r.expires_at_ms => live.push((r.issued_at_ms, key)),
            _ => doomed.push(key.clone()),
        }
    }
    live.sort_unstable();
    let excess = live.len().saturating_sub(cap);
    doomed.extend(live.iter().take(excess).map(|(_, k)| (*k).to_owned()));
    doomed
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
