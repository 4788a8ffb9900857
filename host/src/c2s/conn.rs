//! One client connection after TLS: stream restarts, authentication through modules, resource
//! binding, stanza routing, and delivery of stanzas and close requests from other tasks.
//!
//! The top level is infallible (axum's rule): every error becomes a stream error sent to the
//! client before the socket closes, and the reason is logged.

use std::net::SocketAddr;
use std::sync::Arc;
use tessera_plugin_api::StreamCondition;

use tessera_plugin_api::events::{self, SessionEvent, SessionResumed};
use tessera_plugin_api::protocol::{StreamAction, StreamElement, StreamInfo, StreamPhase};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::ModuleCalls;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;

use super::features::{features, stream_header, FeatureSet};
use crate::config::Config;
use crate::router;
use crate::sessions::{CloseRequest, Lifecycle, SessionEntry};
use crate::stream::framer::{Frame, Framer, Limits};
use crate::stream::parse::{parse_element, parse_stream_header, StreamHeader};
use crate::stream::StreamError;
use crate::Shared;

const READ_CHUNK: usize = 4096;

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
    io: TlsStream<TcpStream>,
    framer: Framer,
    header: StreamHeader,
    header_sent: bool,
    info: StreamInfo,
    phase: Phase,
    session: Option<Arc<SessionEntry>>,
    queue: Option<mpsc::Receiver<String>>,
    out: String,
    deadline: Option<Instant>,
    /// The module generation that handled this stream's last pre-auth element: a SASL exchange
    /// that began on a generation completes on it across a hot swap (until it is retired).
    pinned: Option<Arc<crate::runtime::modules::Module>>,
    /// The connection was lost (end of file or an I/O error) rather than closed: the one way
    /// a kept session is detached instead of ended.
    lost: bool,
}

enum Wake {
    Read(std::io::Result<usize>),
    Queued(String),
    Close(CloseRequest),
    Timeout,
}

/// Serve a TLS connection until it ends; returns the reason for the log.
pub(super) async fn run(
    shared: Arc<Shared>,
    io: TlsStream<TcpStream>,
    id: u64,
    peer: SocketAddr,
    direct_tls: bool,
    deadline: Instant,
) -> String {
    let info = {
        let (_, tls) = io.get_ref();
        StreamInfo {
            id,
            domain: shared.config.domain.clone(),
            secure: true,
            direct_tls,
            tls_version: crate::tls::version_name(tls),
            channel_bindings: crate::tls::channel_bindings(tls, shared.tls.end_point.as_deref()),
            from: None,
            peer_ip: peer.ip().to_string(),
            user: None,
            jid: None,
        }
    };
    let mut conn = Conn {
        framer: Framer::new(pre_auth_limits(&shared.config)),
        shared,
        io,
        header: StreamHeader::default(),
        header_sent: false,
        info,
        phase: Phase::AwaitHeader(FeatureSet::PreAuth),
        session: None,
        queue: None,
        out: String::new(),
        deadline: Some(deadline),
        pinned: None,
        lost: false,
    };
    let reason = conn.serve().await;
    conn.finish(&reason).await;
    reason
}

