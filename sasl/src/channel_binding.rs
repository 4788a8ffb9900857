//! Channel-binding types (RFC 5056) supported by Tessera and the channel-binding data a
//! connection can compute: `tls-exporter` (RFC 9266) and `tls-server-end-point` (RFC 5929 §4).
//! `tls-unique` (RFC 5929 §3) is deliberately absent: it is undefined for TLS 1.3 and rustls does
//! not expose it.

use std::fmt;
use std::str::FromStr;

/// A channel-binding type, as named in SCRAM `p=` (RFC 5802 §6) and XEP-0440.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CbType {
    /// `tls-exporter` (RFC 9266): 32 bytes of TLS exporter output.
    TlsExporter,
    /// `tls-server-end-point` (RFC 5929 §4): a hash of the server's end-entity certificate.
    TlsServerEndPoint,
}

impl CbType {
    /// All supported types, in the order they are advertised (XEP-0440).
    pub const ALL: [CbType; 2] = [CbType::TlsServerEndPoint, CbType::TlsExporter];

    /// The registered name (`"tls-exporter"`, `"tls-server-end-point"`).
    pub const fn name(self) -> &'static str {
        match self {
            CbType::TlsExporter => "tls-exporter",
            CbType::TlsServerEndPoint => "tls-server-end-point",
        }
    }

    /// Parses a registered name; exact, case-sensitive match. `None` for unknown or unsupported
    /// types (including `tls-unique`).
    pub fn from_name(name: &str) -> Option<CbType> {
        CbType::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for CbType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The channel-binding type name is unknown or not supported by Tessera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown or unsupported channel-binding type")]
pub struct UnknownCbType;

impl FromStr for CbType {
    type Err = UnknownCbType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CbType::from_name(s).ok_or(UnknownCbType)
    }
}

/// The channel-binding data this connection can compute, filled in by the TLS layer after the
/// handshake. A type whose data is `None` is neither advertised nor accepted.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ChannelBindings {
    /// `tls-exporter` data: `TLS-Exporter("EXPORTER-Channel-Binding", "", 32)`.
    pub tls_exporter: Option<Vec<u8>>,
    /// `tls-server-end-point` data: hash of the server certificate, absent when undefined for the
    /// certificate's signature algorithm (e.g. Ed25519).
    pub tls_server_end_point: Option<Vec<u8>>,
}

impl ChannelBindings {
    /// No channel binding available (plain TCP, or tests).
    pub fn none() -> Self {
        Self::default()
    }

    /// The data for `cb_type`, if this connection can compute it.
    pub fn get(&self, cb_type: CbType) -> Option<&[u8]> {
        match cb_type {
            CbType::TlsExporter => self.tls_exporter.as_deref(),
            CbType::TlsServerEndPoint => self.tls_server_end_point.as_deref(),
        }
    }

    /// The types available on this connection, in advertisement order (for XEP-0440).
    pub fn available(&self) -> Vec<CbType> {
        CbType::ALL
            .into_iter()
            .filter(|t| self.get(*t).is_some())
            .collect()
    }
}

impl fmt::Debug for ChannelBindings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Lengths only: the data is connection-specific key material.
        f.debug_struct("ChannelBindings")
            .field(
                "tls_exporter_len",
                &self.tls_exporter.as_ref().map(Vec::len),
            )
            .field(
                "tls_server_end_point_len",
                &self.tls_server_end_point.as_ref().map(Vec::len),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in CbType::ALL {
            assert_eq!(CbType::from_name(t.name()), Some(t));
            assert_eq!(t.name().parse::<CbType>(), Ok(t));
        }
        assert_eq!(CbType::TlsExporter.name(), "tls-exporter");
        assert_eq!(
            CbType::TlsServerEndPoint.to_string(),
            "tls-server-end-point"
        );
        assert_eq!(CbType::from_name("tls-unique"), None);
        assert_eq!(CbType::from_name("TLS-EXPORTER"), None);
        assert_eq!("".parse::<CbType>(), Err(UnknownCbType));
    }

    #[test]
    fn availability_follows_data() {
        let none = ChannelBindings::none();
        assert!(none.available().is_empty());
        assert_eq!(none.get(CbType::TlsExporter), None);

        let cb = ChannelBindings {
            tls_exporter: Some(vec![7; 32]),
            tls_server_end_point: None,
        };
        assert_eq!(cb.available(), vec![CbType::TlsExporter]);
        assert_eq!(cb.get(CbType::TlsExporter), Some(&[7u8; 32][..]));
        assert_eq!(cb.get(CbType::TlsServerEndPoint), None);

        let both = ChannelBindings {
            tls_exporter: Some(vec![1]),
            tls_server_end_point: Some(vec![2]),
        };
        assert_eq!(both.available(), CbType::ALL.to_vec());
        assert!(!format!("{both:?}").contains('['));
    }
}
