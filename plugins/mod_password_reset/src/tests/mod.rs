//! Tests of the whole module without a server: the plugin API's in-memory host (accounts, a
//! key-value store, a mail outbox, timers, a settable clock and a counting RNG) reached through
//! the module's own code over the SDK's `Host`, driven through [`Core`] exactly as the host drives it
//! (mechanism start/step/end, HTTP requests, events, timers).

mod exchange;
mod page;

use std::cell::Cell;
use std::sync::Arc;

use tessera_plugin_api::events::{UserDeleted, UserPasswordChanged};
use tessera_plugin_api::protocol::{
    HttpRequest, HttpResponse, Mail, MechanismResponse, MechanismStart, MechanismStep, SaslProfile,
    StreamInfo,
};
use tessera_plugin_api::testing::TestHost;
use tessera_plugin_api::{Event, Host, PluginError};

use crate::config::Settings;
use crate::core::Core;
use crate::flow::Keys;

/// The served domain of the tests.
pub(crate) const DOMAIN: &str = "example.org";
/// The public URL of the tests.
pub(crate) const PUBLIC: &str = "https://xmpp.example.org";

/// The host of these tests: the plugin API's in-memory [`TestHost`], reached through the
/// SDK's [`Host`], as in the server. Alice (with an address) and bob (without)
/// exist; the clock is at the test host's start.
pub(crate) struct Fake {
    pub(crate) test: Arc<TestHost>,
    host: Host,
    /// Host calls made before [`Fake::forget_writes`].
    writes_from: Cell<usize>,
}

/// The module's name on the test host.
const MODULE: &str = "password_reset";

impl Fake {
    pub(crate) fn new() -> Self {
        let test = TestHost::new(DOMAIN);
        test.set_public_url(PUBLIC);
        test.add_account("alice", "old password", Some("alice@Example.net"));
        test.add_account("bob", "bob password", None);
        // Passwords set long before the tests' links.
        for user in ["alice", "bob"] {
            test.change_account_silently(user, |a| {
                if let Some(a) = a {
                    a.password_changed_at_ms = 0;
                }
            });
        }
        Self {
            host: test.host_for(MODULE),
            test,
            writes_from: Cell::new(0),
        }
    }

    /// What the module's code receives.
    pub(crate) fn svc(&self) -> &Host {
        &self.host
    }

    /// Create or replace an account behind the module's back, its password set now.
    pub(crate) fn add(&self, user: &str, password: &str, email: Option<&str>) {
        self.test.add_account(user, password, email);
    }

    /// Remove an account behind the module's back (no event).
    pub(crate) fn remove(&self, user: &str) {
        self.test.change_account_silently(user, |a| *a = None);
    }

    /// The account's password as it is now.
    pub(crate) fn password(&self, user: &str) -> Option<String> {
        self.test.account(user).map(|a| a.password)
    }

    pub(crate) fn advance(&self, ms: u64) {
        self.test.advance(ms);
    }

    pub(crate) fn now(&self) -> u64 {
        self.test.now_ms()
    }

    /// The mails sent, oldest first.
    pub(crate) fn mails(&self) -> Vec<Mail> {
        self.test.mails().into_iter().map(|(_, m)| m).collect()
    }

    /// The module's store.
    pub(crate) fn kv(&self) -> Vec<(String, String)> {
        self.test.kv(MODULE, None)
    }

    /// The log lines.
    pub(crate) fn logs(&self) -> Vec<String> {
        self.test.logs().into_iter().map(|(_, _, l)| l).collect()
    }

    /// Tags of the timers set and not yet run.
    pub(crate) fn timers(&self) -> Vec<String> {
        self.test.timers().into_iter().map(|t| t.tag).collect()
    }

    /// Store writes (`kv_put`) since the last [`Fake::forget_writes`].
    pub(crate) fn writes(&self) -> usize {
        self.test
            .calls()
            .iter()
            .skip(self.writes_from.get())
            .filter(|(_, call)| *call == "kv_put")
            .count()
    }

    pub(crate) fn forget_writes(&self) {
        self.writes_from.set(self.test.calls().len());
    }

    /// Every account and store call fails from now on.
    pub(crate) fn store_down(&self) {
        self.test.fail_when(|_, call| {
            (call.starts_with("kv_")
                || matches!(call, "get_email" | "get_credentials" | "set_password"))
            .then(|| PluginError::host("store failure"))
        });
    }

