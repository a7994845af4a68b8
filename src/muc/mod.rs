//! XEP-0045 Multi-User Chat on `conference.<domain>`.
//!
//! ## Layout
//! - [`room`]: the sans-IO room core (state + dispatch); features in their own files as
//!   further `impl Room` blocks: [`join`] (enter, leave, nick, presence), [`chat`]
//!   (groupchat, subject, private messages), [`admin`] (kick, voice, ban, membership...),
//!   [`owner`] (configuration, creation, destruction), [`invite`] (invitations, voice
//!   requests), [`register`] (registration, reserved nicks), [`moderation`] (XEP-0425),
//!   [`disco`]; data in [`config`], [`affiliation`], [`occupant`], [`history`], [`persist`].
//! - [`actor`]: one tokio task per room with a bounded queue; it runs the core, writes and
//!   flushes the store, then delivers.
//! - [`archive`]: XEP-0313 archive of persistent rooms in sled, paged with RSM.
//! - This file: the service — routing stanzas to room actors, the service's own disco.
//!
//! ## Rooms' life
//! A room is created by the first available presence to `room@service/nick` (§10.1): the
//! creator is its owner and the room stays locked (others get `item-not-found`) until the
//! owner submits the configuration form, empty for an instant room. A temporary room is
//! gone when its last occupant leaves. A persistent room is written to the store
//! (config, affiliations, subject) and flushed before the change is acknowledged; after a
//! restart its actor starts again on the first stanza that names it, with its history
//! refilled from the archive.
//!
//! ## "My rooms"
//! An owner lists the rooms they own with a disco#items query to the service on the node
//! [`MY_ROOMS_NODE`] (`x-amphi:my-rooms`), the standard XEP-0030 way to expose a named
//! subset of a service's items. The answer lists every room (public or hidden, occupied or
//! not) whose owner list contains the requester's bare JID, one `<item jid name/>` each.
//! A plain disco#items without a node lists the public rooms (§6.3).
//!
//! ## The room's call
//! Each room has a call on the focus (`room@focus.<domain>`, xep/jingle-conferences.md).
//! After each batch, before delivering anything, a room's actor publishes who is in the
//! room (real full JID → nick, role, whether it sees real JIDs) in its [`Summary`]; the
//! focus reads it through [`MucService::occupant`] to admit callers and allow moderator
//! actions. The actor also compares each snapshot with the last one and tells the focus
//! which sessions are gone (their call sessions end) and when the room was destroyed (the
//! call ends). The room core knows nothing of calls.
//!
//! ## Leaving on disconnect
//! A session that ends sends `unavailable` to every occupant JID it sent presence to
//! (directed presence, RFC 6121 §4.6.3), which removes it. A session that never sent
//! broadcast presence is caught by delivery: a stanza that cannot be delivered to an
//! occupant's session removes that session from the room.

pub mod actor;
pub mod admin;
pub mod affiliation;
pub mod archive;
pub mod chat;
pub mod config;
pub mod disco;
pub mod form;
pub mod history;
pub mod invite;
pub mod join;
pub mod moderation;
pub mod ns;
pub mod occupant;
pub mod occupant_id;
pub mod owner;
pub mod persist;
pub mod register;
pub mod room;
pub mod space;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_space;

use jid::{BareJid, Jid};
use minidom::Element;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

use crate::config::MucConfig;
use crate::error::StanzaError;
use crate::server::Server;
use crate::store::Store;
use crate::xml::{ns as xns, AttrExt};
use actor::{Actor, RoomInput};
use persist::PersistedRoom;
use room::{Limits, Room};

/// The disco#items node listing the requester's own rooms (see the module docs).
pub const MY_ROOMS_NODE: &str = "x-amphi:my-rooms";

/// What the service knows of a running room without asking its actor.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub name: String,
    pub public: bool,
    pub persistent: bool,
    pub owners: Vec<String>,
    pub occupants: usize,
    /// Whether the room exists (a running actor may hold a room not created yet).
    pub created: bool,
    /// Every joined session (real full JID) and what it is in the room. Behind an `Arc`
    /// so listing rooms does not copy it; the actor replaces it after each batch.
    pub sessions: Arc<HashMap<String, OccupantInfo>>,
}

/// One joined session as other services see it (the focus: who may call, who moderates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccupantInfo {
    pub nick: String,
    pub role: affiliation::Role,
    /// Whether this occupant may see other occupants' real JIDs (§5: everyone in a
    /// non-anonymous room, moderators in a semi-anonymous one).
    pub sees_jids: bool,
}

