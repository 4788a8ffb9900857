//! The typed messages carried across the ABI: what a module declares (manifest,
//! registrations), and the arguments and answers of the calls declared in [`crate::calls`].
//!
//! They travel in postcard ([`crate::wire`]): a message's shape is frozen once released, and a
//! new capability is a new call kind.

use serde::{Deserialize, Serialize};

use crate::conditions::{SaslCondition, StreamCondition};
use crate::xml::Element;

/// Static description of a module: readable before instantiation, so that the host can validate
/// the whole config file (every module's options) before starting anything.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// One-line description for `tessera module list`.
    pub description: String,
    /// Options this module reads from the top level of the config file. By convention their
    /// names start with the module name (`sasl2_fast_token_ttl`).
    pub options: Vec<OptionSpec>,
    /// Modules that must be loaded for this one to work (e.g. `sasl2` for `sasl2_fast`).
    pub depends: Vec<String>,
    /// Host configuration keys that must be set for this module (e.g. `http.public_url`), so
    /// that `check-config` refuses a config the module could not start with.
    pub requires: Vec<String>,
}

/// One configuration option a module declares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptionSpec {
    /// The top-level key in `tessera.toml`.
    pub name: String,
    /// The value's type and bounds, checked by the host.
    pub kind: OptionKind,
    /// The value used when the key is absent; `None` with `required = false` means "unset".
    pub default: Option<OptionValue>,
    /// Whether the key must be present.
    pub required: bool,
    /// A short description for error messages and docs.
    pub doc: String,
}

impl OptionSpec {
    /// An optional integer option within `min..=max` with a default.
    pub fn integer(name: &str, min: i64, max: i64, default: i64, doc: &str) -> Self {
        Self {
            name: name.into(),
            kind: OptionKind::Integer { min, max },
            default: Some(OptionValue::Integer(default)),
            required: false,
            doc: doc.into(),
        }
    }

    /// An optional boolean option with a default.
    pub fn boolean(name: &str, default: bool, doc: &str) -> Self {
        Self {
            name: name.into(),
            kind: OptionKind::Bool,
            default: Some(OptionValue::Bool(default)),
            required: false,
            doc: doc.into(),
        }
    }
}

/// An option's value, as the host validated it (or the declared default).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OptionValue {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Integer(i64),
    /// A string.
    String(String),
    /// A list of strings.
    StringList(Vec<String>),
}

/// The type of an option's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OptionKind {
    /// `true` / `false`.
    Bool,
    /// An integer within inclusive bounds.
    Integer {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// A string.
    String,
    /// A list of strings.
    StringList,
}

/// What a module asks the host to route to it. Returned once after instantiation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Registrations {
    /// Bus events this module hooks, each with a priority (higher runs first).
    pub events: Vec<HookSpec>,
    /// Synchronous query hooks this module answers (see [`crate::HostCalls::call_hook`]).
    pub hooks: Vec<HookSpec>,
    /// Contributes children of `<stream:features/>` ([`crate::ModuleCalls::stream_features`]).
    pub stream_features: bool,
    /// Top-level stream elements (nonzas) this module handles.
    pub stream_elements: Vec<ElementSpec>,
    /// IQ payload namespaces this module answers for authenticated sessions.
    pub iq_namespaces: Vec<String>,
    /// IQ payload namespaces this module answers before authentication, on a TLS stream
    /// (XEP-0077 registration); [`crate::ModuleCalls::iq`] then sees `stream.user == None`
    /// and a stanza with no `from`. Anything else before authentication closes the stream.
    pub pre_auth_iq_namespaces: Vec<String>,
    /// XEP-0030 features this module adds to the server's disco#info.
    pub disco_features: Vec<String>,
    /// SASL mechanisms this module implements, served to both SASL profiles.
    pub mechanisms: Vec<MechanismSpec>,
    /// HTTP routes (path prefixes) on the host's HTTPS server.
    pub http_routes: Vec<String>,
    /// Stanza hooks; the module is called with the index of the one that matched.
    pub stanza_hooks: Vec<crate::stanza::StanzaHook>,
    /// XEP-0030 identities this module adds to the server's disco#info.
    pub disco_identities: Vec<DiscoIdentity>,
}

