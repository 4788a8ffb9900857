//! The ergonomic layer compiled into every plugin: the [`Module`] trait, the [`Host`] handle,
//! typed [`Config`] access, the panic guard and the glue behind [`crate::export_module!`].

use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::{
    library::LibHeader,
    prefix_type::PrefixTypeTrait,
    sabi_trait::TD_Opaque,
    std_types::{RResult, RSlice, RSliceMut, RStr, RString, RVec},
};
use serde::{de::DeserializeOwned, Serialize};

use crate::abi::{
    BlockingTask, BlockingTask_TO, EventFlow, HostServicesRef, LogLevel, PluginHandle, PluginInfo,
    PluginInstance, PluginInstanceBox, PluginInstance_TO, PluginMod, PluginModRef,
};
use crate::error::{PluginError, PluginErrorKind};
use crate::events::Event;
use crate::protocol::*;
use crate::xml::Element;

/// A Tessera module. Implement the hooks you need; every method but [`Module::manifest`],
/// [`Module::init`] and [`Module::registrations`] has a default that does nothing (or answers
/// "unsupported"). Callbacks are synchronous and must not block: ask the host for I/O.
///
/// Rules that keep hot swap safe: no threads, no async runtimes, no references to host objects
/// kept beyond a call (keep ids, not pointers).
pub trait Module: Send + Sync + Sized + 'static {
    /// Module name (`hello` → `libmod_hello.so`).
    const NAME: &'static str;
    /// Module version; by convention `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;

    /// Options and dependencies, known before instantiation.
    fn manifest() -> Manifest;

    /// Create the instance. `restore` holds the previous generation's [`Module::save_state`]
    /// output on a hot swap.
    ///
    /// # Errors
    /// A config error (name the key) or a state the module cannot restore.
    fn init(host: &Host, config: &Config, restore: Option<&[u8]>) -> Result<Self, PluginError>;

    /// What the host should route to this instance.
    fn registrations(&self) -> Registrations;

    /// A hooked bus event.
    ///
    /// # Errors
    /// Logged by the host with the module's name; the next handler still runs.
    fn on_event(&self, _host: &Host, _event: &Event) -> Result<EventFlow, PluginError> {
        Ok(EventFlow::Continue)
    }

    /// Children for `<stream:features/>`.
    ///
    /// Before authentication the answer may depend only on the stream's transport (`secure`,
    /// `direct_tls`, `tls_version`, which channel bindings exist) and on the module's own
    /// configuration: the host builds pre-auth features once per such class and module
    /// generation, and asks with a `StreamInfo` that carries nothing else (id 0, no peer
    /// address, no `from`, empty channel-binding values). After authentication it asks for
    /// each stream, with the account.
    ///
    /// # Errors
    /// Logged; the feature is left out.
    fn stream_features(
        &self,
        _host: &Host,
        _stream: &StreamInfo,
    ) -> Result<Vec<Element>, PluginError> {
        Ok(Vec::new())
    }

    /// A registered top-level stream element.
    ///
    /// # Errors
    /// The host closes the stream with `<internal-server-error/>`.
    fn stream_element(
        &self,
        _host: &Host,
        _request: StreamElement,
    ) -> Result<Vec<StreamAction>, PluginError> {
        Err(PluginError::unsupported("stream-element"))
    }

    /// An IQ in a registered namespace; return the reply stanza, or `None` to let the host
    /// answer `<service-unavailable/>`.
    ///
    /// # Errors
    /// The host answers `<internal-server-error/>`.
    fn iq(&self, _host: &Host, _request: IqRequest) -> Result<Option<Element>, PluginError> {
        Ok(None)
    }

    /// Start a SASL exchange of a registered mechanism.
    ///
    /// # Errors
    /// The host answers `<temporary-auth-failure/>`.
    fn mechanism_start(
        &self,
        _host: &Host,
        _start: MechanismStart,
    ) -> Result<MechanismStep, PluginError> {
        Err(PluginError::unsupported("mechanism-start"))
    }

    /// Continue a SASL exchange.
    ///
    /// # Errors
    /// The host answers `<temporary-auth-failure/>`.
    fn mechanism_step(
        &self,
        _host: &Host,
        _response: MechanismResponse,
    ) -> Result<MechanismStep, PluginError> {
        Err(PluginError::unsupported("mechanism-step"))
    }

    /// An exchange ended; drop its state.
    fn mechanism_end(&self, _host: &Host, _exchange: u64) {}

    /// A request on a registered HTTP route.
    ///
    /// # Errors
    /// The host answers 500 without detail.
    fn http(&self, _host: &Host, _request: HttpRequest) -> Result<HttpResponse, PluginError> {
        Err(PluginError::unsupported("http"))
    }

    /// A registered synchronous query hook; `None` contributes nothing.
    ///
    /// # Errors
    /// Logged; treated as no contribution.
    fn hook(
        &self,
        _host: &Host,
        _call: HookCall,
    ) -> Result<Option<serde_json::Value>, PluginError> {
        Ok(None)
    }

    /// A timer set with [`Host::set_timer`] fired.
    ///
    /// # Errors
    /// Logged.
    fn timer(&self, _host: &Host, _timer: TimerFired) -> Result<(), PluginError> {
        Ok(())
    }

    /// Caches and counters for the next generation (hot swap). Start with a format version.
    ///
    /// # Errors
    /// The swap is aborted and this instance keeps serving.
    fn save_state(&self) -> Result<Vec<u8>, PluginError> {
        Ok(Vec::new())
    }

    /// The instance is being dropped; cancel nothing (timers are the host's), flush caches.
    fn shutdown(&self, _host: &Host) {}
}

