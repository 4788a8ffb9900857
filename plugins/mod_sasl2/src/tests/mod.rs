//! Integration tests of the whole module on the SDK's in-memory host
//! ([`tessera_plugin_api::testing::TestHost`]): the real module loaded with its options, its
//! mechanisms listed and routed back into it by the host's rule, another module's hidden
//! mechanisms from a small test module, hooks answered by closures, and real SCRAM/PLAIN
//! clients on the other side.

mod bad_input;
mod flows;
mod limits;
mod tasks;
mod upgrade;
mod violations;

use std::sync::Arc;

use tessera_plugin_api::events::{self, AuthenticationOutcome, SessionEvent};
use tessera_plugin_api::protocol::{
    ChannelBindings, Manifest, MechanismSpec, MechanismStart, MechanismStep, OptionValue,
    Registrations, SaslProfile, ScramSecret, StreamAction, StreamElement, StreamInfo,
};
use tessera_plugin_api::testing::{Loaded, TestHost};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{wire, Config, Host, Module, ModuleCalls, PluginError};
use tessera_plugin_api::{SaslCondition, StreamCondition};
use tessera_sasl::scram::derive_credentials;
use tessera_sasl::{decode_base64_lenient, encode_base64, Hash};

use crate::config::Settings;
use crate::core::Core;
use crate::wire::{SASL2_NS, SASL_NS};
use crate::Sasl2Module;

/// The domain of every test stream.
const DOMAIN: &str = "example.org";
/// tls-exporter data of test streams.
const EXPORTER: [u8; 32] = [0xc7; 32];

/// mod_sasl2 loaded on a test host with account `alice` (password `pencil`), and optionally
/// another module providing hidden mechanisms.
pub(crate) struct Fake {
    /// The test host: accounts, clock, events, host calls made.
    pub(crate) host: Arc<TestHost>,
    sasl2: Loaded<Sasl2Module>,
    responder: Option<Loaded<Responder>>,
    hidden: Vec<String>,
}

impl std::fmt::Debug for Fake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fake").finish_non_exhaustive()
    }
}

fn secret(hash: Hash, password: &str) -> ScramSecret {
    let c = derive_credentials(hash, password, b"0123456789abcdef", 4096).unwrap_or_else(|e| {
        panic!("test credentials: {e}");
    });
    ScramSecret {
        salt: c.salt,
        iterations: c.iterations,
        stored_key: c.stored_key,
        server_key: c.server_key,
    }
}

/// The options that give `settings` (the module reads them as the server passes them).
fn config_of(settings: &Settings) -> Config {
    let int = |n: u64| OptionValue::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    let mut config = Config::default();
    config.set("sasl2_max_retries", int(settings.max_retries.into()));
    let per_user = settings.max_failures_per_user as u64;
    config.set("sasl2_max_failures_per_user", int(per_user));
    let per_ip = settings.max_failures_per_ip as u64;
    config.set("sasl2_max_failures_per_ip", int(per_ip));
    let after = settings.account_backoff_after as u64;
    config.set("sasl2_account_backoff_after", int(after));
    let backoff_max = settings.account_backoff_max_ms / 1000;
    config.set("sasl2_account_backoff_max", int(backoff_max));
    let window = settings.failure_window_ms / 1000;
    config.set("sasl2_failure_window", int(window));
    config
}

impl Fake {
    /// The module with default settings.
    pub(crate) fn new() -> Self {
        Self::with(Settings::default())
    }

    /// The module with `settings`.
    pub(crate) fn with(settings: Settings) -> Self {
        let host = TestHost::new(DOMAIN);
        host.set_verifiers(|pw| (secret(Hash::Sha1, pw), secret(Hash::Sha256, pw)));
        host.add_account("alice", "pencil", None);
        let sasl2 = host
            .load::<Sasl2Module>(config_of(&settings))
            .unwrap_or_else(|e| panic!("load: {e}"));
        assert_eq!(sasl2.module().core.settings(), &settings);
        Self {
            host,
            sasl2,
            responder: None,
            hidden: Vec::new(),
        }
    }

