//! The contracts between the instant-messaging modules (RFC 6121): the roster module owns
//! subscriptions, the presence module owns who is available with which presence, and both
//! answer the other (and any third-party module, e.g. an offline store or a PEP service)
//! through synchronous query hooks and one bus event. A module that needs a contact list or
//! the account's current presence calls these instead of keeping its own copy.
//!
//! Each hook is answered by at most one module (the one loaded under that role); with none
//! loaded, [`crate::HostCalls::call_hook`] answers no reply, which callers read as "no
//! contacts" or "nobody available".

use serde::{Deserialize, Serialize};

/// Query hook answered by the roster module: an account's contacts and their subscription
/// state. Payload: [`ContactsQuery`]; reply: `Vec<Contact>`.
pub const ROSTER_CONTACTS: &str = "roster-contacts";

/// Query hook called by the disco module when an account asks `disco#info` of its own bare
/// JID (XEP-0030; XEP-0313 §7 puts the archive's features there): every module that serves
/// the account itself answers its features. Payload: the account's canonical localpart
/// (`String`); reply: `Vec<String>`.
pub const ACCOUNT_DISCO_FEATURES: &str = "account-disco-features";

/// Query hook answered by the presence module: the last broadcast presence of each available
/// resource of an account (`from` set to the resource's full JID, no `to`). Payload:
/// [`PresenceQuery`]; reply: `Vec<crate::xml::Element>`.
pub const PRESENCE_CURRENT: &str = "presence-current";

/// Bus event fired by the presence module when a session becomes available for delivery:
/// its initial presence, or a presence that raises its priority from negative to
/// non-negative. Payload: [`PresenceAvailable`]. Offline storage replays, and the roster
/// module delivers stored subscription requests, on it.
pub const PRESENCE_AVAILABLE: &str = "presence-available";

/// Payload of [`ROSTER_CONTACTS`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactsQuery {
    /// The account (canonical username).
    pub user: String,
    /// Only this contact (a bare JID), or every contact.
    pub contact: Option<String>,
}

/// One entry of a roster, as [`ROSTER_CONTACTS`] answers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The contact's bare JID.
    pub jid: String,
    /// The account receives the contact's presence (`to` or `both`).
    pub to: bool,
    /// The contact receives the account's presence (`from` or `both`).
    pub from: bool,
}

/// Payload of [`PRESENCE_CURRENT`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceQuery {
    /// The account (canonical username).
    pub user: String,
}

/// Payload of [`PRESENCE_AVAILABLE`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceAvailable {
    /// The session's stream id.
    pub stream_id: u64,
    /// The account (canonical username).
    pub user: String,
    /// The session's full JID.
    pub full_jid: String,
    /// Its priority now (non-negative: the session takes messages to the bare JID).
    pub priority: i8,
    /// The session's first available presence (`false`: a later one that raised its priority
    /// from negative).
    pub initial: bool,
}
