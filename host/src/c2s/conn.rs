//! One client connection after TLS: stream restarts, authentication through modules, resource
//! binding, stanza routing, and delivery of stanzas and close requests from other tasks.
//!
//! The top level is infallible (axum's rule): every error becomes a stream error sent to the
//! client before the socket closes, and the reason is logged.

use std::net::SocketAddr;
use std::sync::Arc;
use tessera_plugin_api::StreamCondition;

use std::collections::VecDeque;
use tessera_plugin_api::acks::AckSettings;
use tessera_plugin_api::events::{self, SessionEvent, SessionResumed};
use tessera_plugin_api::protocol::{StreamAction, StreamElement, StreamInfo, StreamPhase};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::ModuleCalls;
use tokio::time::Instant;

use super::features::{features, named_account, stream_header, FeatureSet};
use super::throttle::Throttle;
use super::transport::{ReadError, Received, Transport};
use crate::config::Config;
use crate::router::{self, leftovers};
use crate::sessions::acks::Due;
use crate::sessions::outbox::{Closed, CopyGroup, Fate, Queued, Sender};
use crate::sessions::{CloseRequest, Lifecycle, SessionEntry, NOT_READING, NOT_READING_TEXT};
use crate::stream::framer::{Frame, Framer, Limits};
use crate::stream::parse::{parse_element, parse_stream_header, StreamHeader};
use crate::stream::StreamError;
use crate::Shared;

const READ_CHUNK: usize = 4096;
/// Bytes taken from the outbox per write.
const WRITE_BATCH: usize = 64 * 1024;

/// Framer limits from the config, for an authenticated stream.
pub(super) fn limits(config: &Config) -> Limits {
    Limits {
        max_stanza_bytes: config.c2s.max_stanza_size,
        max_depth: config.c2s.max_depth,
        ..Limits::default()
    }
}

/// Framer limits before authentication: what an unauthenticated peer can make the server hold
/// (the framed bytes, the parsed tree, what a module keeps of it) stays small.
pub(super) fn pre_auth_limits(config: &Config) -> Limits {
    Limits {
        max_stanza_bytes: config
            .c2s
            .max_pre_auth_stanza_size
            .min(config.c2s.max_stanza_size),
        max_depth: config.c2s.max_depth,
        max_elements: config.c2s.max_pre_auth_elements,
        ..Limits::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a (new) stream header; the next features are for this set.
    AwaitHeader(FeatureSet),
    PreAuth,
    Authenticated,
    Bound,
}

struct Conn {
    shared: Arc<Shared>,
    io: Transport,
    framer: Framer,
    header: StreamHeader,
    header_sent: bool,
    info: StreamInfo,
    phase: Phase,
    session: Option<Arc<SessionEntry>>,
    /// What is being written: either the connection's own output (stream negotiation, answers
    /// to this client) or a batch taken from the session's outbox, never both.
    out: String,
    /// Bytes of `out` the TLS stream accepted.
    written: usize,
    /// `out` is all written but the TLS stream may still hold some of it.
    unflushed: bool,
    /// The outbox stanzas in `out`, in order.
    batch: VecDeque<Segment>,
    /// When a write last made progress (or a batch was taken): with something to write and
    /// none for `c2s.send_timeout`, the client is not reading.
    last_progress: Instant,
    /// Reading goes before the outbox on the next wake (they alternate).
    read_first: bool,
    /// Frames were left in the framer while answers waited to be written.
    frames_pending: bool,
    throttle: Throttle,
    deadline: Option<Instant>,
    /// The module generation that handled this stream's last pre-auth element: a SASL exchange
    /// that began on a generation completes on it across a hot swap (until it is retired).
    pinned: Option<Arc<crate::runtime::modules::Module>>,
    /// The connection was lost (end of file or an I/O error) rather than closed: the one way
    /// a kept session is detached instead of ended.
    lost: bool,
    /// Counted in `/metrics` as open (by transport) while it lives, and as a session once
    /// authenticated.
    _open: crate::metrics::OpenGuard,
    session_open: Option<crate::metrics::OpenGuard>,
    /// An acknowledgement queue a module asked for inline in this login's Bind 2 request,
    /// turned on when the resource is bound.
    acks_on_bind: Option<AckSettings>,
}

/// One outbox stanza within `Conn::out`.
#[derive(Debug)]
struct Segment {
    start: usize,
    end: usize,
    cost: usize,
    fate: Fate,
    copies: Option<Arc<CopyGroup>>,
    sender: Option<Sender>,
    /// Kept in the session's acknowledgement queue (stream management): it is written for
    /// good when acknowledged, and the queue, not this connection, hands it on if never.
    tracked: bool,
}

/// How `serve` ended: the reason for the log, and the last words for the client.
struct End {
    reason: String,
    farewell: Farewell,
}

enum Farewell {
    /// The connection is gone (or nothing is owed).
    Nothing,
    /// The client closed its stream: close ours.
    CloseTag,
    /// A stream error.
    Error(StreamError),
}

impl End {
    fn quiet(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            farewell: Farewell::Nothing,
        }
    }

    fn closed_by_peer() -> Self {
        Self {
            reason: "stream closed by peer".into(),
            farewell: Farewell::CloseTag,
        }
    }

    fn error(err: StreamError) -> Self {
        tracing::debug!(condition = %err.condition, text = ?err.text, "stream error");
        Self {
            reason: format!("stream error: {}", err.condition),
            farewell: Farewell::Error(err),
        }
    }
}

