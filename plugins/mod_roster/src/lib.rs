//! # mod_roster
//!
//! The roster and presence subscriptions of RFC 6121 §2–3: roster get, set and remove with
//! pushes to every interested resource (those that fetched the roster), roster versioning
//! (§2.6: `ver`, an empty result when the client is current), names and groups, and the whole
//! subscription state machine of Appendix A (`subscription`, `ask`, pending requests and
//! pre-approval, §3.4) for `subscribe`, `subscribed`, `unsubscribe` and `unsubscribed` in
//! both directions. Everything is kept in the module's store, so it survives restarts and
//! reloads.
//!
//! How to read it: `subscription` is the state machine (pure, with Appendix A's tables as
//! tests), `iq` the roster requests (pure), `item` an item and its XML, `store` where a roster
//! lives; this file is the hooks.
//!
//! ## Options
//! | option | default | meaning |
//! |---|---|---|
//! | `roster_max_items` | 1000 (1–100000) | items per roster; a set or a subscription that would add one more gets `<policy-violation/>`, and pending requests beyond it are shown but not kept |
//! | `roster_max_name_length` | 1023 (1–65535) | bytes of an item's `name`; longer gets `<not-acceptable/>` |
//! | `roster_max_group_length` | 1023 (1–65535) | bytes of a group name; longer gets `<not-acceptable/>` |
//! | `roster_max_groups` | 64 (1–10000) | groups on one item; more gets `<not-acceptable/>` |
//! | `roster_max_bytes` | 1048576 (65536–67108864) | stored size of all items of a roster (1 MiB; an item with a name and a group takes about 100 bytes); a set or a subscription that would go beyond gets `<policy-violation/>` |
//! | `roster_max_pending_requests` | 100 (0–10000) | subscription requests kept whole (up to 4 KiB each) to be shown again at each login until answered; others are shown once and only marked pending |
//!
//! ## Behaviour worth knowing
//! * Subscription stanzas leave with the sender's bare JID as `from` and the contact's bare
//!   JID as `to`, their extensions kept; the module routes them itself, in the RFC's order
//!   (`unavailable` before a cancelling `unsubscribed`, the roster push after the stanza).
//! * A request is kept whole and delivered to each resource that becomes available (the
//!   `presence-available` event) until answered, one per contact, 16 a tick (40 ms) apart so
//!   that a backlog never outruns the session's output. Kept are at most
//!   `roster_max_pending_requests`, each up to 4 KiB (a bigger one is kept without its
//!   extensions); a request beyond that is shown to the resources available now and only
//!   marked pending, so that approving it later still sends `subscribed`. Pending requests
//!   count against `roster_max_items` too: beyond it a request is shown and not recorded.
//!   A request to an account that does not exist is dropped silently (§8.5.1), like every
//!   subscription stanza to it: nothing tells the sender whether the account exists.
//! * Limits and `roster-contacts` read the roster's summary (one entry: version, each item's
//!   subscription and size, each request's state), never every item; every change writes its
//!   entries and the summary in one step (`store`).
//! * A subscription to oneself gets `<not-allowed/>`; one without `to` `<bad-request/>`.
//! * Presence sent on the account's behalf (its current presence after an approval,
//!   `unavailable` after a cancellation) comes from the presence module through the
//!   `presence-current` hook; without a presence module only the subscription changes.
//! * Changes of one account's roster run one at a time (a lock per account), so a client's
//!   roster set and a contact's `subscribed` arriving together both take effect, and pushes
//!   leave in version order. A hot swap pauses the module until the new generation is in
//!   place (the host's hand-over gate), so the old and the new instance never change a roster
//!   at once and the lock need not outlive the instance.
//! * Other modules read rosters through the `roster-contacts` hook
//!   (`tessera_plugin_api::im`).

pub mod iq;
pub mod item;
pub mod store;
pub mod subscription;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use tessera_plugin_api::events::{self, priority};
use tessera_plugin_api::im::{
    self, Contact, ContactsQuery, PresenceAvailable, PresenceQuery, ROSTER_CONTACTS,
};
use tessera_plugin_api::jid::Jid;
use tessera_plugin_api::paced::{self, Paced};
use tessera_plugin_api::protocol::{
    HookSpec, IqRequest, Manifest, Registrations, StreamInfo, TimerFired,
};
use tessera_plugin_api::stanza::{StanzaHook, StanzaKind, StanzaPoint};
use tessera_plugin_api::sync::locked;
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{
    reply, wire, Config, Event, EventFlow, Host, LogLevel, Module, PluginError, Stanza,
    StanzaCondition, Verdict,
};

