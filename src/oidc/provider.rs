//! One configured OpenID provider: its discovery document and keys, cached, and the
//! requests made to it (token endpoint, userinfo).
//!
//! Discovery is cached for an hour. Keys are cached until a token names a key id the set
//! does not hold (the provider rotated its keys): the set is then fetched again, but such
//! forced fetches happen at most once every [`JWKS_REFETCH`], so tokens with made-up
//! `kid`s cannot make amphi hammer the provider.

use serde_json::{Map, Value};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::fetch::{self, FetchError};
use super::jwk::Jwks;
use super::jwt::{self, Expected, JwtError};
use crate::config::{oidc_url_allowed, OidcIssuer};

const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// Least time between two fetches of the key set forced by an unknown key id.
pub const JWKS_REFETCH: Duration = Duration::from_secs(30);

/// The endpoints amphi uses (OpenID Connect Discovery 1.0 §3).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
}

/// Why talking to the provider failed; each maps to an `sso_error` code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("provider unreachable: {0}")]
    Unavailable(String),
    #[error("the token endpoint refused the code: {0}")]
    Exchange(String),
    #[error("ID token refused: {0}")]
    IdToken(#[from] JwtError),
}

impl ProviderError {
    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::Unavailable(_) => "unavailable",
            ProviderError::Exchange(_) => "exchange",
            ProviderError::IdToken(_) => "id_token",
        }
    }
}

impl From<FetchError> for ProviderError {
    fn from(e: FetchError) -> Self {
        ProviderError::Unavailable(e.to_string())
    }
}

/// What the token endpoint gave, once the ID token is verified.
#[derive(Debug)]
pub struct SignedIn {
    pub sub: String,
    /// The ID token's claims, completed from userinfo when it lacks the account name.
    pub claims: Map<String, Value>,
}

pub struct Provider {
    pub config: OidcIssuer,
    /// `std` mutexes: held only to read or replace a cache entry, never across `.await`.
    discovery: Mutex<Option<(Discovery, Instant)>>,
    jwks: Mutex<Option<Jwks>>,
    /// When an unknown key id last forced a fetch.
    forced: Mutex<Option<Instant>>,
}

impl Provider {
    pub fn new(config: OidcIssuer) -> Provider {
        Provider { config, discovery: Mutex::new(None), jwks: Mutex::new(None), forced: Mutex::new(None) }
    }

