//! The table of authenticated streams: who is online, under which full JID, and how to reach
//! each connection task (its [`outbox::Outbox`], bounded in bytes and stanzas, plus an
//! out-of-band close signal that a full outbox cannot block).

pub mod acks;
pub mod outbox;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI8, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tessera_plugin_api::StreamCondition;

use dashmap::DashMap;
use tessera_plugin_api::protocol::SessionInfo;
use tessera_plugin_api::stanza::SessionView;
use tokio::sync::Notify;

use self::acks::SessionAcks;
use self::outbox::{Outbox, Push, Queued};
use tessera_plugin_api::acks::{AckSettings, AckStatus};

/// The stream error that closes a session that stopped reading (its outbox is full and its
/// connection wrote nothing for `c2s.send_timeout`). `<policy-violation/>`, as ejabberd closes
/// a stream whose acknowledgement queue overflows: the client broke a rule of the service (it
/// must read what it is sent). `<resource-constraint/>` is for a server short of resources as
/// a whole (RFC 6120 §4.9.3.17); here the server is fine and one client is not reading.
/// Neither Prosody nor ejabberd sends anything (their buffers are full); Tessera writes the
/// error after the last whole stanza and gives the client a grace period to read it.
pub const NOT_READING: StreamCondition = StreamCondition::PolicyViolation;
/// Its text.
pub const NOT_READING_TEXT: &str = "Too much unread data: the client did not read its stream";
/// The text of the `<policy-violation/>` that ends a session holding more unacknowledged and
/// queued stanzas than its acknowledgement queue allows (XEP-0198; ejabberd's `max_ack_queue`
/// ends it the same way).
pub const TOO_MANY_UNACKED_TEXT: &str = "Too many unacknowledged stanzas";
/// The longest a session is kept after its connection is lost: a module (or a bug in one)
/// cannot pin sessions for ever.
pub const MAX_KEEP_MS: u64 = 24 * 60 * 60 * 1000;

/// Why and how a session must close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    /// Stream error condition (`reset`, `conflict`, `not-authorized`, ...).
    pub condition: StreamCondition,
    /// Optional text.
    pub text: Option<String>,
}

/// The life of a session: `Live` (its connection serves it) → `Detached` (kept after a lost
/// connection) → `Moved` (a stream took it over) or `Ended` (removed, `session-closed` fired).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Lifecycle {
    /// Served by its connection.
    Live = 0,
    /// Kept without a connection, waiting for resumption.
    Detached = 1,
    /// Taken over by another stream (lives on there).
    Moved = 2,
    /// Over.
    Ended = 3,
}

impl Lifecycle {
    fn of(v: u8) -> Self {
        match v {
            0 => Self::Live,
            1 => Self::Detached,
            2 => Self::Moved,
            _ => Self::Ended,
        }
    }
}

/// One authenticated stream.
#[derive(Debug)]
pub struct SessionEntry {
    /// Connection id.
    pub stream_id: u64,
    /// Account localpart.
    pub user: String,
    /// Bare JID.
    pub bare: String,
    /// Resource once bound.
    pub resource: Mutex<Option<String>>,
    /// SASL2 user-agent id.
    pub user_agent_id: Option<String>,
    /// Client IP.
    pub peer_ip: String,
    /// Whether the client sent initial presence (receives bare-JID messages and presence).
    pub available: AtomicBool,
    /// The priority of its last available presence (RFC 6121 §4.7.2.3).
    pub priority: AtomicI8,
    /// Values modules keep for this session, by (module, key); dropped with the session.
    module_state: Mutex<HashMap<(String, String), Vec<u8>>>,
    /// Modules attached to this session's `SessionOut` hooks, and a flag read on every
    /// delivery so that sessions nobody attached to pay one atomic load.
    attached: Mutex<Vec<String>>,
    has_attached: AtomicBool,
    /// How long a module asked to keep this session after its connection is lost (0: not).
    keep_ms: AtomicU64,
    /// Its XEP-0198 acknowledgement queue, once a module turned it on (boxed: most sessions
    /// of a server without stream management pay one pointer), and a flag read per stanza.
    acks: Mutex<Option<Box<SessionAcks>>>,
    has_acks: AtomicBool,
    /// Where it is in its life ([`Lifecycle`]); every transition is one compare-exchange, so
    /// ending, detaching and being taken over cannot both happen to one session.
    lifecycle: AtomicU8,
    /// What waits to be written to its connection.
    pub outbox: Outbox,
    /// Taken by whoever hands on a batch of what it never wrote (its connection, or a sender
    /// helping), so batches go in order.
    pub handing_on: Mutex<()>,
    close: Mutex<Option<CloseRequest>>,
    closed: Notify,
}