async fn next_queued(queue: &mut Option<mpsc::Receiver<String>>) -> Option<String> {
    match queue {
        Some(q) => q.recv().await,
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
    async fn serve(&mut self) -> String {
        let mut buf = Vec::new();
        loop {
            if let Err(e) = self.flush().await {
                self.lost = true;
                return format!("write failed: {e}");
            }
            buf.resize(READ_CHUNK, 0);
            let wake = tokio::select! {
                r = self.io.read(&mut buf) => Wake::Read(r),
                Some(s) = next_queued(&mut self.queue) => Wake::Queued(s),
                c = close_requested(self.session.clone()) => Wake::Close(c),
                () = sleep_until(self.deadline) => Wake::Timeout,
            };
            let result = match wake {
                Wake::Read(Ok(0)) => {
                    self.lost = true;
                    return "peer closed the connection".into();
                }
                Wake::Read(Ok(n)) => self.on_bytes(buf.get(..n).unwrap_or_default()).await,
                Wake::Read(Err(e)) => {
                    self.lost = true;
                    return format!("read failed: {e}");
                }
                Wake::Queued(xml) => {
                    self.out.push_str(&xml);
                    Ok(true)
                }
                Wake::Close(req) => Err(StreamError {
                    condition: req.condition,
                    text: req.text,
                }),
                Wake::Timeout => Err(StreamError::with_text(
                    StreamCondition::ConnectionTimeout,
                    "negotiation took too long",
                )),
            };
            // Idle connections hold no buffers.
            buf = Vec::new();
            self.framer.shrink();
            match result {
                Ok(true) => {}
                Ok(false) => {
                    let _ = self.flush().await;
                    return "stream closed by peer".into();
                }
                Err(err) => return self.stream_error(err).await,
            }
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        self.io.write_all(out.as_bytes()).await?;
        self.io.flush().await
    }

    async fn stream_error(&mut self, err: StreamError) -> String {
        if !self.header_sent {
            self.out
                .push_str(&super::features::error_header(&self.shared));
        }
        self.out.push_str(&err.to_xml());
        let _ = self.flush().await;
        tracing::debug!(condition = %err.condition, text = ?err.text, "stream error");
        format!("stream error: {}", err.condition)
    }

    async fn finish(&mut self, reason: &str) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.io.shutdown()).await;
        // An exchange the client abandoned would otherwise pin its module generation (and the
        // mechanism's state) until a reload's drain timed out.
        for (exchange, provider) in self.shared.exchanges.stream_closed(self.info.id) {
            let _ = provider.mechanism_end(exchange);
        }
        if let Some(session) = &self.session {
            let keep = self.lost && session.is_bound() && session.kept_ms() > 0;
            let next = if keep {
                Lifecycle::Detached
            } else {
                Lifecycle::Ended
            };
            if !session.transition(Lifecycle::Live, next) {
                // Another stream took the session over; it lives on there.
                return;
            }
            if keep {
                super::detached::detach(&self.shared, session.clone(), reason);
                return;
            }
            self.shared.sessions.remove(self.info.id);
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
        while let Some(frame) = self.framer.next_frame()? {
            match frame {
                Frame::StreamHeader(raw) => self.on_header(&raw)?,
                Frame::Element(raw) => {
                    let element = parse_element(&raw, &self.header)?;
                    self.on_element(element).await?;
                }
                Frame::StreamEnd => {
                    self.out.push_str("</stream:stream>");
                    return Ok(false);
                }
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
        self.header_sent = true;
        self.out.push_str(&reply);
        self.info.from = header.from.clone();
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
                let module = match &self.pinned {
                    Some(p) if p.name == module.name && !p.is_retired() && !authenticated => {
                        p.clone()
                    }
                    _ => module.clone(),
                };
                if !authenticated {
                    self.pinned = Some(module.clone());
                }
                let request = StreamElement {
                    stream: self.info.clone(),
                    element,
                };
                // Runs on this I/O thread: module calls take microseconds, and the slow part
                // of a login (PLAIN's PBKDF2) goes through `Host::blocking`. Handing every
                // element to another thread cost ~5 context switches and 10 % CPU per login.
                let actions: Vec<StreamAction> = module
                    .stream_element(request)
                    .map_err(|_| StreamError::new(StreamCondition::InternalServerError))?;
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
        let outcome = router::route(&self.shared, &session, &self.info, element).await;
        self.out.push_str(&outcome.reply);
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
                StreamAction::Resume { session, .. } if resumed.is_none() => {
                    resumed = Some(self.take_over(*session)?);
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
                StreamAction::Resume { session, replay } => {
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
        let (entry, queue) = self.shared.sessions.authenticate(
            self.info.id,
            &user,
            &self.info.domain,
            user_agent_id,
            &self.info.peer_ip,
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
        self.framer.set_limits(limits(&self.shared.config));
        self.session = Some(entry);
        self.queue = Some(queue);
        self.pinned = None;
        self.info.user = Some(user);
        self.phase = Phase::Authenticated;
        Ok(())
    }

    /// Take over session `old` (XEP-0198 resumption, decided by a module; see
    /// [`StreamAction::Resume`]); answers the full JID.
    fn take_over(&mut self, old: u64) -> Result<String, StreamError> {
        let Some(session) = self.session.clone() else {
            return Err(resume_refused(old, "the stream is not authenticated"));
        };
        let (full, old_entry) = self
            .shared
            .sessions
            .take_over(old, &session)
            .map_err(|why| resume_refused(old, why))?;
        // A connection still serving it is closed; a detached one's wait ends.
        old_entry.request_close(StreamCondition::Conflict, Some("Resumed elsewhere"));
        tracing::info!(jid = %full, previous = old, "session resumed");
        self.enter_bound(full.clone());
        Ok(full)
    }

    /// The rest of a resumption, in its place among the answer's actions: the replay, then
    /// `session-resumed`.
    fn resumed(&mut self, old: u64, full: String, replay: Vec<Element>) {
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

/// The stream error for a resumption the host refuses (the module should have checked).
fn resume_refused(session: u64, why: &str) -> StreamError {
    tracing::warn!(session, why, "resumption refused");
    StreamError::with_text(
        StreamCondition::PolicyViolation,
        "that session cannot be resumed here",
    )
}
