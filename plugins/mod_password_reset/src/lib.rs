//! # mod_password_reset
//!
//! Lets a user who forgot the password get a new one without an administrator: the
//! `PASSWORD-RESET` SASL mechanism asks for the address stored with the account, mails a
//! single-use link when it matches (and answers exactly the same when it does not), and the
//! link opens a page on the host's HTTPS server where the new password is set. The protocol is
//! specified in `docs/password-reset.md`; this crate is its server side.
//!
//! How to read it: `flow` is the whole logic over the SDK's `Host` (every key-value
//! entry in the server-wide scope, `KvScope::Global`), `form` the
//! data forms, `crypto` tokens, CSRF and address comparison, `store` the stored links, `web` and
//! `page` the page, `mail` the mail, `ratelimit` the counters, `core` the glue, `config` options.
//!
//! ## Options
//! | option | default | meaning |
//! |---|---|---|
//! | `password_reset_token_ttl` | 3600 (1–604800) | lifetime of a link, in seconds |
//! | `password_reset_min_length` | 8 (1–1024) | shortest new password, in characters |
//! | `password_reset_max_requests_per_user` | 3 | reset mails per account per window |
//! | `password_reset_max_requests_per_ip` | 10 | reset requests per client IP per window |
//! | `password_reset_max_page_posts_per_ip` | 30 | page submissions per client IP per window |
//! | `password_reset_rate_window` | 3600 (1–86400) | the window of the three limits, in seconds |
//! | `password_reset_legacy_sasl` | true | also list the mechanism in RFC 6120 `<mechanisms/>` (so that both profiles list the same mechanisms, see docs/password-reset.md §2) |
//!
//! The module needs `[http] public_url` (links point there) and mod_sasl2 (`depends`).

mod config;
mod confirm;
mod core;
mod crypto;
mod flow;
mod form;
mod mail;
mod page;
mod ratelimit;
mod store;
mod web;

#[cfg(test)]
mod tests;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

use tessera_plugin_api::protocol::{
    HttpRequest, HttpResponse, Manifest, MechanismResponse, MechanismStart, MechanismStep,
    Registrations, TimerFired,
};
use tessera_plugin_api::{Config, Event, EventFlow, Host, LogLevel, Module, PluginError};

use crate::core::{Core, CLEANUP_EVERY_MS, CLEANUP_TAG};
use crate::flow::Keys;

/// The module: see the crate documentation.
#[derive(Debug)]
pub struct PasswordResetModule {
    core: Core,
}

fn set_cleanup_timer(host: &Host) {
    if let Err(e) = host.set_timer(CLEANUP_EVERY_MS, CLEANUP_TAG) {
        host.log(
            LogLevel::Warn,
            &format!("cannot schedule the link cleanup: {e}"),
        );
    }
}

impl Module for PasswordResetModule {
    const NAME: &'static str = "password_reset";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        config::manifest()
    }

    fn init(host: &Host, config: &Config, restore: Option<&[u8]>) -> Result<Self, PluginError> {
        let settings = config::Settings::from_config(config)?;
        let info = host.host_info()?;
        let public_url = info
            .public_url
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| {
                PluginError::config(
                    "`http.public_url` is not set: mod_password_reset mails links to its page \
                     under that URL; set `public_url = \"https://…\"` in the [http] table",
                )
            })?;
        let keys = Keys {
            csrf: host.derive_secret("csrf")?,
            decoy: host.derive_secret("decoy-address")?,
        };
        let core = Core::new(settings, keys, &info.domain, &public_url);
        if let Some(bytes) = restore.filter(|b| !b.is_empty()) {
            core.restore(bytes, host.now_ms())?;
        }
        set_cleanup_timer(host);
        Ok(Self { core })
    }

    fn registrations(&self) -> Registrations {
        config::registrations(self.core.settings())
    }

    fn on_event(&self, host: &Host, event: &Event<'_>) -> Result<EventFlow, PluginError> {
        self.core.event(host, event)?;
        Ok(EventFlow::Continue)
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
        host: &Host,
        response: MechanismResponse,
    ) -> Result<MechanismStep, PluginError> {
        Ok(self.core.mechanism_step(host, &response))
    }

    fn mechanism_end(&self, _host: &Host, exchange: u64) {
        self.core.mechanism_end(exchange);
    }

    fn http(&self, host: &Host, request: HttpRequest) -> Result<HttpResponse, PluginError> {
        Ok(self.core.http(host, &request))
    }

    fn timer(&self, host: &Host, timer: TimerFired) -> Result<(), PluginError> {
        if timer.tag == CLEANUP_TAG {
            self.core.cleanup(host);
            set_cleanup_timer(host);
        } else {
            self.core.run_job(host, &timer.tag);
        }
        Ok(())
    }

    fn save_state(&self) -> Result<Vec<u8>, PluginError> {
        self.core.save_state()
    }
}

tessera_plugin_api::export_module!(PasswordResetModule);
