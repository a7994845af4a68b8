//! JSON APIs of the web client: live statistics, a room owner's invitation links, and
//! joining through a link.
//!
//! Invitation links are signed only for the room's owner, who proves who they are with
//! their account's password (HTTP Basic over the same origin; the client already holds it
//! for its XMPP session). Failures count against the same throttles as XMPP sign-ins.

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use std::sync::Arc;
use std::time::Instant;

use super::invite::Role;
use super::services::{self, ServiceError};
use super::{Http, Peer};
use crate::store::Account;

/// An error as the client sees it: a stable code for the program, a text for people.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    text: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, text: impl Into<String>) -> ApiError {
        ApiError { status, code, text: text.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(serde_json::json!({ "error": self.code, "text": self.text }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // No `Basic` challenge: the browser must not pop up its own password dialog.
            r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("amphi"));
        }
        r
    }
}

impl From<super::links::LinkError> for ApiError {
    fn from(e: super::links::LinkError) -> Self {
        tracing::error!("invitation links: {e}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the server could not read its invitation keys")
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NoGuests => ApiError::new(StatusCode::FORBIDDEN, "account-required", e.to_string()),
            ServiceError::SpaceMembersOnly => ApiError::new(StatusCode::FORBIDDEN, "space-members-only", e.to_string()),
            _ => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string()),
        }
    }
}

fn no_store<T: IntoResponse>(body: T) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], body).into_response()
}

#[derive(serde::Serialize)]
pub struct Stats {
    meetings: usize,
    participants: usize,
    capacity: u32,
}

pub async fn stats(State(http): State<Arc<Http>>) -> Response {
    let c = services::muc_counts(&http.server);
    no_store(Json(Stats {
        meetings: c.meetings,
        participants: c.participants,
        capacity: http.server.config.http.capacity,
    }))
}

/// `GET /api/config`: what the web client needs before signing in.
pub async fn config(State(http): State<Arc<Http>>) -> Response {
    let c = &http.server.config;
    no_store(Json(serde_json::json!({
        "domain": c.server.domain,
        "muc": c.muc_domain(),
        "registration": c.auth.registration,
        "capacity": c.http.capacity,
    })))
}

/// The account behind an `Authorization: Basic` header, checked against its stored SCRAM
/// keys, or behind a single sign-on `Bearer` token (`sso::bearer`: those users have no
/// password). Returns the bare JID.
async fn authenticate(http: &Http, peer: &Peer, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(jid) = super::sso::bearer(http, peer, headers).await? {
        return Ok(jid);
    }
    let unauthorized = || ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "sign in again");
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or_else(unauthorized)?;
    let encoded = value.strip_prefix("Basic ").ok_or_else(unauthorized)?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| unauthorized())?;
    let decoded = String::from_utf8(decoded).map_err(|_| unauthorized())?;
    let (user, password) = decoded.split_once(':').ok_or_else(unauthorized)?;
    let domain = http.server.domain();
    let node = match user.split_once('@') {
        Some((n, d)) if d == domain => n,
        Some(_) => return Err(unauthorized()),
        None => user,
    };
    let user = crate::sasl::normalize_username(node).ok_or_else(unauthorized)?;
    let now = Instant::now();
    let ip = peer.addr.ip().to_string();
    if let Some(secs) = http
        .server
        .auth_failures_by_user
        .blocked(&user, now)
        .or_else(|| http.server.auth_failures_by_ip.blocked(&ip, now))
    {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            format!("too many failed sign-ins; try again in {secs} s"),
        ));
    }
    let account = http.server.store.accounts.get::<Account>(user.as_bytes()).map_err(|e| {
        tracing::error!("reading account {user}: {e}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the account store is unreadable")
    })?;
    let password = password.to_string();
    // PBKDF2 takes milliseconds of CPU: keep it off the async workers.
    let ok = match account {
        Some(a) => tokio::task::spawn_blocking(move || a.credentials.verify_password(&password)).await.unwrap_or(false),
        None => false,
    };
    if !ok {
        http.server.auth_failures_by_user.record(&user, now);
        http.server.auth_failures_by_ip.record(&ip, now);
        return Err(unauthorized());
    }
    Ok(format!("{user}@{domain}"))
}

fn valid_room(room: &str) -> Result<(), ApiError> {
    if room.is_empty() || room.len() > 256 || jid::NodePart::new(room).is_err() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no-such-room", "no such room"));
    }
    Ok(())
}

async fn owner_only(http: &Http, peer: &Peer, headers: &HeaderMap, room: &str) -> Result<(), ApiError> {
    valid_room(room)?;
    let user = authenticate(http, peer, headers).await?;
    if !services::is_room_owner(&http.server, room, &user).await? {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "only the room's owners can invite with links"));
    }
    Ok(())
}

/// `GET /api/rooms/<room>/invites`: the room's current links, for its owners.
pub async fn invites(
    State(http): State<Arc<Http>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    owner_only(&http, &peer, &headers, &room).await?;
    Ok(no_store(Json(http.links.for_room(&room)?)))
}

