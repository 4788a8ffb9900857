//! A sliding-window rate limiter for modules: at most `limit` events per key within a window,
//! kept in memory, with the time passed in by the caller (sans-IO; a module reads
//! [`crate::Host::now_ms`]). Key accounts by their canonical name and client addresses by
//! [`address_key`] (IPv6 by /64, since one subscriber holds a whole /64).
//!
//! Memory is bounded: a window tracks at most [`MAX_KEYS`] keys. An attacker must not be able
//! to flush a victim's counter by filling the table with fresh keys, nor to lock everyone out
//! by filling it, so a full table first drops expired keys, then the key with the fewest events
//! (oldest first) that is not at its limit; a key at its limit is never dropped. When every
//! tracked key is at its limit a new key is not tracked, and so not limited, until one expires:
//! filling the table costs `MAX_KEYS` times the limit in events within one window.
//! Both indexes are ordered sets, so an insertion costs O(log n), never a scan.
//!
//! ```
//! use tessera_plugin_api::ratelimit::{address_key, Window};
//!
//! // Two registrations per address per hour.
//! let mut w = Window::new(2, 3_600_000);
//! let key = address_key("2001:db8::1");
//! assert!(w.admit(&key, 0).is_ok());
//! assert!(w.admit(&address_key("2001:db8::2"), 1).is_ok(), "the same /64");
//! assert_eq!(w.admit(&key, 2), Err(3_600_000 - 2), "limited: retry in ms");
//! assert!(w.admit(&key, 3_600_000).is_ok(), "the first event left the window");
//! ```

use std::collections::{BTreeSet, HashMap, VecDeque};

pub use crate::names::address_key;

/// Most keys one window tracks.
pub const MAX_KEYS: usize = 65_536;

/// One sliding-window counter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    /// Events within the window at which a key is at its limit.
    limit: usize,
    /// Timestamps kept per key (at least `limit`).
    keep: usize,
    window_ms: u64,
    entries: HashMap<String, VecDeque<u64>>,
    /// (newest event, key): expired keys first.
    by_age: BTreeSet<(u64, String)>,
    /// (events kept, newest event, key): the lightest key first.
    by_weight: BTreeSet<(usize, u64, String)>,
}

impl Window {
    /// At most `limit` (at least 1) events per key within `window_ms` (at least 1).
    pub fn new(limit: usize, window_ms: u64) -> Self {
        let limit = limit.max(1);
        Self {
            limit,
            keep: limit,
            window_ms: window_ms.max(1),
            ..Self::default()
        }
    }

