//! What the plugin benchmarks share: the release build of `fixture_counter`, and a registry
//! with N separately staged copies of it loaded by the real loader.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tessera_host::runtime::modules::Registry;

/// `fixture_counter` built in release mode; its file.
pub(crate) fn plugin_file() -> PathBuf {
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

/// A registry with `n` instances of `file`, each staged and loaded afresh (so every handler is
/// a separate library instance), bound to no server.
pub(crate) fn registry_with(n: usize, file: &Path, staging: &Path) -> Registry {
    let registry = Registry::default();
    let mut modules = Vec::new();
    for _ in 0..n {
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
