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
