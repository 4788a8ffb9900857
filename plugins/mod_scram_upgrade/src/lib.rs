//! # mod_scram_upgrade
//!
//! XEP-0480 SASL Upgrade Tasks for SCRAM: an account whose password was set before Tessera
//! kept SCRAM-SHA-512 verifiers gets one during a password login, so that it can then log in
//! with SCRAM-SHA-512(-PLUS). The server never had the password, so only a client that knows it
//! can help: it computes `SaltedPassword = Hi(password, salt, i)` over a fresh salt and the
//! server's iteration count, and the host keeps StoredKey and ServerKey derived from it.
//! ejabberd's mod_scram_upgrade is the anchor.
//!
//! A small file of hooks on mod_sasl2's task protocol (see `mod_sasl2::api`):
//! * `sasl2-upgrades` lists `UPGR-SCRAM-SHA-512` in SASL2 `<authentication/>`, for every
//!   stream alike (whether an account has the verifier is not shown before authentication).
//! * `sasl2-tasks`: after a login that asked for the task (`<upgrade/>` in `<authenticate/>`),
//!   the task follows if the mechanism was a password one (SCRAM, PLAIN) and the account lacks
//!   the verifier. After a FAST token or a reset link it is never run: those do not show the
//!   password, and a SaltedPassword is as good as the password for logging in. An account that
//!   has the verifier skips it, and the login succeeds at once.
//! * `sasl2-task`: `<next/>` gets `<salt iterations='…'/>` (16 random bytes, the host's
//!   `scram_iteration_count`); the client's `<hash/>` goes to the host call
//!   `add_scram_verifier`, which checks it against the host's own record of the login.
//!
//! ## Errors (each a SASL2 `<failure/>`; the login fails and nothing is stored)
//! | client sent | condition | text |
//! |---|---|---|
//! | `<task-data/>` without `<hash xmlns='urn:xmpp:scram-upgrade:0'/>` | `malformed-request` | `Expected <hash xmlns='urn:xmpp:scram-upgrade:0'/>` |
//! | a hash that is not base64 | `incorrect-encoding` | `The hash is not base64` |
//! | a hash that is not 64 bytes | `malformed-request` | `a SCRAM-SHA-512 SaltedPassword is 64 bytes, not N` |
//! | (the password changed or the account was deleted during the login) | `not-authorized` | `Authentication is no longer valid` |
//!
//! No options. The new verifier is never checked against the password (the server cannot): a
//! client that computes it wrong locks itself out of SCRAM-SHA-512 for that account until the
//! password changes, and SHA-256 keeps working. So the host never replaces a verifier this way.

pub mod task;

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tessera_plugin_api::events::{self, hooks, Sasl2Success, SessionEvent, TaskCall, TaskStep};
use tessera_plugin_api::notes::StreamNotes;
use tessera_plugin_api::protocol::{
    CredentialKind, HookSpec, Manifest, Registrations, ScramHash, ScramUpgrade, UpgradeRefusal,
    VerifierAdded,
};
use tessera_plugin_api::sync::locked;
use tessera_plugin_api::{
    wire, Config, Event, EventFlow, Host, LogLevel, Module, PluginError, SaslCondition,
};

use crate::task::{HashError, SALT_LEN, TASK};

/// Most logins between `<next/>` and `<hash/>` at once.
const MAX_PENDING: usize = 4096;
/// Age after which a salt sent may be dropped to make room.
const PENDING_TTL_MS: u64 = 600_000;
/// Hot-swap state format version.
const STATE_VERSION: u8 = 1;

/// The salt and iteration count sent to a stream, until its `<hash/>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Sent {
    #[serde(with = "serde_bytes")]
    salt: Vec<u8>,
    iterations: u32,
}

/// The module.
#[derive(Debug)]
pub struct ScramUpgradeModule {
    iterations: u32,
    sent: Mutex<StreamNotes<Sent>>,
}

impl ScramUpgradeModule {
    fn new(iterations: u32) -> Self {
        Self {
            // The host's own bounds for `scram_iteration_count`; it refuses anything else.
            iterations: iterations.clamp(4096, 10_000_000),
            sent: Mutex::new(StreamNotes::new(MAX_PENDING, PENDING_TTL_MS)),
        }
    }

    /// Whether the task must follow this login.
    fn wanted(&self, host: &Host, success: &Sasl2Success) -> bool {
        if !task::requested(&success.authenticate)
            || CredentialKind::of(&success.mechanism) != CredentialKind::Password
        {
            return false;
        }
        match host.get_credentials(&success.user) {
            Ok(Some(account)) => account.scram_sha512.is_none(),
            Ok(None) => false,
            Err(e) => {
                host.log(LogLevel::Warn, &format!("credentials unavailable: {e}"));
                false
            }
        }
    }

