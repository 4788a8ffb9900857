//! Stanza handling for bound sessions (RFC 6120 §8): `from` stamped by the server, `to`
//! checked, the modules' stanza hooks at each point (see [`hooks`]), then the plumbing only the
//! host can do: delivery of messages, directed presence and IQs to local sessions by full and
//! bare JID, RFC 6120 resource binding and the legacy session IQ, IQs by payload namespace to
//! the module that registered it, and the right stanza error for everything nobody handles.
//! Everything else (ping, disco, registration, presence broadcast, roster) is a module's.

pub mod accounting;
pub mod hooks;
pub mod leftovers;

use std::sync::Arc;

use tessera_plugin_api::protocol::{DiscoInfo, IqRequest, StreamInfo};
use tessera_plugin_api::stanza::{StanzaKind, StanzaPoint};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{reply, ModuleCalls, PluginError, StanzaCondition};

use self::accounting::{Outcome, Reason};
use self::hooks::{Chain, Concern, Stop};
use self::leftovers::Recipient;
use crate::jid::Jid;
use crate::runtime::effects;
use crate::runtime::modules::{point_index, Module, Routes};
use crate::sessions::outbox::{CopyGroup, Fate, Push, Queued, Sender};
use crate::sessions::{SessionEntry, Sessions};
use crate::stream::StreamError;
use crate::Shared;

/// RFC 6120 resource binding namespace.
pub const BIND_NS: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// The client namespace stanzas are written in.
pub const CLIENT_NS: &str = "jabber:client";
const SESSION_NS: &str = "urn:ietf:params:xml:ns:xmpp-session";

/// What routing a stanza produced for the sending connection.
#[derive(Debug, Default)]
pub struct RouteOutcome {
    /// The stanza to write back to the sender (a stanza it counts, for stream management).
    pub reply: Option<Element>,
    /// Close the sender's stream with this error afterwards.
    pub close: Option<StreamError>,
}

impl RouteOutcome {
    fn reply(el: Element) -> Self {
        Self {
            reply: Some(el),
            close: None,
        }
    }
}

/// The answer to a legacy bind IQ.
#[derive(Debug)]
pub struct BindReply {
    /// The IQ result or error.
    pub xml: String,
    /// The bound full JID, on success.
    pub bound: Result<String, ()>,
}

/// RFC 6120 §7 resource binding for clients that do not use Bind 2.
pub fn bind_legacy(
    shared: &Shared,
    session: &SessionEntry,
    iq: &Element,
    bind: &Element,
) -> BindReply {
    let domain = &shared.config.domain;
    let mut stamped = iq.clone();
    stamped.set_attr("from", &session.bare);
    if iq.attr("type") != Some("set") {
        let xml = reply::error(&stamped, StanzaCondition::BadRequest, None, domain)
            .map(|e| e.to_xml_in(CLIENT_NS))
            .unwrap_or_default();
        return BindReply {
            xml,
            bound: Err(()),
        };
    }
    let requested = bind
        .child("resource", BIND_NS)
        .map(Element::text)
        .filter(|r| !r.is_empty());
    let resource = match requested {
        Some(r) => match crate::jid::prep_resource(&r) {
            Ok(r) => r,
            Err(_) => {
                let xml = reply::error(&stamped, StanzaCondition::BadRequest, None, domain)
                    .map(|e| e.to_xml_in(CLIENT_NS))
                    .unwrap_or_default();
                return BindReply {
                    xml,
                    bound: Err(()),
                };
            }
        },
        None => random_resource(),
    };
    let full = shared.sessions.bind(session, &resource);
    let mut result = reply::iq_result(&stamped, domain);
    result.remove_attr("from");
    let result = result.with_child(
        Element::new("bind", BIND_NS).with_child(Element::new("jid", BIND_NS).with_text(&full)),
    );
    BindReply {
        xml: result.to_xml_in(CLIENT_NS),
        bound: Ok(full),
    }
}

fn random_resource() -> String {
    format!("tessera-{}", crate::secret::random_hex(9))
}

