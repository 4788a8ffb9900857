//! Minor versions of the plugin API add calls in both directions (docs/plugin-abi.md,
//! "Evolution"). This side: a newer host asks a plugin built before a call existed, and gets
//! `UNSUPPORTED` (which the host treats as "older module"), while every call the plugin knows
//! still works. The plugin is a real build (mod_ping, debug) loaded by the real loader.
//! The other side (a plugin built against a newer minor asking this host for a call it does
//! not know) is `tests/e2e/plugins.rs`, with `tests/abi-fixtures/fixture_newer_minor`.

use std::path::PathBuf;

use tessera_plugin_api::calls::{module_call, ModuleTransport};
use tessera_plugin_api::{ModuleCalls, PluginErrorKind};

fn mod_ping() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "-p", "tessera-mod-ping"])
        .current_dir(&root)
        .status()
        .expect("cargo build");
    assert!(status.success(), "building mod_ping failed");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    target.join("debug/libmod_ping.so")
}

#[test]
fn a_call_kind_the_plugin_does_not_know_is_unsupported_and_the_rest_still_works() {
    let staging = tempfile::tempdir().expect("staging");
    let library =
        tessera_host::runtime::loader::load(&mod_ping(), staging.path()).expect("load mod_ping");
    let prepared = tessera_host::startup::PreparedModule {
        library,
        options: Default::default(),
    };
    let module =
        tessera_host::runtime::loader::instantiate(None, &prepared, &[]).expect("instantiate");
    // A kind from a future minor version of the API.
    let future_kind = 900;
    assert_eq!(
        module_call::name(future_kind),
        "unknown",
        "not a kind of this API"
    );
    let err = module
        .call_raw(future_kind, Vec::new())
        .expect_err("unknown kind");
    assert_eq!(err.kind, PluginErrorKind::UNSUPPORTED, "{err}");
    assert_eq!(err.message, "call kind 900");
    // Everything it knows still answers.
    let registrations = module.registrations().expect("registrations");
    assert_eq!(registrations.iq_namespaces, ["urn:xmpp:ping"]);
}
