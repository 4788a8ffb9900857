//! The data directory is private to the server's user, and one process at a time owns it.
//!
//! Everything under `data_dir` is secret: SCRAM verifiers and email addresses in the store, the
//! server secret, the TLS key, outbox mails holding live reset links, the admin socket. So:
//!
//! * The process umask is 0o077 from the first line of `main` (see [`private_umask`]), and the
//!   files and folders Tessera creates there are created 0600 and 0700 explicitly as well.
//! * [`take`] refuses a data directory that group or others can write, or that another user
//!   owns; it tightens whatever an older version left wider than owner-only (logged at info).
//! * [`take`] holds an exclusive `flock` on `data_dir/tessera.lock` (0600, with the holder's pid
//!   and role in it) for as long as the [`DataDirLock`] lives: all of `tessera run`, or one
//!   offline `tessera user …` command. A second server on the same folder is refused, and an
//!   offline command never writes the store while a server holds it (issue 12, finding 3).

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The lock file's name inside `data_dir`.
pub const LOCK_FILE: &str = "tessera.lock";

/// Files whose own loader refuses a wide mode instead of having it tightened (a server secret
/// others could read must be noticed, not silently fixed).
const CHECKED_ELSEWHERE: &[&str] = &["server-secret"];

/// How long a process waits for a short-lived `tessera user …` command to release the lock.
const COMMAND_WAIT: Duration = Duration::from_secs(10);

/// Tightened paths logged one by one; past this, only their number.
const LOGGED_TIGHTENINGS: usize = 20;

/// Who holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// `tessera run`, for its whole life.
    Server,
    /// An offline `tessera user …` command, for one store operation.
    Command,
}

impl Role {
    fn word(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Command => "command",
        }
    }
}

/// The process holding a data directory's lock, as its lock file tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// Its process id (`None` while it has not written it yet).
    pub pid: Option<u32>,
    /// What it is (`None` when the file does not say).
    pub role: Option<Role>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.role {
            Some(Role::Server) | None => "a Tessera server",
            Some(Role::Command) => "a `tessera user` command",
        };
        match self.pid {
            Some(pid) => write!(f, "{what} (pid {pid})"),
            None => write!(f, "{what}"),
        }
    }
}

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// Creating, reading or changing something failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Group or others may write the folder: someone may have put files there.
    #[error(
        "data_dir {} is writable by other users (mode {mode:04o}); refusing to use it: check \
         what is in it, then chmod 700 it",
        .path.display()
    )]
    Writable {
        /// The folder.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The folder belongs to another user.
    #[error(
        "data_dir {} (mode {mode:04o}) belongs to uid {owner}, not to this process (uid {uid}); \
         run tessera as that user",
        .path.display()
    )]
    Owner {
        /// The folder.
        path: PathBuf,
        /// Its mode.
        mode: u32,
        /// Its owner.
        owner: u32,
        /// Our effective uid.
        uid: u32,
    },
    /// Not a folder.
    #[error("data_dir {} is not a folder", .path.display())]
    NotAFolder {
        /// The path.
        path: PathBuf,
    },
    /// Another process holds the lock.
    #[error("{holder} holds data_dir {} (lock file {LOCK_FILE})", .path.display())]
    Locked {
        /// The folder.
        path: PathBuf,
        /// Who holds it.
        holder: Holder,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DataDirError + '_ {
    move |source| DataDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The exclusive lock on a data directory; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Set the process umask to 0o077, so that every file and folder the process creates is
/// owner-only, including the ones it does not create itself: SQLite's database, `-wal` and
/// `-shm` files. The umask is process-wide, and that is what we want: every file this server
/// writes is a secret. Call it first thing, before any thread or file exists.
pub fn private_umask() {
    set_umask(0o077);
}

/// Set the umask, returning the previous one.
#[allow(unsafe_code)]
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask(2) only swaps the process's mask; it has no preconditions and cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// This process's effective uid.
#[allow(unsafe_code)]
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Try to take an exclusive flock on `file` without waiting; `Ok(false)` when another open file
/// description holds it.
#[allow(unsafe_code)]
fn try_flock(file: &File) -> io::Result<bool> {
    // SAFETY: the descriptor belongs to `file`, which is open for the whole call; flock(2)
    // reads no memory of ours.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Create `dir` (0700) if needed and check that it is a folder of ours that nobody else can
/// write.
///
/// # Errors
/// [`DataDirError::Writable`], [`DataDirError::Owner`], [`DataDirError::NotAFolder`], I/O.
pub fn check(dir: &Path) -> Result<(), DataDirError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))?;
    let meta = std::fs::metadata(dir).map_err(io_err(dir))?;
    let mode = meta.mode() & 0o7777;
    if !meta.is_dir() {
        return Err(DataDirError::NotAFolder {
            path: dir.to_path_buf(),
        });
    }
    let uid = effective_uid();
    if meta.uid() != uid {
        return Err(DataDirError::Owner {
            path: dir.to_path_buf(),
            mode,
            owner: meta.uid(),
            uid,
        });
    }
    if mode & 0o022 != 0 {
        return Err(DataDirError::Writable {
            path: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Check `dir` ([`check`]), take its lock for `role`, then tighten everything in it to
/// owner-only. Waits (up to 10 s) while a `tessera user` command holds the lock; refuses at once
/// when a server does.
///
/// # Errors
/// [`DataDirError::Locked`] naming the holder, or what [`check`] and tightening refuse.
pub async fn take(dir: &Path, role: Role) -> Result<DataDirLock, DataDirError> {
    take_waiting(dir, role, COMMAND_WAIT).await
}

async fn take_waiting(dir: &Path, role: Role, wait: Duration) -> Result<DataDirLock, DataDirError> {
    check(dir)?;
    let waited = tokio::time::Instant::now();
    let lock = loop {
        match try_take(dir, role) {
            Err(DataDirError::Locked { holder, .. })
                if holder.role != Some(Role::Server) && waited.elapsed() < wait =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other?,
        }
    };
    tighten_all(dir)?;
    Ok(lock)
}

/// Take the lock without waiting.
///
/// # Errors
/// [`DataDirError::Locked`], I/O.
pub fn try_take(dir: &Path, role: Role) -> Result<DataDirLock, DataDirError> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(io_err(&path))?;
    if !try_flock(&file).map_err(io_err(&path))? {
        return Err(DataDirError::Locked {
            path: dir.to_path_buf(),
            holder: read_holder(&mut file),
        });
    }
    let record = format!("{} {}\n", std::process::id(), role.word());
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(record.as_bytes()))
        .map_err(io_err(&path))?;
    Ok(DataDirLock {
        _file: file,
        path: dir.to_path_buf(),
    })
}

/// Who holds `dir`'s lock, if anyone (`None` also when there is no lock file). Takes the lock
/// for an instant when it is free.
pub fn holder(dir: &Path) -> Option<Holder> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join(LOCK_FILE))
        .ok()?;
    match try_flock(&file) {
        Ok(false) => Some(read_holder(&mut file)),
        _ => None,
    }
}

