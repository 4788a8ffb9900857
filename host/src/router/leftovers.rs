//! Stanzas a session will never write — queued when it ended, the one that overflowed its
//! outbox, or routed to it just after it went — take the undeliverable way, each by its
//! [`Fate`]: a `chat` or `normal` message is offered to the `Undeliverable` hooks with the
//! session named in the header (stream management keeps its own session's; offline storage
//! stores the rest), and bounced to its sender with `<recipient-unavailable/>` if nobody takes
//! it; an IQ request or a `groupchat` message is bounced; presence, errors, IQ results and
//! headlines are dropped by rule (RFC 6120 §8.3.1, RFC 6121 §4 and §8.5.2.1.1). Every one is
//! counted ([`DeliveryStats`]).

use tessera_plugin_api::stanza::StanzaPoint;
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{reply, StanzaCondition};

use super::accounting::{Outcome, Reason};
use super::hooks::{self, Chain, Concern, Stop};
use super::{bounce_of, route_error_back};
use crate::runtime::modules::Routes;
use crate::sessions::outbox::{Closed, Fate, Queued};
use crate::stream::parse::{parse_element, StreamHeader};
use crate::Shared;

/// What the sender of a bounced leftover reads.
pub const BOUNCE_TEXT: &str = "The recipient's session ended before this was delivered";

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

/// Decide the fate of serialised leftovers, in order.
pub fn dispose_queued(shared: &Shared, to: Recipient<'_>, items: Vec<Queued>, reason: Reason) {
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
    shared.delivery.record(outcome, reason);
    if let Some(bounce) = bounce {
        route_error_back(shared, routes, bounce);
    }
}

fn bounce(stanza: &Element, domain: &str) -> Option<Element> {
    reply::error(
        stanza,
        StanzaCondition::RecipientUnavailable,
        Some(BOUNCE_TEXT),
        domain,
    )
}

/// The header a queued stanza was written under (`jabber:client` default namespace).
fn client_header() -> StreamHeader {
    StreamHeader {
        default_ns: Some(super::CLIENT_NS.to_owned()),
        ..StreamHeader::default()
    }
}
