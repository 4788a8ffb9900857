//! The XML and stream glue around the HT-SHA-256-* mechanisms (draft-schmaus-kitten-sasl-ht-09
//! via `tessera_sasl::ht`) and the XEP-0484 elements: which mechanisms a stream can serve, the
//! `<fast/>` advertisement, the inline children of `<authenticate/>` and the `<token/>`.
//!
//! # Wire behaviour
//! * `<fast xmlns='urn:xmpp:fast:0'>` is advertised on every encrypted stream and lists
//!   HT-SHA-256-EXPR when the connection has `tls-exporter` data, HT-SHA-256-ENDP when it has
//!   `tls-server-end-point` data, and HT-SHA-256-NONE always, in that order. No `tls-0rtt`.
//! * `<fast invalidate='true'|'1'/>` asks for invalidation; `count` is parsed and ignored.
//! * A user-agent id is used when it has 1–128 characters (mod_sasl2's rule); a token is issued
//!   only to an id shaped like a UUID (8-4-4-4-12 hex digits, any case).
//! * Account names are SASLprep'd with the localpart rules and lower-cased, as mod_sasl2 does.

use tessera_plugin_api::protocol::StreamInfo;
use tessera_plugin_api::xml::Element;
use tessera_sasl::ht::HtMechanism;
use tessera_sasl::{prepare_username, ChannelBindings};

/// XEP-0484 namespace.
pub(crate) const FAST_NS: &str = "urn:xmpp:fast:0";
/// XEP-0388 namespace.
pub(crate) const SASL2_NS: &str = "urn:xmpp:sasl:2";
/// Longest used `<user-agent id>`, in characters (as mod_sasl2).
const MAX_USER_AGENT_ID: usize = 128;

fn bindings(stream: &StreamInfo) -> ChannelBindings {
    ChannelBindings {
        tls_exporter: stream.channel_bindings.tls_exporter.clone(),
        tls_server_end_point: stream.channel_bindings.tls_server_end_point.clone(),
    }
}

/// The HT mechanisms this stream can serve (none unless encrypted), strongest first.
pub(crate) fn offered(stream: &StreamInfo) -> Vec<HtMechanism> {
    if !stream.secure {
        return Vec::new();
    }
    let cb = bindings(stream);
    HtMechanism::ALL
        .into_iter()
        .filter(|m| m.cb_data(&cb).is_ok())
        .collect()
}

/// The cb-data of `mechanism` on this stream (empty for NONE); `None` when unavailable.
pub(crate) fn cb_data(mechanism: HtMechanism, stream: &StreamInfo) -> Option<Vec<u8>> {
    if !stream.secure {
        return None;
    }
    mechanism
        .cb_data(&bindings(stream))
        .ok()
        .map(<[u8]>::to_vec)
}

/// `<fast xmlns='urn:xmpp:fast:0'><mechanism>…</mechanism>…</fast>` for SASL2 `<inline/>`.
pub(crate) fn advertisement(stream: &StreamInfo) -> Option<Element> {
    let mechanisms = offered(stream);
    if mechanisms.is_empty() {
        return None;
    }
    let mut fast = Element::new("fast", FAST_NS);
    for m in mechanisms {
        fast.push_child(Element::new("mechanism", FAST_NS).with_text(m.name()));
    }
    Some(fast)
}

/// The `<fast/>` child of an `<authenticate/>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FastRequest {
    /// `invalidate='true'` or `'1'`.
    pub(crate) invalidate: bool,
    /// `count`, parsed and otherwise ignored (no TLS 0-RTT).
    pub(crate) count: Option<u64>,
}

/// The `<fast xmlns='urn:xmpp:fast:0'/>` of an `<authenticate/>`, if present.
pub(crate) fn fast_request(authenticate: &Element) -> Option<FastRequest> {
    let fast = authenticate.child("fast", FAST_NS)?;
    Some(FastRequest {
        invalidate: matches!(fast.attr("invalidate").map(str::trim), Some("true" | "1")),
        count: fast.attr("count").and_then(|c| c.trim().parse().ok()),
    })
}

/// The mechanism named by `<request-token xmlns='urn:xmpp:fast:0' mechanism='…'/>`, if any.
pub(crate) fn requested_mechanism(authenticate: &Element) -> Option<&str> {
    authenticate
        .child("request-token", FAST_NS)?
        .attr("mechanism")
        .map(str::trim)
}

/// The `<user-agent id>` of an `<authenticate/>` if it has 1–128 characters.
pub(crate) fn user_agent_id(authenticate: &Element) -> Option<String> {
    let id = authenticate.child("user-agent", SASL2_NS)?.attr("id")?;
    (1..=MAX_USER_AGENT_ID)
        .contains(&id.chars().count())
        .then(|| id.to_owned())
}

/// Whether `id` is shaped like a UUID: 8-4-4-4-12 hexadecimal digits.
pub(crate) fn is_uuid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The form account names are stored in: SASLprep with the localpart rules, then the host's
/// canonical form (`tessera_plugin_api::names`); `None` when no account can have the name.
pub(crate) fn canonical_user(raw: &str) -> Option<String> {
    prepare_username(raw)
        .ok()
        .and_then(|u| tessera_plugin_api::names::canonical_account(&u))
}

/// Whether the stream header `from` is compatible with the account `user`: absent, naming no
/// account (no localpart), or naming exactly that account.
pub(crate) fn from_matches(from: Option<&str>, user: &str) -> bool {
    let Some(from) = from else {
        return true;
    };
    let bare = from.split('/').next().unwrap_or_default();
    match bare.split_once('@') {
        Some((local, _)) => canonical_user(local).as_deref() == Some(user),
        None => true,
    }
}

/// `<token xmlns='urn:xmpp:fast:0' token='…' expiry='…'/>`.
pub(crate) fn token_element(token: &str, expiry: &str) -> Element {
    Element::new("token", FAST_NS)
        .with_attr("token", token)
        .with_attr("expiry", expiry)
}

#[cfg(test)]
#[path = "ht_tests.rs"]
mod tests;
