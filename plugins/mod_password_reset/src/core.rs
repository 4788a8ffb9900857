//! The module's state and the glue between the SDK callbacks and the pure flow: exchanges in
//! progress, rate limits, the lock that makes each link single-use, and the hourly cleanup.
//! No lock is held while the host is called, except `serial` around a page confirmation and
//! around an event's revocation (the host never calls back into this module synchronously from
//! either: events are queued and delivered on the bus thread).

use std::collections::HashMap;
use std::sync::Mutex;
use tessera_plugin_api::SaslCondition;

use tessera_plugin_api::events::{self, UserDeleted, UserPasswordChanged};
use tessera_plugin_api::protocol::{
    HttpRequest, HttpResponse, MechanismResponse, MechanismStart, MechanismStep,
};
use tessera_plugin_api::{Event, Host, LogLevel, PluginError};

use crate::config::Settings;
use crate::flow::{self, Ctx, Jobs, Keys, Pending};
use crate::ratelimit::{Limits, Snapshot};
use crate::{store, web};
use tessera_plugin_api::sync::locked;

/// Period of the cleanup timer, in milliseconds.
pub(crate) const CLEANUP_EVERY_MS: u64 = 3600 * 1000;
/// The cleanup timer's tag.
pub(crate) const CLEANUP_TAG: &str = "cleanup";
/// An exchange older than this is forgotten by the cleanup (the host ends exchanges; this only
/// bounds memory if an end is ever missed), in milliseconds.
const EXCHANGE_MAX_AGE_MS: u64 = 10 * 60 * 1000;
/// Most exchanges in progress at once; past it the oldest are dropped.
const MAX_EXCHANGES: usize = 10_000;

/// All state of one module instance.
#[derive(Debug)]
pub(crate) struct Core {
    settings: Settings,
    keys: Keys,
    domain: String,
    public_url: String,
    limits: Mutex<Limits>,
    exchanges: Mutex<HashMap<u64, (u64, Pending)>>,
    jobs: Mutex<Jobs>,
    serial: Mutex<()>,
}

impl Core {
    /// A fresh instance. `public_url` is `[http] public_url` (a trailing `/` is dropped).
    pub(crate) fn new(settings: Settings, keys: Keys, domain: &str, public_url: &str) -> Self {
        let limits = Limits::new(
            settings.max_per_user,
            settings.max_per_ip,
            settings.max_posts_per_ip,
            settings.window_ms,
        );
        Self {
            settings,
            keys,
            domain: domain.to_lowercase(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            limits: Mutex::new(limits),
            exchanges: Mutex::new(HashMap::new()),
            jobs: Mutex::new(Jobs::default()),
            serial: Mutex::new(()),
        }
    }

    /// The options in force.
    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    fn ctx<'a>(&'a self, svc: &'a Host) -> Ctx<'a> {
        Ctx {
            svc,
            settings: &self.settings,
            keys: &self.keys,
            domain: &self.domain,
            public_url: &self.public_url,
            limits: &self.limits,
            jobs: &self.jobs,
        }
    }

    fn keep(&self, svc: &Host, exchange: u64, next: Option<Pending>) {
        if let Some(next) = next {
            let mut map = locked(&self.exchanges);
            if map.len() >= MAX_EXCHANGES {
                let oldest = map.iter().min_by_key(|(_, (t, _))| *t).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    map.remove(&k);
                }
            }
            map.insert(exchange, (svc.now_ms(), next));
        }
    }

    /// The host starts a `PASSWORD-RESET` exchange.
    pub(crate) fn mechanism_start(&self, svc: &Host, start: &MechanismStart) -> MechanismStep {
        locked(&self.exchanges).remove(&start.exchange);
        let (step, next) = flow::start(start);
        self.keep(svc, start.exchange, next);
        step
    }

