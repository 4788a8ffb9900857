//! Stanzas a session will never write — queued when it ended, the one that overflowed its
//! outbox, or routed to it just after it went — take the undeliverable way, each by its
//! [`Fate`]: a `chat` or `normal` message is offered to the `Undeliverable` hooks with the
//! session named in the header (stream management keeps its own session's; offline storage
//! stores the rest), and bounced to its sender if nobody takes it; an IQ request or a
//! `groupchat` message is bounced; presence, errors, IQ results and headlines are dropped by
//! rule (RFC 6120 §8.3.1, RFC 6121 §4 and §8.5.2.1.1). Every one is counted
//! ([`DeliveryStats`](super::accounting::DeliveryStats)).
//!
//! The bounce is `<service-unavailable/>` without a text, the answer a stanza to an account
//! with no session gets: `<recipient-unavailable/>` (Prosody's choice for stream management's
//! leftovers) or a text such as ejabberd's "User session terminated" would tell any sender
//! that the recipient was online a moment ago, which RFC 6120 §8.3.3.13 forbids towards
//! senders not authorized to see the recipient's presence — and the host cannot tell who is.

use std::cell::Cell;

use tessera_plugin_api::stanza::StanzaPoint;
use tessera_plugin_api::sync::locked;
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{reply, StanzaCondition};

use super::accounting::{Outcome, Reason};
use super::hooks::{self, Chain, Concern, Stop};
use super::{bounce_of, route_error_back};
use crate::runtime::modules::Routes;
use crate::sessions::outbox::{Closed, Fate, Push, Queued};
use crate::sessions::SessionEntry;
use crate::stream::parse::{parse_element, StreamHeader};
use crate::Shared;

/// The session a leftover was meant for.
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    /// Its account.
    pub user: &'a str,
    /// Its stream id.
    pub stream: u64,
}

impl Reason {
    /// The reason for what an outbox closed this way never wrote.
    pub fn of_closed(closed: Closed) -> Self {
        match closed {
            Closed::SendBufferFull => Self::SendBufferFull,
            Closed::SessionEnded => Self::SessionEnded,
        }
    }
}

thread_local! {
    /// Set while this thread hands on a session's leftovers (stanzas routed meanwhile park
    /// behind without helping: the thread would wait for itself).
    static HANDING_ON: Cell<bool> = const { Cell::new(false) };
}

/// Hand on everything an ended session never wrote, in order (its connection put back what it
/// had taken: [`Outbox::requeue_front`](crate::sessions::outbox::Outbox::requeue_front)),
/// batch after batch until nothing more was parked meanwhile (messages for the account wait
/// behind; see [`Fate::Undeliverable`]).
pub fn hand_on(shared: &Shared, session: &SessionEntry) {
    while hand_on_batch(shared, session) {}
}

/// One batch, under the session's hand-on lock (its connection and helping senders take
/// turns, so batches are handed on in order); `false` once it is drained for good.
fn hand_on_batch(shared: &Shared, session: &SessionEntry) -> bool {
    let _turn = locked(&session.handing_on);
    let was = HANDING_ON.with(|h| h.replace(true));
    let (why, items) = session.outbox.drain();
    let more = !items.is_empty();
    let to = Recipient {
        user: &session.user,
        stream: session.stream_id,
    };
    dispose_queued(shared, to, items, Reason::of_closed(why));
    HANDING_ON.with(|h| h.set(was));
    more
}

/// Queue `item` behind what an ending session has not handed on yet, helping to hand that on
/// while too much waits. `Some` when it was all handed on already: the caller decides the
/// stanza's fate now, after everything before it.
pub fn behind(shared: &Shared, session: &SessionEntry, item: Queued) -> Option<Queued> {
    let mut item = item;
    loop {
        let push = if HANDING_ON.with(Cell::get) {
            session.outbox.park(item)
        } else {
            session.outbox.push(item)
        };
        match push {
            Push::Refused(back) => return Some(back),
            Push::Full(back) => {
                item = back;
                hand_on_batch(shared, session);
            }
            Push::Queued | Push::Overflowed | Push::Parked => return None,
        }
    }
}

/// Decide the fate of serialised leftovers, in order.
fn dispose_queued(shared: &Shared, to: Recipient<'_>, items: Vec<Queued>, reason: Reason) {
    if items.is_empty() {
        return;
    }
    let routes = shared.registry.routes();
    let header = client_header();
    for item in items {
        if item.fate == Fate::Drop {
            shared.delivery.record(Outcome::Dropped, reason);
            continue;
        }
        match parse_element(item.xml.as_bytes(), &header) {
            Ok(stanza) => dispose(shared, &routes, to, stanza, item.fate, reason),
            Err(e) => {
                // The host wrote this text itself: it parses unless there is a bug.
                tracing::error!(error = %e, "a queued stanza does not parse back; dropped");
                shared.delivery.record(Outcome::Dropped, reason);
            }
        }
    }
}

/// Decide the fate of one leftover stanza.
pub fn dispose(
    shared: &Shared,
    routes: &Routes,
    to: Recipient<'_>,
    stanza: Element,
    fate: Fate,
    reason: Reason,
) {
    let domain = &shared.config.domain;
    let (outcome, bounce) = match fate {
        Fate::Drop => (Outcome::Dropped, None),
        // Handled as at routing (counted there, as `no-session`).
        Fate::Undeliverable => {
            if let Some(bounce) = super::undeliverable_now(shared, routes, stanza, to.user) {
                route_error_back(shared, routes, bounce);
            }
            return;
        }
        Fate::Bounce => (Outcome::Bounced, bounce(&stanza, domain)),
        Fate::Offer => {
            let concern = Concern {
                account: Some(to.user),
                session: Some(to.stream),
            };
            match hooks::run(routes, StanzaPoint::Undeliverable, stanza, concern, None) {
                Chain::Continue(stanza) => (Outcome::Bounced, bounce(&stanza, domain)),
                Chain::Stopped {
                    stop: Stop::Stored | Stop::Handled,
                    ..
                } => (Outcome::Stored, None),
                Chain::Stopped { stanza, stop } => {
                    (Outcome::Bounced, bounce_of(&stanza, stop, domain))
                }
            }
        }
    };
    let outcome = if outcome == Outcome::Bounced && bounce.is_none() {
        Outcome::Dropped
    } else {
        outcome
    };
    // Counted once its bounce is on its way, so a counter that moved means the sender's
    // outbox holds the error.
    if let Some(bounce) = bounce {
        route_error_back(shared, routes, bounce);
    }
    shared.delivery.record(outcome, reason);
}

fn bounce(stanza: &Element, domain: &str) -> Option<Element> {
    reply::error(stanza, StanzaCondition::ServiceUnavailable, None, domain)
}

/// The header a queued stanza was written under (`jabber:client` default namespace).
fn client_header() -> StreamHeader {
    StreamHeader {
        default_ns: Some(super::CLIENT_NS.to_owned()),
        ..StreamHeader::default()
    }
}