/// One entry of a module's archive (a message archive, offline storage): what the module put in
/// with [`crate::HostCalls::archive_append`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveItem {
    /// The host-assigned id: unique, and in the order entries were appended (UUIDv7 form).
    pub id: String,
    /// The conversation partner the module filed it under (a bare JID, by convention).
    pub with: String,
    /// The time the module gave it, ms since the epoch.
    pub at_ms: u64,
    /// The module's bytes.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// Which entries of an account's archive to read ([`crate::HostCalls::archive_query`]). Every
/// condition that is set must hold; the page is in append order (newest first if `reverse`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveQuery {
    /// Only entries filed under this partner.
    pub with: Option<String>,
    /// Only entries at or after this time.
    pub start_ms: Option<u64>,
    /// Only entries at or before this time.
    pub end_ms: Option<u64>,
    /// Only entries appended after this id (an unknown id is `NOT_FOUND`).
    pub after_id: Option<String>,
    /// Only entries appended before this id (an unknown id is `NOT_FOUND`).
    pub before_id: Option<String>,
    /// Only these ids (empty: any).
    pub ids: Vec<String>,
    /// At most this many entries (the host caps it at 1000).
    pub limit: u32,
    /// From the newest end: the last `limit` entries that match, newest first.
    pub reverse: bool,
}

/// Bounds a bounded append must stay within ([`crate::HostCalls::archive_append_within`]),
/// counted over the account's whole archive, the new entry included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveBounds {
    /// Entries the archive may hold.
    pub max_entries: u64,
    /// Bytes of entry data the archive may hold.
    pub max_bytes: u64,
    /// The new entry's class: a label the module chooses (`""` for none), kept with the entry
    /// so that the entries of one class can be bounded apart.
    pub class: String,
    /// Entries of that class the archive may hold.
    pub max_in_class: u64,
}

impl ArchiveBounds {
    /// No bound at all (an entry put back where it came from).
    pub fn none(class: &str) -> Self {
        Self {
            max_entries: u64::MAX,
            max_bytes: u64::MAX,
            class: class.to_owned(),
            max_in_class: u64::MAX,
        }
    }

    /// The bound an entry of `new_bytes` would cross in an archive holding `entries` entries
    /// of `bytes` bytes, `in_class` of them in the entry's class; `None` if it fits. The
    /// order of the checks is the order of the answer's precedence: entries, bytes, class.
    pub fn crossed(
        &self,
        entries: u64,
        bytes: u64,
        in_class: u64,
        new_bytes: u64,
    ) -> Option<ArchiveBound> {
        if entries >= self.max_entries {
            Some(ArchiveBound::Entries)
        } else if bytes.saturating_add(new_bytes) > self.max_bytes {
            Some(ArchiveBound::Bytes)
        } else if in_class >= self.max_in_class {
            Some(ArchiveBound::Class)
        } else {
            None
        }
    }
}

/// Which bound a refused append would have crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ArchiveBound {
    /// [`ArchiveBounds::max_entries`].
    Entries,
    /// [`ArchiveBounds::max_bytes`].
    Bytes,
    /// [`ArchiveBounds::max_in_class`].
    Class,
}

/// What a bounded append did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArchiveAppend {
    /// Appended under this id.
    Appended(String),
    /// Not appended: the entry would cross this bound.
    Full(ArchiveBound),
}

/// A page of an archive.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivePage {
    /// The entries.
    pub items: Vec<ArchiveItem>,
    /// Whether no further entry matches beyond this page (in the direction read).
    pub complete: bool,
}

/// A XEP-0030 identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoIdentity {
    /// E.g. `server`.
    pub category: String,
    /// E.g. `im`.
    pub kind: String,
    /// A human-readable name, if any.
    pub name: Option<String>,
}

/// What the server's disco#info lists: every loaded module's identities and features (and the
/// host's own), sorted and without duplicates ([`crate::HostCalls::disco_info`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoInfo {
    /// Identities.
    pub identities: Vec<DiscoIdentity>,
    /// Feature namespaces.
    pub features: Vec<String>,
}

/// A hooked event or query hook with its priority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookSpec {
    /// Event or hook name, lower-case and hyphenated (`user-password-changed`).
    pub name: String,
    /// Higher runs first; see [`crate::events::priority`].
    pub priority: i32,
}

