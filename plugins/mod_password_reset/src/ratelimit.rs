//! Sliding-window counters (in memory, carried across a hot swap by `save_state`): reset mails
//! per account, reset requests per client IP, page submissions per client IP.
//!
//! Each counter keeps the times of the events it admitted within the window. Memory is bounded:
//! past [`MAX_KEYS`] keys, expired ones are dropped, and if the table is still full a new key is
//! refused (limited) rather than let the table grow.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Most keys one counter tracks.
pub(crate) const MAX_KEYS: usize = 100_000;
/// Format version of [`Snapshot`].
const STATE_VERSION: u32 = 1;

/// One sliding-window counter.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    max: usize,
    window_ms: u64,
    hits: HashMap<String, VecDeque<u64>>,
}

impl Window {
    /// At most `max` events per key within `window_ms`.
    pub(crate) fn new(max: usize, window_ms: u64) -> Self {
        Self {
            max,
            window_ms,
            hits: HashMap::new(),
        }
    }

    fn prune_key(&mut self, key: &str, now_ms: u64) {
        let window = self.window_ms;
        let empty = match self.hits.get_mut(key) {
            Some(q) => {
                while q
                    .front()
                    .is_some_and(|t| now_ms.saturating_sub(*t) >= window)
                {
                    q.pop_front();
                }
                q.is_empty()
            }
            None => false,
        };
        if empty {
            self.hits.remove(key);
        }
    }

    /// Drop every expired event (and empty keys).
    pub(crate) fn prune(&mut self, now_ms: u64) {
        let window = self.window_ms;
        self.hits.retain(|_, q| {
            q.retain(|t| now_ms.saturating_sub(*t) < window);
            !q.is_empty()
        });
    }

    /// Whether one more event for `key` is within the limit (nothing is recorded).
    pub(crate) fn allows(&mut self, key: &str, now_ms: u64) -> bool {
        self.prune_key(key, now_ms);
        match self.hits.get(key) {
            Some(q) => q.len() < self.max,
            None => {
                if self.hits.len() >= MAX_KEYS {
                    self.prune(now_ms);
                }
                self.hits.len() < MAX_KEYS
            }
        }
    }

    /// Record an event for `key`.
    pub(crate) fn record(&mut self, key: &str, now_ms: u64) {
        self.hits
            .entry(key.to_owned())
            .or_default()
            .push_back(now_ms);
    }

    /// Check and, when allowed, record.
    pub(crate) fn admit(&mut self, key: &str, now_ms: u64) -> bool {
        let ok = self.allows(key, now_ms);
        if ok {
            self.record(key, now_ms);
        }
        ok
    }
}

/// The module's three counters.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Reset mails per account.
    pub(crate) mails_per_user: Window,
    /// Reset requests per client IP.
    pub(crate) requests_per_ip: Window,
    /// Page submissions per client IP.
    pub(crate) posts_per_ip: Window,
}

/// The counters as saved for the next generation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    version: u32,
    mails_per_user: Vec<(String, Vec<u64>)>,
    requests_per_ip: Vec<(String, Vec<u64>)>,
    posts_per_ip: Vec<(String, Vec<u64>)>,
}

fn dump(w: &Window) -> Vec<(String, Vec<u64>)> {
    w.hits
        .iter()
        .map(|(k, q)| (k.clone(), q.iter().copied().collect()))
        .collect()
}

fn load(w: &mut Window, entries: Vec<(String, Vec<u64>)>, now_ms: u64) {
    for (key, times) in entries.into_iter().take(MAX_KEYS) {
        w.hits.insert(key, times.into_iter().collect());
    }
    w.prune(now_ms);
}

impl Limits {
    /// Counters with these maxima sharing one window.
    pub(crate) fn new(per_user: usize, per_ip: usize, posts_per_ip: usize, window_ms: u64) -> Self {
        Self {
            mails_per_user: Window::new(per_user, window_ms),
            requests_per_ip: Window::new(per_ip, window_ms),
            posts_per_ip: Window::new(posts_per_ip, window_ms),
        }
    }

    /// Everything, for `save_state`.
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: STATE_VERSION,
            mails_per_user: dump(&self.mails_per_user),
            requests_per_ip: dump(&self.requests_per_ip),
            posts_per_ip: dump(&self.posts_per_ip),
        }
    }

    /// Load a previous generation's counters (this generation's maxima apply).
    ///
    /// # Errors
    /// An unknown format version.
    pub(crate) fn restore(&mut self, snap: Snapshot, now_ms: u64) -> Result<(), String> {
        if snap.version != STATE_VERSION {
            return Err(format!("unknown state version {}", snap.version));
        }
        load(&mut self.mails_per_user, snap.mails_per_user, now_ms);
        load(&mut self.requests_per_ip, snap.requests_per_ip, now_ms);
        load(&mut self.posts_per_ip, snap.posts_per_ip, now_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_admits_max_events_then_slides() {
        let mut w = Window::new(2, 1000);
        assert!(w.admit("a", 0));
        assert!(w.admit("a", 10));
        assert!(!w.admit("a", 20));
        assert!(w.admit("b", 20), "keys are independent");
        assert!(!w.allows("a", 999));
        assert!(w.admit("a", 1000), "the first event left the window");
        assert!(!w.admit("a", 1005));
        w.prune(5000);
        assert!(w.hits.is_empty());
    }

    #[test]
    fn the_table_is_bounded() {
        let mut w = Window::new(1, 1000);
        for i in 0..MAX_KEYS {
            w.record(&i.to_string(), 0);
        }
        assert!(!w.allows("new", 10), "full of live keys: refuse");
        assert!(!w.allows("0", 10), "a known key still counts");
        assert!(
            w.allows("new", 2000),
            "expired keys are dropped to make room"
        );
    }

    #[test]
    fn snapshots_round_trip_and_versions_are_checked() {
        let mut a = Limits::new(3, 10, 30, 1000);
        a.mails_per_user.record("alice", 100);
        a.requests_per_ip.record("127.0.0.1", 100);
        a.posts_per_ip.record("::1", 5);
        let snap = a.snapshot();
        let json = serde_json::to_string(&snap).expect("json");
        let mut b = Limits::new(1, 1, 1, 1000);
        let back: Snapshot = serde_json::from_str(&json).expect("parse");
        b.restore(back, 200).expect("restore");
        assert!(!b.mails_per_user.allows("alice", 200));
        assert!(!b.requests_per_ip.allows("127.0.0.1", 200));
        assert!(b.posts_per_ip.allows("::1", 1005), "expired on restore");
        let bad = Snapshot {
            version: 99,
            ..Snapshot::default()
        };
        assert!(b.restore(bad, 0).is_err());
    }
}
