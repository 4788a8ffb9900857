//! Test fixture `fixture_old_api`: an ordinary module, built against an ALTERED copy of the
//! plugin API (`api-copy/`, version 1.0.0 like the real one, but `PluginInstance::on_request`
//! takes its payload as `RSlice<'_, u8>` instead of `RStr`).
//!
//! Used by the host's loader end-to-end test: the file passes the first gate (Tessera magic,
//! API major 1) and must be refused by abi_stable's layout check with a precise error naming
//! the file and the versions, never loaded. The code below is never run by a correct host.

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
