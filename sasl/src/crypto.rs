//! Hash-generic primitives: HMAC (RFC 2104), the hash itself, PBKDF2 (RFC 8018, SCRAM's `Hi()`),
//! XOR and constant-time equality.
//!
//! HMAC keys are normalised here exactly as RFC 2104 §2 prescribes (keys longer than the block
//! are hashed, shorter ones are zero-padded) so that the infallible `KeyInit::new` can be used:
//! no `expect` on a key-length error that cannot happen.

use hmac::digest::{Digest, Key, KeyInit, Output};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

use crate::Hash;

/// HMAC over the concatenation of `parts`, with `D` the digest of `M = Hmac<D>`.
fn hmac_parts<M, D>(key: &[u8], parts: &[&[u8]]) -> Output<M>
where
    M: Mac + KeyInit,
    D: Digest,
{
    let mut block = Key::<M>::default();
    let hashed;
    let key: &[u8] = if key.len() > block.len() {
        hashed = D::digest(key);
        &hashed
    } else {
        key
    };
    block.iter_mut().zip(key).for_each(|(dst, src)| *dst = *src);
    let mut mac = <M as KeyInit>::new(&block);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes()
}

/// HMAC-SHA-256 over the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    hmac_parts::<Hmac<Sha256>, Sha256>(key, parts).into()
}

impl Hash {
    /// HMAC-H over the concatenation of `parts`.
    pub(crate) fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Hash::Sha1 => hmac_parts::<Hmac<Sha1>, Sha1>(key, parts).to_vec(),
            Hash::Sha256 => hmac_sha256(key, parts).to_vec(),
            Hash::Sha512 => hmac_parts::<Hmac<Sha512>, Sha512>(key, parts).to_vec(),
        }
    }

    /// H(data).
    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => Sha1::digest(data).to_vec(),
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// SCRAM `Hi(str, salt, i)` = PBKDF2-HMAC-H with dkLen = output length. `iterations` must be
    /// non-zero (checked by the callers).
    pub(crate) fn hi(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.output_len()];
        match self {
            Hash::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out),
            Hash::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out),
            Hash::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out),
        }
        out
    }
}

/// Byte-wise XOR; the result has the length of the shorter input (callers check lengths first).
pub(crate) fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// Constant-time equality (length is not secret; contents are).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_normalisation_matches_hmac_crate_for_all_key_lengths() {
        for len in [0usize, 1, 20, 32, 63, 64, 65, 100, 200] {
            let key = vec![0x5au8; len];
            let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
            reference.update(b"ab");
            reference.update(b"cd");
            let expected = reference.finalize().into_bytes();
            assert_eq!(
                hmac_sha256(&key, &[b"ab", b"cd"]),
                expected.as_slice(),
                "len {len}"
            );

            let mut reference1 = <Hmac<Sha1> as Mac>::new_from_slice(&key).unwrap();
            reference1.update(b"abcd");
            let expected1 = reference1.finalize().into_bytes();
            assert_eq!(
                Hash::Sha1.hmac(&key, &[b"abcd"]),
                expected1.as_slice(),
                "len {len}"
            );
        }
    }

    #[test]
    fn rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn ct_eq_distinguishes_content_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert_eq!(xor(&[0xff, 0x0f], &[0x0f, 0x0f]), vec![0xf0, 0x00]);
    }
}
