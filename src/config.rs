//! The configuration: one validated struct read from TOML.
//!
//! Unknown keys are refused (`deny_unknown_fields`) and every value is checked at start, so a
//! typo never silently falls back to a default. Messages name the key and say how to fix it.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default configuration, embedded so `amphi serve` runs with no file at all.
pub const DEFAULT_CONFIG: &str = include_str!("../config.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    #[serde(default)]
    pub c2s: C2sConfig,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub contact: ContactConfig,
    #[serde(default)]
    pub muc: MucConfig,
    #[serde(default)]
    pub http: HttpConfig,
}

/// The web server: WebSocket transport, bundled web client, invitation links, metrics.
///
/// Off unless a listener is given: `Default` listens nowhere, so a config file without an
/// `[http]` table (and every in-process test server) opens no web port; the shipped
/// config.toml turns it on for localhost.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Plain HTTP listeners. WebSocket clients on them count as encrypted only when they
    /// come from a loopback address (a browser on this machine, or a TLS-terminating proxy).
    pub listen: Vec<SocketAddr>,
    /// HTTPS listeners, with the XMPP certificate.
    pub tls_listen: Vec<SocketAddr>,
    /// Participants the service is sized for: shown on the landing page, and guests are
    /// refused once this many people are in meetings. 0 means no limit.
    pub capacity: u32,
}

/// The multi-user chat service (XEP-0045).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MucConfig {
    pub enabled: bool,
    /// The service's domain; empty means "conference." + server.domain.
    pub domain: String,
}

impl Default for MucConfig {
    fn default() -> Self {
        MucConfig { enabled: true, domain: String::new() }
    }
}

impl Config {
    /// The MUC service domain, if the service is enabled.
    pub fn muc_domain(&self) -> Option<String> {
        if !self.muc.enabled {
            return None;
        }
        Some(if self.muc.domain.is_empty() {
            format!("conference.{}", self.server.domain)
        } else {
            self.muc.domain.clone()
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub domain: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub log_format: LogFormat,
    #[serde(default = "default_log_level")]
    pub log_level: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct C2sConfig {
    pub starttls_listen: Vec<SocketAddr>,
    pub direct_tls_listen: Vec<SocketAddr>,
    pub require_encryption: bool,
    pub max_stanza_size: usize,
    pub max_depth: usize,
    #[serde(with = "duration")]
    pub auth_timeout: Duration,
    pub max_connections: usize,
    /// Outbound queue per session, in stanzas; a client that lets it fill is disconnected.
    pub send_queue: usize,
    /// After this long without data from a signed-in client, the server pings it (XEP-0199).
    #[serde(with = "duration")]
    pub ping_interval: Duration,
    /// A client that sends nothing this long after the ping is disconnected.
    #[serde(with = "duration")]
    pub ping_timeout: Duration,
}

impl Default for C2sConfig {
    fn default() -> Self {
        C2sConfig {
            starttls_listen: vec![SocketAddr::from(([127, 0, 0, 1], 5222))],
            direct_tls_listen: vec![SocketAddr::from(([127, 0, 0, 1], 5223))],
            require_encryption: true,
            max_stanza_size: 256 * 1024,
            max_depth: 64,
            auth_timeout: Duration::from_secs(30),
            max_connections: 20_000,
            send_queue: 1024,
            ping_interval: Duration::from_secs(300),
            ping_timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub registration: bool,
    pub scram_iterations: u32,
    /// Failed authentications allowed per account in `failure_window`.
    pub max_failures: u32,
    /// Failed authentications allowed per IP address in `failure_window`.
    pub max_failures_per_ip: u32,
    #[serde(with = "duration")]
    pub failure_window: Duration,
    /// In-band registrations allowed per IP address in `failure_window` (loopback is exempt).
    pub max_registrations_per_ip: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            registration: false,
            scram_iterations: 4096,
            max_failures: 5,
            max_failures_per_ip: 20,
            failure_window: Duration::from_secs(60),
            max_registrations_per_ip: 10,
        }
    }
}

/// XEP-0157 contact addresses, advertised in the server's disco#info.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContactConfig {
    pub abuse: Vec<String>,
    pub admin: Vec<String>,
    pub feedback: Vec<String>,
    pub sales: Vec<String>,
    pub security: Vec<String>,
    pub support: Vec<String>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

fn default_log_level() -> String {
    "info".into()
}

/// A config problem, worded for the person who edits the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

impl Config {
    /// Read the file at `path`, or the embedded default when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (name, text) = match path {
            Some(p) => (
                p.display().to_string(),
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read { path: p.into(), source })?,
            ),
            None => ("(embedded default config)".to_string(), DEFAULT_CONFIG.to_string()),
        };
        Config::parse(&name, &text)
    }

    pub fn parse(name: &str, text: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: name.to_string(), message: e.to_string() })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| Err(ConfigError::Invalid { key, message: message.to_string() });
        if jid::BareJid::new(&self.server.domain).map(|j| j.node().is_some()).unwrap_or(true)
            || self.server.domain.contains('/')
        {
            return invalid("server.domain", "must be a domain name such as \"example.org\" (no user@ or /resource)");
        }
        if tracing_subscriber::EnvFilter::try_new(&self.server.log_level).is_err() {
            return invalid("server.log_level", "use one of error, warn, info, debug, trace (or a tracing filter)");
        }
        if self.c2s.starttls_listen.is_empty() && self.c2s.direct_tls_listen.is_empty() {
            return invalid(
                "c2s.starttls_listen",
                "give at least one address in c2s.starttls_listen or c2s.direct_tls_listen",
            );
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.c2s.max_stanza_size) {
            return invalid(
                "c2s.max_stanza_size",
                "must be between 1024 and 16777216 bytes (RFC 6120 requires at least 10000)",
            );
        }
        if self.c2s.max_stanza_size < 10_000 {
            return invalid(
                "c2s.max_stanza_size",
                "RFC 6120 §13.12 requires accepting stanzas of at least 10000 bytes",
            );
        }
        if !(8..=1024).contains(&self.c2s.max_depth) {
            return invalid("c2s.max_depth", "must be between 8 and 1024");
        }
        if self.c2s.auth_timeout < Duration::from_secs(1) {
            return invalid("c2s.auth_timeout", "must be at least 1s");
        }
        if self.c2s.ping_interval < Duration::from_secs(1) || self.c2s.ping_timeout < Duration::from_secs(1) {
            return invalid("c2s.ping_interval", "c2s.ping_interval and c2s.ping_timeout must be at least 1s");
        }
        if self.c2s.max_connections == 0 {
            return invalid("c2s.max_connections", "must be at least 1");
        }
        if !(16..=1_000_000).contains(&self.c2s.send_queue) {
            return invalid("c2s.send_queue", "must be between 16 and 1000000 stanzas");
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return invalid("tls.cert", "set both tls.cert and tls.key, or neither");
        }
        if self.tls.cert.is_none() && self.server.domain != "localhost" {
            return invalid(
                "tls.cert",
                "a certificate is required for a domain other than localhost: set tls.cert and tls.key to PEM files",
            );
        }
        if let Some(d) = self.muc_domain() {
            if d == self.server.domain || jid::BareJid::new(&d).map(|j| j.node().is_some()).unwrap_or(true) {
                return invalid("muc.domain", "must be a domain of its own, such as \"conference.example.org\"");
            }
        }
        let mut http_addrs: Vec<&SocketAddr> = self.http.listen.iter().chain(&self.http.tls_listen).collect();
        http_addrs.sort();
        if http_addrs.windows(2).any(|w| w[0] == w[1] && w[0].port() != 0) {
            return invalid("http.listen", "an address appears twice in http.listen / http.tls_listen");
        }
        if self.http.capacity > 10_000_000 {
            return invalid("http.capacity", "must be at most 10000000 participants (0 means no limit)");
        }
        if !(4096..=1_000_000).contains(&self.auth.scram_iterations) {
            return invalid("auth.scram_iterations", "must be between 4096 (RFC 7677 minimum) and 1000000");
        }
        if self.auth.max_failures == 0 {
            return invalid("auth.max_failures", "must be at least 1");
        }
        if self.auth.max_failures_per_ip == 0 {
            return invalid("auth.max_failures_per_ip", "must be at least 1");
        }
        for (key, list) in [
            ("contact.abuse", &self.contact.abuse),
            ("contact.admin", &self.contact.admin),
            ("contact.feedback", &self.contact.feedback),
            ("contact.sales", &self.contact.sales),
            ("contact.security", &self.contact.security),
            ("contact.support", &self.contact.support),
        ] {
            if list.iter().any(|a| !a.contains(':')) {
                return invalid(
                    key,
                    "addresses are URIs such as \"xmpp:admin@example.org\" or \"mailto:admin@example.org\"",
                );
            }
        }
        Ok(())
    }
}

