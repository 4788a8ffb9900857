//! Cost of firing one event to N hooked plugins across the ABI (payload decode and the
//! abi_stable trait-object call included), with real plugin files loaded by the real loader.
//!
//! Run: `cargo bench -p tessera-host --bench bus`

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tessera_host::runtime::bus::{deliver, QueuedEvent};
use tessera_host::runtime::modules::Registry;

fn plugin_file() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "tessera-fixture-counter",
        ])
        .current_dir(&root)
        .status()
        .expect("cargo build");
    assert!(status.success());
    root.join("target/release/libmod_fixture_counter.so")
}

fn registry_with(n: usize, file: &std::path::Path, staging: &std::path::Path) -> Registry {
    let registry = Registry::default();
    let mut modules = Vec::new();
    for _ in 0..n {
        // Each load stages a fresh copy, so every handler is a separate library instance.
        let library = tessera_host::runtime::loader::load(file, staging).expect("load fixture");
        let prepared = tessera_host::startup::PreparedModule {
            library,
            options: Default::default(),
        };
        modules.push(Arc::new(
            tessera_host::runtime::loader::instantiate(None, &prepared, &[]).expect("instantiate"),
        ));
    }
    registry.install(modules);
    registry
}

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
