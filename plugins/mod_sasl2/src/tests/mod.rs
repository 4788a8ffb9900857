//! Integration tests of the module without a host: a fake [`Services`] that behaves like the
//! host's registry (mechanism lists, routing of this module's mechanisms back into it, hooks,
//! credentials, events), driven with real SCRAM/PLAIN clients.

mod bad_input;
mod flows;
mod limits;
mod tasks;
mod violations;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use tessera_plugin_api::{SaslCondition, StreamCondition};

use tessera_plugin_api::events::AuthenticationOutcome;
use tessera_plugin_api::protocol::{
    AccountCredentials, ChannelBindings, MechanismResponse, MechanismSpec, MechanismStart,
    MechanismStep, SaslProfile, ScramSecret, StreamAction, StreamElement, StreamInfo,
};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{wire, LogLevel, PluginError};
use tessera_sasl::scram::{derive_credentials, ScramCredentials};
use tessera_sasl::{decode_base64_lenient, encode_base64, Hash};

use crate::config::{mechanism_specs, Settings};
use crate::core::{Core, Keys};
use crate::mech::Kind;
use crate::services::Services;
use crate::wire::{SASL2_NS, SASL_NS};

/// The domain of every test stream.
const DOMAIN: &str = "example.org";
/// tls-exporter data of test streams.
const EXPORTER: [u8; 32] = [0xc7; 32];

/// A query hook answering from the encoded payload with encoded replies.
type HookFn = Box<dyn Fn(&[u8]) -> Vec<Vec<u8>>>;

/// The fake host.
pub(crate) struct Fake<'a> {
    core: &'a Core,
    accounts: HashMap<String, AccountCredentials>,
    now: Cell<u64>,
    counter: Cell<u8>,
    extra: Vec<MechanismSpec>,
    hooks: HashMap<&'static str, HookFn>,
    store_down: Cell<bool>,
    /// Every call: `start NAME`, `step`, `end ID`, `hook NAME`.
    calls: RefCell<Vec<String>>,
    /// Fired events.
    events: RefCell<Vec<(String, AuthenticationOutcome)>>,
    /// Payloads of hook calls, by name.
    hook_payloads: RefCell<Vec<(String, Vec<u8>)>>,
}

impl std::fmt::Debug for Fake<'_> {
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

/// A core with test keys and the given settings.
pub(crate) fn core_with(settings: Settings) -> Core {
    Core::new(
        settings,
        Keys {
            fake: vec![0x11; 32],
            bind2: vec![0x22; 32],
        },
    )
}

/// A core with default settings.
pub(crate) fn core() -> Core {
    core_with(Settings::default())
}

impl<'a> Fake<'a> {
    /// Account `alice` with password `pencil`.
    pub(crate) fn new(core: &'a Core) -> Self {
        let mut accounts = HashMap::new();
        accounts.insert(
            "alice".to_owned(),
            AccountCredentials {
                scram_sha1: secret(Hash::Sha1, "pencil"),
                scram_sha256: secret(Hash::Sha256, "pencil"),
                password_changed_at_ms: 0,
            },
        );
        Self {
            core,
            accounts,
            now: Cell::new(1_000_000),
            counter: Cell::new(0),
            extra: Vec::new(),
            hooks: HashMap::new(),
            store_down: Cell::new(false),
            calls: RefCell::new(Vec::new()),
            events: RefCell::new(Vec::new()),
            hook_payloads: RefCell::new(Vec::new()),
        }
    }

    /// Register a hook answer: `f` gets the payload decoded as `P`, and its replies are
    /// encoded (a payload that is not a `P` gets no reply).
    pub(crate) fn hook<P, A>(
        mut self,
        name: &'static str,
        f: impl Fn(P) -> Vec<A> + 'static,
    ) -> Self
    where
        P: serde::de::DeserializeOwned,
        A: serde::Serialize,
    {
        self.hooks.insert(
            name,
            Box::new(move |payload: &[u8]| {
                wire::decode::<P>(name, payload)
                    .map(|p| f(p).iter().filter_map(|a| wire::encode(a).ok()).collect())
                    .unwrap_or_default()
            }),
        );
        self
    }

    /// Register a hook answering raw bytes (to send malformed replies).
    pub(crate) fn hook_raw(
        mut self,
        name: &'static str,
        f: impl Fn(&[u8]) -> Vec<Vec<u8>> + 'static,
    ) -> Self {
        self.hooks.insert(name, Box::new(f));
        self
    }

