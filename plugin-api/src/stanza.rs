//! Stanza hooks: the points in a stanza's life where modules see it, what a module may answer,
//! and the view of one stanza that crosses the boundary.
//!
//! ## Points (in the order a stanza meets them)
//! * [`StanzaPoint::ClientIn`] — a stanza a local client sent, after the host stamped its
//!   `from` and checked its `to`, before routing. Outgoing archive and carbons "sent" copies
//!   live here (Prosody's `pre-message/*`, ejabberd's `user_send_packet`).
//! * [`StanzaPoint::ToBare`] / [`StanzaPoint::ToFull`] — addressed to a local account's bare or
//!   full JID, whatever its origin, before the host delivers it (Prosody's `message/bare`,
//!   ejabberd's `sm_receive_packet`): roster and presence, incoming archive, carbons "received".
//! * [`StanzaPoint::Undeliverable`] — a `chat` or `normal` message to an existing account with
//!   no session to take it (offline storage answers [`Verdict::Stored`]); if nobody stores it,
//!   the host bounces it with `<service-unavailable/>`. Also a message that was queued for a
//!   session which ended before writing it (it stopped reading and its output bound was
//!   reached, the client left, a password change, a conflict, shutdown): then the header
//!   names that session, a module that retains the session's output (stream management)
//!   answers [`Verdict::Stored`] for its own sessions' messages, and if nobody stores it the
//!   host bounces it with `<service-unavailable/>` too (nothing that tells the sender the
//!   recipient was online).
//! * [`StanzaPoint::SessionOut`] — about to be written to one session, for the modules that
//!   attached themselves to that session ([`crate::HostCalls::session_attach`]): filters such
//!   as client-state queueing. Other sessions pay nothing.
//!
//! ## Selectors and priorities
//! A registration ([`StanzaHook`]) names its point, and optionally a kind, a set of `type`
//! values and a child namespace; the host matches them before anything crosses the ABI, so a
//! stanza no hook selects costs nothing. Higher priority runs first (see
//! [`crate::events::priority`]); equal priorities run in load order.
//!
//! ## Verdicts
//! Each hook answers a [`Verdict`]: pass (possibly replacing the stanza, which later hooks and
//! the delivery then see), or stop (handled, dropped, answered, bounced with an error). A hook
//! that fails or panics stops the stanza: its sender gets `<internal-server-error/>` (never for
//! an error or an IQ result), and everything else goes on.
//!
//! ## Effects are deferred
//! Stanzas a module sends while handling a call ([`crate::HostCalls::route`],
//! [`crate::HostCalls::send_to_session`]) are routed after the call, and after the chain it is
//! part of, in the order they were sent; a module is never called again from inside its own
//! call.

use serde::{Deserialize, Serialize};

use crate::conditions::StanzaCondition;
use crate::error::PluginError;
use crate::wire;
use crate::xml::Element;

/// The three kinds of stanza (RFC 6120 §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StanzaKind {
    /// `<message/>`.
    Message,
    /// `<presence/>`.
    Presence,
    /// `<iq/>`.
    Iq,
}

impl StanzaKind {
    /// The kind of an element name, if it is a stanza.
    pub fn of(name: &str) -> Option<Self> {
        match name {
            "message" => Some(Self::Message),
            "presence" => Some(Self::Presence),
            "iq" => Some(Self::Iq),
            _ => None,
        }
    }

    /// The element name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Presence => "presence",
            Self::Iq => "iq",
        }
    }
}

/// Where in its life a hook sees a stanza; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StanzaPoint {
    /// Sent by a local client, before routing.
    ClientIn,
    /// Addressed to a local bare JID, before delivery.
    ToBare,
    /// Addressed to a local full JID, before delivery.
    ToFull,
    /// A message nobody can take now.
    Undeliverable,
    /// About to be written to one session that the module attached itself to.
    SessionOut,
}

impl StanzaPoint {
    /// Every point, in the order a stanza meets them.
    pub const ALL: [StanzaPoint; 5] = [
        StanzaPoint::ClientIn,
        StanzaPoint::ToBare,
        StanzaPoint::ToFull,
        StanzaPoint::Undeliverable,
        StanzaPoint::SessionOut,
    ];

    /// A short name for logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientIn => "client-in",
            Self::ToBare => "to-bare",
            Self::ToFull => "to-full",
            Self::Undeliverable => "undeliverable",
            Self::SessionOut => "session-out",
        }
    }
}

