//! Stream negotiation for client streams (RFC 6120 §4–§6), sans-IO.
//!
//! Inputs are framer events and the answers to the questions the core asks (credentials,
//! registration results, TLS done); outputs say what to send and what to do. The core
//! reads no clock and touches no socket. It ends when the client is authenticated and has
//! restarted the stream: from then on every element is a [`Output::Stanza`] for the session.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use minidom::Element;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::error::{StanzaError, StreamCondition, StreamError};
use crate::sasl::{self, ChannelBindings, Credentials, Mechanism, ServerSession, Step};
use crate::xml::{ns, AttrExt};

/// What the negotiation needs to know about the server and the transport.
#[derive(Debug, Clone)]
pub struct Settings {
    pub domain: String,
    pub require_encryption: bool,
    pub registration: bool,
    /// Whether STARTTLS can be offered (false on a direct-TLS port, where we start secure).
    pub starttls_available: bool,
    /// How many failed SASL attempts one stream may make before it is closed.
    pub max_auth_attempts: u32,
    /// XEP-0115 `<c/>` of the server, added to every features element; shared with
    /// [`crate::server::Server::caps`] rather than copied into every connection.
    pub caps: Option<Arc<Element>>,
    /// Offer SASL OAUTHBEARER (single sign-on tokens) on encrypted streams.
    pub oauthbearer: bool,
}

#[derive(Debug)]
pub enum Input {
    StreamOpen(BTreeMap<String, String>),
    Element(Element),
    StreamClose,
    /// The TLS handshake finished (after STARTTLS, or at once on a direct-TLS port).
    TlsEstablished(ChannelBindings),
    /// Answer to [`Output::NeedCredentials`].
    Credentials(Option<Credentials>),
    /// Answer to [`Output::Register`]: the iq id and the outcome.
    Registered(Result<(), StanzaError>),
    /// The caller refuses this attempt before it starts (throttled); `text` says why.
    AuthThrottled(String),
    /// An external backend's verdict on the PLAIN password (see `plain_password`);
    /// `Err` when the backend is unreachable.
    PlainVerdict(Result<bool, String>),
    /// Answer to [`Output::CheckToken`]: the token's account, `None` if it signs in nobody.
    TokenOwner(Option<String>),
}

#[derive(Debug)]
pub enum Output {
    /// Send our stream header (`<stream:stream>` on TCP, `<open/>` on WebSocket).
    SendHeader {
        to: Option<String>,
        id: String,
        lang: String,
    },
    SendElement(Element),
    /// Send `<proceed/>` was queued before this; now run the TLS handshake.
    StartTls,
    /// The stream restarts: reset the XML parser.
    Restart,
    /// Close the stream, with an error if there is one.
    Close(Option<StreamError>),
    NeedCredentials(String),
    /// OAUTHBEARER: which account does this token sign in? Answer with [`Input::TokenOwner`].
    CheckToken(sasl::oauthbearer::BearerToken),
    /// In-band registration (XEP-0077) before authentication.
    Register {
        username: String,
        password: String,
    },
    /// A SASL attempt failed; for throttling and logs.
    AuthFailed {
        username: Option<String>,
        /// The mechanism was SCRAM (which cannot work for accounts without stored keys).
        scram: bool,
        /// A wrong password or proof, as opposed to a backend that could not answer.
        wrong_credentials: bool,
    },
    /// Authenticated; the session may now bind a resource.
    Authenticated(String),
    /// A stanza (or other element) of an authenticated stream.
    Stanza(Element),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitHeader,
    Open,
    AwaitTls,
    Closed,
}

pub struct Negotiation {
    settings: Settings,
    phase: Phase,
    secure: bool,
    bindings: ChannelBindings,
    sasl: Option<ServerSession>,
    username: Option<String>,
    authenticated: bool,
    failed_attempts: u32,
    register_iq: Option<Element>,
    stream_id: String,
    lang: String,
    out: VecDeque<Output>,
}

impl Negotiation {
    /// `secure` is true for direct TLS: [`Input::TlsEstablished`] must still be given.
    pub fn new(settings: Settings, stream_id: String) -> Negotiation {
        Negotiation {
            settings,
            phase: Phase::AwaitHeader,
            secure: false,
            bindings: ChannelBindings::default(),
            sasl: None,
            username: None,
            authenticated: false,
            failed_attempts: 0,
            register_iq: None,
            stream_id,
            lang: "en".into(),
            out: VecDeque::new(),
        }
    }

