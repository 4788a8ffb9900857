//! The admin socket: a Unix socket in the data directory (mode 0600) speaking one JSON request
//! per line and one JSON answer per line. `tessera user passwd` and `user del` go through it
//! when a server is running, so that the event fires and sessions close; with no server they
//! act on the store directly.
//!
//! Three fences keep other local users out: the data directory is 0700, the socket is created
//! 0600 (bound under a 0o177 umask, so it never exists with a wider mode), and every accepted
//! connection's peer uid (`SO_PEERCRED`) must be the server's own or root's.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::runtime::swap::ModuleManager;
use crate::Shared;

mod clients;

/// Longest request line accepted.
const MAX_LINE: usize = 64 * 1024;

/// An admin request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum AdminRequest {
    /// Create an account.
    UserAdd {
        /// Localpart.
        user: String,
        /// Password.
        password: String,
        /// Optional email.
        #[serde(default)]
        email: Option<String>,
    },
    /// Change a password (fires `user-password-changed`, closes sessions with `<reset/>`).
    UserPasswd {
        /// Localpart.
        user: String,
        /// New password.
        password: String,
    },
    /// Delete an account.
    UserDel {
        /// Localpart.
        user: String,
    },
    /// List accounts.
    UserList,
    /// List modules.
    ModuleList,
    /// Sessions and modules at a glance.
    Status,
    /// Load a module that is not running.
    ModuleLoad {
        /// Module name (`sasl2` is `libmod_sasl2.so` in `plugin_dir`).
        name: String,
    },
    /// Unload a running module.
    ModuleUnload {
        /// Module name.
        name: String,
        /// Unload even if other loaded modules depend on it.
        #[serde(default)]
        force: bool,
    },
    /// Replace a running module with the current build of its file.
    ModuleReload {
        /// Module name.
        name: String,
    },
    /// Re-read the config file and load or unload modules to match `modules_enabled`.
    ConfigReload,
    /// An account's clients (XEP-0494, through the module that keeps the list).
    ClientList {
        /// Localpart.
        user: String,
    },
    /// Revoke one client of an account by its listed id.
    ClientRevoke {
        /// Localpart.
        user: String,
        /// The id `client list` showed.
        id: String,
    },
}

/// An admin answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminResponse {
    /// Whether the request succeeded.
    pub ok: bool,
    /// The result, on success.
    #[serde(default)]
    pub result: serde_json::Value,
    /// The error, on failure.
    #[serde(default)]
    pub error: Option<String>,
}

/// Bind the socket (replacing a stale one) with mode 0600.
///
/// The socket is created under a 0o177 umask, so it is 0600 from its first instant (a chmod
/// after bind would leave a window). The umask is process-wide: call this while no other thread
/// creates files (the server binds it right after locking the data directory).
///
/// # Errors
/// I/O errors, or another server already listening on it.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::other(format!(
                "{} is in use: is another tessera running on this data_dir?",
                path.display()
            )));
        }
        std::fs::remove_file(path)?;
    }
    let previous = crate::data_dir::set_umask(0o177);
    let listener = UnixListener::bind(path);
    crate::data_dir::set_umask(previous);
    listener
}

/// Whether a peer with `peer_uid` may use the admin socket of a server running as
/// `server_uid`: the same user, or root.
pub fn peer_allowed(peer_uid: u32, server_uid: u32) -> bool {
    peer_uid == server_uid || peer_uid == 0
}

/// Serve admin connections: only from the server's own uid or root. An accept error (say, no
/// descriptor left) is logged and retried after a pause; it never ends the admin socket.
pub async fn serve(shared: Arc<Shared>, listener: UnixListener) {
    let server_uid = crate::data_dir::effective_uid();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "admin socket: accept failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let peer = stream.peer_cred().map(|c| (c.uid(), c.pid()));
            match peer {
                Ok((uid, _)) if peer_allowed(uid, server_uid) => {
                    let _ = connection(shared, stream).await;
                }
                other => refuse(stream, other, server_uid).await,
            }
        });
    }
}