/// Route one stanza from a bound session: `from` stamped, `to` checked, the `ClientIn`
/// hooks, then delivery (message and presence) or the server's answer (IQ).
pub async fn route(
    shared: &Arc<Shared>,
    session: &Arc<SessionEntry>,
    info: &StreamInfo,
    mut stanza: Element,
) -> RouteOutcome {
    shared.metrics.stanza_routed(&stanza.name, "client");
    let domain = shared.config.domain.clone();
    stanza.set_attr("from", session.jid());
    let to = match stanza.attr("to").map(Jid::parse) {
        None => None,
        Some(Ok(j)) => Some(j),
        Some(Err(_)) => return error_out(&stanza, StanzaCondition::JidMalformed, &domain),
    };
    if let Some(to) = &to {
        stanza.set_attr("to", to.to_string());
        if to.domain != domain {
            return error_out(&stanza, StanzaCondition::RemoteServerNotFound, &domain);
        }
    }
    if stanza.name == "iq" && !valid_iq(&stanza) {
        return error_out(&stanza, StanzaCondition::BadRequest, &domain);
    }
    let routes = shared.registry.routes();
    // Everything the hooks of this stanza send goes out after its own routing (but IQs,
    // which may wait for the store, are answered outside the scope).
    let scope = effects::scope();
    let concern = Concern {
        account: Some(&session.user),
        session: Some(session.stream_id),
    };
    let stanza = match hooks::run(&routes, StanzaPoint::ClientIn, stanza, concern, None) {
        Chain::Continue(stanza) => stanza,
        Chain::Stopped { stanza, stop } => return stopped_for_sender(&stanza, stop, &domain),
    };
    // A hook may have readdressed it: parse again (stringprep) only then.
    let readdressed = stanza.attr("to") != to.as_ref().map(|t| t.to_string()).as_deref();
    let to = if readdressed {
        match stanza.attr("to").map(Jid::parse) {
            Some(Ok(to)) if to.domain != domain => {
                return error_out(&stanza, StanzaCondition::RemoteServerNotFound, &domain)
            }
            Some(Ok(to)) => Some(to),
            Some(Err(_)) => return error_out(&stanza, StanzaCondition::JidMalformed, &domain),
            None => None,
        }
    } else {
        to
    };
    match stanza.name.as_str() {
        "message" => {
            let bounce = route_message(shared, &routes, stanza, to.as_ref());
            RouteOutcome::from_bounce(bounce)
        }
        "presence" => {
            route_presence(shared, &routes, stanza, to.as_ref());
            RouteOutcome::default()
        }
        _ => {
            drop(scope);
            route_iq(shared, &routes, info, stanza, to.as_ref())
        }
    }
}

impl RouteOutcome {
    fn from_bounce(bounce: Option<Element>) -> Self {
        Self {
            reply: bounce,
            close: None,
        }
    }
}

/// An IQ before authentication: answered by the module that registered its payload namespace
/// for that phase (in-band registration); `None` when none did (the caller closes the stream).
pub fn pre_auth_iq(shared: &Shared, info: &StreamInfo, mut stanza: Element) -> Option<String> {
    let routes = shared.registry.routes();
    let module = routes
        .pre_auth_iq
        .get(&stanza.child_elements().next()?.ns)?
        .clone();
    let domain = &shared.config.domain;
    // Nobody is authenticated yet: whatever the client claims, the stanza has no sender.
    stanza.remove_attr("from");
    let answer = if valid_iq(&stanza) {
        module_answer(&module, info, &stanza, domain)
    } else {
        reply::error(&stanza, StanzaCondition::BadRequest, None, domain)
    };
    answer.map(|a| a.to_xml_in(CLIENT_NS))
}

/// RFC 6120 §8.2.3: an IQ has a known type and an id.
fn valid_iq(iq: &Element) -> bool {
    matches!(iq.attr("type"), Some("get" | "set" | "result" | "error")) && iq.attr("id").is_some()
}

/// What the sender gets when a hook stopped its stanza.
fn stopped_for_sender(stanza: &Element, stop: Stop, domain: &str) -> RouteOutcome {
    RouteOutcome::from_bounce(bounce_of(stanza, stop, domain))
}

/// The stanza a stopped chain sends back to the stanza's sender, if any.
fn bounce_of(stanza: &Element, stop: Stop, domain: &str) -> Option<Element> {
    match stop {
        Stop::Handled | Stop::Dropped | Stop::Stored => None,
        Stop::Reply(reply) => Some(reply),
        Stop::Error(condition, text) => reply::error(stanza, condition, text.as_deref(), domain),
        Stop::Failed => stanza_error(stanza, StanzaCondition::InternalServerError, domain),
    }
}

/// An error reply with the condition's usual type.
fn stanza_error(stanza: &Element, condition: StanzaCondition, domain: &str) -> Option<Element> {
    reply::error(stanza, condition, None, domain)
}

