//! # mod_mam
//!
//! XEP-0313 Message Archive Management (`urn:xmpp:mam:2`): every message an account sends or
//! receives is kept in its archive under a stable id, so a new device sees the history and a
//! device that was away catches up.
//!
//! * **What** ([`archive::archivable`]): `chat` and `normal` messages with a body or an
//!   encrypted payload (OMEMO, OpenPGP), or marked `<store/>`; never `<no-store/>` or
//!   `<no-permanent-store/>` (XEP-0334), errors, headlines, groupchat, carbon copies.
//! * **When**: a received message once per recipient account, when the router takes it for
//!   the account and *before* it is delivered, stored offline or copied by carbons (the
//!   delivery hooks at `NORMAL`; carbons run `LATE`): the delivered stanza, its carbons and the
//!   offline copy carry the archive's id as XEP-0359 `<stanza-id by='account'/>`, and a
//!   `<stanza-id/>` by the account that anyone else put there is removed first. A sent message
//!   when a session sends it (a message to the account's own JID only once, as received).
//!   Offline replay and carbons do not pass the router again, so nothing is archived twice.
//! * **Queries** (§4): `<query/>` with the form fields `with`, `start`, `end`, `after-id`,
//!   `before-id` and `ids`, RSM paging (`<max/>` up to 250, default 50; `<after/>`,
//!   `<before/>`, `<before/>` empty for the last page; `<max>0</max>` for the count, which
//!   pages do not carry: it would cost more than the page), and
//!   `<flip-page/>`. Results are sent before the IQ result that carries `<fin/>`; every bad
//!   input gets its precise error (`bad-request` with the reason, `item-not-found` for an
//!   unknown id, `policy-violation` for a page over 250).
//! * **Preferences** (§6): `<prefs default='always|never|roster'>` with `<always/>` and
//!   `<never/>` lists (`never` wins); `roster` asks the roster module. Default: always.
//! * **Metadata** (§7): `<metadata/>` with the first and last entry, by IQ and in Bind 2's
//!   `<bound/>`; when this module is not loaded, `<bound/>` says nothing about an archive.
//! * **Retention**: `archive_expires_after` (Prosody's name), seconds, default 90 days; 0
//!   keeps everything. Entries older than that are deleted every hour. Ninety days: long
//!   enough that a device away for a season catches up and a new one starts with months of
//!   history; short enough that the store does not grow without bound and a leaked database
//!   does not hold years of conversations. Prosody keeps one week by default (a new phone
//!   then sees almost nothing), ejabberd keeps everything.
//! * The archive is the host's archive store (indexed by account and time), deleted with the
//!   account by the host.

pub mod archive;
pub mod prefs;
pub mod query;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use tessera_plugin_api::datetime::format_utc_millis;
use tessera_plugin_api::events::{self, hooks, priority, Bind2Bound, UserDeleted};
use tessera_plugin_api::im::{self, Contact, ContactsQuery};
use tessera_plugin_api::jid::Jid;
use tessera_plugin_api::protocol::{
    ArchiveQuery, HookSpec, KvScope, Manifest, Registrations, TimerFired,
};
use tessera_plugin_api::stanza::{StanzaHook, StanzaKind, StanzaPoint};
use tessera_plugin_api::sync::locked;
use tessera_plugin_api::xml::{Element, ParseLimits};
use tessera_plugin_api::{
    reply, wire, Config, Event, EventFlow, Host, LogLevel, Module, PluginError, PluginErrorKind,
    Stanza, StanzaCondition, Verdict,
};

use archive::{archivable, stamped, strip_forged};
use prefs::Prefs;
use query::{Page, Query, Refusal};

/// The archive namespace.
pub const NS: &str = "urn:xmpp:mam:2";
pub(crate) const CLIENT_NS: &str = "jabber:client";
/// The host archive this module keeps messages in.
const ARCHIVE: &str = "messages";
const PREFS_KEY: &str = "prefs";
const USERS_PREFIX: &str = "users/";
const EXPIRE_TAG: &str = "expire";
/// How often expired entries are deleted.
const EXPIRE_EVERY_MS: u64 = 3_600_000;
/// Preferences kept in memory (a full cache is emptied, then refilled from the store).
const PREFS_CACHE: usize = 10_000;
/// Accounts known to exist, kept in memory likewise.
const EXISTS_CACHE: usize = 100_000;
/// Bytes of results one page may send: a quarter of the default send buffer, so that a page of
/// large messages cannot overflow the session's output and close it (the client gets a shorter
/// page, `complete` unset, and pages on).
const PAGE_BYTES: usize = 256 * 1024;
/// Limits for parsing a stored message back (it passed the host's stanza limits).
const STORED: ParseLimits = ParseLimits {
    max_depth: 64,
    max_elements: 65_536,
};

