//! The host services the module needs, as a trait: production code passes the SDK's [`Host`];
//! unit tests pass an in-memory fake with a settable clock and RNG. Every key-value entry of
//! this module is in the server-wide scope (`KvScope::Global`).

use std::sync::{Mutex, MutexGuard, PoisonError};

use tessera_plugin_api::protocol::{KvScope, Mail};
use tessera_plugin_api::{Host, LogLevel, PluginError};

/// Lock a mutex, recovering from poisoning (a panic elsewhere must not wedge resets).
pub(crate) fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the module asks of the host.
pub(crate) trait Services {
    /// Milliseconds since the epoch.
    fn now_ms(&self) -> u64;
    /// `n` bytes from a CSPRNG.
    fn random_bytes(&self, n: usize) -> Vec<u8>;
    /// The email address stored for an account (`None`: no account or no address).
    fn get_email(&self, user: &str) -> Result<Option<String>, PluginError>;
    /// When an account's password last changed (`None`: no such account).
    fn password_changed_at(&self, user: &str) -> Result<Option<u64>, PluginError>;
    /// Set an account's password; the host fires `user-password-changed`.
    fn set_password(&self, user: &str, password: &str) -> Result<(), PluginError>;
    /// Read a key.
    fn kv_get(&self, key: &str) -> Result<Option<String>, PluginError>;
    /// Write a key.
    fn kv_put(&self, key: &str, value: &str) -> Result<(), PluginError>;
    /// Delete a key.
    fn kv_delete(&self, key: &str) -> Result<bool, PluginError>;
    /// Keys (with values) starting with `prefix`.
    fn kv_list(&self, prefix: &str) -> Result<Vec<(String, String)>, PluginError>;
    /// Queue a mail; returns the operation id of the later `mail-result` event.
    fn send_mail(&self, mail: Mail) -> Result<u64, PluginError>;
    /// Be called back with `timer(tag)` after `delay_ms`.
    fn set_timer(&self, delay_ms: u64, tag: &str) -> Result<u64, PluginError>;
    /// Log a line (never a token, a link, a path or a password).
    fn log(&self, level: LogLevel, message: &str);
}

impl Services for Host {
    fn now_ms(&self) -> u64 {
        Host::now_ms(self)
    }

    fn random_bytes(&self, n: usize) -> Vec<u8> {
        Host::random_bytes(self, n)
    }

    fn get_email(&self, user: &str) -> Result<Option<String>, PluginError> {
        Host::get_email(self, user)
    }

    fn password_changed_at(&self, user: &str) -> Result<Option<u64>, PluginError> {
        Ok(Host::get_credentials(self, user)?.map(|c| c.password_changed_at_ms))
    }

    fn set_password(&self, user: &str, password: &str) -> Result<(), PluginError> {
        Host::set_password(self, user, password, None)
    }

    fn kv_get(&self, key: &str) -> Result<Option<String>, PluginError> {
        Host::kv_get(self, KvScope::Global, key)
    }

    fn kv_put(&self, key: &str, value: &str) -> Result<(), PluginError> {
        Host::kv_put(self, KvScope::Global, key, value)
    }

    fn kv_delete(&self, key: &str) -> Result<bool, PluginError> {
        Host::kv_delete(self, KvScope::Global, key)
    }

    fn kv_list(&self, prefix: &str) -> Result<Vec<(String, String)>, PluginError> {
        Host::kv_list(self, KvScope::Global, prefix)
    }

    fn send_mail(&self, mail: Mail) -> Result<u64, PluginError> {
        Host::send_mail(self, mail)
    }

    fn set_timer(&self, delay_ms: u64, tag: &str) -> Result<u64, PluginError> {
        Host::set_timer(self, delay_ms, tag)
    }

    fn log(&self, level: LogLevel, message: &str) {
        Host::log(self, level, message);
    }
}