fn error_out(stanza: &Element, condition: StanzaCondition, domain: &str) -> RouteOutcome {
    RouteOutcome::from_bounce(stanza_error(stanza, condition, domain))
}

/// Whether a stanza a module wants routed is one the server may send: a `jabber:client`
/// message, presence or IQ from the server or a local JID, to a parseable JID.
///
/// # Errors
/// [`tessera_plugin_api::PluginErrorKind::BAD_REQUEST`] saying what is wrong.
pub fn check_module_stanza(shared: &Shared, stanza: &Element) -> Result<(), PluginError> {
    if stanza.ns != CLIENT_NS || StanzaKind::of(&stanza.name).is_none() {
        return Err(PluginError::bad_request(
            "only jabber:client message, presence and iq stanzas can be routed",
        ));
    }
    let local = |attr: &str| {
        stanza
            .attr(attr)
            .and_then(|j| Jid::parse(j).ok())
            .is_some_and(|j| j.domain == shared.config.domain)
    };
    if !local("from") {
        return Err(PluginError::bad_request(
            "a routed stanza needs a 'from' of this server or one of its accounts",
        ));
    }
    if stanza.attr("to").is_some_and(|to| Jid::parse(to).is_err()) {
        return Err(PluginError::bad_request("malformed 'to'"));
    }
    Ok(())
}

/// Route a stanza a module sent as the server (an effect, after the call that sent it): the
/// delivery hooks of local recipients run; an error it causes goes back to its `from`.
pub fn route_from_server(shared: &Arc<Shared>, stanza: Element) {
    shared.metrics.stanza_routed(&stanza.name, "module");
    let domain = shared.config.domain.clone();
    let routes = shared.registry.routes();
    let to = stanza.attr("to").and_then(|t| Jid::parse(t).ok());
    let bounce = match to {
        Some(to) if to.domain == domain && to.local.is_some() => {
            deliver_local(shared, &routes, stanza, &to)
        }
        _ => {
            // The server itself, another server (no s2s) or nowhere.
            tracing::debug!(to = ?stanza.attr("to"), name = %stanza.name, "module stanza not for a local account; dropped");
            None
        }
    };
    if let Some(bounce) = bounce {
        route_error_back(shared, &routes, bounce);
    }
}

/// Deliver an error (never bounced again) to a local full or bare JID, if there is one.
fn route_error_back(shared: &Shared, routes: &Routes, error: Element) {
    let to = error.attr("to").and_then(|t| Jid::parse(t).ok());
    if let Some(to) = to.filter(|t| t.domain == shared.config.domain && t.local.is_some()) {
        let _ = deliver_local(shared, routes, error, &to);
    }
}

/// Write a stanza a module addressed to one session (through its `SessionOut` hooks). The
/// session was looked up when the module asked: if it ended since, the stanza takes the
/// undeliverable way like everything else it never wrote.
pub fn send_to_session(shared: &Shared, target: &SessionEntry, stanza: Element) {
    let routes = shared.registry.routes();
    deliver_to(shared, &routes, target, stanza, None);
}

/// Write a stanza to one session, through the `SessionOut` hooks of the modules attached to it,
/// into its outbox (`copies`: the group of copies it belongs to, if the same message goes to
/// several sessions). What does not fit while the client reads, or reaches a session that
/// ended, takes the undeliverable way now ([`leftovers`]); a client that stopped reading is
/// closed, and what it holds goes the same way at its end.
fn deliver_to(
    shared: &Shared,
    routes: &Routes,
    target: &SessionEntry,
    stanza: Element,
    copies: Option<&Arc<CopyGroup>>,
) {
    let sender = Sender::of_stanza(&stanza, &target.bare, &shared.config.domain);
    // Shed before the session's filters see it (a stream-management count must not include
    // what was never queued) and before it is serialised.
    if target.outbox.sender_full(sender) {
        // Shed: handed on now, the session lives.
        let fate = Fate::of(&stanza.name, stanza.attr("type"));
        let left_over = copies.is_none_or(|g| g.left_over());
        hand_on_now(
            shared,
            routes,
            target,
            stanza,
            fate,
            left_over,
            Reason::SendBufferFull,
        );
        return;
    }
    let attached = target.attached();
    let stanza = if attached.is_empty() {
        stanza
    } else {
        let concern = Concern {
            account: Some(&target.user),
            session: Some(target.stream_id),
        };
        match hooks::run(
            routes,
            StanzaPoint::SessionOut,
            stanza,
            concern,
            Some(&attached),
        ) {
            Chain::Continue(stanza) => stanza,
            // Held (client state) or kept (stream management) by the module.
            Chain::Stopped { .. } => return,
        }
    };
    let item = Queued {
        xml: stanza.to_xml_in(CLIENT_NS),
        fate: Fate::of(&stanza.name, stanza.attr("type")),
        copies: copies.cloned(),
        sender,
    };
    let (item, reason) = match target.deliver(item) {
        Push::Queued | Push::Overflowed | Push::Parked => return,
        Push::Shed(item) => (item, Reason::SendBufferFull),
        Push::Refused(item) => {
            // Looked up just before another stream resumed the session: that stream gets it.
            let successor = target
                .is_moved()
                .then(|| shared.sessions.by_full_jid(&target.jid()))
                .flatten()
                .filter(|s| s.stream_id != target.stream_id && !s.is_moved());
            if let Some(successor) = successor {
                deliver_to(shared, routes, &successor, stanza, copies);
                return;
            }
            (item, Reason::SessionEnded)
        }
    };
    let left_over = item.left_over();
    hand_on_now(shared, routes, target, stanza, item.fate, left_over, reason);
}

