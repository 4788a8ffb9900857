//! The mechanisms this module provides to the host's registry, for both profiles:
//! SCRAM-SHA-1, SCRAM-SHA-256, SCRAM-SHA-512 (RFC 5802, RFC 7677), their `-PLUS` variants with
//! `tls-exporter` (RFC 9266) or `tls-server-end-point` (RFC 5929) channel binding, and PLAIN
//! (RFC 4616). The
//! protocol work is `tessera-sasl`'s; this file adds account lookup, rate limits and authzid
//! rules.
//!
//! # Wire behaviour
//! * Without an initial response the first step is an empty challenge (both are client-first).
//! * Usernames (SCRAM `n=`, PLAIN authcid) are SASLprep'd with the localpart rules and then
//!   brought to the host's canonical form (nodeprep, `tessera_plugin_api::names`), the form
//!   account names are stored and failures counted in; the success reports that form.
//! * An unknown account runs the same exchange against deterministic fake credentials (secret
//!   `scram-fake-credentials`, the host's `scram_iteration_count`) and fails exactly like a
//!   wrong password
//!   (`<not-authorized/>`, text `invalid-proof` for SCRAM).
//! * An account or address over its failure limit gets `<temporary-auth-failure/>` with the
//!   retry time before any credential is looked up or checked.
//! * A non-empty authzid (SCRAM `a=`, PLAIN authzid) other than the account's bare JID
//!   (compared case-insensitively) is `<invalid-authzid/>`.
//! * SCRAM errors carry their RFC 5802 `e=` value as text; PLAIN on an unencrypted stream is
//!   `<encryption-required/>`.
//! * SCRAM's server-first carries XEP-0474's `h=`: the hash of the mechanisms the stream's
//!   features list for the profile in use (PASSWORD-RESET included when listed; FAST's hidden
//!   HT-* never) and, when `<sasl-channel-binding/>` is sent, its types, computed from the
//!   mechanism list now by the same rules that built the features. A module load, unload or
//!   option change between a client's features and its `<authenticate/>` changes the list:
//!   that one login sees a mismatch and retries.

use std::sync::Mutex;
use tessera_plugin_api::SaslCondition;

use tessera_plugin_api::protocol::{AccountCredentials, MechanismStart, MechanismStep};
use tessera_plugin_api::{Host, LogLevel};
use tessera_sasl::plain::parse_plain;
use tessera_sasl::scram::{
    fake_credentials, ScramCredentials, ScramError, ScramServer, ScramServerFirst,
};
use tessera_sasl::{ssdp, ChannelBindings, Hash};

use crate::features;
use crate::glue::verify_password;
use crate::ratelimit::RateLimiter;
use tessera_plugin_api::sync::locked;

/// Random bytes in a SCRAM server nonce.
pub(crate) const NONCE_BYTES: usize = 24;

/// What a mechanism needs from the module.
#[derive(Clone, Copy)]
pub(crate) struct MechEnv<'a> {
    /// Host services.
    pub(crate) host: &'a Host,
    /// Key of the fake credentials.
    pub(crate) fake_key: &'a [u8],
    /// Their PBKDF2 iterations.
    pub(crate) fake_iterations: u32,
    /// Failure counters.
    pub(crate) limiter: &'a Mutex<RateLimiter>,
}

impl std::fmt::Debug for MechEnv<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MechEnv").finish_non_exhaustive()
    }
}

/// A mechanism this module implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// SCRAM with a hash, `-PLUS` when `plus`.
    Scram { hash: Hash, plus: bool },
    /// PLAIN.
    Plain,
}

impl Kind {
    /// The mechanism for an IANA name.
    pub(crate) fn from_name(name: &str) -> Option<Kind> {
        let scram = |hash, plus| Some(Kind::Scram { hash, plus });
        match name {
            "SCRAM-SHA-1" => scram(Hash::Sha1, false),
            "SCRAM-SHA-1-PLUS" => scram(Hash::Sha1, true),
            "SCRAM-SHA-256" => scram(Hash::Sha256, false),
            "SCRAM-SHA-256-PLUS" => scram(Hash::Sha256, true),
            "SCRAM-SHA-512" => scram(Hash::Sha512, false),
            "SCRAM-SHA-512-PLUS" => scram(Hash::Sha512, true),
            "PLAIN" => Some(Kind::Plain),
            _ => None,
        }
    }
}

