//! The typed messages carried across the ABI as JSON: what a module declares (manifest,
//! registrations), what the host asks of it (requests) and what it asks of the host.
//!
//! Evolution rule: new request kinds and new optional fields (`#[serde(default)]`) are minor,
//! additive changes. A receiver answers an unknown request kind with
//! [`crate::PluginErrorKind::UNSUPPORTED`] and ignores unknown fields.

use serde::{Deserialize, Serialize};

use crate::xml::Element;

/// Static description of a module: readable before instantiation, so that the host can validate
/// the whole config file (every module's options) before starting anything.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// One-line description for `tessera module list`.
    #[serde(default)]
    pub description: String,
    /// Options this module reads from the top level of the config file. By convention their
    /// names start with the module name (`sasl2_fast_token_ttl`).
    #[serde(default)]
    pub options: Vec<OptionSpec>,
    /// Modules that must be loaded for this one to work (e.g. `sasl2` for `sasl2_fast`).
    #[serde(default)]
    pub depends: Vec<String>,
    /// Host configuration keys that must be set for this module (e.g. `http.public_url`), so
    /// that `check-config` refuses a config the module could not start with.
    #[serde(default)]
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
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// Whether the key must be present.
    #[serde(default)]
    pub required: bool,
    /// A short description for error messages and docs.
    #[serde(default)]
    pub doc: String,
}

impl OptionSpec {
    /// An optional integer option within `min..=max` with a default.
    pub fn integer(name: &str, min: i64, max: i64, default: i64, doc: &str) -> Self {
        Self {
            name: name.into(),
            kind: OptionKind::Integer { min, max },
            default: Some(serde_json::Value::from(default)),
            required: false,
            doc: doc.into(),
        }
    }

    /// An optional boolean option with a default.
    pub fn boolean(name: &str, default: bool, doc: &str) -> Self {
        Self {
            name: name.into(),
            kind: OptionKind::Bool,
            default: Some(serde_json::Value::Bool(default)),
            required: false,
            doc: doc.into(),
        }
    }
}

/// The type of an option's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
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
    #[serde(default)]
    pub events: Vec<HookSpec>,
    /// Synchronous query hooks this module answers (see [`HostRequest::CallHook`]).
    #[serde(default)]
    pub hooks: Vec<HookSpec>,
    /// Contributes children of `<stream:features/>` ([`Request::StreamFeatures`]).
    #[serde(default)]
    pub stream_features: bool,
    /// Top-level stream elements (nonzas) this module handles.
    #[serde(default)]
    pub stream_elements: Vec<ElementSpec>,
    /// IQ payload namespaces this module answers for authenticated sessions.
    #[serde(default)]
    pub iq_namespaces: Vec<String>,
    /// XEP-0030 features this module adds to the server's disco#info.
    #[serde(default)]
    pub disco_features: Vec<String>,
    /// SASL mechanisms this module implements, served to both SASL profiles.
    #[serde(default)]
    pub mechanisms: Vec<MechanismSpec>,
    /// HTTP routes (path prefixes) on the host's HTTPS server.
    #[serde(default)]
    pub http_routes: Vec<String>,
}

/// A hooked event or query hook with its priority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookSpec {
    /// Event or hook name, lower-case and hyphenated (`user-password-changed`).
    pub name: String,
    /// Higher runs first; see [`crate::events::priority`].
    #[serde(default)]
    pub priority: i32,
}

/// When a stream element is routed to a module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
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
    #[serde(default)]
    pub priority: i32,
    /// Offer and accept only on an encrypted stream.
    #[serde(default = "yes")]
    pub tls_only: bool,
    /// List it in SASL2 `<authentication>`.
    #[serde(default = "yes")]
    pub sasl2: bool,
    /// List it in the RFC 6120 `<mechanisms>`.
    #[serde(default = "yes")]
    pub legacy: bool,
    /// Needs this channel-binding type on the connection (`tls-exporter`, `tls-server-end-point`).
    #[serde(default)]
    pub channel_binding: Option<String>,
    /// Listed only inside a feature of its own (e.g. FAST's `<fast>`), never in the mechanism lists.
    #[serde(default)]
    pub hidden: bool,
    /// Excluded from downgrade-protection hashes (XEP-0474) because it may come and go.
    #[serde(default)]
    pub volatile: bool,
}

fn yes() -> bool {
    true
}

/// Channel-binding data the host computed for a TLS connection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelBindings {
    /// RFC 9266 `tls-exporter` (32 bytes), when the connection allows it.
    #[serde(default, with = "crate::b64::opt")]
    pub tls_exporter: Option<Vec<u8>>,
    /// RFC 5929 `tls-server-end-point`, when the certificate defines a hash.
    #[serde(default, with = "crate::b64::opt")]
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
    #[serde(default)]
    pub direct_tls: bool,
    /// `TLSv1.3` or `TLSv1.2`.
    #[serde(default)]
    pub tls_version: Option<String>,
    /// Channel-binding data of this connection.
    #[serde(default)]
    pub channel_bindings: ChannelBindings,
    /// The stream header's `from`, if any.
    #[serde(default)]
    pub from: Option<String>,
    /// The client's IP address.
    #[serde(default)]
    pub peer_ip: String,
    /// The authenticated account (localpart), once authenticated.
    #[serde(default)]
    pub user: Option<String>,
    /// The bound full JID, once bound.
    #[serde(default)]
    pub jid: Option<String>,
}