    /// Give back memory an idle stream does not need: the output queue's capacity (it
    /// grew during negotiation and would be kept for the connection's life) and, once
    /// authenticated, the channel bindings, which only SASL reads.
    pub fn shrink(&mut self) {
        if self.out.is_empty() {
            self.out = VecDeque::new();
        }
        if self.authenticated {
            self.bindings = ChannelBindings::default();
        }
    }

    pub fn is_secure(&self) -> bool {
        self.secure
    }

    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// During a PLAIN exchange waiting for credentials: the user name and password, for
    /// backends that check passwords themselves (LDAP).
    pub fn plain_password(&self) -> Option<(&str, &str)> {
        self.sasl.as_ref().and_then(|s| s.plain_password())
    }

    pub fn lang(&self) -> &str {
        &self.lang
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub fn handle_input(&mut self, input: Input) {
        if self.phase == Phase::Closed {
            return;
        }
        match input {
            Input::StreamOpen(attrs) => self.stream_open(attrs),
            Input::StreamClose => {
                self.phase = Phase::Closed;
                self.out.push_back(Output::Close(None));
            }
            Input::TlsEstablished(bindings) => {
                self.secure = true;
                self.bindings = bindings;
                self.phase = Phase::AwaitHeader;
            }
            Input::Element(el) => self.element(el),
            Input::Credentials(creds) => {
                if let Some(mut s) = self.sasl.take() {
                    let step = s.credentials(creds);
                    self.sasl_step(s, step);
                }
            }
            Input::PlainVerdict(verdict) => {
                if let Some(mut s) = self.sasl.take() {
                    let step = s.external_verdict(verdict);
                    self.sasl_step(s, step);
                }
            }
            Input::TokenOwner(owner) => {
                if let Some(mut s) = self.sasl.take() {
                    let step = s.token_owner(owner, &self.settings.domain);
                    self.sasl_step(s, step);
                }
            }
            Input::AuthThrottled(text) => {
                self.sasl = None;
                self.sasl_failure(sasl::Failure::TemporaryAuthFailure, Some(&text));
            }
            Input::Registered(result) => self.registered(result),
        }
    }

    fn close(&mut self, condition: StreamCondition, text: impl Into<String>) {
        self.phase = Phase::Closed;
        self.out.push_back(Output::Close(Some(StreamError::new(condition, text))));
    }

    fn stream_open(&mut self, attrs: BTreeMap<String, String>) {
        if self.phase != Phase::AwaitHeader {
            return self.close(StreamCondition::NotWellFormed, "unexpected stream header");
        }
        if let Some(lang) = attrs.get("xml:lang").filter(|l| !l.is_empty() && l.len() <= 35) {
            self.lang = lang.clone();
        }
        // RFC 6120 §4.7.2: echo the client's 'from' as our 'to' only if it is a valid JID.
        let to = attrs.get("from").filter(|f| jid::Jid::new(f).is_ok()).cloned();
        self.out.push_back(Output::SendHeader { to, id: self.stream_id.clone(), lang: self.lang.clone() });
        match attrs.get("to") {
            None => {
                return self.close(StreamCondition::HostUnknown, "the stream header needs a 'to' naming this server")
            }
            Some(to) if !to.eq_ignore_ascii_case(&self.settings.domain) => {
                return self.close(
                    StreamCondition::HostUnknown,
                    format!("this server serves {}, not {to}", self.settings.domain),
                )
            }
            _ => {}
        }
        // RFC 6120 §4.8.2: client streams carry jabber:client (WebSocket's <open/> has none).
        if let Some(content) = attrs.get("xmlns").filter(|c| *c != ns::CLIENT) {
            return self.close(
                StreamCondition::InvalidNamespace,
                format!("the stream's content namespace must be '{}', not '{content}'", ns::CLIENT),
            );
        }
        match attrs.get("version").map(String::as_str) {
            Some(v) if v.split('.').next().and_then(|m| m.parse::<u32>().ok()) == Some(1) => {}
            Some(_) => return self.close(StreamCondition::UnsupportedVersion, "only XMPP version 1.0 is supported"),
            None => {
                return self.close(StreamCondition::UnsupportedVersion, "a version='1.0' stream header is required")
            }
        }
        self.phase = Phase::Open;
        let features = self.features();
        self.out.push_back(Output::SendElement(features));
    }

    fn tls_required_now(&self) -> bool {
        !self.secure && self.settings.require_encryption
    }

    fn mechanisms(&self) -> Vec<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .filter(|m| match m {
                Mechanism::Plain => self.secure,
                Mechanism::OAuthBearer => self.secure && self.settings.oauthbearer,
                m if m.is_plus() => self.secure && !self.bindings.types().is_empty(),
                _ => true,
            })
            .collect()
    }

