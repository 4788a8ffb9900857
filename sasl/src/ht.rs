//! HT-* hashed-token mechanisms (draft-schmaus-kitten-sasl-ht-09), used by FAST (XEP-0484).
//!
//! Only the -09 wire format is implemented (the one XEP-0484 0.2.0 cites and deployed clients
//! speak), with SHA-256 and the channel-binding variants NONE, ENDP (tls-server-end-point) and
//! EXPR (tls-exporter):
//!
//! ```text
//! initiator-msg = authcid || 0x00 || HMAC-SHA-256(key = token, "Initiator" || cb-data)
//! responder-msg = HMAC-SHA-256(key = token, "Responder" || cb-data)     (no prefix byte)
//! ```
//!
//! # Wire behaviour
//!
//! The initial response is split at the **first** NUL (the HMAC may contain NULs). The authcid
//! must be 1..=255 bytes of UTF-8 and the remainder exactly 32 bytes; anything else is
//! `malformed-request`. The server compares with [`verify_initiator`] (constant time) and sends
//! [`responder_hmac`] raw (base64 in `<additional-data>`), never with a leading 0x00.

use crate::channel_binding::{CbType, ChannelBindings};
use crate::crypto::{ct_eq, hmac_sha256};
use crate::SaslCondition;

/// Length of the HMAC-SHA-256 output carried by HT-SHA-256-*.
pub const HT_SHA256_LEN: usize = 32;

/// Maximum authcid length in bytes.
pub const MAX_HT_AUTHCID_LEN: usize = 255;

/// An HT mechanism supported by Tessera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HtMechanism {
    /// `HT-SHA-256-NONE`: no channel binding (cb-data is empty).
    Sha256None,
    /// `HT-SHA-256-ENDP`: bound to `tls-server-end-point`.
    Sha256Endp,
    /// `HT-SHA-256-EXPR`: bound to `tls-exporter`.
    Sha256Expr,
}

impl HtMechanism {
    /// All supported HT mechanisms, strongest binding first.
    pub const ALL: [HtMechanism; 3] = [
        HtMechanism::Sha256Expr,
        HtMechanism::Sha256Endp,
        HtMechanism::Sha256None,
    ];

    /// The SASL mechanism name, e.g. `"HT-SHA-256-NONE"`.
    pub const fn name(self) -> &'static str {
        match self {
            HtMechanism::Sha256None => "HT-SHA-256-NONE",
            HtMechanism::Sha256Endp => "HT-SHA-256-ENDP",
            HtMechanism::Sha256Expr => "HT-SHA-256-EXPR",
        }
    }

    /// Parses a mechanism name (exact match). `None` for unsupported names such as
    /// `HT-SHA-256-UNIQ` or `HT-SHA-512-NONE`.
    pub fn from_name(name: &str) -> Option<HtMechanism> {
        HtMechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The channel-binding type this mechanism uses, `None` for NONE.
    pub const fn cb_type(self) -> Option<CbType> {
        match self {
            HtMechanism::Sha256None => None,
            HtMechanism::Sha256Endp => Some(CbType::TlsServerEndPoint),
            HtMechanism::Sha256Expr => Some(CbType::TlsExporter),
        }
    }

    /// The cb-data to HMAC for this mechanism on this connection (empty for NONE).
    ///
    /// # Errors
    ///
    /// [`HtError::ChannelBindingUnavailable`] when the connection cannot compute the binding.
    pub fn cb_data(self, bindings: &ChannelBindings) -> Result<&[u8], HtError> {
        match self.cb_type() {
            None => Ok(&[]),
            Some(cb_type) => bindings
                .get(cb_type)
                .ok_or(HtError::ChannelBindingUnavailable { cb_type }),
        }
    }
}

/// An HT-* message was rejected. All variants map to `malformed-request`; a wrong token is not an
/// error here but a `false` from [`verify_initiator`] (`not-authorized`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HtError {
    /// No NUL separates the authcid from the HMAC.
    #[error("HT initial response has no NUL separator")]
    MissingSeparator,
    /// The authcid is empty or longer than [`MAX_HT_AUTHCID_LEN`].
    #[error("HT authcid length {len} outside 1..=255")]
    AuthcidLength {
        /// Length of the authcid in bytes.
        len: usize,
    },
    /// The authcid is not UTF-8.
    #[error("HT authcid is not UTF-8")]
    AuthcidNotUtf8,
    /// The HMAC is not exactly [`HT_SHA256_LEN`] bytes.
    #[error("HT HMAC is {len} bytes, expected 32")]
    HmacLength {
        /// Length of the bytes after the separator.
        len: usize,
    },
    /// The mechanism needs channel-binding data this connection cannot provide.
    #[error("channel binding {cb_type} unavailable on this connection")]
    ChannelBindingUnavailable {
        /// The type the mechanism needs.
        cb_type: CbType,
    },
}

