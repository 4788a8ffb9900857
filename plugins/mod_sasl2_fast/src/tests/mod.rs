//! Tests of the module without a server: the plugin API's in-memory host (accounts, this
//! module's key-value store, a clock), reached through the SDK's `Host` as in the server, and a
//! client that drives [`Core`] the way mod_sasl2 and the host do (mechanism start, then the
//! `sasl2-success` hook).

mod flows;
mod refusals;
mod revocation;

use std::sync::Arc;

use tessera_plugin_api::events::{hooks, Event, Sasl2Success};
use tessera_plugin_api::protocol::{ChannelBindings, MechanismStart, MechanismStep, StreamInfo};
use tessera_plugin_api::testing::{self, TestAccount, TestHost};
use tessera_plugin_api::xml::Element;
use tessera_plugin_api::{wire, Host, PluginError};
use tessera_sasl::ht::build_initial_response;

use crate::config::Settings;
use crate::core::Core;
use crate::ht::{FAST_NS, SASL2_NS};
use crate::token::TokenKey;

/// A UUID-shaped user-agent id.
pub(crate) const UA: &str = "d4565fa7-4d72-4749-b3d3-740edbf87770";
/// Test start time.
pub(crate) const T0: u64 = 1_700_000_000_000;
/// tls-exporter data of test streams.
pub(crate) const EXPORTER: [u8; 32] = [0xc7; 32];

/// The host of these tests: the plugin API's in-memory [`TestHost`], reached through the
/// SDK's [`Host`] (so the encoded host calls run as in the server). Alice exists, her password
/// set at 0; the clock is at [`T0`].
pub(crate) struct Fake {
    pub(crate) test: Arc<TestHost>,
    host: Host,
}

impl Fake {
    pub(crate) fn new() -> Self {
        let test = TestHost::new("example.org");
        test.advance(T0 - testing::T0);
        let fake = Self {
            host: test.host_for("sasl2_fast"),
            test,
        };
        fake.add_account("alice", 0);
        fake
    }

    /// What the module's code receives.
    pub(crate) fn svc(&self) -> &Host {
        &self.host
    }

    /// Create or replace `user` with a password changed at `at_ms`, behind the module's back.
    pub(crate) fn add_account(&self, user: &str, at_ms: u64) {
        self.test.change_account_silently(user, |account| {
            *account = Some(TestAccount {
                password: format!("{user} pw"),
                email: None,
                password_changed_at_ms: at_ms,
                scram_sha512: None,
            });
        });
    }

    pub(crate) fn advance(&self, ms: u64) {
        self.test.advance(ms);
    }

    /// Every store call (credentials and key-value) fails from now on.
    pub(crate) fn store_down(&self) {
        self.test.fail_when(|_, call| {
            (call == "get_credentials" || call.starts_with("kv_"))
                .then(|| PluginError::host("store down"))
        });
    }

    /// Keys stored for `user`.
    pub(crate) fn keys(&self, user: &str) -> Vec<String> {
        self.test
            .kv("sasl2_fast", Some(user))
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }
}

/// A core with test keys and the given lifetimes in seconds.
pub(crate) fn core_with(ttl_secs: u64, min_ttl_secs: u64) -> Core {
    let settings = Settings {
        ttl_ms: ttl_secs * 1000,
        min_ttl_ms: min_ttl_secs * 1000,
    };
    Core::new(
        settings,
        TokenKey::new(&[0x42; 32]).unwrap_or_else(|e| panic!("{e}")),
    )
}

/// A core with the default lifetimes.
pub(crate) fn core() -> Core {
    core_with(1_814_400, 86_400)
}

/// An encrypted stream; `exporter` adds tls-exporter data.
pub(crate) fn stream(id: u64, exporter: bool) -> StreamInfo {
    StreamInfo {
        id,
        domain: "example.org".into(),
        secure: true,
        tls_version: Some("TLSv1.3".into()),
        channel_bindings: ChannelBindings {
            tls_exporter: exporter.then(|| EXPORTER.to_vec()),
            tls_server_end_point: None,
        },
        peer_ip: "192.0.2.1".into(),
        ..StreamInfo::default()
    }
}

pub(crate) fn user_agent(id: &str) -> Element {
    Element::new("user-agent", SASL2_NS).with_attr("id", id)
}

pub(crate) fn request_token(mechanism: &str) -> Element {
    Element::new("request-token", FAST_NS).with_attr("mechanism", mechanism)
}

pub(crate) fn fast() -> Element {
    Element::new("fast", FAST_NS)
}

/// `<authenticate mechanism=…>` with children.
pub(crate) fn authenticate(mechanism: &str, children: Vec<Element>) -> Element {
    let mut el = Element::new("authenticate", SASL2_NS).with_attr("mechanism", mechanism);
    for c in children {
        el.push_child(c);
    }
    el
}

