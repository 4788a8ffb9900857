//! The RFC 6121 subscription state machine (Appendix A), pure: what one subscription stanza
//! does to the relation between an account and one contact, and what the server must do about
//! it. The relation is seen from the account whose roster it is; the nine states of
//! Appendix A.1 are a [`Subscription`] plus the two pending flags and the pre-approval.

use serde::{Deserialize, Serialize};

/// Who receives whose presence (RFC 6121 §2.1.2.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Subscription {
    /// Neither.
    #[default]
    None,
    /// The account receives the contact's presence.
    To,
    /// The contact receives the account's presence.
    From,
    /// Both.
    Both,
}

impl Subscription {
    /// The `subscription` attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::To => "to",
            Self::From => "from",
            Self::Both => "both",
        }
    }

    /// The account receives the contact's presence.
    pub const fn to(self) -> bool {
        matches!(self, Self::To | Self::Both)
    }

    /// The contact receives the account's presence.
    pub const fn from(self) -> bool {
        matches!(self, Self::From | Self::Both)
    }

    /// The subscription for a `subscription` value (`remove` is not one).
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "none" => Self::None,
            "to" => Self::To,
            "from" => Self::From,
            "both" => Self::Both,
            _ => return None,
        })
    }

    const fn of(to: bool, from: bool) -> Self {
        match (to, from) {
            (false, false) => Self::None,
            (true, false) => Self::To,
            (false, true) => Self::From,
            (true, true) => Self::Both,
        }
    }

    const fn with_to(self, to: bool) -> Self {
        Self::of(to, self.from())
    }

    const fn with_from(self, from: bool) -> Self {
        Self::of(self.to(), from)
    }
}

/// The relation between an account and one contact (RFC 6121 Appendix A.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Relation {
    /// The established subscriptions.
    pub subscription: Subscription,
    /// The account asked to see the contact's presence and has no answer yet (`ask`).
    pub pending_out: bool,
    /// The contact asked to see the account's presence and has no answer yet (never shown in
    /// the roster; the request itself is stored).
    pub pending_in: bool,
    /// The account approved the contact's future request in advance (§3.4).
    pub approved: bool,
}

/// The four subscription presence types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// `subscribe`.
    Subscribe,
    /// `subscribed`.
    Subscribed,
    /// `unsubscribe`.
    Unsubscribe,
    /// `unsubscribed`.
    Unsubscribed,
}

impl Kind {
    /// The `type` attribute value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Subscribed => "subscribed",
            Self::Unsubscribe => "unsubscribe",
            Self::Unsubscribed => "unsubscribed",
        }
    }

    /// The kind for a `type` value.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "subscribe" => Self::Subscribe,
            "subscribed" => Self::Subscribed,
            "unsubscribe" => Self::Unsubscribe,
            "unsubscribed" => Self::Unsubscribed,
            _ => return None,
        })
    }
}

/// Presence the account's server sends the contact on the account's behalf, from each of the
/// account's available resources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresenceToContact {
    /// The current presence (the contact may now see it).
    Current,
    /// `unavailable` (the contact may no longer see it).
    Unavailable,
}

/// What the server does after a subscription stanza changed (or did not change) a relation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Route the stanza on (outbound) or deliver it to the account's resources (inbound).
    pub forward: bool,
    /// The visible roster item changed: push it to the interested resources.
    pub push: bool,
    /// Answer the contact automatically with this type, from the account's bare JID.
    pub reply: Option<Kind>,
    /// Send the contact presence from each available resource of the account.
    pub presence: Option<PresenceToContact>,
    /// The stored request of the contact is answered or withdrawn: forget it.
    pub forget_request: bool,
    /// An inbound `subscribe` to keep and deliver again at each new available resource until
    /// it is answered (§3.1.3 rule 4).
    pub store_request: bool,
}

