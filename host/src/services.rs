//! The host services table plugins call (`HostServices`), handed to each plugin as a
//! `&'static LibHeader` that the plugin layout-checks itself (consumer-checked interfaces, see
//! docs/plugin-abi.md §4), and the dispatcher behind its `call` entry.
//!
//! Every `extern "C"` body here catches panics: a panic crossing the boundary would abort.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

use abi_stable::library::LibHeader;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::{RResult, RSliceMut, RStr, RString};
use serde::Serialize;
use serde_json::Value;
use tessera_plugin_api::abi::{
    BlockingTaskRef, HostServices, HostServicesRef, LogLevel, PluginHandle,
};
use tessera_plugin_api::events::{self, MailResult};
use tessera_plugin_api::protocol::*;
use tessera_plugin_api::sdk::from_wire;
use tessera_plugin_api::{PluginError, PluginErrorKind};

use crate::Shared;

static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();
static HEADER: OnceLock<&'static LibHeader> = OnceLock::new();

/// Make `shared` the state host services act on (once per process).
pub fn install(shared: Arc<Shared>) {
    let _ = SHARED.set(shared);
}

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

fn module_name(handle: PluginHandle) -> String {
    caller(handle)
        .map(|c| c.name)
        .unwrap_or_else(|| format!("plugin#{}", handle.0))
}

extern "C" fn host_log(handle: PluginHandle, level: LogLevel, message: RStr<'_>) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let plugin = module_name(handle);
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

extern "C" fn host_now() -> u64 {
    crate::now_ms()
}

extern "C" fn host_random(mut out: RSliceMut<'_, u8>) {
    crate::secret::random_bytes(out.as_mut_slice());
}

extern "C" fn host_fire(handle: PluginHandle, name: RStr<'_>, payload: RStr<'_>) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if let Some(shared) = SHARED.get() {
            shared.bus.fire_with(name.as_str(), || {
                Some((payload.as_str().to_owned(), Some(module_name(handle))))
            });
        }
    }));
}

extern "C" fn host_run_blocking(_plugin: PluginHandle, mut task: BlockingTaskRef<'_>) {
    // The SDK's task catches its own panics; this guard keeps a host-side one from unwinding
    // into the plugin.
    let _ = catch_unwind(AssertUnwindSafe(|| crate::run_blocking(|| task.run())));
}

extern "C" fn host_call(
    handle: PluginHandle,
    kind: RStr<'_>,
    payload: RStr<'_>,
) -> RResult<RString, PluginError> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let shared = SHARED
            .get()
            .ok_or_else(|| PluginError::host("host not running"))?;
        let caller = caller(handle).ok_or_else(|| PluginError::host("unknown plugin handle"))?;
        let request: HostRequest = from_wire(kind.as_str(), payload.as_str())?;
        let answer = dispatch(shared, &caller, request)?;
        serde_json::to_string(&answer).map_err(|e| PluginError::internal(e.to_string()))
    }));
    if !matches!(result, Ok(Ok(_))) {
        crate::modules::note_failure();
    }
    match result {
        Ok(Ok(s)) => RResult::ROk(RString::from(s)),
        Ok(Err(e)) => RResult::RErr(e),
        Err(_) => RResult::RErr(PluginError::new(
            PluginErrorKind::INTERNAL,
            "host panicked serving the call",
        )),
    }
}

/// Who is calling: every handle is registered with its module name before the plugin is
/// instantiated, so host calls made from `init` work too. Handles are never reused.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Module name (namespace for its store entries and derived secrets).
    pub name: String,
    /// The instance's handle (timers are delivered to this generation only).
    pub handle: PluginHandle,
}

static CALLERS: OnceLock<dashmap::DashMap<u64, String>> = OnceLock::new();

/// Register a handle before instantiating a plugin with it.
pub fn register_handle(handle: PluginHandle, name: &str) {
    CALLERS
        .get_or_init(Default::default)
        .insert(handle.0, name.to_owned());
}

fn caller(handle: PluginHandle) -> Option<Caller> {
    let name = CALLERS.get()?.get(&handle.0)?.clone();
    Some(Caller { name, handle })
}

fn json<T: Serialize>(value: T) -> Result<Value, PluginError> {
    serde_json::to_value(value).map_err(|e| PluginError::internal(e.to_string()))
}