use crate::iq::{ItemLimits, Request};
use crate::item::Item;
use crate::store::{Change, Store, Summary};
use crate::subscription::{Effects, Kind, PresenceToContact, Relation, Subscription};

/// The `jabber:iq:roster` namespace.
pub const NS: &str = "jabber:iq:roster";
const CLIENT_NS: &str = "jabber:client";
/// Session key marking a resource that fetched the roster (RFC 6121 §2.2: it gets pushes).
const INTERESTED: &str = "interested";
/// The four subscription types, as hook selectors.
const SUBSCRIPTION_TYPES: [&str; 4] = ["subscribe", "subscribed", "unsubscribe", "unsubscribed"];
/// Parse limits for a stored request (it passed the host's stanza limits on its way in).
const STORED_LIMITS: tessera_plugin_api::xml::ParseLimits = tessera_plugin_api::xml::ParseLimits {
    max_depth: 64,
    max_elements: 65_536,
};
/// Locks serialising roster changes, one per account hash (a bounded set, never cleaned up).
const LOCK_STRIPES: usize = 64;
/// A request stanza bigger than this is kept without its extensions.
const MAX_KEPT_REQUEST_BYTES: usize = 4096;
/// Kept requests shown to a newly available resource per tick.
const REQUEST_BATCH: usize = 16;
/// The pause between two batches, in milliseconds.
const REQUEST_TICK_MS: u64 = 40;
/// Timer tag of the request ticks.
const REQUESTS: &str = "requests";
/// The version of the state handed over on a hot swap.
const STATE_VERSION: u8 = 1;

tessera_plugin_api::options! {
    /// The options as declared.
    pub struct Options {
        /// items per roster; one more gets policy-violation
        roster_max_items: usize = 1000, range 1..=100_000;
        /// bytes of an item's name; longer gets not-acceptable
        roster_max_name_length: usize = 1023, range 1..=65_535;
        /// bytes of a group name; longer gets not-acceptable
        roster_max_group_length: usize = 1023, range 1..=65_535;
        /// groups on one item; more gets not-acceptable
        roster_max_groups: usize = 64, range 1..=10_000;
        /// stored size of a roster's items; beyond gets policy-violation
        roster_max_bytes: usize = 1_048_576, range 65_536..=67_108_864;
        /// subscription requests kept whole to be shown at each login until answered
        roster_max_pending_requests: usize = 100, range 0..=10_000;
    }
}

/// Which hook of [`Registrations::stanza_hooks`] matched.
const HOOK_OUTBOUND: u32 = 0;

/// The module.
#[derive(Debug)]
pub struct Roster {
    options: Options,
    domain: String,
    stripes: Vec<Mutex<()>>,
    /// Kept requests still to be shown to newly available resources (handed over on a swap).
    replays: Paced,
}

impl Roster {
    fn limits(&self) -> ItemLimits {
        ItemLimits {
            name_bytes: self.options.roster_max_name_length,
            group_bytes: self.options.roster_max_group_length,
            groups: self.options.roster_max_groups,
        }
    }

    fn bare(&self, user: &str) -> String {
        format!("{user}@{}", self.domain)
    }

    /// The lock of one account's roster.
    fn lock(&self, user: &str) -> std::sync::MutexGuard<'_, ()> {
        let mut h = DefaultHasher::new();
        user.hash(&mut h);
        let stripe = usize::try_from(h.finish() % LOCK_STRIPES as u64).unwrap_or(0);
        locked(&self.stripes[stripe])
    }
}

