//! Where passwords are checked. Internal accounts keep SCRAM keys in the store; external
//! backends (an LDAP directory) check a SASL PLAIN password themselves. Backends are asked
//! in the order of `auth.backends`; the first that knows the user decides.
//!
//! A directory user has no password hash here, so SCRAM cannot work for them: XMPP clients
//! sign in with PLAIN over TLS, and the password goes to the directory in a bind and is
//! forgotten. On each successful sign-in the directory's attributes (mail, display name,
//! groups, profile) are written to the `directory_users` tree: that record makes the user
//! exist for routing (`accounts::exists`: offline messages, disco) and is what rooms read
//! for group-based access ([`directory_entry`]).

pub mod ldap;

use crate::config::{AuthBackend, Config};
use crate::guests::Guests;
use crate::server::Server;
use crate::store::Store;
use std::collections::BTreeMap;

/// The outcome of checking a password with the backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Use the internal SCRAM keys (an internal account, or a guest).
    Internal,
    /// A directory accepted the password; what it says about the user.
    Accept(Box<DirectoryEntry>),
    Reject,
    /// A backend could not answer (directory down); the text is for the logs.
    Unavailable(String),
}

/// What the directory said about a user at their last sign-in.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DirectoryEntry {
    /// The entry's distinguished name.
    pub dn: String,
    pub mail: Option<String>,
    pub display_name: Option<String>,
    /// Group names (a group's `group_name_attribute`, or the first RDN value of a `memberOf` DN).
    pub groups: Vec<String>,
    /// The groups' full DNs, for rooms bound to groups in one branch of the tree.
    pub group_dns: Vec<String>,
    /// Values of `ldap.profile_attributes`, by attribute name as configured.
    pub profile: BTreeMap<String, Vec<String>>,
    /// Written by the LDAP backend. Space-bound rooms ask the directory again for such a
    /// user at each join (this record may be stale); an entry another backend wrote (single
    /// sign-on claims) is what rooms go by until that user signs in again.
    #[serde(default)]
    pub from_ldap: bool,
}

/// A user's directory entry as a space-bound room needs it at join time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Current {
    /// Read from the directory just now.
    Fresh(DirectoryEntry),
    /// Recorded at the last sign-in: single sign-on users, and LDAP users when the
    /// directory cannot be searched without the user's password (direct bind only).
    Recorded(DirectoryEntry),
    /// No entry: an internal account, or an LDAP user the directory no longer has.
    None,
    /// The directory could not answer; the text is for the logs.
    Unavailable(String),
}

/// The entry rooms decide with (see [`Current`]). A user last signed in through LDAP is
/// looked up again, so a group change in the directory counts at the next join without a
/// restart or a new sign-in; the fresh answer also refreshes the record.
pub async fn current_entry(config: &Config, store: &Store, user: &str) -> Current {
    if Guests::is_guest(user) {
        return Current::None;
    }
    let recorded = directory_entry(store, user);
    let ldap_configured = config.auth.backends.contains(&AuthBackend::Ldap);
    match recorded {
        Some(entry) if entry.from_ldap && ldap_configured && ldap::can_look_up(&config.ldap) => {
            match ldap::look_up(&config.ldap, user).await {
                ldap::Outcome::Accepted(fresh) => {
                    record(store, user, &fresh).await;
                    Current::Fresh(fresh)
                }
                ldap::Outcome::Refused(why) => {
                    tracing::warn!(%user, "directory lookup for a room: {why}");
                    Current::None
                }
                ldap::Outcome::Unknown => Current::None,
                ldap::Outcome::Unavailable(why) => Current::Unavailable(why),
            }
        }
        Some(entry) => Current::Recorded(entry),
        None => Current::None,
    }
}

/// Whether any backend other than the internal accounts is configured.
pub fn has_external(server: &Server) -> bool {
    server.config.auth.backends.iter().any(|b| *b != AuthBackend::Internal)
}

