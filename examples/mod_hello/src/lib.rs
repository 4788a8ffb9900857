//! `mod_hello`: an example third-party Tessera module, built outside the Tessera workspace
//! against `tessera-plugin-api` alone.
//!
//! Module name `hello` (file `libmod_hello.so`). It shows the five common kinds of hook:
//!
//! 1. **Stream feature**: adds `<hello xmlns='urn:example:hello'/>` to every
//!    `<stream:features/>`.
//! 2. **IQ handler**: answers `<iq type='get'><hello xmlns='urn:example:hello'/></iq>` with
//!    `<iq type='result'><hello xmlns='urn:example:hello'>Hello, JID!</hello></iq>`, where JID
//!    is the requester's bound JID. Other IQs in the namespace (e.g. `set`) get the host's
//!    `<service-unavailable/>`.
//! 3. **Event hook**: counts `session-bound` events, logs each one through the host and keeps
//!    the count in the module's global key-value store under `sessions-bound` (so it survives
//!    restarts and hot swaps).
//! 4. **HTTP route**: `GET /hello/stats` on the host's HTTPS server answers
//!    `{"sessions_bound": N}`.
//! 5. **Stanza hook**: a chat message a client sends with the body `/hello` (to anyone) is not
//!    delivered; the sender gets `Hello, JID!` from the server instead. Every other message
//!    passes untouched, and the hook reads only the stanza's header for those that are not
//!    chat messages (the host's selector already filtered by kind and type).
//!
//! Like every module it is synchronous and keeps no host objects: all I/O goes through [`Host`].

use tessera_plugin_api::events::{self, SessionEvent};
use tessera_plugin_api::protocol::{
    HookSpec, HttpRequest, HttpResponse, IqRequest, KvScope, Manifest, Registrations, StreamInfo,
};
use tessera_plugin_api::stanza::{StanzaHook, StanzaKind, StanzaPoint};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{
    Config, Event, EventFlow, Host, LogLevel, Module, PluginError, Stanza, Verdict,
};

/// The namespace of the stream feature and of the IQ payload.
pub const NS: &str = "urn:example:hello";

/// The HTTP route prefix this module registers.
const ROUTE: &str = "/hello";

/// The global kv key that holds the number of bound sessions.
const COUNTER_KEY: &str = "sessions-bound";

/// The module. It has no state of its own: the counter lives in the host's store.
#[derive(Debug)]
pub struct Hello;

impl Module for Hello {
    const NAME: &'static str = "hello";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "Example module: says hello and counts bound sessions".into(),
            ..Manifest::default()
        }
    }

    fn init(_host: &Host, _config: &Config, _restore: Option<&[u8]>) -> Result<Self, PluginError> {
        Ok(Hello)
    }

    fn registrations(&self) -> Registrations {
        Registrations {
            stream_features: true,
            iq_namespaces: vec![NS.into()],
            events: vec![HookSpec {
                name: events::SESSION_BOUND.into(),
                priority: events::priority::NORMAL,
            }],
            http_routes: vec![ROUTE.into()],
            stanza_hooks: vec![StanzaHook::at(StanzaPoint::ClientIn)
                .kind(StanzaKind::Message)
                .types(&["chat"])],
            ..Registrations::default()
        }
    }

    fn stanza(&self, host: &Host, stanza: Stanza<'_>) -> Result<Verdict, PluginError> {
        let message = stanza.element()?;
        Ok(match greeting(&message, &host.host_info()?.domain) {
            Some(answer) => Verdict::Reply(answer),
            None => Verdict::Pass,
        })
    }

    fn stream_features(
        &self,
        _host: &Host,
        _stream: &StreamInfo,
    ) -> Result<Vec<Element>, PluginError> {
        Ok(vec![Element::new("hello", NS)])
    }

    fn iq(&self, _host: &Host, request: IqRequest) -> Result<Option<Element>, PluginError> {
        Ok(hello_reply(&request))
    }

    fn on_event(&self, host: &Host, event: &Event<'_>) -> Result<EventFlow, PluginError> {
        if event.name == events::SESSION_BOUND {
            let bound: SessionEvent = event.decode()?;
            let count = sessions_bound(host)?.saturating_add(1);
            host.kv_put(KvScope::Global, COUNTER_KEY, &count.to_string())?;
            let jid = bound.jid.as_deref().unwrap_or("(unknown)");
            host.log(
                LogLevel::Info,
                &format!("hello, {jid}! ({count} sessions bound so far)"),
            );
        }
        Ok(EventFlow::Continue)
    }

    fn http(&self, host: &Host, request: HttpRequest) -> Result<HttpResponse, PluginError> {
        let rest = request.path.strip_prefix(ROUTE).unwrap_or(&request.path);
        match (request.method.as_str(), rest) {
            ("GET", "/stats") => {
                let body = serde_json::json!({ "sessions_bound": sessions_bound(host)? });
                Ok(HttpResponse {
                    status: 200,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: serde_json::to_vec(&body)
                        .map_err(|e| PluginError::internal(e.to_string()))?,
                })
            }
            (_, "/stats") => Ok(HttpResponse {
                status: 405,
                headers: vec![("allow".into(), "GET".into())],
                body: Vec::new(),
            }),
            _ => Ok(HttpResponse {
                status: 404,
                ..HttpResponse::default()
            }),
        }
    }
}

