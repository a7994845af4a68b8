//! SASL (RFC 4422) on the server side, sans-IO.
//!
//! A [`ServerSession`] takes the client's messages and answers with [`Step`]s. It never
//! touches the store: when it needs an account's keys it says so
//! ([`Step::NeedCredentials`]) and the caller feeds them back. Passwords are never stored;
//! accounts hold SCRAM keys ([`ScramKeys`]) from which PLAIN can be checked too.

pub mod credentials;
pub mod scram;

pub use credentials::{Credentials, HashAlg, ScramKeys};

/// The mechanisms the server implements, strongest first (the order we advertise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    ScramSha256Plus,
    ScramSha1Plus,
    ScramSha256,
    ScramSha1,
    Plain,
}

impl Mechanism {
    pub const ALL: [Mechanism; 5] = [
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::Plain,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
            Mechanism::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::Plain => "PLAIN",
        }
    }

    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn is_plus(self) -> bool {
        matches!(self, Mechanism::ScramSha256Plus | Mechanism::ScramSha1Plus)
    }
}

/// Channel binding data of the TLS connection, when there is one.
#[derive(Debug, Clone, Default)]
pub struct ChannelBindings {
    /// RFC 9266 `tls-exporter` (TLS 1.3 only).
    pub tls_exporter: Option<Vec<u8>>,
    /// RFC 5929 `tls-server-end-point`.
    pub tls_server_end_point: Option<Vec<u8>>,
}

impl ChannelBindings {
    pub fn get(&self, kind: &str) -> Option<&[u8]> {
        match kind {
            "tls-exporter" => self.tls_exporter.as_deref(),
            "tls-server-end-point" => self.tls_server_end_point.as_deref(),
            _ => None,
        }
    }

    pub fn types(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.tls_exporter.is_some() {
            v.push("tls-exporter");
        }
        if self.tls_server_end_point.is_some() {
            v.push("tls-server-end-point");
        }
        v
    }
}

/// RFC 6120 §6.5 SASL failure conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Aborted,
    EncryptionRequired,
    IncorrectEncoding,
    InvalidAuthzid,
    InvalidMechanism,
    MalformedRequest,
    MechanismTooWeak,
    NotAuthorized,
    TemporaryAuthFailure,
}

impl Failure {
    pub fn name(self) -> &'static str {
        match self {
            Failure::Aborted => "aborted",
            Failure::EncryptionRequired => "encryption-required",
            Failure::IncorrectEncoding => "incorrect-encoding",
            Failure::InvalidAuthzid => "invalid-authzid",
            Failure::InvalidMechanism => "invalid-mechanism",
            Failure::MalformedRequest => "malformed-request",
            Failure::MechanismTooWeak => "mechanism-too-weak",
            Failure::NotAuthorized => "not-authorized",
            Failure::TemporaryAuthFailure => "temporary-auth-failure",
        }
    }
}

/// What the server does next in an exchange.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send `<challenge/>` with this data.
    Challenge(Vec<u8>),
    /// Look up this account's credentials and call [`ServerSession::credentials`].
    NeedCredentials(String),
    /// Authenticated as `username`; send `<success/>` with `additional` data.
    Success { username: String, additional: Vec<u8> },
    /// Send `<failure/>`. `username` is set when the failure concerns a known identity,
    /// for throttling.
    Failure { failure: Failure, username: Option<String> },
}

enum State {
    Scram(Box<scram::ScramServer>),
    Plain,
    Done,
}

/// One authentication exchange.
pub struct ServerSession {
    state: State,
    mechanism: Mechanism,
    plain_pending: Option<(String, String)>,
}

