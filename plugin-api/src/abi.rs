//! The binary interface between the host and a plugin: `#[repr(C)]`, [`StableAbi`] types only.
//!
//! Two prefix modules cross the boundary, each **checked by its consumer** at load time:
//!
//! * [`PluginModRef`] (exported by every plugin, checked by the host): frozen for the whole
//!   1.x series. Nothing is ever appended to it or to [`PluginInstance`] within a major version,
//!   because abi_stable refuses a library whose prefix type has *fewer* fields than the loader
//!   expects (a newer host would then refuse older plugins).
//! * [`HostServicesRef`] (built by the host, checked by the plugin through a [`LibHeader`]): may
//!   grow in minor versions. A plugin built against 1.0 accepts a 1.1 host; a plugin built against
//!   1.1 refuses a 1.0 host with a precise layout error.
//!
//! Everything that evolves (capabilities, requests, events) travels as a *kind* string plus a
//! JSON payload whose schema lives in [`crate::protocol`] and [`crate::events`]: a new request
//! kind or a new optional field is a minor, additive change in both directions.
//!
//! Only this module and the SDK's export macro name abi_stable types, so a later move to a
//! hand-written C ABI touches two files.

// abi_stable's derive and `#[sabi_trait]` expansions contain `unsafe` blocks and unsafe trait
// impls (vtables, Send/Sync for the erased object). This module is the ABI boundary, the one
// place where that is expected; no hand-written `unsafe` lives here.
#![allow(unsafe_code)]

use abi_stable::{
    declare_root_module_statics,
    library::{LibHeader, RootModule},
    package_version_strings, sabi_trait,
    sabi_types::{RMut, VersionStrings},
    std_types::{RBox, RResult, RSlice, RSliceMut, RStr, RString, RVec},
    StableAbi,
};

use crate::error::PluginError;

/// The major version of the plugin ABI. It changes only when [`PluginMod`] or
/// [`PluginInstance`] change, which is also a new major version of this crate.
pub const API_MAJOR: u32 = 1;

/// The full version of this crate, which abi_stable compares at load time.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Magic bytes at the start of [`PluginMagic`], so the host can tell a Tessera plugin from any
/// other shared object before running abi_stable's layout check.
pub const MAGIC: [u8; 8] = *b"TESSERA\0";

/// The name of the plain C symbol that holds a plugin's [`PluginMagic`].
pub const MAGIC_SYMBOL: &str = "TESSERA_PLUGIN_MAGIC";

/// A plain `#[repr(C)]` static every plugin exports under [`MAGIC_SYMBOL`]; the host reads it
/// with libloading as a cheap first gate (foreign `.so`, truncated file, other major).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PluginMagic {
    /// Always [`MAGIC`].
    pub magic: [u8; 8],
    /// The [`API_MAJOR`] the plugin was built against.
    pub api_major: u32,
    /// Length of the used part of `api_version`.
    pub api_version_len: u32,
    /// The crate version the plugin was built against, UTF-8, zero-padded.
    pub api_version: [u8; 32],
}

impl PluginMagic {
    /// The value for plugins built against this version of the crate.
    pub const CURRENT: PluginMagic = {
        let src = API_VERSION.as_bytes();
        let mut api_version = [0u8; 32];
        let mut i = 0;
        while i < src.len() && i < 32 {
            api_version[i] = src[i];
            i += 1;
        }
        PluginMagic {
            magic: MAGIC,
            api_major: API_MAJOR,
            api_version_len: i as u32,
            api_version,
        }
    };

    /// The `api_version` field as text (lossy on garbage).
    pub fn version_str(&self) -> String {
        let len = (self.api_version_len as usize).min(self.api_version.len());
        String::from_utf8_lossy(self.api_version.get(..len).unwrap_or_default()).into_owned()
    }
}

/// An opaque handle the host gives each plugin instance; the plugin passes it back on every
/// host call so the host knows who is calling.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PluginHandle(pub u64);

/// Log levels a plugin can emit through the host's `tracing`.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Very detailed diagnostics.
    Trace = 0,
    /// Protocol steps.
    Debug = 1,
    /// Lifecycle.
    Info = 2,
    /// Peer misbehaviour or recoverable problems.
    Warn = 3,
    /// An operator must act.
    Error = 4,
}

/// Whether an event continues to lower-priority handlers.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFlow {
    /// Deliver the event to the next handler.
    Continue = 0,
    /// Stop propagation: no lower-priority handler sees the event.
    Stop = 1,
}

/// Static description of a plugin, readable before it is instantiated.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct PluginInfo {
    /// Module name, e.g. `sasl2` (the file is `libmod_sasl2.so`).
    pub name: RString,
    /// The plugin's own version (its crate version).
    pub version: RString,
    /// A build identifier (e.g. a build timestamp or hash) that tells two builds apart.
    pub build_id: RString,
    /// JSON of [`crate::protocol::Manifest`]: options, dependencies, description.
    pub manifest: RString,
}

