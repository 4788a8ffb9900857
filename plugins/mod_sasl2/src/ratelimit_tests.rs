use super::*;

const WINDOW: u64 = 300_000;

fn limiter(per_user_ip: usize, per_ip: usize, backoff_after: usize) -> RateLimiter {
    RateLimiter::new(Limits {
        per_user_ip,
        per_ip,
        backoff_after,
        backoff_max_ms: 60_000,
        window_ms: WINDOW,
    })
}

fn wait(rl: &RateLimiter, user: &str, ip: &str, now: u64) -> Option<u64> {
    rl.check(user, ip, now, false).map(|l| l.retry_after_secs)
}

#[test]
fn one_address_is_limited_on_an_account_after_max_failures_within_window() {
    let mut rl = limiter(3, 100, 100);
    for t in [1_000, 2_000] {
        rl.record_failure(Some("alice"), "192.0.2.1", t);
    }
    assert_eq!(wait(&rl, "alice", "192.0.2.1", 2_500), None);
    rl.record_failure(Some("alice"), "192.0.2.1", 3_000);
    // The oldest of the three (t=1000) leaves the window at 301000.
    let limit = rl
        .check("alice", "192.0.2.1", 3_000, false)
        .expect("limited");
    assert_eq!(limit.retry_after_secs, 298);
    assert_eq!(limit.text(), "Too many failed attempts; retry in 298 s");
    assert_eq!(wait(&rl, "bob", "192.0.2.1", 3_000), None);
    // The owner, from elsewhere, is not locked out.
    assert_eq!(wait(&rl, "alice", "198.51.100.1", 3_000), None);
}

/// The finding: ten failures from three addresses locked the account for 300 s, its owner and
/// FAST token included. Now the attackers' addresses back off and the owner's does not.
#[test]
fn failures_from_many_addresses_back_off_those_addresses_and_lock_out_nobody() {
    let mut rl = limiter(100, 100, 10);
    let attackers = ["192.0.2.1", "192.0.2.2", "192.0.2.3"];
    for i in 0..12u64 {
        let ip = attackers[usize::try_from(i % 3).unwrap_or(0)];
        rl.record_failure(Some("alice"), ip, i * 100);
    }
    let now = 1_200;
    // Two past the threshold: 4 s after each attacker address's last failure.
    assert_eq!(wait(&rl, "alice", "192.0.2.3", now), Some(4));
    assert_eq!(wait(&rl, "alice", "192.0.2.1", now), Some(4));
    // The owner's address has no failure: it tries at once, and so does a token from anywhere.
    assert_eq!(wait(&rl, "alice", "203.0.113.9", now), None);
    assert_eq!(rl.check("alice", "192.0.2.1", now, true), None);
    // The backoff doubles with each further failure and stops at its cap.
    for i in 0..20u64 {
        rl.record_failure(Some("alice"), "192.0.2.4", 2_000 + i);
    }
    assert_eq!(wait(&rl, "alice", "192.0.2.4", 2_019), Some(60));
    assert_eq!(wait(&rl, "alice", "192.0.2.4", 62_019), None);
}

#[test]
fn window_slides_and_releases_the_key() {
    let mut rl = limiter(2, 100, 100);
    rl.record_failure(Some("alice"), "ip", 0);
    rl.record_failure(Some("alice"), "ip", 100_000);
    assert!(wait(&rl, "alice", "ip", 299_999).is_some());
    // t=0 expires at 300000: one failure left in the window.
    assert_eq!(wait(&rl, "alice", "ip", 300_000), None);
    rl.record_failure(Some("alice"), "ip", 300_000);
    assert_eq!(wait(&rl, "alice", "ip", 300_000), Some(100));
}

#[test]
fn retry_time_rounds_up_to_whole_seconds() {
    let mut rl = RateLimiter::new(Limits {
        per_user_ip: 1,
        per_ip: 100,
        backoff_after: 100,
        backoff_max_ms: 60_000,
        window_ms: 10_000,
    });
    rl.record_failure(Some("a"), "ip", 500);
    assert_eq!(wait(&rl, "a", "ip", 10_499), Some(1));
    assert_eq!(wait(&rl, "a", "ip", 1_000), Some(10));
}

#[test]
fn address_limit_is_independent_and_longer_wait_wins() {
    let mut rl = limiter(5, 2, 100);
    rl.record_failure(Some("u1"), "192.0.2.1", 0);
    rl.record_failure(Some("u2"), "192.0.2.1", 10_000);
    assert_eq!(
        rl.check_ip("192.0.2.1", 10_000).map(|l| l.retry_after_secs),
        Some(290)
    );
    assert_eq!(rl.check_ip("192.0.2.2", 10_000), None);
    assert_eq!(wait(&rl, "u3", "192.0.2.1", 10_000), Some(290));
    assert_eq!(
        rl.check("u3", "192.0.2.1", 10_000, true)
            .map(|l| l.retry_after_secs),
        Some(290)
    );
    assert_eq!(wait(&rl, "u3", "192.0.2.9", 10_000), None);
    assert_eq!(rl.check_ip("", 10_000), None);
}