fn read_holder(file: &mut File) -> Holder {
    let mut text = String::new();
    let _ = file
        .rewind()
        .and_then(|()| file.take(64).read_to_string(&mut text));
    let mut words = text.split_whitespace();
    let pid = words.next().and_then(|p| p.parse().ok());
    let role = match words.next() {
        Some("server") => Some(Role::Server),
        Some("command") => Some(Role::Command),
        _ => None,
    };
    Holder { pid, role }
}

/// Remove group and other permissions from `path` (not following a symlink); returns the old
/// and new mode when it changed anything.
///
/// # Errors
/// I/O (a file of another user cannot be changed unless we are root).
pub fn tighten(path: &Path) -> io::Result<Option<(u32, u32)>> {
    let meta = std::fs::symlink_metadata(path)?;
    let mode = meta.mode() & 0o7777;
    if meta.file_type().is_symlink() || mode & 0o077 == 0 {
        return Ok(None);
    }
    let new = mode & 0o700;
    std::fs::set_permissions(path, Permissions::from_mode(new))?;
    Ok(Some((mode, new)))
}

/// Tighten `dir` and everything below it (symlinks are neither followed nor changed).
fn tighten_all(dir: &Path) -> Result<(), DataDirError> {
    let mut count = 0usize;
    let mut note = |path: &Path, change: Option<(u32, u32)>| {
        if let Some((from, to)) = change {
            count += 1;
            if count <= LOGGED_TIGHTENINGS {
                tracing::info!(path = %path.display(), from = %format!("{from:04o}"), to = %format!("{to:04o}"), "tightened permissions to owner-only");
            }
        }
    };
    note(dir, tighten(dir).map_err(io_err(dir))?);
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder).map_err(io_err(&folder))?;
        for entry in entries {
            let entry = entry.map_err(io_err(&folder))?;
            let path = entry.path();
            if folder == dir && CHECKED_ELSEWHERE.iter().any(|n| entry.file_name() == *n) {
                continue;
            }
            note(&path, tighten(&path).map_err(io_err(&path))?);
            if entry.file_type().map_err(io_err(&path))?.is_dir() {
                folders.push(path);
            }
        }
    }
    if count > LOGGED_TIGHTENINGS {
        tracing::info!(
            paths = count,
            folder = %dir.display(),
            "tightened permissions to owner-only"
        );
    }
    Ok(())
}

#[cfg(test)]
#[path = "data_dir_tests.rs"]
mod tests;
