//! # mod_sasl2_fast
//!
//! XEP-0484 Fast Authentication Streamlining Tokens for Tessera, on top of mod_sasl2 (XEP-0388).
//! A client trades its password once for a token (`<request-token/>`) and reconnects with the
//! token alone in one round trip, using HT-SHA-256-EXPR (`tls-exporter`), -ENDP
//! (`tls-server-end-point`) or -NONE in the draft-schmaus-kitten-sasl-ht-09 format.
//!
//! How to read it: `token` is the pure token logic (issue, derive, verify, rotate; clock and
//! RNG are parameters), `ht` the XML and stream glue, `auth` the FAST authentication (the HT
//! mechanisms the host routes here), `issue` the `sasl2-success` hook, `store` the token
//! records, `core` the state and dispatch. Everything reaches the host through the SDK's
//! `Host`, which the tests run on `tessera_plugin_api::testing::TestHost`.
//! mod_sasl2 is extended only through the host: hidden mechanisms, the `sasl2-inline-features`
//! and `sasl2-success` hooks, and the `user-password-changed` / `user-deleted` events.
//!
//! ## Options
//! | option | default | meaning |
//! |---|---|---|
//! | `sasl2_fast_token_ttl` | 1814400 (21 days; 1–31536000) | seconds a token stays valid after it is issued: how long a client may stay away before it needs its password again |
//! | `sasl2_fast_token_min_ttl` | 86400 (1 day; 0–31535999) | a token older than this is rotated: the next FAST login returns a new token, and the used one stays valid until the new one has been used once |
//!
//! `sasl2_fast_token_min_ttl` must be smaller than `sasl2_fast_token_ttl` (a config error names
//! both keys).
//!
//! ```toml
//! sasl2_fast_token_ttl = 1814400
//! sasl2_fast_token_min_ttl = 86400
//! ```
//!
//! ## Behaviour worth knowing
//! * `<fast/>` is advertised on every encrypted stream with the HT variants whose channel
//!   binding the connection has (NONE always). A token is issued only to a UUID-shaped
//!   user-agent id and is bound to (account, user-agent id, mechanism).
//! * Two slots per (account, user-agent id): `new` (issued, unused) and `current`. Expired tokens
//!   and tokens issued before the last password change get `<credentials-expired/>`; unknown or
//!   mismatched ones `<not-authorized/>`. Both count toward mod_sasl2's failure limits. The
//!   stream stays usable for a password retry.
//! * `invalidate='true'` deletes both slots of that client; tokens die on
//!   `user-password-changed` and `user-deleted`.
//!
//! ## At rest
//! The store keeps, per slot, a JSON record `{mechanism, token_id, issued_at_ms,
//! expires_at_ms}` under `fast:<sha256(user-agent id)>:new|current` in the account's scope. The
//! token is `secret-token:fast-` + base64url(HMAC-SHA-256(K, token_id, account, user-agent id,
//! mechanism)) (fields length-prefixed), where K is the host's `derive_secret("fast-token")`,
//! derived from the server secret that is kept outside the database. A copy of the database
//! alone cannot rebuild a token, so it cannot be used to log in; the HMAC proof is compared in
//! constant time.

mod auth;
mod config;
mod core;
mod ht;
mod issue;
mod pending;
mod store;
mod token;

#[cfg(test)]
mod tests;

use tessera_plugin_api::protocol::{
    Manifest, MechanismResponse, MechanismStart, MechanismStep, Registrations,
};
use tessera_plugin_api::{Config, Event, EventFlow, Host, Module, PluginError};

use crate::core::Core;
use crate::token::TokenKey;

/// Label of the host-derived key tokens are derived with.
const TOKEN_KEY_LABEL: &str = "fast-token";

/// The module: see the crate documentation.
#[derive(Debug)]
pub struct FastModule {
    core: Core,
}

impl Module for FastModule {
    const NAME: &'static str = "sasl2_fast";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        config::manifest()
    }

    fn init(host: &Host, config: &Config, restore: Option<&[u8]>) -> Result<Self, PluginError> {
        let settings = config::Settings::from_config(config)?;
        let key = TokenKey::new(&host.derive_secret(TOKEN_KEY_LABEL)?)?;
        let core = Core::new(settings, key);
        if let Some(bytes) = restore {
            core.restore(bytes)?;
        }
        Ok(Self { core })
    }

    fn registrations(&self) -> Registrations {
        config::registrations()
    }

    fn on_event(&self, host: &Host, event: &Event<'_>) -> Result<EventFlow, PluginError> {
        self.core.on_event(host, event)?;
        Ok(EventFlow::Continue)
    }

    fn hook(
        &self,
        host: &Host,
        name: &str,
        payload: &[u8],
    ) -> Result<Option<Vec<u8>>, PluginError> {
        self.core.hook(host, name, payload)
    }

    fn mechanism_start(
        &self,
        host: &Host,
        start: MechanismStart,
    ) -> Result<MechanismStep, PluginError> {
        Ok(self.core.mechanism_start(host, &start))
    }

    fn mechanism_step(
        &self,
        _host: &Host,
        _response: MechanismResponse,
    ) -> Result<MechanismStep, PluginError> {
        Ok(self.core.mechanism_step())
    }

    fn save_state(&self) -> Result<Vec<u8>, PluginError> {
        self.core.save_state()
    }
}

tessera_plugin_api::export_module!(FastModule);
