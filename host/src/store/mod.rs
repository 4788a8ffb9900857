//! Persistent storage behind one trait, so a PostgreSQL backend can follow for multi-node
//! deployments without touching plugins: accounts (SCRAM verifiers, never passwords) and each
//! module's key-value entries (global or per account).
//!
//! The trait is synchronous: plugin callbacks are synchronous and SQLite answers reads in
//! microseconds. Callers on the async side run writes through `spawn_blocking`.

mod appends;
mod sqlite;

pub use sqlite::SqliteStore;
use tessera_plugin_api::protocol::{
    ArchiveBound, ArchiveBounds, ArchiveItem, ArchivePage, ArchiveQuery, KvScope, KvWrite,
    ScramSecret,
};

/// The verifiers derived from one password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifiers {
    /// SCRAM-SHA-1.
    pub sha1: ScramSecret,
    /// SCRAM-SHA-256.
    pub sha256: ScramSecret,
    /// SCRAM-SHA-512.
    pub sha512: ScramSecret,
}

/// A stored account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    /// Localpart (nodeprep'd).
    pub user: String,
    /// SCRAM-SHA-1 verifier.
    pub scram_sha1: ScramSecret,
    /// SCRAM-SHA-256 verifier.
    pub scram_sha256: ScramSecret,
    /// SCRAM-SHA-512 verifier (`None` for an account whose password predates it).
    pub scram_sha512: Option<ScramSecret>,
    /// Optional email address (for password reset).
    pub email: Option<String>,
    /// Creation time, ms since the epoch.
    pub created_at_ms: u64,
    /// Last password change, ms since the epoch.
    pub password_changed_at_ms: u64,
}

/// What [`Store::add_sha512_verifier`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifierWrite {
    /// Stored.
    Added,
    /// The account already had one: untouched.
    Present,
    /// The account is gone, or its password changed at or after the basis: untouched.
    Stale,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The account already exists.
    #[error("account `{0}` already exists")]
    AccountExists(String),
    /// The backend failed.
    #[error("store: {0}")]
    Backend(String),
    /// An archive id the query named does not exist.
    #[error("no archive entry with id {0}")]
    UnknownId(String),
    /// The database was written by a newer Tessera.
    #[error("store schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew {
        /// Version in the database.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// Everything the host persists.
pub trait Store: Send + Sync + 'static {
    /// Create an account; fails with [`StoreError::AccountExists`].
    fn create_account(&self, account: &AccountRecord) -> Result<(), StoreError>;
    /// Read an account.
    fn get_account(&self, user: &str) -> Result<Option<AccountRecord>, StoreError>;
    /// Replace the verifiers; returns whether the account exists.
    fn set_credentials(
        &self,
        user: &str,
        verifiers: &Verifiers,
        changed_at_ms: u64,
    ) -> Result<bool, StoreError>;
    /// Give an account the SHA-512 verifier it lacks, only if its password last changed
    /// strictly before `changed_before_ms`; checked and written in one statement.
    fn add_sha512_verifier(
        &self,
        user: &str,
        verifier: &ScramSecret,
        changed_before_ms: u64,
    ) -> Result<VerifierWrite, StoreError>;
    /// Set or clear the email; returns whether the account exists.
    fn set_email(&self, user: &str, email: Option<&str>) -> Result<bool, StoreError>;
    /// Delete an account and its per-account module entries; returns whether it existed.
    fn delete_account(&self, user: &str) -> Result<bool, StoreError>;
    /// All account names, sorted.
    fn list_accounts(&self) -> Result<Vec<String>, StoreError>;
    /// Read a module's entry.
    fn kv_get(
        &self,
        module: &str,
        scope: &KvScope,
        key: &str,
    ) -> Result<Option<String>, StoreError>;
    /// Write a module's entry.
    fn kv_put(
        &self,
        module: &str,
        scope: &KvScope,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError>;
    /// Delete a module's entry; returns whether it existed.
    fn kv_delete(&self, module: &str, scope: &KvScope, key: &str) -> Result<bool, StoreError>;
    /// Apply a batch of puts and deletes of a module's entries in one transaction.
    fn kv_write(&self, module: &str, scope: &KvScope, writes: &[KvWrite])
        -> Result<(), StoreError>;
    /// A module's entries whose key starts with `prefix`, sorted by key.
    fn kv_list(
        &self,
        module: &str,
        scope: &KvScope,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, StoreError>;
    /// Append to a module's archive of an account (the caller assigns the id). The write may
    /// complete after this returns (in a batch with others); every archive read and account
    /// deletion after it sees it, and [`Store::sync_appends`] waits for it.
    fn archive_append(
        &self,
        module: &str,
        archive: &str,
        user: &str,
        item: &ArchiveItem,
    ) -> Result<(), StoreError>;
    /// Append to a module's archive of an account if it stays within `bounds` (counted and
    /// appended in one transaction); answers the bound it would cross instead.
    fn archive_append_within(
        &self,
        module: &str,
        archive: &str,
        user: &str,
        item: &ArchiveItem,
        bounds: &ArchiveBounds,
    ) -> Result<Option<ArchiveBound>, StoreError>;
    /// Read a page of a module's archive of an account; [`StoreError::UnknownId`] for an
    /// `after_id` or `before_id` that does not exist.
    fn archive_query(
        &self,
        module: &str,
        archive: &str,
        user: &str,
        query: &ArchiveQuery,
    ) -> Result<ArchivePage, StoreError>;
    /// Delete an account's entries (all, or older than `before_ms`); returns how many.
    fn archive_delete(
        &self,
        module: &str,
        archive: &str,
        user: &str,
        before_ms: Option<u64>,
    ) -> Result<u64, StoreError>;
    /// Read and delete up to `limit` of the oldest entries, in one transaction.
    fn archive_take(
        &self,
        module: &str,
        archive: &str,
        user: &str,
        limit: u32,
    ) -> Result<Vec<ArchiveItem>, StoreError>;
    /// How many entries an account's archive holds.
    fn archive_count(&self, module: &str, archive: &str, user: &str) -> Result<u64, StoreError>;
    /// Wait until every archive append made so far is written (at shutdown).
    fn sync_appends(&self) {}
}

/// Most entries one archive query returns, whatever limit it asks for.
pub const MAX_ARCHIVE_PAGE: u32 = 1000;

#[cfg(test)]
mod tests;
