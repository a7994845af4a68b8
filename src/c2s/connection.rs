//! One task per client connection: bytes ⇄ framer ⇄ negotiation ⇄ session.
//!
//! This is the IO shell around the sans-IO cores. It owns the socket, the timers and the
//! outbound queue; all protocol decisions are made in `negotiation` and `session`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::future::Future;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::Poll;

use minidom::Element;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use super::negotiation::{Input, Negotiation, Output, Settings};
use super::queue;
use super::session::Session;
use super::sm::{self, StreamManagement};
use crate::error::{StanzaError, StreamCondition, StreamError};
use crate::router::Outbound;
use crate::sasl::{ChannelBindings, Credentials};
use crate::server::Server;
use crate::store::Account;
use crate::xml::{ns, write, AttrExt, Framer, FramerEvent, Limits};

/// The XML framing namespace of RFC 7395 (XMPP over WebSocket).
pub const NS_FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";

/// A transport the connection drives: a byte stream (TCP, TLS) or a message transport
/// (WebSocket, one element per message).
pub(crate) trait Transport: Send {
    /// Wait for input and feed it to `framer`. False when the peer is gone.
    fn recv(&mut self, framer: &mut Framer) -> impl Future<Output = bool> + Send;
    /// Write these pieces (each an element, header or close), in order.
    fn send(&mut self, pieces: Vec<Vec<u8>>) -> impl Future<Output = bool> + Send;
    fn shutdown(&mut self) -> impl Future<Output = ()> + Send;
}

/// A byte stream: TCP or TLS over TCP.
pub(crate) struct ByteStream<S> {
    pub io: S,
}

impl<S> ByteStream<S> {
    pub fn new(io: S) -> Self {
        ByteStream { io }
    }
}

/// Bytes taken per read: one full TLS record's plaintext.
const READ_CHUNK: usize = 16 * 1024;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Transport for ByteStream<S> {
    async fn recv(&mut self, framer: &mut Framer) -> bool {
        // Read through a buffer on the stack of one poll, not one kept in the connection:
        // idle sessions dominate memory, and a waiting read would otherwise hold a buffer
        // for every one of them. The bytes go straight on to the framer.
        std::future::poll_fn(|cx| {
            let mut stack = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut buf = ReadBuf::uninit(&mut stack);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Err(_)) => Poll::Ready(false),
                Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(false),
                Poll::Ready(Ok(())) => {
                    framer.feed(buf.filled());
                    Poll::Ready(true)
                }
            }
        })
        .await
    }

    async fn send(&mut self, pieces: Vec<Vec<u8>>) -> bool {
        let data = if pieces.len() == 1 { pieces.into_iter().next().unwrap_or_default() } else { pieces.concat() };
        matches!(tokio::time::timeout(WRITE_TIMEOUT, self.io.write_all(&data)).await, Ok(Ok(())))
    }

    async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.io.shutdown()).await;
    }
}

/// How stream-level framing is written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// RFC 6120 `<stream:stream>` over a byte stream.
    Stream,
    /// RFC 7395 `<open/>` / `<close/>` over WebSocket messages.
    WebSocket,
}

/// Why `drive` returned.
pub(crate) enum Exit {
    Closed,
    StartTls,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// How long a write to a client may block before the client is considered gone.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// A bound session that sent nothing for this long gives back its parser and buffers
/// (see [`Framer::park`]); most sessions are idle most of the time. Short, so that a
/// crowd of sessions signing in does not hold thousands of parsers at once; not zero,
/// because waking a parked framer costs about 2 µs, which a busy session should not pay
/// on every read.
const PARK_AFTER: Duration = Duration::from_millis(100);
/// Queued stanzas taken together into one write (one TLS record, one system call).
const COALESCE: usize = 64;
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
    let id = next_id();
    let settings = settings(&server, !direct_tls);
    let mut conn = Connection::new(server, peer, id, settings, Framing::Stream);
    tracing::debug!(%peer, id, direct_tls, "connection");
    let acceptor = tokio_rustls::TlsAcceptor::from(conn.server.tls.server_config.clone());
    // A task is as large as its largest state, and holds that for the connection's whole
    // life. So the handshake and each phase run boxed, and the TLS stream (1.2 KiB) is
    // boxed so that no state keeps a copy of it: the task that waits on an idle session
    // shrinks from 5.6 KiB to the `Connection` and a few pointers.
    let tcp = if direct_tls {
        tcp
    } else {
        let mut plain = ByteStream::new(tcp);
        match Box::pin(conn.drive(&mut plain)).await {
            Exit::StartTls => plain.io,
            Exit::Closed => return conn.finish().await,
        }
    };
    let tls = {
        let handshake = Box::pin(tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp))).await;
        match handshake {
            Ok(Ok(tls)) => Some(Box::new(tls)),
            Ok(Err(e)) => {
                tracing::debug!(%peer, "TLS handshake failed: {e}");
                None
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                None
            }
        }
    };
    if let Some(tls) = tls {
        conn.tls_established(&tls);
        let mut io = ByteStream::new(tls);
        Box::pin(conn.drive(&mut io)).await;
    }
    conn.finish().await;
}

