//! The ergonomic layer compiled into every plugin: the [`Module`] trait, the [`Host`] handle,
//! typed [`Config`] access and the panic guard. Nothing here names an ABI type: the plugin side
//! of the boundary is [`crate::abi::glue`], and a test host drives the same code in
//! memory.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::abi::{EventFlow, LogLevel};
use crate::calls::{HostTransport, ModuleCalls};
use crate::error::{PluginError, PluginErrorKind};
use crate::events::Event;
use crate::protocol::*;
use crate::stanza::{Stanza, StanzaHeader, Verdict};
use crate::wire;
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
    fn on_event(&self, _host: &Host, _event: &Event<'_>) -> Result<EventFlow, PluginError> {
        Ok(EventFlow::Continue)
    }

    /// Children for `<stream:features/>`.
    ///
    /// Before authentication the answer may depend only on the stream's transport (`secure`,
    /// `direct_tls`, `tls_version`, which channel bindings exist), on `named_account` (the
    /// verifiers of the account the header names) and on the module's own configuration: the
    /// host builds pre-auth features once per such class and module generation, and asks with
    /// a `StreamInfo` that carries nothing else (id 0, no peer address, no `from`, empty
    /// channel-binding values). After authentication it asks for each stream, with the account.
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

    /// A registered synchronous query hook, with its encoded payload; `None` contributes
    /// nothing. [`wire::decode`] and [`wire::encode`] read and write what the hook documents.
    ///
    /// # Errors
    /// Logged; treated as no contribution.
    fn hook(
        &self,
        _host: &Host,
        _name: &str,
        _payload: &[u8],
    ) -> Result<Option<Vec<u8>>, PluginError> {
        Ok(None)
    }

    /// A stanza at one of the module's [`crate::StanzaHook`]s (`stanza.header.hook` says
    /// which). Read the header first: decoding the stanza ([`Stanza::element`]) costs more.
    ///
    /// # Errors
    /// The stanza stops; its sender gets `<internal-server-error/>`.
    fn stanza(&self, _host: &Host, _stanza: Stanza<'_>) -> Result<Verdict, PluginError> {
        Ok(Verdict::Pass)
    }

    /// A timer set with [`crate::HostCalls::set_timer`] fired.
    ///
    /// # Errors
    /// Logged.
    fn timer(&self, _host: &Host, _timer: TimerFired) -> Result<(), PluginError> {
        Ok(())
    }

    /// Caches and counters for the next generation (hot swap). Start with a format version.
    ///
    /// Called with none of this instance's calls running and none starting: the host pauses
    /// the instance first, and from then on its callers wait and are handed to the next
    /// generation (a SASL exchange this instance started still finishes here). So the state
    /// is whole, and nothing this instance does after it is lost.
    ///
    /// # Errors
    /// The swap is aborted and this instance keeps serving.
    fn save_state(&self) -> Result<Vec<u8>, PluginError> {
        Ok(Vec::new())
    }

    /// The instance is being dropped; cancel nothing (timers are the host's), flush caches.
    fn shutdown(&self, _host: &Host) {}
}

/// What a [`Host`] runs on: the ABI inside a plugin, an in-memory host in tests
/// (a test host). Module code never implements or calls it directly.
pub trait Backend: Send + Sync {
    /// Carry one encoded [`HostCalls`] call.
    ///
    /// # Errors
    /// The host's refusal or failure.
    fn call(&self, kind: u32, payload: &[u8]) -> Result<Vec<u8>, PluginError>;
    /// Log a line tagged with the module's name.
    fn log(&self, level: LogLevel, message: &str);
    /// The host's clock, ms since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Fill `out` from the host's CSPRNG.
    fn random_bytes(&self, out: &mut [u8]);
    /// Enqueue a bus event (delivered after the current call returns).
    fn fire(&self, name: &str, payload: &[u8]);
    /// Run `work` where blocking is allowed; `work` must not unwind.
    fn run_blocking(&self, work: &mut dyn FnMut());
}

