//! Helpers shared by the module's parts. Host services (clock, RNG, store, mail, timers) come
//! through the SDK's `Host`, which the unit tests run on the plugin API's in-memory host
//! (`tessera_plugin_api::testing`). Every key-value entry of this module is in the server-wide
//! scope (`KvScope::Global`).

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Lock a mutex, recovering from poisoning (a panic elsewhere must not wedge resets).
pub(crate) fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
