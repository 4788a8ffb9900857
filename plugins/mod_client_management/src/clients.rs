//! The client list as pure functions: what is kept per client, how a listed id is derived, and
//! how records, other modules' credentials and live sessions become the list.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tessera_plugin_api::clients::{ClientCredential, ClientView};
use tessera_plugin_api::protocol::{CredentialKind, SessionInfo};

/// Store key prefix of client records (account scope).
pub const KEY_PREFIX: &str = "client:";

/// What is kept of one client (JSON in the account's store, key `client:<client_ref>`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// Its SASL2 user-agent id (shown to the operator, never in the XMPP list: a FAST token is
    /// bound to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent_id: Option<String>,
    /// `<software/>` of its last SASL2 `<user-agent/>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software: Option<String>,
    /// `<device/>`, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// First authentication (ms).
    pub first_seen_ms: u64,
    /// Last authentication (ms).
    pub last_seen_ms: u64,
    /// Last authentication with a password (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_ms: Option<u64>,
    /// Last authentication with a token (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ms: Option<u64>,
}

impl ClientRecord {
    /// The record after a login at `now_ms` of `kind`, with the user-agent's names.
    pub fn seen(
        old: Option<Self>,
        now_ms: u64,
        kind: CredentialKind,
        software: Option<String>,
        device: Option<String>,
    ) -> Self {
        let mut record = old.unwrap_or(Self {
            first_seen_ms: now_ms,
            ..Self::default()
        });
        record.last_seen_ms = now_ms;
        match kind {
            CredentialKind::Password => record.password_ms = Some(now_ms),
            CredentialKind::Token => record.token_ms = Some(now_ms),
            CredentialKind::Other => {}
        }
        if software.is_some() {
            record.software = software;
        }
        if device.is_some() {
            record.device = device;
        }
        record
    }
}

/// How fresh the noted times are: a login within this long of the last one noted for the client
/// (by the same means, with the same names) writes nothing, so a client that logs in again and
/// again costs a store read, not a write, each time (tests/load/ab_modules.sh).
pub const SEEN_RESOLUTION_MS: u64 = 60_000;

/// Whether a login noted as `new` must be written over `old`: something changed, or the times
/// moved by [`SEEN_RESOLUTION_MS`] or more. A password login is always written when the noted
/// one is not of the current password (`password_changed_at_ms`): whether a client presented
/// the current password decides how its revocation is answered, and is never left stale.
pub fn needs_write(
    old: Option<&ClientRecord>,
    new: &ClientRecord,
    kind: CredentialKind,
    password_changed_at_ms: u64,
) -> bool {
    let Some(old) = old else {
        return true;
    };
    let stale = |at: Option<u64>| {
        at.is_none_or(|at| new.last_seen_ms.saturating_sub(at) >= SEEN_RESOLUTION_MS)
    };
    if old.software != new.software
        || old.device != new.device
        || old.user_agent_id != new.user_agent_id
        || stale(Some(old.last_seen_ms))
    {
        return true;
    }
    match kind {
        CredentialKind::Password => {
            stale(old.password_ms)
                || old
                    .password_ms
                    .is_none_or(|at| at <= password_changed_at_ms)
        }
        CredentialKind::Token => stale(old.token_ms),
        CredentialKind::Other => false,
    }
}

/// Derives listed ids: `base64url(HMAC-SHA-256(key, account NUL what))[..16]`, so an id says
/// nothing about the client, is stable for it, and names nothing in another account.
#[derive(Clone)]
pub struct IdKey(Hmac<Sha256>);

impl std::fmt::Debug for IdKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdKey(<redacted>)")
    }
}

impl IdKey {
    /// Key the derivation (`None` for an empty key).
    pub fn new(key: &[u8]) -> Option<Self> {
        if key.is_empty() {
            return None;
        }
        Hmac::new_from_slice(key).ok().map(Self)
    }

    fn id(&self, user: &str, what: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(user.as_bytes());
        mac.update(&[0]);
        mac.update(what.as_bytes());
        let digest = mac.finalize().into_bytes();
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        text.get(..16).unwrap_or(&text).to_owned()
    }

    /// The id of a client (by its `client_ref`).
    pub fn client_id(&self, user: &str, client: &str) -> String {
        self.id(user, client)
    }

    /// The id of a session without a user-agent id (a legacy login), by its stream.
    pub fn session_id(&self, user: &str, stream: u64) -> String {
        self.id(user, &format!("stream:{stream}"))
    }
}

/// What a listed entry stands for, to revoke it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A client with a user-agent id (`client_ref`), recorded or known only by a credential.
    Client {
        /// Its `client_ref`.
        client: String,
        /// Whether a record of it is kept.
        recorded: bool,
    },
    /// One session that sent no user-agent id (it logged in with a password).
    Session {
        /// Its stream.
        stream: u64,
    },
}

/// One entry of the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// What the owner sees.
    pub view: ClientView,
    /// What a revocation acts on.
    pub target: Target,
    /// Its sessions' streams.
    pub streams: Vec<u64>,
}

/// What the list is built from.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The account.
    pub user: &'a str,
    /// Its kept records, by `client_ref`.
    pub records: Vec<(String, ClientRecord)>,
    /// Other modules' credentials of its clients.
    pub credentials: Vec<ClientCredential>,
    /// Its sessions now.
    pub sessions: Vec<SessionInfo>,
    /// When its password last changed (ms).
    pub password_changed_at_ms: u64,
    /// The `client_ref` of a user-agent id (`tessera_plugin_api::clients::client_ref`).
    pub client_ref: fn(&str) -> String,
}