/// The module's view of the host: every service goes through it. Its typed calls are those of
/// [`crate::HostCalls`], as inherent methods.
#[derive(Clone)]
pub struct Host {
    backend: Arc<dyn Backend>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

impl HostTransport for Host {
    fn call_raw(&self, kind: u32, payload: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        self.backend.call(kind, &payload)
    }
}

impl Host {
    /// A host running on `backend`.
    pub fn on(backend: Arc<dyn Backend>) -> Self {
        Self { backend }
    }

    /// Log through the host's `tracing`, tagged with the module's name. Never log secrets.
    pub fn log(&self, level: LogLevel, message: &str) {
        self.backend.log(level, message);
    }

    /// Milliseconds since the Unix epoch, from the host's clock.
    pub fn now_ms(&self) -> u64 {
        self.backend.now_ms()
    }

    /// `n` bytes from the host's CSPRNG.
    pub fn random_bytes(&self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        self.backend.random_bytes(&mut buf);
        buf
    }

    /// Count one occurrence on this module's counter `counter` with label `name="value"`
    /// (`/metrics`: `tessera_mod_<module>_<counter>_total{name="value"}`; see
    /// [`crate::HostCalls::count`]). Best effort: a refusal (a bad name, an older host) is
    /// logged at debug level and otherwise ignored, since a metric must never fail a request.
    pub fn count_one(&self, counter: &str, name: &str, value: &str) {
        if let Err(e) = self.count(counter, Some((name, value)), 1) {
            self.log(
                LogLevel::Debug,
                &format!("metric {counter} not counted: {e}"),
            );
        }
    }

    /// Enqueue a bus event; delivered after the current call returns.
    ///
    /// # Errors
    /// Only if the payload cannot be encoded.
    pub fn fire<T: Serialize>(&self, name: &str, payload: &T) -> Result<(), PluginError> {
        self.backend.fire(name, &wire::encode(payload)?);
        Ok(())
    }

    /// Call a synchronous query hook with a typed payload and decode each reply as `A`; a reply
    /// that is not an `A` (a module answering another contract) is logged and skipped, so one
    /// bad module does not silence the others.
    ///
    /// # Errors
    /// Host failure.
    pub fn call_hook_as<P: Serialize, A: DeserializeOwned>(
        &self,
        name: &str,
        payload: &P,
    ) -> Result<Vec<A>, PluginError> {
        let replies = self.call_hook(name, wire::Bytes::new(&wire::encode(payload)?))?;
        Ok(replies
            .iter()
            .filter_map(|reply| match wire::decode(name, reply) {
                Ok(a) => Some(a),
                Err(e) => {
                    self.log(
                        LogLevel::Warn,
                        &format!("reply to hook {name} skipped: {e}"),
                    );
                    None
                }
            })
            .collect())
    }

    /// Run slow, blocking work — a password hash, a call to an external service — without
    /// holding up other connections, and return its result. Everything else a module does runs
    /// on the host's I/O threads and must take microseconds, not milliseconds.
    /// `work` runs on the calling thread; a panic in it resumes in the caller.
    pub fn blocking<R>(&self, work: impl FnOnce() -> R) -> R {
        let mut work = Some(work);
        let mut outcome = None;
        self.backend.run_blocking(&mut || {
            if let Some(work) = work.take() {
                outcome = Some(catch_unwind(AssertUnwindSafe(work)));
            }
        });
        match outcome {
            Some(Ok(output)) => output,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            // A backend that did not run the work (it must): run it here.
            None => match work.take() {
                Some(work) => work(),
                None => unreachable!("the work ran or is still here"),
            },
        }
    }
}

/// A module's options: the host validated types and bounds and filled in defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    values: Vec<(String, OptionValue)>,
}

impl Config {
    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<&OptionValue> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// An integer option.
    ///
    /// # Errors
    /// Missing or not an integer (names the key).
    pub fn integer(&self, key: &str) -> Result<i64, PluginError> {
        match self.get(key) {
            Some(OptionValue::Integer(n)) => Ok(*n),
            _ => Err(PluginError::config(format!(
                "option `{key}` must be an integer"
            ))),
        }
    }

    /// A boolean option.
    ///
    /// # Errors
    /// Missing or not a boolean (names the key).
    pub fn boolean(&self, key: &str) -> Result<bool, PluginError> {
        match self.get(key) {
            Some(OptionValue::Bool(b)) => Ok(*b),
            _ => Err(PluginError::config(format!(
                "option `{key}` must be true or false"
            ))),
        }
    }

