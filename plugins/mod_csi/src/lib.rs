//! # mod_csi
//!
//! XEP-0352 Client State Indication: a client that says `<inactive xmlns='urn:xmpp:csi:0'/>`
//! (the phone screen went off) is not woken for every presence update or "typing"
//! notification. While it is inactive, presence updates (only the latest from each sender) and
//! chat-state-only messages are held, each stamped with a XEP-0203 `<delay/>` from the
//! account's bare JID; anything else (a message with a body, an IQ, a subscription request, an
//! error) is important: the held stanzas go out first, in order, then it. `<active/>` sends
//! everything held. The stream feature `<csi/>` is offered after authentication, and Bind 2
//! takes `<inactive/>` inline (listed in its inline features).
//!
//! ## Options
//! | option | default | meaning |
//! |---|---|---|
//! | `csi_queue_size` | 256 (1–10000) | stanzas held per session; one more flushes them all |
//!
//! ## Behaviour worth knowing
//! * Nothing held is ever dropped: the queue flushes when full, on `<active/>`, before an
//!   important stanza, and when stream management resumes the session (a resumed stream starts
//!   active, XEP-0352 §5). What a closed session still held is presence and chat states, which
//!   are worthless once the session is gone.
//! * The server never answers `<active/>` or `<inactive/>`, and tells nobody about the state.
//! * Held stanzas are written through the session's other filters like any stanza; the module
//!   marks its own re-sends so that they pass it without being held again.

pub mod queue;

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tessera_plugin_api::datetime::format_utc_millis;
use tessera_plugin_api::events::{self, hooks, priority, Bind2Bound, SessionEvent, SessionResumed};
use tessera_plugin_api::protocol::{
    ElementSpec, HookSpec, Manifest, Registrations, StreamAction, StreamElement, StreamInfo,
    StreamPhase,
};
use tessera_plugin_api::stanza::{StanzaHook, StanzaPoint};
use tessera_plugin_api::sync::locked;
use tessera_plugin_api::xml::{self, Element, ParseLimits};
use tessera_plugin_api::{
    wire, Config, Event, EventFlow, Host, LogLevel, Module, PluginError, Stanza, Verdict,
};

use crate::queue::{classify, Class, Held};

/// The CSI namespace.
pub const NS: &str = "urn:xmpp:csi:0";
const DELAY_NS: &str = "urn:xmpp:delay";
/// The attribute marking the module's own re-sends (its value: a secret of this server).
const MARK: &str = "tessera-csi-flush";
const STATE_VERSION: u8 = 1;
/// Limits for parsing a held stanza back (it passed the host's stanza limits).
const STORED: ParseLimits = ParseLimits {
    max_depth: 64,
    max_elements: 65_536,
};

tessera_plugin_api::options! {
    /// The options as declared.
    pub struct Options {
        /// stanzas held per inactive session; one more flushes them all
        csi_queue_size: usize = 256, range 1..=10_000;
    }
}

/// One session's state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Session {
    /// The account's bare JID (the `from` of the delays).
    bare: String,
    inactive: bool,
    held: Held,
    /// Our marked re-sends not yet seen by the hook.
    in_flight: usize,
}

/// The module.
#[derive(Debug)]
pub struct Csi {
    options: Options,
    domain: String,
    /// Marks the module's own re-sends; not guessable by a remote sender.
    mark: String,
    sessions: Mutex<HashMap<u64, Session>>,
    /// Streams that asked for `<inactive/>` inline in Bind 2, before their session existed.
    pending: Mutex<HashMap<u64, String>>,
}

