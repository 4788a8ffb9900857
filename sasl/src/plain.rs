//! The PLAIN mechanism (RFC 4616): `[authzid] NUL authcid NUL passwd`.
//!
//! PLAIN sends the password in the clear and must only be offered over TLS (RFC 6120 §6.4.7).
//! Check the password with [`verify_password`](crate::scram::verify_password) against the stored
//! SCRAM credentials; it applies SASLprep to the password.
//!
//! # Wire behaviour
//!
//! The message is the decoded initial response. It must contain exactly two NUL bytes, be UTF-8,
//! and be at most [`MAX_PLAIN_LEN`] bytes. The authcid is prepared with
//! [`prepare_username`] (so it matches SCRAM usernames); an empty authzid
//! means "none". Every rejection maps to `malformed-request`, except an authzid containing control
//! characters, which maps to `invalid-authzid`.

use std::fmt;

use crate::saslprep::{prepare_username, PrepError};
use crate::SaslCondition;

/// Maximum length of a PLAIN message in bytes (RFC 4616 allows 255 per field; we allow more for
/// long JIDs and passphrases, but bound the total).
pub const MAX_PLAIN_LEN: usize = 1024;

/// A parsed PLAIN message.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainCredentials {
    /// The authorization identity, `None` when empty. Not normalised: it is a JID, which the
    /// caller must parse and authorise.
    pub authzid: Option<String>,
    /// The authentication identity (account localpart), SASLprep'd with the username rules.
    pub authcid: String,
    /// The password exactly as sent (not yet SASLprep'd; the verifier does that).
    pub password: String,
}