/// Answer a connection from another user with one failure line, then close it.
async fn refuse(
    mut stream: UnixStream,
    peer: std::io::Result<(u32, Option<i32>)>,
    server_uid: u32,
) {
    let error = match peer {
        Ok((uid, pid)) => {
            tracing::warn!(peer_uid = uid, peer_pid = ?pid, "admin socket: connection from another user refused");
            format!("refused: this server runs as uid {server_uid}; uid {uid} may not use its admin socket")
        }
        Err(e) => {
            tracing::warn!(error = %e, "admin socket: cannot read the peer's credentials; refused");
            format!("refused: cannot read the peer's credentials: {e}")
        }
    };
    let mut line = serde_json::to_string(&failure(error)).unwrap_or_default();
    line.push('\n');
    let _ = stream.write_all(line.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn connection(shared: Arc<Shared>, stream: UnixStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read.take(MAX_LINE as u64 * 16)).lines();
    while let Some(line) = lines.next_line().await? {
        let response = match serde_json::from_str::<AdminRequest>(&line) {
            Ok(req) => answer(&shared, req).await,
            Err(e) => failure(format!("bad request: {e}")),
        };
        let mut out = serde_json::to_string(&response).unwrap_or_default();
        out.push('\n');
        write.write_all(out.as_bytes()).await?;
    }
    Ok(())
}

use tokio::io::AsyncReadExt as _;

/// Module operations run one at a time through the [`ModuleManager`]; the rest on a blocking
/// thread.
async fn answer(shared: &Arc<Shared>, req: AdminRequest) -> AdminResponse {
    let op = match req {
        AdminRequest::ModuleLoad { name } => {
            ModuleManager::run(shared, move |s| s.modules.load(s, &name)).await
        }
        AdminRequest::ModuleUnload { name, force } => {
            ModuleManager::run(shared, move |s| s.modules.unload(s, &name, force)).await
        }
        AdminRequest::ModuleReload { name } => {
            ModuleManager::run(shared, move |s| s.modules.reload(s, &name)).await
        }
        AdminRequest::ConfigReload => {
            ModuleManager::run(shared, crate::runtime::swap::config::reload).await
        }
        other => {
            let shared = shared.clone();
            return tokio::task::spawn_blocking(move || execute(&shared, other))
                .await
                .unwrap_or_else(|_| failure("internal error".into()));
        }
    };
    match op {
        Ok(message) => success(serde_json::json!({ "message": message })),
        Err(e) => {
            tracing::warn!(error = %e, "admin: module operation refused");
            failure(e.to_string())
        }
    }
}

/// The figures of `tessera status`: the server's version, uptime and listeners, and what an
/// operator (or the soak run) watches for leaks.
fn status(shared: &Shared) -> serde_json::Value {
    let (c2s, https) = shared.admission.in_use();
    let caps = shared.admission.caps();
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": shared.started.elapsed().as_secs(),
        "listeners": shared.listeners.get().cloned().unwrap_or_default(),
        "sessions": shared.sessions.len(),
        "sessions_ending": shared.sessions.ending(),
        "connections": { "c2s": c2s, "https": https },
        "caps": {
            "c2s": caps.c2s,
            "https": caps.https,
            "per_ip": caps.per_ip,
            "descriptors": caps.descriptors,
        },
        "outboxes": shared.sessions.outbox_figures(),
        "delivery": shared.delivery.to_json(),
        "exchanges": shared.exchanges.len(),
        "verified_pending": shared.exchanges.verified_len(),
        "tasks": shared.runtime.metrics().num_alive_tasks(),
        "modules": crate::runtime::swap::list(shared),
    })
}

fn failure(error: String) -> AdminResponse {
    AdminResponse {
        ok: false,
        result: serde_json::Value::Null,
        error: Some(error),
    }
}

