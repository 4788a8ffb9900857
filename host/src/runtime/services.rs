//! The host services table plugins call (`HostServices`), handed to each plugin as a
//! `&'static LibHeader` that the plugin layout-checks itself (consumer-checked interfaces, see
//! docs/plugin-abi.md §4), and the host's side of every [`HostCalls`] call.
//!
//! Each plugin instance gets a [`HostCtx`]: a pointer to its [`PluginContext`] (its name, its
//! generation and the server state), which the plugin passes back on every call. No global
//! lookup decides who is calling or what server it belongs to.
//!
//! Every `extern "C"` body here catches panics: a panic crossing the boundary would abort.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock, Weak};

use abi_stable::library::LibHeader;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::{RResult, RSlice, RSliceMut, RStr, RVec};
use tessera_plugin_api::abi::{
    AbiError, BlockingTaskRef, HostCtx, HostServices, HostServicesRef, LogLevel,
};
use tessera_plugin_api::acks::{AckOutcome, AckSettings, AckStatus};
use tessera_plugin_api::calls::dispatch_host_call;
use tessera_plugin_api::events::{self, MailResult};
use tessera_plugin_api::protocol::*;
use tessera_plugin_api::stanza::SessionView;
use tessera_plugin_api::wire::Bytes;
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{HostCalls, ModuleCalls, PluginError, PluginErrorKind};
use tessera_plugin_api::{SaslCondition, StreamCondition};

use crate::runtime::effects::{self, Effect};
use crate::Shared;

static HEADER: OnceLock<&'static LibHeader> = OnceLock::new();

/// The header handed to plugins at instantiation.
pub fn header() -> &'static LibHeader {
    HEADER.get_or_init(|| {
        let services: HostServicesRef = HostServices {
            log: host_log,
            now_unix_ms: host_now,
            random_bytes: host_random,
            fire: host_fire,
            call: host_call,
            run_blocking: host_run_blocking,
        }
        .leak_into_prefix();
        Box::leak(Box::new(LibHeader::from_module(services)))
    })
}

/// What one plugin instance's host calls act for.
#[derive(Debug)]
pub struct PluginContext {
    /// Module name (namespace for its store entries and derived secrets).
    pub name: String,
    /// The instance's generation id (timers are delivered to this generation only).
    pub handle: u64,
    /// The server its calls act on (none: a module loaded outside a server, by a benchmark or
    /// a fuzz target). Weak: a leaked context must not keep a stopped server alive.
    shared: Weak<Shared>,
}

impl PluginContext {
    /// A context bound to no server: every call decodes its arguments, then fails with "host
    /// not running" (a fuzz target drives the host's side of the ABI through it).
    pub fn detached(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            handle: 0,
            shared: Weak::new(),
        }
    }

    fn shared(&self) -> Result<Arc<Shared>, PluginError> {
        self.shared
            .upgrade()
            .ok_or_else(|| PluginError::host("host not running"))
    }
}

/// A context for a new instance of `name`. It is leaked on purpose: the plugin may hold the
/// pointer for as long as its code stays mapped, which is the rest of the process (libraries
/// are never unloaded), so the context lives as long; it costs a few dozen bytes per load.
pub fn context(shared: Option<&Arc<Shared>>, name: &str, handle: u64) -> HostCtx {
    let ctx: &'static PluginContext = Box::leak(Box::new(PluginContext {
        name: name.to_owned(),
        handle,
        shared: shared.map_or_else(Weak::new, Arc::downgrade),
    }));
    HostCtx(std::ptr::from_ref(ctx).cast())
}

/// The context behind a pointer the host handed out (`None` for null).
fn context_of(ctx: HostCtx) -> Option<&'static PluginContext> {
    // SAFETY: every non-null `HostCtx` a plugin holds was made by `context`, which leaks a
    // `PluginContext` that is never mutated or freed, so the pointer is aligned and points to
    // a live, immutable value for the rest of the process. (A plugin is trusted native code: one
    // that forges a pointer can corrupt the process whatever this function does.)
    #[allow(unsafe_code)]
    unsafe {
        ctx.0.cast::<PluginContext>().as_ref()
    }
}