/// A real full JID's place in a room, as [`MucService::occupant`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Occupancy {
    /// No such room: neither running nor stored.
    NoRoom,
    /// The room exists; this session is not in it.
    Outsider,
    Occupant(OccupantInfo),
}

struct RoomHandle {
    tx: mpsc::Sender<RoomInput>,
    summary: Arc<Mutex<Summary>>,
}

/// The MUC service. `route` receives every stanza addressed to the service's domain,
/// with `from` already stamped by the sender's session.
pub struct MucService {
    pub domain: String,
    /// Running rooms by node. A `std` mutex: held only to look up, insert or remove,
    /// never across an `.await`.
    rooms: Mutex<HashMap<String, RoomHandle>>,
    store: Store,
    settings: MucConfig,
    /// XEP-0421 secret, kept in the store so occupant ids survive restarts.
    secret: Arc<[u8]>,
    /// Service-wide participant capacity (0: none) and whether it is reached now.
    capacity: usize,
    service_full: Arc<std::sync::atomic::AtomicBool>,
    /// The server's domain, whose accounts alone can belong to a room's space. Learnt from
    /// the first stanza routed (every room is started from `route`), so the service needs
    /// nothing more at construction.
    local_domain: std::sync::OnceLock<String>,
}

impl MucService {
    pub fn new(domain: String, store: Store, settings: MucConfig) -> MucService {
        let secret = match store.muc_meta.get::<Vec<u8>>(b"occupant-id-secret") {
            Ok(Some(s)) if s.len() >= 16 => s,
            _ => {
                let s = crate::sasl::credentials::random_bytes(32);
                if let Err(e) = store.muc_meta.put(b"occupant-id-secret", &s).and_then(|_| store.flush_blocking()) {
                    tracing::error!("cannot store the MUC occupant-id secret: {e}");
                }
                s
            }
        };
        MucService {
            domain,
            rooms: Mutex::new(HashMap::new()),
            store,
            settings,
            secret: secret.into(),
            capacity: 0,
            service_full: Arc::default(),
            local_domain: std::sync::OnceLock::new(),
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            max_occupants: self.settings.max_occupants,
            max_history: self.settings.max_history_length,
            service_full: self.service_full.clone(),
        }
    }

    /// Participants the whole service may hold (0: no limit), from `http.capacity`.
    pub fn with_capacity(mut self, capacity: usize) -> MucService {
        self.capacity = capacity;
        self
    }

    fn room_jid(&self, node: &str) -> Option<BareJid> {
        BareJid::new(&format!("{node}@{}", self.domain)).ok()
    }

    /// A room that does not exist yet, with the service's default configuration.
    pub fn new_room(&self, jid: BareJid) -> Room {
        let config = config::RoomConfig {
            persistent: self.settings.default_persistent,
            public: self.settings.default_public,
            archiving: self.settings.default_archiving,
            history_length: self.settings.history_length,
            ..Default::default()
        };
        Room::new(jid, config, self.limits(), self.secret.clone(), self.ids()).with_local_domain(self.local_domain())
    }

    fn local_domain(&self) -> &str {
        self.local_domain.get().map(String::as_str).unwrap_or("")
    }

    fn ids(&self) -> room::IdSource {
        let store = self.store.clone();
        Box::new(move || store.next_id().unwrap_or_else(|_| actor::now_ms() << 16))
    }

    /// Handle a stanza for the service or one of its rooms. Never blocks: room work runs
    /// in room actors; this only hands the stanza over.
    pub fn route(&self, server: &Arc<Server>, stanza: Element) {
        self.local_domain.get_or_init(|| server.domain().to_string());
        let Ok(Some(to)) = crate::stanza::to(&stanza) else {
            return;
        };
        let Some(node) = to.node().map(|n| n.as_str().to_lowercase()) else {
            return self.service_stanza(server, stanza);
        };
        let joining = stanza.name() == "presence" && stanza.attr("type").is_none() && to.resource().is_some();
        if joining && self.capacity > 0 {
            let full = self.occupancy().1 >= self.capacity;
            self.service_full.store(full, std::sync::atomic::Ordering::Relaxed);
        }
        let refusal = {
            let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
            let mut pending = stanza;
            if let Some(h) = rooms.get(&node) {
                match h.tx.try_send(RoomInput::Stanza(pending)) {
                    Ok(()) => return,
                    Err(mpsc::error::TrySendError::Full(input)) => {
                        let Some(s) = input.into_stanza() else { return };
                        drop(rooms);
                        return bounce(server, &s, StanzaError::resource_constraint().with_text("the room is busy"));
                    }
                    Err(mpsc::error::TrySendError::Closed(input)) => {
                        // The actor ended (it panicked, or is retiring): start afresh.
                        rooms.remove(&node);
                        let Some(s) = input.into_stanza() else { return };
                        pending = s;
                    }
                }
            }
            match self.start_room(server, &mut rooms, &node, joining) {
                Ok(tx) => {
                    let _ = tx.try_send(RoomInput::Stanza(pending));
                    None
                }
                Err(e) => Some((pending, e)),
            }
        };
        if let Some((s, err)) = refusal {
            bounce(server, &s, err);
        }
    }

