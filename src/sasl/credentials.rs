//! Stored SCRAM keys (RFC 5802 §3): what an account keeps instead of its password.

use aws_lc_rs::{digest, hmac, pbkdf2};
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha1,
    Sha256,
}

impl HashAlg {
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let alg = match self {
            HashAlg::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            HashAlg::Sha256 => hmac::HMAC_SHA256,
        };
        hmac::sign(&hmac::Key::new(alg, key), data).as_ref().to_vec()
    }

    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            HashAlg::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            HashAlg::Sha256 => &digest::SHA256,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }

    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
        }
    }

    /// RFC 5802 Hi(): PBKDF2 with this hash.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let alg = match self {
            HashAlg::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
            HashAlg::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
        };
        let mut out = vec![0u8; self.output_len()];
        let iterations = NonZeroU32::new(iterations.max(1)).unwrap_or(NonZeroU32::MIN);
        pbkdf2::derive(alg, iterations, salt, password, &mut out);
        out
    }
}

/// The keys of one hash function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramKeys {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl ScramKeys {
    pub fn derive(alg: HashAlg, password: &str, salt: &[u8], iterations: u32) -> ScramKeys {
        let salted = alg.salted_password(password.as_bytes(), salt, iterations);
        let client_key = alg.hmac(&salted, b"Client Key");
        ScramKeys {
            salt: salt.to_vec(),
            iterations,
            stored_key: alg.hash(&client_key),
            server_key: alg.hmac(&salted, b"Server Key"),
        }
    }
}

/// An account's credentials: SCRAM keys for SHA-1 and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub sha1: ScramKeys,
    pub sha256: ScramKeys,
}

impl Credentials {
    /// Derive fresh keys with random salts.
    pub fn derive(password: &str, iterations: u32) -> Credentials {
        Credentials {
            sha1: ScramKeys::derive(HashAlg::Sha1, password, &random_bytes(16), iterations),
            sha256: ScramKeys::derive(HashAlg::Sha256, password, &random_bytes(16), iterations),
        }
    }

    pub fn keys(&self, alg: HashAlg) -> &ScramKeys {
        match alg {
            HashAlg::Sha1 => &self.sha1,
            HashAlg::Sha256 => &self.sha256,
        }
    }

    /// Check a cleartext password (PLAIN) by deriving the SHA-256 keys again.
    pub fn verify_password(&self, password: &str) -> bool {
        let k = &self.sha256;
        let derived = ScramKeys::derive(HashAlg::Sha256, password, &k.salt, k.iterations);
        constant_time_eq(&derived.stored_key, &k.stored_key)
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    // The system RNG failing is not recoverable for a server that must make secrets.
    aws_lc_rs::rand::fill(&mut v).expect("system random number generator failed");
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn rfc5802_keys() {
        // RFC 5802 §5: user "user", password "pencil", salt QSXCR+Q6sek8bf92, 4096 iterations.
        let salt = base64::engine::general_purpose::STANDARD.decode("QSXCR+Q6sek8bf92").unwrap();
        let k = ScramKeys::derive(HashAlg::Sha1, "pencil", &salt, 4096);
        let salted = HashAlg::Sha1.salted_password(b"pencil", &salt, 4096);
        assert_eq!(
            salted,
            [
                0x1d, 0x96, 0xee, 0x3a, 0x52, 0x9b, 0x5a, 0x5f, 0x9e, 0x47, 0xc0, 0x1f, 0x22, 0x9a, 0x2c, 0xb8, 0xa6,
                0xe1, 0x5f, 0x7d
            ]
        );
        assert_eq!(k.stored_key.len(), 20);
    }

    #[test]
    fn verify_password() {
        let c = Credentials::derive("pässword", 4096);
        assert!(c.verify_password("pässword"));
        assert!(!c.verify_password("password"));
    }
}
