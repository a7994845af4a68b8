//! XMPP over WebSocket (RFC 7395): the same negotiation, SASL, limits and session as
//! TCP; only the framing differs (`<open/>` / `<close/>`, one element per message).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};

use super::connection::{next_id, settings, Connection, Framing, Transport, WRITE_TIMEOUT};
use super::negotiation::Input;
use crate::sasl::ChannelBindings;
use crate::server::Server;
use crate::xml::Framer;

/// Serve one upgraded WebSocket. `secure` says the WebSocket runs over TLS (wss) or
/// behind a TLS-terminating proxy the operator trusts, so SASL may proceed.
pub async fn serve(server: Arc<Server>, socket: WebSocket, peer: SocketAddr, secure: bool) {
    let _permit = match server.connections.clone().try_acquire_owned() {
        Ok(p) => p,
        Err(_) => {
            tracing::warn!(%peer, "connection limit reached; refusing a WebSocket client");
            return;
        }
    };
    let id = next_id();
    let settings = settings(&server, false);
    let mut conn = Connection::new(server, peer, id, settings, Framing::WebSocket);
    if secure {
        conn.negotiation.handle_input(Input::TlsEstablished(ChannelBindings::default()));
    }
    tracing::debug!(%peer, id, secure, "websocket connection");
    conn.drive(&mut WsTransport { socket }).await;
    conn.finish().await;
}

struct WsTransport {
    socket: WebSocket,
}

impl Transport for WsTransport {
    async fn recv(&mut self, framer: &mut Framer) -> bool {
        loop {
            match self.socket.recv().await {
                Some(Ok(Message::Text(text))) => {
                    framer.feed(text.as_bytes());
                    return true;
                }
                // RFC 7395 §3.2 uses text frames; accept binary ones carrying UTF-8 too.
                Some(Ok(Message::Binary(data))) => {
                    framer.feed(&data);
                    return true;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return false,
            }
        }
    }

    async fn send(&mut self, pieces: Vec<Vec<u8>>) -> bool {
        for piece in pieces {
            let Ok(text) = String::from_utf8(piece) else { continue };
            let sent = tokio::time::timeout(WRITE_TIMEOUT, self.socket.send(Message::Text(text.into()))).await;
            if !matches!(sent, Ok(Ok(()))) {
                return false;
            }
        }
        true
    }

    async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(WRITE_TIMEOUT, self.socket.send(Message::Close(None))).await;
    }
}