tessera_plugin_api::options! {
    /// The options as declared.
    pub struct Options {
        /// seconds an archived message is kept (0: forever)
        archive_expires_after: u64 = 90 * 86_400, range 0..=3_153_600_000;
    }
}

/// The hooks, by index in [`Registrations::stanza_hooks`].
mod hook {
    /// A message a session of the account sends.
    pub(crate) const SENT: u32 = 0;
    /// An archive IQ from a session of the account.
    pub(crate) const IQ: u32 = 3;
}

/// The module.
#[derive(Debug)]
pub struct Mam {
    domain: String,
    options: Options,
    /// Accounts noted in the store as having an archive (for expiry), this generation.
    noted: Mutex<HashSet<String>>,
    prefs: Mutex<HashMap<String, Prefs>>,
    /// Accounts seen to exist (a message to a name with no account is not archived: whoever
    /// registers the name later must not read it).
    exists: Mutex<HashSet<String>>,
}

impl Module for Mam {
    const NAME: &'static str = "mam";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "XEP-0313 Message Archive Management with XEP-0359 stanza ids".into(),
            options: Options::specs(),
            ..Manifest::default()
        }
    }

    fn init(host: &Host, config: &Config, _restore: Option<&[u8]>) -> Result<Self, PluginError> {
        let options = Options::from_config(config)?;
        if options.archive_expires_after > 0 {
            // Soon after a start (or a reload), then hourly.
            host.set_timer(60_000, EXPIRE_TAG)?;
        }
        Ok(Self {
            domain: host.host_info()?.domain,
            options,
            noted: Mutex::new(HashSet::new()),
            prefs: Mutex::new(HashMap::new()),
            exists: Mutex::new(HashSet::new()),
        })
    }

    fn registrations(&self) -> Registrations {
        let messages = |point| {
            StanzaHook::at(point)
                .kind(StanzaKind::Message)
                .priority(priority::NORMAL)
        };
        Registrations {
            // On the account's bare JID (account-disco-features), not the server's: the
            // server itself keeps no archive a client could query.
            // In the order of `hook`.
            stanza_hooks: vec![
                messages(StanzaPoint::ClientIn),
                messages(StanzaPoint::ToBare),
                messages(StanzaPoint::ToFull),
                // Answered here rather than as an IQ namespace, so that the results, sent to
                // the session, go out before the IQ result that ends them.
                StanzaHook::at(StanzaPoint::ClientIn)
                    .kind(StanzaKind::Iq)
                    .child_ns(NS)
                    .priority(priority::NORMAL),
            ],
            hooks: vec![
                HookSpec::new(hooks::BIND2_BOUND, priority::NORMAL),
                HookSpec::new(im::ACCOUNT_DISCO_FEATURES, priority::NORMAL),
            ],
            events: vec![HookSpec::new(events::USER_DELETED, priority::NORMAL)],
            ..Registrations::default()
        }
    }

    fn stanza(&self, host: &Host, stanza: Stanza<'_>) -> Result<Verdict, PluginError> {
        let header = stanza.header;
        let Some(account) = header.account else {
            return Ok(Verdict::Pass);
        };
        match header.hook {
            hook::SENT => self.sent(host, account, &stanza.element()?),
            hook::IQ => self.iq(host, account, header.session, &stanza.element()?),
            _ => self.received(host, account, &stanza.element()?),
        }
    }

    fn hook(
        &self,
        host: &Host,
        name: &str,
        payload: &[u8],
    ) -> Result<Option<Vec<u8>>, PluginError> {
        if name == im::ACCOUNT_DISCO_FEATURES {
            // XEP-0313 §7: the archive is the account's, so is its feature.
            return wire::encode(&features()).map(Some);
        }
        if name != hooks::BIND2_BOUND {
            return Ok(None);
        }
        let bound: Bind2Bound = wire::decode(name, payload)?;
        // XEP-0386 §: the archive's bounds, so the client knows where to catch up from.
        wire::encode(&vec![self.metadata(host, &bound.user)?]).map(Some)
    }

    fn on_event(&self, host: &Host, event: &Event) -> Result<EventFlow, PluginError> {
        if event.name == events::USER_DELETED {
            // The host deletes the archive with the account; the note for expiry goes too.
            let deleted: UserDeleted = event.decode()?;
            host.kv_delete(KvScope::Global, &format!("{USERS_PREFIX}{}", deleted.user))?;
            locked(&self.noted).remove(&deleted.user);
            locked(&self.prefs).remove(&deleted.user);
            locked(&self.exists).remove(&deleted.user);
        }
        Ok(EventFlow::Continue)
    }

    fn timer(&self, host: &Host, timer: TimerFired) -> Result<(), PluginError> {
        if timer.tag != EXPIRE_TAG {
            return Ok(());
        }
        host.set_timer(EXPIRE_EVERY_MS, EXPIRE_TAG)?;
        let cutoff = host
            .now_ms()
            .saturating_sub(self.options.archive_expires_after.saturating_mul(1000));
        let mut deleted = 0;
        for (key, _) in host.kv_list(KvScope::Global, USERS_PREFIX)? {
            if let Some(user) = key.strip_prefix(USERS_PREFIX) {
                deleted += host.archive_delete(ARCHIVE, user, Some(cutoff))?;
            }
        }
        if deleted > 0 {
            host.log(
                LogLevel::Info,
                &format!("expired {deleted} archived messages"),
            );
            host.count_one("expired", "archive", ARCHIVE);
        }
        Ok(())
    }
}

