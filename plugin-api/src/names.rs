//! Account names in their one canonical form: the host stores accounts under it, and every
//! module must key what it keeps per account (failure counters, reset links, tokens, limits)
//! by it too. Two spellings that name the same account (`Alice`, `ａlice`, `al\u{AD}ice`;
//! `straße` and `strasse`) then share one key, so no limit or revocation can be escaped by
//! writing the name differently.
//!
//! The form is RFC 6122 nodeprep (stringprep, RFC 3454, with the Nodeprep profile), the profile
//! XMPP clients and servers still deploy: case-folded, NFKC-normalised, soft hyphens and other
//! "mapped to nothing" characters removed.

/// The canonical form of an account name (a JID localpart), or `None` when no account can
/// have this name (nodeprep refuses it, or it is empty or longer than 1023 bytes).
///
/// ```
/// use tessera_plugin_api::names::canonical_account;
/// assert_eq!(canonical_account("Alice").as_deref(), Some("alice"));
/// assert_eq!(canonical_account("al\u{AD}ice").as_deref(), Some("alice"));
/// assert_eq!(canonical_account("\u{FF41}lice").as_deref(), Some("alice"));
/// assert_eq!(canonical_account("Straße").as_deref(), Some("strasse"));
/// assert_eq!(canonical_account("a@b"), None);
/// ```
pub fn canonical_account(name: &str) -> Option<String> {
    prep(name).ok()
}

/// A key for per-account bookkeeping of a name a client sent: its canonical form, or, for a
/// name no account can have, the name lower-cased (such a key never equals an account's,
/// since every canonical form is nodeprep-stable and the refused name is not).
pub fn account_key(name: &str) -> String {
    canonical_account(name).unwrap_or_else(|| name.to_lowercase())
}

/// Nodeprep `name` with the length rule; the error says what is wrong.
///
/// # Errors
/// A human-readable reason when no account can have this name.
pub fn prep(name: &str) -> Result<String, String> {
    let prepared = stringprep::nodeprep(name).map_err(|e| e.to_string())?;
    if prepared.is_empty() || prepared.len() > 1023 {
        return Err("must be 1 to 1023 bytes".into());
    }
    Ok(prepared.into_owned())
}

/// The key of a client address for per-address limits: an IPv4 address as it is (an
/// IPv4-mapped IPv6 address as its IPv4 form), an IPv6 address by its /64 prefix, which is what
/// one subscriber gets (RFC 6177), so that one client cannot spread its attempts over 2^64 keys.
/// Anything else (no address, a Unix socket) is its own key.
///
/// ```
/// use tessera_plugin_api::names::address_key;
/// assert_eq!(address_key("192.0.2.7"), "192.0.2.7");
/// assert_eq!(address_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
/// assert_eq!(address_key("2001:db8:1:2:ffff::9"), "2001:db8:1:2::/64");
/// assert_eq!(address_key("::ffff:192.0.2.7"), "192.0.2.7");
/// ```
pub fn address_key(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(ip) => ip_key(ip),
        Err(_) => ip.to_owned(),
    }
}

/// [`address_key`] of a parsed address.
pub fn ip_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_account_share_one_key_and_impossible_names_none() {
        for spelling in ["alice", "ALICE", "al\u{AD}ice", "\u{FF41}lice", " alice"] {
            let expected = if spelling.starts_with(' ') {
                None
            } else {
                Some("alice")
            };
            assert_eq!(
                canonical_account(spelling).as_deref(),
                expected,
                "{spelling:?}"
            );
        }
        assert_eq!(canonical_account("straße"), canonical_account("STRASSE"));
        assert_eq!(canonical_account(""), None);
        assert_eq!(canonical_account(&"a".repeat(1024)), None);
        assert_eq!(account_key("Bad Name"), "bad name");
        assert_eq!(account_key("Ｂob"), "bob");
    }
}
