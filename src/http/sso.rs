//! Single sign-on routes (OpenID Connect, `crate::oidc`):
//!
//! - `GET /api/sso/issuers`: the identity providers to choose from.
//! - `GET /sso/<id>/start`: redirect to the provider, with a cookie binding the sign-in
//!   to this browser (`amphi_sso`, path `/sso`, HttpOnly, SameSite=Lax so it comes back
//!   with the provider's top-level redirect).
//! - `GET /sso/callback`: redirect to `/sso/done#token=…&jid=…` (a fragment: never in logs
//!   or a Referer), or to `/signin?sso_error=<code>`.
//! - `POST /api/sso/signout`, `GET /api/me`: with `Authorization: Bearer <token>`.
//!
//! [`bearer`] is how the other API routes accept the same tokens.

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use std::sync::Arc;
use std::time::Instant;

use super::api::ApiError;
use super::{Http, Peer};

const COOKIE: &str = "amphi_sso";

/// `GET /api/sso/issuers`
pub async fn issuers(State(http): State<Arc<Http>>) -> Response {
    let list: Vec<_> =
        http.sso.issuers().into_iter().map(|(id, name)| serde_json::json!({ "id": id, "name": name })).collect();
    ([(header::CACHE_CONTROL, "no-store")], Json(list)).into_response()
}

fn redirect(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn signin_error(code: &str) -> Response {
    redirect(&format!("/signin?sso_error={code}"))
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (name, value) = c.trim().split_once('=')?;
        (name == COOKIE && !value.is_empty() && value.len() <= 64).then(|| value.to_string())
    })
}

/// `GET /sso/<id>/start`
pub async fn start(State(http): State<Arc<Http>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let browser = cookie(&headers).unwrap_or_else(crate::oidc::flow::random_token);
    match http.sso.start(&id, &browser).await {
        Ok(Some(url)) => {
            let mut r = redirect(&url);
            let secure = if http.sso.public_url.starts_with("https://") { "; Secure" } else { "" };
            let c = format!("{COOKIE}={browser}; Path=/sso; Max-Age=600; HttpOnly; SameSite=Lax{secure}");
            if let Ok(v) = HeaderValue::from_str(&c) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Ok(None) => unknown_provider(),
        Err(e) => {
            tracing::warn!(issuer = %id, "single sign-on cannot start: {e}");
            signin_error(e.code())
        }
    }
}

/// A page for a provider id nobody configured (a stale bookmark), in both languages.
fn unknown_provider() -> Response {
    let page = "<!doctype html><html><head><meta charset=\"utf-8\"><title>amphi</title></head><body>\
        <main><h1 lang=\"fr\">Fournisseur d'identité inconnu</h1>\
        <p lang=\"fr\">Ce fournisseur d'identité n'existe pas (ou plus) sur ce serveur. \
        <a href=\"/signin\">Revenir à la connexion</a></p>\
        <h1 lang=\"en\">Unknown identity provider</h1>\
        <p lang=\"en\">This identity provider does not exist (any more) on this server. \
        <a href=\"/signin\">Back to sign-in</a></p></main></body></html>";
    (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], Html(page)).into_response()
}

/// `GET /sso/callback`
pub async fn callback(
    State(http): State<Arc<Http>>,
    query: Result<Query<crate::oidc::Callback>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Query(cb)) = query else { return signin_error("state") };
    let mut r = match http.sso.callback(&http.server.store, &cb, cookie(&headers).as_deref()).await {
        Ok(s) => redirect(&format!(
            "/sso/done#token={}&jid={}",
            super::percent_encode(&s.token),
            super::percent_encode(&s.jid)
        )),
        Err(code) => signin_error(code),
    };
    // The sign-in is spent either way: clear its cookie.
    let clear = format!("{COOKIE}=; Path=/sso; Max-Age=0; HttpOnly; SameSite=Lax");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The account of an `Authorization: Bearer` header: `Ok(None)` when the request has no
/// bearer token (the caller may try another scheme). A refused token counts against the
/// address's sign-in throttle, like a wrong password.
pub(super) async fn bearer(http: &Http, peer: &Peer, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(token) = bearer_token(headers) else { return Ok(None) };
    let ip = peer.addr.ip().to_string();
    let now = Instant::now();
    if let Some(secs) = http.server.auth_failures_by_ip.blocked(&ip, now) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            format!("too many failed sign-ins; try again in {secs} s"),
        ));
    }
    match http.sso.bearer(&http.server.store, token).await {
        Some(user) => Ok(Some(format!("{user}@{}", http.server.domain()))),
        None => {
            http.server.auth_failures_by_ip.record(&ip, now);
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "sign in again"))
        }
    }
}

async fn required(http: &Http, peer: &Peer, headers: &HeaderMap) -> Result<String, ApiError> {
    bearer(http, peer, headers)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a bearer token is required"))
}

/// `POST /api/sso/signout`: revoke the token (SASL OAUTHBEARER with it fails from now on).
pub async fn signout(
    State(http): State<Arc<Http>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = bearer_token(&headers)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a bearer token is required"))?;
    let store = &http.server.store;
    // Only amphi's own tokens can be revoked here (a provider's JWT is not ours to end).
    let known = crate::oidc::tokens::lookup(store, token, crate::stanza::now_secs()).ok().flatten().is_some();
    let revoked = known
        && crate::oidc::tokens::revoke(store, token).await.map_err(|e| {
            tracing::error!("revoking a sign-in token: {e}");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the token store failed")
        })?;
    if !revoked {
        http.server.auth_failures_by_ip.record(&peer.addr.ip().to_string(), Instant::now());
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "unknown or expired token"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/me`: who the token signs in, as the provider described them.
pub async fn me(
    State(http): State<Arc<Http>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let jid = required(&http, &peer, &headers).await?;
    let user = jid.split('@').next().unwrap_or("");
    let entry = crate::auth::directory_entry(&http.server.store, user).unwrap_or_default();
    let body = serde_json::json!({
        "jid": jid,
        "name": entry.display_name,
        "email": entry.mail,
        "groups": entry.groups,
    });
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}
