//! Starting the server: data directory, secret, store, TLS, modules, listeners, admin socket,
//! and a graceful stop on SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tessera_plugin_api::StreamCondition;

use serde::Serialize;
use tessera_plugin_api::events::{self, ModuleEvent};
use tokio::net::TcpListener;

use crate::config::{Config, ConfigError};
use crate::runtime::loader::{LoadError, LoadedLibrary};
use crate::runtime::modules::Registry;
use crate::{runtime::bus::Bus, Shared};

/// Why the server could not start. [`StartError::exit_code`] is 2 for problems the operator
/// fixes in the config or plugin folder, 1 otherwise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A plugin file was refused.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A module depends on one that is not enabled.
    #[error("module `{module}` depends on `{missing}`, which is not in modules_enabled")]
    Dependency {
        /// The module.
        module: String,
        /// The missing dependency.
        missing: String,
    },
    /// A module refused to start.
    #[error("module `{module}` failed to start: {message}")]
    Init {
        /// The module.
        module: String,
        /// Its error.
        message: String,
    },
    /// Another runtime failure (I/O, store, TLS, bind).
    #[error("{0}")]
    Runtime(String),
    /// The data directory is not private to us, or another server holds it.
    #[error(transparent)]
    DataDir(#[from] crate::data_dir::DataDirError),
    /// Another process holds the data directory's lock.
    #[error("{0}; refusing to start a second server on it")]
    Locked(crate::data_dir::DataDirError),
}

impl StartError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            StartError::Runtime(_) | StartError::DataDir(_) | StartError::Locked(_) => 1,
            _ => 2,
        }
    }
}

fn runtime(what: &str) -> impl Fn(&dyn std::fmt::Display) -> StartError + '_ {
    move |e| StartError::Runtime(format!("{what}: {e}"))
}

/// A module file that passed the gates, with its validated options.
#[derive(Debug)]
pub struct PreparedModule {
    /// The opened library.
    pub library: LoadedLibrary,
    /// Its options, validated and typed.
    pub options: tessera_plugin_api::Config,
}

/// Open every enabled module file, check options against manifests and dependencies. Used by
/// `run` and by `check-config` (which stops here).
///
/// # Errors
/// The first refused file, option or dependency.
pub fn prepare_modules(config: &Config) -> Result<Vec<PreparedModule>, StartError> {
    let staging = config.data_dir.join("plugins");
    crate::runtime::loader::clean_stale(&staging);
    let mut libraries = Vec::new();
    for name in &config.modules_enabled {
        let path = config.plugin_path(name);
        if !path.is_file() {
            return Err(config
                .key_error(
                    "modules_enabled",
                    format!("module `{name}`: plugin file {} not found", path.display()),
                )
                .into());
        }
        libraries.push(crate::runtime::loader::load(&path, &staging)?);
    }
    let manifests: Vec<_> = libraries
        .iter()
        .map(|l| (l.info.name.clone(), l.manifest.clone()))
        .collect();
    for (module, manifest) in &manifests {
        for dep in &manifest.depends {
            if !config.modules_enabled.contains(dep) {
                return Err(StartError::Dependency {
                    module: module.clone(),
                    missing: dep.clone(),
                });
            }
        }
    }
    let mut options = config.module_configs(&manifests)?;
    Ok(libraries
        .into_iter()
        .map(|library| {
            let options = options.remove(&library.info.name).unwrap_or_default();
            PreparedModule { library, options }
        })
        .collect())
}

#[derive(Debug, Serialize)]
struct Ready {
    c2s: Vec<SocketAddr>,
    direct_tls: Vec<SocketAddr>,
    http: Vec<SocketAddr>,
    admin: String,
    modules: Vec<String>,
}

async fn bind_all(addrs: &[SocketAddr], what: &str) -> Result<Vec<TcpListener>, StartError> {
    let mut out = Vec::new();
    for a in addrs {
        let l = TcpListener::bind(a)
            .await
            .map_err(|e| StartError::Runtime(format!("cannot listen on {a} ({what}): {e}")))?;
        out.push(l);
    }
    Ok(out)
}

fn local_addrs(ls: &[TcpListener]) -> Vec<SocketAddr> {
    ls.iter().filter_map(|l| l.local_addr().ok()).collect()
}

/// Connection caps from the descriptor limit (raised to the hard limit first) and the config.
fn admission(config: &Config) -> crate::admission::Admission {
    let descriptors = crate::admission::raise_descriptor_limit();
    let caps = crate::admission::caps(
        descriptors,
        config.c2s.max_connections,
        config.http.max_connections,
        config.c2s.max_connections_per_ip,
    );
    if caps.c2s < config.c2s.max_connections || caps.https < config.http.max_connections {
        tracing::warn!(
            descriptors,
            configured_c2s = config.c2s.max_connections,
            configured_https = config.http.max_connections,
            "connection caps lowered to fit the descriptor limit"
        );
    }
    tracing::info!(
        c2s = caps.c2s,
        https = caps.https,
        per_ip = caps.per_ip,
        descriptors,
        reserved = crate::admission::RESERVED_DESCRIPTORS,
        "connection caps"
    );
    crate::admission::Admission::new(caps)
}

