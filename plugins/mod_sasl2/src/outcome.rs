//! How outcomes leave the module: `<failure/>` with retry counting, rate-limit accounting and
//! the `authentication-failure` event; the `authentication-success` event; the
//! `<policy-violation/>` stream error (RFC 6120 §4.9.3.14, XEP-0388 §2.2).

use tessera_plugin_api::events::{self, AuthenticationOutcome};
use tessera_plugin_api::protocol::{StreamAction, StreamInfo};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{LogLevel, SaslCondition, StreamCondition};

use crate::machine::{Env, Exchange, StreamState};
use crate::wire;
use tessera_plugin_api::sync::locked;

const TOO_MANY: &str = "Too many failed authentication attempts";

/// A failure to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fail {
    /// RFC 6120 §6.5 condition.
    pub(crate) condition: SaslCondition,
    /// `<text/>`.
    pub(crate) text: Option<String>,
    /// The account named in the attempt.
    pub(crate) user: Option<String>,
    /// Application-specific element.
    pub(crate) application: Option<Element>,
}

impl Fail {
    /// A failure with a condition and optional text.
    pub(crate) fn new(condition: SaslCondition, text: Option<&str>) -> Self {
        Self {
            condition,
            text: text.map(str::to_owned),
            user: None,
            application: None,
        }
    }
}

/// Whether a failure is a failed credential check (rate-limited) rather than a protocol error.
pub(crate) fn counts_toward_limits(condition: SaslCondition) -> bool {
    matches!(
        condition,
        SaslCondition::NotAuthorized | SaslCondition::CredentialsExpired
    )
}

/// `<policy-violation/>` stream error.
pub(crate) fn close(text: &str) -> StreamAction {
    StreamAction::Close {
        condition: StreamCondition::PolicyViolation,
        text: Some(text.into()),
    }
}

/// Send a `<failure/>`: count it, rate-limit it, fire the event, close after too many.
pub(crate) fn fail(
    st: &mut StreamState,
    env: Env<'_>,
    stream: &StreamInfo,
    ex: &Exchange,
    f: Fail,
) -> Vec<StreamAction> {
    st.failures = st.failures.saturating_add(1);
    if counts_toward_limits(f.condition) {
        let now = env.host.now_ms();
        locked(env.limiter).record_failure(f.user.as_deref(), &stream.peer_ip, now);
    }
    fire(env, stream, ex, f.user.as_deref(), Some(f.condition));
    let failure = wire::failure(ex.profile, f.condition, f.text.as_deref(), f.application);
    let mut actions = vec![StreamAction::Send {
        xml: failure.to_xml(),
    }];
    if st.failures >= env.settings.max_retries {
        actions.push(close(TOO_MANY));
    }
    actions
}

/// Fire `authentication-success` (no condition) or `authentication-failure`.
pub(crate) fn fire(
    env: Env<'_>,
    stream: &StreamInfo,
    ex: &Exchange,
    user: Option<&str>,
    condition: Option<SaslCondition>,
) {
    let outcome = AuthenticationOutcome {
        user: user.map(str::to_owned),
        mechanism: ex.mechanism.clone(),
        user_agent_id: ex.user_agent_id.clone(),
        peer_ip: stream.peer_ip.clone(),
        stream_id: stream.id,
        condition,
    };
    let name = if condition.is_some() {
        events::AUTHENTICATION_FAILURE
    } else {
        events::AUTHENTICATION_SUCCESS
    };
    env.host
        .log(LogLevel::Info, &outcome_line(ex, user, condition));
    if let Err(e) = env.host.fire(name, &outcome) {
        env.host
            .log(LogLevel::Warn, &format!("cannot fire {name}: {e}"));
    }
}

/// One log line per outcome: account, mechanism (a -PLUS or HT-*-EXPR/ENDP name means channel
/// binding was used) and profile; never credentials.
fn outcome_line(ex: &Exchange, user: Option<&str>, condition: Option<SaslCondition>) -> String {
    let profile = match ex.profile {
        crate::wire::Profile::Sasl2 => "sasl2",
        crate::wire::Profile::Rfc6120 => "legacy",
    };
    let user = user.unwrap_or("-");
    match condition {
        None => format!(
            "authentication succeeded user={user} mechanism={} profile={profile}",
            ex.mechanism
        ),
        Some(c) => format!(
            "authentication failed user={user} mechanism={} condition={c} profile={profile}",
            ex.mechanism
        ),
    }
}
