//! Hot swap: loading, unloading and reloading modules on a running server (issue 8, and
//! docs/plugin-abi.md "Hot swap").
//!
//! The [`ModuleManager`] owns the list of module generations. Every operation is serialised by
//! one async mutex; the routing tables are replaced as a whole
//! ([`crate::runtime::modules::Registry::install`]), so a call in flight finishes on the generation it
//! started on (it holds that `Arc<Module>`) and new calls go to the new one. A replaced or unloaded generation is *drained*: the manager waits until no
//! one else holds it (or [`DRAIN_TIMEOUT`]), drops SASL exchanges still pinned to it (their next
//! step fails, so the client gets `<temporary-auth-failure/>`), calls `shutdown()` and drops the
//! instance. Libraries are never `dlclose`d: each generation stays mapped until restart and is
//! listed as `retired` with its mapped size (so is a refused build that passed the loader's
//! gates: it is mapped too); [`MAX_GENERATIONS`] bounds the growth per module.

use crate::metrics::ModuleOperation;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tessera_plugin_api::events::{self, ModuleEvent};

use crate::config::Config;
use crate::runtime::modules::{Handover, Module};
use crate::startup::PreparedModule;
use crate::Shared;

pub mod config;
mod error;
mod generation;

pub use error::SwapError;
pub use generation::{GenState, Generation};

/// Generations (running, draining or retired) kept mapped per module before a reload is refused.
pub const MAX_GENERATIONS: usize = 64;
/// How long a replaced generation may stay in use before its pinned exchanges are dropped.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
const DRAIN_POLL: Duration = Duration::from_millis(50);
/// How long a reload waits for the calls inside the old instance to return before it gives up
/// (callbacks are meant to take microseconds; the slow-callback warning is at 5 ms).
pub const QUIESCE_TIMEOUT: Duration = Duration::from_secs(5);

/// Owns the module generations and runs load, unload, reload and config reload.
#[derive(Debug)]
pub struct ModuleManager {
    op: tokio::sync::Mutex<()>,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    generations: Vec<Generation>,
}