/// Whether the stored SCRAM keys may be used for `user`: internal accounts are switched off
/// when `auth.backends` does not list "internal" (guests of invitation links always may).
pub fn internal_allowed(server: &Server, user: &str) -> bool {
    Guests::is_guest(user) || server.config.auth.backends.contains(&AuthBackend::Internal)
}

/// Check `password` for `user` with the configured backends.
pub async fn verify_plain(server: &Server, user: &str, password: &str) -> Verdict {
    verify(&server.config, &server.store, user, password).await
}

/// A whole password check for entry points other than SASL (the HTTP API's Basic auth):
/// the backends in order, the internal SCRAM keys included. `Err` when a backend could not
/// answer (say 503, not 401). Guests' one-time logins are for XMPP only: refused here.
pub async fn check_password(server: &Server, user: &str, password: &str) -> Result<bool, String> {
    check_password_with(&server.config, &server.store, user, password).await
}

async fn check_password_with(config: &Config, store: &Store, user: &str, password: &str) -> Result<bool, String> {
    if Guests::is_guest(user) {
        return Ok(false);
    }
    match verify(config, store, user, password).await {
        Verdict::Accept(_) => Ok(true),
        Verdict::Reject => Ok(false),
        Verdict::Unavailable(why) => Err(why),
        Verdict::Internal => {
            let account = store.accounts.get::<crate::store::Account>(user.as_bytes()).map_err(|e| e.to_string())?;
            let Some(account) = account else { return Ok(false) };
            let password = password.to_string();
            // PBKDF2 takes milliseconds of CPU: keep it off the async workers.
            let check = move || account.credentials.verify_password(&password);
            Ok(tokio::task::spawn_blocking(check).await.unwrap_or(false))
        }
    }
}

/// The backends in order. A directory that cannot be reached does not stop the search: a
/// later backend that knows the user still decides (internal bots keep working while the
/// directory is down); if none does, the answer is `Unavailable`, not `Reject`.
async fn verify(config: &Config, store: &Store, user: &str, password: &str) -> Verdict {
    if Guests::is_guest(user) {
        return Verdict::Internal;
    }
    let mut unavailable = None;
    for backend in &config.auth.backends {
        match backend {
            AuthBackend::Internal => {
                if store.accounts.contains(user.as_bytes()).unwrap_or(false) {
                    return Verdict::Internal;
                }
            }
            AuthBackend::Ldap => match ldap::authenticate(&config.ldap, user, password).await {
                ldap::Outcome::Accepted(entry) => {
                    record(store, user, &entry).await;
                    return Verdict::Accept(Box::new(entry));
                }
                ldap::Outcome::Refused(why) => {
                    tracing::info!(%user, "directory refused the sign-in: {why}");
                    return Verdict::Reject;
                }
                ldap::Outcome::Unknown => {}
                ldap::Outcome::Unavailable(why) => {
                    unavailable.get_or_insert(why);
                }
            },
        }
    }
    match unavailable {
        Some(why) => Verdict::Unavailable(why),
        None => Verdict::Reject,
    }
}

/// Remember the directory's answer; written (and flushed) only when it changed, so a
/// sign-in costs no disk write in the usual case.
async fn record(store: &Store, user: &str, entry: &DirectoryEntry) {
    let key = user.as_bytes();
    if store.directory_users.get::<DirectoryEntry>(key).ok().flatten().as_ref() == Some(entry) {
        return;
    }
    let written = match store.directory_users.put(key, entry) {
        Ok(()) => store.flush().await,
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        // The sign-in itself is fine; only routing to this user while offline may suffer.
        tracing::error!(%user, "recording the directory user: {e}");
    }
}

