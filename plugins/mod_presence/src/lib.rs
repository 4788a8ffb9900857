//! # mod_presence
//!
//! RFC 6121 §4 presence. A session's broadcast presence (no `to`) sets its availability and
//! priority for delivery (§8.5), goes to the contacts subscribed to the account (`from` or
//! `both`, read from the roster module through `roster-contacts`) and to the account's
//! available resources, the sender included. The initial presence also probes the contacts the
//! account is subscribed to (`to` or `both`) and shows the new resource its siblings. Probes
//! are answered from each available resource's last presence, or `unavailable`, or
//! `unsubscribed` to a prober without a subscription. Directed presence to someone who does not
//! see the broadcasts is remembered and undone (`unavailable`) when the session goes
//! unavailable, cleanly or not. Presence to a bare JID reaches the available resources only.
//!
//! ## Behaviour worth knowing
//! * Without a roster module there are no contacts: presence reaches the account's own
//!   resources only, and probes are dropped rather than answered `unsubscribed`.
//! * A session that went away without `unavailable` (connection lost, stream error, closed by
//!   the server) is announced `unavailable` to the same audience. A session kept for stream
//!   management stays available until it ends.
//! * Other modules read an account's current presence through `presence-current`, and learn
//!   that a session took messages through the `presence-available` event
//!   (`tessera_plugin_api::im`): offline storage delivers on it.
//! * The priority is an integer from -128 to 127, 0 when absent or not a number (§4.7.2.3).
//! * A session may have directed presence out to at most 1,000 entities that do not see its
//!   broadcasts (each gets `unavailable` when it goes); one more is refused with
//!   `<resource-constraint/>` and not sent.

pub mod state;

use std::sync::Mutex;

use tessera_plugin_api::events::{self, priority, SessionEvent, SessionResumed};
use tessera_plugin_api::im::{
    self, Contact, ContactsQuery, PresenceAvailable, PresenceQuery, PRESENCE_CURRENT,
};
use tessera_plugin_api::jid::Jid;
use tessera_plugin_api::protocol::{HookSpec, Manifest, Registrations};
use tessera_plugin_api::stanza::{StanzaHook, StanzaKind, StanzaPoint};
use tessera_plugin_api::sync::locked;
use tessera_plugin_api::xml::{self, Element, ParseLimits};
use tessera_plugin_api::{
    wire, Config, Event, EventFlow, Host, LogLevel, Module, PluginError, Stanza, Verdict,
};

use crate::state::{Presences, SessionPresence};

const CLIENT_NS: &str = "jabber:client";
/// Limits for parsing a remembered presence back (it passed the host's stanza limits).
const STORED: ParseLimits = ParseLimits {
    max_depth: 64,
    max_elements: 65_536,
};
/// The version of the state handed over on a hot swap.
const STATE_VERSION: u8 = 1;

/// The hooks, by their index in [`Registrations::stanza_hooks`].
mod hook {
    /// The account's own presence (broadcast or directed).
    pub(crate) const OWN: u32 = 0;
    /// A probe to a bare JID.
    pub(crate) const PROBE_BARE: u32 = 1;
    /// A probe to a full JID.
    pub(crate) const PROBE_FULL: u32 = 2;
}

/// The module.
#[derive(Debug)]
pub struct Presence {
    domain: String,
    presences: Mutex<Presences>,
}

/// What a broadcast presence says about its session: `Some(priority)` when available, `None`
/// when unavailable. RFC 6121 §4.7.2.3: the priority is an integer from -128 to 127, 0 when
/// absent; a value out of range or not a number is treated as absent.
pub fn availability(presence: &Element) -> Option<i8> {
    if presence.attr("type") == Some("unavailable") {
        return None;
    }
    Some(
        presence
            .child("priority", CLIENT_NS)
            .and_then(|p| p.text().trim().parse().ok())
            .unwrap_or(0),
    )
}

