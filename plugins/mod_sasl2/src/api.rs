//! The extension points this module offers other modules, as query hooks (called with
//! `Host::call_hook`; a module takes part by registering the hook name in
//! `Registrations::hooks` and answering in `Module::hook`). Payloads and answers are the
//! `tessera_plugin_api::wire` encoding of the types named here.
//!
//! Besides these, mod_sasl2 calls the host-defined hooks in
//! `tessera_plugin_api::events::hooks`: `sasl2-inline-features`, `bind2-inline-features` and
//! `sasl2-success`.
//!
//! # Tasks (XEP-0388 `<continue/>`)
//! After a SASL2 mechanism succeeds, mod_sasl2 calls [`SASL2_TASKS`] with
//! `tessera_plugin_api::events::Sasl2Success`. Each reply that is a non-empty `Vec<String>`
//! is one *requirement*: the task names that can satisfy it (alternatives, e.g.
//! `["TOTP-EXAMPLE","HOTP-EXAMPLE"]`). Requirements are handled one `<continue/>` round each, in
//! hook priority order. The client picks a task with `<next task='…'/>`; mod_sasl2 then calls
//! [`SASL2_TASK`] with a [`TaskCall`] carrying that `<next/>`, and again for every client
//! `<task-data/>`. The first reply that is a [`TaskStep`] decides: send `<task-data/>`, the
//! requirement is met, or the authentication fails. When all are met, the normal success path
//! runs (Bind 2, `sasl2-success`, `<success/>`). A further `<authenticate/>` after a
//! `<continue/>` closes the stream with `<policy-violation/>`.
//!
//! # Bind 2 results
//! When a Bind 2 request is bound, mod_sasl2 calls [`BIND2_BOUND`] with a [`Bind2Bound`]; every
//! reply (a `Vec<Element>`) is appended inside `<bound/>` after `<metadata/>` (e.g. the
//! XEP-0198 `<enabled/>` of an inline `<enable/>`).

use serde::{Deserialize, Serialize};
use tessera_plugin_api::protocol::StreamInfo;
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::SaslCondition;

/// Query hook: which tasks must follow a successful SASL2 mechanism. Payload:
/// `tessera_plugin_api::events::Sasl2Success`; answer: a `Vec<String>` of task names (alternatives
/// for one requirement), or no reply.
pub const SASL2_TASKS: &str = "sasl2-tasks";

/// Query hook: one step of a task. Payload: [`TaskCall`]; answer: [`TaskStep`] from the module
/// that owns `task`, no reply from every other module.
pub const SASL2_TASK: &str = "sasl2-task";

/// Query hook: children for Bind 2 `<bound/>` (declared in the plugin API, so that modules
/// answering it need not depend on this crate).
pub use tessera_plugin_api::events::hooks::BIND2_BOUND;
/// Payload of [`BIND2_BOUND`].
pub use tessera_plugin_api::events::Bind2Bound;

/// Payload of [`SASL2_TASK`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCall {
    /// The stream (not yet authenticated).
    pub stream: StreamInfo,
    /// The account the mechanism authenticated (localpart).
    pub user: String,
    /// The task the client picked.
    pub task: String,
    /// The client's `<next/>` (first call) or `<task-data/>` (later calls).
    pub element: Element,
}

/// Answer of [`SASL2_TASK`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskStep {
    /// Send `<task-data/>` with these children and wait for the client's `<task-data/>`.
    Data {
        /// Children of `<task-data/>`.
        children: Vec<Element>,
    },
    /// The task succeeded; these children go into the final `<success/>`.
    Done {
        /// Task-specific children of `<success/>`.
        children: Vec<Element>,
    },
    /// The task failed: `<failure/>` with this RFC 6120 condition.
    Failure {
        /// E.g. [`SaslCondition::NotAuthorized`].
        condition: SaslCondition,
        /// Optional text for the client.
        text: Option<String>,
    },
}
