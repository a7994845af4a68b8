//! XEP-0114 external components over a real socket: handshake, stanzas both ways, errors.

mod support;

use std::time::Duration;

use amphi::xml::{Framer, FramerEvent, Limits};
use minidom::Element;
use support::start_with;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "s3cret-s3cret";

async fn server() -> support::TestServer {
    start_with("", &format!("[components]\nlisten = ['127.0.0.1:0']\nsecrets = {{ 'bot.localhost' = '{SECRET}' }}"))
        .await
}

struct Component {
    tcp: TcpStream,
    framer: Framer,
    id: String,
}

impl Component {
    async fn connect(addr: std::net::SocketAddr, domain: &str) -> Component {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(
            format!(
                "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='{domain}'>"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut c = Component { tcp, framer: Framer::new(Limits::default()), id: String::new() };
        let mut buf = [0u8; 4096];
        loop {
            if let Some(FramerEvent::StreamOpen(attrs)) = c.framer.next_event().unwrap() {
                c.id = attrs.get("id").cloned().unwrap_or_default();
                return c;
            }
            let n = c.tcp.read(&mut buf).await.unwrap();
            assert!(n > 0);
            c.framer.feed(&buf[..n]);
        }
    }

    async fn handshake(&mut self, secret: &str) -> Option<Element> {
        let digest = amphi::sasl::HashAlg::Sha1.hash(format!("{}{secret}", self.id).as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.tcp.write_all(format!("<handshake>{hex}</handshake>").as_bytes()).await.unwrap();
        self.next().await
    }

    async fn next(&mut self) -> Option<Element> {
        let mut buf = [0u8; 4096];
        loop {
            match self.framer.next_event() {
                Ok(Some(FramerEvent::Element(el))) => return Some(el),
                Ok(Some(_)) | Err(_) => return None,
                Ok(None) => {}
            }
            let n = tokio::time::timeout(Duration::from_secs(5), self.tcp.read(&mut buf)).await.unwrap().unwrap();
            if n == 0 {
                return None;
            }
            self.framer.feed(&buf[..n]);
        }
    }
}

#[tokio::test]
async fn component_exchanges_stanzas_with_a_user() {
    let t = server().await;
    let mut bot = Component::connect(t.component.unwrap(), "bot.localhost").await;
    let ok = bot.handshake(SECRET).await.unwrap();
    assert_eq!(ok.name(), "handshake");

    let mut ada = support::account(&t, "ada", "r").await;
    ada.send("<presence/>").await;
    ada.send("<message to='echo@bot.localhost' type='chat' id='m1'><body>ping</body></message>").await;
    let got = bot.next().await.unwrap();
    assert!(got.is("message", "jabber:component:accept"), "{got:?}");
    assert_eq!(got.attr("from"), Some("ada@localhost/r"));
    assert_eq!(got.get_child("body", "jabber:component:accept").unwrap().text(), "ping");

    bot.tcp
        .write_all(b"<message from='echo@bot.localhost' to='ada@localhost/r' type='chat'><body>pong</body></message>")
        .await
        .unwrap();
    let reply = ada.expect(|e| e.name() == "message").await;
    assert_eq!(reply.attr("from"), Some("echo@bot.localhost"));
    assert_eq!(reply.get_child("body", "jabber:client").unwrap().text(), "pong");

    // A component may not speak for another domain.
    bot.tcp.write_all(b"<message from='admin@localhost' to='ada@localhost/r'><body>x</body></message>").await.unwrap();
    let err = bot.next().await.unwrap();
    assert!(err.has_child("invalid-from", "urn:ietf:params:xml:ns:xmpp-streams"), "{err:?}");
}

#[tokio::test]
async fn wrong_secret_and_unknown_domain_are_refused() {
    let t = server().await;
    let mut bot = Component::connect(t.component.unwrap(), "bot.localhost").await;
    let err = bot.handshake("wrong").await.unwrap();
    assert!(err.has_child("not-authorized", "urn:ietf:params:xml:ns:xmpp-streams"), "{err:?}");
    let mut other = Component::connect(t.component.unwrap(), "evil.localhost").await;
    let err = other.next().await.unwrap();
    assert!(err.has_child("host-unknown", "urn:ietf:params:xml:ns:xmpp-streams"), "{err:?}");
    // With no component connected, users get an error instead of silence.
    let mut ada = support::account(&t, "ada", "r").await;
    ada.send("<message to='echo@bot.localhost' type='chat' id='m'><body>x</body></message>").await;
    let e = ada.expect(|e| e.attr("id") == Some("m")).await;
    assert_eq!(e.attr("type"), Some("error"));
}