    /// A string option, if set.
    pub fn string(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(OptionValue::String(s)) => Some(s),
            _ => None,
        }
    }

    /// A list-of-strings option, if set.
    pub fn string_list(&self, key: &str) -> Option<&[String]> {
        match self.get(key) {
            Some(OptionValue::StringList(l)) => Some(l),
            _ => None,
        }
    }

    /// Add or replace a value (the host building a config; tests).
    pub fn set(&mut self, key: &str, value: OptionValue) {
        match self.values.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.values.push((key.to_owned(), value)),
        }
    }

    /// Every key and value, in the order they were set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &OptionValue)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }
}

thread_local! {
    static PANIC_LOCATION: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Replace this plugin's panic hook (each cdylib has its own copy of std, hence its own hook):
/// instead of printing to the server's stderr, remember where the panic happened so that
/// [`guard`] reports it to the host, which logs it with the plugin's name.
pub(crate) fn install_panic_hook() {
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
///
/// # Errors
/// `f`'s error, or the panic as an error.
pub fn guard<T>(f: impl FnOnce() -> Result<T, PluginError>) -> Result<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let mut message = panic_message(panic.as_ref());
            if let Some(at) = PANIC_LOCATION.with(|slot| slot.borrow_mut().take()) {
                message.push_str(&format!(" (at {at})"));
            }
            Err(PluginError::new(PluginErrorKind::PANICKED, message))
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

/// A [`Module`] with its [`Host`]: the callee of [`ModuleCalls`], for the ABI glue and for
/// a test host alike.
#[derive(Debug)]
pub struct Instance<M: Module> {
    /// The module.
    pub module: M,
    /// Its host.
    pub host: Host,
}

impl<M: Module> Instance<M> {
    /// Deliver an event.
    ///
    /// # Errors
    /// The module's error.
    pub fn event(&self, name: &str, payload: &[u8]) -> Result<EventFlow, PluginError> {
        self.module.on_event(&self.host, &Event { name, payload })
    }
}

impl<M: Module> ModuleCalls for Instance<M> {
    fn registrations(&self) -> Result<Registrations, PluginError> {
        Ok(self.module.registrations())
    }
    fn stream_features(&self, stream: StreamInfo) -> Result<Vec<Element>, PluginError> {
        self.module.stream_features(&self.host, &stream)
    }
    fn stream_element(&self, request: StreamElement) -> Result<Vec<StreamAction>, PluginError> {
        self.module.stream_element(&self.host, request)
    }
    fn iq(&self, request: IqRequest) -> Result<Option<Element>, PluginError> {
        self.module.iq(&self.host, request)
    }
    fn mechanism_start(&self, start: MechanismStart) -> Result<MechanismStep, PluginError> {
        self.module.mechanism_start(&self.host, start)
    }
    fn mechanism_step(&self, response: MechanismResponse) -> Result<MechanismStep, PluginError> {
        self.module.mechanism_step(&self.host, response)
    }
    fn mechanism_end(&self, exchange: u64) -> Result<(), PluginError> {
        self.module.mechanism_end(&self.host, exchange);
        Ok(())
    }
    fn http(&self, request: HttpRequest) -> Result<HttpResponse, PluginError> {
        self.module.http(&self.host, request)
    }
    fn hook(&self, name: &str, payload: &wire::Bytes) -> Result<Option<Vec<u8>>, PluginError> {
        self.module.hook(&self.host, name, payload)
    }
    fn timer(&self, timer: TimerFired) -> Result<(), PluginError> {
        self.module.timer(&self.host, timer)
    }
    fn stanza(&self, header: StanzaHeader<'_>, body: &wire::Bytes) -> Result<Verdict, PluginError> {
        self.module.stanza(&self.host, Stanza::new(&header, body))
    }
}

/// The first `n` non-empty lines of a (possibly very long) text, e.g. an abi_stable error.
pub fn first_lines(text: &str, n: usize) -> String {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .collect::<Vec<_>>()
        .join("\n")
}
