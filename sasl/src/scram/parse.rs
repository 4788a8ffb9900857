//! SCRAM message grammar (RFC 5802 §7): saslname escaping, nonces, the GS2 header and
//! `<letter>=<value>` attributes. Pure functions over `&str`, no panics on any input.

use base64::Engine as _;

use super::error::{ScramError, ScramSyntax};
use super::MAX_MESSAGE_LEN;

/// The channel-binding flag of a GS2 header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gs2Flag<'a> {
    /// `n`: the client does not support channel binding.
    NotSupported,
    /// `y`: the client supports channel binding but thinks the server does not.
    NotUsed,
    /// `p=<cb-name>`: the client uses channel binding of this (syntactically valid) type.
    Bound(&'a str),
}

/// A parsed GS2 header plus the rest of the client-first message.
#[derive(Debug)]
pub(crate) struct ClientFirstParts<'a> {
    pub(crate) flag: Gs2Flag<'a>,
    pub(crate) authzid: Option<String>,
    /// The GS2 header exactly as sent, including the trailing `,`.
    pub(crate) gs2_header: &'a str,
    /// client-first-message-bare.
    pub(crate) bare: &'a str,
}

/// Checks the length and UTF-8 encoding of a SCRAM message.
pub(crate) fn message_text(msg: &[u8]) -> Result<&str, ScramSyntax> {
    if msg.len() > MAX_MESSAGE_LEN {
        return Err(ScramSyntax::TooLong { len: msg.len() });
    }
    std::str::from_utf8(msg).map_err(|_| ScramSyntax::NotUtf8)
}

/// Decodes a saslname (`=2C` → `,`, `=3D` → `=`). `None` for an empty name, a raw `,`, a NUL,
/// or any other `=` sequence.
pub(crate) fn unescape_saslname(s: &str) -> Option<String> {
    if s.is_empty() || s.contains([',', '\0']) {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('=') {
        let (before, after) = rest.split_at(pos);
        out.push_str(before);
        let escape = after.get(..3)?;
        match escape {
            "=2C" => out.push(','),
            "=3D" => out.push('='),
            _ => return None,
        }
        rest = after.get(3..)?;
    }
    out.push_str(rest);
    Some(out)
}

/// Encodes a string as a saslname.
pub(crate) fn escape_saslname(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

/// `printable = %x21-2B / %x2D-7E`, at least one character.
pub(crate) fn valid_nonce(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, 0x21..=0x2B | 0x2D..=0x7E))
}

/// `cb-name = 1*(ALPHA / DIGIT / "." / "-")`.
fn valid_cb_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// Splits a client-first message into GS2 header and bare part.
pub(crate) fn split_client_first(msg: &str) -> Result<ClientFirstParts<'_>, ScramError> {
    let (flag, rest) = msg.split_once(',').ok_or(ScramSyntax::Gs2Header)?;
    let (authzid, bare) = rest.split_once(',').ok_or(ScramSyntax::Gs2Header)?;
    let flag = match flag {
        "n" => Gs2Flag::NotSupported,
        "y" => Gs2Flag::NotUsed,
        _ => match flag.strip_prefix("p=") {
            Some(name) if valid_cb_name(name) => Gs2Flag::Bound(name),
            _ => return Err(ScramSyntax::Gs2Header.into()),
        },
    };
    let authzid = if authzid.is_empty() {
        None
    } else {
        let escaped = authzid.strip_prefix("a=").ok_or(ScramSyntax::Gs2Header)?;
        let name = unescape_saslname(escaped).ok_or(ScramError::InvalidAuthzid)?;
        if name.chars().any(char::is_control) {
            return Err(ScramError::InvalidAuthzid);
        }
        Some(name)
    };
    let header_len = msg.len().saturating_sub(bare.len());
    let gs2_header = msg.get(..header_len).ok_or(ScramSyntax::Gs2Header)?;
    Ok(ClientFirstParts {
        flag,
        authzid,
        gs2_header,
        bare,
    })
}

/// The value of `part` if it is the attribute `name` (`<name>=<value>`).
pub(crate) fn attribute(part: Option<&str>, name: char) -> Result<&str, ScramSyntax> {
    part.and_then(|p| p.strip_prefix(name))
        .and_then(|p| p.strip_prefix('='))
        .ok_or(ScramSyntax::MissingAttribute(name))
}

