//! The error taxonomy shared by every mechanism, and the RFC 6120 §6.5 failure conditions that
//! the peer sees.
//!
//! Each mechanism has its own error family ([`ScramError`], [`PlainError`], [`HtError`], ...);
//! [`SaslError`] is their union. Every error maps to exactly one [`SaslCondition`] through
//! `condition()` (and `From<&E> for SaslCondition`): the peer sees only the condition, the
//! operator sees the `Display` text in logs. No error message contains passwords, tokens or
//! other secrets.

use crate::ht::HtError;
use crate::plain::PlainError;
use crate::saslprep::PrepError;
use crate::scram::{CredentialError, ScramError};

/// A SASL failure condition (RFC 6120 §6.5), the child element of `<failure/>` in the
/// `urn:ietf:params:xml:ns:xmpp-sasl` namespace (also inside SASL2 `<failure>`, XEP-0388): the
/// plugin API's enum, so a mechanism's condition reaches the wire without a translation.
pub use tessera_plugin_api::SaslCondition;

/// Base64 payload could not be decoded (see [`decode_base64_lenient`](crate::decode_base64_lenient)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Base64Error {
    /// Illegal character, impossible length, or non-canonical padding or trailing bits.
    #[error("invalid base64")]
    Invalid,
}

impl Base64Error {
    /// The wire condition: always [`SaslCondition::IncorrectEncoding`].
    pub const fn condition(&self) -> SaslCondition {
        SaslCondition::IncorrectEncoding
    }
}

/// Any error produced by this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// The payload was not valid base64.
    #[error(transparent)]
    Base64(#[from] Base64Error),
    /// A string was rejected by SASLprep or the username rules.
    #[error(transparent)]
    Prep(#[from] PrepError),
    /// A SCRAM exchange failed.
    #[error(transparent)]
    Scram(#[from] ScramError),
    /// SCRAM credentials could not be derived.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// A PLAIN message was rejected.
    #[error(transparent)]
    Plain(#[from] PlainError),
    /// An HT-* message was rejected.
    #[error(transparent)]
    Ht(#[from] HtError),
}

impl SaslError {
    /// The wire condition of the underlying error.
    pub fn condition(&self) -> SaslCondition {
        match self {
            SaslError::Base64(e) => e.condition(),
            SaslError::Prep(e) => e.condition(),
            SaslError::Scram(e) => e.condition(),
            SaslError::Credential(e) => e.condition(),
            SaslError::Plain(e) => e.condition(),
            SaslError::Ht(e) => e.condition(),
        }
    }
}

macro_rules! condition_from {
    ($($ty:ty),* $(,)?) => {$(
        impl From<&$ty> for SaslCondition {
            fn from(err: &$ty) -> Self {
                err.condition()
            }
        }
    )*};
}

condition_from!(
    Base64Error,
    PrepError,
    ScramError,
    CredentialError,
    PlainError,
    HtError,
    SaslError
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_names_follow_rfc6120() {
        let all = [
            (SaslCondition::Aborted, "aborted"),
            (SaslCondition::AccountDisabled, "account-disabled"),
            (SaslCondition::CredentialsExpired, "credentials-expired"),
            (SaslCondition::EncryptionRequired, "encryption-required"),
            (SaslCondition::IncorrectEncoding, "incorrect-encoding"),
            (SaslCondition::InvalidAuthzid, "invalid-authzid"),
            (SaslCondition::InvalidMechanism, "invalid-mechanism"),
            (SaslCondition::MalformedRequest, "malformed-request"),
            (SaslCondition::MechanismTooWeak, "mechanism-too-weak"),
            (SaslCondition::NotAuthorized, "not-authorized"),
            (
                SaslCondition::TemporaryAuthFailure,
                "temporary-auth-failure",
            ),
        ];
        for (cond, name) in all {
            assert_eq!(cond.as_str(), name);
            assert_eq!(cond.to_string(), name);
        }
    }

    #[test]
    fn union_forwards_condition() {
        let err = SaslError::from(ScramError::InvalidProof);
        assert_eq!(err.condition(), SaslCondition::NotAuthorized);
        assert_eq!(SaslCondition::from(&err), SaslCondition::NotAuthorized);
        let err = SaslError::from(Base64Error::Invalid);
        assert_eq!(SaslCondition::from(&err), SaslCondition::IncorrectEncoding);
        assert_eq!(err.to_string(), "invalid base64");
    }
}
