//! The LDAP directory backend: a SASL PLAIN password is checked by binding as the user.
//!
//! Each sign-in opens its own connection (connect, StartTLS if asked, binds, searches,
//! unbind): sign-ins are rare next to messages, a fresh connection never carries another
//! user's bind state, and a directory that restarts needs no reconnect logic. At most
//! [`MAX_CONNECTIONS`] are open at once, so a burst of sign-ins (every client reconnecting
//! after a restart) queues here instead of flooding the directory. Every step has a timeout
//! and the whole exchange (queueing included) a budget, so a directory that is down or hangs
//! yields `Unavailable` (SASL temporary-auth-failure) within seconds, never a stuck sign-in.
//!
//! Values put into DNs are escaped per RFC 4514 and values put into filters per RFC 4515,
//! so a sign-in name such as `*)(uid=*` matches nothing. An empty password is refused
//! before any bind: an LDAP simple bind with an empty password is an anonymous bind, which
//! "succeeds" on many directories. The password is only handed to the bind request.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, SearchOptions};
use tokio_rustls::rustls;

use super::DirectoryEntry;
use crate::config::{LdapConfig, LdapScope};

/// What the directory says about a sign-in.
#[derive(Debug)]
pub enum Outcome {
    Accepted(DirectoryEntry),
    /// The directory knows the user and refuses (wrong password, ambiguous or odd entry).
    Refused(&'static str),
    /// No such user here. With a DN template a failed bind also lands here: a wrong
    /// password and a missing entry look alike, and a later backend may know the name.
    Unknown,
    /// The directory could not answer; the text says why, for the log.
    Unavailable(String),
}

/// LDAP result codes (RFC 4511 Appendix A) that mean "this bind is refused", as opposed to
/// "the directory has a problem": inappropriateAuthentication, invalidCredentials,
/// insufficientAccessRights, unwillingToPerform (e.g. a locked account).
const BIND_REFUSED: [u32; 4] = [48, 49, 50, 53];
const SIZE_LIMIT_EXCEEDED: u32 = 4;
const NO_SUCH_OBJECT: u32 = 32;
const INSUFFICIENT_ACCESS_RIGHTS: u32 = 50;

type Fault = String;

/// Directory connections open at once, for all sign-ins of this process.
pub const MAX_CONNECTIONS: usize = 32;
static CONNECTIONS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_CONNECTIONS);

/// Check `password` for `user` (an already normalised JID localpart).
pub async fn authenticate(cfg: &LdapConfig, user: &str, password: &str) -> Outcome {
    if password.is_empty() {
        return Outcome::Refused("empty password (an anonymous bind proves nothing)");
    }
    let budget = budget(cfg);
    match tokio::time::timeout(budget, run(cfg, user, password)).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(fault)) => Outcome::Unavailable(fault),
        Err(_) => Outcome::Unavailable(format!("{} did not finish a sign-in within {budget:?}", cfg.url)),
    }
}

async fn run(cfg: &LdapConfig, user: &str, password: &str) -> Result<Outcome, Fault> {
    // The semaphore is never closed; the error arm only satisfies the type.
    let _slot = CONNECTIONS.acquire().await.map_err(|e| e.to_string())?;
    let mut ldap = connect(cfg).await?;
    let outcome = sign_in(&mut ldap, cfg, user, password).await;
    // Best effort: the connection closes when the handle is dropped anyway.
    let _ = tokio::time::timeout(cfg.timeout, ldap.unbind()).await;
    outcome
}

/// Whether [`look_up`] can read a user's entry without their password: a search (with the
/// service account, or anonymous), or a direct-bind setup that also has a service account
/// to read the templated DN with. A direct-bind-only setup can read an entry only while
/// bound as its user, i.e. at sign-in.
pub fn can_look_up(cfg: &LdapConfig) -> bool {
    !cfg.search_base.is_empty() || !cfg.bind_dn.is_empty()
}