impl Module for Roster {
    const NAME: &'static str = "roster";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "RFC 6121 roster and presence subscriptions, with versioning and \
                          pre-approval"
                .into(),
            options: Options::specs(),
            ..Manifest::default()
        }
    }

    fn init(host: &Host, config: &Config, restore: Option<&[u8]>) -> Result<Self, PluginError> {
        let pending = match restore {
            Some(bytes) => wire::decode_state("roster", STATE_VERSION, bytes)?,
            None => paced::Pending::new(),
        };
        Ok(Self {
            options: Options::from_config(config)?,
            domain: host.host_info()?.domain,
            stripes: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            replays: Paced::restore(REQUESTS, REQUEST_TICK_MS, host, pending)?,
        })
    }

    fn save_state(&self) -> Result<Vec<u8>, PluginError> {
        wire::encode_state(STATE_VERSION, &self.replays.pending())
    }

    fn timer(&self, host: &Host, timer: TimerFired) -> Result<(), PluginError> {
        if let Some(tick) = self.replays.fired(&timer) {
            // A failed batch ends the replay (the next login shows the requests again) rather
            // than leaving it pending with no timer.
            self.show_requests(host, tick.stream, &tick.user, &tick.cursor)
                .inspect_err(|_| self.replays.done(tick.stream, &tick.user))?;
        }
        Ok(())
    }

    fn registrations(&self) -> Registrations {
        let hook = |point| {
            StanzaHook::at(point)
                .kind(StanzaKind::Presence)
                .types(&SUBSCRIPTION_TYPES)
        };
        Registrations {
            iq_namespaces: vec![NS.into()],
            // Index HOOK_OUTBOUND first: the account's own subscription stanzas.
            stanza_hooks: vec![
                hook(StanzaPoint::ClientIn),
                hook(StanzaPoint::ToBare),
                hook(StanzaPoint::ToFull),
            ],
            hooks: vec![
                HookSpec::new(ROSTER_CONTACTS, priority::NORMAL),
                HookSpec::new(events::hooks::ACCOUNT_DELETING, priority::NORMAL),
            ],
            events: vec![HookSpec::new(im::PRESENCE_AVAILABLE, priority::NORMAL)],
            stream_features: true,
            ..Registrations::default()
        }
    }

    fn stream_features(
        &self,
        _host: &Host,
        stream: &StreamInfo,
    ) -> Result<Vec<Element>, PluginError> {
        // After authentication: versioning (§2.6.1) and pre-approval (§3.4).
        Ok(if stream.user.is_some() {
            vec![
                Element::new("ver", "urn:xmpp:features:rosterver"),
                Element::new("sub", "urn:xmpp:features:pre-approval"),
            ]
        } else {
            Vec::new()
        })
    }

    fn iq(&self, host: &Host, request: IqRequest) -> Result<Option<Element>, PluginError> {
        let iq = &request.stanza;
        let (Some(user), Some(full)) = (request.stream.user.as_deref(), request.stream.jid) else {
            return Ok(None);
        };
        let own = self.bare(user);
        let answer = match iq::parse(iq, &own, self.limits()) {
            Err((condition, text)) => reply::error(iq, condition, Some(text), &self.domain),
            Ok(Request::Get { ver }) => Some(self.get(host, user, request.stream.id, iq, ver)?),
            Ok(Request::Set(item)) => self.set(host, user, iq, item)?,
            Ok(Request::Remove(jid)) => self.remove(host, user, iq, &jid)?,
        };
        // From the account itself (RFC 6121 §2.1.4 examples): no `from`.
        Ok(answer.map(|mut a| {
            a.remove_attr("from");
            a.set_attr("to", &full);
            a
        }))
    }

    fn stanza(&self, host: &Host, stanza: Stanza<'_>) -> Result<Verdict, PluginError> {
        let header = stanza.header;
        let (Some(account), Some(kind)) =
            (header.account, header.stanza_type.and_then(Kind::parse))
        else {
            return Ok(Verdict::Pass);
        };
        let presence = stanza.element()?;
        if header.hook == HOOK_OUTBOUND {
            self.outbound(host, account, kind, presence)
        } else {
            self.inbound(host, account, kind, presence)
        }
    }

    fn hook(
        &self,
        host: &Host,
        name: &str,
        payload: &[u8],
    ) -> Result<Option<Vec<u8>>, PluginError> {
        if name == events::hooks::ACCOUNT_DELETING {
            let deleting: events::UserDeleted = wire::decode(name, payload)?;
            self.farewell(host, &deleting.user)?;
            return Ok(None);
        }
        if name != ROSTER_CONTACTS {
            return Err(PluginError::bad_request(format!("no hook {name}")));
        }
        let query: ContactsQuery = wire::decode(name, payload)?;
        let store = Store::of(host, &query.user);
        let contact = |jid: String, subscription: Subscription| Contact {
            jid,
            to: subscription.to(),
            from: subscription.from(),
        };
        let contacts: Vec<Contact> = match &query.contact {
            Some(jid) => store
                .item(jid)?
                .map(|i| contact(i.jid, i.subscription))
                .into_iter()
                .collect(),
            // The summary: one entry, however many names and groups the items carry.
            None => store
                .summary()?
                .contacts()
                .map(|(jid, s)| contact(jid.to_owned(), s))
                .collect(),
        };
        wire::encode(&contacts).map(Some)
    }

    fn on_event(&self, host: &Host, event: &Event) -> Result<EventFlow, PluginError> {
        if event.name == im::PRESENCE_AVAILABLE {
            let available: PresenceAvailable = event.decode()?;
            if available.initial {
                // §3.1.3 rule 4: each new available resource gets the requests still open.
                self.show_requests(host, available.stream_id, &available.user, "")?;
            }
        }
        Ok(EventFlow::Continue)
    }
}

