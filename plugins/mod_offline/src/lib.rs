//! # mod_offline
//!
//! XEP-0160 offline messages (RFC 6121 §8.5.2): a `chat` or `normal` message to an account
//! with no resource that takes it (none available with a non-negative priority) is stored, and
//! delivered, oldest first, each with a XEP-0203 `<delay/>` from the server stamped when it
//! arrived, as soon as a session of the account becomes available with a non-negative priority
//! (its initial presence, or a priority raised from negative), in batches of 32 a tick apart so
//! that a long backlog does not outrun the session's output queue. Storage is the host's archive
//! store: it survives restarts, goes with the account, and two sessions coming up at once each
//! take different messages, never the same one twice.
//!
//! ## Options
//! | option | default | meaning |
//! |---|---|---|
//! | `offline_max_messages` | 500 (1–100000) | messages kept per account; the next one is bounced with `<resource-constraint/>` (type `wait`) |
//! | `offline_max_bytes` | 10485760 (65536–1073741824) | bytes of stored messages per account (10 MiB); a message that would go beyond is bounced the same way |
//! | `offline_max_messages_from_strangers` | 100 (0–100000) | of those, messages from senders not in the account's roster; beyond, theirs are bounced the same way (0: never stored) |
//!
//! Each bound is checked and the message stored in one step of the store, so two messages
//! arriving at once cannot both take the last place. The strangers' share keeps one sender (or
//! a crowd of throwaway accounts) from filling the mailbox so that contacts' messages bounce;
//! without a roster module there are no contacts to tell apart and only the first two bounds
//! apply. The byte bound keeps 500 large messages (up to the stanza limit each) from costing
//! the store 100 MiB per account.
//!
//! ## What is not stored
//! * `headline`, `groupchat` and `error` messages (the host never offers them: a headline
//!   nobody takes is dropped, a groupchat or error to a bare JID is refused or ignored).
//! * A message that is only a chat state (XEP-0085 §5.8: no body, nothing but a thread, hints,
//!   ids or delays beside it): dropped without a bounce, since "typing" is stale by the time
//!   anyone reads it and a bounce per keystroke helps nobody. A `<store/>` hint keeps it.
//! * A `<delay/>` the sender put in the server's name is replaced by the server's own
//!   (XEP-0203 §5).
//! * A XEP-0280 carbon copy (`<received/>` or `<sent/>` in `urn:xmpp:carbons:2`), which the
//!   host offers when the session it was written for ended before taking it: dropped, since
//!   it is a copy of a message that reached its own recipient.
//! * A message with a XEP-0334 `<no-store/>` hint: bounced (`<service-unavailable/>`), as if
//!   this module were not loaded — the sender asked for no storage. (`<no-permanent-store/>`
//!   allows offline storage.)
//!
//! The full queue answers `<resource-constraint/>` (wait), as ejabberd does, rather than
//! XEP-0160's `<service-unavailable/>`: it tells the sender the address is fine and to try
//! later. XEP-0386 asks a server to drop offline messages at a Bind 2 login because the
//! archive (XEP-0313) supplies them; without an archive module they are delivered instead.
//!
//! ## What an outsider learns
//! A message to an account that does not exist is bounced with `<service-unavailable/>`; one to
//! an existing account that is offline is stored silently. So anyone who can send a message
//! learns whether an account exists. That is accepted: a JID is an address people hand out so
//! as to be contacted, XMPP has always answered unknown addresses this way (RFC 6121 §8.5.1
//! allows either answer; every deployed server bounces), and hiding it would mean storing mail
//! for accounts that will never read it, which anyone could use to fill the store. Presence
//! and subscription stanzas to unknown accounts, which cost nothing to send in bulk, are
//! dropped silently by the presence and roster modules.

use std::collections::BTreeSet;

