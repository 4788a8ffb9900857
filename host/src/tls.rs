//! TLS for every listener (rustls, TLS 1.2 and 1.3): the server configuration, the certificate
//! (configured, or a self-signed one generated once into the data directory), and the
//! channel-binding data SCRAM-PLUS and HT-* need: `tls-exporter` (RFC 9266) and
//! `tls-server-end-point` (RFC 5929 §4).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use sha2::{Digest, Sha256, Sha384, Sha512};
use tessera_plugin_api::protocol::ChannelBindings;

use crate::config::TlsConfig;

/// Problems setting up TLS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Reading or writing a PEM file failed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Generating the self-signed certificate failed.
    #[error("generating a self-signed certificate: {0}")]
    Generate(String),
    /// rustls refused the certificate or key.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The server's TLS setup shared by all listeners.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The rustls configuration for XMPP (ALPN `xmpp-client`, XEP-0368).
    pub config: Arc<ServerConfig>,
    /// The same certificate for the HTTPS server (ALPN `http/1.1`).
    pub http_config: Arc<ServerConfig>,
    /// RFC 5929 `tls-server-end-point` data, `None` when the certificate defines no hash.
    pub end_point: Option<Vec<u8>>,
}

fn file_err(path: &Path, message: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Load the configured certificate, or generate (once) and reuse a self-signed one.
///
/// # Errors
/// Unreadable or invalid PEM, a key that does not match, generation failure.
pub fn load(cfg: &TlsConfig, data_dir: &Path, domain: &str) -> Result<Tls, TlsError> {
    let (cert_path, key_path) = match (&cfg.cert, &cfg.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => ensure_self_signed(data_dir, domain)?,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| file_err(&cert_path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(&cert_path, e))?;
    if certs.is_empty() {
        return Err(file_err(&cert_path, "no certificate in file"));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| file_err(&key_path, e))?;
    let end_point = certs.first().and_then(|c| end_point_hash(c.as_ref()));
    let provider = Arc::new(server_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    // tls-exporter is only safe on TLS 1.2 with Extended Master Secret (RFC 9266 §2).
    config.require_ems = true;
    config.alpn_protocols = vec![b"xmpp-client".to_vec()];
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    // Our suite order, not the client's (most clients put AES-256 first): see server_provider.
    config.ignore_client_order = true;
    // One ticket is what a reconnecting client uses; rustls's default of two encrypts a second
    // one on every handshake.
    config.send_tls13_tickets = 1;
    let mut http_config = config.clone();
    http_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        http_config: Arc::new(http_config),
        end_point,
    })
}

/// ring with the TLS 1.3 suites in our order: AES-128-GCM-SHA256 first (the suite every TLS 1.3
/// peer must support; SHA-256 runs on the CPU's SHA extensions where SHA-384 does not, which
/// makes the handshake's key schedule measurably cheaper), then ChaCha20 for CPUs without AES
/// instructions, then AES-256.
fn server_provider() -> rustls::crypto::CryptoProvider {
    use rustls::crypto::ring::cipher_suite as suite;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![
        suite::TLS13_AES_128_GCM_SHA256,
        suite::TLS13_CHACHA20_POLY1305_SHA256,
        suite::TLS13_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ];
    provider
}

fn ensure_self_signed(data_dir: &Path, domain: &str) -> Result<(PathBuf, PathBuf), TlsError> {
    let dir = data_dir.join("tls");
    let cert_path = dir.join(format!("{domain}.crt"));
    let key_path = dir.join(format!("{domain}.key"));
    if cert_path.is_file() && key_path.is_file() {
        return Ok((cert_path, key_path));
    }
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| file_err(&dir, e))?;
    }
    let names = vec![domain.to_owned(), format!("*.{domain}")];
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    write_private(&key_path, generated.key_pair.serialize_pem().as_bytes())?;
    write_private(&cert_path, generated.cert.pem().as_bytes())?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed certificate");
    Ok((cert_path, key_path))
}

/// Write a file owner-only (like everything in the data directory; a file left there wider by
/// an older build is narrowed too).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| file_err(path, e))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| file_err(path, e))?;
    f.write_all(bytes).map_err(|e| file_err(path, e))
}

/// Channel-binding data of an established connection.
pub fn channel_bindings(
    conn: &rustls::ServerConnection,
    end_point: Option<&[u8]>,
) -> ChannelBindings {
    let mut exporter = [0u8; 32];
    let tls_exporter =
        match conn.export_keying_material(&mut exporter, b"EXPORTER-Channel-Binding", Some(b"")) {
            Ok(_) => Some(exporter.to_vec()),
            Err(_) => None,
        };
    ChannelBindings {
        tls_exporter,
        tls_server_end_point: end_point.map(<[u8]>::to_vec),
    }
}

