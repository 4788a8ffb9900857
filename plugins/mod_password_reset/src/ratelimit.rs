//! The module's three sliding-window counters (in memory, carried across a hot swap by
//! `save_state`): reset mails per account, reset requests per client address, page submissions
//! per client address. Addresses are keyed by [`address_key`] (IPv6 by /64, since one
//! subscriber holds a whole /64). Each counter is a [`Window`] of the plugin API's kit: bounded,
//! neither flushable by fresh keys nor turned into a lockout when full.

use serde::{Deserialize, Serialize};
use tessera_plugin_api::ratelimit::{address_key, Window};

/// Format version of [`Snapshot`].
const STATE_VERSION: u32 = 1;

/// The module's three counters.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Reset mails per account.
    mails_per_user: Window,
    /// Reset requests per client address.
    requests_per_ip: Window,
    /// Page submissions per client address.
    posts_per_ip: Window,
}

/// The counters as saved for the next generation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    version: u32,
    mails_per_user: Vec<(String, Vec<u64>)>,
    requests_per_ip: Vec<(String, Vec<u64>)>,
    posts_per_ip: Vec<(String, Vec<u64>)>,
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

    /// Count a reset request from `peer_ip`; whether it was within the limit.
    pub(crate) fn admit_request(&mut self, peer_ip: &str, now: u64) -> bool {
        self.requests_per_ip
            .admit(&address_key(peer_ip), now)
            .is_ok()
    }

    /// Count a page submission from `peer_ip`; whether it was within the limit.
    pub(crate) fn admit_post(&mut self, peer_ip: &str, now: u64) -> bool {
        self.posts_per_ip.admit(&address_key(peer_ip), now).is_ok()
    }

    /// Whether one more mail to `user` is within the limit (nothing is counted).
    pub(crate) fn allows_mail(&self, user: &str, now: u64) -> bool {
        self.mails_per_user.allows(user, now)
    }

    /// Count a mail to `user`.
    pub(crate) fn record_mail(&mut self, user: &str, now: u64) {
        self.mails_per_user.record(user, now);
    }

    /// Drop expired keys.
    pub(crate) fn prune(&mut self, now: u64) {
        self.mails_per_user.prune(now);
        self.requests_per_ip.prune(now);
        self.posts_per_ip.prune(now);
    }

    /// Everything, for `save_state`.
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: STATE_VERSION,
            mails_per_user: self.mails_per_user.snapshot(),
            requests_per_ip: self.requests_per_ip.snapshot(),
            posts_per_ip: self.posts_per_ip.snapshot(),
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
        self.mails_per_user.restore(snap.mails_per_user, now_ms);
        self.requests_per_ip.restore(snap.requests_per_ip, now_ms);
        self.posts_per_ip.restore(snap.posts_per_ip, now_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_keyed_by_slash_64_and_accounts_by_name() {
        let mut l = Limits::new(1, 2, 1, 1000);
        assert!(l.admit_request("2001:db8:1:2::1", 0));
        assert!(l.admit_request("2001:db8:1:2:ffff::9", 1), "same /64");
        assert!(!l.admit_request("2001:db8:1:2::3", 2));
        assert!(l.admit_request("2001:db8:1:3::1", 2), "another /64");
        assert!(l.admit_post("192.0.2.1", 0));
        assert!(!l.admit_post("192.0.2.1", 1));
        assert!(l.admit_post("192.0.2.2", 1));
        assert!(l.allows_mail("alice", 0));
        l.record_mail("alice", 0);
        assert!(!l.allows_mail("alice", 999));
        assert!(l.allows_mail("alice", 1000));
    }

    #[test]
    fn snapshots_round_trip_and_versions_are_checked() {
        let mut a = Limits::new(3, 10, 30, 1000);
        a.record_mail("alice", 100);
        assert!(a.admit_request("127.0.0.1", 100));
        assert!(a.admit_post("::1", 5));
        let snap = a.snapshot();
        let json = serde_json::to_string(&snap).expect("json");
        let mut b = Limits::new(1, 1, 1, 1000);
        let back: Snapshot = serde_json::from_str(&json).expect("parse");
        b.restore(back, 200).expect("restore");
        assert!(!b.allows_mail("alice", 200));
        assert!(!b.admit_request("127.0.0.1", 200));
        assert!(b.admit_post("::1", 1005), "expired on restore");
        let bad = Snapshot {
            version: 99,
            ..Snapshot::default()
        };
        assert!(b.restore(bad, 0).is_err());
    }
}
