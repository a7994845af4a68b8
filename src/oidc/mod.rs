//! OpenID Connect single sign-on (issue 7): the authorization code flow with PKCE, state
//! and nonce against the providers of `[[oidc.issuers]]`, then amphi's own short-lived
//! tokens for XMPP (SASL OAUTHBEARER, RFC 7628) and the HTTP API.
//!
//! - [`flow`]: sign-ins in progress (state, nonce, PKCE verifier), sans-IO.
//! - [`jwk`], [`jwt`]: ID token verification (RS256/PS256/ES256 with aws-lc-rs), sans-IO.
//! - [`fetch`]: the small HTTP/1.1 client for discovery, keys and the token endpoint.
//! - [`provider`]: one provider, its cached discovery and keys, the code exchange.
//! - [`accounts`]: claims → account name and directory record; the (issuer, sub) binding.
//! - [`tokens`]: amphi tokens, stored as SHA-256 in sled.
//!
//! [`Sso`] ties them together for the HTTP routes (`http/sso.rs`); the XMPP side only needs
//! [`tokens::lookup`].

pub mod accounts;
pub mod fetch;
pub mod flow;
pub mod jwk;
pub mod jwt;
pub mod provider;
pub mod tokens;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::Config;
use crate::stanza::now_secs;
use crate::store::Store;
use flow::PendingLogins;
use provider::{Provider, ProviderError};

/// A finished sign-in: the token for the browser and the account's bare JID.
#[derive(Debug)]
pub struct Session {
    pub token: String,
    pub jid: String,
}

/// What the provider sent back to `/sso/callback`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    /// RFC 9207: the issuer that answered, when the provider says it.
    pub iss: Option<String>,
}

/// Single sign-on for the web server.
pub struct Sso {
    providers: Vec<Arc<Provider>>,
    /// A `std` mutex: held only to add or take one entry, never across `.await`.
    pending: Mutex<PendingLogins>,
    /// Base URL of the web server as browsers see it, without a trailing slash.
    pub public_url: String,
    token_lifetime: u64,
    domain: String,
}

impl Sso {
    /// `public_url` is `oidc.public_url`, or the one derived from the bound listeners.
    pub fn new(config: &Config, public_url: String) -> Sso {
        Sso {
            providers: config.oidc.issuers.iter().map(|i| Arc::new(Provider::new(i.clone()))).collect(),
            pending: Mutex::new(PendingLogins::default()),
            public_url: public_url.trim_end_matches('/').to_string(),
            token_lifetime: config.oidc.token_lifetime.as_secs(),
            domain: config.server.domain.clone(),
        }
    }

    /// Fetch each provider's discovery document once at start, so a wrong issuer URL or
    /// an unreachable provider shows in the log now rather than at someone's sign-in.
    pub async fn check_providers(&self) {
        for p in &self.providers {
            match p.discovery().await {
                Ok(_) => tracing::info!(issuer = %p.config.id, url = %p.config.issuer, "OpenID provider ready"),
                Err(e) => tracing::warn!(
                    issuer = %p.config.id,
                    "OpenID provider {} not usable yet (sign-ins will retry): {e}",
                    p.config.issuer
                ),
            }
        }
    }

    /// (id, name) of each provider, in the configured order.
    pub fn issuers(&self) -> Vec<(&str, &str)> {
        self.providers.iter().map(|p| (p.config.id.as_str(), p.config.name.as_str())).collect()
    }

