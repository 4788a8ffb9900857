//! Live module instances and the routing tables built from their registrations.
//!
//! The tables are an immutable snapshot (`Arc<Routes>`) replaced as a whole on every load or
//! unload; callers clone the `Arc` and hold no lock while they call into a module, so a plugin
//! that calls back into the host (which may call another plugin) can never deadlock the swap.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use abi_stable::std_types::{RSlice, RStr};
use dashmap::DashMap;
use tessera_plugin_api::abi::PluginInstanceBox;
use tessera_plugin_api::calls::{module_call, ModuleTransport};
use tessera_plugin_api::protocol::{
    ElementSpec, HookSpec, Manifest, MechanismSpec, Registrations, StreamPhase,
};
use tessera_plugin_api::{
    EventFlow, ModuleCalls, PluginError, PluginErrorKind, StanzaHook, StanzaKind, StanzaPoint,
};

use tessera_plugin_api::stanza::{StanzaHeader, Verdict};
use tessera_plugin_api::wire;

use crate::runtime::handover::{Entry, Gate, Redirect};

/// A callback slower than this is logged: callbacks run inline on connection tasks.
const SLOW_CALL_MS: u128 = 5;

/// A live plugin instance.
pub struct Module {
    /// Module name.
    pub name: String,
    /// Module version.
    pub version: String,
    /// Build id.
    pub build_id: String,
    /// The file it was loaded from.
    pub source: PathBuf,
    /// The staged copy that is mapped.
    pub staged: PathBuf,
    /// Load time, ms since the epoch.
    pub loaded_at_ms: u64,
    /// Size of the mapped file.
    pub mapped_bytes: u64,
    /// The generation id (timers are delivered to this generation only).
    pub handle: u64,
    /// Options and dependencies.
    pub manifest: Manifest,
    /// What it asked to be routed.
    pub registrations: Registrations,
    instance: PluginInstanceBox,
    retired: std::sync::atomic::AtomicBool,
    /// Every call passes it, so that a reload can pause this generation and hand its callers
    /// over to the successor ([`crate::runtime::handover`]).
    gate: Gate<Handover>,
    /// Its calls, failures and time, for `/metrics` (shared by its generations).
    pub stats: crate::metrics::CallStats,
}

/// What a replaced generation hands its callers over to.
#[derive(Clone, Debug)]
pub struct Handover {
    /// The successor, held weakly: a chain of replaced generations must not keep each other
    /// alive (each is drained when nothing else holds it).
    pub next: std::sync::Weak<Module>,
    /// For each of this generation's stanza hooks, the successor's hook with the same
    /// selector, if it has one: a stanza call names its hook by number.
    pub stanza_hooks: Arc<[Option<u32>]>,
}

impl Handover {
    /// The hand-over from `old` to `new`.
    pub fn between(old: &Module, new: &Arc<Module>) -> Self {
        let theirs = &new.registrations.stanza_hooks;
        let stanza_hooks = old
            .registrations
            .stanza_hooks
            .iter()
            .map(|spec| {
                theirs
                    .iter()
                    .position(|s| s == spec)
                    .and_then(|i| u32::try_from(i).ok())
            })
            .collect();
        Self {
            next: Arc::downgrade(new),
            stanza_hooks,
        }
    }
}

