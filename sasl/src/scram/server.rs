//! The SCRAM server state machine (RFC 5802 §5, §7; RFC 7677; channel binding per RFC 5802 §6
//! and RFC 9266). Each state is consumed by value and yields the next one.

use std::fmt;

use super::credentials::ScramCredentials;
use super::error::{ScramError, ScramSyntax};
use super::parse::{
    attribute, attribute_base64, message_text, nonce_from_random, skip_extensions,
    split_client_first, unescape_saslname, valid_nonce, Gs2Flag,
};
use super::MIN_NONCE_RANDOM;
use crate::channel_binding::{CbType, ChannelBindings};
use crate::crypto::{ct_eq, xor};
use crate::saslprep::prepare_username;
use crate::{encode_base64, Hash};

/// A SCRAM server waiting for the client-first message.
#[derive(Debug, Clone)]
pub struct ScramServer {
    hash: Hash,
    plus: bool,
    server_offers_plus: bool,
    bindings: ChannelBindings,
    downgrade_hash: Option<String>,
}

impl ScramServer {
    /// Starts an exchange for `SCRAM-<hash>` (or `SCRAM-<hash>-PLUS` when `plus`).
    ///
    /// `server_offers_plus` is whether any `-PLUS` mechanism was advertised on this stream (for
    /// the `y` downgrade check); `bindings` is the channel-binding data this connection can
    /// compute.
    pub fn new(
        hash: Hash,
        plus: bool,
        server_offers_plus: bool,
        bindings: ChannelBindings,
    ) -> Self {
        ScramServer {
            hash,
            plus,
            server_offers_plus,
            bindings,
            downgrade_hash: None,
        }
    }

    /// Put XEP-0474's `h=` into server-first: the hash (with this exchange's hash function) of
    /// the mechanisms and channel-binding types advertised on the stream, as
    /// [`crate::ssdp::downgrade_hash`] computes it.
    #[must_use]
    pub fn with_downgrade_hash(mut self, h: String) -> Self {
        self.downgrade_hash = Some(h);
        self
    }

    /// Processes the client-first message (the decoded initial response).
    ///
    /// # Wire behaviour
    ///
    /// Parses the GS2 header (`n`, `y` or `p=<type>`, optional `a=<authzid>`) and
    /// `n=<saslname>,r=<nonce>[,ext]*`, then enforces the channel-binding rules: a `-PLUS`
    /// mechanism needs `p=` of a type this connection supports; a non-PLUS mechanism must not use
    /// `p=`, and `y` fails when a `-PLUS` mechanism was offered (downgrade).
    ///
    /// # Errors
    ///
    /// [`ScramError::Malformed`], [`ScramError::ExtensionsNotSupported`] (`m=`),
    /// [`ScramError::BadUsernameEscape`], [`ScramError::InvalidUsername`],
    /// [`ScramError::InvalidAuthzid`], [`ScramError::ChannelBindingRequired`],
    /// [`ScramError::UnexpectedChannelBinding`], [`ScramError::DowngradeDetected`],
    /// [`ScramError::ChannelBindingNotSupported`] or [`ScramError::UnsupportedChannelBindingType`].
    pub fn client_first(self, msg: &[u8]) -> Result<ScramClientFirst, ScramError> {
        let text = message_text(msg)?;
        let parts = split_client_first(text)?;
        let (username, client_nonce) = parse_bare(parts.bare)?;
        let (cb_type, cb_data) = self.check_binding(&parts.flag)?;
        let mut expected_c = parts.gs2_header.as_bytes().to_vec();
        expected_c.extend_from_slice(&cb_data);
        Ok(ScramClientFirst {
            hash: self.hash,
            cb_type,
            expected_c,
            bare: parts.bare.to_owned(),
            client_nonce,
            username,
            authzid: parts.authzid,
            downgrade_hash: self.downgrade_hash,
        })
    }

