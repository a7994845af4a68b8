//! An axum [`Listener`] that hands out TLS streams.
//!
//! The TCP accept loop runs in its own task and starts one task per handshake, so a client
//! that opens a connection and never finishes its handshake holds nothing but its own task
//! (and is dropped after [`HANDSHAKE_TIMEOUT`]). Finished streams queue on a bounded
//! channel that [`Listener::accept`] reads.

use axum::serve::Listener;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for axum; the accept loop stops accepting while it is full.
const READY_QUEUE: usize = 256;

pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: std::io::Result<SocketAddr>,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>, mut stop: broadcast::Receiver<()>) -> TlsListener {
        let local = listener.local_addr();
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let permit = tokio::select! {
                    p = tx.clone().reserve_owned() => match p { Ok(p) => p, Err(_) => return },
                    _ = stop.recv() => return,
                };
                let (tcp, addr) = tokio::select! {
                    r = listener.accept() => match r {
                        Ok(c) => c,
                        Err(e) => {
                            // EMFILE and friends: back off instead of spinning.
                            tracing::warn!("HTTPS accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                    _ = stop.recv() => return,
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            permit.send((stream, addr));
                        }
                        Ok(Err(e)) => tracing::debug!(%addr, "HTTPS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%addr, "HTTPS handshake timed out"),
                    }
                });
            }
        });
        TlsListener { ready, local }
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop ended (shutdown): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match &self.local {
            Ok(a) => Ok(*a),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        }
    }
}