    fn features(&self) -> Element {
        let mut f = crate::xml::stream_element("features");
        if let Some(c) = &self.settings.caps {
            f = f.append(Element::clone(c));
        }
        if self.authenticated {
            f = f
                .append(Element::bare("bind", ns::BIND))
                .append(Element::builder("session", ns::SESSION).append(Element::bare("optional", ns::SESSION)).build())
                .append(Element::bare("ver", ns::ROSTER_VER))
                .append(Element::bare("sub", ns::PRE_APPROVAL))
                .append(Element::bare("csi", crate::c2s::session::NS_CSI))
                .append(Element::bare("sm", crate::c2s::sm::NS));
            return f.build();
        }
        if !self.secure && self.settings.starttls_available {
            let mut tls = Element::builder("starttls", ns::TLS);
            if self.settings.require_encryption {
                tls = tls.append(Element::bare("required", ns::TLS));
            }
            f = f.append(tls.build());
        }
        if self.tls_required_now() {
            // RFC 6120 §5.3.1: when TLS is mandatory, offer nothing else before it.
            return f.build();
        }
        let mut mechs = Element::builder("mechanisms", ns::SASL);
        for m in self.mechanisms() {
            mechs = mechs.append(Element::builder("mechanism", ns::SASL).append(m.name()).build());
        }
        f = f.append(mechs.build());
        let cb_types = self.bindings.types();
        if !cb_types.is_empty() {
            // XEP-0440: the channel-binding types we support.
            let mut cb = Element::builder("sasl-channel-binding", ns::SASL_CB);
            for t in cb_types {
                cb = cb.append(Element::builder("channel-binding", ns::SASL_CB).a("type", t).build());
            }
            f = f.append(cb.build());
        }
        if self.settings.registration {
            f = f.append(Element::bare("register", ns::REGISTER_FEATURE));
        }
        f.build()
    }

    fn element(&mut self, el: Element) {
        if self.phase == Phase::AwaitTls {
            return self
                .close(StreamCondition::PolicyViolation, "no data may follow <starttls/> before the TLS handshake");
        }
        if self.phase != Phase::Open {
            return self.close(StreamCondition::NotWellFormed, "element before the stream header");
        }
        if self.authenticated {
            self.out.push_back(Output::Stanza(el));
            return;
        }
        match (el.ns().as_str(), el.name()) {
            (ns::TLS, "starttls") => self.starttls(),
            (ns::SASL, "auth") => self.auth(&el),
            (ns::SASL, "response") => self.response(&el),
            (ns::SASL, "abort") => {
                self.sasl = None;
                self.sasl_failure(sasl::Failure::Aborted, None);
            }
            (ns::CLIENT, "iq")
                if el.has_child("query", ns::REGISTER) && self.settings.registration && !self.tls_required_now() =>
            {
                self.register(el)
            }
            (ns::CLIENT, "iq" | "message" | "presence") => {
                self.close(StreamCondition::NotAuthorized, "authenticate (SASL) before sending stanzas")
            }
            _ => self.close(
                StreamCondition::UnsupportedStanzaType,
                format!("unexpected <{}/> before authentication", el.name()),
            ),
        }
    }

    fn starttls(&mut self) {
        if self.secure || !self.settings.starttls_available {
            self.out.push_back(Output::SendElement(Element::bare("failure", ns::TLS)));
            return self.close(StreamCondition::PolicyViolation, "TLS is already in place");
        }
        self.out.push_back(Output::SendElement(Element::bare("proceed", ns::TLS)));
        self.phase = Phase::AwaitTls;
        self.out.push_back(Output::StartTls);
    }

