//! A backlog handed to a session a batch at a time, a timer tick apart: offline messages at
//! login, subscription requests waiting for an answer. A session's output is bounded (a
//! flood that outruns the client closes it), so a module with hundreds of stanzas for one
//! session sends a batch, remembers where it stopped, and comes back on a timer.
//!
//! One [`Paced`] per kind of backlog keeps, for each (session, account), the cursor the next
//! batch starts from. It is the module's state for a hot swap: save [`Paced::pending`] in
//! `save_state` and give it to [`Paced::restore`] in `init`, which sets the timers again (the
//! old generation's timers die with it).

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::protocol::TimerFired;
use crate::sdk::Host;
use crate::sync::locked;
use crate::PluginError;

/// What is still to come: (session's stream, account) → cursor.
pub type Pending = BTreeMap<(u64, String), String>;

/// One kind of paced backlog.
#[derive(Debug)]
pub struct Paced {
    tag: &'static str,
    tick_ms: u64,
    pending: Mutex<Pending>,
}

/// A tick that came for a backlog: go on from `cursor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tick {
    /// The session's stream.
    pub stream: u64,
    /// Its account.
    pub user: String,
    /// Where the last batch stopped.
    pub cursor: String,
}

impl Paced {
    /// No backlog yet; ticks come `tick_ms` apart, with timers tagged `tag` (one word).
    pub fn new(tag: &'static str, tick_ms: u64) -> Self {
        Self {
            tag,
            tick_ms,
            pending: Mutex::new(Pending::new()),
        }
    }

    /// The backlogs a previous generation left ([`Paced::pending`]), each with its timer set
    /// again.
    ///
    /// # Errors
    /// A timer could not be set.
    pub fn restore(
        tag: &'static str,
        tick_ms: u64,
        host: &Host,
        pending: Pending,
    ) -> Result<Self, PluginError> {
        for (stream, user) in pending.keys() {
            host.set_timer(tick_ms, &format!("{tag} {stream} {user}"))?;
        }
        Ok(Self {
            tag,
            tick_ms,
            pending: Mutex::new(pending),
        })
    }

    /// Every backlog still to come (for `save_state`).
    pub fn pending(&self) -> Pending {
        locked(&self.pending).clone()
    }

    /// Come back a tick later for the session's backlog, from `cursor`.
    ///
    /// # Errors
    /// The timer could not be set.
    pub fn next_tick(
        &self,
        host: &Host,
        stream: u64,
        user: &str,
        cursor: String,
    ) -> Result<(), PluginError> {
        locked(&self.pending).insert((stream, user.to_owned()), cursor);
        host.set_timer(self.tick_ms, &format!("{} {stream} {user}", self.tag))
            .map(drop)
    }

    /// The session's backlog is done (or the session is gone).
    pub fn done(&self, stream: u64, user: &str) {
        locked(&self.pending).remove(&(stream, user.to_owned()));
    }

    /// The backlog a timer came for, if it is this one's and still pending.
    pub fn fired(&self, timer: &TimerFired) -> Option<Tick> {
        let mut parts = timer.tag.splitn(3, ' ');
        if parts.next() != Some(self.tag) {
            return None;
        }
        let stream: u64 = parts.next()?.parse().ok()?;
        let user = parts.next()?.to_owned();
        let cursor = locked(&self.pending).get(&(stream, user.clone()))?.clone();
        Some(Tick {
            stream,
            user,
            cursor,
        })
    }
}