/// Facts about the stream an exchange runs on.
#[derive(Debug, Clone)]
pub(crate) struct ExchangeInfo {
    secure: bool,
    domain: String,
    peer_ip: String,
    bindings: ChannelBindings,
    offers_plus: bool,
    /// What the stream's features advertised for the exchange's profile (mechanisms,
    /// channel-binding types), for XEP-0474's `h=`.
    advertised: (Vec<String>, Vec<&'static str>),
}

/// State kept between two steps of an exchange.
#[derive(Debug)]
pub(crate) enum MechState {
    /// Waiting for the first client message (no initial response was sent).
    AwaitInitial { kind: Kind, info: ExchangeInfo },
    /// SCRAM: server-first sent, waiting for client-final.
    ScramFinal {
        server: Box<ScramServerFirst>,
        user: String,
    },
}

/// The outcome of a step plus the state to keep (`None`: the exchange is over).
pub(crate) type Stepped = (MechanismStep, Option<MechState>);

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

fn scram_failure(e: &ScramError, user: Option<&str>) -> MechanismStep {
    failure(e.condition(), Some(e.server_error_value()), user)
}

/// Start an exchange of one of this module's mechanisms.
pub(crate) fn start(env: MechEnv<'_>, start: MechanismStart) -> Stepped {
    let Some(kind) = Kind::from_name(&start.mechanism) else {
        return (failure(SaslCondition::InvalidMechanism, None, None), None);
    };
    let advertised = if matches!(kind, Kind::Scram { .. }) {
        features::advertised_on(env.host, &start.stream, start.profile)
    } else {
        (Vec::new(), Vec::new())
    };
    let info = ExchangeInfo {
        secure: start.stream.secure,
        domain: start.stream.domain.to_lowercase(),
        peer_ip: start.stream.peer_ip.clone(),
        bindings: features::bindings(&start.stream),
        offers_plus: features::offers_plus(&start.stream),
        advertised,
    };
    if kind == Kind::Plain && !info.secure {
        return (failure(SaslCondition::EncryptionRequired, None, None), None);
    }
    match start.initial_response {
        Some(message) => first_message(env, kind, info, &message),
        None => (
            MechanismStep::Challenge { data: Vec::new() },
            Some(MechState::AwaitInitial { kind, info }),
        ),
    }
}

/// Continue an exchange with the client's next message.
pub(crate) fn step(env: MechEnv<'_>, state: MechState, message: &[u8]) -> Stepped {
    match state {
        MechState::AwaitInitial { kind, info } => first_message(env, kind, info, message),
        MechState::ScramFinal { server, user } => match server.client_final(message) {
            Ok(success) => (
                MechanismStep::Success {
                    user,
                    additional_data: Some(success.server_final),
                },
                None,
            ),
            Err(e) => (scram_failure(&e, Some(&user)), None),
        },
    }
}

fn first_message(env: MechEnv<'_>, kind: Kind, info: ExchangeInfo, message: &[u8]) -> Stepped {
    match kind {
        Kind::Scram { hash, plus } => scram_first(env, &info, hash, plus, message),
        Kind::Plain => (plain(env, &info, message), None),
    }
}

/// The form of a prepared username that account names are stored in (the SDK's one
/// canonical form; a name no account can have keys its counters lower-cased, and its exchange
/// runs against fake credentials like any unknown account).
pub(crate) fn canonical_user(prepared: &str) -> String {
    tessera_plugin_api::names::account_key(prepared)
}

/// Whether a requested authorization identity is acceptable for `user`.
pub(crate) fn authzid_ok(authzid: Option<&str>, user: &str, domain: &str) -> bool {
    match authzid {
        None | Some("") => true,
        Some(a) => a.split_once('@').is_some_and(|(local, d)| {
            d.eq_ignore_ascii_case(domain)
                && tessera_plugin_api::names::canonical_account(local).as_deref() == Some(user)
        }),
    }
}

/// Refusals that come before any credential is touched: rate limit, then authzid.
fn precheck(
    env: MechEnv<'_>,
    info: &ExchangeInfo,
    user: &str,
    authzid: Option<&str>,
) -> Option<MechanismStep> {
    let now = env.host.now_ms();
    let limit = locked(env.limiter).check(user, &info.peer_ip, now, false);
    if let Some(limit) = limit {
        env.host.count_one("rate_limited", "scope", "account");
        return Some(failure(
            SaslCondition::TemporaryAuthFailure,
            Some(&limit.text()),
            Some(user),
        ));
    }
    (!authzid_ok(authzid, user, &info.domain))
        .then(|| failure(SaslCondition::InvalidAuthzid, None, Some(user)))
}

fn scram_first(
    env: MechEnv<'_>,
    info: &ExchangeInfo,
    hash: Hash,
    plus: bool,
    message: &[u8],
) -> Stepped {
    let (mechanisms, cb_types) = &info.advertised;
    let mechanisms: Vec<&str> = mechanisms.iter().map(String::as_str).collect();
    let server = ScramServer::new(hash, plus, info.offers_plus, info.bindings.clone())
        .with_downgrade_hash(ssdp::downgrade_hash(hash, &mechanisms, cb_types));
    let first = match server.client_first(message) {
        Ok(first) => first,
        Err(e) => return (scram_failure(&e, None), None),
    };
    let user = canonical_user(first.username());
    if let Some(refusal) = precheck(env, info, &user, first.authzid()) {
        return (refusal, None);
    }
    let Some((creds, _)) = lookup(env, &user, hash) else {
        return (store_failure(&user), None);
    };
    match first.server_first(&creds, &env.host.random_bytes(NONCE_BYTES)) {
        Ok((data, server)) => (
            MechanismStep::Challenge { data },
            Some(MechState::ScramFinal {
                server: Box::new(server),
                user,
            }),
        ),
        Err(e) => (scram_failure(&e, Some(&user)), None),
    }
}

fn plain(env: MechEnv<'_>, info: &ExchangeInfo, message: &[u8]) -> MechanismStep {
    if !info.secure {
        return failure(SaslCondition::EncryptionRequired, None, None);
    }
    let creds = match parse_plain(message) {
        Ok(creds) => creds,
        Err(e) => return failure(e.condition(), None, None),
    };
    let user = canonical_user(&creds.authcid);
    if let Some(refusal) = precheck(env, info, &user, creds.authzid.as_deref()) {
        return refusal;
    }
    match lookup(env, &user, Hash::Sha256) {
        Some((stored, exists)) if verify_password(env.host, &stored, &creds.password) && exists => {
            MechanismStep::Success {
                user,
                additional_data: None,
            }
        }
        Some(_) => failure(SaslCondition::NotAuthorized, None, Some(&user)),
        None => store_failure(&user),
    }
}

/// The account's verifier for `hash`, or fake credentials for an unknown account, or for an
/// account with no verifier of that hash (`false`: the exchange then fails exactly like a
/// wrong password); `None` when the store failed.
fn lookup(env: MechEnv<'_>, user: &str, hash: Hash) -> Option<(ScramCredentials, bool)> {
    let fake = || fake_credentials(env.fake_key, user, hash, env.fake_iterations);
    match env.host.get_credentials(user) {
        Ok(Some(account)) => Some(match verifier(&account, hash) {
            Some(verifier) => (verifier, true),
            None => (fake(), false),
        }),
        Ok(None) => Some((fake(), false)),
        Err(e) => {
            env.host
                .log(LogLevel::Warn, &format!("credentials unavailable: {e}"));
            None
        }
    }
}

fn store_failure(user: &str) -> MechanismStep {
    failure(SaslCondition::TemporaryAuthFailure, None, Some(user))
}

/// The account's stored verifier for `hash`: SHA-512 only for accounts whose password was set
/// since SHA-512 verifiers are kept, or that a XEP-0480 upgrade gave one.
fn verifier(account: &AccountCredentials, hash: Hash) -> Option<ScramCredentials> {
    let secret = match hash {
        Hash::Sha1 => &account.scram_sha1,
        Hash::Sha256 => &account.scram_sha256,
        Hash::Sha512 => account.scram_sha512.as_ref()?,
    };
    Some(ScramCredentials {
        hash,
        salt: secret.salt.clone(),
        iterations: secret.iterations,
        stored_key: secret.stored_key.clone(),
        server_key: secret.server_key.clone(),
    })
}