impl Module for Presence {
    const NAME: &'static str = "presence";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "RFC 6121 presence: broadcast to contacts and own resources, probes, \
                          directed presence, availability for delivery"
                .into(),
            ..Manifest::default()
        }
    }

    fn init(host: &Host, _config: &Config, restore: Option<&[u8]>) -> Result<Self, PluginError> {
        let presences = match restore {
            Some(bytes) => wire::decode_state("presence", STATE_VERSION, bytes)?,
            None => Presences::default(),
        };
        Ok(Self {
            domain: host.host_info()?.domain,
            presences: Mutex::new(presences),
        })
    }

    fn registrations(&self) -> Registrations {
        let presence = |point| StanzaHook::at(point).kind(StanzaKind::Presence);
        Registrations {
            // In the order of `hook`; the last one: presence to a bare JID.
            stanza_hooks: vec![
                presence(StanzaPoint::ClientIn).types(&["", "unavailable"]),
                presence(StanzaPoint::ToBare).types(&["probe"]),
                presence(StanzaPoint::ToFull).types(&["probe"]),
                presence(StanzaPoint::ToBare).types(&["", "unavailable"]),
            ],
            hooks: vec![HookSpec::new(PRESENCE_CURRENT, priority::NORMAL)],
            events: vec![
                HookSpec::new(events::SESSION_CLOSED, priority::NORMAL),
                HookSpec::new(events::SESSION_RESUMED, priority::NORMAL),
            ],
            ..Registrations::default()
        }
    }

    fn stanza(&self, host: &Host, stanza: Stanza<'_>) -> Result<Verdict, PluginError> {
        let header = stanza.header;
        let Some(account) = header.account else {
            return Ok(Verdict::Pass);
        };
        let presence = stanza.element()?;
        match header.hook {
            hook::OWN => {
                let Some(session) = header.session else {
                    return Ok(Verdict::Pass);
                };
                match header.to {
                    None => self.broadcast(host, account, session, presence),
                    Some(to) => self.directed(host, account, session, &presence, to),
                }
            }
            hook::PROBE_BARE | hook::PROBE_FULL => self.probe(host, account, &presence),
            _ => to_available(host, account, &presence),
        }
    }

    fn hook(
        &self,
        _host: &Host,
        name: &str,
        payload: &[u8],
    ) -> Result<Option<Vec<u8>>, PluginError> {
        if name != PRESENCE_CURRENT {
            return Ok(None);
        }
        let query: PresenceQuery = wire::decode(name, payload)?;
        let current: Vec<Element> = locked(&self.presences)
            .available_of(&query.user)
            .iter()
            .filter_map(|(_, s)| {
                s.last
                    .as_deref()
                    .and_then(|x| xml::parse(x.as_bytes(), STORED).ok())
            })
            .collect();
        wire::encode(&current).map(Some)
    }

    fn on_event(&self, host: &Host, event: &Event) -> Result<EventFlow, PluginError> {
        match event.name {
            events::SESSION_CLOSED => {
                let closed: SessionEvent = event.decode()?;
                let was = locked(&self.presences).closed(closed.stream_id);
                if let Some(mut was) = was {
                    // A reconnect that took over the same resource (Bind 2 gives a client its
                    // resource again) is that resource now: it is not gone.
                    let replaced = host.account_sessions(&was.user)?.iter().any(|s| {
                        s.stream != closed.stream_id
                            && s.full_jid.as_deref() == Some(was.full_jid.as_str())
                    });
                    if replaced {
                        was.last = None;
                    }
                    let gone = Element::new("presence", CLIENT_NS)
                        .with_attr("type", "unavailable")
                        .with_attr("from", &was.full_jid);
                    self.announce_unavailable(host, &was, closed.stream_id, gone)?;
                }
            }
            events::SESSION_RESUMED => {
                let resumed: SessionResumed = event.decode()?;
                locked(&self.presences).moved(resumed.previous_stream_id, resumed.stream_id);
            }
            _ => {}
        }
        Ok(EventFlow::Continue)
    }

    fn save_state(&self) -> Result<Vec<u8>, PluginError> {
        wire::encode_state(STATE_VERSION, &*locked(&self.presences))
    }
}

impl Presence {
    fn bare(&self, user: &str) -> String {
        format!("{user}@{}", self.domain)
    }

