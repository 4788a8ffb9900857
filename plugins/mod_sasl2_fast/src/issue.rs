//! Token issue (XEP-0484 §5.2, §5.3, rotation of §5.4, `invalidate` of §5.5), run from
//! mod_sasl2's `sasl2-success` hook after every successful SASL2 authentication.
//!
//! # Wire behaviour
//! A `<token xmlns='urn:xmpp:fast:0' token='…' expiry='YYYY-MM-DDThh:mm:ssZ'/>` is added to
//! `<success/>`, and stored in slot `new` of (account, user-agent id), when the stream is
//! encrypted, the user-agent id is UUID-shaped, and either
//! * `<request-token mechanism='…'/>` names an HT mechanism offered on this stream (the token
//!   is bound to that mechanism), after any mechanism, FAST included; or
//! * the authentication was FAST with a token older than `sasl2_fast_token_min_ttl` and without
//!   `invalidate` (rotation; the new token is bound to the mechanism just used).
//!
//! A `<request-token/>` naming a mechanism not offered here is ignored. Nothing is added
//! otherwise; the `current` token stays valid until the new one is used.

use tessera_plugin_api::events::Sasl2Success;
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::Host;
use tessera_plugin_api::LogLevel;
use tessera_sasl::ht::HtMechanism;

use crate::auth::Pending;
use crate::config::Settings;
use crate::ht;
use crate::store;
use crate::token::{self, TokenKey, TOKEN_ID_BYTES};
use tessera_plugin_api::datetime;

/// The mechanism of the token to issue, if any: the requested one (already checked to be
/// offered), else, after a FAST authentication that is due for rotation and did not ask for
/// invalidation, the mechanism just used.
pub(crate) fn decide(
    requested: Option<HtMechanism>,
    fast: Option<&Pending>,
) -> Option<HtMechanism> {
    requested.or_else(|| {
        fast.filter(|p| p.rotation_due && !p.invalidate)
            .and_then(|p| HtMechanism::from_name(&p.mechanism))
    })
}

/// The children to add to `<success/>` for this authentication. `pending` is what this
/// module's mechanism recorded for the stream, if it ran the authentication.
pub(crate) fn on_success(
    svc: &Host,
    key: &TokenKey,
    settings: Settings,
    success: &Sasl2Success,
    pending: Option<Pending>,
) -> Vec<Element> {
    let stream = &success.stream;
    if !stream.secure {
        return Vec::new();
    }
    let auth = &success.authenticate;
    let fast = pending.filter(|p| p.user == success.user && p.mechanism == success.mechanism);
    let requested = ht::requested_mechanism(auth).and_then(|name| {
        let offered = HtMechanism::from_name(name).filter(|m| ht::offered(stream).contains(m));
        if offered.is_none() {
            svc.log(
                LogLevel::Debug,
                "request-token for a mechanism not offered: ignored",
            );
        }
        offered
    });
    let Some(mechanism) = decide(requested, fast.as_ref()) else {
        return Vec::new();
    };
    // Asked for by the client, or a rotation the server decided on (XEP-0484 §5.4).
    let event = if requested.is_some() {
        "issued"
    } else {
        "rotated"
    };
    let ua_id = ht::user_agent_id(auth).or_else(|| fast.map(|p| p.ua_id));
    let Some(ua_id) = ua_id.filter(|id| ht::is_uuid(id)) else {
        svc.log(
            LogLevel::Debug,
            "no FAST token: the user-agent id is missing or not a UUID",
        );
        return Vec::new();
    };
    // Dated from the start of the login, so that a password change while it ran revokes it.
    let now_ms = svc.now_ms();
    let basis_ms = match success.exchange_started_at_ms {
        0 => now_ms,
        started => started.min(now_ms),
    };
    let token = issue(
        svc,
        key,
        settings,
        &success.user,
        &ua_id,
        mechanism,
        basis_ms,
    );
    if token.is_some() {
        svc.count_one("tokens", "event", event);
    }
    token.into_iter().collect()
}

/// Store a new token dated `now_ms` in slot `new` and build its `<token/>`; `None` when the
/// store fails.
fn issue(
    svc: &Host,
    key: &TokenKey,
    settings: Settings,
    user: &str,
    ua_id: &str,
    mechanism: HtMechanism,
    now_ms: u64,
) -> Option<Element> {
    let random = svc.random_bytes(TOKEN_ID_BYTES);
    let Some(record) = token::issue(mechanism, &random, now_ms, settings.ttl_ms) else {
        svc.log(LogLevel::Error, "the host's RNG returned too few bytes");
        return None;
    };
    if let Err(e) = store::issue(svc, user, ua_id, &record, now_ms) {
        svc.log(LogLevel::Warn, &format!("cannot store FAST token: {e}"));
        return None;
    }
    let token = token::derive(key, &record, user, ua_id);
    let expiry = datetime::format_utc(record.expires_at_ms);
    Some(ht::token_element(&token, &expiry))
}
