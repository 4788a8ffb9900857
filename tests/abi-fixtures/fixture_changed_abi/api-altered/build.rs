//! Writes `$OUT_DIR/lib.rs` and `$OUT_DIR/abi.rs`: the real plugin API (`plugin-api/src/lib.rs`,
//! every module by path so a module added there is picked up here) with one ABI-visible change in
//! `abi/mod.rs` (a third `EventFlow` variant), made includable (no inner attributes or `//!` docs).
use std::path::{Path, PathBuf};

fn includable(source: &str) -> String {
    source
        .lines()
        .filter(|l| !l.starts_with("//!") && !l.starts_with("#!["))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn read(path: &Path) -> String {
    println!("cargo:rerun-if-changed={}", path.display());
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn main() {
    println!("cargo:rustc-env=CARGO_PKG_NAME=tessera-plugin-api");
    println!("cargo:rerun-if-changed=build.rs");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let src = manifest.join("../../../../plugin-api/src");
    let src = src.canonicalize().expect("the real plugin-api/src");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("out dir"));

    // abi/mod.rs with the one change.
    let abi = read(&src.join("abi/mod.rs"));
    const ORIGINAL: &str = "    Stop = 1,\n}";
    const ALTERED: &str = "    Stop = 1,\n    /// Added by the altered copy only.\n    Skip = 2,\n}";
    assert_eq!(
        abi.matches(ORIGINAL).count(),
        1,
        "abi/mod.rs no longer has EventFlow's last variant `Stop = 1`; update this fixture"
    );
    let glue = format!("#[path = {:?}]\npub mod glue;", src.join("abi/glue.rs"));
    let abi = includable(&abi.replace(ORIGINAL, ALTERED).replace("pub mod glue;", &glue));
    std::fs::write(out.join("abi.rs"), abi).expect("write abi.rs");

    // lib.rs: the altered `abi`, every other module from the real sources.
    let lib = read(&src.join("lib.rs"));
    let mut altered = String::new();
    for line in includable(&lib).lines() {
        match line.strip_prefix("pub mod ").and_then(|r| r.strip_suffix(';')) {
            Some("abi") => altered.push_str(
                "pub mod abi {\n    include!(concat!(env!(\"OUT_DIR\"), \"/abi.rs\"));\n}\n",
            ),
            Some(name) => {
                let file = src.join(format!("{name}.rs"));
                println!("cargo:rerun-if-changed={}", file.display());
                altered.push_str(&format!("#[path = {:?}]\npub mod {name};\n", file));
            }
            None => {
                altered.push_str(line);
                altered.push('\n');
            }
        }
    }
    std::fs::write(out.join("lib.rs"), altered).expect("write lib.rs");
}
