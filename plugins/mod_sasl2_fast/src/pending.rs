//! The per-stream note a successful FAST authentication leaves for the `sasl2-success` hook
//! (which runs after mod_sasl2's tasks and Bind 2), keyed by stream id. Bounded: entries older
//! than [`PENDING_TTL_MS`] are dropped when room is needed, then the oldest.
//!
//! Hot-swap format: one version byte ([`STATE_VERSION`]) followed by JSON of the entries. The
//! notes are short-lived and losing them is harmless (no rotation for that one login; an
//! `invalidate` has already been carried out), so an empty state is accepted too.

use tessera_plugin_api::notes::StreamNotes;
use tessera_plugin_api::{PluginError, PluginErrorKind};

use crate::auth::Pending;

/// Most streams with a note.
pub(crate) const MAX_PENDING: usize = 4096;
/// Age after which a note may be dropped to make room (tasks such as 2FA can take minutes).
pub(crate) const PENDING_TTL_MS: u64 = 600_000;
/// The current state format version.
pub(crate) const STATE_VERSION: u8 = 1;

/// Notes by stream id.
#[derive(Debug)]
pub(crate) struct Pendings {
    notes: StreamNotes<Pending>,
}

impl Default for Pendings {
    fn default() -> Self {
        Self {
            notes: StreamNotes::new(MAX_PENDING, PENDING_TTL_MS),
        }
    }
}

impl Pendings {
    /// Record a note for a stream (replacing an older one), making room if needed.
    pub(crate) fn insert(&mut self, stream: u64, pending: Pending) {
        self.notes.insert(stream, pending.at_ms, pending);
    }

    /// Take a stream's note.
    pub(crate) fn take(&mut self, stream: u64) -> Option<Pending> {
        self.notes.take(stream)
    }

    /// Number of notes.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.notes.len()
    }

    /// The hot-swap state.
    ///
    /// # Errors
    /// Only if serialisation fails.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, PluginError> {
        let entries: Vec<(u64, &Pending)> = self
            .notes
            .entries()
            .into_iter()
            .map(|(id, _, p)| (id, p))
            .collect();
        let mut out = vec![STATE_VERSION];
        serde_json::to_writer(&mut out, &entries)
            .map_err(|e| PluginError::internal(format!("cannot save state: {e}")))?;
        Ok(out)
    }

    /// Load a previous instance's state (empty bytes: nothing).
    ///
    /// # Errors
    /// [`PluginErrorKind::BAD_STATE`] for another version or unreadable content.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, PluginError> {
        let bad = |m: String| PluginError::new(PluginErrorKind::BAD_STATE, m);
        let entries: Vec<(u64, Pending)> = match bytes.split_first() {
            None => Vec::new(),
            Some((&STATE_VERSION, body)) => serde_json::from_slice(body)
                .map_err(|e| bad(format!("mod_sasl2_fast state unreadable: {e}")))?,
            Some((v, _)) => {
                return Err(bad(format!(
                    "mod_sasl2_fast state format {v} is not supported (expected {STATE_VERSION})"
                )))
            }
        };
        let mut out = Self::default();
        for (id, p) in entries {
            out.insert(id, p);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Slot;

    fn note(at_ms: u64) -> Pending {
        Pending {
            user: "alice".into(),
            ua_id: "ua".into(),
            mechanism: "HT-SHA-256-NONE".into(),
            slot: Slot::Current,
            rotation_due: true,
            invalidate: false,
            at_ms,
        }
    }

    #[test]
    fn take_consumes_once() {
        let mut p = Pendings::default();
        p.insert(7, note(1));
        assert_eq!(p.take(8), None);
        assert_eq!(p.take(7), Some(note(1)));
        assert_eq!(p.take(7), None);
    }

    #[test]
    fn bounded_dropping_stale_then_oldest() {
        let mut p = Pendings::default();
        for id in 0..MAX_PENDING as u64 {
            p.insert(id, note(1_000_000 + id));
        }
        assert_eq!(p.len(), MAX_PENDING);
        // Nothing is stale yet: the oldest (stream 0) makes room.
        p.insert(u64::MAX, note(1_000_000 + MAX_PENDING as u64));
        assert_eq!(p.len(), MAX_PENDING);
        assert_eq!(p.take(0), None);
        assert!(p.take(1).is_some());
        // Much later every old note is stale and all go at once.
        p.insert(1, note(1_000_000 + PENDING_TTL_MS * 2));
        p.insert(2, note(1_000_000 + PENDING_TTL_MS * 2));
        let late = 10_000_000 + PENDING_TTL_MS * 2;
        for id in 0..MAX_PENDING as u64 {
            p.insert(10_000 + id, note(late));
        }
        assert_eq!(p.len(), MAX_PENDING);
        assert!(p.take(1).is_none() && p.take(u64::MAX).is_none());
    }

    #[test]
    fn state_round_trip_and_refusals() {
        let mut p = Pendings::default();
        p.insert(3, note(5));
        let bytes = p.encode().unwrap_or_default();
        assert_eq!(bytes.first(), Some(&STATE_VERSION));
        let mut back = Pendings::decode(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.take(3), Some(note(5)));
        assert_eq!(Pendings::decode(&[]).map(|p| p.len()).ok(), Some(0));
        let err = Pendings::decode(&[2, b'[', b']']).expect_err("future version");
        assert_eq!(err.kind, PluginErrorKind::BAD_STATE);
        let err = Pendings::decode(&[STATE_VERSION, b'x']).expect_err("garbage");
        assert_eq!(err.kind, PluginErrorKind::BAD_STATE);
    }
}