    /// A broadcast (no `to`): available or unavailable.
    fn broadcast(
        &self,
        host: &Host,
        user: &str,
        session: u64,
        mut presence: Element,
    ) -> Result<Verdict, PluginError> {
        let Some(full) = presence.attr("from").map(str::to_owned) else {
            return Ok(Verdict::Pass);
        };
        let Some(priority) = availability(&presence) else {
            host.session_presence(session, None)?;
            let was = locked(&self.presences).unavailable(session);
            let was = was.unwrap_or_else(|| SessionPresence {
                user: user.to_owned(),
                full_jid: full.clone(),
                ..SessionPresence::default()
            });
            // §4.5.2: the client's own stanza, to everyone who saw it, itself included.
            host.send_to_session(session, presence.clone())?;
            self.announce_unavailable(host, &was, session, presence)?;
            return Ok(Verdict::Handled);
        };
        presence.remove_attr("to");
        let change = locked(&self.presences).available(
            session,
            user,
            &full,
            presence.to_xml_in(""),
            priority,
        );
        host.session_presence(session, Some(priority))?;
        // §4.2.2 and §4.4.2: the account's available resources, the sender included …
        for (stream, _) in available_streams(host, user, Some(session))? {
            host.send_to_session(stream, presence.clone())?;
        }
        // … and the contacts subscribed to it.
        let contacts = contacts(host, user)?.unwrap_or_default();
        for contact in contacts.iter().filter(|c| c.from) {
            host.route(presence.clone().with_attr("to", &contact.jid))?;
        }
        if change.initial {
            // §4.2.2: what the others are doing: the siblings' presence, and probes.
            let siblings: Vec<String> = locked(&self.presences)
                .available_of(user)
                .into_iter()
                .filter(|(stream, _)| *stream != session)
                .filter_map(|(_, s)| s.last.clone())
                .collect();
            for xml in siblings {
                if let Ok(sibling) = xml::parse(xml.as_bytes(), STORED) {
                    host.send_to_session(session, sibling)?;
                }
            }
            let own = self.bare(user);
            for contact in contacts.iter().filter(|c| c.to) {
                host.route(
                    Element::new("presence", CLIENT_NS)
                        .with_attr("type", "probe")
                        .with_attr("from", &own)
                        .with_attr("to", &contact.jid),
                )?;
            }
        }
        if change.initial || change.became_reachable {
            host.fire(
                im::PRESENCE_AVAILABLE,
                &PresenceAvailable {
                    stream_id: session,
                    user: user.to_owned(),
                    full_jid: full,
                    priority,
                    initial: change.initial,
                },
            )?;
        }
        Ok(Verdict::Handled)
    }

    /// `unavailable` from a session that was available (or had sent directed presence): to the
    /// contacts subscribed to the account, the directed-presence targets, and the account's
    /// other available resources (§4.5.2, §4.6.3).
    fn announce_unavailable(
        &self,
        host: &Host,
        was: &SessionPresence,
        session: u64,
        presence: Element,
    ) -> Result<(), PluginError> {
        if was.last.is_some() {
            for (stream, _) in available_streams(host, &was.user, None)? {
                if stream != session {
                    host.send_to_session(stream, presence.clone())?;
                }
            }
            for contact in contacts(host, &was.user)?.unwrap_or_default() {
                if contact.from {
                    host.route(presence.clone().with_attr("to", &contact.jid))?;
                }
            }
        }
        for target in &was.directed {
            host.route(presence.clone().with_attr("to", target))?;
        }
        Ok(())
    }

    /// Directed presence: remembered for its `unavailable` unless the target sees the
    /// broadcasts anyway (§4.6); the host delivers it.
    fn directed(
        &self,
        host: &Host,
        user: &str,
        session: u64,
        presence: &Element,
        to: &str,
    ) -> Result<Verdict, PluginError> {
        let (Some(full), Ok(target)) = (presence.attr("from"), Jid::parse(to)) else {
            return Ok(Verdict::Pass);
        };
        let target_bare = target.bare();
        if target_bare == self.bare(user) {
            return Ok(Verdict::Pass);
        }
        let subscribed =
            contacts_filtered(host, user, &target_bare)?.is_some_and(|c| c.iter().any(|c| c.from));
        if !subscribed {
            let available = presence.attr("type") != Some("unavailable");
            let kept = locked(&self.presences).directed(
                session,
                user,
                full,
                &target.to_string(),
                available,
            );
            if !kept {
                // Not sent: it could not be undone when the session goes.
                return Ok(Verdict::Error {
                    condition: tessera_plugin_api::StanzaCondition::ResourceConstraint,
                    text: Some(format!(
                        "directed presence to more than {} entities at once",
                        state::MAX_DIRECTED
                    )),
                });
            }
        }
        Ok(Verdict::Pass)
    }