/// A stanza hook a module registers ([`crate::protocol::Registrations::stanza_hooks`]). Its
/// position in that list is the `hook` number the module is called with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StanzaHook {
    /// Where.
    pub point: StanzaPoint,
    /// Only this kind (`None`: every kind).
    pub kind: Option<StanzaKind>,
    /// Only these `type` values (empty: every type; `""` selects stanzas without a `type`).
    pub types: Vec<String>,
    /// Only stanzas with a child element in this namespace (e.g. `urn:xmpp:receipts`).
    pub child_ns: Option<String>,
    /// Higher runs first.
    pub priority: i32,
}

impl StanzaHook {
    /// Every stanza at `point`, at the normal priority.
    pub fn at(point: StanzaPoint) -> Self {
        Self {
            point,
            kind: None,
            types: Vec::new(),
            child_ns: None,
            priority: crate::events::priority::NORMAL,
        }
    }

    /// Only stanzas of `kind`.
    #[must_use]
    pub fn kind(mut self, kind: StanzaKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// Only these `type` values.
    #[must_use]
    pub fn types(mut self, types: &[&str]) -> Self {
        self.types = types.iter().map(|t| (*t).to_owned()).collect();
        self
    }

    /// Only stanzas with a child in `ns`.
    #[must_use]
    pub fn child_ns(mut self, ns: &str) -> Self {
        self.child_ns = Some(ns.to_owned());
        self
    }

    /// At `priority`.
    #[must_use]
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Whether the hook selects a stanza with this kind, `type` and child namespaces.
    pub fn selects<'n>(
        &self,
        kind: StanzaKind,
        stanza_type: Option<&str>,
        mut child_namespaces: impl Iterator<Item = &'n str>,
    ) -> bool {
        self.kind.is_none_or(|k| k == kind)
            && (self.types.is_empty()
                || self
                    .types
                    .iter()
                    .any(|t| t == stanza_type.unwrap_or_default()))
            && self
                .child_ns
                .as_deref()
                .is_none_or(|ns| child_namespaces.any(|c| c == ns))
    }
}

/// The fields filters look at, borrowed from the call's bytes: a hook that reads only these
/// never decodes the stanza.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StanzaHeader<'a> {
    /// Which of the module's [`StanzaHook`]s matched (its index in the registrations).
    pub hook: u32,
    /// Where.
    pub point: StanzaPoint,
    /// The kind.
    pub kind: StanzaKind,
    /// The `type` attribute.
    pub stanza_type: Option<&'a str>,
    /// The `from` attribute (always set by the host for local senders).
    pub from: Option<&'a str>,
    /// The `to` attribute.
    pub to: Option<&'a str>,
    /// The `id` attribute.
    pub id: Option<&'a str>,
    /// The local account concerned: the sender at [`StanzaPoint::ClientIn`], the recipient at
    /// the delivery points, the session's owner at [`StanzaPoint::SessionOut`].
    pub account: Option<&'a str>,
    /// The session concerned: the sending one ([`StanzaPoint::ClientIn`]), the one written to
    /// ([`StanzaPoint::SessionOut`]), the addressed one ([`StanzaPoint::ToFull`], if bound),
    /// the one that ended before writing it ([`StanzaPoint::Undeliverable`]; `None` when no
    /// session could take it when it was routed).
    pub session: Option<u64>,
}

/// One stanza as a hook receives it: the header, and the stanza's encoding, decoded on demand.
#[derive(Clone, Copy, Debug)]
pub struct Stanza<'a> {
    /// The header.
    pub header: &'a StanzaHeader<'a>,
    body: &'a [u8],
}

impl<'a> Stanza<'a> {
    /// A stanza view over a header and the encoded element.
    pub fn new(header: &'a StanzaHeader<'a>, body: &'a [u8]) -> Self {
        Self { header, body }
    }

    /// The whole stanza (decoded now; a hook that only reads the header never pays for it).
    ///
    /// # Errors
    /// Bytes that are not an element (a host bug).
    pub fn element(&self) -> Result<Element, PluginError> {
        wire::decode("stanza", self.body)
    }

    /// The encoded element, as it crossed.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

/// What a stanza hook decides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// Go on, unchanged.
    Pass,
    /// Go on with this stanza instead: later hooks and the delivery see it.
    Replace(Element),
    /// Stop: the module took care of the stanza.
    Handled,
    /// Stop, silently.
    Drop,
    /// Stop, and send this answer to the stanza's sender (e.g. an IQ result).
    Reply(Element),
    /// Stop, and bounce the stanza to its sender with this condition (nothing is sent for an
    /// error or an IQ result). The error type is the condition's usual one.
    Error {
        /// The condition.
        condition: StanzaCondition,
        /// Text for the sender.
        text: Option<String>,
    },
    /// [`StanzaPoint::Undeliverable`] only: the module stored the message; no bounce.
    Stored,
}

