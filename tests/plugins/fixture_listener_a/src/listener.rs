//! The recording bus listener shared by `fixture_listener_a` and `fixture_listener_b`.

use std::sync::atomic::{AtomicU64, Ordering};

use tessera_plugin_api::events::UserPasswordChanged;
use tessera_plugin_api::protocol::{
    HookSpec, HttpRequest, HttpResponse, KvScope, Manifest, Registrations,
};
use tessera_plugin_api::{events, Config, Event, EventFlow, Host, LogLevel, Module, PluginError};

#[path = "ping.rs"]
mod ping;

const KEY_PREFIX: &str = "seen:";

/// What tells the two listeners apart.
pub trait Behaviour: Send + Sync + 'static {
    /// Module name.
    const NAME: &'static str;
    /// HTTP route prefix.
    const ROUTE: &'static str;
    /// Hook priority.
    const PRIORITY: i32;
    /// Whether `value = "stop"` stops propagation.
    const STOPS: bool;
}

/// The module: the counter of the next kv key.
#[derive(Debug)]
pub struct Listener<B> {
    next: AtomicU64,
    behaviour: std::marker::PhantomData<B>,
}

impl<B: Behaviour> Module for Listener<B> {
    const NAME: &'static str = B::NAME;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: format!("Test fixture: records events (priority {})", B::PRIORITY),
            ..Manifest::default()
        }
    }

    fn init(host: &Host, _config: &Config, _restore: Option<&[u8]>) -> Result<Self, PluginError> {
        // Continue after entries left by an earlier run on the same store.
        let existing = host
            .kv_list(KvScope::Global, KEY_PREFIX)
            .unwrap_or_else(|e| {
                host.log(LogLevel::Warn, &format!("cannot list earlier records: {e}"));
                Vec::new()
            });
        let next = existing
            .iter()
            .filter_map(|(k, _)| k.strip_prefix(KEY_PREFIX)?.parse::<u64>().ok())
            .max()
            .map_or(0, |n| n.saturating_add(1));
        Ok(Listener {
            next: AtomicU64::new(next),
            behaviour: std::marker::PhantomData,
        })
    }

    fn registrations(&self) -> Registrations {
        let hook = |name: &str| HookSpec {
            name: name.into(),
            priority: B::PRIORITY,
        };
        Registrations {
            events: vec![hook("fixture-ping"), hook(events::USER_PASSWORD_CHANGED)],
            http_routes: vec![B::ROUTE.into()],
            ..Registrations::default()
        }
    }

    fn on_event(&self, host: &Host, event: &Event<'_>) -> Result<EventFlow, PluginError> {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let (payload, value) = match event.name {
            events::USER_PASSWORD_CHANGED => {
                let e: UserPasswordChanged = event.decode()?;
                let json = serde_json::json!({
                    "user": e.user, "origin_stream": e.origin_stream, "at_ms": e.at_ms,
                });
                (json, None)
            }
            _ => {
                let p: ping::Ping = event.decode()?;
                let json = serde_json::json!({ "value": p.value, "from": p.from });
                (json, p.value)
            }
        };
        let record = serde_json::json!({ "name": event.name, "payload": payload });
        let key = format!("{KEY_PREFIX}{n:020}");
        if let Err(e) = host.kv_put(KvScope::Global, &key, &record.to_string()) {
            host.log(
                LogLevel::Warn,
                &format!("cannot record {}: {e}", event.name),
            );
        }
        let stop = B::STOPS && value.as_deref() == Some("stop");
        Ok(if stop {
            EventFlow::Stop
        } else {
            EventFlow::Continue
        })
    }

    fn http(&self, host: &Host, request: HttpRequest) -> Result<HttpResponse, PluginError> {
        let rest = request.path.strip_prefix(B::ROUTE).unwrap_or(&request.path);
        if (request.method.as_str(), rest) != ("GET", "/seen") {
            return Ok(HttpResponse {
                status: 404,
                ..HttpResponse::default()
            });
        }
        let mut entries = host.kv_list(KvScope::Global, KEY_PREFIX)?;
        entries.sort(); // zero-padded counters: key order is delivery order
        let seen: Vec<serde_json::Value> = entries
            .iter()
            .filter_map(|(_, v)| serde_json::from_str(v).ok())
            .collect();
        Ok(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&seen).map_err(|e| PluginError::internal(e.to_string()))?,
        })
    }
}
