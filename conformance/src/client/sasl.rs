//! Client side of SASL PLAIN (RFC 4616) and SCRAM-SHA-1 / SCRAM-SHA-256 (RFC 5802, RFC 7677).
//!
//! Sans-IO: the caller moves the challenge/response bytes; this module only computes them.
//! Channel binding is not offered (`n,,` GS2 header), so the -PLUS variants are not used.
//! Passwords are used as UTF-8 bytes without SASLprep; the suite's passwords are ASCII.

use std::num::NonZeroU32;

use aws_lc_rs::{digest, hmac, pbkdf2};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// Highest PBKDF2 iteration count accepted from a server, so a hostile one cannot stall us.
const MAX_ITERATIONS: u32 = 10_000_000;

/// Mechanisms this client can use, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    ScramSha256,
    ScramSha1,
    Plain,
}

impl Mechanism {
    pub const PREFERENCE: [Mechanism; 3] = [Mechanism::ScramSha256, Mechanism::ScramSha1, Mechanism::Plain];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::Plain => "PLAIN",
        }
    }

    pub fn from_name(name: &str) -> Option<Mechanism> {
        Self::PREFERENCE.into_iter().find(|m| m.name() == name)
    }
}

/// A SASL exchange that cannot go on.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SaslError {
    #[error("malformed server message: {0}")]
    Malformed(&'static str),
    #[error("server nonce does not extend the client nonce")]
    NonceMismatch,
    #[error("server asked for an unacceptable iteration count {0}")]
    Iterations(u64),
    #[error("server signature does not verify: the server does not know the password")]
    BadServerSignature,
    #[error("server reported error {0:?}")]
    ServerError(String),
}

/// `PLAIN` initial response: empty authzid, authcid, password.
pub fn plain(username: &str, password: &str) -> Vec<u8> {
    format!("\0{username}\0{password}").into_bytes()
}

#[derive(Debug, Clone, Copy)]
enum Hash {
    Sha1,
    Sha256,
}

impl Hash {
    fn digest(self) -> &'static digest::Algorithm {
        match self {
            Hash::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Hash::Sha256 => &digest::SHA256,
        }
    }
    fn hmac(self) -> hmac::Algorithm {
        match self {
            Hash::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Hash::Sha256 => hmac::HMAC_SHA256,
        }
    }
    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            Hash::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
            Hash::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
        }
    }
    fn len(self) -> usize {
        self.digest().output_len()
    }
}

fn hmac(alg: Hash, key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(alg.hmac(), key), data).as_ref().to_vec()
}

