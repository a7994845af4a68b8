//! amphi's own sign-in tokens, given to the browser after a provider's sign-in and
//! presented back with SASL OAUTHBEARER (XMPP) or `Authorization: Bearer` (the API).
//!
//! A token is 32 random bytes, base64url. Only its SHA-256 is stored (tree `sso_tokens`),
//! so a copy of the database signs nobody in. A token is bound to one account and one
//! issuer, expires after `oidc.token_lifetime`, and is revoked by signing out. Expired
//! entries are purged when new tokens are issued (at most once a minute).

use aws_lc_rs::digest;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::{Result, Store};

/// What the store keeps of a token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenRecord {
    /// The account (localpart).
    pub user: String,
    /// The `[[oidc.issuers]]` id the user signed in with.
    pub issuer: String,
    /// Seconds since the Unix epoch.
    pub expires: u64,
}

fn key(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes()).as_ref().to_vec()
}

/// Make a token for `user` valid `lifetime` seconds from `now`. Flushed before returning:
/// the browser must be able to use it at once, even after a crash.
pub async fn issue(store: &Store, user: &str, issuer: &str, now: u64, lifetime: u64) -> Result<String> {
    static LAST_PURGE: AtomicU64 = AtomicU64::new(0);
    if now.saturating_sub(LAST_PURGE.swap(now, Ordering::Relaxed)) >= 60 {
        purge_expired(store, now)?;
    }
    let token = super::flow::random_token();
    let record = TokenRecord { user: user.to_string(), issuer: issuer.to_string(), expires: now + lifetime };
    store.sso_tokens.put(&key(&token), &record)?;
    store.flush().await?;
    Ok(token)
}

/// The account a token signs in, if it is known and not expired.
pub fn lookup(store: &Store, token: &str, now: u64) -> Result<Option<TokenRecord>> {
    if token.is_empty() || token.len() > 256 {
        return Ok(None);
    }
    Ok(store.sso_tokens.get::<TokenRecord>(&key(token))?.filter(|r| now < r.expires))
}

/// Revoke a token; false when it was not known (or already expired and purged).
pub async fn revoke(store: &Store, token: &str) -> Result<bool> {
    let removed = store.sso_tokens.remove(&key(token))?;
    if removed {
        store.flush().await?;
    }
    Ok(removed)
}

/// Revoke every token of `user` (the account is being removed). Not flushed: the caller
/// flushes its whole removal.
pub fn revoke_all(store: &Store, user: &str) -> Result<usize> {
    let keys: Vec<Vec<u8>> = store
        .sso_tokens
        .scan::<TokenRecord>(b"")?
        .into_iter()
        .filter(|(_, r)| r.user == user)
        .map(|(k, _)| k)
        .collect();
    store.sso_tokens.remove_many(&keys)?;
    Ok(keys.len())
}

/// Delete expired tokens; returns how many.
pub fn purge_expired(store: &Store, now: u64) -> Result<usize> {
    let keys: Vec<Vec<u8>> = store
        .sso_tokens
        .scan::<TokenRecord>(b"")?
        .into_iter()
        .filter(|(_, r)| now >= r.expires)
        .map(|(k, _)| k)
        .collect();
    store.sso_tokens.remove_many(&keys)?;
    Ok(keys.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_are_stored_hashed_expire_and_revoke() {
        let store = Store::temporary().unwrap();
        let now = 1_000_000;
        let t = issue(&store, "alice", "agents", now, 3600).await.unwrap();
        assert_eq!(t.len(), 43);
        let rec = lookup(&store, &t, now + 10).unwrap().unwrap();
        assert_eq!((rec.user.as_str(), rec.issuer.as_str(), rec.expires), ("alice", "agents", now + 3600));
        assert!(!store.sso_tokens.contains(t.as_bytes()).unwrap(), "the token itself is not a key");
        assert!(store.sso_tokens.keys().unwrap().iter().all(|k| k.len() == 32));
        assert_eq!(lookup(&store, &t, now + 3600).unwrap(), None, "expired");
        assert_eq!(lookup(&store, "forged", now).unwrap(), None);
        assert!(revoke(&store, &t).await.unwrap());
        assert_eq!(lookup(&store, &t, now).unwrap(), None, "revoked");
        assert!(!revoke(&store, &t).await.unwrap());
    }

    #[tokio::test]
    async fn expired_tokens_are_purged_and_removal_revokes_all() {
        let store = Store::temporary().unwrap();
        let old = issue(&store, "bob", "agents", 100, 60).await.unwrap();
        let fresh = issue(&store, "bob", "agents", 150, 3600).await.unwrap();
        issue(&store, "carol", "agents", 150, 3600).await.unwrap();
        assert_eq!(purge_expired(&store, 200).unwrap(), 1);
        assert_eq!(lookup(&store, &old, 100).unwrap(), None);
        assert_eq!(revoke_all(&store, "bob").unwrap(), 1);
        assert_eq!(lookup(&store, &fresh, 200).unwrap(), None);
        assert_eq!(store.sso_tokens.keys().unwrap().len(), 1, "carol's stays");
    }
}
