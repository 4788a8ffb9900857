use super::*;
use tessera_plugin_api::protocol::{ArchivePage, ArchiveQuery, KvScope, ScramSecret};

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
        scram_sha512: None,
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
    let verifiers = Verifiers {
        sha1: secret(7),
        sha256: secret(8),
        sha512: secret(9),
    };
    // An account created without a SHA-512 verifier gets one with its next password.
    assert!(s.set_credentials("alice", &verifiers, 99).unwrap());
    let a = s.get_account("alice").unwrap().unwrap();
    assert_eq!(
        (a.scram_sha256, a.scram_sha512),
        (secret(8), Some(secret(9)))
    );
    assert_eq!(a.password_changed_at_ms, 99);
    assert!(!s.set_credentials("bob", &verifiers, 99).unwrap());
    let mut with_512 = account("carol");
    with_512.scram_sha512 = Some(secret(5));
    s.create_account(&with_512).unwrap();
    assert_eq!(s.get_account("carol").unwrap(), Some(with_512));
    assert!(s.set_email("alice", None).unwrap());
    assert_eq!(s.get_account("alice").unwrap().unwrap().email, None);
    assert_eq!(
        s.list_accounts().unwrap(),
        vec!["alice".to_string(), "carol".to_string()]
    );
}

#[test]
fn a_sha512_verifier_is_added_only_where_missing_and_only_for_the_password_of_the_basis() {
    let (_d, s) = store();
    let mut alice = account("alice");
    alice.password_changed_at_ms = 100;
    s.create_account(&alice).unwrap();
    // A login that began at or before the last change proves an older password.
    for basis in [50, 100] {
        assert_eq!(
            s.add_sha512_verifier("alice", &secret(5), basis).unwrap(),
            VerifierWrite::Stale
        );
    }
    assert_eq!(s.get_account("alice").unwrap().unwrap().scram_sha512, None);
    assert_eq!(
        s.add_sha512_verifier("alice", &secret(5), 101).unwrap(),
        VerifierWrite::Added
    );
    // Never replaced: a second upgrade (or a client that computed it wrong) changes nothing.
    assert_eq!(
        s.add_sha512_verifier("alice", &secret(6), 102).unwrap(),
        VerifierWrite::Present
    );
    let a = s.get_account("alice").unwrap().unwrap();
    assert_eq!(
        (a.scram_sha512, a.password_changed_at_ms),
        (Some(secret(5)), 100)
    );
    assert_eq!(
        s.add_sha512_verifier("nobody", &secret(5), 101).unwrap(),
        VerifierWrite::Stale
    );
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

fn item(id: &str, with: &str, at_ms: u64) -> tessera_plugin_api::protocol::ArchiveItem {
    tessera_plugin_api::protocol::ArchiveItem {
        id: id.into(),
        with: with.into(),
        at_ms,
        data: id.as_bytes().to_vec(),
    }
}

fn ids(page: &ArchivePage) -> Vec<&str> {
    page.items.iter().map(|i| i.id.as_str()).collect()
}

#[test]
fn archives_page_by_partner_time_and_id_in_append_order() {
    let (_d, s) = store();
    for (i, with) in ["bob", "carol", "bob", "bob", "carol"].iter().enumerate() {
        let at = 100 + i as u64 * 10;
        s.archive_append(
            "mam",
            "messages",
            "alice",
            &item(&format!("i{i}"), with, at),
        )
        .unwrap();
    }
    let all = |q: ArchiveQuery| s.archive_query("mam", "messages", "alice", &q).unwrap();
    let page = all(ArchiveQuery {
        limit: 10,
        ..ArchiveQuery::default()
    });
    assert_eq!(ids(&page), ["i0", "i1", "i2", "i3", "i4"]);
    assert!(page.complete);
    assert_eq!(page.items[1].data, b"i1");
    let bob = all(ArchiveQuery {
        with: Some("bob".into()),
        limit: 2,
        ..ArchiveQuery::default()
    });
    assert_eq!((ids(&bob), bob.complete), (vec!["i0", "i2"], false));
    let next = all(ArchiveQuery {
        with: Some("bob".into()),
        after_id: Some("i2".into()),
        limit: 2,
        ..ArchiveQuery::default()
    });
    assert_eq!((ids(&next), next.complete), (vec!["i3"], true));
    let last_two = all(ArchiveQuery {
        limit: 2,
        reverse: true,
        ..ArchiveQuery::default()
    });
    assert_eq!(ids(&last_two), ["i4", "i3"]);
    let window = all(ArchiveQuery {
        start_ms: Some(110),
        end_ms: Some(130),
        before_id: Some("i3".into()),
        limit: 10,
        ..ArchiveQuery::default()
    });
    assert_eq!(ids(&window), ["i1", "i2"]);
    let picked = all(ArchiveQuery {
        ids: vec!["i4".into(), "i0".into(), "nope".into()],
        limit: 10,
        ..ArchiveQuery::default()
    });
    assert_eq!(ids(&picked), ["i0", "i4"]);
    let unknown = s.archive_query(
        "mam",
        "messages",
        "alice",
        &ArchiveQuery {
            after_id: Some("nope".into()),
            limit: 10,
            ..ArchiveQuery::default()
        },
    );
    assert!(matches!(unknown, Err(StoreError::UnknownId(id)) if id == "nope"));
    // Other modules, archives and accounts see nothing of it.
    for (module, archive, user) in [
        ("x", "messages", "alice"),
        ("mam", "x", "alice"),
        ("mam", "messages", "bob"),
    ] {
        let page = s
            .archive_query(
                module,
                archive,
                user,
                &ArchiveQuery {
                    limit: 10,
                    ..ArchiveQuery::default()
                },
            )
            .unwrap();
        assert!(page.items.is_empty());
    }
}

#[test]
fn take_reads_and_deletes_the_oldest_and_deletion_goes_by_age_and_account() {
    let (_d, s) = store();
    s.create_account(&account("alice")).unwrap();
    for i in 0..5u64 {
        s.archive_append(
            "offline",
            "queue",
            "alice",
            &item(&format!("o{i}"), "bob", i),
        )
        .unwrap();
    }
    assert_eq!(s.archive_count("offline", "queue", "alice").unwrap(), 5);
    let first: Vec<String> = s
        .archive_take("offline", "queue", "alice", 3)
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(first, ["o0", "o1", "o2"]);
    assert_eq!(s.archive_count("offline", "queue", "alice").unwrap(), 2);
    assert_eq!(
        s.archive_delete("offline", "queue", "alice", Some(4))
            .unwrap(),
        1
    );
    assert_eq!(s.archive_count("offline", "queue", "alice").unwrap(), 1);
    assert!(s.delete_account("alice").unwrap());
    assert_eq!(s.archive_count("offline", "queue", "alice").unwrap(), 0);
}

/// Stanza-modules pitfall 13: ids appended from 8 threads at once are unique, a query returns
/// them in append order, and paging with `after` neither skips nor repeats.
#[test]
fn concurrent_appends_get_unique_ids_and_page_without_gaps() {
    let (_d, s) = store();
    let s = std::sync::Arc::new(s);
    let appended: Vec<Vec<String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                scope.spawn(move || {
                    (0..250)
                        .map(|i| {
                            let id = crate::runtime::services::archive_id(1_000);
                            s.archive_append("mam", "m", "alice", &item(&id, "bob", 1_000 + i))
                                .unwrap();
                            id
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut unique: Vec<&String> = appended.iter().flatten().collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 2_000, "ids are unique");
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .archive_query(
                "mam",
                "m",
                "alice",
                &ArchiveQuery {
                    after_id: after.clone(),
                    limit: 300,
                    ..ArchiveQuery::default()
                },
            )
            .unwrap();
        seen.extend(page.items.iter().map(|i| i.id.clone()));
        after = page.items.last().map(|i| i.id.clone());
        if page.complete {
            break;
        }
    }
    assert_eq!(seen.len(), 2_000, "no gap, no repeat");
    // Each thread's own appends come back in the order it made them.
    for own in &appended {
        let positions: Vec<usize> = own
            .iter()
            .map(|id| seen.iter().position(|s| s == id).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
    }
    let id = &appended[0][0];
    assert_eq!(id.len(), 36);
    assert!(
        id.starts_with("00000000-03e8-7"),
        "a UUIDv7 whose first 48 bits are the milliseconds: {id}"
    );
}

/// A bounded append refuses at each bound in turn (entries, bytes, the class), counts one
/// account's archive only, and appends otherwise; a put-back without bounds always appends.
#[test]
fn a_bounded_append_stops_at_each_bound() {
    use tessera_plugin_api::protocol::{ArchiveBound, ArchiveBounds};
    let (_d, s) = store();
    // Strangers may hold one entry; the others are bounded by the whole archive's bounds.
    let bounds = |class: &str| ArchiveBounds {
        max_entries: 4,
        max_bytes: 10,
        class: class.into(),
        max_in_class: if class == "stranger" { 1 } else { u64::MAX },
    };
    let put = |id: &str, class: &str| {
        s.archive_append_within("offline", "q", "alice", &item(id, "bob", 1), &bounds(class))
            .unwrap()
    };
    assert_eq!(put("s1", "stranger"), None);
    assert_eq!(
        put("s2", "stranger"),
        Some(ArchiveBound::Class),
        "one stranger's entry at most"
    );
    assert_eq!(put("c1", ""), None, "another class still fits");
    // Another account's archive, or another archive, counts apart.
    let other = s
        .archive_append_within(
            "offline",
            "q",
            "bob",
            &item("s3", "x", 1),
            &bounds("stranger"),
        )
        .unwrap();
    assert_eq!(other, None);
    assert_eq!(put("c2", ""), None);
    // 6 bytes so far ("s1", "c1", "c2"); "long" makes 10: fits.
    assert_eq!(put("long", ""), None);
    assert_eq!(put("x", ""), Some(ArchiveBound::Entries), "4 entries");
    s.archive_take("offline", "q", "alice", 1).unwrap();
    assert_eq!(put("toolong", ""), Some(ArchiveBound::Bytes), "8 + 7 > 10");
    assert_eq!(put("ok", ""), None, "8 + 2 = 10");
    assert_eq!(s.archive_count("offline", "q", "alice").unwrap(), 4);
    // Unbounded: a message put back after a failed delivery is never refused.
    assert_eq!(
        s.archive_append_within(
            "offline",
            "q",
            "alice",
            &item("back", "bob", 1),
            &ArchiveBounds::none("stranger")
        )
        .unwrap(),
        None
    );
    assert_eq!(s.archive_count("offline", "q", "alice").unwrap(), 5);
}

/// Appends racing from 8 threads never take more places than the bound allows (the count
/// and the insert are one step).
#[test]
fn bounded_appends_at_once_never_exceed_the_bound() {
    use tessera_plugin_api::protocol::ArchiveBounds;
    let (_d, s) = store();
    let s = std::sync::Arc::new(s);
    let bounds = ArchiveBounds {
        max_entries: 50,
        ..ArchiveBounds::none("")
    };
    let taken: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|t| {
                let (s, bounds) = (s.clone(), bounds.clone());
                scope.spawn(move || {
                    (0..20)
                        .filter(|i| {
                            let id = format!("t{t}-{i}");
                            s.archive_append_within(
                                "offline",
                                "q",
                                "alice",
                                &item(&id, "b", 1),
                                &bounds,
                            )
                            .unwrap()
                            .is_none()
                        })
                        .count()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert_eq!(taken, 50);
    assert_eq!(s.archive_count("offline", "q", "alice").unwrap(), 50);
}

/// A batch applies its puts and deletes in order, in the module's own scope.
#[test]
fn a_kv_batch_applies_puts_and_deletes_in_order() {
    use tessera_plugin_api::protocol::KvWrite;
    let (_d, s) = store();
    let scope = KvScope::Account("alice");
    s.kv_put("roster", &scope, "old", "x").unwrap();
    s.kv_put("other", &scope, "old", "kept").unwrap();
    s.kv_write(
        "roster",
        &scope,
        &[
            KvWrite::put("a", "1"),
            KvWrite::delete("old"),
            KvWrite::put("b", "2"),
            KvWrite::delete("b"),
            KvWrite::delete("c"),
            KvWrite::put("c", "3"),
        ],
    )
    .unwrap();
    let all = s.kv_list("roster", &scope, "").unwrap();
    assert_eq!(
        all,
        [
            ("a".to_owned(), "1".to_owned()),
            ("c".to_owned(), "3".to_owned())
        ]
    );
    assert_eq!(
        s.kv_get("other", &scope, "old").unwrap().as_deref(),
        Some("kept")
    );
}

/// Appends are written behind the caller, in batches: a read right after sees them, and a
/// store closed right after an append (a clean stop) has written it.
#[test]
fn appends_behind_the_caller_are_read_back_at_once_and_survive_a_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    let s = SqliteStore::open(&path).unwrap();
    for i in 0..3000u64 {
        let id = format!("id{i:05}");
        s.archive_append("mam", "m", "alice", &item(&id, "bob", i))
            .unwrap();
        if i % 1000 == 0 {
            assert_eq!(s.archive_count("mam", "m", "alice").unwrap(), i + 1);
        }
    }
    drop(s);
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.archive_count("mam", "m", "alice").unwrap(), 3000);
    // Deleting the account takes what was still queued too.
    s.archive_append("mam", "m", "alice", &item("late", "bob", 9))
        .unwrap();
    s.delete_account("alice").unwrap();
    assert_eq!(s.archive_count("mam", "m", "alice").unwrap(), 0);
}