impl HookSpec {
    /// The event or hook `name` at `priority`.
    pub fn new(name: &str, priority: i32) -> Self {
        Self {
            name: name.to_owned(),
            priority,
        }
    }
}

/// When a stream element is routed to a module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamPhase {
    /// Before authentication (after TLS when TLS is required).
    PreAuth,
    /// After authentication.
    Authenticated,
    /// Both.
    Any,
}

/// A top-level element (by name and namespace) routed to a module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementSpec {
    /// Local name, e.g. `authenticate`.
    pub name: String,
    /// Namespace, e.g. `urn:xmpp:sasl:2`.
    pub ns: String,
    /// When the element is accepted.
    pub phase: StreamPhase,
}

/// A SASL mechanism a module implements.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MechanismSpec {
    /// IANA name, e.g. `SCRAM-SHA-256-PLUS`.
    pub name: String,
    /// Higher is offered first.
    pub priority: i32,
    /// Offer and accept only on an encrypted stream.
    pub tls_only: bool,
    /// List it in SASL2 `<authentication>`.
    pub sasl2: bool,
    /// List it in the RFC 6120 `<mechanisms>`.
    pub legacy: bool,
    /// Needs this channel-binding type on the connection (`tls-exporter`, `tls-server-end-point`).
    pub channel_binding: Option<String>,
    /// Listed only inside a feature of its own (e.g. FAST's `<fast>`), never in the mechanism
    /// lists. (Every listed mechanism is part of XEP-0474's hash: a client hashes what it was
    /// offered.)
    pub hidden: bool,
}

impl MechanismSpec {
    /// Whether the mechanism is offered on `stream` under `profile`: TLS when it needs TLS;
    /// SASL2 lists visible and hidden SASL2 mechanisms (hidden ones only inside their own
    /// feature), RFC 6120 SASL visible legacy ones; and a channel-binding mechanism only where
    /// the connection has that binding. The host's one rule, shared with the test host.
    pub fn offered_on(&self, stream: &StreamInfo, profile: SaslProfile) -> bool {
        let listed = match profile {
            SaslProfile::Sasl2 => self.sasl2 || self.hidden,
            SaslProfile::Rfc6120 => self.legacy && !self.hidden,
        };
        (stream.secure || !self.tls_only)
            && listed
            && self
                .channel_binding
                .as_deref()
                .is_none_or(|cb| stream.channel_bindings.has(cb))
    }
}

impl ChannelBindings {
    /// Whether the connection has the binding type `name` (`tls-exporter`,
    /// `tls-server-end-point`; any other name: no).
    pub fn has(&self, name: &str) -> bool {
        match name {
            "tls-exporter" => self.tls_exporter.is_some(),
            "tls-server-end-point" => self.tls_server_end_point.is_some(),
            _ => false,
        }
    }
}

/// Channel-binding data the host computed for a TLS connection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelBindings {
    /// RFC 9266 `tls-exporter` (32 bytes), when the connection allows it.
    #[serde(with = "serde_bytes")]
    pub tls_exporter: Option<Vec<u8>>,
    /// RFC 5929 `tls-server-end-point`, when the certificate defines a hash.
    #[serde(with = "serde_bytes")]
    pub tls_server_end_point: Option<Vec<u8>>,
}

/// What a module may know about the stream a request concerns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// The host's connection id, unique for the server's lifetime.
    pub id: u64,
    /// The served domain.
    pub domain: String,
    /// Whether TLS is established.
    pub secure: bool,
    /// Whether the connection began with TLS (XEP-0368).
    pub direct_tls: bool,
    /// `TLSv1.3` or `TLSv1.2`.
    pub tls_version: Option<String>,
    /// Channel-binding data of this connection.
    pub channel_bindings: ChannelBindings,
    /// The stream header's `from`, if any.
    pub from: Option<String>,
    /// The client's IP address.
    pub peer_ip: String,
    /// The authenticated account (localpart), once authenticated.
    pub user: Option<String>,
    /// The bound full JID, once bound.
    pub jid: Option<String>,
    /// What the store says of the account the header's `from` names (`None`: no `from` of
    /// this domain). Pre-auth features may depend on it (see
    /// [`crate::Module::stream_features`]).
    pub named_account: Option<NamedAccount>,
}

