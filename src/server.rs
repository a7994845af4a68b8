//! The running server: shared state, listeners, shutdown.

use minidom::Element;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, Semaphore};

use crate::config::Config;
use crate::error::{StreamCondition, StreamError};
use crate::router::Registry;
use crate::store::Store;
use crate::throttle::Throttle;
use crate::tls::TlsContext;

/// State shared by every connection.
pub struct Server {
    pub config: Config,
    pub store: Store,
    pub registry: Registry,
    pub tls: TlsContext,
    pub started: Instant,
    pub auth_failures_by_user: Throttle,
    pub auth_failures_by_ip: Throttle,
    pub registrations_by_ip: Throttle,
    pub connections: Arc<Semaphore>,
    pub shutdown: broadcast::Sender<()>,
    /// XEP-0115 `<c/>` for stream features, computed once.
    pub caps: Arc<minidom::Element>,
    /// Striped locks serialising roster changes per account (modules::roster).
    pub roster_locks: Vec<tokio::sync::Mutex<()>>,
    /// Stanzas received from clients since start (for /metrics).
    pub stanzas_in: std::sync::atomic::AtomicU64,
    /// Connected external components (XEP-0114).
    pub components: crate::component::Components,
    /// Sessions waiting to be resumed (XEP-0198).
    pub sm: crate::c2s::sm::SmRegistry,
    /// One-time guest logins issued for invitation links.
    pub guests: crate::guests::Guests,
    /// The multi-user chat service, when enabled.
    pub muc: Option<Arc<crate::muc::MucService>>,
    /// The Jingle focus and its SFU (calls), when enabled.
    pub focus: Option<Arc<crate::focus::FocusService>>,
    /// HTTP File Upload (XEP-0363), when enabled.
    pub upload: Option<Arc<crate::upload::UploadService>>,
}

/// Every bound socket. Derefs to the client listeners (with their "direct TLS" flag).
pub struct Listeners {
    pub c2s: Vec<(TcpListener, bool)>,
    pub http: crate::http::Listeners,
    /// XEP-0114 component listeners.
    pub components: Vec<TcpListener>,
}

impl std::ops::Deref for Listeners {
    type Target = Vec<(TcpListener, bool)>;
    fn deref(&self) -> &Self::Target {
        &self.c2s
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}. Is another server (or another amphi) using this port? Change {key} in the config or stop the other program.")]
    Bind { addr: std::net::SocketAddr, key: &'static str, source: std::io::Error },
    #[error("cannot open the database in {path}: {source}. Is another amphi running with the same data_dir?")]
    Store { path: String, source: crate::store::StoreError },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot use the upload directory {path}: {source}. Fix its permissions or set upload.enabled = false.")]
    Upload { path: String, source: std::io::Error },
}

impl Server {
    pub fn new(config: Config) -> Result<Arc<Server>, StartError> {
        let db_path = config.server.data_dir.join("db");
        let store = Store::open(&db_path)
            .map_err(|source| StartError::Store { path: db_path.display().to_string(), source })?;
        let tls = TlsContext::load(&config)?;
        let window = config.auth.failure_window;
        let (shutdown, _) = broadcast::channel(1);
        let focus = crate::focus::FocusService::start(&config).map_err(|source| StartError::Bind {
            addr: config.media.listen,
            key: "media.listen",
            source,
        })?;
        let upload = crate::upload::UploadService::new(&config).map_err(|source| StartError::Upload {
            path: config.server.data_dir.join("uploads").display().to_string(),
            source,
        })?;
        Ok(Arc::new(Server {
            upload,
            auth_failures_by_user: Throttle::new(config.auth.max_failures, window),
            auth_failures_by_ip: Throttle::new(config.auth.max_failures_per_ip, window),
            registrations_by_ip: Throttle::new(config.auth.max_registrations_per_ip, window),
            connections: Arc::new(Semaphore::new(config.c2s.max_connections)),
            registry: Registry::default(),
            guests: crate::guests::Guests::default(),
            sm: crate::c2s::sm::SmRegistry::default(),
            components: crate::component::Components::default(),
            stanzas_in: std::sync::atomic::AtomicU64::new(0),
            roster_locks: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
            caps: Arc::new(crate::modules::disco::caps_element(&config.contact)),
            focus,
            muc: config.muc_domain().map(|d| {
                Arc::new(
                    crate::muc::MucService::new(d, store.clone(), config.muc.clone())
                        .with_capacity(config.http.capacity as usize),
                )
            }),
            started: Instant::now(),
            store,
            tls,
            config,
            shutdown,
        }))
    }

