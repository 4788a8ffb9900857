//! One session's output queue: serialised stanzas on their way to the connection, bounded in
//! bytes and in stanzas (`c2s.max_send_buffer`, `c2s.max_send_queue`).
//!
//! Nothing pushed here is lost:
//! * one sender (another account) may hold at most half of the bound: beyond that its
//!   stanzas are shed ([`Push::Shed`]) and take the undeliverable way (offline storage, a
//!   bounce) while the session lives on, so one flooding contact cannot get a reader on a slow
//!   link disconnected, and pays for its own flood;
//! * a stanza that does not fit otherwise closes the outbox ([`Push::Overflowed`]; the caller
//!   closes the session) and waits behind the others. (A client that stops reading is also
//!   closed by its connection once nothing could be written for `c2s.send_timeout`.)
//!
//! At the session's end its connection puts back what it took but never wrote
//! ([`Outbox::requeue_front`]) and [`Outbox::drain`] hands everything back, in order, for the
//! router to store or bounce ([`Fate`]). Bytes the connection took but has not yet written
//! still count against the bound, so the memory one session can hold is the bound (plus, while
//! it closes, at most as much again parked behind).

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tessera_plugin_api::xml::Element;
use tokio::sync::Notify;

const CARBONS_NS: &str = "urn:xmpp:carbons:2";
const FORWARD_NS: &str = "urn:xmpp:forward:0";
const CLIENT_NS: &str = "jabber:client";

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
    /// drops them when nobody can take them).
    Drop,
    /// A message routed to the account when no session could take it, while one of its
    /// sessions was closing: it waits behind what that session never wrote and is then
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

/// The copies of one message sent to several sessions (a bare-JID message to resources of
/// equal priority): a copy that is never written is handed on only if no other copy was
/// written and it is the last one left, so the message is neither lost nor stored twice.
#[derive(Debug)]
pub struct CopyGroup {
    unsettled: AtomicUsize,
    written: AtomicBool,
}

impl CopyGroup {
    /// A group of `copies`.
    pub fn new(copies: usize) -> Arc<Self> {
        Arc::new(Self {
            unsettled: AtomicUsize::new(copies),
            written: AtomicBool::new(false),
        })
    }

    /// One copy was written.
    pub fn wrote(&self) {
        self.written.store(true, Ordering::Release);
        self.unsettled.fetch_sub(1, Ordering::AcqRel);
    }

    /// One copy will never be written: whether it must be handed on (no copy was written,
    /// and no other is still on its way).
    pub fn left_over(&self) -> bool {
        let left = self
            .unsettled
            .fetch_sub(1, Ordering::AcqRel)
            .saturating_sub(1);
        left == 0 && !self.written.load(Ordering::Acquire)
    }
}

/// One serialised stanza and what becomes of it if it is never written.
#[derive(Debug, Clone)]
pub struct Queued {
    /// The stanza as it goes on the wire (`jabber:client` default namespace).
    pub xml: String,
    /// Its fate if unwritten.
    pub fate: Fate,
    /// Its copy group, if the same message went to several sessions.
    pub copies: Option<Arc<CopyGroup>>,
    /// Its sender, when that is another account (see [`Sender`]).
    pub sender: Option<Sender>,
}

/// Another account that sent a queued stanza, as a hash of its bare JID (the share of an
/// outbox one sender may hold is counted by it; the server and the account itself are not
/// counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sender(u64);

impl Sender {
    /// The sender a stanza counts for: its `from`, except that a XEP-0280 `<received/>` copy
    /// (from the account itself) counts for the sender of the message it carries, so that a
    /// flood reaching one resource does not overflow the others through their copies.
    pub fn of_stanza(stanza: &Element, own_bare: &str, domain: &str) -> Option<Self> {
        let from = stanza.attr("from");
        let carried = stanza
            .child("received", CARBONS_NS)
            .and_then(|r| r.child("forwarded", FORWARD_NS))
            .and_then(|f| f.child("message", CLIENT_NS))
            .and_then(|m| m.attr("from"));
        let own = from.is_some_and(|f| f == own_bare);
        Self::of(if own { carried.or(from) } else { from }, own_bare, domain)
    }

    /// The sender of a stanza with this `from`, unless it is the server (`domain`) or the
    /// recipient's own account (`own_bare`).
    pub fn of(from: Option<&str>, own_bare: &str, domain: &str) -> Option<Self> {
        let from = from?;
        let bare = from.split_once('/').map_or(from, |(bare, _)| bare);
        if bare == own_bare || bare == domain {
            return None;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bare.hash(&mut h);
        Some(Self(h.finish()))
    }
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.xml == other.xml && self.fate == other.fate && self.sender == other.sender
    }
}

