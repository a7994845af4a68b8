//! SASL client mechanisms: SCRAM-SHA-256, SCRAM-SHA-1 (RFC 5802, RFC 7677) and PLAIN.
//!
//! The salted password (4096+ rounds of PBKDF2) is cached per account and salt, as real clients
//! do: otherwise the generator would spend more CPU per sign-in than the server it measures,
//! since the server stores the derived keys and runs no PBKDF2 at sign-in.

use aws_lc_rs::{digest, hmac, pbkdf2, rand};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;

/// A SASL mechanism this client implements, strongest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mech {
    ScramSha256,
    ScramSha1,
    Plain,
}

impl Mech {
    pub const ALL: [Mech; 3] = [Mech::ScramSha256, Mech::ScramSha1, Mech::Plain];

    pub fn name(self) -> &'static str {
        match self {
            Mech::ScramSha256 => "SCRAM-SHA-256",
            Mech::ScramSha1 => "SCRAM-SHA-1",
            Mech::Plain => "PLAIN",
        }
    }

    pub fn parse(s: &str) -> Option<Mech> {
        Mech::ALL.into_iter().find(|m| m.name().eq_ignore_ascii_case(s))
    }
}

/// Why a SCRAM exchange failed.
#[derive(Debug, PartialEq, Eq)]
pub enum ScramError {
    /// The server's message is not what RFC 5802 describes.
    Malformed(&'static str),
    /// The server's nonce does not extend ours.
    NonceMismatch,
    /// The server sent `e=...`.
    Server(String),
    /// The server's signature is wrong: it does not know the password.
    BadServerSignature,
}

impl std::fmt::Display for ScramError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScramError::Malformed(what) => write!(f, "malformed SCRAM message: {what}"),
            ScramError::NonceMismatch => write!(f, "server nonce does not extend client nonce"),
            ScramError::Server(e) => write!(f, "server SCRAM error: {e}"),
            ScramError::BadServerSignature => write!(f, "server signature mismatch"),
        }
    }
}

impl std::error::Error for ScramError {}

/// Salted passwords already computed, keyed by mechanism, user, password, salt and iterations.
#[derive(Default)]
pub struct SaltCache {
    map: Mutex<HashMap<String, Vec<u8>>>,
}

/// The user part of a cache key (`MECH|user|...`).
fn key_user(key: &str) -> Option<&str> {
    key.split('|').nth(1)
}

impl SaltCache {
    /// Builds a cache from saved entries (`key -> base64 salted password`).
    pub fn from_saved(saved: HashMap<String, String>) -> SaltCache {
        let map = saved.into_iter().filter_map(|(k, v)| Some((k, B64.decode(v).ok()?))).collect();
        SaltCache { map: Mutex::new(map) }
    }

    /// The entries, for saving.
    pub fn to_saved(&self) -> HashMap<String, String> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, v)| (k.clone(), B64.encode(v))).collect()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The users with at least one salted password cached.
    pub fn users(&self) -> std::collections::HashSet<String> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.keys().filter_map(|k| key_user(k)).map(str::to_owned).collect()
    }

    fn salted(&self, mech: Mech, user: &str, password: &str, salt: &[u8], iters: NonZeroU32) -> Vec<u8> {
        let key = format!("{}|{user}|{password}|{}|{iters}", mech.name(), B64.encode(salt));
        // Never held across an await: this module is synchronous.
        if let Some(v) = self.map.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return v.clone();
        }
        let (alg, len) = match mech {
            Mech::ScramSha1 => (pbkdf2::PBKDF2_HMAC_SHA1, 20),
            _ => (pbkdf2::PBKDF2_HMAC_SHA256, 32),
        };
        let mut out = vec![0u8; len];
        pbkdf2::derive(alg, iters, salt, password.as_bytes(), &mut out);
        self.map.lock().unwrap_or_else(|e| e.into_inner()).insert(key, out.clone());
        out
    }
}

/// The client side of one SCRAM exchange (no channel binding: `n,,`).
pub struct Scram {
    mech: Mech,
    user: String,
    password: String,
    nonce: String,
    client_first_bare: String,
    server_signature: Vec<u8>,
}

impl Scram {
    /// Starts an exchange with a fresh random nonce.
    pub fn new(mech: Mech, user: &str, password: &str) -> Scram {
        let mut raw = [0u8; 18];
        // The system RNG failing is not a load-test condition worth handling.
        let _ = rand::fill(&mut raw);
        Scram::with_nonce(mech, user, password, &B64.encode(raw))
    }

    /// Starts an exchange with a given nonce (for the RFC test vectors).
    pub fn with_nonce(mech: Mech, user: &str, password: &str, nonce: &str) -> Scram {
        let name = user.replace('=', "=3D").replace(',', "=2C");
        Scram {
            mech,
            user: user.to_owned(),
            password: password.to_owned(),
            nonce: nonce.to_owned(),
            client_first_bare: format!("n={name},r={nonce}"),
            server_signature: Vec::new(),
        }
    }