fn success(result: serde_json::Value) -> AdminResponse {
    AdminResponse {
        ok: true,
        result,
        error: None,
    }
}

fn execute(shared: &Shared, req: AdminRequest) -> AdminResponse {
    let result = match req {
        AdminRequest::UserAdd {
            user,
            password,
            email,
        } => crate::accounts::create(
            shared.store.as_ref(),
            crate::accounts::NewAccount {
                user: &user,
                password: &password,
                email: email.as_deref(),
                iterations: shared.config.scram_iterations,
            },
            crate::now_ms(),
        )
        .map(|u| serde_json::json!({ "user": u }))
        .map_err(|e| e.to_string()),
        AdminRequest::UserPasswd { user, password } => shared
            .set_password(&user, &password, None)
            .map(|()| serde_json::json!({ "user": user }))
            .map_err(|e| e.to_string()),
        AdminRequest::UserDel { user } => shared
            .delete_user(&user)
            .map(|()| serde_json::json!({ "user": user }))
            .map_err(|e| e.to_string()),
        AdminRequest::UserList => shared
            .store
            .list_accounts()
            .map(|v| serde_json::json!(v))
            .map_err(|e| e.to_string()),
        AdminRequest::ClientList { user } => clients::list(shared, &user),
        AdminRequest::ClientRevoke { user, id } => clients::revoke(shared, &user, &id),
        AdminRequest::ModuleList => Ok(crate::runtime::swap::list(shared)),
        AdminRequest::Status => Ok(status(shared)),
        AdminRequest::ModuleLoad { .. }
        | AdminRequest::ModuleUnload { .. }
        | AdminRequest::ModuleReload { .. }
        | AdminRequest::ConfigReload => {
            Err("module operations go through the module manager".into())
        }
    };
    match result {
        Ok(v) => success(v),
        Err(e) => failure(e),
    }
}

/// What a running server said, or why none could be reached.
#[derive(Debug)]
pub enum Reply {
    /// The server's answer.
    Answered(AdminResponse),
    /// Connecting to the socket failed (no server, or one that does not answer).
    Unreachable(std::io::Error),
}

/// Send one request to a running server.
///
/// # Errors
/// I/O errors talking to a server that accepted the connection.
pub async fn request(path: &Path, req: &AdminRequest) -> std::io::Result<Reply> {
    let stream = match UnixStream::connect(path).await {
        Ok(s) => s,
        Err(e) => return Ok(Reply::Unreachable(e)),
    };
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_string(req).map_err(std::io::Error::other)?;
    line.push('\n');
    // A server that refuses us answers without reading: its answer still counts when our
    // write fails because it has closed already.
    let written = write.write_all(line.as_bytes()).await;
    let mut lines = BufReader::new(read).lines();
    let answer = match (lines.next_line().await, written) {
        (Ok(Some(answer)), _) => answer,
        (_, Err(e)) | (Err(e), Ok(())) => return Err(e),
        (Ok(None), Ok(())) => return Err(std::io::Error::other("admin socket closed")),
    };
    serde_json::from_str(&answer)
        .map(Reply::Answered)
        .map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_servers_own_user_and_root_may_connect() {
        assert!(peer_allowed(1000, 1000));
        assert!(peer_allowed(0, 1000), "root administers any server");
        assert!(peer_allowed(0, 0));
        assert!(!peer_allowed(1001, 1000));
        assert!(!peer_allowed(65534, 0), "a root server refuses nobody");
    }

    #[tokio::test]
    async fn the_socket_is_private_from_its_first_instant() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        let before = crate::data_dir::set_umask(0o022);
        let listener = bind(&path).unwrap();
        let after = crate::data_dir::set_umask(before);
        assert_eq!(after, 0o022, "bind restores the umask");
        let mode = std::fs::symlink_metadata(&path)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(listener);
    }
}