    fn auth(&mut self, el: &Element) {
        if self.sasl.is_some() {
            return self.close(StreamCondition::PolicyViolation, "an authentication exchange is already running");
        }
        if self.tls_required_now() {
            return self
                .sasl_failure(sasl::Failure::EncryptionRequired, Some("start TLS (STARTTLS) before authenticating"));
        }
        let Some(mechanism) =
            el.attr("mechanism").and_then(Mechanism::from_name).filter(|m| self.mechanisms().contains(m))
        else {
            let text = if el.attr("mechanism") == Some("PLAIN") {
                "PLAIN is only offered over TLS"
            } else {
                "choose one of the advertised mechanisms"
            };
            return self.sasl_failure(sasl::Failure::InvalidMechanism, Some(text));
        };
        let advertised_plus = self.mechanisms().iter().any(|m| m.is_plus());
        let mut session = ServerSession::new(mechanism, self.bindings.clone(), advertised_plus);
        let text = el.text();
        let data = match text.trim() {
            "" => None,
            "=" => Some(Vec::new()),
            t => match B64.decode(t) {
                Ok(d) => Some(d),
                Err(_) => return self.sasl_failure(sasl::Failure::IncorrectEncoding, None),
            },
        };
        match data {
            // No initial response: ask for it with an empty challenge (RFC 6120 §6.4.2).
            None => {
                self.out.push_back(Output::SendElement(Element::bare("challenge", ns::SASL)));
                self.sasl = Some(session);
            }
            Some(d) => {
                let step = session.respond(&d);
                self.sasl_step(session, step);
            }
        }
    }

    fn response(&mut self, el: &Element) {
        let Some(mut session) = self.sasl.take() else {
            return self.sasl_failure(sasl::Failure::MalformedRequest, Some("no authentication exchange is running"));
        };
        let text = el.text();
        let Ok(data) = B64.decode(text.trim()) else {
            return self.sasl_failure(sasl::Failure::IncorrectEncoding, None);
        };
        let step = session.respond(&data);
        self.sasl_step(session, step);
    }

    fn sasl_step(&mut self, session: ServerSession, step: Step) {
        match step {
            Step::Challenge(data) => {
                self.out.push_back(Output::SendElement(
                    Element::builder("challenge", ns::SASL).append(B64.encode(data)).build(),
                ));
                self.sasl = Some(session);
            }
            Step::NeedCredentials(user) => {
                self.username = Some(user.clone());
                self.sasl = Some(session);
                self.out.push_back(Output::NeedCredentials(user));
            }
            Step::NeedToken(token) => {
                self.sasl = Some(session);
                self.out.push_back(Output::CheckToken(token));
            }
            Step::Success { username, additional } => {
                let mut success = Element::builder("success", ns::SASL);
                if !additional.is_empty() {
                    success = success.append(B64.encode(additional));
                }
                self.out.push_back(Output::SendElement(success.build()));
                self.authenticated = true;
                self.phase = Phase::AwaitHeader;
                self.out.push_back(Output::Restart);
                self.out.push_back(Output::Authenticated(username));
            }
            Step::Failure { failure, username } => {
                self.out.push_back(Output::AuthFailed {
                    username: username.or_else(|| self.username.take()),
                    scram: session.mechanism().is_scram(),
                    wrong_credentials: failure == sasl::Failure::NotAuthorized,
                });
                self.sasl_failure(failure, None);
            }
        }
    }

    fn sasl_failure(&mut self, failure: sasl::Failure, text: Option<&str>) {
        let mut f = Element::builder("failure", ns::SASL).append(Element::bare(failure.name(), ns::SASL));
        if let Some(text) = text {
            f = f.append(crate::xml::with_lang(Element::builder("text", ns::SASL), "en").append(text).build());
        }
        self.out.push_back(Output::SendElement(f.build()));
        if matches!(failure, sasl::Failure::NotAuthorized | sasl::Failure::TemporaryAuthFailure) {
            self.failed_attempts += 1;
            if self.failed_attempts >= self.settings.max_auth_attempts {
                self.close(StreamCondition::PolicyViolation, "too many failed authentication attempts");
            }
        }
    }

