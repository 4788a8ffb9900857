//! An in-memory host for module tests (cargo feature `testing`; enable it in a module's
//! `[dev-dependencies]`). A module under test runs through the same [`Host`] and the same
//! encoded calls as in the server — every host call is postcard-encoded, dispatched by
//! [`crate::calls::dispatch_host_call`] and answered here — so a test exercises the module's
//! glue, not a fake of it.
//!
//! What it keeps, each readable and settable by the test: a clock (only [`TestHost::advance`]
//! moves it), a counter "RNG" (byte `n` of the `n`-th call), accounts, each module's key-value
//! store, events fired, log lines, mails, timers, sessions with their module state, stanzas
//! routed or sent, archives, and synchronous query hooks answered by closures. Account changes
//! behave as the server's: `set_password` and `delete_account` fire their events, and deletion
//! drops the account's data. SASL mechanisms of loaded modules are listed by the server's rule
//! ([`MechanismSpec::offered_on`], priority then load order) and exchanges routed to their
//! module; the host's final check of a success against the account is not modelled. Timers do
//! not run by themselves: [`Loaded::run_due_timers`] runs them.
//!
//! ```
//! use tessera_plugin_api::testing::TestHost;
//! # use tessera_plugin_api::{protocol::*, xml::Element, Config, Host, Module, PluginError};
//! # struct Echo;
//! # impl Module for Echo {
//! #     const NAME: &'static str = "echo";
//! #     const VERSION: &'static str = "1.0.0";
//! #     fn manifest() -> Manifest { Manifest::default() }
//! #     fn init(_: &Host, _: &Config, _: Option<&[u8]>) -> Result<Self, PluginError> { Ok(Echo) }
//! #     fn registrations(&self) -> Registrations { Registrations::default() }
//! # }
//! let host = TestHost::new("example.org");
//! host.add_account("alice", "alice pw", None);
//! let echo = host.load::<Echo>(Default::default()).unwrap();
//! assert!(echo.host().user_exists("Alice").unwrap());
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use serde::de::DeserializeOwned;

use crate::abi::{EventFlow, LogLevel};
use crate::acks::{AckOutcome, AckQueue, AckSettings, AckStatus};
use crate::calls::{dispatch_host_call, host_call, HostCalls, ModuleCalls};
use crate::conditions::StreamCondition;
use crate::error::{PluginError, PluginErrorKind};
use crate::events::{self, UserDeleted, UserPasswordChanged};
use crate::names::canonical_account;
use crate::protocol::*;
use crate::sdk::{Backend, Config, Host, Instance, Module};
use crate::stanza::{SessionView, StanzaHeader, StanzaKind, StanzaPoint, Verdict};
use crate::wire::{self, Bytes};
use crate::xml::Element;

/// An account as the test host keeps it. The password is kept in clear (tests only) so a test
/// can check what a module set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestAccount {
    /// The password last set.
    pub password: String,
    /// The stored email address.
    pub email: Option<String>,
    /// When the password was last set (ms).
    pub password_changed_at_ms: u64,
    /// A SCRAM-SHA-512 verifier, only if a test set one or a module added one
    /// (`add_scram_verifier`): the test host derives none itself, so its accounts start as
    /// accounts whose password predates SHA-512 verifiers, and a password change clears it.
    pub scram_sha512: Option<ScramSecret>,
}

/// A session of the test host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestSession {
    /// Account.
    pub user: String,
    /// Full JID.
    pub full_jid: String,
    /// Available with this priority, or not.
    pub presence: Option<i8>,
    /// Kept for this long after a lost connection (`session_keep`).
    pub keep_ms: Option<u64>,
    /// Closed with this condition, if it was.
    pub closed: Option<StreamCondition>,
    /// Modules attached to its `SessionOut` hooks.
    pub attached: Vec<String>,
    /// Stanzas sent to it with `send_to_session`.
    pub outbox: Vec<Element>,
    /// The SASL2 user-agent id it logged in with ([`TestHost::set_user_agent`]).
    pub user_agent_id: Option<String>,
    /// Its acknowledgement queue ([`HostCalls::acks_enable`]): the settings, and the stanzas
    /// [`TestHost::acks_written`] wrote.
    pub acks: Option<(AckSettings, AckQueue<Element>)>,
    /// Whether its connection is lost ([`TestHost::detach`]).
    pub detached: bool,
    state: BTreeMap<(String, String), Vec<u8>>,
}

/// A timer a module set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestTimer {
    /// The module that set it.
    pub module: String,
    /// Its id.
    pub id: u64,
    /// When it is due (ms).
    pub due_ms: u64,
    /// The module's tag.
    pub tag: String,
}

/// A synchronous query hook answered by the test: encoded payload in, encoded reply out.
pub type HookFn = Box<dyn Fn(&[u8]) -> Option<Vec<u8>> + Send>;
/// Decides whether a host call fails: (module, call name) → the error to answer.
pub type FailFn = Box<dyn Fn(&str, &str) -> Option<PluginError> + Send>;
/// Turns a password into its SCRAM-SHA-1 and SCRAM-SHA-256 verifiers (the plugin API does not
/// implement SCRAM; a test passes `tessera_sasl::scram::derive_credentials`, say).
pub type VerifierFn = Arc<dyn Fn(&str) -> (ScramSecret, ScramSecret) + Send + Sync>;

/// A module counter's series: (module, counter, label).
type CounterKey = (String, String, Option<(String, String)>);

