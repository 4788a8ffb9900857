//! `tessera config reload` and SIGHUP: re-read the config file the server started with and load
//! or unload modules to match its `modules_enabled`.
//!
//! Everything is checked before anything changes: the new file must parse and pass the host's
//! checks, every newly enabled plugin file must pass the loader's gates, and the module options
//! and dependencies of the resulting set must be valid. A refused config leaves the running one
//! in force. Host settings (domain, listeners, TLS, SMTP, data and plugin folders' effect on the
//! running listeners, `scram_iteration_count`) apply at the next restart; changed options of modules that stay loaded
//! apply at their next `tessera module reload`.

use std::path::Path;
use std::sync::Arc;

use super::{ModuleManager, SwapError};
use crate::config::Config;
use crate::runtime::loader::LoadedLibrary;
use crate::startup::{PreparedModule, StartError};
use crate::Shared;

const EMBEDDED: &str = "<embedded default>";

/// Re-read the config file and apply its module list. Blocking; call through
/// [`ModuleManager::run`].
///
/// # Errors
/// The new config's first error, a refused plugin file, bad options, a missing dependency, or
/// (after earlier steps were applied, as the message says) a module whose init failed.
pub fn reload(shared: &Arc<Shared>) -> Result<String, SwapError> {
    let current = shared.modules.config();
    if current.origin == EMBEDDED {
        return Err(SwapError::NoConfigFile);
    }
    let new = Config::load(Some(Path::new(&current.origin)))?;
    let live = shared.registry.routes().modules.clone();
    let unload: Vec<String> = live
        .iter()
        .filter(|m| !new.modules_enabled.contains(&m.name))
        .map(|m| m.name.clone())
        .collect();
    let load: Vec<String> = new
        .modules_enabled
        .iter()
        .filter(|n| !live.iter().any(|m| &m.name == *n))
        .cloned()
        .collect();
    let prepared = prepare(shared, &new, &load, &unload)?;
    let changed = changed_options(&current, &new);
    shared.modules.set_config(new);
    // Dependents were checked against the final set: unload later modules first.
    for name in unload.iter().rev() {
        shared.modules.unload(shared, name, true)?;
    }
    let mut loaded = Vec::new();
    for p in &prepared {
        shared.modules.start_new(shared, p).map_err(|e| {
            partial(
                &unload,
                &loaded,
                &format!("loading {}", p.library.info.name),
                e,
            )
        })?;
        loaded.push(p.library.info.name.clone());
    }
    Ok(summary(&current.origin, &loaded, &unload, &changed))
}

/// Open the newly enabled files and check options and dependencies of the resulting set.
fn prepare(
    shared: &Shared,
    new: &Config,
    load: &[String],
    unload: &[String],
) -> Result<Vec<PreparedModule>, SwapError> {
    let staging = shared.config.data_dir.join("plugins");
    let mut libraries: Vec<LoadedLibrary> = Vec::new();
    let result = open_all(shared, new, load, &staging, &mut libraries)
        .and_then(|()| options(shared, new, unload, &libraries));
    match result {
        Ok(mut options) => Ok(libraries
            .into_iter()
            .map(|library| {
                let options = options.remove(&library.info.name).unwrap_or_default();
                PreparedModule { library, options }
            })
            .collect()),
        Err(e) => {
            for lib in &libraries {
                shared.modules.record_unused(lib);
            }
            Err(e)
        }
    }
}

fn open_all(
    shared: &Shared,
    new: &Config,
    load: &[String],
    staging: &Path,
    libraries: &mut Vec<LoadedLibrary>,
) -> Result<(), SwapError> {
    for name in load {
        shared.modules.check_growth(name)?;
        let path = new.plugin_path(name);
        if !path.is_file() {
            return Err(new
                .key_error(
                    "modules_enabled",
                    format!("module `{name}`: plugin file {} not found", path.display()),
                )
                .into());
        }
        let lib = crate::runtime::loader::load(&path, staging)?;
        if lib.info.name != *name {
            let found = lib.info.name.clone();
            shared.modules.record_unused(&lib);
            return Err(SwapError::WrongModule {
                path: path.display().to_string(),
                expected: name.clone(),
                found,
            });
        }
        libraries.push(lib);
    }
    Ok(())
}