/// The protocol version name of an established connection (`TLSv1.3`).
pub fn version_name(conn: &rustls::ServerConnection) -> Option<String> {
    conn.protocol_version().map(|v| match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    })
}

// signatureAlgorithm OIDs (DER content bytes) and the hash RFC 5929 §4.1 assigns them.
const OID_HASHES: &[(&[u8], EndPointHash)] = &[
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
        EndPointHash::Sha256,
    ), // ecdsa-with-SHA256
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],
        EndPointHash::Sha384,
    ), // ecdsa-with-SHA384
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04],
        EndPointHash::Sha512,
    ), // ecdsa-with-SHA512
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01],
        EndPointHash::Sha256,
    ), // ecdsa-with-SHA1 → SHA-256
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05],
        EndPointHash::Sha256,
    ), // sha1WithRSA → SHA-256
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04],
        EndPointHash::Sha256,
    ), // md5WithRSA → SHA-256
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b],
        EndPointHash::Sha256,
    ), // sha256WithRSA
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c],
        EndPointHash::Sha384,
    ), // sha384WithRSA
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d],
        EndPointHash::Sha512,
    ), // sha512WithRSA
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EndPointHash {
    Sha256,
    Sha384,
    Sha512,
}

/// RFC 5929 §4.1: hash the DER certificate with the hash of its signature algorithm (MD5 and
/// SHA-1 become SHA-256). `None` for algorithms with no single hash (Ed25519, Ed448, RSA-PSS
/// with parameters we do not parse) and for unparseable certificates.
pub fn end_point_hash(cert_der: &[u8]) -> Option<Vec<u8>> {
    let oid = signature_algorithm_oid(cert_der)?;
    let (_, hash) = OID_HASHES.iter().find(|(o, _)| *o == oid)?;
    Some(match hash {
        EndPointHash::Sha256 => Sha256::digest(cert_der).to_vec(),
        EndPointHash::Sha384 => Sha384::digest(cert_der).to_vec(),
        EndPointHash::Sha512 => Sha512::digest(cert_der).to_vec(),
    })
}

/// Read one DER TLV at the start of `input`: (tag, content, rest).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (len_bytes, rest) = rest.split_at(n);
        (
            len_bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize),
            rest,
        )
    };
    if rest.len() < len {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((tag, content, rest))
}

/// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, ... }
fn signature_algorithm_oid(cert_der: &[u8]) -> Option<&[u8]> {
    let (0x30, cert, _) = der_tlv(cert_der)? else {
        return None;
    };
    let (0x30, _tbs, rest) = der_tlv(cert)? else {
        return None;
    };
    let (0x30, alg, _) = der_tlv(rest)? else {
        return None;
    };
    let (0x06, oid, _) = der_tlv(alg)? else {
        return None;
    };
    Some(oid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_point_hash_follows_the_signature_algorithm() {
        let ecdsa = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let der = ecdsa.cert.der().to_vec();
        assert_eq!(end_point_hash(&der), Some(Sha256::digest(&der).to_vec()));

        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let p384 = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = p384.der().to_vec();
        assert_eq!(end_point_hash(&der), Some(Sha384::digest(&der).to_vec()));

        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let ed = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert_eq!(
            end_point_hash(ed.der()),
            None,
            "Ed25519 has no RFC 5929 hash"
        );
        assert_eq!(end_point_hash(b"\x30\x03junk"), None);
    }

    #[test]
    fn self_signed_certificate_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = load(&TlsConfig::default(), dir.path(), "localhost").unwrap();
        let cert1 = std::fs::read(dir.path().join("tls/localhost.crt")).unwrap();
        let b = load(&TlsConfig::default(), dir.path(), "localhost").unwrap();
        let cert2 = std::fs::read(dir.path().join("tls/localhost.crt")).unwrap();
        assert_eq!(cert1, cert2);
        let mode = |p: &str| {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(dir.path().join(p)).unwrap();
            meta.permissions().mode() & 0o777
        };
        assert_eq!(mode("tls"), 0o700);
        assert_eq!(mode("tls/localhost.key"), 0o600);
        assert_eq!(mode("tls/localhost.crt"), 0o600);
        assert_eq!(a.end_point, b.end_point);
        assert_eq!(a.end_point.as_ref().map(Vec::len), Some(32));
    }
}
