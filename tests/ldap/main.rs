//! The LDAP backend against a real OpenLDAP slapd (tests/ldap/slapd.sh): search-then-bind
//! over StartTLS, direct bind over ldaps://, attributes and groups, escaping, a wrong CA, and
//! a directory that stops. Needs slapd and ldap-utils (`tests/ldap/run.sh` installs them);
//! without them the tests are skipped, except under CI where that is a failure.

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use amphi::auth::ldap::{authenticate, Outcome};
use amphi::config::{LdapConfig, Secret};

const BASE: &str = "dc=example,dc=org";
const SPECIAL: &str = "jean,luc+émile";
const SPECIAL_PASSWORD: &str = "pässwörd 日本 🔑";

/// slapd in its own folder and process group, killed (with the group) when dropped.
struct Slapd {
    child: Child,
    port: u16,
    tls_port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        // The whole group: during its setup slapd.sh runs a second, temporary slapd.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Slapd {
    fn start() -> Option<Slapd> {
        if Command::new("slapd").arg("-VV").stderr(Stdio::null()).status().is_err()
            && !Path::new("/usr/sbin/slapd").exists()
        {
            assert!(std::env::var_os("CI").is_none(), "slapd is not installed: run tests/ldap/run.sh");
            eprintln!("skipped: slapd is not installed (apt-get install slapd ldap-utils)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let (port, tls_port) = (free_port(), free_port());
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ldap/slapd.sh");
        let child = Command::new(script)
            .args([dir.path().to_str().unwrap(), &port.to_string(), &tls_port.to_string()])
            .env("PATH", format!("/usr/sbin:{}", std::env::var("PATH").unwrap_or_default()))
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut slapd = Slapd { child, port, tls_port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
            assert!(slapd.child.try_wait().unwrap().is_none(), "slapd.sh exited early");
            assert!(Instant::now() < deadline, "slapd did not listen within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(slapd)
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Search with the service account, over StartTLS.
    fn search_config(&self) -> LdapConfig {
        LdapConfig {
            url: format!("ldap://127.0.0.1:{}", self.port),
            starttls: true,
            ca_file: Some(self.ca()),
            bind_dn: format!("cn=amphi,ou=services,{BASE}"),
            bind_password: Secret("service-secret".into()),
            search_base: BASE.into(),
            group_attribute: "memberOf".into(),
            group_search_base: format!("ou=groups,{BASE}"),
            profile_attributes: vec!["departmentNumber".into()],
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(2),
            ..Default::default()
        }
    }

    /// Bind with a DN template, over ldaps://, memberOf only.
    fn direct_config(&self) -> LdapConfig {
        LdapConfig {
            url: format!("ldaps://127.0.0.1:{}", self.tls_port),
            ca_file: Some(self.ca()),
            bind_dn_template: format!("uid={{user}},ou=people,{BASE}"),
            group_attribute: "memberOf".into(),
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(2),
            ..Default::default()
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn accepted(outcome: Outcome) -> amphi::auth::DirectoryEntry {
    match outcome {
        Outcome::Accepted(entry) => entry,
        other => panic!("expected the sign-in to be accepted, got {other:?}"),
    }
}

#[tokio::test]
async fn search_then_bind_over_starttls() {
    let Some(slapd) = Slapd::start() else { return };
    let cfg = slapd.search_config();

    let e = accepted(authenticate(&cfg, "agent1", "directory-pw-agent1").await);
    assert_eq!(e.dn, format!("uid=agent1,ou=people,{BASE}"));
    assert_eq!(e.mail.as_deref(), Some("agent1@example.org"));
    assert_eq!(e.display_name.as_deref(), Some("Agent One"));
    let mut groups = e.groups.clone();
    groups.sort();
    assert_eq!(groups, ["Support, EU", "agents"], "memberOf and the group search agree, without duplicates");
    assert_eq!(e.group_dns.len(), 2);
    assert_eq!(e.profile.get("departmentNumber"), Some(&vec!["support".to_string()]));

    let e = accepted(authenticate(&cfg, SPECIAL, SPECIAL_PASSWORD).await);
    assert_eq!(e.display_name.as_deref(), Some("Jean-Luc Émile"));
    assert_eq!(e.groups, ["agents"]);

    assert!(matches!(authenticate(&cfg, "agent1", "wrong").await, Outcome::Refused(_)));
    assert!(matches!(authenticate(&cfg, "agent1", "directory-pw-agent2").await, Outcome::Refused(_)));
    assert!(matches!(authenticate(&cfg, "nobody", "directory-pw-agent1").await, Outcome::Unknown));
    for injection in ["*)(uid=*", "*", "agent1*", "agent1)(|(uid=*", "agent1\\2a"] {
        let outcome = authenticate(&cfg, injection, "directory-pw-agent1").await;
        assert!(matches!(outcome, Outcome::Unknown), "{injection:?} must match nobody: {outcome:?}");
    }
    assert!(matches!(authenticate(&cfg, "twin", "directory-pw-twin").await, Outcome::Refused(_)), "ambiguous");
    assert!(matches!(authenticate(&cfg, "agent1", "").await, Outcome::Refused(_)), "empty password");

    let bad_service = LdapConfig { bind_password: Secret("nope".into()), ..slapd.search_config() };
    match authenticate(&bad_service, "agent1", "directory-pw-agent1").await {
        Outcome::Unavailable(why) => assert!(why.contains("ldap.bind_dn"), "{why}"),
        other => panic!("{other:?}"),
    }

    // A CA that did not sign the directory's certificate: no sign-in, a clear reason.
    let other_ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let other_ca_file = slapd.dir.path().join("other-ca.pem");
    std::fs::write(&other_ca_file, other_ca.cert.pem()).unwrap();
    let wrong_ca = LdapConfig { ca_file: Some(other_ca_file), ..slapd.search_config() };
    match authenticate(&wrong_ca, "agent1", "directory-pw-agent1").await {
        Outcome::Unavailable(why) => assert!(why.contains("StartTLS"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn direct_bind_over_ldaps_escapes_the_dn() {
    let Some(slapd) = Slapd::start() else { return };
    let cfg = slapd.direct_config();

    let e = accepted(authenticate(&cfg, "agent1", "directory-pw-agent1").await);
    assert_eq!(e.mail.as_deref(), Some("agent1@example.org"));
    let mut groups = e.groups.clone();
    groups.sort();
    assert_eq!(groups, ["Support, EU", "agents"]);

    // "," and "+" must be escaped in the DN, or the bind goes to another (or no) entry.
    let e = accepted(authenticate(&cfg, SPECIAL, SPECIAL_PASSWORD).await);
    assert_eq!(e.display_name.as_deref(), Some("Jean-Luc Émile"));

    // With a DN template a wrong password cannot be told from a missing entry.
    assert!(matches!(authenticate(&cfg, "agent1", "wrong").await, Outcome::Unknown));
    assert!(matches!(authenticate(&cfg, "*)(uid=*", "directory-pw-agent1").await, Outcome::Unknown));
    // slapd here lets a DN with an empty password bind anonymously: amphi must not ask.
    assert!(matches!(authenticate(&cfg, "agent1", "").await, Outcome::Refused(_)));
}

#[tokio::test]
async fn directory_stopped_is_unavailable_quickly() {
    let Some(mut slapd) = Slapd::start() else { return };
    let cfg = slapd.search_config();
    accepted(authenticate(&cfg, "agent2", "directory-pw-agent2").await);
    slapd.child.kill().unwrap();
    slapd.child.wait().unwrap();
    let started = Instant::now();
    match authenticate(&cfg, "agent2", "directory-pw-agent2").await {
        Outcome::Unavailable(why) => assert!(why.contains("cannot connect"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}