/// A closure run once through the ABI, its result or panic kept for the caller.
struct OnceTask<F, R> {
    work: Option<F>,
    outcome: Option<std::thread::Result<R>>,
}

impl<F: FnOnce() -> R, R> BlockingTask for OnceTask<F, R> {
    fn run(&mut self) {
        if let Some(work) = self.work.take() {
            self.outcome = Some(catch_unwind(AssertUnwindSafe(work)));
        }
    }
}

/// The module's view of the host: every service goes through it.
#[derive(Clone, Copy)]
pub struct Host {
    services: HostServicesRef,
    handle: PluginHandle,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("handle", &self.handle)
            .finish()
    }
}

impl Host {
    /// Wrap raw services (used by the SDK glue and by test harnesses).
    pub fn new(services: HostServicesRef, handle: PluginHandle) -> Self {
        Self { services, handle }
    }

    /// Log through the host's `tracing`, tagged with the module's name. Never log secrets.
    pub fn log(&self, level: LogLevel, message: &str) {
        (self.services.log())(self.handle, level, RStr::from_str(message));
    }

    /// Milliseconds since the Unix epoch, from the host's clock.
    pub fn now_ms(&self) -> u64 {
        (self.services.now_unix_ms())()
    }

    /// `n` bytes from the host's CSPRNG.
    pub fn random_bytes(&self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        (self.services.random_bytes())(RSliceMut::from_mut_slice(&mut buf));
        buf
    }

    /// Enqueue a bus event; delivered after the current call returns.
    ///
    /// # Errors
    /// Only if the payload cannot be serialised.
    pub fn fire<T: Serialize>(&self, name: &str, payload: &T) -> Result<(), PluginError> {
        let json = serde_json::to_string(payload)?;
        (self.services.fire())(self.handle, RStr::from_str(name), RStr::from_str(&json));
        Ok(())
    }

    /// Run slow, blocking work — a password hash, a call to an external service — without
    /// holding up other connections, and return its result. Everything else a module does runs
    /// on the host's I/O threads and must take microseconds, not milliseconds.
    /// `work` runs on the calling thread; a panic in it resumes in the caller.
    pub fn blocking<R>(&self, work: impl FnOnce() -> R) -> R {
        let mut task = OnceTask {
            work: Some(work),
            outcome: None,
        };
        if let Some(run_blocking) = self.services.run_blocking() {
            run_blocking(
                self.handle,
                BlockingTask_TO::from_ptr(abi_stable::sabi_types::RMut::new(&mut task), TD_Opaque),
            );
        }
        if task.outcome.is_none() {
            // Only a table built without the service (a test harness) gets here: do it here.
            task.run();
        }
        match task.outcome {
            Some(Ok(output)) => output,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => unreachable!("OnceTask::run always sets the outcome"),
        }
    }

