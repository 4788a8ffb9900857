//! The event bus. [`Bus::fire_with`] only enqueues (and drops an event no module hooks); one dispatcher thread delivers each event to the
//! modules that hooked it, highest priority first, after the firing call has returned. Delivery
//! is never re-entrant, so a module firing an event from inside a callback cannot deadlock a
//! swap or recurse into itself. A handler may stop propagation; a failing or panicking handler
//! is logged and the next one still runs.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use tessera_plugin_api::EventFlow;

use crate::runtime::modules::Registry;

/// Events queued beyond this are refused (and logged): the bus is bounded like everything else.
pub const QUEUE_CAPACITY: usize = 65_536;

/// One queued event.
#[derive(Debug, Clone)]
pub struct QueuedEvent {
    /// Event name.
    pub name: String,
    /// The payload's encoding ([`tessera_plugin_api::wire`]).
    pub payload: Vec<u8>,
    /// The module that fired it (`None` for the host).
    pub origin: Option<String>,
}

/// Sending side of the bus.
#[derive(Debug, Clone)]
pub struct Bus {
    tx: SyncSender<Envelope>,
    registry: Arc<Registry>,
}

#[derive(Debug)]
enum Envelope {
    Event(QueuedEvent),
    /// Reply once every event queued before it has been delivered (tests, shutdown, reload).
    Flush(std::sync::mpsc::Sender<()>),
}

impl Bus {
    /// Start the dispatcher thread.
    pub fn start(registry: Arc<Registry>) -> Self {
        let (tx, rx) = sync_channel(QUEUE_CAPACITY);
        let dispatcher = registry.clone();
        let spawned = std::thread::Builder::new()
            .name("tessera-bus".into())
            .spawn(move || dispatch_loop(&rx, &dispatcher));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the event bus thread");
        }
        Self { tx, registry }
    }

    /// Enqueue an event if any loaded module hooks `name` right now; `event` (payload and
    /// origin) is built only then. Firing an event nobody hooks costs nothing (no payload, no
    /// queue, no wake-up of the dispatcher): most events of a login (`session-bound`,
    /// `authentication-success`) have no listener in a default setup. An event queued because
    /// some module hooks it reaches every module hooking it at delivery (one loaded in between
    /// included); one fired while nobody hooks it is gone. `event` returning `None` (a payload
    /// that could not be built) fires nothing.
    // Seam for a cluster bus: events other nodes must see would be forwarded before this check.
    pub fn fire_with(&self, name: &str, event: impl FnOnce() -> Option<(Vec<u8>, Option<String>)>) {
        if !self.registry.routes().events.contains_key(name) {
            return;
        }
        let Some((payload, origin)) = event() else {
            return;
        };
        let event = QueuedEvent {
            name: name.to_owned(),
            payload,
            origin,
        };
        match self.tx.try_send(Envelope::Event(event)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::error!(event = name, "event queue full; event dropped");
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!(event = name, "event bus stopped; event dropped");
            }
        }
    }

    /// Wait until everything queued so far has been delivered. Blocking: call from a blocking
    /// context.
    pub fn flush(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        if self.tx.send(Envelope::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }
}

fn dispatch_loop(rx: &Receiver<Envelope>, registry: &Registry) {
    while let Ok(envelope) = rx.recv() {
        match envelope {
            Envelope::Event(e) => deliver(registry, &e),
            Envelope::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// Deliver one event to its handlers in priority order.
pub fn deliver(registry: &Registry, event: &QueuedEvent) {
    let routes = registry.routes();
    let Some(handlers) = routes.events.get(&event.name) else {
        return;
    };
    let _span = tracing::debug_span!("event", name = %event.name).entered();
    for (_, module) in handlers {
        match module.event(&event.name, &event.payload) {
            Ok(EventFlow::Stop) => {
                tracing::debug!(plugin = %module.name, event = %event.name, "propagation stopped");
                break;
            }
            Ok(EventFlow::Continue) | Err(_) => {}
        }
    }
}
