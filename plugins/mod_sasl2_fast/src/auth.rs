//! FAST authentication: one HT-SHA-256-* exchange (XEP-0484 §5.4), started by the host on
//! behalf of mod_sasl2.
//!
//! # Wire behaviour
//! Single round: the initial response is required and no challenge is ever sent.
//! * `invalid-mechanism`: not one of HT-SHA-256-{EXPR,ENDP,NONE}, or not the SASL2 profile.
//! * `malformed-request` (with text): no `<fast xmlns='urn:xmpp:fast:0'/>`, no usable
//!   user-agent id, no or unparseable initial response (split at the first NUL, 32-byte HMAC),
//!   or the mechanism's channel binding is unavailable on this connection.
//! * `encryption-required`: the stream is not encrypted.
//! * `not-authorized`: an authcid that is not a valid account name, a stream `from` naming
//!   another account, an unknown account, no token for this (account, user-agent id) under this
//!   mechanism, a wrong proof (another token, another connection's channel binding).
//! * `credentials-expired`: the token matched but is past its expiry or was issued before the
//!   last password change; that slot is deleted.
//! * `temporary-auth-failure`: the store is unavailable (also when an `invalidate` cannot be
//!   carried out: the client is not told it logged out while its token still works).
//!
//! Every failure after the authcid is known names the account (`Failure.user`), so mod_sasl2
//! counts `not-authorized`/`credentials-expired` toward the same limits as passwords. Both slots
//! are always verified, a decoy standing in for an empty one. On success the additional data is
//! the raw responder HMAC; a token from slot `new` moves to `current`; with `invalidate` both
//! slots are deleted at once.

use serde::{Deserialize, Serialize};
use tessera_plugin_api::protocol::{MechanismStart, MechanismStep, SaslProfile};
use tessera_plugin_api::Host;
use tessera_plugin_api::LogLevel;
use tessera_plugin_api::SaslCondition;
use tessera_sasl::ht::{parse_initial_response, HtMechanism};

use crate::ht;
use crate::store;
use crate::token::{self, Attempt, Slot, Stale, TokenKey, TokenRecord, Verdict};

/// What a successful FAST authentication tells the `sasl2-success` hook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pending {
    /// The account.
    pub(crate) user: String,
    /// The user-agent id.
    pub(crate) ua_id: String,
    /// The mechanism (and so the mechanism of a rotated token).
    pub(crate) mechanism: String,
    /// The slot that matched.
    pub(crate) slot: Slot,
    /// The token is older than `sasl2_fast_token_min_ttl`.
    pub(crate) rotation_due: bool,
    /// The client asked for invalidation (both slots are already deleted).
    pub(crate) invalidate: bool,
    /// When the authentication succeeded (ms), to expire forgotten entries.
    pub(crate) at_ms: u64,
}

/// A failure step.
pub(crate) fn failure(
    condition: SaslCondition,
    text: Option<&str>,
    user: Option<&str>,
) -> MechanismStep {
    MechanismStep::Failure {
        condition,
        text: text.map(str::to_owned),
        user: user.map(str::to_owned),
        application: None,
    }
}

const NO_FAST: &str = "FAST authentication needs <fast xmlns='urn:xmpp:fast:0'/>";
const NO_UA: &str = "FAST authentication needs a user-agent id";
const BAD_HT: &str = "Malformed HT message";
const NO_CB: &str = "Channel binding unavailable on this connection";
const STALE: &str = "Token expired or revoked; authenticate with your password";

/// An attempt that passed the checks needing no account (mechanism, profile, TLS, `<fast/>`,
/// user-agent id, message syntax).
struct Request {
    mechanism: HtMechanism,
    invalidate: bool,
    ua_id: String,
    authcid: String,
    proof: Vec<u8>,
}

/// Why a request is refused before any account is looked at (no account is named).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Refusal {
    condition: SaslCondition,
    text: Option<&'static str>,
}

impl Refusal {
    const fn new(condition: SaslCondition, text: Option<&'static str>) -> Self {
        Self { condition, text }
    }

    const fn malformed(text: &'static str) -> Self {
        Self::new(SaslCondition::MalformedRequest, Some(text))
    }

    fn step(self) -> MechanismStep {
        failure(self.condition, self.text, None)
    }
}

fn parse(start: &MechanismStart) -> Result<Request, Refusal> {
    let Some(mechanism) = HtMechanism::from_name(&start.mechanism) else {
        return Err(Refusal::new(SaslCondition::InvalidMechanism, None));
    };
    if start.profile != SaslProfile::Sasl2 {
        return Err(Refusal::new(SaslCondition::InvalidMechanism, None));
    }
    if !start.stream.secure {
        return Err(Refusal::new(SaslCondition::EncryptionRequired, None));
    }
    let Some(fast) = start.authenticate.as_ref().and_then(ht::fast_request) else {
        return Err(Refusal::malformed(NO_FAST));
    };
    let ua_id = start
        .user_agent_id
        .clone()
        .or_else(|| start.authenticate.as_ref().and_then(ht::user_agent_id))
        .filter(|id| !id.is_empty())
        .ok_or(Refusal::malformed(NO_UA))?;
    let message = start
        .initial_response
        .as_deref()
        .ok_or(Refusal::malformed(BAD_HT))?;
    let (authcid, proof) =
        parse_initial_response(message).map_err(|_| Refusal::malformed(BAD_HT))?;
    Ok(Request {
        mechanism,
        invalidate: fast.invalidate,
        ua_id,
        authcid,
        proof,
    })
}

