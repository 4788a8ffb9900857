//! Account operations shared by the CLI, the admin socket, XEP-0077 and plugins. Passwords are
//! turned into SCRAM-SHA-1, SCRAM-SHA-256 and SCRAM-SHA-512 verifiers (fresh random salt each)
//! and discarded.
//!
//! This module only touches the store; [`crate::Shared::set_password`] is the one entry point
//! that also fires `user-password-changed` on a running server.

use tessera_plugin_api::protocol::{ScramHash, ScramSecret, ScramUpgrade};
use tessera_sasl::scram::{credentials_from_salted, derive_credentials};
use tessera_sasl::Hash;

use crate::jid::{prep_localpart, JidError};
use crate::store::{AccountRecord, Store, StoreError, Verifiers};

/// PBKDF2 iterations for new verifiers unless `scram_iteration_count` says otherwise (RFC
/// 5802/7677 require at least 4096). Chosen by measurement (docs/benchmarks.md): 1.1 ms of
/// server CPU for a PLAIN login, the one login that runs PBKDF2 on the server.
pub const SCRAM_ITERATIONS: u32 = 10_000;
/// Longest accepted password, in bytes.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// Bad account name.
    #[error("{0}")]
    Jid(#[from] JidError),
    /// The password is empty, too long or refused by SASLprep.
    #[error("unusable password: {0}")]
    Password(String),
    /// The email address is malformed.
    #[error("invalid email address `{0}`")]
    Email(String),
    /// No such account.
    #[error("no such account `{0}`")]
    NotFound(String),
    /// Storage failure or duplicate.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn secret(hash: Hash, password: &str, iterations: u32) -> Result<ScramSecret, AccountError> {
    let mut salt = [0u8; 16];
    crate::secret::random_bytes(&mut salt);
    let c = derive_credentials(hash, password, &salt, iterations)
        .map_err(|e| AccountError::Password(e.to_string()))?;
    Ok(ScramSecret {
        salt: c.salt,
        iterations: c.iterations,
        stored_key: c.stored_key,
        server_key: c.server_key,
    })
}

/// Derive the SCRAM-SHA-1, -256 and -512 verifiers for a password, with `iterations` of PBKDF2.
///
/// # Errors
/// An empty, oversized or SASLprep-prohibited password.
pub fn verifiers(password: &str, iterations: u32) -> Result<Verifiers, AccountError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
        return Err(AccountError::Password(format!(
            "must be 1 to {MAX_PASSWORD_LEN} bytes"
        )));
    }
    Ok(Verifiers {
        sha1: secret(Hash::Sha1, password, iterations)?,
        sha256: secret(Hash::Sha256, password, iterations)?,
        sha512: secret(Hash::Sha512, password, iterations)?,
    })
}

/// Shortest salt accepted from an upgrade (what [`verifiers`] uses).
pub const MIN_UPGRADE_SALT: usize = 16;
/// Longest salt accepted from an upgrade.
pub const MAX_UPGRADE_SALT: usize = 256;

/// The stored form of a verifier from a XEP-0480 upgrade: StoredKey and ServerKey from the
/// client's SaltedPassword. Only SHA-512 (the verifier an account may lack).
///
/// # Errors
/// Why the upgrade is unusable, for the client: another hash, a SaltedPassword of the wrong
/// length, a salt or iteration count outside what the host itself would use.
pub fn upgrade_secret(upgrade: &ScramUpgrade) -> Result<ScramSecret, String> {
    if upgrade.hash != ScramHash::Sha512 {
        return Err(format!(
            "no upgrade to SCRAM-{}: every account has it",
            upgrade.hash.name()
        ));
    }
    if !(MIN_UPGRADE_SALT..=MAX_UPGRADE_SALT).contains(&upgrade.salt.len()) {
        return Err(format!(
            "a salt is {MIN_UPGRADE_SALT} to {MAX_UPGRADE_SALT} bytes, not {}",
            upgrade.salt.len()
        ));
    }
    let (min, max) = (
        crate::config::MIN_SCRAM_ITERATIONS,
        crate::config::MAX_SCRAM_ITERATIONS,
    );
    if !(min..=max).contains(&upgrade.iterations) {
        return Err(format!(
            "an iteration count is {min} to {max}, not {}",
            upgrade.iterations
        ));
    }
    let len = upgrade.hash.output_len();
    let c = credentials_from_salted(
        Hash::Sha512,
        &upgrade.salted_password,
        &upgrade.salt,
        upgrade.iterations,
    )
    .map_err(|_| {
        format!(
            "a SCRAM-{} SaltedPassword is {len} bytes, not {}",
            upgrade.hash.name(),
            upgrade.salted_password.len()
        )
    })?;
    Ok(ScramSecret {
        salt: c.salt,
        iterations: c.iterations,
        stored_key: c.stored_key,
        server_key: c.server_key,
    })
}

/// Check an email address's shape (one `@`, non-empty parts, no spaces or angle brackets).
///
/// # Errors
/// [`AccountError::Email`].
pub fn check_email(email: &str) -> Result<(), AccountError> {
    let ok = email.len() <= 254
        && matches!(email.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.') || d == "localhost")
        && email.matches('@').count() == 1
        && !email.contains(|c: char| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AccountError::Email(email.to_owned()))
    }
}