impl SessionEntry {
    /// Queue a serialised stanza for the client (see [`Outbox::push`]). When it overflows an
    /// outbox whose connection has stopped writing, the session is closed with
    /// [`NOT_READING`]; it and everything queued go the undeliverable way when the connection
    /// ends ([`Outbox::drain`]). [`Push::Shed`] and [`Push::Refused`] leave it to the caller.
    pub fn deliver(&self, item: Queued) -> Push {
        // While connected, what is written is bounded where it is written (and the outbox by
        // its own bounds); while detached, what queues counts too.
        let held = self
            .is_detached()
            .then(|| self.with_acks(|a| (a.unacked_len(), a.settings().max_queue)))
            .flatten();
        if let Some((unacked, max)) = held {
            if unacked + self.outbox.figures().stanzas >= max as usize {
                tracing::warn!(
                    jid = %self.jid(),
                    stream = self.stream_id,
                    unacked,
                    "too many unacknowledged stanzas; closing the session"
                );
                self.request_close(
                    StreamCondition::PolicyViolation,
                    Some(TOO_MANY_UNACKED_TEXT),
                );
            }
        }
        let push = self.outbox.push(item);
        if push == Push::Overflowed {
            let figures = self.outbox.figures();
            tracing::warn!(
                jid = %self.jid(),
                stream = self.stream_id,
                stanzas = figures.stanzas,
                bytes = figures.bytes,
                "send buffer full and the client is not reading; closing the session"
            );
            self.request_close(NOT_READING, Some(NOT_READING_TEXT));
        }
        push
    }

    /// Ask the connection task to close with a stream error (first request wins).
    pub fn request_close(&self, condition: StreamCondition, text: Option<&str>) {
        if let Ok(mut slot) = self.close.lock() {
            if slot.is_none() {
                *slot = Some(CloseRequest {
                    condition,
                    text: text.map(str::to_owned),
                });
            }
        }
        self.closed.notify_one();
    }

    /// Wait until a close is requested, then take the request.
    pub async fn close_requested(&self) -> CloseRequest {
        loop {
            if let Some(req) = self.close.lock().ok().and_then(|mut s| s.take()) {
                return req;
            }
            self.closed.notified().await;
        }
    }

    /// The full JID if bound, else the bare JID.
    pub fn jid(&self) -> String {
        match self.resource.lock().ok().and_then(|r| r.clone()) {
            Some(r) => format!("{}/{r}", self.bare),
            None => self.bare.clone(),
        }
    }

    /// Whether a resource is bound.
    pub fn is_bound(&self) -> bool {
        self.resource.lock().map(|r| r.is_some()).unwrap_or(false)
    }

    /// A module's value for this session.
    pub fn state_get(&self, module: &str, key: &str) -> Option<Vec<u8>> {
        let state = self.module_state.lock().ok()?;
        state.get(&(module.to_owned(), key.to_owned())).cloned()
    }

    /// Set or remove a module's value for this session.
    pub fn state_set(&self, module: &str, key: &str, value: Option<Vec<u8>>) {
        if let Ok(mut state) = self.module_state.lock() {
            let slot = (module.to_owned(), key.to_owned());
            match value {
                Some(v) => state.insert(slot, v),
                None => state.remove(&slot),
            };
        }
    }

    /// Attach a module to (or detach it from) this session's `SessionOut` hooks.
    pub fn attach(&self, module: &str, attached: bool) {
        if let Ok(mut list) = self.attached.lock() {
            list.retain(|m| m != module);
            if attached {
                list.push(module.to_owned());
            }
            self.has_attached.store(!list.is_empty(), Ordering::Release);
        }
    }