    /// Send a raw host request and decode its answer.
    ///
    /// # Errors
    /// The host's refusal, or a malformed answer.
    pub fn request<T: DeserializeOwned>(&self, request: &HostRequest) -> Result<T, PluginError> {
        let (kind, payload) = to_wire(request)?;
        let answer =
            (self.services.call())(self.handle, RStr::from_str(&kind), RStr::from_str(&payload))
                .into_result()?;
        Ok(serde_json::from_str(answer.as_str())?)
    }

    /// Facts about the server.
    ///
    /// # Errors
    /// Host failure.
    pub fn info(&self) -> Result<HostInfo, PluginError> {
        self.request(&HostRequest::HostInfo)
    }

    /// Whether an account exists.
    ///
    /// # Errors
    /// Store failure.
    pub fn user_exists(&self, user: &str) -> Result<bool, PluginError> {
        self.request(&HostRequest::UserExists { user: user.into() })
    }

    /// An account's SCRAM verifiers.
    ///
    /// # Errors
    /// Store failure.
    pub fn get_credentials(&self, user: &str) -> Result<Option<AccountCredentials>, PluginError> {
        self.request(&HostRequest::GetCredentials { user: user.into() })
    }

    /// Set a password; the host fires `user-password-changed`.
    ///
    /// # Errors
    /// Unknown account or store failure.
    pub fn set_password(
        &self,
        user: &str,
        password: &str,
        origin_stream: Option<u64>,
    ) -> Result<(), PluginError> {
        self.request(&HostRequest::SetPassword {
            user: user.into(),
            password: password.into(),
            origin_stream,
        })
    }

    /// An account's stored email address.
    ///
    /// # Errors
    /// Store failure.
    pub fn get_email(&self, user: &str) -> Result<Option<String>, PluginError> {
        self.request(&HostRequest::GetEmail { user: user.into() })
    }

    /// Read a key from this module's store.
    ///
    /// # Errors
    /// Store failure.
    pub fn kv_get(&self, scope: &KvScope, key: &str) -> Result<Option<String>, PluginError> {
        self.request(&HostRequest::KvGet {
            scope: scope.clone(),
            key: key.into(),
        })
    }

    /// Write a key to this module's store.
    ///
    /// # Errors
    /// Store failure.
    pub fn kv_put(&self, scope: &KvScope, key: &str, value: &str) -> Result<(), PluginError> {
        self.request(&HostRequest::KvPut {
            scope: scope.clone(),
            key: key.into(),
            value: value.into(),
        })
    }

    /// Delete a key; returns whether it existed.
    ///
    /// # Errors
    /// Store failure.
    pub fn kv_delete(&self, scope: &KvScope, key: &str) -> Result<bool, PluginError> {
        self.request(&HostRequest::KvDelete {
            scope: scope.clone(),
            key: key.into(),
        })
    }

