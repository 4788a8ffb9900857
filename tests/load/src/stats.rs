//! Counting outcomes: latencies and failures by kind, merged across workers.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::failure::Failure;
use crate::procfs::round;

/// What a worker (or a whole run) saw.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Latency of every successful operation, in microseconds.
    pub(crate) latencies_us: Vec<u64>,
    /// Failures by [`Failure::kind`].
    pub(crate) errors: BTreeMap<String, u64>,
    /// The first message seen for each failure kind.
    pub(crate) examples: BTreeMap<String, String>,
    /// TLS handshakes that resumed a session.
    pub(crate) resumed: u64,
    /// The TLS version negotiated (last seen).
    pub(crate) tls_version: Option<String>,
    /// FAST tokens replaced by a rotated one from `<success>`.
    pub(crate) tokens_rotated: u64,
}

impl Tally {
    pub(crate) fn ok(&mut self, latency: Duration) {
        self.latencies_us
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    pub(crate) fn error(&mut self, failure: &Failure) {
        let kind = failure.kind();
        *self.errors.entry(kind.clone()).or_default() += 1;
        self.examples
            .entry(kind)
            .or_insert_with(|| failure.to_string());
    }

    pub(crate) fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, v) in other.examples {
            self.examples.entry(k).or_insert(v);
        }
        self.resumed += other.resumed;
        self.tokens_rotated += other.tokens_rotated;
        if other.tls_version.is_some() {
            self.tls_version = other.tls_version;
        }
    }

    pub(crate) fn successes(&self) -> u64 {
        self.latencies_us.len() as u64
    }

    pub(crate) fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// `{"p50":…, "p99":…, "max":…, "mean":…}` in milliseconds.
    pub(crate) fn latency_ms(&mut self) -> Value {
        self.latencies_us.sort_unstable();
        let v = &self.latencies_us;
        #[allow(clippy::cast_precision_loss)]
        let mean = if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<u64>() as f64 / v.len() as f64 / 1000.0
        };
        json!({
            "p50": percentile_ms(v, 0.50),
            "p90": percentile_ms(v, 0.90),
            "p99": percentile_ms(v, 0.99),
            "max": percentile_ms(v, 1.0),
            "mean": round(mean),
        })
    }

    /// Failure kinds with counts, and one example message each, for the human summary.
    pub(crate) fn error_lines(&self) -> Vec<String> {
        self.errors
            .iter()
            .map(|(k, n)| {
                let example = self.examples.get(k).map_or("", String::as_str);
                format!("  {n} x {k}: {example}")
            })
            .collect()
    }
}

/// The `p` quantile (nearest rank) of sorted microseconds, in milliseconds.
pub(crate) fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    #[allow(clippy::cast_precision_loss)]
    let us = sorted.get(rank - 1).copied().unwrap_or_default() as f64;
    round(us / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert!((percentile_ms(&v, 0.5) - 50.0).abs() < 1e-9);
        assert!((percentile_ms(&v, 0.99) - 99.0).abs() < 1e-9);
        assert!((percentile_ms(&v, 1.0) - 100.0).abs() < 1e-9);
        assert!(percentile_ms(&[], 0.5).abs() < 1e-9);
    }

    #[test]
    fn merges() {
        let mut a = Tally::default();
        a.ok(Duration::from_millis(2));
        a.error(&Failure::Timeout);
        let mut b = Tally::default();
        b.error(&Failure::Auth("not-authorized".into()));
        b.error(&Failure::Timeout);
        a.merge(b);
        assert_eq!(a.successes(), 1);
        assert_eq!(a.errors_total(), 3);
        assert_eq!(a.errors.get("timeout"), Some(&2));
    }
}
