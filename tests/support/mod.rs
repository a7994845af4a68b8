//! A small raw XMPP client for socket tests: STARTTLS or direct TLS (no certificate
//! check: the test server's certificate is self-signed), SASL PLAIN or SCRAM, bind.
//! It parses what the server sends with amphi's own framer.
#![allow(dead_code)]

pub mod http;

// Not every test file uses HTTP; those that do import these two.
#[allow(unused_imports)]
pub use http::{http, start_http};

use std::sync::Arc;
use std::time::Duration;

use amphi::config::Config;
use amphi::server::Server;
use amphi::xml::{Framer, FramerEvent, Limits};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use minidom::Element;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{
    self,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{CertificateDer, ServerName, UnixTime},
    DigitallySignedStruct, SignatureScheme,
};

pub struct TestServer {
    pub starttls: std::net::SocketAddr,
    /// The XEP-0114 listener, when the config has one.
    pub component: Option<std::net::SocketAddr>,
    pub direct: std::net::SocketAddr,
    pub server: Arc<Server>,
    pub dir: tempfile::TempDir,
}

/// Start a server in this process on free ports; `extra` is appended to the [c2s] table.
pub async fn start(extra_c2s: &str) -> TestServer {
    start_with(extra_c2s, "").await
}

/// Like [`start`], with more TOML tables after the generated ones.
pub async fn start_with(extra_c2s: &str, more: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[server]\ndomain = 'localhost'\ndata_dir = '{}'\n[c2s]\nstarttls_listen = ['127.0.0.1:0']\n\
         direct_tls_listen = ['127.0.0.1:0']\n{extra_c2s}\n[auth]\nregistration = true\n{more}\n",
        dir.path().display()
    );
    let server = Server::new(Config::parse("test", &toml).unwrap()).unwrap();
    let listeners = server.bind().await.unwrap();
    let starttls = listeners[0].0.local_addr().unwrap();
    let direct = listeners[1].0.local_addr().unwrap();
    let component = listeners.components.first().map(|l| l.local_addr().unwrap());
    server.start(listeners);
    TestServer { starttls, direct, component, server, dir }
}

#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn connector() -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub struct Client {
    io: Box<dyn Io>,
    framer: Framer,
    pub jid: String,
    pub closed_with: Option<String>,
}

pub const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

impl Client {
    /// A TLS stream with features read, not yet authenticated.
    pub async fn connect_tls(t: &TestServer, direct: bool) -> Client {
        let server_name = ServerName::try_from("localhost").unwrap();
        let io: Box<dyn Io> = if direct {
            let tcp = TcpStream::connect(t.direct).await.unwrap();
            Box::new(connector().connect(server_name, tcp).await.unwrap())
        } else {
            let mut tcp = TcpStream::connect(t.starttls).await.unwrap();
            tcp.write_all(HEADER.as_bytes()).await.unwrap();
            tcp.write_all(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").await.unwrap();
            let mut framer = Framer::new(Limits::default());
            let mut buf = [0u8; 4096];
            'wait: loop {
                while let Some(ev) = framer.next_event().unwrap() {
                    if let FramerEvent::Element(el) = ev {
                        if el.name() == "proceed" {
                            break 'wait;
                        }
                    }
                }
                let n = tcp.read(&mut buf).await.unwrap();
                assert!(n > 0, "closed before <proceed/>");
                framer.feed(&buf[..n]);
            }
            Box::new(connector().connect(server_name, tcp).await.unwrap())
        };
        let mut c = Client { io, framer: Framer::new(Limits::default()), jid: String::new(), closed_with: None };
        c.open().await;
        c
    }

    /// Send the stream header; returns the features.
    pub async fn open(&mut self) -> Element {
        self.framer = Framer::new(Limits::default());
        self.send(HEADER).await;
        self.next().await.expect("stream features")
    }

    pub async fn send(&mut self, xml: &str) {
        self.io.write_all(xml.as_bytes()).await.unwrap();
    }

    /// The next element, or None when the server closed the stream (the stream error's
    /// condition, if any, is kept in `closed_with`).
    pub async fn next(&mut self) -> Option<Element> {
        self.next_within(Duration::from_secs(5)).await
    }

    pub async fn next_within(&mut self, limit: Duration) -> Option<Element> {
        let mut buf = [0u8; 8192];
        loop {
            match self.framer.next_event().unwrap() {
                Some(FramerEvent::Element(el)) => {
                    if el.name() == "error" && el.ns() == "http://etherx.jabber.org/streams" {
                        self.closed_with = el.children().next().map(|c| c.name().to_string());
                        continue;
                    }
                    return Some(el);
                }
                Some(FramerEvent::StreamOpen(_)) => continue,
                Some(FramerEvent::StreamClose) => return None,
                None => {}
            }
            let n =
                tokio::time::timeout(limit, self.io.read(&mut buf)).await.expect("timed out waiting for the server");
            match n {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.framer.feed(&buf[..n]),
            }
        }
    }

    /// Wait for the first element matching `pred`, skipping others.
    pub async fn expect(&mut self, pred: impl Fn(&Element) -> bool) -> Element {
        loop {
            let el = self.next().await.expect("stream closed while waiting");
            if pred(&el) {
                return el;
            }
        }
    }

