//! The gate every call into a module generation passes, so that a reload hands over *all* of
//! its state.
//!
//! Without it a reload asked the old instance for its state while that instance kept serving:
//! a presence, a carbons switch or a bus event it took between `save_state` and the install of
//! its successor changed only the old instance, and was gone with it. Now the reload *pauses*
//! the old generation (new calls wait; the reload waits until the calls already inside have
//! returned), takes its state, starts the successor and installs it, then *hands over*: the
//! waiting calls, and any later call that reaches the old generation through a routing snapshot
//! taken before the install, go to the successor instead. Nothing is served by an instance
//! whose state has already been taken.
//!
//! Bounded both ways, so a swap can never hang the server:
//! * a call that waits longer than [`WAIT_LIMIT`] (the successor's `init` stuck behind a lock
//!   that the waiting caller holds) is refused, and this is logged: it fails like a call to a
//!   module that errs, and the old generation, whose state is already taken, never serves it;
//! * calls that do not leave within the reload's quiesce limit make the reload fail: the gate
//!   opens again and the old generation serves on, as after any failed reload.
//!
//! A call made while the same thread is already inside the generation (a module calls the host,
//! which calls the module again) passes at once: it is part of a call the pause waits for, and
//! waiting would deadlock. The reload's own thread passes too (`save_state`, and a successor's
//! `init` that calls into the old generation).
//!
//! Pure and generic over the successor, so its ordering is unit-tested without plugins.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a call waits for a paused generation before it goes on to the old instance.
pub const WAIT_LIMIT: Duration = Duration::from_secs(2);

const OPEN: u8 = 0;
const PAUSED: u8 = 1;
const HANDED_OVER: u8 = 2;

thread_local! {
    /// The generations (by handle) this thread is inside right now, innermost last.
    static INSIDE: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Which way a call goes at the gate.
#[derive(Debug)]
pub enum Entry<'a, T> {
    /// To this generation. Hold the guard for the length of the call.
    Here(Inside<'a, T>),
    /// To the successor: this generation's state was handed over.
    Successor(T),
    /// Nowhere: a call that only this generation can answer (its own timer) after it handed
    /// its state over. The successor re-arms what it took over.
    Skip,
    /// Refused: it waited [`WAIT_LIMIT`] for a reload that did not finish.
    Refused,
}

/// What a call may do once the generation has handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirect {
    /// Go to the successor.
    Yes,
    /// Stay here: the call belongs to this generation (the next step of a SASL exchange it
    /// started).
    Stay,
    /// Drop the call (a timer this generation set).
    Drop,
}

/// The gate of one generation; `T` is what it hands over to (for a module: the successor,
/// held weakly, and how its stanza hooks are numbered).
#[derive(Debug)]
pub struct Gate<T> {
    handle: u64,
    phase: AtomicU8,
    in_flight: AtomicUsize,
    successor: OnceLock<T>,
    lock: Mutex<()>,
    changed: Condvar,
}

/// A call inside the generation; leaving is counted on drop.
#[derive(Debug)]
pub struct Inside<'a, T> {
    gate: &'a Gate<T>,
    counted: bool,
}

/// Forget the innermost entry of `handle` on this thread's list.
fn leave(handle: u64) {
    INSIDE.with(|inside| {
        let mut inside = inside.borrow_mut();
        if let Some(pos) = inside.iter().rposition(|h| *h == handle) {
            inside.remove(pos);
        }
    });
}

impl<T> Drop for Inside<'_, T> {
    fn drop(&mut self) {
        leave(self.gate.handle);
        if self.counted
            && self.gate.in_flight.fetch_sub(1, Ordering::SeqCst) == 1
            && self.gate.phase.load(Ordering::SeqCst) == PAUSED
        {
            self.gate.notify();
        }
    }
}

/// Why a pause did not take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{calls} call(s) were still running in the module after {waited_ms} ms")]
pub struct Busy {
    /// Calls still inside.
    pub calls: usize,
    /// How long the pause waited.
    pub waited_ms: u64,
}

/// A paused generation: dropping it without [`Paused::hand_over`] opens the gate again.
#[derive(Debug)]
pub struct Paused<'a, T> {
    gate: &'a Gate<T>,
    handed_over: bool,
}

impl<T> Gate<T> {
    fn notify(&self) {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.changed.notify_all();
    }