impl Roster {
    fn get(
        &self,
        host: &Host,
        user: &str,
        stream: u64,
        iq: &Element,
        ver: Option<String>,
    ) -> Result<Element, PluginError> {
        host.session_set(stream, INTERESTED, Some(wire::Bytes::new(&[1])))?;
        let store = Store::of(host, user);
        let current = store.version()?.to_string();
        let result = reply::iq_result(iq, &self.domain);
        // §2.6.3: a client with the current version gets an empty result (and later pushes).
        if ver.as_deref() == Some(current.as_str()) {
            return Ok(result);
        }
        let mut query = Element::new("query", NS).with_attr("ver", &current);
        for item in store.items()? {
            query.push_child(item.to_element());
        }
        Ok(result.with_child(query))
    }

    fn set(
        &self,
        host: &Host,
        user: &str,
        iq: &Element,
        mut item: Item,
    ) -> Result<Option<Element>, PluginError> {
        let _serial = self.lock(user);
        let store = Store::of(host, user);
        let mut change = Change::on(store.summary()?);
        if let Some(old) = store.item(&item.jid)? {
            // §2.4: name and groups are replaced; the subscription is the server's.
            item.subscription = old.subscription;
            item.pending_out = old.pending_out;
            item.approved = old.approved;
        }
        if let Some(refusal) = self.beyond_limits(change.summary(), &item) {
            return Ok(reply::error(
                iq,
                StanzaCondition::PolicyViolation,
                Some(&refusal),
                &self.domain,
            ));
        }
        change.put_item(&item);
        let ver = change.bump();
        store.commit(change)?;
        push_to_interested(host, user, item.to_element(), &ver.to_string())?;
        Ok(Some(reply::iq_result(iq, &self.domain)))
    }

    fn remove(
        &self,
        host: &Host,
        user: &str,
        iq: &Element,
        jid: &str,
    ) -> Result<Option<Element>, PluginError> {
        let _serial = self.lock(user);
        let store = Store::of(host, user);
        let Some(old) = store.item(jid)? else {
            return Ok(reply::error(
                iq,
                StanzaCondition::ItemNotFound,
                Some("no such item"),
                &self.domain,
            ));
        };
        let mut change = Change::on(store.summary()?);
        let pending_in = change.summary().has_request(jid);
        change.delete_item(jid);
        change.forget_request(jid);
        let ver = change.bump();
        store.commit(change)?;
        push_to_interested(host, user, item::removed(jid), &ver.to_string())?;
        // §2.5.2: the contact is told, on the account's behalf.
        let own = self.bare(user);
        if old.subscription.to() || old.pending_out {
            host.route(subscription_stanza(&own, jid, Kind::Unsubscribe))?;
        }
        if old.subscription.from() {
            self.unavailable_to(host, user, jid)?;
        }
        if old.subscription.from() || pending_in {
            host.route(subscription_stanza(&own, jid, Kind::Unsubscribed))?;
        }
        Ok(Some(reply::iq_result(iq, &self.domain)))
    }

