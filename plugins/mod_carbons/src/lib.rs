//! # mod_carbons
//!
//! XEP-0280 Message Carbons (`urn:xmpp:carbons:2`): a session that enabled carbons (by IQ, or
//! inline in Bind 2 with `<enable xmlns='urn:xmpp:carbons:2'/>`) gets a `<sent/>` copy of each
//! eligible message another session of its account sends, and a `<received/>` copy of each
//! eligible message to the account that the delivery rules gave to other sessions, so every
//! device shows the whole conversation.
//!
//! * Eligible (XEP-0280 §6.1): `chat`; `normal` with a body; anything carrying receipts, chat
//!   states or chat markers; XEP-0249 and mediated invitations. Never: `groupchat`, errors,
//!   headlines without those payloads, a private message from a MUC occupant (the room sends
//!   it to every joined client), a message already carrying a carbon, or one marked
//!   `<private xmlns='urn:xmpp:carbons:2'/>` or `<no-copy xmlns='urn:xmpp:hints'/>`. Marked
//!   messages are delivered unchanged (the current XEP no longer strips `<private/>`).
//! * Who gets copies: for a sent message, every carbons-enabled session of the sender but the
//!   sending one; for a received one, every carbons-enabled session the message did not go to
//!   (the host's bare-JID rule, `bare_message_targets`, or the addressed full JID). A message
//!   nobody took (stored offline, bounced) makes no copies.
//! * The state is the module's, per session: it survives a hot swap and a stream-management
//!   resumption, and ends with the session. Enabling and disabling may be repeated.
//! * Enabling on a stream that has no bound resource gets `<not-allowed/>`.

use std::collections::HashSet;
use std::sync::Mutex;

use tessera_plugin_api::events::{self, hooks, priority, Bind2Bound, SessionEvent, SessionResumed};
use tessera_plugin_api::jid::Jid;
use tessera_plugin_api::protocol::{HookSpec, IqRequest, Manifest, Registrations, StreamInfo};
use tessera_plugin_api::stanza::{
    bare_message_targets, SessionView, StanzaHook, StanzaKind, StanzaPoint,
};
use tessera_plugin_api::sync::locked;
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{
    reply, wire, Config, Event, EventFlow, Host, Module, PluginError, Stanza, StanzaCondition,
    Verdict,
};

/// The carbons namespace.
pub const NS: &str = "urn:xmpp:carbons:2";
const FORWARD_NS: &str = "urn:xmpp:forward:0";
const HINTS_NS: &str = "urn:xmpp:hints";
const CLIENT_NS: &str = "jabber:client";
const MUC_USER_NS: &str = "http://jabber.org/protocol/muc#user";
/// Payload namespaces that make a message worth copying whatever its type (§6.1 rule 3).
const IM_PAYLOADS: [&str; 3] = [
    "urn:xmpp:receipts",
    "http://jabber.org/protocol/chatstates",
    "urn:xmpp:chat-markers:0",
];
const STATE_VERSION: u8 = 1;

/// The hooks, by index in [`Registrations::stanza_hooks`].
mod hook {
    /// A message a session of the account sends.
    pub(crate) const SENT: u32 = 0;
}

/// Which direction a message goes, for the eligibility rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Sent by the account.
    Sent,
    /// Received by the account.
    Received,
}

/// Whether a message is copied (XEP-0280 §6.1, §9).
pub fn eligible(message: &Element, direction: Direction) -> bool {
    let kind = message.attr("type").unwrap_or("normal");
    if matches!(kind, "groupchat" | "error") {
        return false;
    }
    let children = || message.child_elements();
    if children().any(|c| {
        (c.ns == NS && matches!(c.name.as_str(), "private" | "sent" | "received"))
            || (c.ns == HINTS_NS && c.name == "no-copy")
    }) {
        return false;
    }
    let invitation = children().any(|c| {
        c.ns == "jabber:x:conference"
            || (c.ns == MUC_USER_NS && c.child("invite", MUC_USER_NS).is_some())
    });
    if invitation {
        return true;
    }
    // A private message from a room occupant reaches every joined client already.
    if direction == Direction::Received && children().any(|c| c.ns == MUC_USER_NS) {
        return false;
    }
    kind == "chat"
        || (kind == "normal" && message.child("body", CLIENT_NS).is_some())
        || children().any(|c| IM_PAYLOADS.contains(&c.ns.as_str()))
}

