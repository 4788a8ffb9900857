//! The payload of the events `fixture_emitter` fires (`fixture-ping` and whatever name a test
//! asks for), shared by source with the fixtures that read it (`#[path]`), as a third-party
//! module would share its event types with its listeners.

use serde::{Deserialize, Serialize};

/// `{value, from}`: what the test asked to fire, and the emitting module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ping {
    /// The `value` query parameter (`None` when absent).
    pub(crate) value: Option<String>,
    /// The emitting module's name.
    pub(crate) from: String,
}
