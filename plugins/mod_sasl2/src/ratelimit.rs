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
//! Each counter is a [`Window`] of the plugin API's kit: bounded, and neither flushable by an
//! attacker filling it with fresh keys nor turned into a lockout when full (see
//! [`tessera_plugin_api::ratelimit`]).

use serde::{Deserialize, Serialize};
use tessera_plugin_api::ratelimit::{address_key, Window};

#[cfg(test)]
pub(crate) use tessera_plugin_api::ratelimit::MAX_KEYS;
/// The first wait of the account backoff.
const BACKOFF_BASE_MS: u64 = 1_000;
/// Failure timestamps kept per account beyond the backoff threshold (2^16 s exceeds any cap).
const BACKOFF_STEPS: usize = 16;

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
    backoff_max_ms: u64,
    users: Window,
    pairs: Window,
    ips: Window,
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
    (!ip.is_empty()).then(|| address_key(ip))
}

impl RateLimiter {
    /// Counters with these limits.
    pub(crate) fn new(limits: Limits) -> Self {
        let window = limits.window_ms;
        Self {
            backoff_max_ms: limits.backoff_max_ms.max(BACKOFF_BASE_MS),
            users: Window::new(limits.backoff_after, window)
                .keeping(limits.backoff_after + BACKOFF_STEPS),
            pairs: Window::new(limits.per_user_ip, window),
            ips: Window::new(limits.per_ip, window),
        }
    }

    /// Whether the address is limited now. An empty address is never limited.
    pub(crate) fn check_ip(&self, ip: &str, now: u64) -> Option<Limited> {
        let address = address(ip)?;
        self.ips.retry_after_ms(&address, now).map(limited)
    }

    /// Whether an attempt on `user` from `ip` must wait now (the longest wait wins). A `token`
    /// attempt (FAST) is not held back by the account's backoff.
    pub(crate) fn check(&self, user: &str, ip: &str, now: u64, token: bool) -> Option<Limited> {
        let address = address(ip);
        let pair = pair_key(user, address.as_deref().unwrap_or_default());
        let by_ip = address
            .as_deref()
            .and_then(|a| self.ips.retry_after_ms(a, now));
        let by_pair = self.pairs.retry_after_ms(&pair, now);
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
        let failures = self.users.recent(user, now).count();
        let over = failures.checked_sub(self.users.limit())?;
        let last = self.pairs.recent(pair, now).last()?;
        let shift = u32::try_from(over.min(BACKOFF_STEPS)).unwrap_or(0);
        let wait = (BACKOFF_BASE_MS << shift).min(self.backoff_max_ms);
        let until = last.saturating_add(wait);
        (until > now).then(|| until - now)
    }

    /// Count one failed attempt (account unknown when `user` is `None`).
    pub(crate) fn record_failure(&mut self, user: Option<&str>, ip: &str, now: u64) {
        let address = address(ip);
        if let Some(user) = user.filter(|u| !u.is_empty()) {
            self.users.record(user, now);
            let pair = pair_key(user, address.as_deref().unwrap_or_default());
            self.pairs.record(&pair, now);
        }
        if let Some(address) = address {
            self.ips.record(&address, now);
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
        self.users.restore(saved.users, now);
        self.ips.restore(saved.ips, now);
        self.pairs.restore(saved.pairs, now);
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
