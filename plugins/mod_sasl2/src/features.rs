//! The pre-authentication stream features: RFC 6120 `<mechanisms/>`, XEP-0388
//! `<authentication/>` with its `<inline/>` (XEP-0386 Bind 2 plus other modules' inline
//! features), and XEP-0440 `<sasl-channel-binding/>`.
//!
//! # Wire behaviour
//! * Channel binding is available on a stream when it is encrypted and the host computed
//!   `tls-exporter` (RFC 9266) or `tls-server-end-point` (RFC 5929; absent for Ed25519/Ed448
//!   certificates) data. Without it no `-PLUS` mechanism is offered or accepted.
//! * `<sasl-channel-binding/>` lists the available types (tls-server-end-point first) and is sent
//!   exactly when some `-PLUS` mechanism is offered.
//! * Hidden mechanisms (FAST's HT-*) are accepted in SASL2 but never listed; SASL2 and the legacy
//!   list are each sent only when they hold at least one listed mechanism.
//! * SCRAM-SHA-512(-PLUS) is offered only to a stream whose header names (`from`) an account
//!   of this domain that has a SHA-512 verifier, or no account (the host says which, in
//!   `StreamInfo::named_account`, and caches features by it). An account whose password
//!   predates SHA-512 verifiers gets one through XEP-0480's `UPGR-SCRAM-SHA-512`; until then a
//!   client that prefers the strongest offered hash (go-sendxmpp does) must not be offered a
//!   mechanism that account cannot pass. Unknown names are offered it like upgraded accounts,
//!   so the list tells nothing about names that do not exist, and a stream without `from`
//!   never gets it.
//! * `<authentication/>` lists the XEP-0480 upgrade tasks other modules perform
//!   (`sasl2-upgrades`), the same for every stream.

use tessera_plugin_api::protocol::{MechanismSpec, ScramHash, StreamInfo};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{Host, LogLevel};
use tessera_sasl::{CbType, ChannelBindings};

use crate::wire::{Profile, BIND2_NS, SASL2_NS, SASL_CB_NS, SASL_NS, UPGRADE_NS};

/// Whether `name` is a channel-binding (`-PLUS`) mechanism.
pub(crate) fn is_plus(name: &str) -> bool {
    name.ends_with("-PLUS")
}

/// The stream's channel-binding data in the mechanism crate's type (empty when not encrypted).
pub(crate) fn bindings(stream: &StreamInfo) -> ChannelBindings {
    if !stream.secure {
        return ChannelBindings::none();
    }
    ChannelBindings {
        tls_exporter: stream.channel_bindings.tls_exporter.clone(),
        tls_server_end_point: stream.channel_bindings.tls_server_end_point.clone(),
    }
}

/// The channel-binding types available on this stream, in advertisement order.
pub(crate) fn cb_types(stream: &StreamInfo) -> Vec<CbType> {
    bindings(stream).available()
}

/// Whether `-PLUS` mechanisms are offered on this stream; also the SCRAM downgrade check's
/// "server offers PLUS" flag, so the two can never disagree.
pub(crate) fn offers_plus(stream: &StreamInfo) -> bool {
    !cb_types(stream).is_empty()
}

/// The host's mechanism list for `profile` reduced to what this stream can use: `-PLUS` only with
/// channel binding, a declared `channel_binding` type only when available, and (legacy) no hidden
/// mechanisms. Order is kept.
pub(crate) fn usable(
    list: Vec<MechanismSpec>,
    stream: &StreamInfo,
    profile: Profile,
) -> Vec<MechanismSpec> {
    let types = cb_types(stream);
    list.into_iter()
        .filter(|m| !is_plus(&m.name) || !types.is_empty())
        .filter(|m| match &m.channel_binding {
            Some(name) => CbType::from_name(name).is_some_and(|t| types.contains(&t)),
            None => true,
        })
        .filter(|m| profile == Profile::Sasl2 || !m.hidden)
        .collect()
}

/// Whether a mechanism needs a SHA-512 verifier.
pub(crate) fn is_sha512(name: &str) -> bool {
    name.starts_with("SCRAM-SHA-512")
}

/// Whether SCRAM-SHA-512 is offered to this stream (see the module documentation): the host
/// says which verifiers the account the header names has.
pub(crate) fn sha512_offered(stream: &StreamInfo) -> bool {
    stream
        .named_account
        .as_ref()
        .is_some_and(|a| a.scram_hashes.contains(&ScramHash::Sha512))
}

/// The host's mechanism list for `profile`, usable on this stream ([`usable`], and SHA-512 only
/// where [`sha512_offered`]); empty (and logged) if the host cannot answer.
pub(crate) fn fetch(host: &Host, stream: &StreamInfo, profile: Profile) -> Vec<MechanismSpec> {
    match host.mechanisms(stream.clone(), profile) {
        Ok(list) => {
            let mut list = usable(list, stream, profile);
            if !sha512_offered(stream) {
                list.retain(|m| !is_sha512(&m.name));
            }
            list
        }
        Err(e) => {
            host.log(LogLevel::Warn, &format!("mechanism list unavailable: {e}"));
            Vec::new()
        }
    }
}

