//! Helpers shared by the module's parts. Everything that touches the clock, the RNG, the
//! account store or this module's key-value store goes through the SDK's `Host`, which tests
//! run on the plugin API's in-memory host (`tessera_plugin_api::testing`).

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Lock a mutex, recovering from poisoning. Never hold the guard across a host call.
pub(crate) fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
