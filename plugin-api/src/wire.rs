//! The binary encoding of everything that crosses the plugin boundary: [postcard], a compact,
//! non-self-describing serde format with a stable, documented wire specification.
//!
//! Every call is a numeric *kind* (declared once, in [`crate::calls`]) and the postcard bytes
//! of its arguments as a tuple; the answer is the postcard bytes of the declared answer type.
//! Strings and byte slices decode without copying where a handler takes them borrowed.
//!
//! ## Evolution
//! postcard carries no field names or tags, so a message's shape is frozen once released:
//! a new capability is a new call kind (or a new event name), never a new field in an old
//! message. A receiver answers a kind it does not know with
//! [`crate::PluginErrorKind::UNSUPPORTED`], which callers treat as "this peer is older".
//! The variants of a released enum are frozen too: a value of a variant the receiver does not
//! know fails to decode ([`crate::PluginErrorKind::BAD_REQUEST`]), so a new variant also needs
//! a new call kind. Decoding is strict (trailing bytes are an error), deliberately: appending a
//! field is not a compatible change.
//!
//! A pitfall of a format without type tags: a fixed-size array (`[x]`, `&[a, b]`) encodes as a
//! tuple, without a length, so it does not decode as a `Vec`; encode lists as `Vec`s or slices
//! (`vec![x]`, `&v[..]`).
//!
//! [postcard]: https://docs.rs/postcard

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A borrowed byte string: how byte arguments cross (one copy, not one serde call per byte).
pub use serde_bytes::Bytes;

use crate::error::PluginError;

/// Encode a value.
///
/// # Errors
/// Only a value serde cannot represent in postcard (never the case for the API's types).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, PluginError> {
    postcard::to_allocvec(value).map_err(|e| PluginError::internal(format!("encode: {e}")))
}

/// Decode a value, borrowing strings and byte slices from `bytes` where the type allows;
/// trailing bytes are an error (they would mean the two sides disagree on the shape).
///
/// # Errors
/// [`crate::PluginErrorKind::BAD_REQUEST`] naming `what` when the bytes do not hold a `T`.
pub fn decode<'de, T: Deserialize<'de>>(what: &str, bytes: &'de [u8]) -> Result<T, PluginError> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(PluginError::bad_request(format!(
            "{what}: {} unexpected trailing byte(s)",
            rest.len()
        ))),
        Err(e) => Err(PluginError::bad_request(format!("{what}: {e}"))),
    }
}

/// Encode a module's state for the next generation (`Module::save_state`), led by the
/// format `version` so that a generation that cannot read it says so instead of misreading it.
///
/// # Errors
/// As [`encode`].
pub fn encode_state<T: Serialize + ?Sized>(version: u8, state: &T) -> Result<Vec<u8>, PluginError> {
    encode(&(version, state))
}

/// Decode state saved by [`encode_state`] (the `restore` of `Module::init`).
///
/// ```
/// use tessera_plugin_api::wire::{decode_state, encode_state};
/// let bytes = encode_state(2, &vec![7u64]).unwrap();
/// assert_eq!(decode_state::<Vec<u64>>("counters", 2, &bytes).unwrap(), [7]);
/// let err = decode_state::<Vec<u64>>("counters", 3, &bytes).unwrap_err();
/// assert_eq!(err.message, "counters state version 2 is not 3");
/// ```
///
/// # Errors
/// [`crate::PluginErrorKind::BAD_STATE`] when the version is another, or the bytes do not
/// hold a `T`.
pub fn decode_state<T: DeserializeOwned>(
    what: &str,
    version: u8,
    bytes: &[u8],
) -> Result<T, PluginError> {
    let bad = |message: String| PluginError::new(crate::PluginErrorKind::BAD_STATE, message);
    let (saved, state): (u8, T) = decode(what, bytes).map_err(|e| bad(e.message))?;
    if saved != version {
        return Err(bad(format!(
            "{what} state version {saved} is not {version}"
        )));
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_decode_borrowed_and_round_trip() {
        let bytes = encode(&("alice", 7u64, Some(vec![1u8, 2]))).unwrap();
        let (user, n, data): (&str, u64, Option<Vec<u8>>) = decode("t", &bytes).unwrap();
        assert_eq!((user, n, data), ("alice", 7, Some(vec![1, 2])));
    }

    #[test]
    fn short_and_long_inputs_are_precise_errors() {
        let bytes = encode(&("alice", 7u64)).unwrap();
        let short = decode::<(&str, u64)>("user-exists", &bytes[..3]).unwrap_err();
        assert!(short.kind == crate::PluginErrorKind::BAD_REQUEST, "{short}");
        assert!(short.message.starts_with("user-exists: "), "{short}");
        let mut long = bytes.clone();
        long.push(0);
        let err = decode::<(&str, u64)>("user-exists", &long).unwrap_err();
        assert_eq!(
            err.message, "user-exists: 1 unexpected trailing byte(s)",
            "{err}"
        );
    }
}