    /// `set_timer` fails from now on.
    pub(crate) fn timers_down(&self) {
        self.test
            .fail_when(|_, call| (call == "set_timer").then(|| PluginError::host("no timers")));
    }
}

/// A core with test keys.
pub(crate) fn core_with(settings: Settings) -> Core {
    let keys = Keys {
        csrf: vec![0x33; 32],
        decoy: vec![0x44; 32],
    };
    Core::new(settings, keys, DOMAIN, &format!("{PUBLIC}/"))
}

/// A TLS stream from `ip`.
pub(crate) fn stream(id: u64, ip: &str) -> StreamInfo {
    StreamInfo {
        id,
        domain: DOMAIN.into(),
        secure: true,
        peer_ip: ip.into(),
        ..StreamInfo::default()
    }
}

/// Start an exchange.
pub(crate) fn start(core: &Core, fake: &Fake, id: u64, ir: Option<&[u8]>) -> MechanismStep {
    core.mechanism_start(
        fake.svc(),
        &MechanismStart {
            exchange: id,
            mechanism: "PASSWORD-RESET".into(),
            stream: stream(id, "192.0.2.1"),
            profile: SaslProfile::Sasl2,
            initial_response: ir.map(<[u8]>::to_vec),
            user_agent_id: None,
            authenticate: None,
        },
    )
}

/// Continue an exchange.
pub(crate) fn step(core: &Core, fake: &Fake, id: u64, data: &[u8]) -> MechanismStep {
    core.mechanism_step(
        fake.svc(),
        &MechanismResponse {
            exchange: id,
            response: data.to_vec(),
        },
    )
}

/// A submitted form.
pub(crate) fn submitted(username: Option<&str>, email: &str) -> Vec<u8> {
    let user = username
        .map(|u| format!("<field var='username'><value>{u}</value></field>"))
        .unwrap_or_default();
    format!(
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
         <value>urn:tessera:password-reset:0</value></field>{user}\
         <field var='email'><value>{email}</value></field></x>"
    )
    .into_bytes()
}

/// Fire the job timers the module set (those due now: jobs are set with no delay), as the
/// host does after the answer went out.
pub(crate) fn fire_timers(core: &Core, fake: &Fake) {
    let now = fake.now();
    let due: Vec<String> = fake
        .test
        .timers()
        .into_iter()
        .filter(|t| t.due_ms <= now)
        .map(|t| t.tag)
        .collect();
    fake.test.drop_timers(|t| t.due_ms <= now);
    for tag in due {
        core.run_job(fake.svc(), &tag);
    }
}

/// The whole exchange with the account in the initial response, then the deferred work;
/// returns the final step.
pub(crate) fn request(core: &Core, fake: &Fake, user: &str, email: &str) -> MechanismStep {
    let first = start(core, fake, 1, Some(user.as_bytes()));
    assert!(
        matches!(first, MechanismStep::Challenge { .. }),
        "{first:?}"
    );
    let last = step(core, fake, 1, &submitted(None, email));
    core.mechanism_end(1);
    fire_timers(core, fake);
    last
}

/// The link of the last mail.
pub(crate) fn last_link(fake: &Fake) -> String {
    let mails = fake.mails();
    let body = &mails.last().expect("a mail").body;
    body.lines()
        .find(|l| l.starts_with(PUBLIC))
        .expect("a link line")
        .to_owned()
}

/// An HTTP request to the module.
pub(crate) fn http(core: &Core, fake: &Fake, method: &str, path: &str, body: &str) -> HttpResponse {
    core.http(
        fake.svc(),
        &HttpRequest {
            method: method.into(),
            path: path.into(),
            body: body.as_bytes().to_vec(),
            peer_ip: "198.51.100.9".into(),
            ..HttpRequest::default()
        },
    )
}

/// Deliver an event as the host does: its payload encoded.
pub(crate) fn deliver<T: serde::Serialize>(
    core: &Core,
    fake: &Fake,
    name: &str,
    payload: &T,
) -> Result<(), PluginError> {
    let payload = tessera_plugin_api::wire::encode(payload).expect("encodable");
    core.event(
        fake.svc(),
        &Event {
            name,
            payload: &payload,
        },
    )
}

/// `user-password-changed` for `user` at `at_ms`.
pub(crate) fn password_changed(user: &str, at_ms: u64) -> UserPasswordChanged {
    UserPasswordChanged {
        user: user.into(),
        origin_stream: None,
        at_ms,
    }
}