    fn set_phase(&self, phase: u8) {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.phase.store(phase, Ordering::SeqCst);
        self.changed.notify_all();
    }
}

impl<T: Clone> Gate<T> {
    /// An open gate for the generation `handle`.
    pub fn new(handle: u64) -> Self {
        Self {
            handle,
            phase: AtomicU8::new(OPEN),
            in_flight: AtomicUsize::new(0),
            successor: OnceLock::new(),
            lock: Mutex::new(()),
            changed: Condvar::new(),
        }
    }

    fn is_inside_on_this_thread(&self) -> bool {
        INSIDE.with(|inside| inside.borrow().contains(&self.handle))
    }

    fn here(&self, counted: bool) -> Entry<'_, T> {
        INSIDE.with(|inside| inside.borrow_mut().push(self.handle));
        Entry::Here(Inside {
            gate: self,
            counted,
        })
    }

    /// Pass the gate with a call that may go `redirect` once the generation has handed over.
    pub fn enter(&self, redirect: Redirect) -> Entry<'_, T> {
        if self.is_inside_on_this_thread() {
            return self.here(false);
        }
        // Count first, then look: a pause that set PAUSED after this load sees the count.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if self.phase.load(Ordering::SeqCst) == OPEN {
            return self.here(true);
        }
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.notify();
        }
        // Off the async I/O threads' budget: a worker waiting here lets others run.
        let phase = crate::run_blocking(|| self.wait_while_paused());
        match (phase, self.successor.get(), redirect) {
            (PAUSED, _, _) => return Entry::Refused,
            (HANDED_OVER, Some(next), Redirect::Yes) => return Entry::Successor(next.clone()),
            (HANDED_OVER, Some(_), Redirect::Drop) => return Entry::Skip,
            _ => {}
        }
        // Open again (the reload failed), or a call that stays.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.here(true)
    }

    /// Wait while the gate is paused (at most [`WAIT_LIMIT`]); answers the phase then.
    fn wait_while_paused(&self) -> u8 {
        let started = Instant::now();
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let phase = self.phase.load(Ordering::SeqCst);
            let waited = started.elapsed();
            if phase != PAUSED {
                return phase;
            }
            if waited >= WAIT_LIMIT {
                tracing::warn!(
                    handle = self.handle,
                    waited_ms = waited.as_millis() as u64,
                    "a call waited too long for a module reload and was refused"
                );
                return phase;
            }
            guard = self
                .changed
                .wait_timeout(guard, WAIT_LIMIT - waited)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Stop new calls and wait until the calls inside have left (at most `quiesce`). The
    /// calling thread counts as inside until the returned guard is dropped, so it may call the
    /// generation itself (`save_state`, a successor's `init` that calls it).
    ///
    /// # Errors
    /// [`Busy`] when calls are still inside after `quiesce`; the gate is open again.
    pub fn pause(&self, quiesce: Duration) -> Result<Paused<'_, T>, Busy> {
        let started = Instant::now();
        self.set_phase(PAUSED);
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let calls = self.in_flight.load(Ordering::SeqCst);
            if calls == 0 {
                break;
            }
            let waited = started.elapsed();
            if waited >= quiesce {
                drop(guard);
                self.set_phase(OPEN);
                return Err(Busy {
                    calls,
                    waited_ms: waited.as_millis() as u64,
                });
            }
            guard = self
                .changed
                .wait_timeout(guard, quiesce - waited)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(guard);
        INSIDE.with(|inside| inside.borrow_mut().push(self.handle));
        Ok(Paused {
            gate: self,
            handed_over: false,
        })
    }

    /// What this generation handed over to, if it has.
    pub fn successor(&self) -> Option<&T> {
        self.successor.get()
    }

    /// Calls inside the generation right now (not counting nested ones).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}

impl<T: Clone> Paused<'_, T> {
    /// The successor is installed: every call that waited, and every later one, goes to it.
    pub fn hand_over(mut self, successor: T) {
        // A gate hands over once: a generation is replaced once.
        let _ = self.gate.successor.set(successor);
        self.handed_over = true;
        self.gate.set_phase(HANDED_OVER);
    }
}

impl<T> Drop for Paused<'_, T> {
    fn drop(&mut self) {
        leave(self.gate.handle);
        if !self.handed_over {
            self.gate.set_phase(OPEN);
        }
    }
}

#[cfg(test)]
#[path = "handover_tests.rs"]
mod tests;
