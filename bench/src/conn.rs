//! Connection set-up: TCP, STARTTLS, in-band registration, SASL, resource binding, presence.
//!
//! Each step is a plain request/response over [`Io`], which owns the stream and the framer.
//! Every wait is bounded by the target's timeout, so a stuck server fails a run instead of
//! hanging it.

use crate::scram::{self, Mech, SaltCache, Scram};
use crate::xml::{self, Frame, Framer};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

/// A TLS connection to the server.
pub type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// A load-test failure, as text: the generator reports it and carries on or stops.
#[derive(Debug)]
pub struct Error(pub String);

pub type Result<T> = std::result::Result<T, Error>;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

macro_rules! from_err {
    ($($t:ty),*) => {$(impl From<$t> for Error {
        fn from(e: $t) -> Error { Error(e.to_string()) }
    })*};
}
from_err!(std::io::Error, xml::FrameError, scram::ScramError, tokio_rustls::rustls::Error, tokio::time::error::Elapsed);

/// Fails with a formatted [`Error`].
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => { return Err($crate::conn::Error(format!($($arg)*))) };
}

/// Where and how to connect.
pub struct Target {
    pub host: String,
    pub port: u16,
    pub domain: String,
    /// `None` picks the strongest mechanism both sides implement.
    pub mech: Option<Mech>,
    pub tls: Arc<ClientConfig>,
    pub timeout: Duration,
    pub salts: Arc<SaltCache>,
}

/// A frame copied out of the framer, for the set-up steps where copies do not matter.
#[derive(Debug)]
pub enum Owned {
    Open,
    Stanza(Vec<u8>),
    Close,
}

/// A stream with its framer.
pub struct Io<S> {
    pub stream: S,
    pub framer: Framer,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    pub fn new(stream: S) -> Io<S> {
        Io { stream, framer: Framer::default() }
    }

    pub async fn send(&mut self, data: &[u8]) -> Result<()> {
        self.stream.write_all(data).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// The next frame; a stream error from the server becomes an [`Error`].
    pub async fn recv(&mut self, timeout: Duration) -> Result<Owned> {
        match tokio::time::timeout(timeout, self.recv_unbounded()).await {
            Ok(r) => r,
            Err(_) => bail!("the server sent nothing complete within {timeout:?}"),
        }
    }

    async fn recv_unbounded(&mut self) -> Result<Owned> {
        loop {
            match self.framer.next()? {
                Some(Frame::Open(_)) => return Ok(Owned::Open),
                Some(Frame::Close) => return Ok(Owned::Close),
                Some(Frame::Stanza(s)) if xml::name(s) == b"stream:error" => {
                    bail!("stream error: {}", String::from_utf8_lossy(s))
                }
                Some(Frame::Stanza(s)) => return Ok(Owned::Stanza(s.to_vec())),
                None => {}
            }
            if self.stream.read_buf(self.framer.read_buffer()?).await? == 0 {
                bail!("server closed the connection");
            }
        }
    }

    /// The next stanza, skipping headers; the end of the stream is an error.
    pub async fn stanza(&mut self, timeout: Duration) -> Result<Vec<u8>> {
        loop {
            match self.recv(timeout).await? {
                Owned::Open => {}
                Owned::Close => bail!("server closed the stream"),
                Owned::Stanza(s) => return Ok(s),
            }
        }
    }

    /// Waits for the `<iq/>` answering `id`, dropping anything else.
    pub async fn iq_reply(&mut self, id: &str, timeout: Duration) -> Result<Vec<u8>> {
        loop {
            let s = self.stanza(timeout).await?;
            if xml::name(&s) == b"iq" && xml::attr(&s, "id").as_deref() == Some(id) {
                return Ok(s);
            }
        }
    }

    /// Opens a stream (again) and returns the features.
    pub async fn open_stream(&mut self, domain: &str, timeout: Duration) -> Result<Vec<u8>> {
        self.framer.reset();
        let header = format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' to='{}' version='1.0'>",
            xml::escape(domain)
        );
        self.send(header.as_bytes()).await?;
        let s = self.stanza(timeout).await?;
        if !xml::name(&s).ends_with(b"features") {
            bail!("expected stream features, got {}", String::from_utf8_lossy(&s));
        }
        Ok(s)
    }