/// A live plugin instance, as seen through the ABI. Implemented by the SDK's export macro on
/// top of [`crate::Module`]; module authors never implement it by hand.
#[sabi_trait]
pub trait PluginInstance: Send + Sync {
    /// JSON of [`crate::protocol::Registrations`]: what the host should route to this instance.
    fn registrations(&self) -> RString;

    /// Deliver one bus event (name, JSON payload).
    fn on_event(&self, name: RStr<'_>, payload: RStr<'_>) -> RResult<EventFlow, PluginError>;

    /// A synchronous request from the host (kind, JSON payload) answered with JSON.
    fn on_request(&self, kind: RStr<'_>, payload: RStr<'_>) -> RResult<RString, PluginError>;

    /// Serialise caches and counters for a newer build (hot swap). Starts with a format version.
    fn save_state(&self) -> RResult<RVec<u8>, PluginError>;

    /// Stop: the instance will receive no further calls after this returns.
    #[sabi(last_prefix_field)]
    fn shutdown(&self);
}

/// Blocking work a plugin hands to [`HostServices::run_blocking`]; the SDK's
/// [`crate::Host::blocking`] implements it for a closure.
#[sabi_trait]
pub trait BlockingTask {
    /// Do the work. Called at most once, before `run_blocking` returns, on the calling thread
    /// (the host first hands that thread's other work away; the object is not `Send`, so it
    /// cannot go elsewhere); must not unwind (the SDK catches panics and re-raises them on the
    /// plugin's side of the boundary).
    #[sabi(last_prefix_field)]
    fn run(&mut self);
}

/// A borrowed, type-erased [`BlockingTask`].
pub type BlockingTaskRef<'a> = BlockingTask_TO<'a, RMut<'a, ()>>;

/// The owned, type-erased form of a [`PluginInstance`].
pub type PluginInstanceBox = PluginInstance_TO<'static, RBox<()>>;

/// The root module every plugin exports (checked by the host). Frozen per major version.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_debug_implementations)] // a table of function pointers
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    /// Static information about the plugin.
    pub info: extern "C" fn() -> PluginInfo,

    /// Create an instance. `host` is the host's [`HostServicesRef`] wrapped in a header that the
    /// plugin checks itself; `config` is JSON of the module's own options; `restore` is the
    /// previous generation's `save_state` output (empty on a fresh load).
    #[sabi(last_prefix_field)]
    pub instantiate: extern "C" fn(
        host: &'static LibHeader,
        handle: PluginHandle,
        config: RStr<'_>,
        restore: RSlice<'_, u8>,
    ) -> RResult<PluginInstanceBox, PluginError>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "tessera_plugin";
    const NAME: &'static str = "tessera_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// Services the host offers to plugins (checked by the plugin). New services are appended after
/// the last field in minor versions; a plugin sees them as `None` on an older host.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_debug_implementations)] // a table of function pointers
#[sabi(kind(Prefix(prefix_ref = HostServicesRef)))]
#[sabi(missing_field(option))]
pub struct HostServices {
    /// Emit a log line through the host's `tracing`, tagged with the plugin's name.
    pub log: extern "C" fn(plugin: PluginHandle, level: LogLevel, message: RStr<'_>),
    /// Wall-clock time in milliseconds since the Unix epoch (the host's clock, so tests can fake it).
    pub now_unix_ms: extern "C" fn() -> u64,
    /// Fill the buffer from the host's CSPRNG.
    pub random_bytes: extern "C" fn(out: RSliceMut<'_, u8>),
    /// Enqueue an event on the bus. Never re-enters: delivery happens after the current call.
    pub fire: extern "C" fn(plugin: PluginHandle, name: RStr<'_>, payload: RStr<'_>),
    /// A synchronous host request (kind, JSON payload) answered with JSON; see
    /// [`crate::protocol::HostRequest`].
    #[sabi(last_prefix_field)]
    pub call: extern "C" fn(
        plugin: PluginHandle,
        kind: RStr<'_>,
        payload: RStr<'_>,
    ) -> RResult<RString, PluginError>,
    /// Run slow, blocking work (key derivation, a query to an external service) so that it does
    /// not hold up the host's I/O threads, and return when it is done. Every other call into a
    /// plugin runs on those threads and must be quick. Added before 1.0 shipped; when a field
    /// is appended after it, that is plugin API 1.1 (a plugin refuses an older host's table).
    pub run_blocking: extern "C" fn(plugin: PluginHandle, task: BlockingTaskRef<'_>),
}

impl RootModule for HostServicesRef {
    declare_root_module_statics! {HostServicesRef}
    const BASE_NAME: &'static str = "tessera_host";
    const NAME: &'static str = "tessera_host";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