/// A call refused at the gate or handed to a successor that is gone.
fn not_served(module: &str) -> PluginError {
    PluginError::new(
        PluginErrorKind::INTERNAL,
        format!("module {module} is being reloaded; the call was not served"),
    )
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl Module {
    /// Wrap an instantiated plugin and ask for its registrations.
    ///
    /// # Errors
    /// The module's failure to answer with its registrations.
    pub fn new(
        lib: &crate::runtime::loader::LoadedLibrary,
        handle: u64,
        instance: PluginInstanceBox,
        loaded_at_ms: u64,
    ) -> Result<Self, PluginError> {
        let mut module = Self {
            name: lib.info.name.clone(),
            version: lib.info.version.clone(),
            build_id: lib.info.build_id.clone(),
            source: lib.source.clone(),
            staged: lib.staged.clone(),
            loaded_at_ms,
            mapped_bytes: lib.mapped_bytes,
            handle,
            manifest: lib.manifest.clone(),
            registrations: Registrations::default(),
            instance,
            retired: std::sync::atomic::AtomicBool::new(false),
            gate: Gate::new(handle),
            stats: crate::metrics::CallStats::default(),
        };
        module.registrations = ModuleCalls::registrations(&module)?;
        Ok(module)
    }

    /// Deliver one event.
    ///
    /// # Errors
    /// The plugin's error (already logged).
    pub fn event(&self, name: &str, payload: &[u8]) -> Result<EventFlow, PluginError> {
        let _inside = match self.gate.enter(Redirect::Yes) {
            Entry::Here(inside) => inside,
            Entry::Successor(h) => match h.next.upgrade() {
                Some(next) => return next.event(name, payload),
                None => return Err(not_served(&self.name)),
            },
            Entry::Skip => return Ok(EventFlow::Continue),
            Entry::Refused => return Err(not_served(&self.name)),
        };
        let _effects = crate::runtime::effects::scope();
        let started = Instant::now();
        let r = self
            .instance
            .event(RStr::from_str(name), RSlice::from_slice(payload))
            .into_result()
            .map_err(PluginError::from);
        self.note_duration(name, started);
        r.inspect_err(|e| self.log_failure(name, e))
    }

    /// Ask for the hot-swap state.
    ///
    /// # Errors
    /// The plugin's error.
    pub fn save_state(&self) -> Result<Vec<u8>, PluginError> {
        self.instance
            .save_state()
            .into_result()
            .map(|v| v.into_vec())
            .map_err(PluginError::from)
    }

    /// The gate of this generation, which a reload pauses ([`crate::runtime::handover`]).
    pub fn gate(&self) -> &Gate<Handover> {
        &self.gate
    }

    /// Whether this generation was shut down (a replaced or unloaded module after draining).
    pub fn is_retired(&self) -> bool {
        self.retired.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Tell the instance it will get no further calls.
    pub fn shutdown(&self) {
        self.retired
            .store(true, std::sync::atomic::Ordering::Release);
        self.instance.shutdown();
    }

    fn note_duration(&self, what: &str, started: Instant) {
        let ms = started.elapsed().as_millis();
        if ms > SLOW_CALL_MS {
            tracing::warn!(plugin = %self.name, call = what, ms = ms as u64, "slow plugin callback");
        }
    }

    fn log_failure(&self, what: &str, e: &PluginError) {
        if !e.is_unsupported() {
            note_failure();
            self.stats.failure(e.kind == PluginErrorKind::PANICKED);
        }
        if e.kind == PluginErrorKind::PANICKED {
            tracing::error!(plugin = %self.name, call = what, message = %e.message, "plugin panicked; the call failed, the server lives on");
        } else if !e.is_unsupported() {
            tracing::warn!(plugin = %self.name, call = what, error = %e, "plugin call failed");
        }
    }
}

/// Every call of [`ModuleCalls`] on a module goes through here: panics inside the plugin come
/// back as [`PluginErrorKind::PANICKED`] and are logged with the module's name, and slow calls
/// are logged too.
impl ModuleTransport for Module {
    fn call_raw(&self, kind: u32, payload: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        self.call_through_gate(kind, payload, redirect_of(kind))
    }

    fn answer_failed(&self, kind: u32, error: &PluginError) {
        self.log_failure(module_call::name(kind), error);
    }
}

/// Calls to one generation even after it handed over to a successor: the elements of a
/// pre-auth stream whose SASL exchange began on it (`c2s::conn` pins them).
#[derive(Debug)]
pub struct ThisGeneration<'a>(&'a Module);

impl ModuleTransport for ThisGeneration<'_> {
    fn call_raw(&self, kind: u32, payload: Vec<u8>) -> Result<Vec<u8>, PluginError> {
        self.0.call_through_gate(kind, payload, Redirect::Stay)
    }

    fn answer_failed(&self, kind: u32, error: &PluginError) {
        self.0.answer_failed(kind, error);
    }
}

