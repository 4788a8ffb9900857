//! Loader tests with real shared objects, built at test time from a few lines of C with `cc`
//! (gcc is on every development and CI machine; a missing compiler fails these tests, it does
//! not skip them). Each library has a constructor that writes a marker file, so a test can tell
//! whether the dynamic loader ran any of its code.

use std::fs::Permissions;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

/// A C constructor that creates the file `marker` when the library is loaded.
fn constructor(marker: &Path) -> String {
    let path = marker
        .display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    format!(
        "#include <stdio.h>\n\
         __attribute__((constructor)) static void tessera_test_marker(void) {{\n\
         \x20   FILE *f = fopen(\"{path}\", \"w\");\n\
         \x20   if (f) {{ fputs(\"constructor ran\", f); fclose(f); }}\n\
         }}\n"
    )
}

/// An exported `TESSERA_PLUGIN_MAGIC` with the given fields, laid out as `PluginMagic`.
fn magic_symbol(magic: &str, major: u32, version: &str) -> String {
    format!(
        "struct magic {{ unsigned char m[8]; unsigned int major; unsigned int len; char v[32]; }};\n\
         __attribute__((visibility(\"default\"))) const struct magic TESSERA_PLUGIN_MAGIC =\n\
         \x20   {{ \"{magic}\", {major}, {len}, \"{version}\" }};\n",
        len = version.len()
    )
}

/// Compile `source` into `<dir>/<name>.so` with `cc -shared -fPIC`.
fn build_so(dir: &Path, name: &str, source: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let so = dir.join(format!("{name}.so"));
    std::fs::write(&c, source).expect("write C source");
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&c)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `cc` ({e}): the loader tests need a C compiler (apt-get install gcc)"
            )
        });
    assert!(
        out.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    so
}