    pub fn domain(&self) -> &str {
        &self.config.server.domain
    }

    /// Hand a stanza to the local service owning `domain` (MUC), if there is one.
    /// Returns false when no local service owns that domain.
    pub fn route_to_service(self: &Arc<Self>, domain: &str, stanza: Element) -> bool {
        if let Some(upload) = self.upload.as_ref().filter(|u| u.domain == domain) {
            upload.route(self, stanza);
            return true;
        }
        match &self.muc {
            Some(muc) if muc.domain == domain => {
                muc.route(self, stanza);
                true
            }
            _ => match &self.focus {
                Some(focus) if focus.domain == domain => {
                    focus.route(self, stanza);
                    true
                }
                _ => self.components.send(domain, stanza),
            },
        }
    }

    /// Bind every configured listener; fails before serving anything if one port is taken.
    pub async fn bind(&self) -> Result<Listeners, StartError> {
        let mut out = Vec::new();
        for (addrs, direct, key) in [
            (&self.config.c2s.starttls_listen, false, "c2s.starttls_listen"),
            (&self.config.c2s.direct_tls_listen, true, "c2s.direct_tls_listen"),
        ] {
            for addr in addrs {
                let l =
                    TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr: *addr, key, source })?;
                out.push((l, direct));
            }
        }
        let mut components = Vec::new();
        for addr in &self.config.components.listen {
            let l = TcpListener::bind(addr).await.map_err(|source| StartError::Bind {
                addr: *addr,
                key: "components.listen",
                source,
            })?;
            components.push(l);
        }
        Ok(Listeners { c2s: out, http: crate::http::bind(&self.config.http).await?, components })
    }

    /// Serve until ctrl-c / SIGTERM, then close every stream with `system-shutdown` and
    /// flush the store.
    pub async fn run(self: Arc<Server>, listeners: Listeners) {
        self.start(listeners);
        wait_for_signal().await;
        self.stop().await;
    }

    /// Start accepting on the listeners (tests call this and [`Server::stop`] directly).
    pub fn start(self: &Arc<Server>, listeners: Listeners) {
        if let Some(upload) = &self.upload {
            upload.start(self, &listeners.http);
        }
        crate::http::start(self.clone(), listeners.http);
        for listener in listeners.components {
            tracing::info!(addr = ?listener.local_addr().ok(), "listening for components");
            tokio::spawn(crate::component::accept_loop(self.clone(), listener));
        }
        for (listener, direct) in listeners.c2s {
            let addr = listener.local_addr().ok();
            tracing::info!(?addr, direct_tls = direct, "listening for clients");
            tokio::spawn(crate::c2s::accept_loop(self.clone(), listener, direct));
        }
    }

    /// Close every stream with `system-shutdown`, then flush the store.
    pub async fn stop(&self) {
        tracing::info!("shutting down");
        let _ = self.shutdown.send(());
        if let Some(muc) = &self.muc {
            // Occupants hear that the rooms close (status 332) before streams end.
            muc.shutdown().await;
        }
        self.registry.close_all(&StreamError::new(StreamCondition::SystemShutdown, "the server is shutting down"));
        // Give sessions a moment to write their close and store their state.
        for _ in 0..50 {
            if self.registry.session_count() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if let Err(e) = self.store.flush().await {
            tracing::error!("flushing the database at shutdown failed: {e}");
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