    /// Ends the stream politely and waits briefly for the server to end its side.
    pub async fn close(mut self) {
        if self.send(b"</stream:stream>").await.is_ok() {
            let deadline = Duration::from_secs(1);
            while let Ok(Owned::Stanza(_) | Owned::Open) = self.recv(deadline).await {}
        }
        let _ = self.stream.shutdown().await;
    }
}

/// Connects over TCP and upgrades with STARTTLS; returns the TLS stream and its features.
pub async fn starttls(t: &Target) -> Result<(Io<Tls>, Vec<u8>)> {
    let tcp = tokio::time::timeout(t.timeout, TcpStream::connect((t.host.as_str(), t.port))).await??;
    tcp.set_nodelay(true)?;
    let mut io = Io::new(tcp);
    let features = io.open_stream(&t.domain, t.timeout).await?;
    if !xml::contains(&features, b"urn:ietf:params:xml:ns:xmpp-tls") {
        bail!("server offers no STARTTLS");
    }
    io.send(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").await?;
    let reply = io.stanza(t.timeout).await?;
    if xml::name(&reply) != b"proceed" {
        bail!("STARTTLS refused: {}", String::from_utf8_lossy(&reply));
    }
    let name = ServerName::try_from(t.domain.clone()).map_err(|e| Error(format!("domain: {e}")))?;
    let tls = TlsConnector::from(t.tls.clone()).connect(name, io.stream);
    let tls = match tokio::time::timeout(t.timeout, tls).await {
        Ok(tls) => tls?,
        Err(_) => bail!("TLS handshake timed out"),
    };
    let mut io = Io::new(tls);
    let features = io.open_stream(&t.domain, t.timeout).await?;
    Ok((io, features))
}

/// What in-band registration did.
#[derive(Debug, PartialEq, Eq)]
pub enum Registered {
    Created,
    AlreadyExists,
}

/// Creates an account through XEP-0077 in-band registration.
pub async fn register(t: &Target, user: &str, password: &str) -> Result<Registered> {
    let (mut io, _features) = starttls(t).await?;
    let iq = format!(
        "<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>{}</username>\
         <password>{}</password></query></iq>",
        xml::escape(user),
        xml::escape(password)
    );
    io.send(iq.as_bytes()).await?;
    let reply = io.iq_reply("reg1", t.timeout).await?;
    let outcome = match xml::attr(&reply, "type").as_deref() {
        Some("result") => Registered::Created,
        _ if xml::contains(&reply, b"<conflict") => Registered::AlreadyExists,
        _ => bail!("registration of {user} refused: {}", String::from_utf8_lossy(&reply)),
    };
    io.close().await;
    Ok(outcome)
}

/// The SASL mechanisms listed in the stream features.
pub fn mechanisms(features: &[u8]) -> Vec<String> {
    const TAG: &[u8] = b"<mechanism>";
    memchr::memmem::find_iter(features, TAG)
        .filter_map(|at| {
            let text = &features[at + TAG.len()..];
            let end = memchr::memchr(b'<', text)?;
            Some(xml::unescape(&text[..end]).trim().to_owned())
        })
        .collect()
}

/// Authenticates with SASL, restarts the stream and returns the new features.
pub async fn authenticate(
    io: &mut Io<Tls>,
    features: &[u8],
    t: &Target,
    user: &str,
    password: &str,
) -> Result<Vec<u8>> {
    let offered = mechanisms(features);
    let mech = match t.mech {
        Some(m) if offered.iter().any(|o| o == m.name()) => m,
        Some(m) => bail!("server does not offer {} (offers {offered:?})", m.name()),
        None => match Mech::ALL.into_iter().find(|m| offered.iter().any(|o| o == m.name())) {
            Some(m) => m,
            None => bail!("no shared SASL mechanism (server offers {offered:?})"),
        },
    };
    let sasl =
        |el: &str, data: &str| format!("<{el} xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</{el}>", B64.encode(data));
    let mut scram = match mech {
        Mech::Plain => None,
        m => Some(Scram::new(m, user, password)),
    };
    let first = match &scram {
        Some(s) => s.client_first(),
        None => scram::plain(user, password),
    };
    let auth = format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{}'>{}</auth>",
        mech.name(),
        B64.encode(first)
    );
    io.send(auth.as_bytes()).await?;
    let mut verified = scram.is_none();
    loop {
        let s = io.stanza(t.timeout).await?;
        let text = sasl_payload(&s)?;
        match (xml::name(&s), scram.as_mut()) {
            (b"challenge", Some(sc)) if !verified && text.starts_with("r=") => {
                let fin = sc.client_final(&text, &t.salts)?;
                io.send(sasl("response", &fin).as_bytes()).await?;
            }
            (b"challenge", Some(sc)) if !verified => {
                sc.verify(&text)?;
                verified = true;
                io.send(sasl("response", "").as_bytes()).await?;
            }
            (b"success", sc) => {
                if let (Some(sc), false) = (sc, verified) {
                    sc.verify(&text)?;
                }
                break;
            }
            (b"failure", _) => bail!("authentication of {user} failed: {}", String::from_utf8_lossy(&s)),
            _ => bail!("unexpected SASL reply: {}", String::from_utf8_lossy(&s)),
        }
    }
    io.open_stream(&t.domain, t.timeout).await
}