/// Durations written as "30s", "5m", "2h" or "500ms".
mod duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?}: write it like \"30s\", \"5m\", \"2h\" or \"500ms\""
            ))
        })
    }

    pub fn parse(s: &str) -> Option<Duration> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit())?;
        let (n, unit) = s.split_at(split);
        let n: u64 = n.parse().ok()?;
        match unit {
            "ms" => Some(Duration::from_millis(n)),
            "s" => Some(Duration::from_secs(n)),
            "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
            "h" => Some(Duration::from_secs(n.checked_mul(3600)?)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.server.domain, "localhost");
        assert!(c.auth.registration);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse("t", "[server]\ndomain='localhost'\ndomian='x'\n").unwrap_err().to_string();
        assert!(err.contains("domian"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let err =
            Config::parse("t", "[server]\ndomain='localhost'\n[c2s]\nauth_timeout='soon'\n").unwrap_err().to_string();
        assert!(err.contains("invalid duration"), "{err}");
        let err = Config::parse("t", "[server]\ndomain='example.org'\n").unwrap_err().to_string();
        assert!(err.starts_with("tls.cert"), "{err}");
        let err =
            Config::parse("t", "[server]\ndomain='localhost'\n[c2s]\nmax_stanza_size=5\n").unwrap_err().to_string();
        assert!(err.starts_with("c2s.max_stanza_size"), "{err}");
    }

    #[test]
    fn http_is_off_by_default_and_validated() {
        let c = Config::parse("t", "[server]\ndomain='localhost'\n").unwrap();
        assert!(c.http.listen.is_empty() && c.http.tls_listen.is_empty());
        let c = Config::load(None).unwrap();
        assert!(!c.http.listen.is_empty(), "the shipped config serves the web client");
        let err = Config::parse(
            "t",
            "[server]\ndomain='localhost'\n[http]\nlisten=['127.0.0.1:5280']\ntls_listen=['127.0.0.1:5280']\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("http.listen"), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(duration::parse("30s"), Some(Duration::from_secs(30)));
        assert_eq!(duration::parse("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(duration::parse("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(duration::parse("s"), None);
        assert_eq!(duration::parse("10d"), None);
    }
}
