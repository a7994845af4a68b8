//! The bundled web client, embedded in the binary: nothing to deploy beside it.
//!
//! Files are served under `/static/<version>/…`, where the version is a hash of every
//! embedded file: such URLs never change meaning, so they are cached for a year. The page
//! itself (`index.html`, served for every client route) is `no-cache`, so a new binary's
//! files are picked up on the next load. ES modules import each other by relative paths
//! and so stay under the same versioned prefix.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;

use super::Http;

/// Every file of `web/`, by its path inside it. A unit test checks this list against the
/// directory, so a new file cannot be forgotten.
macro_rules! web_files {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!("../../web/", $path)) as &[u8])),*]
    };
}

const FILES: &[(&str, &[u8])] = web_files![
    "index.html",
    "app.css",
    "favicon.svg",
    "js/app.js",
    "js/i18n.js",
    "js/ui.js",
    "js/xmpp.js",
    "js/sasl.js",
    "js/muc.js",
    "js/session.js",
    "js/pages/home.js",
    "js/pages/signin.js",
    "js/pages/rooms.js",
    "js/pages/create.js",
    "js/pages/room.js",
    "js/pages/join.js",
    "js/pages/devices.js",
    "js/pages/space.js",
    "js/call/jingle.js",
    "js/call/call.js",
    "js/call/ui.js",
    "js/call/media.js",
];

/// The Content-Security-Policy of every response: only our own scripts, styles and
/// connections (the WebSocket is same-origin); no inline code, no framing, no plugins.
/// `media-src` allows the camera/microphone streams of the device test and calls.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
     media-src 'self' blob: mediastream:; connect-src 'self'; font-src 'self'; manifest-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub struct Assets {
    version: String,
    files: HashMap<&'static str, &'static [u8]>,
    index: Vec<u8>,
}

impl Default for Assets {
    fn default() -> Self {
        Self::new()
    }
}

impl Assets {
    pub fn new() -> Assets {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for (path, bytes) in FILES {
            ctx.update(path.as_bytes());
            ctx.update(&(bytes.len() as u64).to_be_bytes());
            ctx.update(bytes);
        }
        let version: String = ctx.finish().as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
        let files: HashMap<_, _> = FILES.iter().copied().collect();
        let index = files
            .get("index.html")
            .map(|b| String::from_utf8_lossy(b).replace("{{VERSION}}", &version).into_bytes())
            .unwrap_or_default();
        Assets { version, files, index }
    }

    pub fn version(&self) -> &str {
        &self.version
    }
}

pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// `/static/<version>/<file>`.
pub async fn file(State(http): State<Arc<Http>>, Path((version, file)): Path<(String, String)>) -> Response {
    let Some(bytes) = http.assets.files.get(file.as_str()) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    // An old page asking for an old version gets today's file, but not cached for long.
    let cache = if version == http.assets.version { "public, max-age=31536000, immutable" } else { "no-cache" };
    ([(header::CONTENT_TYPE, content_type(&file)), (header::CACHE_CONTROL, cache)], *bytes).into_response()
}

/// Every other GET: the client's page, which routes on the path. API paths that do not
/// exist get a 404, other methods a 405.
pub async fn page(State(http): State<Arc<Http>>, method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") || path.starts_with("/static/") || path.starts_with("/.well-known/") {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    if path == "/favicon.ico" {
        let svg = http.assets.files.get("favicon.svg").copied().unwrap_or_default();
        return ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")], svg)
            .into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET, HEAD")], "method not allowed").into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
        http.assets.index.clone(),
    )
        .into_response()
}

/// Headers on every response. `Referrer-Policy: no-referrer` matters beyond privacy:
/// invitation links carry their signature in the path and must not leak to other sites.
pub async fn security_headers(mut response: Response) -> Response {
    let h: &mut HeaderMap = response.headers_mut();
    let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(h, "content-security-policy", CSP);
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "no-referrer");
    set(h, "x-frame-options", "DENY");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "permissions-policy", "camera=(self), microphone=(self), display-capture=(self), geolocation=()");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_web_file_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let mut on_disk = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else {
                    on_disk.push(p.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(p, _)| p.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "add new web/ files to FILES in src/http/assets.rs");
    }

    #[test]
    fn index_links_versioned_files() {
        let a = Assets::new();
        assert_eq!(a.version().len(), 12);
        let index = String::from_utf8(a.index.clone()).unwrap();
        assert!(index.contains(&format!("/static/{}/js/app.js", a.version())), "{index}");
        assert!(!index.contains("{{VERSION}}"));
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("app.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
        assert_eq!(content_type("x"), "application/octet-stream");
    }
}
