//! Events defined by the host, their payloads, and named priorities.
//!
//! Events are fire-and-forget notifications on the bus: [`crate::Host::fire`] only enqueues, and
//! the host delivers after the current call returns, to each hooked module in priority order
//! (higher first); a handler may stop propagation with [`crate::EventFlow::Stop`]. Payloads are
//! the postcard encoding ([`crate::wire`]) of the struct each event names, frozen once
//! released: a new field means a new event. Modules may define their own event names
//! (lower-case, hyphenated, prefixed with the module name) and payload structs.

use serde::{Deserialize, Serialize};

/// A password changed through the host's `set_password`. Payload: [`UserPasswordChanged`].
pub const USER_PASSWORD_CHANGED: &str = "user-password-changed";
/// An account was deleted. Payload: [`UserDeleted`].
pub const USER_DELETED: &str = "user-deleted";
/// A SASL authentication succeeded. Payload: [`AuthenticationOutcome`].
pub const AUTHENTICATION_SUCCESS: &str = "authentication-success";
/// A SASL authentication failed. Payload: [`AuthenticationOutcome`].
pub const AUTHENTICATION_FAILURE: &str = "authentication-failure";
/// A resource was bound. Payload: [`SessionEvent`].
pub const SESSION_BOUND: &str = "session-bound";
/// A stream closed (authenticated or not). Payload: [`SessionEvent`].
pub const SESSION_CLOSED: &str = "session-closed";
/// A kept session lost its connection and waits, detached, for resumption
/// ([`crate::HostCalls::session_keep`]). Payload: [`SessionEvent`] (with the reason).
pub const SESSION_DETACHED: &str = "session-detached";
/// A stream took over a session ([`crate::protocol::StreamAction::Resume`]). Payload:
/// [`SessionResumed`].
pub const SESSION_RESUMED: &str = "session-resumed";
/// A module was loaded (at start, by `tessera module load`, or as the new generation of a
/// `tessera module reload`, right after [`MODULE_UNLOADED`] for the old one). Payload:
/// [`ModuleEvent`].
pub const MODULE_LOADED: &str = "module-loaded";
/// A module was unloaded (or replaced by a reload). Payload: [`ModuleEvent`].
pub const MODULE_UNLOADED: &str = "module-unloaded";
/// A mail a module asked for was sent or failed. Payload: [`MailResult`].
pub const MAIL_RESULT: &str = "mail-result";

