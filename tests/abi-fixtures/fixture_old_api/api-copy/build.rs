//! ALTERED COPY only (the real `plugin-api` has no build script).
//!
//! abi_stable records the package name (`CARGO_PKG_NAME`) in every type layout and refuses a
//! different package before it compares anything else ("mismatched package"). A real plugin
//! built against an incompatible build of the API would carry the real name, so this copy
//! presents itself as `tessera-plugin-api` to its own compilation (Cargo cannot hold two path
//! packages of the same name and version in one lock file, hence the different package name in
//! Cargo.toml). The layout check then reaches, and reports, the changed `on_request` argument.
fn main() {
    println!("cargo:rustc-env=CARGO_PKG_NAME=tessera-plugin-api");
    println!("cargo:rerun-if-changed=build.rs");
}