/// The base64-decoded text content of a SASL element.
fn sasl_payload(s: &[u8]) -> Result<String> {
    let Some(gt) = memchr::memchr(b'>', s) else {
        return Ok(String::new());
    };
    if s[gt - 1] == b'/' {
        return Ok(String::new());
    }
    let end = gt + 1 + memchr::memchr(b'<', &s[gt + 1..]).unwrap_or(0);
    let raw = s[gt + 1..end].trim_ascii();
    if raw == b"=" || raw.is_empty() {
        return Ok(String::new());
    }
    let bytes = B64.decode(raw).map_err(|_| Error("SASL payload is not base64".into()))?;
    String::from_utf8(bytes).map_err(|_| Error("SASL payload is not UTF-8".into()))
}

/// Binds a resource (and opens a legacy session where required); returns the full JID.
pub async fn bind(io: &mut Io<Tls>, features: &[u8], t: &Target, resource: &str) -> Result<String> {
    let iq = format!(
        "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <resource>{}</resource></bind></iq>",
        xml::escape(resource)
    );
    io.send(iq.as_bytes()).await?;
    let reply = io.iq_reply("bind1", t.timeout).await?;
    let Some(jid) = xml::child_text(&reply, "jid").map(|j| j.into_owned()) else {
        bail!("bind failed: {}", String::from_utf8_lossy(&reply));
    };
    if xml::contains(features, b"urn:ietf:params:xml:ns:xmpp-session") && !xml::contains(features, b"<optional") {
        io.send(b"<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>").await?;
        io.iq_reply("sess1", t.timeout).await?;
    }
    Ok(jid)
}

/// A signed-in, bound, available session: what the login workload measures.
///
/// After the initial presence it waits for the answer to a ping, so the server has processed
/// the presence (stanzas are handled in order) before the session counts as established.
pub async fn establish(t: &Target, user: &str, password: &str) -> Result<(Io<Tls>, String)> {
    establish_traced(t, user, password, &mut |_| {}).await
}

/// [`establish`], calling `step` with the name of each step as it completes.
pub async fn establish_traced(
    t: &Target,
    user: &str,
    password: &str,
    step: &mut (dyn FnMut(&'static str) + Send),
) -> Result<(Io<Tls>, String)> {
    let (mut io, features) = starttls(t).await?;
    step("tcp + starttls + stream restart");
    let features = authenticate(&mut io, &features, t, user, password).await?;
    step("sasl + stream restart");
    let jid = bind(&mut io, &features, t, "bench").await?;
    step("bind");
    let ping = format!("<presence/><iq type='get' id='ping1' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>", t.domain);
    io.send(ping.as_bytes()).await?;
    io.iq_reply("ping1", t.timeout).await?;
    step("presence + ping");
    Ok((io, jid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_mechanisms() {
        let f = b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
            <mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>";
        assert_eq!(mechanisms(f), vec!["SCRAM-SHA-1", "PLAIN"]);
    }

    #[test]
    fn decodes_sasl_payloads() {
        let s = format!("<challenge xmlns='x'>{}</challenge>", B64.encode("r=abc,s=QQ==,i=1"));
        assert_eq!(sasl_payload(s.as_bytes()).expect("payload"), "r=abc,s=QQ==,i=1");
        assert_eq!(sasl_payload(b"<success xmlns='x'/>").expect("empty"), "");
        assert_eq!(sasl_payload(b"<success xmlns='x'>=</success>").expect("empty"), "");
        assert!(sasl_payload(b"<success xmlns='x'>***</success>").is_err());
    }
}