    pub async fn discovery(&self) -> Result<Discovery, ProviderError> {
        let now = Instant::now();
        if let Some((d, at)) = self.discovery.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            if now.duration_since(*at) < DISCOVERY_TTL {
                return Ok(d.clone());
            }
        }
        let url = format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
        let d: Discovery = get_json(&url).await?;
        // Discovery §4.3: the document must name the issuer we asked; its endpoints must
        // be as safe as the issuer (https, or http on loopback for tests).
        if d.issuer != self.config.issuer {
            return Err(ProviderError::Unavailable(format!("discovery names issuer {:?}", d.issuer)));
        }
        let endpoints = [&d.authorization_endpoint, &d.token_endpoint, &d.jwks_uri];
        if endpoints.into_iter().chain(d.userinfo_endpoint.as_ref()).any(|u| !oidc_url_allowed(u)) {
            return Err(ProviderError::Unavailable("discovery lists an endpoint that is not https".into()));
        }
        *self.discovery.lock().unwrap_or_else(|e| e.into_inner()) = Some((d.clone(), now));
        Ok(d)
    }

    /// The key set: cached, or fetched when there is none, or when `refresh` asks and no
    /// other forced fetch happened within [`JWKS_REFETCH`].
    async fn keys(&self, refresh: bool) -> Result<Jwks, ProviderError> {
        if let Some(keys) = self.jwks.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let now = Instant::now();
            let mut forced = self.forced.lock().unwrap_or_else(|e| e.into_inner());
            if !refresh || forced.is_some_and(|at| now.duration_since(at) < JWKS_REFETCH) {
                return Ok(keys.clone());
            }
            *forced = Some(now);
        }
        let d = self.discovery().await?;
        let r = fetch::request("GET", &d.jwks_uri, &[("Accept", "application/json")], b"").await?;
        if r.status != 200 {
            return Err(ProviderError::Unavailable(format!("jwks_uri answered {}", r.status)));
        }
        let keys = Jwks::parse(&r.body).map_err(ProviderError::Unavailable)?;
        *self.jwks.lock().unwrap_or_else(|e| e.into_inner()) = Some(keys.clone());
        Ok(keys)
    }

    /// Verify a JWT from this provider (signature, iss, aud, exp, iat, and the nonce when
    /// given). Returns the subject and the claims.
    pub async fn verify(&self, token: &str, nonce: Option<&str>, now: u64) -> Result<SignedIn, ProviderError> {
        let jws = jwt::Jws::parse(token)?;
        let claims = match jws.verify(&self.keys(false).await?) {
            Err(JwtError::UnknownKey) => jws.verify(&self.keys(true).await?)?,
            other => other?,
        };
        let want = Expected { issuer: &self.config.issuer, client_id: &self.config.client_id, nonce, now };
        let sub = jwt::check_claims(&claims, &want)?;
        Ok(SignedIn { sub, claims })
    }

    /// Exchange an authorization code (with its PKCE verifier) and verify the ID token.
    pub async fn exchange(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        nonce: &str,
        now: u64,
    ) -> Result<SignedIn, ProviderError> {
        let d = self.discovery().await?;
        let c = &self.config;
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let basic;
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")];
        if c.client_secret.0.is_empty() {
            pairs.push(("client_id", &c.client_id));
        } else {
            // RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
            use base64::Engine;
            let raw = format!("{}:{}", fetch::form_value(&c.client_id), fetch::form_value(&c.client_secret.0));
            basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw));
            headers.push(("Authorization", &basic));
        }
        let r = fetch::request("POST", &d.token_endpoint, &headers, fetch::form(&pairs).as_bytes()).await?;
        let body: Map<String, Value> = serde_json::from_slice(&r.body).unwrap_or_default();
        if r.status != 200 {
            let error = body.get("error").and_then(Value::as_str).unwrap_or("no error code");
            return Err(if r.status >= 500 {
                ProviderError::Unavailable(format!("token endpoint answered {}", r.status))
            } else {
                ProviderError::Exchange(format!("{} {error}", r.status))
            });
        }
        let id_token = body.get("id_token").and_then(Value::as_str).ok_or(JwtError::Missing("id_token"))?;
        let mut signed_in = self.verify(id_token, Some(nonce), now).await?;
        let access = body.get("access_token").and_then(Value::as_str);
        if let (false, Some(url), Some(access)) =
            (signed_in.claims.contains_key(&c.claim_username), d.userinfo_endpoint.as_deref(), access)
        {
            self.complete_from_userinfo(&mut signed_in, url, access).await?;
        }
        Ok(signed_in)
    }

    /// Core §5.3: providers may keep profile claims out of the ID token and serve them at
    /// userinfo. Its `sub` must be the ID token's; the ID token's own claims win.
    async fn complete_from_userinfo(&self, s: &mut SignedIn, url: &str, access: &str) -> Result<(), ProviderError> {
        let auth = format!("Bearer {access}");
        let info: Map<String, Value> = {
            let r =
                fetch::request("GET", url, &[("Authorization", &auth), ("Accept", "application/json")], b"").await?;
            if r.status != 200 {
                return Err(ProviderError::Exchange(format!("userinfo answered {}", r.status)));
            }
            serde_json::from_slice(&r.body).map_err(|_| ProviderError::Exchange("userinfo is not JSON".into()))?
        };
        if info.get("sub").and_then(Value::as_str) != Some(s.sub.as_str()) {
            return Err(ProviderError::IdToken(JwtError::Missing("sub")));
        }
        for (k, v) in info {
            s.claims.entry(k).or_insert(v);
        }
        Ok(())
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, ProviderError> {
    let r = fetch::request("GET", url, &[("Accept", "application/json")], b"").await?;
    if r.status != 200 {
        return Err(ProviderError::Unavailable(format!("{url} answered {}", r.status)));
    }
    serde_json::from_slice(&r.body).map_err(|e| ProviderError::Unavailable(format!("{url}: {e}")))
}
