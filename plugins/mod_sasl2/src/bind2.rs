//! XEP-0386 Bind 2: the resource a `<bind xmlns='urn:xmpp:bind:0'>` request gets, and the
//! `<bound/>` element of `<success/>`.
//!
//! # Wire behaviour
//! * Resource = `tag "/" suffix` (just `suffix` without a usable `<tag>`), where `suffix` is the
//!   first 12 characters of URL-safe unpadded base64 of
//!   `HMAC-SHA-256(secret "bind2-resource", user || 0x00 || user-agent id)`: the same account,
//!   tag and user-agent id always get the same resource (so a reconnecting client replaces its
//!   old session), and the user-agent id itself never appears in the JID. Without a user-agent id
//!   the suffix is 12 random characters.
//! * A `<tag>` that is empty (after trimming) or longer than [`MAX_TAG_LEN`] bytes is ignored,
//!   and so is one whose resource would not pass resourceprep (e.g. right-to-left text next to
//!   the suffix); non-ASCII spaces become spaces and the tag is NFKC-normalised.
//! * `<bound/>` carries what other modules contribute (`BIND2_BOUND`): the archive module its
//!   `<metadata xmlns='urn:xmpp:mam:2'/>`, stream management its `<enabled/>`. Nothing about an
//!   archive when no archive module is loaded: an empty `<metadata/>` would tell the client
//!   that its archive is empty.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tessera_plugin_api::xml::Element;
use tessera_sasl::saslprep;

use crate::wire::BIND2_NS;

/// Longest `<tag>` used in a resource, in bytes.
pub(crate) const MAX_TAG_LEN: usize = 256;
/// Length of the generated part of the resource, in characters.
pub(crate) const SUFFIX_LEN: usize = 12;
/// Random bytes needed for a random suffix (9 bytes = 12 base64 characters).
pub(crate) const RANDOM_SUFFIX_BYTES: usize = 9;

/// A Bind 2 request found in `<authenticate/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BindRequest {
    /// The usable `<tag>`, if any.
    pub(crate) tag: Option<String>,
}

/// The Bind 2 request inside an `<authenticate/>`, if any.
pub(crate) fn request(authenticate: &Element) -> Option<BindRequest> {
    let bind = authenticate.child("bind", BIND2_NS)?;
    let tag = bind
        .child("tag", BIND2_NS)
        .map(|t| t.text().trim().to_owned())
        .filter(|t| !t.is_empty() && t.len() <= MAX_TAG_LEN);
    Some(BindRequest { tag })
}

/// The stable suffix for (user, user-agent id).
pub(crate) fn stable_suffix(secret: &[u8], user: &str, user_agent_id: &str) -> Option<String> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).ok()?;
    mac.update(user.as_bytes());
    mac.update(&[0]);
    mac.update(user_agent_id.as_bytes());
    let encoded = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    encoded.get(..SUFFIX_LEN).map(str::to_owned)
}

/// A suffix from [`RANDOM_SUFFIX_BYTES`] random bytes.
pub(crate) fn random_suffix(random: &[u8]) -> String {
    let mut encoded = URL_SAFE_NO_PAD.encode(random);
    encoded.truncate(SUFFIX_LEN);
    encoded
}

/// The resource for a request: `tag/suffix`, or `suffix` alone when there is no tag or
/// `tag/suffix` would not survive the host's resourceprep unchanged.
///
/// The candidate goes through SASLprep, which uses the same Unicode 3.2 tables, NFKC, prohibited
/// characters, bidirectional rule and unassigned-code-point check as resourceprep, and maps
/// non-ASCII spaces (which resourceprep forbids) to a space; its output is therefore a
/// resourceprep fixed point, so the `<authorization-identifier/>` equals the bound JID.
pub(crate) fn resource(request: &BindRequest, suffix: &str) -> String {
    request
        .tag
        .as_deref()
        .and_then(|tag| {
            let candidate = format!("{tag}/{suffix}");
            let prepared = saslprep(&candidate).ok()?.into_owned();
            // A tag that prepares to nothing leaves only "/suffix": use the suffix alone.
            (prepared.len() > suffix.len() + 1).then_some(prepared)
        })
        .unwrap_or_else(|| suffix.to_owned())
}

