//! XEP-0474 SASL SCRAM Downgrade Protection (version 0.5.0, the `h=` attribute).
//!
//! A man in the middle who strips the `-PLUS` mechanisms or the channel-binding types from the
//! stream features can push a client onto a weaker mechanism; SCRAM cannot see that, since the
//! features are not part of what it proves. With this extension the server puts a hash of what
//! it advertised into server-first (`,h=<base64(H(S))>`), which the SCRAM proof covers, and the
//! client compares it with the hash of what it received.
//!
//! `S` is the advertised mechanisms of the SASL profile in use (RFC 6120 `<mechanisms/>` or
//! XEP-0388 `<authentication/>`), sorted by octets and joined by 0x1E; if XEP-0440
//! `<sasl-channel-binding/>` was advertised, then 0x1F and its types, sorted and joined by 0x1E.
//! `H` is the SCRAM exchange's hash.

use crate::{encode_base64, Hash};

/// The octets XEP-0474 hashes for these advertised `mechanisms` and channel-binding `cb_types`
/// (empty when `<sasl-channel-binding/>` was not sent).
pub fn hash_input(mechanisms: &[&str], cb_types: &[&str]) -> Vec<u8> {
    let sorted_join = |items: &[&str]| {
        let mut items = items.to_vec();
        items.sort_unstable();
        items.join("\u{1e}")
    };
    let mut input = sorted_join(mechanisms).into_bytes();
    if !cb_types.is_empty() {
        input.push(0x1f);
        input.extend_from_slice(sorted_join(cb_types).as_bytes());
    }
    input
}

/// The `h=` value: base64 of `hash` over [`hash_input`].
pub fn downgrade_hash(hash: Hash, mechanisms: &[&str], cb_types: &[&str]) -> String {
    encode_base64(&hash.digest(&hash_input(mechanisms, cb_types)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XEP-0474 0.5.0 §2's example (protocols.md §8.5 recomputed it).
    #[test]
    fn the_xep_vector() {
        let mechanisms = ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"];
        let cb = ["tls-server-end-point", "tls-exporter"];
        assert_eq!(
            hash_input(&mechanisms, &cb),
            b"SCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1ftls-exporter\x1etls-server-end-point"
        );
        assert_eq!(
            downgrade_hash(Hash::Sha1, &mechanisms, &cb),
            "G6k/rBLDqgOhRRaCuuatSDFkJ08="
        );
    }

    #[test]
    fn order_of_advertisement_does_not_matter_and_no_binding_means_no_separator() {
        let a = downgrade_hash(
            Hash::Sha256,
            &["SCRAM-SHA-256", "PLAIN", "PASSWORD-RESET"],
            &[],
        );
        let b = downgrade_hash(
            Hash::Sha256,
            &["PASSWORD-RESET", "SCRAM-SHA-256", "PLAIN"],
            &[],
        );
        assert_eq!(a, b);
        assert_eq!(
            hash_input(&["PLAIN", "SCRAM-SHA-256"], &[]),
            b"PLAIN\x1eSCRAM-SHA-256"
        );
        // Stripping one mechanism changes the hash.
        assert_ne!(
            a,
            downgrade_hash(Hash::Sha256, &["SCRAM-SHA-256", "PLAIN"], &[])
        );
    }
}
