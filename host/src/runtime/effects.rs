//! Effects a module asks for while the host is calling it — stanzas to route, stanzas for one
//! session — applied once the outermost module call (or hook chain) on this thread is over, in
//! the order they were asked for. So a module is never called again from inside its own call
//! (its locks stay safe), and a stanza a hook sends is routed after the chain it is part of:
//! the rule of the bus, applied to stanzas.
//!
//! Every entry into module code takes a [`Scope`]; the effects queued under it run when the
//! last scope on the thread closes. Scopes never span an `.await` (they are thread-local).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;

use tessera_plugin_api::xml::Element;

use crate::Shared;

/// One deferred effect.
#[derive(Debug)]
pub enum Effect {
    /// Route a stanza as the server ([`tessera_plugin_api::HostCalls::route`]).
    Route(Element),
    /// Write a stanza to one session.
    SendToSession {
        /// The session, as it was when the module asked (if it has ended since, the stanza
        /// takes the undeliverable way).
        target: Arc<crate::sessions::SessionEntry>,
        /// The stanza.
        stanza: Element,
    },
}

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    static DRAINING: Cell<bool> = const { Cell::new(false) };
    static QUEUE: RefCell<VecDeque<(Arc<Shared>, Effect)>> = const { RefCell::new(VecDeque::new()) };
}

/// While alive, effects queued on this thread wait; when the last scope closes they are
/// applied.
#[derive(Debug)]
#[must_use = "effects are applied when the scope is dropped"]
pub struct Scope(());

/// Open a scope (around a module call or a whole hook chain).
pub fn scope() -> Scope {
    DEPTH.with(|d| d.set(d.get() + 1));
    Scope(())
}

impl Drop for Scope {
    fn drop(&mut self) {
        let depth = DEPTH.with(|d| {
            let n = d.get().saturating_sub(1);
            d.set(n);
            n
        });
        if depth == 0 && !DRAINING.with(Cell::get) {
            drain();
        }
    }
}

/// Queue an effect; outside any scope it is applied at once.
pub fn defer(shared: Arc<Shared>, effect: Effect) {
    QUEUE.with(|q| q.borrow_mut().push_back((shared, effect)));
    if DEPTH.with(Cell::get) == 0 && !DRAINING.with(Cell::get) {
        drain();
    }
}

/// Resets the draining flag even if applying an effect panics.
struct Draining;

impl Drop for Draining {
    fn drop(&mut self) {
        DRAINING.with(|d| d.set(false));
    }
}

/// Apply queued effects in order; effects queued while applying one (by the hooks it runs) go
/// to the back of the same queue, so the order stays first-asked, first-applied.
fn drain() {
    DRAINING.with(|d| d.set(true));
    let _reset = Draining;
    while let Some((shared, effect)) = QUEUE.with(|q| q.borrow_mut().pop_front()) {
        let _scope = scope();
        match effect {
            Effect::Route(stanza) => crate::router::route_from_server(&shared, stanza),
            Effect::SendToSession { target, stanza } => {
                crate::router::send_to_session(&shared, &target, stanza);
            }
        }
    }
}

/// Effects waiting on this thread (tests).
pub fn pending() -> usize {
    QUEUE.with(|q| q.borrow().len())
}