/// `<bound xmlns='urn:xmpp:bind:0'>…</bound>` with the other modules' children.
pub(crate) fn bound(extra: Vec<Element>) -> Element {
    let mut el = Element::new("bound", BIND2_NS);
    for child in extra {
        el.push_child(child);
    }
    el
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticate_with(bind: Element) -> Element {
        Element::new("authenticate", crate::wire::SASL2_NS).with_child(bind)
    }

    #[test]
    fn tag_is_read_trimmed_and_bounded() {
        let el = authenticate_with(
            Element::new("bind", BIND2_NS)
                .with_child(Element::new("tag", BIND2_NS).with_text(" AwesomeXMPP ")),
        );
        assert_eq!(
            request(&el).and_then(|r| r.tag).as_deref(),
            Some("AwesomeXMPP")
        );

        let long = "x".repeat(MAX_TAG_LEN + 1);
        let el = authenticate_with(
            Element::new("bind", BIND2_NS)
                .with_child(Element::new("tag", BIND2_NS).with_text(long)),
        );
        assert_eq!(request(&el), Some(BindRequest { tag: None }));
        let el = authenticate_with(Element::new("bind", BIND2_NS));
        assert_eq!(request(&el), Some(BindRequest { tag: None }));
        // Wrong namespace (the obsolete urn:xmpp:bind2:1) is not a Bind 2 request.
        let el = authenticate_with(Element::new("bind", "urn:xmpp:bind2:1"));
        assert_eq!(request(&el), None);
    }

    #[test]
    fn stable_suffix_is_deterministic_hidden_and_per_client() {
        let key = [7u8; 32];
        let a = stable_suffix(&key, "alice", "d4565fa7-4d72-4749-b3d3-740edbf87770")
            .unwrap_or_default();
        assert_eq!(a.len(), SUFFIX_LEN);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{a}"
        );
        assert_eq!(
            stable_suffix(&key, "alice", "d4565fa7-4d72-4749-b3d3-740edbf87770"),
            Some(a.clone())
        );
        assert_ne!(
            stable_suffix(&key, "alice", "other-client"),
            Some(a.clone())
        );
        assert_ne!(
            stable_suffix(&key, "bob", "d4565fa7-4d72-4749-b3d3-740edbf87770"),
            Some(a.clone())
        );
        assert_ne!(
            stable_suffix(&[8u8; 32], "alice", "d4565fa7-4d72-4749-b3d3-740edbf87770"),
            Some(a.clone())
        );
        // The separator keeps (user, id) pairs apart: "ab"+"c" differs from "a"+"bc".
        assert_ne!(
            stable_suffix(&key, "ab", "c"),
            stable_suffix(&key, "a", "bc")
        );
    }

    #[test]
    fn stable_suffix_matches_independent_hmac_computation() {
        // HMAC-SHA-256(key = 32 x 0x01, "user\0ua") computed with the hmac crate directly.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&[1u8; 32]).expect("any key length");
        mac.update(b"user\0ua");
        let full = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_eq!(
            stable_suffix(&[1u8; 32], "user", "ua").as_deref(),
            full.get(..12)
        );
    }

    #[test]
    fn random_suffix_and_resource_shapes() {
        let suffix = random_suffix(&[0xfb; RANDOM_SUFFIX_BYTES]);
        assert_eq!(suffix, "-_v7-_v7-_v7");
        let tagged = BindRequest {
            tag: Some("AwesomeXMPP".into()),
        };
        assert_eq!(resource(&tagged, &suffix), "AwesomeXMPP/-_v7-_v7-_v7");
        assert_eq!(resource(&BindRequest { tag: None }, "abc"), "abc");
    }

    #[test]
    fn tags_are_prepared_or_dropped_so_resourceprep_cannot_fail() {
        let with = |tag: &str| {
            resource(
                &BindRequest {
                    tag: Some(tag.into()),
                },
                "Ab-_12345678",
            )
        };
        assert_eq!(with("Gajim\u{00A0}Desktop"), "Gajim Desktop/Ab-_12345678");
        assert_eq!(with("\u{FB01}le"), "file/Ab-_12345678");
        assert_eq!(with("jürgen's"), "jürgen's/Ab-_12345678");
        // Right-to-left text next to the left-to-right suffix breaks the bidi rule.
        assert_eq!(with("\u{0627}\u{0628}"), "Ab-_12345678");
        // Prohibited or vanishing tags.
        assert_eq!(with("a\u{E000}b"), "Ab-_12345678");
        assert_eq!(with("\u{00AD}"), "Ab-_12345678");
    }

    #[test]
    fn bound_holds_only_what_modules_contribute() {
        let el = bound(vec![Element::new("enabled", "urn:xmpp:sm:3")]);
        assert_eq!(
            el.to_xml(),
            "<bound xmlns='urn:xmpp:bind:0'><enabled xmlns='urn:xmpp:sm:3'/></bound>"
        );
        assert_eq!(
            bound(Vec::new()).to_xml(),
            "<bound xmlns='urn:xmpp:bind:0'/>"
        );
    }
}
