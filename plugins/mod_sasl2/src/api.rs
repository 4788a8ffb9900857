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
//! # Upgrade tasks (XEP-0480)
//! While building `<authentication/>`, mod_sasl2 calls [`SASL2_UPGRADES`]; every task name in
//! the replies is listed as `<upgrade xmlns='urn:xmpp:sasl:upgrade:0'/>`. A client asks for one
//! with the same element inside `<authenticate/>`; the module that performs it reads that
//! request from the `Sasl2Success` payload of [`SASL2_TASKS`] and answers a requirement, so an
//! upgrade runs as any other task (mod_scram_upgrade is one).
//!
//! # Bind 2 results
//! When a Bind 2 request is bound, mod_sasl2 calls [`BIND2_BOUND`] with a [`Bind2Bound`]; every
//! reply (a `Vec<Element>`) is appended inside `<bound/>` (mod_mam's `<metadata/>`, the
//! XEP-0198 `<enabled/>` of an inline `<enable/>`).

/// Query hooks of the task protocol, declared in the plugin API so that a module offering a
/// task need not depend on this crate.
pub use tessera_plugin_api::events::hooks::{SASL2_TASK, SASL2_TASKS, SASL2_UPGRADES};
/// Payload and answer of [`SASL2_TASK`].
pub use tessera_plugin_api::events::{TaskCall, TaskStep};

/// Query hook: children for Bind 2 `<bound/>` (declared in the plugin API, so that modules
/// answering it need not depend on this crate).
pub use tessera_plugin_api::events::hooks::BIND2_BOUND;
/// Payload of [`BIND2_BOUND`].
pub use tessera_plugin_api::events::Bind2Bound;
