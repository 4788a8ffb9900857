//! Failed-authentication limits that keep guessing expensive without handing anyone a lockout:
//! sliding windows kept in memory, with the time passed in by the caller (sans-IO; the module
//! reads `Host::now_ms`). Addresses are keyed by `names::address_key` (IPv6 by /64), accounts by
//! their canonical form.
//!
//! Three counters, each over `sasl2_failure_window`:
//! * **per address** (`sasl2_max_failures_per_ip`): an address over it is refused for every
//!   account until its oldest failure leaves the window;
//! * **per account and address** (`sasl2_max_failures_per_user`): that address is refused for that
//!   account; the owner, elsewhere, is not;
//! * **per account** (`sasl2_account_backoff_after`): past it the account is not locked; every
//!   address that has already failed on it must wait between attempts, 1 s doubling per further
//!   failure up to `sasl2_account_backoff_max`. An address with no failure on the account tries at
//!   once, and a FAST token login (unguessable) is never held back by this counter.
//!
//! A successful login clears the account's counters (not the address's: an attacker could
//! interleave logins to their own account).
//!
//! Tables hold at most [`MAX_KEYS`] keys each. An attacker must not be able to flush a victim's
//! counter by filling a table with fresh keys, so a full table first drops expired keys, then the
//! key with the fewest failures (oldest first) that is not at its limit; a key at its limit is
//! never dropped. A table whose every key is at its limit tracks no new key until one expires:
//! filling one costs an attacker `MAX_KEYS` times the limit in failures within one window (over
//! 650,000 for the account table at the defaults), each a TLS connection and a SASL exchange.
//! Both indexes are ordered sets, so an insertion costs O(log n), never a scan.

use std::collections::{BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// Most keys kept per table.
pub(crate) const MAX_KEYS: usize = 65_536;
/// The first wait of the account backoff.
const BACKOFF_BASE_MS: u64 = 1_000;
/// Failure timestamps kept per account beyond the backoff threshold (2^16 s exceeds any cap).
const BACKOFF_STEPS: usize = 16;

/// One sliding-window table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Table {
    /// Failures within the window at which a key is at its limit.
    limit: usize,
    /// Timestamps kept per key.
    keep: usize,
    entries: HashMap<String, VecDeque<u64>>,
    /// (newest failure, key): expired keys first.
    by_age: BTreeSet<(u64, String)>,
    /// (failures kept, newest failure, key): the lightest key first.
    by_weight: BTreeSet<(usize, u64, String)>,
}

impl Table {
    fn new(limit: usize, keep: usize) -> Self {
        let limit = limit.max(1);
        Self {
            limit,
            keep: keep.max(limit),
            ..Self::default()
        }
    }

    /// Failures of `key` within the window, oldest first (no allocation: this runs on every
    /// login attempt).
    fn recent<'a>(&'a self, key: &str, now: u64, window: u64) -> impl Iterator<Item = u64> + 'a {
        self.entries
            .get(key)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |t| t.saturating_add(window) > now)
    }

    /// Milliseconds until `key` is below its limit again, `None` when it is below now.
    fn retry_after_ms(&self, key: &str, now: u64, window: u64) -> Option<u64> {
        let count = self.recent(key, now, window).count();
        let pivot = count.checked_sub(self.limit)?;
        let unlock_at = self
            .recent(key, now, window)
            .nth(pivot)?
            .saturating_add(window);
        Some(unlock_at.saturating_sub(now).max(1))
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

    fn record(&mut self, key: &str, now: u64, window: u64) {
        let times = match self.unindex(key) {
            Some(times) => times,
            None if self.entries.len() < MAX_KEYS || self.make_room(now, window) => VecDeque::new(),
            None => return,
        };
        let mut times = times;
        times.push_back(now);
        while times.len() > self.keep {
            times.pop_front();
        }
        self.index(key.to_owned(), times);
    }

    /// Free one slot: expired keys first, then the lightest key not at its limit. `false` when
    /// every key is at its limit.
    fn make_room(&mut self, now: u64, window: u64) -> bool {
        while let Some((last, key)) = self.by_age.first().cloned() {
            if last.saturating_add(window) > now {
                break;
            }
            self.unindex(&key);
        }
        if self.entries.len() < MAX_KEYS {
            return true;
        }
        let lightest = self.by_weight.first().map(|(_, _, key)| key.clone());
        match lightest {
            Some(key) if self.retry_after_ms(&key, now, window).is_none() => {
                self.unindex(&key);
                true
            }
            _ => false,
        }
    }

    fn forget(&mut self, key: &str) {
        self.unindex(key);
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

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
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

/// The limits (from the module's options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Failures on one account from one address.
    pub(crate) per_user_ip: usize,
    /// Failures from one address.
    pub(crate) per_ip: usize,
    /// Failures on one account (all addresses) before the backoff.
    pub(crate) backoff_after: usize,
    /// Longest backoff wait.
    pub(crate) backoff_max_ms: u64,
    /// The sliding window.
    pub(crate) window_ms: u64,
}

/// The failure counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RateLimiter {
    window_ms: u64,
    backoff_max_ms: u64,
    users: Table,
    pairs: Table,
    ips: Table,
}

