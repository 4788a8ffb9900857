//! The XML stream layer (RFC 6120 §4, §11): a pure incremental framer with hard limits, a
//! parser from framed bytes to elements, and stream-error rendering.

pub mod framer;
pub mod parse;

use tessera_plugin_api::xml::escape_text;
use tessera_plugin_api::StreamCondition;

/// The stream-error namespace.
pub const STREAMS_NS: &str = "urn:ietf:params:xml:ns:xmpp-streams";

/// A stream-level error to send before closing: an RFC 6120 §4.9.3 condition and optional text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// The condition.
    pub condition: StreamCondition,
    /// Optional human-readable text.
    pub text: Option<String>,
}

impl StreamError {
    /// A stream error with a condition and no text.
    pub fn new(condition: StreamCondition) -> Self {
        Self {
            condition,
            text: None,
        }
    }

    /// A stream error with text.
    pub fn with_text(condition: StreamCondition, text: impl Into<String>) -> Self {
        Self {
            condition,
            text: Some(text.into()),
        }
    }

    /// `<stream:error>…</stream:error></stream:stream>`.
    pub fn to_xml(&self) -> String {
        let mut s = format!(
            "<stream:error><{} xmlns='{STREAMS_NS}'/>",
            self.condition.as_str()
        );
        if let Some(t) = &self.text {
            s.push_str(&format!(
                "<text xmlns='{STREAMS_NS}' xml:lang='en'>{}</text>",
                escape_text(t)
            ));
        }
        s.push_str("</stream:error></stream:stream>");
        s
    }
}

impl From<framer::FramerError> for StreamError {
    fn from(e: framer::FramerError) -> Self {
        StreamError::with_text(e.stream_condition(), e.to_string())
    }
}

impl From<parse::ParseError> for StreamError {
    fn from(e: parse::ParseError) -> Self {
        StreamError::with_text(e.stream_condition(), e.to_string())
    }
}