    /// The account is about to be deleted: every contact is told the subscriptions are over
    /// (as a removal of each item would, §2.5.2), and pending requests are denied, so that no
    /// one who later registers the name inherits them.
    fn farewell(&self, host: &Host, user: &str) -> Result<(), PluginError> {
        let _serial = self.lock(user);
        let store = Store::of(host, user);
        let own = self.bare(user);
        let summary = store.summary()?;
        let mut denied: Vec<&str> = summary.pending_contacts().collect();
        for item in store.items()? {
            if item.subscription.to() || item.pending_out {
                host.route(subscription_stanza(&own, &item.jid, Kind::Unsubscribe))?;
            }
            if item.subscription.from() {
                self.unavailable_to(host, user, &item.jid)?;
                host.route(subscription_stanza(&own, &item.jid, Kind::Unsubscribed))?;
                denied.retain(|jid| *jid != item.jid);
            }
        }
        for jid in denied {
            host.route(subscription_stanza(&own, jid, Kind::Unsubscribed))?;
        }
        Ok(())
    }

    /// Why writing `item` would take the roster beyond its limits, if it would: one item
    /// more than `roster_max_items`, or more stored bytes than `roster_max_bytes`.
    fn beyond_limits(&self, summary: &Summary, item: &Item) -> Option<String> {
        let new = summary.bytes_of(&item.jid) == 0;
        if new && summary.items() >= self.options.roster_max_items {
            return Some(format!(
                "the roster is full ({} items)",
                self.options.roster_max_items
            ));
        }
        let bytes = summary.bytes() - summary.bytes_of(&item.jid) + item.encode().len();
        (bytes > self.options.roster_max_bytes).then(|| {
            format!(
                "the roster is full ({} bytes)",
                self.options.roster_max_bytes
            )
        })
    }

    /// A subscription stanza from one of the account's sessions (Appendix A.2).
    fn outbound(
        &self,
        host: &Host,
        user: &str,
        kind: Kind,
        mut presence: Element,
    ) -> Result<Verdict, PluginError> {
        let own = self.bare(user);
        let Some(to) = presence.attr("to").and_then(|t| Jid::parse(t).ok()) else {
            return Ok(refuse(
                StanzaCondition::BadRequest,
                "a subscription needs a 'to'",
            ));
        };
        let contact = to.bare();
        if contact == own {
            return Ok(refuse(
                StanzaCondition::NotAllowed,
                "an account is always subscribed to its own presence",
            ));
        }
        let _serial = self.lock(user);
        let store = Store::of(host, user);
        let mut change = Change::on(store.summary()?);
        let old = store.item(&contact)?;
        let mut relation = old
            .as_ref()
            .map_or_else(Relation::default, |i| i.relation(false));
        relation.pending_in = change.summary().has_request(&contact);
        let fx = subscription::outbound(&mut relation, kind);
        if old.is_none() && fx.push {
            if let Some(refusal) = self.beyond_limits(change.summary(), &Item::new(&contact)) {
                return Ok(refuse_owned(StanzaCondition::PolicyViolation, refusal));
            }
        }
        let pushed = Self::record(&mut change, old, &contact, &relation, &fx);
        store.commit(change)?;
        if fx.presence == Some(PresenceToContact::Unavailable) {
            self.unavailable_to(host, user, &contact)?;
        }
        if fx.forward {
            // §3: the account's bare JID, to the contact's bare JID.
            presence.set_attr("from", &own);
            presence.set_attr("to", &contact);
            host.route(presence)?;
        }
        if let Some((item, ver)) = pushed {
            push_to_interested(host, user, item, &ver)?;
        }
        if fx.presence == Some(PresenceToContact::Current) {
            self.current_to(host, user, &contact)?;
        }
        Ok(Verdict::Handled)
    }

