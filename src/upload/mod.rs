//! XEP-0363 HTTP File Upload on `upload.<domain>`.
//!
//! A client asks the service (over XMPP) for a slot: a PUT URL with an `Authorization`
//! header carrying a signed token ([`slot`]), and the GET URL to share. The upload itself
//! goes to the web server ([`http`], routes `/upload/<slot>/<name>`), which streams it to
//! disk ([`store`]) and serves it back. A periodic task deletes files older than
//! `upload.expire_after_days`; `upload.quota` bounds what one account keeps stored.

pub mod http;
pub mod slot;
pub mod store;

use jid::Jid;
use minidom::Element;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use crate::config::{Config, UploadConfig};
use crate::error::StanzaError;
use crate::server::Server;
use crate::stanza::now_secs;
use crate::xml::{ns, AttrExt, ElementExt};
use slot::Slot;

pub const NS: &str = "urn:xmpp:http:upload:0";

/// How long a slot's PUT stays allowed after the slot is given.
const SLOT_LIFETIME_SECS: u64 = 600;

/// The upload service: configuration, storage directory, signing key, usage per account.
pub struct UploadService {
    pub domain: String,
    server_domain: String,
    pub(crate) config: UploadConfig,
    pub(crate) dir: PathBuf,
    key: Vec<u8>,
    /// The web server's base URL, known once the listeners are bound.
    base_url: OnceLock<String>,
    /// Bytes stored per uploader's bare JID. A std mutex: never held across an await.
    usage: Mutex<HashMap<String, u64>>,
}

/// A slot request refused, with the XEP-0363 §4.2 extra element when there is one.
#[derive(Debug)]
pub struct SlotError {
    pub error: StanzaError,
    pub extra: Option<Box<Element>>,
}

impl From<StanzaError> for SlotError {
    fn from(error: StanzaError) -> Self {
        SlotError { error, extra: None }
    }
}

impl UploadService {
    /// The service, when `[upload]` is enabled and there is a web server to upload to.
    pub fn new(config: &Config) -> std::io::Result<Option<Arc<UploadService>>> {
        let Some(domain) = config.upload_domain() else { return Ok(None) };
        let dir = config.server.data_dir.join("uploads");
        std::fs::create_dir_all(&dir)?;
        let key = store::load_or_create_key(&dir)?;
        let usage = store::usage(&dir)?;
        Ok(Some(Arc::new(UploadService {
            domain,
            server_domain: config.server.domain.clone(),
            config: config.upload.clone(),
            dir,
            key,
            base_url: OnceLock::new(),
            usage: Mutex::new(usage),
        })))
    }