/// What an account is created with.
#[derive(Clone, Copy, Debug)]
pub struct NewAccount<'a> {
    /// The name (prepared here).
    pub user: &'a str,
    /// The password (turned into verifiers and dropped).
    pub password: &'a str,
    /// The email address, if any.
    pub email: Option<&'a str>,
    /// PBKDF2 iterations of the verifiers (`Config::scram_iterations`).
    pub iterations: u32,
}

/// Create an account.
///
/// # Errors
/// Bad name, password or email; the account exists; store failure.
pub fn create(store: &dyn Store, new: NewAccount<'_>, now_ms: u64) -> Result<String, AccountError> {
    let user = prep_localpart(new.user)?;
    if let Some(e) = new.email {
        check_email(e)?;
    }
    let email = new.email;
    let v = verifiers(new.password, new.iterations)?;
    store.create_account(&AccountRecord {
        user: user.clone(),
        scram_sha1: v.sha1,
        scram_sha256: v.sha256,
        scram_sha512: Some(v.sha512),
        email: email.map(str::to_owned),
        created_at_ms: now_ms,
        password_changed_at_ms: now_ms,
    })?;
    Ok(user)
}

/// Replace an account's password (store only; see [`crate::Shared::set_password`]).
///
/// # Errors
/// Bad name or password; no such account; store failure.
pub fn set_password(
    store: &dyn Store,
    (user, password): (&str, &str),
    iterations: u32,
    now_ms: u64,
) -> Result<String, AccountError> {
    let user = prep_localpart(user)?;
    if !store.set_credentials(&user, &verifiers(password, iterations)?, now_ms)? {
        return Err(AccountError::NotFound(user));
    }
    Ok(user)
}

/// Delete an account (store only).
///
/// # Errors
/// Bad name; no such account; store failure.
pub fn delete(store: &dyn Store, user: &str) -> Result<String, AccountError> {
    let user = prep_localpart(user)?;
    if !store.delete_account(&user)? {
        return Err(AccountError::NotFound(user));
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    fn new<'a>(user: &'a str, password: &'a str, email: Option<&'a str>) -> NewAccount<'a> {
        NewAccount {
            user,
            password,
            email,
            iterations: SCRAM_ITERATIONS,
        }
    }

    #[test]
    fn create_stores_verifiers_not_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.sqlite")).unwrap();
        let user = create(&store, new("Alice", "pencil", Some("a@example.org")), 5).unwrap();
        assert_eq!(user, "alice");
        let rec = store.get_account("alice").unwrap().unwrap();
        assert_eq!(rec.scram_sha256.iterations, SCRAM_ITERATIONS);
        assert_eq!(rec.scram_sha1.stored_key.len(), 20);
        assert_eq!(rec.scram_sha256.stored_key.len(), 32);
        let raw = std::fs::read(dir.path().join("s.sqlite")).unwrap();
        assert!(
            !raw.windows(6).any(|w| w == b"pencil"),
            "plaintext password in the store"
        );
        let creds = tessera_sasl::scram::ScramCredentials {
            hash: Hash::Sha256,
            salt: rec.scram_sha256.salt.clone(),
            iterations: rec.scram_sha256.iterations,
            stored_key: rec.scram_sha256.stored_key.clone(),
            server_key: rec.scram_sha256.server_key.clone(),
        };
        assert!(tessera_sasl::scram::verify_password(&creds, "pencil"));
        assert!(!tessera_sasl::scram::verify_password(&creds, "pencil2"));
        // And a SHA-512 verifier, with its own salt.
        let sha512 = rec.scram_sha512.clone().expect("a SHA-512 verifier");
        assert_eq!(sha512.stored_key.len(), 64);
        assert_ne!(sha512.salt, rec.scram_sha256.salt);
        let creds512 = tessera_sasl::scram::ScramCredentials {
            hash: Hash::Sha512,
            salt: sha512.salt,
            iterations: sha512.iterations,
            stored_key: sha512.stored_key,
            server_key: sha512.server_key,
        };
        assert!(tessera_sasl::scram::verify_password(&creds512, "pencil"));
        assert!(!tessera_sasl::scram::verify_password(&creds512, "pencil2"));
        assert!(matches!(
            create(&store, new("alice", "x", None), 6),
            Err(AccountError::Store(StoreError::AccountExists(_)))
        ));
        assert!(matches!(
            create(&store, new("bob", "", None), 6),
            Err(AccountError::Password(_))
        ));
        assert!(matches!(
            create(&store, new("bob", "x", Some("nope")), 6),
            Err(AccountError::Email(_))
        ));
        assert!(matches!(
            set_password(&store, ("carol", "x"), SCRAM_ITERATIONS, 7),
            Err(AccountError::NotFound(_))
        ));
        set_password(&store, ("alice", "new"), SCRAM_ITERATIONS, 8).unwrap();
        assert_eq!(
            store
                .get_account("alice")
                .unwrap()
                .unwrap()
                .password_changed_at_ms,
            8
        );
        // The iteration count is the configured one, for a new password too.
        set_password(&store, ("alice", "newer"), 4096, 9).unwrap();
        let rec = store.get_account("alice").unwrap().unwrap();
        assert_eq!(
            (rec.scram_sha1.iterations, rec.scram_sha256.iterations),
            (4096, 4096)
        );
    }
}
