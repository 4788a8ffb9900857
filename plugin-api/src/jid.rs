//! JIDs (RFC 7622), prepared with the stringprep profiles deployed clients still use
//! (nodeprep for localparts, resourceprep for resources): the host's own parser, so that a
//! module compares and stores JIDs exactly as the host routes them.
//!
//! ```
//! use tessera_plugin_api::jid::Jid;
//! let j = Jid::parse("Juliet@Example.COM/Balcony").unwrap();
//! assert_eq!(j.bare(), "juliet@example.com");
//! assert_eq!(j.to_string(), "juliet@example.com/Balcony");
//! assert!(Jid::parse("juliet@").is_err());
//! ```

use std::fmt;

/// A parsed JID: `local@domain/resource`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Jid {
    /// Localpart (prepared), if any.
    pub local: Option<String>,
    /// Domain (lower-cased).
    pub domain: String,
    /// Resource (prepared), if any.
    pub resource: Option<String>,
}

/// Why a JID was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JidError {
    /// Empty or too long part, or forbidden characters.
    Invalid {
        /// `localpart`, `domain` or `resource`.
        part: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for JidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { part, reason } => write!(f, "invalid {part}: {reason}"),
        }
    }
}

impl std::error::Error for JidError {}

fn invalid(part: &'static str, reason: impl Into<String>) -> JidError {
    JidError::Invalid {
        part,
        reason: reason.into(),
    }
}

/// Prepare an account name (localpart) with nodeprep.
///
/// # Errors
/// Empty, longer than 1023 bytes, or refused by nodeprep.
pub fn prep_localpart(s: &str) -> Result<String, JidError> {
    crate::names::prep(s).map_err(|reason| invalid("localpart", reason))
}

/// Prepare a resource with resourceprep.
///
/// # Errors
/// Empty, longer than 1023 bytes, or refused by resourceprep.
pub fn prep_resource(s: &str) -> Result<String, JidError> {
    let p = stringprep::resourceprep(s).map_err(|e| invalid("resource", e.to_string()))?;
    if p.is_empty() || p.len() > 1023 {
        return Err(invalid("resource", "must be 1 to 1023 bytes"));
    }
    Ok(p.into_owned())
}

/// A character a domainpart may hold (RFC 7622 §3.2): in ASCII, what hostnames and IP
/// literals use; beyond it, anything but spaces and controls (IDNA U-labels). So no JID
/// carries whitespace, a control character or XML/URI syntax in its domain.
fn domain_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']')
    } else {
        !c.is_whitespace() && !c.is_control()
    }
}

impl Jid {
    /// Parse and prepare.
    ///
    /// # Errors
    /// Any part refused.
    pub fn parse(s: &str) -> Result<Self, JidError> {
        let (rest, resource) = match s.split_once('/') {
            Some((r, res)) => (r, Some(prep_resource(res)?)),
            None => (s, None),
        };
        let (local, domain) = match rest.split_once('@') {
            Some((l, d)) => (Some(prep_localpart(l)?), d),
            None => (None, rest),
        };
        let domain = domain.trim_end_matches('.').to_lowercase();
        if domain.is_empty() || domain.len() > 1023 || !domain.chars().all(domain_char) {
            return Err(invalid("domain", "empty or malformed"));
        }
        Ok(Self {
            local,
            domain,
            resource,
        })
    }

    /// The bare JID (`local@domain`).
    pub fn bare(&self) -> String {
        match &self.local {
            Some(l) => format!("{l}@{}", self.domain),
            None => self.domain.clone(),
        }
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.bare())?;
        if let Some(r) = &self.resource {
            write!(f, "/{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prepares() {
        let j = Jid::parse("Alice@LocalHost/Phone").unwrap();
        assert_eq!(j.local.as_deref(), Some("alice"));
        assert_eq!(j.domain, "localhost");
        assert_eq!(j.resource.as_deref(), Some("Phone"));
        assert_eq!(j.to_string(), "alice@localhost/Phone");
        assert_eq!(Jid::parse("localhost").unwrap().bare(), "localhost");
        assert!(
            Jid::parse("a b@localhost").is_err(),
            "space is prohibited in localparts"
        );
        assert!(Jid::parse("@localhost").is_err());
        assert!(Jid::parse("alice@").is_err());
        // No whitespace, control or markup in a domain (review: a newline split a stored line).
        for bad in [
            "a@x\nb",
            "a@x b",
            "a@x\tb",
            "a@x\u{0}",
            "a@x<y",
            "x'y",
            "a@x\u{2028}",
        ] {
            assert!(Jid::parse(bad).is_err(), "{bad:?}");
        }
        for good in [
            "a@[::1]",
            "a@127.0.0.1",
            "a@example-1.org",
            "a@b\u{fc}cher.de",
        ] {
            assert!(Jid::parse(good).is_ok(), "{good:?}");
        }
        assert!(Jid::parse("alice@localhost/").is_err());
    }
}
