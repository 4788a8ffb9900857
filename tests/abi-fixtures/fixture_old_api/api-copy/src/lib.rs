//! # tessera-plugin-api (ALTERED COPY, test-only)
//!
//! This is a copy of `plugin-api` for the `fixture_old_api` and `fixture_other_major` test
//! plugins. Its changes are marked `ALTERED COPY` in `abi.rs` and `sdk.rs`: the `payload`
//! argument of `PluginInstance::on_request` is `RSlice<'_, u8>` (not `RStr<'_>`), and
//! `API_MAJOR` follows the building package's major version. `build.rs` (not in the real crate)
//! makes abi_stable record the package name as `tessera-plugin-api`. Everything else is the
//! real crate's text.
//!
//! The one crate a Tessera module depends on: the stable binary interface (ABI) between the
//! Tessera XMPP server and its `cdylib` plugins, and the SDK that makes a module a small file of
//! hooks, in the spirit of a Prosody module.
//!
//! How to read it:
//! * [`Module`] — the trait a module implements; [`export_module!`] turns it into a plugin.
//! * [`Host`] — everything a module can ask of the server: accounts, per-module storage,
//!   sessions, mail, timers, the event bus, logging.
//! * [`protocol`] — the typed requests and answers that cross the ABI as JSON.
//! * [`events`] — the events the host defines (`user-password-changed`, ...).
//! * [`xml`] — a small element model for stanzas and stream elements.
//! * [`abi`] — the `#[repr(C)]` types abi_stable checks at load time (you rarely need them).
//!
//! ## Versioning
//! The crate is 1.x. A plugin loads into any host with the same major version and a minor
//! version at least as new as the plugin's. The host refuses other builds with a precise error
//! (file, expected and found version, first layout difference).
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
//!     fn on_event(&self, host: &Host, event: &Event) -> Result<EventFlow, PluginError> {
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
// Frozen: the 1.0 source of this module.
pub mod b64;
// Frozen: the 1.0 source of this module.
pub mod error;
// Frozen: the 1.0 source of this module.
pub mod events;
// Frozen: the 1.0 source of this module.
pub mod protocol;
pub mod sdk;
// Frozen: the 1.0 source of this module.
pub mod xml;

pub use abi::{EventFlow, LogLevel, API_MAJOR, API_VERSION};
pub use error::{PluginError, PluginErrorKind};
pub use events::Event;
pub use sdk::{Config, Host, Module};

/// Re-exports used by [`export_module!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{
        CheckTypeLayout, LibHeader, RootModuleResult, __call_root_module_loader,
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

    #[test]
    fn request_wire_round_trip() {
        use crate::protocol::{Request, StreamInfo};
        let req = Request::StreamFeatures(StreamInfo {
            id: 7,
            domain: "localhost".into(),
            ..StreamInfo::default()
        });
        let (kind, payload) = crate::sdk::to_wire(&req).unwrap();
        assert_eq!(kind, "stream-features");
        let back: Request = crate::sdk::from_wire(&kind, &payload).unwrap();
        assert_eq!(back, req);
        let err = crate::sdk::from_wire::<Request>("no-such-kind", "{}").unwrap_err();
        assert!(err.is_unsupported());
    }
}