use tessera_plugin_api::datetime::format_utc_millis;
use tessera_plugin_api::events::priority;
use tessera_plugin_api::im::{self, Contact, ContactsQuery, PresenceAvailable};
use tessera_plugin_api::jid::Jid;
use tessera_plugin_api::paced::Paced;
use tessera_plugin_api::protocol::{
    ArchiveAppend, ArchiveBound, ArchiveBounds, HookSpec, Manifest, Registrations, TimerFired,
};
use tessera_plugin_api::stanza::{StanzaHook, StanzaKind, StanzaPoint};
use tessera_plugin_api::xml::{self, Element, ParseLimits};
use tessera_plugin_api::{
    wire, Config, Event, EventFlow, Host, LogLevel, Module, PluginError, Stanza, StanzaCondition,
    Verdict,
};

/// The archive the messages are kept in.
const ARCHIVE: &str = "offline";
/// How many messages go to a session at once; the rest follow a tick later, so that a
/// backlog of hundreds does not arrive faster than the session's queue drains.
const BATCH: u32 = 32;
/// The pause between two batches, in milliseconds.
const TICK_MS: u64 = 40;
/// The class of messages from senders outside the account's roster.
const STRANGER: &str = "stranger";
/// Timer tag of the replay ticks.
const REPLAY: &str = "replay";
const DELAY_NS: &str = "urn:xmpp:delay";
const CHATSTATES_NS: &str = "http://jabber.org/protocol/chatstates";
const HINTS_NS: &str = "urn:xmpp:hints";
const SID_NS: &str = "urn:xmpp:sid:0";
const CARBONS_NS: &str = "urn:xmpp:carbons:2";
const MAM_NS: &str = "urn:xmpp:mam:2";
const CLIENT_NS: &str = "jabber:client";
/// Limits for parsing a stored message back (it passed the host's stanza limits).
const STORED: ParseLimits = ParseLimits {
    max_depth: 64,
    max_elements: 65_536,
};

tessera_plugin_api::options! {
    /// The options as declared.
    pub struct Options {
        /// messages kept per account; one more is bounced with resource-constraint
        offline_max_messages: u64 = 500, range 1..=100_000;
        /// bytes of stored messages per account; beyond, bounced with resource-constraint
        offline_max_bytes: u64 = 10 * 1024 * 1024, range 65_536..=1_073_741_824;
        /// stored messages from senders outside the account's roster; beyond, theirs bounce
        offline_max_messages_from_strangers: u64 = 100, range 0..=100_000;
    }
}

/// The module.
#[derive(Debug)]
pub struct Offline {
    options: Options,
    domain: String,
    /// Replays with more batches to come. Handed over on a hot swap, whose new generation sets
    /// their timers again (the old generation's die with it).
    replays: Paced,
}

/// The version of the state handed over on a hot swap.
const STATE_VERSION: u8 = 1;

/// What to do with a message nobody can take now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Keep it.
    Store,
    /// Drop it without a word (a chat state alone).
    Drop,
    /// Leave it to the host's bounce.
    Bounce,
}

/// Decide about a message offered as undeliverable (pure): chat and normal messages are kept,
/// a carbon copy or an archive result (XEP-0313, for a query of a session that ended) is
/// dropped, a `<no-store/>` hint bounces, a chat state alone (with only metadata beside it: a thread,
/// hints, ids, delays; XEP-0085 §5.8) is dropped unless a `<store/>` hint asks for it.
pub fn decide(message: &Element) -> Decision {
    if !matches!(message.attr("type"), None | Some("chat" | "normal")) {
        return Decision::Bounce;
    }
    let carbon = |name| message.child(name, CARBONS_NS).is_some();
    if carbon("received") || carbon("sent") || message.child("result", MAM_NS).is_some() {
        return Decision::Drop;
    }
    if message.child("no-store", HINTS_NS).is_some() {
        return Decision::Bounce;
    }
    if message.child("store", HINTS_NS).is_some() {
        return Decision::Store;
    }
    let metadata = |c: &Element| {
        matches!(c.ns.as_str(), HINTS_NS | SID_NS | DELAY_NS)
            || (c.name == "thread" && c.ns == CLIENT_NS)
    };
    let chat_state = message.child_elements().any(|c| c.ns == CHATSTATES_NS);
    let only_chat_state = chat_state
        && message
            .child_elements()
            .all(|c| c.ns == CHATSTATES_NS || metadata(c));
    if only_chat_state {
        Decision::Drop
    } else {
        Decision::Store
    }
}

