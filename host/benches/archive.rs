//! The archive store under XEP-0313's common queries: the latest page of a large archive (what a
//! client asks at every login), a page in the middle (`after` an id), and a `with` filter, on a
//! real SQLite file (WAL, the server's settings) holding 100,000 entries of one account among
//! 10 accounts' 10,000 each.
//!
//! Run: `cargo bench -p tessera-host --bench archive` (the fill takes a few seconds).

use criterion::{criterion_group, criterion_main, Criterion};
use tessera_host::store::{SqliteStore, Store};
use tessera_plugin_api::protocol::{ArchiveItem, ArchiveQuery};

const MODULE: &str = "mam";
const ARCHIVE: &str = "messages";
const ENTRIES: u64 = 100_000;

/// A chat message of the size clients send (a sentence, ids, a stanza-id).
fn message(i: u64, with: &str) -> Vec<u8> {
    format!(
        "<message xmlns='jabber:client' from='{with}/phone' to='alice@example.org' type='chat' id='m{i}'>\
         <body>Message number {i}: shall we meet at the usual place around seven?</body>\
         <origin-id xmlns='urn:xmpp:sid:0' id='o{i}'/></message>"
    )
    .into_bytes()
}

fn fill(store: &SqliteStore) -> Vec<String> {
    let t0 = 1_764_000_000_000u64;
    let mut ids = Vec::new();
    for i in 0..ENTRIES {
        let with = format!("contact{}@example.org", i % 20);
        let id = format!("0190{i:028x}");
        let item = ArchiveItem {
            id: id.clone(),
            with: with.clone(),
            at_ms: t0 + i * 1000,
            data: message(i, &with),
        };
        store
            .archive_append(MODULE, ARCHIVE, "alice", &item)
            .expect("append");
        ids.push(id);
        // Other accounts' entries in between, as in a shared store.
        if i % 10 == 0 {
            let other = format!("user{}", i % 9);
            let item = ArchiveItem {
                id: format!("1190{i:028x}"),
                ..item
            };
            store
                .archive_append(MODULE, ARCHIVE, &other, &item)
                .expect("append");
        }
    }
    ids
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("tessera.db")).expect("open");
    let ids = fill(&store);
    let mut group = c.benchmark_group("mam_query_100k");
    let latest = ArchiveQuery {
        limit: 50,
        reverse: true,
        ..ArchiveQuery::default()
    };
    group.bench_function("latest_50", |b| {
        b.iter(|| {
            let page = store
                .archive_query(MODULE, ARCHIVE, "alice", &latest)
                .expect("query");
            assert_eq!(page.items.len(), 50);
        });
    });
    let middle = ArchiveQuery {
        limit: 50,
        after_id: Some(ids[50_000].clone()),
        ..ArchiveQuery::default()
    };
    group.bench_function("after_id_middle_50", |b| {
        b.iter(|| {
            let page = store
                .archive_query(MODULE, ARCHIVE, "alice", &middle)
                .expect("query");
            assert_eq!(page.items.len(), 50);
        });
    });
    let with = ArchiveQuery {
        limit: 50,
        reverse: true,
        with: Some("contact7@example.org".into()),
        ..ArchiveQuery::default()
    };
    group.bench_function("latest_50_with_one_contact", |b| {
        b.iter(|| {
            let page = store
                .archive_query(MODULE, ARCHIVE, "alice", &with)
                .expect("query");
            assert_eq!(page.items.len(), 50);
        });
    });
    group.bench_function("count", |b| {
        b.iter(|| {
            store
                .archive_count(MODULE, ARCHIVE, "alice")
                .expect("count")
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
