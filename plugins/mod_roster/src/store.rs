//! Where a roster lives: the module's key-value store, in the account's scope (deleted with
//! the account).
//!
//! * `i:<bare JID>` holds an item.
//! * `r:<bare JID>` a contact's pending subscription request: the stanza as it arrived
//!   (RFC 6121 §3.1.3: extensions included), or nothing for a request that was shown but not
//!   kept (beyond the number or size of requests kept). Either way it is pending, so that
//!   approving it sends `subscribed`; only a kept one is shown again at the next login.
//! * `idx` the roster's summary ([`Summary`]): its version, and for each item its subscription
//!   and stored size, for each request whether its stanza is kept. What only counts (limits)
//!   or only needs subscriptions (`roster-contacts`, asked at every presence broadcast) reads
//!   this one entry instead of every item.
//!
//! Every change writes what it touches and the new summary in one `kv_write` ([`Change`]), so
//! the two never disagree, even across a crash. A roster written before the summary existed
//! (with a `ver` entry) gets one built from its entries the first time it is read.

use std::collections::BTreeMap;

use tessera_plugin_api::protocol::{KvScope, KvWrite};
use tessera_plugin_api::{Host, PluginError};

use crate::item::Item;
use crate::subscription::Subscription;

const ITEM: &str = "i:";
const REQUEST: &str = "r:";
const SUMMARY: &str = "idx";
/// The version entry of rosters written before the summary.
const OLD_VERSION: &str = "ver";

/// What the summary knows of an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its subscription.
    pub subscription: Subscription,
    /// The size of its stored form.
    pub bytes: usize,
}

/// A roster in brief: its version, items and requests, without names, groups or stanzas.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The roster version, bumped by every change a client would be pushed.
    pub ver: u64,
    items: BTreeMap<String, Entry>,
    /// Contact → whether the request's stanza is kept.
    requests: BTreeMap<String, bool>,
    /// Built from the entries of a roster written before summaries: its `ver` entry goes with
    /// the first change.
    rebuilt: bool,
}

impl Summary {
    /// How many items.
    pub fn items(&self) -> usize {
        self.items.len()
    }

    /// The stored size of every item together.
    pub fn bytes(&self) -> usize {
        self.items
            .values()
            .fold(0, |sum, e| sum.saturating_add(e.bytes))
    }

    /// The stored size of one item (0 if there is none).
    pub fn bytes_of(&self, jid: &str) -> usize {
        self.items.get(jid).map_or(0, |e| e.bytes)
    }

    /// Every item's contact and subscription, ordered by JID.
    pub fn contacts(&self) -> impl Iterator<Item = (&str, Subscription)> {
        self.items
            .iter()
            .map(|(jid, e)| (jid.as_str(), e.subscription))
    }

    /// Whether a contact's request is pending (kept or not).
    pub fn has_request(&self, jid: &str) -> bool {
        self.requests.contains_key(jid)
    }

    /// The contacts with a pending request, kept or not, ordered by JID.
    pub fn pending_contacts(&self) -> impl Iterator<Item = &str> {
        self.requests.keys().map(String::as_str)
    }

    /// Whether a contact's request is kept whole.
    pub fn request_kept(&self, jid: &str) -> bool {
        self.requests.get(jid) == Some(&true)
    }

    /// Pending requests, kept or not.
    pub fn requests(&self) -> usize {
        self.requests.len()
    }

    /// Pending requests whose stanza is kept.
    pub fn kept_requests(&self) -> usize {
        self.requests.values().filter(|kept| **kept).count()
    }

    /// The contacts whose request is kept, ordered by JID, after `cursor` (`""`: from the
    /// first).
    pub fn kept_after<'s>(&'s self, cursor: &'s str) -> impl Iterator<Item = &'s str> {
        self.requests
            .iter()
            .filter(move |(jid, kept)| **kept && jid.as_str() > cursor)
            .map(|(jid, _)| jid.as_str())
    }

    /// The stored form: a line per fact, `v <ver>`, `i <jid> <subscription> <bytes>`,
    /// `r <jid> <0|1>` (a bare JID has no space).
    pub fn encode(&self) -> String {
        let mut out = format!("v {}\n", self.ver);
        for (jid, e) in &self.items {
            out.push_str(&format!(
                "i {jid} {} {}\n",
                e.subscription.as_str(),
                e.bytes
            ));
        }
        for (jid, kept) in &self.requests {
            out.push_str(&format!("r {jid} {}\n", u8::from(*kept)));
        }
        out
    }

