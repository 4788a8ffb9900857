//! The default store: SQLite in WAL mode, one file in the data directory, versioned migrations
//! (`PRAGMA user_version`). One writer connection and a few reader connections, so reads from
//! plugin callbacks never wait behind a write.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};
use tessera_plugin_api::protocol::{
    ArchiveBound, ArchiveBounds, ArchiveItem, ArchivePage, ArchiveQuery, KvScope, KvWrite,
    ScramSecret,
};

use super::{AccountRecord, Store, StoreError, VerifierWrite, Verifiers, MAX_ARCHIVE_PAGE};

/// Schema migrations; entry `i` brings the schema from version `i` to `i + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    // 1: accounts and module key-value entries.
    "CREATE TABLE accounts (
        user TEXT PRIMARY KEY NOT NULL,
        sha1_salt BLOB NOT NULL, sha1_iterations INTEGER NOT NULL,
        sha1_stored_key BLOB NOT NULL, sha1_server_key BLOB NOT NULL,
        sha256_salt BLOB NOT NULL, sha256_iterations INTEGER NOT NULL,
        sha256_stored_key BLOB NOT NULL, sha256_server_key BLOB NOT NULL,
        email TEXT,
        created_at INTEGER NOT NULL,
        password_changed_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE module_kv (
        module TEXT NOT NULL,
        scope TEXT NOT NULL,          -- '' for global, else the account's localpart
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (module, scope, key)
    ) STRICT;
    CREATE INDEX module_kv_scope ON module_kv (scope);",
    // 2: module archives (message archives, offline storage), in append order (`seq`).
    "CREATE TABLE module_archive (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        module TEXT NOT NULL,
        archive TEXT NOT NULL,
        account TEXT NOT NULL,
        id TEXT NOT NULL,
        peer TEXT NOT NULL,
        at INTEGER NOT NULL,
        data BLOB NOT NULL,
        UNIQUE (module, archive, account, id)
    ) STRICT;
    CREATE INDEX module_archive_order ON module_archive (module, archive, account, seq);
    CREATE INDEX module_archive_time ON module_archive (module, archive, account, at);
    CREATE INDEX module_archive_owner ON module_archive (account);",
    // 3: an entry's class, which a bounded append counts apart (mod_offline: strangers).
    "ALTER TABLE module_archive ADD COLUMN class TEXT NOT NULL DEFAULT '';",
    // 4: SCRAM-SHA-512 verifiers, absent for accounts whose password predates them.
    "ALTER TABLE accounts ADD COLUMN sha512_salt BLOB;
    ALTER TABLE accounts ADD COLUMN sha512_iterations INTEGER;
    ALTER TABLE accounts ADD COLUMN sha512_stored_key BLOB;
    ALTER TABLE accounts ADD COLUMN sha512_server_key BLOB;",
];

const READERS: usize = 4;

/// SQLite-backed [`Store`].
#[derive(Debug)]
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    /// Archive appends behind the caller ([`super::appends`]).
    appends: Arc<super::appends::AppendQueue>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

/// Insert one archive entry of (module, archive, account) with its class.
pub(super) fn insert_entry(
    c: &Connection,
    [module, archive, user]: [&str; 3],
    item: &ArchiveItem,
    class: &str,
) -> rusqlite::Result<usize> {
    c.prepare_cached(
        "INSERT INTO module_archive (module, archive, account, id, peer, at, data, class)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        module,
        archive,
        user,
        item.id,
        item.with,
        item.at_ms as i64,
        item.data,
        class
    ])
}

fn scope_key<'a>(scope: &KvScope<'a>) -> &'a str {
    match scope {
        KvScope::Global => "",
        KvScope::Account(user) => user,
    }
}

fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: every commit fsyncs the WAL, so an acknowledged change (password, revocation)
    // survives power loss, not only a killed process; cost: docs/benchmarks.md.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// The database and the files SQLite keeps beside it.
fn files(path: &Path) -> [std::path::PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    [path.to_path_buf(), with("-wal"), with("-shm")]
}

