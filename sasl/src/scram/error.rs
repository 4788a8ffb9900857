//! SCRAM errors: each maps to an RFC 6120 §6.5 condition and to an RFC 5802 §7
//! `server-error-value` (`e=`), which Tessera puts in the failure's `<text>`.

use crate::saslprep::PrepError;
use crate::{Hash, SaslCondition};

/// Syntax errors in a SCRAM message (all `e=invalid-encoding`, `malformed-request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramSyntax {
    /// The message is not UTF-8.
    #[error("message is not UTF-8")]
    NotUtf8,
    /// The message exceeds [`MAX_MESSAGE_LEN`](super::MAX_MESSAGE_LEN).
    #[error("message too long: {len} bytes")]
    TooLong {
        /// Length of the message in bytes.
        len: usize,
    },
    /// The GS2 header is not `n,` / `y,` / `p=<cb-name>,` followed by `[a=<saslname>],`.
    #[error("malformed GS2 header")]
    Gs2Header,
    /// A mandatory attribute is missing or out of order.
    #[error("missing or misplaced `{0}=` attribute")]
    MissingAttribute(char),
    /// An extension attribute is not of the form `<letter>=<value>`, or follows the proof.
    #[error("malformed attribute")]
    BadAttribute,
    /// A nonce is empty or contains characters outside printable ASCII minus `,`.
    #[error("invalid nonce characters")]
    InvalidNonce,
    /// The iteration count is not a positive decimal `u32`.
    #[error("invalid iteration count")]
    InvalidIterations,
    /// The salt is empty.
    #[error("empty salt")]
    EmptySalt,
    /// The proof (or server signature) does not have the hash's output length.
    #[error("proof has {len} bytes, expected the hash length")]
    ProofLength {
        /// Decoded length.
        len: usize,
    },
}

/// SCRAM credentials are unusable, or could not be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The password was rejected by SASLprep.
    #[error("password rejected: {0}")]
    Password(#[source] PrepError),
    /// The iteration count is zero.
    #[error("iteration count must be at least 1")]
    ZeroIterations,
    /// The salt is empty.
    #[error("salt must not be empty")]
    EmptySalt,
    /// The credentials were derived for another hash than the mechanism uses.
    #[error("credentials are for {credentials:?}, mechanism uses {mechanism:?}")]
    HashMismatch {
        /// The mechanism's hash.
        mechanism: Hash,
        /// The credentials' hash.
        credentials: Hash,
    },
    /// A stored key does not have the hash's output length.
    #[error("stored key material has the wrong length")]
    KeyLength,
    /// Client side: precomputed keys were derived with another salt or iteration count than the
    /// server announced; derive them again from the password.
    #[error("precomputed client keys do not match the server's salt or iteration count")]
    StaleKeys,
}

impl CredentialError {
    /// The wire condition: `not-authorized` for a password the user typed, otherwise
    /// `temporary-auth-failure` (server-side storage or configuration problem).
    pub const fn condition(&self) -> SaslCondition {
        match self {
            CredentialError::Password(_) | CredentialError::StaleKeys => {
                SaslCondition::NotAuthorized
            }
            _ => SaslCondition::TemporaryAuthFailure,
        }
    }
}