/// The serialisable form of the counters (for hot swap).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LimiterSnapshot {
    /// Per account: failure timestamps (ms).
    pub(crate) users: Vec<(String, Vec<u64>)>,
    /// Per address key: failure timestamps (ms).
    pub(crate) ips: Vec<(String, Vec<u64>)>,
    /// Per account and address key (`user` NUL `address`): failure timestamps (ms).
    #[serde(default)]
    pub(crate) pairs: Vec<(String, Vec<u64>)>,
}

fn pair_key(user: &str, address: &str) -> String {
    format!("{user}\0{address}")
}

/// The address key of a peer address; `None` for none.
fn address(ip: &str) -> Option<String> {
    (!ip.is_empty()).then(|| tessera_plugin_api::names::address_key(ip))
}

impl RateLimiter {
    /// Counters with these limits.
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            window_ms: limits.window_ms.max(1),
            backoff_max_ms: limits.backoff_max_ms.max(BACKOFF_BASE_MS),
            users: Table::new(limits.backoff_after, limits.backoff_after + BACKOFF_STEPS),
            pairs: Table::new(limits.per_user_ip, limits.per_user_ip),
            ips: Table::new(limits.per_ip, limits.per_ip),
        }
    }

    /// Whether the address is limited now. An empty address is never limited.
    pub(crate) fn check_ip(&self, ip: &str, now: u64) -> Option<Limited> {
        let address = address(ip)?;
        self.ips
            .retry_after_ms(&address, now, self.window_ms)
            .map(limited)
    }

    /// Whether an attempt on `user` from `ip` must wait now (the longest wait wins). A `token`
    /// attempt (FAST) is not held back by the account's backoff.
    pub(crate) fn check(&self, user: &str, ip: &str, now: u64, token: bool) -> Option<Limited> {
        let w = self.window_ms;
        let address = address(ip);
        let pair = pair_key(user, address.as_deref().unwrap_or_default());
        let by_ip = address
            .as_deref()
            .and_then(|a| self.ips.retry_after_ms(a, now, w));
        let by_pair = self.pairs.retry_after_ms(&pair, now, w);
        let by_backoff = (!token)
            .then(|| self.backoff_ms(user, &pair, now))
            .flatten();
        [by_ip, by_pair, by_backoff]
            .into_iter()
            .flatten()
            .max()
            .map(limited)
    }

    /// The account backoff still to wait for this pair, if the account is past its threshold
    /// and this address has failed on it.
    fn backoff_ms(&self, user: &str, pair: &str, now: u64) -> Option<u64> {
        let failures = self.users.recent(user, now, self.window_ms).count();
        let over = failures.checked_sub(self.users.limit)?;
        let last = self.pairs.recent(pair, now, self.window_ms).last()?;
        let shift = u32::try_from(over.min(BACKOFF_STEPS)).unwrap_or(0);
        let wait = (BACKOFF_BASE_MS << shift).min(self.backoff_max_ms);
        let until = last.saturating_add(wait);
        (until > now).then(|| until - now)
    }

    /// Count one failed attempt (account unknown when `user` is `None`).
    pub(crate) fn record_failure(&mut self, user: Option<&str>, ip: &str, now: u64) {
        let w = self.window_ms;
        let address = address(ip);
        if let Some(user) = user.filter(|u| !u.is_empty()) {
            self.users.record(user, now, w);
            let pair = pair_key(user, address.as_deref().unwrap_or_default());
            self.pairs.record(&pair, now, w);
        }
        if let Some(address) = address {
            self.ips.record(&address, now, w);
        }
    }

    /// A successful login clears the account's counters.
    pub(crate) fn record_success(&mut self, user: &str, ip: &str) {
        self.users.forget(user);
        let address = address(ip).unwrap_or_default();
        self.pairs.forget(&pair_key(user, &address));
    }

    /// The counters, for `save_state`.
    pub(crate) fn snapshot(&self) -> LimiterSnapshot {
        LimiterSnapshot {
            users: self.users.snapshot(),
            ips: self.ips.snapshot(),
            pairs: self.pairs.snapshot(),
        }
    }

    /// Load saved counters (dropping expired timestamps and applying this instance's limits).
    pub(crate) fn restore(&mut self, saved: LimiterSnapshot, now: u64) {
        self.users.restore(saved.users, now, self.window_ms);
        self.ips.restore(saved.ips, now, self.window_ms);
        self.pairs.restore(saved.pairs, now, self.window_ms);
    }

    /// Number of accounts, account-address pairs and addresses tracked.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> (usize, usize, usize) {
        (self.users.len(), self.pairs.len(), self.ips.len())
    }
}

#[cfg(test)]
#[path = "ratelimit_tests.rs"]
mod tests;