impl Eq for Queued {}

impl Queued {
    /// A stanza sent to one session, counted for no sender.
    pub fn one(xml: String, fate: Fate) -> Self {
        Self {
            xml,
            fate,
            copies: None,
            sender: None,
        }
    }

    /// The bytes it counts for.
    pub fn cost(&self) -> usize {
        self.xml.len() + ENTRY_OVERHEAD
    }

    /// It was written: tell its copy group.
    pub fn wrote(&self) {
        if let Some(group) = &self.copies {
            group.wrote();
        }
    }

    /// It will never be written: whether it must be handed on (always, unless it is a copy
    /// of a message another copy of which was or may still be written).
    pub fn left_over(&self) -> bool {
        self.copies.as_ref().is_none_or(|g| g.left_over())
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
    /// The client does not read fast enough: it was full (of stanzas from several senders),
    /// or its connection could write nothing for `c2s.send_timeout`.
    NotReading,
    /// The session ended for another reason (the client left, a password change, a
    /// conflict, shutdown, a lost connection).
    SessionEnded,
}

/// What [`Outbox::push`] did with a stanza.
#[derive(Debug, PartialEq, Eq)]
pub enum Push {
    /// Queued for the connection.
    Queued,
    /// Its sender holds half the bound already: the caller hands it on now (offline storage,
    /// a bounce) and the session lives on.
    Shed(Queued),
    /// It did not fit: the outbox is now closed ([`Closed::NotReading`]) and the stanza waits
    /// behind the others for [`Outbox::drain`]. The caller closes the session.
    Overflowed,
    /// The outbox is closed: parked behind the others for [`Outbox::drain`].
    Parked,
    /// The outbox was drained for good (its session is gone and everything before was
    /// handed on), or twice the bound is parked already while it closes: the caller decides
    /// the stanza's fate now.
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
    /// Bytes queued and in flight per sender.
    by_sender: HashMap<Sender, usize>,
    closed: Option<Closed>,
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
        if let Some(sender) = item.sender {
            *self.by_sender.entry(sender).or_default() += item.cost();
        }
        self.queue.push_back(item);
    }

    fn release(&mut self, sender: Option<Sender>, cost: usize) {
        if let Some(sender) = sender {
            if let Some(bytes) = self.by_sender.get_mut(&sender) {
                *bytes = bytes.saturating_sub(cost);
                if *bytes == 0 {
                    self.by_sender.remove(&sender);
                }
            }
        }
    }
}

/// A bounded queue of serialised stanzas with one consumer (the connection task).
#[derive(Debug)]
pub struct Outbox {
    limits: Limits,
    inner: Mutex<Inner>,
    ready: Notify,
    /// The most bytes any outbox sharing it ever held (`tessera status`: what the bound
    /// must cover), raised when this one's own peak grows.
    peak_ever: Arc<AtomicUsize>,
}

impl Outbox {
    /// An empty, open outbox.
    pub fn new(limits: Limits) -> Self {
        Self::sharing_peak(limits, Arc::default())
    }

