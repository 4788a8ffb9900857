//! # mod_client_management
//!
//! XEP-0494 Client Access Management: an account owner lists the clients that can reach the
//! account and revokes one; an operator does the same with `tessera client list JID` and
//! `tessera client revoke JID ID`. Prosody's module of the same name is the anchor.
//!
//! A client is an installation known by its SASL2 user-agent id. At each SASL2 login
//! (`sasl2-success`) this module notes, per account and client: the `<software/>` and
//! `<device/>` it sent, when it first and last authenticated, and when it last did so with a
//! password and with a token (to the minute: a login within a minute of the last one noted, by
//! the same means, writes nothing). The list joins those notes with the credentials other modules hold
//! for the client (mod_sasl2_fast's tokens, through `client-credentials`) and the account's
//! sessions now. A client is listed while it has access: a session, a credential, or the
//! current password (presented since the last password change). Sessions that sent no
//! user-agent id (RFC 6120 logins) are listed one by one.
//!
//! Revoking a client removes its credentials (`client-revoke`: its FAST tokens die at once),
//! closes its sessions with `<not-authorized/>` and fires `client-revoked`; other clients are
//! untouched. A client that has presented the current password (since its last change) may
//! still hold it: then the answer is XEP-0494's `<service-unavailable/>` with
//! `<password-reset-required/>` (what could be revoked is revoked, and it stays listed), and
//! only a password change keeps it out. If a module cannot remove the client's credentials
//! (its store failed), nothing else is done and the answer is a `wait` `<internal-server-error/>`.
//!
//! ## Errors
//! | request | error |
//! |---|---|
//! | `<list/>` in a set, `<revoke/>` in a get, no `id`, another payload | `<bad-request/>` with a text saying which |
//! | to another account's JID | `<forbidden/>` |
//! | an id this account does not list (another account's included) | `<item-not-found/>` |
//! | a client that has presented the current password | `<service-unavailable/>` + `<password-reset-required/>` (its tokens and sessions are revoked) |
//! | (a module could not remove its tokens) | `wait` `<internal-server-error/>`, nothing done |
//!
//! ## Options
//! | option | default | meaning |
//! |---|---|---|
//! | `client_management_retention` | `2592000` (30 days; 3600–31536000) | seconds a client's notes are kept after its last login when it holds no credential |
//! | `client_management_max_clients` | `64` (1–1000) | clients noted per account; beyond, the least recently seen is forgotten |
//! | `client_management_keep_names` | `true` | keep the software and device names clients send (off: the list shows `unknown`) |

pub mod clients;
pub mod xml;

use tessera_plugin_api::clients::{
    client_ref, hooks as client_hooks, ClientCredential, ClientRevoke, ClientView, RevokeOutcome,
    RevokeRequest, CLIENT_REVOKED,
};
use tessera_plugin_api::events::{self, hooks, Sasl2Success};
use tessera_plugin_api::protocol::{
    CredentialKind, HookSpec, IqRequest, KvScope, KvWrite, Manifest, Registrations,
};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{
    reply, wire, Config, ErrorType, Host, LogLevel, Module, PluginError, StanzaCondition,
    StreamCondition,
};

use crate::clients::{ClientRecord, Entry, IdKey, Inputs, Target, KEY_PREFIX};
use crate::xml::{Request, NS};

tessera_plugin_api::options! {
    /// What mod_client_management reads from the config.
    pub struct Options {
        /// Seconds a client's notes are kept after its last login when it holds no credential.
        client_management_retention: u64 = 2_592_000, range 3600..=31_536_000;
        /// Clients noted per account; beyond, the least recently seen is forgotten.
        client_management_max_clients: u32 = 64, range 1..=1000;
        /// Keep the software and device names clients send.
        client_management_keep_names: bool = true;
    }
}