impl HtError {
    /// The wire condition: [`SaslCondition::MalformedRequest`] (protocols.md §6.5).
    pub const fn condition(&self) -> SaslCondition {
        SaslCondition::MalformedRequest
    }
}

/// Splits an HT initial response into `(authcid, initiator HMAC)`.
///
/// # Errors
///
/// [`HtError::MissingSeparator`], [`HtError::AuthcidLength`], [`HtError::AuthcidNotUtf8`] or
/// [`HtError::HmacLength`].
pub fn parse_initial_response(msg: &[u8]) -> Result<(String, Vec<u8>), HtError> {
    let nul = msg
        .iter()
        .position(|b| *b == 0)
        .ok_or(HtError::MissingSeparator)?;
    let (authcid, rest) = msg.split_at(nul);
    let hmac = rest.get(1..).unwrap_or_default();
    if authcid.is_empty() || authcid.len() > MAX_HT_AUTHCID_LEN {
        return Err(HtError::AuthcidLength { len: authcid.len() });
    }
    let authcid = std::str::from_utf8(authcid).map_err(|_| HtError::AuthcidNotUtf8)?;
    if hmac.len() != HT_SHA256_LEN {
        return Err(HtError::HmacLength { len: hmac.len() });
    }
    Ok((authcid.to_owned(), hmac.to_vec()))
}

/// `HMAC-SHA-256(token, "Initiator" || cb_data)`: what the client proves.
pub fn initiator_hmac(token: &[u8], cb_data: &[u8]) -> [u8; 32] {
    hmac_sha256(token, &[b"Initiator", cb_data])
}

/// `HMAC-SHA-256(token, "Responder" || cb_data)`: the server's additional data on success.
pub fn responder_hmac(token: &[u8], cb_data: &[u8]) -> [u8; 32] {
    hmac_sha256(token, &[b"Responder", cb_data])
}

/// Builds the client's initial response `authcid || 0x00 || initiator_hmac` (for tests and the
/// load tool).
pub fn build_initial_response(authcid: &str, token: &[u8], cb_data: &[u8]) -> Vec<u8> {
    let mac = initiator_hmac(token, cb_data);
    let mut out = Vec::with_capacity(authcid.len().saturating_add(1 + HT_SHA256_LEN));
    out.extend_from_slice(authcid.as_bytes());
    out.push(0);
    out.extend_from_slice(&mac);
    out
}