/// The directory's attributes for `user` as of their last sign-in, if they are a directory user.
pub fn directory_entry(store: &Store, user: &str) -> Option<DirectoryEntry> {
    store.directory_users.get(user.as_bytes()).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory nobody listens on: every LDAP question is "unavailable", quickly.
    fn config(backends: &str) -> Config {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Config::parse(
            "t",
            &format!(
                "[server]\ndomain='localhost'\n[auth]\nregistration=false\nbackends={backends}\n\
                 [ldap]\nurl='ldap://127.0.0.1:{port}'\nbind_dn_template='uid={{user}},dc=x'\n\
                 connect_timeout='500ms'\ntimeout='500ms'\n"
            ),
        )
        .unwrap()
    }

    async fn store_with(user: &str) -> Store {
        let store = Store::temporary().unwrap();
        crate::accounts::create(&store, user, "secret", 4096).await.unwrap();
        store
    }

    fn config_error(extra: &str) -> String {
        let text = format!("[server]\ndomain='localhost'\n{extra}");
        Config::parse("t", &text).map(|_| String::new()).unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn shipped_config_and_example_are_valid() {
        let shipped = Config::load(None).unwrap();
        assert_eq!(shipped.auth.backends, [AuthBackend::Internal], "ldap is off by default");
        let example = include_str!("../../examples/ldap.toml").replace("/etc/amphi/ldap-ca.pem", "Cargo.toml");
        let c = Config::parse("examples/ldap.toml", &example).unwrap();
        assert_eq!(c.auth.backends, [AuthBackend::Internal, AuthBackend::Ldap]);
        assert_eq!(c.ldap.group_attribute, "memberOf");
        assert!(!format!("{:?}", c.ldap).contains("secret"), "Debug hides the service password");
    }

    #[test]
    fn ldap_settings_are_checked_and_errors_name_the_key() {
        let ldap = "[auth]\nregistration=false\nbackends=['internal','ldap']\n[ldap]\n";
        let cases = [
            ("[auth]\nbackends=[]\n", "auth.backends"),
            ("[auth]\nbackends=['internal','internal']\n", "auth.backends"),
            ("[auth]\nregistration=true\nbackends=['ldap']\n", "auth.registration"),
            ("[auth]\nbackends=['kerberos']\n", "unknown variant"),
            ("url='ldap://h'\n", "ldap.bind_dn_template"),
            ("url='http://h'\nsearch_base='dc=x'\n", "ldap.url"),
            ("url='ldaps://h'\nstarttls=true\nsearch_base='dc=x'\n", "ldap.starttls"),
            ("url='ldap://h'\nsearch_base='dc=x'\nbind_dn_template='uid={user}'\n", "ldap.bind_dn_template"),
            ("url='ldap://h'\nbind_dn_template='uid=fixed'\n", "ldap.bind_dn_template"),
            ("url='ldap://h'\nsearch_base='dc=x'\nsearch_filter='(uid=x)'\n", "ldap.search_filter"),
            ("url='ldap://h'\nsearch_base='dc=x'\nsearch_filter='uid={user}'\n", "ldap.search_filter"),
            ("url='ldap://h'\nsearch_base='dc=x'\nca_file='/nonexistent/ca.pem'\n", "ldap.ca_file"),
            ("url='ldap://h'\nsearch_base='dc=x'\nbind_password='p'\n", "ldap.bind_dn"),
            ("url='ldap://h'\nsearch_base='dc=x'\ntimeout='1ms'\n", "ldap.timeout"),
            ("url='ldap://h'\nsearch_base='dc=x'\nsearch_scope='deep'\n", "unknown variant"),
        ];
        for (extra, key) in cases {
            let text = if extra.starts_with("[auth]") { extra.to_string() } else { format!("{ldap}{extra}") };
            let err = config_error(&text);
            assert!(err.contains(key), "{extra:?} should fail naming {key}, got {err:?}");
        }
        assert_eq!(config_error(&format!("{ldap}url='ldap://h'\nsearch_base='dc=x'\n")), "");
        // Without "ldap" in auth.backends, the [ldap] table is not checked.
        assert_eq!(config_error("[ldap]\nurl='nonsense'\n"), "");
    }

    #[tokio::test]
    async fn internal_first_decides_without_asking_the_directory() {
        let store = store_with("bot").await;
        let c = config("['internal', 'ldap']");
        assert_eq!(verify(&c, &store, "bot", "secret").await, Verdict::Internal);
        assert!(matches!(verify(&c, &store, "agent", "pw").await, Verdict::Unavailable(_)));
    }

    #[tokio::test]
    async fn directory_down_does_not_lock_out_later_internal_accounts() {
        let store = store_with("bot").await;
        let c = config("['ldap', 'internal']");
        let started = std::time::Instant::now();
        assert_eq!(verify(&c, &store, "bot", "secret").await, Verdict::Internal);
        assert!(matches!(verify(&c, &store, "agent", "pw").await, Verdict::Unavailable(_)));
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "a refused connection is quick");
    }

    #[tokio::test]
    async fn check_password_covers_internal_accounts_and_reports_an_unreachable_directory() {
        let store = store_with("bot").await;
        let c = config("['internal', 'ldap']");
        assert_eq!(check_password_with(&c, &store, "bot", "secret").await, Ok(true));
        assert_eq!(check_password_with(&c, &store, "bot", "wrong").await, Ok(false));
        assert!(check_password_with(&c, &store, "agent", "pw").await.is_err());
        let internal_only = config("['internal']");
        assert_eq!(check_password_with(&internal_only, &store, "agent", "pw").await, Ok(false));
    }

    #[tokio::test]
    async fn empty_password_is_refused_before_any_bind() {
        let store = Store::temporary().unwrap();
        // Unavailable would mean a connection was attempted.
        assert_eq!(verify(&config("['ldap']"), &store, "agent", "").await, Verdict::Reject);
    }

    #[tokio::test]
    async fn current_entry_asks_the_directory_only_for_ldap_users_it_can_search() {
        let store = Store::temporary().unwrap();
        let ldap_user = DirectoryEntry { dn: "uid=a,dc=x".into(), from_ldap: true, ..Default::default() };
        let sso_user = DirectoryEntry { groups: vec!["g".into()], ..Default::default() };
        record(&store, "a", &ldap_user).await;
        record(&store, "s", &sso_user).await;
        // Direct bind without a service account: the entry recorded at the last sign-in.
        let direct = config("['internal', 'ldap']");
        assert_eq!(current_entry(&direct, &store, "a").await, Current::Recorded(ldap_user.clone()));
        assert_eq!(current_entry(&direct, &store, "s").await, Current::Recorded(sso_user.clone()));
        assert_eq!(current_entry(&direct, &store, "nobody").await, Current::None);
        assert_eq!(current_entry(&direct, &store, "guest-x").await, Current::None);
        // With a service account the directory is asked, here a dead one: unavailable,
        // quickly, and never the stale record. Single sign-on users are not affected.
        let mut search = direct.clone();
        search.ldap.bind_dn_template.clear();
        search.ldap.search_base = "dc=x".into();
        let started = std::time::Instant::now();
        assert!(matches!(current_entry(&search, &store, "a").await, Current::Unavailable(_)));
        assert!(started.elapsed() < ldap::budget(&search.ldap));
        assert_eq!(current_entry(&search, &store, "s").await, Current::Recorded(sso_user));
    }

    #[tokio::test]
    async fn directory_users_exist_for_routing_and_are_removed_with_the_account() {
        let store = Store::temporary().unwrap();
        assert!(!crate::accounts::exists(&store, "agent"));
        let entry =
            DirectoryEntry { dn: "uid=agent,dc=x".into(), groups: vec!["support".into()], ..Default::default() };
        record(&store, "agent", &entry).await;
        assert!(crate::accounts::exists(&store, "agent"));
        assert_eq!(directory_entry(&store, "agent"), Some(entry));
        assert!(store.remove_account("agent").unwrap());
        assert!(!crate::accounts::exists(&store, "agent"));
    }
}