    /// A summary from its stored form (`None` if it is not one: it is then built again).
    pub fn decode(stored: &str) -> Option<Self> {
        let mut summary = Self::default();
        for line in stored.lines() {
            let mut f = line.split(' ');
            match (f.next()?, f.next()?, f.next(), f.next()) {
                ("v", ver, None, None) => summary.ver = ver.parse().ok()?,
                ("i", jid, Some(sub), Some(bytes)) => {
                    let entry = Entry {
                        subscription: Subscription::parse(sub)?,
                        bytes: bytes.parse().ok()?,
                    };
                    summary.items.insert(jid.to_owned(), entry);
                }
                ("r", jid, Some(kept), None) => {
                    summary.requests.insert(jid.to_owned(), kept == "1");
                }
                _ => return None,
            }
        }
        Some(summary)
    }
}

/// One account's roster in the store.
#[derive(Clone, Copy, Debug)]
pub struct Store<'a> {
    host: &'a Host,
    user: &'a str,
}

impl<'a> Store<'a> {
    /// The roster of `user`.
    pub fn of(host: &'a Host, user: &'a str) -> Self {
        Self { host, user }
    }

    fn scope(&self) -> KvScope<'a> {
        KvScope::Account(self.user)
    }

    /// The item for a contact.
    ///
    /// # Errors
    /// The store failed.
    pub fn item(&self, jid: &str) -> Result<Option<Item>, PluginError> {
        Ok(self
            .host
            .kv_get(self.scope(), &format!("{ITEM}{jid}"))?
            .and_then(|v| Item::decode(&v)))
    }

    /// Every item, ordered by JID.
    ///
    /// # Errors
    /// The store failed.
    pub fn items(&self) -> Result<Vec<Item>, PluginError> {
        let mut items: Vec<Item> = self
            .host
            .kv_list(self.scope(), ITEM)?
            .iter()
            .filter_map(|(_, v)| Item::decode(v))
            .collect();
        items.sort_by(|a, b| a.jid.cmp(&b.jid));
        Ok(items)
    }

    /// A contact's kept request, as it arrived (`None` also for a request shown but not kept).
    ///
    /// # Errors
    /// The store failed.
    pub fn request(&self, jid: &str) -> Result<Option<String>, PluginError> {
        Ok(self
            .host
            .kv_get(self.scope(), &format!("{REQUEST}{jid}"))?
            .filter(|stanza| !stanza.is_empty()))
    }

    /// The roster version alone: the first line of the summary, without reading the rest
    /// (a client that is current, the common login, needs nothing else). Falls back to
    /// [`Store::summary`] when there is no readable summary.
    ///
    /// # Errors
    /// The store failed.
    pub fn version(&self) -> Result<u64, PluginError> {
        let first_line = self.host.kv_get(self.scope(), SUMMARY)?.and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.strip_prefix("v "))
                .and_then(|v| v.parse().ok())
        });
        match first_line {
            Some(ver) => Ok(ver),
            None => Ok(self.summary()?.ver),
        }
    }

    /// The roster's summary (built from its entries if it has none yet).
    ///
    /// # Errors
    /// The store failed.
    pub fn summary(&self) -> Result<Summary, PluginError> {
        let stored = self.host.kv_get(self.scope(), SUMMARY)?;
        if let Some(summary) = stored.as_deref().and_then(Summary::decode) {
            return Ok(summary);
        }
        // Built again: from an older roster's `ver`, or past a damaged summary's version, so
        // that a client holding that version is not told it is current.
        let old = self
            .host
            .kv_get(self.scope(), OLD_VERSION)?
            .and_then(|v| v.parse::<u64>().ok());
        let damaged = stored.as_deref().map(|s| {
            self.host.log(
                tessera_plugin_api::LogLevel::Warn,
                &format!(
                    "the roster summary of {} was unreadable; rebuilt",
                    self.user
                ),
            );
            s.lines()
                .next()
                .and_then(|l| l.strip_prefix("v "))
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(1, |v| v.saturating_add(1))
        });
        let mut summary = Summary {
            rebuilt: true,
            ver: old.max(damaged).unwrap_or(0),
            ..Summary::default()
        };
        for (_, stored) in self.host.kv_list(self.scope(), ITEM)? {
            if let Some(item) = Item::decode(&stored) {
                summary.items.insert(
                    item.jid.clone(),
                    Entry {
                        subscription: item.subscription,
                        bytes: stored.len(),
                    },
                );
            }
        }
        for (key, stanza) in self.host.kv_list(self.scope(), REQUEST)? {
            if let Some(jid) = key.strip_prefix(REQUEST) {
                summary.requests.insert(jid.to_owned(), !stanza.is_empty());
            }
        }
        Ok(summary)
    }

    /// Write a change and its summary in one step.
    ///
    /// # Errors
    /// The store failed: nothing was written.
    pub fn commit(&self, change: Change) -> Result<(), PluginError> {
        if change.writes.is_empty() {
            return Ok(());
        }
        let mut writes = change.writes;
        if change.summary.rebuilt {
            writes.push(KvWrite::delete(OLD_VERSION));
        }
        writes.push(KvWrite::put(SUMMARY, change.summary.encode()));
        self.host.kv_write(self.scope(), writes)
    }
}

