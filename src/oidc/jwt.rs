//! ID token validation (OpenID Connect Core §3.1.3.7), sans-IO: the token, the provider's
//! keys and the time come in; claims or a typed error go out.
//!
//! Order matters: the JWS is split and its header read ([`Jws::parse`]), the signature is
//! checked with the provider's keys ([`Jws::verify`]), and only then are the claims looked
//! at ([`check_claims`]). Nothing from an unverified payload is trusted except `iss`, used
//! to pick which configured provider's keys to try ([`unverified_issuer`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use serde_json::{Map, Value};

use super::jwk::{Alg, Jwks};

/// Tokens larger than this are refused before any decoding.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Clock difference tolerated between amphi and a provider, in seconds.
pub const SKEW_SECS: u64 = 60;

/// Why a token is refused. `UnknownKey` is the one a caller may retry after fetching the
/// provider's keys again (key rotation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("signature algorithm {0:?} is not accepted (RS256, PS256, ES256 only)")]
    Algorithm(String),
    #[error("no key of the provider matches the token's key id")]
    UnknownKey,
    #[error("the signature does not verify")]
    Signature,
    #[error("issuer {0:?} is not the expected one")]
    Issuer(String),
    #[error("the token is not meant for this client")]
    Audience,
    #[error("the token has expired")]
    Expired,
    #[error("the token's issue time or not-before time is invalid")]
    Time,
    #[error("the nonce does not match this sign-in")]
    Nonce,
    #[error("a required claim is missing: {0}")]
    Missing(&'static str),
}

/// A parsed, not yet verified, compact JWS.
#[derive(Debug)]
pub struct Jws<'a> {
    pub alg: Alg,
    pub kid: Option<String>,
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl<'a> Jws<'a> {
    pub fn parse(token: &'a str) -> Result<Jws<'a>, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(JwtError::Malformed);
        };
        let decode = |x: &str| B64URL.decode(x).map_err(|_| JwtError::Malformed);
        let header: Map<String, Value> = serde_json::from_slice(&decode(h)?).map_err(|_| JwtError::Malformed)?;
        let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let alg = Alg::parse(alg_name).ok_or_else(|| JwtError::Algorithm(alg_name.to_string()))?;
        // RFC 7515 §4.1.11: a critical extension we do not understand makes the token invalid.
        if header.contains_key("crit") {
            return Err(JwtError::Malformed);
        }
        let kid = header.get("kid").and_then(Value::as_str).map(String::from);
        Ok(Jws { alg, kid, signing_input: &token[..h.len() + 1 + p.len()], payload: decode(p)?, signature: decode(s)? })
    }

    /// Check the signature with `keys`; on success, the payload's claims.
    pub fn verify(&self, keys: &Jwks) -> Result<Map<String, Value>, JwtError> {
        let mut candidates = keys.candidates(self.alg, self.kid.as_deref()).peekable();
        if candidates.peek().is_none() {
            return Err(JwtError::UnknownKey);
        }
        if !candidates.any(|k| k.verify(self.alg, self.signing_input.as_bytes(), &self.signature)) {
            return Err(JwtError::Signature);
        }
        serde_json::from_slice(&self.payload).map_err(|_| JwtError::Malformed)
    }
}

/// The `iss` of a token, read without verification: only to choose which provider's keys
/// to verify it with.
pub fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let claims: Map<String, Value> = serde_json::from_slice(&B64URL.decode(payload).ok()?).ok()?;
    claims.get("iss")?.as_str().map(String::from)
}

/// What the claims must say.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The nonce sent with the authorization request; `None` for bearer tokens presented
    /// to the API, which were not obtained through our own redirect.
    pub nonce: Option<&'a str>,
    /// Now, in seconds since the Unix epoch.
    pub now: u64,
}

/// Check iss, aud/azp, exp, iat, nbf and nonce of verified claims. Returns the subject.
pub fn check_claims(claims: &Map<String, Value>, want: &Expected) -> Result<String, JwtError> {
    let text = |name| claims.get(name).and_then(Value::as_str);
    let number = |name| claims.get(name).and_then(Value::as_u64);
    match text("iss") {
        Some(iss) if iss == want.issuer => {}
        other => return Err(JwtError::Issuer(other.unwrap_or("").to_string())),
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(JwtError::Missing("aud")),
    };
    if !audiences.contains(&want.client_id) {
        return Err(JwtError::Audience);
    }
    // Core §3.1.3.7 (4, 5): with several audiences the authorized party must be us.
    match text("azp") {
        Some(azp) if azp != want.client_id => return Err(JwtError::Audience),
        None if audiences.len() > 1 => return Err(JwtError::Audience),
        _ => {}
    }
    let exp = number("exp").ok_or(JwtError::Missing("exp"))?;
    if want.now >= exp.saturating_add(SKEW_SECS) {
        return Err(JwtError::Expired);
    }
    let iat = number("iat").ok_or(JwtError::Missing("iat"))?;
    if iat > want.now + SKEW_SECS || number("nbf").is_some_and(|nbf| nbf > want.now + SKEW_SECS) {
        return Err(JwtError::Time);
    }
    if let Some(nonce) = want.nonce {
        // Not secret-dependent timing: the nonce is a one-time value we chose.
        if text("nonce") != Some(nonce) {
            return Err(JwtError::Nonce);
        }
    }
    let sub = text("sub").filter(|s| !s.is_empty() && s.len() <= 255).ok_or(JwtError::Missing("sub"))?;
    Ok(sub.to_string())
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
