//! One session's XEP-0198 acknowledgement queue, as the host keeps it (see
//! `tessera_plugin_api::acks`): the counting of [`AckQueue`], the serialised stanzas written and
//! not yet acknowledged (with when they were first written, for the `<delay/>` of a re-send),
//! and when the server asks the client for an acknowledgement.

use tessera_plugin_api::acks::{AckOutcome, AckQueue, AckSettings, AckStatus};
use tessera_plugin_api::datetime::format_utc_millis;
use tessera_plugin_api::xml::{escape_attr, Element};

use super::outbox::Queued;
use crate::stream::parse::{parse_element, StreamHeader};

const DELAY_NS: &str = "urn:xmpp:delay";
const CLIENT_NS: &str = "jabber:client";

/// A stanza written to the client and not yet acknowledged.
#[derive(Debug, Clone)]
pub struct Unacked {
    /// What was written, and its fate should it never be acknowledged.
    pub item: Queued,
    /// When it was first written (ms since the epoch).
    pub at_ms: u64,
}

/// What a session's queue waits for next ([`SessionAcks::next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Ask the client for an acknowledgement at this time (ms).
    Request(u64),
    /// The request written at this time goes unanswered for too long at this time (ms): the
    /// connection is dead.
    Timeout(u64),
}

/// The acknowledgement queue of one session.
#[derive(Debug)]
pub struct SessionAcks {
    settings: AckSettings,
    queue: AckQueue<Unacked>,
    /// When the outstanding `<r/>` was written, if one is.
    requested_at_ms: Option<u64>,
    /// Bytes of the unacknowledged stanzas, and the most they may take.
    bytes: usize,
    max_bytes: usize,
}

impl SessionAcks {
    /// A queue counting from zero, holding at most `settings.max_queue` stanzas and
    /// `max_bytes` bytes unacknowledged.
    pub fn new(settings: AckSettings, max_bytes: usize) -> Self {
        Self {
            settings,
            queue: AckQueue::default(),
            requested_at_ms: None,
            bytes: 0,
            max_bytes,
        }
    }

    /// Its settings.
    pub fn settings(&self) -> &AckSettings {
        &self.settings
    }

    /// One stanza from the client was handled.
    pub fn handled_one(&mut self) {
        self.queue.handled_one();
    }

    /// One stanza was written to the client; `false` when the unacknowledged ones now exceed
    /// the queue's bounds (the caller ends the session: a client that never acknowledges must
    /// not make the server hold everything it is sent).
    #[must_use]
    pub fn written(&mut self, item: Queued, now_ms: u64) -> bool {
        self.bytes += item.cost();
        self.queue.sent(Unacked {
            item,
            at_ms: now_ms,
        });
        self.queue.unacked_len() <= self.settings.max_queue as usize && self.bytes <= self.max_bytes
    }

    /// The client acknowledged `h`: released stanzas are written for good (their copy groups
    /// learn it through `release`).
    pub fn ack(&mut self, h: u32, mut release: impl FnMut(Unacked)) -> AckOutcome {
        let mut freed = 0;
        let outcome = self.queue.outcome(h, |unacked| {
            freed += unacked.item.cost();
            release(unacked);
        });
        self.bytes = self.bytes.saturating_sub(freed);
        if matches!(outcome, AckOutcome::Released(_)) {
            self.requested_at_ms = None;
        }
        outcome
    }

    /// The counters as a module sees them.
    pub fn status(&self, detached: bool) -> AckStatus {
        self.queue.status(&self.settings.ns, detached)
    }

    /// Stanzas written and not yet acknowledged.
    pub fn unacked_len(&self) -> usize {
        self.queue.unacked_len()
    }

    /// Whether the server should ask for an acknowledgement now: none is outstanding, and more
    /// than `request_after` stanzas wait or the oldest has waited `request_after_ms`.
    pub fn request_due(&self, now_ms: u64) -> bool {
        if self.requested_at_ms.is_some() {
            return false;
        }
        let waiting = self.queue.unacked_len();
        waiting > self.settings.request_after as usize
            || self.queue.oldest().is_some_and(|oldest| {
                now_ms >= oldest.at_ms.saturating_add(self.settings.request_after_ms)
            })
    }

    /// The `<r/>` to write; it is outstanding from `now_ms`.
    pub fn request(&mut self, now_ms: u64) -> String {
        self.requested_at_ms = Some(now_ms);
        format!("<r xmlns='{}'/>", escape_attr(&self.settings.ns))
    }

    /// The next thing a connection must wake for, if any.
    pub fn next(&self) -> Option<Due> {
        if let Some(at) = self.requested_at_ms {
            return Some(Due::Timeout(
                at.saturating_add(self.settings.ack_timeout_ms),
            ));
        }
        self.queue
            .oldest()
            .map(|oldest| Due::Request(oldest.at_ms.saturating_add(self.settings.request_after_ms)))
    }

    /// A new connection serves the session (a resumption): no request of the old one is
    /// outstanding.
    pub fn reconnected(&mut self) {
        self.requested_at_ms = None;
    }

    /// Every unacknowledged stanza (the session ends without resumption: they take the
    /// undeliverable way).
    pub fn take_unacked(&mut self) -> Vec<Queued> {
        self.bytes = 0;
        self.queue
            .take_unacked()
            .into_iter()
            .map(|u| u.item)
            .collect()
    }