/// Make the database owner-only before SQLite opens it: create it 0600 if missing, narrow an
/// existing one (and its `-wal` and `-shm`) left wider by an older build. SQLite gives the
/// `-wal` and `-shm` files it creates the database file's mode, whatever the umask.
fn make_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e: std::io::Error| StoreError::Backend(format!("{}: {e}", path.display()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    for file in files(path) {
        match crate::data_dir::tighten(&file) {
            Ok(Some((from, to))) => {
                tracing::info!(path = %file.display(), from = %format!("{from:04o}"), to = %format!("{to:04o}"), "tightened permissions to owner-only");
            }
            Ok(None) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
    }
    Ok(())
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // What is queued is written before the store goes (a clean stop loses nothing).
        self.appends.stop();
    }
}

impl SqliteStore {
    /// Open (creating if needed, owner-only) and migrate the database at `path`.
    ///
    /// # Errors
    /// I/O, corruption, or a schema newer than this build.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        make_private(path)?;
        let mut writer = open(path)?;
        migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| open(path).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        let writer = Arc::new(Mutex::new(writer));
        let appends = super::appends::AppendQueue::start(writer.clone())
            .map_err(|e| StoreError::Backend(format!("archive writer thread: {e}")))?;
        Ok(Self {
            writer,
            appends,
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let conn = self
            .writer
            .lock()
            .map_err(|_| StoreError::Backend("writer lock poisoned".into()))?;
        Ok(f(&conn)?)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let conn = self.reader()?;
        Ok(f(&conn)?)
    }

    /// A reader connection: the first free one; if all are busy, wait on the round-robin one.
    fn reader(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        let n = self.readers.len().max(1);
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Some(m) = self.readers.get((start + i) % n) {
                if let Ok(conn) = m.try_lock() {
                    return Ok(conn);
                }
            }
        }
        self.readers
            .get(start % n)
            .ok_or_else(|| StoreError::Backend("no reader".into()))?
            .lock()
            .map_err(|_| StoreError::Backend("reader lock poisoned".into()))
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if version > supported {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

fn secret_from_row(row: &rusqlite::Row<'_>, base: usize) -> rusqlite::Result<ScramSecret> {
    Ok(ScramSecret {
        salt: row.get(base)?,
        iterations: row.get(base + 1)?,
        stored_key: row.get(base + 2)?,
        server_key: row.get(base + 3)?,
    })
}

impl Store for SqliteStore {
    fn create_account(&self, a: &AccountRecord) -> Result<(), StoreError> {
        let inserted = self.write(|c| {
            c.execute(
                "INSERT OR IGNORE INTO accounts (user, sha1_salt, sha1_iterations, sha1_stored_key,
                    sha1_server_key, sha256_salt, sha256_iterations, sha256_stored_key,
                    sha256_server_key, email, created_at, password_changed_at, sha512_salt,
                    sha512_iterations, sha512_stored_key, sha512_server_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                params![
                    a.user,
                    a.scram_sha1.salt,
                    a.scram_sha1.iterations,
                    a.scram_sha1.stored_key,
                    a.scram_sha1.server_key,
                    a.scram_sha256.salt,
                    a.scram_sha256.iterations,
                    a.scram_sha256.stored_key,
                    a.scram_sha256.server_key,
                    a.email,
                    a.created_at_ms as i64,
                    a.password_changed_at_ms as i64,
                    a.scram_sha512.as_ref().map(|s| s.salt.clone()),
                    a.scram_sha512.as_ref().map(|s| s.iterations),
                    a.scram_sha512.as_ref().map(|s| s.stored_key.clone()),
                    a.scram_sha512.as_ref().map(|s| s.server_key.clone()),
                ],
            )
        })?;
        if inserted == 0 {
            return Err(StoreError::AccountExists(a.user.clone()));
        }
        Ok(())
    }

    fn get_account(&self, user: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT user, sha1_salt, sha1_iterations, sha1_stored_key, sha1_server_key,
                        sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key,
                        email, created_at, password_changed_at,
                        sha512_salt, sha512_iterations, sha512_stored_key, sha512_server_key
                 FROM accounts WHERE user = ?1",
            )?
            .query_row(params![user], |row| {
                Ok(AccountRecord {
                    user: row.get(0)?,
                    scram_sha1: secret_from_row(row, 1)?,
                    scram_sha256: secret_from_row(row, 5)?,
                    email: row.get(9)?,
                    created_at_ms: row.get::<_, i64>(10)? as u64,
                    password_changed_at_ms: row.get::<_, i64>(11)? as u64,
                    scram_sha512: match row.get::<_, Option<u32>>(13)? {
                        Some(_) => Some(secret_from_row(row, 12)?),
                        None => None,
                    },
                })
            })
            .optional()
        })
    }

    fn set_credentials(
        &self,
        user: &str,
        v: &Verifiers,
        changed_at_ms: u64,
    ) -> Result<bool, StoreError> {
        let n = self.write(|c| {
            c.execute(
                "UPDATE accounts SET sha1_salt = ?2, sha1_iterations = ?3, sha1_stored_key = ?4,
                    sha1_server_key = ?5, sha256_salt = ?6, sha256_iterations = ?7,
                    sha256_stored_key = ?8, sha256_server_key = ?9, password_changed_at = ?10,
                    sha512_salt = ?11, sha512_iterations = ?12, sha512_stored_key = ?13,
                    sha512_server_key = ?14
                 WHERE user = ?1",
                params![
                    user,
                    v.sha1.salt,
                    v.sha1.iterations,
                    v.sha1.stored_key,
                    v.sha1.server_key,
                    v.sha256.salt,
                    v.sha256.iterations,
                    v.sha256.stored_key,
                    v.sha256.server_key,
                    changed_at_ms as i64,
                    v.sha512.salt,
                    v.sha512.iterations,
                    v.sha512.stored_key,
                    v.sha512.server_key,
                ],
            )
        })?;
        Ok(n > 0)
    }

    fn add_sha512_verifier(
        &self,
        user: &str,
        v: &ScramSecret,
        changed_before_ms: u64,
    ) -> Result<VerifierWrite, StoreError> {
        let n = self.write(|c| {
            c.execute(
                "UPDATE accounts SET sha512_salt = ?2, sha512_iterations = ?3,
                    sha512_stored_key = ?4, sha512_server_key = ?5
                 WHERE user = ?1 AND sha512_salt IS NULL AND password_changed_at < ?6",
                params![
                    user,
                    v.salt,
                    v.iterations,
                    v.stored_key,
                    v.server_key,
                    changed_before_ms as i64
                ],
            )
        })?;
        if n > 0 {
            return Ok(VerifierWrite::Added);
        }
        // Not written: say why (a later change can only make it staler).
        Ok(match self.get_account(user)? {
            Some(a) if a.password_changed_at_ms < changed_before_ms && a.scram_sha512.is_some() => {
                VerifierWrite::Present
            }
            _ => VerifierWrite::Stale,
        })
    }

    fn set_email(&self, user: &str, email: Option<&str>) -> Result<bool, StoreError> {
        let n = self.write(|c| {
            c.execute(
                "UPDATE accounts SET email = ?2 WHERE user = ?1",
                params![user, email],
            )
        })?;
        Ok(n > 0)
    }

    fn delete_account(&self, user: &str) -> Result<bool, StoreError> {
        self.appends.flush();
        // One transaction: the account and its module entries go together or not at all.
        self.write(|c| {
            let tx = c.unchecked_transaction()?;
            let n = tx.execute("DELETE FROM accounts WHERE user = ?1", params![user])?;
            tx.execute("DELETE FROM module_kv WHERE scope = ?1", params![user])?;
            tx.execute(
                "DELETE FROM module_archive WHERE account = ?1",
                params![user],
            )?;
            tx.commit()?;
            Ok(n > 0)
        })
    }

    fn list_accounts(&self) -> Result<Vec<String>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT user FROM accounts ORDER BY user")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        })
    }

    fn kv_get(
        &self,
        module: &str,
        scope: &KvScope,
        key: &str,
    ) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT value FROM module_kv WHERE module = ?1 AND scope = ?2 AND key = ?3",
            )?
            .query_row(params![module, scope_key(scope), key], |r| r.get(0))
            .optional()
        })
    }

    fn kv_put(
        &self,
        module: &str,
        scope: &KvScope,
        key: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO module_kv (module, scope, key, value) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (module, scope, key) DO UPDATE SET value = excluded.value",
                params![module, scope_key(scope), key, value],
            )
        })?;
        Ok(())
    }

    fn kv_write(
        &self,
        module: &str,
        scope: &KvScope,
        writes: &[KvWrite],
    ) -> Result<(), StoreError> {
        self.write(|c| {
            let tx = c.unchecked_transaction()?;
            for write in writes {
                match &write.value {
                    Some(value) => tx
                        .prepare_cached(
                            "INSERT INTO module_kv (module, scope, key, value) VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT (module, scope, key) DO UPDATE SET value = excluded.value",
                        )?
                        .execute(params![module, scope_key(scope), write.key, value])?,
                    None => tx
                        .prepare_cached(
                            "DELETE FROM module_kv WHERE module = ?1 AND scope = ?2 AND key = ?3",
                        )?
                        .execute(params![module, scope_key(scope), write.key])?,
                };
            }
            tx.commit()
        })?;
        Ok(())
    }

    fn kv_delete(&self, module: &str, scope: &KvScope, key: &str) -> Result<bool, StoreError> {
        let n = self.write(|c| {
            c.execute(
                "DELETE FROM module_kv WHERE module = ?1 AND scope = ?2 AND key = ?3",
                params![module, scope_key(scope), key],
            )
        })?;
        Ok(n > 0)
    }

    fn kv_list(
        &self,
        module: &str,
        scope: &KvScope,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT key, value FROM module_kv
                 WHERE module = ?1 AND scope = ?2 AND substr(key, 1, length(?3)) = ?3
                 ORDER BY key",
            )?;
            let rows = stmt.query_map(params![module, scope_key(scope), prefix], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            rows.collect()
        })
    }

    fn archive_append(
        &self,
        module: &str,
        archive: &str,
        user: &str,
        item: &ArchiveItem,
    ) -> Result<(), StoreError> {
        // Written behind the caller, in batches; every read below waits for it.
        let append = (
            [module.to_owned(), archive.to_owned(), user.to_owned()],
            item.clone(),
        );
        if let Some(append) = self.appends.push(append) {
            // The writer is gone (or the store stopping): written here, as before it.
            self.write(|c| super::appends::write(c, std::slice::from_ref(&append)))?;
        }
        Ok(())
    }

    fn archive_append_within(
        &self,
        module: &str,
        archive: &str,
        user: &str,
        item: &ArchiveItem,
        bounds: &ArchiveBounds,
    ) -> Result<Option<ArchiveBound>, StoreError> {
        self.appends.flush();
        self.write(|c| {
            // One writer connection: nothing else writes between the count and the insert.
            let tx = c.unchecked_transaction()?;
            let (entries, bytes, in_class) = tx
                .prepare_cached(
                    "SELECT count(*), coalesce(sum(length(data)), 0),
                            coalesce(sum(class = ?4), 0)
                     FROM module_archive WHERE module = ?1 AND archive = ?2 AND account = ?3",
                )?
                .query_row(params![module, archive, user, bounds.class], |r| {
                    Ok((
                        r.get::<_, i64>(0)? as u64,
                        r.get::<_, i64>(1)? as u64,
                        r.get::<_, i64>(2)? as u64,
                    ))
                })?;
            let crossed = bounds.crossed(entries, bytes, in_class, item.data.len() as u64);
            if crossed.is_none() {
                insert_entry(&tx, [module, archive, user], item, &bounds.class)?;
                tx.commit()?;
            }
            Ok(crossed)
        })
    }

    fn archive_query(
        &self,
        module: &str,
        archive: &str,
        user: &str,
        query: &ArchiveQuery,
    ) -> Result<ArchivePage, StoreError> {
        self.appends.flush();
        let limit = query.limit.min(MAX_ARCHIVE_PAGE);
        let owner = [module, archive, user];
        let seq_of = |c: &Connection, id: &str| -> Result<i64, StoreError> {
            c.prepare_cached(
                "SELECT seq FROM module_archive
                 WHERE module = ?1 AND archive = ?2 AND account = ?3 AND id = ?4",
            )?
            .query_row(params![owner[0], owner[1], owner[2], id], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::UnknownId(id.to_owned()))
        };
        let conn = self.reader()?;
        let after = query
            .after_id
            .as_deref()
            .map(|id| seq_of(&conn, id))
            .transpose()?;
        let before = query
            .before_id
            .as_deref()
            .map(|id| seq_of(&conn, id))
            .transpose()?;
        let mut sql = String::from(
            "SELECT id, peer, at, data FROM module_archive
             WHERE module = ?1 AND archive = ?2 AND account = ?3",
        );
        let mut args: Vec<rusqlite::types::Value> =
            owner.iter().map(|s| (*s).to_owned().into()).collect();
        let mut cond = |clause: &str, value: rusqlite::types::Value| {
            args.push(value);
            sql.push_str(&format!(" AND {clause} ?{}", args.len()));
        };
        if let Some(with) = &query.with {
            cond("peer =", with.clone().into());
        }
        if let Some(start) = query.start_ms {
            cond("at >=", (start as i64).into());
        }
        if let Some(end) = query.end_ms {
            cond("at <=", (end as i64).into());
        }
        if let Some(after) = after {
            cond("seq >", after.into());
        }
        if let Some(before) = before {
            cond("seq <", before.into());
        }
        if !query.ids.is_empty() {
            let first = args.len() + 1;
            args.extend(query.ids.iter().map(|id| id.clone().into()));
            let slots: Vec<String> = (first..=args.len()).map(|i| format!("?{i}")).collect();
            sql.push_str(&format!(" AND id IN ({})", slots.join(", ")));
        }
        let order = if query.reverse { "DESC" } else { "ASC" };
        sql.push_str(&format!(
            " ORDER BY seq {order} LIMIT {}",
            u64::from(limit) + 1
        ));
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
            Ok(ArchiveItem {
                id: r.get(0)?,
                with: r.get(1)?,
                at_ms: r.get::<_, i64>(2)? as u64,
                data: r.get(3)?,
            })
        })?;
        let mut items = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        let complete = items.len() <= limit as usize;
        items.truncate(limit as usize);
        Ok(ArchivePage { items, complete })
    }

    fn archive_delete(
        &self,
        module: &str,
        archive: &str,
        user: &str,
        before_ms: Option<u64>,
    ) -> Result<u64, StoreError> {
        self.appends.flush();
        let n = self.write(|c| {
            c.execute(
                "DELETE FROM module_archive
                 WHERE module = ?1 AND archive = ?2 AND account = ?3 AND at < ?4",
                params![
                    module,
                    archive,
                    user,
                    before_ms.map_or(i64::MAX, |b| b as i64)
                ],
            )
        })?;
        Ok(n as u64)
    }

    fn archive_take(
        &self,
        module: &str,
        archive: &str,
        user: &str,
        limit: u32,
    ) -> Result<Vec<ArchiveItem>, StoreError> {
        self.appends.flush();
        let limit = limit.min(MAX_ARCHIVE_PAGE);
        self.write(|c| {
            let tx = c.unchecked_transaction()?;
            let items = {
                let mut stmt = tx.prepare_cached(
                    "DELETE FROM module_archive WHERE seq IN (
                         SELECT seq FROM module_archive
                         WHERE module = ?1 AND archive = ?2 AND account = ?3
                         ORDER BY seq LIMIT ?4)
                     RETURNING seq, id, peer, at, data",
                )?;
                let rows = stmt.query_map(params![module, archive, user, limit], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        ArchiveItem {
                            id: r.get(1)?,
                            with: r.get(2)?,
                            at_ms: r.get::<_, i64>(3)? as u64,
                            data: r.get(4)?,
                        },
                    ))
                })?;
                let mut items = rows.collect::<rusqlite::Result<Vec<_>>>()?;
                // RETURNING has no defined order: put them back in append order.
                items.sort_by_key(|(seq, _)| *seq);
                items.into_iter().map(|(_, item)| item).collect::<Vec<_>>()
            };
            tx.commit()?;
            Ok(items)
        })
    }

    fn sync_appends(&self) {
        self.appends.flush();
    }

    fn archive_count(&self, module: &str, archive: &str, user: &str) -> Result<u64, StoreError> {
        self.appends.flush();
        self.read(|c| {
            c.prepare_cached(
                "SELECT count(*) FROM module_archive
                 WHERE module = ?1 AND archive = ?2 AND account = ?3",
            )?
            .query_row(params![module, archive, user], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
        })
    }
}
