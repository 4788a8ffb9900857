//! The per-stream negotiation of XEP-0388 SASL2 and RFC 6120 §6 SASL: which element is allowed
//! when, how mechanisms are started through the host's registry, and what every outcome sends.
//!
//! # Wire behaviour
//! * The first `<authenticate/>` or `<auth/>` locks the stream to its profile. An initiation in
//!   the other profile afterwards gets `<failure><aborted/>` (with text) in *that* profile's
//!   namespace, counted like any failure: the client learns why, and the retry limit bounds it.
//! * Authentication needs an encrypted stream (`<encryption-required/>`). The mechanism must be
//!   offered on this stream for this profile (hidden SASL2 mechanisms such as HT-* included),
//!   else `<invalid-mechanism/>`; bad base64 is `<incorrect-encoding/>`; an address over its
//!   failure limit gets `<temporary-auth-failure/>` without running the mechanism.
//! * While an exchange runs only `<response/>` and `<abort/>` of its profile are allowed; anything
//!   else closes the stream with `<policy-violation/>`. A `mechanism` attribute on `<response/>`
//!   is ignored. `<abort/>` gets `<failure><aborted/></failure>`.
//! * `<response/>` or `<abort/>` with no exchange get `<failure>` (`malformed-request` /
//!   `aborted`). Anything after success (or a second `<authenticate/>` after `<continue/>`)
//!   closes the stream with `<policy-violation/>`.
//! * After a `<failure/>` the stream stays usable until `sasl2_max_retries` failures; the failure
//!   that reaches the limit is followed by a `<policy-violation/>` stream error.
//! * Every `<success/>` and `<failure/>` fires `authentication-success` /
//!   `authentication-failure`; credential failures (`not-authorized`, `credentials-expired`)
//!   count toward the per-account and per-address limits. Protocol errors (unknown mechanism,
//!   bad encoding, …) do not: they cannot guess a password, clients produce them innocently
//!   (a FAST attempt where FAST is not offered), and the per-stream retry limit bounds them.

use std::sync::Mutex;
use tessera_plugin_api::SaslCondition;

use tessera_plugin_api::protocol::{
    MechanismResponse, MechanismStart, MechanismStep, StreamAction, StreamInfo,
};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{Host, LogLevel, PluginError};

use crate::config::Settings;
use crate::features;
use crate::glue::end_exchange;
use crate::mech;
use crate::outcome::{close, fail, fire, Fail};
use crate::ratelimit::RateLimiter;
use crate::tasks::{self, TaskState};
use crate::wire::{self, Incoming, Profile};
use tessera_plugin_api::sync::locked;

/// Longest mechanism name (XEP-0388 schema `SaslMechName`, RFC 4422).
const MAX_MECHANISM_LEN: usize = 20;

/// What the negotiation needs besides the stream state.
#[derive(Clone, Copy)]
pub(crate) struct Env<'a> {
    /// Host services.
    pub(crate) host: &'a Host,
    /// Options.
    pub(crate) settings: &'a Settings,
    /// Key of the Bind 2 resource derivation.
    pub(crate) bind2_key: &'a [u8],
    /// Failure counters.
    pub(crate) limiter: &'a Mutex<RateLimiter>,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("settings", self.settings)
            .finish_non_exhaustive()
    }
}

/// Negotiation state of one stream.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamState {
    /// The profile the stream is locked to, once used.
    pub(crate) profile: Option<Profile>,
    /// `<failure/>`s sent on this stream.
    pub(crate) failures: u32,
    /// Whether a `<continue/>` was sent (a new `<authenticate/>` is then a stream error).
    pub(crate) continued: bool,
    /// Where the negotiation is.
    pub(crate) phase: Phase,
}

/// Where a stream's negotiation is.
#[derive(Debug, Clone, Default)]
pub(crate) enum Phase {
    /// No exchange running.
    #[default]
    Idle,
    /// A mechanism exchange is waiting for the client's `<response/>`.
    Exchange(Exchange),
    /// SASL2 tasks after `<continue/>`.
    Tasks(TaskState),
    /// Authenticated.
    Done,
    /// An exchange was running when the module was reloaded; its state is gone.
    Interrupted,
}

