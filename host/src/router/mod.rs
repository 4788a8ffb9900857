//! Stanza handling for bound sessions (RFC 6120 §8, RFC 6121 §8 "just enough"): message and
//! presence routing between local sessions by full and bare JID, the server's own IQs (XEP-0199
//! ping, XEP-0030 disco#info/items, RFC 6120 resource binding and the legacy session IQ, an
//! empty roster, XEP-0077), IQs in namespaces registered by modules, and the right stanza error
//! for everything else. `from` is always stamped by the server.

pub mod register;

use std::sync::Arc;

use tessera_plugin_api::protocol::{IqRequest, StreamInfo};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::ModuleCalls;

use crate::jid::Jid;
use crate::sessions::{SessionEntry, Sessions};
use crate::stream::StreamError;
use crate::Shared;

/// RFC 6120 resource binding namespace.
pub const BIND_NS: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const STANZAS_NS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
const CLIENT_NS: &str = "jabber:client";
const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
const PING_NS: &str = "urn:xmpp:ping";
const SESSION_NS: &str = "urn:ietf:params:xml:ns:xmpp-session";
const ROSTER_NS: &str = "jabber:iq:roster";

/// What routing a stanza produced for the sending connection.
#[derive(Debug, Default)]
pub struct RouteOutcome {
    /// XML to write back to the sender.
    pub reply: String,
    /// Close the sender's stream with this error afterwards.
    pub close: Option<StreamError>,
}