fn store_err(e: crate::store::StoreError) -> PluginError {
    tracing::error!(error = %e, "store failure serving a plugin");
    PluginError::host("store failure")
}

fn prep(user: &str) -> Result<String, PluginError> {
    crate::jid::prep_localpart(user).map_err(|e| PluginError::bad_request(e.to_string()))
}

/// Serve one host request from `module`.
///
/// # Errors
/// Refusals and failures, as [`PluginError`]s the plugin can act on.
pub fn dispatch(
    shared: &Arc<Shared>,
    caller: &Caller,
    request: HostRequest,
) -> Result<Value, PluginError> {
    match request {
        HostRequest::HostInfo => json(HostInfo {
            domain: shared.config.domain.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            public_url: shared.config.http.public_url.clone(),
        }),
        HostRequest::UserExists { user } => {
            let Ok(user) = prep(&user) else {
                return json(false);
            };
            json(
                shared
                    .store
                    .get_account(&user)
                    .map_err(store_err)?
                    .is_some(),
            )
        }
        HostRequest::GetCredentials { user } => {
            let Ok(user) = prep(&user) else {
                return json(Option::<AccountCredentials>::None);
            };
            let rec = shared.store.get_account(&user).map_err(store_err)?;
            json(rec.map(|r| AccountCredentials {
                scram_sha1: r.scram_sha1,
                scram_sha256: r.scram_sha256,
                password_changed_at_ms: r.password_changed_at_ms,
            }))
        }
        HostRequest::SetPassword {
            user,
            password,
            origin_stream,
        } => {
            crate::run_blocking(|| shared.set_password(&user, &password, origin_stream)).map_err(
                |e| match e {
                    crate::accounts::AccountError::Store(s) => store_err(s),
                    other => PluginError::bad_request(other.to_string()),
                },
            )?;
            json(())
        }
        HostRequest::GetEmail { user } => {
            let Ok(user) = prep(&user) else {
                return json(Option::<String>::None);
            };
            json(
                shared
                    .store
                    .get_account(&user)
                    .map_err(store_err)?
                    .and_then(|r| r.email),
            )
        }
        HostRequest::KvGet { scope, key } => json(
            shared
                .store
                .kv_get(&caller.name, &scope, &key)
                .map_err(store_err)?,
        ),
        // Writes may wait for the writer lock or run a WAL checkpoint (an fsync): off the I/O
        // thread. Reads stay on it (microseconds, WAL readers never wait for the writer).
        HostRequest::KvPut { scope, key, value } => json(
            crate::run_blocking(|| shared.store.kv_put(&caller.name, &scope, &key, &value))
                .map_err(store_err)?,
        ),
        HostRequest::KvDelete { scope, key } => json(
            crate::run_blocking(|| shared.store.kv_delete(&caller.name, &scope, &key))
                .map_err(store_err)?,
        ),
        HostRequest::KvList { scope, prefix } => json(
            shared
                .store
                .kv_list(&caller.name, &scope, &prefix)
                .map_err(store_err)?,
        ),
        HostRequest::ListSessions { user } => json(shared.sessions.list(&prep(&user)?)),
        HostRequest::CloseSessions {
            user,
            condition,
            except_stream,
        } => json(
            shared
                .sessions
                .close_user(&prep(&user)?, &condition, except_stream),
        ),
        HostRequest::SendMail(mail) => json(send_mail(shared, caller, mail)),
        HostRequest::SetTimer { delay_ms, tag } => json(set_timer(shared, caller, delay_ms, tag)),
        HostRequest::CallHook(call) => json(call_hook(shared, &call)),
        HostRequest::Mechanisms { stream, profile } => json(mechanisms(shared, &stream, &profile)),
        HostRequest::MechanismStart(start) => mechanism_start(shared, start),
        HostRequest::MechanismStep(step) => {
            let exchange = step.exchange;
            let provider = shared
                .exchanges
                .provider(exchange)
                .ok_or_else(|| PluginError::bad_request("no such exchange"))?;
            let answer = provider.request::<Value>(&Request::MechanismStep(step))?;
            Ok(judge_success(shared, exchange, answer))
        }
        HostRequest::MechanismEnd(id) => {
            if let Some(provider) = shared.exchanges.end(id) {
                let _ = provider.request::<Value>(&Request::MechanismEnd(id));
            }
            json(())
        }
        HostRequest::DeriveSecret { label } => json(
            shared
                .secret
                .derive(&format!("module/{}/{label}", caller.name))
                .to_vec(),
        ),
    }
}