#[derive(Default)]
struct World {
    now_ms: u64,
    counter: u8,
    public_url: Option<String>,
    accounts: BTreeMap<String, TestAccount>,
    kv: BTreeMap<(String, String, String), String>,
    fired: Vec<(String, Vec<u8>)>,
    logs: Vec<(String, LogLevel, String)>,
    mails: Vec<(String, Mail)>,
    timers: Vec<TestTimer>,
    next_id: u64,
    sessions: BTreeMap<u64, TestSession>,
    routed: Vec<Element>,
    archives: BTreeMap<(String, String, String), Vec<ArchiveItem>>,
    /// The class of each entry appended with bounds (by id; `""` when absent).
    archive_classes: BTreeMap<String, String>,
    hooks: BTreeMap<String, Vec<HookFn>>,
    fail: Option<FailFn>,
    calls: Vec<(String, &'static str)>,
    /// Mechanisms of loaded modules, in load order: (module, spec, the instance).
    mechanisms: Vec<(String, MechanismSpec, Weak<dyn ModuleCalls + Send + Sync>)>,
    verifiers: Option<VerifierFn>,
    /// Verifiers already derived, by password.
    verifier_cache: BTreeMap<String, (ScramSecret, ScramSecret)>,
    /// Module counters (`count`): (module, counter, label) → total.
    counters: BTreeMap<CounterKey, u64>,
    /// Exchanges in progress: id → the instance that runs it, and its stream, start and kind.
    exchanges: BTreeMap<u64, (Weak<dyn ModuleCalls + Send + Sync>, TestBasis)>,
    /// Query hooks of loaded modules: (module, hook, priority, the instance).
    module_hooks: Vec<ModuleHook>,
    /// Logins a mechanism reported a success for, by stream (what `add_scram_verifier` checks).
    verified: BTreeMap<u64, (String, TestBasis)>,
}

/// A loaded module's registered query hook.
type ModuleHook = (String, String, i32, Weak<dyn ModuleCalls + Send + Sync>);

/// An exchange's stream, start time and mechanism family.
#[derive(Clone, Copy, Debug)]
struct TestBasis {
    stream: u64,
    started_ms: u64,
    kind: CredentialKind,
}

/// The in-memory host. Share it with `Arc`; every module loaded on it sees the same world.
pub struct TestHost {
    domain: String,
    world: Mutex<World>,
}

impl std::fmt::Debug for TestHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHost")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// The start of the test clock: 2023-11-14T22:13:20Z.
pub const T0: u64 = 1_700_000_000_000;

fn key(user: &str) -> String {
    canonical_account(user).unwrap_or_else(|| user.to_owned())
}

fn scope_key(scope: &KvScope<'_>) -> String {
    match scope {
        KvScope::Global => String::new(),
        KvScope::Account(user) => key(user),
    }
}

fn not_found(what: &str) -> PluginError {
    PluginError::new(PluginErrorKind::NOT_FOUND, what)
}

impl TestHost {
    /// A host serving `domain`, its clock at [`T0`].
    pub fn new(domain: &str) -> Arc<Self> {
        Arc::new(Self {
            domain: domain.to_owned(),
            world: Mutex::new(World {
                now_ms: T0,
                next_id: 1,
                ..World::default()
            }),
        })
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Load module `M` with `config` (absent options take the manifest's defaults), as the
    /// server would: `init` with no saved state.
    ///
    /// # Errors
    /// The module's `init` error.
    pub fn load<M: Module>(self: &Arc<Self>, config: Config) -> Result<Loaded<M>, PluginError> {
        self.load_with_state(config, None)
    }

    fn load_with_state<M: Module>(
        self: &Arc<Self>,
        mut config: Config,
        restore: Option<&[u8]>,
    ) -> Result<Loaded<M>, PluginError> {
        for spec in M::manifest().options {
            if config.get(&spec.name).is_none() {
                if let Some(default) = spec.default {
                    config.set(&spec.name, default);
                }
            }
        }
        let host = Host::on(Arc::new(Context {
            host: self.clone(),
            module: M::NAME.to_owned(),
        }));
        let module = M::init(&host, &config, restore)?;
        let instance = Arc::new(Instance { module, host });
        // Its mechanisms are routed to it, as the server's registry does (a reload replaces
        // the previous generation's); the routes hold it weakly, `Loaded` keeps it alive.
        let provider: Arc<dyn ModuleCalls + Send + Sync> = instance.clone();
        let registrations = instance.module.registrations();
        {
            let mut w = self.world();
            w.mechanisms.retain(|(module, _, _)| module != M::NAME);
            for spec in registrations.mechanisms {
                w.mechanisms
                    .push((M::NAME.to_owned(), spec, Arc::downgrade(&provider)));
            }
            // So are the query hooks it registers, by priority (then load order), after the
            // closures of `on_hook`.
            w.module_hooks.retain(|(module, ..)| module != M::NAME);
            for hook in registrations.hooks {
                w.module_hooks.push((
                    M::NAME.to_owned(),
                    hook.name,
                    hook.priority,
                    Arc::downgrade(&provider),
                ));
            }
            w.module_hooks.sort_by_key(|(_, _, priority, _)| -priority);
        }
        Ok(Loaded {
            instance,
            test_host: self.clone(),
            config,
        })
    }

    /// A [`Host`] for module `module` without loading one: for testing a module's sans-IO
    /// core with the module's real glue over this host.
    pub fn host_for(self: &Arc<Self>, module: &str) -> Host {
        Host::on(Arc::new(Context {
            host: self.clone(),
            module: module.to_owned(),
        }))
    }

    /// The served domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Set the public URL `host_info` reports.
    pub fn set_public_url(&self, url: &str) {
        self.world().public_url = Some(url.to_owned());
    }

    /// The clock.
    pub fn now_ms(&self) -> u64 {
        self.world().now_ms
    }

    /// Move the clock forward.
    pub fn advance(&self, ms: u64) {
        let mut w = self.world();
        w.now_ms = w.now_ms.saturating_add(ms);
    }

    /// Create an account (no event: test setup).
    pub fn add_account(&self, user: &str, password: &str, email: Option<&str>) {
        let mut w = self.world();
        let now = w.now_ms;
        w.accounts.insert(
            key(user),
            TestAccount {
                password: password.to_owned(),
                email: email.map(str::to_owned),
                password_changed_at_ms: now,
                scram_sha512: None,
            },
        );
    }

    /// An account as it is now.
    pub fn account(&self, user: &str) -> Option<TestAccount> {
        self.world().accounts.get(&key(user)).cloned()
    }

    /// Change or remove an account behind every module's back (no event), e.g. to show that a
    /// module checks the account as it is now.
    pub fn change_account_silently(
        &self,
        user: &str,
        change: impl FnOnce(&mut Option<TestAccount>),
    ) {
        let k = key(user);
        let mut account = self.world().accounts.get(&k).cloned();
        // Run without the lock: the closure may read the test host.
        change(&mut account);
        let mut w = self.world();
        match account {
            Some(account) => w.accounts.insert(k, account),
            None => w.accounts.remove(&k),
        };
    }

    /// A module's key-value store for a scope (`None`: global), sorted by key.
    pub fn kv(&self, module: &str, account: Option<&str>) -> Vec<(String, String)> {
        let scope = account.map(key).unwrap_or_default();
        self.world()
            .kv
            .iter()
            .filter(|((m, s, _), _)| m == module && *s == scope)
            .map(|((_, _, k), v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The total a module counted on `counter` with `label` (`count`; 0 if never).
    pub fn counted(&self, module: &str, counter: &str, label: Option<(&str, &str)>) -> u64 {
        let key = (
            module.to_owned(),
            counter.to_owned(),
            label.map(|(n, v)| (n.to_owned(), v.to_owned())),
        );
        self.world().counters.get(&key).copied().unwrap_or(0)
    }

    /// Events fired so far (name, payload), oldest first.
    pub fn fired(&self) -> Vec<(String, Vec<u8>)> {
        self.world().fired.clone()
    }

    /// The payloads of the events named `name`, decoded.
    pub fn fired_as<T: DeserializeOwned>(&self, name: &str) -> Vec<T> {
        self.fired()
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, payload)| wire::decode(name, payload).ok())
            .collect()
    }

    /// Log lines (module, level, text), oldest first.
    pub fn logs(&self) -> Vec<(String, LogLevel, String)> {
        self.world().logs.clone()
    }

    /// Mails queued (module, mail), oldest first.
    pub fn mails(&self) -> Vec<(String, Mail)> {
        self.world().mails.clone()
    }

    /// Timers set and not yet run.
    pub fn timers(&self) -> Vec<TestTimer> {
        self.world().timers.clone()
    }

    /// Drop the timers `which` selects (e.g. after running them by hand).
    pub fn drop_timers(&self, which: impl Fn(&TestTimer) -> bool) {
        self.world().timers.retain(|t| !which(t));
    }

    /// Host calls made (module, call name), oldest first.
    pub fn calls(&self) -> Vec<(String, &'static str)> {
        self.world().calls.clone()
    }

    /// Stanzas modules routed with `route`, oldest first.
    pub fn routed(&self) -> Vec<Element> {
        self.world().routed.clone()
    }

    /// Derive real SCRAM verifiers for `get_credentials` with `derive` (by default they are
    /// placeholders: enough for modules that only read `password_changed_at_ms`).
    pub fn set_verifiers(
        &self,
        derive: impl Fn(&str) -> (ScramSecret, ScramSecret) + Send + Sync + 'static,
    ) {
        let mut w = self.world();
        w.verifiers = Some(Arc::new(derive));
        w.verifier_cache.clear();
    }

    /// Add a bound session; answers its stream id.
    pub fn add_session(&self, user: &str, resource: &str) -> u64 {
        let mut w = self.world();
        let id = w.next_id;
        w.next_id += 1;
        let user = key(user);
        let full_jid = format!("{user}@{}/{resource}", self.domain);
        w.sessions.insert(
            id,
            TestSession {
                user,
                full_jid,
                ..TestSession::default()
            },
        );
        id
    }

    /// Mark a session available with a priority (`Some`) or unavailable, as a presence module
    /// would.
    pub fn set_presence(&self, stream: u64, priority: Option<i8>) {
        if let Some(s) = self.world().sessions.get_mut(&stream) {
            s.presence = priority;
        }
    }

    /// Take the stanzas sent to a session so far (its outbox is emptied).
    pub fn take_outbox(&self, stream: u64) -> Vec<Element> {
        self.world()
            .sessions
            .get_mut(&stream)
            .map(|s| std::mem::take(&mut s.outbox))
            .unwrap_or_default()
    }

    /// Take the stanzas routed so far (emptied).
    pub fn take_routed(&self) -> Vec<Element> {
        std::mem::take(&mut self.world().routed)
    }

    /// Session `stream` ended (its connection closed): it is no longer listed.
    pub fn end_session(&self, stream: u64) {
        self.world().sessions.remove(&stream);
    }

    /// Say which SASL2 user-agent id session `stream` logged in with (`list_sessions` reports
    /// it).
    pub fn set_user_agent(&self, stream: u64, user_agent_id: &str) {
        if let Some(s) = self.world().sessions.get_mut(&stream) {
            s.user_agent_id = Some(user_agent_id.to_owned());
        }
    }

    /// Session `stream` handled `n` stanzas from its client (counted if its acknowledgement
    /// queue is on).
    pub fn acks_handled(&self, stream: u64, n: u32) {
        if let Some((_, q)) = self
            .world()
            .sessions
            .get_mut(&stream)
            .and_then(|s| s.acks.as_mut())
        {
            (0..n).for_each(|_| q.handled_one());
        }
    }

    /// The host wrote `stanza` to session `stream` (kept until acknowledged if its
    /// acknowledgement queue is on).
    pub fn acks_written(&self, stream: u64, stanza: Element) {
        if let Some((_, q)) = self
            .world()
            .sessions
            .get_mut(&stream)
            .and_then(|s| s.acks.as_mut())
        {
            q.sent(stanza);
        }
    }

    /// Session `stream` lost its connection and is kept (as the server does for a session
    /// whose keep time is set).
    pub fn detach(&self, stream: u64) {
        if let Some(s) = self.world().sessions.get_mut(&stream) {
            s.detached = true;
        }
    }

    /// A session as it is now.
    pub fn session(&self, stream: u64) -> Option<TestSession> {
        self.world().sessions.get(&stream).cloned()
    }

    /// Answer the synchronous query hook `name` with `answer` (called in the order added, with
    /// the test host locked: `answer` must not call it).
    pub fn on_hook(&self, name: &str, answer: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static) {
        self.world()
            .hooks
            .entry(name.to_owned())
            .or_default()
            .push(Box::new(answer));
    }

    /// Make host calls fail: `fail(module, call name)` answers the error for a call, or `None`
    /// to let it through (run with the test host locked: it must not call it). Replaces any
    /// earlier rule; [`TestHost::heal`] removes it.
    pub fn fail_when(&self, fail: impl Fn(&str, &str) -> Option<PluginError> + Send + 'static) {
        self.world().fail = Some(Box::new(fail));
    }

    /// Let every call through again.
    pub fn heal(&self) {
        self.world().fail = None;
    }

    fn password_changed(&self, w: &mut World, user: &str, origin_stream: Option<u64>) {
        let at_ms = w.now_ms;
        if let Ok(payload) = wire::encode(&UserPasswordChanged {
            user: user.to_owned(),
            origin_stream,
            at_ms,
        }) {
            w.fired
                .push((events::USER_PASSWORD_CHANGED.to_owned(), payload));
        }
        for (id, s) in &mut w.sessions {
            if s.user == user && Some(*id) != origin_stream && s.closed.is_none() {
                s.closed = Some(StreamCondition::Reset);
            }
        }
    }
}

/// A module loaded on a [`TestHost`].
pub struct Loaded<M: Module> {
    /// The module and its host: call `instance.module` directly, or go through the encoded
    /// module calls with [`crate::ModuleCalls`] (as the server does).
    pub instance: Arc<Instance<M>>,
    test_host: Arc<TestHost>,
    config: Config,
}

impl<M: Module> std::fmt::Debug for Loaded<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("module", &M::NAME)
            .finish_non_exhaustive()
    }
}

impl<M: Module> Loaded<M> {
    /// The module.
    pub fn module(&self) -> &M {
        &self.instance.module
    }