    /// The modules attached to this session (empty for most sessions, at the cost of one load).
    pub fn attached(&self) -> Vec<String> {
        if !self.has_attached.load(Ordering::Acquire) {
            return Vec::new();
        }
        self.attached.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// What modules see of this session.
    pub fn view(&self) -> SessionView {
        SessionView {
            stream: self.stream_id,
            full_jid: self
                .resource
                .lock()
                .ok()
                .and_then(|r| r.as_ref().map(|r| format!("{}/{r}", self.bare))),
            available: self.available.load(Ordering::Relaxed),
            priority: self.priority.load(Ordering::Relaxed),
            detached: self.is_detached(),
        }
    }

    /// Keep this session for `ms` after its connection is lost (`0`: do not).
    pub fn keep(&self, ms: u64) {
        self.keep_ms.store(ms, Ordering::Relaxed);
    }

    /// How long it is kept after a lost connection (0: not kept).
    pub fn kept_ms(&self) -> u64 {
        self.keep_ms.load(Ordering::Relaxed)
    }

    /// Turn on its acknowledgement queue (and keep it `settings.keep_ms` after a lost
    /// connection), holding at most `max_bytes` unacknowledged; `false` when it is on already.
    pub fn enable_acks(&self, settings: AckSettings, max_bytes: usize) -> bool {
        let Ok(mut slot) = self.acks.lock() else {
            return false;
        };
        if slot.is_some() {
            return false;
        }
        self.keep(settings.keep_ms.min(MAX_KEEP_MS));
        *slot = Some(Box::new(SessionAcks::new(settings, max_bytes)));
        self.has_acks.store(true, Ordering::Release);
        true
    }

    /// Whether its acknowledgement queue is on (one load).
    pub fn has_acks(&self) -> bool {
        self.has_acks.load(Ordering::Acquire)
    }

    /// Work on its acknowledgement queue, if it has one.
    pub fn with_acks<R>(&self, work: impl FnOnce(&mut SessionAcks) -> R) -> Option<R> {
        if !self.has_acks() {
            return None;
        }
        let mut slot = self.acks.lock().ok()?;
        slot.as_deref_mut().map(work)
    }

    /// The client acknowledged `h`: the released stanzas are written for good (their copy
    /// groups learn it); answers the outcome and how many were released.
    pub fn acknowledge(&self, h: u32) -> (tessera_plugin_api::acks::AckOutcome, u64) {
        let mut released = 0;
        let outcome = self
            .with_acks(|acks| {
                acks.ack(h, |unacked| {
                    unacked.item.wrote();
                    released += 1;
                })
            })
            .unwrap_or(tessera_plugin_api::acks::AckOutcome::NotEnabled);
        (outcome, released)
    }

    /// Its acknowledgement counters, for modules.
    pub fn acks_status(&self) -> Option<AckStatus> {
        let detached = self.is_detached();
        self.with_acks(|a| a.status(detached))
    }

    /// Take its acknowledgement queue (a stream takes the session over).
    fn take_acks(&self) -> Option<Box<SessionAcks>> {
        let taken = self.acks.lock().ok()?.take();
        self.has_acks.store(false, Ordering::Release);
        taken
    }

    fn put_acks(&self, acks: Box<SessionAcks>) {
        if let Ok(mut slot) = self.acks.lock() {
            *slot = Some(acks);
            self.has_acks.store(true, Ordering::Release);
        }
    }

    /// Where it is in its life.
    pub fn lifecycle(&self) -> Lifecycle {
        Lifecycle::of(self.lifecycle.load(Ordering::Acquire))
    }

    /// Move from `from` to `to`; `false` when it was not in `from` (someone else moved it).
    pub fn transition(&self, from: Lifecycle, to: Lifecycle) -> bool {
        self.lifecycle
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Whether its connection is gone and it waits for resumption.
    pub fn is_detached(&self) -> bool {
        self.lifecycle() == Lifecycle::Detached
    }

    /// Whether a stream took it over.
    pub fn is_moved(&self) -> bool {
        self.lifecycle() == Lifecycle::Moved
    }

    /// Whether a close was requested and not yet taken.
    fn close_pending(&self) -> bool {
        self.close.lock().map(|c| c.is_some()).unwrap_or(true)
    }

    fn info(&self) -> SessionInfo {
        SessionInfo {
            stream_id: self.stream_id,
            jid: self.jid(),
            user_agent_id: self.user_agent_id.clone(),
            peer_ip: self.peer_ip.clone(),
        }
    }
}

/// Held while a removed session's stanzas are handed on ([`Sessions::remove_ending`]).
#[derive(Debug)]
pub struct Ending<'a> {
    sessions: &'a Sessions,
    user: String,
    stream_id: u64,
    registered: bool,
}

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        if self.registered {
            let stream = self.stream_id;
            self.sessions.ending_by_stream.remove(&stream);
            if let Some(mut list) = self.sessions.ending_by_user.get_mut(&self.user) {
                list.retain(|e| e.stream_id != stream);
            }
            self.sessions
                .ending_by_user
                .remove_if(&self.user, |_, list| list.is_empty());
        }
        self.sessions.ending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The outboxes of all sessions together (`tessera status`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct OutboxTotals {
    /// Stanzas waiting to be written.
    pub stanzas: usize,
    /// Their bytes.
    pub bytes: usize,
    /// The fullest outbox now.
    pub largest_bytes: usize,
    /// The most any session's outbox ever held since the server started.
    pub peak_bytes: usize,
}

/// All authenticated streams.
#[derive(Debug, Default)]
pub struct Sessions {
    by_stream: DashMap<u64, Arc<SessionEntry>>,
    by_user: DashMap<String, Vec<u64>>,
    by_full_jid: DashMap<String, u64>,
    /// Sessions removed from the table whose unwritten stanzas are still being stored or
    /// bounced (shutdown waits for them), and the latest of each account.
    ending: AtomicUsize,
    ending_by_user: DashMap<String, Vec<Arc<SessionEntry>>>,
    ending_by_stream: DashMap<u64, Arc<SessionEntry>>,
    /// The most bytes any session's outbox ever held since the start.
    outbox_peak: Arc<AtomicUsize>,
}

impl Sessions {
    /// Register an authenticated stream with an outbox of these bounds.
    pub fn authenticate(
        &self,
        stream_id: u64,
        user: &str,
        domain: &str,
        user_agent_id: Option<String>,
        peer_ip: &str,
        limits: outbox::Limits,
    ) -> Arc<SessionEntry> {
        let entry = Arc::new(SessionEntry {
            stream_id,
            user: user.to_owned(),
            bare: format!("{user}@{domain}"),
            resource: Mutex::new(None),
            user_agent_id,
            peer_ip: peer_ip.to_owned(),
            available: AtomicBool::new(false),
            priority: AtomicI8::new(0),
            module_state: Mutex::new(HashMap::new()),
            attached: Mutex::new(Vec::new()),
            has_attached: AtomicBool::new(false),
            keep_ms: AtomicU64::new(0),
            acks: Mutex::new(None),
            has_acks: AtomicBool::new(false),
            lifecycle: AtomicU8::new(Lifecycle::Live as u8),
            outbox: Outbox::sharing_peak(limits, self.outbox_peak.clone()),
            handing_on: Mutex::new(()),
            close: Mutex::new(None),
            closed: Notify::new(),
        });
        self.by_stream.insert(stream_id, entry.clone());
        self.by_user
            .entry(user.to_owned())
            .or_default()
            .push(stream_id);
        entry
    }

    /// Bind a resource. A session already bound to the same full JID is told to close with
    /// `<conflict/>` and replaced (RFC 6120 §7.7.2.2, "override the existing session").
    pub fn bind(&self, entry: &SessionEntry, resource: &str) -> String {
        let full = format!("{}/{resource}", entry.bare);
        if let Some(old) = self.by_full_jid.insert(full.clone(), entry.stream_id) {
            if old != entry.stream_id {
                if let Some(old_entry) = self.by_stream.get(&old) {
                    old_entry.request_close(
                        StreamCondition::Conflict,
                        Some("Replaced by new connection"),
                    );
                }
            }
        }
        if let Ok(mut r) = entry.resource.lock() {
            *r = Some(resource.to_owned());
        }
        full
    }

    /// Move session `old` onto `new` (an authenticated, unbound stream of the same account):
    /// `new` gets its resource, presence, module state and attachments; `old` leaves the table
    /// marked moved (its connection, if any, must not end it). The full JID points at `new`
    /// before `old` goes, so routing never finds neither. Returns the full JID and the old entry
    /// (whose connection, if any, the caller closes).
    ///
    /// # Errors
    /// Why it cannot be taken over (for the log): gone, another account, not bound, or `new`
    /// already bound.
    pub fn take_over(
        &self,
        old: u64,
        new: &SessionEntry,
    ) -> Result<(String, Arc<SessionEntry>), &'static str> {
        let (old_entry, resource) = self.check_take_over(old, new)?;
        let full = format!("{}/{resource}", new.bare);
        // The full JID must still be the old session's (a stream that bound it since is not
        // displaced silently), and the old session must be live or detached, not ended or
        // taken, with no close pending (a password change or a close_session wins).
        let claimed = match self.by_full_jid.get_mut(&full) {
            Some(mut id) if *id == old => {
                let from = old_entry.lifecycle();
                let movable = matches!(from, Lifecycle::Live | Lifecycle::Detached)
                    && !old_entry.close_pending()
                    && old_entry.transition(from, Lifecycle::Moved);
                if movable {
                    *id = new.stream_id;
                }
                movable
            }
            _ => return Err("the full JID is no longer the session's"),
        };
        if !claimed {
            return Err("the session is ending or was taken over already");
        }
        if let Ok(mut r) = new.resource.lock() {
            *r = Some(resource);
        }
        if let (Ok(mut from), Ok(mut to)) = (old_entry.module_state.lock(), new.module_state.lock())
        {
            *to = std::mem::take(&mut *from);
        }
        for module in old_entry.attached() {
            new.attach(&module, true);
        }
        new.available.store(
            old_entry.available.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        new.priority.store(
            old_entry.priority.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        new.keep(old_entry.kept_ms());
        // The acknowledgement queue and what waits for the session go with it: the old
        // connection, if any, takes nothing more once the session is moved (it checks under
        // the queue's lock), and what queued is taken before anything new for the stream.
        if let Some(mut acks) = old_entry.take_acks() {
            acks.reconnected();
            new.put_acks(acks);
        }
        old_entry.outbox.close(outbox::Closed::SessionEnded);
        let mut front = true;
        loop {
            let (_, items) = old_entry.outbox.drain();
            if items.is_empty() {
                break;
            }
            new.outbox.adopt(items, front);
            front = false;
        }
        self.remove(old);
        Ok((full, old_entry))
    }

    /// The static conditions of [`Sessions::take_over`] (the lifecycle is claimed there, in one
    /// step): the old entry and its resource.
    fn check_take_over(
        &self,
        old: u64,
        new: &SessionEntry,
    ) -> Result<(Arc<SessionEntry>, String), &'static str> {
        let old_entry = self.by_stream(old).ok_or("no such session")?;
        if old == new.stream_id {
            return Err("a stream cannot resume itself");
        }
        if old_entry.user != new.user {
            return Err("the session belongs to another account");
        }
        if new.is_bound() {
            return Err("the stream is already bound");
        }
        let resource = old_entry.resource.lock().ok().and_then(|r| r.clone());
        let resource = resource.ok_or("the session was never bound")?;
        Ok((old_entry, resource))
    }

    /// Take a session out of routing while it hands on what it never wrote: until the returned
    /// guard is dropped, shutdown waits ([`Sessions::settled`]) and messages for its account
    /// that no session can take queue behind its leftovers ([`Sessions::ending_of`]).
    pub fn remove_ending(&self, entry: &Arc<SessionEntry>) -> Ending<'_> {
        self.ending.fetch_add(1, Ordering::AcqRel);
        self.ending_by_user
            .entry(entry.user.clone())
            .or_default()
            .push(entry.clone());
        self.ending_by_stream.insert(entry.stream_id, entry.clone());
        self.remove(entry.stream_id);
        Ending {
            sessions: self,
            user: entry.user.clone(),
            stream_id: entry.stream_id,
            registered: true,
        }
    }

    /// Count a session that hands its stanzas on without leaving the table (kept for
    /// resumption, or taken over): shutdown waits for it too.
    pub fn handing_on(&self) -> Ending<'_> {
        self.ending.fetch_add(1, Ordering::AcqRel);
        Ending {
            sessions: self,
            user: String::new(),
            stream_id: 0,
            registered: false,
        }
    }

