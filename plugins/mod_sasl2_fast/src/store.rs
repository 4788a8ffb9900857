//! Token records in the host's key-value store: one entry per slot, in the account's scope
//! (`KvScope::Account`, so the host drops them with the account), under the keys of
//! [`token::slot_key`]. Values are JSON [`TokenRecord`]s; an unreadable value counts as empty.
//! Each operation that writes several entries does so in one `kv_write` (one transaction, one
//! commit to disk), so a rotation or a revocation is never half done.

use tessera_plugin_api::clients::ClientCredential;
use tessera_plugin_api::protocol::{KvScope, KvWrite};
use tessera_plugin_api::Host;
use tessera_plugin_api::{LogLevel, PluginError};

use crate::token::{self, Slot, TokenRecord, KEY_PREFIX};

/// Most records kept per account (64 clients with both slots) when a token is issued.
pub(crate) const MAX_RECORDS_PER_ACCOUNT: usize = 128;

fn scope(user: &str) -> KvScope<'_> {
    KvScope::Account(user)
}

/// Both slots of (user, ua_id), `new` first.
///
/// # Errors
/// Store failure.
pub(crate) fn load(
    svc: &Host,
    user: &str,
    ua_id: &str,
) -> Result<Vec<(Slot, Option<TokenRecord>)>, PluginError> {
    let scope = scope(user);
    Slot::ORDER
        .iter()
        .map(|slot| {
            let raw = svc.kv_get(scope, &token::slot_key(ua_id, *slot))?;
            let record = raw.and_then(|text| match serde_json::from_str(&text) {
                Ok(record) => Some(record),
                Err(_) => {
                    svc.log(LogLevel::Warn, "unreadable FAST token record ignored");
                    None
                }
            });
            Ok((*slot, record))
        })
        .collect()
}

fn put(ua_id: &str, slot: Slot, record: &TokenRecord) -> Result<KvWrite, PluginError> {
    let value = serde_json::to_string(record).map_err(|e| PluginError::internal(e.to_string()))?;
    Ok(KvWrite::put(token::slot_key(ua_id, slot), value))
}

/// Write a new token into slot `new`, after deleting the account's expired and unreadable
/// records and the oldest beyond [`MAX_RECORDS_PER_ACCOUNT`] (so the store stays bounded),
/// all in one step.
///
/// # Errors
/// Store failure: nothing was written.
pub(crate) fn issue(
    svc: &Host,
    user: &str,
    ua_id: &str,
    record: &TokenRecord,
    now_ms: u64,
) -> Result<(), PluginError> {
    let scope = scope(user);
    let entries = svc.kv_list(scope, KEY_PREFIX)?;
    // Room for the record about to be written.
    let cap = MAX_RECORDS_PER_ACCOUNT.saturating_sub(1);
    let mut writes: Vec<KvWrite> = token::prunable(&entries, now_ms, cap)
        .into_iter()
        .map(KvWrite::delete)
        .collect();
    writes.push(put(ua_id, Slot::New, record)?);
    svc.kv_write(scope, writes)
}

/// Delete one slot.
///
/// # Errors
/// Store failure.
pub(crate) fn delete(svc: &Host, user: &str, ua_id: &str, slot: Slot) -> Result<(), PluginError> {
    svc.kv_delete(scope(user), &token::slot_key(ua_id, slot))
        .map(|_| ())
}

/// The first use of the `new` token: it becomes `current` (replacing the older one).
///
/// # Errors
/// Store failure (the token then stays in `new`, still usable).
pub(crate) fn promote(
    svc: &Host,
    user: &str,
    ua_id: &str,
    record: &TokenRecord,
) -> Result<(), PluginError> {
    let writes = vec![
        put(ua_id, Slot::Current, record)?,
        KvWrite::delete(token::slot_key(ua_id, Slot::New)),
    ];
    svc.kv_write(scope(user), writes)
}

/// Delete both slots of a client.
///
/// # Errors
/// Store failure.
pub(crate) fn forget_client(svc: &Host, user: &str, ua_id: &str) -> Result<(), PluginError> {
    let writes = Slot::ORDER
        .iter()
        .map(|slot| KvWrite::delete(token::slot_key(ua_id, *slot)))
        .collect();
    svc.kv_write(scope(user), writes)
}

/// The account's unexpired tokens, as credentials of their clients (XEP-0494's list).
///
/// # Errors
/// Store failure.
pub(crate) fn credentials(
    svc: &Host,
    user: &str,
    now_ms: u64,
) -> Result<Vec<ClientCredential>, PluginError> {
    Ok(svc
        .kv_list(scope(user), KEY_PREFIX)?
        .into_iter()
        .filter_map(|(key, value)| {
            let record: TokenRecord = serde_json::from_str(&value).ok()?;
            (record.expires_at_ms > now_ms).then(|| ClientCredential {
                client: token::client_of_key(&key).unwrap_or_default().to_owned(),
                kind: "fast".into(),
                issued_at_ms: record.issued_at_ms,
                expires_at_ms: record.expires_at_ms,
            })
        })
        .collect())
}

/// Delete both slots of a client named by its `client_ref`; returns how many tokens there
/// were.
///
/// # Errors
/// Store failure: nothing was deleted.
pub(crate) fn forget_client_ref(svc: &Host, user: &str, client: &str) -> Result<u32, PluginError> {
    let scope = scope(user);
    let writes: Vec<KvWrite> = svc
        .kv_list(scope, &token::ref_prefix(client))?
        .into_iter()
        .map(|(key, _)| KvWrite::delete(key))
        .collect();
    let count = u32::try_from(writes.len()).unwrap_or(u32::MAX);
    if count > 0 {
        svc.kv_write(scope, writes)?;
    }
    Ok(count)
}

/// Delete an account's tokens issued at or before `issued_until_ms` (and unreadable records);
/// returns how many records were deleted. A token issued after a password change (its event
/// can arrive late) is the new password's and stays.
///
/// # Errors
/// Store failure (some records may be left; they are refused anyway when issued before the
/// password change).
pub(crate) fn forget_account(
    svc: &Host,
    user: &str,
    issued_until_ms: u64,
) -> Result<usize, PluginError> {
    let scope = scope(user);
    let writes: Vec<KvWrite> = svc
        .kv_list(scope, KEY_PREFIX)?
        .into_iter()
        .filter(|(_, value)| {
            !serde_json::from_str::<crate::token::TokenRecord>(value)
                .is_ok_and(|r| r.issued_at_ms > issued_until_ms)
        })
        .map(|(key, _)| KvWrite::delete(key))
        .collect();
    let deleted = writes.len();
    if deleted > 0 {
        svc.kv_write(scope, writes)?;
    }
    Ok(deleted)
}
