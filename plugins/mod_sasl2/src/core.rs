//! The module's state and the glue between the SDK callbacks and the protocol code: it owns the
//! per-stream negotiation states, the per-exchange mechanism states and the failure counters, and
//! never holds a lock while calling the host (the host re-enters the module for its own
//! mechanisms).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use tessera_plugin_api::SaslCondition;

use tessera_plugin_api::events::hooks;
use tessera_plugin_api::protocol::{
    MechanismResponse, MechanismStart, MechanismStep, StreamAction, StreamElement, StreamInfo,
};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{Host, PluginError};

use crate::config::Settings;
use crate::features::{self, Advertisement};
use crate::glue::{hook_elements, hook_names};
use crate::machine::{self, Env, StreamState};
use crate::mech::{self, MechEnv, MechState};
use crate::ratelimit::RateLimiter;
use crate::state::{self, Saved};
use crate::wire::Profile;
use tessera_plugin_api::sync::locked;

/// Server secrets the module derives once at start.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    /// Key of the fake credentials for unknown accounts (`scram-fake-credentials`).
    pub(crate) fake: Vec<u8>,
    /// Key of the Bind 2 resource derivation (`bind2-resource`).
    pub(crate) bind2: Vec<u8>,
    /// PBKDF2 iterations of the fake credentials: the host's for new passwords, so that an
    /// unknown account looks like any account whose password was set under this config.
    pub(crate) fake_iterations: u32,
}