/// Longest software or device name kept, in characters.
const MAX_NAME_CHARS: usize = 128;
/// Longest user-agent id considered (mod_sasl2 ignores longer ones).
const MAX_USER_AGENT_ID: usize = 128;
/// The SASL2 namespace (`<user-agent/>`).
const SASL2_NS: &str = "urn:xmpp:sasl:2";

/// The module.
#[derive(Debug)]
pub struct ClientManagement {
    options: Options,
    ids: IdKey,
}

fn scope(user: &str) -> KvScope<'_> {
    KvScope::Account(user)
}

/// The user-agent of a SASL2 `<authenticate/>`: its id (1–128 characters) and names.
fn user_agent(authenticate: &Element) -> Option<(String, Option<String>, Option<String>)> {
    let ua = authenticate.child("user-agent", SASL2_NS)?;
    let id = ua
        .attr("id")
        .filter(|id| (1..=MAX_USER_AGENT_ID).contains(&id.chars().count()))?;
    let name = |child: &str| {
        ua.child(child, SASL2_NS)
            .map(|c| {
                c.text()
                    .trim()
                    .chars()
                    .take(MAX_NAME_CHARS)
                    .collect::<String>()
            })
            .filter(|s| !s.is_empty())
    };
    Some((id.to_owned(), name("software"), name("device")))
}

impl ClientManagement {
    fn records(&self, host: &Host, user: &str) -> Result<Vec<(String, ClientRecord)>, PluginError> {
        Ok(host
            .kv_list(scope(user), KEY_PREFIX)?
            .into_iter()
            .filter_map(|(key, value)| {
                let client = key.strip_prefix(KEY_PREFIX)?.to_owned();
                serde_json::from_str(&value).ok().map(|r| (client, r))
            })
            .collect())
    }

    fn credentials(host: &Host, user: &str) -> Vec<ClientCredential> {
        match host.call_hook_as::<_, Vec<ClientCredential>>(
            client_hooks::CLIENT_CREDENTIALS,
            &user.to_owned(),
        ) {
            Ok(replies) => replies.into_iter().flatten().collect(),
            Err(e) => {
                host.log(
                    LogLevel::Warn,
                    &format!("client credentials unavailable: {e}"),
                );
                Vec::new()
            }
        }
    }

    /// Note a SASL2 login, and forget what the retention and the bound say to.
    fn login(&self, host: &Host, success: &Sasl2Success) -> Result<(), PluginError> {
        let Some((ua_id, software, device)) = user_agent(&success.authenticate) else {
            return Ok(());
        };
        let (software, device) = if self.options.client_management_keep_names {
            (software, device)
        } else {
            (None, None)
        };
        let user = success.user.as_str();
        let client = client_ref(&ua_id);
        let key = format!("{KEY_PREFIX}{client}");
        let old: Option<ClientRecord> = host
            .kv_get(scope(user), &key)?
            .and_then(|v| serde_json::from_str(&v).ok());
        let mut writes = Vec::new();
        if old.is_none() {
            // A new client: make room, and forget the stale (only then, so a login of a known
            // client costs one read and one write).
            let records = self.records(host, user)?;
            let credentials = Self::credentials(host, user);
            let password_changed_at_ms = host
                .get_credentials(user)?
                .map_or(u64::MAX, |a| a.password_changed_at_ms);
            let retention_ms = self
                .options
                .client_management_retention
                .saturating_mul(1000);
            for forget in clients::to_forget(
                &records,
                &credentials,
                password_changed_at_ms,
                (host.now_ms(), retention_ms),
                self.options.client_management_max_clients as usize,
                true,
            ) {
                writes.push(KvWrite::delete(format!("{KEY_PREFIX}{forget}")));
            }
        }
        let kind = CredentialKind::of(&success.mechanism);
        let mut record = ClientRecord::seen(old.clone(), host.now_ms(), kind, software, device);
        record.user_agent_id = Some(ua_id);
        let password_changed_at_ms = if kind == CredentialKind::Password && old.is_some() {
            host.get_credentials(user)?
                .map_or(u64::MAX, |a| a.password_changed_at_ms)
        } else {
            0
        };
        if writes.is_empty()
            && !clients::needs_write(old.as_ref(), &record, kind, password_changed_at_ms)
        {
            return Ok(());
        }
        let value =
            serde_json::to_string(&record).map_err(|e| PluginError::internal(e.to_string()))?;
        writes.push(KvWrite::put(key, value));
        host.kv_write(scope(user), writes)
    }

