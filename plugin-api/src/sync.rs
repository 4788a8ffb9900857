//! Locking for module state. A module's hooks run on the host's threads, several at once, so
//! state shared between calls sits behind a `Mutex`; [`locked`] is how to take it.
//!
//! ```
//! use std::sync::Mutex;
//! use tessera_plugin_api::sync::locked;
//!
//! let seen = Mutex::new(0u32);
//! *locked(&seen) += 1;
//! assert_eq!(*locked(&seen), 1);
//! ```

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Lock `mutex`, recovering from poisoning: the host turns a panicking hook into an error for
/// that one call, and the state it left must not refuse every later call (a poisoned lock
/// would). Keep what a guard protects consistent at every point a panic could occur, and never
/// hold a guard across a host call: the host may call back into the module.
pub fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_poisoned_by_a_panic_is_still_usable() {
        let state = std::sync::Arc::new(Mutex::new(vec![1]));
        let poisoner = state.clone();
        let panicked = std::thread::spawn(move || {
            let _guard = poisoner.lock();
            panic!("a hook panics while holding the lock");
        })
        .join();
        assert!(panicked.is_err());
        assert!(state.is_poisoned());
        locked(&state).push(2);
        assert_eq!(*locked(&state), [1, 2]);
    }
}