    /// Sessions removed from the table that are still handing their stanzas on.
    pub fn ending(&self) -> usize {
        self.ending.load(Ordering::Acquire)
    }

    /// The latest session of this account that is handing on its leftovers, if any.
    pub fn ending_of(&self, user: &str) -> Option<Arc<SessionEntry>> {
        self.ending_by_user
            .get(user)
            .and_then(|list| list.last().cloned())
    }

    /// Whether no session is left and none is still handing its stanzas on.
    pub fn settled(&self) -> bool {
        self.by_stream.is_empty() && self.ending.load(Ordering::Acquire) == 0
    }

    /// The outboxes of all sessions together: stanzas and bytes waiting, and the largest.
    pub fn outbox_figures(&self) -> OutboxTotals {
        let mut totals = OutboxTotals::default();
        for e in self.by_stream.iter() {
            let f = e.outbox.figures();
            totals.stanzas += f.stanzas;
            totals.bytes += f.bytes;
            totals.largest_bytes = totals.largest_bytes.max(f.bytes);
        }
        totals.peak_bytes = self.outbox_peak.load(Ordering::Relaxed);
        totals
    }

    /// Forget a stream (on close).
    pub fn remove(&self, stream_id: u64) {
        let Some((_, entry)) = self.by_stream.remove(&stream_id) else {
            return;
        };
        let full = entry.jid();
        self.by_full_jid.remove_if(&full, |_, id| *id == stream_id);
        if let Some(mut ids) = self.by_user.get_mut(&entry.user) {
            ids.retain(|id| *id != stream_id);
        }
        self.by_user.remove_if(&entry.user, |_, ids| ids.is_empty());
    }

