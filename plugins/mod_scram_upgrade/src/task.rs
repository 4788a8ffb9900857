//! XEP-0480's SCRAM upgrade task on the wire, as pure functions: whether a client asked for it,
//! the `<salt/>` the server sends, and the `<hash/>` (the client's SaltedPassword) it answers.

use base64::Engine as _;
use tessera_plugin_api::xml::Element;

/// The one task: a SCRAM-SHA-512 verifier. (An account always has SHA-1 and SHA-256 ones.)
pub const TASK: &str = "UPGR-SCRAM-SHA-512";
/// `<upgrade/>` in the features and in `<authenticate/>`.
pub const UPGRADE_NS: &str = "urn:xmpp:sasl:upgrade:0";
/// `<salt/>` and `<hash/>`.
pub const SCRAM_UPGRADE_NS: &str = "urn:xmpp:scram-upgrade:0";
/// Bytes of a fresh salt (as the host uses for a password).
pub const SALT_LEN: usize = 16;
/// Longest `<hash/>` text read (a SHA-512 SaltedPassword is 88 characters of base64).
const MAX_HASH_TEXT: usize = 1024;

/// Whether the client's `<authenticate/>` asks for [`TASK`].
pub fn requested(authenticate: &Element) -> bool {
    authenticate
        .children_named("upgrade", UPGRADE_NS)
        .any(|u| u.text().trim() == TASK)
}

/// The `<task-data/>` child that starts the task: salt and iteration count (XEP-0480 §3).
pub fn salt_element(salt: &[u8], iterations: u32) -> Element {
    Element::new("salt", SCRAM_UPGRADE_NS)
        .with_attr("iterations", iterations.to_string())
        .with_text(base64::engine::general_purpose::STANDARD.encode(salt))
}

/// Why a client's `<task-data/>` holds no usable SaltedPassword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashError {
    /// No `<hash xmlns='urn:xmpp:scram-upgrade:0'/>`.
    Missing,
    /// Its text is not base64 (or absurdly long).
    NotBase64,
}

/// The SaltedPassword in a client's `<task-data/>`. Whitespace inside the text is ignored (the
/// XEP's own example wraps it); its length is the host's to judge.
///
/// # Errors
/// [`HashError`].
pub fn salted_password(task_data: &Element) -> Result<Vec<u8>, HashError> {
    let hash = task_data
        .child("hash", SCRAM_UPGRADE_NS)
        .ok_or(HashError::Missing)?;
    let text: String = hash
        .text()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if text.is_empty() || text.len() > MAX_HASH_TEXT {
        return Err(HashError::NotBase64);
    }
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| HashError::NotBase64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticate(upgrades: &[(&str, &str)]) -> Element {
        let mut el =
            Element::new("authenticate", "urn:xmpp:sasl:2").with_attr("mechanism", "PLAIN");
        for (ns, text) in upgrades {
            el.push_child(Element::new("upgrade", *ns).with_text(*text));
        }
        el
    }

    #[test]
    fn only_our_task_in_the_upgrade_namespace_is_a_request() {
        assert!(requested(&authenticate(&[(UPGRADE_NS, TASK)])));
        assert!(requested(&authenticate(&[
            (UPGRADE_NS, "UPGR-BLOOP2"),
            (UPGRADE_NS, " UPGR-SCRAM-SHA-512\n")
        ])));
        assert!(!requested(&authenticate(&[])));
        assert!(!requested(&authenticate(&[(
            UPGRADE_NS,
            "UPGR-SCRAM-SHA-256"
        )])));
        assert!(!requested(&authenticate(&[("urn:example", TASK)])));
    }

    #[test]
    fn the_salt_element_is_the_xeps() {
        assert_eq!(
            salt_element(b"A_SXCRXQ6sek8bf_Z", 4096).to_xml(),
            "<salt xmlns='urn:xmpp:scram-upgrade:0' iterations='4096'>QV9TWENSWFE2c2VrOGJmX1o=</salt>"
        );
    }

    #[test]
    fn the_hash_is_read_with_whitespace_and_refused_precisely_otherwise() {
        let data = |child: Option<Element>| {
            let mut el = Element::new("task-data", "urn:xmpp:sasl:2");
            if let Some(child) = child {
                el.push_child(child);
            }
            el
        };
        let hash = |text: &str| Some(Element::new("hash", SCRAM_UPGRADE_NS).with_text(text));
        // XEP-0480's example, wrapped as it is there.
        let ok = data(hash("\n  BzOnw3Pc5H4bOLlPZ/8JAy6wnTpH05aH21KW2+Xfpaw=\n  "));
        assert_eq!(salted_password(&ok).unwrap().len(), 32);
        assert_eq!(salted_password(&data(None)), Err(HashError::Missing));
        let other_ns = data(Some(Element::new("hash", "urn:example").with_text("AAAA")));
        assert_eq!(salted_password(&other_ns), Err(HashError::Missing));
        assert_eq!(
            salted_password(&data(hash("not base64!"))),
            Err(HashError::NotBase64)
        );
        assert_eq!(salted_password(&data(hash(""))), Err(HashError::NotBase64));
        assert_eq!(
            salted_password(&data(hash(&"A".repeat(2000)))),
            Err(HashError::NotBase64)
        );
    }
}
