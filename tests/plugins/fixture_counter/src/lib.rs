//! Benchmark fixture: hooks `fixture-count` and counts deliveries in memory, so that
//! `host/benches/bus.rs` measures the cost of dispatch across the ABI and nothing else.

use std::sync::atomic::{AtomicU64, Ordering};

use tessera_plugin_api::protocol::{HookSpec, Manifest, Registrations};
use tessera_plugin_api::{Config, Event, EventFlow, Host, Module, PluginError};

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
            ..Registrations::default()
        }
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
