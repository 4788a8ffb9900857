//! Per-connection receive throttle (`c2s.receive_rate`, `c2s.receive_burst`): a token bucket
//! over the bytes a client sends. When it is spent the connection stops reading until the
//! bucket is back above zero, so a flooding client is slowed by TCP itself: nothing it sent is
//! dropped, its other work (writes, close requests) goes on, and other connections keep their
//! share of the machine.

use std::time::{Duration, Instant};

/// A token bucket in bytes.
#[derive(Debug, Clone)]
pub(super) struct Throttle {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Throttle {
    /// A full bucket: `burst` bytes at once, then `rate` bytes per second.
    pub(super) fn new(rate: usize, burst: usize, now: Instant) -> Self {
        let rate = rate.max(1) as f64;
        let burst = burst as f64;
        Self {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    /// `bytes` were read (the bucket may go below zero: a read is never undone).
    pub(super) fn consume(&mut self, bytes: usize, now: Instant) {
        self.refill(now);
        self.tokens -= bytes as f64;
    }

    /// When reading may go on: `None` now, else the instant the bucket is back at zero.
    pub(super) fn resume_at(&self, now: Instant) -> Option<Instant> {
        if self.tokens >= 0.0 {
            return None;
        }
        let since = now.saturating_duration_since(self.last).as_secs_f64();
        let missing = -self.tokens - since * self.rate;
        (missing > 0.0).then(|| now + Duration::from_secs_f64(missing / self.rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burst_passes_at_once_then_the_rate_applies() {
        let t0 = Instant::now();
        let mut t = Throttle::new(1000, 4000, t0);
        t.consume(4000, t0);
        assert_eq!(t.resume_at(t0), None, "the burst is free");
        t.consume(500, t0);
        // 500 bytes over at 1000 B/s: half a second.
        assert_eq!(t.resume_at(t0), Some(t0 + Duration::from_millis(500)));
        let later = t0 + Duration::from_millis(200);
        assert_eq!(t.resume_at(later), Some(t0 + Duration::from_millis(500)));
        assert_eq!(t.resume_at(t0 + Duration::from_millis(500)), None);
    }

    #[test]
    fn idle_time_refills_up_to_the_burst_only() {
        let t0 = Instant::now();
        let mut t = Throttle::new(1000, 2000, t0);
        t.consume(2000, t0);
        // A long pause refills the whole burst, never more.
        let t1 = t0 + Duration::from_secs(3600);
        t.consume(2000, t1);
        assert_eq!(t.resume_at(t1), None);
        t.consume(1, t1);
        assert!(t.resume_at(t1).is_some());
    }

    #[test]
    fn a_sustained_flood_is_held_to_the_rate() {
        let t0 = Instant::now();
        let mut t = Throttle::new(10_000, 10_000, t0);
        let mut now = t0;
        let mut read = 0usize;
        // Read 4 KiB whenever allowed, for ten simulated seconds.
        while now < t0 + Duration::from_secs(10) {
            match t.resume_at(now) {
                None => {
                    t.consume(4096, now);
                    read += 4096;
                }
                Some(at) => now = at,
            }
        }
        // burst + 10 s × rate, give or take one read.
        assert!(read <= 10_000 + 100_000 + 4096, "{read}");
        assert!(read >= 100_000, "{read}");
    }
}