    /// Its host handle (what the module's hooks receive).
    pub fn host(&self) -> &Host {
        &self.instance.host
    }

    /// The test host it runs on.
    pub fn test_host(&self) -> &Arc<TestHost> {
        &self.test_host
    }

    /// Deliver an event, encoded.
    ///
    /// # Errors
    /// The module's error, or an unencodable payload.
    pub fn event<T: serde::Serialize>(
        &self,
        name: &str,
        payload: &T,
    ) -> Result<EventFlow, PluginError> {
        self.instance.event(name, &wire::encode(payload)?)
    }

    /// Deliver the events fired since index `from` of [`TestHost::fired`] that this module
    /// registered for; answers the new index. (The server's bus does this after each call.)
    ///
    /// # Errors
    /// The first handler error.
    pub fn deliver_events(&self, from: usize) -> Result<usize, PluginError> {
        let fired = self.test_host.fired();
        let wanted: Vec<String> = self
            .instance
            .module
            .registrations()
            .events
            .into_iter()
            .map(|h| h.name)
            .collect();
        for (name, payload) in fired.iter().skip(from) {
            if wanted.contains(name) {
                self.instance.event(name, payload)?;
            }
        }
        Ok(fired.len())
    }

    /// Offer a stanza at `point` as the host does: to this module's first hook there that
    /// selects it (kind, `type`, child namespace), with the header the host builds. `account`
    /// and `session` are what the header names (see [`crate::stanza::StanzaHeader`]).
    /// Answers `None` when no hook selects it.
    ///
    /// # Errors
    /// The module's error.
    pub fn stanza(
        &self,
        point: StanzaPoint,
        stanza: &Element,
        account: Option<&str>,
        session: Option<u64>,
    ) -> Result<Option<Verdict>, PluginError> {
        let Some(kind) = StanzaKind::of(&stanza.name) else {
            return Ok(None);
        };
        let hooks = self.instance.module.registrations().stanza_hooks;
        let Some(index) = hooks.iter().position(|h| {
            h.point == point
                && h.selects(
                    kind,
                    stanza.attr("type"),
                    stanza.child_elements().map(|c| c.ns.as_str()),
                )
        }) else {
            return Ok(None);
        };
        let header = StanzaHeader {
            hook: u32::try_from(index).unwrap_or(u32::MAX),
            point,
            kind,
            stanza_type: stanza.attr("type"),
            from: stanza.attr("from"),
            to: stanza.attr("to"),
            id: stanza.attr("id"),
            account,
            session,
        };
        let body = wire::encode(stanza)?;
        self.instance.stanza(header, Bytes::new(&body)).map(Some)
    }

