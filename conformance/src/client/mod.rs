//! The suite's own XMPP client: TCP + STARTTLS or direct TLS, SASL, resource binding, in-band
//! registration, then a [`Session`] that sends stanzas and queues what arrives.
//!
//! It is written for testing servers: no certificate checks (see `tls`), a timeout on every
//! negotiation read, and errors that say which step of the negotiation failed.

pub mod sasl;
mod session;
pub mod stream;
pub mod tls;

pub use session::{Incoming, Session};

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use minidom::Element;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::framer::FramerError;
use sasl::{Mechanism, SaslError, ScramClient};
use stream::{BoxIo, XmlStream};

const NS_CLIENT: &str = "jabber:client";
const NS_TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
const NS_SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
const NS_BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
const NS_SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
const NS_REGISTER: &str = "jabber:iq:register";
const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// Where and how to reach the server under test.
#[derive(Debug, Clone)]
pub struct ServerOpts {
    pub host: String,
    pub port: u16,
    pub domain: String,
    pub direct_tls: bool,
    /// Limit for each negotiation read.
    pub timeout: Duration,
    /// Force one SASL mechanism instead of the strongest offered.
    pub mechanism: Option<Mechanism>,
}

/// Why a connection, negotiation or registration failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Framer(#[from] FramerError),
    #[error("server closed the connection")]
    Closed,
    #[error("timed out waiting for {0}")]
    Timeout(String),
    #[error("stream error from server: {0}")]
    StreamError(String),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("SASL: {0}")]
    Sasl(#[from] SaslError),
    #[error("authentication failed: {0}")]
    AuthFailed(String),
    #[error("registration refused: {0}")]
    Register(String),
}

/// Names the condition of a `<failure/>` or stanza `<error/>` element, with its text.
fn describe_condition(el: &Element) -> String {
    let condition = el
        .children()
        .find(|c| c.name() != "text")
        .map(|c| c.name().to_string())
        .unwrap_or_else(|| "no condition".into());
    match el.children().find(|c| c.name() == "text").map(|t| t.text()) {
        Some(t) if !t.is_empty() => format!("{condition} ({t})"),
        _ => condition,
    }
}

/// Opens TCP, secures it (STARTTLS or direct TLS) and returns the post-TLS stream features.
pub(crate) async fn secure_stream(opts: &ServerOpts) -> Result<(XmlStream, Element), ClientError> {
    let tcp = TcpStream::connect((opts.host.as_str(), opts.port)).await?;
    tcp.set_nodelay(true)?;
    let connector = tls::connector().map_err(|e| ClientError::Tls(e.to_string()))?;
    let name = ServerName::try_from(opts.domain.clone())
        .map_err(|e| ClientError::Tls(format!("bad server name {:?}: {e}", opts.domain)))?;
    let io: BoxIo = if opts.direct_tls {
        Box::new(connector.connect(name, tcp).await.map_err(|e| ClientError::Tls(e.to_string()))?)
    } else {
        let mut xs = XmlStream::new(Box::new(tcp), opts.timeout);
        let features = xs.open(&opts.domain).await?;
        if !features.has_child("starttls", NS_TLS) {
            return Err(ClientError::Protocol("server does not offer STARTTLS".into()));
        }
        xs.write(&format!("<starttls xmlns='{NS_TLS}'/>")).await?;
        let answer = xs.next_element("STARTTLS <proceed/>").await?;
        if !answer.is("proceed", NS_TLS) {
            return Err(ClientError::Tls(format!("STARTTLS refused: <{}/>", answer.name())));
        }
        Box::new(connector.connect(name, xs.io).await.map_err(|e| ClientError::Tls(e.to_string()))?)
    };
    let mut xs = XmlStream::new(io, opts.timeout);
    let features = xs.open(&opts.domain).await?;
    Ok((xs, features))
}

fn fresh_nonce() -> Result<String, ClientError> {
    let mut bytes = [0u8; 18];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| ClientError::Protocol("no randomness".into()))?;
    Ok(B64.encode(bytes))
}

fn sasl_element(name: &str, mechanism: Option<&str>, data: &[u8]) -> String {
    let payload = if data.is_empty() { "=".to_string() } else { B64.encode(data) };
    match mechanism {
        Some(m) => format!("<{name} xmlns='{NS_SASL}' mechanism='{m}'>{payload}</{name}>"),
        None => format!("<{name} xmlns='{NS_SASL}'>{payload}</{name}>"),
    }
}

fn decode_sasl(el: &Element) -> Result<Vec<u8>, ClientError> {
    let text = el.text();
    let text = text.trim();
    if text.is_empty() || text == "=" {
        return Ok(Vec::new());
    }
    B64.decode(text).map_err(|_| ClientError::Protocol("SASL data is not base64".into()))
}