    fn provider(&self, id: &str) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| p.config.id == id)
    }

    pub fn redirect_uri(&self) -> String {
        format!("{}/sso/callback", self.public_url)
    }

    /// The provider's authorization URL for a new sign-in by the browser holding the
    /// `browser` cookie value. `Ok(None)`: no such provider.
    pub async fn start(&self, id: &str, browser: &str) -> Result<Option<String>, ProviderError> {
        let Some(provider) = self.provider(id) else { return Ok(None) };
        let d = provider.discovery().await?;
        let begun = self.pending.lock().unwrap_or_else(|e| e.into_inner()).begin(id, browser, Instant::now());
        let (state, pending) =
            begun.ok_or_else(|| ProviderError::Unavailable("too many sign-ins in progress".into()))?;
        let c = &provider.config;
        let query = fetch::form(&[
            ("response_type", "code"),
            ("client_id", &c.client_id),
            ("redirect_uri", &self.redirect_uri()),
            ("scope", &c.scopes.join(" ")),
            ("state", &state),
            ("nonce", &pending.nonce),
            ("code_challenge", &flow::pkce_challenge(&pending.verifier)),
            ("code_challenge_method", "S256"),
        ]);
        let sep = if d.authorization_endpoint.contains('?') { '&' } else { '?' };
        Ok(Some(format!("{}{sep}{query}", d.authorization_endpoint)))
    }

    /// Finish a sign-in. `Err` is the contract's `sso_error` code.
    pub async fn callback(&self, store: &Store, cb: &Callback, browser: Option<&str>) -> Result<Session, &'static str> {
        let state = cb.state.as_deref().ok_or("state")?;
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner()).take(state, browser, Instant::now());
        let pending = pending.map_err(|e| {
            tracing::info!("single sign-on callback refused: state {e:?}");
            "state"
        })?;
        let provider = self.provider(&pending.issuer_id).ok_or("state")?;
        let issuer = &provider.config;
        if let Some(error) = &cb.error {
            tracing::info!(issuer = %issuer.id, "the provider refused the sign-in: {error:.100}");
            return Err("provider");
        }
        if cb.iss.as_ref().is_some_and(|iss| *iss != issuer.issuer) {
            tracing::warn!(issuer = %issuer.id, "callback from another issuer (mix-up attempt?)");
            return Err("provider");
        }
        let code = cb.code.as_deref().filter(|c| !c.is_empty() && c.len() <= 4096).ok_or("provider")?;
        let signed_in = provider
            .exchange(code, &pending.verifier, &self.redirect_uri(), &pending.nonce, now_secs())
            .await
            .map_err(|e| {
                tracing::warn!(issuer = %issuer.id, "single sign-on failed: {e}");
                e.code()
            })?;
        let user = self.account(store, provider, &signed_in, true).await?;
        let token = tokens::issue(store, &user, &issuer.id, now_secs(), self.token_lifetime).await.map_err(|e| {
            tracing::error!("storing a sign-in token: {e}");
            "unavailable"
        })?;
        tracing::info!(%user, issuer = %issuer.id, "signed in with single sign-on");
        Ok(Session { token, jid: format!("{user}@{}", self.domain) })
    }

    /// Map verified claims to the account, checking (and on first use making) its binding.
    /// `record`: write the claims as the user's directory record (sign-ins do; API bearer
    /// tokens, which may carry fewer claims, only fill an absent record).
    async fn account(
        &self,
        store: &Store,
        provider: &Provider,
        s: &provider::SignedIn,
        record: bool,
    ) -> Result<String, &'static str> {
        let issuer = &provider.config;
        let refused = |e: accounts::AccountError| {
            tracing::warn!(issuer = %issuer.id, "single sign-on refused: {e}");
            e.code()
        };
        let user = accounts::username(issuer, &s.claims).map_err(refused)?;
        let entry = accounts::entry(issuer, &s.sub, &s.claims);
        let record = record || crate::auth::directory_entry(store, &user).is_none();
        accounts::sign_in(store, &issuer.id, &s.sub, &user, record.then_some(&entry)).await.map_err(refused)?;
        Ok(user)
    }

    /// The account behind an API bearer token: an amphi token, or a JWT (ID token or JWT
    /// access token) from a configured provider, verified like an ID token without nonce.
    pub async fn bearer(&self, store: &Store, token: &str) -> Option<String> {
        if token.matches('.').count() != 2 {
            return tokens::lookup(store, token, now_secs()).ok().flatten().map(|r| r.user);
        }
        let iss = jwt::unverified_issuer(token)?;
        let provider = self.providers.iter().find(|p| p.config.issuer == iss)?;
        match provider.verify(token, None, now_secs()).await {
            Ok(s) => self.account(store, provider, &s, false).await.ok(),
            Err(e) => {
                tracing::info!(issuer = %provider.config.id, "API bearer token refused: {e}");
                None
            }
        }
    }
}

/// The web server's base URL for redirects: `oidc.public_url`, else the first plain
/// listener (`http://<domain>:<port>`), else the first TLS one.
pub fn public_url(config: &Config, plain: &[std::net::SocketAddr], tls: &[std::net::SocketAddr]) -> String {
    let set = config.oidc.public_url.trim_end_matches('/');
    if !set.is_empty() {
        return set.to_string();
    }
    let domain = &config.server.domain;
    match (plain.first(), tls.first()) {
        (Some(a), _) => format!("http://{domain}:{}", a.port()),
        (None, Some(a)) => format!("https://{domain}:{}", a.port()),
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_is_configured_or_derived_from_the_first_listener() {
        let c = Config::parse("t", "[server]\ndomain='localhost'\n").unwrap();
        let (plain, tls) = (["127.0.0.1:5280".parse().unwrap()], ["127.0.0.1:5281".parse().unwrap()]);
        assert_eq!(public_url(&c, &plain, &tls), "http://localhost:5280");
        assert_eq!(public_url(&c, &[], &tls), "https://localhost:5281");
        let c = Config::parse("t", "[server]\ndomain='localhost'\n[oidc]\npublic_url='https://chat.example.org/'\n")
            .unwrap();
        assert_eq!(public_url(&c, &plain, &tls), "https://chat.example.org");
        let sso = Sso::new(&c, public_url(&c, &plain, &tls));
        assert_eq!(sso.redirect_uri(), "https://chat.example.org/sso/callback");
        assert!(sso.issuers().is_empty());
    }
}
