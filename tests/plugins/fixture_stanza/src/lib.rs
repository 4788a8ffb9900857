//! Test fixture `fixture_stanza`: one hook at every stanza point, the send paths and the
//! per-session state, driven by what clients send, so `tests/e2e/stanza_hooks.rs` can show
//! each over real TLS sessions.
//!
//! Messages with a `<body/>`, by body text, at `ClientIn`:
//! * hook 0 (priority 10): `drop` → dropped; `refuse` → `<not-acceptable/>` with text;
//!   `echo` → a reply to the sender; `panic` → panics; anything else gets ` [in10]` appended.
//! * hook 1 (priority 0): appends ` [in0]` (so the order of the two shows in the body).
//!
//! Delivery: hook 2 (`ToBare`) appends ` [bare]`, hook 3 (`ToFull`) ` [full]`; hook 4
//! (`Undeliverable`) keeps a message whose body contains `store` in the recipient's archive
//! `stored` (`GET /test/stanza/stored?user=U` lists them, `GET /test/stanza/take?user=U` takes
//! them) and answers `Stored`, else passes (the host bounces). Hook 5 (`SessionOut`, only for sessions that attached) counts the stanzas written
//! to the session in its session state and adds `<seen xmlns='urn:tessera:test:stanza' n='…'/>`.
//!
//! IQs in `urn:tessera:test:stanza` (type `set`): `<attach/>`, `<detach/>` (this session's
//! `SessionOut` hook), `<state/>` (answers the session's counter), `<poke/>` (a message to this
//! session through `send_to_session`), `<route to='JID'>TEXT</route>` (a message from the
//! server to `JID` through `route`).

use tessera_plugin_api::protocol::{
    ArchiveQuery, HttpRequest, HttpResponse, IqRequest, Manifest, Registrations,
};
use tessera_plugin_api::stanza::{StanzaHook, StanzaKind, StanzaPoint};
use tessera_plugin_api::wire::Bytes;
use tessera_plugin_api::xml::{Element, Node};
use tessera_plugin_api::{Config, Host, Module, PluginError, Stanza, StanzaCondition, Verdict};

const NS: &str = "urn:tessera:test:stanza";
const CLIENT: &str = "jabber:client";
const ROUTE: &str = "/test/stanza";

/// The module (stateless: what it keeps lives in the host's session state and store).
#[derive(Debug)]
pub struct Fixture;

fn body(el: &Element) -> Option<String> {
    el.child("body", CLIENT).map(Element::text)
}

/// The stanza with its body text replaced.
fn with_body(mut el: Element, text: &str) -> Element {
    if let Some(b) = el.child_mut("body", CLIENT) {
        b.children = vec![Node::Text(text.to_owned())];
    }
    el
}

fn append(stanza: &Stanza<'_>, suffix: &str) -> Result<Verdict, PluginError> {
    let el = stanza.element()?;
    Ok(match body(&el) {
        Some(text) => Verdict::Replace(with_body(el, &format!("{text}{suffix}"))),
        None => Verdict::Pass,
    })
}

impl Fixture {
    fn client_first(&self, stanza: &Stanza<'_>) -> Result<Verdict, PluginError> {
        let el = stanza.element()?;
        let Some(text) = body(&el) else {
            return Ok(Verdict::Pass);
        };
        Ok(match text.as_str() {
            "drop" => Verdict::Drop,
            "refuse" => Verdict::Error {
                condition: StanzaCondition::NotAcceptable,
                text: Some("refused by fixture_stanza".into()),
            },
            "echo" => {
                let mut reply = Element::new("message", CLIENT)
                    .with_child(Element::new("body", CLIENT).with_text("echo: echo"));
                if let Some(from) = stanza.header.from {
                    reply.set_attr("to", from);
                }
                Verdict::Reply(reply)
            }
            "panic" => panic!("fixture_stanza: deliberate panic in a stanza hook"),
            _ => Verdict::Replace(with_body(el, &format!("{text} [in10]"))),
        })
    }

    fn undeliverable(&self, host: &Host, stanza: &Stanza<'_>) -> Result<Verdict, PluginError> {
        let el = stanza.element()?;
        let (Some(text), Some(user)) = (body(&el), stanza.header.account) else {
            return Ok(Verdict::Pass);
        };
        if !text.contains("store") {
            return Ok(Verdict::Pass);
        }
        let from = stanza.header.from.unwrap_or_default();
        host.archive_append(
            "stored",
            user,
            from,
            host.now_ms(),
            Bytes::new(text.as_bytes()),
        )?;
        Ok(Verdict::Stored)
    }

