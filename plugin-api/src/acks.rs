//! XEP-0198 stream management's bookkeeping, kept by the host: the counting of stanzas in both
//! directions and the retention of every stanza written until the client acknowledges it.
//!
//! A stream-management module decides (who may enable, resume, with which id and for how
//! long) and speaks the protocol's nonzas; the per-stanza work is the host's, because it would
//! otherwise cross the ABI for every stanza of nearly every mobile session
//! (`shared/docs/stanza-modules.md` §c.4). The module turns a session's queue on with
//! [`crate::HostCalls::acks_enable`], reads it with [`crate::HostCalls::acks_status`] (to
//! answer `<r/>` with `<a h/>`, or to check a `<resume h/>`), and passes the client's `<a h/>`
//! on with [`crate::HostCalls::acks_ack`]. The host then
//! * counts every `jabber:client` stanza the session handles from the client, and every one it
//!   writes to the client (nonzas and a resumption's re-sends are not counted), modulo 2^32;
//! * keeps each written stanza until acknowledged; when the session ends without being
//!   resumed, the unacknowledged ones take the undeliverable way (offline storage or a bounce);
//! * writes `<r/>` when more than [`AckSettings::request_after`] stanzas wait, or the oldest has
//!   waited [`AckSettings::request_after_ms`], one request at a time; a request unanswered for
//!   [`AckSettings::ack_timeout_ms`] counts as a lost connection (the session is detached, so
//!   it can be resumed);
//! * ends a session whose unacknowledged stanzas exceed [`AckSettings::max_queue`] or the
//!   host's byte bound (its `c2s.max_send_buffer`), or, while detached, whose unacknowledged
//!   and queued stanzas together do (`<policy-violation/>` while connected);
//! * keeps the session [`AckSettings::keep_ms`] after its connection is lost; while it is
//!   detached, stanzas for it queue (it stays reachable), and a stream that resumes it
//!   ([`crate::protocol::StreamAction::Resume`] with `acked`) gets the unacknowledged ones
//!   again, each message and presence with a XEP-0203 `<delay/>`, before what queued since.
//!
//! [`AckQueue`] is the counting itself, without I/O, so a test host and the server agree.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// How a session's acknowledgements are kept ([`crate::HostCalls::acks_enable`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckSettings {
    /// The namespace of the `<r/>` and `<a/>` the host writes (`urn:xmpp:sm:3`).
    pub ns: String,
    /// Ask for an acknowledgement once more than this many stanzas wait for one.
    pub request_after: u32,
    /// ... or once the oldest has waited this long (ms).
    pub request_after_ms: u64,
    /// A request unanswered this long (ms) means the connection is dead.
    pub ack_timeout_ms: u64,
    /// Most stanzas unacknowledged (plus, while detached, queued) for the session; beyond, it
    /// ends.
    pub max_queue: u32,
    /// Keep the session this long (ms) after its connection is lost (0: end it); capped by
    /// the host (one day).
    pub keep_ms: u64,
}

/// A session's counters ([`crate::HostCalls::acks_status`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckStatus {
    /// The namespace it was enabled with.
    pub ns: String,
    /// Stanzas handled from the client (the `h` of the server's `<a/>` and `<resumed/>`).
    pub handled: u32,
    /// Stanzas written to the client.
    pub sent: u32,
    /// Of those, acknowledged by the client (its last `h`).
    pub acked: u32,
    /// Whether the session is detached (its connection lost, kept for resumption).
    pub detached: bool,
}

impl AckStatus {
    /// Whether a client's `h` acknowledges more stanzas than were written (counting modulo
    /// 2^32 from the last acknowledgement; an `h` below it counts as too high).
    pub fn too_high(&self, h: u32) -> bool {
        h.wrapping_sub(self.acked) > self.sent.wrapping_sub(self.acked)
    }
}

/// What the host did with a client's `h` ([`crate::HostCalls::acks_ack`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AckOutcome {
    /// This many stanzas were released.
    Released(u32),
    /// The client acknowledged more than was written (XEP-0198 §4: close the stream with
    /// `<undefined-condition/>`); nothing was released.
    TooHigh {
        /// Stanzas written to the client.
        sent: u32,
    },
    /// The session has no acknowledgement queue (or does not exist).
    NotEnabled,
}

/// The XEP-0198 counting for one session: handled inbound, written outbound and the written
/// items (`T`) not yet acknowledged, all modulo 2^32.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckQueue<T> {
    handled: u32,
    acked: u32,
    unacked: VecDeque<T>,
}

impl<T> Default for AckQueue<T> {
    fn default() -> Self {
        Self {
            handled: 0,
            acked: 0,
            unacked: VecDeque::new(),
        }
    }
}

/// A client's `h` above what was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooHigh {
    /// What was written.
    pub sent: u32,
}

impl<T> AckQueue<T> {
    /// One more stanza handled from the client.
    pub fn handled_one(&mut self) {
        self.handled = self.handled.wrapping_add(1);
    }

    /// One more stanza written to the client, kept until acknowledged.
    pub fn sent(&mut self, item: T) {
        self.unacked.push_back(item);
    }

    /// Stanzas handled from the client.
    pub fn handled(&self) -> u32 {
        self.handled
    }