enum Wake {
    Read(Result<(Received, Vec<u8>), ReadError>),
    Wrote(std::io::Result<usize>),
    Flushed(std::io::Result<()>),
    Queued,
    Throttled,
    Stalled,
    Close(CloseRequest),
    Timeout,
    /// The session's acknowledgement queue wants an `<r/>` written, or gave up waiting for
    /// the answer.
    AckDue,
}

/// What a stream knows of its connection before the client speaks.
pub(super) fn stream_info(
    shared: &Shared,
    id: u64,
    peer: SocketAddr,
    direct_tls: bool,
    tls: TlsFacts,
) -> StreamInfo {
    StreamInfo {
        id,
        domain: shared.config.domain.clone(),
        secure: true,
        direct_tls,
        tls_version: tls.version,
        channel_bindings: tls.channel_bindings,
        from: None,
        peer_ip: peer.ip().to_string(),
        user: None,
        jid: None,
        named_account: None,
    }
}

/// What the TLS layer of a connection tells its stream.
#[derive(Debug, Clone, Default)]
pub struct TlsFacts {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: Option<String>,
    /// Empty where the binding would not be the client's (a WebSocket behind a proxy).
    pub channel_bindings: tessera_plugin_api::protocol::ChannelBindings,
}

impl TlsFacts {
    /// The facts of a server-side TLS connection.
    pub fn of(shared: &Shared, tls: &rustls::ServerConnection) -> Self {
        Self {
            version: crate::tls::version_name(tls),
            channel_bindings: crate::tls::channel_bindings(tls, shared.tls.end_point.as_deref()),
        }
    }
}

/// Serve a connection until it ends; resolves to the reason for the log.
///
/// Not an `async fn`: the connection is built here, on the heap, so that the future (which
/// lives as long as the connection, at its largest state's size) holds a pointer to it and the
/// state of one wait — not also a copy of the arguments it was built from.
pub(super) fn run(
    shared: Arc<Shared>,
    io: Transport,
    info: StreamInfo,
    deadline: Instant,
) -> impl std::future::Future<Output = String> {
    let throttle = Throttle::new(
        shared.config.c2s.receive_rate,
        shared.config.c2s.receive_burst,
        std::time::Instant::now(),
    );
    let transport = io.name(info.direct_tls);
    // On the heap, apart from the task: the task's future is as large as its largest state,
    // and it holds the connection for as long as it lives (see docs/benchmarks.md, memory per
    // idle session).
    let conn = Box::new(Conn {
        _open: shared.metrics.open_connection(transport),
        session_open: None,
        framer: Framer::new(pre_auth_limits(&shared.config)),
        shared,
        io,
        header: StreamHeader::default(),
        header_sent: false,
        info,
        phase: Phase::AwaitHeader(FeatureSet::PreAuth),
        session: None,
        out: String::new(),
        written: 0,
        unflushed: false,
        batch: VecDeque::new(),
        last_progress: Instant::now(),
        read_first: false,
        frames_pending: false,
        throttle,
        deadline: Some(deadline),
        pinned: None,
        lost: false,
        acks_on_bind: None,
    });
    conn.run()
}

/// Resolves when the session's outbox has stanzas to take (never without a session).
async fn outbox_ready(session: Option<Arc<SessionEntry>>) {
    match session {
        Some(s) => s.outbox.ready().await,
        None => std::future::pending().await,
    }
}