impl ModuleManager {
    /// A manager for a server started with `config`.
    pub fn new(config: Config) -> Self {
        Self {
            op: tokio::sync::Mutex::new(()),
            inner: Mutex::new(Inner {
                config,
                generations: Vec::new(),
            }),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The configuration modules are loaded from (replaced by a config reload).
    pub fn config(&self) -> Config {
        self.inner().config.clone()
    }

    pub(crate) fn set_config(&self, config: Config) {
        self.inner().config = config;
    }

    /// Every generation, running ones first (in load order), then draining and retired ones.
    pub fn generations(&self) -> Vec<Generation> {
        let mut all = self.inner().generations.clone();
        all.sort_by_key(|g| g.state != GenState::Running);
        all
    }

    pub(crate) fn record(&self, m: &Module, state: GenState) {
        self.inner().generations.push(Generation::of(m, state));
    }

    fn set_state(&self, handle: u64, state: GenState) {
        if let Some(g) = self
            .inner()
            .generations
            .iter_mut()
            .find(|g| g.handle == handle)
        {
            g.state = state;
        }
    }

    /// Mapped generations of `name`, all mapped generations, and all mapped bytes.
    fn totals(&self, name: &str) -> (usize, usize, u64) {
        let inner = self.inner();
        let count = inner.generations.iter().filter(|g| g.name == name).count();
        let bytes = inner.generations.iter().map(|g| g.mapped_bytes).sum();
        (count, inner.generations.len(), bytes)
    }

    pub(crate) fn check_growth(&self, name: &str) -> Result<(), SwapError> {
        let (count, total, bytes) = self.totals(name);
        if count >= MAX_GENERATIONS {
            return Err(SwapError::TooManyGenerations {
                module: name.to_owned(),
                count,
                limit: MAX_GENERATIONS,
                total,
                bytes,
            });
        }
        Ok(())
    }

    fn mapped_note(&self, name: &str) -> String {
        let (count, total, bytes) = self.totals(name);
        format!("{count} generation(s) of {name} mapped; {total} in all, {bytes} bytes")
    }

    /// Run one management operation at a time, on a blocking thread (plugins' `init`,
    /// `save_state` and `shutdown` are synchronous).
    pub async fn run<F>(shared: &Arc<Shared>, op: F) -> Result<String, SwapError>
    where
        F: FnOnce(&Arc<Shared>) -> Result<String, SwapError> + Send + 'static,
    {
        let _serialised = shared.modules.op.lock().await;
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || op(&shared))
            .await
            .map_err(|e| SwapError::Internal(e.to_string()))?
    }

    /// Open `name`'s file from the current config, check it and compute its options.
    fn prepare(&self, shared: &Shared, name: &str) -> Result<PreparedModule, SwapError> {
        self.check_growth(name)?;
        let config = self.config();
        let path = config.plugin_path(name);
        let library = crate::runtime::loader::load(&path, &shared.config.data_dir.join("plugins"))?;
        if library.info.name != name {
            self.record_unused(&library);
            return Err(SwapError::WrongModule {
                path: path.display().to_string(),
                expected: name.to_owned(),
                found: library.info.name.clone(),
            });
        }
        let live = shared.registry.routes().modules.clone();
        let options = module_options(&config, &live, &library);
        let options = match options {
            Ok(o) => o,
            Err(e) => {
                self.record_unused(&library);
                return Err(e);
            }
        };
        Ok(PreparedModule { library, options })
    }

    /// A library that passed the gates but was not installed stays mapped: account for it.
    pub(crate) fn record_unused(&self, lib: &crate::runtime::loader::LoadedLibrary) {
        self.inner().generations.push(Generation {
            name: lib.info.name.clone(),
            version: lib.info.version.clone(),
            build: lib.info.build_id.clone(),
            file: lib.source.display().to_string(),
            staged: lib.staged.display().to_string(),
            loaded_at_ms: crate::now_ms(),
            mapped_bytes: lib.mapped_bytes,
            handle: 0,
            state: GenState::Retired,
        });
    }

    fn instantiate(
        &self,
        shared: &Arc<Shared>,
        prepared: &PreparedModule,
        state: &[u8],
    ) -> Result<Module, SwapError> {
        crate::runtime::loader::instantiate(Some(shared), prepared, state).map_err(|e| {
            self.record_unused(&prepared.library);
            e.into()
        })
    }

    fn install(shared: &Shared, modules: Vec<Arc<Module>>) {
        for conflict in shared.registry.install(modules) {
            tracing::warn!("{conflict}");
        }
    }

    /// Load a module that is not running. Blocking; call through [`ModuleManager::run`].
    ///
    /// # Errors
    /// Already loaded, file refused, bad options, missing dependency, init failure.
    pub fn load(&self, shared: &Arc<Shared>, name: &str) -> Result<String, SwapError> {
        counted(
            shared,
            name,
            ModuleOperation::Load,
            self.try_load(shared, name),
        )
    }

    fn try_load(&self, shared: &Arc<Shared>, name: &str) -> Result<String, SwapError> {
        let live = shared.registry.routes().modules.clone();
        if live.iter().any(|m| m.name == name) {
            return Err(SwapError::AlreadyLoaded(name.to_owned()));
        }
        let prepared = self.prepare(shared, name)?;
        self.start_new(shared, &prepared)
    }

    /// Instantiate a prepared module and route to it (after the running ones).
    pub(crate) fn start_new(
        &self,
        shared: &Arc<Shared>,
        prepared: &PreparedModule,
    ) -> Result<String, SwapError> {
        let name = prepared.library.info.name.as_str();
        let mut live = shared.registry.routes().modules.clone();
        let module = Arc::new(self.instantiate(shared, prepared, &[])?);
        live.push(module.clone());
        Self::install(shared, live);
        self.record(&module, GenState::Running);
        fire(shared, events::MODULE_LOADED, &module);
        tracing::info!(plugin = %module.name, version = %module.version, build = %module.build_id, "module loaded at runtime");
        Ok(format!(
            "loaded {} {} (build {}) from {}; {}",
            module.name,
            module.version,
            module.build_id,
            module.source.display(),
            self.mapped_note(name)
        ))
    }

    /// Unload a running module. Blocking; call through [`ModuleManager::run`].
    ///
    /// # Errors
    /// Not loaded, or needed by other modules (unless `force`).
    pub fn unload(
        &self,
        shared: &Arc<Shared>,
        name: &str,
        force: bool,
    ) -> Result<String, SwapError> {
        let result = self.try_unload(shared, name, force);
        counted(shared, name, ModuleOperation::Unload, result)
    }

    fn try_unload(
        &self,
        shared: &Arc<Shared>,
        name: &str,
        force: bool,
    ) -> Result<String, SwapError> {
        let mut live = shared.registry.routes().modules.clone();
        let pos = live
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| SwapError::NotLoaded(name.to_owned()))?;
        let dependents: Vec<String> = live
            .iter()
            .filter(|m| m.manifest.depends.iter().any(|d| d == name))
            .map(|m| format!("`{}`", m.name))
            .collect();
        if !dependents.is_empty() && !force {
            return Err(SwapError::Dependents {
                module: name.to_owned(),
                dependents: dependents.join(", "),
            });
        }
        let old = live.remove(pos);
        Self::install(shared, live);
        fire(shared, events::MODULE_UNLOADED, &old);
        tracing::info!(plugin = %old.name, version = %old.version, forced = force, "module unloaded");
        let note = if dependents.is_empty() {
            String::new()
        } else {
            format!(" (forced: {} now run without it)", dependents.join(", "))
        };
        self.drain(shared, old);
        Ok(format!(
            "unloaded {name}{note}; connected sessions stay; old generation draining; {}",
            self.mapped_note(name)
        ))
    }