    /// Learn the web server's address and start the expiry task (from `Server::start`).
    ///
    /// Without `upload.url`, HTTPS is preferred when a real certificate is configured; with
    /// the generated self-signed one (localhost), plain HTTP is preferred, as clients and
    /// browsers refuse that certificate for uploads without asking anyone.
    pub fn start(self: &Arc<Self>, server: &Arc<Server>, http: &crate::http::Listeners) {
        let tls = http.tls_addrs().first().map(|a| format!("https://{}:{}", self.server_domain, a.port()));
        let plain = http.plain_addrs().first().map(|a| format!("http://{}:{}", self.server_domain, a.port()));
        let preferred = if server.config.tls.cert.is_some() { tls.or(plain) } else { plain.or(tls) };
        let base = if !self.config.url.is_empty() {
            self.config.url.trim_end_matches('/').to_string()
        } else if let Some(url) = preferred {
            url
        } else {
            tracing::warn!("upload: no [http] listener and no upload.url; slot requests will fail");
            String::new()
        };
        let _ = self.base_url.set(base);
        if self.config.expire_after_days == 0 {
            return;
        }
        let me = self.clone();
        let mut stop = server.shutdown.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = tick.tick() => me.expire_now().await,
                    _ = stop.recv() => return,
                }
            }
        });
    }

    /// Delete what has expired (the periodic task; tests call it directly).
    pub async fn expire_now(&self) {
        let now = now_secs();
        let days = u64::from(self.config.expire_after_days);
        let cutoff = (days > 0).then(|| now.saturating_sub(days * 86_400));
        match store::expire(&self.dir, cutoff, now).await {
            Ok(freed) => {
                if !freed.is_empty() {
                    tracing::info!(files = freed.len(), "upload: deleted expired files");
                }
                for (uploader, size) in freed {
                    self.account(&uploader, |u| u.saturating_sub(size));
                }
            }
            Err(e) => tracing::warn!("upload: cannot scan {}: {e}", self.dir.display()),
        }
    }

    /// Change an uploader's stored total.
    pub(crate) fn account(&self, uploader: &str, f: impl FnOnce(u64) -> u64) {
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        let entry = usage.entry(uploader.to_string()).or_default();
        *entry = f(*entry);
    }

    fn used(&self, uploader: &str) -> u64 {
        self.usage.lock().unwrap_or_else(|e| e.into_inner()).get(uploader).copied().unwrap_or(0)
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    /// A stanza addressed to the service (from `Server::route_to_service`).
    pub fn route(&self, server: &Arc<Server>, stanza: Element) {
        if stanza.name() != "iq" || !matches!(stanza.attr("type"), Some("get" | "set")) {
            return;
        }
        let Some(from) = crate::stanza::from(&stanza) else { return };
        let reply = match self.handle_iq(&from, &stanza) {
            Ok(payload) => {
                let mut r = crate::c2s::negotiation::iq_result(&stanza, payload);
                crate::stanza::readdress(&mut r, &self.domain, Some(&from.to_string()));
                r
            }
            Err(SlotError { error, extra }) => {
                let mut r = crate::stanza::error_reply(&stanza, error, None);
                r.set("from", self.domain.as_str());
                if let (Some(extra), Some(e)) = (extra, r.get_child_mut("error", ns::CLIENT)) {
                    e.append_child(*extra);
                }
                r
            }
        };
        crate::modules::message::deliver_to_resource(server, &from, reply);
    }

    /// Answer one iq get/set from `from`.
    pub fn handle_iq(&self, from: &Jid, iq: &Element) -> Result<Option<Element>, SlotError> {
        let set = iq.attr("type") == Some("set");
        if crate::stanza::to(iq).ok().flatten().is_some_and(|to| to.node().is_some() || to.resource().is_some()) {
            return Err(StanzaError::service_unavailable().with_text("the upload service has no such address").into());
        }
        let Some(payload) = iq.children().next().filter(|_| iq.children().count() == 1) else {
            return Err(StanzaError::bad_request().with_text("an iq get/set needs exactly one child").into());
        };
        match (payload.ns().as_str(), payload.name()) {
            (ns::DISCO_INFO, "query") if !set => self.disco_info(payload).map(Some),
            (ns::DISCO_ITEMS, "query") if !set => Ok(Some(Element::bare("query", ns::DISCO_ITEMS))),
            (ns::PING, "ping") if !set => Ok(None),
            (NS, "request") if !set => self.request_slot(from, payload, now_secs()).map(Some),
            _ => Err(StanzaError::service_unavailable().into()),
        }
    }

    fn disco_info(&self, query: &Element) -> Result<Element, SlotError> {
        if query.attr("node").is_some() {
            return Err(StanzaError::item_not_found().with_text("no such node").into());
        }
        let field = |var: &str, value: &str, hidden: bool| {
            let mut f = Element::builder("field", ns::DATA_FORMS).a("var", var);
            if hidden {
                f = f.a("type", "hidden");
            }
            f.append(Element::builder("value", ns::DATA_FORMS).append(value).build()).build()
        };
        let form = Element::builder("x", ns::DATA_FORMS)
            .a("type", "result")
            .append(field("FORM_TYPE", NS, true))
            .append(field("max-file-size", &self.config.max_file_size.to_string(), false))
            .build();
        let mut q = Element::builder("query", ns::DISCO_INFO).append(
            Element::builder("identity", ns::DISCO_INFO)
                .a("category", "store")
                .a("type", "file")
                .a("name", "HTTP File Upload")
                .build(),
        );
        for f in [ns::DISCO_INFO, ns::DISCO_ITEMS, ns::PING, NS] {
            q = q.append(Element::builder("feature", ns::DISCO_INFO).a("var", f).build());
        }
        Ok(q.append(form).build())
    }

    /// XEP-0363 §4: check the request, return the `<slot/>`.
    pub fn request_slot(&self, from: &Jid, req: &Element, now: u64) -> Result<Element, SlotError> {
        let local = from.domain().as_str() == self.server_domain;
        let guest = from.node().is_some_and(|n| crate::guests::Guests::is_guest(n.as_str()));
        if !local || guest || from.node().is_none() {
            return Err(StanzaError::forbidden().with_text("only accounts of this server may upload files").into());
        }
        let base = self.base_url.get().map(String::as_str).unwrap_or("");
        if base.is_empty() {
            return Err(StanzaError::service_unavailable().with_text("the web server is not running").into());
        }
        let filename = req.attr("filename").unwrap_or("");
        if let Err(why) = slot::check_filename(filename) {
            return Err(StanzaError::not_acceptable().with_text(why).into());
        }
        let Some(size) = req.attr("size").and_then(|s| s.parse::<u64>().ok()).filter(|s| *s > 0) else {
            return Err(StanzaError::bad_request().with_text("size must be a positive number of bytes").into());
        };
        let content_type = req.attr("content-type").unwrap_or("").trim();
        if !content_type.is_empty() && !slot::valid_content_type(content_type) {
            return Err(StanzaError::bad_request().with_text("content-type is not a MIME type").into());
        }
        let max = self.config.max_file_size;
        if size > max {
            return Err(SlotError {
                error: StanzaError::not_acceptable().with_text(format!("File too large. The maximum is {max} bytes")),
                extra: Some(Box::new(
                    Element::builder("file-too-large", NS)
                        .append(Element::builder("max-file-size", NS).append(max.to_string()).build())
                        .build(),
                )),
            });
        }
        let uploader = from.to_bare().to_string();
        let quota = self.config.quota;
        if quota > 0 && self.used(&uploader).saturating_add(size) > quota {
            return Err(StanzaError::resource_constraint()
                .with_text(format!("Quota reached: each account may keep {quota} bytes of files"))
                .into());
        }
        let s = Slot {
            id: slot::new_id(),
            filename: filename.to_string(),
            size,
            content_type: content_type.to_string(),
            uploader,
            expires: now + SLOT_LIFETIME_SECS,
        };
        let url = format!("{base}/upload/{}/{}", s.id, slot::percent_encode(&s.filename));
        let put = Element::builder("put", NS).a("url", url.as_str()).append(
            Element::builder("header", NS)
                .a("name", "Authorization")
                .append(format!("Bearer {}", s.token(&self.key)))
                .build(),
        );
        Ok(Element::builder("slot", NS)
            .append(put.build())
            .append(Element::builder("get", NS).a("url", url.as_str()).build())
            .build())
    }
}
