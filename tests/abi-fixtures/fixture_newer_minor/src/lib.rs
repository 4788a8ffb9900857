//! Test fixture `fixture_newer_minor`: a module built against plugin API 2.1.0, a newer minor
//! version than the host's, which adds one host call (`future_call`, kind 900). Minor versions
//! add features in both directions without breaking anyone, so the host must load it, serve
//! every call it knows, and answer the unknown one `UNSUPPORTED`, which the module treats as
//! "older host" and falls back.
//!
//! An IQ get `<future xmlns='urn:tessera:test:future'/>` answers
//! `<future xmlns='urn:tessera:test:future' api='2.1.0' answer='…'/>`, where the answer is the
//! host's reply to `future_call`, or `fallback (unsupported: …)` when the host does not know it.

use tessera_plugin_api::protocol::{IqRequest, Manifest, Registrations};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{reply, Config, Host, Module, PluginError, API_VERSION};

const NS: &str = "urn:tessera:test:future";

/// The module (stateless).
#[derive(Debug)]
pub struct NewerMinor;

impl Module for NewerMinor {
    const NAME: &'static str = "fixture_newer_minor";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "Test fixture: built against plugin API 2.1".into(),
            ..Manifest::default()
        }
    }

    fn init(_host: &Host, _config: &Config, _restore: Option<&[u8]>) -> Result<Self, PluginError> {
        Ok(NewerMinor)
    }

    fn registrations(&self) -> Registrations {
        Registrations {
            iq_namespaces: vec![NS.into()],
            ..Registrations::default()
        }
    }

    fn iq(&self, host: &Host, request: IqRequest) -> Result<Option<Element>, PluginError> {
        let iq = &request.stanza;
        if iq.attr("type") != Some("get") || iq.child("future", NS).is_none() {
            return Ok(None);
        }
        let answer = match host.future_call("are you 2.1?") {
            Ok(answer) => answer,
            Err(e) if e.is_unsupported() => format!("fallback (unsupported: {})", e.message),
            Err(e) => return Err(e),
        };
        let future = Element::new("future", NS)
            .with_attr("api", API_VERSION)
            .with_attr("answer", answer);
        Ok(Some(
            reply::iq_result(iq, &request.stream.domain).with_child(future),
        ))
    }
}

tessera_plugin_api::export_module!(NewerMinor);