#[test]
fn ipv6_addresses_are_keyed_by_their_64_prefix() {
    let mut rl = limiter(100, 2, 100);
    rl.record_failure(None, "2001:db8:1:2::1", 0);
    rl.record_failure(None, "2001:db8:1:2:ffff:ffff:ffff:fffe", 1);
    assert!(rl.check_ip("2001:db8:1:2:1234::77", 2).is_some());
    assert_eq!(rl.check_ip("2001:db8:1:3::1", 2), None);
    rl.record_failure(None, "192.0.2.7", 0);
    rl.record_failure(None, "::ffff:192.0.2.7", 1);
    assert!(rl.check_ip("192.0.2.7", 2).is_some());
}

#[test]
fn unknown_account_failures_count_only_for_the_address() {
    let mut rl = limiter(1, 1, 1);
    rl.record_failure(None, "198.51.100.7", 0);
    assert_eq!(rl.tracked(), (0, 0, 1));
    rl.record_failure(Some(""), "", 0);
    assert_eq!(rl.tracked(), (0, 0, 1));
}

#[test]
fn success_clears_the_account_but_not_the_address() {
    let mut rl = limiter(1, 1, 1);
    rl.record_failure(Some("alice"), "203.0.113.5", 0);
    assert!(wait(&rl, "alice", "203.0.113.5", 1).is_some());
    rl.record_success("alice", "203.0.113.5");
    assert_eq!(wait(&rl, "alice", "198.51.100.1", 1), None);
    assert_eq!(rl.tracked().0, 0);
    assert!(rl.check_ip("203.0.113.5", 1).is_some());
}

#[test]
fn memory_per_key_is_bounded() {
    let mut rl = limiter(3, 3, 3);
    for t in 0..100 {
        rl.record_failure(Some("alice"), "ip", t);
    }
    let snap = rl.snapshot();
    assert_eq!(snap.pairs, vec![("alice\0ip".to_owned(), vec![97, 98, 99])]);
    assert_eq!(snap.ips[0].1.len(), 3);
    // The account keeps the threshold plus the backoff steps.
    assert_eq!(snap.users[0].1.len(), 3 + 16);
}

/// The finding: the oldest of 65,536 keys was dropped, so fresh keys flushed a victim's
/// counter. Now expired keys go first, then the lightest, and a key at its limit stays.
#[test]
fn fresh_keys_cannot_flush_a_counter_at_its_limit() {
    let mut rl = limiter(2, 1_000_000, 1_000_000);
    rl.record_failure(Some("victim"), "ip", 0);
    rl.record_failure(Some("victim"), "ip", 1);
    assert!(wait(&rl, "victim", "ip", 2).is_some());
    for i in 0..MAX_KEYS + 10 {
        rl.record_failure(Some(&format!("flood{i}")), "ip", 2);
    }
    assert_eq!(rl.tracked().1, MAX_KEYS);
    assert!(
        wait(&rl, "victim", "ip", 3).is_some(),
        "the victim's counter survived the flood"
    );
}

#[test]
fn a_full_table_drops_expired_keys_first() {
    let mut rl = RateLimiter::new(Limits {
        per_user_ip: 1,
        per_ip: 1_000_000,
        backoff_after: 1_000_000,
        backoff_max_ms: 60_000,
        window_ms: 1_000,
    });
    for i in 0..MAX_KEYS {
        rl.record_failure(Some(&format!("u{i}")), "", 0);
    }
    assert_eq!(rl.tracked().1, MAX_KEYS);
    // Every key is at its limit, but all are expired at t=5000: room is made.
    rl.record_failure(Some("late"), "", 5_000);
    assert!(rl.check("late", "", 5_000, false).is_some());
    // A table full of live keys at their limit tracks no newcomer (and drops nobody).
    for i in 0..MAX_KEYS {
        rl.record_failure(Some(&format!("v{i}")), "", 5_000);
    }
    assert_eq!(rl.tracked().1, MAX_KEYS);
    assert!(rl.check("late", "", 5_001, false).is_some());
}

#[test]
fn snapshot_round_trip_keeps_live_counters_and_drops_expired() {
    let mut rl = limiter(2, 2, 2);
    rl.record_failure(Some("alice"), "192.0.2.1", 1_000);
    rl.record_failure(Some("alice"), "192.0.2.1", 2_000);
    rl.record_failure(Some("old"), "", 0);
    let snap = rl.snapshot();

    let mut fresh = limiter(2, 2, 2);
    fresh.restore(snap.clone(), 250_000);
    assert_eq!(wait(&fresh, "alice", "192.0.2.1", 250_000), Some(51));
    assert!(fresh.check_ip("192.0.2.1", 250_000).is_some());
    // At 300000 the t=0 failure is gone.
    let mut late = limiter(2, 2, 2);
    late.restore(snap, 300_000);
    assert!(late.snapshot().users.iter().all(|(k, _)| k != "old"));
}