    /// The session bound to a full JID.
    pub fn by_full_jid(&self, full: &str) -> Option<Arc<SessionEntry>> {
        let id = *self.by_full_jid.get(full)?;
        self.by_stream.get(&id).map(|e| e.clone())
    }

    /// All streams of an account (bound or not).
    pub fn of_user(&self, user: &str) -> Vec<Arc<SessionEntry>> {
        let ids = self
            .by_user
            .get(user)
            .map(|v| v.clone())
            .unwrap_or_default();
        ids.iter()
            .filter_map(|id| self.by_stream.get(id).map(|e| e.clone()))
            .collect()
    }

    /// Public view of an account's sessions.
    pub fn list(&self, user: &str) -> Vec<SessionInfo> {
        self.of_user(user).iter().map(|e| e.info()).collect()
    }

    /// Close every stream of an account except one; returns how many were told to close.
    pub fn close_user(&self, user: &str, condition: StreamCondition, except: Option<u64>) -> u64 {
        let mut n = 0;
        for e in self.of_user(user) {
            if Some(e.stream_id) != except {
                e.request_close(condition, None);
                n += 1;
            }
        }
        n
    }

    /// Close every authenticated stream (server shutdown).
    pub fn close_all(&self, condition: StreamCondition) {
        for e in self.by_stream.iter() {
            e.request_close(condition, None);
        }
    }

    /// Number of authenticated streams.
    pub fn len(&self) -> usize {
        self.by_stream.len()
    }

    /// Whether no stream is authenticated.
    pub fn is_empty(&self) -> bool {
        self.by_stream.is_empty()
    }

    /// Mark a session available with a priority (its last available presence) or, with
    /// `None`, unavailable.
    pub fn set_presence(entry: &SessionEntry, priority: Option<i8>) {
        if let Some(priority) = priority {
            entry.priority.store(priority, Ordering::Relaxed);
        }
        entry.available.store(priority.is_some(), Ordering::Relaxed);
    }

    /// The session of a stream id.
    pub fn by_stream(&self, stream_id: u64) -> Option<Arc<SessionEntry>> {
        self.by_stream.get(&stream_id).map(|e| e.clone())
    }

    /// The session of a stream id, also while it is out of routing and handing on what it
    /// never wrote (a module re-sending what it held for it: the stanza takes the same way).
    pub fn by_stream_or_ending(&self, stream_id: u64) -> Option<Arc<SessionEntry>> {
        self.by_stream(stream_id)
            .or_else(|| self.ending_by_stream.get(&stream_id).map(|e| e.clone()))
    }
}