    /// A probe to the account (§4.3.2): its available resources' presence, `unavailable`, or
    /// `unsubscribed` to a prober without a subscription.
    fn probe(&self, host: &Host, user: &str, probe: &Element) -> Result<Verdict, PluginError> {
        let (Some(prober), Ok(to)) = (
            probe.attr("from").map(str::to_owned),
            Jid::parse(probe.attr("to").unwrap_or_default()),
        ) else {
            return Ok(Verdict::Drop);
        };
        if !host.user_exists(user)? {
            return Ok(Verdict::Drop);
        }
        let own = self.bare(user);
        let prober_bare = Jid::parse(&prober).map(|j| j.bare()).unwrap_or_default();
        if prober_bare != own {
            match contacts_filtered(host, user, &prober_bare)? {
                // No roster module: nothing is known, nothing is said.
                None => return Ok(Verdict::Drop),
                Some(c) if !c.iter().any(|c| c.from) => {
                    host.route(
                        Element::new("presence", CLIENT_NS)
                            .with_attr("type", "unsubscribed")
                            .with_attr("from", &own)
                            .with_attr("to", &prober_bare),
                    )?;
                    return Ok(Verdict::Handled);
                }
                Some(_) => {}
            }
        }
        // A probe to a full JID learns about that resource only.
        let only = to.resource.is_some().then(|| to.to_string());
        let current: Vec<String> = locked(&self.presences)
            .available_of(user)
            .into_iter()
            .filter(|(_, s)| only.as_ref().is_none_or(|f| *f == s.full_jid))
            .filter_map(|(_, s)| s.last.clone())
            .collect();
        if current.is_empty() {
            let mut gone = Element::new("presence", CLIENT_NS)
                .with_attr("type", "unavailable")
                .with_attr("from", only.as_deref().unwrap_or(&own))
                .with_attr("to", &prober);
            if let Some(id) = probe.attr("id") {
                gone.set_attr("id", id);
            }
            host.route(gone)?;
        }
        for xml in current {
            match xml::parse(xml.as_bytes(), STORED) {
                Ok(p) => host.route(p.with_attr("to", &prober))?,
                Err(e) => host.log(LogLevel::Warn, &format!("remembered presence: {e}")),
            }
        }
        Ok(Verdict::Handled)
    }
}

/// Presence to the account's bare JID goes to its available resources (RFC 6121 §8.5.2.1.2);
/// with none, it is dropped (§8.5.2.2.2).
fn to_available(host: &Host, user: &str, presence: &Element) -> Result<Verdict, PluginError> {
    for (stream, _) in available_streams(host, user, None)? {
        host.send_to_session(stream, presence.clone())?;
    }
    Ok(Verdict::Handled)
}

/// The account's available sessions (and `also`, available or not): (stream, full JID).
fn available_streams(
    host: &Host,
    user: &str,
    also: Option<u64>,
) -> Result<Vec<(u64, String)>, PluginError> {
    Ok(host
        .account_sessions(user)?
        .into_iter()
        .filter(|s| s.available || Some(s.stream) == also)
        .filter_map(|s| s.full_jid.map(|j| (s.stream, j)))
        .collect())
}

/// The account's contacts from the roster module; `None` when no roster module answered.
fn contacts(host: &Host, user: &str) -> Result<Option<Vec<Contact>>, PluginError> {
    query_contacts(host, user, None)
}

/// One contact's entry (empty when it is not in the roster); `None` without a roster module.
fn contacts_filtered(
    host: &Host,
    user: &str,
    contact: &str,
) -> Result<Option<Vec<Contact>>, PluginError> {
    query_contacts(host, user, Some(contact))
}

fn query_contacts(
    host: &Host,
    user: &str,
    contact: Option<&str>,
) -> Result<Option<Vec<Contact>>, PluginError> {
    let query = ContactsQuery {
        user: user.to_owned(),
        contact: contact.map(str::to_owned),
    };
    let replies: Vec<Vec<Contact>> = host.call_hook_as(im::ROSTER_CONTACTS, &query)?;
    Ok((!replies.is_empty()).then(|| replies.into_iter().flatten().collect()))
}

tessera_plugin_api::export_module!(Presence);

#[cfg(test)]
mod tests;
