//! Answers to stanzas, built the same way by the host and by modules: the `result` of an IQ
//! (RFC 6120 §8.2.3) and the stanza error that answers or bounces a stanza (RFC 6120 §8.3).
//!
//! ```
//! use tessera_plugin_api::reply;
//! use tessera_plugin_api::xml::Element;
//! use tessera_plugin_api::StanzaCondition;
//!
//! let iq = Element::new("iq", "jabber:client")
//!     .with_attr("type", "get")
//!     .with_attr("id", "q1")
//!     .with_attr("from", "alice@example.org/phone");
//! let result = reply::iq_result(&iq, "example.org");
//! assert_eq!(
//!     result.to_xml_in("jabber:client"),
//!     "<iq type='result' id='q1' to='alice@example.org/phone' from='example.org'/>"
//! );
//! let error = reply::error(&iq, StanzaCondition::ItemNotFound, None, "example.org").unwrap();
//! assert!(error.to_xml_in("jabber:client").contains("<item-not-found xmlns="));
//! ```

use crate::conditions::{ErrorType, StanzaCondition};
use crate::xml::Element;

/// The namespace of client stanzas.
pub const CLIENT_NS: &str = "jabber:client";
/// The namespace of stanza error conditions and their `<text/>`.
pub const STANZAS_NS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// A stanza of the same kind addressed back: `id` kept, `to` the sender, `from` the addressee
/// (`domain` when the stanza had no `to`, i.e. it was addressed to the server).
fn answer(stanza: &Element, kind: &str, domain: &str) -> Element {
    let mut answer = Element::new(&stanza.name, CLIENT_NS).with_attr("type", kind);
    if let Some(id) = stanza.attr("id") {
        answer.set_attr("id", id);
    }
    if let Some(from) = stanza.attr("from") {
        answer.set_attr("to", from);
    }
    answer.set_attr("from", stanza.attr("to").unwrap_or(domain));
    answer
}

/// The empty `result` of an IQ request; add the payload with [`Element::with_child`].
pub fn iq_result(iq: &Element, domain: &str) -> Element {
    answer(iq, "result", domain)
}

/// The stanza error answering `stanza` with `condition` and its usual type
/// ([`StanzaCondition::default_type`]), with an optional human-readable `<text/>` (escaped when
/// written, like every value). `None` for an error or an IQ result: those are never answered,
/// which is what keeps two entities from bouncing errors at each other forever.
pub fn error(
    stanza: &Element,
    condition: StanzaCondition,
    text: Option<&str>,
    domain: &str,
) -> Option<Element> {
    error_typed(stanza, condition.default_type(), condition, text, domain)
}

/// [`error`] with an explicit error type (e.g. `wait` for a transient store failure).
pub fn error_typed(
    stanza: &Element,
    kind: ErrorType,
    condition: StanzaCondition,
    text: Option<&str>,
    domain: &str,
) -> Option<Element> {
    if matches!(stanza.attr("type"), Some("error" | "result")) {
        return None;
    }
    let mut error = Element::new("error", CLIENT_NS)
        .with_attr("type", kind.as_str())
        .with_child(Element::new(condition.as_str(), STANZAS_NS));
    if let Some(text) = text {
        error.push_child(
            Element::new("text", STANZAS_NS)
                .with_attr("xml:lang", "en")
                .with_text(text),
        );
    }
    Some(answer(stanza, "error", domain).with_child(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: Option<&str>) -> Element {
        let mut m = Element::new("message", CLIENT_NS)
            .with_attr("id", "m1")
            .with_attr("from", "alice@example.org/phone")
            .with_attr("to", "bob@example.org");
        if let Some(kind) = kind {
            m.set_attr("type", kind);
        }
        m
    }

    #[test]
    fn an_error_goes_back_to_the_sender_from_the_addressee_with_the_usual_type() {
        let e = error(
            &message(Some("chat")),
            StanzaCondition::ServiceUnavailable,
            Some("a <b> & 'c'"),
            "example.org",
        )
        .expect("answered");
        assert_eq!(
            e.to_xml_in(CLIENT_NS),
            "<message type='error' id='m1' to='alice@example.org/phone' from='bob@example.org'>\
             <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>a &lt;b&gt; &amp; 'c'</text>\
             </error></message>"
        );
        let wait = error_typed(
            &message(None),
            ErrorType::Wait,
            StanzaCondition::InternalServerError,
            None,
            "example.org",
        )
        .expect("answered");
        assert_eq!(
            wait.child("error", CLIENT_NS).and_then(|e| e.attr("type")),
            Some("wait")
        );
    }

    #[test]
    fn errors_and_results_are_never_answered() {
        for kind in ["error", "result"] {
            assert!(error(
                &message(Some(kind)),
                StanzaCondition::BadRequest,
                None,
                "example.org"
            )
            .is_none());
        }
    }

    #[test]
    fn an_iq_to_the_server_is_answered_from_the_domain() {
        let iq = Element::new("iq", CLIENT_NS)
            .with_attr("type", "get")
            .with_attr("id", "i1");
        assert_eq!(
            iq_result(&iq, "example.org").to_xml_in(CLIENT_NS),
            "<iq type='result' id='i1' from='example.org'/>"
        );
    }
}
