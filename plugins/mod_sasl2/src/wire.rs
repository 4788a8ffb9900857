//! The XML of both SASL profiles: namespaces, classification of incoming nonzas, base64 payload
//! rules, and builders for everything the module sends (XEP-0388 §2, RFC 6120 §6.4, §6.5).
//!
//! # Wire behaviour
//! * SASL2 (`urn:xmpp:sasl:2`) has no `=` convention: an empty element is a zero-length payload
//!   and `<initial-response/>` absent means "no initial response".
//! * RFC 6120 (`urn:ietf:params:xml:ns:xmpp-sasl`): a single `=` is a zero-length payload; an
//!   empty `<auth/>` has no initial response.
//! * Incoming base64 may contain XML whitespace anywhere; anything else invalid is
//!   `<incorrect-encoding/>`.
//! * Failure conditions are always in the `xmpp-sasl` namespace; `<text>` is in the profile's
//!   namespace (SASL2: `urn:xmpp:sasl:2`, legacy: `xmpp-sasl`).

use tessera_plugin_api::xml::Element;
use tessera_sasl::{decode_base64_lenient, encode_base64};

/// XEP-0388 namespace.
pub(crate) const SASL2_NS: &str = "urn:xmpp:sasl:2";
/// RFC 6120 SASL namespace (also the namespace of failure conditions in SASL2).
pub(crate) const SASL_NS: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// XEP-0386 Bind 2 namespace.
pub(crate) const BIND2_NS: &str = "urn:xmpp:bind:0";
/// XEP-0440 channel-binding capability namespace.
pub(crate) const SASL_CB_NS: &str = "urn:xmpp:sasl-cb:0";
/// XEP-0480 SASL upgrade tasks.
pub(crate) const UPGRADE_NS: &str = "urn:xmpp:sasl:upgrade:0";

/// Longest accepted `<user-agent id>`, in characters.
pub(crate) const MAX_USER_AGENT_ID: usize = 128;

/// Which SASL profile an element or exchange belongs to (the API's enum).
pub(crate) use tessera_plugin_api::protocol::SaslProfile as Profile;
use tessera_plugin_api::SaslCondition;

