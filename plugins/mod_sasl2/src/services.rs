//! The host services the protocol code needs, as a trait: production code passes the SDK's
//! [`Host`]; tests pass an in-memory fake. Keeps the negotiation and the mechanisms free of the
//! ABI (sans-IO: every effect goes through this seam).

use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use tessera_plugin_api::events::AuthenticationOutcome;
use tessera_plugin_api::protocol::{
    AccountCredentials, MechanismResponse, MechanismSpec, MechanismStart, MechanismStep,
    SaslProfile, StreamInfo,
};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{Host, HostCalls, LogLevel, PluginError};
use tessera_sasl::scram::ScramCredentials;

use crate::features::elements_from_replies;

/// Lock a mutex, recovering from poisoning (a panic elsewhere must not wedge authentication).
/// Never hold the guard across a host call: the host may call back into the module.
pub(crate) fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Call a query hook whose replies are `Vec<Element>`; a failing hook contributes nothing.
pub(crate) fn hook_elements<P: Serialize>(
    svc: &dyn Services,
    name: &str,
    payload: &P,
) -> Vec<Element> {
    let replies =
        tessera_plugin_api::wire::encode(payload).and_then(|payload| svc.call_hook(name, &payload));
    match replies {
        Ok(replies) => elements_from_replies(replies),
        Err(e) => {
            svc.log(LogLevel::Warn, &format!("{name} hook failed: {e}"));
            Vec::new()
        }
    }
}

/// What the module asks of the host while negotiating.
pub(crate) trait Services {
    /// Milliseconds since the epoch.
    fn now_ms(&self) -> u64;
    /// `n` bytes from a CSPRNG.
    fn random_bytes(&self, n: usize) -> Vec<u8>;
    /// Registered mechanisms for a stream and profile, in offer order.
    fn mechanisms(
        &self,
        stream: &StreamInfo,
        profile: SaslProfile,
    ) -> Result<Vec<MechanismSpec>, PluginError>;
    /// Start an exchange with whichever module implements the mechanism.
    fn mechanism_start(&self, start: MechanismStart) -> Result<MechanismStep, PluginError>;
    /// Continue an exchange.
    fn mechanism_step(&self, response: MechanismResponse) -> Result<MechanismStep, PluginError>;
    /// End an exchange (always called once it is over).
    fn mechanism_end(&self, exchange: u64);
    /// Call a query hook on every module that registered it.
    fn call_hook(&self, name: &str, payload: &[u8]) -> Result<Vec<Vec<u8>>, PluginError>;
    /// An account's stored SCRAM verifiers.
    fn credentials(&self, user: &str) -> Result<Option<AccountCredentials>, PluginError>;
    /// Check a password against a stored verifier: PBKDF2, the one slow step of a login, so the
    /// host runs it off its I/O threads.
    fn verify_password(&self, stored: &ScramCredentials, password: &str) -> bool;
    /// Fire `authentication-success` / `authentication-failure`.
    fn fire(&self, name: &str, outcome: &AuthenticationOutcome);
    /// Log a line (never with secrets).
    fn log(&self, level: LogLevel, message: &str);
}

impl Services for Host {
    fn now_ms(&self) -> u64 {
        Host::now_ms(self)
    }

    fn random_bytes(&self, n: usize) -> Vec<u8> {
        Host::random_bytes(self, n)
    }

    fn mechanisms(
        &self,
        stream: &StreamInfo,
        profile: SaslProfile,
    ) -> Result<Vec<MechanismSpec>, PluginError> {
        HostCalls::mechanisms(self, stream.clone(), profile)
    }

    fn mechanism_start(&self, start: MechanismStart) -> Result<MechanismStep, PluginError> {
        HostCalls::mechanism_start(self, start)
    }

    fn mechanism_step(&self, response: MechanismResponse) -> Result<MechanismStep, PluginError> {
        HostCalls::mechanism_step(self, response)
    }

    fn mechanism_end(&self, exchange: u64) {
        if let Err(e) = HostCalls::mechanism_end(self, exchange) {
            Host::log(
                self,
                LogLevel::Debug,
                &format!("mechanism-end {exchange}: {e}"),
            );
        }
    }

    fn call_hook(&self, name: &str, payload: &[u8]) -> Result<Vec<Vec<u8>>, PluginError> {
        HostCalls::call_hook(self, name, tessera_plugin_api::wire::Bytes::new(payload))
    }

    fn credentials(&self, user: &str) -> Result<Option<AccountCredentials>, PluginError> {
        self.get_credentials(user)
    }

    fn verify_password(&self, stored: &ScramCredentials, password: &str) -> bool {
        self.blocking(|| tessera_sasl::scram::verify_password(stored, password))
    }

    fn fire(&self, name: &str, outcome: &AuthenticationOutcome) {
        if let Err(e) = Host::fire(self, name, outcome) {
            Host::log(self, LogLevel::Warn, &format!("cannot fire {name}: {e}"));
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        Host::log(self, level, message);
    }
}