type Options = std::collections::HashMap<String, tessera_plugin_api::Config>;

fn options(
    shared: &Shared,
    new: &Config,
    unload: &[String],
    libraries: &[LoadedLibrary],
) -> Result<Options, SwapError> {
    let mut manifests: Vec<_> = shared
        .registry
        .routes()
        .modules
        .iter()
        .filter(|m| !unload.contains(&m.name))
        .map(|m| (m.name.clone(), m.manifest.clone()))
        .collect();
    manifests.extend(
        libraries
            .iter()
            .map(|l| (l.info.name.clone(), l.manifest.clone())),
    );
    for (module, manifest) in &manifests {
        for dep in &manifest.depends {
            if !new.modules_enabled.contains(dep) {
                return Err(StartError::Dependency {
                    module: module.clone(),
                    missing: dep.clone(),
                }
                .into());
            }
        }
    }
    Ok(new.module_configs(&manifests)?)
}

fn changed_options(old: &Config, new: &Config) -> Vec<String> {
    let mut keys: Vec<String> = old
        .module_options
        .keys()
        .chain(new.module_options.keys())
        .filter(|k| old.module_options.get(*k) != new.module_options.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn partial(unloaded: &[String], loaded: &[String], step: &str, e: SwapError) -> SwapError {
    SwapError::Partial(format!(
        "config reload stopped while {step}: {e} (already applied: unloaded [{}], loaded [{}])",
        unloaded.join(", "),
        loaded.join(", ")
    ))
}

fn summary(origin: &str, loaded: &[String], unloaded: &[String], changed: &[String]) -> String {
    let mut parts = Vec::new();
    if !loaded.is_empty() {
        parts.push(format!("loaded {}", loaded.join(", ")));
    }
    if !unloaded.is_empty() {
        parts.push(format!("unloaded {}", unloaded.join(", ")));
    }
    if parts.is_empty() {
        parts.push("no module changes".into());
    }
    if !changed.is_empty() {
        parts.push(format!(
            "changed options (apply at `tessera module reload`): {}",
            changed.join(", ")
        ));
    }
    format!("config reloaded from {origin}: {}", parts.join("; "))
}

/// Apply SIGHUP as a config reload, logging the outcome. Returns when signals cannot be received.
pub async fn on_hangup(shared: Arc<Shared>, mut hangup: tokio::signal::unix::Signal) {
    while hangup.recv().await.is_some() {
        match ModuleManager::run(&shared, reload).await {
            Ok(message) => tracing::info!("SIGHUP: {message}"),
            Err(e) => tracing::error!("SIGHUP: config reload refused: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text, "t.toml", Path::new("/tmp")).expect("config")
    }

    #[test]
    fn changed_options_lists_added_removed_and_modified_keys_once() {
        let old = config("sasl2_max_retries = 5\nsasl2_failure_window = 300\na_x = 1\n");
        let new = config("sasl2_max_retries = 6\nsasl2_failure_window = 300\nb_y = 2\n");
        assert_eq!(
            changed_options(&old, &new),
            ["a_x", "b_y", "sasl2_max_retries"]
        );
    }

    #[test]
    fn the_summary_says_what_changed() {
        let s = summary("t.toml", &["a".into()], &["b".into(), "c".into()], &[]);
        assert_eq!(s, "config reloaded from t.toml: loaded a; unloaded b, c");
        let s = summary("t.toml", &[], &[], &["x_y".into()]);
        assert_eq!(
            s,
            "config reloaded from t.toml: no module changes; changed options (apply at `tessera module reload`): x_y"
        );
    }
}