/// Names of synchronous query hooks ([`crate::Host::call_hook`]) that the shipped modules call,
/// so other modules can extend them (as Prosody's mod_sasl2_fast extends mod_sasl2).
pub mod hooks {
    /// Called by mod_sasl2 while building SASL2 `<inline/>`. Payload: `StreamInfo`; answer:
    /// `Vec<Element>` (one reply per module: the [`crate::wire`] encoding of the whole list) (children of `<inline/>`, e.g. FAST's `<fast/>`). Part of the pre-auth
    /// stream features, so the same rule applies as to [`crate::Module::stream_features`]:
    /// answer from the stream's transport and the module's configuration only.
    pub const SASL2_INLINE_FEATURES: &str = "sasl2-inline-features";
    /// Called by mod_sasl2 while building the Bind 2 `<inline/>`. Payload: `StreamInfo`; answer:
    /// `Vec<Element>` (`<feature var='…'/>` elements). Pre-auth, like
    /// [`SASL2_INLINE_FEATURES`].
    pub const BIND2_INLINE_FEATURES: &str = "bind2-inline-features";
    /// Called by mod_sasl2 when a SASL2 `<authenticate/>` has succeeded, before `<success/>` is
    /// written. Payload: [`super::Sasl2Success`]; answer: `Vec<Element>` (extra children of
    /// `<success/>`, e.g. FAST's `<token/>`).
    pub const SASL2_SUCCESS: &str = "sasl2-success";
    /// Called by mod_sasl2 when a Bind 2 request is about to be bound, before `<success/>`.
    /// Payload: [`super::Bind2Bound`]; answer: `Vec<Element>` (children of `<bound/>`, e.g.
    /// XEP-0198's `<enabled/>`), or no reply. A module that takes an inline request (carbons'
    /// `<enable/>`, CSI's `<inactive/>`) reads it from the payload's `bind`.
    pub const BIND2_BOUND: &str = "sasl2-bind2-bound";
    /// Called by mod_sasl2 when a SASL2 `<authenticate/>` has succeeded, before Bind 2: a
    /// XEP-0198 `<resume/>` inline (XEP-0388 §6, XEP-0198 "inline"). Payload:
    /// [`super::Sasl2Success`]; answer: [`super::InlineResume`], or no reply. The first reply
    /// that resumes wins: `<success/>` carries its `element` (`<resumed/>`) and the resumed
    /// session's JID, Bind 2 is skipped, no stream features follow, and the stream takes the
    /// session over (its unacknowledged stanzas come after `</success>`). A reply that does
    /// not resume (`<failed/>`) goes into `<success/>` too, and Bind 2 goes on.
    pub const SASL2_RESUME: &str = "sasl2-resume";
    /// Called by the host just before an account's data is deleted (its sessions are closed
    /// and `user-deleted` fired after). Payload: [`super::UserDeleted`]; replies are ignored.
    /// A module whose data others rely on says goodbye here, while it can still read it: the
    /// roster module tells every contact the subscriptions are over, so that nobody who later
    /// registers the same name inherits them.
    pub const ACCOUNT_DELETING: &str = "account-deleting";
    /// Called by mod_sasl2 while building SASL2 `<authentication/>`. Payload: `StreamInfo`;
    /// answer: `Vec<String>`, names of XEP-0480 upgrade tasks the module performs (listed as
    /// `<upgrade xmlns='urn:xmpp:sasl:upgrade:0'/>`). Pre-auth, like
    /// [`SASL2_INLINE_FEATURES`]: the same for every account.
    pub const SASL2_UPGRADES: &str = "sasl2-upgrades";
    /// Called by mod_sasl2 after a SASL2 mechanism succeeded: which XEP-0388 tasks must follow.
    /// Payload: [`super::Sasl2Success`] (its `authenticate` holds the client's XEP-0480
    /// `<upgrade/>` requests); answer: `Vec<String>`, the task names that can satisfy one
    /// requirement (alternatives), or no reply. Requirements run one `<continue/>` round each,
    /// in hook priority order.
    pub const SASL2_TASKS: &str = "sasl2-tasks";
    /// Called by mod_sasl2 for each step of a task the client picked. Payload:
    /// [`super::TaskCall`]; answer: [`super::TaskStep`] from the module that owns the task, no
    /// reply from every other module.
    pub const SASL2_TASK: &str = "sasl2-task";
}

/// Payload of [`hooks::SASL2_TASK`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCall {
    /// The stream (not yet authenticated).
    pub stream: crate::protocol::StreamInfo,
    /// The account the mechanism authenticated (localpart).
    pub user: String,
    /// The task the client picked.
    pub task: String,
    /// The client's `<next/>` (first call) or `<task-data/>` (later calls).
    pub element: crate::xml::Element,
}

/// Answer of [`hooks::SASL2_TASK`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskStep {
    /// Send `<task-data/>` with these children and wait for the client's `<task-data/>`.
    Data {
        /// Children of `<task-data/>`.
        children: Vec<crate::xml::Element>,
    },
    /// The task succeeded; these children go into the final `<success/>`.
    Done {
        /// Task-specific children of `<success/>`.
        children: Vec<crate::xml::Element>,
    },
    /// The task failed: `<failure/>` with this condition.
    Failure {
        /// E.g. [`crate::SaslCondition::NotAuthorized`].
        condition: crate::SaslCondition,
        /// Optional text for the client.
        text: Option<String>,
    },
}

/// The answer to [`hooks::BIND2_INLINE_FEATURES`] for one feature (its namespace as `var`),
/// encoded as the hook's reply.
///
/// # Errors
/// As [`crate::wire::encode`].
pub fn bind2_inline_feature(var: &str) -> Result<Vec<u8>, crate::PluginError> {
    crate::wire::encode(&vec![crate::xml::Element::new(
        "feature",
        "urn:xmpp:bind:0",
    )
    .with_attr("var", var)])
}

/// Payload of the [`hooks::BIND2_BOUND`] hook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind2Bound {
    /// The stream (not yet authenticated; the bind is applied after the hooks).
    pub stream: crate::protocol::StreamInfo,
    /// The account (localpart).
    pub user: String,
    /// The resource about to be bound.
    pub resource: String,
    /// The client's `<bind xmlns='urn:xmpp:bind:0'/>` request.
    pub bind: crate::xml::Element,
}

