//! Sessions kept without a connection (XEP-0198 hibernation, decided by a module through
//! `session_keep`): when a kept, bound session loses its connection it stays in the session
//! table, detached, until a stream takes it over (`StreamAction::Resume`), its time runs out,
//! or the host closes it (password change, deletion, shutdown, `close_session`, an overflowing
//! acknowledgement queue). Only then is it removed, what it held (unacknowledged, then
//! queued) handed on to offline storage or bounced, and `session-closed` fired.

use std::sync::Arc;
use std::time::Duration;

use tessera_plugin_api::events::{self, SessionEvent};

use crate::router::leftovers;
use crate::sessions::outbox::Closed;
use crate::sessions::{Lifecycle, SessionEntry};
use crate::Shared;

/// `session` was just detached (its connection ended with `reason`): tell the modules.
pub(super) fn announce(shared: &Shared, session: &SessionEntry, reason: &str) {
    tracing::info!(jid = %session.jid(), keep_ms = session.kept_ms(), reason, "session detached");
    shared.fire(
        events::SESSION_DETACHED,
        &SessionEvent {
            stream_id: session.stream_id,
            jid: Some(session.jid()),
            reason: Some(reason.to_owned()),
        },
    );
}

/// Wait for a detached session's end: taken over, its time run out, or closed.
pub(super) fn wait(shared: &Arc<Shared>, session: Arc<SessionEntry>) {
    let keep = Duration::from_millis(session.kept_ms());
    let shared = shared.clone();
    tokio::spawn(async move {
        let why = tokio::select! {
            () = tokio::time::sleep(keep) => "detached session expired".to_owned(),
            req = session.close_requested() => format!("stream error: {}", req.condition),
        };
        if !session.transition(Lifecycle::Detached, Lifecycle::Ended) {
            // Taken over meanwhile: it lives on in another stream.
            return;
        }
        tracing::info!(jid = %session.jid(), why, "detached session ended");
        // Out of routing, then what it held goes the undeliverable way, in order: the stanzas
        // written and never acknowledged (stream management), then those queued since.
        let ending = shared.sessions.remove_ending(&session);
        session.outbox.close(Closed::SessionEnded);
        let unacked = session
            .with_acks(|acks| acks.take_unacked())
            .unwrap_or_default();
        session.outbox.requeue_front(unacked);
        leftovers::hand_on(&shared, &session);
        drop(ending);
        shared.fire(
            events::SESSION_CLOSED,
            &SessionEvent {
                stream_id: session.stream_id,
                jid: Some(session.jid()),
                reason: Some(why),
            },
        );
    });
}