/// What the host does with a stream after a module handled one of its elements, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
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
        #[serde(default)]
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
    /// Close the stream with this RFC 6120 stream error condition.
    Close {
        /// E.g. `policy-violation`.
        condition: String,
        /// Optional text for the peer.
        #[serde(default)]
        text: Option<String>,
    },
}

/// A stream element routed to a module ([`Request::StreamElement`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamElement {
    /// The stream it arrived on.
    pub stream: StreamInfo,
    /// The element.
    pub element: Element,
}

/// An IQ routed to a module ([`Request::Iq`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IqRequest {
    /// The stream it arrived on.
    pub stream: StreamInfo,
    /// The whole `<iq/>` stanza.
    pub stanza: Element,
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
    /// `urn:xmpp:sasl:2` or `urn:ietf:params:xml:ns:xmpp-sasl`.
    pub profile: String,
    /// The decoded initial response, if the client sent one.
    #[serde(default, with = "crate::b64::opt")]
    pub initial_response: Option<Vec<u8>>,
    /// The SASL2 user-agent id, if any.
    #[serde(default)]
    pub user_agent_id: Option<String>,
    /// The whole SASL2 `<authenticate/>` (for mechanisms that read inline children), if SASL2.
    #[serde(default)]
    pub authenticate: Option<Element>,
}

/// A further client response in an exchange.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MechanismResponse {
    /// The exchange id from [`MechanismStart`].
    pub exchange: u64,
    /// The decoded response.
    #[serde(with = "crate::b64")]
    pub response: Vec<u8>,
}

/// One step of a SASL exchange, as the mechanism decides it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum MechanismStep {
    /// Send a challenge and wait for a response.
    Challenge {
        /// Raw challenge bytes (the profile encodes them).
        #[serde(with = "crate::b64")]
        data: Vec<u8>,
    },
    /// Authenticated.
    Success {
        /// The account localpart.
        user: String,
        /// Final server data (SCRAM `v=`, HT responder HMAC).
        #[serde(default, with = "crate::b64::opt")]
        additional_data: Option<Vec<u8>>,
    },
    /// Failed.
    Failure {
        /// RFC 6120 §6.5 condition, e.g. `not-authorized`.
        condition: String,
        /// Optional human-readable text.
        #[serde(default)]
        text: Option<String>,
        /// The account the attempt named, if any (for rate limits and events).
        #[serde(default)]
        user: Option<String>,
        /// An application-specific element for the `<failure/>`.
        #[serde(default)]
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
    #[serde(default)]
    pub query: String,
    /// Request headers (lower-case names).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body (bounded by the host).
    #[serde(default, with = "crate::b64")]
    pub body: Vec<u8>,
    /// The client's IP address.
    #[serde(default)]
    pub peer_ip: String,
}

/// A module's answer to an [`HttpRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body.
    #[serde(default, with = "crate::b64")]
    pub body: Vec<u8>,
}

/// A synchronous query hook call ([`Request::Hook`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HookCall {
    /// Hook name.
    pub name: String,
    /// Hook-specific payload.
    pub payload: serde_json::Value,
}

/// A timer the module set fired ([`Request::Timer`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerFired {
    /// The id [`HostRequest::SetTimer`] returned.
    pub id: u64,
    /// The tag the module gave.
    pub tag: String,
}

/// Requests from the host to a module; the SDK dispatches them to [`crate::Module`] methods.
/// On the wire the variant name (kebab-case) is the request kind and the content its payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "kebab-case")]
pub enum Request {
    /// Children for `<stream:features/>`; answer `Vec<Element>`.
    StreamFeatures(StreamInfo),
    /// A routed stream element; answer `Vec<StreamAction>`.
    StreamElement(StreamElement),
    /// A routed IQ; answer `Option<Element>` (the reply stanza).
    Iq(IqRequest),
    /// Start a SASL exchange; answer [`MechanismStep`].
    MechanismStart(MechanismStart),
    /// Continue a SASL exchange; answer [`MechanismStep`].
    MechanismStep(MechanismResponse),
    /// The exchange ended (success, failure, abort or disconnect); answer `()`.
    MechanismEnd(u64),
    /// An HTTP request on a registered route; answer [`HttpResponse`].
    Http(HttpRequest),
    /// A synchronous query hook; answer `Option<serde_json::Value>`.
    Hook(HookCall),
    /// A timer fired; answer `()`.
    Timer(TimerFired),
}

