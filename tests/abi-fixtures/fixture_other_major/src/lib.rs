//! Test fixture `fixture_other_major`: an ordinary module, built against the 1.x API copy
//! compiled as version 3.0.0 (`api-major3/`, `API_MAJOR` = 3), a major newer than the host's.
//!
//! Used by the host's loader end-to-end test: the first gate (the `TESSERA_PLUGIN_MAGIC`
//! static) must refuse it with "built against plugin API 3.0.0 (major 3)", before abi_stable is
//! asked anything. The code below is never run by a correct host.

use tessera_plugin_api::protocol::{HttpRequest, HttpResponse, Manifest, Registrations};
use tessera_plugin_api::{Config, Host, Module, PluginError};

/// The module (stateless).
#[derive(Debug)]
pub struct OtherMajor;

impl Module for OtherMajor {
    const NAME: &'static str = "fixture_other_major";
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
        Ok(OtherMajor)
    }

    fn registrations(&self) -> Registrations {
        Registrations {
            http_routes: vec!["/test/other_major".into()],
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

tessera_plugin_api::export_module!(OtherMajor);