pub(crate) struct Connection {
    pub(super) server: Arc<Server>,
    pub(super) peer: SocketAddr,
    pub(super) id: u64,
    pub(super) limits: Limits,
    pub(super) framing: Framing,
    pub(super) framer: Framer,
    pub(super) negotiation: Negotiation,
    pub(super) session: Option<Session>,
    pub(super) rx: Option<queue::Receiver<Outbound>>,
    pub(super) kill: Option<Arc<Notify>>,
    pub(super) auth_deadline: tokio::time::Instant,
    /// Pieces to write: each a complete element, header or close.
    pub(super) out: Vec<Vec<u8>>,
    pub(super) closing: bool,
    /// Our stream header went out on the current stream (a stream error must follow one).
    pub(super) header_sent: bool,
    /// XEP-0198 state, once the client enabled stream management.
    pub(super) sm: Option<StreamManagement>,
    /// Wakes this connection when a new one resumes its session.
    pub(super) takeover: Option<Arc<Notify>>,
    /// The transport died (or a newer connection took over) rather than the stream
    /// being closed: a resumable session then waits to be resumed.
    pub(super) dropped: bool,
}

/// Negotiation settings for a new client stream.
pub(crate) fn settings(server: &Server, starttls_available: bool) -> Settings {
    Settings {
        domain: server.domain().to_string(),
        require_encryption: server.config.c2s.require_encryption,
        registration: server.config.auth.registration,
        starttls_available,
        max_auth_attempts: 5,
        caps: Some(server.caps.clone()),
        oauthbearer: !server.config.oidc.issuers.is_empty(),
    }
}

pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

impl Connection {
    pub fn new(server: Arc<Server>, peer: SocketAddr, id: u64, settings: Settings, framing: Framing) -> Connection {
        let limits =
            Limits { max_stanza_size: server.config.c2s.max_stanza_size, max_depth: server.config.c2s.max_depth };
        let mut framer = Framer::new(limits);
        if framing == Framing::WebSocket {
            // RFC 7395 messages are elements without an enclosing stream; give the framer
            // one so namespaces resolve and limits apply exactly as on TCP.
            start_virtual_stream(&mut framer);
        }
        Connection {
            auth_deadline: tokio::time::Instant::now() + server.config.c2s.auth_timeout,
            negotiation: Negotiation::new(
                settings,
                format!("{id:x}-{}", hex(&crate::sasl::credentials::random_bytes(6))),
            ),
            limits,
            framing,
            framer,
            server,
            peer,
            id,
            session: None,
            rx: None,
            kill: None,
            out: Vec::new(),
            closing: false,
            header_sent: false,
            sm: None,
            takeover: None,
            dropped: false,
        }
    }