fn module_name(ctx: HostCtx) -> &'static str {
    context_of(ctx).map_or("plugin(unknown)", |c| c.name.as_str())
}

extern "C" fn host_log(ctx: HostCtx, level: LogLevel, message: RStr<'_>) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let plugin = module_name(ctx);
        let message = message.as_str();
        match level {
            LogLevel::Trace => tracing::trace!(%plugin, "{message}"),
            LogLevel::Debug => tracing::debug!(%plugin, "{message}"),
            LogLevel::Info => tracing::info!(%plugin, "{message}"),
            LogLevel::Warn => tracing::warn!(%plugin, "{message}"),
            LogLevel::Error => tracing::error!(%plugin, "{message}"),
        }
    }));
}

extern "C" fn host_now(_ctx: HostCtx) -> u64 {
    catch_unwind(crate::now_ms).unwrap_or(0)
}

extern "C" fn host_random(_ctx: HostCtx, mut out: RSliceMut<'_, u8>) {
    let filled = catch_unwind(AssertUnwindSafe(|| {
        crate::secret::random_bytes(out.as_mut_slice());
    }));
    if filled.is_err() {
        // No bytes a module could mistake for random ones (its tokens and keys): stop.
        tracing::error!("the operating system's random number generator failed; stopping");
        std::process::abort();
    }
}

extern "C" fn host_fire(ctx: HostCtx, name: RStr<'_>, payload: RSlice<'_, u8>) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if let Some((c, shared)) = context_of(ctx).and_then(|c| Some((c, c.shared.upgrade()?))) {
            shared.metrics.event(name.as_str());
            shared.bus.fire_with(name.as_str(), || {
                Some((payload.as_slice().to_vec(), Some(c.name.clone())))
            });
        }
    }));
}

extern "C" fn host_run_blocking(_ctx: HostCtx, mut task: BlockingTaskRef<'_>) {
    // The SDK's task catches its own panics; this guard keeps a host-side one from unwinding
    // into the plugin.
    let _ = catch_unwind(AssertUnwindSafe(|| crate::run_blocking(|| task.run())));
}

extern "C" fn host_call(
    ctx: HostCtx,
    kind: u32,
    payload: RSlice<'_, u8>,
) -> RResult<RVec<u8>, AbiError> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let caller = context_of(ctx).ok_or_else(|| PluginError::host("no plugin context"))?;
        dispatch_host_call(caller, kind, payload.as_slice())
    }));
    // A call this host does not know is a newer plugin asking politely, not a failure.
    if !matches!(&result, Ok(Ok(_))) && !matches!(&result, Ok(Err(e)) if e.is_unsupported()) {
        crate::runtime::modules::note_failure();
    }
    match result {
        Ok(Ok(answer)) => RResult::ROk(RVec::from(answer)),
        Ok(Err(e)) => RResult::RErr(e.into()),
        Err(_) => RResult::RErr(
            PluginError::new(PluginErrorKind::INTERNAL, "host panicked serving the call").into(),
        ),
    }
}

fn store_err(e: crate::store::StoreError) -> PluginError {
    if let crate::store::StoreError::UnknownId(id) = &e {
        return PluginError::new(PluginErrorKind::NOT_FOUND, format!("no archive entry {id}"));
    }
    tracing::error!(error = %e, "store failure serving a plugin");
    PluginError::host("store failure")
}

/// The longest a session is kept without a connection (`session_keep`, `acks_enable`): one
/// day (Prosody's `smacks_max_hibernation_time` has no upper bound; XEP-0198 servers use
/// minutes).
pub use crate::sessions::MAX_KEEP_MS;

/// An account operation's failure as the module sees it: the kind says what to answer
/// (conflict, not found, refused input), the message says why (no secret in it).
fn account_err(e: crate::accounts::AccountError) -> PluginError {
    use crate::accounts::AccountError;
    match e {
        AccountError::Store(crate::store::StoreError::AccountExists(user)) => PluginError::new(
            PluginErrorKind::CONFLICT,
            format!("account `{user}` exists"),
        ),
        AccountError::NotFound(user) => {
            PluginError::new(PluginErrorKind::NOT_FOUND, format!("no account `{user}`"))
        }
        AccountError::Store(s) => store_err(s),
        other => PluginError::bad_request(other.to_string()),
    }
}

