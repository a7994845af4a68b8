//! The web server (axum): XMPP over WebSocket (RFC 7395) with host-meta discovery
//! (XEP-0156), the bundled web client, invitation links, live statistics, `/health` and
//! `/metrics`.
//!
//! Plain HTTP and HTTPS listeners serve the same routes. HTTPS uses the XMPP certificate
//! (`server.tls`) with ALPN `http/1.1`; handshakes run in their own tasks so a slow client
//! cannot hold up the accept loop. Which listener a request came through travels as
//! [`Peer`] (axum's connect info), so the WebSocket transport knows whether the stream is
//! encrypted.

mod api;
mod assets;
mod hostmeta;
pub mod invite;
mod links;
mod observe;
mod services;
mod sso;
mod tls;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use axum::Router;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

use crate::server::{Server, StartError};

pub use tls::TlsListener;

/// The bound HTTP sockets, made by [`bind`] before anything is served so a taken port
/// stops the start.
#[derive(Default)]
pub struct Listeners {
    plain: Vec<TcpListener>,
    tls: Vec<TcpListener>,
}

impl Listeners {
    /// Local addresses of the plain HTTP listeners (tests bind port 0).
    pub fn plain_addrs(&self) -> Vec<SocketAddr> {
        self.plain.iter().filter_map(|l| l.local_addr().ok()).collect()
    }

    /// Local addresses of the HTTPS listeners.
    pub fn tls_addrs(&self) -> Vec<SocketAddr> {
        self.tls.iter().filter_map(|l| l.local_addr().ok()).collect()
    }
}

/// Bind `http.listen` and `http.tls_listen`.
pub async fn bind(config: &crate::config::HttpConfig) -> Result<Listeners, StartError> {
    let mut out = Listeners::default();
    for (addrs, key, list) in
        [(&config.listen, "http.listen", &mut out.plain), (&config.tls_listen, "http.tls_listen", &mut out.tls)]
    {
        for addr in addrs {
            let l = TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr: *addr, key, source })?;
            list.push(l);
        }
    }
    Ok(out)
}

/// Where a request came from, and whether it came over TLS.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    pub tls: bool,
}

impl Peer {
    /// Whether a stream over this connection is confidential: TLS, or plain HTTP from a
    /// loopback address (a browser on the same machine, or a reverse proxy that
    /// terminated TLS).
    pub fn secure(&self) -> bool {
        self.tls || self.addr.ip().is_loopback()
    }
}

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Peer { addr: *stream.remote_addr(), tls: false }
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        Peer { addr: *stream.remote_addr(), tls: true }
    }
}

/// State shared by the handlers.
pub(crate) struct Http {
    pub server: Arc<Server>,
    pub assets: assets::Assets,
    pub links: links::Links,
    /// Requests answered since start (for `/metrics`).
    pub requests: AtomicU64,
    /// Open XMPP WebSocket connections.
    pub websockets: AtomicUsize,
    /// OpenID Connect single sign-on (`sso.rs`).
    pub sso: crate::oidc::Sso,
}

/// Start serving on every bound HTTP listener. Returns at once; the servers stop at the
/// server's shutdown signal.
pub fn start(server: Arc<Server>, listeners: Listeners) {
    if listeners.plain.is_empty() && listeners.tls.is_empty() {
        return;
    }
    let links = match links::Links::open(&server) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("the web server is not started: {e}");
            return;
        }
    };
    let public_url = crate::oidc::public_url(&server.config, &listeners.plain_addrs(), &listeners.tls_addrs());
    let state = Arc::new(Http {
        sso: crate::oidc::Sso::new(&server.config, public_url),
        assets: assets::Assets::new(),
        links,
        server: server.clone(),
        requests: AtomicU64::new(0),
        websockets: AtomicUsize::new(0),
    });
    let sso = state.clone();
    tokio::spawn(async move { sso.sso.check_providers().await });
    let app = router(state);
    for listener in listeners.plain {
        tracing::info!(addr = ?listener.local_addr().ok(), "serving HTTP");
        let mut stop = server.shutdown.subscribe();
        let service = app.clone().into_make_service_with_connect_info::<Peer>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, service).with_graceful_shutdown(async move {
                let _ = stop.recv().await;
            });
            if let Err(e) = serve.await {
                tracing::error!("HTTP server stopped: {e}");
            }
        });
    }
    if listeners.tls.is_empty() {
        return;
    }
    let mut tls_config = (*server.tls.server_config).clone();
    tls_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tls_config = Arc::new(tls_config);
    for listener in listeners.tls {
        tracing::info!(addr = ?listener.local_addr().ok(), "serving HTTPS");
        let mut stop = server.shutdown.subscribe();
        let listener = TlsListener::new(listener, tls_config.clone(), server.shutdown.subscribe());
        let service = app.clone().into_make_service_with_connect_info::<Peer>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, service).with_graceful_shutdown(async move {
                let _ = stop.recv().await;
            });
            if let Err(e) = serve.await {
                tracing::error!("HTTPS server stopped: {e}");
            }
        });
    }
}

/// Every route. Pages of the web client are all `index.html` (the client routes on the
/// path), so a reload or a shared link works on any of them.
fn router(state: Arc<Http>) -> Router {
    use axum::routing::{get, post};
    Router::new()
        .route("/xmpp-websocket", get(services::websocket))
        .route("/.well-known/host-meta", get(hostmeta::xml))
        .route("/.well-known/host-meta.json", get(hostmeta::json))
        .route("/health", get(observe::health))
        .route("/metrics", get(observe::metrics))
        .route("/api/config", get(api::config))
        .route("/api/stats", get(api::stats))
        .route("/api/rooms/{room}/invites", get(api::invites))
        .route("/api/rooms/{room}/invites/regenerate", post(api::regenerate))
        .route("/api/meeting/check", post(api::check_link))
        .route("/api/meeting/join", post(api::join))
        .route("/api/meetings", post(api::create_meeting))
        .route("/api/sso/issuers", get(sso::issuers))
        .route("/api/sso/signout", post(sso::signout))
        .route("/api/me", get(sso::me))
        .route("/sso/callback", get(sso::callback))
        .route("/sso/{id}/start", get(sso::start))
        .route("/static/{version}/{*file}", get(assets::file))
        .route(
            "/upload/{slot}/{file}",
            get(crate::upload::http::get).put(crate::upload::http::put).options(crate::upload::http::preflight),
        )
        .fallback(assets::page)
        .layer(axum::middleware::map_response(assets::security_headers))
        .layer(axum::middleware::map_request_with_state(state.clone(), count_request))
        .with_state(state)
}

async fn count_request(
    axum::extract::State(http): axum::extract::State<Arc<Http>>,
    request: axum::extract::Request,
) -> axum::extract::Request {
    http.requests.fetch_add(1, Ordering::Relaxed);
    request
}

/// Percent-encode a URL path segment (RFC 3986: unreserved characters stay as they are).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