/// The clients that have access to the account now: a session, a credential, or the current
/// password (presented since the last change). Recorded clients first (most recently seen
/// first), then clients known only by a credential, then sessions without a user-agent id.
pub fn list(ids: &IdKey, inputs: Inputs<'_>) -> Vec<Entry> {
    let Inputs {
        user,
        mut records,
        credentials,
        sessions,
        password_changed_at_ms,
        client_ref,
    } = inputs;
    let session_ref = |s: &SessionInfo| s.user_agent_id.as_deref().map(client_ref);
    let streams_of = |client: &str| -> Vec<u64> {
        sessions
            .iter()
            .filter(|s| session_ref(s).as_deref() == Some(client))
            .map(|s| s.stream_id)
            .collect()
    };
    let credentials_of = |client: &str| -> Vec<ClientCredential> {
        credentials
            .iter()
            .filter(|c| c.client == client)
            .cloned()
            .collect()
    };
    records.sort_by(|a, b| b.1.last_seen_ms.cmp(&a.1.last_seen_ms).then(a.0.cmp(&b.0)));
    let mut out = Vec::new();
    for (client, record) in &records {
        let streams = streams_of(client);
        let creds = credentials_of(client);
        let password = record
            .password_ms
            .is_some_and(|at| at > password_changed_at_ms);
        if streams.is_empty() && creds.is_empty() && !password {
            continue;
        }
        out.push(Entry {
            view: ClientView {
                id: ids.client_id(user, client),
                user_agent_id: record.user_agent_id.clone(),
                software: record.software.clone(),
                device: record.device.clone(),
                first_seen_ms: record.first_seen_ms,
                last_seen_ms: record.last_seen_ms,
                password,
                credentials: creds,
                sessions: count(&streams),
                logged_in: true,
            },
            target: Target::Client {
                client: client.clone(),
                recorded: true,
            },
            streams,
        });
    }
    // Credentials of clients with no record (issued before this module was loaded).
    let mut unrecorded: Vec<&str> = credentials
        .iter()
        .map(|c| c.client.as_str())
        .filter(|c| !records.iter().any(|(r, _)| r == c))
        .collect();
    unrecorded.sort_unstable();
    unrecorded.dedup();
    for client in unrecorded {
        let creds = credentials_of(client);
        let streams = streams_of(client);
        let first = creds.iter().map(|c| c.issued_at_ms).min().unwrap_or(0);
        let last = creds.iter().map(|c| c.issued_at_ms).max().unwrap_or(0);
        out.push(Entry {
            view: ClientView {
                id: ids.client_id(user, client),
                user_agent_id: None,
                software: None,
                device: None,
                first_seen_ms: first,
                last_seen_ms: last,
                password: false,
                credentials: creds,
                sessions: count(&streams),
                logged_in: !streams.is_empty(),
            },
            target: Target::Client {
                client: client.to_owned(),
                recorded: false,
            },
            streams,
        });
    }
    // Sessions that sent no user-agent id: each is its own entry (it used a password).
    for s in sessions.iter().filter(|s| s.user_agent_id.is_none()) {
        out.push(Entry {
            view: ClientView {
                id: ids.session_id(user, s.stream_id),
                user_agent_id: None,
                software: None,
                device: s.jid.split_once('/').map(|(_, r)| r.to_owned()),
                first_seen_ms: 0,
                last_seen_ms: 0,
                password: true,
                credentials: Vec::new(),
                sessions: 1,
                logged_in: true,
            },
            target: Target::Session {
                stream: s.stream_id,
            },
            streams: vec![s.stream_id],
        });
    }
    out
}

fn count(streams: &[u64]) -> u32 {
    u32::try_from(streams.len()).unwrap_or(u32::MAX)
}

/// Records to forget: unused for `retention_ms` with no credential left, then, beyond `max`
/// (a new client is about to be added when `adding`), those with no access left (no credential,
/// the password not presented since it last changed) before those with access, least recently
/// seen first: the bound never hides a client that can still log in while another can go.
pub fn to_forget(
    records: &[(String, ClientRecord)],
    credentials: &[ClientCredential],
    password_changed_at_ms: u64,
    (now_ms, retention_ms): (u64, u64),
    max: usize,
    adding: bool,
) -> Vec<String> {
    let has_credential = |client: &str| credentials.iter().any(|c| c.client == client);
    let mut forget: Vec<String> = records
        .iter()
        .filter(|(client, r)| {
            r.last_seen_ms.saturating_add(retention_ms) <= now_ms && !has_credential(client)
        })
        .map(|(client, _)| client.clone())
        .collect();
    let mut kept: Vec<&(String, ClientRecord)> = records
        .iter()
        .filter(|(client, _)| !forget.contains(client))
        .collect();
    let room = max.saturating_sub(usize::from(adding));
    if kept.len() > room {
        let has_access = |(client, r): &(String, ClientRecord)| {
            has_credential(client) || r.password_ms.is_some_and(|at| at > password_changed_at_ms)
        };
        kept.sort_by_key(|entry| (has_access(entry), entry.1.last_seen_ms));
        let excess = kept.len() - room;
        forget.extend(kept.iter().take(excess).map(|(client, _)| client.clone()));
    }
    forget
}