    /// Run this module's timers that are due now, in due order (the server runs them by
    /// itself).
    ///
    /// # Errors
    /// The first timer error.
    pub fn run_due_timers(&self) -> Result<usize, PluginError> {
        let now = self.test_host.now_ms();
        let due: Vec<TestTimer> = {
            let mut w = self.test_host.world();
            let (due, rest): (Vec<_>, Vec<_>) = w
                .timers
                .drain(..)
                .partition(|t| t.module == M::NAME && t.due_ms <= now);
            w.timers = rest;
            due
        };
        let mut due = due;
        due.sort_by_key(|t| (t.due_ms, t.id));
        for t in &due {
            self.instance.module.timer(
                &self.instance.host,
                TimerFired {
                    id: t.id,
                    tag: t.tag.clone(),
                },
            )?;
        }
        Ok(due.len())
    }

    /// A hot swap: `save_state`, then a new instance with `config` (or the same config) and
    /// that state; this instance's timers are dropped, as the server drops them.
    ///
    /// # Errors
    /// `save_state`'s or the new `init`'s error.
    pub fn reload(self, config: Option<Config>) -> Result<Self, PluginError> {
        let state = self.instance.module.save_state()?;
        self.instance.module.shutdown(&self.instance.host);
        self.test_host
            .world()
            .timers
            .retain(|t| t.module != M::NAME);
        let config = config.unwrap_or_else(|| self.config.clone());
        self.test_host.load_with_state(config, Some(&state))
    }
}

/// One module's context on the test host (the [`Backend`] under its [`Host`]).
struct Context {
    host: Arc<TestHost>,
    module: String,
}

impl Context {
    /// A mechanism answered `Success`: the stream's login is verified (the test host does not
    /// judge it again as the server does).
    fn note_success(&self, exchange: u64, step: &MechanismStep) {
        if let MechanismStep::Success { user, .. } = step {
            let mut w = self.host.world();
            if let Some((_, basis)) = w.exchanges.get(&exchange).cloned() {
                w.verified.insert(basis.stream, (key(user), basis));
            }
        }
    }

    /// Change session `stream` with `change`; whether it exists.
    fn with_session(&self, stream: u64, change: impl FnOnce(&mut TestSession)) -> bool {
        self.host
            .world()
            .sessions
            .get_mut(&stream)
            .map(change)
            .is_some()
    }

    /// An account's sessions that are not closed, by stream id.
    fn open_sessions(&self, user: &str) -> Vec<(u64, TestSession)> {
        let user = key(user);
        self.host
            .world()
            .sessions
            .iter()
            .filter(|(_, s)| s.user == user && s.closed.is_none())
            .map(|(id, s)| (*id, s.clone()))
            .collect()
    }
}

impl Backend for Context {
    fn call(&self, kind: u32, payload: &[u8]) -> Result<Vec<u8>, PluginError> {
        let name = host_call::name(kind);
        let refused = {
            let mut w = self.host.world();
            w.calls.push((self.module.clone(), name));
            w.fail.as_ref().and_then(|fail| fail(&self.module, name))
        };
        if let Some(e) = refused {
            return Err(e);
        }
        dispatch_host_call(self, kind, payload)
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.host
            .world()
            .logs
            .push((self.module.clone(), level, message.to_owned()));
    }

    fn now_ms(&self) -> u64 {
        self.host.now_ms()
    }

    fn random_bytes(&self, out: &mut [u8]) {
        let mut w = self.host.world();
        w.counter = w.counter.wrapping_add(1);
        out.fill(w.counter);
    }

    fn fire(&self, name: &str, payload: &[u8]) {
        self.host
            .world()
            .fired
            .push((name.to_owned(), payload.to_vec()));
    }

    fn run_blocking(&self, work: &mut dyn FnMut()) {
        work();
    }
}

/// The server's rule for a new password: 1 to 1024 bytes, and SASLprep (RFC 4013) accepts it.
fn usable(password: &str) -> Result<(), PluginError> {
    if password.is_empty() || password.len() > 1024 {
        return Err(PluginError::bad_request(
            "unusable password: must be 1 to 1024 bytes",
        ));
    }
    stringprep::saslprep(password)
        .map(|_| ())
        .map_err(|e| PluginError::bad_request(format!("unusable password: {e}")))
}

impl HostCalls for Context {
    fn host_info(&self) -> Result<HostInfo, PluginError> {
        Ok(HostInfo {
            domain: self.host.domain.clone(),
            version: "test".into(),
            public_url: self.host.world().public_url.clone(),
            scram_iterations: 10_000,
        })
    }

    fn user_exists(&self, user: &str) -> Result<bool, PluginError> {
        Ok(self.host.world().accounts.contains_key(&key(user)))
    }

    fn get_credentials(&self, user: &str) -> Result<Option<AccountCredentials>, PluginError> {
        let (account, derive, cached) = {
            let w = self.host.world();
            let Some(account) = w.accounts.get(&key(user)).cloned() else {
                return Ok(None);
            };
            let cached = w.verifier_cache.get(&account.password).cloned();
            (account, w.verifiers.clone(), cached)
        };
        let (scram_sha1, scram_sha256) = match (cached, derive) {
            (Some(pair), _) => pair,
            (None, Some(derive)) => {
                // Derived without the lock (PBKDF2 is slow), then kept.
                let pair = derive(&account.password);
                self.host
                    .world()
                    .verifier_cache
                    .insert(account.password.clone(), pair.clone());
                pair
            }
            (None, None) => {
                // Placeholder verifiers: the test host keeps passwords, not SCRAM keys.
                let secret = ScramSecret {
                    salt: account.password.as_bytes().to_vec(),
                    iterations: 4096,
                    stored_key: Vec::new(),
                    server_key: Vec::new(),
                };
                (secret.clone(), secret)
            }
        };
        Ok(Some(AccountCredentials {
            scram_sha1,
            scram_sha256,
            password_changed_at_ms: account.password_changed_at_ms,
            scram_sha512: account.scram_sha512,
        }))
    }