    /// Load (again) the module providing the hidden mechanisms.
    fn load_responder(mut self) -> Self {
        let mut config = Config::default();
        config.set("hidden", OptionValue::StringList(self.hidden.clone()));
        self.responder = Some(
            self.host
                .load::<Responder>(config)
                .unwrap_or_else(|e| panic!("load responder: {e}")),
        );
        self
    }

    /// Another module provides hidden SASL2 mechanism `name`.
    pub(crate) fn with_hidden(mut self, name: &str) -> Self {
        self.hidden.push(name.to_owned());
        self.load_responder()
    }

    /// Another module provides hidden SASL2 mechanism `name`, which needs a channel-binding
    /// type.
    pub(crate) fn with_hidden_bound(mut self, name: &str, channel_binding: &str) -> Self {
        self.hidden.push(format!("{name} {channel_binding}"));
        self.load_responder()
    }

    /// Another module answers query hook `name`: `f` gets the payload decoded as `P`, and its
    /// reply is encoded (a payload that is not a `P` gets no reply).
    pub(crate) fn hook<P, A>(
        self,
        name: &'static str,
        f: impl Fn(P) -> Option<A> + Send + 'static,
    ) -> Self
    where
        P: serde::de::DeserializeOwned,
        A: serde::Serialize,
    {
        self.host.on_hook(name, move |payload| {
            wire::decode::<P>(name, payload)
                .ok()
                .and_then(&f)
                .and_then(|a| wire::encode(&a).ok())
        });
        self
    }

    /// Another module answers query hook `name` with raw bytes (to send malformed replies).
    pub(crate) fn hook_raw(
        self,
        name: &'static str,
        f: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static,
    ) -> Self {
        self.host.on_hook(name, f);
        self
    }

    /// The module's state.
    pub(crate) fn core(&self) -> &Core {
        &self.sasl2.module().core
    }

    /// The module's host handle.
    pub(crate) fn module_host(&self) -> &Host {
        self.sasl2.host()
    }

    /// Feed an element to the module, as the server routes it.
    pub(crate) fn send(&self, stream: &StreamInfo, element: Element) -> Vec<StreamAction> {
        let request = StreamElement {
            stream: stream.clone(),
            element,
        };
        self.sasl2
            .instance
            .stream_element(request)
            .unwrap_or_else(|e| panic!("stream_element: {e}"))
    }

    /// The module's stream features for `stream`.
    pub(crate) fn features(&self, stream: &StreamInfo) -> Vec<Element> {
        self.sasl2
            .instance
            .stream_features(stream.clone())
            .unwrap_or_else(|e| panic!("stream_features: {e}"))
    }

    /// Start an exchange of one of the module's mechanisms, as the host does.
    pub(crate) fn mechanism_start(&self, start: MechanismStart) -> MechanismStep {
        self.sasl2
            .instance
            .mechanism_start(start)
            .unwrap_or_else(|e| panic!("mechanism_start: {e}"))
    }

    /// The host announces that stream `id` closed.
    pub(crate) fn session_closed(&self, id: u64) {
        let closed = SessionEvent {
            stream_id: id,
            jid: None,
            reason: Some("disconnected".into()),
        };
        self.sasl2
            .event(events::SESSION_CLOSED, &closed)
            .unwrap_or_else(|e| panic!("session-closed: {e}"));
    }

    /// A hot swap of the module: state saved, a new instance with the same options.
    pub(crate) fn reload(mut self) -> Self {
        self.sasl2 = self
            .sasl2
            .reload(None)
            .unwrap_or_else(|e| panic!("reload: {e}"));
        self
    }

