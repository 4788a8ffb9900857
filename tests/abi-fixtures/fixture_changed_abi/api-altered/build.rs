//! Writes `$OUT_DIR/lib.rs` (and the altered modules) for the copies of the real plugin API
//! that the ABI fixtures are built against: the real `plugin-api/src/lib.rs`, every module by
//! path (so a module added there is picked up here), with one change chosen by the package:
//!
//! * `tessera-plugin-api-altered2` (2.0.0): `abi::EventFlow` gains a third variant, an
//!   ABI-visible change abi_stable's layout check must refuse;
//! * `tessera-plugin-api-newer2` (2.1.0): a newer minor version, with one host call the real
//!   host does not know (kind 900, `future_call`), and nothing else changed.
//!
//! Both present themselves to abi_stable as `tessera-plugin-api` (it compares package names).
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

    let package = std::env::var("CARGO_PKG_NAME").expect("package name");
    let newer = match package.as_str() {
        "tessera-plugin-api-altered2" => false,
        "tessera-plugin-api-newer2" => true,
        other => panic!("unknown API copy {other}"),
    };

    // abi/mod.rs, with the one change of the altered copy.
    let abi = read(&src.join("abi/mod.rs"));
    const ORIGINAL: &str = "    Stop = 1,\n}";
    const ALTERED: &str = "    Stop = 1,\n    /// Added by the altered copy only.\n    Skip = 2,\n}";
    assert_eq!(
        abi.matches(ORIGINAL).count(),
        1,
        "abi/mod.rs no longer has EventFlow's last variant `Stop = 1`; update this fixture"
    );
    let abi = if newer {
        abi
    } else {
        abi.replace(ORIGINAL, ALTERED)
    };
    let glue = format!("#[path = {:?}]\npub mod glue;", src.join("abi/glue.rs"));
    let abi = includable(&abi.replace("pub mod glue;", &glue));
    std::fs::write(out.join("abi.rs"), abi).expect("write abi.rs");

    // calls.rs, with the newer copy's extra host call (appended to the HostCalls block).
    let calls_path = if newer {
        let calls = read(&src.join("calls.rs"));
        let host_block = calls.find("pub trait HostCalls;").expect("the HostCalls block");
        let end = calls[host_block..]
            .find("\n    }\n}")
            .map(|i| host_block + i)
            .expect("the end of the HostCalls calls");
        let added = "\n        /// Added by the newer-minor copy only (no real host knows it).\n        \
                     900 => fn future_call(question: &str) -> String;";
        let altered = format!("{}{added}{}", &calls[..end], &calls[end..]);
        let path = out.join("calls.rs");
        std::fs::write(&path, altered).expect("write calls.rs");
        Some(path)
    } else {
        None
    };

    // lib.rs: the altered `abi`, every other module from the real sources.
    let lib = read(&src.join("lib.rs"));
    let mut altered = String::new();
    for line in includable(&lib).lines() {
        match line.strip_prefix("pub mod ").and_then(|r| r.strip_suffix(';')) {
            Some("abi") => altered.push_str(
                "pub mod abi {\n    include!(concat!(env!(\"OUT_DIR\"), \"/abi.rs\"));\n}\n",
            ),
            Some("calls") if calls_path.is_some() => {
                let file = calls_path.clone().unwrap_or_default();
                altered.push_str(&format!("#[path = {:?}]\npub mod calls;\n", file));
            }
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
