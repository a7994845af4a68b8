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
    /// The LDAP directory, used when `auth.backends` lists "ldap".
    #[serde(default)]
    pub ldap: LdapConfig,
    /// Calls: the Jingle focus and the built-in SFU.
    #[serde(default)]
    pub media: MediaConfig,
    /// External components (XEP-0114).
    #[serde(default)]
    pub components: ComponentsConfig,
    /// HTTP File Upload (XEP-0363) on `upload.<domain>`.
    #[serde(default)]
    pub upload: UploadConfig,
    /// STUN/TURN servers announced by External Service Discovery (XEP-0215).
    #[serde(default)]
    pub turn: TurnConfig,
    /// Message Archive Management (XEP-0313) for one-to-one chats.
    #[serde(default)]
    pub archive: ArchiveConfig,
    /// OpenID Connect single sign-on (`[oidc]`, `[[oidc.issuers]]`); see `crate::oidc`.
    #[serde(default)]
    pub oidc: OidcConfig,
}

/// The accounts' own message archives (XEP-0313): chat and normal messages with a body
/// that pass through this server, kept per account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    /// Whether new messages are archived (queries still answer from what is stored).
    pub enabled: bool,
    /// Messages kept per account; the oldest go first. 0 means no limit.
    pub max_messages_per_user: u64,
    /// Messages older than this many days are deleted; 0 keeps them.
    pub expire_after_days: u32,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig { enabled: true, max_messages_per_user: 10_000, expire_after_days: 0 }
    }
}

/// HTTP File Upload (XEP-0363): clients ask `upload.<domain>` for a slot over XMPP, then PUT
/// the file to the web server and share the GET URL. Needs an `[http]` listener (or `url`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadConfig {
    pub enabled: bool,
    /// The service's domain; empty means "upload." + server.domain.
    pub domain: String,
    /// Largest file accepted, in bytes.
    pub max_file_size: u64,
    /// Bytes one account may have stored at once; 0 means no limit.
    pub quota: u64,
    /// Files are deleted this many days after their upload; 0 keeps them forever.
    pub expire_after_days: u32,
    /// The public base URL of the web server (e.g. behind a reverse proxy:
    /// "https://chat.example.org"); empty: the first `http.tls_listen` port on server.domain
    /// when `tls.cert` is set, else the first `http.listen` port (see `UploadService::start`).
    pub url: String,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            enabled: true,
            domain: String::new(),
            max_file_size: 50 * 1024 * 1024,
            quota: 1024 * 1024 * 1024,
            expire_after_days: 30,
            url: String::new(),
        }
    }
}

/// STUN/TURN servers for clients (XEP-0215), with coturn's TURN REST credentials
/// (`use-auth-secret`) made from a shared secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TurnConfig {
    pub services: Vec<ExternalService>,
    /// coturn's `static-auth-secret`: TURN services without a static username get
    /// temporary credentials made from it. Empty: none.
    pub secret: Secret,
    /// How long temporary credentials stay valid.
    #[serde(with = "duration")]
    pub ttl: Duration,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig { services: Vec::new(), secret: Secret::default(), ttl: Duration::from_secs(86_400) }
    }
}

/// One STUN or TURN server announced to clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalService {
    /// "stun", "stuns", "turn" or "turns".
    #[serde(rename = "type")]
    pub kind: String,
    pub host: String,
    pub port: u16,
    /// "udp" or "tcp"; empty: not said.
    #[serde(default)]
    pub transport: String,
    /// Static credentials (for TURN without a shared secret).
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Secret,
    /// A name shown to people.
    #[serde(default)]
    pub name: String,
}

/// XEP-0114 external components: services (gateways, bots) on their own domains.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComponentsConfig {
    /// Where components connect. The protocol has no TLS: keep it on loopback.
    pub listen: Vec<SocketAddr>,
    /// Each component's domain and shared secret.
    pub secrets: std::collections::BTreeMap<String, String>,
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
    /// Rooms the service holds at once (a join that would create one more is refused).
    pub max_rooms: usize,
    /// Occupants per room; a room's own `max users` may only lower it.
    pub max_occupants: usize,
    /// Messages a new room sends on join by default (its owner may change it).
    pub history_length: usize,
    /// The most a room's owner may set the history length to.
    pub max_history_length: usize,
    /// Defaults of a new room's configuration.
    pub default_persistent: bool,
    pub default_public: bool,
    pub default_archiving: bool,
    /// Stanzas queued for one room; beyond this senders get resource-constraint.
    pub room_queue: usize,
}