    /// The account's list.
    fn entries(&self, host: &Host, user: &str) -> Result<Vec<Entry>, PluginError> {
        let password_changed_at_ms = host
            .get_credentials(user)?
            .map_or(u64::MAX, |a| a.password_changed_at_ms);
        Ok(clients::list(
            &self.ids,
            Inputs {
                user,
                records: self.records(host, user)?,
                credentials: Self::credentials(host, user),
                sessions: host.list_sessions(user)?,
                password_changed_at_ms,
                client_ref,
            },
        ))
    }

    fn views(&self, host: &Host, user: &str) -> Result<Vec<ClientView>, PluginError> {
        Ok(self
            .entries(host, user)?
            .into_iter()
            .map(|e| e.view)
            .collect())
    }

    /// Revoke the client listed as `id`.
    fn revoke(&self, host: &Host, user: &str, id: &str) -> Result<RevokeOutcome, PluginError> {
        let Some(entry) = self
            .entries(host, user)?
            .into_iter()
            .find(|e| e.view.id == id)
        else {
            return Ok(RevokeOutcome::NotFound);
        };
        let mut credentials = 0u32;
        if let Target::Client { client, recorded } = &entry.target {
            let revoke = ClientRevoke {
                user: user.to_owned(),
                client: client.clone(),
            };
            let answers =
                host.call_hook_as::<_, Result<u32, String>>(client_hooks::CLIENT_REVOKE, &revoke)?;
            for answer in answers {
                match answer {
                    Ok(n) => credentials = credentials.saturating_add(n),
                    Err(why) => {
                        host.log(
                            LogLevel::Warn,
                            &format!("client {id} of {user} not revoked: {why}"),
                        );
                        return Ok(RevokeOutcome::Failed(why));
                    }
                }
            }
            // A client that holds the password keeps its note: it can still log in.
            if *recorded && !entry.view.password {
                host.kv_delete(scope(user), &format!("{KEY_PREFIX}{client}"))?;
            }
            host.fire(CLIENT_REVOKED, &revoke)?;
        }
        let mut sessions = 0u32;
        for stream in &entry.streams {
            if host.close_session(*stream, StreamCondition::NotAuthorized)? {
                sessions += 1;
            }
        }
        host.log(
            LogLevel::Info,
            &format!(
                "client {id} of {user} revoked: {credentials} credential(s), {sessions} session(s)"
            ),
        );
        Ok(if entry.view.password {
            RevokeOutcome::PasswordRemains {
                credentials,
                sessions,
            }
        } else {
            RevokeOutcome::Revoked {
                credentials,
                sessions,
            }
        })
    }