/// An entry to append, under a new id.
fn new_archive_item(with: &str, at_ms: u64, data: &[u8]) -> ArchiveItem {
    ArchiveItem {
        id: archive_id(crate::now_ms()),
        with: with.to_owned(),
        at_ms,
        data: data.to_vec(),
    }
}

/// A new archive id: a UUIDv7 (RFC 9562 §5.7): 48 bits of milliseconds, then random bits, so
/// ids are unique without coordination and roughly time-ordered (the store orders entries by
/// append, not by id).
pub fn archive_id(now_ms: u64) -> String {
    let mut b = [0u8; 16];
    crate::secret::random_bytes(&mut b);
    b[..6].copy_from_slice(&now_ms.to_be_bytes()[2..]);
    b[6] = 0x70 | (b[6] & 0x0f);
    b[8] = 0x80 | (b[8] & 0x3f);
    let hex = crate::secret::hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn prep(user: &str) -> Result<String, PluginError> {
    crate::jid::prep_localpart(user).map_err(|e| PluginError::bad_request(e.to_string()))
}

/// The host's side of every call a plugin makes, for the plugin this context belongs to.
impl HostCalls for PluginContext {
    fn host_info(&self) -> Result<HostInfo, PluginError> {
        let shared = self.shared()?;
        Ok(HostInfo {
            domain: shared.config.domain.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            public_url: shared.config.http.public_url.clone(),
            scram_iterations: shared.config.scram_iterations,
        })
    }

    fn user_exists(&self, user: &str) -> Result<bool, PluginError> {
        let shared = self.shared()?;
        let Ok(user) = prep(user) else {
            return Ok(false);
        };
        Ok(shared
            .store
            .get_account(&user)
            .map_err(store_err)?
            .is_some())
    }

    fn get_credentials(&self, user: &str) -> Result<Option<AccountCredentials>, PluginError> {
        let shared = self.shared()?;
        let Ok(user) = prep(user) else {
            return Ok(None);
        };
        let rec = shared.store.get_account(&user).map_err(store_err)?;
        Ok(rec.map(|r| AccountCredentials {
            scram_sha1: r.scram_sha1,
            scram_sha256: r.scram_sha256,
            password_changed_at_ms: r.password_changed_at_ms,
            scram_sha512: r.scram_sha512,
        }))
    }

    fn set_password(
        &self,
        user: &str,
        password: &str,
        origin_stream: Option<u64>,
    ) -> Result<(), PluginError> {
        let shared = self.shared()?;
        crate::run_blocking(|| shared.set_password(user, password, origin_stream))
            .map_err(account_err)
    }

    fn get_email(&self, user: &str) -> Result<Option<String>, PluginError> {
        let shared = self.shared()?;
        let Ok(user) = prep(user) else {
            return Ok(None);
        };
        Ok(shared
            .store
            .get_account(&user)
            .map_err(store_err)?
            .and_then(|r| r.email))
    }

    fn kv_get(&self, scope: KvScope<'_>, key: &str) -> Result<Option<String>, PluginError> {
        self.shared()?
            .store
            .kv_get(&self.name, &scope, key)
            .map_err(store_err)
    }

    // Writes may wait for the writer lock or run a WAL checkpoint (an fsync): off the I/O
    // thread. Reads stay on it (microseconds, WAL readers never wait for the writer).
    fn kv_put(&self, scope: KvScope<'_>, key: &str, value: &str) -> Result<(), PluginError> {
        let shared = self.shared()?;
        crate::run_blocking(|| shared.store.kv_put(&self.name, &scope, key, value))
            .map_err(store_err)
    }

    fn kv_write(&self, scope: KvScope<'_>, writes: Vec<KvWrite>) -> Result<(), PluginError> {
        let shared = self.shared()?;
        crate::run_blocking(|| shared.store.kv_write(&self.name, &scope, &writes))
            .map_err(store_err)
    }

    fn add_scram_verifier(
        &self,
        stream: u64,
        upgrade: ScramUpgrade,
    ) -> Result<VerifierAdded, PluginError> {
        use crate::store::VerifierWrite;
        let shared = self.shared()?;
        let refused = |why| Ok(VerifierAdded::Refused(why));
        // The host's own record of the login, not the module's word: which account, since
        // when, and by what kind of proof.
        let verified = shared.exchanges.verified(stream);
        let Some(verified) = verified.filter(|v| v.kind == CredentialKind::Password) else {
            return refused(UpgradeRefusal::NotPasswordVerified);
        };
        let secret = match crate::accounts::upgrade_secret(&upgrade) {
            Ok(secret) => secret,
            Err(why) => return refused(UpgradeRefusal::Malformed(why)),
        };
        let write = crate::run_blocking(|| {
            shared
                .store
                .add_sha512_verifier(&verified.user, &secret, verified.basis_ms)
        })
        .map_err(store_err)?;
        Ok(match write {
            VerifierWrite::Added => {
                tracing::info!(user = %verified.user, module = %self.name, "SCRAM-SHA-512 verifier added by a client's upgrade");
                VerifierAdded::Stored
            }
            VerifierWrite::Present => VerifierAdded::AlreadyPresent,
            VerifierWrite::Stale => VerifierAdded::Refused(UpgradeRefusal::Stale),
        })
    }

    fn kv_delete(&self, scope: KvScope<'_>, key: &str) -> Result<bool, PluginError> {
        let shared = self.shared()?;
        crate::run_blocking(|| shared.store.kv_delete(&self.name, &scope, key)).map_err(store_err)
    }

    fn kv_list(
        &self,
        scope: KvScope<'_>,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, PluginError> {
        self.shared()?
            .store
            .kv_list(&self.name, &scope, prefix)
            .map_err(store_err)
    }

    fn list_sessions(&self, user: &str) -> Result<Vec<SessionInfo>, PluginError> {
        Ok(self.shared()?.sessions.list(&prep(user)?))
    }

    fn close_sessions(
        &self,
        user: &str,
        condition: StreamCondition,
        except_stream: Option<u64>,
    ) -> Result<u64, PluginError> {
        Ok(self
            .shared()?
            .sessions
            .close_user(&prep(user)?, condition, except_stream))
    }

    fn send_mail(&self, mail: Mail) -> Result<u64, PluginError> {
        Ok(send_mail(&self.shared()?, &self.name, mail))
    }

    fn set_timer(&self, delay_ms: u64, tag: &str) -> Result<u64, PluginError> {
        Ok(set_timer(
            &self.shared()?,
            self.handle,
            delay_ms,
            tag.to_owned(),
        ))
    }

    fn call_hook(&self, name: &str, payload: &Bytes) -> Result<Vec<Vec<u8>>, PluginError> {
        Ok(call_hook(&*self.shared()?, name, payload))
    }

    fn mechanisms(
        &self,
        stream: StreamInfo,
        profile: SaslProfile,
    ) -> Result<Vec<MechanismSpec>, PluginError> {
        Ok(mechanisms(&*self.shared()?, &stream, profile))
    }

    fn mechanism_start(&self, start: MechanismStart) -> Result<MechanismStep, PluginError> {
        mechanism_start(&self.shared()?, start)
    }

    fn mechanism_step(&self, response: MechanismResponse) -> Result<MechanismStep, PluginError> {
        let exchange = response.exchange;
        let shared = self.shared()?;
        let (provider, mechanism) = shared
            .exchanges
            .provider_and_mechanism(exchange)
            .ok_or_else(|| PluginError::bad_request("no such exchange"))?;
        let answer = provider.mechanism_step(response)?;
        let answer = judge_success(&shared, exchange, answer);
        count_outcome(&shared, &mechanism, &answer);
        Ok(answer)
    }

    fn mechanism_end(&self, exchange: u64) -> Result<(), PluginError> {
        if let Some(provider) = self.shared()?.exchanges.end(exchange) {
            let _ = provider.mechanism_end(exchange);
        }
        Ok(())
    }

    fn route(&self, stanza: Element) -> Result<(), PluginError> {
        let shared = self.shared()?;
        crate::router::check_module_stanza(&shared, &stanza)?;
        effects::defer(shared, Effect::Route(stanza));
        Ok(())
    }

    fn send_to_session(&self, stream: u64, stanza: Element) -> Result<bool, PluginError> {
        let shared = self.shared()?;
        let Some(target) = shared.sessions.by_stream_or_ending(stream) else {
            return Ok(false);
        };
        effects::defer(shared, Effect::SendToSession { target, stanza });
        Ok(true)
    }

    fn session_get(&self, stream: u64, key: &str) -> Result<Option<Vec<u8>>, PluginError> {
        let shared = self.shared()?;
        Ok(shared
            .sessions
            .by_stream(stream)
            .and_then(|s| s.state_get(&self.name, key)))
    }

    fn session_set(
        &self,
        stream: u64,
        key: &str,
        value: Option<&Bytes>,
    ) -> Result<bool, PluginError> {
        let shared = self.shared()?;
        let Some(session) = shared.sessions.by_stream(stream) else {
            return Ok(false);
        };
        session.state_set(&self.name, key, value.map(|v| v.to_vec()));
        Ok(true)
    }

    fn session_attach(&self, stream: u64, attached: bool) -> Result<bool, PluginError> {
        let shared = self.shared()?;
        let Some(session) = shared.sessions.by_stream(stream) else {
            return Ok(false);
        };
        session.attach(&self.name, attached);
        Ok(true)
    }

    fn account_sessions(&self, user: &str) -> Result<Vec<SessionView>, PluginError> {
        let shared = self.shared()?;
        Ok(shared
            .sessions
            .of_user(&prep(user)?)
            .iter()
            .map(|s| s.view())
            .collect())
    }

    fn disco_info(&self) -> Result<DiscoInfo, PluginError> {
        let shared = self.shared()?;
        Ok(crate::router::disco_info(&shared.registry.routes()))
    }

    fn archive_append(
        &self,
        archive: &str,
        user: &str,
        with: &str,
        at_ms: u64,
        data: &Bytes,
    ) -> Result<String, PluginError> {
        let shared = self.shared()?;
        let item = new_archive_item(with, at_ms, data);
        let user = prep(user)?;
        crate::run_blocking(|| {
            shared
                .store
                .archive_append(&self.name, archive, &user, &item)
        })
        .map_err(store_err)?;
        Ok(item.id)
    }

    fn archive_append_within(
        &self,
        archive: &str,
        user: &str,
        with: &str,
        at_ms: u64,
        data: &Bytes,
        bounds: ArchiveBounds,
    ) -> Result<ArchiveAppend, PluginError> {
        let shared = self.shared()?;
        let item = new_archive_item(with, at_ms, data);
        let user = prep(user)?;
        let crossed = crate::run_blocking(|| {
            shared
                .store
                .archive_append_within(&self.name, archive, &user, &item, &bounds)
        })
        .map_err(store_err)?;
        Ok(match crossed {
            Some(bound) => ArchiveAppend::Full(bound),
            None => ArchiveAppend::Appended(item.id),
        })
    }

    fn archive_query(
        &self,
        archive: &str,
        user: &str,
        query: ArchiveQuery,
    ) -> Result<ArchivePage, PluginError> {
        let shared = self.shared()?;
        let user = prep(user)?;
        // Off the I/O thread: it waits for queued appends first.
        crate::run_blocking(|| {
            shared
                .store
                .archive_query(&self.name, archive, &user, &query)
        })
        .map_err(store_err)
    }

    fn archive_delete(
        &self,
        archive: &str,
        user: &str,
        before_ms: Option<u64>,
    ) -> Result<u64, PluginError> {
        let shared = self.shared()?;
        let user = prep(user)?;
        crate::run_blocking(|| {
            shared
                .store
                .archive_delete(&self.name, archive, &user, before_ms)
        })
        .map_err(store_err)
    }

    fn archive_take(
        &self,
        archive: &str,
        user: &str,
        limit: u32,
    ) -> Result<Vec<ArchiveItem>, PluginError> {
        let shared = self.shared()?;
        let user = prep(user)?;
        crate::run_blocking(|| shared.store.archive_take(&self.name, archive, &user, limit))
            .map_err(store_err)
    }

    fn archive_count(&self, archive: &str, user: &str) -> Result<u64, PluginError> {
        let shared = self.shared()?;
        let user = prep(user)?;
        crate::run_blocking(|| shared.store.archive_count(&self.name, archive, &user))
            .map_err(store_err)
    }

    fn create_account(
        &self,
        user: &str,
        password: &str,
        email: Option<&str>,
    ) -> Result<String, PluginError> {
        let shared = self.shared()?;
        crate::run_blocking(|| {
            crate::accounts::create(
                shared.store.as_ref(),
                crate::accounts::NewAccount {
                    user,
                    password,
                    email,
                    iterations: shared.config.scram_iterations,
                },
                crate::now_ms(),
            )
        })
        .map_err(account_err)
    }

    fn delete_account(&self, user: &str) -> Result<(), PluginError> {
        let shared = self.shared()?;
        crate::run_blocking(|| shared.delete_user(user)).map_err(account_err)
    }

    fn session_presence(&self, stream: u64, priority: Option<i8>) -> Result<bool, PluginError> {
        let shared = self.shared()?;
        let Some(session) = shared.sessions.by_stream(stream) else {
            return Ok(false);
        };
        crate::sessions::Sessions::set_presence(&session, priority);
        Ok(true)
    }

    fn session_keep(&self, stream: u64, keep_ms: Option<u64>) -> Result<bool, PluginError> {
        let shared = self.shared()?;
        let Some(session) = shared.sessions.by_stream(stream) else {
            return Ok(false);
        };
        // Bounded, so a module (or a bug in one) cannot pin sessions for ever.
        session.keep(keep_ms.unwrap_or(0).min(MAX_KEEP_MS));
        Ok(true)
    }

    fn close_session(&self, stream: u64, condition: StreamCondition) -> Result<bool, PluginError> {
        let shared = self.shared()?;
        let Some(session) = shared.sessions.by_stream(stream) else {
            return Ok(false);
        };
        session.request_close(condition, None);
        Ok(true)
    }

    fn acks_enable(&self, stream: u64, settings: AckSettings) -> Result<bool, PluginError> {
        let shared = self.shared()?;
        if settings.ns.is_empty() || settings.max_queue == 0 {
            return Err(PluginError::bad_request(
                "an acknowledgement queue needs a namespace and room for a stanza",
            ));
        }
        match shared.sessions.by_stream(stream) {
            // Bound: on from now (the module's answer is written before anything else).
            Some(session) if session.is_bound() => {
                Ok(session.enable_acks(settings, shared.config.c2s.max_send_buffer))
            }
            Some(_) => Ok(false),
            // Being bound in this very call (Bind 2): on when the resource is bound.
            None => Ok(shared.exchanges.acks_on_bind(stream, settings)),
        }
    }

    fn acks_status(&self, stream: u64) -> Result<Option<AckStatus>, PluginError> {
        let shared = self.shared()?;
        Ok(shared
            .sessions
            .by_stream(stream)
            .and_then(|s| s.acks_status()))
    }

    fn acks_ack(&self, stream: u64, h: u32) -> Result<AckOutcome, PluginError> {
        let shared = self.shared()?;
        let Some(session) = shared.sessions.by_stream(stream) else {
            return Ok(AckOutcome::NotEnabled);
        };
        let (outcome, released) = session.acknowledge(h);
        shared.delivery.written(released);
        Ok(outcome)
    }

    fn count(
        &self,
        counter: &str,
        label: Option<(&str, &str)>,
        by: u64,
    ) -> Result<(), PluginError> {
        self.shared()?
            .metrics
            .module_count(&self.name, counter, label, by)
            .map_err(|e| PluginError::bad_request(e.to_string()))
    }

    fn derive_secret(&self, label: &str) -> Result<Vec<u8>, PluginError> {
        Ok(self
            .shared()?
            .secret
            .derive(&format!("module/{}/{label}", self.name))
            .to_vec())
    }
}

fn mechanism_start(
    shared: &Arc<Shared>,
    start: MechanismStart,
) -> Result<MechanismStep, PluginError> {
    let routes = shared.registry.routes();
    let provider = routes
        .mechanisms
        .iter()
        .find(|(spec, _)| spec.name == start.mechanism)
        .map(|(_, m)| m.clone())
        .ok_or_else(|| {
            PluginError::bad_request(format!("no module provides {}", start.mechanism))
        })?;
    let exchange = start.exchange;
    // Pin the exchange to this generation; a swap mid-exchange does not move it. The basis is
    // taken before the mechanism loads any credential.
    let basis = crate::runtime::exchanges::Basis {
        stream: start.stream.id,
        basis_ms: crate::now_ms(),
        kind: CredentialKind::of(&start.mechanism),
    };
    let replaced = shared
        .exchanges
        .begin(exchange, provider.clone(), basis, &start.mechanism);
    let mechanism = start.mechanism.clone();
    if let Some(old) = replaced {
        let _ = old.mechanism_end(exchange);
    }
    let answer = provider.mechanism_start(start)?;
    // A reload may have handed the call to a successor while it waited: the exchange is where
    // it was served.
    let served = provider.served_last();
    if !Arc::ptr_eq(&served, &provider) {
        shared.exchanges.repin(exchange, served);
    }
    let answer = judge_success(shared, exchange, answer);
    count_outcome(shared, &mechanism, &answer);
    Ok(answer)
}

/// A decided exchange, for `/metrics` (`tessera_logins_total`).
fn count_outcome(shared: &Shared, mechanism: &str, answer: &MechanismStep) {
    match answer {
        MechanismStep::Success { .. } => shared.metrics.login(mechanism, "success"),
        MechanismStep::Failure { condition, .. } => {
            shared.metrics.login(mechanism, condition.as_str());
        }
        _ => {}
    }
}

/// A mechanism's `Success` counts only if the account, as it is now, still accepts the proof
/// (see [`crate::runtime::exchanges`]); otherwise it becomes `<not-authorized/>`. Other steps pass.
fn judge_success(shared: &Shared, exchange: u64, answer: MechanismStep) -> MechanismStep {
    let MechanismStep::Success { user, .. } = &answer else {
        return answer;
    };
    let failure = |condition| MechanismStep::Failure {
        condition,
        text: None,
        user: Some(user.clone()),
        application: None,
    };
    let refuse = |why: &str| {
        tracing::warn!(exchange, user = %user, why, "login refused: the proof no longer counts");
        failure(SaslCondition::NotAuthorized)
    };
    let Some(basis) = shared.exchanges.basis(exchange) else {
        return refuse("unknown exchange");
    };
    let Ok(prepared) = crate::jid::prep_localpart(user) else {
        return refuse("not an account name");
    };
    let account = match shared.store.get_account(&prepared) {
        Ok(account) => account,
        Err(e) => {
            tracing::error!(error = %e, "store failure checking a login");
            return failure(SaslCondition::TemporaryAuthFailure);
        }
    };
    if let Err(stale) = crate::runtime::exchanges::still_valid(account.as_ref(), basis.basis_ms) {
        return refuse(&stale.to_string());
    }
    shared.exchanges.verify(
        basis.stream,
        crate::runtime::exchanges::Verified {
            user: prepared,
            basis_ms: basis.basis_ms,
            kind: basis.kind,
            acks_on_bind: None,
        },
    );
    answer
}

/// Mechanisms offered on a stream for a profile, in offer order. Hidden mechanisms (listed only
/// in a module's own feature, like FAST's) are included for SASL2 and marked `hidden`.
pub fn mechanisms(
    shared: &Shared,
    stream: &StreamInfo,
    profile: SaslProfile,
) -> Vec<MechanismSpec> {
    shared
        .registry
        .routes()
        .mechanisms
        .iter()
        .map(|(spec, _)| spec)
        .filter(|s| s.offered_on(stream, profile))
        .cloned()
        .collect()
}

/// Call a query hook on every module that registered it (for modules, and for the host's own
/// hooks such as `account-deleting`); failing modules contribute nothing.
pub fn call_hook(shared: &Shared, name: &str, payload: &Bytes) -> Vec<Vec<u8>> {
    let routes = shared.registry.routes();
    let Some(handlers) = routes.hooks.get(name) else {
        return Vec::new();
    };
    handlers
        .iter()
        .filter_map(|(_, m)| m.hook(name, payload).ok().flatten())
        .collect()
}

fn send_mail(shared: &Arc<Shared>, plugin: &str, mail: Mail) -> u64 {
    let op_id = shared.next_id();
    let shared2 = shared.clone();
    let plugin = plugin.to_owned();
    shared.runtime.spawn(async move {
        let result = shared2.mailer.send(&mail).await;
        let (ok, error) = match result {
            Ok(where_) => {
                tracing::info!(%plugin, op_id, delivered = %where_, "mail sent");
                (true, None)
            }
            Err(e) => {
                tracing::warn!(%plugin, op_id, error = %e, "mail failed");
                (false, Some(e.to_string()))
            }
        };
        shared2.fire(events::MAIL_RESULT, &MailResult { op_id, ok, error });
    });
    op_id
}

/// How long a timer of a generation still starting waits for its install.
const STARTING_TIMER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn set_timer(shared: &Arc<Shared>, handle: u64, delay_ms: u64, tag: String) -> u64 {
    let id = shared.next_id();
    let shared2 = shared.clone();
    shared.runtime.spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        // A generation that set timers in `init` may not be installed yet (its reload is
        // still under way): the timer waits for it, a bounded time.
        let started = std::time::Instant::now();
        while shared2.registry.is_starting(handle) && started.elapsed() < STARTING_TIMER_WAIT {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // Timers belong to the generation that set them: a replaced module gets no callback.
        if let Some(m) = shared2.registry.by_handle(handle) {
            let _ = tokio::task::spawn_blocking(move || m.timer(TimerFired { id, tag })).await;
        }
    });
    id
}