/// Changes to one roster, written together by [`Store::commit`].
#[derive(Debug)]
pub struct Change {
    summary: Summary,
    writes: Vec<KvWrite>,
}

impl Change {
    /// Changes to the roster `summary` describes.
    pub fn on(summary: Summary) -> Self {
        Self {
            summary,
            writes: Vec::new(),
        }
    }

    /// The summary as it will be.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Write an item.
    pub fn put_item(&mut self, item: &Item) {
        let stored = item.encode();
        self.summary.items.insert(
            item.jid.clone(),
            Entry {
                subscription: item.subscription,
                bytes: stored.len(),
            },
        );
        self.writes
            .push(KvWrite::put(format!("{ITEM}{}", item.jid), stored));
    }

    /// Delete an item.
    pub fn delete_item(&mut self, jid: &str) {
        self.summary.items.remove(jid);
        self.writes.push(KvWrite::delete(format!("{ITEM}{jid}")));
    }

    /// Record a contact's request: its stanza kept, or (`None`) only that it is pending.
    pub fn put_request(&mut self, jid: &str, stanza: Option<&str>) {
        self.summary
            .requests
            .insert(jid.to_owned(), stanza.is_some());
        self.writes.push(KvWrite::put(
            format!("{REQUEST}{jid}"),
            stanza.unwrap_or_default(),
        ));
    }

    /// Forget a contact's request.
    pub fn forget_request(&mut self, jid: &str) {
        if self.summary.requests.remove(jid).is_some() {
            self.writes.push(KvWrite::delete(format!("{REQUEST}{jid}")));
        }
    }

    /// Count a change a client is pushed; answers the new version.
    pub fn bump(&mut self) -> u64 {
        self.summary.ver += 1;
        self.summary.ver
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_round_trips_and_refuses_what_it_did_not_write() {
        let mut change = Change::on(Summary::default());
        let mut item = Item::new("juliet@example.com");
        item.subscription = Subscription::Both;
        change.put_item(&item);
        change.put_item(&Item::new("nurse@example.com"));
        change.put_request("romeo@example.net", Some("<presence/>"));
        change.put_request("tybalt@example.net", None);
        assert_eq!(change.bump(), 1);
        let summary = change.summary().clone();
        assert_eq!(Summary::decode(&summary.encode()), Some(summary.clone()));
        assert_eq!(
            (summary.items(), summary.requests(), summary.kept_requests()),
            (2, 2, 1)
        );
        assert_eq!(
            summary.bytes(),
            item.encode().len() + Item::new("nurse@example.com").encode().len()
        );
        assert_eq!(
            summary.kept_after("").collect::<Vec<_>>(),
            ["romeo@example.net"]
        );
        assert_eq!(summary.kept_after("romeo@example.net").count(), 0);
        for bad in ["x", "i a@b", "i a@b both", "v one", "i a@b weird 3"] {
            assert_eq!(Summary::decode(bad), None, "{bad}");
        }
        let huge = Summary::decode(&format!("v 1\ni a@b none {}\ni c@d none 5\n", usize::MAX))
            .expect("decodes");
        assert_eq!(huge.bytes(), usize::MAX, "saturates");
    }
}
