//! Writes `$OUT_DIR/abi.rs`: the real `plugin-api/src/abi/mod.rs` with one ABI-visible change
//! (a third `EventFlow` variant), made includable (no inner attributes, `glue` by absolute path).
use std::path::PathBuf;

fn main() {
    println!("cargo:rustc-env=CARGO_PKG_NAME=tessera-plugin-api");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let real = manifest.join("../../../../plugin-api/src/abi");
    let real = real.canonicalize().expect("the real plugin-api/src/abi");
    let source = std::fs::read_to_string(real.join("mod.rs")).expect("read abi/mod.rs");
    println!("cargo:rerun-if-changed={}", real.join("mod.rs").display());
    println!("cargo:rerun-if-changed=build.rs");
    const ORIGINAL: &str = "    Stop = 1,\n}";
    const ALTERED: &str = "    Stop = 1,\n    /// Added by the altered copy only.\n    Skip = 2,\n}";
    assert_eq!(
        source.matches(ORIGINAL).count(),
        1,
        "abi/mod.rs no longer has EventFlow's last variant `Stop = 1`; update this fixture"
    );
    let glue = format!("#[path = {:?}]\npub mod glue;", real.join("glue.rs"));
    let altered: String = source
        .replace(ORIGINAL, ALTERED)
        .replace("pub mod glue;", &glue)
        .lines()
        .filter(|l| !l.starts_with("//!") && !l.starts_with("#!["))
        .map(|l| format!("{l}\n"))
        .collect();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("out dir")).join("abi.rs");
    std::fs::write(out, altered).expect("write abi.rs");
}