    /// The outcome events fired, oldest first.
    pub(crate) fn outcome_events(&self) -> Vec<AuthenticationOutcome> {
        self.host
            .fired()
            .iter()
            .filter(|(n, _)| {
                n == events::AUTHENTICATION_SUCCESS || n == events::AUTHENTICATION_FAILURE
            })
            .filter_map(|(n, p)| wire::decode(n, p).ok())
            .collect()
    }

    /// Names of fired outcome events with their conditions.
    pub(crate) fn outcomes(&self) -> Vec<(String, Option<String>)> {
        self.outcome_events()
            .into_iter()
            .map(|o| {
                let name = if o.condition.is_some() {
                    events::AUTHENTICATION_FAILURE
                } else {
                    events::AUTHENTICATION_SUCCESS
                };
                (name.to_owned(), o.condition.map(|c| c.as_str().to_owned()))
            })
            .collect()
    }

    /// How many host calls mod_sasl2 has made (a mark for [`Fake::calls_since`]).
    pub(crate) fn mark(&self) -> usize {
        self.host.calls().len()
    }

    /// The host calls mod_sasl2 made since `mark`, by name.
    pub(crate) fn calls_since(&self, mark: usize) -> Vec<&'static str> {
        self.host
            .calls()
            .into_iter()
            .skip(mark)
            .filter(|(module, _)| module == Sasl2Module::NAME)
            .map(|(_, call)| call)
            .collect()
    }

    /// Whether the module started an exchange with the host since `mark`.
    pub(crate) fn started_since(&self, mark: usize) -> bool {
        self.calls_since(mark).contains(&"mechanism_start")
    }

    /// The mechanisms the other module was asked to start, in order.
    pub(crate) fn responder_starts(&self) -> Vec<String> {
        self.host
            .logs()
            .into_iter()
            .filter(|(module, _, _)| module == Responder::NAME)
            .filter_map(|(_, _, line)| line.strip_prefix("start ").map(str::to_owned))
            .collect()
    }

    /// Advance the clock.
    pub(crate) fn advance(&self, ms: u64) {
        self.host.advance(ms);
    }
}

/// Another module's one-step hidden mechanisms (option `hidden`: `NAME` or `NAME CB-TYPE`):
/// succeeds for the initial response "alice", with additional data "responder".
#[derive(Debug)]
struct Responder {
    mechanisms: Vec<MechanismSpec>,
}

impl Module for Responder {
    const NAME: &'static str = "responder";
    const VERSION: &'static str = "1.0.0";

    fn manifest() -> Manifest {
        Manifest::default()
    }

    fn init(_: &Host, config: &Config, _: Option<&[u8]>) -> Result<Self, PluginError> {
        let mechanisms = config
            .string_list("hidden")
            .unwrap_or_default()
            .iter()
            .map(|entry| {
                let mut parts = entry.split(' ');
                let name = parts.next().unwrap_or_default().to_owned();
                // `NAME listed`: a listed mechanism of SASL2 only; `NAME TYPE`: hidden, needing
                // that channel-binding type.
                let (listed, channel_binding) = match parts.next() {
                    Some("listed") => (true, None),
                    other => (false, other.map(str::to_owned)),
                };
                MechanismSpec {
                    name,
                    priority: 0,
                    tls_only: true,
                    sasl2: true,
                    legacy: false,
                    channel_binding,
                    hidden: !listed,
                }
            })
            .collect();
        Ok(Self { mechanisms })
    }

    fn registrations(&self) -> Registrations {
        Registrations {
            mechanisms: self.mechanisms.clone(),
            ..Registrations::default()
        }
    }

    fn mechanism_start(
        &self,
        host: &Host,
        start: MechanismStart,
    ) -> Result<MechanismStep, PluginError> {
        host.log(
            tessera_plugin_api::LogLevel::Info,
            &format!("start {}", start.mechanism),
        );
        Ok(match start.initial_response.as_deref() {
            Some(b"alice") => MechanismStep::Success {
                user: "alice".into(),
                additional_data: Some(b"responder".to_vec()),
            },
            _ => crate::mech::failure(SaslCondition::NotAuthorized, None, Some("alice")),
        })
    }
}

