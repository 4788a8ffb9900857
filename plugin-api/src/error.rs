//! The one error type of the API, in both directions (the ABI carries it as
//! `abi::AbiError`, converted at the boundary).

use std::fmt;

/// What went wrong, as a code that can grow without breaking the ABI (a `u8` newtype, not a
/// Rust enum, so an unknown code from a newer peer is a value, never undefined behaviour).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PluginErrorKind(pub u8);

impl PluginErrorKind {
    /// A bug or unexpected condition inside the callee.
    pub const INTERNAL: Self = Self(0);
    /// The callee panicked; the panic was caught at the boundary.
    pub const PANICKED: Self = Self(1);
    /// The request or its payload was malformed.
    pub const BAD_REQUEST: Self = Self(2);
    /// The callee does not handle this request kind (an older or narrower peer).
    pub const UNSUPPORTED: Self = Self(3);
    /// Invalid module configuration (the message names the key).
    pub const CONFIG: Self = Self(4);
    /// Saved state could not be restored (format version or content).
    pub const BAD_STATE: Self = Self(5);
    /// The host refused the call (e.g. unknown account, store failure).
    pub const HOST: Self = Self(6);
    /// The plugin is not compatible with this host (checked by the plugin).
    pub const INCOMPATIBLE: Self = Self(7);
    /// The thing named does not exist (e.g. an archive id).
    pub const NOT_FOUND: Self = Self(8);
    /// The thing to create already exists (e.g. an account).
    pub const CONFLICT: Self = Self(9);

    /// A short lower-case name for logs.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "internal",
            1 => "panicked",
            2 => "bad-request",
            3 => "unsupported",
            4 => "config",
            5 => "bad-state",
            6 => "host",
            7 => "incompatible",
            8 => "not-found",
            9 => "conflict",
            _ => "unknown",
        }
    }
}

impl fmt::Debug for PluginErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error returned across the ABI: a kind plus a human-readable message.
#[derive(Clone, PartialEq, Eq)]
pub struct PluginError {
    /// The kind of failure.
    pub kind: PluginErrorKind,
    /// Detail for the operator's log. Never contains secrets.
    pub message: String,
}

impl PluginError {
    /// Build an error of the given kind.
    pub fn new(kind: PluginErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    /// [`PluginErrorKind::INTERNAL`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(PluginErrorKind::INTERNAL, message)
    }
    /// [`PluginErrorKind::BAD_REQUEST`].
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(PluginErrorKind::BAD_REQUEST, message)
    }
    /// [`PluginErrorKind::UNSUPPORTED`].
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(PluginErrorKind::UNSUPPORTED, message)
    }
    /// [`PluginErrorKind::CONFIG`].
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(PluginErrorKind::CONFIG, message)
    }
    /// [`PluginErrorKind::HOST`].
    pub fn host(message: impl Into<String>) -> Self {
        Self::new(PluginErrorKind::HOST, message)
    }
    /// Whether this is [`PluginErrorKind::UNSUPPORTED`].
    pub fn is_unsupported(&self) -> bool {
        self.kind == PluginErrorKind::UNSUPPORTED
    }
}

impl fmt::Debug for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PluginError({:?}: {})", self.kind, self.message)
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl std::error::Error for PluginError {}