/// A session of an account, as modules see it ([`crate::HostCalls::account_sessions`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// The connection id.
    pub stream: u64,
    /// The bound full JID (`None` before binding).
    pub full_jid: Option<String>,
    /// Whether it sent available presence.
    pub available: bool,
    /// Its presence priority (0 until it says otherwise).
    pub priority: i8,
    /// Whether its connection is gone and it is kept for resumption
    /// ([`crate::HostCalls::session_keep`]).
    pub detached: bool,
}

/// Which of an account's sessions a message to its bare JID goes to (RFC 6121 §8.5.2.1), given
/// each session's priority while available (`None`: not available): among the available ones
/// with a non-negative priority, those with the highest priority (all of them on a tie), or all
/// of them for a `headline`. Empty when none qualifies: the message is undeliverable. The host
/// delivers by this rule; a module that needs to know who got a message (carbons) applies it
/// to [`SessionView`]s.
///
/// ```
/// use tessera_plugin_api::stanza::bare_message_targets;
/// let sessions = [(1, Some(5)), (2, Some(5)), (3, Some(0)), (4, None), (5, Some(-1))];
/// assert_eq!(bare_message_targets(sessions, Some("chat")), [1, 2]);
/// assert_eq!(bare_message_targets(sessions, Some("headline")), [1, 2, 3]);
/// assert!(bare_message_targets([(4, None), (5, Some(-1))], None).is_empty());
/// ```
pub fn bare_message_targets<K: Copy>(
    sessions: impl IntoIterator<Item = (K, Option<i8>)>,
    message_type: Option<&str>,
) -> Vec<K> {
    let eligible: Vec<(K, i8)> = sessions
        .into_iter()
        .filter_map(|(k, p)| p.filter(|p| *p >= 0).map(|p| (k, p)))
        .collect();
    let top = if message_type == Some("headline") {
        0
    } else {
        eligible.iter().map(|(_, p)| *p).max().unwrap_or(0)
    };
    eligible
        .into_iter()
        .filter(|(_, p)| *p >= top)
        .map(|(k, _)| k)
        .collect()
}

impl SessionView {
    /// Its priority while available (`None`: not available), as [`bare_message_targets`] takes
    /// it.
    pub fn availability(&self) -> Option<i8> {
        self.available.then_some(self.priority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_match_kind_type_and_child_namespace() {
        let any = StanzaHook::at(StanzaPoint::ToBare);
        assert!(any.selects(StanzaKind::Presence, None, std::iter::empty()));
        let chat = StanzaHook::at(StanzaPoint::ToBare)
            .kind(StanzaKind::Message)
            .types(&["chat", ""]);
        assert!(chat.selects(StanzaKind::Message, Some("chat"), std::iter::empty()));
        assert!(chat.selects(StanzaKind::Message, None, std::iter::empty()));
        assert!(!chat.selects(StanzaKind::Message, Some("groupchat"), std::iter::empty()));
        assert!(!chat.selects(StanzaKind::Iq, Some("chat"), std::iter::empty()));
        let receipts = StanzaHook::at(StanzaPoint::ClientIn).child_ns("urn:xmpp:receipts");
        assert!(receipts.selects(
            StanzaKind::Message,
            None,
            ["jabber:client", "urn:xmpp:receipts"].into_iter()
        ));
        assert!(!receipts.selects(StanzaKind::Message, None, ["jabber:client"].into_iter()));
    }

    #[test]
    fn a_header_crosses_borrowed_and_the_body_decodes_on_demand() {
        let header = StanzaHeader {
            hook: 2,
            point: StanzaPoint::ClientIn,
            kind: StanzaKind::Message,
            stanza_type: Some("chat"),
            from: Some("alice@example.org/a"),
            to: Some("bob@example.org"),
            id: None,
            account: Some("alice"),
            session: Some(7),
        };
        let el = Element::new("message", "jabber:client").with_attr("type", "chat");
        let args = wire::encode(&(&header, wire::encode(&el).unwrap())).unwrap();
        let (back, body): (StanzaHeader<'_>, &[u8]) = wire::decode("stanza", &args).unwrap();
        assert_eq!(back, header);
        assert_eq!(Stanza::new(&back, body).element().unwrap(), el);
    }
}
