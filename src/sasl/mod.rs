//! SASL (RFC 4422) on the server side, sans-IO.
//!
//! A [`ServerSession`] takes the client's messages and answers with [`Step`]s. It never
//! touches the store: when it needs an account's keys it says so
//! ([`Step::NeedCredentials`]) and the caller feeds them back. Passwords are never stored;
//! accounts hold SCRAM keys ([`ScramKeys`]) from which PLAIN can be checked too.
//! OAUTHBEARER ([`oauthbearer`]) likewise asks ([`Step::NeedToken`]) which account a
//! single sign-on token belongs to.

pub mod credentials;
pub mod oauthbearer;
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
    /// RFC 7628, with amphi's single sign-on tokens (`crate::oidc::tokens`). Last: only
    /// clients that hold a token choose it.
    OAuthBearer,
}

impl Mechanism {
    pub const ALL: [Mechanism; 6] = [
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::Plain,
        Mechanism::OAuthBearer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
            Mechanism::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::Plain => "PLAIN",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn is_plus(self) -> bool {
        matches!(self, Mechanism::ScramSha256Plus | Mechanism::ScramSha1Plus)
    }

    pub fn is_scram(self) -> bool {
        !matches!(self, Mechanism::Plain | Mechanism::OAuthBearer)
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
    /// OAUTHBEARER: find the account this token signs in and call
    /// [`ServerSession::token_owner`].
    NeedToken(oauthbearer::BearerToken),
    /// Authenticated as `username`; send `<success/>` with `additional` data.
    Success { username: String, additional: Vec<u8> },
    /// Send `<failure/>`. `username` is set when the failure concerns a known identity,
    /// for throttling.
    Failure { failure: Failure, username: Option<String> },
}

enum State {
    Scram(Box<scram::ScramServer>),
    Plain,
    /// OAUTHBEARER waiting for the client's response.
    Bearer,
    /// OAUTHBEARER waiting for the token's owner; the client's authzid, if any.
    BearerToken(Option<String>),
    /// OAUTHBEARER after the error challenge, waiting for the client's `\x01`.
    BearerErrorSent,
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
            Mechanism::OAuthBearer => State::Bearer,
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
            State::Bearer => match oauthbearer::parse(data) {
                Ok(r) => {
                    self.state = State::BearerToken(r.authzid);
                    Step::NeedToken(r.token)
                }
                Err(f) => {
                    self.state = State::Done;
                    Step::Failure { failure: f, username: None }
                }
            },
            // RFC 7628 §3.2.3: whatever the client answers to the error, the exchange fails.
            State::BearerErrorSent => {
                self.state = State::Done;
                let failure = if data == b"\x01" { Failure::NotAuthorized } else { Failure::MalformedRequest };
                Step::Failure { failure, username: None }
            }
            State::BearerToken(_) | State::Done => Step::Failure { failure: Failure::MalformedRequest, username: None },
        }
    }

    /// OAUTHBEARER: the account the token signs in (`None`: unknown, expired or revoked).
    /// A bad token gets the RFC 7628 error challenge; an authzid naming someone else than
    /// the token's account gets `invalid-authzid`.
    pub fn token_owner(&mut self, owner: Option<String>, domain: &str) -> Step {
        let State::BearerToken(authzid) = std::mem::replace(&mut self.state, State::Done) else {
            return Step::Failure { failure: Failure::MalformedRequest, username: None };
        };
        match owner {
            None => {
                self.state = State::BearerErrorSent;
                Step::Challenge(oauthbearer::INVALID_TOKEN.to_vec())
            }
            Some(user) if authzid.as_deref().is_some_and(|a| !oauthbearer::authzid_matches(a, &user, domain)) => {
                Step::Failure { failure: Failure::InvalidAuthzid, username: Some(user) }
            }
            Some(user) => Step::Success { username: user, additional: Vec::new() },
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
            _ => Step::Failure { failure: Failure::MalformedRequest, username: None },
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

    fn bearer(initial: &[u8]) -> (ServerSession, Step) {
        let mut s = ServerSession::new(Mechanism::OAuthBearer, ChannelBindings::default(), false);
        let step = s.respond(initial);
        (s, step)
    }

    #[test]
    fn oauthbearer_good_token_signs_in_its_account() {
        let (mut s, step) = bearer(b"n,a=alice@localhost,\x01auth=Bearer t1\x01\x01");
        assert_eq!(step, Step::NeedToken(oauthbearer::BearerToken("t1".into())));
        assert_eq!(
            s.token_owner(Some("alice".into()), "localhost"),
            Step::Success { username: "alice".into(), additional: vec![] }
        );
        assert!(matches!(s.respond(b"\x01"), Step::Failure { failure: Failure::MalformedRequest, .. }), "done");
        let (mut s, _) = bearer(b"n,,\x01auth=Bearer t1\x01\x01");
        assert!(matches!(s.token_owner(Some("alice".into()), "localhost"), Step::Success { .. }), "no authzid");
    }

    #[test]
    fn oauthbearer_bad_token_gets_the_error_challenge_then_fails() {
        let (mut s, _) = bearer(b"n,,\x01auth=Bearer revoked\x01\x01");
        assert_eq!(s.token_owner(None, "localhost"), Step::Challenge(br#"{"status":"invalid_token"}"#.to_vec()));
        assert_eq!(s.respond(b"\x01"), Step::Failure { failure: Failure::NotAuthorized, username: None });
        let (mut s, _) = bearer(b"n,,\x01auth=Bearer revoked\x01\x01");
        s.token_owner(None, "localhost");
        assert!(matches!(s.respond(b"retry"), Step::Failure { failure: Failure::MalformedRequest, .. }));
    }

    #[test]
    fn oauthbearer_authzid_of_someone_else_is_refused() {
        let (mut s, _) = bearer(b"n,a=bob@localhost,\x01auth=Bearer alices\x01\x01");
        let step = s.token_owner(Some("alice".into()), "localhost");
        assert_eq!(step, Step::Failure { failure: Failure::InvalidAuthzid, username: Some("alice".into()) });
        let (_, step) = bearer(b"p=tls-exporter,,\x01auth=Bearer t\x01\x01");
        assert!(matches!(step, Step::Failure { failure: Failure::MalformedRequest, .. }));
        let (mut s, _) = bearer(b"n,,\x01auth=Bearer t\x01\x01");
        assert!(matches!(s.credentials(None), Step::Failure { failure: Failure::MalformedRequest, .. }));
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
