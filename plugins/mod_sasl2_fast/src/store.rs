//! Token records in the host's key-value store: one entry per slot, in the account's scope
//! (`KvScope::Account`, so the host drops them with the account), under the keys of
//! [`token::slot_key`]. Values are JSON [`TokenRecord`]s; an unreadable value counts as empty.

use tessera_plugin_api::protocol::KvScope;
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

/// Write one slot.
///
/// # Errors
/// Store failure.
pub(crate) fn save(
    svc: &Host,
    user: &str,
    ua_id: &str,
    slot: Slot,
    record: &TokenRecord,
) -> Result<(), PluginError> {
    let value = serde_json::to_string(record).map_err(|e| PluginError::internal(e.to_string()))?;
    svc.kv_put(scope(user), &token::slot_key(ua_id, slot), &value)
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
    save(svc, user, ua_id, Slot::Current, record)?;
    delete(svc, user, ua_id, Slot::New)
}

/// Delete both slots of a client.
///
/// # Errors
/// Store failure.
pub(crate) fn forget_client(svc: &Host, user: &str, ua_id: &str) -> Result<(), PluginError> {
    Slot::ORDER
        .iter()
        .try_for_each(|slot| delete(svc, user, ua_id, *slot))
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
    let entries = svc.kv_list(scope, KEY_PREFIX)?;
    let mut deleted = 0;
    for (key, value) in entries {
        let newer = serde_json::from_str::<crate::token::TokenRecord>(&value)
            .is_ok_and(|r| r.issued_at_ms > issued_until_ms);
        if !newer && svc.kv_delete(scope, &key)? {
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Delete an account's expired and unreadable records, and the oldest beyond
/// [`MAX_RECORDS_PER_ACCOUNT`] (run before a token is issued, so the store stays bounded).
///
/// # Errors
/// Store failure.
pub(crate) fn prune(svc: &Host, user: &str, now_ms: u64) -> Result<(), PluginError> {
    let scope = scope(user);
    let entries = svc.kv_list(scope, KEY_PREFIX)?;
    // Room for the record about to be written.
    let cap = MAX_RECORDS_PER_ACCOUNT.saturating_sub(1);
    for key in token::prunable(&entries, now_ms, cap) {
        svc.kv_delete(scope, &key)?;
    }
    Ok(())
}