impl Module for Csi {
    const NAME: &'static str = "csi";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "XEP-0352 Client State Indication".into(),
            options: Options::specs(),
            ..Manifest::default()
        }
    }

    fn init(host: &Host, config: &Config, restore: Option<&[u8]>) -> Result<Self, PluginError> {
        let sessions: HashMap<u64, Session> = match restore {
            Some(bytes) => wire::decode_state("csi", STATE_VERSION, bytes)?,
            None => HashMap::new(),
        };
        let mark = host
            .derive_secret("csi-flush-mark")?
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            options: Options::from_config(config)?,
            domain: host.host_info()?.domain,
            mark,
            sessions: Mutex::new(sessions),
            pending: Mutex::new(HashMap::new()),
        })
    }

    fn registrations(&self) -> Registrations {
        let nonza = |name: &str| ElementSpec {
            name: name.into(),
            ns: NS.into(),
            phase: StreamPhase::Authenticated,
        };
        Registrations {
            stream_elements: vec![nonza("active"), nonza("inactive")],
            stream_features: true,
            // Only for sessions that went inactive (attached).
            stanza_hooks: vec![StanzaHook::at(StanzaPoint::SessionOut).priority(priority::LAST)],
            hooks: vec![
                HookSpec::new(hooks::BIND2_INLINE_FEATURES, priority::NORMAL),
                HookSpec::new(hooks::BIND2_BOUND, priority::NORMAL),
            ],
            events: vec![
                HookSpec::new(events::SESSION_BOUND, priority::NORMAL),
                HookSpec::new(events::SESSION_CLOSED, priority::NORMAL),
                HookSpec::new(events::SESSION_RESUMED, priority::NORMAL),
            ],
            ..Registrations::default()
        }
    }

    fn stream_features(
        &self,
        _host: &Host,
        stream: &StreamInfo,
    ) -> Result<Vec<Element>, PluginError> {
        Ok(if stream.user.is_some() {
            vec![Element::new("csi", NS)]
        } else {
            Vec::new()
        })
    }

    fn stream_element(
        &self,
        host: &Host,
        request: StreamElement,
    ) -> Result<Vec<StreamAction>, PluginError> {
        let stream = &request.stream;
        let (Some(user), Some(_)) = (stream.user.as_deref(), stream.jid.as_deref()) else {
            // Before binding there is no output to hold; the state starts with the session.
            return Ok(Vec::new());
        };
        let inactive = request.element.name == "inactive";
        self.set_state(host, stream.id, user, inactive)?;
        Ok(Vec::new())
    }

    fn stanza(&self, host: &Host, stanza: Stanza<'_>) -> Result<Verdict, PluginError> {
        let Some(stream) = stanza.header.session else {
            return Ok(Verdict::Pass);
        };
        let now = host.now_ms();
        let mut sessions = locked(&self.sessions);
        let Some(session) = sessions.get_mut(&stream) else {
            return Ok(Verdict::Pass);
        };
        // Active, with none of our re-sends on the way: pass without decoding the stanza.
        if !session.inactive && session.in_flight == 0 {
            return Ok(Verdict::Pass);
        }
        let mut element = stanza.element()?;
        if element.attr(MARK) == Some(self.mark.as_str()) {
            // Our own re-send: it passes, unmarked.
            session.in_flight = session.in_flight.saturating_sub(1);
            element.remove_attr(MARK);
            return Ok(Verdict::Replace(element));
        }
        if !session.inactive {
            // Our re-sends are still on their way: this one must not overtake them, so it
            // joins them at the back (the host writes effects in order).
            let out = vec![element.to_xml_in("")];
            drop(sessions);
            self.resend(host, stream, out)?;
            return Ok(Verdict::Drop);
        }
        let full = session.held.len() >= self.options.csi_queue_size;
        if classify(&element) == Class::Hold && !full {
            let from = (element.name == "presence")
                .then(|| element.attr("from").map(str::to_owned))
                .flatten();
            element.push_child(
                Element::new("delay", DELAY_NS)
                    .with_attr("from", &session.bare)
                    .with_attr("stamp", format_utc_millis(now)),
            );
            session.held.hold(element.to_xml_in(""), from);
            return Ok(Verdict::Drop);
        }
        // Important (or the queue is full): what is held goes first, then this, all marked.
        let mut out = session.held.take();
        if out.is_empty() && session.in_flight == 0 {
            return Ok(Verdict::Pass);
        }
        out.push(element.to_xml_in(""));
        drop(sessions);
        self.resend(host, stream, out)?;
        Ok(Verdict::Drop)
    }

    fn hook(
        &self,
        _host: &Host,
        name: &str,
        payload: &[u8],
    ) -> Result<Option<Vec<u8>>, PluginError> {
        match name {
            hooks::BIND2_INLINE_FEATURES => {
                let _: StreamInfo = wire::decode(name, payload)?;
                events::bind2_inline_feature(NS).map(Some)
            }
            hooks::BIND2_BOUND => {
                let bound: Bind2Bound = wire::decode(name, payload)?;
                if bound.bind.child("inactive", NS).is_some() {
                    // The session starts inactive once it exists (`session-bound`).
                    locked(&self.pending).insert(bound.stream.id, bound.user);
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn on_event(&self, host: &Host, event: &Event) -> Result<EventFlow, PluginError> {
        match event.name {
            events::SESSION_BOUND => {
                let bound: SessionEvent = event.decode()?;
                let user = locked(&self.pending).remove(&bound.stream_id);
                if let Some(user) = user {
                    self.set_state(host, bound.stream_id, &user, true)?;
                }
            }
            events::SESSION_CLOSED => {
                let closed: SessionEvent = event.decode()?;
                locked(&self.pending).remove(&closed.stream_id);
                locked(&self.sessions).remove(&closed.stream_id);
            }
            events::SESSION_RESUMED => {
                // A resumed stream starts active (XEP-0352 §5): what was held goes to it.
                let resumed: SessionResumed = event.decode()?;
                let held = locked(&self.sessions)
                    .remove(&resumed.previous_stream_id)
                    .map(|mut s| s.held.take())
                    .unwrap_or_default();
                self.resend(host, resumed.stream_id, held)?;
            }
            _ => {}
        }
        Ok(EventFlow::Continue)
    }

    fn save_state(&self) -> Result<Vec<u8>, PluginError> {
        wire::encode_state(STATE_VERSION, &*locked(&self.sessions))
    }
}

impl Csi {
    /// Go inactive (hold from now on) or active (send what is held).
    fn set_state(
        &self,
        host: &Host,
        stream: u64,
        user: &str,
        inactive: bool,
    ) -> Result<(), PluginError> {
        let held = {
            let mut sessions = locked(&self.sessions);
            let session = sessions.entry(stream).or_insert_with(|| Session {
                bare: format!("{user}@{}", self.domain),
                ..Session::default()
            });
            session.inactive = inactive;
            if inactive {
                Vec::new()
            } else {
                session.held.take()
            }
        };
        if inactive {
            // Attached from the first `<inactive/>` on; an active session's stanzas pass it at
            // the cost of one header check.
            host.session_attach(stream, true)?;
        }
        self.resend(host, stream, held)
    }

    /// Write held stanzas to a session, marked so that they pass the hook.
    fn resend(&self, host: &Host, stream: u64, held: Vec<String>) -> Result<(), PluginError> {
        let parsed: Vec<Element> = held
            .iter()
            .filter_map(|xml| match xml::parse(xml.as_bytes(), STORED) {
                Ok(el) => Some(el),
                Err(e) => {
                    host.log(LogLevel::Warn, &format!("a held stanza: {e}"));
                    None
                }
            })
            .collect();
        if parsed.is_empty() {
            return Ok(());
        }
        locked(&self.sessions).entry(stream).or_default().in_flight += parsed.len();
        for mut el in parsed {
            el.set_attr(MARK, &self.mark);
            if !host.send_to_session(stream, el)? {
                // The session is gone: none of these will come back through the hook.
                locked(&self.sessions).remove(&stream);
                break;
            }
        }
        Ok(())
    }
}

tessera_plugin_api::export_module!(Csi);

#[cfg(test)]
mod tests;