    /// An empty, open outbox that raises `peak_ever` to its own peak.
    pub fn sharing_peak(limits: Limits, peak_ever: Arc<AtomicUsize>) -> Self {
        Self {
            limits,
            inner: Mutex::new(Inner::default()),
            ready: Notify::new(),
            peak_ever,
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
            if inner.queued_bytes + item.cost() > self.limits.max_bytes.saturating_mul(2) {
                return Push::Refused(item);
            }
            inner.park(item);
            return Push::Parked;
        }
        let empty = inner.stanzas() == 0;
        if let Some(sender) = item.sender.filter(|_| !empty) {
            let held = inner.by_sender.get(&sender).copied().unwrap_or(0);
            if held + item.cost() > self.limits.max_bytes / 2 {
                return Push::Shed(item);
            }
        }
        let fits = inner.bytes() + item.cost() <= self.limits.max_bytes
            && inner.stanzas() < self.limits.max_stanzas;
        if !empty && !fits {
            inner.closed = Some(Closed::NotReading);
            inner.park(item);
            return Push::Overflowed;
        }
        inner.park(item);
        if inner.bytes() > inner.peak_bytes {
            inner.peak_bytes = inner.bytes();
            self.peak_ever
                .fetch_max(inner.peak_bytes, Ordering::Relaxed);
        }
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

    /// Stanzas taken earlier are wholly written: they no longer count (each given by its
    /// [`Queued::cost`] and sender).
    pub fn written(&self, done: impl IntoIterator<Item = (usize, Option<Sender>)>) {
        let mut inner = self.inner();
        for (cost, sender) in done {
            inner.in_flight_stanzas = inner.in_flight_stanzas.saturating_sub(1);
            inner.in_flight_bytes = inner.in_flight_bytes.saturating_sub(cost);
            inner.release(sender, cost);
        }
    }

    /// The connection's end: close it (if it was open) and put back, ahead of everything
    /// queued, what the connection took but never wrote.
    pub fn requeue_front(&self, items: Vec<Queued>) {
        let mut inner = self.inner();
        inner.closed.get_or_insert(Closed::SessionEnded);
        for item in items.into_iter().rev() {
            inner.queued_bytes += item.cost();
            inner.queue.push_front(item);
        }
        inner.in_flight_bytes = 0;
        inner.in_flight_stanzas = 0;
        inner.by_sender.clear();
    }

    /// A kept session lost its connection (stream management holds what it wrote): what the
    /// connection took no longer counts as in flight, and the outbox stays open, queuing what
    /// comes while the session waits to be resumed.
    pub fn forget_in_flight(&self) {
        let mut inner = self.inner();
        inner.in_flight_bytes = 0;
        inner.in_flight_stanzas = 0;
        let queued: Vec<(Sender, usize)> = inner
            .queue
            .iter()
            .filter_map(|i| i.sender.map(|s| (s, i.cost())))
            .collect();
        inner.by_sender.clear();
        for (sender, cost) in queued {
            *inner.by_sender.entry(sender).or_default() += cost;
        }
    }

    /// Take over what another session's outbox held (a resumption): ahead of everything
    /// queued (`front`), or behind it; an open outbox is woken for them.
    pub fn adopt(&self, items: Vec<Queued>, front: bool) {
        let mut inner = self.inner();
        if front {
            for item in items.into_iter().rev() {
                inner.queued_bytes += item.cost();
                if let Some(sender) = item.sender {
                    *inner.by_sender.entry(sender).or_default() += item.cost();
                }
                inner.queue.push_front(item);
            }
        } else {
            for item in items {
                inner.park(item);
            }
        }
        drop(inner);
        self.ready.notify_one();
    }

    /// Stop taking stanzas (the first reason given stays); later ones are parked for
    /// [`Outbox::drain`].
    pub fn close(&self, why: Closed) {
        let mut inner = self.inner();
        inner.closed.get_or_insert(why);
    }

    /// Hand back every stanza never taken, in order, with the reason it closed (closing it if
    /// it was open). Stanzas may be parked meanwhile: call again after handling these. The
    /// call that finds nothing drains it for good: from then on pushes are
    /// [`Push::Refused`], so whatever their callers do comes after all of these.
    pub fn drain(&self) -> (Closed, Vec<Queued>) {
        let mut inner = self.inner();
        let why = *inner.closed.get_or_insert(Closed::SessionEnded);
        if inner.queue.is_empty() {
            inner.drained = true;
        }
        inner.queued_bytes = 0;
        inner.by_sender.clear();
        let items = inner.queue.drain(..).collect();
        (why, items)
    }

    /// Whether its sender holds half of the bound already (checked before a stanza costs
    /// anything: its filters and its serialisation).
    pub fn sender_full(&self, sender: Option<Sender>) -> bool {
        let Some(sender) = sender else {
            return false;
        };
        let inner = self.inner();
        inner.closed.is_none()
            && inner.stanzas() > 0
            && inner.by_sender.get(&sender).copied().unwrap_or(0) >= self.limits.max_bytes / 2
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
        Queued::one(
            format!(
                "<message id='{n}'><body>{}</body></message>",
                "x".repeat(100)
            ),
            Fate::Offer,
        )
    }

    fn from(sender: &str, n: usize) -> Queued {
        Queued {
            sender: Sender::of(Some(sender), "bob@example.org", "example.org"),
            ..msg(n)
        }
    }

    fn outbox(stanzas_that_fit: usize) -> Outbox {
        Outbox::new(Limits {
            max_bytes: msg(0).cost() * stanzas_that_fit,
            max_stanzas: 1000,
        })
    }

    fn written(out: &Outbox, items: &[Queued]) {
        out.written(items.iter().map(|i| (i.cost(), i.sender)));
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
    fn the_server_and_the_account_itself_count_for_no_sender() {
        let of = |from| Sender::of(from, "bob@example.org", "example.org");
        assert_eq!(of(None), None);
        assert_eq!(of(Some("example.org")), None);
        assert_eq!(of(Some("bob@example.org/phone")), None);
        assert_eq!(
            of(Some("alice@example.org/a")),
            of(Some("alice@example.org/b"))
        );
        assert_ne!(of(Some("alice@example.org")), of(Some("carol@example.org")));
    }

    #[test]
    fn a_carbon_copy_counts_for_the_sender_of_the_message_it_carries() {
        let carbon = |inner_from: &str| {
            Element::new("message", CLIENT_NS)
                .with_attr("from", "bob@example.org")
                .with_attr("to", "bob@example.org/tablet")
                .with_child(Element::new("received", CARBONS_NS).with_child(
                    Element::new("forwarded", FORWARD_NS).with_child(
                        Element::new("message", CLIENT_NS).with_attr("from", inner_from),
                    ),
                ))
        };
        let of = |el: &Element| Sender::of_stanza(el, "bob@example.org", "example.org");
        let alice = Sender::of(
            Some("alice@example.org/x"),
            "bob@example.org",
            "example.org",
        );
        assert!(alice.is_some());
        assert_eq!(of(&carbon("alice@example.org/x")), alice);
        // Another account cannot pass as someone else with a copy of its own making.
        let forged = carbon("carol@example.org").with_attr("from", "alice@example.org/x");
        assert_eq!(of(&forged), alice);
        let plain = Element::new("message", CLIENT_NS).with_attr("from", "bob@example.org/p");
        assert_eq!(of(&plain), None);
    }

    #[test]
    fn one_sender_holds_at_most_half_and_is_shed_beyond_it_while_the_session_lives() {
        let out = outbox(4);
        assert_eq!(out.push(from("alice@example.org", 0)), Push::Queued);
        assert_eq!(out.push(from("alice@example.org/x", 1)), Push::Queued);
        assert_eq!(
            out.push(from("alice@example.org", 2)),
            Push::Shed(from("alice@example.org", 2))
        );
        assert_eq!(out.closed(), None);
        // Others still fit; the server's own stanzas count for nobody.
        assert_eq!(out.push(from("carol@example.org", 3)), Push::Queued);
        assert_eq!(out.push(msg(4)), Push::Queued);
        // Written: alice's share frees up.
        let taken = out.take(usize::MAX);
        written(&out, &taken[..2]);
        assert_eq!(out.push(from("alice@example.org", 5)), Push::Queued);
    }

    #[test]
    fn what_does_not_fit_closes_it_and_nothing_is_lost() {
        let out = outbox(3);
        for n in 0..3 {
            assert_eq!(out.push(msg(n)), Push::Queued);
        }
        assert_eq!(out.push(msg(3)), Push::Overflowed);
        assert_eq!(out.closed(), Some(Closed::NotReading));
        // Later ones wait behind it; the connection takes nothing more.
        assert_eq!(out.push(msg(4)), Push::Parked);
        assert!(out.take(usize::MAX).is_empty());
        let (why, items) = out.drain();
        assert_eq!(why, Closed::NotReading);
        assert_eq!(items, (0..5).map(msg).collect::<Vec<_>>());
        // Parked while those were handed on: handed back by the next call.
        assert_eq!(out.push(msg(5)), Push::Parked);
        assert_eq!(out.drain().1, vec![msg(5)]);
        // The call that finds nothing ends it: later stanzas are the caller's, after all these.
        assert!(out.drain().1.is_empty());
        assert_eq!(out.push(msg(6)), Push::Refused(msg(6)));
    }

    #[test]
    fn parking_while_closing_stops_at_twice_the_bound() {
        let out = outbox(2);
        out.close(Closed::SessionEnded);
        for n in 0..4 {
            assert_eq!(out.push(msg(n)), Push::Parked, "{n}");
        }
        assert_eq!(out.push(msg(4)), Push::Refused(msg(4)));
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
        written(&out, &taken[..1]);
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
        written(&out, &taken);
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
        let big = Queued::one("y".repeat(10 * msg(0).cost()), Fate::Bounce);
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
        out.close(Closed::NotReading);
        assert_eq!(out.push(msg(1)), Push::Parked);
        let (why, items) = out.drain();
        assert_eq!(why, Closed::SessionEnded);
        assert_eq!(items.len(), 2);
    }

    #[test]
    fn a_copy_is_handed_on_only_when_no_copy_was_written_and_it_is_the_last() {
        let group = CopyGroup::new(3);
        let copy = |g: &Arc<CopyGroup>| Queued {
            copies: Some(g.clone()),
            ..msg(0)
        };
        let (a, b, c) = (copy(&group), copy(&group), copy(&group));
        assert!(!a.left_over(), "two others are still on their way");
        assert!(!b.left_over(), "one other is still on its way");
        assert!(c.left_over(), "the last one, and none was written");
        let group = CopyGroup::new(2);
        let (a, b) = (copy(&group), copy(&group));
        a.wrote();
        assert!(!b.left_over(), "another copy was written");
        assert!(msg(1).left_over(), "a stanza sent once is always handed on");
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
