//! Benchmark fixture: hooks `fixture-count` and counts deliveries in memory, so that
//! `host/benches/bus.rs` measures the cost of dispatch across the ABI and nothing else.
//!
//! Also the hot-swap fixture: `GET /test/counter/count` answers the count and the build id
//! (`{"count": N, "build": "…"}`), and the count is handed to the next generation on reload.

use std::sync::atomic::{AtomicU64, Ordering};

use tessera_plugin_api::protocol::{HookSpec, HttpRequest, HttpResponse, Manifest, Registrations};
use tessera_plugin_api::{Config, Event, EventFlow, Host, Module, PluginError};

const ROUTE: &str = "/test/counter";

/// Counts `fixture-count` events.
#[derive(Debug, Default)]
pub struct Counter {
    seen: AtomicU64,
}

impl Module for Counter {
    const NAME: &'static str = "fixture_counter";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "Counts fixture-count events (benchmarks)".into(),
            ..Manifest::default()
        }
    }

    fn init(_host: &Host, _config: &Config, restore: Option<&[u8]>) -> Result<Self, PluginError> {
        // Restores its count from the previous generation (hot-swap handoff: u64 little endian).
        let seen = match restore {
            Some(bytes) => u64::from_le_bytes(bytes.try_into().map_err(|_| {
                PluginError::new(
                    tessera_plugin_api::PluginErrorKind::BAD_STATE,
                    "expected 8 bytes",
                )
            })?),
            None => 0,
        };
        Ok(Self {
            seen: AtomicU64::new(seen),
        })
    }

    fn registrations(&self) -> Registrations {
        Registrations {
            events: vec![HookSpec {
                name: "fixture-count".into(),
                priority: 0,
            }],
            http_routes: vec![ROUTE.into()],
            ..Registrations::default()
        }
    }

    fn http(&self, _host: &Host, request: HttpRequest) -> Result<HttpResponse, PluginError> {
        let rest = request.path.strip_prefix(ROUTE).unwrap_or(&request.path);
        if (request.method.as_str(), rest) != ("GET", "/count") {
            return Ok(HttpResponse {
                status: 404,
                ..HttpResponse::default()
            });
        }
        let body = format!(
            "{{\"count\": {}, \"build\": \"{}\"}}",
            self.seen.load(Ordering::Relaxed),
            option_env!("TESSERA_BUILD_ID").unwrap_or("dev")
        );
        Ok(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into_bytes(),
        })
    }

    fn on_event(&self, _host: &Host, _event: &Event) -> Result<EventFlow, PluginError> {
        self.seen.fetch_add(1, Ordering::Relaxed);
        Ok(EventFlow::Continue)
    }

    fn save_state(&self) -> Result<Vec<u8>, PluginError> {
        Ok(self.seen.load(Ordering::Relaxed).to_le_bytes().to_vec())
    }
}

tessera_plugin_api::export_module!(Counter);