    /// List (key, value) pairs whose key starts with `prefix`.
    ///
    /// # Errors
    /// Store failure.
    pub fn kv_list(
        &self,
        scope: &KvScope,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, PluginError> {
        self.request(&HostRequest::KvList {
            scope: scope.clone(),
            prefix: prefix.into(),
        })
    }

    /// An account's connected sessions.
    ///
    /// # Errors
    /// Host failure.
    pub fn list_sessions(&self, user: &str) -> Result<Vec<SessionInfo>, PluginError> {
        self.request(&HostRequest::ListSessions { user: user.into() })
    }

    /// Close an account's sessions with a stream error; returns how many.
    ///
    /// # Errors
    /// Host failure.
    pub fn close_sessions(
        &self,
        user: &str,
        condition: &str,
        except_stream: Option<u64>,
    ) -> Result<u64, PluginError> {
        self.request(&HostRequest::CloseSessions {
            user: user.into(),
            condition: condition.into(),
            except_stream,
        })
    }

    /// Queue a mail; the outcome arrives as the `mail-result` event with the returned id.
    ///
    /// # Errors
    /// No transport or a refused address.
    pub fn send_mail(&self, mail: Mail) -> Result<u64, PluginError> {
        self.request(&HostRequest::SendMail(mail))
    }

    /// Be called back with [`Module::timer`] after `delay_ms`.
    ///
    /// # Errors
    /// Host failure.
    pub fn set_timer(&self, delay_ms: u64, tag: &str) -> Result<u64, PluginError> {
        self.request(&HostRequest::SetTimer {
            delay_ms,
            tag: tag.into(),
        })
    }

    /// Call a synchronous query hook on every module that registered it.
    ///
    /// # Errors
    /// Host failure.
    pub fn call_hook(
        &self,
        name: &str,
        payload: serde_json::Value,
    ) -> Result<Vec<serde_json::Value>, PluginError> {
        self.request(&HostRequest::CallHook(HookCall {
            name: name.into(),
            payload,
        }))
    }

    /// A 32-byte key derived from the server secret, which is kept outside the store.
    ///
    /// # Errors
    /// Host failure.
    pub fn derive_secret(&self, label: &str) -> Result<Vec<u8>, PluginError> {
        self.request(&HostRequest::DeriveSecret {
            label: label.into(),
        })
    }
}

/// A module's options: the host validated types and bounds and filled in defaults.
#[derive(Clone, Debug, Default)]
pub struct Config {
    values: serde_json::Map<String, serde_json::Value>,
}

impl Config {
    /// Parse the JSON object the host passes.
    ///
    /// # Errors
    /// When the text is not a JSON object.
    pub fn from_json(text: &str) -> Result<Self, PluginError> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let values = serde_json::from_str(text)
            .map_err(|e| PluginError::config(format!("module config is not a JSON object: {e}")))?;
        Ok(Self { values })
    }

    /// The raw value of a key.
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.values.get(key)
    }

    /// An integer option.
    ///
    /// # Errors
    /// Missing or not an integer (names the key).
    pub fn integer(&self, key: &str) -> Result<i64, PluginError> {
        self.get(key)
            .and_then(serde_json::Value::as_i64)
            .ok_or_else(|| PluginError::config(format!("option `{key}` must be an integer")))
    }

    /// A boolean option.
    ///
    /// # Errors
    /// Missing or not a boolean (names the key).
    pub fn boolean(&self, key: &str) -> Result<bool, PluginError> {
        self.get(key)
            .and_then(serde_json::Value::as_bool)
            .ok_or_else(|| PluginError::config(format!("option `{key}` must be true or false")))
    }

    /// A string option, if set.
    pub fn string(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(serde_json::Value::as_str)
    }

    /// Add or replace a value (for tests and harnesses).
    pub fn set(&mut self, key: &str, value: serde_json::Value) {
        self.values.insert(key.to_owned(), value);
    }
}

/// Serialise an adjacently tagged `{"kind": …, "payload": …}` enum into its wire pair: the kind
/// string and the whole JSON envelope (serialised once, straight to text).
///
/// # Errors
/// If the value is not such an enum.
pub fn to_wire<T: Serialize>(value: &T) -> Result<(String, String), PluginError> {
    let envelope = serde_json::to_string(value)?;
    // serde writes the tag first: `{"kind":"<kind>",…`; kinds are plain kebab-case names.
    let kind = envelope
        .strip_prefix("{\"kind\":\"")
        .and_then(|rest| rest.split('"').next())
        .ok_or_else(|| PluginError::internal("request without kind"))?
        .to_owned();
    Ok((kind, envelope))
}

/// Rebuild a `{kind, payload}` enum from its wire pair (the envelope carries the kind too; the
/// separate kind lets a receiver route or refuse without parsing).
///
/// # Errors
/// Unknown kind ([`PluginErrorKind::UNSUPPORTED`]) or malformed payload.
pub fn from_wire<T: DeserializeOwned>(kind: &str, payload: &str) -> Result<T, PluginError> {
    serde_json::from_str(payload).map_err(|e| {
        let message = format!("{kind}: {e}");
        if message.contains("unknown variant") {
            PluginError::new(PluginErrorKind::UNSUPPORTED, message)
        } else {
            PluginError::bad_request(message)
        }
    })
}

thread_local! {
    static PANIC_LOCATION: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Replace this plugin's panic hook (each cdylib has its own copy of std, hence its own hook):
/// instead of printing to the server's stderr, remember where the panic happened so that
/// [`guard`] reports it to the host, which logs it with the plugin's name.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()));
            PANIC_LOCATION.with(|slot| *slot.borrow_mut() = location);
        }));
    });
}

