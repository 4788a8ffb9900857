//! One loaded library (a module generation) and its state.

use serde::Serialize;

use crate::runtime::modules::Module;

/// Life cycle of a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GenState {
    /// Routed to.
    Running,
    /// Replaced or unloaded; calls and exchanges that began on it are finishing.
    Draining,
    /// Shut down and dropped; the library stays mapped until restart.
    Retired,
}

/// One loaded library, as reported by `tessera module list`.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    /// Module name.
    pub name: String,
    /// Module version.
    pub version: String,
    /// Build id.
    pub build: String,
    /// The plugin file.
    pub file: String,
    /// The staged copy that is mapped.
    pub staged: String,
    /// Load time, ms since the epoch.
    pub loaded_at_ms: u64,
    /// Size of the mapped file.
    pub mapped_bytes: u64,
    /// The instance handle.
    pub handle: u64,
    /// Running, draining or retired.
    pub state: GenState,
}

impl Generation {
    pub(crate) fn of(m: &Module, state: GenState) -> Self {
        Self {
            name: m.name.clone(),
            version: m.version.clone(),
            build: m.build_id.clone(),
            file: m.source.display().to_string(),
            staged: m.staged.display().to_string(),
            loaded_at_ms: m.loaded_at_ms,
            mapped_bytes: m.mapped_bytes,
            handle: m.handle,
            state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::GenState;

    #[test]
    fn states_serialise_as_module_list_shows_them() {
        let states = [GenState::Running, GenState::Draining, GenState::Retired];
        assert_eq!(
            serde_json::to_string(&states).expect("json"),
            r#"["running","draining","retired"]"#
        );
    }
}