    fn set_password(
        &self,
        user: &str,
        password: &str,
        origin_stream: Option<u64>,
    ) -> Result<(), PluginError> {
        usable(password)?;
        let mut w = self.host.world();
        let k = key(user);
        let now = w.now_ms;
        let account = w
            .accounts
            .get_mut(&k)
            .ok_or_else(|| not_found(&format!("no account `{k}`")))?;
        account.password = password.to_owned();
        account.password_changed_at_ms = now;
        account.scram_sha512 = None;
        self.host.password_changed(&mut w, &k, origin_stream);
        Ok(())
    }

    fn get_email(&self, user: &str) -> Result<Option<String>, PluginError> {
        Ok(self
            .host
            .world()
            .accounts
            .get(&key(user))
            .and_then(|a| a.email.clone()))
    }

    fn kv_get(&self, scope: KvScope<'_>, k: &str) -> Result<Option<String>, PluginError> {
        let slot = (self.module.clone(), scope_key(&scope), k.to_owned());
        Ok(self.host.world().kv.get(&slot).cloned())
    }

    fn kv_put(&self, scope: KvScope<'_>, k: &str, value: &str) -> Result<(), PluginError> {
        let slot = (self.module.clone(), scope_key(&scope), k.to_owned());
        self.host.world().kv.insert(slot, value.to_owned());
        Ok(())
    }

    fn kv_delete(&self, scope: KvScope<'_>, k: &str) -> Result<bool, PluginError> {
        let slot = (self.module.clone(), scope_key(&scope), k.to_owned());
        Ok(self.host.world().kv.remove(&slot).is_some())
    }

    fn kv_write(&self, scope: KvScope<'_>, writes: Vec<KvWrite>) -> Result<(), PluginError> {
        let mut w = self.host.world();
        for write in writes {
            let slot = (self.module.clone(), scope_key(&scope), write.key);
            match write.value {
                Some(v) => w.kv.insert(slot, v),
                None => w.kv.remove(&slot),
            };
        }
        Ok(())
    }

    fn kv_list(
        &self,
        scope: KvScope<'_>,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, PluginError> {
        let s = scope_key(&scope);
        Ok(self
            .host
            .world()
            .kv
            .iter()
            .filter(|((m, sc, k), _)| *m == self.module && *sc == s && k.starts_with(prefix))
            .map(|((_, _, k), v)| (k.clone(), v.clone()))
            .collect())
    }

    fn list_sessions(&self, user: &str) -> Result<Vec<SessionInfo>, PluginError> {
        Ok(self
            .open_sessions(user)
            .into_iter()
            .map(|(id, s)| SessionInfo {
                stream_id: id,
                jid: s.full_jid,
                user_agent_id: s.user_agent_id,
                peer_ip: "127.0.0.1".into(),
            })
            .collect())
    }

    fn close_sessions(
        &self,
        user: &str,
        condition: StreamCondition,
        except_stream: Option<u64>,
    ) -> Result<u64, PluginError> {
        let u = key(user);
        let mut n = 0;
        for (id, s) in &mut self.host.world().sessions {
            if s.user == u && Some(*id) != except_stream && s.closed.is_none() {
                s.closed = Some(condition);
                n += 1;
            }
        }
        Ok(n)
    }

    fn send_mail(&self, mail: Mail) -> Result<u64, PluginError> {
        let mut w = self.host.world();
        w.mails.push((self.module.clone(), mail));
        let id = w.next_id;
        w.next_id += 1;
        Ok(id)
    }

    fn set_timer(&self, delay_ms: u64, tag: &str) -> Result<u64, PluginError> {
        let mut w = self.host.world();
        let id = w.next_id;
        w.next_id += 1;
        let due_ms = w.now_ms.saturating_add(delay_ms);
        w.timers.push(TestTimer {
            module: self.module.clone(),
            id,
            due_ms,
            tag: tag.to_owned(),
        });
        Ok(id)
    }

    fn call_hook(&self, name: &str, payload: &Bytes) -> Result<Vec<Vec<u8>>, PluginError> {
        let (mut replies, modules) = {
            let w = self.host.world();
            let replies: Vec<Vec<u8>> = w
                .hooks
                .get(name)
                .map(|answers| answers.iter().filter_map(|a| a(payload)).collect())
                .unwrap_or_default();
            let modules: Vec<_> = w
                .module_hooks
                .iter()
                .filter(|(_, hook, _, _)| hook == name)
                .filter_map(|(_, _, _, m)| m.upgrade())
                .collect();
            (replies, modules)
        };
        // Without the lock: a module's hook may call this host back. An error contributes
        // nothing, as on the server.
        for module in modules {
            if let Ok(Some(reply)) = module.hook(name, payload) {
                replies.push(reply);
            }
        }
        Ok(replies)
    }

    fn mechanisms(
        &self,
        stream: StreamInfo,
        profile: SaslProfile,
    ) -> Result<Vec<MechanismSpec>, PluginError> {
        let mut list: Vec<MechanismSpec> = self
            .host
            .world()
            .mechanisms
            .iter()
            .map(|(_, spec, _)| spec)
            .filter(|spec| spec.offered_on(&stream, profile))
            .cloned()
            .collect();
        // The server's order: priority, then load order (a stable sort).
        list.sort_by_key(|spec| std::cmp::Reverse(spec.priority));
        Ok(list)
    }

    fn mechanism_start(&self, start: MechanismStart) -> Result<MechanismStep, PluginError> {
        let provider = {
            let mut w = self.host.world();
            let provider = w
                .mechanisms
                .iter()
                .find(|(_, spec, _)| spec.name == start.mechanism)
                .and_then(|(_, _, p)| p.upgrade())
                .ok_or_else(|| {
                    PluginError::bad_request(format!("no module provides {}", start.mechanism))
                })?;
            let basis = TestBasis {
                stream: start.stream.id,
                started_ms: w.now_ms,
                kind: CredentialKind::of(&start.mechanism),
            };
            w.verified.remove(&basis.stream);
            w.exchanges
                .insert(start.exchange, (Arc::downgrade(&provider), basis));
            provider
        };
        let exchange = start.exchange;
        // Called without the lock: the provider may call this host back.
        let step = provider.mechanism_start(start)?;
        self.note_success(exchange, &step);
        Ok(step)
    }

    fn mechanism_step(&self, response: MechanismResponse) -> Result<MechanismStep, PluginError> {
        let provider = self
            .host
            .world()
            .exchanges
            .get(&response.exchange)
            .and_then(|(p, _)| p.upgrade())
            .ok_or_else(|| PluginError::bad_request("no such exchange"))?;
        let exchange = response.exchange;
        let step = provider.mechanism_step(response)?;
        self.note_success(exchange, &step);
        Ok(step)
    }

    fn mechanism_end(&self, exchange: u64) -> Result<(), PluginError> {
        let provider = self
            .host
            .world()
            .exchanges
            .remove(&exchange)
            .and_then(|(p, _)| p.upgrade());
        match provider {
            Some(p) => p.mechanism_end(exchange),
            None => Ok(()),
        }
    }

    fn count(
        &self,
        counter: &str,
        label: Option<(&str, &str)>,
        by: u64,
    ) -> Result<(), PluginError> {
        let key = (
            self.module.clone(),
            counter.to_owned(),
            label.map(|(n, v)| (n.to_owned(), v.to_owned())),
        );
        *self.host.world().counters.entry(key).or_default() += by;
        Ok(())
    }