    fn session_out(&self, host: &Host, stanza: &Stanza<'_>) -> Result<Verdict, PluginError> {
        let Some(stream) = stanza.header.session else {
            return Ok(Verdict::Pass);
        };
        let n = counter(host, stream)? + 1;
        host.session_set(stream, "out", Some(Bytes::new(&n.to_be_bytes())))?;
        let mut el = stanza.element()?;
        el.push_child(Element::new("seen", NS).with_attr("n", n.to_string()));
        Ok(Verdict::Replace(el))
    }
}

fn counter(host: &Host, stream: u64) -> Result<u64, PluginError> {
    Ok(host
        .session_get(stream, "out")?
        .and_then(|v| v.try_into().ok())
        .map_or(0, u64::from_be_bytes))
}

fn result_of(iq: &Element) -> Element {
    let mut reply = Element::new("iq", CLIENT).with_attr("type", "result");
    if let Some(id) = iq.attr("id") {
        reply.set_attr("id", id);
    }
    if let Some(from) = iq.attr("from") {
        reply.set_attr("to", from);
    }
    reply
}

impl Module for Fixture {
    const NAME: &'static str = "fixture_stanza";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "Test fixture: stanza hooks at every point".into(),
            ..Manifest::default()
        }
    }

    fn init(_host: &Host, _config: &Config, _restore: Option<&[u8]>) -> Result<Self, PluginError> {
        Ok(Fixture)
    }

    fn registrations(&self) -> Registrations {
        let message = |point| StanzaHook::at(point).kind(StanzaKind::Message);
        Registrations {
            stanza_hooks: vec![
                message(StanzaPoint::ClientIn).priority(10),
                message(StanzaPoint::ClientIn).priority(0),
                message(StanzaPoint::ToBare),
                message(StanzaPoint::ToFull),
                StanzaHook::at(StanzaPoint::Undeliverable),
                StanzaHook::at(StanzaPoint::SessionOut),
            ],
            iq_namespaces: vec![NS.into()],
            http_routes: vec![ROUTE.into()],
            ..Registrations::default()
        }
    }

    fn stanza(&self, host: &Host, stanza: Stanza<'_>) -> Result<Verdict, PluginError> {
        match stanza.header.hook {
            0 => self.client_first(&stanza),
            1 => append(&stanza, " [in0]"),
            2 => append(&stanza, " [bare]"),
            3 => append(&stanza, " [full]"),
            4 => self.undeliverable(host, &stanza),
            5 => self.session_out(host, &stanza),
            other => Err(PluginError::internal(format!("no hook {other}"))),
        }
    }

    fn iq(&self, host: &Host, request: IqRequest) -> Result<Option<Element>, PluginError> {
        let iq = &request.stanza;
        let stream = request.stream.id;
        let Some(command) = iq.child_elements().find(|c| c.ns == NS) else {
            return Ok(None);
        };
        let reply = result_of(iq);
        match command.name.as_str() {
            "attach" | "detach" => {
                host.session_attach(stream, command.name == "attach")?;
                Ok(Some(reply))
            }
            "state" => {
                let n = counter(host, stream)?;
                Ok(Some(reply.with_child(
                    Element::new("state", NS).with_attr("out", n.to_string()),
                )))
            }
            "poke" => {
                let mut poke = Element::new("message", CLIENT)
                    .with_attr("from", &request.stream.domain)
                    .with_child(Element::new("body", CLIENT).with_text("poked"));
                if let Some(jid) = &request.stream.jid {
                    poke.set_attr("to", jid);
                }
                host.send_to_session(stream, poke)?;
                Ok(Some(reply))
            }
            "route" => {
                let to = command.attr("to").unwrap_or_default();
                let message = Element::new("message", CLIENT)
                    .with_attr("from", &request.stream.domain)
                    .with_attr("to", to)
                    .with_attr("type", "chat")
                    .with_child(Element::new("body", CLIENT).with_text(command.text()));
                host.route(message)?;
                Ok(Some(reply))
            }
            _ => Ok(None),
        }
    }

    fn http(&self, host: &Host, request: HttpRequest) -> Result<HttpResponse, PluginError> {
        let rest = request.path.strip_prefix(ROUTE).unwrap_or(&request.path);
        let user = request.query.strip_prefix("user=").unwrap_or_default();
        let items = match rest {
            _ if user.is_empty() => None,
            "/stored" => {
                let query = ArchiveQuery {
                    limit: 100,
                    ..ArchiveQuery::default()
                };
                Some(host.archive_query("stored", user, query)?.items)
            }
            "/take" => Some(host.archive_take("stored", user, 100)?),
            _ => None,
        };
        let Some(items) = items else {
            return Ok(HttpResponse {
                status: 404,
                ..HttpResponse::default()
            });
        };
        let lines: Vec<String> = items
            .iter()
            .map(|i| format!("{} {}", i.with, String::from_utf8_lossy(&i.data)))
            .collect();
        Ok(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: lines.join("\n").into_bytes(),
        })
    }
}

tessera_plugin_api::export_module!(Fixture);
