//! Loading plugin files: the only place (with `services.rs`) that touches abi_stable and the
//! dynamic loader, and the only `unsafe` in the host.
//!
//! Each load copies the file to a fresh, unpredictable path
//! (`<data_dir>/plugins/<name>.<pid>.gen<N>-<16 hex>.so`), because the dynamic loader returns the
//! already-mapped image for a path it has seen, even if the file was replaced. The staging folder
//! is owner-only (0700, tightened if it was wider) and the copy is created 0600 with
//! `O_CREAT | O_EXCL | O_NOFOLLOW`, so nothing planted there is followed or reused.
//!
//! Then two gates run on the staged copy. The first reads the file as ELF, without loading it:
//! the exported `TESSERA_PLUGIN_MAGIC` symbol's bytes say whether this is a Tessera plugin of our
//! major version. Only then does the dynamic loader open it (running its initialisers) for the
//! second gate, abi_stable's version and layout check. Libraries are never unloaded (see
//! docs/plugin-abi.md): a replaced generation stays mapped.

// The ABI boundary: opening shared objects and reading their symbols is inherently unsafe;
// each block below carries its SAFETY argument. No other host module uses `unsafe`.
#![allow(unsafe_code)]

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::std_types::RSlice;
use object::{Object, ObjectKind, ObjectSegment, ObjectSymbol};
use tessera_plugin_api::abi::{
    PluginInfo, PluginMagic, PluginModRef, API_MAJOR, MAGIC, MAGIC_SYMBOL,
};
use tessera_plugin_api::protocol::Manifest;
use tessera_plugin_api::sdk::first_lines;

/// Why a plugin file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file does not exist.
    #[error("{path}: plugin file not found")]
    NotFound {
        /// The file.
        path: PathBuf,
    },
    /// Copying to the staging folder failed.
    #[error("{path}: cannot stage plugin: {message}")]
    Stage {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// The dynamic loader refused the file (not a shared object, truncated, missing symbols).
    #[error("{path}: not a loadable shared library: {message}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The loader's message.
        message: String,
    },
    /// A shared library, but not a Tessera plugin.
    #[error("{path}: not a Tessera plugin (no {MAGIC_SYMBOL} symbol)")]
    NotAPlugin {
        /// The file.
        path: PathBuf,
    },
    /// Built against another major version of the plugin API.
    #[error("{path}: built against plugin API {found} (major {found_major}); this host expects major {expected_major} (API {expected}){hint}")]
    MajorMismatch {
        /// The file.
        path: PathBuf,
        /// The host's API version.
        expected: String,
        /// The host's major.
        expected_major: u32,
        /// The plugin's API version.
        found: String,
        /// The plugin's major.
        found_major: u32,
        /// What to do about it, for a plugin older than the host.
        hint: String,
    },
    /// abi_stable's version or layout check failed.
    #[error("{path}: incompatible plugin ABI (host has plugin API {expected}, plugin was built against {found}):\n{detail}")]
    Incompatible {
        /// The file.
        path: PathBuf,
        /// The host's API version.
        expected: String,
        /// The plugin's API version.
        found: String,
        /// The first lines of abi_stable's report (the first layout difference).
        detail: String,
    },
    /// The manifest the plugin reported does not decode.
    #[error("{path}: invalid manifest: {message}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// The parse error.
        message: String,
    },
}

/// A plugin file that passed both gates, ready to instantiate.
#[derive(Clone)]
pub struct LoadedLibrary {
    /// Where it was loaded from.
    pub source: PathBuf,
    /// The staged copy actually mapped.
    pub staged: PathBuf,
    /// The root module.
    pub module: PluginModRef,
    /// Name, version, build id.
    pub info: PluginInfoOwned,
    /// Options and dependencies.
    pub manifest: Manifest,
    /// Size of the mapped file in bytes (reported per retained generation).
    pub mapped_bytes: u64,
}

impl std::fmt::Debug for LoadedLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedLibrary")
            .field("source", &self.source)
            .field("staged", &self.staged)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// [`PluginInfo`] in plain Rust types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfoOwned {
    /// Module name.
    pub name: String,
    /// Module version.
    pub version: String,
    /// Build id.
    pub build_id: String,
}

static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Stage, check and open a plugin file.
///
/// # Errors
/// Any [`LoadError`]. When the first gate fails nothing was mapped and none of the file's code
/// (initialisers included) has run.
pub fn load(source: &Path, staging_dir: &Path) -> Result<LoadedLibrary, LoadError> {
    if !source.is_file() {
        return Err(LoadError::NotFound {
            path: source.to_path_buf(),
        });
    }
    let staged = stage(source, staging_dir)?;
    let result = check_magic(source, &staged).and_then(|()| open_checked(source, &staged));
    if result.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    result
}

