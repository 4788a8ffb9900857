//! A SCRAM client (RFC 5802 §5, §7), for tests and the load tool. It can skip PBKDF2 by reusing
//! precomputed [`ClientKeys`].

use std::fmt;

use super::credentials::{client_key, salted_password, server_key};
use super::error::{CredentialError, ScramError, ScramSyntax};
use super::parse::{
    attribute, attribute_base64, escape_saslname, message_text, skip_extensions, valid_nonce,
};
use crate::channel_binding::CbType;
use crate::crypto::{ct_eq, xor};
use crate::saslprep::saslprep;
use crate::{encode_base64, Hash};

/// The client's channel-binding choice (the GS2 `gs2-cbind-flag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientBinding {
    /// `n`: the client does not support channel binding.
    NotSupported,
    /// `y`: the client supports channel binding but believes the server does not.
    NotUsed,
    /// `p=<type>`: bind to the channel with this data (use a `-PLUS` mechanism).
    Bound {
        /// The channel-binding type.
        cb_type: CbType,
        /// The channel-binding data the client computed.
        data: Vec<u8>,
    },
}

/// Precomputed client secrets for one (hash, salt, iteration count): lets a client skip PBKDF2
/// on repeated logins.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientKeys {
    hash: Hash,
    salt: Vec<u8>,
    iterations: u32,
    client_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl ClientKeys {
    /// Derives the keys from a password (SASLprep + PBKDF2).
    ///
    /// # Errors
    ///
    /// [`CredentialError::Password`], [`CredentialError::ZeroIterations`] or
    /// [`CredentialError::EmptySalt`].
    pub fn derive(
        hash: Hash,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, CredentialError> {
        let salted = salted_password(hash, password, salt, iterations)?;
        Self::from_salted_password(hash, &salted, salt, iterations)
    }

    /// Builds the keys from a precomputed `SaltedPassword`.
    ///
    /// # Errors
    ///
    /// [`CredentialError::KeyLength`] when `salted_password` is not the hash's output length.
    pub fn from_salted_password(
        hash: Hash,
        salted_password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, CredentialError> {
        if salted_password.len() != hash.output_len() {
            return Err(CredentialError::KeyLength);
        }
        Ok(ClientKeys {
            hash,
            salt: salt.to_vec(),
            iterations,
            client_key: client_key(hash, salted_password),
            server_key: server_key(hash, salted_password),
        })
    }

    /// The hash the keys belong to.
    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// The salt the keys were derived with.
    pub fn salt(&self) -> &[u8] {
        &self.salt
    }

    /// The iteration count the keys were derived with.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }
}

impl fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKeys")
            .field("hash", &self.hash)
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .field("keys", &"<redacted>")
            .finish()
    }
}

/// What the client proves knowledge of.
#[derive(Clone, Copy)]
pub enum ClientSecret<'a> {
    /// The password; PBKDF2 runs with the salt and iteration count from server-first.
    Password(&'a str),
    /// Keys from an earlier exchange; must match the server's salt and iteration count.
    Keys(&'a ClientKeys),
}

impl fmt::Debug for ClientSecret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientSecret::Password(_) => f.write_str("Password(<redacted>)"),
            ClientSecret::Keys(keys) => f.debug_tuple("Keys").field(keys).finish(),
        }
    }
}

/// A SCRAM client that has produced (or will produce) its client-first message.
#[derive(Debug, Clone)]
pub struct ScramClient {
    hash: Hash,
    gs2_header: String,
    cb_data: Vec<u8>,
    bare: String,
    nonce: String,
    expected_downgrade_hash: Option<String>,
}

impl ScramClient {
    /// Prepares an exchange. `nonce` is the client nonce (e.g. from
    /// [`nonce_from_random`](super::nonce_from_random) over 18+ random bytes). The username is
    /// SASLprep'd and escaped; the authzid is escaped.
    ///
    /// # Errors
    ///
    /// [`ScramError::InvalidUsername`] when SASLprep rejects the username, or
    /// [`ScramError::Malformed`] for an invalid nonce.
    pub fn new(
        hash: Hash,
        username: &str,
        authzid: Option<&str>,
        binding: ClientBinding,
        nonce: &str,
    ) -> Result<Self, ScramError> {
        if !valid_nonce(nonce) {
            return Err(ScramSyntax::InvalidNonce.into());
        }
        let username = saslprep(username).map_err(ScramError::InvalidUsername)?;
        let authzid = authzid
            .map(|a| format!("a={}", escape_saslname(a)))
            .unwrap_or_default();
        let (flag, cb_data) = match binding {
            ClientBinding::NotSupported => ("n".to_owned(), Vec::new()),
            ClientBinding::NotUsed => ("y".to_owned(), Vec::new()),
            ClientBinding::Bound { cb_type, data } => (format!("p={}", cb_type.name()), data),
        };
        Ok(ScramClient {
            hash,
            gs2_header: format!("{flag},{authzid},"),
            cb_data,
            bare: format!("n={},r={}", escape_saslname(&username), nonce),
            nonce: nonce.to_owned(),
            expected_downgrade_hash: None,
        })
    }

    /// Check XEP-0474's `h=` against what this client was offered: `expected` is
    /// [`crate::ssdp::downgrade_hash`] over the mechanisms and channel-binding types it saw.
    /// A server-first without `h=` passes (the server does not implement it); one whose `h=`
    /// differs fails with [`ScramError::DowngradeHashMismatch`].
    #[must_use]
    pub fn expect_downgrade_hash(mut self, expected: String) -> Self {
        self.expected_downgrade_hash = Some(expected);
        self
    }