/// The account a stream header's `from` names, as far as pre-auth features may know it: the
/// SCRAM verifiers it has. A name with no account reports what an account whose password was
/// set today has, so the features never tell whether a name exists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NamedAccount {
    /// Hashes of the SCRAM verifiers kept for it.
    pub scram_hashes: Vec<ScramHash>,
}

/// What the host does with a stream after a module handled one of its elements, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamAction {
    /// Write these bytes (serialised XML) to the stream.
    Send {
        /// The XML text.
        xml: String,
    },
    /// The stream is authenticated as this account (localpart).
    Authenticated {
        /// Account localpart.
        user: String,
        /// The SASL2 user-agent id, if any (used for session correlation).
        user_agent_id: Option<String>,
    },
    /// Bind this resource to the authenticated stream; an existing session with the same full
    /// JID is replaced (it gets `<conflict/>`).
    Bind {
        /// The resource part.
        resource: String,
    },
    /// Send the post-authentication `<stream:features/>` now (SASL2: no stream restart).
    SendFeatures,
    /// The client will restart the stream (RFC 6120 SASL success).
    ExpectRestart,
    /// Move a detached (or still connected) session of the same account onto this
    /// authenticated, not yet bound stream (XEP-0198 resumption): the stream takes over the
    /// session's full JID, presence, module state, `SessionOut` attachments, acknowledgement
    /// queue ([`crate::acks`]) and the stanzas queued for it, and the old session ends without
    /// `session-closed` (a connection still serving it is closed with `<conflict/>`). It then
    /// writes, in the action's place: the unacknowledged stanzas of the host's queue (after
    /// releasing the `acked` the client reported), then `replay` (stanzas a module kept
    /// itself; no `SessionOut` hooks), then what queued meanwhile. The host fires
    /// `session-resumed`. A session that is gone, of another account, a stream that is
    /// already bound, or an `acked` beyond what was written closes this stream with
    /// `<policy-violation/>`: check with [`crate::HostCalls::account_sessions`] and
    /// [`crate::HostCalls::acks_status`] first and answer the client's failure yourself.
    Resume {
        /// The session to take over (its stream id).
        session: u64,
        /// Stanzas a module kept for it, written after the host's unacknowledged ones.
        replay: Vec<Element>,
        /// The client's `h` (`<resume h/>`), for the host's acknowledgement queue.
        acked: Option<u32>,
    },
    /// Close the stream with this RFC 6120 stream error condition.
    Close {
        /// E.g. [`StreamCondition::PolicyViolation`].
        condition: StreamCondition,
        /// Optional text for the peer.
        text: Option<String>,
    },
}

/// A stream element routed to a module ([`crate::ModuleCalls::stream_element`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamElement {
    /// The stream it arrived on.
    pub stream: StreamInfo,
    /// The element.
    pub element: Element,
}

/// An IQ routed to a module ([`crate::ModuleCalls::iq`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IqRequest {
    /// The stream it arrived on.
    pub stream: StreamInfo,
    /// The whole `<iq/>` stanza.
    pub stanza: Element,
}

/// The two ways SASL runs on an XMPP stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SaslProfile {
    /// XEP-0388 Extensible SASL Profile (`urn:xmpp:sasl:2`).
    Sasl2,
    /// RFC 6120 §6 SASL (`urn:ietf:params:xml:ns:xmpp-sasl`).
    Rfc6120,
}

impl SaslProfile {
    /// The profile's namespace.
    pub const fn ns(self) -> &'static str {
        match self {
            SaslProfile::Sasl2 => "urn:xmpp:sasl:2",
            SaslProfile::Rfc6120 => "urn:ietf:params:xml:ns:xmpp-sasl",
        }
    }
}

/// The start of a SASL exchange routed to the module that implements the mechanism.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MechanismStart {
    /// Host-assigned exchange id; later steps carry it.
    pub exchange: u64,
    /// The mechanism name.
    pub mechanism: String,
    /// The stream.
    pub stream: StreamInfo,
    /// SASL2 or RFC 6120 SASL.
    pub profile: SaslProfile,
    /// The decoded initial response, if the client sent one.
    #[serde(with = "serde_bytes")]
    pub initial_response: Option<Vec<u8>>,
    /// The SASL2 user-agent id, if any.
    pub user_agent_id: Option<String>,
    /// The whole SASL2 `<authenticate/>` (for mechanisms that read inline children), if SASL2.
    pub authenticate: Option<Element>,
}

