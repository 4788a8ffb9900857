//! # mod_smacks
//!
//! XEP-0198 Stream Management: acknowledgements and resumption. A phone that loses its
//! connection comes back with `<resume/>` and gets every stanza it had not acknowledged, once,
//! instead of logging in again and losing what was in flight.
//!
//! The module decides and speaks the protocol; the host counts and keeps (see
//! `tessera_plugin_api::acks`): stanzas are counted in both directions, every stanza written is
//! kept until the client acknowledges it, `<r/>` is written after
//! `smacks_max_unacked_stanzas` stanzas (or `smacks_ack_request_delay`), and a session whose
//! connection is lost stays detached — available to its contacts, stanzas queuing — for
//! `smacks_hibernation_time`. When it expires, or ends any other way without resumption, what
//! it never had acknowledged goes to offline storage (mod_offline) or bounces.
//!
//! ## Wire behaviour (`urn:xmpp:sm:3`)
//! * `<sm/>` is offered after authentication (not once enabled), `<resume/>` inline in SASL2 (`<sm/>` in its
//!   `<inline/>`: `<success/>` carries `<resumed/>` and the session's full JID, with no Bind 2
//!   and no features; a FAST token login may resume too), and `<enable/>` inline in Bind 2
//!   (listed in its inline features; the `<enabled/>` goes into `<bound/>`).
//! * `<enable resume='true' max='N'/>` after binding: `<enabled id resume='true' max/>`, where
//!   `max` is the smaller of the client's and `smacks_hibernation_time`, and the id is 128
//!   random bits kept in the session's state (so it moves with the session and dies with it).
//!   Without `resume`, `<enabled/>` without an id: acknowledgements only.
//! * `<r/>` → `<a h/>` (stanzas handled from the client). `<a h/>` releases what it
//!   acknowledges; an `h` beyond what was sent closes the stream with `<undefined-condition/>`
//!   (XEP-0198 §4), a missing or malformed `h` with `<invalid-xml/>`.
//! * `<resume previd h/>` after authentication, before binding: the account's session with that
//!   id is taken over — `<resumed previd h/>`, then the unacknowledged stanzas again (messages
//!   and presence with `<delay/>`), then what queued meanwhile; a connection still serving it
//!   gets `<conflict/>`.
//! * Failures, each `<failed xmlns='urn:xmpp:sm:3'>` with a stanza error condition:
//!   `<unexpected-request/>` for `<enable/>` before binding or twice, `<r/>` or `<a/>` before
//!   `<enable/>`, `<resume/>` after binding; `<item-not-found/>` for an id that is unknown,
//!   expired, ended by a password change or account deletion, or another account's (the same
//!   answer for all, so an id tells nothing); `<bad-request/>` for a `<resume/>` without a
//!   valid `h`; `<undefined-condition/>` with `<handled-count-too-high h send-count/>` for an
//!   `h` beyond what the old session sent (nothing is resumed, it stays detached).
//! * A session that ends without being resumed: what it never had acknowledged goes to offline
//!   storage (mod_offline); a message nobody stores bounces with `<recipient-unavailable/>` to
//!   a sender allowed to see the account's presence (a contact with a `from` subscription, who
//!   saw the session available), with the host's `<service-unavailable/>` to anyone else
//!   (RFC 6120 §8.3.3.13: no presence leak).
//!
//! ## Options
//! | option | default | meaning |
//! |---|---|---|
//! | `smacks_hibernation_time` | 600 | seconds a session whose connection was lost stays resumable (Prosody's default; 0: no resumption) |
//! | `smacks_max_queue_size` | 500 | stanzas written and not acknowledged (plus, while detached, queued) for a session; one more ends it (their bytes are bounded by `c2s.max_send_buffer`) |
//! | `smacks_max_unacked_stanzas` | 0 | the server asks for an acknowledgement once more than this many wait (Prosody's default: at once, one request outstanding at a time) |
//! | `smacks_ack_request_delay` | 5 | ... or once the oldest has waited this many seconds |
//! | `smacks_ack_timeout` | 60 | seconds an `<r/>` may go unanswered before the connection counts as dead (the session is detached, resumable; ejabberd's `ack_timeout`) |
//!
//! Counters on `/metrics`: `tessera_mod_smacks_enabled_total{resume}`,
//! `tessera_mod_smacks_resumed_total`, `tessera_mod_smacks_resume_failed_total{reason}`.