/// One authentication attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exchange {
    /// The profile.
    pub(crate) profile: Profile,
    /// The requested mechanism (possibly invalid).
    pub(crate) mechanism: String,
    /// The SASL2 user-agent id.
    pub(crate) user_agent_id: Option<String>,
    /// The SASL2 `<authenticate/>`.
    pub(crate) authenticate: Option<Element>,
    /// The mechanism is listed only inside another module's feature (FAST's HT-*): a token
    /// login, which never starts interactive tasks (XEP-0484).
    pub(crate) hidden: bool,
    /// When the exchange began (before any credential was loaded): what a token minted by
    /// this login is dated from, so a password change during the login revokes it.
    pub(crate) started_at_ms: u64,
}

impl Exchange {
    /// An attempt with no mechanism (stray `<response/>`, `<abort/>`).
    pub(crate) fn bare(profile: Profile) -> Self {
        Self {
            profile,
            mechanism: String::new(),
            user_agent_id: None,
            authenticate: None,
            hidden: false,
            started_at_ms: 0,
        }
    }
}

const ALREADY_AUTHENTICATED: &str = "Already authenticated";
const NOT_SASL: &str = "Only <response/> or <abort/> may be sent during authentication";
const PROFILE_LOCKED: &str = "This stream already uses the other SASL profile";
const NO_EXCHANGE: &str = "No authentication exchange in progress";
const RELOADED: &str = "Authentication was interrupted by a server module reload; please retry";

/// Handle one routed element.
pub(crate) fn handle(
    st: &mut StreamState,
    env: Env<'_>,
    stream: &StreamInfo,
    el: &Element,
) -> Vec<StreamAction> {
    let incoming = wire::classify(el);
    let phase = std::mem::take(&mut st.phase);
    if stream.user.is_some() || matches!(phase, Phase::Done) {
        st.phase = Phase::Done;
        return vec![close(ALREADY_AUTHENTICATED)];
    }
    match phase {
        Phase::Idle | Phase::Done => idle(st, env, stream, incoming),
        Phase::Interrupted => interrupted(st, env, stream, incoming),
        Phase::Exchange(ex) => in_exchange(st, env, stream, ex, incoming),
        Phase::Tasks(t) => tasks::handle(st, env, stream, t, incoming),
    }
}

fn idle(
    st: &mut StreamState,
    env: Env<'_>,
    stream: &StreamInfo,
    incoming: Incoming<'_>,
) -> Vec<StreamAction> {
    match incoming {
        Incoming::Initiate(profile, el) => initiate(st, env, stream, profile, el),
        Incoming::Abort(p) => fail(
            st,
            env,
            stream,
            &Exchange::bare(p),
            Fail::new(SaslCondition::Aborted, None),
        ),
        Incoming::Response(p, _) => {
            let f = Fail::new(SaslCondition::MalformedRequest, Some(NO_EXCHANGE));
            fail(st, env, stream, &Exchange::bare(p), f)
        }
        Incoming::Next(_) | Incoming::TaskData(_) => {
            let f = Fail::new(SaslCondition::MalformedRequest, Some(NO_EXCHANGE));
            fail(st, env, stream, &Exchange::bare(Profile::Sasl2), f)
        }
        Incoming::Other => vec![close(NOT_SASL)],
    }
}

fn interrupted(
    st: &mut StreamState,
    env: Env<'_>,
    stream: &StreamInfo,
    incoming: Incoming<'_>,
) -> Vec<StreamAction> {
    let profile = match incoming {
        Incoming::Initiate(..) | Incoming::Other => return idle(st, env, stream, incoming),
        Incoming::Response(p, _) | Incoming::Abort(p) => p,
        Incoming::Next(_) | Incoming::TaskData(_) => Profile::Sasl2,
    };
    end_exchange(env.host, stream.id);
    let f = match incoming {
        Incoming::Abort(_) => Fail::new(SaslCondition::Aborted, None),
        _ => Fail::new(SaslCondition::TemporaryAuthFailure, Some(RELOADED)),
    };
    fail(st, env, stream, &Exchange::bare(profile), f)
}