/// A further client response in an exchange.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MechanismResponse {
    /// The exchange id from [`MechanismStart`].
    pub exchange: u64,
    /// The decoded response.
    #[serde(with = "serde_bytes")]
    pub response: Vec<u8>,
}

/// One step of a SASL exchange, as the mechanism decides it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MechanismStep {
    /// Send a challenge and wait for a response.
    Challenge {
        /// Raw challenge bytes (the profile encodes them).
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Authenticated.
    Success {
        /// The account localpart.
        user: String,
        /// Final server data (SCRAM `v=`, HT responder HMAC).
        #[serde(with = "serde_bytes")]
        additional_data: Option<Vec<u8>>,
    },
    /// Failed.
    Failure {
        /// RFC 6120 §6.5 condition.
        condition: SaslCondition,
        /// Optional human-readable text.
        text: Option<String>,
        /// The account the attempt named, if any (for rate limits and events).
        user: Option<String>,
        /// An application-specific element for the `<failure/>`.
        application: Option<Element>,
    },
}

/// A request from the host to an HTTP route of a module.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without query.
    pub path: String,
    /// The raw query string (no `?`).
    pub query: String,
    /// Request headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The body (bounded by the host).
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
    /// The client's IP address.
    pub peer_ip: String,
}

/// A module's answer to an [`HttpRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// A timer the module set fired ([`crate::ModuleCalls::timer`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerFired {
    /// The id [`crate::HostCalls::set_timer`] returned.
    pub id: u64,
    /// The tag the module gave.
    pub tag: String,
}

/// Scope of a module's key-value entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvScope<'a> {
    /// Server-wide.
    Global,
    /// Belongs to an account (deleted with it): its canonical localpart.
    Account(&'a str),
}

/// One write of a batch ([`crate::HostCalls::kv_write`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvWrite {
    /// The key.
    pub key: String,
    /// Its new value, or `None` to delete it.
    pub value: Option<String>,
}

impl KvWrite {
    /// Set `key` to `value`.
    pub fn put(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: Some(value.into()),
        }
    }

    /// Delete `key`.
    pub fn delete(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: None,
        }
    }
}

/// SCRAM verifier for one hash, as stored by the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramSecret {
    /// The salt.
    #[serde(with = "serde_bytes")]
    pub salt: Vec<u8>,
    /// PBKDF2 iteration count (>= 4096).
    pub iterations: u32,
    /// H(ClientKey).
    #[serde(with = "serde_bytes")]
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    #[serde(with = "serde_bytes")]
    pub server_key: Vec<u8>,
}

/// A SCRAM hash function, as named in a mechanism (`SCRAM-SHA-512`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ScramHash {
    /// SHA-1 (RFC 5802).
    Sha1,
    /// SHA-256 (RFC 7677).
    Sha256,
    /// SHA-512.
    Sha512,
}

impl ScramHash {
    /// The digest length in bytes (also the length of a SaltedPassword).
    pub fn output_len(self) -> usize {
        match self {
            ScramHash::Sha1 => 20,
            ScramHash::Sha256 => 32,
            ScramHash::Sha512 => 64,
        }
    }

    /// The hash's part of a mechanism name (`SHA-512`).
    pub fn name(self) -> &'static str {
        match self {
            ScramHash::Sha1 => "SHA-1",
            ScramHash::Sha256 => "SHA-256",
            ScramHash::Sha512 => "SHA-512",
        }
    }
}

/// What a login proved, by the mechanism family that proved it (XEP-0494's "password or
/// token"): only a password login shows that the client knows the password.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CredentialKind {
    /// A password mechanism (`SCRAM-*`, `PLAIN`).
    Password,
    /// A token mechanism (FAST's `HT-*`).
    Token,
    /// Anything else (e.g. `PASSWORD-RESET`, which proves a link, not a password).
    Other,
}

impl CredentialKind {
    /// The family of an IANA mechanism name.
    pub fn of(mechanism: &str) -> CredentialKind {
        if mechanism.starts_with("SCRAM-") || mechanism == "PLAIN" {
            CredentialKind::Password
        } else if mechanism.starts_with("HT-") {
            CredentialKind::Token
        } else {
            CredentialKind::Other
        }
    }
}

