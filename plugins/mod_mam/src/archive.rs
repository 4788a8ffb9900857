//! What is archived, and the XEP-0359 `<stanza-id/>` that tells the client under which id,
//! sans IO.

use tessera_plugin_api::jid::Jid;
use tessera_plugin_api::xml::{Element, Node};

use crate::{CLIENT_NS, NS};

/// XEP-0359 unique and stable stanza ids.
pub const SID_NS: &str = "urn:xmpp:sid:0";
const HINTS_NS: &str = "urn:xmpp:hints";
const CARBONS_NS: &str = "urn:xmpp:carbons:2";
/// Encrypted payloads that stand for a body (OMEMO, OpenPGP for XMPP, legacy OpenPGP).
const ENCRYPTED: [(&str, &str); 4] = [
    ("encrypted", "eu.siacs.conversations.axolotl"),
    ("encrypted", "urn:xmpp:omemo:2"),
    ("openpgp", "urn:xmpp:openpgp:0"),
    ("x", "jabber:x:encrypted"),
];

/// Whether a message belongs in the archive: a `chat` or `normal` message with something a
/// person wrote (a body, or an encrypted payload), or one the sender marked `<store/>`; never
/// one marked `<no-store/>` or `<no-permanent-store/>` (XEP-0334), a carbon copy, an archive
/// result, an error, a headline or a groupchat message (a room keeps its own archive).
pub fn archivable(message: &Element) -> bool {
    if !matches!(message.attr("type").unwrap_or("normal"), "chat" | "normal") {
        return false;
    }
    let has = |name: &str, ns: &str| message.child(name, ns).is_some();
    if has("no-store", HINTS_NS) || has("no-permanent-store", HINTS_NS) {
        return false;
    }
    if has("sent", CARBONS_NS) || has("received", CARBONS_NS) || has("result", NS) {
        return false;
    }
    has("body", CLIENT_NS)
        || has("store", HINTS_NS)
        || ENCRYPTED.iter().any(|(name, ns)| has(name, ns))
}

/// `message` without any `<stanza-id/>` claiming to be by `by` (a canonical bare JID) in any
/// spelling of it (XEP-0359 §3.1: a server must remove those it did not put there, or a client
/// would trust a forged id).
pub fn strip_forged(message: &Element, by: &str) -> Option<Element> {
    let claims = |b: &str| Jid::parse(b).is_ok_and(|j| j.bare() == by);
    let forged = |n: &Node| {
        matches!(n, Node::Element(e) if e.name == "stanza-id" && e.ns == SID_NS
            && e.attr("by").is_some_and(claims))
    };
    if !message.children.iter().any(forged) {
        return None;
    }
    let mut clean = message.clone();
    clean.children.retain(|n| !forged(n));
    Some(clean)
}

/// `message` with our `<stanza-id id by/>` (any it carried by `by` removed first).
pub fn stamped(message: &Element, id: &str, by: &str) -> Element {
    let mut m = strip_forged(message, by).unwrap_or_else(|| message.clone());
    m.push_child(
        Element::new("stanza-id", SID_NS)
            .with_attr("id", id)
            .with_attr("by", by),
    );
    m
}
