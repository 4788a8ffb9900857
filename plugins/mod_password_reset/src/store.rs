//! Reset links as stored: only the SHA-256 of a token is ever written (`token:<hex>` → a JSON
//! [`Record`]), plus a per-account index (`user:<account>:<hex>` → empty) so that every
//! outstanding link of an account can be revoked when its password changes or it is deleted.
//!
//! A used, revoked or expired link keeps a tombstone until [`RETENTION_MS`] after its expiry, so
//! the page can say "this link was already used / has expired" (HTTP 410) instead of "unknown"
//! (404); the hourly cleanup then deletes it.

use serde::{Deserialize, Serialize};
use tessera_plugin_api::protocol::KvScope;
use tessera_plugin_api::{Host, PluginError};

/// How long a tombstone outlives the link's expiry, in milliseconds.
pub(crate) const RETENTION_MS: u64 = 24 * 3600 * 1000;
/// The keys written on the no-mail path, so that both paths write the same amount.
const DECOY_KEYS: [&str; 2] = ["decoy:token", "decoy:index"];

/// A stored reset link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The account (localpart).
    pub(crate) user: String,
    /// When the link was created (ms since the epoch).
    pub(crate) created_ms: u64,
    /// When it expires.
    pub(crate) expires_ms: u64,
    /// The IP address the request came from.
    pub(crate) requester_ip: String,
    /// When it was used to set a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) used_ms: Option<u64>,
    /// When it was revoked (password changed another way, account deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) revoked_ms: Option<u64>,
}

/// What a link is worth now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    /// Usable.
    Valid(Record),
    /// Past its expiry.
    Expired,
    /// Already used.
    Used,
    /// Revoked by a password change or account deletion.
    Revoked,
    /// Never issued (or long gone).
    Unknown,
}

impl Record {
    /// The link's status at `now_ms`.
    pub(crate) fn status(self, now_ms: u64) -> Status {
        if self.used_ms.is_some() {
            Status::Used
        } else if self.revoked_ms.is_some() {
            Status::Revoked
        } else if now_ms >= self.expires_ms {
            Status::Expired
        } else {
            Status::Valid(self)
        }
    }
}

/// The status at `now_ms` of the link with id `id`, against its account as it is now: a link
/// created before the account's last password change, or whose account is gone, is revoked,
/// whether or not the revocation (an event) reached this module; no record is `Unknown`.
///
/// # Errors
/// Store failure.
pub(crate) fn status_of(svc: &Host, id: &str, now_ms: u64) -> Result<Status, PluginError> {
    let Some(record) = load(svc, id)? else {
        return Ok(Status::Unknown);
    };
    match record.status(now_ms) {
        Status::Valid(r) => match svc
            .get_credentials(&r.user)?
            .map(|a| a.password_changed_at_ms)
        {
            Some(changed) if changed < r.created_ms => Ok(Status::Valid(r)),
            _ => Ok(Status::Revoked),
        },
        dead => Ok(dead),
    }
}

fn token_key(id: &str) -> String {
    format!("token:{id}")
}

fn index_key(user: &str, id: &str) -> String {
    format!("user:{user}:{id}")
}

fn encode(record: &Record) -> Result<String, PluginError> {
    serde_json::to_string(record).map_err(|e| PluginError::internal(e.to_string()))
}

/// The record of a link id, if any (an unreadable record counts as none).
///
/// # Errors
/// Store failure.
pub(crate) fn load(svc: &Host, id: &str) -> Result<Option<Record>, PluginError> {
    Ok(svc
        .kv_get(KvScope::Global, &token_key(id))?
        .and_then(|text| serde_json::from_str(&text).ok()))
}

/// Overwrite a record.
///
/// # Errors
/// Store failure.
pub(crate) fn save(svc: &Host, id: &str, record: &Record) -> Result<(), PluginError> {
    svc.kv_put(KvScope::Global, &token_key(id), &encode(record)?)
}

/// Store a new link and index it under its account.
///
/// # Errors
/// Store failure.
pub(crate) fn insert(svc: &Host, id: &str, record: &Record) -> Result<(), PluginError> {
    save(svc, id, record)?;
    svc.kv_put(KvScope::Global, &index_key(&record.user, id), "")
}

/// The same two writes as [`insert`], to keys that mean nothing (the no-mail path).
///
/// # Errors
/// Store failure.
pub(crate) fn decoy(svc: &Host, record: &Record) -> Result<(), PluginError> {
    svc.kv_put(KvScope::Global, DECOY_KEYS[0], &encode(record)?)?;
    svc.kv_put(KvScope::Global, DECOY_KEYS[1], "")
}

/// Revoke the outstanding links of `user` created at or before `created_until_ms`; returns
/// how many were still usable.
///
/// # Errors
/// Store failure.
pub(crate) fn revoke_user(
    svc: &Host,
    user: &str,
    created_until_ms: u64,
    now_ms: u64,
) -> Result<usize, PluginError> {
    let prefix = index_key(user, "");
    let mut revoked = 0;
    for (key, _) in svc.kv_list(KvScope::Global, &prefix)? {
        let id = key.get(prefix.len()..).unwrap_or_default();
        let record = load(svc, id)?;
        // A link created after the change is valid (the change event can arrive after a new
        // link was already issued): it keeps its index entry.
        if record
            .as_ref()
            .is_some_and(|r| r.created_ms > created_until_ms)
        {
            continue;
        }
        if let Some(mut record) = record {
            if record.used_ms.is_none() && record.revoked_ms.is_none() {
                record.revoked_ms = Some(now_ms);
                save(svc, id, &record)?;
                revoked += 1;
            }
        }
        svc.kv_delete(KvScope::Global, &key)?;
    }
    Ok(revoked)
}

/// Delete tombstones and links older than their expiry plus [`RETENTION_MS`], with their index
/// entries; returns how many.
///
/// # Errors
/// Store failure.
pub(crate) fn cleanup(svc: &Host, now_ms: u64) -> Result<usize, PluginError> {
    let mut deleted = 0;
    for (key, text) in svc.kv_list(KvScope::Global, "token:")? {
        let id = key.get("token:".len()..).unwrap_or_default();
        let record: Option<Record> = serde_json::from_str(&text).ok();
        let stale = record
            .as_ref()
            .is_none_or(|r| now_ms >= r.expires_ms.saturating_add(RETENTION_MS));
        if stale {
            if let Some(r) = &record {
                svc.kv_delete(KvScope::Global, &index_key(&r.user, id))?;
            }
            svc.kv_delete(KvScope::Global, &key)?;
            deleted += 1;
        }
    }
    Ok(deleted)
}
