//! The binary interface between the host and a plugin: `#[repr(C)]`, [`StableAbi`] types only.
//!
//! Two prefix modules cross the boundary, each **checked by its consumer** at load time:
//!
//! * [`PluginModRef`] (exported by every plugin, checked by the host): frozen for the whole
//!   2.x series, like [`PluginInstance`]: abi_stable refuses a library whose prefix type has
//!   *fewer* fields than the loader expects (a newer host would then refuse older plugins).
//! * [`HostServicesRef`] (built by the host, checked by the plugin through a [`LibHeader`]).
//!
//! Everything that evolves travels as a numeric call kind plus postcard bytes
//! ([`crate::calls`], [`crate::wire`]), or as an event name plus postcard bytes: a new call or
//! event is a minor, additive change in both directions, and a peer that does not know a kind
//! answers [`crate::PluginErrorKind::UNSUPPORTED`].
//!
//! Only this module (with [`glue`], the plugin side of the export macro) names abi_stable
//! types, so a later move to a hand-written C ABI touches this folder and the host's loader.

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
pub const API_MAJOR: u32 = 2;

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

/// The host's context for one plugin instance: an opaque pointer the host hands over at
/// instantiation and the plugin passes back on every host service call, so the host knows who
/// calls without a process-wide lookup. The plugin never dereferences it.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCtx(pub *const ());

// SAFETY: `HostCtx` is an opaque token to the plugin (never dereferenced there); the host
// points it at a context that is `Sync` and lives for the rest of the process, so passing the
// token between threads and using it from several at once is sound.
unsafe impl Send for HostCtx {}
// SAFETY: see `Send` above.
unsafe impl Sync for HostCtx {}

/// An error as it crosses the ABI ([`crate::PluginError`] on both sides).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct AbiError {
    /// [`crate::PluginErrorKind`]'s code.
    pub kind: u8,
    /// Detail for the operator's log.
    pub message: RString,
}

impl From<PluginError> for AbiError {
    fn from(e: PluginError) -> Self {
        Self {
            kind: e.kind.0,
            message: RString::from(e.message),
        }
    }
}

impl From<AbiError> for PluginError {
    fn from(e: AbiError) -> Self {
        PluginError::new(crate::PluginErrorKind(e.kind), e.message.into_string())
    }
}

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
    /// The encoded [`crate::protocol::Manifest`]: options, dependencies, description.
    pub manifest: RVec<u8>,
}

/// A live plugin instance, as seen through the ABI. Implemented by the SDK's export macro on
/// top of [`crate::Module`]; module authors never implement it by hand. Frozen for the whole
/// 2.x series: everything that grows travels as a call kind.
#[sabi_trait]
pub trait PluginInstance: Send + Sync {
    /// One call of [`crate::calls::ModuleCalls`]: its kind and encoded arguments in, the
    /// encoded answer out.
    fn call(&self, kind: u32, payload: RSlice<'_, u8>) -> RResult<RVec<u8>, AbiError>;

    /// Deliver one bus event (name, encoded payload).
    fn event(&self, name: RStr<'_>, payload: RSlice<'_, u8>) -> RResult<EventFlow, AbiError>;

    /// Serialise caches and counters for a newer build (hot swap). Starts with a format version.
    fn save_state(&self) -> RResult<RVec<u8>, AbiError>;

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
    /// plugin checks itself; `ctx` is passed back on every host service call; `config` is the
    /// encoded [`crate::Config`] (the module's validated options); `restore` is the previous
    /// generation's `save_state` output (empty on a fresh load).
    #[sabi(last_prefix_field)]
    pub instantiate: extern "C" fn(
        host: &'static LibHeader,
        ctx: HostCtx,
        config: RSlice<'_, u8>,
        restore: RSlice<'_, u8>,
    ) -> RResult<PluginInstanceBox, AbiError>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "tessera_plugin";
    const NAME: &'static str = "tessera_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// Services the host offers to plugins (checked by the plugin). Everything that grows travels
/// as a kind of [`crate::calls::HostCalls`] through `call`; a field appended after the last one
/// would be a minor version that plugins built against it see as `None` on an older host.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_debug_implementations)] // a table of function pointers
#[sabi(kind(Prefix(prefix_ref = HostServicesRef)))]
#[sabi(missing_field(option))]
pub struct HostServices {
    /// Emit a log line through the host's `tracing`, tagged with the plugin's name.
    pub log: extern "C" fn(ctx: HostCtx, level: LogLevel, message: RStr<'_>),
    /// Wall-clock time in milliseconds since the Unix epoch (the host's clock, so tests can fake it).
    pub now_unix_ms: extern "C" fn(ctx: HostCtx) -> u64,
    /// Fill the buffer from the host's CSPRNG.
    pub random_bytes: extern "C" fn(ctx: HostCtx, out: RSliceMut<'_, u8>),
    /// Enqueue an event on the bus. Never re-enters: delivery happens after the current call.
    pub fire: extern "C" fn(ctx: HostCtx, name: RStr<'_>, payload: RSlice<'_, u8>),
    /// One call of [`crate::calls::HostCalls`]: kind and encoded arguments in, encoded answer out.
    pub call: extern "C" fn(
        ctx: HostCtx,
        kind: u32,
        payload: RSlice<'_, u8>,
    ) -> RResult<RVec<u8>, AbiError>,
    /// Run slow, blocking work (key derivation, a query to an external service) so that it does
    /// not hold up the host's I/O threads, and return when it is done. Every other call into a
    /// plugin runs on those threads and must be quick.
    #[sabi(last_prefix_field)]
    pub run_blocking: extern "C" fn(ctx: HostCtx, task: BlockingTaskRef<'_>),
}

impl RootModule for HostServicesRef {
    declare_root_module_statics! {HostServicesRef}
    const BASE_NAME: &'static str = "tessera_host";
    const NAME: &'static str = "tessera_host";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

pub mod glue;
