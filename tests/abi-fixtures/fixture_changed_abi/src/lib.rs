//! Test fixture `fixture_changed_abi`: an ordinary module, built against the real plugin API
//! 2.x compiled with one ABI-visible change (`EventFlow` has a third variant; see
//! `api-altered/`). Its magic says API 2.0.0, major 2, so it passes the host's first gate; the
//! host's abi_stable layout check must refuse it with an error naming the file, both versions
//! and the first difference. The code below is never run by a correct host.

use tessera_plugin_api::protocol::{Manifest, Registrations};
use tessera_plugin_api::{Config, Host, Module, PluginError};

/// The module (stateless).
#[derive(Debug)]
pub struct ChangedAbi;

impl Module for ChangedAbi {
    const NAME: &'static str = "fixture_changed_abi";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "Test fixture: built against an altered plugin API 2.x".into(),
            ..Manifest::default()
        }
    }

    fn init(_host: &Host, _config: &Config, _restore: Option<&[u8]>) -> Result<Self, PluginError> {
        Ok(ChangedAbi)
    }

    fn registrations(&self) -> Registrations {
        Registrations::default()
    }
}

tessera_plugin_api::export_module!(ChangedAbi);