/// What the directory says about `user` now, without their password: the same entry,
/// attributes and groups a sign-in would record. Space-bound rooms ask this at each join,
/// so a change in the directory counts at once. `Accepted` means "found"; `Refused` an
/// ambiguous entry; same budget, connection limit and timeouts as a sign-in.
pub async fn look_up(cfg: &LdapConfig, user: &str) -> Outcome {
    if !can_look_up(cfg) {
        return Outcome::Unavailable("ldap: no service account or search_base to look users up with".into());
    }
    let budget = budget(cfg);
    let run = async {
        let _slot = CONNECTIONS.acquire().await.map_err(|e| e.to_string())?;
        let mut ldap = connect(cfg).await?;
        let outcome = find(&mut ldap, cfg, user).await;
        let _ = tokio::time::timeout(cfg.timeout, ldap.unbind()).await;
        outcome
    };
    match tokio::time::timeout(budget, run).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(fault)) => Outcome::Unavailable(fault),
        Err(_) => Outcome::Unavailable(format!("{} did not answer a lookup within {budget:?}", cfg.url)),
    }
}

/// The lookup itself, bound as the service account (or anonymous for a search).
async fn find(ldap: &mut Ldap, cfg: &LdapConfig, user: &str) -> Result<Outcome, Fault> {
    let attrs = wanted_attributes(cfg);
    service_bind(ldap, cfg).await?;
    let mut found = if !cfg.bind_dn_template.is_empty() {
        let dn = expand(&cfg.bind_dn_template, &[("user", user)], escape_dn_value);
        search(ldap, cfg, &dn, Scope::Base, "(objectClass=*)", &attrs, 1).await?
    } else {
        let filter = expand(&cfg.search_filter, &[("user", user)], escape_filter_value);
        search(ldap, cfg, &cfg.search_base, scope(cfg), &filter, &attrs, 2).await?
    };
    if found.len() > 1 {
        return Ok(Outcome::Refused("several directory entries match"));
    }
    match found.pop() {
        Some(entry) => describe(ldap, cfg, user, entry).await,
        None => Ok(Outcome::Unknown),
    }
}

fn scope(cfg: &LdapConfig) -> Scope {
    match cfg.search_scope {
        LdapScope::Base => Scope::Base,
        LdapScope::One => Scope::OneLevel,
        LdapScope::Sub => Scope::Subtree,
    }
}

async fn connect(cfg: &LdapConfig) -> Result<Ldap, Fault> {
    let mut settings = LdapConnSettings::new().set_conn_timeout(cfg.connect_timeout).set_starttls(cfg.starttls);
    if let Some(ca) = &cfg.ca_file {
        settings = settings.set_config(tls_config(ca).await?);
    }
    let how = if cfg.starttls { " with StartTLS" } else { "" };
    let connecting = LdapConnAsync::with_settings(settings, &cfg.url);
    let (conn, ldap) = match tokio::time::timeout(cfg.connect_timeout * 2, connecting).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return Err(format!("cannot connect to {}{how}: {e}", cfg.url)),
        Err(_) => {
            return Err(format!("cannot connect to {}{how}: no answer within {:?}", cfg.url, cfg.connect_timeout))
        }
    };
    tokio::spawn(async move {
        if let Err(e) = conn.drive().await {
            tracing::debug!("LDAP connection ended: {e}");
        }
    });
    Ok(ldap)
}