/// Run the `sasl2-success` hook for alice; the `<token/>`s it adds.
pub(crate) fn success_hook(
    core: &Core,
    fake: &Fake,
    stream: &StreamInfo,
    mechanism: &str,
    auth: Element,
) -> Vec<Element> {
    success_hook_as(core, fake, stream, "alice", mechanism, auth)
}

/// Run the `sasl2-success` hook for `user`; the `<token/>`s it adds.
pub(crate) fn success_hook_as(
    core: &Core,
    fake: &Fake,
    stream: &StreamInfo,
    user: &str,
    mechanism: &str,
    auth: Element,
) -> Vec<Element> {
    let payload = Sasl2Success {
        stream: stream.clone(),
        user: user.into(),
        mechanism: mechanism.into(),
        authenticate: auth,
        exchange_started_at_ms: 0,
    };
    let payload = wire::encode(&payload).unwrap_or_else(|e| panic!("{e}"));
    match core.hook(fake.svc(), hooks::SASL2_SUCCESS, &payload) {
        Ok(Some(v)) => wire::decode("reply", &v).unwrap_or_else(|e| panic!("{e}")),
        Ok(None) => Vec::new(),
        Err(e) => panic!("{e}"),
    }
}

/// A password login (another module's mechanism) with these children; the token string issued.
pub(crate) fn password_login(
    core: &Core,
    fake: &Fake,
    stream: &StreamInfo,
    children: Vec<Element>,
) -> Option<String> {
    let auth = authenticate("SCRAM-SHA-256", children);
    let tokens = success_hook(core, fake, stream, "SCRAM-SHA-256", auth);
    token_of(&tokens)
}

/// A password login on stream 1 by [`UA`] requesting a token for `mechanism`; the token.
pub(crate) fn issued_token(core: &Core, fake: &Fake, mechanism: &str) -> String {
    password_login(
        core,
        fake,
        &stream(1, true),
        vec![user_agent(UA), request_token(mechanism)],
    )
    .unwrap_or_else(|| panic!("no token issued"))
}

/// The token attribute of the single `<token/>`, if any.
pub(crate) fn token_of(elements: &[Element]) -> Option<String> {
    assert!(elements.len() <= 1, "{elements:?}");
    let el = elements.first()?;
    assert!(el.is("token", FAST_NS), "{el:?}");
    el.attr("token").map(str::to_owned)
}

/// The result of a FAST login: the mechanism step and the tokens of the success hook.
#[derive(Debug)]
pub(crate) struct FastLogin {
    pub(crate) step: MechanismStep,
    pub(crate) issued: Option<String>,
}

/// A FAST login as `authcid` with `token` under `mechanism`; `extra` children besides the
/// user-agent and `<fast/>` (already included when `ua`/`with_fast`).
pub(crate) fn fast_login(
    core: &Core,
    fake: &Fake,
    stream: &StreamInfo,
    mechanism: &str,
    authcid: &str,
    token: &str,
    extra: Vec<Element>,
) -> FastLogin {
    let cb: &[u8] = if mechanism.ends_with("EXPR") {
        &EXPORTER
    } else {
        b""
    };
    let mut children = vec![user_agent(UA), fast()];
    children.extend(extra);
    let auth = authenticate(mechanism, children);
    let start = start(
        stream,
        mechanism,
        Some(build_initial_response(authcid, token.as_bytes(), cb)),
        auth.clone(),
    );
    let step = core.mechanism_start(fake.svc(), &start);
    let issued = match &step {
        MechanismStep::Success { .. } => {
            token_of(&success_hook(core, fake, stream, mechanism, auth))
        }
        _ => None,
    };
    FastLogin { step, issued }
}

/// A `MechanismStart` as mod_sasl2 sends it.
pub(crate) fn start(
    stream: &StreamInfo,
    mechanism: &str,
    initial_response: Option<Vec<u8>>,
    auth: Element,
) -> MechanismStart {
    MechanismStart {
        exchange: stream.id,
        mechanism: mechanism.into(),
        stream: stream.clone(),
        profile: tessera_plugin_api::protocol::SaslProfile::Sasl2,
        initial_response,
        user_agent_id: crate::ht::user_agent_id(&auth),
        authenticate: Some(auth),
    }
}

/// The condition and user of a failure step.
pub(crate) fn failure_of(step: &MechanismStep) -> (String, Option<String>) {
    match step {
        MechanismStep::Failure {
            condition, user, ..
        } => (condition.as_str().to_owned(), user.clone()),
        other => panic!("expected a failure: {other:?}"),
    }
}

/// Whether the step is a success for alice.
pub(crate) fn succeeded(step: &MechanismStep) -> bool {
    matches!(step, MechanismStep::Success { user, .. } if user == "alice")
}

/// Deliver a bus event.
pub(crate) fn event<T: serde::Serialize>(core: &Core, fake: &Fake, name: &str, payload: &T) {
    let payload = wire::encode(payload).unwrap_or_else(|e| panic!("{e}"));
    let ev = Event {
        name,
        payload: &payload,
    };
    core.on_event(fake.svc(), &ev)
        .unwrap_or_else(|e| panic!("{e}"));
}