    /// Answer an IQ of the namespace from an authenticated stream.
    fn answer(&self, host: &Host, request: &IqRequest) -> Result<Option<Element>, PluginError> {
        let iq = &request.stanza;
        let domain = request.stream.domain.as_str();
        let Some(user) = request.stream.user.as_deref() else {
            return Ok(None);
        };
        let own = format!("{user}@{domain}");
        let to_self = iq.attr("to").is_none_or(|to| {
            let bare = to.split('/').next().unwrap_or(to);
            bare.eq_ignore_ascii_case(&own) || bare.eq_ignore_ascii_case(domain)
        });
        if !to_self {
            let text = "Only an account's owner manages its clients";
            return Ok(reply::error(
                iq,
                StanzaCondition::Forbidden,
                Some(text),
                domain,
            ));
        }
        let request = match xml::request(iq) {
            Ok(request) => request,
            Err(bad) => {
                let text = Some(bad.text());
                return Ok(reply::error(iq, StanzaCondition::BadRequest, text, domain));
            }
        };
        Ok(match request {
            Request::List => {
                let views = self.views(host, user)?;
                Some(reply::iq_result(iq, domain).with_child(xml::clients(&views)))
            }
            Request::Revoke(id) => match self.revoke(host, user, &id)? {
                RevokeOutcome::Revoked { .. } => Some(reply::iq_result(iq, domain)),
                RevokeOutcome::NotFound => reply::error(
                    iq,
                    StanzaCondition::ItemNotFound,
                    Some("No client with that id"),
                    domain,
                ),
                RevokeOutcome::Failed(_) => reply::error_typed(
                    iq,
                    ErrorType::Wait,
                    StanzaCondition::InternalServerError,
                    Some("Its tokens could not be revoked; nothing else was done: try again"),
                    domain,
                ),
                RevokeOutcome::PasswordRemains { .. } => {
                    let text = "Its tokens are revoked and its sessions closed, but it has \
                                logged in with the current password: change the password to \
                                keep it out";
                    reply::error(iq, StanzaCondition::ServiceUnavailable, Some(text), domain).map(
                        |mut e| {
                            if let Some(error) = e.child_mut("error", reply::CLIENT_NS) {
                                error.push_child(Element::new("password-reset-required", NS));
                            }
                            e
                        },
                    )
                }
            },
        })
    }
}

impl Module for ClientManagement {
    const NAME: &'static str = "client_management";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn manifest() -> Manifest {
        Manifest {
            description: "XEP-0494 Client Access Management".into(),
            options: Options::specs(),
            depends: vec!["sasl2".into()],
            ..Manifest::default()
        }
    }

    fn init(host: &Host, config: &Config, _restore: Option<&[u8]>) -> Result<Self, PluginError> {
        let key = host.derive_secret("client-id")?;
        let ids = IdKey::new(&key).ok_or_else(|| PluginError::internal("empty client-id key"))?;
        Ok(Self {
            options: Options::from_config(config)?,
            ids,
        })
    }

    fn registrations(&self) -> Registrations {
        let hook = |name: &str| HookSpec {
            name: name.into(),
            // After the modules that add to `<success/>`: noting a login changes nothing in it.
            priority: events::priority::LAST,
        };
        Registrations {
            iq_namespaces: vec![NS.into()],
            disco_features: vec![NS.into()],
            hooks: vec![
                hook(hooks::SASL2_SUCCESS),
                hook(client_hooks::CLIENTS_LIST),
                hook(client_hooks::CLIENTS_REVOKE),
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
            hooks::SASL2_SUCCESS => {
                let success: Sasl2Success = wire::decode(name, payload)?;
                if let Err(e) = self.login(host, &success) {
                    // A note that could not be kept never fails the login.
                    host.log(LogLevel::Warn, &format!("client not noted: {e}"));
                }
                Ok(None)
            }
            // Failures are answered, not raised: the host drops a hook's errors, and the
            // operator must hear "failed", not "not available".
            client_hooks::CLIENTS_LIST => {
                let user: String = wire::decode(name, payload)?;
                let views = self.views(host, &user).map_err(|e| e.to_string());
                wire::encode(&views).map(Some)
            }
            client_hooks::CLIENTS_REVOKE => {
                let request: RevokeRequest = wire::decode(name, payload)?;
                let outcome = self
                    .revoke(host, &request.user, &request.id)
                    .unwrap_or_else(|e| RevokeOutcome::Failed(e.to_string()));
                wire::encode(&outcome).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn iq(&self, host: &Host, request: IqRequest) -> Result<Option<Element>, PluginError> {
        self.answer(host, &request)
    }
}

tessera_plugin_api::export_module!(ClientManagement);

#[cfg(test)]
mod tests;
