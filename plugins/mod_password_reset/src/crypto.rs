//! The module's cryptography: link tokens (256-bit, URL-safe base64 in the link, stored only as
//! their SHA-256), the page's CSRF token (an HMAC bound to the link and the time the form was
//! issued), and the constant-time comparison of email addresses.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// Random bytes in a link token.
pub(crate) const TOKEN_BYTES: usize = 32;
/// Characters of a token in a link (unpadded base64url of [`TOKEN_BYTES`]).
pub(crate) const TOKEN_CHARS: usize = 43;
/// How long a page's CSRF token is accepted, in milliseconds (the link's own lifetime still
/// applies).
pub(crate) const CSRF_MAX_AGE_MS: u64 = 24 * 3600 * 1000;
/// Tolerated clock difference for a CSRF token issued "in the future", in milliseconds.
const CSRF_SKEW_MS: u64 = 60_000;

type HmacSha256 = Hmac<Sha256>;

/// A link token as it appears in the link.
pub(crate) fn encode_token(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

/// The storage id of a token from its link form: hex SHA-256 of the 32 raw bytes. `None` when
/// the text cannot be a token (wrong length or alphabet), which the page treats as unknown.
pub(crate) fn token_id(link_token: &str) -> Option<String> {
    if link_token.len() != TOKEN_CHARS {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(link_token).ok()?;
    (raw.len() == TOKEN_BYTES).then(|| id_of_raw(&raw))
}

/// The storage id of a freshly drawn token's raw bytes.
pub(crate) fn id_of_raw(raw: &[u8]) -> String {
    hex(&Sha256::digest(raw))
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn csrf_mac(key: &[u8], token_id: &str, issued_ms: u64) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(token_id.as_bytes());
    mac.update(b"|");
    mac.update(&issued_ms.to_be_bytes());
    Some(mac)
}

/// The CSRF value of a form issued at `issued_ms` for the link `token_id`:
/// `<issued_ms>.<base64url HMAC-SHA-256(key, token_id | issued_ms)>`.
pub(crate) fn csrf_token(key: &[u8], token_id: &str, issued_ms: u64) -> String {
    let tag = csrf_mac(key, token_id, issued_ms)
        .map(|m| URL_SAFE_NO_PAD.encode(m.finalize().into_bytes()))
        .unwrap_or_default();
    format!("{issued_ms}.{tag}")
}

/// Whether `value` is a CSRF token this server issued for `token_id`, not older than
/// [`CSRF_MAX_AGE_MS`]. The tag is compared in constant time.
pub(crate) fn csrf_valid(key: &[u8], token_id: &str, value: &str, now_ms: u64) -> bool {
    let Some((issued, tag)) = value.split_once('.') else {
        return false;
    };
    let (Ok(issued_ms), Ok(tag)) = (issued.parse::<u64>(), URL_SAFE_NO_PAD.decode(tag)) else {
        return false;
    };
    if issued_ms > now_ms.saturating_add(CSRF_SKEW_MS)
        || now_ms.saturating_sub(issued_ms) > CSRF_MAX_AGE_MS
    {
        return false;
    }
    csrf_mac(key, token_id, issued_ms).is_some_and(|m| m.verify_slice(&tag).is_ok())
}

/// An address in the form it is compared in: surrounding whitespace removed and the domain part
/// (after the last `@`) lower-cased; the local part is kept as is (RFC 5321 §2.4).
pub(crate) fn normalise_email(address: &str) -> String {
    let address = address.trim();
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => address.to_owned(),
    }
}

/// Whether the submitted address equals the stored one, in constant time with respect to both
/// contents and lengths: the SHA-256 digests of the normalised forms are compared with `subtle`.
/// Without a stored address a decoy digest is compared (same work) and the answer is `false`.
pub(crate) fn email_matches(stored: Option<&str>, submitted: &str, decoy: &[u8]) -> bool {
    let present = Choice::from(u8::from(stored.is_some()));
    let stored_digest = match stored {
        Some(s) => Sha256::digest(normalise_email(s).as_bytes()),
        None => Sha256::digest(decoy),
    };
    let submitted_digest = Sha256::digest(normalise_email(submitted).as_bytes());
    bool::from(stored_digest.ct_eq(&submitted_digest) & present)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_to_a_hex_id_and_garbage_has_none() {
        let raw = [7u8; TOKEN_BYTES];
        let link = encode_token(&raw);
        assert_eq!(link.len(), TOKEN_CHARS);
        assert!(link
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let id = token_id(&link).expect("valid");
        assert_eq!(id, hex(&Sha256::digest(raw)));
        assert_eq!(id.len(), 64);
        assert_eq!(token_id("short"), None);
        assert_eq!(token_id(&"!".repeat(TOKEN_CHARS)), None);
        assert_eq!(token_id(&format!("{}=", &link[..42])), None);
    }

    #[test]
    fn csrf_tokens_are_bound_to_key_link_and_age() {
        let key = [1u8; 32];
        let now = 1_700_000_000_000;
        let t = csrf_token(&key, "abc", now);
        assert!(csrf_valid(&key, "abc", &t, now + 1000));
        assert!(!csrf_valid(&key, "abd", &t, now), "another link");
        assert!(!csrf_valid(&[2u8; 32], "abc", &t, now), "another key");
        assert!(
            !csrf_valid(&key, "abc", &t, now + CSRF_MAX_AGE_MS + 1),
            "too old"
        );
        assert!(
            !csrf_valid(&key, "abc", &t, now - 120_000),
            "from the future"
        );
        let forged = format!(
            "{}.{}",
            now + 1,
            t.split_once('.').map(|x| x.1).unwrap_or("")
        );
        assert!(!csrf_valid(&key, "abc", &forged, now), "time is covered");
        for bad in ["", ".", "x.y", "12", "12.!!"] {
            assert!(!csrf_valid(&key, "abc", bad, now), "{bad:?}");
        }
    }

    #[test]
    fn email_comparison_ignores_domain_case_only() {
        let decoy = [9u8; 32];
        assert!(email_matches(
            Some("Alice@Example.ORG"),
            " Alice@example.org ",
            &decoy
        ));
        assert!(!email_matches(
            Some("Alice@example.org"),
            "alice@example.org",
            &decoy
        ));
        assert!(!email_matches(
            Some("alice@example.org"),
            "alice@example.com",
            &decoy
        ));
        assert!(!email_matches(None, "alice@example.org", &decoy));
        assert!(
            !email_matches(None, "", &[]),
            "no address never matches, even empty"
        );
        assert_eq!(normalise_email("a@b@C.D"), "a@b@c.d");
    }
}