impl ServerSession {
    /// Start `mechanism`. `advertised_plus` says whether we offered -PLUS mechanisms, which
    /// SCRAM needs to detect a downgrade (RFC 5802 §6, the `y` flag).
    pub fn new(mechanism: Mechanism, bindings: ChannelBindings, advertised_plus: bool) -> ServerSession {
        let state = match mechanism {
            Mechanism::Plain => State::Plain,
            m => State::Scram(Box::new(scram::ScramServer::new(m, bindings, advertised_plus))),
        };
        ServerSession { state, mechanism, plain_pending: None }
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// A message from the client (the initial response or a `<response/>`).
    pub fn respond(&mut self, data: &[u8]) -> Step {
        match &mut self.state {
            State::Scram(s) => {
                let step = s.respond(data);
                self.finish_if_done(&step);
                step
            }
            State::Plain => match parse_plain(data) {
                Ok((user, pass)) => {
                    let step = Step::NeedCredentials(user.clone());
                    self.plain_pending = Some((user, pass));
                    step
                }
                Err(f) => {
                    self.state = State::Done;
                    Step::Failure { failure: f, username: None }
                }
            },
            State::Done => Step::Failure { failure: Failure::MalformedRequest, username: None },
        }
    }

    /// The credentials asked for by [`Step::NeedCredentials`] (`None`: no such account).
    pub fn credentials(&mut self, creds: Option<Credentials>) -> Step {
        let step = match &mut self.state {
            State::Scram(s) => s.credentials(creds),
            State::Plain => match (self.plain_pending.take(), creds) {
                (Some((user, pass)), Some(c)) if c.verify_password(&pass) => {
                    Step::Success { username: user, additional: Vec::new() }
                }
                (Some((user, _)), _) => Step::Failure { failure: Failure::NotAuthorized, username: Some(user) },
                (None, _) => Step::Failure { failure: Failure::MalformedRequest, username: None },
            },
            State::Done => Step::Failure { failure: Failure::MalformedRequest, username: None },
        };
        self.finish_if_done(&step);
        step
    }

    /// The account's password checked by an external backend (PLAIN only).
    pub fn plain_password(&self) -> Option<(&str, &str)> {
        self.plain_pending.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The verdict of an external backend (a directory) on [`Self::plain_password`]:
    /// `Err` when the backend could not answer (temporary-auth-failure).
    pub fn external_verdict(&mut self, verdict: Result<bool, String>) -> Step {
        let step = match (self.plain_pending.take(), verdict) {
            (Some((user, _)), Ok(true)) => Step::Success { username: user, additional: Vec::new() },
            (Some((user, _)), Ok(false)) => Step::Failure { failure: Failure::NotAuthorized, username: Some(user) },
            (Some((user, _)), Err(_)) => Step::Failure { failure: Failure::TemporaryAuthFailure, username: Some(user) },
            (None, _) => Step::Failure { failure: Failure::MalformedRequest, username: None },
        };
        self.finish_if_done(&step);
        step
    }

    fn finish_if_done(&mut self, step: &Step) {
        if matches!(step, Step::Success { .. } | Step::Failure { .. }) {
            self.state = State::Done;
        }
    }
}

/// RFC 4616: `[authzid] NUL authcid NUL passwd`.
fn parse_plain(data: &[u8]) -> Result<(String, String), Failure> {
    let text = std::str::from_utf8(data).map_err(|_| Failure::IncorrectEncoding)?;
    let mut parts = text.split('\0');
    let (authzid, authcid, passwd) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(z), Some(c), Some(p), None) => (z, c, p),
        _ => return Err(Failure::MalformedRequest),
    };
    if authcid.is_empty() || passwd.is_empty() {
        return Err(Failure::NotAuthorized);
    }
    let user = normalize_username(authcid).ok_or(Failure::NotAuthorized)?;
    if !authzid.is_empty() {
        // Only "act as yourself" is allowed: the authzid must be the user's own bare JID or name.
        let own = authzid == user || authzid.split('@').next().and_then(normalize_username).as_deref() == Some(&user);
        if !own {
            return Err(Failure::InvalidAuthzid);
        }
    }
    Ok((user, passwd.to_string()))
}

/// Usernames are JID localparts; normalise them the way JIDs are (PRECIS
/// UsernameCaseMapped via the jid crate), so "Romeo" and "romeo" are one account.
pub fn normalize_username(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 1023 {
        return None;
    }
    jid::NodePart::new(name).ok().map(|n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_checks_the_password_against_scram_keys() {
        let creds = Credentials::derive("secret", 4096);
        let mut s = ServerSession::new(Mechanism::Plain, ChannelBindings::default(), false);
        assert_eq!(s.respond(b"\0Juliet\0secret"), Step::NeedCredentials("juliet".into()));
        assert_eq!(s.credentials(Some(creds.clone())), Step::Success { username: "juliet".into(), additional: vec![] });
        let mut s = ServerSession::new(Mechanism::Plain, ChannelBindings::default(), false);
        s.respond(b"\0juliet\0wrong");
        assert!(matches!(s.credentials(Some(creds)), Step::Failure { failure: Failure::NotAuthorized, .. }));
    }

    #[test]
    fn plain_refuses_other_authzid_and_malformed() {
        let mut s = ServerSession::new(Mechanism::Plain, ChannelBindings::default(), false);
        assert!(matches!(s.respond(b"romeo\0juliet\0x"), Step::Failure { failure: Failure::InvalidAuthzid, .. }));
        let mut s = ServerSession::new(Mechanism::Plain, ChannelBindings::default(), false);
        assert!(matches!(s.respond(b"juliet"), Step::Failure { failure: Failure::MalformedRequest, .. }));
        let mut s = ServerSession::new(Mechanism::Plain, ChannelBindings::default(), false);
        assert!(matches!(s.respond(b"\xff\0a\0b"), Step::Failure { failure: Failure::IncorrectEncoding, .. }));
    }
}
