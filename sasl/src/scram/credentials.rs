//! Server-side SCRAM credentials (RFC 5802 §3, §5): what is stored per account and per hash,
//! how it is derived from a password, and deterministic fake credentials for unknown accounts.

use std::fmt;

use super::error::CredentialError;
use crate::crypto::{ct_eq, hmac_sha256};
use crate::saslprep::saslprep;
use crate::Hash;

/// The stored SCRAM verifier of one account for one hash. The password itself is never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    /// The hash these keys were derived with.
    pub hash: Hash,
    /// The salt (at least 16 random bytes for new credentials).
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count (at least 4096 per RFC 5802/7677; Tessera uses more).
    pub iterations: u32,
    /// `StoredKey = H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `ServerKey = HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

impl ScramCredentials {
    /// Checks that the credentials are usable with a mechanism of hash `hash`: same hash, key
    /// lengths equal to the hash output, a salt and a positive iteration count.
    ///
    /// # Errors
    ///
    /// [`CredentialError::HashMismatch`], [`CredentialError::KeyLength`],
    /// [`CredentialError::EmptySalt`] or [`CredentialError::ZeroIterations`].
    pub fn check_for(&self, hash: Hash) -> Result<(), CredentialError> {
        if self.hash != hash {
            return Err(CredentialError::HashMismatch {
                mechanism: hash,
                credentials: self.hash,
            });
        }
        let len = hash.output_len();
        if self.stored_key.len() != len || self.server_key.len() != len {
            return Err(CredentialError::KeyLength);
        }
        check_params(&self.salt, self.iterations)
    }
}

impl fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("hash", &self.hash)
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .field("keys", &"<redacted>")
            .finish()
    }
}

fn check_params(salt: &[u8], iterations: u32) -> Result<(), CredentialError> {
    if iterations == 0 {
        return Err(CredentialError::ZeroIterations);
    }
    if salt.is_empty() {
        return Err(CredentialError::EmptySalt);
    }
    Ok(())
}

/// `SaltedPassword = Hi(SASLprep(password), salt, i)`: what a client sends in a XEP-0480 SCRAM
/// upgrade task. CPU-heavy (PBKDF2).
///
/// # Errors
///
/// [`CredentialError::Password`] when SASLprep rejects the password;
/// [`CredentialError::ZeroIterations`] or [`CredentialError::EmptySalt`] for bad parameters.
pub fn salted_password(
    hash: Hash,
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> Result<Vec<u8>, CredentialError> {
    check_params(salt, iterations)?;
    let prepared = saslprep(password).map_err(CredentialError::Password)?;
    Ok(hash.hi(prepared.as_bytes(), salt, iterations))
}

/// `ClientKey = HMAC(SaltedPassword, "Client Key")`.
pub(crate) fn client_key(hash: Hash, salted: &[u8]) -> Vec<u8> {
    hash.hmac(salted, &[b"Client Key"])
}

/// `ServerKey = HMAC(SaltedPassword, "Server Key")`.
pub(crate) fn server_key(hash: Hash, salted: &[u8]) -> Vec<u8> {
    hash.hmac(salted, &[b"Server Key"])
}

/// Derives the stored credentials from a password: SASLprep, PBKDF2 (`Hi`), then
/// `StoredKey = H(ClientKey)` and `ServerKey`. CPU-heavy: run it off the reactor.
///
/// # Errors
///
/// [`CredentialError::Password`] when SASLprep rejects the password;
/// [`CredentialError::ZeroIterations`] or [`CredentialError::EmptySalt`] for bad parameters.
pub fn derive_credentials(
    hash: Hash,
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> Result<ScramCredentials, CredentialError> {
    let salted = salted_password(hash, password, salt, iterations)?;
    credentials_from_salted(hash, &salted, salt, iterations)
}

/// Derives the stored credentials from a SaltedPassword someone else computed (a client
/// answering a XEP-0480 upgrade task): `StoredKey = H(HMAC(SaltedPassword, "Client Key"))` and
/// `ServerKey`. Cheap: no PBKDF2 runs here.
///
/// # Errors
///
/// [`CredentialError::KeyLength`] when `salted` is not the hash's output length;
/// [`CredentialError::ZeroIterations`] or [`CredentialError::EmptySalt`] for bad parameters.
pub fn credentials_from_salted(
    hash: Hash,
    salted: &[u8],
    salt: &[u8],
    iterations: u32,
) -> Result<ScramCredentials, CredentialError> {
    check_params(salt, iterations)?;
    if salted.len() != hash.output_len() {
        return Err(CredentialError::KeyLength);
    }
    Ok(ScramCredentials {
        hash,
        salt: salt.to_vec(),
        iterations,
        stored_key: hash.digest(&client_key(hash, salted)),
        server_key: server_key(hash, salted),
    })
}

/// Deterministic fake credentials for an account that does not exist, so that an unknown user
/// goes through the identical exchange (same messages, same salt on every attempt, same failure
/// `invalid-proof`) and cannot be told apart from a wrong password (RFC 5802 §9).
///
/// `salt = HMAC-SHA-256(server_secret, "fake-salt" || hash name || 0x00 || username)[..16]`; the
/// keys are derived from `server_secret` the same way (labels `fake-stored-key`,
/// `fake-server-key`), so no proof can match without a preimage of `StoredKey`. Use a stable,
/// secret, per-deployment `server_secret`, the prepared username, and the same iteration count
/// as real accounts.
pub fn fake_credentials(
    server_secret: &[u8],
    username: &str,
    hash: Hash,
    iterations: u32,
) -> ScramCredentials {
    // As many HMAC-SHA-256 blocks as the length needs (SHA-512 keys are 64 bytes, a block 32).
    // The first block's input has no counter, so SHA-1 and SHA-256 fakes are what they always
    // were: a change across an upgrade would single out the unknown names.
    let derive = |label: &[u8], len: usize| -> Vec<u8> {
        (0u8..)
            .flat_map(|block| {
                let counter: &[u8] = if block == 0 { &[] } else { &[block] };
                hmac_sha256(
                    server_secret,
                    &[
                        label,
                        hash.name().as_bytes(),
                        &[0],
                        username.as_bytes(),
                        counter,
                    ],
                )
            })
            .take(len)
            .collect()
    };
    ScramCredentials {
        hash,
        salt: derive(b"fake-salt", 16),
        iterations,
        stored_key: derive(b"fake-stored-key", hash.output_len()),
        server_key: derive(b"fake-server-key", hash.output_len()),
    }
}

/// Checks a plaintext password (PLAIN) against stored SCRAM credentials: recomputes `StoredKey`
/// and compares in constant time. `false` for unusable credentials or a password SASLprep
/// rejects. CPU-heavy (PBKDF2): run it off the reactor.
#[must_use]
pub fn verify_password(creds: &ScramCredentials, password: &str) -> bool {
    if creds.check_for(creds.hash).is_err() {
        return false;
    }
    match salted_password(creds.hash, password, &creds.salt, creds.iterations) {
        Ok(salted) => {
            let stored = creds.hash.digest(&client_key(creds.hash, &salted));
            ct_eq(&stored, &creds.stored_key)
        }
        Err(_) => false,
    }
}