/// Whether `<sasl-channel-binding/>` is sent: some listed mechanism of either profile is
/// `-PLUS` and the stream has a type.
fn cb_listed(legacy: &[MechanismSpec], sasl2: &[MechanismSpec], cb_types: &[CbType]) -> bool {
    let plus_listed = legacy
        .iter()
        .chain(sasl2.iter().filter(|m| !m.hidden))
        .any(|m| is_plus(&m.name));
    plus_listed && !cb_types.is_empty()
}

/// What the features advertise for `profile`, as XEP-0474 hashes it: the listed (not hidden)
/// mechanisms of that profile's feature, and the channel-binding types if
/// `<sasl-channel-binding/>` is sent. Built by the same rules as [`build`], so the hash is of
/// exactly what the client was offered.
pub(crate) fn advertised(
    legacy: &[MechanismSpec],
    sasl2: &[MechanismSpec],
    cb_types: &[CbType],
    profile: Profile,
) -> (Vec<String>, Vec<&'static str>) {
    let list = if profile == Profile::Sasl2 {
        sasl2
    } else {
        legacy
    };
    let mechanisms = list
        .iter()
        .filter(|m| !m.hidden)
        .map(|m| m.name.clone())
        .collect();
    let types = if cb_listed(legacy, sasl2, cb_types) {
        cb_types.iter().map(|t| t.name()).collect()
    } else {
        Vec::new()
    };
    (mechanisms, types)
}

/// [`advertised`] for a stream, from the host's lists. The other profile's list matters only
/// to tell whether `<sasl-channel-binding/>` was sent, and only when this profile lists no
/// `-PLUS` mechanism while the stream has a type: so a SCRAM start usually asks the host once.
pub(crate) fn advertised_on(
    host: &Host,
    stream: &StreamInfo,
    profile: Profile,
) -> (Vec<String>, Vec<&'static str>) {
    let own = fetch(host, stream, profile);
    let types = cb_types(stream);
    let own_lists_plus = own.iter().any(|m| !m.hidden && is_plus(&m.name));
    let other = if types.is_empty() || own_lists_plus {
        Vec::new()
    } else {
        let other = match profile {
            Profile::Sasl2 => Profile::Rfc6120,
            _ => Profile::Sasl2,
        };
        fetch(host, stream, other)
    };
    let (legacy, sasl2) = match profile {
        Profile::Sasl2 => (&other, &own),
        _ => (&own, &other),
    };
    advertised(legacy, sasl2, &types, profile)
}

/// Everything the features are built from (the glue fetches it from the host).
#[derive(Debug, Clone, Default)]
pub(crate) struct Advertisement {
    /// Usable legacy mechanisms (see [`usable`]).
    pub(crate) legacy: Vec<MechanismSpec>,
    /// Usable SASL2 mechanisms, hidden ones included.
    pub(crate) sasl2: Vec<MechanismSpec>,
    /// Channel-binding types of the stream.
    pub(crate) cb_types: Vec<CbType>,
    /// Bind 2 inline features (`<feature var=…/>`).
    pub(crate) bind2_inline: Vec<Element>,
    /// Other SASL2 inline features (`<sm/>`, `<fast/>`).
    pub(crate) sasl2_inline: Vec<Element>,
    /// XEP-0480 upgrade tasks.
    pub(crate) upgrades: Vec<String>,
}

fn mechanism_list(name: &str, ns: &str, mechanisms: &[MechanismSpec]) -> Option<Element> {
    let mut el = Element::new(name, ns);
    for m in mechanisms.iter().filter(|m| !m.hidden) {
        el.push_child(Element::new("mechanism", ns).with_text(m.name.as_str()));
    }
    (!el.children.is_empty()).then_some(el)
}

/// Build the feature elements.
pub(crate) fn build(ad: Advertisement) -> Vec<Element> {
    let mut out = Vec::new();
    out.extend(mechanism_list("mechanisms", SASL_NS, &ad.legacy));
    if let Some(mut auth) = mechanism_list("authentication", SASL2_NS, &ad.sasl2) {
        let mut bind_inline = Element::new("inline", BIND2_NS);
        for feature in ad.bind2_inline {
            bind_inline.push_child(feature);
        }
        let mut inline = Element::new("inline", SASL2_NS)
            .with_child(Element::new("bind", BIND2_NS).with_child(bind_inline));
        for feature in ad.sasl2_inline {
            inline.push_child(feature);
        }
        auth.push_child(inline);
        let mut listed = Vec::new();
        for task in ad.upgrades {
            if !listed.contains(&task) {
                auth.push_child(Element::new("upgrade", UPGRADE_NS).with_text(task.as_str()));
                listed.push(task);
            }
        }
        out.push(auth);
    }
    if cb_listed(&ad.legacy, &ad.sasl2, &ad.cb_types) {
        let mut cb = Element::new("sasl-channel-binding", SASL_CB_NS);
        for t in &ad.cb_types {
            cb.push_child(Element::new("channel-binding", SASL_CB_NS).with_attr("type", t.name()));
        }
        out.push(cb);
    }
    out
}

/// Replies of a query hook that answers `Vec<Element>`; malformed replies are skipped.
pub(crate) fn elements_from_replies(replies: Vec<Vec<u8>>) -> Vec<Element> {
    replies
        .iter()
        .filter_map(|reply| {
            tessera_plugin_api::wire::decode::<Vec<Element>>("hook reply", reply).ok()
        })
        .flatten()
        .collect()
}

#[cfg(test)]
#[path = "features_tests.rs"]
mod tests;