struct Case {
    dir: tempfile::TempDir,
    marker: PathBuf,
    staging: PathBuf,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("constructor-ran");
        let staging = dir.path().join("data").join("plugins");
        Case {
            dir,
            marker,
            staging,
        }
    }

    /// Build `libmod_<name>.so` from the marker constructor plus `extra`.
    fn library(&self, name: &str, extra: &str) -> PathBuf {
        let source = format!("{}{extra}", constructor(&self.marker));
        build_so(self.dir.path(), &format!("libmod_{name}"), &source)
    }

    fn constructor_ran(&self) -> bool {
        self.marker.exists()
    }

    fn staged_files(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(&self.staging) {
            Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn a_foreign_library_is_refused_before_its_constructor_runs() {
    let case = Case::new();
    let lib = case.library("foreign", "int some_function(void) { return 42; }\n");
    let err = load(&lib, &case.staging).expect_err("not a plugin");
    assert!(
        matches!(&err, LoadError::NotAPlugin { path } if path == &lib),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: not a Tessera plugin (no TESSERA_PLUGIN_MAGIC symbol)",
            lib.display()
        )
    );
    assert!(!case.constructor_ran(), "the library's constructor ran");
    assert!(case.staged_files().is_empty(), "{:?}", case.staged_files());
}

#[test]
fn a_plugin_of_an_older_major_is_refused_with_a_hint_before_its_constructor_runs() {
    let case = Case::new();
    let lib = case.library("old_major", &magic_symbol("TESSERA", 1, "1.0.0"));
    let err = load(&lib, &case.staging).expect_err("older major");
    assert!(
        matches!(
            &err,
            LoadError::MajorMismatch { found, found_major: 1, expected_major: API_MAJOR, .. }
                if found == "1.0.0"
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: built against plugin API 1.0.0 (major 1); this host expects major 2 (API {}); \
             rebuild it against tessera-plugin-api 2",
            lib.display(),
            tessera_plugin_api::API_VERSION
        )
    );
    assert!(!case.constructor_ran(), "the library's constructor ran");
}

#[test]
fn a_plugin_of_a_newer_major_is_refused_without_a_rebuild_hint() {
    let case = Case::new();
    let lib = case.library("new_major", &magic_symbol("TESSERA", 3, "3.0.0"));
    let err = load(&lib, &case.staging).expect_err("newer major");
    let text = err.to_string();
    assert!(
        text.contains("libmod_new_major.so: built against plugin API 3.0.0 (major 3); this host expects major 2"),
        "{text}"
    );
    assert!(!text.contains("rebuild"), "{text}");
    assert!(!case.constructor_ran(), "the library's constructor ran");
}

#[test]
fn a_symbol_named_like_the_magic_with_other_bytes_is_not_a_plugin() {
    let case = Case::new();
    let lib = case.library("impostor", &magic_symbol("IMPOSTR", 1, "1.0.0"));
    let err = load(&lib, &case.staging).expect_err("wrong magic bytes");
    assert!(matches!(err, LoadError::NotAPlugin { .. }), "{err}");
    assert!(!case.constructor_ran(), "the library's constructor ran");
}

#[test]
fn the_library_is_opened_only_after_its_magic_passes() {
    // The right magic but no abi_stable root module: gate 1 passes (so the bytes were read
    // correctly from the file), the dynamic loader opens it, and gate 2 refuses it.
    let version = tessera_plugin_api::API_VERSION;
    let case = Case::new();
    let lib = case.library("half", &magic_symbol("TESSERA", API_MAJOR, version));
    let err = load(&lib, &case.staging).expect_err("no root module");
    assert!(matches!(err, LoadError::Open { .. }), "{err}");
    assert!(case.constructor_ran(), "gate 2 opens the library");
    assert!(case.staged_files().is_empty(), "{:?}", case.staged_files());
}

#[test]
fn a_file_that_is_not_elf_is_refused_as_not_loadable() {
    let case = Case::new();
    let junk = case.dir.path().join("libmod_junk.so");
    std::fs::write(&junk, b"this is not an ELF file").expect("write");
    let err = load(&junk, &case.staging).expect_err("junk");
    assert!(matches!(err, LoadError::Open { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "{}: not a loadable shared library: not an ELF shared object",
            junk.display()
        )),
        "{text}"
    );
}

#[test]
fn an_elf_object_that_is_not_a_shared_library_is_refused_as_not_loadable() {
    let case = Case::new();
    let c = case.dir.path().join("plain.c");
    let obj = case.dir.path().join("libmod_object.so");
    std::fs::write(&c, magic_symbol("TESSERA", API_MAJOR, "1.0.0")).expect("write");
    let out = Command::new("cc")
        .args(["-c", "-fPIC", "-o"])
        .arg(&obj)
        .arg(&c)
        .output()
        .expect("cannot run `cc`: the loader tests need a C compiler");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = load(&obj, &case.staging).expect_err("relocatable object");
    assert!(err.to_string().contains("not a shared object"), "{err}");
}

#[test]
fn staged_copies_are_owner_only_in_an_owner_only_folder() {
    let case = Case::new();
    let lib = case.library("staged", "");
    // A staging folder left world-readable (by an older build, or by hand) is tightened.
    std::fs::create_dir_all(&case.staging).expect("mkdir");
    std::fs::set_permissions(&case.staging, Permissions::from_mode(0o755)).expect("chmod");
    let first = stage(&lib, &case.staging).expect("stage");
    let second = stage(&lib, &case.staging).expect("stage again");
    assert_eq!(mode(&case.staging), 0o700);
    assert_eq!(mode(&first), 0o600);
    assert_ne!(first, second, "every load gets a fresh path");
    assert_eq!(
        std::fs::read(&first).expect("read"),
        std::fs::read(&lib).expect("read")
    );
    let prefix = format!("libmod_staged.{}.gen", std::process::id());
    let name = first.file_name().and_then(|n| n.to_str()).expect("name");
    let nonce = name
        .strip_prefix(&prefix)
        .and_then(|n| n.strip_suffix(".so"))
        .and_then(|n| n.split_once('-'))
        .map(|(_, hex)| hex)
        .expect("<stem>.<pid>.gen<N>-<hex>.so");
    assert_eq!(nonce.len(), 16, "{name}");
}

#[test]
fn a_new_staging_folder_is_created_owner_only() {
    let case = Case::new();
    let lib = case.library("fresh", "");
    let staged = stage(&lib, &case.staging).expect("stage");
    assert_eq!(mode(&case.staging), 0o700);
    assert_eq!(mode(&staged), 0o600);
}

#[test]
fn a_planted_symlink_at_the_staged_path_is_not_followed() {
    let case = Case::new();
    let lib = case.library("planted", "");
    let victim = case.dir.path().join("victim");
    std::fs::write(&victim, b"precious").expect("write");
    let planted = case.dir.path().join("planted.so");
    symlink(&victim, &planted).expect("symlink");
    let err = copy_exclusive(&lib, &planted).expect_err("refused");
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
    assert_eq!(std::fs::read(&victim).expect("read"), b"precious");
    // A dangling link is not followed either: its target is not created.
    let absent = case.dir.path().join("absent");
    let dangling = case.dir.path().join("dangling.so");
    symlink(&absent, &dangling).expect("symlink");
    assert!(copy_exclusive(&lib, &dangling).is_err());
    assert!(!absent.exists());
    // Nor is an existing regular file reused.
    let existing = case.dir.path().join("existing.so");
    std::fs::write(&existing, b"old").expect("write");
    assert!(copy_exclusive(&lib, &existing).is_err());
    assert_eq!(std::fs::read(&existing).expect("read"), b"old");
}

#[test]
fn a_staging_folder_that_is_a_symlink_is_refused() {
    let case = Case::new();
    let lib = case.library("linked", "");
    let elsewhere = case.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    std::fs::create_dir_all(case.staging.parent().expect("parent")).expect("mkdir");
    symlink(&elsewhere, &case.staging).expect("symlink");
    let err = load(&lib, &case.staging).expect_err("refused");
    assert!(matches!(err, LoadError::Stage { .. }), "{err}");
    assert!(err.to_string().contains("is not a folder"), "{err}");
    assert_eq!(std::fs::read_dir(&elsewhere).expect("ls").count(), 0);
    assert!(!case.constructor_ran());
}

#[test]
fn stale_copies_of_dead_servers_are_removed_and_ours_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Above the kernel's largest pid (4,194,304), so no such process exists.
    let dead = 9_999_999u32;
    let ours = format!("libmod_x.{}.gen0-0123456789abcdef.so", std::process::id());
    let stale = format!("libmod_x.{dead}.gen0-0123456789abcdef.so");
    let stale_old_format = format!("libmod_x.{dead}.gen3.so");
    for name in [&ours, &stale, &stale_old_format] {
        std::fs::write(dir.path().join(name), b"").expect("write");
    }
    clean_stale(dir.path());
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .expect("ls")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, vec![ours]);
}