    /// Stanzas written to the client.
    pub fn sent_count(&self) -> u32 {
        // Wraps like the counter: the queue never holds 2^32 items.
        self.acked.wrapping_add(self.unacked.len() as u32)
    }

    /// The last `h` the client acknowledged.
    pub fn acked(&self) -> u32 {
        self.acked
    }

    /// The client acknowledged `h`: the items it covers, oldest first.
    ///
    /// # Errors
    /// [`TooHigh`] when `h` is beyond what was written (or behind the last acknowledgement);
    /// nothing is released.
    pub fn ack(&mut self, h: u32) -> Result<Vec<T>, TooHigh> {
        let released = h.wrapping_sub(self.acked) as usize;
        if released > self.unacked.len() {
            return Err(TooHigh {
                sent: self.sent_count(),
            });
        }
        self.acked = h;
        Ok(self.unacked.drain(..released).collect())
    }

    /// The unacknowledged items, oldest first.
    pub fn unacked(&self) -> impl ExactSizeIterator<Item = &T> {
        self.unacked.iter()
    }

    /// How many are unacknowledged.
    pub fn unacked_len(&self) -> usize {
        self.unacked.len()
    }

    /// The oldest unacknowledged item.
    pub fn oldest(&self) -> Option<&T> {
        self.unacked.front()
    }

    /// Take every unacknowledged item (the session ends: they are undeliverable). The count
    /// of what was sent stays; they no longer wait for an acknowledgement.
    pub fn take_unacked(&mut self) -> Vec<T> {
        self.acked = self.sent_count();
        self.unacked.drain(..).collect()
    }

    /// The counters as a module sees them.
    pub fn status(&self, ns: &str, detached: bool) -> AckStatus {
        AckStatus {
            ns: ns.to_owned(),
            handled: self.handled,
            sent: self.sent_count(),
            acked: self.acked,
            detached,
        }
    }

    /// The outcome of a client's `h`, releasing through `release`.
    pub fn outcome(&mut self, h: u32, release: impl FnMut(T)) -> AckOutcome {
        match self.ack(h) {
            Ok(items) => {
                let n = items.len() as u32;
                items.into_iter().for_each(release);
                AckOutcome::Released(n)
            }
            Err(TooHigh { sent }) => AckOutcome::TooHigh { sent },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_releases_in_order() {
        let mut q = AckQueue::default();
        for i in 0..5 {
            q.sent(i);
        }
        q.handled_one();
        assert_eq!((q.handled(), q.sent_count(), q.acked()), (1, 5, 0));
        assert_eq!(q.ack(2), Ok(vec![0, 1]));
        assert_eq!(q.ack(2), Ok(vec![]), "the same h again releases nothing");
        assert_eq!(q.unacked().copied().collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(q.ack(5), Ok(vec![2, 3, 4]));
        assert_eq!(q.unacked_len(), 0);
    }

    #[test]
    fn an_h_beyond_what_was_sent_or_behind_the_last_ack_is_refused_and_releases_nothing() {
        let mut q = AckQueue::default();
        for i in 0..3 {
            q.sent(i);
        }
        assert_eq!(q.ack(4), Err(TooHigh { sent: 3 }));
        assert_eq!(q.ack(2), Ok(vec![0, 1]));
        // Behind the last acknowledgement: modulo 2^32 that is far ahead.
        assert_eq!(q.ack(1), Err(TooHigh { sent: 3 }));
        assert_eq!(q.unacked_len(), 1);
        let status = q.status("urn:xmpp:sm:3", false);
        assert!(status.too_high(4) && status.too_high(1) && !status.too_high(3));
    }

    #[test]
    fn counters_wrap_at_two_to_the_32() {
        let mut q: AckQueue<u8> = AckQueue {
            handled: u32::MAX,
            acked: u32::MAX - 1,
            unacked: VecDeque::new(),
        };
        q.handled_one();
        assert_eq!(q.handled(), 0);
        q.sent(1);
        q.sent(2);
        q.sent(3);
        assert_eq!(q.sent_count(), 1, "u32::MAX - 1 + 3 wraps to 1");
        assert_eq!(q.ack(0), Ok(vec![1, 2]), "h = 0 is two past u32::MAX - 1");
        let status = q.status("ns", false);
        assert!(!status.too_high(1));
        assert!(status.too_high(2));
        assert_eq!(q.ack(1), Ok(vec![3]));
    }

    #[test]
    fn take_unacked_keeps_the_counters() {
        let mut q = AckQueue::default();
        q.sent("a");
        q.sent("b");
        assert_eq!(q.ack(1), Ok(vec!["a"]));
        q.sent("c");
        assert_eq!(q.take_unacked(), vec!["b", "c"]);
        assert_eq!((q.sent_count(), q.acked(), q.unacked_len()), (3, 3, 0));
    }

    #[test]
    fn outcome_reports_releases_and_refusals() {
        let mut q = AckQueue::default();
        q.sent(7);
        let mut released = Vec::new();
        assert_eq!(
            q.outcome(2, |i| released.push(i)),
            AckOutcome::TooHigh { sent: 1 }
        );
        assert_eq!(q.outcome(1, |i| released.push(i)), AckOutcome::Released(1));
        assert_eq!(released, vec![7]);
    }
}
