//! # mod_sasl2
//!
//! Tessera's authentication module: XEP-0388 Extensible SASL Profile (SASL2) with XEP-0386
//! Bind 2, and RFC 6120 §6 SASL for clients without SASL2, both served from the host's mechanism
//! registry. It provides SCRAM-SHA-1, SCRAM-SHA-256, SCRAM-SHA-512 (RFC 5802, RFC 7677), their
//! `-PLUS` variants with `tls-exporter` (RFC 9266) or `tls-server-end-point` (RFC 5929) channel
//! binding,
//! advertised per XEP-0440, and PLAIN (RFC 4616) on encrypted streams. Mechanisms of other
//! modules (FAST's HT-*) run through the same negotiation.
//!
//! How to read it: `machine` is the per-stream negotiation, `outcome`/`success`/`tasks`/`bind2`
//! what it answers, `mech` the mechanisms, `features` the advertisement, `ratelimit` the failure
//! limits, [`api`] the hooks other modules use. All of it reaches the host through the SDK's
//! `Host`, so the tests run it on `tessera_plugin_api::testing::TestHost` without sockets.
//!
//! ## Options
//! | option | default | meaning |
//! |---|---|---|
//! | `sasl2_max_retries` | 5 (1–100) | failures allowed on one stream; the failure reaching it is followed by a `<policy-violation/>` stream error |
//! | `sasl2_max_failures_per_user` | 10 (1–1000000) | failed attempts on one account from one address (IPv6: /64) within the window before that address gets `<temporary-auth-failure/>` for that account |
//! | `sasl2_account_backoff_after` | 10 (1–1000000) | failed attempts on one account from all addresses within the window after which every address that failed on it waits between attempts (1 s, doubling); the account is never locked |
//! | `sasl2_account_backoff_max` | 60 (1–3600) | the longest of those waits, in seconds |
//! | `sasl2_max_failures_per_ip` | 30 (1–1000000) | failed attempts from one address (IPv6: /64) over all accounts before it is refused |
//! | `sasl2_failure_window` | 300 (1–86400) | sliding window of the counters, in seconds |
//!
//! ```toml
//! sasl2_max_retries = 5
//! sasl2_max_failures_per_user = 10
//! sasl2_account_backoff_after = 10
//! sasl2_account_backoff_max = 60
//! sasl2_max_failures_per_ip = 30
//! sasl2_failure_window = 300
//! ```
//!
//! ## Behaviour worth knowing
//! * SASL2 is offered after TLS whether or not the stream header has `from`; `-PLUS` only when the
//!   connection has channel-binding data, and then always with `<sasl-channel-binding/>`.
//! * The first profile a client uses locks the stream; the other profile gets `<failure><aborted/>`.
//! * A user-agent id of 1–128 characters is used; a longer one is ignored (treated as absent).
//!   Usernames are SASLprep'd and brought to the host's canonical form (nodeprep) before lookup.
//! * Rate-limited attempts are refused with `<temporary-auth-failure/>` and the text
//!   `Too many failed attempts; retry in N s`, identically for existing and unknown accounts.
//!   Only credential failures (`not-authorized`, `credentials-expired`) are counted; a successful
//!   login clears the account's counters. Nobody can lock an account: the limits hold back the
//!   guessing addresses, and a token login passes the account's backoff (see `ratelimit`).
//!   Accounts are keyed in the host's canonical form (`tessera_plugin_api::names`), so `ß`/`ss`
//!   and other spellings share one counter. Counters survive a hot swap (`save_state`).
//! * SCRAM-SHA-512(-PLUS) is offered only to a stream whose header names (`from`) an account
//!   with a SHA-512 verifier, or no account: an account whose password predates those verifiers
//!   would fail it (mod_scram_upgrade gives it one, XEP-0480). XEP-0480 upgrade tasks of other
//!   modules are listed in `<authentication/>` and run as tasks ([`api`]).
//! * Bind 2 resources are `tag/` plus 12 characters derived from the account and user-agent id
//!   (stable per client), or random without a user-agent id.

pub mod api;
mod bind2;
mod config;
mod core;
mod features;
mod glue;
mod machine;
mod mech;
mod outcome;
mod ratelimit;
mod state;
mod success;
mod tasks;
mod wire;

#[cfg(test)]
mod tests;

use tessera_plugin_api::events::{self, SessionEvent};
use tessera_plugin_api::protocol::{
    Manifest, MechanismResponse, MechanismStart, MechanismStep, Registrations, StreamAction,
    StreamElement, StreamInfo,
};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{Config, Event, EventFlow, Host, Module, PluginError};

use crate::core::{Core, Keys};

/// The module: see the crate documentation.
#[derive(Debug)]
pub struct Sasl2Module {
    core: Core,
}

impl Module for Sasl2Module {
    const NAME: &'static str = "sasl2";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        config::manifest()
    }

    fn init(host: &Host, config: &Config, restore: Option<&[u8]>) -> Result<Self, PluginError> {
        let settings = config::Settings::from_config(config)?;
        let core = Core::new(settings, Keys::derive(host)?);
        if let Some(bytes) = restore {
            core.restore(bytes, host.now_ms())?;
        }
        Ok(Self { core })
    }

    fn registrations(&self) -> Registrations {
        config::registrations()
    }

    fn on_event(&self, _host: &Host, event: &Event) -> Result<EventFlow, PluginError> {
        if event.name == events::SESSION_CLOSED {
            let closed: SessionEvent = event.decode()?;
            self.core.session_closed(closed.stream_id);
        } else if event.name == events::SESSION_RESUMED {
            let resumed: events::SessionResumed = event.decode()?;
            self.core.session_closed(resumed.previous_stream_id);
        }
        Ok(EventFlow::Continue)
    }

    fn stream_features(
        &self,
        host: &Host,
        stream: &StreamInfo,
    ) -> Result<Vec<Element>, PluginError> {
        Ok(self.core.features(host, stream))
    }

    fn stream_element(
        &self,
        host: &Host,
        request: StreamElement,
    ) -> Result<Vec<StreamAction>, PluginError> {
        Ok(self.core.element(host, &request))
    }

    fn mechanism_start(
        &self,
        host: &Host,
        start: MechanismStart,
    ) -> Result<MechanismStep, PluginError> {
        Ok(self.core.mechanism_start(host, start))
    }

    fn mechanism_step(
        &self,
        host: &Host,
        response: MechanismResponse,
    ) -> Result<MechanismStep, PluginError> {
        Ok(self.core.mechanism_step(host, response))
    }

    fn mechanism_end(&self, _host: &Host, exchange: u64) {
        self.core.mechanism_end(exchange);
    }

    fn save_state(&self) -> Result<Vec<u8>, PluginError> {
        self.core.save_state()
    }
}

tessera_plugin_api::export_module!(Sasl2Module);
