//! Pure, sans-IO SASL mechanisms for Tessera.
//!
//! This crate knows nothing about sockets, XML, clocks or random number generators: it turns the
//! bytes a peer sent into typed values and the next bytes to send. Randomness (SCRAM server
//! nonces) and stored credentials are parameters supplied by the caller. It implements:
//!
//! * [`scram`]: SCRAM-SHA-1, SCRAM-SHA-256, SCRAM-SHA-512 and their `-PLUS` variants (RFC 5802,
//!   RFC 7677 and its pattern for SHA-512), with
//!   channel binding `tls-exporter` (RFC 9266) and `tls-server-end-point` (RFC 5929 §4), as a
//!   server state machine whose states are consumed by value, plus a client used by tests and
//!   the load tool.
//! * [`plain`]: the PLAIN mechanism (RFC 4616), as used over TLS by browser clients (RFC 6120 §6).
//! * [`ht`]: the HT-SHA-256-{NONE,ENDP,EXPR} hashed-token mechanisms used by FAST (XEP-0484),
//!   in the draft-schmaus-kitten-sasl-ht-09 wire format.
//! * [`ssdp`]: XEP-0474 downgrade protection, the hash of the advertised mechanism list that
//!   SCRAM's server-first carries.
//! * [`saslprep()`]: the SASLprep profile of stringprep (RFC 4013, RFC 3454) and the username
//!   rules used by every mechanism.
//! * [`SaslCondition`]: the RFC 6120 §6.5 failure conditions that every error in this crate maps
//!   to (via `condition()`), so the peer only ever sees a defined condition. SCRAM errors also
//!   carry their RFC 5802 §7 `e=` value.
//!
//! # How to read it
//!
//! Start with [`scram::ScramServer`]: `new` → [`client_first`](scram::ScramServer::client_first)
//! → [`server_first`](scram::ScramClientFirst::server_first) →
//! [`client_final`](scram::ScramServerFirst::client_final). Each step consumes the previous state,
//! so a state can never be reused by mistake. Secret comparisons use constant-time equality
//! (`subtle`). Inputs fed by the peer never panic.
//!
//! The crate has no cargo features for users; `fuzzing` only exposes entry points for the fuzz
//! targets in `tests/fuzz`.
#![deny(missing_docs)]

mod channel_binding;
mod crypto;
mod error;
pub mod ht;
pub mod plain;
mod saslprep;
pub mod scram;
pub mod ssdp;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

pub use channel_binding::{CbType, ChannelBindings, UnknownCbType};
pub use error::{Base64Error, SaslCondition, SaslError};
pub use saslprep::{prepare_username, saslprep, PrepError, MAX_USERNAME_LEN};

/// A hash function a mechanism is instantiated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hash {
    /// SHA-1 (FIPS 180-4), used by SCRAM-SHA-1 (RFC 5802).
    Sha1,
    /// SHA-256 (FIPS 180-4), used by SCRAM-SHA-256 (RFC 7677) and HT-SHA-256-*.
    Sha256,
    /// SHA-512 (FIPS 180-4), used by SCRAM-SHA-512 (RFC 7677's pattern, IANA-registered).
    Sha512,
}

impl Hash {
    /// Length of the hash output in bytes (20 for SHA-1, 32 for SHA-256, 64 for SHA-512).
    pub const fn output_len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha256 => 32,
            Hash::Sha512 => 64,
        }
    }

    /// The IANA hash name as used in mechanism names (`"SHA-1"`, `"SHA-256"`).
    pub const fn name(self) -> &'static str {
        match self {
            Hash::Sha1 => "SHA-1",
            Hash::Sha256 => "SHA-256",
            Hash::Sha512 => "SHA-512",
        }
    }

    /// The SCRAM mechanism name for this hash, e.g. `"SCRAM-SHA-256"` or, with `plus`,
    /// `"SCRAM-SHA-256-PLUS"`.
    pub const fn scram_mechanism(self, plus: bool) -> &'static str {
        match (self, plus) {
            (Hash::Sha1, false) => "SCRAM-SHA-1",
            (Hash::Sha1, true) => "SCRAM-SHA-1-PLUS",
            (Hash::Sha256, false) => "SCRAM-SHA-256",
            (Hash::Sha256, true) => "SCRAM-SHA-256-PLUS",
            (Hash::Sha512, false) => "SCRAM-SHA-512",
            (Hash::Sha512, true) => "SCRAM-SHA-512-PLUS",
        }
    }
}

/// Standard alphabet, padding optional on input, canonical trailing bits required.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes standard base64 (RFC 4648 §4) as found in XML text content.
///
/// XML whitespace (space, tab, CR, LF) anywhere in the input is ignored, and padding may be
/// present or absent. An empty input (after stripping) decodes to an empty vector. The legacy
/// SASL convention that a single `=` means "zero-length data" (RFC 6120 §6.4.2) is *not* applied
/// here: the XML layer must check for it first, because only it can tell an absent payload from
/// an empty one.
///
/// # Errors
///
/// [`Base64Error::Invalid`] if a character outside the alphabet appears, the length is
/// impossible, or padding/trailing bits are not canonical.
pub fn decode_base64_lenient(s: &str) -> Result<Vec<u8>, Base64Error> {
    let compact: Vec<u8> = s
        .bytes()
        .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .collect();
    LENIENT_BASE64
        .decode(compact)
        .map_err(|_| Base64Error::Invalid)
}

/// Encodes bytes as standard, padded base64 (RFC 4648 §4), the form sent on the wire.
pub fn encode_base64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_properties() {
        assert_eq!(Hash::Sha1.output_len(), 20);
        assert_eq!(Hash::Sha256.output_len(), 32);
        assert_eq!(Hash::Sha1.name(), "SHA-1");
        assert_eq!(Hash::Sha256.name(), "SHA-256");
        assert_eq!(Hash::Sha1.scram_mechanism(true), "SCRAM-SHA-1-PLUS");
        assert_eq!(Hash::Sha256.scram_mechanism(false), "SCRAM-SHA-256");
    }

    #[test]
    fn lenient_base64_strips_xml_whitespace() {
        let decoded = decode_base64_lenient(" biws\r\n bj11\tc2Vy ").unwrap();
        assert_eq!(decoded, b"n,,n=user");
    }

    #[test]
    fn lenient_base64_accepts_padded_and_unpadded() {
        assert_eq!(decode_base64_lenient("dXNlcg==").unwrap(), b"user");
        assert_eq!(decode_base64_lenient("dXNlcg").unwrap(), b"user");
        assert_eq!(decode_base64_lenient("").unwrap(), b"");
    }

    #[test]
    fn lenient_base64_rejects_garbage() {
        for bad in ["dXN*cg==", "d", "dXNlcg===", "dXNlch==", "=", "dX=Ncg"] {
            let err = decode_base64_lenient(bad).unwrap_err();
            assert_eq!(err, Base64Error::Invalid, "input {bad:?}");
            assert_eq!(err.condition(), SaslCondition::IncorrectEncoding);
        }
    }

    #[test]
    fn encode_is_padded_standard() {
        assert_eq!(encode_base64(b"user"), "dXNlcg==");
        assert_eq!(encode_base64(&[0xfb, 0xff]), "+/8=");
    }
}