    /// Start the actor of a stored room, or of a new one when this stanza creates it.
    fn start_room(
        &self,
        server: &Arc<Server>,
        rooms: &mut HashMap<String, RoomHandle>,
        node: &str,
        joining: bool,
    ) -> Result<mpsc::Sender<RoomInput>, StanzaError> {
        let saved = self.store.muc_rooms.get::<PersistedRoom>(node.as_bytes()).map_err(|e| {
            tracing::error!(room = node, "cannot read the stored room: {e}");
            StanzaError::internal_server_error()
        })?;
        let jid = self.room_jid(node).ok_or_else(|| StanzaError::jid_malformed().with_text("not a valid room name"))?;
        let stored = saved.is_some();
        let room = match saved {
            // Its history is refilled from the archive by the actor, outside this lock.
            Some(saved) => Room::restore(jid, saved, self.limits(), self.secret.clone(), self.ids())
                .with_local_domain(self.local_domain()),
            None if !joining => return Err(StanzaError::item_not_found().with_text("no such room")),
            None if rooms.len() >= self.settings.max_rooms => {
                return Err(StanzaError::not_allowed().with_text("the service holds as many rooms as it may"))
            }
            None => self.new_room(jid),
        };
        let (tx, rx) = mpsc::channel(self.settings.room_queue);
        let summary = Arc::new(Mutex::new(Summary::default()));
        rooms.insert(node.to_string(), RoomHandle { tx: tx.clone(), summary: summary.clone() });
        let actor = Actor {
            server: server.clone(),
            node: node.to_string(),
            room,
            rx,
            summary,
            stored,
            index: archive::Index::default(),
            lookups: tokio::task::JoinSet::new(),
            looking_up: HashMap::new(),
        };
        tokio::spawn(actor.run());
        Ok(tx)
    }

    /// Called by a room's actor when its room is finished: forget it unless stanzas are
    /// waiting (checked under the map lock, so none can slip in between).
    pub fn retire(&self, node: &str, rx: &mpsc::Receiver<RoomInput>) -> bool {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        if !rx.is_empty() {
            return false;
        }
        rooms.remove(node);
        true
    }