impl Default for MucConfig {
    fn default() -> Self {
        MucConfig {
            enabled: true,
            domain: String::new(),
            max_rooms: 10_000,
            max_occupants: 1_000,
            history_length: 20,
            max_history_length: 200,
            default_persistent: false,
            default_public: true,
            default_archiving: true,
            room_queue: 4096,
        }
    }
}

/// Calls: the Jingle focus (`focus.<domain>`) and the SFU's one UDP port.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    pub enabled: bool,
    /// The focus's domain; empty means "focus." + server.domain.
    pub domain: String,
    /// The one UDP socket every participant's media uses (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The address announced to clients as the ICE host candidate, when it differs from
    /// `listen` (NAT, or listening on 0.0.0.0). An IP ("203.0.113.5") keeps listen's port.
    pub public_address: String,
    /// ICE-TCP (RFC 6544): one TCP port offered as a `tcptype passive` candidate for
    /// clients whose network lets no UDP through; unset = UDP only.
    pub tcp_listen: Option<SocketAddr>,
    /// Video of only the N most recent speakers is forwarded to each participant; 0 = all.
    pub last_n: usize,
    /// Participants in one call.
    pub max_participants: usize,
}

impl MediaConfig {
    /// The address announced to clients, given the address the socket is bound to.
    pub fn public_ip(&self) -> Result<Option<SocketAddr>, std::net::AddrParseError> {
        let p = self.public_address.trim();
        if p.is_empty() {
            return Ok(None);
        }
        match p.parse::<SocketAddr>() {
            Ok(a) => Ok(Some(a)),
            Err(_) => p.parse::<std::net::IpAddr>().map(|ip| Some(SocketAddr::new(ip, self.listen.port()))),
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            enabled: true,
            domain: String::new(),
            // Without a [media] table: any free port (config.toml names 10000), so test
            // servers in one process never collide.
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_address: String::new(),
            tcp_listen: None,
            last_n: 0,
            max_participants: 100,
        }
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

    /// The HTTP File Upload service's domain, if enabled and reachable over HTTP.
    pub fn upload_domain(&self) -> Option<String> {
        let no_http = self.http.listen.is_empty() && self.http.tls_listen.is_empty();
        if !self.upload.enabled || (self.upload.url.is_empty() && no_http) {
            return None;
        }
        Some(if self.upload.domain.is_empty() {
            format!("upload.{}", self.server.domain)
        } else {
            self.upload.domain.clone()
        })
    }

    /// The Jingle focus's domain, if calls are enabled.
    pub fn focus_domain(&self) -> Option<String> {
        if !self.media.enabled {
            return None;
        }
        Some(if self.media.domain.is_empty() {
            format!("focus.{}", self.server.domain)
        } else {
            self.media.domain.clone()
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
    /// XEP-0198: how long a dropped session with stream management waits to be resumed.
    #[serde(with = "duration")]
    pub resume_timeout: Duration,
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
            resume_timeout: Duration::from_secs(300),
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
    /// Who checks passwords, asked in this order; the first that knows the user decides.
    pub backends: Vec<AuthBackend>,
}

/// A source of accounts (see `crate::auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthBackend {
    /// Accounts in the store (SCRAM keys): `amphi user add`, in-band registration.
    Internal,
    /// The `[ldap]` directory: SASL PLAIN passwords checked by binding.
    Ldap,
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
            backends: vec![AuthBackend::Internal],
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

/// The LDAP directory (`[ldap]`). Two ways to find a user's entry: a DN template
/// (`bind_dn_template`, direct bind) or a search with a service account (`search_base`,
/// `search_filter`), then a bind as that entry with the user's password.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LdapConfig {
    /// `ldap://host:389` or `ldaps://host:636`.
    pub url: String,
    /// Upgrade an `ldap://` connection with the StartTLS operation.
    pub starttls: bool,
    /// PEM file of the CA(s) that signed the directory's certificate; unset: system roots.
    pub ca_file: Option<PathBuf>,
    /// Direct bind: the user's DN, `{user}` replaced by the RFC 4514-escaped sign-in name.
    pub bind_dn_template: String,
    /// Service account for searches; empty: anonymous searches.
    pub bind_dn: String,
    pub bind_password: Secret,
    /// A file holding the service account's password (instead of `bind_password`).
    pub bind_password_file: Option<PathBuf>,
    pub search_base: String,
    /// `{user}` is replaced by the RFC 4515-escaped sign-in name.
    pub search_filter: String,
    pub search_scope: LdapScope,
    /// Attribute that holds the sign-in name; the entry's value must match it.
    pub identifier_attribute: String,
    pub mail_attribute: String,
    pub display_name_attribute: String,
    /// Attribute listing the user's groups as DNs (`memberOf`); empty: not read.
    pub group_attribute: String,
    /// Group search (when set): base, filter (`{dn}` and `{user}`, escaped) and name attribute.
    pub group_search_base: String,
    pub group_search_filter: String,
    pub group_name_attribute: String,
    /// Further attributes kept as the user's profile (e.g. "departmentNumber").
    pub profile_attributes: Vec<String>,
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// Limit for each operation (bind, search).
    #[serde(with = "duration")]
    pub timeout: Duration,
}

impl Default for LdapConfig {
    fn default() -> Self {
        LdapConfig {
            url: String::new(),
            starttls: false,
            ca_file: None,
            bind_dn_template: String::new(),
            bind_dn: String::new(),
            bind_password: Secret::default(),
            bind_password_file: None,
            search_base: String::new(),
            search_filter: "(&(objectClass=inetOrgPerson)(uid={user}))".into(),
            search_scope: LdapScope::Sub,
            identifier_attribute: "uid".into(),
            mail_attribute: "mail".into(),
            display_name_attribute: "displayName".into(),
            group_attribute: String::new(),
            group_search_base: String::new(),
            group_search_filter: "(&(objectClass=groupOfNames)(member={dn}))".into(),
            group_name_attribute: "cn".into(),
            profile_attributes: Vec::new(),
            connect_timeout: Duration::from_secs(3),
            timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LdapScope {
    Base,
    One,
    #[default]
    Sub,
}

/// A password in the config file: never printed by `Debug`.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"(hidden)\"" })
    }
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
        if self.c2s.resume_timeout > Duration::from_secs(86_400) {
            return invalid("c2s.resume_timeout", "must be at most 24h");
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
        if self.muc.max_rooms == 0 || self.muc.max_occupants == 0 {
            return invalid("muc.max_rooms", "muc.max_rooms and muc.max_occupants must be at least 1");
        }
        if self.muc.history_length > self.muc.max_history_length {
            return invalid("muc.history_length", "must not exceed muc.max_history_length");
        }
        if !(16..=1_000_000).contains(&self.muc.room_queue) {
            return invalid("muc.room_queue", "must be between 16 and 1000000 stanzas");
        }
        if self.media.enabled && self.media.public_ip().is_err() {
            return invalid("media.public_address", "must be an IP address (\"203.0.113.5\") or IP:port");
        }
        if self.media.max_participants == 0 {
            return invalid("media.max_participants", "must be at least 1");
        }
        if let Some(tcp) = self.media.tcp_listen.filter(|a| a.port() != 0) {
            // Caught here rather than as a bind error naming no key.
            let clash = |a: &SocketAddr| {
                a.port() == tcp.port() && (a.ip() == tcp.ip() || a.ip().is_unspecified() || tcp.ip().is_unspecified())
            };
            let taken =
                [&self.c2s.starttls_listen, &self.c2s.direct_tls_listen, &self.http.listen, &self.http.tls_listen];
            if taken.iter().any(|l| l.iter().any(clash)) {
                return invalid(
                    "media.tcp_listen",
                    "must be a TCP port of its own, not one of c2s or http (\"0.0.0.0:4443\")",
                );
            }
        }
        for (domain, secret) in &self.components.secrets {
            let taken = *domain == self.server.domain || self.muc_domain().as_deref() == Some(domain.as_str());
            if taken || jid::BareJid::new(domain).map(|j| j.node().is_some()).unwrap_or(true) {
                return invalid(
                    "components.secrets",
                    "keys are component domains of their own, such as \"bot.example.org\"",
                );
            }
            if secret.len() < 8 {
                return invalid("components.secrets", "each component secret needs at least 8 characters");
            }
        }
        self.validate_upload_and_turn()?;
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
        self.validate_auth_backends()?;
        self.validate_oidc()
    }

    /// `[upload]` and `[turn]`.
    fn validate_upload_and_turn(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        if let Some(d) = self.upload_domain() {
            let taken = d == self.server.domain
                || self.muc_domain().as_deref() == Some(d.as_str())
                || self.focus_domain().as_deref() == Some(d.as_str())
                || self.components.secrets.contains_key(&d);
            if taken || jid::BareJid::new(&d).map(|j| j.node().is_some()).unwrap_or(true) {
                return invalid(
                    "upload.domain",
                    "must be a domain of its own (not the server's, MUC's, focus's or a component's), \
                     such as \"upload.example.org\""
                        .into(),
                );
            }
        }
        if self.upload.max_file_size == 0 {
            return invalid("upload.max_file_size", "must be at least 1 byte".into());
        }
        let url = &self.upload.url;
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            return invalid("upload.url", format!("{url:?} is not a URL: write \"https://chat.example.org\""));
        }
        for s in &self.turn.services {
            if !matches!(s.kind.as_str(), "stun" | "stuns" | "turn" | "turns") {
                return invalid("turn.services", format!("type {:?}: use stun, stuns, turn or turns", s.kind));
            }
            if s.host.is_empty() || s.host.contains(|c: char| c.is_whitespace() || c == '/') {
                return invalid("turn.services", format!("host {:?}: give a host name or IP address", s.host));
            }
            if s.port == 0 {
                return invalid("turn.services", format!("{}: port must be between 1 and 65535", s.host));
            }
            if !matches!(s.transport.as_str(), "" | "udp" | "tcp") {
                return invalid("turn.services", format!("transport {:?}: use udp or tcp", s.transport));
            }
            if s.username.is_empty() != s.password.0.is_empty() {
                return invalid("turn.services", format!("{}: set both username and password, or neither", s.host));
            }
        }
        if !self.turn.secret.0.is_empty() && self.turn.secret.0.len() < 16 {
            return invalid("turn.secret", "use a random secret of at least 16 characters".into());
        }
        if self.turn.ttl < Duration::from_secs(60) || self.turn.ttl > Duration::from_secs(30 * 86_400) {
            return invalid("turn.ttl", "must be between 60s and 720h".into());
        }
        Ok(())
    }

    /// `auth.backends` and, when the directory is used, `[ldap]`.
    fn validate_auth_backends(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        let backends = &self.auth.backends;
        if backends.is_empty() {
            return invalid("auth.backends", "list at least one of \"internal\", \"ldap\"".into());
        }
        if backends.iter().enumerate().any(|(i, b)| backends[..i].contains(b)) {
            return invalid(
                "auth.backends",
                "a backend appears twice; list each once, in the order to ask them".into(),
            );
        }
        if !backends.contains(&AuthBackend::Ldap) {
            return Ok(());
        }
        if self.auth.registration {
            return invalid(
                "auth.registration",
                "in-band registration would let anyone take a directory user's name: set it to false when \
                 auth.backends lists \"ldap\""
                    .into(),
            );
        }
        let l = &self.ldap;
        let scheme = l.url.split("://").next().unwrap_or("");
        if !l.url.contains("://") || !matches!(scheme, "ldap" | "ldaps") {
            return invalid(
                "ldap.url",
                format!("{:?} is not an LDAP URL: write \"ldap://host:389\" or \"ldaps://host:636\"", l.url),
            );
        }
        if l.starttls && scheme != "ldap" {
            return invalid("ldap.starttls", "StartTLS upgrades an ldap:// URL; with ldaps:// set it to false".into());
        }
        if let Some(ca) = &l.ca_file {
            if let Err(e) = std::fs::metadata(ca) {
                return invalid("ldap.ca_file", format!("cannot read {}: {e}", ca.display()));
            }
        }
        let direct = !l.bind_dn_template.is_empty();
        if direct != l.search_base.is_empty() {
            return invalid(
                "ldap.bind_dn_template",
                "set either ldap.bind_dn_template (direct bind) or ldap.search_base (search, then bind), not both"
                    .into(),
            );
        }
        if direct && !l.bind_dn_template.contains("{user}") {
            return invalid(
                "ldap.bind_dn_template",
                "must contain {user}, e.g. \"uid={user},ou=people,dc=example,dc=org\"".into(),
            );
        }
        if !direct && !l.search_filter.contains("{user}") {
            return invalid(
                "ldap.search_filter",
                "must contain {user}, e.g. \"(&(objectClass=inetOrgPerson)(uid={user}))\"".into(),
            );
        }
        for (key, filter) in
            [("ldap.search_filter", &l.search_filter), ("ldap.group_search_filter", &l.group_search_filter)]
        {
            if !(filter.starts_with('(') && filter.ends_with(')')) {
                return invalid(key, "an LDAP filter is written in parentheses, e.g. \"(uid={user})\"".into());
            }
        }
        if !l.bind_password.0.is_empty() && l.bind_password_file.is_some() {
            return invalid("ldap.bind_password", "set ldap.bind_password or ldap.bind_password_file, not both".into());
        }
        if l.bind_dn.is_empty() && (!l.bind_password.0.is_empty() || l.bind_password_file.is_some()) {
            return invalid("ldap.bind_dn", "a service account password is set but no ldap.bind_dn to bind as".into());
        }
        if l.identifier_attribute.is_empty() {
            return invalid(
                "ldap.identifier_attribute",
                "name the attribute holding the sign-in name, e.g. \"uid\"".into(),
            );
        }
        if !l.group_search_base.is_empty() && l.group_name_attribute.is_empty() {
            return invalid(
                "ldap.group_name_attribute",
                "name the attribute holding a group's name, e.g. \"cn\"".into(),
            );
        }
        if l.connect_timeout < Duration::from_millis(100) || l.timeout < Duration::from_millis(100) {
            return invalid("ldap.timeout", "ldap.connect_timeout and ldap.timeout must be at least 100ms".into());
        }
        Ok(())
    }
}

// ---- OpenID Connect single sign-on (`[oidc]`) -------------------------------------------

/// Single sign-on with OpenID Connect providers (`crate::oidc`): the web client signs in
/// at one of `issuers`, then gets an amphi token for XMPP (SASL OAUTHBEARER).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    /// Lifetime of the sign-in tokens amphi issues after a provider's sign-in.
    #[serde(with = "duration")]
    pub token_lifetime: Duration,
    /// The web server's base URL as browsers see it; `<public_url>/sso/callback` is the
    /// redirect URI to register at each provider. Empty: derived from the first `[http]`
    /// listener (`http://<server.domain>:<port>`).
    pub public_url: String,
    /// The identity providers offered, in this order.
    pub issuers: Vec<OidcIssuer>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig { token_lifetime: Duration::from_secs(8 * 3600), public_url: String::new(), issuers: Vec::new() }
    }
}

/// One OpenID provider (`[[oidc.issuers]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuer {
    /// URL slug (`/sso/<id>/start`), `[a-z0-9-]+`, unique. Accounts are bound to it.
    pub id: String,
    /// Shown in the web client's list of identity providers.
    pub name: String,
    /// The issuer identifier; discovery reads `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// Sent with `client_secret_basic`; empty: a public client (PKCE only).
    #[serde(default)]
    pub client_secret: Secret,
    #[serde(default = "default_oidc_scopes")]
    pub scopes: Vec<String>,
    /// Claims mapped to the account: its identifier (an XMPP localpart once lowercased),
    /// display name, mail and groups (empty `claim_groups`: groups are not read).
    #[serde(default = "default_claim_username")]
    pub claim_username: String,
    #[serde(default = "default_claim_name")]
    pub claim_name: String,
    #[serde(default = "default_claim_email")]
    pub claim_email: String,
    #[serde(default = "default_claim_groups")]
    pub claim_groups: String,
}