    /// Register another module's hidden SASL2 mechanism.
    pub(crate) fn with_hidden(mut self, name: &str) -> Self {
        self.extra.push(MechanismSpec {
            name: name.into(),
            priority: 0,
            tls_only: true,
            sasl2: true,
            legacy: false,
            channel_binding: None,
            hidden: true,
            volatile: true,
        });
        self
    }

    /// Register another module's hidden SASL2 mechanism that needs a channel-binding type.
    pub(crate) fn with_hidden_bound(mut self, name: &str, channel_binding: &str) -> Self {
        self = self.with_hidden(name);
        if let Some(spec) = self.extra.last_mut() {
            spec.channel_binding = Some(channel_binding.to_owned());
        }
        self
    }

    /// Feed an element to the module.
    pub(crate) fn send(&self, stream: &StreamInfo, element: Element) -> Vec<StreamAction> {
        let request = StreamElement {
            stream: stream.clone(),
            element,
        };
        self.core.element(self, &request)
    }

    /// Names of fired events with their conditions.
    pub(crate) fn outcomes(&self) -> Vec<(String, Option<String>)> {
        self.events
            .borrow()
            .iter()
            .map(|(n, o)| (n.clone(), o.condition.map(|c| c.as_str().to_owned())))
            .collect()
    }

    /// Advance the clock.
    pub(crate) fn advance(&self, ms: u64) {
        self.now.set(self.now.get() + ms);
    }
}

impl Services for Fake<'_> {
    fn now_ms(&self) -> u64 {
        self.now.get()
    }

    fn random_bytes(&self, n: usize) -> Vec<u8> {
        let c = self.counter.get().wrapping_add(1);
        self.counter.set(c);
        vec![c; n]
    }

    fn mechanisms(
        &self,
        stream: &StreamInfo,
        profile: SaslProfile,
    ) -> Result<Vec<MechanismSpec>, PluginError> {
        // The host's own rule (`MechanismSpec::offered_on`) and order (priority, then load
        // order: this module first).
        let mut list: Vec<MechanismSpec> = mechanism_specs()
            .into_iter()
            .chain(self.extra.iter().cloned())
            .filter(|m| m.offered_on(stream, profile))
            .collect();
        list.sort_by_key(|m| std::cmp::Reverse(m.priority));
        Ok(list)
    }

    fn mechanism_start(&self, start: MechanismStart) -> Result<MechanismStep, PluginError> {
        self.calls
            .borrow_mut()
            .push(format!("start {}", start.mechanism));
        if Kind::from_name(&start.mechanism).is_some() {
            return Ok(self.core.mechanism_start(self, start));
        }
        // Another module's one-step mechanism: succeeds for the initial response "alice".
        Ok(match start.initial_response.as_deref() {
            Some(b"alice") => MechanismStep::Success {
                user: "alice".into(),
                additional_data: Some(b"responder".to_vec()),
            },
            _ => crate::mech::failure(SaslCondition::NotAuthorized, None, Some("alice")),
        })
    }

    fn mechanism_step(&self, response: MechanismResponse) -> Result<MechanismStep, PluginError> {
        self.calls.borrow_mut().push("step".into());
        Ok(self.core.mechanism_step(self, response))
    }

    fn mechanism_end(&self, exchange: u64) {
        self.calls.borrow_mut().push(format!("end {exchange}"));
        self.core.mechanism_end(exchange);
    }

    fn call_hook(&self, name: &str, payload: &[u8]) -> Result<Vec<Vec<u8>>, PluginError> {
        self.calls.borrow_mut().push(format!("hook {name}"));
        self.hook_payloads
            .borrow_mut()
            .push((name.to_owned(), payload.to_vec()));
        Ok(self.hooks.get(name).map(|f| f(payload)).unwrap_or_default())
    }

    fn credentials(&self, user: &str) -> Result<Option<AccountCredentials>, PluginError> {
        if self.store_down.get() {
            return Err(PluginError::host("store down"));
        }
        Ok(self.accounts.get(user).cloned())
    }

    fn verify_password(&self, stored: &ScramCredentials, password: &str) -> bool {
        tessera_sasl::scram::verify_password(stored, password)
    }

    fn fire(&self, name: &str, outcome: &AuthenticationOutcome) {
        self.events
            .borrow_mut()
            .push((name.to_owned(), outcome.clone()));
    }

    fn log(&self, _level: LogLevel, _message: &str) {}
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