    /// Replace a running module with the current build of its file. Blocking; call through
    /// [`ModuleManager::run`]. Any failure leaves the old instance serving.
    ///
    /// # Errors
    /// Not loaded, too many generations, file refused, bad options, `save_state` or init failure.
    pub fn reload(&self, shared: &Arc<Shared>, name: &str) -> Result<String, SwapError> {
        counted(
            shared,
            name,
            ModuleOperation::Reload,
            self.try_reload(shared, name),
        )
    }

    fn try_reload(&self, shared: &Arc<Shared>, name: &str) -> Result<String, SwapError> {
        let mut live = shared.registry.routes().modules.clone();
        let pos = live
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| SwapError::NotLoaded(name.to_owned()))?;
        let prepared = self.prepare(shared, name)?;
        let old = live[pos].clone();
        // From here until the hand-over, calls to the old instance wait: its state is taken
        // whole. Any failure drops `paused`, which lets them through to the old instance.
        let paused_at = Instant::now();
        let paused = old.gate().pause(QUIESCE_TIMEOUT).map_err(|busy| {
            self.record_unused(&prepared.library);
            SwapError::Busy {
                module: name.to_owned(),
                busy,
            }
        })?;
        let state = old.save_state().map_err(|e| {
            self.record_unused(&prepared.library);
            SwapError::SaveState {
                module: name.to_owned(),
                message: e.to_string(),
            }
        })?;
        let new = Arc::new(self.instantiate(shared, &prepared, &state)?);
        live[pos] = new.clone();
        Self::install(shared, live);
        paused.hand_over(Handover::between(&old, &new));
        let paused_ms = paused_at.elapsed().as_secs_f64() * 1e3;
        self.record(&new, GenState::Running);
        fire(shared, events::MODULE_UNLOADED, &old);
        fire(shared, events::MODULE_LOADED, &new);
        tracing::info!(plugin = %name, from = %old.build_id, to = %new.build_id, state_bytes = state.len(), paused_ms, "module reloaded");
        let message = format!(
            "reloaded {name}: {} (build {}) -> {} (build {}); {} bytes of state handed over; calls paused {paused_ms:.1} ms; old generation draining; {}",
            old.version,
            old.build_id,
            new.version,
            new.build_id,
            state.len(),
            self.mapped_note(name)
        );
        self.drain(shared, old);
        Ok(message)
    }

    /// Retire `old` once nothing else holds it (or after [`DRAIN_TIMEOUT`]).
    fn drain(&self, shared: &Arc<Shared>, old: Arc<Module>) {
        self.set_state(old.handle, GenState::Draining);
        let shared2 = shared.clone();
        shared.runtime.spawn(async move {
            let started = Instant::now();
            while Arc::strong_count(&old) > 1 && started.elapsed() < DRAIN_TIMEOUT {
                tokio::time::sleep(DRAIN_POLL).await;
            }
            let dropped = shared2.exchanges.drop_pinned_to(&old);
            let handle = old.handle;
            let name = old.name.clone();
            let holders = Arc::strong_count(&old).saturating_sub(1);
            let _ = tokio::task::spawn_blocking(move || {
                old.shutdown();
                drop(old);
            })
            .await;
            shared2.modules.set_state(handle, GenState::Retired);
            tracing::info!(plugin = %name, handle, waited_ms = started.elapsed().as_millis() as u64, exchanges_dropped = dropped, still_held = holders, "old generation retired (library stays mapped)");
        });
    }
}

