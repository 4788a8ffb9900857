//! # tessera-plugin-api
//!
//! The one crate a Tessera module depends on: the stable binary interface (ABI) between the
//! Tessera XMPP server and its `cdylib` plugins, and the SDK that makes a module a small file of
//! hooks, in the spirit of a Prosody module.
//!
//! How to read it:
//! * [`Module`] — the trait a module implements; [`export_module!`] turns it into a plugin.
//! * [`Host`] — everything a module can ask of the server; its typed calls are [`HostCalls`]
//!   (accounts, per-module storage, sessions, mail, timers, hooks), plus logging, the clock,
//!   randomness, events and [`Host::blocking`].
//! * [`calls`] — every call across the boundary, declared once: the traits, kinds and
//!   dispatchers of both directions are generated from it.
//! * [`protocol`] — the typed arguments and answers; [`events`] — the events the host defines
//!   (`user-password-changed`, ...); [`conditions`] — stream, stanza and SASL conditions.
//! * [`wire`] — the binary encoding (postcard) and its evolution rule.
//! * [`stanza`] — stanza hooks: the points of a stanza's life, selectors, verdicts.
//! * [`xml`] — a small element model for stanzas and stream elements, and a strict parser.
//! * `options!`, [`reply`], [`ratelimit`] — the kit: typed options, stanza answers, limits.
//! * `testing` (cargo feature `testing`) — an in-memory host that runs a module's hooks
//!   through the same encoded calls as the server.
//! * [`abi`] — the `#[repr(C)]` types abi_stable checks at load time (module authors never
//!   need them).
//!
//! ## Versioning
//! The crate is 2.x. A plugin loads into any host with the same major version; calls and
//! events added in a minor version are answered `UNSUPPORTED` by an older peer. The host
//! refuses other builds with a precise error (file, expected and found version, first layout
//! difference), and a 1.x plugin with a hint to rebuild it against 2.
//!
//! ## Rules for modules
//! Callbacks are synchronous and short: no blocking, no threads, no async runtimes, no
//! references to host objects kept beyond a call. The host does all I/O. A panic is caught at
//! the boundary and reported; the server lives on.
//!
//! ## Example
//! A module that advertises a stream feature and greets every bound session in the log:
//! ```
//! use tessera_plugin_api::{events, protocol::*, xml::Element, Config, EventFlow, Event,
//!     Host, LogLevel, Module, PluginError};
//!
//! pub struct Hello;
//!
//! impl Module for Hello {
//!     const NAME: &'static str = "hello";
//!     const VERSION: &'static str = "1.0.0";
//!
//!     fn manifest() -> Manifest {
//!         Manifest { description: "Says hello".into(), ..Manifest::default() }
//!     }
//!     fn init(_host: &Host, _config: &Config, _restore: Option<&[u8]>) -> Result<Self, PluginError> {
//!         Ok(Hello)
//!     }
//!     fn registrations(&self) -> Registrations {
//!         Registrations {
//!             stream_features: true,
//!             events: vec![HookSpec { name: events::SESSION_BOUND.into(), priority: 0 }],
//!             ..Registrations::default()
//!         }
//!     }
//!     fn stream_features(&self, _host: &Host, _s: &StreamInfo) -> Result<Vec<Element>, PluginError> {
//!         Ok(vec![Element::new("hello", "urn:example:hello")])
//!     }
//!     fn on_event(&self, host: &Host, event: &Event<'_>) -> Result<EventFlow, PluginError> {
//!         let bound: events::SessionEvent = event.decode()?;
//!         host.log(LogLevel::Info, &format!("hello, {}", bound.jid.unwrap_or_default()));
//!         Ok(EventFlow::Continue)
//!     }
//! }
//!
//! tessera_plugin_api::export_module!(Hello);
//! # fn main() {}
//! ```
#![deny(missing_docs)]
// `#[sabi_trait]` expansions trip this lint under current rustc; harmless (see plugin-abi.md §8).
#![allow(non_local_definitions)]

pub mod abi;
pub mod acks;
pub mod calls;
pub mod clients;
pub mod conditions;
pub mod datetime;
pub mod error;
pub mod events;
pub mod im;
pub mod jid;
pub mod names;
pub mod notes;
pub mod options;
pub mod paced;
pub mod protocol;
pub mod ratelimit;
pub mod reply;
pub mod sdk;
pub mod stanza;
pub mod sync;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod wire;
pub mod xml;

pub use abi::{EventFlow, LogLevel, API_MAJOR, API_VERSION};
pub use calls::{HostCalls, ModuleCalls};
pub use conditions::{ErrorType, SaslCondition, StanzaCondition, StreamCondition};
pub use error::{PluginError, PluginErrorKind};
pub use events::Event;
pub use sdk::{Config, Host, Module};
pub use stanza::{Stanza, StanzaHook, StanzaKind, StanzaPoint, Verdict};

/// Re-exports used by [`export_module!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn export_macro_uses_abi_stable_loader_symbol_name() {
        assert_eq!(
            "_1as_0lib_1header_0root_bmodule_bloader",
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