/// Escapes a username for the `n=` attribute (RFC 5802 section 5.1).
fn escape_username(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// A SCRAM exchange in progress.
#[derive(Debug)]
pub struct ScramClient {
    hash: Hash,
    password: String,
    client_nonce: String,
    client_first_bare: String,
    expected_server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// Starts an exchange; `nonce` must be fresh and printable without commas.
    pub fn new(mechanism: Mechanism, username: &str, password: &str, nonce: &str) -> Option<Self> {
        let hash = match mechanism {
            Mechanism::ScramSha1 => Hash::Sha1,
            Mechanism::ScramSha256 => Hash::Sha256,
            Mechanism::Plain => return None,
        };
        Some(Self {
            hash,
            password: password.to_string(),
            client_nonce: nonce.to_string(),
            client_first_bare: format!("n={},r={nonce}", escape_username(username)),
            expected_server_signature: None,
        })
    }

    /// True until the server-first-message has been answered.
    pub fn client_final_pending(&self) -> bool {
        self.expected_server_signature.is_none()
    }

    /// The client-first-message, sent with `<auth/>`.
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Computes the client-final-message from the server-first-message.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, SaslError> {
        let server_first = std::str::from_utf8(server_first).map_err(|_| SaslError::Malformed("not UTF-8"))?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for part in server_first.split(',') {
            match part.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = Some(v),
                Some(("e", v)) => return Err(SaslError::ServerError(v.to_string())),
                _ => {}
            }
        }
        let nonce = nonce.ok_or(SaslError::Malformed("no nonce"))?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(SaslError::NonceMismatch);
        }
        let salt = B64
            .decode(salt.ok_or(SaslError::Malformed("no salt"))?)
            .map_err(|_| SaslError::Malformed("salt is not base64"))?;
        let iterations: u64 = iterations
            .ok_or(SaslError::Malformed("no iteration count"))?
            .parse()
            .map_err(|_| SaslError::Malformed("iteration count is not a number"))?;
        let count = u32::try_from(iterations)
            .ok()
            .filter(|&i| i <= MAX_ITERATIONS)
            .and_then(NonZeroU32::new)
            .ok_or(SaslError::Iterations(iterations))?;

        if salt.is_empty() {
            return Err(SaslError::Malformed("empty salt"));
        }
        // Output length equals the digest length and the count is bounded, so the derivation
        // cannot fail on its inputs.
        let mut salted = vec![0u8; self.hash.len()];
        pbkdf2::derive(self.hash.pbkdf2(), count, &salt, self.password.as_bytes(), &mut salted);
        let client_key = hmac(self.hash, &salted, b"Client Key");
        let stored_key = digest::digest(self.hash.digest(), &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac(self.hash, stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        let server_key = hmac(self.hash, &salted, b"Server Key");
        self.expected_server_signature = Some(hmac(self.hash, &server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final-message (the `<success/>` payload).
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), SaslError> {
        let text = std::str::from_utf8(server_final).map_err(|_| SaslError::Malformed("not UTF-8"))?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(SaslError::ServerError(e.to_string()));
        }
        let v =
            text.split(',').find_map(|p| p.strip_prefix("v=")).ok_or(SaslError::Malformed("no server signature"))?;
        let got = B64.decode(v).map_err(|_| SaslError::Malformed("signature is not base64"))?;
        match &self.expected_server_signature {
            Some(expected) if *expected == got => Ok(()),
            _ => Err(SaslError::BadServerSignature),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5802_scram_sha1_vector() {
        let mut c = ScramClient::new(Mechanism::ScramSha1, "user", "pencil", "fyko+d2lbbFgONRv9qkxdawL").unwrap();
        assert_eq!(c.client_first(), b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        let fin = c.client_final(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096").unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        assert_eq!(c.verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="), Ok(()));
        assert_eq!(c.verify_server_final(b"v=AAF9pqV8S7suAoZWja4dJRkFsKQ="), Err(SaslError::BadServerSignature));
    }

    #[test]
    fn rfc7677_scram_sha256_vector() {
        let mut c = ScramClient::new(Mechanism::ScramSha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO").unwrap();
        let fin = c
            .client_final(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="), Ok(()));
    }

    #[test]
    fn rejects_bad_server_first_messages() {
        let mut c = ScramClient::new(Mechanism::ScramSha256, "a,b=c", "p", "abc").unwrap();
        assert_eq!(c.client_first(), b"n,,n=a=2Cb=3Dc,r=abc");
        assert_eq!(c.client_final(b"r=xyz,s=AAAA,i=1"), Err(SaslError::NonceMismatch));
        assert_eq!(c.client_final(b"r=abc,s=AAAA,i=1"), Err(SaslError::NonceMismatch));
        assert_eq!(c.client_final(b"r=abcd,s=AAAA,i=0"), Err(SaslError::Iterations(0)));
        assert!(matches!(c.client_final(b"r=abcd,s=!!,i=1"), Err(SaslError::Malformed(_))));
        assert!(matches!(c.client_final(b"e=other-error"), Err(SaslError::ServerError(_))));
        // No signature can verify before the final message was computed.
        assert!(c.verify_server_final(b"v=AAAA").is_err());
        assert_eq!(plain("u", "p"), b"\0u\0p");
    }
}