fn default_oidc_scopes() -> Vec<String> {
    ["openid", "profile", "email"].map(String::from).to_vec()
}
fn default_claim_username() -> String {
    "preferred_username".into()
}
fn default_claim_name() -> String {
    "name".into()
}
fn default_claim_email() -> String {
    "email".into()
}
fn default_claim_groups() -> String {
    "groups".into()
}

/// Whether `url` is `https://…`, or `http://` to a loopback host (test providers only).
pub fn oidc_url_allowed(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Config {
    /// `[oidc]` and each `[[oidc.issuers]]`.
    fn validate_oidc(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        let o = &self.oidc;
        if o.token_lifetime < Duration::from_secs(60) || o.token_lifetime > Duration::from_secs(30 * 86_400) {
            return invalid("oidc.token_lifetime", "must be between 60s and 720h (\"8h\" is usual)".into());
        }
        let url = o.public_url.trim_end_matches('/');
        if !url.is_empty()
            && (!(url.starts_with("https://") || url.starts_with("http://")) || url.contains(['?', '#', ' ']))
        {
            return invalid(
                "oidc.public_url",
                format!("{url:?} is not a base URL: write \"https://chat.example.org\" (no query, no fragment)"),
            );
        }
        if o.issuers.is_empty() {
            return Ok(());
        }
        if url.is_empty() && self.http.listen.is_empty() && self.http.tls_listen.is_empty() {
            return invalid(
                "oidc.issuers",
                "single sign-on comes back through the web server: add an [http] listener or set oidc.public_url"
                    .into(),
            );
        }
        for (i, p) in o.issuers.iter().enumerate() {
            let id = &p.id;
            let slug = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
            if id.is_empty() || id.len() > 64 || !id.chars().all(slug) {
                return invalid("oidc.issuers.id", format!("{id:?}: use 1 to 64 of a-z, 0-9 and -, e.g. \"agents\""));
            }
            if o.issuers[..i].iter().any(|q| q.id == *id) {
                return invalid("oidc.issuers.id", format!("{id:?} appears twice; each issuer needs its own id"));
            }
            if p.name.trim().is_empty() {
                return invalid("oidc.issuers.name", format!("{id}: give the name people choose in the list"));
            }
            if !oidc_url_allowed(&p.issuer) || p.issuer.contains(['?', '#']) {
                return invalid(
                    "oidc.issuers.issuer",
                    format!(
                        "{id}: {:?} must be an https:// URL (http:// only for a provider on this machine)",
                        p.issuer
                    ),
                );
            }
            if p.client_id.is_empty() {
                return invalid("oidc.issuers.client_id", format!("{id}: the client id registered at the provider"));
            }
            if !p.scopes.iter().any(|s| s == "openid") {
                return invalid("oidc.issuers.scopes", format!("{id}: must include \"openid\""));
            }
            if p.scopes.iter().any(|s| s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '"')) {
                return invalid("oidc.issuers.scopes", format!("{id}: scopes are single words such as \"email\""));
            }
            for (key, claim) in [
                ("oidc.issuers.claim_username", &p.claim_username),
                ("oidc.issuers.claim_name", &p.claim_name),
                ("oidc.issuers.claim_email", &p.claim_email),
            ] {
                if claim.is_empty() {
                    return invalid(key, format!("{id}: name the ID token claim to read, e.g. \"name\""));
                }
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
    fn media_tcp_listen_is_optional_and_needs_a_port_of_its_own() {
        let base = "[server]\ndomain='localhost'\n[c2s]\nstarttls_listen=['127.0.0.1:5222']\n[media]\n";
        assert_eq!(Config::parse("t", base).unwrap().media.tcp_listen, None);
        let c = Config::parse("t", &format!("{base}tcp_listen='0.0.0.0:4443'\n")).unwrap();
        assert_eq!(c.media.tcp_listen, Some("0.0.0.0:4443".parse().unwrap()));
        let err = Config::parse("t", &format!("{base}tcp_listen='0.0.0.0:5222'\n")).unwrap_err().to_string();
        assert!(err.starts_with("media.tcp_listen"), "{err}");
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
    fn archive_defaults_and_keys() {
        let c = Config::load(None).unwrap();
        assert!(c.archive.enabled);
        assert_eq!((c.archive.max_messages_per_user, c.archive.expire_after_days), (10_000, 0));
        let c = Config::parse("t", "[server]\ndomain='localhost'\n[archive]\nenabled=false\nexpire_after_days=30\n")
            .unwrap();
        assert!(!c.archive.enabled);
        assert_eq!(c.archive.expire_after_days, 30);
        assert!(Config::parse("t", "[server]\ndomain='localhost'\n[archive]\nmax_messages=5\n").is_err());
    }

    #[test]
    fn upload_and_turn() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.upload_domain().as_deref(), Some("upload.localhost"));
        // No web server, no upload service.
        let c = Config::parse("t", "[server]\ndomain='localhost'\n").unwrap();
        assert_eq!(c.upload_domain(), None);
        let http = "[server]\ndomain='localhost'\n[http]\nlisten=['127.0.0.1:0']\n";
        let err = Config::parse("t", &format!("{http}[upload]\ndomain='conference.localhost'\n")).unwrap_err();
        assert!(err.to_string().starts_with("upload.domain"), "{err}");
        let turn = |s: &str| Config::parse("t", &format!("[server]\ndomain='localhost'\n[turn]\n{s}\n"));
        assert!(turn("services=[{type='turn', host='t.example', port=3478, transport='udp'}]").is_ok());
        for (bad, key) in [
            ("services=[{type='turnz', host='t', port=3478}]", "turn.services"),
            ("services=[{type='turn', host='', port=3478}]", "turn.services"),
            ("services=[{type='turn', host='t', port=3478, username='u'}]", "turn.services"),
            ("secret='short'", "turn.secret"),
            ("ttl='10s'", "turn.ttl"),
        ] {
            let err = turn(bad).unwrap_err().to_string();
            assert!(err.starts_with(key), "{bad}: {err}");
        }
    }

    #[test]
    fn oidc_issuers_are_checked_with_key_names() {
        let base = "[server]\ndomain='localhost'\n[http]\nlisten=['127.0.0.1:0']\n";
        let issuer =
            "[[oidc.issuers]]\nid='agents'\nname='Agents'\nissuer='http://127.0.0.1:9001'\nclient_id='amphi'\n";
        let c = Config::parse("t", &format!("{base}{issuer}")).unwrap();
        assert_eq!(c.oidc.issuers[0].claim_username, "preferred_username");
        assert_eq!(c.oidc.token_lifetime, Duration::from_secs(8 * 3600));
        for (extra, key) in [
            (issuer.replace("'agents'", "'Agents!'"), "oidc.issuers.id"),
            (format!("{issuer}{issuer}"), "oidc.issuers.id"),
            (issuer.replace("http://127.0.0.1:9001", "http://idp.example.org"), "oidc.issuers.issuer"),
            (issuer.replace("client_id='amphi'", "client_id=''"), "oidc.issuers.client_id"),
            (format!("{issuer}scopes=['email']\n"), "oidc.issuers.scopes"),
            (format!("{issuer}colour='red'\n"), "colour"),
            ("[oidc]\ntoken_lifetime='1s'\n".to_string(), "oidc.token_lifetime"),
            ("[oidc]\npublic_url='chat.example.org'\n".to_string(), "oidc.public_url"),
        ] {
            let err = Config::parse("t", &format!("{base}{extra}")).unwrap_err().to_string();
            assert!(err.contains(key), "{extra:?}: {err}");
        }
        let example = Config::parse("examples/oidc.toml", include_str!("../examples/oidc.toml")).unwrap();
        assert_eq!(example.oidc.issuers.len(), 2);
        assert!(!format!("{:?}", example.oidc).contains("change me"), "Debug hides client secrets");
        let no_http = Config::parse("t", &format!("[server]\ndomain='localhost'\n{issuer}")).unwrap_err();
        assert!(no_http.to_string().starts_with("oidc.issuers"), "{no_http}");
        assert!(oidc_url_allowed("https://idp.example.org") && oidc_url_allowed("http://[::1]:9001/x"));
        assert!(oidc_url_allowed("http://localhost:9001") && !oidc_url_allowed("http://127.0.0.1.evil.org"));
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