impl Module {
    /// This generation's calls, never redirected to a successor.
    pub fn this_generation(&self) -> ThisGeneration<'_> {
        ThisGeneration(self)
    }

    fn call_through_gate(
        &self,
        kind: u32,
        payload: Vec<u8>,
        redirect: Redirect,
    ) -> Result<Vec<u8>, PluginError> {
        let _inside = match self.gate.enter(redirect) {
            Entry::Here(inside) => inside,
            Entry::Successor(h) => {
                let Some(next) = h.next.upgrade() else {
                    return Err(not_served(&self.name));
                };
                if kind != module_call::stanza {
                    return next.call_raw(kind, payload);
                }
                return match renumber_stanza_call(&payload, &h.stanza_hooks)? {
                    Some(payload) => next.call_raw(kind, payload),
                    // The successor dropped that hook: as if it had never been called.
                    None => wire::encode(&Verdict::Pass),
                };
            }
            // Only a timer is skipped, and it answers `()`, which encodes as nothing.
            Entry::Skip => return Ok(Vec::new()),
            Entry::Refused => return Err(not_served(&self.name)),
        };
        let what = module_call::name(kind);
        let answer = {
            // Effects (stanzas the call sent) are applied when this scope ends, before the
            // generation that served is recorded: they may call modules themselves.
            let _effects = crate::runtime::effects::scope();
            let started = Instant::now();
            let answer = self
                .instance
                .call(kind, RSlice::from_slice(&payload))
                .into_result()
                .map(|a| a.into_vec())
                .map_err(PluginError::from);
            self.note_duration(what, started);
            self.stats.call(started.elapsed().as_secs_f64());
            answer
        };
        // Set last, so that the outermost call on this thread is the one recorded.
        LAST_SERVED.with(|last| last.set(self.handle));
        answer.inspect_err(|e| self.log_failure(what, e))
    }

    /// The generation that served the last call made on this thread through `self`: `self`,
    /// or a successor the call was handed to. A pre-auth stream pins it, so that its SASL
    /// exchange goes on where it began.
    pub fn served_last(self: &Arc<Self>) -> Arc<Module> {
        let handle = LAST_SERVED.with(std::cell::Cell::get);
        let mut generation = self.clone();
        loop {
            if generation.handle == handle {
                return generation;
            }
            match generation.gate.successor().and_then(|h| h.next.upgrade()) {
                Some(next) => generation = next,
                None => return self.clone(),
            }
        }
    }
}

