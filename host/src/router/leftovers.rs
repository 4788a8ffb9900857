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

use tessera_plugin_api::stanza::StanzaPoint;
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{reply, StanzaCondition};

use super::accounting::{Outcome, Reason};
use super::hooks::{self, Chain, Concern, Stop};
use super::{bounce_of, route_error_back};
use crate::runtime::modules::Routes;
use crate::sessions::outbox::{Closed, Fate, Queued};
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
            Closed::NotReading => Self::NotReading,
            Closed::SessionEnded => Self::SessionEnded,
        }
    }
}

/// Hand on everything an ended session never wrote, in order: its connection put back what it
/// had taken ([`Outbox::requeue_front`](crate::sessions::outbox::Outbox::requeue_front)),
/// then the queue, then what was parked behind meanwhile (messages for the account routed
/// while it closed: [`Fate::Undeliverable`]), batch after batch until a drain finds nothing;
/// from then on the outbox refuses, so a later stanza's sender handles it, after all of these.
/// Nobody waits for this: a flood keeps parking behind (up to twice the bound) and this task
/// keeps handing on; beyond the cap, senders hand on their own.
pub fn hand_on(shared: &Shared, session: &SessionEntry) {
    let to = Recipient {
        user: &session.user,
        stream: session.stream_id,
    };
    loop {
        let (why, items) = session.outbox.drain();
        if items.is_empty() {
            return;
        }
        dispose_queued(shared, to, items, Reason::of_closed(why));
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
        if item.fate == Fate::Drop || !item.left_over() {
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

/// Leftovers the connection could not finish writing (TLS held them when the close grace ran
/// out): handed on after the rest.
pub fn dispose_late(shared: &Shared, session: &SessionEntry, items: Vec<Queued>) {
    let to = Recipient {
        user: &session.user,
        stream: session.stream_id,
    };
    let reason = session
        .outbox
        .closed()
        .map_or(Reason::SessionEnded, Reason::of_closed);
    dispose_queued(shared, to, items, reason);
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
                Chain::Stopped {
                    stop: Stop::Dropped,
                    ..
                } => (Outcome::Dropped, None),
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