    pub async fn register(&mut self, user: &str, password: &str) -> Element {
        self.send(&format!(
            "<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>{user}</username>\
             <password>{password}</password></query></iq>"
        ))
        .await;
        self.expect(|e| e.attr("id") == Some("reg")).await
    }

    /// SASL PLAIN, restart, bind. Returns the bound JID.
    pub async fn login_plain(&mut self, user: &str, password: &str, resource: &str) -> String {
        let data = B64.encode(format!("\0{user}\0{password}"));
        self.send(&format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{data}</auth>")).await;
        let reply = self.next().await.unwrap();
        assert_eq!(reply.name(), "success", "{reply:?}");
        self.open().await;
        self.bind(resource).await
    }

    pub async fn bind(&mut self, resource: &str) -> String {
        self.send(&format!(
            "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"
        ))
        .await;
        let r = self.expect(|e| e.attr("id") == Some("bind")).await;
        self.jid = r
            .get_child("bind", "urn:ietf:params:xml:ns:xmpp-bind")
            .unwrap()
            .get_child("jid", "urn:ietf:params:xml:ns:xmpp-bind")
            .unwrap()
            .text();
        self.jid.clone()
    }

    /// SCRAM-SHA-256 without channel binding. Returns the server's final message check.
    pub async fn login_scram(&mut self, user: &str, password: &str) -> Result<(), String> {
        use amphi::sasl::HashAlg;
        let alg = HashAlg::Sha256;
        let cnonce = "rOprNGfwEbeRWgbNEkqO";
        let first_bare = format!("n={user},r={cnonce}");
        self.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{}</auth>",
            B64.encode(format!("n,,{first_bare}"))
        ))
        .await;
        let ch = self.next().await.unwrap();
        if ch.name() != "challenge" {
            return Err(format!("{ch:?}"));
        }
        let server_first = String::from_utf8(B64.decode(ch.text()).unwrap()).unwrap();
        let attr = |k: &str| server_first.split(',').find_map(|p| p.strip_prefix(k)).unwrap().to_string();
        let (nonce, salt, iters) = (attr("r="), B64.decode(attr("s=")).unwrap(), attr("i=").parse::<u32>().unwrap());
        let salted = alg.salted_password(password.as_bytes(), &salt, iters);
        let client_key = alg.hmac(&salted, b"Client Key");
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{first_bare},{server_first},{without_proof}");
        let sig = alg.hmac(&alg.hash(&client_key), auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        self.send(&format!(
            "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
            B64.encode(format!("{without_proof},p={}", B64.encode(proof)))
        ))
        .await;
        let reply = self.next().await.unwrap();
        if reply.name() != "success" {
            return Err(format!("{}", String::from_utf8_lossy(&amphi::xml::write::element_bytes(&reply))));
        }
        let v = String::from_utf8(B64.decode(reply.text()).unwrap()).unwrap();
        let server_sig = alg.hmac(&alg.hmac(&salted, b"Server Key"), auth.as_bytes());
        assert_eq!(v, format!("v={}", B64.encode(server_sig)), "server signature must verify");
        Ok(())
    }
}

/// A Jingle session-initiate with one audio content sending on `ssrc` (call tests).
pub fn audio_offer(sid: &str, ssrc: u32) -> String {
    format!(
        r#"<jingle xmlns="urn:xmpp:jingle:1" action="session-initiate" sid="{sid}">
  <content creator="initiator" name="0" senders="both">
    <description xmlns="urn:xmpp:jingle:apps:rtp:1" media="audio">
      <payload-type id="111" name="opus" clockrate="48000" channels="2"/>
      <source xmlns="urn:xmpp:jingle:apps:rtp:ssma:0" ssrc="{ssrc}"><parameter name="cname" value="x"/></source>
      <rtcp-mux/>
    </description>
    <transport xmlns="urn:xmpp:jingle:transports:ice-udp:1" ufrag="abcd" pwd="abcdefghijklmnopqrstuvwx">
      <fingerprint xmlns="urn:xmpp:jingle:apps:dtls:0" hash="sha-256" setup="actpass">01:02:03:04</fingerprint>
    </transport>
  </content>
  <group xmlns="urn:xmpp:jingle:apps:grouping:0" semantics="BUNDLE"><content name="0"/></group>
</jingle>"#
    )
}

/// Register `user` (password "secret-pw"), then sign in over direct TLS with resource "call".
pub async fn signed_in(t: &TestServer, user: &str) -> Client {
    let mut c = Client::connect_tls(t, true).await;
    c.register(user, "secret-pw").await;
    let mut c = Client::connect_tls(t, true).await;
    c.login_plain(user, "secret-pw", "call").await;
    c
}

/// A new account `user` (password "pw"), signed in over STARTTLS with `resource`.
pub async fn account(t: &TestServer, user: &str, resource: &str) -> Client {
    let mut c = Client::connect_tls(t, false).await;
    c.register(user, "pw").await;
    c.login_plain(user, "pw", resource).await;
    c
}
