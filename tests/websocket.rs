//! XMPP over WebSocket (RFC 7395) through a real WebSocket client, talking to a TCP client.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::routing::get;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use support::start;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

async fn ws_endpoint(t: &support::TestServer) -> String {
    async fn upgrade(
        ws: WebSocketUpgrade,
        State(server): State<Arc<amphi::server::Server>>,
        ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    ) -> axum::response::Response {
        ws.protocols(["xmpp"]).on_upgrade(move |socket| amphi::c2s::websocket::serve(server, socket, peer, true))
    }
    let app = axum::Router::new().route("/xmpp-websocket", get(upgrade)).with_state(t.server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap();
    });
    format!("ws://{addr}/xmpp-websocket")
}

struct Ws {
    stream: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
}

impl Ws {
    async fn connect(url: &str) -> Ws {
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert("Sec-WebSocket-Protocol", "xmpp".parse().unwrap());
        let host = url.trim_start_matches("ws://").split('/').next().unwrap().to_string();
        let tcp = tokio::net::TcpStream::connect(host).await.unwrap();
        let (stream, resp) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
        assert_eq!(resp.headers().get("sec-websocket-protocol").unwrap(), "xmpp");
        Ws { stream }
    }

    async fn send(&mut self, xml: &str) {
        self.stream.send(Message::Text(xml.into())).await.unwrap();
    }

    async fn recv(&mut self) -> Option<String> {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.stream.next()).await.expect("timed out") {
                Some(Ok(Message::Text(t))) => return Some(t.to_string()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                _ => continue,
            }
        }
    }

    async fn recv_until(&mut self, needle: &str) -> String {
        loop {
            let m = self.recv().await.expect("closed");
            if m.contains(needle) {
                return m;
            }
        }
    }
}

const OPEN: &str = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>";

#[tokio::test]
async fn websocket_client_registers_signs_in_and_chats_with_a_tcp_client() {
    let t = start("").await;
    let url = ws_endpoint(&t).await;
    let mut tcp = support::account(&t, "romeo", "tcp").await;
    tcp.send("<presence/>").await;

    let mut ws = Ws::connect(&url).await;
    ws.send(OPEN).await;
    let open = ws.recv().await.unwrap();
    assert!(open.starts_with("<open") && open.contains("urn:ietf:params:xml:ns:xmpp-framing"), "{open}");
    let features = ws.recv().await.unwrap();
    assert!(features.contains("<mechanisms") && features.contains("PLAIN"), "{features}");
    assert!(!features.contains("starttls"), "no STARTTLS over WebSocket: {features}");
    ws.send("<iq type='set' id='r' xmlns='jabber:client'><query xmlns='jabber:iq:register'><username>juliet</username><password>pw</password></query></iq>").await;
    assert!(ws.recv_until("id='r'").await.contains("type='result'"));
    let plain = base64::engine::general_purpose::STANDARD.encode("\0juliet\0pw");
    ws.send(&format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{plain}</auth>")).await;
    assert!(ws.recv().await.unwrap().starts_with("<success"));
    ws.send(OPEN).await;
    ws.recv_until("<open").await;
    assert!(ws.recv().await.unwrap().contains("urn:ietf:params:xml:ns:xmpp-bind"));
    ws.send("<iq type='set' id='b' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>").await;
    assert!(ws.recv_until("id='b'").await.contains("juliet@localhost/web"));

    ws.send("<message xmlns='jabber:client' to='romeo@localhost/tcp' type='chat'><body>from the web</body></message>")
        .await;
    let got = tcp.expect(|e| e.name() == "message").await;
    assert_eq!(got.attr("from"), Some("juliet@localhost/web"));
    tcp.send("<message to='juliet@localhost/web' type='chat'><body>from tcp</body></message>").await;
    let m = ws.recv_until("<message").await;
    assert!(m.contains("from tcp") && m.contains("from='romeo@localhost/tcp'"), "{m}");

    // RFC 7395 §3.6: <close/> is answered with <close/>, then the socket closes.
    ws.send("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>").await;
    assert!(ws.recv_until("<close").await.contains("urn:ietf:params:xml:ns:xmpp-framing"));
    assert!(ws.recv().await.is_none());
}

#[tokio::test]
async fn websocket_stream_errors_are_framed() {
    let t = start("").await;
    let url = ws_endpoint(&t).await;
    let mut ws = Ws::connect(&url).await;
    ws.send("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.org' version='1.0'/>").await;
    let mut all = String::new();
    while let Some(m) = ws.recv().await {
        all.push_str(&m);
    }
    assert!(all.contains("<host-unknown"), "{all}");
    assert!(all.contains("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'"), "{all}");
    let mut ws = Ws::connect(&url).await;
    ws.send(OPEN).await;
    ws.send("<message xmlns='jabber:client'><body>not signed in</body></message>").await;
    let mut all = String::new();
    while let Some(m) = ws.recv().await {
        all.push_str(&m);
    }
    assert!(all.contains("<not-authorized"), "{all}");
}
