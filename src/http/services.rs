//! Where the web server meets the rest of amphi: the WebSocket transport, the MUC
//! service (counts, room owners) and guest logins. Kept in one file so the handlers do not
//! depend on those modules' internals.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::invite::Role;
use super::{Http, Peer};
use crate::server::Server;

/// `/xmpp-websocket`: RFC 7395 with the `xmpp` subprotocol. A client that does not offer
/// the subprotocol is refused, since it would not speak the framing either.
pub async fn websocket(
    State(http): State<Arc<Http>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    ws: WebSocketUpgrade,
) -> Response {
    let ws = ws.protocols(["xmpp"]);
    if ws.selected_protocol().is_none() {
        return (StatusCode::BAD_REQUEST, "offer the WebSocket subprotocol \"xmpp\" (RFC 7395)").into_response();
    }
    // One stanza is one message: the stanza limit (plus the framing) bounds both.
    let limit = http.server.config.c2s.max_stanza_size + 1024;
    ws.max_message_size(limit).max_frame_size(limit).on_upgrade(move |socket| async move {
        http.websockets.fetch_add(1, Ordering::Relaxed);
        crate::c2s::websocket::serve(http.server.clone(), socket, peer.addr, peer.secure()).await;
        http.websockets.fetch_sub(1, Ordering::Relaxed);
    })
}

/// Running meetings and the people in them.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Counts {
    pub meetings: usize,
    pub participants: usize,
}

/// Rooms with at least one occupant, and occupants, from the MUC service.
pub fn muc_counts(server: &Server) -> Counts {
    match &server.muc {
        Some(muc) => {
            let (meetings, participants) = muc.occupancy();
            Counts { meetings, participants }
        }
        None => Counts::default(),
    }
}

/// Why the MUC side cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("this server has no multi-user chat service")]
    NoMuc,
    #[error("sign in with your account to use a moderator link")]
    NoGuests,
    #[error("this room is reserved to the members of its space: sign in with your account")]
    SpaceMembersOnly,
    #[error("{0}")]
    Other(String),
}

/// Whether `user` (a bare JID) owns room `room` (localpart) on the MUC service. Read from
/// the stored affiliations, which the MUC service flushes before acknowledging a change;
/// so this covers permanent rooms.
pub async fn is_room_owner(server: &Arc<Server>, room: &str, user: &str) -> Result<bool, ServiceError> {
    if server.muc.is_none() {
        return Err(ServiceError::NoMuc);
    }
    let saved = server
        .store
        .muc_rooms
        .get::<crate::muc::persist::PersistedRoom>(room.as_bytes())
        .map_err(|e| ServiceError::Other(format!("cannot read the room: {e}")))?;
    Ok(saved
        .and_then(|r| r.affiliations.get(user).map(|e| e.affiliation == crate::muc::affiliation::Affiliation::Owner))
        .unwrap_or(false))
}

/// Whether room `room` (localpart) is bound to a collaboration space, from its stored
/// configuration (a room never configured is not).
pub fn space_bound(server: &Server, room: &str) -> Result<bool, ServiceError> {
    let saved = server
        .store
        .muc_rooms
        .get::<crate::muc::persist::PersistedRoom>(room.as_bytes())
        .map_err(|e| ServiceError::Other(format!("cannot read the room: {e}")))?;
    Ok(saved.is_some_and(|r| r.config.space.is_bound()))
}

/// The room's bare JID, if the MUC service runs.
pub fn room_jid(server: &Server, room: &str) -> Result<jid::BareJid, ServiceError> {
    let domain = server.config.muc_domain().ok_or(ServiceError::NoMuc)?;
    jid::BareJid::new(&format!("{room}@{domain}")).map_err(|e| ServiceError::Other(format!("bad room name: {e}")))
}

/// A guest login for one room: (full or bare JID to sign in as, password).
pub struct GuestLogin {
    pub jid: String,
    pub password: String,
}

/// Make a short-lived login that can only reach `room` (see `crate::guests`). Only
/// participant links make guests: a moderator link needs an account.
pub async fn issue_guest(
    server: &Arc<Server>,
    room: &jid::BareJid,
    display_name: &str,
    role: Role,
) -> Result<GuestLogin, ServiceError> {
    if role != Role::Participant {
        return Err(ServiceError::NoGuests);
    }
    // A space-bound room admits only its space's members (see muc::space): a guest login
    // could never enter, so none is made.
    if space_bound(server, room.node().map(|n| n.as_str()).unwrap_or_default())? {
        return Err(ServiceError::SpaceMembersOnly);
    }
    let (server, room, name) = (server.clone(), room.clone(), display_name.to_string());
    // Deriving the guest's SCRAM keys is CPU work: keep it off the async workers.
    let login = tokio::task::spawn_blocking(move || server.guests.issue(server.domain(), room, &name))
        .await
        .map_err(|e| ServiceError::Other(format!("guest login failed: {e}")))?;
    Ok(GuestLogin { jid: login.jid, password: login.password })
}

/// Create a persistent, unlisted room owned by `owner` (a bare JID) with a fresh random
/// name, for meetings made through the API. Written and flushed before returning; the MUC
/// service starts its actor on the first stanza that names it.
pub async fn create_owned_room(server: &Arc<Server>, owner: &str, name: &str) -> Result<jid::BareJid, ServiceError> {
    use crate::muc::{affiliation::Affiliation, persist};
    if server.muc.is_none() {
        return Err(ServiceError::NoMuc);
    }
    let failed = |e: crate::store::StoreError| ServiceError::Other(format!("cannot store the room: {e}"));
    let config = crate::muc::config::RoomConfig {
        name: name.to_string(),
        persistent: true,
        public: false,
        archiving: server.config.muc.default_archiving,
        history_length: server.config.muc.history_length,
        ..Default::default()
    };
    // Built through serde so fields the MUC side adds later (all defaulted) need no change here.
    let owner_entry: persist::AffEntry =
        serde_json::from_value(serde_json::json!({ "affiliation": Affiliation::Owner }))
            .map_err(|e| ServiceError::Other(e.to_string()))?;
    let room = persist::PersistedRoom {
        config,
        affiliations: [(owner.to_string(), owner_entry)].into(),
        subject: persist::Subject::default(),
    };
    for _ in 0..4 {
        let suffix: String = crate::sasl::credentials::random_bytes(5).iter().map(|b| format!("{b:02x}")).collect();
        let node = format!("meeting-{suffix}");
        if server.store.muc_rooms.insert_new(node.as_bytes(), &room).map_err(failed)? {
            server.store.flush().await.map_err(failed)?;
            return room_jid(server, &node);
        }
    }
    Err(ServiceError::Other("could not choose a free room name".into()))
}