    /// The connection is over: leave as a session must (presence, unbind).
    ///
    /// Boxed: leaving runs the presence and roster machinery, a future of about 5 KiB
    /// that every connection task would otherwise carry (idle) from its start.
    pub fn finish(self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let (peer, id) = (self.peer, self.id);
            self.end_session().await;
            tracing::debug!(%peer, id, "connection closed");
        })
    }

    pub(super) fn push(&mut self, el: &Element) {
        self.out.push(write::element_bytes(el));
        let counted = match self.sm.as_mut() {
            Some(sm) => sm.sending(el),
            None => Ok(None),
        };
        match counted {
            Ok(Some(request)) => self.out.push(write::element_bytes(&request)),
            Ok(None) => {}
            Err(e) => self.close(Some(e)),
        }
    }

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

    /// Run the stream on `io` until it ends or the client asks for STARTTLS.
    pub async fn drive<T: Transport>(&mut self, io: &mut T) -> Exit {
        let mut shutdown = self.server.shutdown.subscribe();
        let ping_interval = self.server.config.c2s.ping_interval;
        let ping_timeout = self.server.config.c2s.ping_timeout;
        // When the client last sent anything, and whether we are waiting for a ping reply.
        let mut last_read = tokio::time::Instant::now();
        let mut pinged = false;
        // Parking was tried since the last read (it fails in the middle of an element).
        let mut park_tried = false;
        loop {
            if !self.out.is_empty() && !io.send(std::mem::take(&mut self.out)).await {
                self.dropped = true;
                return Exit::Closed;
            }
            if self.closing {
                io.shutdown().await;
                return Exit::Closed;
            }
            let authenticated = self.negotiation.is_authenticated();
            let bound = self.rx.is_some();
            let idle_deadline = last_read + if pinged { ping_interval + ping_timeout } else { ping_interval };
            let park_at = (!park_tried).then_some(last_read + PARK_AFTER).filter(|p| *p < idle_deadline);
            tokio::select! {
                alive = io.recv(&mut self.framer) => {
                    if !alive {
                        self.dropped = !self.closing;
                        return Exit::Closed;
                    }
                    last_read = tokio::time::Instant::now();
                    pinged = false;
                    park_tried = false;
                    // Boxed: handling a stanza is a deep chain of futures that an idle
                    // connection (the common case) should not carry in its task.
                    if Box::pin(self.process_input()).await {
                        // <proceed/> must reach the client before the handshake.
                        let out = std::mem::take(&mut self.out);
                        return if io.send(out).await { Exit::StartTls } else { Exit::Closed };
                    }
                },
                msg = recv(&mut self.rx) => self.outbound(msg),
                _ = notified(&self.takeover) => {
                    // A new connection resumes this session: hand it over now.
                    self.dropped = true;
                    return Exit::Closed;
                }
                _ = notified(&self.kill) => {
                    self.close(Some(StreamError::new(StreamCondition::PolicyViolation, "you stopped reading; too many stanzas queued")));
                }
                _ = tokio::time::sleep_until(self.auth_deadline), if !authenticated => {
                    self.close(Some(StreamError::new(StreamCondition::ConnectionTimeout, "no authentication in time; connect again and sign in promptly")));
                }
                _ = tokio::time::sleep_until(park_at.unwrap_or(idle_deadline)), if bound => {
                    if park_at.is_some() {
                        park_tried = true;
                        self.park();
                    } else if pinged {
                        // Silent connections are usually dead ones: keep a resumable session.
                        self.dropped = true;
                        self.close(Some(StreamError::new(StreamCondition::ConnectionTimeout, "no answer to the server's ping")));
                    } else {
                        pinged = true;
                        let ping = ping_request(self.session.as_ref());
                        self.push(&ping);
                    }
                }
                _ = shutdown.recv() => {
                    self.close(Some(StreamError::new(StreamCondition::SystemShutdown, "the server is shutting down")));
                }
            }
        }
    }

    /// Queue what the router delivered, with whatever else is already waiting (up to
    /// [`COALESCE`] stanzas), so that a burst goes out in one write.
    fn outbound(&mut self, first: Option<Outbound>) {
        let mut next = first;
        for taken in 1.. {
            match next {
                Some(Outbound::Stanza(el)) => self.push(&el),
                Some(Outbound::Close(err)) => return self.close(Some(*err)),
                None => {
                    self.rx = None;
                    return;
                }
            }
            if self.closing || taken == COALESCE {
                return;
            }
            next = match self.rx.as_mut().map(queue::Receiver::try_recv) {
                Some(Ok(more)) => Some(more),
                _ => return,
            };
        }
    }

    /// An idle session gives back its parser and the capacity of its buffers.
    fn park(&mut self) {
        self.framer.park();
        self.negotiation.shrink();
        if let Some(rx) = self.rx.as_mut() {
            rx.shrink();
        }
        self.out = Vec::new();
        if let Some(session) = self.session.as_mut() {
            session.out = Vec::new();
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
                    self.close(Some(err));
                    return false;
                }
            };
            let input = match (event, self.framing) {
                (FramerEvent::StreamOpen(attrs), Framing::Stream) => Input::StreamOpen(attrs),
                (FramerEvent::Element(el), Framing::WebSocket) if el.is("open", NS_FRAMING) => {
                    Input::StreamOpen(framing_attrs(&el))
                }
                (FramerEvent::Element(el), Framing::WebSocket) if el.is("close", NS_FRAMING) => Input::StreamClose,
                (FramerEvent::Element(el), _) => Input::Element(el),
                (FramerEvent::StreamClose, _) => Input::StreamClose,
                (FramerEvent::StreamOpen(_), Framing::WebSocket) => continue,
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
                Output::SendHeader { to, id, lang } => {
                    self.header_sent = true;
                    self.out.push(match self.framing {
                        Framing::Stream => {
                            write::stream_header(self.server.domain(), to.as_deref(), &id, &lang, ns::CLIENT)
                        }
                        Framing::WebSocket => {
                            let mut open = Element::builder("open", NS_FRAMING)
                                .a("from", self.server.domain())
                                .a("id", id)
                                .a("version", "1.0");
                            if let Some(to) = to {
                                open = open.a("to", to);
                            }
                            write::element_bytes(&crate::xml::with_lang(open, &lang).build())
                        }
                    })
                }
                Output::SendElement(el) => self.push(&el),
                Output::StartTls => {
                    self.header_sent = false;
                    return true;
                }
                Output::Restart => {
                    if self.framing == Framing::Stream {
                        self.framer = Framer::new(self.limits);
                        self.header_sent = false;
                    }
                }
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
                        None => self.check(&user).await,
                    };
                    self.negotiation.handle_input(input);
                }
                Output::CheckToken(token) => {
                    // Single sign-on token (SASL OAUTHBEARER): only the address can be
                    // throttled, the account being unknown until the token is found.
                    let input =
                        match self.server.auth_failures_by_ip.blocked(&self.peer.ip().to_string(), Instant::now()) {
                            Some(secs) => {
                                Input::AuthThrottled(format!("too many failed sign-ins; try again in {secs} s"))
                            }
                            None => Input::TokenOwner(
                                crate::oidc::tokens::lookup(&self.server.store, &token.0, crate::stanza::now_secs())
                                    .unwrap_or_else(|e| {
                                        tracing::error!("reading sign-in tokens: {e}");
                                        None
                                    })
                                    .map(|r| r.user),
                            ),
                        };
                    self.negotiation.handle_input(input);
                }
                Output::Register { username, password } => {
                    let result = self.register(&username, &password).await;
                    self.negotiation.handle_input(Input::Registered(result));
                }
                Output::AuthFailed { username, scram, wrong_credentials } => {
                    let now = Instant::now();
                    tracing::info!(peer = %self.peer, user = username.as_deref().unwrap_or("-"), "authentication failed");
                    // Count guesses only: not a directory that was down, and not SCRAM tried
                    // on an account that has no SCRAM keys (directory users), which clients
                    // do before falling back to PLAIN.
                    let guessable =
                        |u: &str| !scram || self.server.store.accounts.contains(u.as_bytes()).unwrap_or(false);
                    if wrong_credentials {
                        if let Some(u) = username.as_deref().filter(|u| guessable(u)) {
                            self.server.auth_failures_by_user.record(u, now);
                        }
                        self.server.auth_failures_by_ip.record(&self.peer.ip().to_string(), now);
                    }
                }
                Output::Authenticated(user) => {
                    tracing::info!(peer = %self.peer, %user, "authenticated");
                    let guest_room = if crate::guests::Guests::is_guest(&user) {
                        match self.server.guests.consume(&user) {
                            Some((room, _)) => Some(room),
                            None => {
                                self.close(Some(StreamError::new(
                                    StreamCondition::NotAuthorized,
                                    "guest login expired",
                                )));
                                continue;
                            }
                        }
                    } else {
                        None
                    };
                    match Session::new(self.server.clone(), user, self.id) {
                        Ok(mut s) => {
                            s.guest_room = guest_room;
                            self.session = Some(s);
                        }
                        Err(e) => self.close(Some(e)),
                    }
                }
                Output::Stanza(el) => self.stanza(el).await,
            }
        }
        false
    }

    async fn stanza(&mut self, el: minidom::Element) {
        if el.ns() == sm::NS {
            return self.stream_management(el).await;
        }
        if sm::is_stanza(&el) {
            if let Some(sm) = self.sm.as_mut() {
                sm.received_stanza();
            }
        }
        let Some(session) = self.session.as_mut() else {
            return self.close(Some(StreamError::new(StreamCondition::NotAuthorized, "not authenticated")));
        };
        let result = session.handle(el).await;
        let replies: Vec<Element> = session.out.drain(..).collect();
        for reply in &replies {
            self.push(reply);
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

    /// Answer a credentials request: stored SCRAM keys, or an external backend's verdict
    /// on a PLAIN password.
    async fn check(&self, user: &str) -> Input {
        if let Some((_, password)) = self.negotiation.plain_password() {
            let password = password.to_string();
            match crate::auth::verify_plain(&self.server, user, &password).await {
                crate::auth::Verdict::Internal => {}
                crate::auth::Verdict::Accept(_) => return Input::PlainVerdict(Ok(true)),
                crate::auth::Verdict::Reject => return Input::PlainVerdict(Ok(false)),
                crate::auth::Verdict::Unavailable(why) => {
                    tracing::error!(%user, "authentication backend unavailable: {why}");
                    return Input::PlainVerdict(Err(why));
                }
            }
        }
        // SCRAM only ever reaches internal accounts; none when auth.backends leaves them out.
        Input::Credentials(if crate::auth::internal_allowed(&self.server, user) {
            self.credentials(user)
        } else {
            None
        })
    }

    fn credentials(&self, user: &str) -> Option<Credentials> {
        if crate::guests::Guests::is_guest(user) {
            return self.server.guests.credentials(user);
        }
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
        if crate::guests::Guests::is_guest(username) {
            return Err(StanzaError::not_acceptable().with_text("names starting with \"guest-\" are reserved"));
        }
        // A directory or single sign-on user's name must not become a password account.
        if crate::accounts::exists(&self.server.store, username) {
            return Err(StanzaError::conflict().with_text("this username is taken"));
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

    pub(super) fn close(&mut self, err: Option<StreamError>) {
        if self.closing {
            return;
        }
        // RFC 6120 §4.9.1.1: a stream error needs an open stream; open ours first.
        if self.framing == Framing::Stream && !self.header_sent {
            self.out.push(write::stream_header(self.server.domain(), None, "error", "en", ns::CLIENT));
            self.header_sent = true;
        }
        if let Some(err) = err {
            tracing::debug!(peer = %self.peer, condition = err.condition.name(), text = %err.text, "closing stream with error");
            self.out.push(write::element_bytes(&err.to_element()));
        }
        self.out.push(match self.framing {
            Framing::Stream => write::STREAM_CLOSE.to_vec(),
            Framing::WebSocket => write::element_bytes(&Element::bare("close", NS_FRAMING)),
        });
        self.closing = true;
    }
}

async fn recv(rx: &mut Option<queue::Receiver<Outbound>>) -> Option<Outbound> {
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

/// Attributes of an RFC 7395 `<open/>`, in the shape of a stream header's.
fn framing_attrs(open: &Element) -> std::collections::BTreeMap<String, String> {
    let mut attrs: std::collections::BTreeMap<String, String> =
        open.attrs().iter().filter(|((n, _), _)| n.is_none()).map(|((_, k), v)| (k.to_string(), v.clone())).collect();
    if let Some(lang) = crate::xml::lang(open) {
        attrs.insert("xml:lang".into(), lang.to_string());
    }
    attrs
}

fn start_virtual_stream(framer: &mut Framer) {
    framer.feed(format!("<stream:stream xmlns='{}' xmlns:stream='{}'>", ns::CLIENT, ns::STREAM).as_bytes());
    let _ = framer.next_event();
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an async fn with these arguments returns.
    fn future_size<F, Fut>(_: &F) -> usize
    where
        F: Fn(Arc<Server>, TcpStream, SocketAddr, bool) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// Every connected session is one task holding this future: idle memory per session
    /// starts here. Handling a stanza is boxed so it does not count.
    #[test]
    fn connection_task_stays_small() {
        let size = future_size(&handle);
        eprintln!("connection task future: {size} bytes");
        assert!(size < 2 * 1024, "connection future grew to {size} bytes");
    }
}