/// Checks that every remaining part is an optional extension `<ALPHA>=<value>`; the values are
/// ignored (RFC 5802 §5.1: unknown optional extensions are ignored).
pub(crate) fn skip_extensions<'a>(parts: impl Iterator<Item = &'a str>) -> Result<(), ScramSyntax> {
    for part in parts {
        let mut bytes = part.bytes();
        let well_formed =
            bytes.next().is_some_and(|b| b.is_ascii_alphabetic()) && bytes.next() == Some(b'=');
        if !well_formed {
            return Err(ScramSyntax::BadAttribute);
        }
    }
    Ok(())
}

/// Decodes the base64 value of attribute `name` (padding optional, no whitespace).
pub(crate) fn attribute_base64(value: &str, name: char) -> Result<Vec<u8>, ScramError> {
    crate::LENIENT_BASE64
        .decode(value)
        .map_err(|_| ScramError::InvalidBase64 { attribute: name })
}

/// Encodes random bytes as a nonce: standard base64 without padding (never contains `,`).
pub fn nonce_from_random(random: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(random)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saslname_escapes() {
        assert_eq!(unescape_saslname("user").as_deref(), Some("user"));
        assert_eq!(unescape_saslname("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(unescape_saslname("=3D=3D").as_deref(), Some("=="));
        for bad in ["", "a=", "a=2", "a=2c", "a=41", "=", "a,b", "a\0b", "a==3D"] {
            assert_eq!(unescape_saslname(bad), None, "{bad:?}");
        }
        assert_eq!(escape_saslname("a,b=c"), "a=2Cb=3Dc");
        let odd = "x=,=y";
        assert_eq!(
            unescape_saslname(&escape_saslname(odd)).as_deref(),
            Some(odd)
        );
    }

    #[test]
    fn nonce_characters() {
        assert!(valid_nonce("fyko+d2lbbFgONRv9qkxdawL"));
        assert!(valid_nonce("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"));
        assert!(!valid_nonce(""));
        assert!(!valid_nonce("a,b"));
        assert!(!valid_nonce("a b"));
        assert!(!valid_nonce("a\u{e9}"));
        let n = nonce_from_random(&[0xff; 18]);
        assert_eq!(n.len(), 24);
        assert!(valid_nonce(&n));
    }

    #[test]
    fn gs2_headers() {
        let p = split_client_first("n,,n=user,r=abc").unwrap();
        assert_eq!(
            (p.flag, p.authzid, p.gs2_header, p.bare),
            (Gs2Flag::NotSupported, None, "n,,", "n=user,r=abc")
        );
        let p = split_client_first("y,a=admin=2Cx,n=u,r=x").unwrap();
        assert_eq!(p.flag, Gs2Flag::NotUsed);
        assert_eq!(p.authzid.as_deref(), Some("admin,x"));
        assert_eq!(p.gs2_header, "y,a=admin=2Cx,");
        let p = split_client_first("p=tls-unique,,n=u,r=x").unwrap();
        assert_eq!(p.flag, Gs2Flag::Bound("tls-unique"));
        for bad in [
            "",
            "n",
            "n,",
            "x,,n=u",
            "p=,,n=u",
            "p=a b,,n=u",
            "n,b=x,n=u",
            "N,,n=u",
        ] {
            assert_eq!(
                split_client_first(bad).unwrap_err(),
                ScramError::Malformed(ScramSyntax::Gs2Header),
                "{bad:?}"
            );
        }
        for bad in ["n,a=,n=u", "n,a=x=41,n=u", "n,a=x\ty,n=u"] {
            assert_eq!(
                split_client_first(bad).unwrap_err(),
                ScramError::InvalidAuthzid,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn extensions() {
        assert_eq!(skip_extensions(["x=1", "Y="].into_iter()), Ok(()));
        assert_eq!(
            skip_extensions(["xy=1"].into_iter()),
            Err(ScramSyntax::BadAttribute)
        );
        assert_eq!(
            skip_extensions([""].into_iter()),
            Err(ScramSyntax::BadAttribute)
        );
        assert_eq!(
            skip_extensions(["1=2"].into_iter()),
            Err(ScramSyntax::BadAttribute)
        );
    }
}