/// The message as stored: a `<delay/>` from the server stamped now (replacing any the sender
/// put in the server's name).
pub fn stamped(mut message: Element, domain: &str, now_ms: u64) -> Element {
    message.children.retain(|n| match n {
        xml::Node::Element(e) => {
            !(e.name == "delay" && e.ns == DELAY_NS && e.attr("from") == Some(domain))
        }
        _ => true,
    });
    message.push_child(
        Element::new("delay", DELAY_NS)
            .with_attr("from", domain)
            .with_attr("stamp", format_utc_millis(now_ms))
            .with_text("Offline Storage"),
    );
    message
}

impl Module for Offline {
    const NAME: &'static str = "offline";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "XEP-0160 offline messages with XEP-0203 delays".into(),
            options: Options::specs(),
            ..Manifest::default()
        }
    }

    fn init(host: &Host, config: &Config, restore: Option<&[u8]>) -> Result<Self, PluginError> {
        // The state is the set of (stream, account) replays: a replay has no cursor, since
        // taking a batch removes it from storage.
        let replays: BTreeSet<(u64, String)> = match restore {
            Some(bytes) => wire::decode_state("offline", STATE_VERSION, bytes)?,
            None => BTreeSet::new(),
        };
        let pending = replays
            .into_iter()
            .map(|key| (key, String::new()))
            .collect();
        Ok(Self {
            options: Options::from_config(config)?,
            domain: host.host_info()?.domain,
            replays: Paced::restore(REPLAY, TICK_MS, host, pending)?,
        })
    }

    fn save_state(&self) -> Result<Vec<u8>, PluginError> {
        let replays: BTreeSet<(u64, String)> = self.replays.pending().into_keys().collect();
        wire::encode_state(STATE_VERSION, &replays)
    }

    fn registrations(&self) -> Registrations {
        Registrations {
            stanza_hooks: vec![StanzaHook::at(StanzaPoint::Undeliverable).kind(StanzaKind::Message)],
            events: vec![HookSpec::new(im::PRESENCE_AVAILABLE, priority::NORMAL)],
            disco_features: vec!["msgoffline".into()],
            ..Registrations::default()
        }
    }

    fn stanza(&self, host: &Host, stanza: Stanza<'_>) -> Result<Verdict, PluginError> {
        let Some(user) = stanza.header.account else {
            return Ok(Verdict::Pass);
        };
        let message = stanza.element()?;
        match decide(&message) {
            Decision::Bounce => return Ok(Verdict::Pass),
            Decision::Drop => return Ok(Verdict::Drop),
            Decision::Store => {}
        }
        // Nobody's mailbox: the host bounces (see "What an outsider learns").
        if !host.user_exists(user)? {
            return Ok(Verdict::Pass);
        }
        let with = message
            .attr("from")
            .and_then(|f| Jid::parse(f).ok())
            .map(|j| j.bare())
            .unwrap_or_default();
        let class = self.class_of(host, user, &with)?;
        let bounds = ArchiveBounds {
            max_entries: self.options.offline_max_messages,
            max_bytes: self.options.offline_max_bytes,
            class: class.to_owned(),
            max_in_class: if class == STRANGER {
                self.options.offline_max_messages_from_strangers
            } else {
                u64::MAX
            },
        };
        let now = host.now_ms();
        let stored = stamped(message, &self.domain, now).to_xml_in("");
        let appended = host.archive_append_within(
            ARCHIVE,
            user,
            &with,
            now,
            wire::Bytes::new(stored.as_bytes()),
            bounds,
        )?;
        Ok(match appended {
            ArchiveAppend::Appended(_) => Verdict::Stored,
            ArchiveAppend::Full(bound) => Verdict::Error {
                condition: StanzaCondition::ResourceConstraint,
                text: Some(full_text(bound).into()),
            },
        })
    }

    fn on_event(&self, host: &Host, event: &Event) -> Result<EventFlow, PluginError> {
        if event.name == im::PRESENCE_AVAILABLE {
            let available: PresenceAvailable = event.decode()?;
            if available.priority >= 0 {
                self.deliver(host, available.stream_id, &available.user)?;
            }
        }
        Ok(EventFlow::Continue)
    }

    fn timer(&self, host: &Host, timer: TimerFired) -> Result<(), PluginError> {
        if let Some(tick) = self.replays.fired(&timer) {
            // A failed batch ends the replay (the next initial presence starts one) rather
            // than leaving it pending with no timer; what it took went back to storage.
            self.deliver(host, tick.stream, &tick.user)
                .inspect_err(|_| self.replays.done(tick.stream, &tick.user))?;
        }
        Ok(())
    }
}