/// A verifier a client helped derive during its login (XEP-0480 SCRAM upgrade task): the
/// SaltedPassword it computed over the salt and iteration count the module sent. The host
/// derives StoredKey and ServerKey from it (host call `add_scram_verifier`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramUpgrade {
    /// The hash of the new verifier.
    pub hash: ScramHash,
    /// The salt the module sent (at least 16 bytes).
    #[serde(with = "serde_bytes")]
    pub salt: Vec<u8>,
    /// The iteration count the module sent (4096 to 10,000,000).
    pub iterations: u32,
    /// `Hi(password, salt, iterations)` as the client computed it ([`ScramHash::output_len`] bytes).
    #[serde(with = "serde_bytes")]
    pub salted_password: Vec<u8>,
}

impl std::fmt::Debug for ScramUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The SaltedPassword logs in as the account: never printed.
        f.debug_struct("ScramUpgrade")
            .field("hash", &self.hash)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// The answer of host call `add_scram_verifier`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerifierAdded {
    /// Stored: the account now has a verifier of that hash.
    Stored,
    /// The account already had one; nothing was changed (a verifier is never replaced this way).
    AlreadyPresent,
    /// Nothing stored, for this reason.
    Refused(UpgradeRefusal),
}

/// Why the host refused an upgrade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpgradeRefusal {
    /// The stream has no login the host verified with a password mechanism (a token or a reset
    /// link does not show the password; no login, or a finished one, shows nothing).
    NotPasswordVerified,
    /// The account was deleted, or its password changed after the login began: the client's
    /// SaltedPassword may be of the old password.
    Stale,
    /// The SaltedPassword, salt or iteration count is unusable (the text says which).
    Malformed(String),
}

/// An account's stored credentials. Never the password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountCredentials {
    /// SCRAM-SHA-1 verifier.
    pub scram_sha1: ScramSecret,
    /// SCRAM-SHA-256 verifier.
    pub scram_sha256: ScramSecret,
    /// When the password was last set (ms since the epoch).
    pub password_changed_at_ms: u64,
    /// SCRAM-SHA-512 verifier: kept for every password set since it existed; `None` for an
    /// older account until its password changes (or a XEP-0480 upgrade).
    pub scram_sha512: Option<ScramSecret>,
}

/// A connected, authenticated session as the host lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Connection id.
    pub stream_id: u64,
    /// Bound full JID, or the bare JID before binding.
    pub jid: String,
    /// SASL2 user-agent id, if any.
    pub user_agent_id: Option<String>,
    /// Client IP.
    pub peer_ip: String,
}

/// An outgoing mail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// Facts about the running server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// The served domain.
    pub domain: String,
    /// The host's version.
    pub version: String,
    /// Public base URL of the HTTP server, if configured.
    pub public_url: Option<String>,
    /// PBKDF2 iterations of new SCRAM verifiers (`scram_iteration_count`): what a mechanism
    /// shows for an unknown account, so that it looks like a new one.
    pub scram_iterations: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, cb: Option<&str>) -> MechanismSpec {
        MechanismSpec {
            name: name.into(),
            priority: 0,
            tls_only: true,
            sasl2: true,
            legacy: true,
            channel_binding: cb.map(str::to_owned),
            hidden: false,
        }
    }

    #[test]
    fn mechanisms_are_offered_by_transport_profile_and_channel_binding() {
        let mut stream = StreamInfo {
            secure: true,
            ..StreamInfo::default()
        };
        let plus = spec("SCRAM-SHA-256-PLUS", Some("tls-exporter"));
        assert!(
            !plus.offered_on(&stream, SaslProfile::Sasl2),
            "no binding yet"
        );
        stream.channel_bindings.tls_exporter = Some(vec![1; 32]);
        assert!(plus.offered_on(&stream, SaslProfile::Sasl2));
        assert!(!spec("X", Some("tls-unique")).offered_on(&stream, SaslProfile::Sasl2));
        let hidden = MechanismSpec {
            hidden: true,
            sasl2: false,
            ..spec("HT-SHA-256-NONE", None)
        };
        assert!(hidden.offered_on(&stream, SaslProfile::Sasl2));
        assert!(!hidden.offered_on(&stream, SaslProfile::Rfc6120));
        stream.secure = false;
        assert!(!spec("PLAIN", None).offered_on(&stream, SaslProfile::Rfc6120));
    }
}