/// A stanza `target` will not write (shed, or its session ended): handed on now, unless it is a
/// copy another copy of which was or may still be written (`left_over` false).
fn hand_on_now(
    shared: &Shared,
    routes: &Routes,
    target: &SessionEntry,
    stanza: Element,
    fate: Fate,
    left_over: bool,
    reason: Reason,
) {
    if !left_over {
        shared.delivery.record(Outcome::Dropped, reason);
        return;
    }
    let to = Recipient {
        user: &target.user,
        stream: target.stream_id,
    };
    leftovers::dispose(shared, routes, to, stanza, fate, reason);
}

/// The sessions a message to the bare JID goes to (RFC 6121 §8.5.2.1): among the available
/// resources with a non-negative priority, those with the highest priority (all of them on a
/// tie), or every one of them for a `headline`. A resource with a negative priority never gets
/// such messages; when every available resource has one, nobody does (undeliverable).
///
/// Without a presence module (no module hooks clients' broadcast presence, so no session is
/// ever available), every bound resource gets it. With one, a resource that sent no presence
/// is only connected, not available, and gets no message to the bare JID (§8.5.2.1): those go
/// to offline storage or bounce.
fn bare_targets(
    routes: &Routes,
    sessions: &Sessions,
    user: &str,
    kind: Option<&str>,
) -> Vec<Arc<SessionEntry>> {
    let bound: Vec<_> = sessions
        .of_user(user)
        .into_iter()
        .filter(|s| s.is_bound() && !s.is_moved() && reachable(routes, s))
        .collect();
    if !routes.tracks_presence {
        return bound;
    }
    let availability = |s: &SessionEntry| -> Option<i8> {
        s.available
            .load(std::sync::atomic::Ordering::Relaxed)
            .then(|| s.priority.load(std::sync::atomic::Ordering::Relaxed))
    };
    let chosen = tessera_plugin_api::stanza::bare_message_targets(
        bound.iter().enumerate().map(|(i, s)| (i, availability(s))),
        kind,
    );
    chosen.into_iter().map(|i| bound[i].clone()).collect()
}

/// Whether stanzas for a session go anywhere: it has a connection, or it is detached and a
/// module attached to it (stream management) holds what is sent to it. A detached session
/// nobody holds for counts as absent, so its messages take the bare-JID or undeliverable way.
fn reachable(routes: &Routes, session: &SessionEntry) -> bool {
    // Connected, or held by the host's acknowledgement queue (stream management).
    if !session.is_detached() || session.has_acks() {
        return true;
    }
    // Attached, and still loaded with a SessionOut hook (an unloaded module holds nothing).
    let attached = session.attached();
    routes.stanza_hooks[point_index(StanzaPoint::SessionOut)]
        .iter()
        .any(|hook| attached.contains(&hook.module.name))
}

