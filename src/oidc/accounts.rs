//! From a provider's verified claims to an amphi account.
//!
//! The account name comes from `claim_username` (lowercased, then normalised as an XMPP
//! localpart). Display name, mail and groups are written to `directory_users` like a
//! directory user's ([`DirectoryEntry`]), so the user exists for routing and rosters and
//! rooms bound to groups can read them; the latest sign-in's claims replace the record.
//!
//! **Binding.** The first single sign-on binds the name to the provider's (issuer id,
//! subject) in `sso_bindings`. A later sign-in under that name from another issuer, or
//! from the same issuer with another subject, is refused: a second provider (or a
//! re-assigned `preferred_username`) cannot take over an existing person's address. A name
//! that is an internal password account (`amphi user add`, registration) is refused too,
//! for the same reason, and so are the reserved `guest-` names. A directory (LDAP) user of
//! the same name is the same person in an organisation where both sign-ins are offered,
//! so it is not refused: the directory record and the provider's claims share one entry.

use serde_json::{Map, Value};

use crate::auth::DirectoryEntry;
use crate::config::OidcIssuer;
use crate::store::Store;

/// Who a name is bound to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Binding {
    pub issuer: String,
    pub sub: String,
}

/// Why claims give no account; each maps to an `sso_error` code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("the provider gave no usable account name in claim {0:?}")]
    Claims(String),
    #[error("the name {0:?} belongs to another identity")]
    Bound(String),
    #[error("the account store failed: {0}")]
    Store(String),
}

impl AccountError {
    /// The `sso_error` code of the contract.
    pub fn code(&self) -> &'static str {
        match self {
            AccountError::Claims(_) => "claims",
            AccountError::Bound(_) => "account",
            AccountError::Store(_) => "unavailable",
        }
    }
}

/// The account name the claims give, if any.
pub fn username(issuer: &OidcIssuer, claims: &Map<String, Value>) -> Result<String, AccountError> {
    let raw = claims.get(&issuer.claim_username).and_then(Value::as_str).unwrap_or("");
    crate::sasl::normalize_username(&raw.trim().to_lowercase())
        .ok_or_else(|| AccountError::Claims(issuer.claim_username.clone()))
}

/// What the claims say about the person, as a directory record.
pub fn entry(issuer: &OidcIssuer, sub: &str, claims: &Map<String, Value>) -> DirectoryEntry {
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(256).collect())
    };
    let groups = match claims.get(&issuer.claim_groups) {
        _ if issuer.claim_groups.is_empty() => Vec::new(),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(String::from).take(1000).collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    };
    DirectoryEntry {
        // Not a DN: where the entry came from, for people reading the store.
        dn: format!("oidc:{}:{sub}", issuer.id),
        mail: text(&issuer.claim_email),
        display_name: text(&issuer.claim_name),
        groups,
        ..Default::default()
    }
}

/// Bind (on the first sign-in) or check the binding of `user`, then record the entry
/// when one is given. Flushed before returning.
pub async fn sign_in(
    store: &Store,
    issuer_id: &str,
    sub: &str,
    user: &str,
    entry: Option<&DirectoryEntry>,
) -> Result<(), AccountError> {
    let db = |e: crate::store::StoreError| AccountError::Store(e.to_string());
    if crate::guests::Guests::is_guest(user) || store.accounts.contains(user.as_bytes()).map_err(db)? {
        return Err(AccountError::Bound(user.to_string()));
    }
    let binding = Binding { issuer: issuer_id.to_string(), sub: sub.to_string() };
    if !store.sso_bindings.insert_new(user.as_bytes(), &binding).map_err(db)? {
        let existing: Option<Binding> = store.sso_bindings.get(user.as_bytes()).map_err(db)?;
        if existing.as_ref() != Some(&binding) {
            return Err(AccountError::Bound(user.to_string()));
        }
    }
    let Some(entry) = entry else {
        return store.flush().await.map_err(db);
    };
    let mut entry = entry.clone();
    if let Some(previous) = crate::auth::directory_entry(store, user) {
        // A directory (LDAP) record of the same person keeps what only the directory knows.
        if !previous.dn.starts_with("oidc:") {
            entry.dn = previous.dn;
            entry.group_dns = previous.group_dns;
            entry.profile = previous.profile;
        }
    }
    store.directory_users.put(user.as_bytes(), &entry).map_err(db)?;
    store.flush().await.map_err(db)
}

/// The binding of `user`, if they ever signed in with a provider.
pub fn binding(store: &Store, user: &str) -> Option<Binding> {
    store.sso_bindings.get(user.as_bytes()).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn issuer() -> OidcIssuer {
        let c = crate::config::Config::parse(
            "t",
            "[server]\ndomain='localhost'\n[http]\nlisten=['127.0.0.1:0']\n[[oidc.issuers]]\nid='agents'\n\
             name='A'\nissuer='https://idp.example'\nclient_id='amphi'\n",
        )
        .unwrap();
        c.oidc.issuers[0].clone()
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn claims_map_to_a_localpart_and_an_entry() {
        let i = issuer();
        let c = claims(json!({"preferred_username": " Élodie.Martin ", "name": "Élodie Martin",
                              "email": "e@example.org", "groups": ["profs", 3, "staff"]}));
        assert_eq!(username(&i, &c).unwrap(), "élodie.martin");
        let e = entry(&i, "s1", &c);
        assert_eq!(e.display_name.as_deref(), Some("Élodie Martin"));
        assert_eq!(e.groups, ["profs", "staff"]);
        assert_eq!(e.dn, "oidc:agents:s1");
        for bad in [
            json!({}),
            json!({"preferred_username": ""}),
            json!({"preferred_username": "a@b"}),
            json!({"preferred_username": 7}),
        ] {
            assert_eq!(username(&i, &claims(bad)).unwrap_err().code(), "claims");
        }
    }

    #[tokio::test]
    async fn a_name_is_bound_to_its_first_identity() {
        let store = Store::temporary().unwrap();
        let e = DirectoryEntry { dn: "oidc:agents:s1".into(), groups: vec!["g".into()], ..Default::default() };
        sign_in(&store, "agents", "s1", "alice", Some(&e)).await.unwrap();
        assert!(crate::accounts::exists(&store, "alice"), "exists for routing");
        assert_eq!(crate::auth::directory_entry(&store, "alice").unwrap().groups, ["g"]);
        sign_in(&store, "agents", "s1", "alice", Some(&e)).await.unwrap();
        let other_issuer = sign_in(&store, "partners", "s1", "alice", Some(&e)).await.unwrap_err();
        assert_eq!(other_issuer.code(), "account");
        assert_eq!(sign_in(&store, "agents", "s2", "alice", Some(&e)).await.unwrap_err().code(), "account");
        crate::accounts::create(&store, "bot", "pw", 4096).await.unwrap();
        assert_eq!(sign_in(&store, "agents", "s3", "bot", Some(&e)).await.unwrap_err().code(), "account");
        assert_eq!(sign_in(&store, "agents", "s4", "guest-x", Some(&e)).await.unwrap_err().code(), "account");
        assert_eq!(binding(&store, "alice"), Some(Binding { issuer: "agents".into(), sub: "s1".into() }));
    }
}