/// A subscription stanza the account sends to the contact (Appendix A.2; pre-approval §3.4).
pub fn outbound(r: &mut Relation, kind: Kind) -> Effects {
    let before = *r;
    let mut fx = Effects::default();
    match kind {
        // A.2.1: always routed; None and From gain "pending out".
        Kind::Subscribe => {
            fx.forward = true;
            if !r.subscription.to() {
                r.pending_out = true;
            }
        }
        // A.2.2: always routed; the account stops seeing the contact, or withdraws its request.
        Kind::Unsubscribe => {
            fx.forward = true;
            r.pending_out = false;
            r.subscription = r.subscription.with_to(false);
        }
        // A.2.3 and §3.4.2: approves a pending request, else pre-approves (never routed).
        Kind::Subscribed => {
            if r.pending_in {
                fx.forward = true;
                r.pending_in = false;
                r.subscription = r.subscription.with_from(true);
                fx.presence = Some(PresenceToContact::Current);
                fx.forget_request = true;
            } else if !r.subscription.from() {
                r.approved = true;
            }
        }
        // A.2.4 and §3.2.2: cancels the contact's subscription or denies its request; with
        // neither, only a pre-approval is cancelled (never routed).
        Kind::Unsubscribed => {
            if r.pending_in || r.subscription.from() {
                fx.forward = true;
                if r.subscription.from() {
                    fx.presence = Some(PresenceToContact::Unavailable);
                }
                fx.forget_request = r.pending_in;
                r.pending_in = false;
                r.subscription = r.subscription.with_from(false);
            }
            r.approved = false;
        }
    }
    fx.push = visible(&before) != visible(r);
    fx
}

/// A subscription stanza the contact sent to the account (Appendix A.3).
pub fn inbound(r: &mut Relation, kind: Kind) -> Effects {
    let before = *r;
    let mut fx = Effects::default();
    match kind {
        // A.3.1 and §3.1.3: a new request is delivered (and kept until answered); one from a
        // contact already subscribed, or pre-approved, is answered by the server.
        Kind::Subscribe => {
            if r.subscription.from() {
                fx.reply = Some(Kind::Subscribed);
            } else if r.approved {
                r.approved = false;
                r.subscription = r.subscription.with_from(true);
                fx.reply = Some(Kind::Subscribed);
                fx.presence = Some(PresenceToContact::Current);
            } else if !r.pending_in {
                r.pending_in = true;
                fx.forward = true;
                fx.store_request = true;
            }
        }
        // A.3.2 and §3.3.3: the contact stops seeing the account, or withdraws its request.
        Kind::Unsubscribe => {
            if r.pending_in || r.subscription.from() {
                fx.forward = true;
                fx.reply = Some(Kind::Unsubscribed);
                if r.subscription.from() {
                    fx.presence = Some(PresenceToContact::Unavailable);
                }
                fx.forget_request = r.pending_in;
                r.pending_in = false;
                r.subscription = r.subscription.with_from(false);
            }
        }
        // A.3.3 and §3.1.6: only an answer to the account's own pending request counts.
        Kind::Subscribed => {
            if r.pending_out {
                fx.forward = true;
                r.pending_out = false;
                r.subscription = r.subscription.with_to(true);
            }
        }
        // A.3.4 and §3.2.3: the account's request is denied, or its subscription cancelled.
        Kind::Unsubscribed => {
            if r.pending_out || r.subscription.to() {
                fx.forward = true;
                r.pending_out = false;
                r.subscription = r.subscription.with_to(false);
            }
        }
    }
    fx.push = visible(&before) != visible(r);
    fx
}