pub mod proto;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tessera_plugin_api::acks::{AckOutcome, AckSettings};
use tessera_plugin_api::events::{
    self, hooks, priority, Bind2Bound, InlineResume, Sasl2Success, SessionEvent, SessionResumed,
};
use tessera_plugin_api::im::{self, Contact, ContactsQuery};
use tessera_plugin_api::protocol::{
    ElementSpec, HookSpec, Manifest, Registrations, StreamAction, StreamElement, StreamInfo,
    StreamPhase,
};
use tessera_plugin_api::stanza::{StanzaHook, StanzaKind, StanzaPoint};
use tessera_plugin_api::sync::locked;
use tessera_plugin_api::wire::{self, Bytes};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{
    Config, Event, EventFlow, Host, Module, PluginError, Stanza, StanzaCondition, StreamCondition,
    Verdict,
};

use crate::proto::{Failure, Request, NS};

/// The session-state key of a session's resumption id.
const ID_KEY: &str = "id";
/// Random bytes in a resumption id.
const ID_BYTES: usize = 16;
const STATE_VERSION: u8 = 2;

tessera_plugin_api::options! {
    /// The options as declared.
    pub struct Options {
        /// seconds a session whose connection was lost stays resumable (0: no resumption)
        smacks_hibernation_time: u64 = 600, range 0..=86_400;
        /// stanzas unacknowledged (plus, while detached, queued) for a session; one more ends it
        smacks_max_queue_size: u32 = 500, range 1..=100_000;
        /// the server asks for an acknowledgement once more than this many stanzas wait
        smacks_max_unacked_stanzas: u32 = 0, range 0..=10_000;
        /// ... or once the oldest has waited this many seconds
        smacks_ack_request_delay: u64 = 5, range 1..=3_600;
        /// seconds an <r/> may go unanswered before the connection counts as dead
        smacks_ack_timeout: u64 = 60, range 5..=3_600;
    }
}

/// The module. What it keeps of sessions lives in the host (the acknowledgement queue, the
/// resumption id in the session's state), so a reload or a hot swap loses nothing; it holds
/// only the ids of Bind 2 logins whose session is being set up, and which sessions it manages
/// (handed over on a swap).
#[derive(Debug)]
pub struct Smacks {
    options: Options,
    state: Mutex<State>,
}

/// What the module holds itself.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Streams that enabled stream management inline in Bind 2, before their session existed:
    /// their resumption id, moved into the session's state on `session-bound`.
    pending: HashMap<u64, String>,
    /// Sessions with stream management on (until `session-closed`): what they never had
    /// acknowledged bounces with `<recipient-unavailable/>` to senders allowed to see them.
    managed: HashSet<u64>,
}

fn send(el: &Element) -> StreamAction {
    StreamAction::Send { xml: el.to_xml() }
}

fn fail(failure: Failure) -> Vec<StreamAction> {
    vec![send(&proto::failed(failure, None))]
}

impl Smacks {
    /// How long a session that asked for resumption (with the client's `max`) is kept, in
    /// seconds; `None` when it is not resumable.
    fn keep_for(&self, resume: bool, max: Option<u64>) -> Option<u64> {
        let most = self.options.smacks_hibernation_time;
        if !resume || most == 0 {
            return None;
        }
        Some(max.filter(|m| *m > 0).map_or(most, |m| m.min(most)))
    }

    fn settings(&self, keep_s: u64) -> AckSettings {
        AckSettings {
            ns: NS.into(),
            request_after: self.options.smacks_max_unacked_stanzas,
            request_after_ms: self.options.smacks_ack_request_delay * 1000,
            ack_timeout_ms: self.options.smacks_ack_timeout * 1000,
            max_queue: self.options.smacks_max_queue_size,
            keep_ms: keep_s * 1000,
        }
    }