/// A stanza for a local account (`to` has a localpart of this domain): the `ToFull` or
/// `ToBare` hooks, then the host's delivery. Returns what goes back to the sender, if anything.
fn deliver_local(shared: &Shared, routes: &Routes, stanza: Element, to: &Jid) -> Option<Element> {
    let domain = &shared.config.domain;
    let user = to.local.as_deref().unwrap_or_default();
    let full = to.resource.is_some().then(|| to.to_string());
    let target = full
        .as_deref()
        .and_then(|f| shared.sessions.by_full_jid(f))
        .filter(|t| reachable(routes, t));
    let point = if full.is_some() {
        StanzaPoint::ToFull
    } else {
        StanzaPoint::ToBare
    };
    let concern = Concern {
        account: Some(user),
        session: target.as_ref().map(|t| t.stream_id),
    };
    let stanza = match hooks::run(routes, point, stanza, concern, None) {
        Chain::Continue(stanza) => stanza,
        Chain::Stopped { stanza, stop } => return bounce_of(&stanza, stop, domain),
    };
    match stanza.name.as_str() {
        "message" => deliver_message(shared, routes, stanza, user, target),
        "presence" => {
            let targets: Vec<Arc<SessionEntry>> = match (&full, target) {
                (Some(_), target) => target.into_iter().collect(),
                // A session being taken over is skipped: its successor is in the list.
                (None, _) => shared
                    .sessions
                    .of_user(user)
                    .into_iter()
                    .filter(|s| s.is_bound() && !s.is_moved() && reachable(routes, s))
                    .collect(),
            };
            for t in targets {
                deliver_to(shared, routes, &t, stanza.clone(), None);
            }
            None
        }
        _ => match target {
            Some(target) => {
                deliver_to(shared, routes, &target, stanza, None);
                None
            }
            None => stanza_error(&stanza, StanzaCondition::ServiceUnavailable, domain),
        },
    }
}

/// The host's message delivery: the addressed session, else the account's sessions
/// (available ones, else all bound ones); with none, the `Undeliverable` hooks, then a bounce.
fn deliver_message(
    shared: &Shared,
    routes: &Routes,
    stanza: Element,
    user: &str,
    target: Option<Arc<SessionEntry>>,
) -> Option<Element> {
    let domain = &shared.config.domain;
    if let Some(target) = target {
        deliver_to(shared, routes, &target, stanza, None);
        return None;
    }
    // RFC 6121 §8.5.2.1.1: to a bare JID, an error is ignored and a groupchat refused.
    match stanza.attr("type") {
        Some("error") => return None,
        Some("groupchat") => {
            return stanza_error(&stanza, StanzaCondition::ServiceUnavailable, domain)
        }
        _ => {}
    }
    let targets = bare_targets(routes, &shared.sessions, user, stanza.attr("type"));
    if targets.is_empty() {
        // §8.5.2.2.1: a headline nobody can take is dropped silently.
        if stanza.attr("type") == Some("headline") {
            shared.delivery.record(Outcome::Dropped, Reason::NoSession);
            return None;
        }
        return undeliverable(shared, routes, stanza, user);
    }
    let copies = (targets.len() > 1).then(|| CopyGroup::new(targets.len()));
    for t in targets {
        deliver_to(shared, routes, &t, stanza.clone(), copies.as_ref());
    }
    None
}

/// A message nobody can take, unless a session of the account is still handing on what it
/// never wrote: then it waits behind those ([`Fate::Undeliverable`]), so that offline storage
/// keeps the order the messages were sent in.
fn undeliverable(shared: &Shared, routes: &Routes, stanza: Element, user: &str) -> Option<Element> {
    if let Some(ending) = shared.sessions.ending_of(user) {
        let item = Queued::one(stanza.to_xml_in(CLIENT_NS), Fate::Undeliverable);
        match ending.outbox.push(item) {
            // Handed on after what the session never wrote.
            Push::Parked | Push::Queued | Push::Overflowed => return None,
            // It was all handed on already (or too much waits): now.
            Push::Shed(_) | Push::Refused(_) => {}
        }
    }
    undeliverable_now(shared, routes, stanza, user)
}