/// The archive's disco features (`#extended`: the `before-id`, `after-id` and `ids` fields).
fn features() -> Vec<String> {
    vec![NS.into(), format!("{NS}#extended")]
}

impl Mam {
    /// The error answering `iq` (an error or a result is never answered).
    fn refuse(&self, iq: &Element, condition: StanzaCondition, text: &str) -> Verdict {
        reply::error(iq, condition, Some(text), &self.domain).map_or(Verdict::Drop, Verdict::Reply)
    }

    fn own(&self, account: &str) -> String {
        format!("{account}@{}", self.domain)
    }

    fn bare(jid: &str) -> Option<String> {
        Jid::parse(jid).ok().map(|j| j.bare())
    }

    /// A message a session sends: archived for the sender, filed under the recipient.
    fn sent(&self, host: &Host, account: &str, message: &Element) -> Result<Verdict, PluginError> {
        let own = self.own(account);
        let Some(with) = message.attr("to").and_then(Self::bare) else {
            return Ok(Verdict::Pass);
        };
        // To the account itself: archived once, as received.
        if with == own || !archivable(message) {
            return Ok(Verdict::Pass);
        }
        if self.wanted(host, account, &with)? {
            self.append(host, account, &with, message)?;
            host.count_one("archived", "direction", "sent");
        }
        Ok(Verdict::Pass)
    }

    /// A message for the account, before delivery: archived, and stamped with its id.
    fn received(
        &self,
        host: &Host,
        account: &str,
        message: &Element,
    ) -> Result<Verdict, PluginError> {
        let own = self.own(account);
        let unstamped = strip_forged(message, &own);
        if !self.account_exists(host, account)? {
            // Bounced by the host; nothing kept for a name nobody holds.
            return Ok(unstamped.map_or(Verdict::Pass, Verdict::Replace));
        }
        let message = unstamped.as_ref().unwrap_or(message);
        let with = message
            .attr("from")
            .and_then(Self::bare)
            .unwrap_or_else(|| self.domain.clone());
        if !archivable(message) || !self.wanted(host, account, &with)? {
            return Ok(unstamped.map_or(Verdict::Pass, Verdict::Replace));
        }
        let id = self.append(host, account, &with, message)?;
        host.count_one("archived", "direction", "received");
        Ok(Verdict::Replace(stamped(message, &id, &own)))
    }

    fn append(
        &self,
        host: &Host,
        account: &str,
        with: &str,
        message: &Element,
    ) -> Result<String, PluginError> {
        let xml = message.to_xml_in("");
        let id = host.archive_append(
            ARCHIVE,
            account,
            with,
            host.now_ms(),
            wire::Bytes::new(xml.as_bytes()),
        )?;
        if self.options.archive_expires_after > 0 && locked(&self.noted).insert(account.to_owned())
        {
            host.kv_put(KvScope::Global, &format!("{USERS_PREFIX}{account}"), "")?;
        }
        Ok(id)
    }