/// Checks the client's HMAC in constant time. `false` on any mismatch, including length.
#[must_use]
pub fn verify_initiator(token: &[u8], cb_data: &[u8], proof: &[u8]) -> bool {
    ct_eq(&initiator_hmac(token, cb_data), proof)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_base64_lenient, encode_base64};

    const TOKEN: &[u8] = b"WXZzciBwYmFmdmZnZiBqdmd1IGp2eXFhcmZm";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn expr_cb() -> Vec<u8> {
        let s = "c72842f39d04378f7783acc25980595ddd8356b55a1d6d60f4c1c1589dd74554";
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn vector_none() {
        let ini = initiator_hmac(TOKEN, b"");
        assert_eq!(
            hex(&ini),
            "9097787461a184e0fa84ec00c1381190b6c4d16a8ec4453c7b2ac5e7fcf935ed"
        );
        let msg = build_initial_response("user", TOKEN, b"");
        assert_eq!(
            encode_base64(&msg),
            "dXNlcgCQl3h0YaGE4PqE7ADBOBGQtsTRao7ERTx7KsXn/Pk17Q=="
        );
        let res = responder_hmac(TOKEN, b"");
        assert_eq!(
            hex(&res),
            "4e513409631474863b986c9f3e8c1e27ca29d1d7ab9ed4097e7afd6007bf9c62"
        );
        assert_eq!(
            encode_base64(&res),
            "TlE0CWMUdIY7mGyfPoweJ8op0derntQJfnr9YAe/nGI="
        );
    }

    #[test]
    fn vector_expr() {
        let cb = expr_cb();
        let ini = initiator_hmac(TOKEN, &cb);
        assert_eq!(
            hex(&ini),
            "8971c1b8d4e861d1548782ec1b6d41a55de004c3fa3fbcd3a78246efaabff9a5"
        );
        let msg = build_initial_response("user", TOKEN, &cb);
        assert_eq!(
            encode_base64(&msg),
            "dXNlcgCJccG41Ohh0VSHguwbbUGlXeAEw/o/vNOngkbvqr/5pQ=="
        );
        let res = responder_hmac(TOKEN, &cb);
        assert_eq!(
            hex(&res),
            "cdeda569c2ac6a50e79a54c9a0879ed0e6688a0da3404394fb41fd5a8cee13ee"
        );
        assert_eq!(
            encode_base64(&res),
            "ze2lacKsalDnmlTJoIee0OZoig2jQEOU+0H9WozuE+4="
        );
    }

    #[test]
    fn server_side_round_trip_of_vector() {
        // The NONE vector's HMAC contains a 0x00 byte (offset 11): splitting must use the first
        // NUL only.
        let msg =
            decode_base64_lenient("dXNlcgCQl3h0YaGE4PqE7ADBOBGQtsTRao7ERTx7KsXn/Pk17Q==").unwrap();
        let (authcid, mac) = parse_initial_response(&msg).unwrap();
        assert_eq!(authcid, "user");
        assert_eq!(mac.get(11), Some(&0u8));
        assert!(verify_initiator(TOKEN, b"", &mac));
        assert!(
            !verify_initiator(TOKEN, &expr_cb(), &mac),
            "cb-data must matter"
        );
        assert!(!verify_initiator(b"other-token", b"", &mac));
        assert!(!verify_initiator(TOKEN, b"", &mac[..31]));
    }

    #[test]
    fn hmac_with_leading_and_inner_nuls_parses() {
        let mut mac = [0u8; 32];
        mac[5] = 0xaa;
        let mut msg = b"user".to_vec();
        msg.push(0);
        msg.extend_from_slice(&mac);
        let (authcid, parsed) = parse_initial_response(&msg).unwrap();
        assert_eq!(authcid, "user");
        assert_eq!(parsed, mac.to_vec());
    }

    #[test]
    fn wrong_lengths_fail() {
        let mac = [1u8; 33];
        let mut msg = b"user\0".to_vec();
        msg.extend_from_slice(&mac[..31]);
        assert_eq!(
            parse_initial_response(&msg),
            Err(HtError::HmacLength { len: 31 })
        );
        let mut msg = b"user\0".to_vec();
        msg.extend_from_slice(&mac);
        assert_eq!(
            parse_initial_response(&msg),
            Err(HtError::HmacLength { len: 33 })
        );
        assert_eq!(
            parse_initial_response(b"user\0"),
            Err(HtError::HmacLength { len: 0 })
        );

        let mut msg = vec![0u8];
        msg.extend_from_slice(&mac[..32]);
        assert_eq!(
            parse_initial_response(&msg),
            Err(HtError::AuthcidLength { len: 0 })
        );
        let mut msg = vec![b'a'; 256];
        msg.push(0);
        msg.extend_from_slice(&mac[..32]);
        assert_eq!(
            parse_initial_response(&msg),
            Err(HtError::AuthcidLength { len: 256 })
        );
        msg.drain(..1);
        assert_eq!(parse_initial_response(&msg).unwrap().0.len(), 255);
    }

    #[test]
    fn other_malformations_fail() {
        assert_eq!(
            parse_initial_response(b"user"),
            Err(HtError::MissingSeparator)
        );
        assert_eq!(parse_initial_response(b""), Err(HtError::MissingSeparator));
        let mut msg = b"us\xffer\0".to_vec();
        msg.extend_from_slice(&[0u8; 32]);
        assert_eq!(parse_initial_response(&msg), Err(HtError::AuthcidNotUtf8));
        assert_eq!(
            HtError::MissingSeparator.condition(),
            SaslCondition::MalformedRequest
        );
    }

    #[test]
    fn mechanism_names_and_bindings() {
        for m in HtMechanism::ALL {
            assert_eq!(HtMechanism::from_name(m.name()), Some(m));
        }
        assert_eq!(HtMechanism::Sha256None.name(), "HT-SHA-256-NONE");
        assert_eq!(HtMechanism::Sha256Endp.name(), "HT-SHA-256-ENDP");
        assert_eq!(HtMechanism::Sha256Expr.name(), "HT-SHA-256-EXPR");
        assert_eq!(HtMechanism::from_name("HT-SHA-256-UNIQ"), None);
        assert_eq!(HtMechanism::Sha256None.cb_type(), None);
        assert_eq!(
            HtMechanism::Sha256Endp.cb_type(),
            Some(CbType::TlsServerEndPoint)
        );
        assert_eq!(HtMechanism::Sha256Expr.cb_type(), Some(CbType::TlsExporter));

        let cb = ChannelBindings {
            tls_exporter: Some(expr_cb()),
            tls_server_end_point: None,
        };
        assert_eq!(HtMechanism::Sha256None.cb_data(&cb), Ok(&[][..]));
        assert_eq!(
            HtMechanism::Sha256Expr.cb_data(&cb),
            Ok(expr_cb().as_slice())
        );
        let err = HtMechanism::Sha256Endp.cb_data(&cb).unwrap_err();
        assert_eq!(
            err,
            HtError::ChannelBindingUnavailable {
                cb_type: CbType::TlsServerEndPoint
            }
        );
        assert_eq!(err.condition(), SaslCondition::MalformedRequest);
    }
}
