//! The module's state and the glue between the SDK callbacks and the protocol code: it owns the
//! options, the token key and the per-stream notes, and never holds a lock while calling the
//! host.

use std::sync::Mutex;
use tessera_plugin_api::Host;
use tessera_plugin_api::SaslCondition;

use tessera_plugin_api::clients::{self, ClientRevoke};
use tessera_plugin_api::events::{
    self, hooks, Event, Sasl2Success, SessionEvent, UserDeleted, UserPasswordChanged,
};
use tessera_plugin_api::protocol::{MechanismStart, MechanismStep, StreamInfo};
use tessera_plugin_api::wire;
use tessera_plugin_api::{LogLevel, PluginError};

use crate::auth;
use crate::config::Settings;
use crate::ht;
use crate::issue;
use crate::pending::Pendings;
use crate::store;
use crate::token::TokenKey;
use tessera_plugin_api::sync::locked;

const NO_STEP: &str = "HT mechanisms have a single round";

/// All state of one module instance.
#[derive(Debug)]
pub(crate) struct Core {
    settings: Settings,
    key: TokenKey,
    pending: Mutex<Pendings>,
}

impl Core {
    /// A fresh instance.
    pub(crate) fn new(settings: Settings, key: TokenKey) -> Self {
        Self {
            settings,
            key,
            pending: Mutex::new(Pendings::default()),
        }
    }

    /// A query hook call; `None` contributes nothing.
    ///
    /// # Errors
    /// A payload that does not match the hook's documented type.
    pub(crate) fn hook(
        &self,
        svc: &Host,
        name: &str,
        payload: &[u8],
    ) -> Result<Option<Vec<u8>>, PluginError> {
        match name {
            hooks::SASL2_INLINE_FEATURES => {
                let stream: StreamInfo = wire::decode(name, payload)?;
                ht::advertisement(&stream)
                    .map(|fast| wire::encode(&vec![fast]))
                    .transpose()
            }
            hooks::SASL2_SUCCESS => {
                let success: Sasl2Success = wire::decode(name, payload)?;
                let pending = locked(&self.pending).take(success.stream.id);
                let children = issue::on_success(svc, &self.key, self.settings, &success, pending);
                (!children.is_empty())
                    .then(|| wire::encode(&children))
                    .transpose()
            }
            clients::hooks::CLIENT_CREDENTIALS => {
                let user: String = wire::decode(name, payload)?;
                let credentials = store::credentials(svc, &user, svc.now_ms())?;
                wire::encode(&credentials).map(Some)
            }
            clients::hooks::CLIENT_REVOKE => {
                let revoke: ClientRevoke = wire::decode(name, payload)?;
                let removed = store::forget_client_ref(svc, &revoke.user, &revoke.client);
                match &removed {
                    Ok(n) if *n > 0 => svc.log(
                        LogLevel::Info,
                        &format!("revoked {n} FAST token(s) of a client of {}", revoke.user),
                    ),
                    Ok(_) => {}
                    Err(e) => svc.log(
                        LogLevel::Warn,
                        &format!(
                            "FAST tokens of a client of {} not revoked: {e}",
                            revoke.user
                        ),
                    ),
                }
                // A failure is the answer: the host drops a hook's errors.
                let answer: Result<u32, String> = removed.map_err(|e| e.to_string());
                wire::encode(&answer).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// A hooked bus event.
    ///
    /// # Errors
    /// A payload that does not match the event's type.
    pub(crate) fn on_event(&self, svc: &Host, event: &Event<'_>) -> Result<(), PluginError> {
        let (user, issued_until_ms) = match event.name {
            // Tokens issued after the change (its event can arrive late) stay.
            events::USER_PASSWORD_CHANGED => {
                let changed = event.decode::<UserPasswordChanged>()?;
                (changed.user, changed.at_ms)
            }
            events::USER_DELETED => (event.decode::<UserDeleted>()?.user, u64::MAX),
            events::SESSION_CLOSED => {
                let closed: SessionEvent = event.decode()?;
                locked(&self.pending).take(closed.stream_id);
                return Ok(());
            }
            _ => return Ok(()),
        };
        self.revoke_all(svc, &user, issued_until_ms, event.name);
        Ok(())
    }

    /// Delete an account's tokens issued at or before `issued_until_ms` (under the host's name
    /// and, if it differs, ours).
    fn revoke_all(&self, svc: &Host, user: &str, issued_until_ms: u64, why: &str) {
        let mut names = vec![user.to_owned()];
        names.extend(ht::canonical_user(user).filter(|c| c != user));
        for name in names {
            match store::forget_account(svc, &name, issued_until_ms) {
                Ok(n) => svc.log(
                    LogLevel::Debug,
                    &format!("{why}: {n} FAST token record(s) deleted"),
                ),
                Err(e) => svc.log(
                    LogLevel::Warn,
                    &format!("{why}: cannot delete FAST tokens (they stay refused): {e}"),
                ),
            }
        }
    }

    /// The host starts a FAST authentication.
    pub(crate) fn mechanism_start(&self, svc: &Host, start: &MechanismStart) -> MechanismStep {
        let stream = start.stream.id;
        locked(&self.pending).take(stream);
        let (step, pending) = auth::start(svc, &self.key, self.settings.min_ttl_ms, start);
        if let Some(pending) = pending {
            locked(&self.pending).insert(stream, pending);
        }
        step
    }

    /// HT is a single round: a further response is a protocol error.
    pub(crate) fn mechanism_step(&self) -> MechanismStep {
        auth::failure(SaslCondition::MalformedRequest, Some(NO_STEP), None)
    }

    /// The hot-swap state.
    ///
    /// # Errors
    /// Only if serialisation fails.
    pub(crate) fn save_state(&self) -> Result<Vec<u8>, PluginError> {
        locked(&self.pending).encode()
    }

    /// Load a previous instance's state.
    ///
    /// # Errors
    /// `BAD_STATE` for an unknown format version or unreadable content.
    pub(crate) fn restore(&self, bytes: &[u8]) -> Result<(), PluginError> {
        *locked(&self.pending) = Pendings::decode(bytes)?;
        Ok(())
    }

    /// Number of streams with a note (tests).
    #[cfg(test)]
    pub(crate) fn pending_len(&self) -> usize {
        locked(&self.pending).len()
    }
}