/// Delete staged copies left by servers that are no longer running (named
/// `<stem>.<pid>.gen<N>-<hex>.so`, or `<stem>.<pid>.gen<N>.so` by older builds), so the staging
/// folder does not grow across restarts.
pub fn clean_stale(staging_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(staging_dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_suffix(".so")
            .and_then(|n| n.rsplit('.').nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

fn stage(source: &Path, staging_dir: &Path) -> Result<PathBuf, LoadError> {
    let err = |e: io::Error| LoadError::Stage {
        path: source.to_path_buf(),
        message: e.to_string(),
    };
    prepare_staging_dir(staging_dir).map_err(err)?;
    let stem = source
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin");
    let gen = GENERATION.fetch_add(1, Ordering::Relaxed);
    let nonce = crate::secret::random_hex(8);
    let staged = staging_dir.join(format!("{stem}.{}.gen{gen}-{nonce}.so", std::process::id()));
    // A copy, never a hard link: glibc also matches loaded objects by device and inode.
    copy_exclusive(source, &staged).map_err(err)?;
    Ok(staged)
}

/// Create the staging folder owner-only, or tighten an existing one to 0700. A symlink, a
/// non-folder, or a folder owned by another user is refused.
fn prepare_staging_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let meta = std::fs::symlink_metadata(dir)?;
    if !meta.file_type().is_dir() {
        return Err(io::Error::other(format!(
            "staging folder {} is not a folder (a symlink?)",
            dir.display()
        )));
    }
    let euid = crate::data_dir::effective_uid();
    if meta.uid() != euid {
        return Err(io::Error::other(format!(
            "staging folder {} belongs to uid {}, not to this server (uid {euid})",
            dir.display(),
            meta.uid()
        )));
    }
    crate::data_dir::tighten(dir)?;
    Ok(())
}

/// Copy `source` to the new file `dest` (0600). Never follows or reuses anything at `dest`: an
/// existing file or symlink there is an error. A partial copy is removed.
fn copy_exclusive(source: &Path, dest: &Path) -> io::Result<()> {
    let mut input = File::open(source)?;
    let mut output = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dest)?;
    let copied = io::copy(&mut input, &mut output).and_then(|_| output.sync_all());
    if copied.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    copied
}

/// Gate 1: the plain `TESSERA_PLUGIN_MAGIC` static, read from the ELF file without loading it
/// (loading would run the library's initialisers before we know what it is).
fn check_magic(source: &Path, staged: &Path) -> Result<(), LoadError> {
    // Read through a cache of the parts parsed (headers, dynamic symbols, 48 bytes of data),
    // not the whole file: plugin files are megabytes, and a buffer that size freed at start
    // would show up as memory the server holds until the allocator returns it.
    let file = std::fs::File::open(staged).map_err(|e| LoadError::Stage {
        path: source.to_path_buf(),
        message: e.to_string(),
    })?;
    let cache = object::ReadCache::new(file);
    let magic = read_magic(&cache).map_err(|e| match e {
        MagicError::NotElf(message) => LoadError::Open {
            path: source.to_path_buf(),
            message,
        },
        MagicError::Missing => LoadError::NotAPlugin {
            path: source.to_path_buf(),
        },
    })?;
    if magic.magic != MAGIC {
        return Err(LoadError::NotAPlugin {
            path: source.to_path_buf(),
        });
    }
    if magic.api_major != API_MAJOR {
        return Err(LoadError::MajorMismatch {
            path: source.to_path_buf(),
            expected: tessera_plugin_api::API_VERSION.to_owned(),
            expected_major: API_MAJOR,
            found: magic.version_str(),
            found_major: magic.api_major,
            hint: if magic.api_major < API_MAJOR {
                format!("; rebuild it against tessera-plugin-api {API_MAJOR}")
            } else {
                String::new()
            },
        });
    }
    Ok(())
}

/// Why [`read_magic`] found no magic.
static NEXT_HANDLE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Instantiate a prepared module (with optional restored state), its host calls bound to
/// `shared`.
///
/// # Errors
/// The module's init error.
pub fn instantiate(
    shared: Option<&std::sync::Arc<crate::Shared>>,
    prepared: &crate::startup::PreparedModule,
    restore: &[u8],
) -> Result<crate::runtime::modules::Module, crate::startup::StartError> {
    let lib = &prepared.library;
    let handle = NEXT_HANDLE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let init_err = |message: String| crate::startup::StartError::Init {
        module: lib.info.name.clone(),
        message,
    };
    let options =
        tessera_plugin_api::wire::encode(&prepared.options).map_err(|e| init_err(e.to_string()))?;
    let instance = (lib.module.instantiate())(
        crate::runtime::services::header(),
        crate::runtime::services::context(shared, &lib.info.name, handle),
        RSlice::from_slice(&options),
        RSlice::from_slice(restore),
    )
    .into_result()
    .map_err(|e| init_err(tessera_plugin_api::PluginError::from(e).to_string()))?;
    let mut module = crate::runtime::modules::Module::new(lib, handle, instance, crate::now_ms())
        .map_err(|e| init_err(e.to_string()))?;
    if let Some(shared) = shared {
        module.stats = shared.metrics.module_stats(&module.name);
    }
    Ok(module)
}

#[derive(Debug)]
enum MagicError {
    /// Not an ELF shared object this process could load.
    NotElf(String),
    /// No exported, defined `TESSERA_PLUGIN_MAGIC` with file-backed bytes.
    Missing,
}

/// `PluginMagic` is `#[repr(C)]`: magic (8 bytes), api_major (u32), api_version_len (u32),
/// api_version (32 bytes), in this order and with no padding.
const MAGIC_SIZE: usize = 48;
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<PluginMagic>() == MAGIC_SIZE);
    assert!(offset_of!(PluginMagic, api_major) == 8);
    assert!(offset_of!(PluginMagic, api_version_len) == 12);
    assert!(offset_of!(PluginMagic, api_version) == 16);
};