    /// Tell every occupant of every room that the service is going away (status 332) and
    /// wait, at most two seconds, until the rooms have queued that. Call before closing
    /// the sessions.
    pub async fn shutdown(&self) {
        let txs: Vec<mpsc::Sender<RoomInput>> = {
            let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
            rooms.values().map(|h| h.tx.clone()).collect()
        };
        let mut acks = Vec::new();
        for tx in txs {
            let (ack, done) = oneshot::channel();
            if tx.try_send(RoomInput::Shutdown(ack)).is_ok() {
                acks.push(done);
            }
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            for a in acks {
                let _ = a.await;
            }
        })
        .await;
    }

    /// Whether the session `full_jid` is in room `node` now, and as what. Cheap and
    /// synchronous: it reads the snapshot the room's actor publishes before delivering
    /// what a batch produced, so a client that has received its own join presence is
    /// already found here. Only when the room is not running is the store asked whether
    /// it exists at all.
    pub fn occupant(&self, node: &str, full_jid: &str) -> Occupancy {
        let node = node.to_lowercase();
        let summary = {
            let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
            rooms.get(&node).map(|h| h.summary.clone())
        };
        if let Some(summary) = summary {
            let s = summary.lock().unwrap_or_else(|e| e.into_inner());
            if s.created {
                // The same normalisation as the room applies to the `from` it reads.
                let key = jid::FullJid::new(full_jid).map(|j| j.to_string()).unwrap_or_default();
                return match s.sessions.get(&key) {
                    Some(info) => Occupancy::Occupant(info.clone()),
                    None => Occupancy::Outsider,
                };
            }
        }
        match self.store.muc_rooms.get::<PersistedRoom>(node.as_bytes()) {
            Ok(Some(_)) => Occupancy::Outsider,
            _ => Occupancy::NoRoom,
        }
    }

    /// Rooms with at least one occupant, and the occupants in them (meeting counts for the
    /// web API). Read from the summaries the actors publish after each batch.
    pub fn occupancy(&self) -> (usize, usize) {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms
            .values()
            .map(|h| h.summary.lock().unwrap_or_else(|e| e.into_inner()).occupants)
            .filter(|n| *n > 0)
            .fold((0, 0), |(r, p), n| (r + 1, p + n))
    }

    /// Rooms as the service lists them: running ones from their summaries, the others
    /// from the store.
    fn all_rooms(&self) -> Vec<(String, Summary)> {
        let mut list: HashMap<String, Summary> = {
            let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
            rooms
                .iter()
                .map(|(n, h)| (n.clone(), h.summary.lock().unwrap_or_else(|e| e.into_inner()).clone()))
                .collect()
        };
        for (k, saved) in self.store.muc_rooms.scan::<PersistedRoom>(b"").unwrap_or_default() {
            let Ok(node) = String::from_utf8(k) else { continue };
            list.entry(node).or_insert_with(|| Summary {
                name: saved.config.name.clone(),
                public: saved.config.public,
                persistent: true,
                owners: saved
                    .affiliations
                    .iter()
                    .filter(|(_, e)| e.affiliation == affiliation::Affiliation::Owner)
                    .map(|(j, _)| j.clone())
                    .collect(),
                occupants: 0,
                created: true,
                sessions: Arc::default(),
            });
        }
        let mut v: Vec<(String, Summary)> = list.into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn service_stanza(&self, server: &Arc<Server>, stanza: Element) {
        if stanza.name() != "iq" {
            if stanza.name() == "message" {
                bounce(server, &stanza, StanzaError::service_unavailable());
            }
            return;
        }
        let ty = stanza.attr("type").unwrap_or("");
        if ty != "get" && ty != "set" {
            return;
        }
        let Some(from) = crate::stanza::from(&stanza) else { return };
        let payload = stanza.children().next();
        let reply = match payload.map(|p| (p.ns(), p.name(), ty)) {
            Some((n, "query", "get")) if n == xns::DISCO_INFO => payload.map(disco::service_info).transpose(),
            Some((n, "query", "get")) if n == xns::DISCO_ITEMS => {
                payload.map(|q| self.service_items(&from, q)).transpose()
            }
            Some((n, "ping", "get")) if n == xns::PING => Ok(None),
            // §10.1.4: a room name nobody uses yet, for a new room.
            Some((n, "unique", "get")) if n == ns::MUC_UNIQUE => Ok(Some(self.unique_name())),
            _ => Err(StanzaError::service_unavailable()),
        };
        let el = match reply {
            Ok(p) => crate::c2s::negotiation::iq_result(&stanza, p),
            Err(e) => crate::stanza::error_reply(&stanza, e, None),
        };
        crate::modules::message::deliver_to_resource(server, &from, el);
    }

    fn unique_name(&self) -> Element {
        let name = loop {
            let bytes = crate::sasl::credentials::random_bytes(8);
            let candidate: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let taken = self.rooms.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&candidate)
                || self.store.muc_rooms.get::<PersistedRoom>(candidate.as_bytes()).ok().flatten().is_some();
            if !taken {
                break candidate;
            }
        };
        Element::builder("unique", ns::MUC_UNIQUE).append(name).build()
    }

    /// §6.3 public rooms, or the requester's own rooms on [`MY_ROOMS_NODE`].
    fn service_items(&self, from: &Jid, query: &Element) -> Result<Element, StanzaError> {
        let node = query.attr("node");
        let bare = from.to_bare().to_string();
        let mine = match node {
            None => false,
            Some(MY_ROOMS_NODE) => true,
            Some(_) => return Err(StanzaError::item_not_found().with_text("no such node")),
        };
        let mut q = Element::builder("query", xns::DISCO_ITEMS);
        if let Some(n) = node {
            q = q.a("node", n);
        }
        for (room, s) in self.all_rooms() {
            let listed = if mine { s.owners.contains(&bare) } else { s.public };
            if !listed {
                continue;
            }
            let name = if s.name.is_empty() { room.clone() } else { s.name.clone() };
            q = q.append(
                Element::builder("item", xns::DISCO_ITEMS)
                    .a("jid", format!("{room}@{}", self.domain))
                    .a("name", name)
                    .build(),
            );
        }
        Ok(q.build())
    }
}

fn bounce(server: &Arc<Server>, stanza: &Element, err: StanzaError) {
    if crate::stanza::may_bounce(stanza) && !(stanza.name() == "presence" && stanza.attr("type").is_some()) {
        let reply = crate::stanza::error_reply(stanza, err, None);
        if let Ok(Some(to)) = crate::stanza::to(&reply) {
            crate::modules::message::deliver_to_resource(server, &to, reply);
        }
    }
}