/// The copy of `message` for the session `to` of `account_bare`: `<sent/>` or `<received/>`
/// with the original unchanged inside `<forwarded/>` (§7, §8).
pub fn wrap(message: &Element, direction: Direction, account_bare: &str, to: &str) -> Element {
    let name = match direction {
        Direction::Sent => "sent",
        Direction::Received => "received",
    };
    Element::new("message", CLIENT_NS)
        .with_attr("from", account_bare)
        .with_attr("to", to)
        .with_attr("type", message.attr("type").unwrap_or("normal"))
        .with_child(
            Element::new(name, NS)
                .with_child(Element::new("forwarded", FORWARD_NS).with_child(message.clone())),
        )
}

/// The module: the streams with carbons enabled.
#[derive(Debug)]
pub struct Carbons {
    domain: String,
    enabled: Mutex<HashSet<u64>>,
}

impl Module for Carbons {
    const NAME: &'static str = "carbons";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "XEP-0280 Message Carbons, by IQ or inline in Bind 2".into(),
            ..Manifest::default()
        }
    }

    fn init(host: &Host, _config: &Config, restore: Option<&[u8]>) -> Result<Self, PluginError> {
        let enabled = match restore {
            Some(bytes) => wire::decode_state("carbons", STATE_VERSION, bytes)?,
            None => HashSet::new(),
        };
        Ok(Self {
            domain: host.host_info()?.domain,
            enabled: Mutex::new(enabled),
        })
    }

    fn registrations(&self) -> Registrations {
        let messages = |point| {
            StanzaHook::at(point)
                .kind(StanzaKind::Message)
                .priority(priority::LATE)
        };
        Registrations {
            iq_namespaces: vec![NS.into()],
            disco_features: vec![NS.into()],
            // In the order of `hook`.
            stanza_hooks: vec![
                messages(StanzaPoint::ClientIn),
                messages(StanzaPoint::ToBare),
                messages(StanzaPoint::ToFull),
            ],
            hooks: vec![
                HookSpec::new(hooks::BIND2_INLINE_FEATURES, priority::NORMAL),
                HookSpec::new(hooks::BIND2_BOUND, priority::NORMAL),
            ],
            events: vec![
                HookSpec::new(events::SESSION_CLOSED, priority::NORMAL),
                HookSpec::new(events::SESSION_RESUMED, priority::NORMAL),
            ],
            ..Registrations::default()
        }
    }

    fn iq(&self, _host: &Host, request: IqRequest) -> Result<Option<Element>, PluginError> {
        let iq = &request.stanza;
        let stream = &request.stream;
        let wanted = if iq.child("enable", NS).is_some() {
            true
        } else if iq.child("disable", NS).is_some() {
            false
        } else {
            return Ok(reply::error(
                iq,
                StanzaCondition::BadRequest,
                None,
                &self.domain,
            ));
        };
        if iq.attr("type") != Some("set") {
            return Ok(reply::error(
                iq,
                StanzaCondition::BadRequest,
                None,
                &self.domain,
            ));
        }
        let (Some(user), Some(full)) = (stream.user.as_deref(), stream.jid.as_deref()) else {
            return Ok(reply::error(
                iq,
                StanzaCondition::NotAllowed,
                Some("bind a resource first"),
                &self.domain,
            ));
        };
        // Only for the account's own server (§4): no `to`, or the own bare JID.
        let own = format!("{user}@{}", self.domain);
        if iq
            .attr("to")
            .is_some_and(|to| Jid::parse(to).map(|j| j.to_string()).as_deref() != Ok(own.as_str()))
        {
            return Ok(reply::error(
                iq,
                StanzaCondition::NotAllowed,
                None,
                &self.domain,
            ));
        }
        self.set(stream.id, wanted);
        let mut result = reply::iq_result(iq, &self.domain);
        result.set_attr("from", &own);
        result.set_attr("to", full);
        Ok(Some(result))
    }

    fn stanza(&self, host: &Host, stanza: Stanza<'_>) -> Result<Verdict, PluginError> {
        let header = stanza.header;
        let Some(account) = header.account else {
            return Ok(Verdict::Pass);
        };
        // Nothing to do for an account with no session that wants copies; with none enabled
        // anywhere, not even the session list is fetched (the common message).
        if locked(&self.enabled).is_empty() {
            return Ok(Verdict::Pass);
        }
        let sessions = host.account_sessions(account)?;
        let wanting: Vec<&SessionView> = {
            let enabled = locked(&self.enabled);
            sessions
                .iter()
                .filter(|s| enabled.contains(&s.stream))
                .collect()
        };
        if wanting.is_empty() {
            return Ok(Verdict::Pass);
        }
        let message = stanza.element()?;
        let own = format!("{account}@{}", self.domain);
        let bare_of = |jid: Option<&str>| jid.and_then(|j| Jid::parse(j).ok()).map(|j| j.bare());
        let (direction, skip): (Direction, Vec<u64>) = if header.hook == hook::SENT {
            let mut skip: Vec<u64> = header.session.into_iter().collect();
            // To one of its own resources: the addressed ones get the original, not a copy.
            if bare_of(header.to).as_deref() == Some(own.as_str()) {
                let to = header.to.unwrap_or_default();
                let addressed: Vec<u64> = sessions
                    .iter()
                    .filter(|s| s.full_jid.as_deref() == Some(to))
                    .map(|s| s.stream)
                    .collect();
                // To the bare JID, or to a resource that is not there (the host then delivers
                // by the bare-JID rule): those the rule picks get the original.
                let by_rule = addressed.is_empty();
                skip.extend(addressed);
                if by_rule {
                    skip.extend(bare_message_targets(
                        sessions.iter().map(|s| (s.stream, s.availability())),
                        message.attr("type"),
                    ));
                }
            }
            (Direction::Sent, skip)
        } else if bare_of(header.from).as_deref() == Some(own.as_str()) {
            // From the account itself: its sent copies are made on the way out.
            return Ok(Verdict::Pass);
        } else {
            let took = match header.session {
                // To a bound full JID: that session.
                Some(addressed) => vec![addressed],
                // To the bare JID (or an absent resource): the host's rule.
                None => bare_message_targets(
                    sessions.iter().map(|s| (s.stream, s.availability())),
                    message.attr("type"),
                ),
            };
            if took.is_empty() {
                // Stored or bounced: nobody read it, so there is nothing to mirror.
                return Ok(Verdict::Pass);
            }
            (Direction::Received, took)
        };
        if !eligible(&message, direction) {
            return Ok(Verdict::Pass);
        }
        for s in wanting {
            if skip.contains(&s.stream) {
                continue;
            }
            if let Some(full) = &s.full_jid {
                host.send_to_session(s.stream, wrap(&message, direction, &own, full))?;
            }
        }
        Ok(Verdict::Pass)
    }

    fn hook(
        &self,
        _host: &Host,
        name: &str,
        payload: &[u8],
    ) -> Result<Option<Vec<u8>>, PluginError> {
        match name {
            hooks::BIND2_INLINE_FEATURES => {
                let _: StreamInfo = wire::decode(name, payload)?;
                events::bind2_inline_feature(NS).map(Some)
            }
            hooks::BIND2_BOUND => {
                let bound: Bind2Bound = wire::decode(name, payload)?;
                if bound.bind.child("enable", NS).is_some() {
                    // §XEP-0386: enabled inline, nothing to answer in <bound/>.
                    self.set(bound.stream.id, true);
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn on_event(&self, _host: &Host, event: &Event) -> Result<EventFlow, PluginError> {
        match event.name {
            events::SESSION_CLOSED => {
                let closed: SessionEvent = event.decode()?;
                self.set(closed.stream_id, false);
            }
            events::SESSION_RESUMED => {
                let resumed: SessionResumed = event.decode()?;
                let mut enabled = locked(&self.enabled);
                if enabled.remove(&resumed.previous_stream_id) {
                    enabled.insert(resumed.stream_id);
                }
            }
            _ => {}
        }
        Ok(EventFlow::Continue)
    }

    fn save_state(&self) -> Result<Vec<u8>, PluginError> {
        wire::encode_state(STATE_VERSION, &*locked(&self.enabled))
    }
}

impl Carbons {
    fn set(&self, stream: u64, on: bool) {
        let mut enabled = locked(&self.enabled);
        if on {
            enabled.insert(stream);
        } else {
            enabled.remove(&stream);
        }
    }
}

tessera_plugin_api::export_module!(Carbons);

#[cfg(test)]
mod tests;