/// rustls (aws-lc-rs) trusting only the CAs in `ca_file`.
async fn tls_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, Fault> {
    let pem = tokio::fs::read(ca_file).await.map_err(|e| format!("ldap.ca_file {}: {e}", ca_file.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| format!("ldap.ca_file {}: {e}", ca_file.display()))?;
        roots.add(cert).map_err(|e| format!("ldap.ca_file {}: {e}", ca_file.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("ldap.ca_file {} holds no PEM certificate", ca_file.display()));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS settings: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn sign_in(ldap: &mut Ldap, cfg: &LdapConfig, user: &str, password: &str) -> Result<Outcome, Fault> {
    let attrs = wanted_attributes(cfg);
    let entry = if !cfg.bind_dn_template.is_empty() {
        let dn = expand(&cfg.bind_dn_template, &[("user", user)], escape_dn_value);
        if !bind(ldap, cfg, &dn, password).await? {
            return Ok(Outcome::Unknown);
        }
        // Read our own entry as the user; a directory that hides it still signs them in.
        let found = search(ldap, cfg, &dn, Scope::Base, "(objectClass=*)", &attrs, 1).await?;
        found.into_iter().next().unwrap_or(SearchEntry { dn, attrs: Default::default(), bin_attrs: Default::default() })
    } else {
        service_bind(ldap, cfg).await?;
        let filter = expand(&cfg.search_filter, &[("user", user)], escape_filter_value);
        let mut found = search(ldap, cfg, &cfg.search_base, scope(cfg), &filter, &attrs, 2).await?;
        if found.len() > 1 {
            tracing::warn!(%user, %filter, "ldap.search_filter matches more than one entry: refusing the sign-in");
            return Ok(Outcome::Refused("several directory entries match"));
        }
        let Some(entry) = found.pop() else { return Ok(Outcome::Unknown) };
        if !bind(ldap, cfg, &entry.dn, password).await? {
            return Ok(Outcome::Refused("wrong password"));
        }
        entry
    };
    describe(ldap, cfg, user, entry).await
}

/// The directory's answer about a user whose entry was found: the identifier check, the
/// attributes kept, and the groups (`memberOf` and/or a group search).
async fn describe(ldap: &mut Ldap, cfg: &LdapConfig, user: &str, entry: SearchEntry) -> Result<Outcome, Fault> {
    let identifiers = values(&entry, &cfg.identifier_attribute);
    if !identifiers.is_empty()
        && !identifiers.iter().any(|v| crate::sasl::normalize_username(v).as_deref() == Some(user))
    {
        let attribute = &cfg.identifier_attribute;
        tracing::warn!(%user, dn = %entry.dn, "the entry's {attribute} is not the sign-in name: refusing");
        return Ok(Outcome::Refused("the entry's identifier differs from the sign-in name"));
    }
    let mut result = DirectoryEntry {
        dn: entry.dn.clone(),
        from_ldap: true,
        mail: values(&entry, &cfg.mail_attribute).into_iter().next(),
        display_name: values(&entry, &cfg.display_name_attribute).into_iter().next(),
        profile: cfg.profile_attributes.iter().map(|a| (a.clone(), values(&entry, a))).collect::<BTreeMap<_, _>>(),
        ..Default::default()
    };
    if !cfg.group_attribute.is_empty() {
        for dn in values(&entry, &cfg.group_attribute) {
            result.groups.push(first_rdn_value(&dn).unwrap_or_else(|| dn.clone()));
            result.group_dns.push(dn);
        }
    }
    if !cfg.group_search_base.is_empty() {
        if !cfg.bind_dn.is_empty() {
            service_bind(ldap, cfg).await?;
        }
        let filter = expand(&cfg.group_search_filter, &[("user", user), ("dn", &entry.dn)], escape_filter_value);
        let names = [cfg.group_name_attribute.as_str()];
        for group in search(ldap, cfg, &cfg.group_search_base, Scope::Subtree, &filter, &names, 1000).await? {
            let name = values(&group, &cfg.group_name_attribute).into_iter().next();
            if let Some(name) = name.or_else(|| first_rdn_value(&group.dn)) {
                if !result.groups.contains(&name) {
                    result.groups.push(name);
                }
            }
            if !result.group_dns.contains(&group.dn) {
                result.group_dns.push(group.dn);
            }
        }
    }
    Ok(Outcome::Accepted(result))
}

fn wanted_attributes(cfg: &LdapConfig) -> Vec<&str> {
    let mut attrs =
        vec![cfg.identifier_attribute.as_str(), cfg.mail_attribute.as_str(), cfg.display_name_attribute.as_str()];
    attrs.push(cfg.group_attribute.as_str());
    attrs.extend(cfg.profile_attributes.iter().map(String::as_str));
    attrs.retain(|a| !a.is_empty());
    attrs
}

/// A simple bind: `Ok(false)` when the directory refuses these credentials.
async fn bind(ldap: &mut Ldap, cfg: &LdapConfig, dn: &str, password: &str) -> Result<bool, Fault> {
    let result = ldap
        .with_timeout(cfg.timeout)
        .simple_bind(dn, password)
        .await
        .map_err(|e| format!("{}: bind failed: {e}", cfg.url))?;
    match result.rc {
        0 => Ok(true),
        rc if BIND_REFUSED.contains(&rc) => Ok(false),
        rc => Err(format!("{}: bind answered with LDAP result {rc} {}", cfg.url, result.text)),
    }
}

/// Bind as the service account (nothing to do for anonymous searches).
async fn service_bind(ldap: &mut Ldap, cfg: &LdapConfig) -> Result<(), Fault> {
    if cfg.bind_dn.is_empty() {
        return Ok(());
    }
    let password = match &cfg.bind_password_file {
        Some(path) => tokio::fs::read_to_string(path)
            .await
            .map_err(|e| format!("ldap.bind_password_file {}: {e}", path.display()))?
            .trim_end_matches(['\r', '\n'])
            .to_string(),
        None => cfg.bind_password.0.clone(),
    };
    if password.is_empty() || !bind(ldap, cfg, &cfg.bind_dn, &password).await? {
        return Err(format!(
            "the service account {} cannot bind to {}: check ldap.bind_dn and ldap.bind_password",
            cfg.bind_dn, cfg.url
        ));
    }
    Ok(())
}

async fn search(
    ldap: &mut Ldap,
    cfg: &LdapConfig,
    base: &str,
    scope: Scope,
    filter: &str,
    attrs: &[&str],
    limit: i32,
) -> Result<Vec<SearchEntry>, Fault> {
    let result = ldap
        .with_search_options(SearchOptions::new().sizelimit(limit))
        .with_timeout(cfg.timeout)
        .search(base, scope, filter, attrs.to_vec())
        .await
        .map_err(|e| format!("{}: search under {base:?} failed: {e}", cfg.url))?;
    let ldap3::SearchResult(raw, status) = result;
    match status.rc {
        // A size limit hit still returns the entries found: callers see "more than one".
        0 | SIZE_LIMIT_EXCEEDED => {}
        // Reading one entry we may not see (a user's own entry after a direct bind): no attributes.
        NO_SUCH_OBJECT | INSUFFICIENT_ACCESS_RIGHTS if scope == Scope::Base => return Ok(Vec::new()),
        rc => return Err(format!("{}: search under {base:?} answered LDAP result {rc} {}", cfg.url, status.text)),
    }
    // ldap3 panics on an entry it cannot parse; a broken directory must not take the task down.
    Ok(raw.into_iter().filter_map(|r| catch_unwind(AssertUnwindSafe(|| SearchEntry::construct(r))).ok()).collect())
}

/// An attribute's values; attribute names compare case-insensitively (RFC 4512 §2.5).
fn values(entry: &SearchEntry, attribute: &str) -> Vec<String> {
    if attribute.is_empty() {
        return Vec::new();
    }
    entry.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(attribute)).map(|(_, v)| v.clone()).unwrap_or_default()
}

/// Replace each `{name}` in `template` by `escape(value)`, in one pass, so a value that itself
/// contains `{dn}` or `{user}` is never expanded again.
fn expand(template: &str, vars: &[(&str, &str)], escape: fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let var =
            after.find('}').and_then(|close| vars.iter().find(|(n, _)| *n == &after[..close]).map(|v| (close, v.1)));
        match var {
            Some((close, value)) => {
                out.push_str(&escape(value));
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// RFC 4515 §3: `*`, `(`, `)`, `\` and NUL become `\XX` in a filter's assertion value.
pub fn escape_filter_value(value: &str) -> String {
    ldap3::ldap_escape(value).into_owned()
}

/// RFC 4514 §2.4: special characters of an attribute value in a DN become `\XX`.
pub fn escape_dn_value(value: &str) -> String {
    ldap3::dn_escape(value).into_owned()
}

/// The value of a DN's first RDN: "cn=Sales\2C EU,ou=groups,..." → "Sales, EU".
fn first_rdn_value(dn: &str) -> Option<String> {
    let bytes = dn.as_bytes();
    let eq = dn.find('=')?;
    let mut out = Vec::new();
    let mut i = eq + 1;
    while i < bytes.len() {
        match bytes[i] {
            b',' | b'+' => break,
            b'\\' => {
                let hex = dn.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(*bytes.get(i + 1)?);
                        i += 2;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// How long a sign-in may take at most: connect, then service bind, search, user bind,
/// rebind and group search, with room to spare.
pub fn budget(cfg: &LdapConfig) -> Duration {
    cfg.connect_timeout + cfg.timeout * 6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_escaped_so_injection_matches_nothing() {
        let f = expand("(&(objectClass=person)(uid={user}))", &[("user", "*)(uid=*")], escape_filter_value);
        assert_eq!(f, r"(&(objectClass=person)(uid=\2a\29\28uid=\2a))");
        assert!(ldap3::parse_filter(&f).is_ok(), "still one well-formed filter");
        assert_eq!(escape_filter_value("a\\b\0"), r"a\5cb\00");
        assert_eq!(escape_filter_value("émile"), "émile", "UTF-8 passes through");
    }

    #[test]
    fn dn_values_are_escaped() {
        let dn = expand("uid={user},ou=people,dc=example,dc=org", &[("user", "jean,luc+x=1")], escape_dn_value);
        assert_eq!(dn, r"uid=jean\2cluc\2bx\3d1,ou=people,dc=example,dc=org");
        assert_eq!(escape_dn_value("#lead "), r"\23lead\20");
    }

    #[test]
    fn expansion_is_one_pass_and_leaves_unknown_braces() {
        let f = expand("(&(member={dn})(x={other}))", &[("dn", "{user}"), ("user", "bad")], escape_filter_value);
        assert_eq!(f, "(&(member={user})(x={other}))");
    }

    #[test]
    fn group_names_from_dns() {
        assert_eq!(first_rdn_value("cn=agents,ou=groups,dc=example,dc=org").as_deref(), Some("agents"));
        assert_eq!(first_rdn_value(r"cn=Sales\2C EU,ou=groups").as_deref(), Some("Sales, EU"));
        assert_eq!(first_rdn_value(r"cn=a\,b+uid=x,dc=y").as_deref(), Some("a,b"));
        assert_eq!(first_rdn_value("cn=caf\\c3\\a9,dc=y").as_deref(), Some("café"));
        assert_eq!(first_rdn_value("garbage"), None);
        assert_eq!(first_rdn_value("cn=\\"), None);
    }

    #[tokio::test]
    async fn a_directory_that_is_down_is_unavailable_quickly() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cfg = LdapConfig {
            url: format!("ldap://127.0.0.1:{port}"),
            bind_dn_template: "uid={user},dc=x".into(),
            connect_timeout: Duration::from_millis(300),
            timeout: Duration::from_millis(300),
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let outcome = authenticate(&cfg, "agent", "pw").await;
        assert!(matches!(&outcome, Outcome::Unavailable(why) if why.contains("cannot connect")), "{outcome:?}");
        assert!(started.elapsed() < budget(&cfg));
    }

    #[tokio::test]
    async fn a_directory_that_never_answers_is_unavailable_within_the_budget() {
        // Accepts TCP connections and never says a word.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let cfg = LdapConfig {
            url: format!("ldap://127.0.0.1:{port}"),
            bind_dn_template: "uid={user},dc=x".into(),
            connect_timeout: Duration::from_millis(300),
            timeout: Duration::from_millis(300),
            ..Default::default()
        };
        let started = std::time::Instant::now();
        assert!(matches!(authenticate(&cfg, "agent", "pw").await, Outcome::Unavailable(_)));
        assert!(started.elapsed() <= budget(&cfg) + Duration::from_millis(200));
        hold.abort();
    }
}