/// The outcome of an exchange: the step, and the note for the success hook.
type Outcome = (MechanismStep, Option<Pending>);

/// Run a FAST authentication; the [`Pending`] is returned on success.
pub(crate) fn start(
    svc: &Host,
    key: &TokenKey,
    min_ttl_ms: u64,
    start: &MechanismStart,
) -> Outcome {
    let req = match parse(start) {
        Ok(req) => req,
        Err(refusal) => return (refusal.step(), None),
    };
    let Some(user) = ht::canonical_user(&req.authcid) else {
        return (failure(SaslCondition::NotAuthorized, None, None), None);
    };
    let fail = |condition: SaslCondition, text: Option<&str>| {
        (failure(condition, text, Some(&user)), None)
    };
    if !ht::from_matches(start.stream.from.as_deref(), &user) {
        return fail(SaslCondition::NotAuthorized, None);
    }
    let Some(cb_data) = ht::cb_data(req.mechanism, &start.stream) else {
        return fail(SaslCondition::MalformedRequest, Some(NO_CB));
    };
    let looked_up = store::load(svc, &user, &req.ua_id)
        .and_then(|slots| svc.get_credentials(&user).map(|account| (slots, account)));
    let (slots, account) = match looked_up {
        Ok(found) => found,
        Err(e) => {
            svc.log(LogLevel::Warn, &format!("FAST lookup failed: {e}"));
            return fail(SaslCondition::TemporaryAuthFailure, None);
        }
    };
    let now_ms = svc.now_ms();
    let attempt = Attempt {
        user: &user,
        ua_id: &req.ua_id,
        mechanism: req.mechanism,
        cb_data: &cb_data,
        proof: &req.proof,
        now_ms,
        password_changed_at_ms: account.map(|a| a.password_changed_at_ms),
    };
    match token::verify(key, &attempt, &slots) {
        Verdict::Rejected => {
            svc.count_one("tokens", "event", "rejected");
            fail(SaslCondition::NotAuthorized, None)
        }
        Verdict::Stale { slot, reason } => {
            svc.count_one("tokens", "event", "stale");
            forget_stale(svc, &user, &req.ua_id, slot, reason);
            fail(SaslCondition::CredentialsExpired, Some(STALE))
        }
        Verdict::Accepted {
            slot,
            record,
            responder,
        } => {
            let rotation_due = token::rotation_due(&record, now_ms, min_ttl_ms);
            accept(
                svc,
                req,
                user,
                (slot, &record),
                rotation_due,
                responder,
                now_ms,
            )
        }
    }
}

/// A matching token is expired or revoked: delete its slot.
fn forget_stale(svc: &Host, user: &str, ua_id: &str, slot: Slot, reason: Stale) {
    if let Err(e) = store::delete(svc, user, ua_id, slot) {
        svc.log(LogLevel::Warn, &format!("cannot delete stale token: {e}"));
    }
    let why = match reason {
        Stale::Expired => "expired",
        Stale::Revoked => "revoked",
    };
    svc.log(LogLevel::Debug, &format!("FAST token {why}"));
}

/// A token matched: update the slots (promotion or invalidation) and report success.
fn accept(
    svc: &Host,
    req: Request,
    user: String,
    (slot, record): (Slot, &TokenRecord),
    rotation_due: bool,
    responder: [u8; 32],
    now_ms: u64,
) -> Outcome {
    if req.invalidate {
        // The client is logging out: do not report success with the token still alive.
        if let Err(e) = store::forget_client(svc, &user, &req.ua_id) {
            svc.log(LogLevel::Warn, &format!("FAST invalidate failed: {e}"));
            return (
                failure(SaslCondition::TemporaryAuthFailure, None, Some(&user)),
                None,
            );
        }
    } else if slot == Slot::New {
        if let Err(e) = store::promote(svc, &user, &req.ua_id, record) {
            svc.log(LogLevel::Warn, &format!("FAST token promotion failed: {e}"));
        }
    }
    svc.count_one(
        "tokens",
        "event",
        if req.invalidate {
            "invalidated"
        } else {
            "used"
        },
    );
    let pending = Pending {
        user: user.clone(),
        ua_id: req.ua_id,
        mechanism: req.mechanism.name().to_owned(),
        slot,
        rotation_due,
        invalidate: req.invalidate,
        at_ms: now_ms,
    };
    let step = MechanismStep::Success {
        user,
        additional_data: Some(responder.to_vec()),
    };
    (step, Some(pending))
}
