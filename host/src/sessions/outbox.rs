//! One session's output queue: serialised stanzas on their way to the connection, bounded in
//! bytes and in stanzas (`c2s.max_send_buffer`, `c2s.max_send_queue`).
//!
//! A stanza that does not fit closes the outbox (the router then closes the session with a
//! stream error) instead of being dropped: it is parked behind the others, and whatever the
//! connection never wrote is handed back by [`Outbox::drain`] in order, for the router to
//! store or bounce ([`Fate`]). Bytes the connection took but has not yet written still count
//! against the bound, so the memory a session that does not read can hold is the bound.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

/// Bytes counted per queued stanza on top of its text (the queue slot and the allocation), so
/// a flood of tiny stanzas meets the byte bound too.
pub const ENTRY_OVERHEAD: usize = 64;

/// What becomes of a queued stanza its session never wrote (RFC 6120 §8.3.1, RFC 6121 §8.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// A `chat` or `normal` message: offered to the undeliverable hooks (offline storage),
    /// bounced to its sender if nobody stores it.
    Offer,
    /// Bounced to its sender with an error: an IQ request, a `groupchat` message.
    Bounce,
    /// Nothing goes back: presence (subscription states live in the roster, and presence is
    /// never bounced), errors and IQ results (never answered), headlines (RFC 6121 §8.5.2.1.1
    /// drops them when nobody can take them), and one of several copies of a message (the
    /// others were written).
    Drop,
    /// A message routed to the account when no session could take it, while one of its
    /// sessions was still handing on what it never wrote: it waits behind those and is then
    /// handled as at routing (offline storage or `<service-unavailable/>`), so that storage
    /// keeps the order in which messages were sent.
    Undeliverable,
}

impl Fate {
    /// The fate of a `jabber:client` stanza by its name and `type`.
    pub fn of(name: &str, stanza_type: Option<&str>) -> Self {
        match (name, stanza_type) {
            ("message", None | Some("chat" | "normal")) => Self::Offer,
            ("message", Some("groupchat")) => Self::Bounce,
            ("iq", Some("get" | "set")) => Self::Bounce,
            _ => Self::Drop,
        }
    }
}

/// One serialised stanza and what becomes of it if it is never written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The stanza as it goes on the wire (`jabber:client` default namespace).
    pub xml: String,
    /// Its fate if unwritten.
    pub fate: Fate,
}

impl Queued {
    /// The bytes it counts for.
    pub fn cost(&self) -> usize {
        self.xml.len() + ENTRY_OVERHEAD
    }
}

/// The bounds of one outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes queued and in flight (stanza text plus [`ENTRY_OVERHEAD`] each).
    pub max_bytes: usize,
    /// Stanzas queued and in flight.
    pub max_stanzas: usize,
}

/// Why an outbox stopped taking stanzas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// A stanza did not fit: the session does not read fast enough.
    SendBufferFull,
    /// The session ended for another reason (the client left, a password change, a
    /// conflict, shutdown, a lost connection).
    SessionEnded,
}

/// What [`Outbox::push`] did with a stanza.
#[derive(Debug, PartialEq, Eq)]
pub enum Push {
    /// Queued for the connection.
    Queued,
    /// It did not fit: the outbox is now closed ([`Closed::SendBufferFull`]) and the stanza
    /// waits behind the others for [`Outbox::drain`]. The caller closes the session.
    Overflowed,
    /// The outbox is closed: parked behind the others for [`Outbox::drain`].
    Parked,
    /// Closed, handed over ([`Outbox::requeue_front`]) and twice the bound is parked: the
    /// caller helps hand on what waits, then pushes again (the flood pays for itself, and
    /// the order holds).
    Full(Queued),
    /// The outbox was drained for good (its session is gone): everything before this stanza
    /// was handed on, and the caller decides its fate now.
    Refused(Queued),
}

/// How full an outbox is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// Stanzas queued or in flight.
    pub stanzas: usize,
    /// Bytes queued or in flight.
    pub bytes: usize,
    /// The most bytes it ever held.
    pub peak_bytes: usize,
}

#[derive(Debug, Default)]
struct Inner {
    queue: VecDeque<Queued>,
    queued_bytes: usize,
    /// Taken by the connection, not yet reported written.
    in_flight_bytes: usize,
    in_flight_stanzas: usize,
    closed: Option<Closed>,
    /// The connection put back what it never wrote: anyone may help hand on now.
    handed_over: bool,
    drained: bool,
    peak_bytes: usize,
}