/// What a bounce for a full mailbox says, by the bound it reached.
pub fn full_text(bound: ArchiveBound) -> &'static str {
    match bound {
        ArchiveBound::Bytes => "the recipient's offline storage is full (size)",
        ArchiveBound::Class => {
            "the recipient keeps no more offline messages from senders outside their contacts"
        }
        _ => "the recipient's offline storage is full",
    }
}

impl Offline {
    /// The class a message from `with` is stored in: [`STRANGER`] for a sender not in the
    /// account's roster, `""` otherwise (the account itself, the server, a contact, or any
    /// sender when no roster module answers).
    fn class_of(&self, host: &Host, user: &str, with: &str) -> Result<&'static str, PluginError> {
        if with.is_empty() || with == self.domain || with == format!("{user}@{}", self.domain) {
            return Ok("");
        }
        let query = ContactsQuery {
            user: user.to_owned(),
            contact: Some(with.to_owned()),
        };
        // A roster module whose answer failed or did not decode gives no reply: the sender
        // then counts as a contact (the mailbox's own bounds still hold).
        let rosters: Vec<Vec<Contact>> = host.call_hook_as(im::ROSTER_CONTACTS, &query)?;
        let stranger = !rosters.is_empty() && rosters.iter().all(Vec::is_empty);
        Ok(if stranger { STRANGER } else { "" })
    }

    /// Hand a batch of the account's stored messages, oldest first, to a session that takes
    /// messages, and come back for the next batch a tick later. If the session is gone, what
    /// was taken goes back to storage (after any that arrived meanwhile) for the next session.
    fn deliver(&self, host: &Host, stream: u64, user: &str) -> Result<(), PluginError> {
        let batch = host.archive_take(ARCHIVE, user, BATCH)?;
        let full = batch.len() == usize::try_from(BATCH).unwrap_or(usize::MAX);
        let mut rest = batch.into_iter();
        while let Some(item) = rest.next() {
            let message = match xml::parse(&item.data, STORED) {
                Ok(message) => message,
                Err(e) => {
                    host.log(
                        LogLevel::Warn,
                        &format!("a stored message of {user} is unreadable: {e}"),
                    );
                    continue;
                }
            };
            if !host.send_to_session(stream, message)? {
                self.replays.done(stream, user);
                // Back where they were taken from, whatever the bounds say now, in their class.
                for item in std::iter::once(item).chain(rest) {
                    // Nothing may stop a put-back: without an answer, no class.
                    let class = self.class_of(host, user, &item.with).unwrap_or("");
                    host.archive_append_within(
                        ARCHIVE,
                        user,
                        &item.with,
                        item.at_ms,
                        wire::Bytes::new(&item.data),
                        ArchiveBounds::none(class),
                    )?;
                }
                return Ok(());
            }
        }
        if full {
            self.replays.next_tick(host, stream, user, String::new())?;
        } else {
            self.replays.done(stream, user);
        }
        Ok(())
    }
}

tessera_plugin_api::export_module!(Offline);

#[cfg(test)]
mod tests;