    /// The initial response sent with `<auth/>`.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// Answers the server-first message with the client-final message.
    pub fn client_final(&mut self, server_first: &str, cache: &SaltCache) -> Result<String, ScramError> {
        let field = |k: &str| server_first.split(',').find_map(|p| p.strip_prefix(k).and_then(|v| v.strip_prefix('=')));
        if let Some(e) = field("e") {
            return Err(ScramError::Server(e.to_owned()));
        }
        let nonce = field("r").ok_or(ScramError::Malformed("no nonce"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        let salt = B64
            .decode(field("s").ok_or(ScramError::Malformed("no salt"))?)
            .map_err(|_| ScramError::Malformed("salt is not base64"))?;
        let iters: NonZeroU32 =
            field("i").and_then(|i| i.parse().ok()).ok_or(ScramError::Malformed("bad iteration count"))?;
        let salted = cache.salted(self.mech, &self.user, &self.password, &salt, iters);
        let (hmac_alg, digest_alg) = match self.mech {
            Mech::ScramSha1 => (hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &digest::SHA1_FOR_LEGACY_USE_ONLY),
            _ => (hmac::HMAC_SHA256, &digest::SHA256),
        };
        let salted_key = hmac::Key::new(hmac_alg, &salted);
        let client_key = hmac::sign(&salted_key, b"Client Key");
        let stored_key = digest::digest(digest_alg, client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_sig = hmac::sign(&hmac::Key::new(hmac_alg, stored_key.as_ref()), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.as_ref().iter().zip(client_sig.as_ref()).map(|(a, b)| a ^ b).collect();
        let server_key = hmac::sign(&salted_key, b"Server Key");
        let server_sig = hmac::sign(&hmac::Key::new(hmac_alg, server_key.as_ref()), auth_message.as_bytes());
        self.server_signature = server_sig.as_ref().to_vec();
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Checks the server-final message (`v=...`), proving the server knew the password.
    pub fn verify(&self, server_final: &str) -> Result<(), ScramError> {
        if let Some(e) = server_final.strip_prefix("e=") {
            return Err(ScramError::Server(e.to_owned()));
        }
        let v = server_final.strip_prefix("v=").ok_or(ScramError::Malformed("no verifier"))?;
        let v = B64.decode(v.trim()).map_err(|_| ScramError::Malformed("verifier is not base64"))?;
        if v == self.server_signature && !v.is_empty() {
            Ok(())
        } else {
            Err(ScramError::BadServerSignature)
        }
    }
}

/// The PLAIN initial response (RFC 4616), for servers offering nothing better.
pub fn plain(user: &str, password: &str) -> String {
    format!("\0{user}\0{password}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5802_sha1_vector() {
        let cache = SaltCache::default();
        let mut s = Scram::with_nonce(Mech::ScramSha1, "user", "pencil", "fyko+d2lbbFgONRv9qkxdawL");
        assert_eq!(s.client_first(), "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        let fin = s
            .client_final("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096", &cache)
            .expect("server-first");
        assert_eq!(fin, "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
        assert_eq!(s.verify("v=rmF9pqV8S7suAoZWja4dJRkFsKQ="), Ok(()));
        assert_eq!(s.verify("v=AAAApqV8S7suAoZWja4dJRkFsKQ="), Err(ScramError::BadServerSignature));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn rfc7677_sha256_vector_with_cached_salt() {
        let cache = SaltCache::default();
        for _ in 0..2 {
            let mut s = Scram::with_nonce(Mech::ScramSha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
            let fin = s
                .client_final(
                    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                    &cache,
                )
                .expect("server-first");
            assert_eq!(
                fin,
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
            );
            assert_eq!(s.verify("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="), Ok(()));
        }
        let restored = SaltCache::from_saved(cache.to_saved());
        assert_eq!(restored.len(), 1);
        assert!(restored.users().contains("user"));
    }

    #[test]
    fn rejects_foreign_nonce_and_server_errors() {
        let cache = SaltCache::default();
        let mut s = Scram::with_nonce(Mech::ScramSha1, "user", "pencil", "abc");
        assert_eq!(s.client_final("r=xyz123,s=QSXCR+Q6sek8bf92,i=4096", &cache), Err(ScramError::NonceMismatch));
        assert_eq!(s.client_final("r=abc,s=QSXCR+Q6sek8bf92,i=4096", &cache), Err(ScramError::NonceMismatch));
        assert_eq!(s.client_final("e=unknown-user", &cache), Err(ScramError::Server("unknown-user".into())));
        assert_eq!(
            s.client_final("r=abcd,s=QSXCR+Q6sek8bf92,i=0", &cache),
            Err(ScramError::Malformed("bad iteration count"))
        );
    }

    #[test]
    fn mechanism_names_round_trip() {
        for m in Mech::ALL {
            assert_eq!(Mech::parse(m.name()), Some(m));
        }
        assert_eq!(Mech::parse("scram-sha-1"), Some(Mech::ScramSha1));
        assert_eq!(plain("u", "p"), "\0u\0p");
    }
}