fn mechanism_start(shared: &Arc<Shared>, start: MechanismStart) -> Result<Value, PluginError> {
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
    let replaced =
        shared
            .exchanges
            .begin(exchange, start.stream.id, provider.clone(), crate::now_ms());
    if let Some(old) = replaced {
        let _ = old.request::<Value>(&Request::MechanismEnd(exchange));
    }
    let answer = provider.request::<Value>(&Request::MechanismStart(start))?;
    Ok(judge_success(shared, exchange, answer))
}

/// A mechanism's `Success` counts only if the account, as it is now, still accepts the proof
/// (see [`crate::exchanges`]); otherwise it becomes `<not-authorized/>`. Other steps pass.
fn judge_success(shared: &Shared, exchange: u64, answer: Value) -> Value {
    if answer.get("step").and_then(Value::as_str) != Some("success") {
        return answer;
    }
    let user = answer
        .get("user")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let failure = |condition: &str| {
        serde_json::to_value(MechanismStep::Failure {
            condition: condition.to_owned(),
            text: None,
            user: Some(user.to_owned()),
            application: None,
        })
        .unwrap_or(Value::Null)
    };
    let refuse = |why: &str| {
        tracing::warn!(exchange, user = %user, why, "login refused: the proof no longer counts");
        failure("not-authorized")
    };
    let Some((stream, basis_ms)) = shared.exchanges.basis(exchange) else {
        return refuse("unknown exchange");
    };
    let Ok(prepared) = crate::jid::prep_localpart(user) else {
        return refuse("not an account name");
    };
    let account = match shared.store.get_account(&prepared) {
        Ok(account) => account,
        Err(e) => {
            tracing::error!(error = %e, "store failure checking a login");
            return failure("temporary-auth-failure");
        }
    };
    if let Err(stale) = crate::exchanges::still_valid(account.as_ref(), basis_ms) {
        return refuse(&stale.to_string());
    }
    shared.exchanges.verify(
        stream,
        crate::exchanges::Verified {
            user: prepared,
            basis_ms,
        },
    );
    answer
}

/// Mechanisms offered on a stream for a profile, in offer order. Hidden mechanisms (listed only
/// in a module's own feature, like FAST's) are included for SASL2 and marked `hidden`.
pub fn mechanisms(shared: &Shared, stream: &StreamInfo, profile: &str) -> Vec<MechanismSpec> {
    let sasl2 = profile == "urn:xmpp:sasl:2";
    shared
        .registry
        .routes()
        .mechanisms
        .iter()
        .map(|(spec, _)| spec)
        .filter(|s| stream.secure || !s.tls_only)
        .filter(|s| {
            if sasl2 {
                s.sasl2 || s.hidden
            } else {
                s.legacy && !s.hidden
            }
        })
        .filter(|s| match s.channel_binding.as_deref() {
            Some("tls-exporter") => stream.channel_bindings.tls_exporter.is_some(),
            Some("tls-server-end-point") => stream.channel_bindings.tls_server_end_point.is_some(),
            Some(_) => false,
            None => true,
        })
        .cloned()
        .collect()
}

fn call_hook(shared: &Shared, call: &HookCall) -> Vec<Value> {
    let routes = shared.registry.routes();
    let Some(handlers) = routes.hooks.get(&call.name) else {
        return Vec::new();
    };
    handlers
        .iter()
        .filter_map(|(_, m)| {
            m.request::<Option<Value>>(&Request::Hook(call.clone()))
                .ok()
                .flatten()
        })
        .collect()
}

fn send_mail(shared: &Arc<Shared>, caller: &Caller, mail: Mail) -> u64 {
    let op_id = shared.next_id();
    let shared2 = shared.clone();
    let plugin = caller.name.clone();
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

fn set_timer(shared: &Arc<Shared>, caller: &Caller, delay_ms: u64, tag: String) -> u64 {
    let id = shared.next_id();
    let handle = caller.handle;
    let shared2 = shared.clone();
    shared.runtime.spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        // Timers belong to the generation that set them: a replaced module gets no callback.
        if let Some(m) = shared2.registry.by_handle(handle) {
            let _ = tokio::task::spawn_blocking(move || {
                m.request::<Value>(&Request::Timer(TimerFired { id, tag }))
            })
            .await;
        }
    });
    id
}