/// A stanza call's payload with its hook renumbered for the successor (`None`: it has no such
/// hook).
fn renumber_stanza_call(
    payload: &[u8],
    map: &[Option<u32>],
) -> Result<Option<Vec<u8>>, PluginError> {
    let (mut header, body): (StanzaHeader<'_>, &wire::Bytes) = wire::decode("stanza", payload)?;
    let Some(Some(hook)) = usize::try_from(header.hook).ok().and_then(|i| map.get(i)) else {
        return Ok(None);
    };
    header.hook = *hook;
    wire::encode(&(header, body)).map(Some)
}

thread_local! {
    /// The generation that served the last module call made on this thread.
    static LAST_SERVED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Where a call of `kind` may go once its generation has handed over to a successor.
fn redirect_of(kind: u32) -> Redirect {
    match kind {
        // The exchange lives in the generation that started it (see `runtime::exchanges`).
        module_call::mechanism_step | module_call::mechanism_end => Redirect::Stay,
        // A timer is this generation's own; the successor re-arms what it took over.
        module_call::timer => Redirect::Drop,
        _ => Redirect::Yes,
    }
}

thread_local! {
    static FAILURES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many plugin calls and host calls have failed on this thread so far. Everything a plugin
/// call sets off runs on the calling thread, so a caller that keeps a result (the pre-auth
/// features cache) compares this before and after and keeps only a result built without a
/// failure anywhere beneath it (a module that failed once would otherwise be left out for good).
pub fn failures_on_this_thread() -> u64 {
    FAILURES.with(std::cell::Cell::get)
}

/// Count a failed call (see [`failures_on_this_thread`]).
pub(crate) fn note_failure() {
    FAILURES.with(|f| f.set(f.get().wrapping_add(1)));
}

/// Routing tables: who handles what. Rebuilt from scratch on every change.
#[derive(Debug, Default)]
pub struct Routes {
    /// All live modules in load order.
    pub modules: Vec<Arc<Module>>,
    /// Stream elements by (namespace, name).
    pub elements: HashMap<(String, String), (StreamPhase, Arc<Module>)>,
    /// IQ namespaces.
    pub iq: HashMap<String, Arc<Module>>,
    /// IQ namespaces answered before authentication (in-band registration).
    pub pre_auth_iq: HashMap<String, Arc<Module>>,
    /// Mechanisms in offer order (priority, then registration order).
    pub mechanisms: Vec<(MechanismSpec, Arc<Module>)>,
    /// Bus events by name, highest priority first.
    pub events: HashMap<String, Vec<(i32, Arc<Module>)>>,
    /// Query hooks by name, highest priority first.
    pub hooks: HashMap<String, Vec<(i32, Arc<Module>)>>,
    /// HTTP route prefixes, longest first.
    pub http: Vec<(String, Arc<Module>)>,
    /// Contributors to `<stream:features/>`.
    pub stream_features: Vec<Arc<Module>>,
    /// XEP-0030 features added by modules.
    pub disco_features: Vec<String>,
    /// XEP-0030 identities added by modules.
    pub disco_identities: Vec<tessera_plugin_api::protocol::DiscoIdentity>,
    /// Stanza hooks by point (indexed by [`point_index`]), highest priority first.
    pub stanza_hooks: [Vec<StanzaHookEntry>; 5],
    /// Some module hooks clients' broadcast presence (a presence module): it decides which
    /// sessions are available, and a session that sent no presence is not (RFC 6121 §8.5.2).
    pub tracks_presence: bool,
    /// Pre-auth `<stream:features/>` per stream class, filled on first use. It lives in the
    /// routes, so every load, unload, reload or option change (which all build new routes)
    /// starts it afresh.
    pub pre_auth_features: crate::c2s::features::FeatureCache,
}

/// One registered stanza hook.
#[derive(Debug)]
pub struct StanzaHookEntry {
    /// The selector.
    pub spec: StanzaHook,
    /// Its index in the module's registrations (passed back in the header).
    pub id: u32,
    /// The module.
    pub module: Arc<Module>,
}

/// The slot of a point in [`Routes::stanza_hooks`].
pub const fn point_index(point: StanzaPoint) -> usize {
    match point {
        StanzaPoint::ClientIn => 0,
        StanzaPoint::ToBare => 1,
        StanzaPoint::ToFull => 2,
        StanzaPoint::Undeliverable => 3,
        StanzaPoint::SessionOut => 4,
    }
}

impl Routes {
    /// The hooks at a point, highest priority first.
    pub fn stanza_hooks(&self, point: StanzaPoint) -> &[StanzaHookEntry] {
        self.stanza_hooks
            .get(point_index(point))
            .map_or(&[], Vec::as_slice)
    }
}

fn add_by_priority(
    map: &mut HashMap<String, Vec<(i32, Arc<Module>)>>,
    specs: &[HookSpec],
    m: &Arc<Module>,
) {
    for spec in specs {
        let list = map.entry(spec.name.clone()).or_default();
        list.push((spec.priority, m.clone()));
        // Stable: equal priorities keep load order.
        list.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    }
}

impl Routes {
    /// Build the tables for a set of modules; a later module loses conflicts and they are
    /// reported in the returned list.
    pub fn build(modules: Vec<Arc<Module>>) -> (Self, Vec<String>) {
        let mut r = Routes::default();
        let mut conflicts = Vec::new();
        for m in &modules {
            let reg = &m.registrations;
            for ElementSpec { name, ns, phase } in &reg.stream_elements {
                let key = (ns.clone(), name.clone());
                if let Some((_, other)) = r.elements.get(&key) {
                    conflicts.push(format!(
                        "{}: element {{{ns}}}{name} is already handled by {}",
                        m.name, other.name
                    ));
                } else {
                    r.elements.insert(key, (*phase, m.clone()));
                }
            }
            for (table, namespaces, what) in [
                (&mut r.iq, &reg.iq_namespaces, "iq namespace"),
                (
                    &mut r.pre_auth_iq,
                    &reg.pre_auth_iq_namespaces,
                    "pre-auth iq namespace",
                ),
            ] {
                for ns in namespaces {
                    if let Some(other) = table.get(ns) {
                        conflicts.push(format!(
                            "{}: {what} {ns} is already handled by {}",
                            m.name, other.name
                        ));
                    } else {
                        table.insert(ns.clone(), m.clone());
                    }
                }
            }
            for spec in &reg.mechanisms {
                if let Some((_, other)) = r.mechanisms.iter().find(|(s, _)| s.name == spec.name) {
                    conflicts.push(format!(
                        "{}: mechanism {} is already provided by {}",
                        m.name, spec.name, other.name
                    ));
                } else {
                    r.mechanisms.push((spec.clone(), m.clone()));
                }
            }
            add_by_priority(&mut r.events, &reg.events, m);
            add_by_priority(&mut r.hooks, &reg.hooks, m);
            for prefix in &reg.http_routes {
                r.http.push((prefix.clone(), m.clone()));
            }
            if reg.stream_features {
                r.stream_features.push(m.clone());
            }
            r.disco_features.extend(reg.disco_features.iter().cloned());
            r.disco_identities
                .extend(reg.disco_identities.iter().cloned());
            for (id, spec) in (0u32..).zip(&reg.stanza_hooks) {
                if let Some(slot) = r.stanza_hooks.get_mut(point_index(spec.point)) {
                    slot.push(StanzaHookEntry {
                        spec: spec.clone(),
                        id,
                        module: m.clone(),
                    });
                }
            }
        }
        r.tracks_presence = r.stanza_hooks(StanzaPoint::ClientIn).iter().any(|h| {
            h.spec
                .selects(StanzaKind::Presence, None, std::iter::empty())
        });
        for slot in &mut r.stanza_hooks {
            // Stable: equal priorities keep load order.
            slot.sort_by_key(|entry| std::cmp::Reverse(entry.spec.priority));
        }
        r.mechanisms
            .sort_by_key(|entry| std::cmp::Reverse(entry.0.priority));
        r.http.sort_by_key(|entry| std::cmp::Reverse(entry.0.len()));
        r.modules = modules;
        (r, conflicts)
    }

    /// The module registered for a name.
    pub fn module(&self, name: &str) -> Option<&Arc<Module>> {
        self.modules.iter().find(|m| m.name == name)
    }
}

/// The set of live modules, swappable as a whole.
#[derive(Debug, Default)]
pub struct Registry {
    routes: RwLock<Arc<Routes>>,
    by_handle: DashMap<u64, Arc<Module>>,
    /// The newest generation ever installed (generation ids only grow): a newer one is still
    /// starting.
    newest_installed: std::sync::atomic::AtomicU64,
}

impl Registry {
    /// The current routing snapshot.
    pub fn routes(&self) -> Arc<Routes> {
        match self.routes.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The module of a generation id (for timers), if it is still live.
    pub fn by_handle(&self, handle: u64) -> Option<Arc<Module>> {
        self.by_handle.get(&handle).map(|m| m.clone())
    }

    /// Whether a generation was created but not yet installed (its `init` may have set
    /// timers that fire before the install).
    pub fn is_starting(&self, handle: u64) -> bool {
        handle
            > self
                .newest_installed
                .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Replace the module list; returns routing conflicts (the earlier module wins each).
    pub fn install(&self, modules: Vec<Arc<Module>>) -> Vec<String> {
        for m in &modules {
            self.by_handle.insert(m.handle, m.clone());
            self.newest_installed
                .fetch_max(m.handle, std::sync::atomic::Ordering::AcqRel);
        }
        self.by_handle
            .retain(|h, _| modules.iter().any(|m| m.handle == *h));
        let (routes, conflicts) = Routes::build(modules);
        let routes = Arc::new(routes);
        match self.routes.write() {
            Ok(mut w) => *w = routes,
            Err(poisoned) => *poisoned.into_inner() = routes,
        }
        conflicts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_plugin_api::stanza::StanzaPoint;

    fn call(hook: u32) -> Vec<u8> {
        let header = StanzaHeader {
            hook,
            point: StanzaPoint::ToFull,
            kind: StanzaKind::Message,
            stanza_type: Some("chat"),
            from: Some("a@x/r"),
            to: Some("b@x/r"),
            id: Some("m1"),
            account: Some("b"),
            session: Some(7),
        };
        wire::encode(&(header, wire::Bytes::new(b"<message/>"))).expect("encode")
    }

    /// A stanza call handed to a successor names the successor's hook with the same selector,
    /// and a hook the successor dropped is answered as if it had passed.
    #[test]
    fn a_handed_over_stanza_call_is_renumbered_for_the_successor() {
        let map = [None, Some(0), Some(3)];
        let moved = renumber_stanza_call(&call(2), &map)
            .expect("decodes")
            .expect("the successor has it");
        assert_eq!(moved, call(3), "only the hook number changed");
        assert_eq!(renumber_stanza_call(&call(0), &map).expect("decodes"), None);
        assert_eq!(renumber_stanza_call(&call(9), &map).expect("decodes"), None);
        assert!(renumber_stanza_call(b"\xff", &map).is_err());
    }
}
