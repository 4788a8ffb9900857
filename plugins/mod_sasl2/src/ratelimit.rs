//! Failed-authentication rate limits per account and per client IP address: sliding windows kept
//! in memory, with the time passed in by the caller (sans-IO; the module reads `Host::now_ms`).
//!
//! Each key keeps at most `max` timestamps (the newest ones), which is all a sliding-window check
//! needs; each table keeps at most [`MAX_KEYS`] keys, pruning expired ones first and then evicting
//! the key whose newest failure is oldest. A successful login clears the account's counter (not
//! the address's: an attacker could interleave logins to their own account).

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Most keys kept per table (accounts, addresses).
pub(crate) const MAX_KEYS: usize = 65_536;

/// One sliding-window table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Table {
    max: usize,
    entries: HashMap<String, VecDeque<u64>>,
}

impl Table {
    fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            entries: HashMap::new(),
        }
    }

    /// Milliseconds until `key` may try again, `None` when it is not limited.
    fn retry_after_ms(&self, key: &str, now: u64, window: u64) -> Option<u64> {
        let times = self.entries.get(key)?;
        let recent: Vec<u64> = times
            .iter()
            .copied()
            .filter(|t| t.saturating_add(window) > now)
            .collect();
        let pivot = recent.len().checked_sub(self.max)?;
        let unlock_at = recent.get(pivot)?.saturating_add(window);
        Some(unlock_at.saturating_sub(now).max(1))
    }

    fn record(&mut self, key: &str, now: u64, window: u64) {
        if !self.entries.contains_key(key) && self.entries.len() >= MAX_KEYS {
            self.make_room(now, window);
        }
        let times = self.entries.entry(key.to_owned()).or_default();
        times.push_back(now);
        while times.len() > self.max {
            times.pop_front();
        }
    }

    fn make_room(&mut self, now: u64, window: u64) {
        self.entries
            .retain(|_, times| times.back().is_some_and(|t| t.saturating_add(window) > now));
        if self.entries.len() < MAX_KEYS {
            return;
        }
        let oldest = self
            .entries
            .iter()
            .min_by_key(|(_, times)| times.back().copied().unwrap_or(0))
            .map(|(key, _)| key.clone());
        if let Some(key) = oldest {
            self.entries.remove(&key);
        }
    }

    fn snapshot(&self) -> Vec<(String, Vec<u64>)> {
        let mut out: Vec<_> = self
            .entries
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().copied().collect()))
            .collect();
        out.sort();
        out
    }

    fn restore(&mut self, saved: Vec<(String, Vec<u64>)>, now: u64, window: u64) {
        for (key, times) in saved {
            for t in times.into_iter().filter(|t| t.saturating_add(window) > now) {
                self.record(&key, t, window);
            }
        }
    }
}

/// Why an attempt is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limited {
    /// Whole seconds until the next attempt is allowed (at least 1).
    pub(crate) retry_after_secs: u64,
}

impl Limited {
    /// The `<text>` of the `<temporary-auth-failure/>` answer.
    pub(crate) fn text(self) -> String {
        format!(
            "Too many failed attempts; retry in {} s",
            self.retry_after_secs
        )
    }
}

fn limited(ms: u64) -> Limited {
    Limited {
        retry_after_secs: ms.div_ceil(1000).max(1),
    }
}

/// The per-account and per-address failure counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RateLimiter {
    window_ms: u64,
    users: Table,
    ips: Table,
}

/// The serialisable form of the counters (for hot swap).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LimiterSnapshot {
    /// Per account: failure timestamps (ms).
    pub(crate) users: Vec<(String, Vec<u64>)>,
    /// Per address: failure timestamps (ms).
    pub(crate) ips: Vec<(String, Vec<u64>)>,
}

impl RateLimiter {
    /// Limits: `max_per_user` / `max_per_ip` failures within `window_ms`.
    pub(crate) fn new(max_per_user: usize, max_per_ip: usize, window_ms: u64) -> Self {
        Self {
            window_ms: window_ms.max(1),
            users: Table::new(max_per_user),
            ips: Table::new(max_per_ip),
        }
    }

    /// Whether the address is limited now. An empty address is never limited.
    pub(crate) fn check_ip(&self, ip: &str, now: u64) -> Option<Limited> {
        if ip.is_empty() {
            return None;
        }
        self.ips
            .retry_after_ms(ip, now, self.window_ms)
            .map(limited)
    }

    /// Whether the account or the address is limited now (the longer wait wins).
    pub(crate) fn check(&self, user: &str, ip: &str, now: u64) -> Option<Limited> {
        let user = self.users.retry_after_ms(user, now, self.window_ms);
        let ip = if ip.is_empty() {
            None
        } else {
            self.ips.retry_after_ms(ip, now, self.window_ms)
        };
        user.into_iter().chain(ip).max().map(limited)
    }

    /// Count one failed attempt (account unknown when `user` is `None`).
    pub(crate) fn record_failure(&mut self, user: Option<&str>, ip: &str, now: u64) {
        if let Some(user) = user.filter(|u| !u.is_empty()) {
            self.users.record(user, now, self.window_ms);
        }
        if !ip.is_empty() {
            self.ips.record(ip, now, self.window_ms);
        }
    }

    /// A successful login clears the account's counter.
    pub(crate) fn record_success(&mut self, user: &str) {
        self.users.entries.remove(user);
    }

    /// The counters, for `save_state`.
    pub(crate) fn snapshot(&self) -> LimiterSnapshot {
        LimiterSnapshot {
            users: self.users.snapshot(),
            ips: self.ips.snapshot(),
        }
    }

    /// Load saved counters (dropping expired timestamps and applying this instance's limits).
    pub(crate) fn restore(&mut self, saved: LimiterSnapshot, now: u64) {
        self.users.restore(saved.users, now, self.window_ms);
        self.ips.restore(saved.ips, now, self.window_ms);
    }

    /// Number of accounts and addresses tracked (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> (usize, usize) {
        (self.users.entries.len(), self.ips.entries.len())
    }
}

#[cfg(test)]
#[path = "ratelimit_tests.rs"]
mod tests;
