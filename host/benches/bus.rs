//! Cost of firing one event to N hooked plugins across the ABI (payload decode and the
//! abi_stable trait-object call included), with real plugin files loaded by the real loader.
//!
//! Run: `cargo bench -p tessera-host --bench bus`

mod common;

use common::{plugin_file, registry_with};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tessera_host::runtime::bus::{deliver, QueuedEvent};

fn bench(c: &mut Criterion) {
    let file = plugin_file();
    let staging = tempfile::tempdir().expect("tempdir");
    let event = QueuedEvent {
        name: "fixture-count".into(),
        payload: tessera_plugin_api::wire::encode(
            &tessera_plugin_api::events::UserPasswordChanged {
                user: "alice".into(),
                origin_stream: None,
                at_ms: 1_764_072_000_000,
            },
        )
        .expect("encode"),
        origin: None,
    };
    let mut group = c.benchmark_group("bus_dispatch");
    for n in [1usize, 3, 10] {
        let registry = registry_with(n, &file, staging.path());
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("handlers", n), &registry, |b, registry| {
            b.iter(|| deliver(registry, &event));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
