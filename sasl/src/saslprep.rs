//! SASLprep (RFC 4013, a stringprep profile of RFC 3454) and the username rules shared by all
//! mechanisms.
//!
//! SASLprep is applied in its "stored strings" form: unassigned code points are rejected. The
//! same function must be used when a password is set (see
//! [`derive_credentials`](crate::scram::derive_credentials)) and when it is checked.

use std::borrow::Cow;

/// Maximum length of a prepared username in bytes: the XMPP localpart limit (RFC 7622 §3.3.1).
pub const MAX_USERNAME_LEN: usize = 1023;

/// ASCII characters that can never appear in an XMPP localpart (RFC 7622 §3.3.1 and the
/// Nodeprep profile of RFC 6122): a username containing one of them cannot name an account.
const FORBIDDEN_IN_LOCALPART: &[char] = &[' ', '"', '&', '\'', '/', ':', '<', '>', '@'];

/// A string was rejected by SASLprep or by the username rules.
///
/// The error never contains the offending input, because that input may be a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrepError {
    /// SASLprep rejected the string: a prohibited or unassigned code point (control characters
    /// included), or invalid bidirectional text.
    #[error("string rejected by SASLprep (prohibited character or bidirectional text)")]
    Prohibited,
    /// The string is empty after preparation.
    #[error("empty string")]
    Empty,
    /// The prepared string is longer than allowed.
    #[error("string too long: {len} bytes, at most {max} allowed")]
    TooLong {
        /// Length of the prepared string in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The username contains a character that cannot appear in an XMPP localpart
    /// (space, `"`, `&`, `'`, `/`, `:`, `<`, `>`, `@`); the username must be the bare localpart.
    #[error("username contains a character not allowed in an XMPP localpart")]
    NotALocalpart,
}

impl PrepError {
    /// The wire condition: [`SaslCondition::MalformedRequest`](crate::SaslCondition::MalformedRequest).
    pub const fn condition(&self) -> crate::SaslCondition {
        crate::SaslCondition::MalformedRequest
    }
}

/// Applies SASLprep (RFC 4013) to `s`.
///
/// Returns the input unchanged (borrowed) when it is already prepared, which is the common case
/// of printable ASCII. An empty string is returned as is; callers decide whether empty is allowed.
///
/// # Errors
///
/// [`PrepError::Prohibited`] when the string contains a prohibited (e.g. control) or unassigned
/// code point, or violates the bidirectional rules.
pub fn saslprep(s: &str) -> Result<Cow<'_, str>, PrepError> {
    stringprep::saslprep(s).map_err(|_| PrepError::Prohibited)
}

/// Prepares a SASL authentication identity that names a local account (SCRAM `n=`, PLAIN
/// authcid): SASLprep, then the XMPP username rules.
///
/// The result is non-empty, at most [`MAX_USERNAME_LEN`] bytes, contains no control character
/// and none of the characters forbidden in a localpart. No case mapping is applied; account
/// lookup decides case sensitivity.
///
/// # Errors
///
/// [`PrepError::Prohibited`], [`PrepError::Empty`], [`PrepError::TooLong`] or
/// [`PrepError::NotALocalpart`].
pub fn prepare_username(s: &str) -> Result<Cow<'_, str>, PrepError> {
    let prepared = saslprep(s)?;
    if prepared.is_empty() {
        return Err(PrepError::Empty);
    }
    if prepared.len() > MAX_USERNAME_LEN {
        return Err(PrepError::TooLong {
            len: prepared.len(),
            max: MAX_USERNAME_LEN,
        });
    }
    // SASLprep already rejects control characters (RFC 3454 C.2); this keeps the guarantee
    // local and explicit.
    if prepared.chars().any(char::is_control) {
        return Err(PrepError::Prohibited);
    }
    if prepared.contains(FORBIDDEN_IN_LOCALPART) {
        return Err(PrepError::NotALocalpart);
    }
    Ok(prepared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4013_examples() {
        // RFC 4013 §3: SOFT HYPHEN mapped to nothing, NBSP to space, NFKC, prohibited controls.
        assert_eq!(saslprep("I\u{00AD}X").unwrap(), "IX");
        assert_eq!(saslprep("user").unwrap(), "user");
        assert_eq!(saslprep("USER").unwrap(), "USER");
        assert_eq!(saslprep("\u{00AA}").unwrap(), "a");
        assert_eq!(saslprep("\u{2168}").unwrap(), "IX");
        assert_eq!(saslprep("\u{0007}"), Err(PrepError::Prohibited));
        assert_eq!(saslprep("\u{0627}\u{0031}"), Err(PrepError::Prohibited));
        assert_eq!(saslprep("a\u{00A0}b").unwrap(), "a b");
    }

    #[test]
    fn ascii_is_borrowed() {
        assert!(matches!(
            saslprep("pencil").unwrap(),
            Cow::Borrowed("pencil")
        ));
    }

    #[test]
    fn username_accepts_localparts() {
        assert_eq!(prepare_username("user").unwrap(), "user");
        assert_eq!(prepare_username("jürgen").unwrap(), "jürgen");
        assert_eq!(prepare_username("a\u{00AD}b").unwrap(), "ab");
        let max = "a".repeat(MAX_USERNAME_LEN);
        assert_eq!(prepare_username(&max).unwrap(), max.as_str());
    }

    #[test]
    fn username_rejections() {
        assert_eq!(prepare_username(""), Err(PrepError::Empty));
        assert_eq!(prepare_username("\u{00AD}"), Err(PrepError::Empty));
        assert_eq!(prepare_username("us\ter"), Err(PrepError::Prohibited));
        assert_eq!(prepare_username("us\u{0}er"), Err(PrepError::Prohibited));
        assert_eq!(
            prepare_username("user@example.org"),
            Err(PrepError::NotALocalpart)
        );
        assert_eq!(prepare_username("a b"), Err(PrepError::NotALocalpart));
        assert_eq!(
            prepare_username("a\u{00A0}b"),
            Err(PrepError::NotALocalpart)
        );
        assert_eq!(prepare_username("a/b"), Err(PrepError::NotALocalpart));
        let long = "a".repeat(MAX_USERNAME_LEN + 1);
        assert_eq!(
            prepare_username(&long),
            Err(PrepError::TooLong {
                len: MAX_USERNAME_LEN + 1,
                max: MAX_USERNAME_LEN
            })
        );
        assert_eq!(
            PrepError::Empty.condition(),
            crate::SaslCondition::MalformedRequest
        );
    }
}