/// An encrypted stream; `exporter` adds tls-exporter channel-binding data.
pub(crate) fn stream(exporter: bool) -> StreamInfo {
    StreamInfo {
        id: 42,
        domain: DOMAIN.into(),
        secure: true,
        direct_tls: false,
        tls_version: Some("TLSv1.3".into()),
        channel_bindings: ChannelBindings {
            tls_exporter: exporter.then(|| EXPORTER.to_vec()),
            tls_server_end_point: None,
        },
        from: None,
        peer_ip: "192.0.2.10".into(),
        user: None,
        jid: None,
        named_account: None,
    }
}

/// `<authenticate mechanism=…>` with an optional initial response and extra children.
pub(crate) fn authenticate(mechanism: &str, ir: Option<&[u8]>, extra: Vec<Element>) -> Element {
    let mut el = Element::new("authenticate", SASL2_NS).with_attr("mechanism", mechanism);
    if let Some(ir) = ir {
        el.push_child(Element::new("initial-response", SASL2_NS).with_text(encode_base64(ir)));
    }
    for child in extra {
        el.push_child(child);
    }
    el
}

/// Legacy `<auth mechanism=…>`.
pub(crate) fn auth(mechanism: &str, ir: Option<&[u8]>) -> Element {
    let el = Element::new("auth", SASL_NS).with_attr("mechanism", mechanism);
    match ir {
        Some(ir) => el.with_text(encode_base64(ir)),
        None => el,
    }
}

/// `<response>` in a namespace.
pub(crate) fn response(ns: &str, data: &[u8]) -> Element {
    Element::new("response", ns).with_text(encode_base64(data))
}

/// The XML of every `Send` action.
pub(crate) fn sent(actions: &[StreamAction]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            StreamAction::Send { xml } => Some(xml.clone()),
            _ => None,
        })
        .collect()
}

/// The decoded text content of the first `<name>` in `xml`.
pub(crate) fn payload_of(xml: &str, name: &str) -> Vec<u8> {
    let open = xml
        .find(&format!("<{name}"))
        .and_then(|i| xml.get(i..))
        .and_then(|rest| rest.find('>').map(|j| (rest, j)));
    let Some((rest, j)) = open else {
        panic!("no <{name}> in {xml}");
    };
    let body = rest.get(j + 1..).unwrap_or_default();
    let end = body.find('<').unwrap_or(body.len());
    decode_base64_lenient(body.get(..end).unwrap_or_default())
        .unwrap_or_else(|e| panic!("bad base64 in {xml}: {e}"))
}

/// The single `Send` of a one-action answer.
pub(crate) fn only_send(actions: &[StreamAction]) -> String {
    match actions {
        [StreamAction::Send { xml }] => xml.clone(),
        other => panic!("expected one Send, got {other:?}"),
    }
}

/// The exact SASL2 failure XML for a condition (and text).
pub(crate) fn sasl2_failure(condition: &str, text: Option<&str>) -> String {
    let text = text
        .map(|t| format!("<text xml:lang='en'>{t}</text>"))
        .unwrap_or_default();
    format!(
        "<failure xmlns='urn:xmpp:sasl:2'><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>{text}</failure>"
    )
}

/// The exact legacy failure XML for a condition.
pub(crate) fn legacy_failure(condition: &str, text: Option<&str>) -> String {
    let text = text
        .map(|t| format!("<text xml:lang='en'>{t}</text>"))
        .unwrap_or_default();
    format!("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><{condition}/>{text}</failure>")
}

/// `Close{policy-violation}`?
pub(crate) fn is_policy_close(action: Option<&StreamAction>) -> bool {
    matches!(action, Some(StreamAction::Close { condition, .. }) if *condition == StreamCondition::PolicyViolation)
}