    /// The client-first message: GS2 header followed by client-first-message-bare.
    pub fn client_first(&self) -> Vec<u8> {
        format!("{}{}", self.gs2_header, self.bare).into_bytes()
    }

    /// Processes server-first and produces client-final.
    ///
    /// # Errors
    ///
    /// [`ScramError::Malformed`], [`ScramError::InvalidBase64`],
    /// [`ScramError::ExtensionsNotSupported`], [`ScramError::NonceMismatch`] (the server nonce
    /// does not extend ours), or [`ScramError::Credentials`].
    pub fn server_first(
        self,
        msg: &[u8],
        secret: ClientSecret<'_>,
    ) -> Result<(Vec<u8>, ScramClientFinal), ScramError> {
        let text = message_text(msg)?;
        let (nonce, salt, iterations) = parse_server_first(text)?;
        if nonce.len() <= self.nonce.len() || !nonce.starts_with(&self.nonce) {
            return Err(ScramError::NonceMismatch);
        }
        if let Some(expected) = &self.expected_downgrade_hash {
            let mut sent = text.split(',').skip(3).filter_map(|p| p.strip_prefix("h="));
            let received = sent.next();
            if sent.next().is_some() {
                // Two answers to one question: neither can be trusted.
                return Err(ScramSyntax::BadAttribute.into());
            }
            if let Some(received) = received.filter(|r| r != expected) {
                return Err(ScramError::DowngradeHashMismatch {
                    expected: expected.clone(),
                    received: received.to_owned(),
                });
            }
        }
        let keys = match secret {
            ClientSecret::Password(password) => {
                ClientKeys::derive(self.hash, password, &salt, iterations)?
            }
            ClientSecret::Keys(keys) => checked_keys(keys, self.hash, &salt, iterations)?,
        };
        let mut c = self.gs2_header.into_bytes();
        c.extend_from_slice(&self.cb_data);
        let without_proof = format!("c={},r={}", encode_base64(&c), nonce);
        let auth_message = [
            self.bare.as_bytes(),
            b",",
            text.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ];
        let stored_key = self.hash.digest(&keys.client_key);
        let proof = xor(
            &keys.client_key,
            &self.hash.hmac(&stored_key, &auth_message),
        );
        let server_signature = self.hash.hmac(&keys.server_key, &auth_message);
        let client_final = format!("{},p={}", without_proof, encode_base64(&proof));
        let state = ScramClientFinal {
            server_signature,
            keys,
        };
        Ok((client_final.into_bytes(), state))
    }
}

fn checked_keys(
    keys: &ClientKeys,
    hash: Hash,
    salt: &[u8],
    iterations: u32,
) -> Result<ClientKeys, CredentialError> {
    if keys.hash != hash {
        return Err(CredentialError::HashMismatch {
            mechanism: hash,
            credentials: keys.hash,
        });
    }
    if keys.salt != salt || keys.iterations != iterations {
        return Err(CredentialError::StaleKeys);
    }
    Ok(keys.clone())
}

/// Parses server-first into (combined nonce, salt, iterations).
fn parse_server_first(text: &str) -> Result<(&str, Vec<u8>, u32), ScramError> {
    let mut parts = text.split(',');
    let first = parts.next();
    if first.is_some_and(|p| p.starts_with("m=")) {
        return Err(ScramError::ExtensionsNotSupported);
    }
    let nonce = attribute(first, 'r')?;
    let salt = attribute(parts.next(), 's')?;
    let iterations = attribute(parts.next(), 'i')?;
    skip_extensions(parts)?;
    if !valid_nonce(nonce) {
        return Err(ScramSyntax::InvalidNonce.into());
    }
    let salt = attribute_base64(salt, 's')?;
    if salt.is_empty() {
        return Err(ScramSyntax::EmptySalt.into());
    }
    let iterations = iterations
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| iterations.parse::<u32>().ok())
        .flatten()
        .filter(|i| *i > 0)
        .ok_or(ScramSyntax::InvalidIterations)?;
    Ok((nonce, salt, iterations))
}

/// A SCRAM client that has sent client-final and waits for server-final.
pub struct ScramClientFinal {
    server_signature: Vec<u8>,
    keys: ClientKeys,
}

impl ScramClientFinal {
    /// The keys used in this exchange, to cache for the next login of the same account.
    pub fn keys(&self) -> &ClientKeys {
        &self.keys
    }

    /// Verifies server-final (`v=<ServerSignature>`) in constant time, authenticating the server.
    ///
    /// # Errors
    ///
    /// [`ScramError::ServerRejected`] for `e=<value>`, [`ScramError::InvalidServerSignature`],
    /// [`ScramError::Malformed`] or [`ScramError::InvalidBase64`].
    pub fn server_final(self, msg: &[u8]) -> Result<(), ScramError> {
        let text = message_text(msg)?;
        let mut parts = text.split(',');
        let first = parts.next();
        if let Some(value) = first.and_then(|p| p.strip_prefix("e=")) {
            return Err(ScramError::ServerRejected {
                value: value.to_owned(),
            });
        }
        let verifier = attribute(first, 'v')?;
        skip_extensions(parts)?;
        let signature = attribute_base64(verifier, 'v')?;
        if !ct_eq(&signature, &self.server_signature) {
            return Err(ScramError::InvalidServerSignature);
        }
        Ok(())
    }
}

impl fmt::Debug for ScramClientFinal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClientFinal")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}