impl RouteOutcome {
    fn reply(el: &Element) -> Self {
        let mut reply = String::new();
        el.write_xml(&mut reply, CLIENT_NS);
        Self { reply, close: None }
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

/// A stanza error reply (RFC 6120 §8.3) to `stanza`, or `None` for stanzas that must not be
/// answered with an error (errors and results).
pub fn error_reply(stanza: &Element, kind: &str, condition: &str, server: &str) -> Option<Element> {
    if matches!(stanza.attr("type"), Some("error") | Some("result")) {
        return None;
    }
    let mut reply = Element::new(&stanza.name, CLIENT_NS).with_attr("type", "error");
    if let Some(id) = stanza.attr("id") {
        reply.set_attr("id", id);
    }
    if let Some(from) = stanza.attr("from") {
        reply.set_attr("to", from);
    }
    reply.set_attr("from", stanza.attr("to").unwrap_or(server));
    let error = Element::new("error", CLIENT_NS)
        .with_attr("type", kind)
        .with_child(Element::new(condition, STANZAS_NS));
    Some(reply.with_child(error))
}

fn result_for(iq: &Element, server: &str) -> Element {
    let mut reply = Element::new("iq", CLIENT_NS).with_attr("type", "result");
    if let Some(id) = iq.attr("id") {
        reply.set_attr("id", id);
    }
    if let Some(from) = iq.attr("from") {
        reply.set_attr("to", from);
    }
    reply.set_attr("from", iq.attr("to").unwrap_or(server));
    reply
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
        let xml = error_reply(&stamped, "modify", "bad-request", domain)
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
                let xml = error_reply(&stamped, "modify", "bad-request", domain)
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
    let mut reply = result_for(&stamped, domain);
    reply.remove_attr("from");
    let reply = reply.with_child(
        Element::new("bind", BIND_NS).with_child(Element::new("jid", BIND_NS).with_text(&full)),
    );
    BindReply {
        xml: reply.to_xml_in(CLIENT_NS),
        bound: Ok(full),
    }
}

fn random_resource() -> String {
    let mut raw = [0u8; 9];
    crate::secret::random_bytes(&mut raw);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    format!("tessera-{hex}")
}

/// Route one stanza from a bound session.
pub async fn route(
    shared: &Arc<Shared>,
    session: &Arc<SessionEntry>,
    info: &StreamInfo,
    mut stanza: Element,
) -> RouteOutcome {
    let domain = shared.config.domain.clone();
    stanza.set_attr("from", session.jid());
    let to = match stanza.attr("to").map(Jid::parse) {
        None => None,
        Some(Ok(j)) => Some(j),
        Some(Err(_)) => return error_out(&stanza, "modify", "jid-malformed", &domain),
    };
    if let Some(to) = &to {
        stanza.set_attr("to", to.to_string());
        if to.domain != domain {
            return error_out(&stanza, "cancel", "remote-server-not-found", &domain);
        }
    }
    match stanza.name.as_str() {
        "message" => route_message(shared, &stanza, to.as_ref(), &domain),
        "presence" => route_presence(shared, session, &stanza, to.as_ref()),
        _ => route_iq(shared, session, info, stanza, to.as_ref()).await,
    }
}

fn error_out(stanza: &Element, kind: &str, condition: &str, domain: &str) -> RouteOutcome {
    match error_reply(stanza, kind, condition, domain) {
        Some(e) => RouteOutcome::reply(&e),
        None => RouteOutcome::default(),
    }
}

fn deliver_to(target: &SessionEntry, stanza: &Element) -> bool {
    target.deliver(stanza.to_xml_in(CLIENT_NS))
}

/// Sessions that receive a stanza addressed to a bare JID: available ones, else all bound ones.
fn bare_targets(sessions: &Sessions, user: &str) -> Vec<Arc<SessionEntry>> {
    let bound: Vec<_> = sessions
        .of_user(user)
        .into_iter()
        .filter(|s| s.is_bound())
        .collect();
    let available: Vec<_> = bound
        .iter()
        .filter(|s| s.available.load(std::sync::atomic::Ordering::Relaxed))
        .cloned()
        .collect();
    if available.is_empty() {
        bound
    } else {
        available
    }
}

fn route_message(
    shared: &Shared,
    stanza: &Element,
    to: Option<&Jid>,
    domain: &str,
) -> RouteOutcome {
    let Some(to) = to.filter(|t| t.local.is_some()) else {
        // Messages to the server itself are not handled.
        return error_out(stanza, "cancel", "service-unavailable", domain);
    };
    if to.resource.is_some() {
        if let Some(target) = shared.sessions.by_full_jid(&to.to_string()) {
            deliver_to(&target, stanza);
            return RouteOutcome::default();
        }
    }
    let user = to.local.as_deref().unwrap_or_default();
    let targets = bare_targets(&shared.sessions, user);
    if targets.is_empty() {
        return error_out(stanza, "cancel", "service-unavailable", domain);
    }
    for t in targets {
        deliver_to(&t, stanza);
    }
    RouteOutcome::default()
}

fn route_presence(
    shared: &Shared,
    session: &SessionEntry,
    stanza: &Element,
    to: Option<&Jid>,
) -> RouteOutcome {
    match to {
        None => {
            // Broadcast: the sender's availability, shared with its other resources.
            let available = stanza.attr("type").is_none();
            if matches!(stanza.attr("type"), None | Some("unavailable")) {
                Sessions::set_available(session, available);
                for other in shared.sessions.of_user(&session.user) {
                    if other.stream_id != session.stream_id && other.is_bound() {
                        deliver_to(&other, stanza);
                    }
                }
            }
        }
        Some(to) => {
            let targets = match (&to.local, &to.resource) {
                (Some(_), Some(_)) => shared
                    .sessions
                    .by_full_jid(&to.to_string())
                    .into_iter()
                    .collect(),
                (Some(user), None) => shared
                    .sessions
                    .of_user(user)
                    .into_iter()
                    .filter(|s| s.is_bound())
                    .collect(),
                _ => Vec::new(),
            };
            for t in targets {
                deliver_to(&t, stanza);
            }
        }
    }
    RouteOutcome::default()
}

async fn route_iq(
    shared: &Arc<Shared>,
    session: &Arc<SessionEntry>,
    info: &StreamInfo,
    stanza: Element,
    to: Option<&Jid>,
) -> RouteOutcome {
    let domain = shared.config.domain.clone();
    let valid = matches!(
        stanza.attr("type"),
        Some("get" | "set" | "result" | "error")
    ) && stanza.attr("id").is_some();
    if !valid {
        return error_out(&stanza, "modify", "bad-request", &domain);
    }
    if let Some(to) = to.filter(|t| t.resource.is_some() && t.local.is_some()) {
        return match shared.sessions.by_full_jid(&to.to_string()) {
            Some(target) => {
                deliver_to(&target, &stanza);
                RouteOutcome::default()
            }
            None => error_out(&stanza, "cancel", "service-unavailable", &domain),
        };
    }
    if matches!(stanza.attr("type"), Some("result" | "error")) {
        return RouteOutcome::default();
    }
    let own_account = to.is_none_or(|t| t.local.as_deref() == Some(session.user.as_str()));
    let to_server = to.is_none_or(|t| t.local.is_none());
    let Some(payload) = stanza.child_elements().next().cloned() else {
        return error_out(&stanza, "modify", "bad-request", &domain);
    };
    server_iq(
        shared,
        session,
        info,
        stanza,
        &payload,
        to_server,
        own_account,
    )
    .await
}

async fn server_iq(
    shared: &Arc<Shared>,
    session: &Arc<SessionEntry>,
    info: &StreamInfo,
    stanza: Element,
    payload: &Element,
    to_server: bool,
    own_account: bool,
) -> RouteOutcome {
    let domain = shared.config.domain.clone();
    let get = stanza.attr("type") == Some("get");
    match (payload.ns.as_str(), payload.name.as_str()) {
        (PING_NS, "ping") if get && (to_server || own_account) => {
            RouteOutcome::reply(&result_for(&stanza, &domain))
        }
        (DISCO_INFO, "query") if get && to_server => {
            RouteOutcome::reply(&disco_info(shared, &stanza))
        }
        (DISCO_ITEMS, "query") if get && to_server => RouteOutcome::reply(
            &result_for(&stanza, &domain).with_child(Element::new("query", DISCO_ITEMS)),
        ),
        (SESSION_NS, "session") if !get => RouteOutcome::reply(&result_for(&stanza, &domain)),
        (ROSTER_NS, "query") if get && own_account => {
            let mut r = result_for(&stanza, &domain);
            r.remove_attr("from");
            RouteOutcome::reply(&r.with_child(Element::new("query", ROSTER_NS)))
        }
        (BIND_NS, "bind") => error_out(&stanza, "cancel", "not-allowed", &domain),
        (register::NS, "query") if to_server || own_account => {
            register::authenticated(shared, session, &stanza, payload).await
        }
        (ns, _) => module_iq(shared, info, stanza.clone(), ns)
            .unwrap_or_else(|| error_out(&stanza, "cancel", "service-unavailable", &domain)),
    }
}

fn module_iq(
    shared: &Shared,
    info: &StreamInfo,
    stanza: Element,
    ns: &str,
) -> Option<RouteOutcome> {
    let routes = shared.registry.routes();
    let module = routes.iq.get(ns)?;
    let request = IqRequest {
        stream: info.clone(),
        stanza: stanza.clone(),
    };
    match module.iq(request) {
        Ok(Some(reply)) => Some(RouteOutcome::reply(&reply)),
        Ok(None) => None,
        Err(_) => Some(error_out(
            &stanza,
            "cancel",
            "internal-server-error",
            &shared.config.domain,
        )),
    }
}

fn disco_info(shared: &Shared, stanza: &Element) -> Element {
    let mut query = Element::new("query", DISCO_INFO).with_child(
        Element::new("identity", DISCO_INFO)
            .with_attr("category", "server")
            .with_attr("type", "im")
            .with_attr("name", "Tessera"),
    );
    let mut features: Vec<String> = [DISCO_INFO, DISCO_ITEMS, PING_NS, register::NS]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    features.extend(shared.registry.routes().disco_features.iter().cloned());
    features.sort();
    features.dedup();
    for f in features {
        query.push_child(Element::new("feature", DISCO_INFO).with_attr("var", &f));
    }
    result_for(stanza, &shared.config.domain).with_child(query)
}
