//! Benchmark fixture: hooks `fixture-count` and counts deliveries in memory, so that
//! `host/benches/bus.rs` measures the cost of dispatch across the ABI and nothing else; and
//! hooks messages to full JIDs (`ToFull`) and passes them after looking at the header only, so
//! that `host/benches/stanza.rs` measures what one stanza hook costs.
//!
//! Also the hot-swap fixture: `GET /test/counter/count` answers the count and the build id
//! (`{"count": N, "build": "…"}`), and the count is handed to the next generation on reload. A
//! message with `<count xmlns='urn:tessera:test:count'/>` to a full JID is numbered: its
//! `<count/>` gets `n='K'` and `build='…'`, K counting such messages delivered to that session
//! in the session's module state (kept by the host, so it survives reloads).
//!
//! `fixture_counter_init_delay_ms` makes `init` that slow, so that a test can hold a reload's
//! hand-over window open while events keep arriving.

use std::sync::atomic::{AtomicU64, Ordering};

use tessera_plugin_api::protocol::{
    HookSpec, HttpRequest, HttpResponse, Manifest, OptionSpec, Registrations,
};
use tessera_plugin_api::stanza::{StanzaHook, StanzaKind, StanzaPoint};
use tessera_plugin_api::wire::Bytes;
use tessera_plugin_api::{Config, Event, EventFlow, Host, Module, PluginError, Stanza, Verdict};

const COUNT_NS: &str = "urn:tessera:test:count";

const ROUTE: &str = "/test/counter";

const INIT_DELAY_OPTION: &str = "fixture_counter_init_delay_ms";

/// Counts `fixture-count` events and the stanzas its pass-through hook saw.
#[derive(Debug, Default)]
pub struct Counter {
    seen: AtomicU64,
    stanzas: AtomicU64,
}

impl Module for Counter {
    const NAME: &'static str = "fixture_counter";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "Counts fixture-count events (benchmarks)".into(),
            options: vec![OptionSpec::integer(
                INIT_DELAY_OPTION,
                0,
                10_000,
                0,
                "How long init sleeps (hot-swap tests)",
            )],
            ..Manifest::default()
        }
    }

    fn init(_host: &Host, config: &Config, restore: Option<&[u8]>) -> Result<Self, PluginError> {
        // Benchmarks instantiate it without a host to fill in the defaults: none is no delay.
        let delay = config.integer(INIT_DELAY_OPTION).unwrap_or(0);
        std::thread::sleep(std::time::Duration::from_millis(delay.unsigned_abs()));
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
            stanzas: AtomicU64::new(0),
        })
    }

    fn registrations(&self) -> Registrations {
        Registrations {
            events: vec![HookSpec {
                name: "fixture-count".into(),
                priority: 0,
            }],
            http_routes: vec![ROUTE.into()],
            stanza_hooks: vec![
                StanzaHook::at(StanzaPoint::ToFull).kind(StanzaKind::Message),
                StanzaHook::at(StanzaPoint::ToFull)
                    .kind(StanzaKind::Message)
                    .child_ns(COUNT_NS),
            ],
            ..Registrations::default()
        }
    }

    fn stanza(&self, host: &Host, stanza: Stanza<'_>) -> Result<Verdict, PluginError> {
        if stanza.header.hook == 0 {
            // Header only: what a filter that never decodes the stanza costs.
            self.stanzas.fetch_add(1, Ordering::Relaxed);
            return Ok(Verdict::Pass);
        }
        let Some(session) = stanza.header.session else {
            return Ok(Verdict::Pass);
        };
        let n = host
            .session_get(session, "n")?
            .and_then(|v| v.try_into().ok())
            .map_or(0, u64::from_le_bytes)
            + 1;
        host.session_set(session, "n", Some(Bytes::new(&n.to_le_bytes())))?;
        let mut el = stanza.element()?;
        if let Some(count) = el.child_mut("count", COUNT_NS) {
            count.set_attr("n", n.to_string());
            count.set_attr("build", option_env!("TESSERA_BUILD_ID").unwrap_or("dev"));
        }
        Ok(Verdict::Replace(el))
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