/// Runs SASL with the strongest offered mechanism (or the forced one).
pub(crate) async fn authenticate(
    xs: &mut XmlStream,
    features: &Element,
    opts: &ServerOpts,
    username: &str,
    password: &str,
) -> Result<(), ClientError> {
    let offered: Vec<String> = features
        .get_child("mechanisms", NS_SASL)
        .map(|m| m.children().map(|c| c.text().trim().to_string()).collect())
        .unwrap_or_default();
    let wanted: Vec<Mechanism> = match opts.mechanism {
        Some(m) => vec![m],
        None => Mechanism::PREFERENCE.to_vec(),
    };
    let mechanism = wanted
        .into_iter()
        .find(|m| offered.iter().any(|o| o == m.name()))
        .ok_or_else(|| ClientError::AuthFailed(format!("no usable mechanism in {offered:?}")))?;

    let mut scram = ScramClient::new(mechanism, username, password, &fresh_nonce()?);
    let initial = match &scram {
        Some(s) => s.client_first(),
        None => sasl::plain(username, password),
    };
    xs.write(&sasl_element("auth", Some(mechanism.name()), &initial)).await?;
    let mut verified = scram.is_none();
    loop {
        let el = xs.next_element("SASL answer").await?;
        if el.ns() != NS_SASL {
            return Err(ClientError::Protocol(format!("unexpected <{}/> during SASL", el.name())));
        }
        let data = decode_sasl(&el)?;
        match (el.name(), scram.as_mut()) {
            ("failure", _) => return Err(ClientError::AuthFailed(describe_condition(&el))),
            ("challenge", Some(s)) if !verified && s.client_final_pending() => {
                let response = s.client_final(&data)?;
                xs.write(&sasl_element("response", None, &response)).await?;
            }
            ("challenge", Some(s)) if !verified => {
                // Some servers send server-final-message as a challenge, then an empty success.
                s.verify_server_final(&data)?;
                verified = true;
                xs.write(&sasl_element("response", None, &[])).await?;
            }
            ("success", Some(s)) if !verified => {
                s.verify_server_final(&data)?;
                return Ok(());
            }
            ("success", _) => return Ok(()),
            (other, _) => return Err(ClientError::Protocol(format!("unexpected SASL element <{other}/>"))),
        }
    }
}

/// Sends an IQ and waits for the answer with the same id, skipping anything else.
async fn iq_roundtrip(xs: &mut XmlStream, id: &str, iq: &str) -> Result<Element, ClientError> {
    xs.write(iq).await?;
    loop {
        let el = xs.next_element(&format!("answer to iq {id}")).await?;
        if el.is("iq", NS_CLIENT) && el.attr("id") == Some(id) {
            return Ok(el);
        }
    }
}

fn iq_error(el: &Element) -> Option<String> {
    if el.attr("type") != Some("error") {
        return None;
    }
    Some(
        el.get_child("error", NS_CLIENT)
            .map(|e| {
                let mut d = describe_condition(e);
                if let Some(t) = e.get_child("text", NS_STANZAS) {
                    d = format!("{d}: {}", t.text());
                }
                d
            })
            .unwrap_or_else(|| "error without condition".into()),
    )
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&apos;")
}

/// Restarts the stream after SASL and binds a resource; returns the full JID and the features.
pub(crate) async fn bind(
    xs: &mut XmlStream,
    domain: &str,
    resource: Option<&str>,
) -> Result<(String, Element), ClientError> {
    let features = xs.open(domain).await?;
    if !features.has_child("bind", NS_BIND) {
        return Err(ClientError::Protocol("no resource binding offered after SASL".into()));
    }
    let resource = resource.map(|r| format!("<resource>{}</resource>", xml_escape(r))).unwrap_or_default();
    let answer = iq_roundtrip(
        xs,
        "bind_1",
        &format!("<iq type='set' id='bind_1'><bind xmlns='{NS_BIND}'>{resource}</bind></iq>"),
    )
    .await?;
    if let Some(e) = iq_error(&answer) {
        return Err(ClientError::Protocol(format!("bind refused: {e}")));
    }
    let jid = answer
        .get_child("bind", NS_BIND)
        .and_then(|b| b.get_child("jid", NS_BIND))
        .map(|j| j.text().trim().to_string())
        .filter(|j| !j.is_empty())
        .ok_or_else(|| ClientError::Protocol("bind result has no <jid/>".into()))?;
    // RFC 3921 sessions: only needed where the server still marks them mandatory.
    if let Some(session) = features.get_child("session", NS_SESSION) {
        if !session.has_child("optional", NS_SESSION) {
            let answer =
                iq_roundtrip(xs, "sess_1", &format!("<iq type='set' id='sess_1'><session xmlns='{NS_SESSION}'/></iq>"))
                    .await?;
            if let Some(e) = iq_error(&answer) {
                return Err(ClientError::Protocol(format!("session refused: {e}")));
            }
        }
    }
    Ok((jid, features))
}

/// Creates an account by in-band registration (XEP-0077 section 3.1).
pub async fn register(opts: &ServerOpts, username: &str, password: &str) -> Result<(), ClientError> {
    let (mut xs, _features) = secure_stream(opts).await?;
    let answer = iq_roundtrip(
        &mut xs,
        "reg_1",
        &format!(
            "<iq type='set' id='reg_1' to='{}'><query xmlns='{NS_REGISTER}'><username>{}</username>\
             <password>{}</password></query></iq>",
            xml_escape(&opts.domain),
            xml_escape(username),
            xml_escape(password)
        ),
    )
    .await?;
    let _ = xs.write("</stream:stream>").await;
    match iq_error(&answer) {
        Some(e) => Err(ClientError::Register(e)),
        None => Ok(()),
    }
}

/// Deletes an account by in-band registration (XEP-0077 section 3.2).
pub async fn unregister(opts: &ServerOpts, username: &str, password: &str) -> Result<(), ClientError> {
    let (mut xs, features) = secure_stream(opts).await?;
    authenticate(&mut xs, &features, opts, username, password).await?;
    bind(&mut xs, &opts.domain, None).await?;
    let result = iq_roundtrip(
        &mut xs,
        "unreg_1",
        &format!("<iq type='set' id='unreg_1'><query xmlns='{NS_REGISTER}'><remove/></query></iq>"),
    )
    .await;
    match result {
        // The server may close the stream right after removing the account.
        Err(ClientError::Closed) | Err(ClientError::StreamError(_)) => Ok(()),
        Err(e) => Err(e),
        Ok(answer) => match iq_error(&answer) {
            Some(e) => Err(ClientError::Register(e)),
            None => Ok(()),
        },
    }
}
