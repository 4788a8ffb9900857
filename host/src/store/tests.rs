use super::*;
use tessera_plugin_api::protocol::{KvScope, ScramSecret};

fn secret(tag: u8) -> ScramSecret {
    ScramSecret {
        salt: vec![tag; 16],
        iterations: 4096,
        stored_key: vec![tag; 32],
        server_key: vec![tag + 1; 32],
    }
}

fn account(user: &str) -> AccountRecord {
    AccountRecord {
        user: user.into(),
        scram_sha1: secret(1),
        scram_sha256: secret(2),
        email: Some(format!("{user}@example.org")),
        created_at_ms: 10,
        password_changed_at_ms: 10,
    }
}

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.sqlite")).unwrap();
    (dir, store)
}

#[test]
fn accounts_round_trip_and_duplicates_are_refused() {
    let (_d, s) = store();
    s.create_account(&account("alice")).unwrap();
    assert_eq!(s.get_account("alice").unwrap(), Some(account("alice")));
    assert!(matches!(
        s.create_account(&account("alice")),
        Err(StoreError::AccountExists(u)) if u == "alice"
    ));
    assert_eq!(s.get_account("bob").unwrap(), None);
    assert!(s
        .set_credentials("alice", &secret(7), &secret(8), 99)
        .unwrap());
    let a = s.get_account("alice").unwrap().unwrap();
    assert_eq!(a.scram_sha256, secret(8));
    assert_eq!(a.password_changed_at_ms, 99);
    assert!(!s
        .set_credentials("bob", &secret(7), &secret(8), 99)
        .unwrap());
    assert!(s.set_email("alice", None).unwrap());
    assert_eq!(s.get_account("alice").unwrap().unwrap().email, None);
    assert_eq!(s.list_accounts().unwrap(), vec!["alice".to_string()]);
}

#[test]
fn kv_is_scoped_per_module_and_account_and_dies_with_the_account() {
    let (_d, s) = store();
    s.create_account(&account("alice")).unwrap();
    let alice = KvScope::Account("alice");
    s.kv_put("fast", &alice, "tok:1", "a").unwrap();
    s.kv_put("fast", &alice, "tok:2", "b").unwrap();
    s.kv_put("fast", &KvScope::Global, "tok:1", "g").unwrap();
    s.kv_put("other", &alice, "tok:1", "o").unwrap();
    s.kv_put("fast", &alice, "tok:1", "a2").unwrap();
    assert_eq!(
        s.kv_get("fast", &alice, "tok:1").unwrap().as_deref(),
        Some("a2")
    );
    assert_eq!(
        s.kv_get("fast", &KvScope::Global, "tok:1")
            .unwrap()
            .as_deref(),
        Some("g")
    );
    assert_eq!(
        s.kv_list("fast", &alice, "tok:").unwrap(),
        vec![("tok:1".into(), "a2".into()), ("tok:2".into(), "b".into())]
    );
    assert!(
        s.kv_list("fast", &alice, "tok%").unwrap().is_empty(),
        "prefix is literal, not LIKE"
    );
    assert!(s.kv_delete("fast", &alice, "tok:2").unwrap());
    assert!(!s.kv_delete("fast", &alice, "tok:2").unwrap());
    assert!(s.delete_account("alice").unwrap());
    assert_eq!(s.kv_get("fast", &alice, "tok:1").unwrap(), None);
    assert_eq!(s.kv_get("other", &alice, "tok:1").unwrap(), None);
    assert_eq!(
        s.kv_get("fast", &KvScope::Global, "tok:1")
            .unwrap()
            .as_deref(),
        Some("g")
    );
}

#[test]
fn reopening_keeps_data_and_refuses_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    SqliteStore::open(&path)
        .unwrap()
        .create_account(&account("alice"))
        .unwrap();
    let s = SqliteStore::open(&path).unwrap();
    assert!(s.get_account("alice").unwrap().is_some());
    drop(s);
    let c = rusqlite::Connection::open(&path).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    assert!(matches!(
        SqliteStore::open(&path),
        Err(StoreError::SchemaTooNew { found: 99, .. })
    ));
}

#[test]
fn deleting_an_account_clears_both_tables_or_neither() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    let s = SqliteStore::open(&path).unwrap();
    let alice = KvScope::Account("alice");
    s.create_account(&account("alice")).unwrap();
    s.kv_put("fast", &alice, "tok:1", "a").unwrap();
    // The second statement fails (a trigger made by another connection, as a crash or a full
    // disk would make it fail): the first one must not stay done.
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch(
            "CREATE TRIGGER fail_kv_delete BEFORE DELETE ON module_kv
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    let err = s.delete_account("alice").unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert!(
        s.get_account("alice").unwrap().is_some(),
        "the account survives a failed delete"
    );
    assert_eq!(
        s.kv_get("fast", &alice, "tok:1").unwrap().as_deref(),
        Some("a")
    );
    other.execute_batch("DROP TRIGGER fail_kv_delete;").unwrap();
    assert!(s.delete_account("alice").unwrap());
    assert_eq!(s.get_account("alice").unwrap(), None);
    assert_eq!(s.kv_get("fast", &alice, "tok:1").unwrap(), None);
}

#[test]
fn database_files_are_owner_only_and_wider_ones_are_narrowed_on_open() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    let files = [
        path.clone(),
        dir.path().join("t.sqlite-wal"),
        dir.path().join("t.sqlite-shm"),
    ];
    // The test process keeps the usual 0o022 umask: the modes come from the store itself.
    let first = SqliteStore::open(&path).unwrap();
    first.create_account(&account("alice")).unwrap();
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    for f in &files {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let second = SqliteStore::open(&path).unwrap();
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    assert!(second.get_account("alice").unwrap().is_some());
    drop(first);
}
