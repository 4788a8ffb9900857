//! Test fixture `fixture_bad_init`: a plugin that loads fine but whose `init` always fails with a
//! config error, so the host's end-to-end test can check that the server refuses to start and
//! reports the module's name and its exact message: `fixture_bad_init refuses to start`.

use tessera_plugin_api::protocol::{Manifest, Registrations};
use tessera_plugin_api::{Config, Host, Module, PluginError};

/// The module; never instantiated.
#[derive(Debug)]
pub struct BadInit;

impl Module for BadInit {
    const NAME: &'static str = "fixture_bad_init";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "Test fixture: init always fails".into(),
            ..Manifest::default()
        }
    }

    fn init(_host: &Host, _config: &Config, _restore: Option<&[u8]>) -> Result<Self, PluginError> {
        Err(PluginError::config("fixture_bad_init refuses to start"))
    }

    fn registrations(&self) -> Registrations {
        Registrations::default()
    }
}

tessera_plugin_api::export_module!(BadInit);