impl Inner {
    fn bytes(&self) -> usize {
        self.queued_bytes + self.in_flight_bytes
    }

    fn stanzas(&self) -> usize {
        self.queue.len() + self.in_flight_stanzas
    }

    fn park(&mut self, item: Queued) {
        self.queued_bytes += item.cost();
        self.queue.push_back(item);
    }
}

/// A bounded queue of serialised stanzas with one consumer (the connection task).
#[derive(Debug)]
pub struct Outbox {
    limits: Limits,
    inner: Mutex<Inner>,
    ready: Notify,
}

impl Outbox {
    /// An empty, open outbox.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            inner: Mutex::new(Inner::default()),
            ready: Notify::new(),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queue a stanza. One always fits into an empty outbox, however large (a roster or an
    /// archive page may exceed the bound on its own).
    pub fn push(&self, item: Queued) -> Push {
        let mut inner = self.inner();
        if inner.drained {
            return Push::Refused(item);
        }
        if inner.closed.is_some() {
            let over = inner.queued_bytes + item.cost() > self.limits.max_bytes.saturating_mul(2);
            if over && inner.handed_over {
                return Push::Full(item);
            }
            // Until the connection hands over (it wakes at once), parking is not capped.
            inner.park(item);
            return Push::Parked;
        }
        let empty = inner.stanzas() == 0;
        let fits = inner.bytes() + item.cost() <= self.limits.max_bytes
            && inner.stanzas() < self.limits.max_stanzas;
        if !empty && !fits {
            inner.closed = Some(Closed::SendBufferFull);
            inner.park(item);
            return Push::Overflowed;
        }
        inner.park(item);
        inner.peak_bytes = inner.peak_bytes.max(inner.bytes());
        drop(inner);
        self.ready.notify_one();
        Push::Queued
    }

    /// Take queued stanzas for writing, up to about `max_bytes` (at least one if any is
    /// queued); they count against the bound until [`Outbox::written`]. Nothing is taken
    /// once the outbox is closed: what is left is [`Outbox::drain`]'s.
    pub fn take(&self, max_bytes: usize) -> Vec<Queued> {
        let mut inner = self.inner();
        if inner.closed.is_some() {
            return Vec::new();
        }
        let mut taken = Vec::new();
        let mut bytes = 0;
        while let Some(front) = inner.queue.front() {
            if !taken.is_empty() && bytes + front.xml.len() > max_bytes {
                break;
            }
            let Some(item) = inner.queue.pop_front() else {
                break;
            };
            bytes += item.xml.len();
            inner.queued_bytes -= item.cost();
            inner.in_flight_bytes += item.cost();
            inner.in_flight_stanzas += 1;
            taken.push(item);
        }
        taken
    }

    /// Stanzas taken earlier are written (or handed to [`Outbox::drain`]'s caller): they no
    /// longer count. `cost` is the sum of their [`Queued::cost`].
    pub fn written(&self, stanzas: usize, cost: usize) {
        let mut inner = self.inner();
        inner.in_flight_stanzas = inner.in_flight_stanzas.saturating_sub(stanzas);
        inner.in_flight_bytes = inner.in_flight_bytes.saturating_sub(cost);
    }

    /// Park a stanza whatever the cap ([`Push::Parked`]), unless it was drained for good
    /// ([`Push::Refused`]): for stanzas routed while handing on, which must not wait for
    /// themselves.
    pub fn park(&self, item: Queued) -> Push {
        let mut inner = self.inner();
        if inner.drained {
            return Push::Refused(item);
        }
        inner.closed.get_or_insert(Closed::SessionEnded);
        inner.park(item);
        Push::Parked
    }

    /// The connection's end: close it (if it was open), put back, ahead of everything queued,
    /// what the connection took but never wrote, and let others help hand it all on.
    pub fn requeue_front(&self, items: Vec<Queued>) {
        let mut inner = self.inner();
        inner.closed.get_or_insert(Closed::SessionEnded);
        for item in items.into_iter().rev() {
            inner.queued_bytes += item.cost();
            inner.queue.push_front(item);
        }
        inner.in_flight_bytes = 0;
        inner.in_flight_stanzas = 0;
        inner.handed_over = true;
    }

    /// Stop taking stanzas (the first reason given stays); later ones are parked for
    /// [`Outbox::drain`].
    pub fn close(&self, why: Closed) {
        let mut inner = self.inner();
        inner.closed.get_or_insert(why);
    }

    /// Hand back every stanza never taken, in order, with the reason it closed (closing it
    /// if it was open). Stanzas may still be parked meanwhile: call again after handling
    /// these. The call that finds nothing drains it for good: from then on pushes are
    /// [`Push::Refused`], so whatever the caller handles afterwards comes after all of these.
    pub fn drain(&self) -> (Closed, Vec<Queued>) {
        let mut inner = self.inner();
        let why = *inner.closed.get_or_insert(Closed::SessionEnded);
        if inner.queue.is_empty() {
            inner.drained = true;
        }
        inner.queued_bytes = 0;
        let items = inner.queue.drain(..).collect();
        (why, items)
    }

    /// Why it closed, if it did.
    pub fn closed(&self) -> Option<Closed> {
        self.inner().closed
    }

    /// Resolves when a stanza can be taken (single consumer).
    pub async fn ready(&self) {
        loop {
            {
                let inner = self.inner();
                if !inner.queue.is_empty() && inner.closed.is_none() {
                    return;
                }
            }
            self.ready.notified().await;
        }
    }

    /// How full it is.
    pub fn figures(&self) -> Figures {
        let inner = self.inner();
        Figures {
            stanzas: inner.stanzas(),
            bytes: inner.bytes(),
            peak_bytes: inner.peak_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: usize) -> Queued {
        Queued {
            xml: format!(
                "<message id='{n}'><body>{}</body></message>",
                "x".repeat(100)
            ),
            fate: Fate::Offer,
        }
    }

    fn outbox(stanzas_that_fit: usize) -> Outbox {
        Outbox::new(Limits {
            max_bytes: msg(0).cost() * stanzas_that_fit,
            max_stanzas: 1000,
        })
    }

    #[test]
    fn fates_follow_rfc_6120_and_6121() {
        assert_eq!(Fate::of("message", None), Fate::Offer);
        assert_eq!(Fate::of("message", Some("chat")), Fate::Offer);
        assert_eq!(Fate::of("message", Some("normal")), Fate::Offer);
        assert_eq!(Fate::of("message", Some("groupchat")), Fate::Bounce);
        assert_eq!(Fate::of("message", Some("headline")), Fate::Drop);
        assert_eq!(Fate::of("message", Some("error")), Fate::Drop);
        assert_eq!(Fate::of("iq", Some("get")), Fate::Bounce);
        assert_eq!(Fate::of("iq", Some("set")), Fate::Bounce);
        assert_eq!(Fate::of("iq", Some("result")), Fate::Drop);
        assert_eq!(Fate::of("iq", Some("error")), Fate::Drop);
        assert_eq!(Fate::of("presence", None), Fate::Drop);
        assert_eq!(Fate::of("presence", Some("subscribe")), Fate::Drop);
    }

    #[test]
    fn the_stanza_that_does_not_fit_closes_it_and_nothing_is_lost() {
        let out = outbox(3);
        for n in 0..3 {
            assert_eq!(out.push(msg(n)), Push::Queued);
        }
        assert_eq!(out.push(msg(3)), Push::Overflowed);
        assert_eq!(out.closed(), Some(Closed::SendBufferFull));
        // Later ones wait behind it; the connection takes nothing more.
        assert_eq!(out.push(msg(4)), Push::Parked);
        assert!(out.take(usize::MAX).is_empty());
        let (why, items) = out.drain();
        assert_eq!(why, Closed::SendBufferFull);
        assert_eq!(items, (0..5).map(msg).collect::<Vec<_>>());
        // Parked while the first ones were handled: handed back by the next call.
        assert_eq!(out.push(msg(5)), Push::Parked);
        assert_eq!(out.drain().1, vec![msg(5)]);
        // The call that finds nothing ends it: the caller handles later stanzas itself.
        assert!(out.drain().1.is_empty());
        assert_eq!(out.push(msg(6)), Push::Refused(msg(6)));
    }

    #[test]
    fn once_handed_over_parking_stops_at_twice_the_bound() {
        let out = outbox(2);
        out.close(Closed::SessionEnded);
        for n in 0..5 {
            assert_eq!(out.push(msg(n)), Push::Parked, "{n}: not yet handed over");
        }
        let out = outbox(2);
        out.push(msg(0));
        let taken = out.take(usize::MAX);
        out.requeue_front(taken);
        for n in 1..4 {
            assert_eq!(out.push(msg(n)), Push::Parked, "{n}");
        }
        assert_eq!(out.push(msg(4)), Push::Full(msg(4)));
        // A stanza routed while handing on parks anyway.
        assert_eq!(out.park(msg(4)), Push::Parked);
        assert_eq!(out.drain().1, (0..5).map(msg).collect::<Vec<_>>());
    }

    #[test]
    fn what_the_connection_never_wrote_goes_back_ahead_of_the_queue() {
        let out = outbox(10);
        for n in 0..4 {
            out.push(msg(n));
        }
        let taken = out.take(msg(0).xml.len() * 2);
        assert_eq!(taken.len(), 2);
        out.push(msg(4));
        // The connection wrote the first, not the second.
        out.written(1, msg(0).cost());
        out.requeue_front(vec![msg(1)]);
        assert_eq!(out.figures().stanzas, 4);
        let (why, items) = out.drain();
        assert_eq!(why, Closed::SessionEnded);
        assert_eq!(items, (1..5).map(msg).collect::<Vec<_>>());
    }

    #[test]
    fn bytes_taken_but_not_written_still_count() {
        let out = outbox(2);
        out.push(msg(0));
        out.push(msg(1));
        let taken = out.take(usize::MAX);
        assert_eq!(taken.len(), 2);
        assert_eq!(out.figures().bytes, 2 * msg(0).cost());
        assert_eq!(out.push(msg(2)), Push::Overflowed);
        let out = outbox(2);
        out.push(msg(0));
        out.push(msg(1));
        let taken = out.take(usize::MAX);
        out.written(2, taken.iter().map(Queued::cost).sum());
        assert_eq!(out.figures().bytes, 0);
        assert_eq!(out.figures().peak_bytes, 2 * msg(0).cost());
        assert_eq!(out.push(msg(2)), Push::Queued);
    }

    #[test]
    fn the_stanza_count_is_a_bound_too() {
        let out = Outbox::new(Limits {
            max_bytes: usize::MAX,
            max_stanzas: 2,
        });
        assert_eq!(out.push(msg(0)), Push::Queued);
        assert_eq!(out.push(msg(1)), Push::Queued);
        assert_eq!(out.push(msg(2)), Push::Overflowed);
    }

    #[test]
    fn one_stanza_larger_than_the_bound_fits_an_empty_outbox() {
        let out = outbox(1);
        let big = Queued {
            xml: "y".repeat(10 * msg(0).cost()),
            fate: Fate::Bounce,
        };
        assert_eq!(out.push(big.clone()), Push::Queued);
        assert_eq!(out.push(msg(0)), Push::Overflowed);
        assert_eq!(out.drain().1, vec![big, msg(0)]);
    }

    #[test]
    fn take_batches_by_bytes_and_keeps_order() {
        let out = outbox(100);
        for n in 0..10 {
            out.push(msg(n));
        }
        let first = out.take(msg(0).xml.len() * 3);
        assert_eq!(first, (0..3).map(msg).collect::<Vec<_>>());
        let rest = out.take(usize::MAX);
        assert_eq!(rest, (3..10).map(msg).collect::<Vec<_>>());
    }

    #[test]
    fn a_session_end_keeps_its_first_reason() {
        let out = outbox(10);
        out.push(msg(0));
        out.close(Closed::SessionEnded);
        out.close(Closed::SendBufferFull);
        assert_eq!(out.push(msg(1)), Push::Parked);
        let (why, items) = out.drain();
        assert_eq!(why, Closed::SessionEnded);
        assert_eq!(items.len(), 2);
    }

    #[tokio::test]
    async fn ready_wakes_for_a_stanza_pushed_before_the_wait() {
        let out = outbox(10);
        out.push(msg(0));
        tokio::time::timeout(std::time::Duration::from_secs(5), out.ready())
            .await
            .expect("ready");
    }
}
