//! What an inactive session holds back (pure): presence updates (only the latest from each
//! sender) and messages that are nothing but a chat state; anything else is important and
//! flushes what is held, in order, before it (XEP-0352 §4, Prosody's mod_csi_simple rules).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use tessera_plugin_api::xml::Element;

const CLIENT_NS: &str = "jabber:client";
const CHATSTATES_NS: &str = "http://jabber.org/protocol/chatstates";
/// Metadata that may sit beside a chat state without making the message content.
const METADATA_NS: [&str; 3] = ["urn:xmpp:hints", "urn:xmpp:sid:0", "urn:xmpp:delay"];

/// How an outgoing stanza is treated while the client is inactive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Can wait: held (a presence replaces the held one from the same sender).
    Hold,
    /// Must go now, after everything held.
    Important,
}

/// Classify an outgoing stanza.
pub fn classify(stanza: &Element) -> Class {
    match stanza.name.as_str() {
        // Availability updates wait; subscription requests, probes' answers with a type and
        // errors do not.
        "presence" if matches!(stanza.attr("type"), None | Some("unavailable")) => Class::Hold,
        "message" if chat_state_only(stanza) => Class::Hold,
        _ => Class::Important,
    }
}

/// A message that carries a chat state and only metadata beside it (XEP-0085 standalone
/// notification).
pub fn chat_state_only(message: &Element) -> bool {
    let mut state = false;
    for c in message.child_elements() {
        if c.ns == CHATSTATES_NS {
            state = true;
        } else if !(METADATA_NS.contains(&c.ns.as_str())
            || (c.name == "thread" && c.ns == CLIENT_NS))
        {
            return false;
        }
    }
    state
}

/// The held stanzas of one session, oldest first (as XML, so the state can be handed over).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    items: VecDeque<(String, Option<String>)>,
}

impl Held {
    /// Hold a stanza (its XML and, for presence, its sender): a presence replaces the one held
    /// from the same sender, which keeps its place no more (the newest goes last).
    pub fn hold(&mut self, xml: String, presence_from: Option<String>) {
        if let Some(from) = &presence_from {
            self.items.retain(|(_, f)| f.as_ref() != Some(from));
        }
        self.items.push_back((xml, presence_from));
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Everything held, oldest first; the queue is empty afterwards.
    pub fn take(&mut self) -> Vec<String> {
        self.items.drain(..).map(|(xml, _)| xml).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(from: &str, show: Option<&str>) -> Element {
        let p = Element::new("presence", CLIENT_NS).with_attr("from", from);
        match show {
            Some(s) => p.with_child(Element::new("show", CLIENT_NS).with_text(s)),
            None => p,
        }
    }

    #[test]
    fn classes_follow_the_content() {
        assert_eq!(classify(&presence("b@x/r", None)), Class::Hold);
        assert_eq!(
            classify(&presence("b@x/r", None).with_attr("type", "unavailable")),
            Class::Hold
        );
        assert_eq!(
            classify(&presence("b@x", None).with_attr("type", "subscribe")),
            Class::Important
        );
        let typing = Element::new("message", CLIENT_NS)
            .with_child(Element::new("composing", CHATSTATES_NS))
            .with_child(Element::new("thread", CLIENT_NS).with_text("t"));
        assert_eq!(classify(&typing), Class::Hold);
        let body = typing
            .clone()
            .with_child(Element::new("body", CLIENT_NS).with_text("hi"));
        assert_eq!(classify(&body), Class::Important);
        let receipt = Element::new("message", CLIENT_NS)
            .with_child(Element::new("received", "urn:xmpp:receipts"));
        assert_eq!(classify(&receipt), Class::Important);
        assert_eq!(classify(&Element::new("iq", CLIENT_NS)), Class::Important);
    }

    #[test]
    fn only_the_latest_presence_of_a_sender_is_held_and_order_is_kept() {
        let mut h = Held::default();
        h.hold("p1".into(), Some("b@x/r".into()));
        h.hold("typing".into(), None);
        h.hold("c1".into(), Some("c@x/r".into()));
        h.hold("p2".into(), Some("b@x/r".into()));
        assert_eq!(h.len(), 3);
        assert_eq!(h.take(), ["typing", "c1", "p2"]);
        assert!(h.is_empty());
    }
}
