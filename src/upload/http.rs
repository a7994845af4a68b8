//! The HTTP side of XEP-0363: `PUT /upload/<slot>/<name>` stores a file authorised by the
//! slot's token, `GET` (and `HEAD`) serve it, `OPTIONS` answers CORS preflights so the web
//! client (or any web client, on any origin) can upload with the `Authorization` header.
//!
//! Served files carry `X-Content-Type-Options: nosniff`, a sandboxing CSP and a
//! `Content-Disposition` that shows only types that cannot run script inline.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use super::slot::{self, Slot};
use super::store::{self, Meta, ReceiveError};
use crate::http::Http;
use crate::stanza::now_secs;

/// Headers on every upload response: CORS (tokens travel in a header, not in cookies, so
/// any origin may ask) and no sniffing.
fn cors(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (name, value) in [
        ("access-control-allow-origin", "*"),
        ("access-control-allow-methods", "GET, HEAD, PUT, OPTIONS"),
        ("access-control-allow-headers", "Authorization, Content-Type"),
        ("access-control-max-age", "86400"),
        ("x-content-type-options", "nosniff"),
        ("cross-origin-resource-policy", "cross-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    r
}

fn status(code: StatusCode, text: &str) -> Response {
    cors((code, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{text}\n")).into_response())
}

/// CORS preflight.
pub(crate) async fn preflight() -> Response {
    cors(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn put(
    State(http): State<Arc<Http>>,
    Path((id, filename)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(up) = &http.server.upload else { return status(StatusCode::NOT_FOUND, "no upload service") };
    if !slot::valid_id(&id) {
        return status(StatusCode::NOT_FOUND, "no such slot");
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let s = match Slot::verify(up.key(), &id, &filename, token.trim(), now_secs()) {
        Ok(s) => s,
        Err(e) => return status(StatusCode::FORBIDDEN, &e.to_string()),
    };
    if store::exists(&up.dir, &id).await {
        return status(StatusCode::CONFLICT, "this slot has already been used");
    }
    let Some(length) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok()) else {
        return status(StatusCode::LENGTH_REQUIRED, "Content-Length is required");
    };
    if length > s.size {
        return status(StatusCode::PAYLOAD_TOO_LARGE, "the body is larger than the size given for the slot");
    }
    if length != s.size {
        return status(StatusCode::BAD_REQUEST, "Content-Length differs from the size given for the slot");
    }
    let sent_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").trim();
    let content_type = if !s.content_type.is_empty() {
        if !slot::same_content_type(sent_type, &s.content_type) {
            return status(StatusCode::BAD_REQUEST, "Content-Type differs from the content-type given for the slot");
        }
        s.content_type.clone()
    } else if slot::valid_content_type(sent_type) {
        sent_type.to_string()
    } else {
        "application/octet-stream".to_string()
    };
    let meta = Meta { filename: s.filename, content_type, size: s.size, uploader: s.uploader, created: now_secs() };
    match store::receive(&up.dir, &id, &meta, body).await {
        Ok(()) => {
            up.account(&meta.uploader, |u| u.saturating_add(meta.size));
            tracing::info!(uploader = %meta.uploader, size = meta.size, "upload: file stored");
            status(StatusCode::CREATED, "stored")
        }
        Err(ReceiveError::Exists) => status(StatusCode::CONFLICT, "this slot has already been used"),
        Err(ReceiveError::TooLarge) => status(StatusCode::PAYLOAD_TOO_LARGE, "the body is larger than the slot"),
        Err(e @ (ReceiveError::Short | ReceiveError::Body(_))) => status(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(ReceiveError::Io(e)) => {
            tracing::error!("upload: cannot store a file in {}: {e}", up.dir.display());
            status(StatusCode::INTERNAL_SERVER_ERROR, "the file could not be stored")
        }
    }
}

/// `GET` and `HEAD` (axum answers HEAD with GET's headers and no body).
pub(crate) async fn get(State(http): State<Arc<Http>>, Path((id, filename)): Path<(String, String)>) -> Response {
    let Some(up) = &http.server.upload else { return status(StatusCode::NOT_FOUND, "no upload service") };
    if !slot::valid_id(&id) {
        return status(StatusCode::NOT_FOUND, "no such file");
    }
    let Some(meta) = store::read_meta(&up.dir, &id).await.filter(|m| m.filename == filename) else {
        return status(StatusCode::NOT_FOUND, "no such file");
    };
    let file = match tokio::fs::File::open(store::path(&up.dir, &id, "data")).await {
        Ok(f) => f,
        Err(_) => return status(StatusCode::NOT_FOUND, "no such file"),
    };
    let disposition = slot::content_disposition(&meta.filename, slot::inline_type(&meta.content_type));
    let mut r = Body::from_stream(tokio_util::io::ReaderStream::new(file)).into_response();
    let h = r.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, meta.content_type.as_str()),
        (header::CONTENT_DISPOSITION, disposition.as_str()),
        (header::CONTENT_LENGTH, &meta.size.to_string()),
        (header::CACHE_CONTROL, "public, max-age=86400, immutable"),
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    }
    cors(r)
}