fn initiate(
    st: &mut StreamState,
    env: Env<'_>,
    stream: &StreamInfo,
    profile: Profile,
    el: &Element,
) -> Vec<StreamAction> {
    if profile == Profile::Sasl2 && st.continued {
        return vec![close("Authentication already continued")];
    }
    let sasl2 = profile == Profile::Sasl2;
    let mut ex = Exchange {
        profile,
        mechanism: el.attr("mechanism").unwrap_or_default().trim().to_owned(),
        user_agent_id: if sasl2 { wire::user_agent_id(el) } else { None },
        authenticate: None,
        hidden: false,
        started_at_ms: 0,
    };
    if st.profile.is_some_and(|p| p != profile) {
        return fail(
            st,
            env,
            stream,
            &ex,
            Fail::new(SaslCondition::Aborted, Some(PROFILE_LOCKED)),
        );
    }
    st.profile = Some(profile);
    match refusal(env, stream, &ex) {
        Ok(hidden) => ex.hidden = hidden,
        Err(f) => return fail(st, env, stream, &ex, f),
    }
    let initial_response = match wire::initial_response(profile, el) {
        Ok(ir) => ir,
        Err(_) => {
            return fail(
                st,
                env,
                stream,
                &ex,
                Fail::new(SaslCondition::IncorrectEncoding, None),
            )
        }
    };
    let now = env.host.now_ms();
    let limit = locked(env.limiter).check_ip(&stream.peer_ip, now);
    if let Some(limit) = limit {
        env.host.count_one("rate_limited", "scope", "address");
        let f = Fail::new(SaslCondition::TemporaryAuthFailure, Some(&limit.text()));
        return fail(st, env, stream, &ex, f);
    }
    ex.started_at_ms = now;
    // Kept only for an exchange that starts: refused attempts copy nothing.
    ex.authenticate = sasl2.then(|| kept(el));
    let step = env.host.mechanism_start(MechanismStart {
        exchange: stream.id,
        mechanism: ex.mechanism.clone(),
        stream: stream.clone(),
        profile,
        initial_response,
        user_agent_id: ex.user_agent_id.clone(),
        authenticate: ex.authenticate.clone(),
    });
    mechanism_result(st, env, stream, ex, step)
}

/// What an exchange keeps of `<authenticate/>` for the success hooks: its attributes and its
/// children but the initial response (already handed to the mechanism) and text between them.
/// The host bounds the element before authentication (size and element count), so this is
/// bounded too.
fn kept(el: &Element) -> Element {
    let mut kept = Element::new(el.name.clone(), el.ns.clone());
    kept.attrs = el.attrs.clone();
    for child in el.child_elements() {
        if child.name != "initial-response" {
            kept.push_child(child.clone());
        }
    }
    kept
}

/// Mechanisms of other modules (FAST's HT-*) share the password rate limits: once their
/// outcome names the account, an account over its limit gets `temporary-auth-failure`, like a
/// password attempt would (our own mechanisms check before looking up credentials).
fn foreign_limit(
    env: Env<'_>,
    stream: &StreamInfo,
    ex: &Exchange,
    step: &MechanismStep,
) -> Option<Fail> {
    if crate::config::MECHANISMS
        .iter()
        .any(|(name, _)| *name == ex.mechanism)
    {
        return None;
    }
    // Only credential outcomes: a module's other failures (e.g. a password-reset request,
    // answered with `aborted`) must stay possible for an account locked out by guessing.
    let user = match step {
        MechanismStep::Success { user, .. } => Some(user.as_str()),
        MechanismStep::Failure {
            user, condition, ..
        } if crate::outcome::counts_toward_limits(*condition) => user.as_deref(),
        MechanismStep::Failure { .. } | MechanismStep::Challenge { .. } => None,
    }?;
    // A token login (hidden mechanism: FAST) is unguessable: the account's backoff does not
    // hold back its owner's clients; the address limits still apply.
    let limit = locked(env.limiter).check(user, &stream.peer_ip, env.host.now_ms(), ex.hidden)?;
    env.host.count_one("rate_limited", "scope", "account");
    Some(Fail::new(
        SaslCondition::TemporaryAuthFailure,
        Some(&limit.text()),
    ))
}

