//! Short-lived notes kept per stream between two calls of one login: what a SASL2 task or a
//! mechanism decided in one call and needs in a later one (FAST's pending rotation, an upgrade
//! task's salt). A login can be abandoned at any step, so the notes are bounded: when room is
//! needed, notes older than the time-to-live go first, then the oldest one. A module also drops
//! a stream's note when `session-closed` names it.

use std::collections::HashMap;

/// Notes by stream id, each with the time it was taken.
#[derive(Debug, Clone)]
pub struct StreamNotes<T> {
    by_stream: HashMap<u64, (u64, T)>,
    max: usize,
    ttl_ms: u64,
}

impl<T> StreamNotes<T> {
    /// At most `max` notes; a note older than `ttl_ms` may be dropped to make room.
    pub fn new(max: usize, ttl_ms: u64) -> Self {
        Self {
            by_stream: HashMap::new(),
            max: max.max(1),
            ttl_ms,
        }
    }

    /// Keep `note` for `stream`, taken at `at_ms` (replacing the stream's older note), making
    /// room if needed.
    pub fn insert(&mut self, stream: u64, at_ms: u64, note: T) {
        if !self.by_stream.contains_key(&stream) && self.by_stream.len() >= self.max {
            let ttl = self.ttl_ms;
            self.by_stream
                .retain(|_, (at, _)| at.saturating_add(ttl) > at_ms);
            if self.by_stream.len() >= self.max {
                let oldest = self
                    .by_stream
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(id, _)| *id);
                if let Some(id) = oldest {
                    self.by_stream.remove(&id);
                }
            }
        }
        self.by_stream.insert(stream, (at_ms, note));
    }

    /// Take a stream's note.
    pub fn take(&mut self, stream: u64) -> Option<T> {
        self.by_stream.remove(&stream).map(|(_, note)| note)
    }

    /// Number of notes.
    pub fn len(&self) -> usize {
        self.by_stream.len()
    }

    /// No notes.
    pub fn is_empty(&self) -> bool {
        self.by_stream.is_empty()
    }

    /// Every note as `(stream, taken at, note)`, by stream id (for a hot-swap state).
    pub fn entries(&self) -> Vec<(u64, u64, &T)> {
        let mut out: Vec<_> = self
            .by_stream
            .iter()
            .map(|(id, (at, note))| (*id, *at, note))
            .collect();
        out.sort_by_key(|(id, _, _)| *id);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_consumes_once_and_a_new_note_replaces_the_old() {
        let mut notes = StreamNotes::new(4, 1000);
        notes.insert(7, 1, "a");
        notes.insert(7, 2, "b");
        assert_eq!(notes.len(), 1);
        assert_eq!(notes.take(8), None);
        assert_eq!(notes.take(7), Some("b"));
        assert_eq!(notes.take(7), None);
        assert!(notes.is_empty());
    }

    #[test]
    fn bounded_dropping_stale_notes_first_then_the_oldest() {
        let mut notes = StreamNotes::new(3, 100);
        notes.insert(1, 10, 1);
        notes.insert(2, 20, 2);
        notes.insert(3, 30, 3);
        // Nothing stale at 40: the oldest (stream 1) makes room.
        notes.insert(4, 40, 4);
        assert_eq!(notes.len(), 3);
        assert_eq!(notes.take(1), None);
        // At 135 streams 2 and 3 are stale (taken at 20 and 30): both go, 4 stays.
        notes.insert(5, 135, 5);
        let ids: Vec<u64> = notes.entries().iter().map(|(id, _, _)| *id).collect();
        assert_eq!(ids, [4, 5]);
    }
}