/// What a roster item shows of a relation (pending-in is never shown).
fn visible(r: &Relation) -> (Subscription, bool, bool) {
    (r.subscription, r.pending_out, r.approved)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nine states of Appendix A.1, in the RFC's order, as (name, relation).
    fn states() -> [(&'static str, Relation); 9] {
        let r = |subscription, pending_out, pending_in| Relation {
            subscription,
            pending_out,
            pending_in,
            approved: false,
        };
        use Subscription::*;
        [
            ("None", r(None, false, false)),
            ("None+PO", r(None, true, false)),
            ("None+PI", r(None, false, true)),
            ("None+PO+PI", r(None, true, true)),
            ("To", r(To, false, false)),
            ("To+PI", r(To, false, true)),
            ("From", r(From, false, false)),
            ("From+PO", r(From, true, false)),
            ("Both", r(Both, false, false)),
        ]
    }

    fn name_of(r: &Relation) -> &'static str {
        states()
            .iter()
            .find(|(_, s)| {
                (s.subscription, s.pending_out, s.pending_in)
                    == (r.subscription, r.pending_out, r.pending_in)
            })
            .map(|(n, _)| *n)
            .unwrap_or("impossible")
    }

    /// Run one table: for each state in order, (forwarded?, resulting state).
    fn table(
        f: fn(&mut Relation, Kind) -> Effects,
        kind: Kind,
    ) -> Vec<(&'static str, bool, &'static str)> {
        states()
            .into_iter()
            .map(|(name, mut r)| {
                let fx = f(&mut r, kind);
                (name, fx.forward, name_of(&r))
            })
            .collect()
    }

    // The expected rows are Appendix A's tables, transcribed: (state, route/deliver, new state).

    #[test]
    fn a_2_1_outbound_subscribe() {
        assert_eq!(
            table(outbound, Kind::Subscribe),
            [
                ("None", true, "None+PO"),
                ("None+PO", true, "None+PO"),
                ("None+PI", true, "None+PO+PI"),
                ("None+PO+PI", true, "None+PO+PI"),
                ("To", true, "To"),
                ("To+PI", true, "To+PI"),
                ("From", true, "From+PO"),
                ("From+PO", true, "From+PO"),
                ("Both", true, "Both"),
            ]
        );
    }

    #[test]
    fn a_2_2_outbound_unsubscribe() {
        assert_eq!(
            table(outbound, Kind::Unsubscribe),
            [
                ("None", true, "None"),
                ("None+PO", true, "None"),
                ("None+PI", true, "None+PI"),
                ("None+PO+PI", true, "None+PI"),
                ("To", true, "None"),
                ("To+PI", true, "None+PI"),
                ("From", true, "From"),
                ("From+PO", true, "From"),
                ("Both", true, "From"),
            ]
        );
    }

    #[test]
    fn a_2_3_outbound_subscribed() {
        assert_eq!(
            table(outbound, Kind::Subscribed),
            [
                ("None", false, "None"),
                ("None+PO", false, "None+PO"),
                ("None+PI", true, "From"),
                ("None+PO+PI", true, "From+PO"),
                ("To", false, "To"),
                ("To+PI", true, "Both"),
                ("From", false, "From"),
                ("From+PO", false, "From+PO"),
                ("Both", false, "Both"),
            ]
        );
    }

    #[test]
    fn a_2_4_outbound_unsubscribed() {
        assert_eq!(
            table(outbound, Kind::Unsubscribed),
            [
                ("None", false, "None"),
                ("None+PO", false, "None+PO"),
                ("None+PI", true, "None"),
                ("None+PO+PI", true, "None+PO"),
                ("To", false, "To"),
                ("To+PI", true, "To"),
                ("From", true, "None"),
                ("From+PO", true, "None+PO"),
                ("Both", true, "To"),
            ]
        );
    }

    #[test]
    fn a_3_1_inbound_subscribe() {
        assert_eq!(
            table(inbound, Kind::Subscribe),
            [
                ("None", true, "None+PI"),
                ("None+PO", true, "None+PO+PI"),
                ("None+PI", false, "None+PI"),
                ("None+PO+PI", false, "None+PO+PI"),
                ("To", true, "To+PI"),
                ("To+PI", false, "To+PI"),
                ("From", false, "From"),
                ("From+PO", false, "From+PO"),
                ("Both", false, "Both"),
            ]
        );
    }

    #[test]
    fn a_3_2_inbound_unsubscribe() {
        assert_eq!(
            table(inbound, Kind::Unsubscribe),
            [
                ("None", false, "None"),
                ("None+PO", false, "None+PO"),
                ("None+PI", true, "None"),
                ("None+PO+PI", true, "None+PO"),
                ("To", false, "To"),
                ("To+PI", true, "To"),
                ("From", true, "None"),
                ("From+PO", true, "None+PO"),
                ("Both", true, "To"),
            ]
        );
    }

    #[test]
    fn a_3_3_inbound_subscribed() {
        assert_eq!(
            table(inbound, Kind::Subscribed),
            [
                ("None", false, "None"),
                ("None+PO", true, "To"),
                ("None+PI", false, "None+PI"),
                ("None+PO+PI", true, "To+PI"),
                ("To", false, "To"),
                ("To+PI", false, "To+PI"),
                ("From", false, "From"),
                ("From+PO", true, "Both"),
                ("Both", false, "Both"),
            ]
        );
    }

    #[test]
    fn a_3_4_inbound_unsubscribed() {
        assert_eq!(
            table(inbound, Kind::Unsubscribed),
            [
                ("None", false, "None"),
                ("None+PO", true, "None"),
                ("None+PI", false, "None+PI"),
                ("None+PO+PI", true, "None+PI"),
                ("To", true, "None"),
                ("To+PI", true, "None+PI"),
                ("From", false, "From"),
                ("From+PO", true, "From"),
                ("Both", true, "From"),
            ]
        );
    }

    #[test]
    fn server_answers_and_presence_follow_the_rfc_prose() {
        // §3.1.3 rule 2: a request from a contact already subscribed is answered, not shown.
        let mut both = states()[8].1;
        let fx = inbound(&mut both, Kind::Subscribe);
        assert_eq!(fx.reply, Some(Kind::Subscribed));
        assert!(!fx.forward && !fx.push);
        // §3.1.5: approving sends the account's current presence, and forgets the request.
        let mut pending = states()[2].1;
        let fx = outbound(&mut pending, Kind::Subscribed);
        assert_eq!(fx.presence, Some(PresenceToContact::Current));
        assert!(fx.forget_request && fx.push);
        // §3.2.2: cancelling sends unavailable first; denying a request does not.
        let mut from = states()[6].1;
        assert_eq!(
            outbound(&mut from, Kind::Unsubscribed).presence,
            Some(PresenceToContact::Unavailable)
        );
        let mut denied = states()[2].1;
        let fx = outbound(&mut denied, Kind::Unsubscribed);
        assert_eq!(fx.presence, None);
        assert!(fx.forget_request && fx.forward);
        // §3.3.3: an inbound unsubscribe is answered with unsubscribed and costs presence.
        let mut from = states()[6].1;
        let fx = inbound(&mut from, Kind::Unsubscribe);
        assert_eq!(fx.reply, Some(Kind::Unsubscribed));
        assert_eq!(fx.presence, Some(PresenceToContact::Unavailable));
        // §3.1.3 rule 4: a new request is kept; a repeated one is neither kept nor shown again.
        let mut none = states()[0].1;
        assert!(inbound(&mut none, Kind::Subscribe).store_request);
        let fx = inbound(&mut none, Kind::Subscribe);
        assert!(!fx.store_request && !fx.forward);
    }

    #[test]
    fn pre_approval_is_set_used_once_and_cancelled() {
        // §3.4.2 rule 3: a pre-approval is pushed, never routed.
        let mut r = Relation::default();
        let fx = outbound(&mut r, Kind::Subscribed);
        assert!(r.approved && fx.push && !fx.forward);
        // The contact's request is then answered by the server: From, presence sent.
        let fx = inbound(&mut r, Kind::Subscribe);
        assert_eq!(r.subscription, Subscription::From);
        assert!(!r.approved && !r.pending_in && fx.push && !fx.forward);
        assert_eq!(fx.reply, Some(Kind::Subscribed));
        assert_eq!(fx.presence, Some(PresenceToContact::Current));
        // From To, it makes Both.
        let mut to = states()[4].1;
        outbound(&mut to, Kind::Subscribed);
        inbound(&mut to, Kind::Subscribe);
        assert_eq!(to.subscription, Subscription::Both);
        // §3.2.2 rule 2: unsubscribed cancels it, pushed, not routed.
        let mut r = Relation::default();
        outbound(&mut r, Kind::Subscribed);
        let fx = outbound(&mut r, Kind::Unsubscribed);
        assert!(!r.approved && fx.push && !fx.forward);
        // §3.4.2 rule 1: ignored when the contact is already subscribed.
        let mut from = states()[6].1;
        let fx = outbound(&mut from, Kind::Subscribed);
        assert!(!from.approved && !fx.push && !fx.forward);
    }

    #[test]
    fn pushes_follow_visible_changes_only() {
        // Inbound subscribe changes pending-in only: no push (§3.1.3: no roster item yet).
        let mut r = Relation::default();
        assert!(!inbound(&mut r, Kind::Subscribe).push);
        // Outbound subscribe from None: ask appears, pushed.
        let mut r = Relation::default();
        assert!(outbound(&mut r, Kind::Subscribe).push);
        // Repeated: nothing visible changes.
        assert!(!outbound(&mut r, Kind::Subscribe).push);
    }
}