    fn account_exists(&self, host: &Host, account: &str) -> Result<bool, PluginError> {
        if locked(&self.exists).contains(account) {
            return Ok(true);
        }
        let exists = host.user_exists(account)?;
        if exists {
            let mut cache = locked(&self.exists);
            if cache.len() >= EXISTS_CACHE {
                cache.clear();
            }
            cache.insert(account.to_owned());
        }
        Ok(exists)
    }

    /// Whether the account's preferences archive a conversation with `with`.
    fn wanted(&self, host: &Host, account: &str, with: &str) -> Result<bool, PluginError> {
        let prefs = self.prefs_of(host, account)?;
        Ok(prefs.archives(with, || {
            let query = ContactsQuery {
                user: account.to_owned(),
                contact: Some(with.to_owned()),
            };
            host.call_hook_as::<_, Vec<Contact>>(im::ROSTER_CONTACTS, &query)
                .is_ok_and(|rosters| rosters.iter().any(|r| !r.is_empty()))
        }))
    }

    fn prefs_of(&self, host: &Host, account: &str) -> Result<Prefs, PluginError> {
        if let Some(p) = locked(&self.prefs).get(account) {
            return Ok(p.clone());
        }
        let stored = host.kv_get(KvScope::Account(account), PREFS_KEY)?;
        let prefs = stored
            .and_then(|xml| tessera_plugin_api::xml::parse(xml.as_bytes(), STORED).ok())
            .and_then(|el| Prefs::read(&el, Self::bare).ok())
            .unwrap_or_default();
        let mut cache = locked(&self.prefs);
        if cache.len() >= PREFS_CACHE {
            cache.clear();
        }
        cache.insert(account.to_owned(), prefs.clone());
        Ok(prefs)
    }

    /// `<metadata/>` (§7): the first and the last entry, or nothing inside for an empty archive.
    fn metadata(&self, host: &Host, account: &str) -> Result<Element, PluginError> {
        let end = |reverse| -> Result<Option<(String, u64)>, PluginError> {
            let page = host.archive_query(
                ARCHIVE,
                account,
                ArchiveQuery {
                    limit: 1,
                    reverse,
                    ..ArchiveQuery::default()
                },
            )?;
            Ok(page.items.first().map(|i| (i.id.clone(), i.at_ms)))
        };
        let mut metadata = Element::new("metadata", NS);
        if let (Some(first), Some(last)) = (end(false)?, end(true)?) {
            for (name, (id, at)) in [("start", first), ("end", last)] {
                metadata.push_child(
                    Element::new(name, NS)
                        .with_attr("id", id)
                        .with_attr("timestamp", format_utc_millis(at)),
                );
            }
        }
        Ok(metadata)
    }

    /// An archive IQ of a session of `account` (§4–§7).
    fn iq(
        &self,
        host: &Host,
        account: &str,
        session: Option<u64>,
        iq: &Element,
    ) -> Result<Verdict, PluginError> {
        let own = self.own(account);
        // Only the account's own archive, at its bare JID (or no `to`): an IQ to another JID (a
        // room's archive) or to a full JID (the client there) goes on.
        if iq.attr("to").is_some_and(|to| {
            Jid::parse(to).map_or(true, |j| j.resource.is_some() || j.bare() != own)
        }) {
            return Ok(Verdict::Pass);
        }
        let Some(child) = iq.child_elements().find(|c| c.ns == NS) else {
            return Ok(Verdict::Pass);
        };
        let kind = iq.attr("type").unwrap_or_default();
        let answer = |payload: Option<Element>| {
            let mut result = reply::iq_result(iq, &self.domain);
            result.set_attr("from", &own);
            if let Some(p) = payload {
                result.push_child(p);
            }
            Verdict::Reply(result)
        };
        let refuse = |r: Refusal| self.refuse(iq, r.condition, &r.text);
        match (child.name.as_str(), kind) {
            ("query", "get") => Ok(answer(Some(query::form()))),
            ("query", "set") => match query::read(child, Self::bare) {
                Ok(q) => self.run_query(host, account, session, iq, &q),
                Err(r) => Ok(refuse(r)),
            },
            ("prefs", "get") => Ok(answer(Some(self.prefs_of(host, account)?.element()))),
            ("prefs", "set") => match Prefs::read(child, Self::bare) {
                Ok(p) => {
                    let xml = p.element().to_xml_in("");
                    host.kv_put(KvScope::Account(account), PREFS_KEY, &xml)?;
                    locked(&self.prefs).insert(account.to_owned(), p.clone());
                    Ok(answer(Some(p.element())))
                }
                Err(r) => Ok(refuse(r)),
            },
            ("metadata", "get") => Ok(answer(Some(self.metadata(host, account)?))),
            (name, _) => Ok(refuse(Refusal {
                condition: StanzaCondition::BadRequest,
                text: format!("<{name}/> of type '{kind}' is not an archive request"),
            })),
        }
    }

