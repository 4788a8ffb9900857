//! Test fixture `fixture_old_api`: an ordinary module, built against a frozen copy of the 1.x
//! plugin API (`api-copy/`, version 1.0.0: JSON across the boundary, as shipped before 2.0).
//!
//! Used by the host's loader end-to-end test: a 2.x host must refuse it at the first gate
//! (Tessera magic, API major 1) with the file, both versions and a hint to rebuild it against
//! tessera-plugin-api 2, never loaded. The code below is never run by a correct host.

use tessera_plugin_api::protocol::{HttpRequest, HttpResponse, Manifest, Registrations};
use tessera_plugin_api::{Config, Host, Module, PluginError};

/// The module (stateless).
#[derive(Debug)]
pub struct OldApi;

impl Module for OldApi {
    const NAME: &'static str = "fixture_old_api";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: format!(
                "Test fixture: built against plugin API {}",
                tessera_plugin_api::API_VERSION
            ),
            ..Manifest::default()
        }
    }

    fn init(_host: &Host, _config: &Config, _restore: Option<&[u8]>) -> Result<Self, PluginError> {
        Ok(OldApi)
    }

    fn registrations(&self) -> Registrations {
        Registrations {
            http_routes: vec!["/test/old_api".into()],
            ..Registrations::default()
        }
    }

    fn http(&self, _host: &Host, _request: HttpRequest) -> Result<HttpResponse, PluginError> {
        let body = serde_json::json!({ "api": tessera_plugin_api::API_VERSION });
        Ok(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&body)?,
        })
    }
}

tessera_plugin_api::export_module!(OldApi);