async fn close_requested(session: Option<Arc<SessionEntry>>) -> CloseRequest {
    match session {
        Some(s) => s.close_requested().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Conn {
    async fn run(mut self: Box<Self>) -> String {
        let end = self.serve().await;
        // Boxed: the end's state is needed once, not while waiting.
        Box::pin(self.finish(end)).await
    }

    async fn serve(&mut self) -> End {
        loop {
            let writing = self.written < self.out.len() || self.unflushed;
            if !writing && self.frames_pending {
                // Frames held back while the answers to earlier ones were written.
                match self.process_frames().await {
                    Ok(true) => continue,
                    Ok(false) => return End::closed_by_peer(),
                    Err(err) => return End::error(err),
                }
            }
            let wake = if writing {
                // Writing. Nothing is read meanwhile: a client that does not read cannot make
                // the server pile up answers for it. A close request still interrupts, and a
                // write that makes no progress for `send_timeout` means the client stopped
                // reading.
                let pending = self.out.as_bytes().get(self.written..).unwrap_or_default();
                let io = &mut self.io;
                // Both cancel-safe: a write the select drops accepted nothing.
                let progress = async move {
                    if pending.is_empty() {
                        Wake::Flushed(io.flush().await)
                    } else {
                        Wake::Wrote(io.write(pending).await)
                    }
                };
                let stall = self.last_progress + self.shared.config.c2s.send_timeout;
                tokio::select! {
                    biased;
                    c = close_requested(self.session.clone()) => Wake::Close(c),
                    w = progress => w,
                    () = tokio::time::sleep_until(stall) => Wake::Stalled,
                    () = sleep_until(self.deadline) => Wake::Timeout,
                }
            } else {
                let resume = self
                    .throttle
                    .resume_at(std::time::Instant::now())
                    .map(Instant::from_std);
                let ack_due = self.ack_deadline();
                // Reading and taking from the outbox take turns when both are ready: a client
                // flooded with stanzas can still be heard, and one that floods is still written to.
                self.read_first = !self.read_first;
                if self.read_first {
                    tokio::select! {
                        biased;
                        c = close_requested(self.session.clone()) => Wake::Close(c),
                        r = self.io.read_chunk::<READ_CHUNK>(), if resume.is_none() => Wake::Read(r),
                        () = outbox_ready(self.session.clone()) => Wake::Queued,
                        () = sleep_until(resume), if resume.is_some() => Wake::Throttled,
                        () = sleep_until(self.deadline) => Wake::Timeout,
                        () = sleep_until(ack_due), if ack_due.is_some() && resume.is_none() => Wake::AckDue,
                    }
                } else {
                    tokio::select! {
                        biased;
                        c = close_requested(self.session.clone()) => Wake::Close(c),
                        () = outbox_ready(self.session.clone()) => Wake::Queued,
                        r = self.io.read_chunk::<READ_CHUNK>(), if resume.is_none() => Wake::Read(r),
                        () = sleep_until(resume), if resume.is_some() => Wake::Throttled,
                        () = sleep_until(self.deadline) => Wake::Timeout,
                        () = sleep_until(ack_due), if ack_due.is_some() && resume.is_none() => Wake::AckDue,
                    }
                }
            };
            let result = match wake {
                Wake::Read(Ok((
                    Received {
                        bytes: 0,
                        charged: 0,
                    },
                    _,
                ))) => {
                    self.lost = true;
                    return End::quiet("peer closed the connection");
                }
                Wake::Read(Ok((r, bytes))) => {
                    self.throttle.consume(r.charged, std::time::Instant::now());
                    if r.bytes == 0 {
                        Ok(true)
                    } else {
                        self.on_bytes(&bytes).await
                    }
                }
                Wake::Read(Err(ReadError::Io(e))) => {
                    self.lost = true;
                    return End::quiet(format!("read failed: {e}"));
                }
                Wake::Read(Err(ReadError::Stream(err))) => Err(err),
                Wake::Read(Err(ReadError::WebSocket(e))) => {
                    tracing::debug!(error = %e, "WebSocket protocol violation");
                    return End::quiet(format!("WebSocket protocol violation: {e}"));
                }
                Wake::Wrote(Ok(0)) => {
                    self.lost = true;
                    return End::quiet("write failed: the connection took no bytes");
                }
                Wake::Wrote(Ok(n)) => {
                    self.advance(n);
                    Ok(true)
                }
                Wake::Flushed(Ok(())) => {
                    self.flushed();
                    Ok(true)
                }
                Wake::Wrote(Err(e)) | Wake::Flushed(Err(e)) => {
                    self.lost = true;
                    return End::quiet(format!("write failed: {e}"));
                }
                // A batch at a time, back through the select after each: reading gets its
                // turn even while the outbox never empties.
                Wake::Queued => {
                    self.take_batch();
                    Ok(true)
                }
                Wake::Throttled => Ok(true),
                Wake::Close(req) => Err(StreamError {
                    condition: req.condition,
                    text: req.text,
                }),
                Wake::Stalled => {
                    if let Some(session) = &self.session {
                        if session.has_acks() && session.kept_ms() > 0 && session.is_bound() {
                            // A phone that left the network with stanzas on their way: its
                            // session waits for it (stream management), it is not ended.
                            self.lost = true;
                            return End::quiet(format!(
                                "the client read nothing for {:?}",
                                self.shared.config.c2s.send_timeout
                            ));
                        }
                        session.outbox.close(Closed::NotReading);
                    }
                    tracing::warn!(
                        jid = ?self.info.jid,
                        "the client read nothing for {:?}; closing the session",
                        self.shared.config.c2s.send_timeout
                    );
                    Err(StreamError::with_text(NOT_READING, NOT_READING_TEXT))
                }
                Wake::Timeout => Err(StreamError::with_text(
                    StreamCondition::ConnectionTimeout,
                    "negotiation took too long",
                )),
                Wake::AckDue => {
                    if let Some(silent) = self.on_ack_due() {
                        // Dead rather than closed: the session is kept for resumption.
                        self.lost = true;
                        return End::quiet(format!(
                            "no acknowledgement within {} ms of a request",
                            silent
                        ));
                    }
                    Ok(true)
                }
            };
            // Idle connections hold no buffers.
            self.framer.shrink();
            match result {
                Ok(true) => {}
                Ok(false) => return End::closed_by_peer(),
                Err(err) => return End::error(err),
            }
        }
    }

    /// Move the next batch of the session's outbox into `out`.
    fn take_batch(&mut self) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let now = crate::now_ms();
        let (batch, tracked) = if session.has_acks() {
            // Taken and kept under the queue's lock, and not at all once another stream took
            // the session over: that stream gets every stanza this one took.
            let mut within = true;
            let batch = session.with_acks(|acks| {
                if session.is_moved() {
                    return Vec::new();
                }
                let batch = session.outbox.take(WRITE_BATCH);
                for item in &batch {
                    within &= acks.written(item.clone(), now);
                }
                batch
            });
            if !within {
                too_many_unacked(&session);
            }
            (batch.unwrap_or_default(), true)
        } else {
            (session.outbox.take(WRITE_BATCH), false)
        };
        if batch.is_empty() {
            return;
        }
        self.last_progress = Instant::now();
        for item in batch {
            let start = self.out.len();
            self.out.push_str(&item.xml);
            self.batch.push_back(Segment {
                start,
                end: self.out.len(),
                cost: item.cost(),
                fate: item.fate,
                copies: item.copies,
                sender: item.sender,
                tracked,
            });
        }
        self.request_ack_if_due(&session, now);
    }

    /// Write `<r/>` if the session's acknowledgement queue wants one now.
    fn request_ack_if_due(&mut self, session: &SessionEntry, now_ms: u64) {
        let request = session
            .with_acks(|acks| acks.request_due(now_ms).then(|| acks.request(now_ms)))
            .flatten();
        if let Some(request) = request {
            self.out.push_str(&request);
        }
    }

    /// When the session's acknowledgement queue next needs this connection, if it has one.
    fn ack_deadline(&self) -> Option<Instant> {
        let due = self.session.as_ref()?.with_acks(|acks| acks.next())??;
        let at_ms = match due {
            Due::Request(at) | Due::Timeout(at) => at,
        };
        let wait = at_ms.saturating_sub(crate::now_ms());
        Some(Instant::now() + std::time::Duration::from_millis(wait))
    }

    /// The acknowledgement queue's time came: write `<r/>`, or answer how long the client
    /// left a request unanswered (the connection is dead).
    fn on_ack_due(&mut self) -> Option<u64> {
        let session = self.session.clone()?;
        let now = crate::now_ms();
        let silent = session
            .with_acks(|acks| match acks.next() {
                Some(Due::Timeout(at)) if now >= at => Some(acks.settings().ack_timeout_ms),
                _ => None,
            })
            .flatten();
        if silent.is_none() {
            self.request_ack_if_due(&session, now);
        }
        silent
    }

    /// `n` more bytes of `out` were accepted by TLS: the client is reading. Its stanzas count
    /// as written only once TLS has flushed them to the kernel ([`Conn::flushed`]): what
    /// waits in TLS's own buffer when a connection is dropped is lost with it.
    fn advance(&mut self, n: usize) {
        self.written += n;
        self.last_progress = Instant::now();
        if self.written >= self.out.len() {
            self.unflushed = true;
        }
    }

    /// All of `out` reached the kernel: its stanzas are written and leave the outbox's count.
    fn flushed(&mut self) {
        let mut written_for_good = 0;
        let done: Vec<(usize, Option<Sender>)> = self
            .batch
            .drain(..)
            .map(|segment| {
                // A tracked stanza is written for good when acknowledged.
                if !segment.tracked {
                    if let Some(group) = &segment.copies {
                        group.wrote();
                    }
                    written_for_good += 1;
                }
                (segment.cost, segment.sender)
            })
            .collect();
        if !done.is_empty() {
            self.shared.delivery.written(written_for_good);
            if let Some(session) = &self.session {
                session.outbox.written(done);
            }
        }
        // Released, not kept: most connections are idle most of the time.
        self.out = String::new();
        self.batch = VecDeque::new();
        self.written = 0;
        self.unflushed = false;
        self.last_progress = Instant::now();
    }

    /// At the end: the outbox stanzas TLS accepted (wholly or in part) but has not flushed,
    /// which are finished if the connection allows, and those in `out` not yet begun, which
    /// are cut off.
    fn cut_unwritten(&mut self) -> (Vec<Queued>, Vec<Queued>) {
        let first = self
            .batch
            .iter()
            .position(|s| s.start >= self.written)
            .unwrap_or(self.batch.len());
        let unwritten: Vec<Segment> = self.batch.drain(first..).collect();
        let accepted: Vec<Segment> = self.batch.drain(..).collect();
        let item = |out: &str, s: &Segment| Queued {
            xml: out.get(s.start..s.end).unwrap_or_default().to_owned(),
            fate: s.fate,
            copies: s.copies.clone(),
            sender: s.sender,
        };
        let cut = unwritten.first().map(|s| s.start);
        // Tracked ones are in the session's acknowledgement queue, which decides their fate.
        let accepted = accepted
            .iter()
            .filter(|s| !s.tracked)
            .map(|s| item(&self.out, s))
            .collect();
        let unwritten = unwritten
            .iter()
            .filter(|s| !s.tracked)
            .map(|s| item(&self.out, s))
            .collect();
        if let Some(cut) = cut {
            self.out.truncate(cut);
        }
        (accepted, unwritten)
    }

    /// Close the connection: first the session's end (its unwritten stanzas on their way,
    /// `session-closed`), then the rest of the output and the stream error, given
    /// `c2s.close_timeout` to reach a client that may not be reading.
    async fn finish(&mut self, end: End) -> String {
        // An exchange the client abandoned would otherwise pin its module generation (and the
        // mechanism's state) until a reload's drain timed out.
        for (exchange, provider) in self.shared.exchanges.stream_closed(self.info.id) {
            let _ = provider.mechanism_end(exchange);
        }
        // Shutdown waits until the stanza this connection was writing, if any, has its fate.
        let shared = self.shared.clone();
        let settling = shared.sessions.handing_on();
        let (mut accepted, mut unwritten) = self.cut_unwritten();
        // A lost connection cannot finish what TLS still held: the client has at most half of
        // a stanza, which is nothing; those go first among the rest.
        if self.lost {
            accepted.append(&mut unwritten);
            unwritten = std::mem::take(&mut accepted);
            self.out.clear();
            self.written = 0;
        }
        self.end_session(&end.reason, unwritten);
        match &end.farewell {
            Farewell::Nothing => {}
            Farewell::CloseTag => self.out.push_str("</stream:stream>"),
            Farewell::Error(err) => {
                if !self.header_sent {
                    self.out
                        .push_str(&super::features::error_header(&self.shared));
                }
                self.out.push_str(&err.to_xml());
            }
        }
        let rest = self.out.as_bytes().get(self.written..).unwrap_or_default();
        let io = &mut self.io;
        let deadline = Instant::now() + self.shared.config.c2s.close_timeout;
        let written = tokio::time::timeout_at(deadline, async {
            if !rest.is_empty() {
                io.write_all(rest).await?;
            }
            io.flush().await
        })
        .await;
        let delivered = matches!(written, Ok(Ok(())));
        if let Some(session) = self.session.as_ref().filter(|_| !accepted.is_empty()) {
            if delivered {
                for item in &accepted {
                    item.wrote();
                }
                self.shared.delivery.written(accepted.len() as u64);
            } else {
                // Never flushed to the kernel: the client got at most half of one.
                leftovers::dispose_late(&self.shared, session, accepted);
            }
        }
        drop(settling);
        // A WebSocket is closed in every case but a lost connection: after a protocol
        // violation its own close frame, with the precise code, is still to go out.
        if delivered || (self.io.is_websocket() && !self.lost) {
            let _ = tokio::time::timeout_at(deadline, self.io.shutdown()).await;
        } else if !self.lost {
            tracing::debug!("the client did not take the end of its stream in time");
        }
        end.reason
    }

    /// The session's part of the end: kept (detached) or ended, and in every case what its
    /// connection never wrote goes the undeliverable way, in order.
    fn end_session(&mut self, reason: &str, mut unwritten: Vec<Queued>) {
        if let Some(session) = self.session.clone() {
            let keep = self.lost && session.is_bound() && session.kept_ms() > 0;
            let next = if keep {
                Lifecycle::Detached
            } else {
                Lifecycle::Ended
            };
            let moved = !session.transition(Lifecycle::Live, next);
            let keep = keep && !moved;
            if keep && session.has_acks() {
                // Stream management: what was written waits in the acknowledgement queue, and
                // the outbox stays open for what comes until the session is resumed or ends
                // (`detached::wait`), with what this connection took before the queue was on
                // back in front.
                session.outbox.forget_in_flight();
                session.outbox.adopt(unwritten, true);
                super::detached::announce(&self.shared, &session, reason);
                super::detached::wait(&self.shared, session);
                return;
            }
            session.outbox.close(Closed::SessionEnded);
            // Never acknowledged, so never known to be delivered: handed on after what this
            // connection took before the queue was on (moved: the queue went with the
            // session).
            unwritten.extend(
                session
                    .with_acks(|acks| acks.take_unacked())
                    .unwrap_or_default(),
            );
            // Out of routing first (an ended one), so nothing new is queued for it; counted
            // until its stanzas are handed on, so shutdown waits for them.
            let ending = if moved || keep {
                self.shared.sessions.handing_on()
            } else {
                self.shared.sessions.remove_ending(&session)
            };
            if keep {
                // Modules learn of the detach before they are offered its leftovers (stream
                // management keeps its own session's).
                super::detached::announce(&self.shared, &session, reason);
            }
            // Moved: another stream took the session over and lives on with it; what this
            // connection had not written is handed on all the same (stream management claims
            // its own session's).
            session.outbox.requeue_front(unwritten);
            leftovers::hand_on(&self.shared, &session);
            drop(ending);
            if keep {
                super::detached::wait(&self.shared, session);
                return;
            }
            if moved {
                return;
            }
        }
        let event = SessionEvent {
            stream_id: self.info.id,
            jid: self.info.jid.clone().or_else(|| {
                self.info
                    .user
                    .as_ref()
                    .map(|u| format!("{u}@{}", self.info.domain))
            }),
            reason: Some(reason.to_owned()),
        };
        self.shared.fire(events::SESSION_CLOSED, &event);
    }

    /// Feed bytes; `Ok(false)` when the client closed the stream.
    async fn on_bytes(&mut self, bytes: &[u8]) -> Result<bool, StreamError> {
        self.framer.push(bytes)?;
        self.process_frames().await
    }

    /// Handle the frames received, until the answers waiting to be written reach
    /// `c2s.max_send_buffer` (the rest wait for them to be written: one read of small requests
    /// must not pile up large answers); `Ok(false)` when the client closed the stream.
    async fn process_frames(&mut self) -> Result<bool, StreamError> {
        self.frames_pending = false;
        loop {
            if self.out.len() >= self.shared.config.c2s.max_send_buffer {
                self.frames_pending = true;
                return Ok(true);
            }
            let Some(frame) = self.framer.next_frame()? else {
                break;
            };
            match frame {
                Frame::StreamHeader(raw) => self.on_header(&raw)?,
                Frame::Element(raw) => {
                    let element = parse_element(&raw, &self.header)?;
                    // Boxed: handling an element (routing, modules) takes far more state than
                    // waiting does, and an idle connection should not carry it.
                    Box::pin(self.on_element(element)).await?;
                }
                Frame::StreamEnd => return Ok(false),
            }
        }
        Ok(true)
    }

    fn on_header(&mut self, raw: &[u8]) -> Result<(), StreamError> {
        let Phase::AwaitHeader(set) = self.phase else {
            return Err(StreamError::with_text(
                StreamCondition::NotWellFormed,
                "unexpected stream header",
            ));
        };
        let header = parse_stream_header(raw)?;
        let reply = stream_header(&self.shared, &header)?;
        if self.header_sent {
            // A restart: what the old stream had to say is all written (frames are read only
            // then), and the transport learns that a new stream begins.
            self.io.restart();
        }
        self.header_sent = true;
        self.out.push_str(&reply);
        self.info.from = header.from.clone();
        // Only the features before authentication may use it (a store read per stream).
        if set == FeatureSet::PreAuth {
            self.info.named_account = named_account(&self.shared, header.from.as_deref());
        }
        self.header = header;
        features(&self.shared, &self.info, set, &mut self.out);
        self.phase = match set {
            FeatureSet::PreAuth => Phase::PreAuth,
            FeatureSet::Authenticated => Phase::Authenticated,
            FeatureSet::Bound => Phase::Bound,
        };
        Ok(())
    }

    async fn on_element(&mut self, element: Element) -> Result<(), StreamError> {
        let routes = self.shared.registry.routes();
        let key = (element.ns.clone(), element.name.clone());
        if let Some((phase, module)) = routes.elements.get(&key) {
            let authenticated = self.info.user.is_some();
            let allowed = match phase {
                StreamPhase::PreAuth => !authenticated,
                StreamPhase::Authenticated => authenticated,
                StreamPhase::Any => true,
            };
            if allowed {
                let pinned = match &self.pinned {
                    Some(p) if p.name == module.name && !p.is_retired() && !authenticated => {
                        Some(p.clone())
                    }
                    _ => None,
                };
                let request = StreamElement {
                    stream: self.info.clone(),
                    element,
                };
                // Runs on this I/O thread: module calls take microseconds, and the slow part
                // of a login (PLAIN's PBKDF2) goes through `Host::blocking`. Handing every
                // element to another thread cost ~5 context switches and 10 % CPU per login.
                // A pinned generation is called as itself even if it has handed over to a
                // successor since: the exchange is in it.
                let answer = match &pinned {
                    Some(p) => p.this_generation().stream_element(request),
                    None => module.stream_element(request),
                };
                if !authenticated {
                    self.pinned = Some(pinned.unwrap_or_else(|| module.served_last()));
                }
                let actions: Vec<StreamAction> =
                    answer.map_err(|_| StreamError::new(StreamCondition::InternalServerError))?;
                return self.apply(actions);
            }
            if authenticated && phase == &StreamPhase::PreAuth {
                return Err(StreamError::with_text(
                    StreamCondition::PolicyViolation,
                    "already authenticated",
                ));
            }
        }
        match self.phase {
            Phase::PreAuth => self.pre_auth_element(element).await,
            Phase::Authenticated => self.authenticated_element(element).await,
            Phase::Bound => self.bound_element(element).await,
            Phase::AwaitHeader(_) => Err(StreamError::with_text(
                StreamCondition::NotAuthorized,
                "stream restart expected",
            )),
        }
    }

    async fn pre_auth_element(&mut self, element: Element) -> Result<(), StreamError> {
        if element.is("iq", "jabber:client") {
            if let Some(reply) = router::pre_auth_iq(&self.shared, &self.info, element) {
                self.out.push_str(&reply);
                return Ok(());
            }
        }
        Err(StreamError::with_text(
            StreamCondition::NotAuthorized,
            "authenticate first",
        ))
    }

    async fn authenticated_element(&mut self, element: Element) -> Result<(), StreamError> {
        let Some(session) = self.session.clone() else {
            return Err(StreamError::new(StreamCondition::InternalServerError));
        };
        if element.is("iq", "jabber:client") {
            if let Some(bind) = element.child("bind", router::BIND_NS) {
                let reply = router::bind_legacy(&self.shared, &session, &element, bind);
                if let Ok(full) = &reply.bound {
                    self.bound(full.clone());
                }
                self.out.push_str(&reply.xml);
                return Ok(());
            }
        }
        Err(StreamError::with_text(
            StreamCondition::NotAuthorized,
            "bind a resource first",
        ))
    }

    async fn bound_element(&mut self, element: Element) -> Result<(), StreamError> {
        let Some(session) = self.session.clone() else {
            return Err(StreamError::new(StreamCondition::InternalServerError));
        };
        if session.is_moved() {
            // Another stream resumed this session: nothing more is sent in its name from here.
            return Err(StreamError::with_text(
                StreamCondition::Conflict,
                "Resumed elsewhere",
            ));
        }
        if element.ns != "jabber:client"
            || !matches!(element.name.as_str(), "iq" | "message" | "presence")
        {
            return Err(StreamError::with_text(
                StreamCondition::UnsupportedStanzaType,
                format!("<{}/>", element.name),
            ));
        }
        session.with_acks(|acks| acks.handled_one());
        let outcome = router::route(&self.shared, &session, &self.info, element).await;
        if let Some(reply) = outcome.reply {
            let now = crate::now_ms();
            let xml = reply.to_xml_in(router::CLIENT_NS);
            self.out.push_str(&xml);
            let fate = Fate::of(&reply.name, reply.attr("type"));
            let within = session.with_acks(|acks| acks.written(Queued::one(xml, fate), now));
            if within == Some(false) {
                too_many_unacked(&session);
            }
            self.request_ack_if_due(&session, now);
        }
        if let Some(err) = outcome.close {
            return Err(err);
        }
        Ok(())
    }

    fn apply(&mut self, actions: Vec<StreamAction>) -> Result<(), StreamError> {
        // A login or a resumption is decided (and, for a resumption, done) before anything of
        // its answer (`<success/>`, a token, `<resumed/>`) is written.
        let mut resumed = None;
        for action in &actions {
            match action {
                StreamAction::Authenticated {
                    user,
                    user_agent_id,
                } => self.authenticated(user, user_agent_id.clone())?,
                StreamAction::Resume { session, acked, .. } if resumed.is_none() => {
                    resumed = Some(self.take_over(*session, *acked)?);
                }
                StreamAction::Resume { session, .. } => {
                    return Err(resume_refused(
                        *session,
                        "a second resumption in one answer",
                    ));
                }
                _ => {}
            }
        }
        for action in actions {
            match action {
                StreamAction::Send { xml } => self.out.push_str(&xml),
                StreamAction::Authenticated { .. } => {}
                StreamAction::Bind { resource } => {
                    let Some(session) = self.session.clone() else {
                        return Err(StreamError::new(StreamCondition::InternalServerError));
                    };
                    let resource = crate::jid::prep_resource(&resource)
                        .map_err(|_| StreamError::new(StreamCondition::InternalServerError))?;
                    let full = self.shared.sessions.bind(&session, &resource);
                    self.bound(full);
                    if let Some(settings) = self.acks_on_bind.take() {
                        session.enable_acks(settings, self.shared.config.c2s.max_send_buffer);
                    }
                }
                StreamAction::SendFeatures => {
                    let set = if self.phase == Phase::Bound {
                        FeatureSet::Bound
                    } else {
                        FeatureSet::Authenticated
                    };
                    features(&self.shared, &self.info, set, &mut self.out);
                }
                StreamAction::ExpectRestart => {
                    self.framer.reset();
                    self.phase = Phase::AwaitHeader(FeatureSet::Authenticated);
                }
                StreamAction::Resume {
                    session, replay, ..
                } => {
                    if let Some(full) = resumed.take() {
                        self.resumed(session, full, replay);
                    }
                }
                StreamAction::Close { condition, text } => {
                    return Err(StreamError { condition, text })
                }
            }
        }
        Ok(())
    }

    /// Register the session of a login, if the host verified it: a mechanism's success for
    /// this very account on this stream, still valid against the account as it is now. The
    /// session is registered first and the account checked after, so a password change or a
    /// deletion racing with the login either is seen here or finds the session to close.
    fn authenticated(
        &mut self,
        user: &str,
        user_agent_id: Option<String>,
    ) -> Result<(), StreamError> {
        if self.session.is_some() {
            return Err(StreamError::with_text(
                StreamCondition::PolicyViolation,
                "already authenticated",
            ));
        }
        let user = crate::jid::prep_localpart(user)
            .map_err(|_| StreamError::new(StreamCondition::InternalServerError))?;
        let refused = |why: &str| {
            tracing::warn!(user = %user, why, "login refused at session start");
            StreamError::with_text(
                StreamCondition::NotAuthorized,
                "authentication is no longer valid",
            )
        };
        let verified = self.shared.exchanges.take_verified(self.info.id);
        let Some(verified) = verified.filter(|v| v.user == user) else {
            return Err(refused("no verified authentication for this account"));
        };
        let entry = self.shared.sessions.authenticate(
            self.info.id,
            &user,
            &self.info.domain,
            user_agent_id,
            &self.info.peer_ip,
            self.shared.config.c2s.outbox_limits(),
        );
        let account = self.shared.store.get_account(&user);
        let current = match &account {
            Ok(account) => {
                crate::runtime::exchanges::still_valid(account.as_ref(), verified.basis_ms)
                    .map_err(|stale| stale.to_string())
            }
            Err(e) => Err(format!("store failure: {e}")),
        };
        if let Err(why) = current {
            self.shared.sessions.remove(self.info.id);
            return Err(refused(&why));
        }
        tracing::info!(user = %user, "authenticated");
        self.acks_on_bind = verified.acks_on_bind;
        let transport = self.io.name(self.info.direct_tls);
        self.session_open = Some(self.shared.metrics.open_session(transport));
        self.framer.set_limits(limits(&self.shared.config));
        self.io.set_limits(limits(&self.shared.config));
        self.session = Some(entry);
        self.pinned = None;
        self.info.user = Some(user);
        self.phase = Phase::Authenticated;
        Ok(())
    }

    /// Take over session `old` (XEP-0198 resumption, decided by a module; see
    /// [`StreamAction::Resume`]); answers the full JID.
    fn take_over(&mut self, old: u64, acked: Option<u32>) -> Result<String, StreamError> {
        let Some(session) = self.session.clone() else {
            return Err(resume_refused(old, "the stream is not authenticated"));
        };
        let status = self
            .shared
            .sessions
            .by_stream(old)
            .and_then(|s| s.acks_status());
        if let (Some(status), Some(h)) = (&status, acked) {
            if status.too_high(h) {
                return Err(resume_refused(
                    old,
                    "the client's h is beyond what was written",
                ));
            }
        }
        let (full, old_entry) = self
            .shared
            .sessions
            .take_over(old, &session)
            .map_err(|why| resume_refused(old, why))?;
        // A connection still serving it is closed; a detached one's wait ends.
        old_entry.request_close(StreamCondition::Conflict, Some("Resumed elsewhere"));
        if let Some(h) = acked {
            let (_, released) = session.acknowledge(h);
            self.shared.delivery.written(released);
        }
        tracing::info!(jid = %full, previous = old, "session resumed");
        self.enter_bound(full.clone());
        Ok(full)
    }

    /// The rest of a resumption, in its place among the answer's actions: the replay, then
    /// `session-resumed`.
    fn resumed(&mut self, old: u64, full: String, replay: Vec<Element>) {
        if let Some(session) = self.session.clone() {
            if let Some(again) = session.with_acks(|acks| acks.replay(&session.bare)) {
                self.out.push_str(&again);
            }
        }
        for stanza in replay {
            stanza.write_xml(&mut self.out, "jabber:client");
        }
        let event = SessionResumed {
            stream_id: self.info.id,
            previous_stream_id: old,
            jid: full,
        };
        self.shared.fire(events::SESSION_RESUMED, &event);
    }

    fn enter_bound(&mut self, full: String) {
        self.info.jid = Some(full);
        self.phase = Phase::Bound;
        self.deadline = None;
    }

    fn bound(&mut self, full: String) {
        tracing::info!(jid = %full, "resource bound");
        self.enter_bound(full.clone());
        let event = SessionEvent {
            stream_id: self.info.id,
            jid: Some(full),
            reason: None,
        };
        self.shared.fire(events::SESSION_BOUND, &event);
    }
}

/// A client left more stanzas unacknowledged than its queue holds: the session ends (what it
/// holds goes to offline storage or bounces).
fn too_many_unacked(session: &SessionEntry) {
    tracing::warn!(
        jid = %session.jid(),
        stream = session.stream_id,
        "too many unacknowledged stanzas; closing the session"
    );
    session.request_close(
        StreamCondition::PolicyViolation,
        Some(crate::sessions::TOO_MANY_UNACKED_TEXT),
    );
}

/// The stream error for a resumption the host refuses (the module should have checked).
fn resume_refused(session: u64, why: &str) -> StreamError {
    tracing::warn!(session, why, "resumption refused");
    StreamError::with_text(
        StreamCondition::PolicyViolation,
        "that session cannot be resumed here",
    )
}