    fn new_id(host: &Host) -> String {
        host.random_bytes(ID_BYTES)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// `<enable/>`, or Bind 2's inline one: turn the host's queue on; the `<enabled/>` to send
    /// and, for a resumable session, its id. `None` when it is on already.
    fn enable(
        &self,
        host: &Host,
        stream: u64,
        resume: bool,
        max: Option<u64>,
    ) -> Result<Option<(Element, Option<String>)>, PluginError> {
        let keep = self.keep_for(resume, max);
        if !host.acks_enable(stream, self.settings(keep.unwrap_or(0)))? {
            return Ok(None);
        }
        let id = keep.map(|_| Self::new_id(host));
        locked(&self.state).managed.insert(stream);
        host.count_one("enabled", "resume", if id.is_some() { "yes" } else { "no" });
        let enabled = proto::enabled(id.as_deref().zip(keep));
        Ok(Some((enabled, id)))
    }

    fn on_enable(
        &self,
        host: &Host,
        stream: &StreamInfo,
        resume: bool,
        max: Option<u64>,
    ) -> Result<Vec<StreamAction>, PluginError> {
        // XEP-0198 §3: after binding (a session to manage), once.
        if stream.jid.is_none() {
            return Ok(fail(Failure::UnexpectedRequest));
        }
        let Some((enabled, id)) = self.enable(host, stream.id, resume, max)? else {
            return Ok(fail(Failure::UnexpectedRequest));
        };
        if let Some(id) = id {
            host.session_set(stream.id, ID_KEY, Some(Bytes::new(id.as_bytes())))?;
        }
        Ok(vec![send(&enabled)])
    }

    fn on_ack(
        &self,
        host: &Host,
        stream: &StreamInfo,
        h: Result<u32, proto::BadH>,
    ) -> Result<Vec<StreamAction>, PluginError> {
        let h = match h {
            Ok(h) => h,
            Err(bad) => {
                return Ok(vec![StreamAction::Close {
                    condition: StreamCondition::InvalidXml,
                    text: Some(format!("<a/>: {bad}")),
                }])
            }
        };
        Ok(match host.acks_ack(stream.id, h)? {
            AckOutcome::Released(_) => Vec::new(),
            AckOutcome::TooHigh { sent } => vec![StreamAction::Close {
                condition: StreamCondition::UndefinedCondition,
                text: Some(format!(
                    "You acknowledged {h} stanzas, but I only sent you {sent} so far."
                )),
            }],
            AckOutcome::NotEnabled => fail(Failure::UnexpectedRequest),
        })
    }

    /// The account's session (other than `this`) whose resumption id is `previd`.
    fn find(
        &self,
        host: &Host,
        user: &str,
        previd: &str,
        this: u64,
    ) -> Result<Option<(u64, Option<String>)>, PluginError> {
        if previd.is_empty() || previd.len() > 2 * ID_BYTES {
            return Ok(None);
        }
        let pending = locked(&self.state).pending.clone();
        for session in host.account_sessions(user)? {
            if session.stream == this {
                continue;
            }
            let id = match host.session_get(session.stream, ID_KEY)? {
                Some(id) => id,
                None => match pending.get(&session.stream) {
                    Some(id) => id.as_bytes().to_vec(),
                    None => continue,
                },
            };
            if bool::from(id.ct_eq(previd.as_bytes())) {
                return Ok(Some((session.stream, session.full_jid)));
            }
        }
        Ok(None)
    }

    /// A `<resume/>` of `user` on stream `this` (after authentication, before binding):
    /// the answer element, and the session to take over with the client's `h`.
    fn resume(
        &self,
        host: &Host,
        user: &str,
        this: u64,
        previd: &str,
        h: Result<u32, proto::BadH>,
    ) -> Result<InlineResume, PluginError> {
        let refuse = |failure: Failure, reason: &str, handled: Option<u32>| {
            host.count_one("resume_failed", "reason", reason);
            InlineResume {
                element: proto::failed(failure, handled),
                session: None,
                jid: None,
                acked: None,
            }
        };
        let Ok(h) = h else {
            return Ok(refuse(Failure::BadRequest, "bad_h", None));
        };
        let Some((old, jid)) = self.find(host, user, previd, this)? else {
            return Ok(refuse(Failure::ItemNotFound, "unknown", None));
        };
        let Some(status) = host.acks_status(old)? else {
            return Ok(refuse(Failure::ItemNotFound, "unknown", None));
        };
        if status.too_high(h) {
            let failure = Failure::HandledCountTooHigh {
                h,
                sent: status.sent,
            };
            return Ok(refuse(failure, "h_too_high", Some(status.handled)));
        }
        host.count("resumed", None, 1).ok();
        Ok(InlineResume {
            element: proto::resumed(previd, status.handled),
            session: Some(old),
            jid,
            acked: Some(h),
        })
    }

    fn on_resume(
        &self,
        host: &Host,
        stream: &StreamInfo,
        previd: &str,
        h: Result<u32, proto::BadH>,
    ) -> Result<Vec<StreamAction>, PluginError> {
        let Some(user) = stream.user.as_deref().filter(|_| stream.jid.is_none()) else {
            // XEP-0198 §5: instead of binding, not after.
            host.count_one("resume_failed", "reason", "bound");
            return Ok(fail(Failure::UnexpectedRequest));
        };
        let answer = self.resume(host, user, stream.id, previd, h)?;
        let mut actions = vec![send(&answer.element)];
        if let Some(session) = answer.session {
            actions.push(StreamAction::Resume {
                session,
                replay: Vec::new(),
                acked: answer.acked,
            });
        }
        Ok(actions)
    }

    /// SASL2's inline `<resume/>`.
    fn sasl2_resume(
        &self,
        host: &Host,
        success: &Sasl2Success,
    ) -> Result<Option<Vec<u8>>, PluginError> {
        let Some(resume) = success.authenticate.child("resume", NS) else {
            return Ok(None);
        };
        let Request::Resume { previd, h } = Request::parse(resume) else {
            return Ok(None);
        };
        let answer = self.resume(host, &success.user, success.stream.id, &previd, h)?;
        wire::encode(&answer).map(Some)
    }

    /// Bind 2 `<bound/>`: `<enabled/>` (or `<failed/>`) for an inline `<enable/>`.
    fn bound(&self, host: &Host, bound: &Bind2Bound) -> Result<Option<Vec<u8>>, PluginError> {
        let Some(enable) = bound.bind.child("enable", NS) else {
            return Ok(None);
        };
        let Request::Enable { resume, max } = Request::parse(enable) else {
            return Ok(None);
        };
        let answer = match self.enable(host, bound.stream.id, resume, max)? {
            Some((enabled, id)) => {
                if let Some(id) = id {
                    locked(&self.state).pending.insert(bound.stream.id, id);
                }
                enabled
            }
            None => proto::failed(Failure::UnexpectedRequest, None),
        };
        wire::encode(&vec![answer]).map(Some)
    }
}

impl Module for Smacks {
    const NAME: &'static str = "smacks";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "XEP-0198 Stream Management: acknowledgements and resumption".into(),
            options: Options::specs(),
            ..Manifest::default()
        }
    }

    fn init(_host: &Host, config: &Config, restore: Option<&[u8]>) -> Result<Self, PluginError> {
        let state = match restore {
            // Version 1 (1.0.0 before the bounces) handed over the pending ids alone.
            Some(bytes) => wire::decode_state("smacks", STATE_VERSION, bytes).or_else(|e| {
                wire::decode_state::<HashMap<u64, String>>("smacks", 1, bytes)
                    .map(|pending| State {
                        pending,
                        ..State::default()
                    })
                    .map_err(|_| e)
            })?,
            None => State::default(),
        };
        Ok(Self {
            options: Options::from_config(config)?,
            state: Mutex::new(state),
        })
    }

    fn registrations(&self) -> Registrations {
        let nonza = |name: &str| ElementSpec {
            name: name.into(),
            ns: NS.into(),
            phase: StreamPhase::Authenticated,
        };
        Registrations {
            stream_elements: vec![nonza("enable"), nonza("r"), nonza("a"), nonza("resume")],
            stream_features: true,
            // After offline storage (which takes them first when it is loaded).
            stanza_hooks: vec![StanzaHook::at(StanzaPoint::Undeliverable)
                .kind(StanzaKind::Message)
                .priority(priority::LAST)],
            hooks: vec![
                HookSpec::new(hooks::SASL2_INLINE_FEATURES, priority::NORMAL),
                HookSpec::new(hooks::SASL2_RESUME, priority::NORMAL),
                HookSpec::new(hooks::BIND2_INLINE_FEATURES, priority::NORMAL),
                HookSpec::new(hooks::BIND2_BOUND, priority::NORMAL),
            ],
            events: vec![
                HookSpec::new(events::SESSION_BOUND, priority::NORMAL),
                HookSpec::new(events::SESSION_RESUMED, priority::NORMAL),
                HookSpec::new(events::SESSION_CLOSED, priority::NORMAL),
            ],
            ..Registrations::default()
        }
    }

    fn stream_features(
        &self,
        host: &Host,
        stream: &StreamInfo,
    ) -> Result<Vec<Element>, PluginError> {
        // After authentication, and not once it is on (Bind 2 enabled it inline): a client
        // offered it again would try to resume or enable a second time (xmpp.js 0.14 does).
        let offer = stream.user.is_some() && host.acks_status(stream.id)?.is_none();
        Ok(if offer {
            vec![Element::new("sm", NS)]
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
        match Request::parse(&request.element) {
            Request::Enable { resume, max } => self.on_enable(host, stream, resume, max),
            Request::Request => Ok(match host.acks_status(stream.id)? {
                Some(status) => vec![send(&proto::answer(status.handled))],
                None => fail(Failure::UnexpectedRequest),
            }),
            Request::Ack(h) => self.on_ack(host, stream, h),
            Request::Resume { previd, h } => self.on_resume(host, stream, &previd, h),
            Request::Unknown(_) => Ok(fail(Failure::BadRequest)),
        }
    }

    fn hook(
        &self,
        host: &Host,
        name: &str,
        payload: &[u8],
    ) -> Result<Option<Vec<u8>>, PluginError> {
        match name {
            hooks::SASL2_INLINE_FEATURES => {
                let _: StreamInfo = wire::decode(name, payload)?;
                wire::encode(&vec![Element::new("sm", NS)]).map(Some)
            }
            hooks::SASL2_RESUME => {
                let success: Sasl2Success = wire::decode(name, payload)?;
                self.sasl2_resume(host, &success)
            }
            hooks::BIND2_INLINE_FEATURES => {
                let _: StreamInfo = wire::decode(name, payload)?;
                events::bind2_inline_feature(NS).map(Some)
            }
            hooks::BIND2_BOUND => {
                let bound: Bind2Bound = wire::decode(name, payload)?;
                self.bound(host, &bound)
            }
            _ => Ok(None),
        }
    }

    fn on_event(&self, host: &Host, event: &Event) -> Result<EventFlow, PluginError> {
        match event.name {
            events::SESSION_BOUND => {
                let bound: SessionEvent = event.decode()?;
                let id = locked(&self.state).pending.get(&bound.stream_id).cloned();
                if let Some(id) = id {
                    host.session_set(bound.stream_id, ID_KEY, Some(Bytes::new(id.as_bytes())))?;
                    locked(&self.state).pending.remove(&bound.stream_id);
                }
            }
            events::SESSION_RESUMED => {
                let resumed: SessionResumed = event.decode()?;
                let mut state = locked(&self.state);
                if state.managed.remove(&resumed.previous_stream_id) {
                    state.managed.insert(resumed.stream_id);
                }
            }
            events::SESSION_CLOSED => {
                let closed: SessionEvent = event.decode()?;
                let mut state = locked(&self.state);
                state.pending.remove(&closed.stream_id);
                state.managed.remove(&closed.stream_id);
            }
            _ => {}
        }
        Ok(EventFlow::Continue)
    }

    fn save_state(&self) -> Result<Vec<u8>, PluginError> {
        wire::encode_state(STATE_VERSION, &*locked(&self.state))
    }

    /// A message one of its sessions never acknowledged (it ended without being resumed) that
    /// no offline storage took: `<recipient-unavailable/>` (XEP-0198 §5, as Prosody bounces
    /// them) to a sender allowed to see the account's presence, who saw it available; to
    /// anyone else the host's `<service-unavailable/>`, which says nothing (RFC 6120
    /// §8.3.3.13 forbids telling them the recipient was online a moment ago).
    fn stanza(&self, host: &Host, stanza: Stanza<'_>) -> Result<Verdict, PluginError> {
        let (Some(stream), Some(user), Some(from)) = (
            stanza.header.session,
            stanza.header.account,
            stanza.header.from,
        ) else {
            return Ok(Verdict::Pass);
        };
        if !locked(&self.state).managed.contains(&stream) {
            return Ok(Verdict::Pass);
        }
        let sender = from.split_once('/').map_or(from, |(bare, _)| bare);
        let query = ContactsQuery {
            user: user.to_owned(),
            contact: Some(sender.to_owned()),
        };
        let replies = host.call_hook(im::ROSTER_CONTACTS, Bytes::new(&wire::encode(&query)?))?;
        let allowed = replies.iter().any(|reply| {
            wire::decode::<Vec<Contact>>(im::ROSTER_CONTACTS, reply)
                .is_ok_and(|contacts| contacts.iter().any(|c| c.jid == sender && c.from))
        });
        if !allowed {
            return Ok(Verdict::Pass);
        }
        host.count_one("bounced", "condition", "recipient_unavailable");
        Ok(Verdict::Error {
            condition: StanzaCondition::RecipientUnavailable,
            text: None,
        })
    }
}

tessera_plugin_api::export_module!(Smacks);

#[cfg(test)]
mod tests;
