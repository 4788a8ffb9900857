//! Where every stanza for a local session went: written to its connection, stored by a module,
//! bounced to its sender, or dropped by rule (presence, errors, results, headlines) — counted by
//! why it could not be written. `tessera status` shows the counters (and metrics will).

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a stanza was not written to a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// No session could take it when it was routed (RFC 6121 §8.5: offline storage or a
    /// bounce).
    NoSession = 0,
    /// Its sender held half of the recipient session's outbox already: shed, the session
    /// lives on.
    SendBufferFull = 1,
    /// Its session was closed for not reading: its outbox was full, or nothing could be
    /// written for `c2s.send_timeout`.
    NotReading = 2,
    /// Its session ended (the client left, a password change, a conflict, shutdown, a lost
    /// connection) before it was written.
    SessionEnded = 3,
}

impl Reason {
    const ALL: [Self; 4] = [
        Self::NoSession,
        Self::SendBufferFull,
        Self::NotReading,
        Self::SessionEnded,
    ];

    /// The name in `tessera status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoSession => "no-session",
            Self::SendBufferFull => "send-buffer-full",
            Self::NotReading => "not-reading",
            Self::SessionEnded => "session-ended",
        }
    }
}

/// What became of a stanza that was not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A module stored it (offline storage, a resumable session's retention).
    Stored = 0,
    /// Sent back to its sender with an error.
    Bounced = 1,
    /// Nothing to send back, by rule.
    Dropped = 2,
}

impl Outcome {
    const ALL: [Self; 3] = [Self::Stored, Self::Bounced, Self::Dropped];

    fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Bounced => "bounced",
            Self::Dropped => "dropped",
        }
    }
}

/// The counters.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    written: AtomicU64,
    by: [[AtomicU64; 4]; 3],
}

impl DeliveryStats {
    /// `n` stanzas were written to a connection.
    pub fn written(&self, n: u64) {
        self.written.fetch_add(n, Ordering::Relaxed);
    }

    /// One stanza was not written, for `reason`, and this became of it.
    pub fn record(&self, outcome: Outcome, reason: Reason) {
        if let Some(c) = self
            .by
            .get(outcome as usize)
            .and_then(|row| row.get(reason as usize))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many stanzas were written.
    pub fn written_total(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// One counter.
    pub fn count(&self, outcome: Outcome, reason: Reason) -> u64 {
        self.by
            .get(outcome as usize)
            .and_then(|row| row.get(reason as usize))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// The counters as `tessera status` shows them:
    /// `{"written": n, "stored": {"no-session": n, ...}, "bounced": {...}, "dropped": {...}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        out.insert("written".into(), self.written_total().into());
        for outcome in Outcome::ALL {
            let row: serde_json::Map<String, serde_json::Value> = Reason::ALL
                .iter()
                .map(|r| (r.as_str().to_owned(), self.count(outcome, *r).into()))
                .collect();
            out.insert(outcome.as_str().into(), row.into());
        }
        out.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_and_reason_counts_apart() {
        let stats = DeliveryStats::default();
        stats.written(3);
        stats.record(Outcome::Bounced, Reason::SendBufferFull);
        stats.record(Outcome::Bounced, Reason::SendBufferFull);
        stats.record(Outcome::Stored, Reason::SessionEnded);
        assert_eq!(stats.count(Outcome::Bounced, Reason::SendBufferFull), 2);
        assert_eq!(stats.count(Outcome::Stored, Reason::SessionEnded), 1);
        assert_eq!(stats.count(Outcome::Dropped, Reason::NoSession), 0);
        let json = stats.to_json();
        assert_eq!(json["written"], 3);
        assert_eq!(json["bounced"]["send-buffer-full"], 2);
        assert_eq!(json["stored"]["session-ended"], 1);
        assert_eq!(json["dropped"]["no-session"], 0);
    }
}