    fn register(&mut self, iq: Element) {
        let query = iq.get_child("query", ns::REGISTER);
        match (iq.attr("type"), iq.attr("id")) {
            (Some("get"), Some(_)) => {
                let form = Element::builder("query", ns::REGISTER)
                    .append(
                        Element::builder("instructions", ns::REGISTER)
                            .append("Choose a username and password to create an account on this server.")
                            .build(),
                    )
                    .append(Element::bare("username", ns::REGISTER))
                    .append(Element::bare("password", ns::REGISTER))
                    .build();
                self.out.push_back(Output::SendElement(iq_result(&iq, Some(form))));
            }
            (Some("set"), Some(_)) if self.register_iq.is_none() => {
                let field = |name| query.and_then(|q| q.get_child(name, ns::REGISTER)).map(|e| e.text());
                match (field("username"), field("password")) {
                    (Some(u), Some(p)) if !p.is_empty() => match sasl::normalize_username(u.trim()) {
                        Some(username) => {
                            self.register_iq = Some(iq);
                            self.out.push_back(Output::Register { username, password: p });
                        }
                        None => self.out.push_back(Output::SendElement(iq_error(
                            &iq,
                            StanzaError::jid_malformed().with_text("this username cannot be part of an address"),
                        ))),
                    },
                    _ => self.out.push_back(Output::SendElement(iq_error(
                        &iq,
                        StanzaError::not_acceptable().with_text("both username and password are required"),
                    ))),
                }
            }
            _ => self.out.push_back(Output::SendElement(iq_error(&iq, StanzaError::bad_request()))),
        }
    }

    fn registered(&mut self, result: Result<(), StanzaError>) {
        if let Some(iq) = self.register_iq.take() {
            let reply = match result {
                Ok(()) => iq_result(&iq, None),
                Err(e) => iq_error(&iq, e),
            };
            self.out.push_back(Output::SendElement(reply));
        }
    }
}

/// A result for `iq`, addressed back to its sender.
pub fn iq_result(iq: &Element, payload: Option<Element>) -> Element {
    let mut b = Element::builder("iq", ns::CLIENT).a("type", "result");
    if let Some(id) = iq.attr("id") {
        b = b.a("id", id);
    }
    if let Some(from) = iq.attr("from") {
        b = b.a("to", from);
    }
    if let Some(to) = iq.attr("to") {
        b = b.a("from", to);
    }
    if let Some(p) = payload {
        b = b.append(p);
    }
    b.build()
}