/// Removes the admin socket when the server stops or fails to start.
#[derive(Debug)]
struct SocketFile(std::path::PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Start the server and serve until SIGINT or SIGTERM.
///
/// The data directory is checked and locked first (a second server on it is refused), and the
/// admin socket is bound next, before anything else can create files: from then on a `tessera
/// user` command either reaches this server or refuses to act (see [`crate::data_dir`]).
///
/// # Errors
/// Anything that prevents starting; see [`StartError::exit_code`].
pub async fn run(config: Config) -> Result<(), StartError> {
    crate::data_dir::private_umask();
    let lock = crate::data_dir::take(&config.data_dir, crate::data_dir::Role::Server)
        .await
        .map_err(|e| match e {
            crate::data_dir::DataDirError::Locked { .. } => StartError::Locked(e),
            other => other.into(),
        })?;
    let admin =
        crate::admin::bind(&config.admin_socket()).map_err(|e| runtime("admin socket")(&e))?;
    let socket = SocketFile(config.admin_socket());
    let served = serve(config, admin).await;
    // The socket goes before the lock: the next server's socket must not be removed.
    drop(socket);
    drop(lock);
    served
}

async fn serve(config: Config, admin: tokio::net::UnixListener) -> Result<(), StartError> {
    let secret = crate::secret::ServerSecret::load_or_create(&config.data_dir)
        .map_err(|e| runtime("server secret")(&e))?;
    let store = crate::store::SqliteStore::open(&config.data_dir.join("tessera.sqlite"))
        .map_err(|e| runtime("store")(&e))?;
    let tls = crate::tls::load(&config.tls, &config.data_dir, &config.domain)
        .map_err(|e| runtime("tls")(&e))?;
    let mailer = crate::mail::Mailer::new(config.smtp.as_ref(), &config.data_dir, &config.domain)
        .map_err(|e| runtime("smtp")(&e))?;
    let prepared = prepare_modules(&config)?;
    let registry = Arc::new(Registry::default());
    let shared = Arc::new(Shared {
        bus: Bus::start(registry.clone()),
        registry,
        modules: crate::runtime::swap::ModuleManager::new(config.clone()),
        store: Arc::new(store),
        secret,
        sessions: Default::default(),
        delivery: Default::default(),
        mailer,
        tls,
        exchanges: Default::default(),
        admission: admission(&config),
        runtime: tokio::runtime::Handle::current(),
        metrics: Default::default(),
        started: std::time::Instant::now(),
        listeners: std::sync::OnceLock::new(),
        next_id: AtomicU64::new(0),
        config,
    });
    start_modules(&shared, &prepared)?;
    let c2s = bind_all(&shared.config.c2s.listen, "c2s").await?;
    let direct = bind_all(&shared.config.c2s.direct_tls, "direct TLS").await?;
    let http = bind_all(&shared.config.http.listen, "http").await?;
    let ready = Ready {
        c2s: local_addrs(&c2s),
        direct_tls: local_addrs(&direct),
        http: local_addrs(&http),
        admin: shared.config.admin_socket().display().to_string(),
        modules: shared
            .registry
            .routes()
            .modules
            .iter()
            .map(|m| format!("{} {}", m.name, m.version))
            .collect(),
    };
    tracing::info!(c2s = ?ready.c2s, direct_tls = ?ready.direct_tls, http = ?ready.http, "listening");
    let _ = shared.listeners.set(serde_json::json!({
        "c2s": ready.c2s,
        "direct_tls": ready.direct_tls,
        "http": ready.http,
        "admin": ready.admin,
    }));
    for l in c2s {
        tokio::spawn(crate::c2s::serve(shared.clone(), l, false));
    }
    for l in direct {
        tokio::spawn(crate::c2s::serve(shared.clone(), l, true));
    }
    for l in http {
        tokio::spawn(crate::http::serve(shared.clone(), l));
    }
    tokio::spawn(crate::admin::serve(shared.clone(), admin));
    // Installed before the ready line: from then on SIGHUP means "reload the config".
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangup) => {
            tokio::spawn(crate::runtime::swap::config::on_hangup(
                shared.clone(),
                hangup,
            ));
        }
        Err(e) => tracing::warn!(error = %e, "cannot handle SIGHUP; use `tessera config reload`"),
    }
    // The machine-readable ready line (tests and scripts read the OS-chosen ports from it).
    #[allow(clippy::print_stdout)]
    {
        println!(
            "tessera ready {}",
            serde_json::to_string(&ready).unwrap_or_default()
        );
    }
    wait_for_signal().await;
    stop(&shared).await;
    Ok(())
}

fn start_modules(shared: &Arc<Shared>, prepared: &[PreparedModule]) -> Result<(), StartError> {
    let mut live = Vec::new();
    for p in prepared {
        let module = Arc::new(crate::runtime::loader::instantiate(Some(shared), p, &[])?);
        tracing::info!(plugin = %module.name, version = %module.version, build = %module.build_id, file = %module.source.display(), "module loaded");
        shared
            .modules
            .record(&module, crate::runtime::swap::GenState::Running);
        live.push(module);
    }
    for conflict in shared.registry.install(live.clone()) {
        tracing::warn!("{conflict}");
    }
    for m in &live {
        shared.fire(
            events::MODULE_LOADED,
            &ModuleEvent {
                name: m.name.clone(),
                version: m.version.clone(),
            },
        );
    }
    Ok(())
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn stop(shared: &Arc<Shared>) {
    tracing::info!(sessions = shared.sessions.len(), "shutting down");
    shared.sessions.close_all(StreamCondition::SystemShutdown);
    // The modules stay up until every session has handed on what it never wrote (offline
    // storage, bounces), including what TLS still held when a connection's close timeout ran
    // out.
    let settle = tokio::time::Instant::now()
        + shared.config.c2s.close_timeout
        + std::time::Duration::from_secs(5);
    while !shared.sessions.settled() && tokio::time::Instant::now() < settle {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for m in shared.registry.routes().modules.iter() {
        m.shutdown();
    }
    // Archive appends are written behind their callers: all of them before the process ends.
    let store = shared.store.clone();
    let _ = tokio::task::spawn_blocking(move || store.sync_appends()).await;
    let _ = std::fs::remove_file(shared.config.admin_socket());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
}