/// A classified incoming nonza.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Incoming<'a> {
    /// `<authenticate/>` (SASL2) or `<auth/>` (legacy): start an exchange.
    Initiate(Profile, &'a Element),
    /// `<response/>` of either profile.
    Response(Profile, &'a Element),
    /// `<abort/>` of either profile.
    Abort(Profile),
    /// SASL2 `<next task='…'/>`.
    Next(&'a Element),
    /// SASL2 `<task-data/>`.
    TaskData(&'a Element),
    /// Anything else.
    Other,
}

/// Classify an element routed to the module.
pub(crate) fn classify(el: &Element) -> Incoming<'_> {
    let profile = match el.ns.as_str() {
        SASL2_NS => Profile::Sasl2,
        SASL_NS => Profile::Rfc6120,
        _ => return Incoming::Other,
    };
    match (profile, el.name.as_str()) {
        (Profile::Sasl2, "authenticate") | (Profile::Rfc6120, "auth") => {
            Incoming::Initiate(profile, el)
        }
        (_, "response") => Incoming::Response(profile, el),
        (_, "abort") => Incoming::Abort(profile),
        (Profile::Sasl2, "next") => Incoming::Next(el),
        (Profile::Sasl2, "task-data") => Incoming::TaskData(el),
        _ => Incoming::Other,
    }
}

/// The payload could not be decoded (`<incorrect-encoding/>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadEncoding;

/// Decode the base64 text of `<response>`, `<auth>` or `<initial-response>`.
pub(crate) fn decode_payload(profile: Profile, text: &str) -> Result<Vec<u8>, BadEncoding> {
    if profile == Profile::Rfc6120 && text.trim() == "=" {
        return Ok(Vec::new());
    }
    decode_base64_lenient(text).map_err(|_| BadEncoding)
}

/// The initial response of an `<authenticate/>` or `<auth/>`, `None` when absent.
pub(crate) fn initial_response(
    profile: Profile,
    el: &Element,
) -> Result<Option<Vec<u8>>, BadEncoding> {
    match profile {
        Profile::Sasl2 => el
            .child("initial-response", SASL2_NS)
            .map(|ir| decode_payload(profile, &ir.text()))
            .transpose(),
        Profile::Rfc6120 => {
            let text = el.text();
            if text.trim().is_empty() {
                Ok(None)
            } else {
                decode_payload(profile, &text).map(Some)
            }
        }
    }
}

/// The `<user-agent id>` of an `<authenticate/>`, if it has 1 to [`MAX_USER_AGENT_ID`]
/// characters; a longer or empty id is treated as absent.
pub(crate) fn user_agent_id(el: &Element) -> Option<String> {
    let id = el.child("user-agent", SASL2_NS)?.attr("id")?;
    let len = id.chars().count();
    (1..=MAX_USER_AGENT_ID)
        .contains(&len)
        .then(|| id.to_owned())
}

/// Encode a payload for the wire (legacy: `=` for zero length).
pub(crate) fn encode_payload(profile: Profile, data: &[u8]) -> String {
    if data.is_empty() && profile == Profile::Rfc6120 {
        "=".to_owned()
    } else {
        encode_base64(data)
    }
}

/// `<challenge/>` in the profile's namespace.
pub(crate) fn challenge(profile: Profile, data: &[u8]) -> Element {
    Element::new("challenge", profile.ns()).with_text(encode_payload(profile, data))
}

/// `<failure/>` with one condition, optional `<text>` and an optional application element.
pub(crate) fn failure(
    profile: Profile,
    condition: SaslCondition,
    text: Option<&str>,
    application: Option<Element>,
) -> Element {
    let mut el =
        Element::new("failure", profile.ns()).with_child(Element::new(condition.as_str(), SASL_NS));
    if let Some(text) = text.filter(|t| !t.is_empty()) {
        el.push_child(
            Element::new("text", profile.ns())
                .with_attr("xml:lang", "en")
                .with_text(text),
        );
    }
    if let Some(app) = application {
        el.push_child(app);
    }
    el
}

/// RFC 6120 `<success/>`, with the additional data as text (`=` when zero-length).
pub(crate) fn legacy_success(additional_data: Option<&[u8]>) -> Element {
    let el = Element::new("success", SASL_NS);
    match additional_data {
        Some(data) => el.with_text(encode_payload(Profile::Rfc6120, data)),
        None => el,
    }
}

/// `<additional-data/>` (SASL2).
fn additional_data(data: &[u8]) -> Element {
    Element::new("additional-data", SASL2_NS).with_text(encode_base64(data))
}

/// SASL2 `<success/>`: additional data, authorization identifier, then `extra` children.
pub(crate) fn sasl2_success(
    additional: Option<&[u8]>,
    authorization_identifier: &str,
    extra: Vec<Element>,
) -> Element {
    let mut el = Element::new("success", SASL2_NS);
    if let Some(data) = additional {
        el.push_child(additional_data(data));
    }
    el.push_child(
        Element::new("authorization-identifier", SASL2_NS).with_text(authorization_identifier),
    );
    for child in extra {
        el.push_child(child);
    }
    el
}

/// SASL2 `<continue/>` offering `tasks` (XEP-0388 §2.3).
pub(crate) fn continue_tasks(additional: Option<&[u8]>, tasks: &[String]) -> Element {
    let mut el = Element::new("continue", SASL2_NS);
    if let Some(data) = additional {
        el.push_child(additional_data(data));
    }
    let mut list = Element::new("tasks", SASL2_NS);
    for task in tasks {
        list.push_child(Element::new("task", SASL2_NS).with_text(task.as_str()));
    }
    el.push_child(list);
    el
}

/// SASL2 `<task-data/>` carrying `children`.
pub(crate) fn task_data(children: Vec<Element>) -> Element {
    let mut el = Element::new("task-data", SASL2_NS);
    for child in children {
        el.push_child(child);
    }
    el
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