impl Request {
    /// The kind string this request travels under.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::StreamFeatures(_) => "stream-features",
            Request::StreamElement(_) => "stream-element",
            Request::Iq(_) => "iq",
            Request::MechanismStart(_) => "mechanism-start",
            Request::MechanismStep(_) => "mechanism-step",
            Request::MechanismEnd(_) => "mechanism-end",
            Request::Http(_) => "http",
            Request::Hook(_) => "hook",
            Request::Timer(_) => "timer",
        }
    }
}

/// Scope of a module's key-value entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "scope", content = "user", rename_all = "kebab-case")]
pub enum KvScope {
    /// Server-wide.
    Global,
    /// Belongs to an account (deleted with it).
    Account(String),
}

/// SCRAM verifier for one hash, as stored by the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramSecret {
    /// The salt.
    #[serde(with = "crate::b64")]
    pub salt: Vec<u8>,
    /// PBKDF2 iteration count (>= 4096).
    pub iterations: u32,
    /// H(ClientKey).
    #[serde(with = "crate::b64")]
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    #[serde(with = "crate::b64")]
    pub server_key: Vec<u8>,
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
}

/// A connected, authenticated session as the host lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Connection id.
    pub stream_id: u64,
    /// Bound full JID, or the bare JID before binding.
    pub jid: String,
    /// SASL2 user-agent id, if any.
    #[serde(default)]
    pub user_agent_id: Option<String>,
    /// Client IP.
    #[serde(default)]
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

/// Requests from a module to the host. The SDK's [`crate::Host`] wraps each in a typed method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "kebab-case")]
pub enum HostRequest {
    /// Server facts: answer [`HostInfo`].
    HostInfo,
    /// Does the account exist? Answer `bool`.
    UserExists {
        /// Localpart.
        user: String,
    },
    /// The account's SCRAM verifiers; answer `Option<AccountCredentials>`.
    GetCredentials {
        /// Localpart.
        user: String,
    },
    /// Set a password: the one way a password changes. Fires `user-password-changed`.
    SetPassword {
        /// Localpart.
        user: String,
        /// The new password (never logged).
        password: String,
        /// The stream that made the change, spared from `<reset/>`.
        #[serde(default)]
        origin_stream: Option<u64>,
    },
    /// The account's stored email; answer `Option<String>`.
    GetEmail {
        /// Localpart.
        user: String,
    },
    /// Read a key of this module's store; answer `Option<String>`.
    KvGet {
        /// Scope.
        scope: KvScope,
        /// Key.
        key: String,
    },
    /// Write a key; answer `()`.
    KvPut {
        /// Scope.
        scope: KvScope,
        /// Key.
        key: String,
        /// Value.
        value: String,
    },
    /// Delete a key; answer `bool` (whether it existed).
    KvDelete {
        /// Scope.
        scope: KvScope,
        /// Key.
        key: String,
    },
    /// List keys with a prefix; answer `Vec<(String, String)>`.
    KvList {
        /// Scope.
        scope: KvScope,
        /// Key prefix.
        prefix: String,
    },
    /// An account's sessions; answer `Vec<SessionInfo>`.
    ListSessions {
        /// Localpart.
        user: String,
    },
    /// Close an account's sessions with a stream error; answer the number closed.
    CloseSessions {
        /// Localpart.
        user: String,
        /// Stream error condition.
        condition: String,
        /// Spare this stream.
        #[serde(default)]
        except_stream: Option<u64>,
    },
    /// Send a mail through the host's transport; answer an operation id. The result arrives as
    /// the `mail-result` event.
    SendMail(Mail),
    /// Call this module back with [`Request::Timer`] after a delay; answer the timer id.
    SetTimer {
        /// Delay in milliseconds.
        delay_ms: u64,
        /// A tag passed back.
        tag: String,
    },
    /// Call a synchronous query hook on every module that registered it, in priority order;
    /// answer `Vec<serde_json::Value>` (the non-null replies).
    CallHook(HookCall),
    /// The mechanisms available on a stream, in offer order; answer `Vec<MechanismSpec>`.
    Mechanisms {
        /// The stream.
        stream: StreamInfo,
        /// `urn:xmpp:sasl:2` or `urn:ietf:params:xml:ns:xmpp-sasl`.
        profile: String,
    },
    /// Start an exchange with whichever module implements the mechanism; answer [`MechanismStep`].
    MechanismStart(MechanismStart),
    /// Continue an exchange; answer [`MechanismStep`].
    MechanismStep(MechanismResponse),
    /// End an exchange; answer `()`.
    MechanismEnd(u64),
    /// A 32-byte key derived from the server secret (kept outside the store) for this label;
    /// answer `Vec<u8>`.
    DeriveSecret {
        /// Purpose label, e.g. `fast-token`.
        label: String,
    },
}

/// Facts about the running server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// The served domain.
    pub domain: String,
    /// The host's version.
    pub version: String,
    /// Public base URL of the HTTP server, if configured.
    #[serde(default)]
    pub public_url: Option<String>,
}