/// A SCRAM exchange failed (server or client side).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScramError {
    /// Syntax error in a message.
    #[error("malformed SCRAM message: {0}")]
    Malformed(#[source] ScramSyntax),
    /// An attribute that must be base64 is not.
    #[error("invalid base64 in `{attribute}=`")]
    InvalidBase64 {
        /// The attribute letter (`c`, `p`, `s`, `v`).
        attribute: char,
    },
    /// The client sent a mandatory extension (`m=`).
    #[error("mandatory extension (m=) not supported")]
    ExtensionsNotSupported,
    /// The `n=` saslname has an `=` not followed by `2C` or `3D`.
    #[error("invalid escape in username")]
    BadUsernameEscape,
    /// The `n=` username was rejected by SASLprep or the username rules.
    #[error("invalid username: {0}")]
    InvalidUsername(#[source] PrepError),
    /// The `a=` authzid is empty, badly escaped or contains control characters.
    #[error("invalid authzid")]
    InvalidAuthzid,
    /// A `-PLUS` mechanism was selected but the GS2 header does not use `p=`.
    #[error("-PLUS mechanism without channel binding (p=)")]
    ChannelBindingRequired,
    /// A non-PLUS mechanism was selected but the GS2 header uses `p=`.
    #[error("channel binding (p=) with a non-PLUS mechanism")]
    UnexpectedChannelBinding,
    /// The client sent `y` although the server offered a `-PLUS` mechanism: a downgrade.
    #[error("client claims the server does not support channel binding (downgrade)")]
    DowngradeDetected,
    /// Client side: the server's XEP-0474 `h=` is not the hash of what the client was offered,
    /// so the mechanism list was altered on the way.
    #[error("the server's hash of its mechanism list ({received}) is not that of the list received ({expected}): downgrade (XEP-0474)")]
    DowngradeHashMismatch {
        /// The hash of what the client received.
        expected: String,
        /// The server's `h=`.
        received: String,
    },
    /// The `p=` type is unknown, or not computable on this connection.
    #[error("unsupported channel-binding type")]
    UnsupportedChannelBindingType,
    /// A `-PLUS` mechanism was selected but this connection has no channel binding at all.
    #[error("channel binding not supported on this connection")]
    ChannelBindingNotSupported,
    /// `c=` differs from the GS2 header plus the locally computed cb-data.
    #[error("channel bindings don't match")]
    ChannelBindingsDontMatch,
    /// `r=` in client-final differs from the combined nonce (or, client side, the server nonce
    /// does not extend the client nonce).
    #[error("nonce mismatch")]
    NonceMismatch,
    /// The client proof is wrong: wrong password, or an unknown user (fake credentials).
    #[error("invalid proof")]
    InvalidProof,
    /// The credentials supplied by the caller are unusable.
    #[error("unusable credentials: {0}")]
    Credentials(#[source] CredentialError),
    /// Server side: fewer than [`MIN_NONCE_RANDOM`](super::MIN_NONCE_RANDOM) random bytes were
    /// supplied for the server nonce.
    #[error("server nonce needs at least 18 random bytes, got {len}")]
    InsufficientRandomness {
        /// Number of bytes supplied.
        len: usize,
    },
    /// Server side: an explicit server nonce is empty or has characters not allowed in a nonce.
    #[error("invalid explicit server nonce")]
    InvalidServerNonce,
    /// Client side: the server answered `e=<value>`.
    #[error("server rejected authentication: e={value}")]
    ServerRejected {
        /// The server's `server-error-value`.
        value: String,
    },
    /// Client side: the server signature (`v=`) is wrong; the server does not know the password.
    #[error("invalid server signature")]
    InvalidServerSignature,
}

impl ScramError {
    /// The RFC 6120 wire condition for this error.
    pub fn condition(&self) -> SaslCondition {
        use ScramError as E;
        match self {
            E::Malformed(_)
            | E::ExtensionsNotSupported
            | E::BadUsernameEscape
            | E::InvalidUsername(_)
            | E::ChannelBindingRequired
            | E::UnexpectedChannelBinding
            | E::UnsupportedChannelBindingType
            | E::ChannelBindingNotSupported => SaslCondition::MalformedRequest,
            E::InvalidBase64 { .. } => SaslCondition::IncorrectEncoding,
            E::InvalidAuthzid => SaslCondition::InvalidAuthzid,
            E::DowngradeDetected
            | E::DowngradeHashMismatch { .. }
            | E::ChannelBindingsDontMatch
            | E::NonceMismatch
            | E::InvalidProof
            | E::ServerRejected { .. }
            | E::InvalidServerSignature => SaslCondition::NotAuthorized,
            E::Credentials(e) => e.condition(),
            E::InsufficientRandomness { .. } | E::InvalidServerNonce => {
                SaslCondition::TemporaryAuthFailure
            }
        }
    }

    /// The RFC 5802 §7 `server-error-value` (the text after `e=`), e.g. `"invalid-proof"`.
    /// For [`ScramError::ServerRejected`] it is the value the server sent.
    pub fn server_error_value(&self) -> &str {
        use ScramError as E;
        match self {
            E::Malformed(_) | E::InvalidBase64 { .. } | E::InvalidAuthzid => "invalid-encoding",
            E::ExtensionsNotSupported => "extensions-not-supported",
            E::BadUsernameEscape | E::InvalidUsername(_) => "invalid-username-encoding",
            E::DowngradeDetected => "server-does-support-channel-binding",
            // Never sent: a client detects it and aborts.
            E::DowngradeHashMismatch { .. } => "other-error",
            E::UnsupportedChannelBindingType => "unsupported-channel-binding-type",
            E::ChannelBindingNotSupported => "channel-binding-not-supported",
            E::ChannelBindingsDontMatch => "channel-bindings-dont-match",
            E::InvalidProof => "invalid-proof",
            E::ServerRejected { value } => value,
            E::ChannelBindingRequired
            | E::UnexpectedChannelBinding
            | E::NonceMismatch
            | E::Credentials(_)
            | E::InsufficientRandomness { .. }
            | E::InvalidServerNonce
            | E::InvalidServerSignature => "other-error",
        }
    }

    /// The RFC 5802 error form of server-final-message, `e=<value>`, for callers that send it
    /// as additional data.
    pub fn server_final_message(&self) -> Vec<u8> {
        format!("e={}", self.server_error_value()).into_bytes()
    }
}

impl From<ScramSyntax> for ScramError {
    fn from(syntax: ScramSyntax) -> Self {
        ScramError::Malformed(syntax)
    }
}

impl From<CredentialError> for ScramError {
    fn from(err: CredentialError) -> Self {
        ScramError::Credentials(err)
    }
}