/// `POST /api/rooms/<room>/invites/regenerate`: new links; the old ones stop working.
pub async fn regenerate(
    State(http): State<Arc<Http>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(room): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    owner_only(&http, &peer, &headers, &room).await?;
    Ok(no_store(Json(http.links.regenerate(&room).await?)))
}

/// The parts of a followed link.
#[derive(serde::Deserialize)]
pub struct LinkParts {
    role: String,
    room: String,
    signature: String,
}

fn check(http: &Http, link: &LinkParts) -> Result<Role, ApiError> {
    let refused = || ApiError::new(StatusCode::FORBIDDEN, "invalid-link", "this invitation link is not valid");
    let role = Role::parse(&link.role).ok_or_else(refused)?;
    valid_room(&link.room).map_err(|_| refused())?;
    if link.signature.len() > 128 || !http.links.check(role, &link.room, &link.signature)? {
        return Err(refused());
    }
    Ok(role)
}

/// `POST /api/meeting/check`: is this link valid? Lets the join page refuse a forged link
/// before asking for a name.
pub async fn check_link(State(http): State<Arc<Http>>, Json(link): Json<LinkParts>) -> Result<Response, ApiError> {
    let role = check(&http, &link)?;
    let room = services::room_jid(&http.server, &link.room)?;
    let space = services::space_bound(&http.server, &link.room)?;
    Ok(no_store(Json(serde_json::json!({ "role": role, "room": room.to_string(), "space": space }))))
}

#[derive(serde::Deserialize)]
pub struct JoinRequest {
    #[serde(flatten)]
    link: LinkParts,
    name: String,
}

/// A display name: trimmed, 1 to 64 characters, no control characters (it becomes the
/// guest's nickname in the room).
fn display_name(name: &str) -> Option<&str> {
    let name = name.trim();
    let n = name.chars().count();
    ((1..=64).contains(&n) && !name.chars().any(char::is_control)).then_some(name)
}

/// `POST /api/meeting/join`: a guest following a link gets a login for that room only.
pub async fn join(
    State(http): State<Arc<Http>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Json(req): Json<JoinRequest>,
) -> Result<Response, ApiError> {
    let role = check(&http, &req.link)?;
    let name = display_name(&req.name)
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "bad-name", "enter a name of 1 to 64 characters"))?;
    let capacity = http.server.config.http.capacity as usize;
    if capacity > 0 && services::muc_counts(&http.server).participants >= capacity {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "capacity",
            format!("the service is full ({capacity} participants); try again later"),
        ));
    }
    let ip = peer.addr.ip();
    let now = Instant::now();
    if !ip.is_loopback() {
        if let Some(secs) = http.server.registrations_by_ip.blocked(&ip.to_string(), now) {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                format!("too many guests from your address; try again in {secs} s"),
            ));
        }
        http.server.registrations_by_ip.record(&ip.to_string(), now);
    }
    let room = services::room_jid(&http.server, &req.link.room)?;
    let login = services::issue_guest(&http.server, &room, name, role).await?;
    Ok(no_store(Json(serde_json::json!({
        "jid": login.jid,
        "password": login.password,
        "room": room.to_string(),
        "nick": name,
        "role": role,
    }))))
}

/// `POST /api/meetings` (integrations such as calendar add-ins): a new room owned by the
/// signed-in user, with its two invitation links as absolute URLs. Body (optional):
/// `{"name": "..."}`, the room's display name.
pub async fn create_meeting(
    State(http): State<Arc<Http>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let owner = authenticate(&http, &peer, &headers).await?;
    #[derive(serde::Deserialize, Default)]
    struct Request {
        #[serde(default)]
        name: Option<String>,
    }
    let bad = || ApiError::new(StatusCode::BAD_REQUEST, "bad-request", "send {\"name\": \"...\"} or nothing");
    let req: Request =
        if body.is_empty() { Request::default() } else { serde_json::from_slice(&body).map_err(|_| bad())? };
    let name = match req.name.as_deref() {
        Some(n) => display_name(n)
            .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "bad-name", "a name of 1 to 64 characters"))?,
        None => "",
    };
    let room = services::create_owned_room(&http.server, &owner, name).await?;
    let links = http.links.for_room(room.node().map(|n| n.as_str()).unwrap_or(""))?;
    let base = &http.sso.public_url;
    let body = serde_json::json!({
        "room": room.to_string(),
        "moderator_link": format!("{base}{}", links.moderator),
        "participant_link": format!("{base}{}", links.participant),
    });
    Ok((StatusCode::CREATED, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names() {
        assert_eq!(display_name("  Ada  "), Some("Ada"));
        assert_eq!(display_name(""), None);
        assert_eq!(display_name("   "), None);
        assert_eq!(display_name("a\nb"), None);
        assert_eq!(display_name(&"é".repeat(64)), Some("é".repeat(64).as_str()));
        assert_eq!(display_name(&"x".repeat(65)), None);
    }
}