impl fmt::Debug for PlainCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainCredentials")
            .field("authzid", &self.authzid)
            .field("authcid", &self.authcid)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A PLAIN message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlainError {
    /// The message exceeds [`MAX_PLAIN_LEN`].
    #[error("PLAIN message too long: {len} bytes")]
    TooLong {
        /// Length of the message in bytes.
        len: usize,
    },
    /// The message does not contain exactly two NUL separators.
    #[error("PLAIN message has {count} NUL separators, expected 2")]
    Separators {
        /// Number of NUL bytes found.
        count: usize,
    },
    /// A field is not valid UTF-8.
    #[error("PLAIN message is not UTF-8")]
    NotUtf8,
    /// The authcid field is empty.
    #[error("PLAIN authcid is empty")]
    EmptyAuthcid,
    /// The password field is empty.
    #[error("PLAIN password is empty")]
    EmptyPassword,
    /// The authcid was rejected by the username rules.
    #[error("PLAIN authcid rejected: {0}")]
    InvalidAuthcid(#[source] PrepError),
    /// The authzid contains control characters.
    #[error("PLAIN authzid contains control characters")]
    InvalidAuthzid,
}

impl PlainError {
    /// The wire condition for this error.
    pub const fn condition(&self) -> SaslCondition {
        match self {
            PlainError::InvalidAuthzid => SaslCondition::InvalidAuthzid,
            _ => SaslCondition::MalformedRequest,
        }
    }
}

/// Parses a PLAIN message (RFC 4616 §2).
///
/// # Errors
///
/// See [`PlainError`]: too long, not exactly two NULs, not UTF-8, empty authcid or password,
/// authcid not a valid username, or authzid with control characters.
pub fn parse_plain(msg: &[u8]) -> Result<PlainCredentials, PlainError> {
    if msg.len() > MAX_PLAIN_LEN {
        return Err(PlainError::TooLong { len: msg.len() });
    }
    let count = msg.iter().filter(|b| **b == 0).count();
    if count != 2 {
        return Err(PlainError::Separators { count });
    }
    let text = std::str::from_utf8(msg).map_err(|_| PlainError::NotUtf8)?;
    let mut fields = text.splitn(3, '\0');
    let (Some(authzid), Some(authcid), Some(password)) =
        (fields.next(), fields.next(), fields.next())
    else {
        return Err(PlainError::Separators { count });
    };
    if authcid.is_empty() {
        return Err(PlainError::EmptyAuthcid);
    }
    if password.is_empty() {
        return Err(PlainError::EmptyPassword);
    }
    if authzid.chars().any(char::is_control) {
        return Err(PlainError::InvalidAuthzid);
    }
    let authcid = prepare_username(authcid).map_err(PlainError::InvalidAuthcid)?;
    Ok(PlainCredentials {
        authzid: (!authzid.is_empty()).then(|| authzid.to_owned()),
        authcid: authcid.into_owned(),
        password: password.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_without_authzid() {
        let creds = parse_plain(b"\0user\0pencil").unwrap();
        assert_eq!(creds.authzid, None);
        assert_eq!(creds.authcid, "user");
        assert_eq!(creds.password, "pencil");
    }

    #[test]
    fn parses_with_authzid_and_prepares_authcid() {
        let creds =
            parse_plain("admin@example.org\0us\u{00AD}er\0p\u{00E4}ss word".as_bytes()).unwrap();
        assert_eq!(creds.authzid.as_deref(), Some("admin@example.org"));
        assert_eq!(creds.authcid, "user");
        assert_eq!(creds.password, "p\u{00E4}ss word");
    }

    #[test]
    fn debug_redacts_password() {
        let creds = parse_plain(b"\0user\0hunter2").unwrap();
        let shown = format!("{creds:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("user"));
    }

    #[test]
    fn separator_count_is_exact() {
        assert_eq!(
            parse_plain(b"userpencil"),
            Err(PlainError::Separators { count: 0 })
        );
        assert_eq!(
            parse_plain(b"user\0pencil"),
            Err(PlainError::Separators { count: 1 })
        );
        assert_eq!(
            parse_plain(b"\0user\0pen\0cil"),
            Err(PlainError::Separators { count: 3 })
        );
        assert_eq!(parse_plain(b""), Err(PlainError::Separators { count: 0 }));
    }

    #[test]
    fn empty_fields_rejected() {
        assert_eq!(parse_plain(b"\0\0pencil"), Err(PlainError::EmptyAuthcid));
        assert_eq!(parse_plain(b"\0user\0"), Err(PlainError::EmptyPassword));
        assert_eq!(parse_plain(b"\0\0"), Err(PlainError::EmptyAuthcid));
    }

    #[test]
    fn invalid_utf8_rejected() {
        assert_eq!(parse_plain(b"\0us\xffer\0pencil"), Err(PlainError::NotUtf8));
        assert_eq!(parse_plain(b"\0user\0pen\xc3"), Err(PlainError::NotUtf8));
    }

    #[test]
    fn length_limit() {
        let mut ok = b"\0user\0".to_vec();
        ok.resize(MAX_PLAIN_LEN, b'x');
        assert_eq!(parse_plain(&ok).unwrap().password.len(), MAX_PLAIN_LEN - 6);
        ok.push(b'x');
        assert_eq!(
            parse_plain(&ok),
            Err(PlainError::TooLong {
                len: MAX_PLAIN_LEN + 1
            })
        );
    }

    #[test]
    fn bad_identities_rejected_with_conditions() {
        let err = parse_plain(b"\0user@example.org\0pencil").unwrap_err();
        assert_eq!(err, PlainError::InvalidAuthcid(PrepError::NotALocalpart));
        assert_eq!(err.condition(), SaslCondition::MalformedRequest);

        let err = parse_plain(b"\0us\x07er\0pencil").unwrap_err();
        assert_eq!(err, PlainError::InvalidAuthcid(PrepError::Prohibited));

        let err = parse_plain(b"adm\nin\0user\0pencil").unwrap_err();
        assert_eq!(err, PlainError::InvalidAuthzid);
        assert_eq!(err.condition(), SaslCondition::InvalidAuthzid);
        assert_eq!(
            PlainError::EmptyPassword.condition(),
            SaslCondition::MalformedRequest
        );
    }
}