    /// The host continues an exchange.
    pub(crate) fn mechanism_step(&self, svc: &Host, response: &MechanismResponse) -> MechanismStep {
        let Some((_, pending)) = locked(&self.exchanges).remove(&response.exchange) else {
            return MechanismStep::Failure {
                condition: SaslCondition::TemporaryAuthFailure,
                text: Some("The password reset was interrupted; please start again".into()),
                user: None,
                application: None,
            };
        };
        let (step, next) = flow::step(self.ctx(svc), pending, &response.response);
        self.keep(svc, response.exchange, next);
        step
    }

    /// The host ended an exchange.
    pub(crate) fn mechanism_end(&self, exchange: u64) {
        locked(&self.exchanges).remove(&exchange);
    }

    /// A request on `/password-reset`.
    pub(crate) fn http(&self, svc: &Host, request: &HttpRequest) -> HttpResponse {
        web::handle(self.ctx(svc), &self.serial, request)
    }

    /// A hooked event: a password change or account deletion revokes the account's links.
    ///
    /// # Errors
    /// A payload that does not decode.
    pub(crate) fn event(&self, svc: &Host, event: &Event<'_>) -> Result<(), PluginError> {
        let (user, created_until_ms) = match event.name {
            // Links issued after the change (the event can arrive late) stay valid.
            events::USER_PASSWORD_CHANGED => {
                let changed = event.decode::<UserPasswordChanged>()?;
                (changed.user, changed.at_ms)
            }
            events::USER_DELETED => (event.decode::<UserDeleted>()?.user, u64::MAX),
            _ => return Ok(()),
        };
        // Under `serial`: the event of a page confirmation's own password change arrives on
        // the bus thread while that confirmation may still be marking its link used; revoking
        // outside the lock could write back the unmarked record over it (lost update), and the
        // page would then call a used link revoked.
        let _serial = locked(&self.serial);
        flow::revoke(self.ctx(svc), &user, created_until_ms);
        Ok(())
    }

    /// A `job:<n>` timer fired: store and mail a link, or do the decoy writes.
    pub(crate) fn run_job(&self, svc: &Host, tag: &str) {
        flow::run_job(self.ctx(svc), tag);
    }

    /// The hourly cleanup: stale links and tombstones, expired counters, forgotten exchanges.
    pub(crate) fn cleanup(&self, svc: &Host) {
        let now = svc.now_ms();
        match store::cleanup(svc, now) {
            Ok(0) => {}
            Ok(n) => svc.log(LogLevel::Debug, &format!("deleted {n} stale reset link(s)")),
            Err(e) => svc.log(LogLevel::Warn, &format!("reset link cleanup failed: {e}")),
        }
        locked(&self.limits).prune(now);
        locked(&self.exchanges).retain(|_, (t, _)| now.saturating_sub(*t) < EXCHANGE_MAX_AGE_MS);
    }

    /// The hot-swap state: the rate-limit counters. Exchanges and jobs are not carried: a
    /// client whose exchange was cut by a reload starts again, and a request answered in the
    /// milliseconds before a reload may mail nothing (the user asks again).
    ///
    /// # Errors
    /// Only if serialisation fails.
    pub(crate) fn save_state(&self) -> Result<Vec<u8>, PluginError> {
        let snap = locked(&self.limits).snapshot();
        serde_json::to_vec(&snap).map_err(|e| PluginError::internal(e.to_string()))
    }

    /// Load a previous generation's counters.
    ///
    /// # Errors
    /// `BAD_STATE` for an unreadable state or unknown version.
    pub(crate) fn restore(&self, bytes: &[u8], now_ms: u64) -> Result<(), PluginError> {
        let bad = |e: String| PluginError::new(tessera_plugin_api::PluginErrorKind::BAD_STATE, e);
        let snap: Snapshot = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        locked(&self.limits).restore(snap, now_ms).map_err(bad)
    }

    /// Exchanges in progress (tests).
    #[cfg(test)]
    pub(crate) fn exchanges(&self) -> usize {
        locked(&self.exchanges).len()
    }
}
