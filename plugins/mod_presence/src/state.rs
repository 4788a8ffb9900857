//! What the module remembers of each session (pure): its last broadcast presence, and the
//! entities it sent directed presence to (RFC 6121 §4.6), which get `unavailable` when it goes.
//! Kept in memory and handed over on a hot swap.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

/// Most entities one session may have sent directed presence to and not yet undone: each must
/// get `unavailable` when the session goes, so the list is bounded.
pub const MAX_DIRECTED: usize = 1000;

/// One session's presence state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionPresence {
    /// The account.
    pub user: String,
    /// The session's full JID.
    pub full_jid: String,
    /// The last available presence it broadcast (XML, `from` = full JID, no `to`); `None`
    /// while it is not available.
    pub last: Option<String>,
    /// Its priority while available.
    pub priority: i8,
    /// JIDs it sent directed available presence to that do not see its broadcasts.
    pub directed: BTreeSet<String>,
}

/// What a broadcast changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    /// The session was not available before (its initial presence: probes follow).
    pub initial: bool,
    /// It takes messages to the bare JID now and did not before (priority ≥ 0 now, and before
    /// unavailable or negative): stored messages are due.
    pub became_reachable: bool,
}

/// Every session's presence, by stream id.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Presences {
    sessions: HashMap<u64, SessionPresence>,
}

impl Presences {
    /// An available broadcast from a session.
    pub fn available(
        &mut self,
        stream: u64,
        user: &str,
        full_jid: &str,
        presence_xml: String,
        priority: i8,
    ) -> Change {
        let s = self
            .sessions
            .entry(stream)
            .or_insert_with(|| SessionPresence {
                user: user.to_owned(),
                full_jid: full_jid.to_owned(),
                ..SessionPresence::default()
            });
        let initial = s.last.is_none();
        let was_reachable = !initial && s.priority >= 0;
        s.last = Some(presence_xml);
        s.priority = priority;
        Change {
            initial,
            became_reachable: priority >= 0 && !was_reachable,
        }
    }

    /// An unavailable broadcast, or the end of the session: answers what it was (`None` if it
    /// was never available), and forgets its directed presence.
    pub fn unavailable(&mut self, stream: u64) -> Option<SessionPresence> {
        let s = self.sessions.get_mut(&stream)?;
        let was = s.clone();
        s.last = None;
        s.directed.clear();
        Some(was)
    }

    /// The session ended: forget it; answers what it was.
    pub fn closed(&mut self, stream: u64) -> Option<SessionPresence> {
        self.sessions.remove(&stream)
    }

    /// Directed presence from a session to `to` (a JID that does not see its broadcasts):
    /// remembered when available, forgotten when `unavailable` (§4.6.3). Answers `false` when
    /// a new target would exceed [`MAX_DIRECTED`] (nothing is remembered then).
    pub fn directed(
        &mut self,
        stream: u64,
        user: &str,
        full_jid: &str,
        to: &str,
        available: bool,
    ) -> bool {
        let s = self
            .sessions
            .entry(stream)
            .or_insert_with(|| SessionPresence {
                user: user.to_owned(),
                full_jid: full_jid.to_owned(),
                ..SessionPresence::default()
            });
        if !available {
            s.directed.remove(to);
        } else if !s.directed.contains(to) {
            if s.directed.len() >= MAX_DIRECTED {
                return false;
            }
            s.directed.insert(to.to_owned());
        }
        true
    }

    /// A session moved to another stream (stream management resumed it).
    pub fn moved(&mut self, from: u64, to: u64) {
        if let Some(s) = self.sessions.remove(&from) {
            self.sessions.insert(to, s);
        }
    }

    /// The available sessions of an account: (stream, state).
    pub fn available_of(&self, user: &str) -> Vec<(u64, &SessionPresence)> {
        let mut out: Vec<(u64, &SessionPresence)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.user == user && s.last.is_some())
            .map(|(id, s)| (*id, s))
            .collect();
        out.sort_by_key(|(id, _)| *id);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_presence_then_priority_changes_and_unavailable() {
        let mut p = Presences::default();
        let c = p.available(1, "alice", "alice@x/a", "<presence/>".into(), -1);
        assert_eq!(
            c,
            Change {
                initial: true,
                became_reachable: false
            }
        );
        let c = p.available(1, "alice", "alice@x/a", "<presence/>".into(), 0);
        assert_eq!(
            c,
            Change {
                initial: false,
                became_reachable: true
            },
            "negative to non-negative: stored messages are due"
        );
        let c = p.available(1, "alice", "alice@x/a", "<presence/>".into(), 5);
        assert!(!c.initial && !c.became_reachable);
        assert!(p.directed(1, "alice", "alice@x/a", "room@muc/nick", true));
        assert_eq!(p.available_of("alice").len(), 1);
        let was = p.unavailable(1).expect("known");
        assert!(was.last.is_some() && was.directed.contains("room@muc/nick"));
        assert!(p.available_of("alice").is_empty());
        // Available again: a new initial presence.
        assert!(
            p.available(1, "alice", "alice@x/a", "<presence/>".into(), 0)
                .initial
        );
    }

    #[test]
    fn directed_presence_is_bounded_and_a_repeat_or_an_undo_always_fits() {
        let mut p = Presences::default();
        for i in 0..MAX_DIRECTED {
            assert!(p.directed(1, "bob", "bob@x/a", &format!("e{i}@x"), true));
        }
        assert!(!p.directed(1, "bob", "bob@x/a", "one-more@x", true));
        assert!(
            p.directed(1, "bob", "bob@x/a", "e0@x", true),
            "already there"
        );
        assert!(p.directed(1, "bob", "bob@x/a", "e0@x", false));
        assert!(
            p.directed(1, "bob", "bob@x/a", "one-more@x", true),
            "room again"
        );
    }

    #[test]
    fn directed_unavailable_forgets_and_resumption_moves_the_session() {
        let mut p = Presences::default();
        p.available(1, "bob", "bob@x/a", "<presence/>".into(), 0);
        assert!(p.directed(1, "bob", "bob@x/a", "carol@x", true));
        assert!(p.directed(1, "bob", "bob@x/a", "carol@x", false));
        p.moved(1, 7);
        let s = p.closed(7).expect("moved");
        assert!(s.directed.is_empty());
        assert!(p.closed(1).is_none());
    }
}
