//! Test fixture `fixture_panicker`: panics on purpose, so the host's end-to-end tests can show
//! that a panic inside a plugin is caught at the boundary, logged with the plugin's name, and
//! that the server (and the other listeners, e.g. `fixture_listener_b`) live on.
//!
//! * Hooks `fixture-ping` (priority 5, between the two fixture listeners) and panics in
//!   `on_event` when the payload's `value` is `"panic"` (fire it with `fixture_emitter`).
//! * `GET /test/panicker/boom` panics inside `http`.
//! * `GET /test/panicker/ok` answers 200 `alive`.

use tessera_plugin_api::protocol::{HookSpec, HttpRequest, HttpResponse, Manifest, Registrations};
use tessera_plugin_api::{Config, Event, EventFlow, Host, Module, PluginError};

#[path = "../../fixture_listener_a/src/ping.rs"]
mod ping;

const ROUTE: &str = "/test/panicker";

/// The module (stateless).
#[derive(Debug)]
pub struct Panicker;

impl Module for Panicker {
    const NAME: &'static str = "fixture_panicker";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "Test fixture: panics on request".into(),
            ..Manifest::default()
        }
    }

    fn init(_host: &Host, _config: &Config, _restore: Option<&[u8]>) -> Result<Self, PluginError> {
        Ok(Panicker)
    }

    fn registrations(&self) -> Registrations {
        Registrations {
            events: vec![HookSpec {
                name: "fixture-ping".into(),
                priority: 5,
            }],
            http_routes: vec![ROUTE.into()],
            ..Registrations::default()
        }
    }

    fn on_event(&self, _host: &Host, event: &Event<'_>) -> Result<EventFlow, PluginError> {
        let ping: ping::Ping = event.decode()?;
        if ping.value.as_deref() == Some("panic") {
            panic!("fixture_panicker: deliberate panic in on_event");
        }
        Ok(EventFlow::Continue)
    }

    fn http(&self, _host: &Host, request: HttpRequest) -> Result<HttpResponse, PluginError> {
        let rest = request.path.strip_prefix(ROUTE).unwrap_or(&request.path);
        match rest {
            "/boom" => panic!("fixture_panicker: deliberate panic in http"),
            "/ok" => Ok(HttpResponse {
                status: 200,
                headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
                body: b"alive".to_vec(),
            }),
            _ => Ok(HttpResponse {
                status: 404,
                ..HttpResponse::default()
            }),
        }
    }
}

tessera_plugin_api::export_module!(Panicker);