    /// Applies the table of protocols.md §7.4; returns the binding type and its data.
    fn check_binding(&self, flag: &Gs2Flag<'_>) -> Result<(Option<CbType>, Vec<u8>), ScramError> {
        match (self.plus, flag) {
            (true, Gs2Flag::Bound(name)) => {
                if self.bindings.available().is_empty() {
                    return Err(ScramError::ChannelBindingNotSupported);
                }
                let cb_type =
                    CbType::from_name(name).ok_or(ScramError::UnsupportedChannelBindingType)?;
                let data = self
                    .bindings
                    .get(cb_type)
                    .ok_or(ScramError::UnsupportedChannelBindingType)?;
                Ok((Some(cb_type), data.to_vec()))
            }
            (true, _) => Err(ScramError::ChannelBindingRequired),
            (false, Gs2Flag::Bound(_)) => Err(ScramError::UnexpectedChannelBinding),
            (false, Gs2Flag::NotUsed) if self.server_offers_plus => {
                Err(ScramError::DowngradeDetected)
            }
            (false, Gs2Flag::NotUsed | Gs2Flag::NotSupported) => Ok((None, Vec::new())),
        }
    }
}

/// Parses client-first-message-bare into (prepared username, client nonce).
fn parse_bare(bare: &str) -> Result<(String, String), ScramError> {
    let mut parts = bare.split(',');
    let first = parts.next();
    if first.is_some_and(|p| p.starts_with("m=")) {
        return Err(ScramError::ExtensionsNotSupported);
    }
    let name = attribute(first, 'n')?;
    let nonce = attribute(parts.next(), 'r')?;
    skip_extensions(parts)?;
    if !valid_nonce(nonce) {
        return Err(ScramSyntax::InvalidNonce.into());
    }
    let raw = unescape_saslname(name).ok_or(ScramError::BadUsernameEscape)?;
    let username = prepare_username(&raw).map_err(ScramError::InvalidUsername)?;
    Ok((username.into_owned(), nonce.to_owned()))
}

/// A SCRAM server that has accepted the client-first message and needs the account's
/// credentials (or [`fake_credentials`](super::fake_credentials) for an unknown account).
pub struct ScramClientFirst {
    hash: Hash,
    cb_type: Option<CbType>,
    /// `gs2-header || cb-data`, what `c=` must decode to.
    expected_c: Vec<u8>,
    bare: String,
    client_nonce: String,
    username: String,
    authzid: Option<String>,
    downgrade_hash: Option<String>,
}

impl ScramClientFirst {
    /// The username from `n=`: unescaped and prepared with
    /// [`prepare_username`]. Look the account up with it.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The authorization identity from `a=`, unescaped; the caller must authorise it.
    pub fn authzid(&self) -> Option<&str> {
        self.authzid.as_deref()
    }

    /// The hash of the mechanism; credentials must be for this hash.
    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// The channel-binding type in use, `None` without channel binding.
    pub fn channel_binding(&self) -> Option<CbType> {
        self.cb_type
    }

    /// Produces the server-first message `r=<c-nonce><s-nonce>,s=<salt>,i=<iterations>`.
    ///
    /// `server_nonce_random` must hold at least [`MIN_NONCE_RANDOM`] bytes from a CSPRNG;
    /// they are encoded as base64 without padding.
    ///
    /// # Errors
    ///
    /// [`ScramError::InsufficientRandomness`], or [`ScramError::Credentials`] when the
    /// credentials are for another hash or unusable.
    pub fn server_first(
        self,
        creds: &ScramCredentials,
        server_nonce_random: &[u8],
    ) -> Result<(Vec<u8>, ScramServerFirst), ScramError> {
        if server_nonce_random.len() < MIN_NONCE_RANDOM {
            return Err(ScramError::InsufficientRandomness {
                len: server_nonce_random.len(),
            });
        }
        let nonce = nonce_from_random(server_nonce_random);
        self.server_first_with_nonce(creds, &nonce)
    }

    /// Like [`server_first`](Self::server_first) with an exact server nonce string. Meant for
    /// test vectors and deterministic tests; production code uses `server_first` with random
    /// bytes.
    ///
    /// # Errors
    ///
    /// [`ScramError::InvalidServerNonce`] when `nonce` is empty or not printable-without-comma,
    /// or [`ScramError::Credentials`] as for `server_first`.
    pub fn server_first_with_nonce(
        self,
        creds: &ScramCredentials,
        nonce: &str,
    ) -> Result<(Vec<u8>, ScramServerFirst), ScramError> {
        creds.check_for(self.hash)?;
        if !valid_nonce(nonce) {
            return Err(ScramError::InvalidServerNonce);
        }
        let combined = format!("{}{}", self.client_nonce, nonce);
        let mut server_first = format!(
            "r={},s={},i={}",
            combined,
            encode_base64(&creds.salt),
            creds.iterations
        );
        // XEP-0474: an extension after `i=`, covered by the proofs like the rest.
        if let Some(h) = &self.downgrade_hash {
            server_first.push_str(",h=");
            server_first.push_str(h);
        }
        let auth_prefix = format!("{},{},", self.bare, server_first);
        let state = ScramServerFirst {
            hash: self.hash,
            cb_type: self.cb_type,
            expected_c: self.expected_c,
            nonce: combined,
            auth_prefix,
            stored_key: creds.stored_key.clone(),
            server_key: creds.server_key.clone(),
            username: self.username,
            authzid: self.authzid,
        };
        Ok((server_first.into_bytes(), state))
    }
}