/// A message nobody can take: the `Undeliverable` hooks (chat and normal messages, RFC 6121
/// §8.5.2), then `<service-unavailable/>` unless a module stored it.
fn undeliverable_now(
    shared: &Shared,
    routes: &Routes,
    stanza: Element,
    user: &str,
) -> Option<Element> {
    let domain = &shared.config.domain;
    let storable = matches!(stanza.attr("type"), None | Some("chat" | "normal"));
    let stanza = if storable {
        let concern = Concern {
            account: Some(user),
            session: None,
        };
        match hooks::run(routes, StanzaPoint::Undeliverable, stanza, concern, None) {
            Chain::Continue(stanza) => stanza,
            Chain::Stopped {
                stop: Stop::Stored, ..
            } => {
                shared.delivery.record(Outcome::Stored, Reason::NoSession);
                return None;
            }
            Chain::Stopped { stanza, stop } => {
                let bounce = bounce_of(&stanza, stop, domain);
                let outcome = match bounce {
                    Some(_) => Outcome::Bounced,
                    None => Outcome::Dropped,
                };
                shared.delivery.record(outcome, Reason::NoSession);
                return bounce;
            }
        }
    } else {
        stanza
    };
    shared.delivery.record(Outcome::Bounced, Reason::NoSession);
    stanza_error(&stanza, StanzaCondition::ServiceUnavailable, domain)
}

fn route_message(
    shared: &Shared,
    routes: &Routes,
    stanza: Element,
    to: Option<&Jid>,
) -> Option<Element> {
    let Some(to) = to.filter(|t| t.local.is_some()) else {
        // Messages to the server itself are not handled.
        return stanza_error(
            &stanza,
            StanzaCondition::ServiceUnavailable,
            &shared.config.domain,
        );
    };
    deliver_local(shared, routes, stanza, to)
}

fn route_presence(shared: &Shared, routes: &Routes, stanza: Element, to: Option<&Jid>) {
    match to {
        // A broadcast is the presence module's: it sets the session's availability for
        // delivery and tells the contacts. Without one it goes nowhere (and no session becomes
        // available: see `bare_targets`).
        None => {}
        Some(to) if to.local.is_some() => {
            // Errors about presence are not sent back (RFC 6121 §4.3.2 and §4.6.3).
            let _ = deliver_local(shared, routes, stanza, to);
        }
        Some(_) => {}
    }
}

fn route_iq(
    shared: &Arc<Shared>,
    routes: &Routes,
    info: &StreamInfo,
    stanza: Element,
    to: Option<&Jid>,
) -> RouteOutcome {
    let domain = shared.config.domain.clone();
    if let Some(to) = to.filter(|t| t.resource.is_some() && t.local.is_some()) {
        let bounce = {
            let _scope = effects::scope();
            deliver_local(shared, routes, stanza, to)
        };
        return RouteOutcome::from_bounce(bounce);
    }
    if matches!(stanza.attr("type"), Some("result" | "error")) {
        return RouteOutcome::default();
    }
    let Some(payload) = stanza.child_elements().next() else {
        return error_out(&stanza, StanzaCondition::BadRequest, &domain);
    };
    match (payload.ns.as_str(), payload.name.as_str()) {
        // RFC 3921's session establishment, kept as a no-op for old clients (RFC 6121 §1.4).
        (SESSION_NS, "session") if stanza.attr("type") == Some("set") => {
            RouteOutcome::reply(reply::iq_result(&stanza, &domain))
        }
        (BIND_NS, "bind") => error_out(&stanza, StanzaCondition::NotAllowed, &domain),
        (ns, _) => match routes.iq.get(ns) {
            Some(module) => {
                RouteOutcome::from_bounce(module_answer(module, info, &stanza, &domain))
            }
            None => error_out(&stanza, StanzaCondition::ServiceUnavailable, &domain),
        },
    }
}

/// A module's answer to an IQ in its namespace: its reply, `<service-unavailable/>` when it has
/// none, `<internal-server-error/>` when it failed (`None` only for an IQ that gets no error).
fn module_answer(
    module: &Module,
    info: &StreamInfo,
    stanza: &Element,
    domain: &str,
) -> Option<Element> {
    let request = IqRequest {
        stream: info.clone(),
        stanza: stanza.clone(),
    };
    match module.iq(request) {
        Ok(Some(answer)) => Some(answer),
        Ok(None) => reply::error(stanza, StanzaCondition::ServiceUnavailable, None, domain),
        Err(_) => reply::error(stanza, StanzaCondition::InternalServerError, None, domain),
    }
}

/// The server's XEP-0030 identities and features: what the loaded modules declared.
pub fn disco_info(routes: &Routes) -> DiscoInfo {
    let mut identities = routes.disco_identities.clone();
    identities
        .sort_by(|a, b| (&a.category, &a.kind, &a.name).cmp(&(&b.category, &b.kind, &b.name)));
    identities.dedup();
    let mut features = routes.disco_features.clone();
    features.sort();
    features.dedup();
    DiscoInfo {
        identities,
        features,
    }
}