    fn derive_secret(&self, label: &str) -> Result<Vec<u8>, PluginError> {
        // Deterministic and distinct per module and label (FNV-1a, stretched): a test key.
        let mut out = Vec::with_capacity(32);
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for round in 0u8..4 {
            for b in self.module.bytes().chain([0, round]).chain(label.bytes()) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            out.extend_from_slice(&h.to_le_bytes());
        }
        Ok(out)
    }

    fn route(&self, stanza: Element) -> Result<(), PluginError> {
        self.host.world().routed.push(stanza);
        Ok(())
    }

    fn send_to_session(&self, stream: u64, stanza: Element) -> Result<bool, PluginError> {
        Ok(self.with_session(stream, |s| s.outbox.push(stanza)))
    }

    fn session_get(&self, stream: u64, k: &str) -> Result<Option<Vec<u8>>, PluginError> {
        Ok(self
            .host
            .world()
            .sessions
            .get(&stream)
            .and_then(|s| s.state.get(&(self.module.clone(), k.to_owned())).cloned()))
    }

    fn session_set(
        &self,
        stream: u64,
        k: &str,
        value: Option<&Bytes>,
    ) -> Result<bool, PluginError> {
        let slot = (self.module.clone(), k.to_owned());
        Ok(self.with_session(stream, |s| {
            match value {
                Some(v) => s.state.insert(slot, v.to_vec()),
                None => s.state.remove(&slot),
            };
        }))
    }

    fn session_attach(&self, stream: u64, attached: bool) -> Result<bool, PluginError> {
        Ok(self.with_session(stream, |s| {
            s.attached.retain(|m| *m != self.module);
            if attached {
                s.attached.push(self.module.clone());
            }
        }))
    }

    fn account_sessions(&self, user: &str) -> Result<Vec<SessionView>, PluginError> {
        Ok(self
            .open_sessions(user)
            .into_iter()
            .map(|(id, s)| SessionView {
                stream: id,
                full_jid: Some(s.full_jid),
                available: s.presence.is_some(),
                priority: s.presence.unwrap_or(0),
                detached: s.detached,
            })
            .collect())
    }

    fn disco_info(&self) -> Result<DiscoInfo, PluginError> {
        Ok(DiscoInfo::default())
    }

    fn archive_append(
        &self,
        archive: &str,
        user: &str,
        with: &str,
        at_ms: u64,
        data: &Bytes,
    ) -> Result<String, PluginError> {
        let mut w = self.host.world();
        let id = format!("{:020}", w.next_id);
        w.next_id += 1;
        w.archives
            .entry((self.module.clone(), archive.to_owned(), key(user)))
            .or_default()
            .push(ArchiveItem {
                id: id.clone(),
                with: with.to_owned(),
                at_ms,
                data: data.to_vec(),
            });
        Ok(id)
    }

    fn archive_append_within(
        &self,
        archive: &str,
        user: &str,
        with: &str,
        at_ms: u64,
        data: &Bytes,
        bounds: ArchiveBounds,
    ) -> Result<ArchiveAppend, PluginError> {
        let crossed = {
            let w = self.host.world();
            let items = w
                .archives
                .get(&(self.module.clone(), archive.to_owned(), key(user)))
                .map_or(&[][..], Vec::as_slice);
            let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
            let bytes = items.iter().map(|i| count(i.data.len())).sum();
            let in_class = items
                .iter()
                .filter(|i| w.archive_classes.get(&i.id).map_or("", String::as_str) == bounds.class)
                .count();
            bounds.crossed(
                count(items.len()),
                bytes,
                count(in_class),
                count(data.len()),
            )
        };
        if let Some(bound) = crossed {
            return Ok(ArchiveAppend::Full(bound));
        }
        let id = self.archive_append(archive, user, with, at_ms, data)?;
        self.host
            .world()
            .archive_classes
            .insert(id.clone(), bounds.class);
        Ok(ArchiveAppend::Appended(id))
    }

    fn archive_query(
        &self,
        archive: &str,
        user: &str,
        query: ArchiveQuery,
    ) -> Result<ArchivePage, PluginError> {
        let w = self.host.world();
        let all = w
            .archives
            .get(&(self.module.clone(), archive.to_owned(), key(user)))
            .cloned()
            .unwrap_or_default();
        let position = |id: &Option<String>| -> Result<Option<usize>, PluginError> {
            match id {
                None => Ok(None),
                Some(id) => all
                    .iter()
                    .position(|i| i.id == *id)
                    .map(Some)
                    .ok_or_else(|| not_found(&format!("no archive entry {id}"))),
            }
        };
        let after = position(&query.after_id)?;
        let before = position(&query.before_id)?;
        let matching: Vec<ArchiveItem> = all
            .iter()
            .enumerate()
            .filter(|(i, item)| {
                after.is_none_or(|a| *i > a)
                    && before.is_none_or(|b| *i < b)
                    && query.with.as_ref().is_none_or(|w| *w == item.with)
                    && query.start_ms.is_none_or(|s| item.at_ms >= s)
                    && query.end_ms.is_none_or(|e| item.at_ms <= e)
                    && (query.ids.is_empty() || query.ids.contains(&item.id))
            })
            .map(|(_, item)| item.clone())
            .collect();
        let limit = usize::try_from(query.limit.min(1000)).unwrap_or(1000);
        let complete = matching.len() <= limit;
        let items = if query.reverse {
            matching.into_iter().rev().take(limit).collect()
        } else {
            matching.into_iter().take(limit).collect()
        };
        Ok(ArchivePage { items, complete })
    }

    fn archive_delete(
        &self,
        archive: &str,
        user: &str,
        before_ms: Option<u64>,
    ) -> Result<u64, PluginError> {
        let mut w = self.host.world();
        let Some(items) = w
            .archives
            .get_mut(&(self.module.clone(), archive.to_owned(), key(user)))
        else {
            return Ok(0);
        };
        let before = items.len();
        items.retain(|i| before_ms.is_some_and(|b| i.at_ms >= b));
        Ok(u64::try_from(before - items.len()).unwrap_or(u64::MAX))
    }

