//! One task per client connection: bytes ⇄ framer ⇄ negotiation ⇄ session.
//!
//! This is the IO shell around the sans-IO cores. It owns the socket, the timers and the
//! outbound queue; all protocol decisions are made in `negotiation` and `session`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};

use super::negotiation::{Input, Negotiation, Output, Settings};
use super::session::Session;
use crate::error::{StanzaError, StreamCondition, StreamError};
use crate::router::Outbound;
use crate::sasl::{ChannelBindings, Credentials};
use crate::server::Server;
use crate::store::Account;
use crate::xml::{write, Framer, FramerEvent, Limits};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// How long a write to a client may block before the client is considered gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

pub async fn accept_loop(server: Arc<Server>, listener: TcpListener, direct_tls: bool) {
    let mut shutdown = server.shutdown.subscribe();
    let mut backoff = Duration::from_millis(10);
    loop {
        let permit = tokio::select! {
            p = server.connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.recv() => return,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.recv() => return,
        };
        match accepted {
            Ok((tcp, peer)) => {
                backoff = Duration::from_millis(10);
                let server = server.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    handle(server, tcp, peer, direct_tls).await;
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait, then go on accepting.
                tracing::warn!("accept failed: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

async fn handle(server: Arc<Server>, tcp: TcpStream, peer: SocketAddr, direct_tls: bool) {
    let _ = tcp.set_nodelay(true);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let settings = Settings {
        domain: server.domain().to_string(),
        require_encryption: server.config.c2s.require_encryption,
        registration: server.config.auth.registration,
        starttls_available: !direct_tls,
        max_auth_attempts: 5,
        caps: Some(server.caps.clone()),
    };
    let mut conn = Connection {
        limits: Limits { max_stanza_size: server.config.c2s.max_stanza_size, max_depth: server.config.c2s.max_depth },
        auth_deadline: tokio::time::Instant::now() + server.config.c2s.auth_timeout,
        negotiation: Negotiation::new(settings, format!("{id:x}-{}", hex(&crate::sasl::credentials::random_bytes(6)))),
        framer: Framer::new(Limits {
            max_stanza_size: server.config.c2s.max_stanza_size,
            max_depth: server.config.c2s.max_depth,
        }),
        server,
        peer,
        id,
        session: None,
        rx: None,
        kill: None,
        out: Vec::new(),
        closing: false,
    };
    tracing::debug!(%peer, id, direct_tls, "connection");
    let acceptor = tokio_rustls::TlsAcceptor::from(conn.server.tls.server_config.clone());
    if direct_tls {
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => {
                conn.tls_established(&tls);
                let _ = conn.drive(tls).await;
            }
            Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    } else if let Some(tcp) = conn.drive(tcp).await {
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => {
                conn.tls_established(&tls);
                let _ = conn.drive(tls).await;
            }
            Ok(Err(e)) => tracing::debug!(%peer, "STARTTLS handshake failed: {e}"),
            Err(_) => tracing::debug!(%peer, "STARTTLS handshake timed out"),
        }
    }
    if let Some(session) = conn.session.as_mut() {
        session.close().await;
    }
    tracing::debug!(%peer, id, "connection closed");
}

struct Connection {
    server: Arc<Server>,
    peer: SocketAddr,
    id: u64,
    limits: Limits,
    framer: Framer,
    negotiation: Negotiation,
    session: Option<Session>,
    rx: Option<mpsc::Receiver<Outbound>>,
    kill: Option<Arc<Notify>>,
    auth_deadline: tokio::time::Instant,
    out: Vec<u8>,
    closing: bool,
}

impl Connection {
    fn tls_established(&mut self, tls: &tokio_rustls::server::TlsStream<TcpStream>) {
        let (_, conn) = tls.get_ref();
        // RFC 9266: tls-exporter is defined for TLS 1.3 only.
        let tls_exporter = (conn.protocol_version() == Some(tokio_rustls::rustls::ProtocolVersion::TLSv1_3))
            .then(|| conn.export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None).ok())
            .flatten()
            .map(|k| k.to_vec());
        let bindings =
            ChannelBindings { tls_exporter, tls_server_end_point: Some(self.server.tls.server_end_point.clone()) };
        self.framer.reset();
        self.negotiation.handle_input(Input::TlsEstablished(bindings));
    }

    /// Run the stream on `io`. Returns the transport when the client asked for STARTTLS.
    async fn drive<S: AsyncRead + AsyncWrite + Unpin>(&mut self, mut io: S) -> Option<S> {
        let mut shutdown = self.server.shutdown.subscribe();
        let mut buf = vec![0u8; 16 * 1024];
        let ping_interval = self.server.config.c2s.ping_interval;
        let ping_timeout = self.server.config.c2s.ping_timeout;
        // When the client last sent anything, and whether we are waiting for a ping reply.
        let mut last_read = tokio::time::Instant::now();
        let mut pinged = false;
        loop {
            if !self.out.is_empty() {
                let data = std::mem::take(&mut self.out);
                match tokio::time::timeout(WRITE_TIMEOUT, io.write_all(&data)).await {
                    Ok(Ok(())) => {}
                    _ => return None,
                }
            }
            if self.closing {
                let _ = tokio::time::timeout(Duration::from_secs(2), io.shutdown()).await;
                return None;
            }
            let authenticated = self.negotiation.is_authenticated();
            let bound = self.rx.is_some();
            let idle_deadline = last_read + if pinged { ping_interval + ping_timeout } else { ping_interval };
            tokio::select! {
                read = io.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => {
                        last_read = tokio::time::Instant::now();
                        pinged = false;
                        self.framer.feed(&buf[..n]);
                        if self.process_input().await {
                            // <proceed/> must reach the client before the handshake.
                            let data = std::mem::take(&mut self.out);
                            return match tokio::time::timeout(WRITE_TIMEOUT, io.write_all(&data)).await {
                                Ok(Ok(())) => Some(io),
                                _ => None,
                            };
                        }
                    }
                },
                msg = recv(&mut self.rx) => match msg {
                    Some(Outbound::Stanza(el)) => self.out.extend(write::element_bytes(&el)),
                    Some(Outbound::Close(err)) => self.close(Some(err)),
                    None => self.rx = None,
                },
                _ = notified(&self.kill) => {
                    self.close(Some(StreamError::new(StreamCondition::PolicyViolation, "you stopped reading; too many stanzas queued")));
                }
                _ = tokio::time::sleep_until(self.auth_deadline), if !authenticated => {
                    self.close(Some(StreamError::new(StreamCondition::ConnectionTimeout, "no authentication in time; connect again and sign in promptly")));
                }
                _ = tokio::time::sleep_until(idle_deadline), if bound => {
                    if pinged {
                        self.close(Some(StreamError::new(StreamCondition::ConnectionTimeout, "no answer to the server's ping")));
                    } else {
                        pinged = true;
                        self.out.extend(write::element_bytes(&ping_request(self.session.as_ref())));
                    }
                }
                _ = shutdown.recv() => {
                    self.close(Some(StreamError::new(StreamCondition::SystemShutdown, "the server is shutting down")));
                }
            }
        }
    }

    /// Parse what arrived and act on it. Returns true to start TLS now.
    async fn process_input(&mut self) -> bool {
        loop {
            if self.closing {
                return false;
            }
            let event = match self.framer.next_event() {
                Ok(Some(ev)) => ev,
                Ok(None) => return false,
                Err(e) => {
                    let err = StreamError::from(e);
                    // RFC 6120 §4.9.1.2: if the header has not been sent yet, send it first.
                    if !self.negotiation.is_authenticated() && self.out.is_empty() {
                        self.out.extend(write::stream_header(
                            self.server.domain(),
                            None,
                            "error",
                            "en",
                            crate::xml::ns::CLIENT,
                        ));
                    }
                    self.close(Some(err));
                    return false;
                }
            };
            let input = match event {
                FramerEvent::StreamOpen(attrs) => Input::StreamOpen(attrs),
                FramerEvent::Element(el) => Input::Element(el),
                FramerEvent::StreamClose => Input::StreamClose,
            };
            self.negotiation.handle_input(input);
            if self.run_outputs().await {
                return true;
            }
        }
    }

    /// Carry out what the negotiation asks. Returns true to start TLS.
    async fn run_outputs(&mut self) -> bool {
        while let Some(output) = self.negotiation.poll_output() {
            match output {
                Output::Send(bytes) => self.out.extend(bytes),
                Output::SendElement(el) => self.out.extend(write::element_bytes(&el)),
                Output::StartTls => return true,
                Output::Restart => self.framer = Framer::new(self.limits),
                Output::Close(err) => self.close(err),
                Output::NeedCredentials(user) => {
                    let now = Instant::now();
                    let ip = self.peer.ip().to_string();
                    let blocked = self
                        .server
                        .auth_failures_by_user
                        .blocked(&user, now)
                        .or_else(|| self.server.auth_failures_by_ip.blocked(&ip, now));
                    let input = match blocked {
                        Some(secs) => Input::AuthThrottled(format!("too many failed sign-ins; try again in {secs} s")),
                        None => Input::Credentials(self.credentials(&user)),
                    };
                    self.negotiation.handle_input(input);
                }
                Output::Register { username, password } => {
                    let result = self.register(&username, &password).await;
                    self.negotiation.handle_input(Input::Registered(result));
                }
                Output::AuthFailed(user) => {
                    let now = Instant::now();
                    tracing::info!(peer = %self.peer, user = user.as_deref().unwrap_or("-"), "authentication failed");
                    if let Some(u) = &user {
                        self.server.auth_failures_by_user.record(u, now);
                    }
                    self.server.auth_failures_by_ip.record(&self.peer.ip().to_string(), now);
                }
                Output::Authenticated(user) => {
                    tracing::info!(peer = %self.peer, %user, "authenticated");
                    match Session::new(self.server.clone(), user, self.id) {
                        Ok(s) => self.session = Some(s),
                        Err(e) => self.close(Some(e)),
                    }
                }
                Output::Stanza(el) => self.stanza(el).await,
            }
        }
        false
    }

    async fn stanza(&mut self, el: minidom::Element) {
        let Some(session) = self.session.as_mut() else {
            return self.close(Some(StreamError::new(StreamCondition::NotAuthorized, "not authenticated")));
        };
        let result = session.handle(el).await;
        for reply in session.out.drain(..) {
            self.out.extend(write::element_bytes(&reply));
        }
        match result {
            Ok(Some(bound)) => {
                self.rx = Some(bound.rx);
                self.kill = Some(bound.kill);
            }
            Ok(None) => {}
            Err(e) => self.close(Some(e)),
        }
    }

    fn credentials(&self, user: &str) -> Option<Credentials> {
        match self.server.store.accounts.get::<Account>(user.as_bytes()) {
            Ok(a) => a.map(|a| a.credentials),
            Err(e) => {
                tracing::error!("reading account {user}: {e}");
                None
            }
        }
    }

    async fn register(&mut self, username: &str, password: &str) -> Result<(), StanzaError> {
        let now = Instant::now();
        let ip = self.peer.ip();
        if !ip.is_loopback() {
            if let Some(secs) = self.server.registrations_by_ip.blocked(&ip.to_string(), now) {
                return Err(StanzaError::resource_constraint()
                    .with_text(format!("too many accounts created from your address; try again in {secs} s")));
            }
            self.server.registrations_by_ip.record(&ip.to_string(), now);
        }
        match crate::accounts::create(&self.server.store, username, password, self.server.config.auth.scram_iterations)
            .await
        {
            Ok(true) => {
                tracing::info!(peer = %self.peer, user = username, "account registered in-band");
                Ok(())
            }
            Ok(false) => Err(StanzaError::conflict().with_text("this username is taken")),
            Err(e) => {
                tracing::error!("registering {username}: {e}");
                Err(StanzaError::internal_server_error())
            }
        }
    }

    fn close(&mut self, err: Option<StreamError>) {
        if self.closing {
            return;
        }
        if let Some(err) = err {
            tracing::debug!(peer = %self.peer, condition = err.condition.name(), text = %err.text, "closing stream with error");
            self.out.extend(write::element_bytes(&err.to_element()));
        }
        self.out.extend_from_slice(write::STREAM_CLOSE);
        self.closing = true;
    }
}

async fn recv(rx: &mut Option<mpsc::Receiver<Outbound>>) -> Option<Outbound> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn notified(kill: &Option<Arc<Notify>>) {
    match kill {
        Some(k) => k.notified().await,
        None => std::future::pending().await,
    }
}

/// XEP-0199 §4.1: the server checks that a silent client is still there.
fn ping_request(session: Option<&Session>) -> minidom::Element {
    use crate::xml::AttrExt;
    let mut b = minidom::Element::builder("iq", crate::xml::ns::CLIENT).a("type", "get").a("id", "s2c-ping");
    if let Some(s) = session {
        b = b.a("from", s.server.domain()).a("to", s.full_str());
    }
    b.append(minidom::Element::bare("ping", crate::xml::ns::PING)).build()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
