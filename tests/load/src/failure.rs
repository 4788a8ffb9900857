//! Why one connection or login failed, grouped into the kinds the report counts.

use std::fmt;

/// A failed connection, login or session.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    /// TCP connect (or bind of the source address) failed.
    Connect(String),
    /// TLS handshake or STARTTLS failed.
    Tls(String),
    /// Read/write error or the connection closed early.
    Io(String),
    /// The step did not finish within the timeout.
    Timeout,
    /// SASL `<failure>` with this RFC 6120 condition.
    Auth(String),
    /// The server sent a stream error with this condition.
    StreamError(String),
    /// The server answered something unexpected (no SASL2, a bad server signature, …).
    Protocol(String),
}

impl Failure {
    /// The key the report counts this failure under, e.g. `auth:not-authorized`.
    pub(crate) fn kind(&self) -> String {
        match self {
            Failure::Connect(_) => "connect".into(),
            Failure::Tls(_) => "tls".into(),
            Failure::Io(_) => "io".into(),
            Failure::Timeout => "timeout".into(),
            Failure::Auth(c) => format!("auth:{c}"),
            Failure::StreamError(c) => format!("stream-error:{c}"),
            Failure::Protocol(_) => "protocol".into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Connect(m) => write!(f, "connect: {m}"),
            Failure::Tls(m) => write!(f, "TLS: {m}"),
            Failure::Io(m) => write!(f, "I/O: {m}"),
            Failure::Timeout => f.write_str("timed out"),
            Failure::Auth(c) => write!(f, "authentication failed: <{c}/>"),
            Failure::StreamError(c) => write!(f, "stream error <{c}/>"),
            Failure::Protocol(m) => write!(f, "protocol: {m}"),
        }
    }
}

impl std::error::Error for Failure {}