fn fire(shared: &Shared, name: &str, m: &Module) {
    shared.fire(
        name,
        &ModuleEvent {
            name: m.name.clone(),
            version: m.version.clone(),
        },
    );
}

/// Options for `library` under `config`, checked against the manifests of the running modules
/// plus this one. Options of modules that are enabled but not running are set aside (they are
/// checked when those modules load), so they do not count as unknown keys.
fn module_options(
    config: &Config,
    live: &[Arc<Module>],
    library: &crate::runtime::loader::LoadedLibrary,
) -> Result<tessera_plugin_api::Config, SwapError> {
    let name = library.info.name.as_str();
    for dep in &library.manifest.depends {
        if !live.iter().any(|m| &m.name == dep) {
            return Err(SwapError::MissingDependency {
                module: name.to_owned(),
                missing: dep.clone(),
            });
        }
    }
    let mut manifests: Vec<_> = live
        .iter()
        .filter(|m| m.name != name)
        .map(|m| (m.name.clone(), m.manifest.clone()))
        .collect();
    manifests.push((name.to_owned(), library.manifest.clone()));
    let mut known: Vec<&str> = manifests.iter().map(|(n, _)| n.as_str()).collect();
    known.extend(config.modules_enabled.iter().map(String::as_str));
    let mut config = config.clone();
    config.module_options.retain(|key, _| {
        let owner = known
            .iter()
            .filter(|m| key.starts_with(&format!("{m}_")))
            .max_by_key(|m| m.len());
        owner.is_none_or(|o| manifests.iter().any(|(n, _)| n == o))
    });
    let mut all = config.module_configs(&manifests)?;
    Ok(all.remove(name).unwrap_or_default())
}

/// Count a module operation for `/metrics` (carried out or refused) and pass its result on.
fn counted(
    shared: &Shared,
    name: &str,
    operation: ModuleOperation,
    result: Result<String, SwapError>,
) -> Result<String, SwapError> {
    shared
        .metrics
        .module_operation(name, operation, result.is_ok());
    result
}

/// `tessera module list`: every generation with its state and mapped size.
pub fn list(shared: &Shared) -> Value {
    json!(shared.modules.generations())
}