/// An error reply to any stanza (RFC 6120 §8.3.1): same name, type='error', addresses
/// swapped, the original payload kept.
pub fn iq_error(stanza: &Element, error: StanzaError) -> Element {
    crate::stanza::error_reply(stanza, error, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{write, Framer, FramerEvent, Limits};

    fn settings() -> Settings {
        Settings {
            domain: "localhost".into(),
            require_encryption: true,
            registration: true,
            starttls_available: true,
            max_auth_attempts: 3,
            caps: None,
            oauthbearer: true,
        }
    }

    fn feed(n: &mut Negotiation, xml: &str) -> Vec<Output> {
        let mut f = Framer::new(Limits::default());
        f.feed(format!("<stream:stream xmlns='jabber:client' xmlns:stream='{}'>{xml}", ns::STREAM).as_bytes());
        f.next_event().unwrap();
        while let Some(FramerEvent::Element(el)) = f.next_event().unwrap() {
            n.handle_input(Input::Element(el));
        }
        std::iter::from_fn(|| n.poll_output()).collect()
    }

    fn open(n: &mut Negotiation, to: &str) -> Vec<Output> {
        let mut attrs = BTreeMap::new();
        attrs.insert("to".into(), to.into());
        attrs.insert("version".into(), "1.0".into());
        n.handle_input(Input::StreamOpen(attrs));
        std::iter::from_fn(|| n.poll_output()).collect()
    }

    fn xml(o: &Output) -> String {
        match o {
            Output::SendElement(e) => String::from_utf8(write::element_bytes(e)).unwrap(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn tls_first_then_sasl() {
        let mut n = Negotiation::new(settings(), "id1".into());
        let out = open(&mut n, "localhost");
        assert!(matches!(out[0], Output::SendHeader { .. }));
        let features = xml(&out[1]);
        assert!(
            features.contains("starttls") && features.contains("required") && !features.contains("mechanism"),
            "{features}"
        );
        // PLAIN before TLS is refused with encryption-required.
        let out = feed(&mut n, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>");
        assert!(xml(&out[0]).contains("encryption-required"));
        let out = feed(&mut n, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        assert!(xml(&out[0]).contains("proceed"));
        assert!(matches!(out[1], Output::StartTls));
        n.handle_input(Input::TlsEstablished(ChannelBindings {
            tls_exporter: Some(vec![1; 32]),
            tls_server_end_point: None,
        }));
        let out = open(&mut n, "localhost");
        let features = xml(&out[1]);
        assert!(
            features.contains("SCRAM-SHA-256-PLUS") && features.contains("PLAIN") && features.contains("tls-exporter"),
            "{features}"
        );
        let out = feed(
            &mut n,
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldABzZWNyZXQ=</auth>",
        );
        assert!(matches!(&out[0], Output::NeedCredentials(u) if u == "juliet"));
        n.handle_input(Input::Credentials(Some(Credentials::derive("secret", 4096))));
        let out: Vec<_> = std::iter::from_fn(|| n.poll_output()).collect();
        assert!(xml(&out[0]).contains("<success"));
        assert!(matches!(out[1], Output::Restart));
        assert!(matches!(&out[2], Output::Authenticated(u) if u == "juliet"));
        let out = open(&mut n, "localhost");
        assert!(xml(&out[1]).contains("urn:ietf:params:xml:ns:xmpp-bind"));
    }

    #[test]
    fn oauthbearer_only_on_encrypted_streams_and_the_error_dance() {
        let mut n = Negotiation::new(settings(), "id".into());
        n.handle_input(Input::TlsEstablished(ChannelBindings::default()));
        assert!(xml(&open(&mut n, "localhost")[1]).contains("OAUTHBEARER"));
        let mut plain = Negotiation::new(Settings { require_encryption: false, ..settings() }, "id".into());
        assert!(!xml(&open(&mut plain, "localhost")[1]).contains("OAUTHBEARER"), "not before TLS");
        let mut off = Negotiation::new(Settings { oauthbearer: false, ..settings() }, "id".into());
        off.handle_input(Input::TlsEstablished(ChannelBindings::default()));
        assert!(!xml(&open(&mut off, "localhost")[1]).contains("OAUTHBEARER"), "no issuers configured");
        // n,,^Aauth=Bearer bad^A^A
        let out = feed(&mut n, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='OAUTHBEARER'>biwsAWF1dGg9QmVhcmVyIGJhZAEB</auth>");
        assert!(matches!(&out[0], Output::CheckToken(t) if t.0 == "bad"));
        n.handle_input(Input::TokenOwner(None));
        let out: Vec<_> = std::iter::from_fn(|| n.poll_output()).collect();
        assert!(
            xml(&out[0]).contains("<challenge") && xml(&out[0]).contains(&B64.encode(br#"{"status":"invalid_token"}"#))
        );
        let out = feed(&mut n, "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>AQ==</response>");
        assert!(matches!(out[0], Output::AuthFailed { wrong_credentials: true, scram: false, .. }));
        assert!(xml(&out[1]).contains("not-authorized"));
        let out = feed(&mut n, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='OAUTHBEARER'>biwsAWF1dGg9QmVhcmVyIGJhZAEB</auth>");
        assert!(matches!(&out[0], Output::CheckToken(_)));
        n.handle_input(Input::TokenOwner(Some("alice".into())));
        let out: Vec<_> = std::iter::from_fn(|| n.poll_output()).collect();
        assert!(xml(&out[0]).contains("<success"));
        assert!(matches!(&out[2], Output::Authenticated(u) if u == "alice"));
    }

    #[test]
    fn wrong_host_and_stanza_before_auth() {
        let mut n = Negotiation::new(settings(), "id".into());
        let out = open(&mut n, "example.net");
        assert!(matches!(&out[1], Output::Close(Some(e)) if e.condition == StreamCondition::HostUnknown));
        let mut n = Negotiation::new(settings(), "id".into());
        open(&mut n, "localhost");
        let out = feed(&mut n, "<message to='a@localhost'><body>x</body></message>");
        assert!(matches!(&out[0], Output::Close(Some(e)) if e.condition == StreamCondition::NotAuthorized));
    }

    #[test]
    fn repeated_failures_close_the_stream() {
        let mut n = Negotiation::new(settings(), "id".into());
        n.handle_input(Input::TlsEstablished(ChannelBindings::default()));
        open(&mut n, "localhost");
        let mut closed = false;
        for _ in 0..3 {
            feed(
                &mut n,
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAB3cm9uZw==</auth>",
            );
            n.handle_input(Input::Credentials(Some(Credentials::derive("secret", 4096))));
            closed = std::iter::from_fn(|| n.poll_output()).any(|o| matches!(o, Output::Close(Some(_))));
        }
        assert!(closed);
    }
}
