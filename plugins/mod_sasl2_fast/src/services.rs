//! The host services the module needs, as a trait: production code passes the SDK's [`Host`];
//! tests pass an in-memory fake. Everything that touches the clock, the RNG, the account store
//! or this module's key-value store goes through it (sans-IO).

use std::sync::{Mutex, MutexGuard, PoisonError};

use tessera_plugin_api::protocol::{AccountCredentials, KvScope};
use tessera_plugin_api::{Host, LogLevel, PluginError};

/// Lock a mutex, recovering from poisoning. Never hold the guard across a host call.
pub(crate) fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the module asks of the host.
pub(crate) trait Services {
    /// Milliseconds since the epoch.
    fn now_ms(&self) -> u64;
    /// `n` bytes from a CSPRNG.
    fn random_bytes(&self, n: usize) -> Vec<u8>;
    /// An account's credentials (for `password_changed_at_ms`); `None` when it does not exist.
    fn credentials(&self, user: &str) -> Result<Option<AccountCredentials>, PluginError>;
    /// Read a key of this module's store.
    fn kv_get(&self, scope: &KvScope<'_>, key: &str) -> Result<Option<String>, PluginError>;
    /// Write a key.
    fn kv_put(&self, scope: &KvScope<'_>, key: &str, value: &str) -> Result<(), PluginError>;
    /// Delete a key; whether it existed.
    fn kv_delete(&self, scope: &KvScope<'_>, key: &str) -> Result<bool, PluginError>;
    /// Keys and values starting with `prefix`.
    fn kv_list(
        &self,
        scope: &KvScope<'_>,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, PluginError>;
    /// Log a line (never with tokens).
    fn log(&self, level: LogLevel, message: &str);
}

impl Services for Host {
    fn now_ms(&self) -> u64 {
        Host::now_ms(self)
    }

    fn random_bytes(&self, n: usize) -> Vec<u8> {
        Host::random_bytes(self, n)
    }

    fn credentials(&self, user: &str) -> Result<Option<AccountCredentials>, PluginError> {
        self.get_credentials(user)
    }

    fn kv_get(&self, scope: &KvScope<'_>, key: &str) -> Result<Option<String>, PluginError> {
        Host::kv_get(self, *scope, key)
    }

    fn kv_put(&self, scope: &KvScope<'_>, key: &str, value: &str) -> Result<(), PluginError> {
        Host::kv_put(self, *scope, key, value)
    }

    fn kv_delete(&self, scope: &KvScope<'_>, key: &str) -> Result<bool, PluginError> {
        Host::kv_delete(self, *scope, key)
    }

    fn kv_list(
        &self,
        scope: &KvScope<'_>,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, PluginError> {
        Host::kv_list(self, *scope, prefix)
    }

    fn log(&self, level: LogLevel, message: &str) {
        Host::log(self, level, message);
    }
}