    /// One step of the task: `<next/>` or the client's `<task-data/>`.
    fn step(&self, host: &Host, call: &TaskCall) -> TaskStep {
        let stream = call.stream.id;
        if call.element.name == "next" {
            let sent = Sent {
                salt: host.random_bytes(SALT_LEN),
                iterations: self.iterations,
            };
            let salt = task::salt_element(&sent.salt, sent.iterations);
            locked(&self.sent).insert(stream, host.now_ms(), sent);
            return TaskStep::Data {
                children: vec![salt],
            };
        }
        let Some(sent) = locked(&self.sent).take(stream) else {
            return failure(SaslCondition::MalformedRequest, "No salt was sent");
        };
        let salted_password = match task::salted_password(&call.element) {
            Ok(bytes) => bytes,
            Err(HashError::Missing) => {
                return failure(
                    SaslCondition::MalformedRequest,
                    "Expected <hash xmlns='urn:xmpp:scram-upgrade:0'/>",
                )
            }
            Err(HashError::NotBase64) => {
                return failure(SaslCondition::IncorrectEncoding, "The hash is not base64")
            }
        };
        let upgrade = ScramUpgrade {
            hash: ScramHash::Sha512,
            salt: sent.salt,
            iterations: sent.iterations,
            salted_password,
        };
        match host.add_scram_verifier(stream, upgrade) {
            Ok(VerifierAdded::Stored | VerifierAdded::AlreadyPresent) => TaskStep::Done {
                children: Vec::new(),
            },
            Ok(VerifierAdded::Refused(UpgradeRefusal::Malformed(why))) => {
                failure(SaslCondition::MalformedRequest, &why)
            }
            Ok(VerifierAdded::Refused(_)) => failure(
                SaslCondition::NotAuthorized,
                "Authentication is no longer valid",
            ),
            Err(e) => {
                host.log(LogLevel::Warn, &format!("add_scram_verifier failed: {e}"));
                failure(SaslCondition::TemporaryAuthFailure, "Try again later")
            }
        }
    }
}

fn failure(condition: SaslCondition, text: &str) -> TaskStep {
    TaskStep::Failure {
        condition,
        text: Some(text.to_owned()),
    }
}

impl Module for ScramUpgradeModule {
    const NAME: &'static str = "scram_upgrade";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "XEP-0480 SASL upgrade task UPGR-SCRAM-SHA-512".into(),
            depends: vec!["sasl2".into()],
            ..Manifest::default()
        }
    }

    fn init(host: &Host, _config: &Config, restore: Option<&[u8]>) -> Result<Self, PluginError> {
        let module = Self::new(host.host_info()?.scram_iterations);
        if let Some(bytes) = restore.filter(|b| !b.is_empty()) {
            let entries: Vec<(u64, u64, Sent)> =
                wire::decode_state("mod_scram_upgrade", STATE_VERSION, bytes)?;
            let mut sent = locked(&module.sent);
            for (stream, at_ms, note) in entries {
                sent.insert(stream, at_ms, note);
            }
        }
        Ok(module)
    }

    fn registrations(&self) -> Registrations {
        let hook = |name: &str| HookSpec {
            name: name.into(),
            priority: events::priority::NORMAL,
        };
        Registrations {
            events: vec![hook(events::SESSION_CLOSED)],
            hooks: vec![
                hook(hooks::SASL2_UPGRADES),
                hook(hooks::SASL2_TASKS),
                hook(hooks::SASL2_TASK),
            ],
            ..Registrations::default()
        }
    }

    fn hook(
        &self,
        host: &Host,
        name: &str,
        payload: &[u8],
    ) -> Result<Option<Vec<u8>>, PluginError> {
        match name {
            hooks::SASL2_UPGRADES => wire::encode(&vec![TASK]).map(Some),
            hooks::SASL2_TASKS => {
                let success: Sasl2Success = wire::decode(name, payload)?;
                if self.wanted(host, &success) {
                    wire::encode(&vec![TASK]).map(Some)
                } else {
                    Ok(None)
                }
            }
            hooks::SASL2_TASK => {
                let call: TaskCall = wire::decode(name, payload)?;
                if call.task != TASK {
                    return Ok(None);
                }
                wire::encode(&self.step(host, &call)).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn on_event(&self, _host: &Host, event: &Event<'_>) -> Result<EventFlow, PluginError> {
        if event.name == events::SESSION_CLOSED {
            let closed: SessionEvent = event.decode()?;
            locked(&self.sent).take(closed.stream_id);
        }
        Ok(EventFlow::Continue)
    }

    fn save_state(&self) -> Result<Vec<u8>, PluginError> {
        wire::encode_state(STATE_VERSION, &locked(&self.sent).entries())
    }
}

tessera_plugin_api::export_module!(ScramUpgradeModule);

#[cfg(test)]
mod tests;