    /// The unacknowledged stanzas as a resumed stream gets them again: each message and
    /// presence with a XEP-0203 `<delay/>` from the account's bare JID, stamped when it was
    /// first written (unless it has one); IQs as they were.
    pub fn replay(&self, bare: &str) -> String {
        let header = StreamHeader {
            default_ns: Some(CLIENT_NS.to_owned()),
            ..StreamHeader::default()
        };
        let mut out = String::new();
        for unacked in self.queue.unacked() {
            let xml = &unacked.item.xml;
            let delayed = match parse_element(xml.as_bytes(), &header) {
                Ok(mut stanza)
                    if stanza.name != "iq" && stanza.child("delay", DELAY_NS).is_none() =>
                {
                    stanza.push_child(
                        Element::new("delay", DELAY_NS)
                            .with_attr("from", bare)
                            .with_attr("stamp", format_utc_millis(unacked.at_ms)),
                    );
                    Some(stanza)
                }
                _ => None,
            };
            match delayed {
                Some(stanza) => stanza.write_xml(&mut out, CLIENT_NS),
                None => out.push_str(xml),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::outbox::Fate;

    fn settings() -> AckSettings {
        AckSettings {
            ns: "urn:xmpp:sm:3".into(),
            request_after: 2,
            request_after_ms: 5_000,
            ack_timeout_ms: 60_000,
            max_queue: 500,
            keep_ms: 600_000,
        }
    }

    fn write(acks: &mut SessionAcks, item: Queued, at_ms: u64) {
        assert!(acks.written(item, at_ms), "within the bounds");
    }

    fn message(n: u32) -> Queued {
        Queued::one(
            format!("<message to='a@example.org/r' id='m{n}'><body>{n}</body></message>"),
            Fate::Offer,
        )
    }

    #[test]
    fn asks_after_the_threshold_or_the_delay_one_request_at_a_time() {
        let mut acks = SessionAcks::new(settings(), 1 << 20);
        write(&mut acks, message(1), 1_000);
        write(&mut acks, message(2), 1_000);
        assert!(!acks.request_due(1_000), "two waiting is not more than two");
        assert_eq!(acks.next(), Some(Due::Request(6_000)));
        assert!(acks.request_due(6_000), "the oldest waited 5 s");
        write(&mut acks, message(3), 1_100);
        assert!(acks.request_due(1_100), "three waiting");
        assert_eq!(acks.request(1_100), "<r xmlns='urn:xmpp:sm:3'/>");
        assert!(
            !acks.request_due(7_000),
            "one request outstanding at a time"
        );
        assert_eq!(acks.next(), Some(Due::Timeout(61_100)));
        assert_eq!(acks.ack(3, drop), AckOutcome::Released(3));
        assert_eq!(acks.next(), None, "answered and nothing waits");
    }

    #[test]
    fn the_unacknowledged_stanzas_are_bounded_in_number_and_bytes() {
        let mut few = SessionAcks::new(
            AckSettings {
                max_queue: 2,
                ..settings()
            },
            1 << 20,
        );
        assert!(few.written(message(1), 0) && few.written(message(2), 0));
        assert!(!few.written(message(3), 0), "a third over a queue of two");
        assert_eq!(few.ack(2, drop), AckOutcome::Released(2));
        assert!(few.written(message(4), 0), "acknowledged ones make room");
        let mut small = SessionAcks::new(settings(), 2 * message(1).cost());
        assert!(small.written(message(1), 0) && small.written(message(2), 0));
        assert!(!small.written(message(3), 0), "over the bytes");
        assert_eq!(small.ack(3, drop), AckOutcome::Released(3));
        assert!(small.written(message(4), 0));
    }

    #[test]
    fn a_refused_ack_leaves_the_request_outstanding() {
        let mut acks = SessionAcks::new(settings(), 1 << 20);
        write(&mut acks, message(1), 0);
        acks.request(0);
        assert_eq!(acks.ack(2, drop), AckOutcome::TooHigh { sent: 1 });
        assert_eq!(acks.next(), Some(Due::Timeout(60_000)));
        acks.reconnected();
        assert_eq!(acks.next(), Some(Due::Request(5_000)));
    }

    #[test]
    fn replay_delays_messages_and_presence_but_not_iqs() {
        let mut acks = SessionAcks::new(settings(), 1 << 20);
        write(&mut acks, message(1), 1_700_000_000_000);
        write(
            &mut acks,
            Queued::one("<iq type='result' id='i1'/>".into(), Fate::Drop),
            1_700_000_000_500,
        );
        write(
            &mut acks,
            Queued::one("<presence from='c@example.org/x'/>".into(), Fate::Drop),
            1_700_000_001_000,
        );
        let replay = acks.replay("a@example.org");
        assert_eq!(
            replay,
            "<message to='a@example.org/r' id='m1'><body>1</body>\
             <delay xmlns='urn:xmpp:delay' from='a@example.org' stamp='2023-11-14T22:13:20.000Z'/></message>\
             <iq type='result' id='i1'/>\
             <presence from='c@example.org/x'><delay xmlns='urn:xmpp:delay' from='a@example.org' stamp='2023-11-14T22:13:21.000Z'/></presence>"
        );
        assert_eq!(acks.take_unacked().len(), 3);
        assert_eq!(acks.status(false).sent, 3, "the count stays");
    }
}