impl fmt::Debug for ScramClientFirst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClientFirst")
            .field("hash", &self.hash)
            .field("cb_type", &self.cb_type)
            .field("username", &self.username)
            .field("authzid", &self.authzid)
            .finish_non_exhaustive()
    }
}

/// A SCRAM server that has sent server-first and waits for client-final.
pub struct ScramServerFirst {
    hash: Hash,
    cb_type: Option<CbType>,
    expected_c: Vec<u8>,
    nonce: String,
    /// `client-first-message-bare "," server-first-message ","`.
    auth_prefix: String,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    username: String,
    authzid: Option<String>,
}

impl ScramServerFirst {
    /// Verifies the client-final message and produces the server-final message `v=...`.
    ///
    /// # Wire behaviour
    ///
    /// `c=` must decode to exactly the GS2 header of client-first followed by the locally
    /// computed cb-data; `r=` must equal the combined nonce; the proof is checked in constant
    /// time. On any error the caller sends a failure (with [`ScramError::server_error_value`] as
    /// text) and must not send `v=`.
    ///
    /// # Errors
    ///
    /// [`ScramError::Malformed`], [`ScramError::InvalidBase64`],
    /// [`ScramError::ChannelBindingsDontMatch`], [`ScramError::NonceMismatch`] or
    /// [`ScramError::InvalidProof`].
    pub fn client_final(self, msg: &[u8]) -> Result<ScramSuccess, ScramError> {
        let text = message_text(msg)?;
        let (without_proof, proof_b64) = text
            .rsplit_once(",p=")
            .ok_or(ScramSyntax::MissingAttribute('p'))?;
        if proof_b64.contains(',') {
            return Err(ScramSyntax::BadAttribute.into());
        }
        let mut parts = without_proof.split(',');
        let c = attribute(parts.next(), 'c')?;
        let nonce = attribute(parts.next(), 'r')?;
        skip_extensions(parts)?;
        let c = attribute_base64(c, 'c')?;
        let proof = attribute_base64(proof_b64, 'p')?;
        if proof.len() != self.hash.output_len() {
            return Err(ScramSyntax::ProofLength { len: proof.len() }.into());
        }
        if !ct_eq(&c, &self.expected_c) {
            return Err(ScramError::ChannelBindingsDontMatch);
        }
        if !ct_eq(nonce.as_bytes(), self.nonce.as_bytes()) {
            return Err(ScramError::NonceMismatch);
        }
        let auth_message = [self.auth_prefix.as_bytes(), without_proof.as_bytes()];
        let client_signature = self.hash.hmac(&self.stored_key, &auth_message);
        let client_key = xor(&proof, &client_signature);
        if !ct_eq(&self.hash.digest(&client_key), &self.stored_key) {
            return Err(ScramError::InvalidProof);
        }
        let server_signature = self.hash.hmac(&self.server_key, &auth_message);
        Ok(ScramSuccess {
            server_final: format!("v={}", encode_base64(&server_signature)).into_bytes(),
            username: self.username,
            authzid: self.authzid,
            channel_binding: self.cb_type,
        })
    }

    /// The prepared username (for logging or rate limiting while waiting for client-final).
    pub fn username(&self) -> &str {
        &self.username
    }
}

impl fmt::Debug for ScramServerFirst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServerFirst")
            .field("hash", &self.hash)
            .field("cb_type", &self.cb_type)
            .field("username", &self.username)
            .field("authzid", &self.authzid)
            .finish_non_exhaustive()
    }
}

/// A successful SCRAM exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScramSuccess {
    /// The server-final message `v=<ServerSignature>`, sent as success additional data.
    pub server_final: Vec<u8>,
    /// The authenticated (prepared) username.
    pub username: String,
    /// The requested authorization identity; the caller must check it is permitted.
    pub authzid: Option<String>,
    /// The channel binding the exchange was bound to, if any.
    pub channel_binding: Option<CbType>,
}
