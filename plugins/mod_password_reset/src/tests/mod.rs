//! Tests of the whole module without a host: a fake [`Services`] with accounts, a key-value
//! store, a mail outbox, a settable clock and a counting RNG, driven through [`Core`] exactly as
//! the host drives it (mechanism start/step/end, HTTP requests, events).

mod exchange;
mod page;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use tessera_plugin_api::events::{UserDeleted, UserPasswordChanged};
use tessera_plugin_api::protocol::{
    HttpRequest, HttpResponse, Mail, MechanismResponse, MechanismStart, MechanismStep, SaslProfile,
    StreamInfo,
};
use tessera_plugin_api::{Event, LogLevel, PluginError};

use crate::config::Settings;
use crate::core::Core;
use crate::flow::Keys;
use crate::services::Services;

/// The served domain of the tests.
pub(crate) const DOMAIN: &str = "example.org";
/// The public URL of the tests.
pub(crate) const PUBLIC: &str = "https://xmpp.example.org";

/// The fake host.
#[derive(Debug, Default)]
pub(crate) struct Fake {
    /// Accounts: name → (password, email).
    pub(crate) accounts: RefCell<BTreeMap<String, (String, Option<String>)>>,
    /// When each account's password last changed (absent: at the start of time).
    pub(crate) changed_at: RefCell<BTreeMap<String, u64>>,
    pub(crate) kv: RefCell<BTreeMap<String, String>>,
    pub(crate) mails: RefCell<Vec<Mail>>,
    pub(crate) logs: RefCell<Vec<String>>,
    pub(crate) now: Cell<u64>,
    counter: Cell<u8>,
    /// Every store write, in order (key only).
    pub(crate) writes: RefCell<Vec<String>>,
    /// Make the store fail.
    pub(crate) store_down: Cell<bool>,
    /// Tags of timers set and not yet fired.
    pub(crate) timers: RefCell<Vec<String>>,
    /// Make `set_timer` fail.
    pub(crate) timers_down: Cell<bool>,
}

impl Fake {
    pub(crate) fn new() -> Self {
        let f = Self::default();
        f.now.set(1_700_000_000_000);
        f.add("alice", "old password", Some("alice@Example.net"));
        f.add("bob", "bob password", None);
        f
    }

    pub(crate) fn add(&self, user: &str, password: &str, email: Option<&str>) {
        self.accounts
            .borrow_mut()
            .insert(user.into(), (password.into(), email.map(str::to_owned)));
    }

    pub(crate) fn password(&self, user: &str) -> Option<String> {
        self.accounts.borrow().get(user).map(|(p, _)| p.clone())
    }

    pub(crate) fn advance(&self, ms: u64) {
        self.now.set(self.now.get() + ms);
    }

    fn store(&self) -> Result<(), PluginError> {
        if self.store_down.get() {
            Err(PluginError::host("store failure"))
        } else {
            Ok(())
        }
    }
}

impl Services for Fake {
    fn now_ms(&self) -> u64 {
        self.now.get()
    }
    fn random_bytes(&self, n: usize) -> Vec<u8> {
        self.counter.set(self.counter.get().wrapping_add(1));
        vec![self.counter.get(); n]
    }
    fn get_email(&self, user: &str) -> Result<Option<String>, PluginError> {
        self.store()?;
        Ok(self
            .accounts
            .borrow()
            .get(user)
            .and_then(|(_, e)| e.clone()))
    }
    fn password_changed_at(&self, user: &str) -> Result<Option<u64>, PluginError> {
        self.store()?;
        let exists = self.accounts.borrow().contains_key(user);
        Ok(exists.then(|| self.changed_at.borrow().get(user).copied().unwrap_or(0)))
    }
    fn set_password(&self, user: &str, password: &str) -> Result<(), PluginError> {
        self.store()?;
        if password.contains('\u{7}') {
            return Err(PluginError::bad_request(
                "unusable password: prohibited character",
            ));
        }
        match self.accounts.borrow_mut().get_mut(user) {
            Some(acc) => {
                acc.0 = password.into();
                self.changed_at
                    .borrow_mut()
                    .insert(user.into(), self.now.get());
                Ok(())
            }
            None => Err(PluginError::bad_request("no such account")),
        }
    }
    fn kv_get(&self, key: &str) -> Result<Option<String>, PluginError> {
        self.store()?;
        Ok(self.kv.borrow().get(key).cloned())
    }
    fn kv_put(&self, key: &str, value: &str) -> Result<(), PluginError> {
        self.store()?;
        self.writes.borrow_mut().push(key.into());
        self.kv.borrow_mut().insert(key.into(), value.into());
        Ok(())
    }
    fn kv_delete(&self, key: &str) -> Result<bool, PluginError> {
        self.store()?;
        Ok(self.kv.borrow_mut().remove(key).is_some())
    }
    fn kv_list(&self, prefix: &str) -> Result<Vec<(String, String)>, PluginError> {
        self.store()?;
        Ok(self
            .kv
            .borrow()
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    fn send_mail(&self, mail: Mail) -> Result<u64, PluginError> {
        self.mails.borrow_mut().push(mail);
        Ok(u64::try_from(self.mails.borrow().len()).unwrap_or(0))
    }
    fn set_timer(&self, _delay_ms: u64, tag: &str) -> Result<u64, PluginError> {
        if self.timers_down.get() {
            return Err(PluginError::host("no timers"));
        }
        self.timers.borrow_mut().push(tag.into());
        Ok(u64::try_from(self.timers.borrow().len()).unwrap_or(0))
    }
    fn log(&self, _level: LogLevel, message: &str) {
        self.logs.borrow_mut().push(message.into());
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
        fake,
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
        fake,
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

/// Fire the job timers the module set, as the host does after the answer went out.
pub(crate) fn fire_timers(core: &Core, fake: &Fake) {
    let tags: Vec<String> = fake.timers.borrow_mut().drain(..).collect();
    for tag in tags {
        core.run_job(fake, &tag);
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
    let mails = fake.mails.borrow();
    let body = &mails.last().expect("a mail").body;
    body.lines()
        .find(|l| l.starts_with(PUBLIC))
        .expect("a link line")
        .to_owned()
}

/// An HTTP request to the module.
pub(crate) fn http(core: &Core, fake: &Fake, method: &str, path: &str, body: &str) -> HttpResponse {
    core.http(
        fake,
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
        fake,
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