/// The stored number of bound sessions (0 when never set).
fn sessions_bound(host: &Host) -> Result<u64, PluginError> {
    match host.kv_get(KvScope::Global, COUNTER_KEY)? {
        None => Ok(0),
        Some(text) => text
            .parse()
            .map_err(|_| PluginError::internal(format!("`{COUNTER_KEY}` is not a number: {text}"))),
    }
}

/// The reply to a `<hello/>` IQ get, or `None` (the host then answers `<service-unavailable/>`).
///
/// The reply keeps the request's `id` and swaps `to` and `from`; when the request carries no
/// `from` (clients usually leave it out), it is addressed to the requester's bound JID.
fn hello_reply(request: &IqRequest) -> Option<Element> {
    let iq = &request.stanza;
    if iq.attr("type") != Some("get") || iq.child("hello", NS).is_none() {
        return None;
    }
    let requester = iq.attr("from").or(request.stream.jid.as_deref());
    let greeted = request
        .stream
        .jid
        .as_deref()
        .or(requester)
        .unwrap_or("stranger");
    let mut reply = Element::new("iq", iq.ns.clone()).with_attr("type", "result");
    if let Some(id) = iq.attr("id") {
        reply.set_attr("id", id);
    }
    if let Some(server) = iq.attr("to") {
        reply.set_attr("from", server);
    }
    if let Some(requester) = requester {
        reply.set_attr("to", requester);
    }
    Some(reply.with_child(Element::new("hello", NS).with_text(format!("Hello, {greeted}!"))))
}

/// The server's answer to a `/hello` chat message, or `None` for any other message.
fn greeting(message: &Element, domain: &str) -> Option<Element> {
    let body = message.child("body", "jabber:client")?;
    if body.text().trim() != "/hello" {
        return None;
    }
    let sender = message.attr("from").unwrap_or("stranger");
    Some(
        Element::new("message", "jabber:client")
            .with_attr("type", "chat")
            .with_attr("from", domain)
            .with_attr("to", sender)
            .with_child(
                Element::new("body", "jabber:client").with_text(format!("Hello, {sender}!")),
            ),
    )
}

tessera_plugin_api::export_module!(Hello);

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: &str, from: Option<&str>) -> IqRequest {
        let mut stanza = Element::new("iq", "jabber:client")
            .with_attr("type", kind)
            .with_attr("id", "h1")
            .with_attr("to", "example.org")
            .with_child(Element::new("hello", NS));
        if let Some(from) = from {
            stanza.set_attr("from", from);
        }
        IqRequest {
            stream: StreamInfo {
                id: 1,
                domain: "example.org".into(),
                jid: Some("juliet@example.org/balcony".into()),
                ..StreamInfo::default()
            },
            stanza,
        }
    }

    #[test]
    fn get_is_answered_with_swapped_addresses_and_same_id() {
        let reply = hello_reply(&request("get", Some("juliet@example.org/balcony")));
        assert_eq!(
            reply.map(|r| r.to_xml()).as_deref(),
            Some(
                "<iq xmlns='jabber:client' type='result' id='h1' from='example.org' \
                 to='juliet@example.org/balcony'><hello xmlns='urn:example:hello'>\
                 Hello, juliet@example.org/balcony!</hello></iq>"
            )
        );
    }

    #[test]
    fn missing_from_is_replaced_by_the_bound_jid() {
        let reply = hello_reply(&request("get", None));
        assert_eq!(
            reply.as_ref().and_then(|r| r.attr("to")),
            Some("juliet@example.org/balcony")
        );
    }

    #[test]
    fn only_the_hello_command_is_answered() {
        let message = |body: &str| {
            Element::new("message", "jabber:client")
                .with_attr("type", "chat")
                .with_attr("from", "juliet@example.org/balcony")
                .with_child(Element::new("body", "jabber:client").with_text(body))
        };
        assert_eq!(
            greeting(&message(" /hello "), "example.org")
                .map(|m| m.to_xml())
                .as_deref(),
            Some(
                "<message xmlns='jabber:client' type='chat' from='example.org' \
                 to='juliet@example.org/balcony'><body>Hello, juliet@example.org/balcony!</body>\
                 </message>"
            )
        );
        assert!(greeting(&message("hello"), "example.org").is_none());
    }

    #[test]
    fn set_and_foreign_payloads_are_left_to_the_host() {
        assert!(hello_reply(&request("set", None)).is_none());
        let mut other = request("get", None);
        other.stanza.children.clear();
        other.stanza.push_child(Element::new("other", NS));
        assert!(hello_reply(&other).is_none());
    }
}