    /// A subscription stanza to the account (Appendix A.3).
    fn inbound(
        &self,
        host: &Host,
        user: &str,
        kind: Kind,
        mut presence: Element,
    ) -> Result<Verdict, PluginError> {
        let Some(contact) = presence
            .attr("from")
            .and_then(|f| Jid::parse(f).ok())
            .map(|j| j.bare())
        else {
            return Ok(Verdict::Drop);
        };
        // §8.5.1: subscription stanzas to an account that does not exist are ignored, so the
        // sender learns nothing.
        if !host.user_exists(user)? {
            return Ok(Verdict::Drop);
        }
        let own = self.bare(user);
        let _serial = self.lock(user);
        let store = Store::of(host, user);
        let mut change = Change::on(store.summary()?);
        let old = store.item(&contact)?;
        let mut relation = old
            .as_ref()
            .map_or_else(Relation::default, |i| i.relation(false));
        relation.pending_in = change.summary().has_request(&contact);
        let fx = subscription::inbound(&mut relation, kind);
        // Delivered as the account sees it: from the contact's bare JID to its own.
        presence.set_attr("from", &contact);
        presence.set_attr("to", &own);
        if fx.store_request {
            self.keep_request(&mut change, &contact, &presence);
        }
        let pushed = Self::record(&mut change, old, &contact, &relation, &fx);
        store.commit(change)?;
        if fx.forward {
            // A request goes to the available resources (§3.1.3), answers to the interested
            // ones (§3.1.6, §3.2.3, §3.3.3), before the push.
            let targets = if kind == Kind::Subscribe {
                available(host, user)?
            } else {
                interested(host, user)?
            };
            // RFC 6121 §8.5.2.1: delivered with `to` as it is, the bare JID.
            for (stream, _) in targets {
                host.send_to_session(stream, presence.clone())?;
            }
        }
        if let Some((item, ver)) = pushed {
            push_to_interested(host, user, item, &ver)?;
        }
        if let Some(answer) = fx.reply {
            if answer == Kind::Unsubscribed {
                // §3.3.3: the ex-subscriber stops seeing the account first.
                self.unavailable_to(host, user, &contact)?;
            }
            host.route(subscription_stanza(&own, &contact, answer))?;
        } else if fx.presence == Some(PresenceToContact::Unavailable) {
            self.unavailable_to(host, user, &contact)?;
        }
        if fx.presence == Some(PresenceToContact::Current) {
            self.current_to(host, user, &contact)?;
        }
        Ok(Verdict::Handled)
    }

    /// Store a relation's change; answers the item to push and its version when something
    /// visible changed. Runs before any stanza goes out, so that a failing store sends nothing.
    fn record(
        change: &mut Change,
        old: Option<Item>,
        contact: &str,
        relation: &Relation,
        fx: &Effects,
    ) -> Option<(Element, String)> {
        if fx.forget_request {
            change.forget_request(contact);
        }
        if !fx.push {
            return None;
        }
        let mut item = old.unwrap_or_else(|| Item::new(contact));
        item.set_relation(relation);
        change.put_item(&item);
        Some((item.to_element(), change.bump().to_string()))
    }

    /// Record a contact's request (§3.1.3): kept whole while fewer than
    /// `roster_max_pending_requests` are (without its extensions if it is bigger than
    /// [`MAX_KEPT_REQUEST_BYTES`]), else only marked pending while pending requests are fewer
    /// than `roster_max_items`, else not at all (it is still shown to the resources available
    /// now).
    fn keep_request(&self, change: &mut Change, contact: &str, presence: &Element) {
        let summary = change.summary();
        let again = summary.has_request(contact);
        let kept = summary.kept_requests();
        if kept < self.options.roster_max_pending_requests || summary.request_kept(contact) {
            // Written with its namespace, so that it parses back as a client stanza.
            let mut whole = presence.to_xml_in("");
            if whole.len() > MAX_KEPT_REQUEST_BYTES {
                let mut bare = Element::new("presence", CLIENT_NS);
                for attr in ["type", "from", "to", "id"] {
                    // An id is kept only if short: it is the sender's, and could be the bulk.
                    if let Some(v) = presence.attr(attr).filter(|v| v.len() <= 256) {
                        bare.set_attr(attr, v);
                    }
                }
                whole = bare.to_xml_in("");
            }
            change.put_request(contact, Some(&whole));
        } else if again || summary.requests() < self.options.roster_max_items {
            change.put_request(contact, None);
        }
    }

