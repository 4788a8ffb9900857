//! Why a module operation was refused.

use crate::config::ConfigError;
use crate::runtime::loader::LoadError;
use crate::startup::StartError;

/// Why a module operation was refused. Nothing changed unless the message says so.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SwapError {
    /// `load` of a module that is running.
    #[error("module `{0}` is already loaded (use `tessera module reload {0}`)")]
    AlreadyLoaded(String),
    /// `unload` or `reload` of a module that is not running.
    #[error("module `{0}` is not loaded")]
    NotLoaded(String),
    /// The plugin file was refused by the loader.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The configuration (or the module's options in it) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The instance could not be created.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The file holds another module.
    #[error("{path}: holds module `{found}`, not `{expected}`")]
    WrongModule {
        /// The file.
        path: String,
        /// The requested name.
        expected: String,
        /// The name the plugin reports.
        found: String,
    },
    /// A dependency is not loaded.
    #[error("module `{module}` depends on `{missing}`, which is not loaded")]
    MissingDependency {
        /// The module.
        module: String,
        /// The missing dependency.
        missing: String,
    },
    /// Other loaded modules depend on this one.
    #[error("module `{module}` is needed by {dependents}; unload those first or use --force")]
    Dependents {
        /// The module.
        module: String,
        /// The modules depending on it.
        dependents: String,
    },
    /// The running instance could not save its state; it keeps serving.
    #[error("module `{module}`: save_state failed: {message}; the running instance keeps serving")]
    SaveState {
        /// The module.
        module: String,
        /// Its error.
        message: String,
    },
    /// Calls inside the running instance did not return, so its state could not be taken
    /// whole; it keeps serving.
    #[error("module `{module}`: {busy}; its state cannot be taken while they run, so it was not reloaded and keeps serving (try again)")]
    Busy {
        /// The module.
        module: String,
        /// What was still running.
        busy: crate::runtime::handover::Busy,
    },
    /// Too many generations are mapped.
    #[error("module `{module}`: {count} generations are mapped (limit {limit}; {total} generations, {bytes} bytes mapped in all); restart the server to reclaim them")]
    TooManyGenerations {
        /// The module.
        module: String,
        /// Its mapped generations.
        count: usize,
        /// [`super::MAX_GENERATIONS`].
        limit: usize,
        /// All mapped generations.
        total: usize,
        /// All mapped bytes.
        bytes: u64,
    },
    /// The server runs on the embedded default: there is no file to re-read.
    #[error("the server was started without a config file (embedded default): nothing to reload")]
    NoConfigFile,
    /// A config reload failed part-way; the message says what was applied.
    #[error("{0}")]
    Partial(String),
    /// Internal failure (a worker task died).
    #[error("internal error: {0}")]
    Internal(String),
}
