//! Byte fields travel as base64 strings in the JSON messages (compact, and cheap to parse,
//! unlike arrays of numbers). Use with `#[serde(with = "crate::b64")]` or `crate::b64::opt`.

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serializer};

const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Serialise bytes as a base64 string.
///
/// # Errors
/// Only the serializer's own errors.
pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&ENGINE.encode(bytes))
}

/// Deserialise a base64 string into bytes.
///
/// # Errors
/// Not a string, or not base64.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    ENGINE
        .decode(text.as_bytes())
        .map_err(serde::de::Error::custom)
}

/// The same for `Option<Vec<u8>>` (absent or `null` is `None`).
pub mod opt {
    use super::*;

    /// Serialise optional bytes.
    ///
    /// # Errors
    /// Only the serializer's own errors.
    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_some(&ENGINE.encode(b)),
            None => s.serialize_none(),
        }
    }

    /// Deserialise optional bytes.
    ///
    /// # Errors
    /// Not a string or null, or not base64.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        text.map(|t| {
            ENGINE
                .decode(t.as_bytes())
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}
