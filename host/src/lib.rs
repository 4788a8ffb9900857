//! # tessera-host
//!
//! The Tessera XMPP server core: listeners (STARTTLS and direct TLS over rustls), the XML stream
//! layer, sessions and stanza routing, the store, the HTTPS server, the mailer, the admin
//! socket — and the loader and event bus through which separately compiled `cdylib` plugins
//! (built against `tessera-plugin-api`) provide every feature, authentication included.
//!
//! How to read it: [`run`] wires the subsystems together (this file is the only place that
//! does); [`config`] is the config file; [`loader`] and [`services`] are the ABI boundary;
//! [`modules`] and [`bus`] route calls and events to plugins; [`swap`] loads, unloads and
//! reloads modules on a running server; [`c2s`] and [`router`] are the client protocol;
//! [`store`] persists accounts and module data.

pub mod accounts;
pub mod admin;
pub mod admission;
pub mod c2s;
pub mod cli;
pub mod config;
pub mod data_dir;
pub mod http;
pub mod jid;
pub mod mail;
pub mod metrics;
pub mod router;
pub mod runtime;
pub mod secret;
pub mod sessions;
pub mod startup;
pub mod store;
pub mod stream;
pub mod tls;
pub mod websocket;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tessera_plugin_api::StreamCondition;

use serde::Serialize;
use tessera_plugin_api::events::{self, UserDeleted, UserPasswordChanged};

use crate::accounts::AccountError;
use crate::config::Config;
use crate::runtime::bus::Bus;
use crate::runtime::modules::Registry;
use crate::secret::ServerSecret;
use crate::sessions::Sessions;
use crate::store::Store;

pub use startup::{run, StartError};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    // Never goes back, even if the wall clock does: a login is valid only against a password
    // change strictly before it began (`exchanges::still_valid`), and a clock stepped back
    // could otherwise date an exchange before a change that preceded it.
    static LAST: AtomicU64 = AtomicU64::new(0);
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    LAST.fetch_max(wall, Ordering::Relaxed).max(wall)
}

/// Run blocking work (PBKDF2, a slow plugin task) from synchronous code. On a runtime worker
/// the worker first hands its other connections to a fresh thread (`block_in_place`), so they
/// are not held up; anywhere else (the bus thread, the blocking pool) the work just runs.
pub fn run_blocking<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// State shared by every connection, the bus, the HTTP server, the admin socket and the host
/// services plugins call.
pub struct Shared {
    /// The configuration in force.
    pub config: Config,
    /// Accounts and module data.
    pub store: Arc<dyn Store>,
    /// The server secret (kept outside the store).
    pub secret: ServerSecret,
    /// Live modules and routing tables.
    pub registry: Arc<Registry>,
    /// Module generations and the load / unload / reload operations.
    pub modules: runtime::swap::ModuleManager,
    /// The event bus.
    pub bus: Bus,
    /// Authenticated streams.
    pub sessions: Sessions,
    /// Where stanzas for sessions went (written, stored, bounced, dropped, and why).
    pub delivery: router::accounting::DeliveryStats,
    /// Outgoing mail.
    pub mailer: mail::Mailer,
    /// TLS configuration and channel-binding data.
    pub tls: tls::Tls,
    /// SASL exchanges in progress (pinned to the module generation that started them) and the
    /// logins the host verified.
    pub exchanges: runtime::exchanges::Exchanges,
    /// Connection caps (global per listener kind and per address).
    pub admission: admission::Admission,
    /// The tokio runtime (for host services called from plugin callbacks).
    pub runtime: tokio::runtime::Handle,
    /// Counters for `/metrics`.
    pub metrics: metrics::Metrics,
    /// When the server started (`tessera status` reports the uptime).
    pub started: std::time::Instant,
    /// The addresses it listens on, once bound (`tessera status`).
    pub listeners: std::sync::OnceLock<serde_json::Value>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("domain", &self.config.domain)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// A fresh id for connections, exchanges, mails and timers.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Fire a host event on the bus.
    pub fn fire<T: Serialize>(&self, name: &str, payload: &T) {
        self.metrics.event(name);
        self.bus
            .fire_with(name, || match tessera_plugin_api::wire::encode(payload) {
                Ok(bytes) => Some((bytes, None)),
                Err(e) => {
                    tracing::error!(event = name, error = %e, "cannot encode event");
                    None
                }
            });
    }

    /// The one way a password changes: store the new verifiers, close every other session of
    /// the account with `<reset/>` (sparing `origin_stream`, as Prosody's mod_c2s does) and fire
    /// `user-password-changed`. Blocking (PBKDF2): call from a blocking context.
    ///
    /// # Errors
    /// Bad name or password, unknown account, store failure.
    pub fn set_password(
        &self,
        user: &str,
        password: &str,
        origin_stream: Option<u64>,
    ) -> Result<(), AccountError> {
        let at_ms = now_ms();
        let user = accounts::set_password(
            self.store.as_ref(),
            (user, password),
            self.config.scram_iterations,
            at_ms,
        )?;
        let closed = self
            .sessions
            .close_user(&user, StreamCondition::Reset, origin_stream);
        tracing::info!(%user, sessions_closed = closed, "password changed");
        self.fire(
            events::USER_PASSWORD_CHANGED,
            &UserPasswordChanged {
                user,
                origin_stream,
                at_ms,
            },
        );
        Ok(())
    }

    /// Delete an account: store, every session closed with `<not-authorized/>`, `user-deleted`.
    ///
    /// # Errors
    /// Bad name, unknown account, store failure.
    pub fn delete_user(&self, user: &str) -> Result<(), AccountError> {
        let canonical = jid::prep_localpart(user)?;
        if self.store.get_account(&canonical)?.is_some() {
            // While the account's data is still there (see `hooks::ACCOUNT_DELETING`).
            let payload = UserDeleted {
                user: canonical.clone(),
            };
            if let Ok(bytes) = tessera_plugin_api::wire::encode(&payload) {
                let _ = runtime::services::call_hook(
                    self,
                    events::hooks::ACCOUNT_DELETING,
                    tessera_plugin_api::wire::Bytes::new(&bytes),
                );
            }
        }
        let user = accounts::delete(self.store.as_ref(), &canonical)?;
        let closed = self
            .sessions
            .close_user(&user, StreamCondition::NotAuthorized, None);
        tracing::info!(%user, sessions_closed = closed, "account deleted");
        self.fire(events::USER_DELETED, &UserDeleted { user });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// With one worker thread, a task spawned while the worker runs blocking work can only run
    /// if `run_blocking` handed the worker's other tasks to another thread.
    #[test]
    fn blocking_work_leaves_the_worker_free_for_other_tasks() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        let handle = runtime.handle().clone();
        let other_task_ran = runtime.block_on(async move {
            tokio::spawn(async move {
                super::run_blocking(|| {
                    let (tx, rx) = std::sync::mpsc::channel();
                    handle.spawn(async move {
                        let _ = tx.send(());
                    });
                    rx.recv_timeout(Duration::from_secs(5)).is_ok()
                })
            })
            .await
            .expect("task")
        });
        assert!(other_task_ran);
    }

    #[test]
    fn blocking_work_outside_a_runtime_just_runs() {
        assert_eq!(super::run_blocking(|| 6 * 7), 42);
    }
}