impl Keys {
    /// Derive both keys from the host's server secret.
    ///
    /// # Errors
    /// The host could not derive a secret.
    pub(crate) fn derive(host: &Host) -> Result<Self, PluginError> {
        Ok(Self {
            fake: host.derive_secret("scram-fake-credentials")?,
            bind2: host.derive_secret("bind2-resource")?,
            // Never below the RFCs' floor, whatever a host says: a fake count no real account
            // can have would single out unknown names.
            fake_iterations: host.host_info()?.scram_iterations.max(4096),
        })
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

/// All state of one module instance.
#[derive(Debug)]
pub(crate) struct Core {
    settings: Settings,
    keys: Keys,
    limiter: Mutex<RateLimiter>,
    streams: Mutex<HashMap<u64, StreamState>>,
    /// Streams that authenticated (their state is not kept; a second login is refused).
    done: Mutex<HashSet<u64>>,
    exchanges: Mutex<HashMap<u64, MechState>>,
}

impl Core {
    /// A fresh instance.
    pub(crate) fn new(settings: Settings, keys: Keys) -> Self {
        let limiter = RateLimiter::new(settings.limits());
        Self {
            settings,
            keys,
            limiter: Mutex::new(limiter),
            streams: Mutex::new(HashMap::new()),
            done: Mutex::new(HashSet::new()),
            exchanges: Mutex::new(HashMap::new()),
        }
    }

    fn env<'a>(&'a self, host: &'a Host) -> Env<'a> {
        Env {
            host,
            settings: &self.settings,
            bind2_key: &self.keys.bind2,
            limiter: &self.limiter,
        }
    }

    fn mech_env<'a>(&'a self, host: &'a Host) -> MechEnv<'a> {
        MechEnv {
            host,
            fake_key: &self.keys.fake,
            fake_iterations: self.keys.fake_iterations,
            limiter: &self.limiter,
        }
    }

    /// `<stream:features/>` children: only before authentication on an encrypted stream.
    pub(crate) fn features(&self, host: &Host, stream: &StreamInfo) -> Vec<Element> {
        if !stream.secure || stream.user.is_some() {
            return Vec::new();
        }
        let list = |profile: Profile| features::fetch(host, stream, profile);
        let sasl2 = list(Profile::Sasl2);
        let listed = sasl2.iter().any(|m| !m.hidden);
        let inline = |hook: &str| {
            if listed {
                hook_elements(host, hook, stream)
            } else {
                Vec::new()
            }
        };
        features::build(Advertisement {
            legacy: list(Profile::Rfc6120),
            bind2_inline: inline(hooks::BIND2_INLINE_FEATURES),
            sasl2_inline: inline(hooks::SASL2_INLINE_FEATURES),
            upgrades: if listed {
                hook_names(host, hooks::SASL2_UPGRADES, stream)
                    .into_iter()
                    .flatten()
                    .collect()
            } else {
                Vec::new()
            },
            sasl2,
            cb_types: features::cb_types(stream),
        })
    }

    /// A routed SASL nonza.
    pub(crate) fn element(&self, host: &Host, request: &StreamElement) -> Vec<StreamAction> {
        let id = request.stream.id;
        // Taken out of the map so that no lock is held while the host is called.
        let mut st = if locked(&self.done).contains(&id) {
            StreamState {
                phase: machine::Phase::Done,
                ..StreamState::default()
            }
        } else {
            locked(&self.streams).remove(&id).unwrap_or_default()
        };
        let actions = machine::handle(&mut st, self.env(host), &request.stream, &request.element);
        // An authenticated stream is remembered by its id alone: its whole state would stay
        // with every idle session for nothing.
        if matches!(st.phase, machine::Phase::Done) {
            locked(&self.done).insert(id);
        } else {
            locked(&self.streams).insert(id, st);
        }
        actions
    }

    /// The host starts an exchange of one of this module's mechanisms.
    pub(crate) fn mechanism_start(&self, host: &Host, start: MechanismStart) -> MechanismStep {
        let exchange = start.exchange;
        locked(&self.exchanges).remove(&exchange);
        let (step, next) = mech::start(self.mech_env(host), start);
        if let Some(next) = next {
            locked(&self.exchanges).insert(exchange, next);
        }
        step
    }

    /// The host continues an exchange.
    pub(crate) fn mechanism_step(&self, host: &Host, response: MechanismResponse) -> MechanismStep {
        let Some(current) = locked(&self.exchanges).remove(&response.exchange) else {
            return mech::failure(SaslCondition::TemporaryAuthFailure, None, None);
        };
        let (step, next) = mech::step(self.mech_env(host), current, &response.response);
        if let Some(next) = next {
            locked(&self.exchanges).insert(response.exchange, next);
        }
        step
    }

    /// The host ended an exchange.
    pub(crate) fn mechanism_end(&self, exchange: u64) {
        locked(&self.exchanges).remove(&exchange);
    }

    /// A stream closed: forget it (its exchange id is its stream id).
    pub(crate) fn session_closed(&self, stream: u64) {
        locked(&self.streams).remove(&stream);
        locked(&self.done).remove(&stream);
        locked(&self.exchanges).remove(&stream);
    }

    /// The hot-swap state.
    ///
    /// # Errors
    /// Only if serialisation fails.
    pub(crate) fn save_state(&self) -> Result<Vec<u8>, PluginError> {
        let saved = Saved {
            limiter: locked(&self.limiter).snapshot(),
            streams: state::save_streams(&locked(&self.streams), &locked(&self.done)),
        };
        state::encode(&saved)
    }

    /// Load a previous instance's state.
    ///
    /// # Errors
    /// `BAD_STATE` for an unknown format version or unreadable content.
    pub(crate) fn restore(&self, bytes: &[u8], now_ms: u64) -> Result<(), PluginError> {
        let saved = state::decode(bytes)?;
        locked(&self.limiter).restore(saved.limiter, now_ms);
        let mut streams = locked(&self.streams);
        let mut done = locked(&self.done);
        for s in &saved.streams {
            if s.phase == state::SavedPhase::Done {
                done.insert(s.id);
            } else {
                streams.insert(s.id, state::restore_stream(s));
            }
        }
        Ok(())
    }

    /// Number of streams and exchanges with state (tests).
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> (usize, usize) {
        (locked(&self.streams).len(), locked(&self.exchanges).len())
    }

    /// The settings read at `init` (tests).
    #[cfg(test)]
    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }
}
