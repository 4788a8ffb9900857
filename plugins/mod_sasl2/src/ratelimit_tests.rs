use super::*;

const WINDOW: u64 = 300_000;

#[test]
fn account_is_limited_after_max_failures_within_window() {
    let mut rl = RateLimiter::new(3, 100, WINDOW);
    for t in [1_000, 2_000] {
        rl.record_failure(Some("alice"), "", t);
    }
    assert_eq!(rl.check("alice", "", 2_500), None);
    rl.record_failure(Some("alice"), "", 3_000);
    // The oldest of the three (t=1000) leaves the window at 301000.
    let limit = rl.check("alice", "", 3_000).expect("limited");
    assert_eq!(limit.retry_after_secs, 298);
    assert_eq!(limit.text(), "Too many failed attempts; retry in 298 s");
    assert_eq!(rl.check("bob", "", 3_000), None);
}

#[test]
fn window_slides_and_releases_the_key() {
    let mut rl = RateLimiter::new(2, 100, WINDOW);
    rl.record_failure(Some("alice"), "", 0);
    rl.record_failure(Some("alice"), "", 100_000);
    assert!(rl.check("alice", "", 299_999).is_some());
    // t=0 expires at 300000: one failure left in the window.
    assert_eq!(rl.check("alice", "", 300_000), None);
    rl.record_failure(Some("alice"), "", 300_000);
    let limit = rl.check("alice", "", 300_000).expect("limited again");
    assert_eq!(limit.retry_after_secs, 100);
}

#[test]
fn retry_time_rounds_up_to_whole_seconds() {
    let mut rl = RateLimiter::new(1, 100, 10_000);
    rl.record_failure(Some("a"), "", 500);
    assert_eq!(
        rl.check("a", "", 10_499).map(|l| l.retry_after_secs),
        Some(1)
    );
    assert_eq!(
        rl.check("a", "", 1_000).map(|l| l.retry_after_secs),
        Some(10)
    );
}

#[test]
fn address_limit_is_independent_and_longer_wait_wins() {
    let mut rl = RateLimiter::new(5, 2, WINDOW);
    rl.record_failure(Some("u1"), "192.0.2.1", 0);
    rl.record_failure(Some("u2"), "192.0.2.1", 10_000);
    assert_eq!(
        rl.check_ip("192.0.2.1", 10_000).map(|l| l.retry_after_secs),
        Some(290)
    );
    assert_eq!(rl.check_ip("192.0.2.2", 10_000), None);
    assert_eq!(
        rl.check("u3", "192.0.2.1", 10_000)
            .map(|l| l.retry_after_secs),
        Some(290)
    );
    assert_eq!(rl.check("u3", "192.0.2.9", 10_000), None);
    assert_eq!(rl.check_ip("", 10_000), None);
}

#[test]
fn unknown_account_failures_count_only_for_the_address() {
    let mut rl = RateLimiter::new(1, 1, WINDOW);
    rl.record_failure(None, "198.51.100.7", 0);
    assert_eq!(rl.tracked(), (0, 1));
    rl.record_failure(Some(""), "", 0);
    assert_eq!(rl.tracked(), (0, 1));
}

#[test]
fn success_clears_the_account_but_not_the_address() {
    let mut rl = RateLimiter::new(1, 1, WINDOW);
    rl.record_failure(Some("alice"), "203.0.113.5", 0);
    assert!(rl.check("alice", "", 1).is_some());
    rl.record_success("alice");
    assert_eq!(rl.check("alice", "", 1), None);
    assert!(rl.check_ip("203.0.113.5", 1).is_some());
}

#[test]
fn memory_per_key_is_bounded_by_max() {
    let mut rl = RateLimiter::new(3, 3, WINDOW);
    for t in 0..100 {
        rl.record_failure(Some("alice"), "ip", t);
    }
    let snap = rl.snapshot();
    assert_eq!(snap.users, vec![("alice".to_owned(), vec![97, 98, 99])]);
    assert_eq!(snap.ips[0].1.len(), 3);
}

#[test]
fn key_count_is_bounded_and_expired_keys_go_first() {
    let mut rl = RateLimiter::new(1, 1, 1_000);
    for i in 0..MAX_KEYS {
        rl.record_failure(Some(&format!("u{i}")), "", 0);
    }
    assert_eq!(rl.tracked().0, MAX_KEYS);
    // Everything so far is expired at t=5000: pruned, not evicted one by one.
    rl.record_failure(Some("late"), "", 5_000);
    assert_eq!(rl.tracked().0, 1);
    for i in 0..MAX_KEYS - 1 {
        rl.record_failure(
            Some(&format!("v{i}")),
            "",
            5_000 + u64::try_from(i % 7).unwrap_or(0),
        );
    }
    assert_eq!(rl.tracked().0, MAX_KEYS);
    rl.record_failure(Some("newest"), "", 5_100);
    assert_eq!(rl.tracked().0, MAX_KEYS);
    assert!(rl.check("newest", "", 5_100).is_some());
}

#[test]
fn snapshot_round_trip_keeps_live_counters_and_drops_expired() {
    let mut rl = RateLimiter::new(2, 2, WINDOW);
    rl.record_failure(Some("alice"), "192.0.2.1", 1_000);
    rl.record_failure(Some("alice"), "192.0.2.1", 2_000);
    rl.record_failure(Some("old"), "", 0);
    let snap = rl.snapshot();

    let mut fresh = RateLimiter::new(2, 2, WINDOW);
    fresh.restore(snap.clone(), 250_000);
    assert_eq!(
        fresh.check("alice", "", 250_000),
        rl.check("alice", "", 250_000)
    );
    assert!(fresh.check_ip("192.0.2.1", 250_000).is_some());

    let mut later = RateLimiter::new(2, 2, WINDOW);
    later.restore(snap, 301_500);
    assert_eq!(later.tracked(), (1, 1));
    assert_eq!(later.check("alice", "", 301_500), None);
}