/// Run `f`, turning a panic into [`PluginErrorKind::PANICKED`] so it never crosses the ABI.
pub fn guard<T>(f: impl FnOnce() -> Result<T, PluginError>) -> RResult<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.into(),
        Err(panic) => {
            let mut message = panic_message(panic.as_ref());
            if let Some(at) = PANIC_LOCATION.with(|slot| slot.borrow_mut().take()) {
                message.push_str(&format!(" (at {at})"));
            }
            RResult::RErr(PluginError::new(PluginErrorKind::PANICKED, message))
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}

fn reply<T: Serialize>(value: &T) -> Result<RString, PluginError> {
    Ok(RString::from(serde_json::to_string(value)?))
}

struct Glue<M: Module> {
    module: M,
    host: Host,
}

impl<M: Module> Glue<M> {
    fn dispatch(&self, kind: &str, payload: &str) -> Result<RString, PluginError> {
        let host = &self.host;
        let module = &self.module;
        match from_wire::<Request>(kind, payload)? {
            Request::StreamFeatures(s) => reply(&module.stream_features(host, &s)?),
            Request::StreamElement(r) => reply(&module.stream_element(host, r)?),
            Request::Iq(r) => reply(&module.iq(host, r)?),
            Request::MechanismStart(r) => reply(&module.mechanism_start(host, r)?),
            Request::MechanismStep(r) => reply(&module.mechanism_step(host, r)?),
            Request::MechanismEnd(id) => reply(&module.mechanism_end(host, id)),
            Request::Http(r) => reply(&module.http(host, r)?),
            Request::Hook(r) => reply(&module.hook(host, r)?),
            Request::Timer(r) => reply(&module.timer(host, r)?),
        }
    }
}

impl<M: Module> PluginInstance for Glue<M> {
    fn registrations(&self) -> RString {
        let json = catch_unwind(AssertUnwindSafe(|| {
            serde_json::to_string(&self.module.registrations()).unwrap_or_default()
        }));
        RString::from(json.unwrap_or_default())
    }

    fn on_event(&self, name: RStr<'_>, payload: RStr<'_>) -> RResult<EventFlow, PluginError> {
        guard(|| {
            let payload = serde_json::from_str(payload.as_str())?;
            let event = Event {
                name: name.as_str().to_owned(),
                payload,
            };
            self.module.on_event(&self.host, &event)
        })
    }

    fn on_request(&self, kind: RStr<'_>, payload: RStr<'_>) -> RResult<RString, PluginError> {
        guard(|| self.dispatch(kind.as_str(), payload.as_str()))
    }

    fn save_state(&self) -> RResult<RVec<u8>, PluginError> {
        guard(|| self.module.save_state().map(RVec::from))
    }

    fn shutdown(&self) {
        let _ = catch_unwind(AssertUnwindSafe(|| self.module.shutdown(&self.host)));
    }
}

/// `PluginMod::info` for `M` (used by [`crate::export_module!`]).
pub extern "C" fn info<M: Module>() -> PluginInfo {
    let manifest = catch_unwind(M::manifest).unwrap_or_default();
    PluginInfo {
        name: RString::from(M::NAME),
        version: RString::from(M::VERSION),
        build_id: RString::from(option_env!("TESSERA_BUILD_ID").unwrap_or(M::VERSION)),
        manifest: RString::from(serde_json::to_string(&manifest).unwrap_or_default()),
    }
}

/// `PluginMod::instantiate` for `M` (used by [`crate::export_module!`]).
pub extern "C" fn instantiate<M: Module>(
    host: &'static LibHeader,
    handle: PluginHandle,
    config: RStr<'_>,
    restore: RSlice<'_, u8>,
) -> RResult<PluginInstanceBox, PluginError> {
    install_panic_hook();
    guard(|| {
        let services = host.init_root_module::<HostServicesRef>().map_err(|e| {
            PluginError::new(
                PluginErrorKind::INCOMPATIBLE,
                first_lines(&e.to_string(), 6),
            )
        })?;
        let host = Host::new(services, handle);
        let config = Config::from_json(config.as_str())?;
        let restore = if restore.is_empty() {
            None
        } else {
            Some(restore.as_slice())
        };
        let module = M::init(&host, &config, restore)?;
        Ok(PluginInstance_TO::from_value(
            Glue { module, host },
            TD_Opaque,
        ))
    })
}