/// Find the exported `TESSERA_PLUGIN_MAGIC` in an ELF shared object's dynamic symbols and decode
/// the bytes the loader would map at its address.
fn read_magic<'data, R: object::ReadRef<'data>>(file: R) -> Result<PluginMagic, MagicError> {
    let elf = object::File::parse(file)
        .map_err(|e| MagicError::NotElf(format!("not an ELF shared object ({e})")))?;
    if elf.kind() != ObjectKind::Dynamic {
        return Err(MagicError::NotElf(format!(
            "an ELF file, but not a shared object ({:?})",
            elf.kind()
        )));
    }
    let native = cfg!(target_endian = "little") == elf.is_little_endian()
        && cfg!(target_pointer_width = "64") == elf.is_64();
    if !native {
        return Err(MagicError::NotElf(
            "an ELF shared object for another kind of machine".to_owned(),
        ));
    }
    let symbol = elf
        .dynamic_symbols()
        .find(|s| {
            s.name_bytes().ok() == Some(MAGIC_SYMBOL.as_bytes())
                && s.is_definition()
                && !s.is_local()
        })
        .ok_or(MagicError::Missing)?;
    let (address, size) = (symbol.address(), MAGIC_SIZE as u64);
    // The segments are what the dynamic loader maps, so read the bytes from them.
    let raw = elf
        .segments()
        .find_map(|seg| seg.data_range(address, size).ok().flatten())
        .ok_or(MagicError::Missing)?;
    decode_magic(raw).ok_or(MagicError::Missing)
}

fn decode_magic(raw: &[u8]) -> Option<PluginMagic> {
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(raw.get(at..at + 4)?.try_into().ok()?))
    };
    Some(PluginMagic {
        magic: raw.get(0..8)?.try_into().ok()?,
        api_major: u32_at(8)?,
        api_version_len: u32_at(12)?,
        api_version: raw.get(16..MAGIC_SIZE)?.try_into().ok()?,
    })
}

/// Gate 2: abi_stable's version and layout check, then read the plugin's info.
fn open_checked(source: &Path, staged: &Path) -> Result<LoadedLibrary, LoadError> {
    let header = lib_header_from_path(staged).map_err(|e| LoadError::Open {
        path: source.to_path_buf(),
        message: first_lines(&e.to_string(), 3),
    })?;
    let found = header.version_strings().version.to_string();
    let module = header
        .init_root_module::<PluginModRef>()
        .map_err(|e| incompatible(source, &found, &e))?;
    let raw: PluginInfo = (module.info())();
    let info = PluginInfoOwned {
        name: raw.name.to_string(),
        version: raw.version.to_string(),
        build_id: raw.build_id.to_string(),
    };
    let manifest: Manifest = tessera_plugin_api::wire::decode("manifest", raw.manifest.as_slice())
        .map_err(|e| LoadError::Manifest {
            path: source.to_path_buf(),
            message: e.message,
        })?;
    let mapped_bytes = std::fs::metadata(staged).map(|m| m.len()).unwrap_or(0);
    Ok(LoadedLibrary {
        source: source.to_path_buf(),
        staged: staged.to_path_buf(),
        module,
        info,
        manifest,
        mapped_bytes,
    })
}

fn incompatible(source: &Path, found: &str, e: &LibraryError) -> LoadError {
    let full = e.to_string();
    tracing::debug!(plugin = %source.display(), report = %full, "full abi_stable report");
    LoadError::Incompatible {
        path: source.to_path_buf(),
        expected: tessera_plugin_api::API_VERSION.to_owned(),
        found: found.to_owned(),
        detail: summarize_layout_error(&full),
    }
}

/// Keep the lines of abi_stable's (800–2,800 line) report that say what differs: each
/// `Error:` line and the type names under the `Expected:` / `Found:` that follow it.
fn summarize_layout_error(full: &str) -> String {
    let lines: Vec<&str> = full
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut keep = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let wanted = line.starts_with("Error:")
            || line.contains("version mismatch")
            || line.starts_with("user:")
            || line.starts_with("library:");
        if wanted {
            keep.push((*line).to_owned());
        } else if *line == "Expected:" || *line == "Found:" {
            let next = lines.get(i + 1).copied().unwrap_or_default();
            keep.push(format!("{line} {next}"));
        } else if line.starts_with("Expected:") || line.starts_with("Found:") {
            keep.push((*line).to_owned());
        }
        if keep.len() >= 8 {
            break;
        }
    }
    if keep.is_empty() {
        first_lines(full, 6)
    } else {
        keep.join("\n")
    }
}

#[cfg(test)]
#[path = "loader_tests.rs"]
mod tests;