    fn archive_take(
        &self,
        archive: &str,
        user: &str,
        limit: u32,
    ) -> Result<Vec<ArchiveItem>, PluginError> {
        let mut w = self.host.world();
        let Some(items) = w
            .archives
            .get_mut(&(self.module.clone(), archive.to_owned(), key(user)))
        else {
            return Ok(Vec::new());
        };
        let n = items
            .len()
            .min(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(items.drain(..n).collect())
    }

    fn archive_count(&self, archive: &str, user: &str) -> Result<u64, PluginError> {
        Ok(self
            .host
            .world()
            .archives
            .get(&(self.module.clone(), archive.to_owned(), key(user)))
            .map_or(0, |i| u64::try_from(i.len()).unwrap_or(u64::MAX)))
    }

    fn create_account(
        &self,
        user: &str,
        password: &str,
        email: Option<&str>,
    ) -> Result<String, PluginError> {
        let k = canonical_account(user)
            .ok_or_else(|| PluginError::bad_request(format!("`{user}` is not a valid username")))?;
        usable(password)?;
        let mut w = self.host.world();
        if w.accounts.contains_key(&k) {
            return Err(PluginError::new(
                PluginErrorKind::CONFLICT,
                format!("account `{k}` exists"),
            ));
        }
        let now = w.now_ms;
        w.accounts.insert(
            k.clone(),
            TestAccount {
                password: password.to_owned(),
                email: email.map(str::to_owned),
                password_changed_at_ms: now,
                scram_sha512: None,
            },
        );
        Ok(k)
    }

    fn add_scram_verifier(
        &self,
        stream: u64,
        upgrade: ScramUpgrade,
    ) -> Result<VerifierAdded, PluginError> {
        let mut w = self.host.world();
        let Some((user, basis)) = w.verified.get(&stream).cloned() else {
            return Ok(VerifierAdded::Refused(UpgradeRefusal::NotPasswordVerified));
        };
        if basis.kind != CredentialKind::Password {
            return Ok(VerifierAdded::Refused(UpgradeRefusal::NotPasswordVerified));
        }
        let len = upgrade.hash.output_len();
        if upgrade.hash != ScramHash::Sha512 || upgrade.salted_password.len() != len {
            return Ok(VerifierAdded::Refused(UpgradeRefusal::Malformed(format!(
                "a SCRAM-{} SaltedPassword is {len} bytes, not {}",
                upgrade.hash.name(),
                upgrade.salted_password.len()
            ))));
        }
        if upgrade.salt.len() < 16 || upgrade.iterations < 4096 {
            return Ok(VerifierAdded::Refused(UpgradeRefusal::Malformed(
                "salt or iteration count too small".into(),
            )));
        }
        let Some(account) = w
            .accounts
            .get_mut(&user)
            .filter(|a| a.password_changed_at_ms < basis.started_ms)
        else {
            return Ok(VerifierAdded::Refused(UpgradeRefusal::Stale));
        };
        if account.scram_sha512.is_some() {
            return Ok(VerifierAdded::AlreadyPresent);
        }
        // The keys are not derived here (the plugin API has no SCRAM): the SaltedPassword
        // stands in for both, enough for a test to see what the module sent.
        account.scram_sha512 = Some(ScramSecret {
            salt: upgrade.salt,
            iterations: upgrade.iterations,
            stored_key: upgrade.salted_password.clone(),
            server_key: upgrade.salted_password,
        });
        Ok(VerifierAdded::Stored)
    }

    fn delete_account(&self, user: &str) -> Result<(), PluginError> {
        let k = key(user);
        let mut w = self.host.world();
        if w.accounts.remove(&k).is_none() {
            return Err(not_found(&format!("no account `{k}`")));
        }
        w.kv.retain(|(_, scope, _), _| *scope != k);
        w.archives.retain(|(_, _, u), _| *u != k);
        for s in w.sessions.values_mut() {
            if s.user == k && s.closed.is_none() {
                s.closed = Some(StreamCondition::NotAuthorized);
            }
        }
        if let Ok(payload) = wire::encode(&UserDeleted { user: k }) {
            w.fired.push((events::USER_DELETED.to_owned(), payload));
        }
        Ok(())
    }

    fn session_presence(&self, stream: u64, priority: Option<i8>) -> Result<bool, PluginError> {
        Ok(self.with_session(stream, |s| s.presence = priority))
    }

    fn session_keep(&self, stream: u64, keep_ms: Option<u64>) -> Result<bool, PluginError> {
        Ok(self.with_session(stream, |s| s.keep_ms = keep_ms))
    }

    fn close_session(&self, stream: u64, condition: StreamCondition) -> Result<bool, PluginError> {
        Ok(self.with_session(stream, |s| s.closed = Some(condition)))
    }

    fn acks_enable(&self, stream: u64, settings: AckSettings) -> Result<bool, PluginError> {
        let mut enabled = false;
        self.with_session(stream, |s| {
            if s.acks.is_none() {
                s.keep_ms = Some(settings.keep_ms);
                s.acks = Some((settings, AckQueue::default()));
                enabled = true;
            }
        });
        Ok(enabled)
    }

    fn acks_status(&self, stream: u64) -> Result<Option<AckStatus>, PluginError> {
        let world = self.host.world();
        Ok(world.sessions.get(&stream).and_then(|s| {
            s.acks
                .as_ref()
                .map(|(settings, q)| q.status(&settings.ns, s.detached))
        }))
    }

    fn acks_ack(&self, stream: u64, h: u32) -> Result<AckOutcome, PluginError> {
        let mut outcome = AckOutcome::NotEnabled;
        self.with_session(stream, |s| {
            if let Some((_, q)) = s.acks.as_mut() {
                outcome = q.outcome(h, drop);
            }
        });
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::Verdict;

    /// A module that keeps a counter per account and answers it over IQ.
    struct Counter {
        step: u64,
    }

    crate::options! {
        struct Opts {
            /// The step.
            counter_step: u64 = 1, range 1..=10;
        }
    }

    impl Module for Counter {
        const NAME: &'static str = "counter";
        const VERSION: &'static str = "1.0.0";
        fn manifest() -> Manifest {
            Manifest {
                options: Opts::specs(),
                ..Manifest::default()
            }
        }
        fn init(host: &Host, config: &Config, restore: Option<&[u8]>) -> Result<Self, PluginError> {
            host.set_timer(1000, "tick")?;
            let step =
                Opts::from_config(config)?.counter_step + restore.map_or(0, |r| u64::from(r[0]));
            Ok(Counter { step })
        }
        fn registrations(&self) -> Registrations {
            Registrations::default()
        }
        fn iq(&self, host: &Host, request: IqRequest) -> Result<Option<Element>, PluginError> {
            let user = request.stream.user.unwrap_or_default();
            let scope = KvScope::Account(&user);
            let n: u64 = host
                .kv_get(scope, "n")?
                .map_or(0, |v| v.parse().unwrap_or(0))
                + self.step;
            host.kv_put(scope, "n", &n.to_string())?;
            Ok(Some(Element::new("n", "urn:test").with_text(n.to_string())))
        }
        fn timer(&self, host: &Host, timer: TimerFired) -> Result<(), PluginError> {
            host.log(LogLevel::Info, &timer.tag);
            Ok(())
        }
        fn save_state(&self) -> Result<Vec<u8>, PluginError> {
            Ok(vec![5])
        }
        fn stanza(&self, _: &Host, _: crate::Stanza<'_>) -> Result<Verdict, PluginError> {
            Ok(Verdict::Pass)
        }
    }

    fn ask(loaded: &Loaded<Counter>, user: &str) -> Result<String, PluginError> {
        use crate::ModuleCalls;
        let request = IqRequest {
            stream: StreamInfo {
                user: Some(user.into()),
                ..StreamInfo::default()
            },
            stanza: Element::new("iq", "jabber:client"),
        };
        Ok(loaded
            .instance
            .iq(request)?
            .map(|e| e.text())
            .unwrap_or_default())
    }

    #[test]
    fn a_module_runs_on_the_test_host_through_encoded_calls() {
        let host = TestHost::new("example.org");
        host.add_account("alice", "pw", Some("alice@example.net"));
        let mut config = Config::default();
        config.set("counter_step", OptionValue::Integer(2));
        let loaded = host.load::<Counter>(config).expect("load");
        assert_eq!(ask(&loaded, "alice").expect("iq"), "2");
        assert_eq!(
            ask(&loaded, "Alice").expect("iq"),
            "4",
            "accounts by canonical name"
        );
        assert_eq!(
            host.kv("counter", Some("alice")),
            [("n".to_owned(), "4".to_owned())]
        );
        assert!(host.calls().contains(&("counter".to_owned(), "kv_put")));
        // Timers run when due, and a reload hands state over and drops the old timers.
        assert_eq!(loaded.run_due_timers().expect("timers"), 0);
        host.advance(1000);
        assert_eq!(loaded.run_due_timers().expect("timers"), 1);
        assert_eq!(host.logs().last().map(|l| l.2.as_str()), Some("tick"));
        let loaded = loaded.reload(None).expect("reload");
        assert_eq!(loaded.module().step, 7, "2 from the config + 5 handed over");
        assert_eq!(host.timers().len(), 1, "the new generation's timer only");
        // Failures are injected per call.
        host.fail_when(|_, call| (call == "kv_get").then(|| PluginError::host("store down")));
        assert_eq!(ask(&loaded, "alice").unwrap_err().message, "store down");
        host.heal();
        assert_eq!(ask(&loaded, "alice").expect("iq"), "11");
    }

    /// A one-step mechanism needing tls-exporter: succeeds for the initial response "ok".
    struct Mech;

    impl Module for Mech {
        const NAME: &'static str = "mech";
        const VERSION: &'static str = "1.0.0";
        fn manifest() -> Manifest {
            Manifest::default()
        }
        fn init(_: &Host, _: &Config, _: Option<&[u8]>) -> Result<Self, PluginError> {
            Ok(Mech)
        }
        fn registrations(&self) -> Registrations {
            Registrations {
                mechanisms: vec![MechanismSpec {
                    name: "X-TEST".into(),
                    priority: 5,
                    tls_only: true,
                    sasl2: true,
                    legacy: false,
                    channel_binding: Some("tls-exporter".into()),
                    hidden: false,
                }],
                ..Registrations::default()
            }
        }
        fn mechanism_start(
            &self,
            _: &Host,
            start: MechanismStart,
        ) -> Result<MechanismStep, PluginError> {
            Ok(match start.initial_response.as_deref() {
                Some(b"ok") => MechanismStep::Success {
                    user: "alice".into(),
                    additional_data: None,
                },
                _ => MechanismStep::Challenge {
                    data: b"again".to_vec(),
                },
            })
        }
        fn mechanism_step(
            &self,
            _: &Host,
            r: MechanismResponse,
        ) -> Result<MechanismStep, PluginError> {
            Ok(MechanismStep::Success {
                user: String::from_utf8_lossy(&r.response).into_owned(),
                additional_data: None,
            })
        }
    }

    #[test]
    fn mechanisms_of_loaded_modules_are_listed_by_the_servers_rule_and_routed_to_them() {
        let host = TestHost::new("example.org");
        let _mech = host.load::<Mech>(Config::default()).expect("load");
        let other = host.load::<Counter>(Config::default()).expect("load");
        let h = other.host();
        let mut stream = StreamInfo {
            secure: true,
            ..StreamInfo::default()
        };
        assert!(h
            .mechanisms(stream.clone(), SaslProfile::Sasl2)
            .expect("list")
            .is_empty());
        stream.channel_bindings.tls_exporter = Some(vec![7; 32]);
        let names: Vec<String> = h
            .mechanisms(stream.clone(), SaslProfile::Sasl2)
            .expect("list")
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, ["X-TEST"]);
        let start = |exchange, ir: &[u8]| MechanismStart {
            exchange,
            mechanism: "X-TEST".into(),
            stream: stream.clone(),
            profile: SaslProfile::Sasl2,
            initial_response: Some(ir.to_vec()),
            user_agent_id: None,
            authenticate: None,
        };
        assert!(matches!(
            h.mechanism_start(start(1, b"ok")),
            Ok(MechanismStep::Success { .. })
        ));
        assert!(matches!(
            h.mechanism_start(start(2, b"no")),
            Ok(MechanismStep::Challenge { .. })
        ));
        let step = h.mechanism_step(MechanismResponse {
            exchange: 2,
            response: b"bob".to_vec(),
        });
        assert!(matches!(step, Ok(MechanismStep::Success { user, .. }) if user == "bob"));
        h.mechanism_end(2).expect("end");
        assert!(h
            .mechanism_step(MechanismResponse {
                exchange: 2,
                response: Vec::new(),
            })
            .is_err());
        let mut unknown = start(3, b"ok");
        unknown.mechanism = "NOPE".into();
        assert_eq!(
            h.mechanism_start(unknown).unwrap_err().kind,
            PluginErrorKind::BAD_REQUEST
        );
    }

    #[test]
    fn account_changes_behave_as_the_servers() {
        let host = TestHost::new("example.org");
        host.add_account("alice", "old", None);
        let s1 = host.add_session("alice", "one");
        let s2 = host.add_session("alice", "two");
        let loaded = host.load::<Counter>(Config::default()).expect("load");
        let h = loaded.host();
        host.advance(5);
        h.set_password("alice", "new", Some(s1)).expect("set");
        assert_eq!(
            host.account("alice").map(|a| a.password),
            Some("new".into())
        );
        let changed: Vec<UserPasswordChanged> = host.fired_as(events::USER_PASSWORD_CHANGED);
        assert_eq!(changed[0].origin_stream, Some(s1));
        assert_eq!(changed[0].at_ms, T0 + 5);
        assert_eq!(host.session(s1).and_then(|s| s.closed), None);
        assert_eq!(
            host.session(s2).and_then(|s| s.closed),
            Some(StreamCondition::Reset)
        );
        assert_eq!(
            h.create_account("alice", "x", None).unwrap_err().kind,
            PluginErrorKind::CONFLICT
        );
        h.kv_put(KvScope::Account("alice"), "k", "v").expect("put");
        h.delete_account("alice").expect("delete");
        assert!(host.kv("counter", Some("alice")).is_empty());
        assert_eq!(
            h.delete_account("alice").unwrap_err().kind,
            PluginErrorKind::NOT_FOUND
        );
        assert_eq!(host.fired_as::<UserDeleted>(events::USER_DELETED).len(), 1);
        // Real verifiers when the test provides them, derived once per password.
        let derived = Arc::new(Mutex::new(0));
        let count = derived.clone();
        host.set_verifiers(move |pw| {
            *count.lock().expect("count") += 1;
            let s = ScramSecret {
                salt: pw.as_bytes().to_vec(),
                iterations: 1,
                stored_key: vec![1],
                server_key: vec![2],
            };
            (s.clone(), s)
        });
        host.add_account("bob", "bob pw", None);
        for _ in 0..3 {
            let c = h.get_credentials("bob").expect("creds").expect("bob");
            assert_eq!(c.scram_sha256.stored_key, vec![1]);
        }
        assert_eq!(*derived.lock().expect("count"), 1);
    }
}
