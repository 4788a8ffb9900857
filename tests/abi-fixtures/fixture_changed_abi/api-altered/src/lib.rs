//! The real plugin API with one altered ABI type (see Cargo.toml and build.rs).
#![allow(missing_docs, unreachable_pub, non_local_definitions)]

#[path = "../../../../../plugin-api/src/calls.rs"]
pub mod calls;
#[path = "../../../../../plugin-api/src/conditions.rs"]
pub mod conditions;
#[path = "../../../../../plugin-api/src/error.rs"]
pub mod error;
#[path = "../../../../../plugin-api/src/events.rs"]
pub mod events;
#[path = "../../../../../plugin-api/src/names.rs"]
pub mod names;
#[path = "../../../../../plugin-api/src/protocol.rs"]
pub mod protocol;
#[path = "../../../../../plugin-api/src/sdk.rs"]
pub mod sdk;
#[path = "../../../../../plugin-api/src/wire.rs"]
pub mod wire;
#[path = "../../../../../plugin-api/src/xml.rs"]
pub mod xml;

/// The real `abi` module with the one change.
pub mod abi {
    include!(concat!(env!("OUT_DIR"), "/abi.rs"));
}

pub use abi::{EventFlow, LogLevel, API_MAJOR, API_VERSION};
pub use calls::{HostCalls, ModuleCalls};
pub use conditions::{ErrorType, SaslCondition, StanzaCondition, StreamCondition};
pub use error::{PluginError, PluginErrorKind};
pub use events::Event;
pub use sdk::{Config, Host, Module};

#[doc(hidden)]
pub mod __private {
    pub use abi_stable::library::{
        __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
    };
}
