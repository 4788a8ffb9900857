//! The server secret: 32 random bytes in `<data_dir>/server-secret` (mode 0600), kept outside
//! the store so that a copy of the database alone cannot rebuild anything derived from it (FAST
//! tokens, fake SCRAM salts, stable Bind 2 resources).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The loaded server secret.
#[derive(Clone)]
pub struct ServerSecret([u8; 32]);

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(..)")
    }
}

impl ServerSecret {
    /// Read the secret from `data_dir`, creating it on first start.
    ///
    /// # Errors
    /// I/O errors, a file of the wrong size, or one readable by others.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<Self> {
        let path = data_dir.join("server-secret");
        match std::fs::read(&path) {
            Ok(bytes) => {
                let mode = std::fs::metadata(&path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    return Err(std::io::Error::other(format!(
                        "{} is accessible by other users (mode {:o}); chmod 600 it",
                        path.display(),
                        mode & 0o777
                    )));
                }
                let key: [u8; 32] = bytes.try_into().map_err(|_| {
                    std::io::Error::other(format!("{} is not 32 bytes", path.display()))
                })?;
                Ok(Self(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                getrandom::getrandom(&mut key).map_err(|e| std::io::Error::other(e.to_string()))?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                file.write_all(&key)?;
                file.sync_all()?;
                Ok(Self(key))
            }
            Err(e) => Err(e),
        }
    }

    /// A secret for tests.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// HMAC-SHA-256(secret, label): a purpose-specific key.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The raw bytes (for fake SCRAM credentials).
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Fill a buffer from the OS CSPRNG.
pub fn random_bytes(buf: &mut [u8]) {
    if getrandom::getrandom(buf).is_err() {
        // The OS RNG failing is unrecoverable; never hand out predictable bytes.
        std::process::abort();
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// `n` random bytes from the OS CSPRNG, as lower-case hex (ids, nonces, file names).
pub fn random_hex(n: usize) -> String {
    let mut raw = vec![0u8; n];
    random_bytes(&mut raw);
    hex(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_two_lower_case_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        let r = random_hex(9);
        assert_eq!(r.len(), 18);
        assert!(r
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn created_once_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = ServerSecret::load_or_create(dir.path()).unwrap();
        let b = ServerSecret::load_or_create(dir.path()).unwrap();
        assert_eq!(a.bytes(), b.bytes());
        let mode = std::fs::metadata(dir.path().join("server-secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_ne!(a.derive("x"), a.derive("y"));
        std::fs::set_permissions(
            dir.path().join("server-secret"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let err = ServerSecret::load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