/// The first `n` non-empty lines of a (possibly very long) abi_stable error.
pub fn first_lines(text: &str, n: usize) -> String {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Build the root module for `M` (used by [`crate::export_module!`]).
pub fn root_module<M: Module>() -> PluginModRef {
    PluginMod {
        info: info::<M>,
        instantiate: instantiate::<M>,
    }
    .leak_into_prefix()
}

/// Export a [`Module`] implementation as a Tessera plugin. Use it once, in a `cdylib` crate.
///
/// It emits two symbols: the plain [`crate::abi::PluginMagic`] static the host checks first,
/// and abi_stable's root-module header (layout-checked by the host).
#[macro_export]
macro_rules! export_module {
    ($module:ty) => {
        /// Cheap first-gate marker read by the host (see `tessera_plugin_api::abi::PluginMagic`).
        // SAFETY (no_mangle): a plain-data static with a unique, Tessera-specific name; the host
        // reads it as `PluginMagic`, which is `#[repr(C)]` and defined in this same crate version.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub static TESSERA_PLUGIN_MAGIC: $crate::abi::PluginMagic =
            $crate::abi::PluginMagic::CURRENT;

        /// abi_stable's root-module header, under the name its loader looks up.
        // SAFETY (no_mangle + from_constructor): this is exactly what abi_stable's
        // `#[export_root_module]` expands to; the constructor returns a `PluginModRef`, the type
        // named in `from_constructor`, so the header's layout constant matches the module.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::__private::LibHeader = {
            extern "C" fn __tessera_root_module() -> $crate::__private::RootModuleResult {
                $crate::__private::__call_root_module_loader(|| {
                    $crate::sdk::root_module::<$module>()
                })
            }
            unsafe {
                $crate::__private::LibHeader::from_constructor::<$crate::abi::PluginModRef>(
                    __tessera_root_module,
                    $crate::__private::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

#[cfg(test)]
mod tests {
    use abi_stable::prefix_type::PrefixTypeTrait;

    use super::*;
    use crate::abi::{BlockingTaskRef, HostServices};

    thread_local! {
        /// Tasks the fake host ran on this thread (tests run in parallel on their own threads).
        static RUN_BY_HOST: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    extern "C" fn log(_: PluginHandle, _: LogLevel, _: RStr<'_>) {}
    extern "C" fn now() -> u64 {
        0
    }
    extern "C" fn random(_: RSliceMut<'_, u8>) {}
    extern "C" fn fire(_: PluginHandle, _: RStr<'_>, _: RStr<'_>) {}
    extern "C" fn call(_: PluginHandle, _: RStr<'_>, _: RStr<'_>) -> RResult<RString, PluginError> {
        RResult::RErr(PluginError::host("no calls in this test"))
    }
    /// Like the host (tokio's `block_in_place` runs the work on the calling thread, after
    /// handing that thread's other tasks away).
    extern "C" fn run_blocking(_: PluginHandle, mut task: BlockingTaskRef<'_>) {
        RUN_BY_HOST.set(RUN_BY_HOST.get() + 1);
        task.run();
    }

    fn host() -> Host {
        let services = HostServices {
            log,
            now_unix_ms: now,
            random_bytes: random,
            fire,
            call,
            run_blocking,
        }
        .leak_into_prefix();
        Host::new(services, PluginHandle(1))
    }

    #[test]
    fn blocking_work_runs_through_the_host_and_returns_its_result() {
        let before = RUN_BY_HOST.get();
        let borrowed = [1u64, 2, 3];
        let sum = host().blocking(|| borrowed.iter().sum::<u64>());
        assert_eq!(sum, 6);
        assert_eq!(RUN_BY_HOST.get(), before + 1);
    }

    #[test]
    fn a_panic_in_blocking_work_resumes_in_the_caller_not_in_the_host() {
        let caught =
            std::panic::catch_unwind(|| host().blocking(|| -> u8 { panic!("derivation failed") }));
        let payload = caught.expect_err("the panic comes back to the caller");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"derivation failed"));
    }
}