/// Encryption and mechanism checks before an exchange starts; `Ok(hidden)` admits it.
#[allow(clippy::result_large_err)] // one Fail per refused attempt; not worth a Box
fn refusal(env: Env<'_>, stream: &StreamInfo, ex: &Exchange) -> Result<bool, Fail> {
    if !stream.secure {
        return Err(Fail::new(SaslCondition::EncryptionRequired, None));
    }
    if ex.mechanism.is_empty() || ex.mechanism.len() > MAX_MECHANISM_LEN {
        return Err(Fail::new(SaslCondition::InvalidMechanism, None));
    }
    let offered = env
        .host
        .mechanisms(stream.clone(), ex.profile)
        .map(|list| features::usable(list, stream, ex.profile));
    match offered {
        Ok(list) => list
            .iter()
            .find(|m| m.name == ex.mechanism)
            .map(|m| m.hidden)
            .ok_or_else(|| Fail::new(SaslCondition::InvalidMechanism, None)),
        Err(e) => {
            env.host
                .log(LogLevel::Warn, &format!("mechanism list unavailable: {e}"));
            Err(Fail::new(SaslCondition::TemporaryAuthFailure, None))
        }
    }
}

fn in_exchange(
    st: &mut StreamState,
    env: Env<'_>,
    stream: &StreamInfo,
    ex: Exchange,
    incoming: Incoming<'_>,
) -> Vec<StreamAction> {
    match incoming {
        Incoming::Response(p, el) if p == ex.profile => match wire::decode_payload(p, &el.text()) {
            Ok(response) => {
                let step = env.host.mechanism_step(MechanismResponse {
                    exchange: stream.id,
                    response,
                });
                mechanism_result(st, env, stream, ex, step)
            }
            Err(_) => {
                end_exchange(env.host, stream.id);
                fail(
                    st,
                    env,
                    stream,
                    &ex,
                    Fail::new(SaslCondition::IncorrectEncoding, None),
                )
            }
        },
        Incoming::Abort(p) if p == ex.profile => {
            end_exchange(env.host, stream.id);
            fail(
                st,
                env,
                stream,
                &ex,
                Fail::new(SaslCondition::Aborted, None),
            )
        }
        _ => {
            end_exchange(env.host, stream.id);
            fire(env, stream, &ex, None, Some(SaslCondition::Aborted));
            vec![close(NOT_SASL)]
        }
    }
}

/// Apply a mechanism's step.
fn mechanism_result(
    st: &mut StreamState,
    env: Env<'_>,
    stream: &StreamInfo,
    ex: Exchange,
    step: Result<MechanismStep, PluginError>,
) -> Vec<StreamAction> {
    let step = step.unwrap_or_else(|e| {
        env.host.log(
            LogLevel::Warn,
            &format!("mechanism {} failed: {e}", ex.mechanism),
        );
        mech::failure(SaslCondition::TemporaryAuthFailure, None, None)
    });
    if let Some(limited) = foreign_limit(env, stream, &ex, &step) {
        end_exchange(env.host, stream.id);
        return fail(st, env, stream, &ex, limited);
    }
    match step {
        MechanismStep::Challenge { data } => {
            let xml = wire::challenge(ex.profile, &data).to_xml();
            st.phase = Phase::Exchange(ex);
            vec![StreamAction::Send { xml }]
        }
        MechanismStep::Success {
            user,
            additional_data,
        } => {
            end_exchange(env.host, stream.id);
            crate::success::succeed(st, env, stream, ex, user, additional_data)
        }
        MechanismStep::Failure {
            condition,
            text,
            user,
            application,
        } => {
            end_exchange(env.host, stream.id);
            let f = Fail {
                condition,
                text,
                user,
                application,
            };
            fail(st, env, stream, &ex, f)
        }
    }
}
