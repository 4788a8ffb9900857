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
//! server to `JID` through `route`), `<keep ms='N'/>` (keep the session N ms after its
//! connection is lost, and attach unless `attach='0'`; answers `<kept id='SESSION'/>`),
//! `<close/>` (close this
//! session with `<policy-violation/>` through `close_session`).
//!
//! A mini stream management: while a kept session is detached, hook 5 holds what is written to
//! it (in the session's state) instead of letting it go to the dead connection. The stream
//! element `<resume xmlns='urn:tessera:test:stanza' id='SESSION'/>` (after authentication)
//! answers `<resumed id='…'/>` and takes the session over with what was held as the replay,
//! or `<failed/>` when the session is not among the account's (`unchecked='1'` skips that
//! check, to show the host refusing). The lifecycle events (`session-bound`,
//! `session-detached`, `session-resumed`, `session-closed`) of accounts are listed, one line
//! each, at `GET /test/stanza/events`.

use tessera_plugin_api::events::{self, SessionEvent, SessionResumed};
use tessera_plugin_api::protocol::{
    ArchiveQuery, ElementSpec, HookSpec, HttpRequest, HttpResponse, IqRequest, KvScope, Manifest,
    Registrations, StreamAction, StreamElement, StreamPhase,
};
use tessera_plugin_api::stanza::{StanzaHook, StanzaKind, StanzaPoint};
use tessera_plugin_api::wire::{self, Bytes};
use tessera_plugin_api::xml::{Element, Node};
use tessera_plugin_api::{
    Config, Event, EventFlow, Host, Module, PluginError, Stanza, StanzaCondition, StreamCondition,
    Verdict,
};

const NS: &str = "urn:tessera:test:stanza";
const CLIENT: &str = "jabber:client";
const ROUTE: &str = "/test/stanza";

/// The module (what it keeps lives in the host's session state and store; the lock makes the
/// event log's read-modify-write one step).
#[derive(Debug, Default)]
pub struct Fixture {
    log: std::sync::Mutex<()>,
}

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
        let account = stanza.header.account.unwrap_or_default();
        let detached = host
            .account_sessions(account)?
            .iter()
            .any(|s| s.stream == stream && s.detached);
        if detached {
            let mut held = held(host, stream)?;
            held.push(stanza.element()?);
            host.session_set(stream, "held", Some(Bytes::new(&wire::encode(&held)?)))?;
            return Ok(Verdict::Handled);
        }
        let n = counter(host, stream)? + 1;
        host.session_set(stream, "out", Some(Bytes::new(&n.to_be_bytes())))?;
        let mut el = stanza.element()?;
        el.push_child(Element::new("seen", NS).with_attr("n", n.to_string()));
        Ok(Verdict::Replace(el))
    }
}

/// What was held for a detached session.
fn held(host: &Host, stream: u64) -> Result<Vec<Element>, PluginError> {
    match host.session_get(stream, "held")? {
        Some(bytes) => wire::decode("held stanzas", &bytes),
        None => Ok(Vec::new()),
    }
}

const LIFECYCLE: [&str; 4] = [
    events::SESSION_BOUND,
    events::SESSION_DETACHED,
    events::SESSION_RESUMED,
    events::SESSION_CLOSED,
];

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
        Ok(Fixture::default())
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
            stream_elements: vec![ElementSpec {
                name: "resume".into(),
                ns: NS.into(),
                phase: StreamPhase::Authenticated,
            }],
            events: LIFECYCLE
                .iter()
                .map(|name| HookSpec {
                    name: (*name).into(),
                    priority: 0,
                })
                .collect(),
            ..Registrations::default()
        }
    }

    fn on_event(&self, host: &Host, event: &Event<'_>) -> Result<EventFlow, PluginError> {
        let line = if event.name == events::SESSION_RESUMED {
            let e: SessionResumed = event.decode()?;
            format!(
                "{} {} {} from {}",
                event.name, e.stream_id, e.jid, e.previous_stream_id
            )
        } else {
            let e: SessionEvent = event.decode()?;
            let Some(jid) = e.jid else {
                return Ok(EventFlow::Continue);
            };
            format!(
                "{} {} {jid} {}",
                event.name,
                e.stream_id,
                e.reason.unwrap_or_default()
            )
        };
        let _one_at_a_time = self.log.lock();
        let mut log = host.kv_get(KvScope::Global, "events")?.unwrap_or_default();
        log.push_str(&line);
        log.push('\n');
        host.kv_put(KvScope::Global, "events", &log)?;
        Ok(EventFlow::Continue)
    }

    fn stream_element(
        &self,
        host: &Host,
        request: StreamElement,
    ) -> Result<Vec<StreamAction>, PluginError> {
        let el = &request.element;
        let id = el.attr("id").unwrap_or_default().to_owned();
        let failed = || {
            vec![StreamAction::Send {
                xml: Element::new("failed", NS).to_xml(),
            }]
        };
        let Ok(session) = id.parse::<u64>() else {
            return Ok(failed());
        };
        let user = request.stream.user.as_deref().unwrap_or_default();
        let owned = host
            .account_sessions(user)?
            .iter()
            .any(|s| s.stream == session);
        if !owned && el.attr("unchecked") != Some("1") {
            return Ok(failed());
        }
        let replay = held(host, session)?;
        host.session_set(session, "held", None)?;
        Ok(vec![
            StreamAction::Send {
                xml: Element::new("resumed", NS).with_attr("id", &id).to_xml(),
            },
            StreamAction::Resume {
                session,
                replay,
                acked: None,
            },
        ])
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
            "keep" => {
                let ms = command.attr("ms").and_then(|m| m.parse().ok());
                host.session_keep(stream, ms)?;
                if command.attr("attach") != Some("0") {
                    host.session_attach(stream, true)?;
                }
                Ok(Some(reply.with_child(
                    Element::new("kept", NS).with_attr("id", stream.to_string()),
                )))
            }
            "close" => {
                host.close_session(stream, StreamCondition::PolicyViolation)?;
                Ok(Some(reply))
            }
            _ => Ok(None),
        }
    }

    fn http(&self, host: &Host, request: HttpRequest) -> Result<HttpResponse, PluginError> {
        let rest = request.path.strip_prefix(ROUTE).unwrap_or(&request.path);
        let user = request.query.strip_prefix("user=").unwrap_or_default();
        if rest == "/events" {
            let log = host.kv_get(KvScope::Global, "events")?.unwrap_or_default();
            return Ok(HttpResponse {
                status: 200,
                headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
                body: log.into_bytes(),
            });
        }
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