// The pointer handed to plugins is used from any thread.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<PluginContext>();
};

#[cfg(test)]
mod tests {
    use tessera_plugin_api::calls::{dispatch_host_call, host_call};
    use tessera_plugin_api::wire;

    use super::*;

    #[test]
    fn a_detached_context_decodes_every_call_and_answers_none() {
        let ctx = PluginContext::detached("test");
        let calls: Vec<(u32, Vec<u8>)> = vec![
            (host_call::host_info, wire::encode(&()).unwrap()),
            // Names no account can have are judged before the store is asked, elsewhere:
            // a detached host must still refuse rather than answer "no".
            (host_call::user_exists, wire::encode(&("",)).unwrap()),
            (host_call::user_exists, wire::encode(&("alice",)).unwrap()),
            (host_call::get_credentials, wire::encode(&("a@b",)).unwrap()),
            (host_call::get_email, wire::encode(&("",)).unwrap()),
            (
                host_call::kv_get,
                wire::encode(&(KvScope::Global, "k")).unwrap(),
            ),
            (host_call::mechanism_end, wire::encode(&(7u64,)).unwrap()),
            (host_call::derive_secret, wire::encode(&("label",)).unwrap()),
        ];
        for (kind, payload) in calls {
            let err = dispatch_host_call(&ctx, kind, &payload).expect_err("detached");
            assert_eq!(err.kind, PluginErrorKind::HOST, "{}", host_call::name(kind));
            assert_eq!(err.message, "host not running");
        }
        let err = dispatch_host_call(&ctx, host_call::user_exists, &[0xff]).unwrap_err();
        assert_eq!(err.kind, PluginErrorKind::BAD_REQUEST, "{err}");
        assert!(dispatch_host_call(&ctx, 9_999, &[])
            .unwrap_err()
            .is_unsupported());
    }
}