    /// Show a newly available resource the kept requests after `cursor`, a batch now and the
    /// rest a tick later each, until none is left or the session is gone.
    fn show_requests(
        &self,
        host: &Host,
        stream: u64,
        user: &str,
        cursor: &str,
    ) -> Result<(), PluginError> {
        let store = Store::of(host, user);
        let summary = store.summary()?;
        let batch: Vec<&str> = summary.kept_after(cursor).take(REQUEST_BATCH + 1).collect();
        let more = batch.len() > REQUEST_BATCH;
        let mut last = cursor;
        for jid in batch.into_iter().take(REQUEST_BATCH) {
            last = jid;
            let Some(stanza) = store.request(jid)? else {
                continue;
            };
            match tessera_plugin_api::xml::parse(stanza.as_bytes(), STORED_LIMITS) {
                Ok(el) => {
                    if !host.send_to_session(stream, el)? {
                        self.replays.done(stream, user);
                        return Ok(());
                    }
                }
                Err(e) => host.log(LogLevel::Warn, &format!("stored request: {e}")),
            }
        }
        if more {
            self.replays.next_tick(host, stream, user, last.to_owned())
        } else {
            self.replays.done(stream, user);
            Ok(())
        }
    }

    /// `unavailable` from each available resource of the account to a contact.
    fn unavailable_to(&self, host: &Host, user: &str, contact: &str) -> Result<(), PluginError> {
        for (_, full) in available(host, user)? {
            host.route(
                Element::new("presence", CLIENT_NS)
                    .with_attr("type", "unavailable")
                    .with_attr("from", full)
                    .with_attr("to", contact),
            )?;
        }
        Ok(())
    }

    /// The current presence of each available resource of the account, to a contact.
    fn current_to(&self, host: &Host, user: &str, contact: &str) -> Result<(), PluginError> {
        let query = PresenceQuery {
            user: user.to_owned(),
        };
        let current: Vec<Vec<Element>> = host.call_hook_as(im::PRESENCE_CURRENT, &query)?;
        for mut presence in current.into_iter().flatten() {
            presence.set_attr("to", contact);
            host.route(presence)?;
        }
        Ok(())
    }
}

/// Send a roster push of `item` at version `ver` to each interested resource.
fn push_to_interested(
    host: &Host,
    user: &str,
    item: Element,
    ver: &str,
) -> Result<(), PluginError> {
    for (stream, full) in interested(host, user)? {
        let push = Element::new("iq", CLIENT_NS)
            .with_attr("type", "set")
            .with_attr("id", format!("roster-push-{ver}"))
            .with_attr("to", full)
            .with_child(
                Element::new("query", NS)
                    .with_attr("ver", ver)
                    .with_child(item.clone()),
            );
        host.send_to_session(stream, push)?;
    }
    Ok(())
}

/// A presence error back to the account's session, and the stanza goes no further.
fn refuse(condition: StanzaCondition, text: &str) -> Verdict {
    refuse_owned(condition, text.to_owned())
}

fn refuse_owned(condition: StanzaCondition, text: String) -> Verdict {
    Verdict::Error {
        condition,
        text: Some(text),
    }
}

/// `<presence type=…/>` from a bare JID to a bare JID.
fn subscription_stanza(from: &str, to: &str, kind: Kind) -> Element {
    Element::new("presence", CLIENT_NS)
        .with_attr("type", kind.as_str())
        .with_attr("from", from)
        .with_attr("to", to)
}

/// The account's available resources: (stream, full JID).
fn available(host: &Host, user: &str) -> Result<Vec<(u64, String)>, PluginError> {
    Ok(host
        .account_sessions(user)?
        .into_iter()
        .filter(|s| s.available)
        .filter_map(|s| s.full_jid.map(|j| (s.stream, j)))
        .collect())
}

/// The account's resources that fetched the roster: (stream, full JID).
fn interested(host: &Host, user: &str) -> Result<Vec<(u64, String)>, PluginError> {
    let mut out = Vec::new();
    for s in host.account_sessions(user)? {
        if let Some(full) = s.full_jid {
            if host.session_get(s.stream, INTERESTED)?.is_some() {
                out.push((s.stream, full));
            }
        }
    }
    Ok(out)
}

tessera_plugin_api::export_module!(Roster);

#[cfg(test)]
mod tests;