    /// Keep up to `keep` timestamps per key (for callers that look past the limit, such as a
    /// backoff that grows with every event beyond it).
    pub fn keeping(mut self, keep: usize) -> Self {
        self.keep = keep.max(self.limit);
        self
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The window.
    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// Events of `key` within the window at `now`, oldest first (no allocation).
    pub fn recent<'a>(&'a self, key: &str, now: u64) -> impl Iterator<Item = u64> + 'a {
        let window = self.window_ms;
        self.entries
            .get(key)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |t| t.saturating_add(window) > now)
    }

    /// Milliseconds until `key` is below its limit again (at least 1); `None` when it is below
    /// it now.
    pub fn retry_after_ms(&self, key: &str, now: u64) -> Option<u64> {
        let count = self.recent(key, now).count();
        let pivot = count.checked_sub(self.limit)?;
        let unlock_at = self
            .recent(key, now)
            .nth(pivot)?
            .saturating_add(self.window_ms);
        Some(unlock_at.saturating_sub(now).max(1))
    }

    /// Count one event of `key` at `now` (whether or not it is over the limit).
    pub fn record(&mut self, key: &str, now: u64) {
        let mut times = match self.unindex(key) {
            Some(times) => times,
            None if self.entries.len() < MAX_KEYS || self.make_room(now) => VecDeque::new(),
            None => return,
        };
        times.push_back(now);
        while times.len() > self.keep {
            times.pop_front();
        }
        self.index(key.to_owned(), times);
    }

    /// Check and, when allowed, count: `Err` with the milliseconds to wait when `key` is at
    /// its limit (nothing is counted then, so waiting is enough to get through).
    ///
    /// # Errors
    /// The wait, in milliseconds (at least 1).
    pub fn admit(&mut self, key: &str, now: u64) -> Result<(), u64> {
        match self.retry_after_ms(key, now) {
            Some(wait) => Err(wait),
            None => {
                self.record(key, now);
                Ok(())
            }
        }
    }

    /// Whether one more event of `key` is within the limit now (nothing is counted).
    pub fn allows(&self, key: &str, now: u64) -> bool {
        self.retry_after_ms(key, now).is_none()
    }

    /// Drop every key whose events have all left the window (a periodic cleanup; a full table
    /// also does this by itself).
    pub fn prune(&mut self, now: u64) {
        while let Some((last, key)) = self.by_age.first().cloned() {
            if last.saturating_add(self.window_ms) > now {
                break;
            }
            self.unindex(&key);
        }
    }

    /// [`Window::admit`] for limits that must hold even against an attacker who filled the
    /// table (account creation): a new key that cannot be tracked, because every tracked key
    /// is at its limit, is refused until the oldest key expires, instead of passing untracked.
    /// Not for limits whose refusal would lock a legitimate user out of their own account.
    ///
    /// # Errors
    /// The wait, in milliseconds (at least 1).
    pub fn admit_strict(&mut self, key: &str, now: u64) -> Result<(), u64> {
        if !self.entries.contains_key(key) && self.entries.len() >= MAX_KEYS && !self.make_room(now)
        {
            let oldest = self.by_age.first().map_or(now, |(last, _)| *last);
            return Err(oldest
                .saturating_add(self.window_ms)
                .saturating_sub(now)
                .max(1));
        }
        self.admit(key, now)
    }

    /// Forget a key (e.g. a successful login clears its failures).
    pub fn forget(&mut self, key: &str) {
        self.unindex(key);
    }

    /// Number of keys tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every key with its timestamps, sorted (for a module's `save_state`).
    pub fn snapshot(&self) -> Vec<(String, Vec<u64>)> {
        let mut out: Vec<_> = self
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().copied().collect()))
            .collect();
        out.sort();
        out
    }

    /// Load a snapshot (a previous generation's): expired timestamps are dropped and this
    /// window's limits apply.
    pub fn restore(&mut self, saved: Vec<(String, Vec<u64>)>, now: u64) {
        let window = self.window_ms;
        for (key, times) in saved {
            for t in times.into_iter().filter(|t| t.saturating_add(window) > now) {
                self.record(&key, t);
            }
        }
    }

    fn unindex(&mut self, key: &str) -> Option<VecDeque<u64>> {
        let times = self.entries.remove(key)?;
        let last = times.back().copied().unwrap_or(0);
        self.by_age.remove(&(last, key.to_owned()));
        self.by_weight.remove(&(times.len(), last, key.to_owned()));
        Some(times)
    }

    fn index(&mut self, key: String, times: VecDeque<u64>) {
        let last = times.back().copied().unwrap_or(0);
        self.by_age.insert((last, key.clone()));
        self.by_weight.insert((times.len(), last, key.clone()));
        self.entries.insert(key, times);
    }

    /// Free one slot: expired keys first, then the lightest key not at its limit. `false` when
    /// every key is at its limit.
    fn make_room(&mut self, now: u64) -> bool {
        self.prune(now);
        if self.entries.len() < MAX_KEYS {
            return true;
        }
        let lightest = self.by_weight.first().map(|(_, _, key)| key.clone());
        match lightest {
            Some(key) if self.retry_after_ms(&key, now).is_none() => {
                self.unindex(&key);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_admits_its_limit_then_slides() {
        let mut w = Window::new(2, 1000);
        assert_eq!(w.admit("a", 0), Ok(()));
        assert_eq!(w.admit("a", 10), Ok(()));
        assert_eq!(w.admit("a", 20), Err(980), "the oldest leaves at 1000");
        assert_eq!(w.admit("b", 20), Ok(()), "keys are independent");
        assert_eq!(
            w.admit("a", 1000),
            Ok(()),
            "the first event left the window"
        );
        assert_eq!(w.admit("a", 1005), Err(5));
        w.forget("a");
        assert!(w.allows("a", 1006));
        assert_eq!(w.admit("a", 1006), Ok(()));
        w.prune(2005);
        assert_eq!(w.len(), 1, "a's last event (1006) is still in the window");
        w.prune(2006);
        assert!(w.is_empty());
    }

    #[test]
    fn a_refused_attempt_is_not_counted() {
        let mut w = Window::new(1, 1000);
        assert!(w.admit("a", 0).is_ok());
        for t in 1..999 {
            assert!(w.admit("a", t).is_err());
        }
        assert!(w.admit("a", 1000).is_ok(), "waiting is enough");
    }

    #[test]
    fn a_full_table_never_drops_a_key_at_its_limit() {
        let mut w = Window::new(2, 10_000);
        w.record("victim", 0);
        w.record("victim", 0);
        for i in 0..MAX_KEYS {
            w.record(&format!("k{i}"), 1);
        }
        assert_eq!(w.len(), MAX_KEYS);
        assert!(
            w.retry_after_ms("victim", 2).is_some(),
            "fresh keys pushed out the light ones, not the victim"
        );
        // Every key at its limit: a new key is not tracked, so not limited (no lockout).
        let mut full = Window::new(1, 10_000);
        for i in 0..MAX_KEYS {
            full.record(&format!("k{i}"), 1);
        }
        full.record("new", 2);
        assert!(full.admit("new", 3).is_ok());
        assert!(full.retry_after_ms("k0", 3).is_some());
        // The strict form refuses what it cannot track, until the oldest key expires.
        assert_eq!(full.admit_strict("other", 4), Err(9_997));
        assert!(
            full.admit_strict("k0", 4).is_err(),
            "tracked and at its limit"
        );
        // Expired keys make room first.
        assert!(full.admit("new", 20_000).is_ok());
        assert_eq!(full.admit("new", 20_001), Err(9_999));
    }

    #[test]
    fn snapshots_round_trip_without_expired_events() {
        let mut a = Window::new(2, 1000);
        a.record("alice", 100);
        a.record("alice", 150);
        a.record("bob", 0);
        let mut b = Window::new(2, 1000);
        b.restore(a.snapshot(), 900);
        assert_eq!(b.retry_after_ms("alice", 900), Some(200));
        assert_eq!(b.snapshot().len(), 2, "bob's event is kept until 1000");
        let mut c = Window::new(2, 1000);
        c.restore(a.snapshot(), 1000);
        assert_eq!(c.snapshot(), vec![("alice".to_owned(), vec![100, 150])]);
    }

    #[test]
    fn keeping_more_than_the_limit_shows_the_excess() {
        let mut w = Window::new(1, 1000).keeping(4);
        for t in 0..6 {
            w.record("a", t);
        }
        assert_eq!(w.recent("a", 10).collect::<Vec<_>>(), vec![2, 3, 4, 5]);
        assert_eq!(w.limit(), 1);
    }
}