    /// Sends a page of results, then the IQ result with `<fin/>`, both to the session, so they
    /// arrive in that order.
    fn run_query(
        &self,
        host: &Host,
        account: &str,
        session: Option<u64>,
        iq: &Element,
        q: &Query,
    ) -> Result<Verdict, PluginError> {
        let own = self.own(account);
        let Some(session) = session else {
            return Ok(Verdict::Drop);
        };
        let to = iq.attr("from").unwrap_or(&own).to_owned();
        let fin_iq = |fin: Element| {
            let mut result = reply::iq_result(iq, &self.domain);
            result.set_attr("from", &own);
            result.with_child(fin)
        };
        if q.max == 0 {
            // XEP-0059 §2.7: the count alone. Only then: counting costs a scan of the
            // account's index (3.7 ms at 100,000 entries, docs/benchmarks.md) where the page
            // itself costs 31 µs, and `<count/>` is optional in a page.
            let count = if q.filtered() {
                None
            } else {
                Some(host.archive_count(ARCHIVE, account)?)
            };
            if count.is_none() {
                return Ok(self.refuse(
                    iq,
                    StanzaCondition::BadRequest,
                    "<max>0</max> (the count alone) is answered for an unfiltered query only",
                ));
            }
            return Ok(Verdict::Reply(fin_iq(query::fin(&[], false, count))));
        }
        let page = match host.archive_query(ARCHIVE, account, q.archive_query()) {
            Ok(p) => p,
            Err(e) if e.kind == PluginErrorKind::NOT_FOUND => {
                let text = "no archived message has that id (after-id, before-id or RSM)";
                return Ok(self.refuse(iq, StanzaCondition::ItemNotFound, text));
            }
            Err(e) => return Err(e),
        };
        // §4.1.4: every id asked for must exist.
        if !q.filter.ids.is_empty()
            && page.items.len() < q.filter.ids.len()
            && (q.max as usize) >= q.filter.ids.len()
        {
            let text = "no archived message has one of those ids";
            return Ok(self.refuse(iq, StanzaCondition::ItemNotFound, text));
        }
        let mut items = page.items;
        // A page read from the newest end comes newest first: chronological first.
        let newest_first = matches!(q.page, Page::Last | Page::Before(_));
        if newest_first {
            items.reverse();
        }
        // Within the byte budget, keeping the end the client pages from: the newest when it
        // pages backwards, the oldest otherwise.
        let mut budget = PAGE_BYTES;
        let mut fits = |item: &&tessera_plugin_api::protocol::ArchiveItem| {
            let cost = item.data.len() + 256;
            let ok = cost <= budget;
            budget = budget.saturating_sub(cost);
            ok
        };
        let kept: Vec<&tessera_plugin_api::protocol::ArchiveItem> = if newest_first {
            let mut k: Vec<_> = items.iter().rev().take_while(|i| fits(i)).collect();
            k.reverse();
            k
        } else {
            items.iter().take_while(|i| fits(i)).collect()
        };
        let complete = page.complete && kept.len() == items.len();
        // RSM <first/> and <last/> are the page's bounds in time, whatever order it is sent in
        // (a flipped page too: paging on from <first/> must not return the same page).
        let ids: Vec<&str> = kept.iter().map(|i| i.id.as_str()).collect();
        let mut order = kept.clone();
        if q.flip {
            order.reverse();
        }
        for item in order {
            let Ok(message) = tessera_plugin_api::xml::parse(&item.data, STORED) else {
                host.log(
                    LogLevel::Warn,
                    &format!("archive entry {} does not parse; skipped", item.id),
                );
                continue;
            };
            let result = query::result_message(item, message, q.queryid.as_deref(), &own, &to);
            host.send_to_session(session, result)?;
        }
        let fin = query::fin(&ids, complete, None);
        host.send_to_session(session, fin_iq(fin))?;
        host.count_one(
            "queries",
            "page",
            if complete { "complete" } else { "partial" },
        );
        Ok(Verdict::Handled)
    }
}

tessera_plugin_api::export_module!(Mam);

#[cfg(test)]
mod tests;