/// The answer to [`hooks::SASL2_RESUME`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineResume {
    /// The child of `<success/>`: `<resumed/>`, or `<failed/>` when it does not resume.
    pub element: crate::xml::Element,
    /// The session to take over (`None`: not resumed).
    pub session: Option<u64>,
    /// Its full JID (`<success/>`'s authorization identifier).
    pub jid: Option<String>,
    /// The client's `h`, for the host's acknowledgement queue.
    pub acked: Option<u32>,
}

/// Payload of the [`hooks::SASL2_SUCCESS`] hook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sasl2Success {
    /// The stream (its `user` is not yet set).
    pub stream: crate::protocol::StreamInfo,
    /// The authenticated account (localpart).
    pub user: String,
    /// The mechanism that succeeded.
    pub mechanism: String,
    /// The client's whole `<authenticate/>`, for inline requests (`<request-token/>`, `<fast/>`).
    pub authenticate: crate::xml::Element,
    /// When the exchange began, ms since the epoch. A
    /// credential minted by this login (a FAST token) must be dated from this instant, not from
    /// its issue: the host accepts the login only if the password did not change after it, and
    /// a change after it must revoke the credential.
    pub exchange_started_at_ms: u64,
}

/// Named priorities (higher runs first).
pub mod priority {
    /// Runs before everything else (e.g. security checks).
    pub const FIRST: i32 = 1000;
    /// Runs early.
    pub const EARLY: i32 = 500;
    /// The default.
    pub const NORMAL: i32 = 0;
    /// Runs late.
    pub const LATE: i32 = -500;
    /// Runs after everything else (e.g. auditing).
    pub const LAST: i32 = -1000;
}

/// Payload of [`USER_PASSWORD_CHANGED`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPasswordChanged {
    /// Account localpart.
    pub user: String,
    /// The stream that changed it (spared from `<reset/>`), if any.
    pub origin_stream: Option<u64>,
    /// When (ms since the epoch).
    pub at_ms: u64,
}

/// Payload of [`USER_DELETED`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDeleted {
    /// Account localpart.
    pub user: String,
}

/// Payload of [`AUTHENTICATION_SUCCESS`] and [`AUTHENTICATION_FAILURE`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticationOutcome {
    /// The account named in the attempt, if it could be parsed.
    pub user: Option<String>,
    /// The mechanism.
    pub mechanism: String,
    /// The SASL2 user-agent id, if any.
    pub user_agent_id: Option<String>,
    /// The client's IP.
    pub peer_ip: String,
    /// The stream.
    pub stream_id: u64,
    /// The SASL condition of a failure.
    pub condition: Option<crate::conditions::SaslCondition>,
}

/// Payload of [`SESSION_BOUND`] and [`SESSION_CLOSED`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEvent {
    /// Connection id.
    pub stream_id: u64,
    /// Full JID if bound, bare JID if only authenticated, `None` before authentication.
    pub jid: Option<String>,
    /// Why it closed (stream error condition or `disconnected`), for [`SESSION_CLOSED`].
    pub reason: Option<String>,
}

/// Payload of [`SESSION_RESUMED`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionResumed {
    /// The stream now serving the session (module state and attachments moved to it).
    pub stream_id: u64,
    /// The session's stream id until now.
    pub previous_stream_id: u64,
    /// The full JID, unchanged.
    pub jid: String,
}

/// Payload of [`MODULE_LOADED`] and [`MODULE_UNLOADED`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleEvent {
    /// Module name.
    pub name: String,
    /// Module version.
    pub version: String,
}

/// Payload of [`MAIL_RESULT`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailResult {
    /// The operation id [`crate::Host::send_mail`] returned.
    pub op_id: u64,
    /// Whether the transport accepted it.
    pub ok: bool,
    /// The transport's error, if not.
    pub error: Option<String>,
}

/// An event as delivered to [`crate::Module::on_event`], borrowed from the bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<'a> {
    /// Event name.
    pub name: &'a str,
    /// The payload's encoding.
    pub payload: &'a [u8],
}

impl<'a> Event<'a> {
    /// Decode the payload as `T` (strings may borrow from it).
    ///
    /// # Errors
    /// [`crate::PluginErrorKind::BAD_REQUEST`] when the payload does not hold a `T`.
    pub fn decode<T: Deserialize<'a>>(&self) -> Result<T, crate::PluginError> {
        crate::wire::decode(self.name, self.payload)
    }
}
