//! The IO shell around one [`Room`]: a tokio task reading a bounded queue.
//!
//! It takes what is queued (up to [`BATCH`] stanzas), lets the sans-IO core handle each,
//! then carries out the combined [`Output`]: store writes, one flush, and only then the
//! deliveries — so whatever an occupant sees survives a crash, and a burst of messages
//! costs one flush, not one per message. A busy room delays only itself.

use jid::{FullJid, Jid};
use minidom::Element;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::affiliation::Role;
use super::archive;
use super::room::{Output, Room};
use super::space::{self, Answer};
use super::{OccupantInfo, Summary};
use crate::server::Server;

/// Most stanzas handled between two flushes.
const BATCH: usize = 64;

/// How often a room looks for occupants whose session ended unnoticed.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

fn is_join(s: &Element) -> bool {
    s.name() == "presence" && s.attr("type").is_none()
}

pub enum RoomInput {
    Stanza(Element),
    /// The server is stopping: tell occupants (status 332), then acknowledge.
    Shutdown(oneshot::Sender<()>),
}

impl RoomInput {
    pub fn into_stanza(self) -> Option<Element> {
        match self {
            RoomInput::Stanza(s) => Some(s),
            RoomInput::Shutdown(_) => None,
        }
    }
}

pub struct Actor {
    pub server: Arc<Server>,
    pub node: String,
    pub room: Room,
    pub rx: mpsc::Receiver<RoomInput>,
    pub summary: Arc<Mutex<Summary>>,
    /// Whether the store holds this room now (so a temporary room is not deleted in vain).
    pub stored: bool,
    /// The room's archive without content, for MAM queries.
    pub index: archive::Index,
    /// Directory lookups for joins a space-bound room parked (`space.rs`), each bounded by
    /// the LDAP budget. Run beside the room, so a slow directory delays only those joins,
    /// not the room's messages; the session they are for, by task.
    pub lookups: JoinSet<(FullJid, Answer)>,
    pub looking_up: HashMap<tokio::task::Id, FullJid>,
}

/// Make the writes durable. sled's `flush_async` runs the flush on sled's own small thread
/// pool, and the buffer write it waits for is queued on that same pool: many concurrent
/// flushes (busy rooms, registrations) can occupy every pool thread and wait forever. A
/// blocking flush on tokio's blocking pool leaves sled's pool free to do the write.
async fn flush(store: &crate::store::Store) -> crate::store::Result<()> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.flush_blocking()).await {
        Ok(r) => r,
        Err(_) => Err(crate::store::StoreError::Corrupt { tree: "muc_rooms", message: "flush task failed".into() }),
    }
}

/// What a space-bound room needs to know about a joining user (`space.rs`): guests,
/// other servers' users and names without an account are [`Answer::NotLocal`]; the others
/// get their current directory entry (`auth::current_entry`).
async fn look_up(server: &Server, local_domain: &str, session: &FullJid) -> Answer {
    let bare = session.to_bare();
    let Some(user) = bare.node().map(|n| n.as_str()) else { return Answer::NotLocal };
    if !space::is_local_account(bare.as_str(), local_domain) || !crate::accounts::exists(&server.store, user) {
        return Answer::NotLocal;
    }
    match crate::auth::current_entry(&server.config, &server.store, user).await {
        crate::auth::Current::Fresh(e) | crate::auth::Current::Recorded(e) => Answer::Entry(e),
        crate::auth::Current::None => Answer::NoEntry,
        crate::auth::Current::Unavailable(why) => {
            tracing::error!(%user, "directory unavailable for a space-bound room's join: {why}");
            Answer::Unavailable
        }
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Actor {
    pub async fn run(mut self) {
        if self.stored {
            // A stored room wakes up: the last messages come back as history.
            self.index = archive::Index::load(&self.server.store, &self.node);
            let tail = archive::tail(&self.server.store, &self.node, &self.index, self.room.history.capacity());
            for (m, at) in tail {
                self.room.history.push(m, at);
            }
        }
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let mut out = Output::default();
            let mut acks = Vec::new();
            tokio::select! {
                input = self.rx.recv() => {
                    let Some(first) = input else { break };
                    let mut next = Some(first);
                    let mut handled = 0;
                    while let Some(input) = next.take() {
                        match input {
                            RoomInput::Stanza(s) => {
                                if is_join(&s) {
                                    // A newcomer must not meet a ghost holding its nick.
                                    self.sweep(&mut out);
                                    if self.room.created && self.room.is_finished() {
                                        // The ghosts were all there was: the room is gone.
                                        if let Some(muc) = self.server.muc.clone() {
                                            self.room = muc.new_room(self.room.jid.clone());
                                        }
                                    }
                                }
                                self.room.handle(s, now_ms(), &mut out)
                            }
                            RoomInput::Shutdown(ack) => {
                                self.room.shutdown(&mut out);
                                acks.push(ack);
                            }
                        }
                        handled += 1;
                        if handled >= BATCH || out.destroyed {
                            break;
                        }
                        next = self.rx.try_recv().ok();
                    }
                }
                Some(done) = self.lookups.join_next_with_id(), if !self.lookups.is_empty() => {
                    let answered = match done {
                        Ok((id, answered)) => {
                            self.looking_up.remove(&id);
                            Some(answered)
                        }
                        // A lookup that panicked: its join gets "the directory cannot say".
                        Err(e) => self.looking_up.remove(&e.id()).map(|s| (s, Answer::Unavailable)),
                    };
                    if let Some((session, answer)) = answered {
                        // As for any join: no ghost may hold the newcomer's nick.
                        self.sweep(&mut out);
                        self.room.admit(&session, answer, now_ms(), &mut out);
                    }
                }
                _ = tick.tick() => self.sweep(&mut out),
            }
            for session in std::mem::take(&mut out.lookups) {
                let (server, local) = (self.server.clone(), self.room.local_domain.clone());
                let looking = session.clone();
                let task = self.lookups.spawn(async move {
                    let answer = look_up(&server, &local, &looking).await;
                    (looking, answer)
                });
                self.looking_up.insert(task.id(), session);
            }
            let destroyed = out.destroyed;
            // Published before the deliveries: a client that hears it joined may call the
            // focus at once, and the focus must find it in the room.
            let mut departed = self.publish_summary();
            let joined = self.room.by_session.len();
            self.commit(out).await;
            for ack in acks {
                let _ = ack.send(());
            }
            if self.room.by_session.len() != joined {
                // Delivery removed occupants whose session was gone.
                departed.extend(self.publish_summary());
            }
            self.tell_focus(destroyed, departed);
            if self.room.is_finished() {
                let Some(muc) = self.server.muc.clone() else { break };
                if muc.retire(&self.node, &self.rx) {
                    tracing::debug!(room = %self.room.jid, "room closed");
                    break;
                }
                // Stanzas arrived while we were closing: they meet a fresh, uncreated room.
                self.room = muc.new_room(self.room.jid.clone());
            }
        }
    }

    /// Remove occupants whose session is no longer bound: a client that joined without
    /// broadcast presence and then vanished sends no unavailable. O(occupants), no IO.
    fn sweep(&mut self, out: &mut Output) {
        let registry = &self.server.registry;
        let gone: Vec<jid::FullJid> = self
            .room
            .occupants
            .values()
            .flat_map(|o| o.sessions.iter())
            .filter(|s| !registry.is_bound(s.to_bare().as_str(), s.resource().as_str()))
            .cloned()
            .collect();
        for g in gone {
            tracing::debug!(room = %self.room.jid, occupant = %g, "removing an occupant whose session is gone");
            self.room.leave(&g, Vec::new(), out);
        }
    }

    async fn commit(&mut self, mut out: Output) {
        let store = self.server.store.clone();
        let node = self.node.clone();
        let mut wrote = false;
        let mut result = Ok(());
        if out.destroyed {
            result = result.and(store.muc_rooms.remove(node.as_bytes()).map(|_| ()));
            result = result.and(archive::remove_all(&store, &node).map(|_| ()));
            self.index.clear();
            self.stored = false;
            wrote = true;
        } else if out.save {
            if self.room.config.persistent && self.room.created {
                result = result.and(store.muc_rooms.put(node.as_bytes(), &self.room.snapshot()));
                self.stored = true;
                wrote = true;
            } else if self.stored {
                result = result.and(store.muc_rooms.remove(node.as_bytes()).map(|_| ()));
                result = result.and(archive::remove_all(&store, &node).map(|_| ()));
                self.index.clear();
                self.stored = false;
                wrote = true;
            }
        }
        if self.stored {
            for a in &out.archive {
                result = result.and(archive::append(&store, &node, a));
                self.index.push(a);
                wrote = true;
            }
            for t in &out.tombstones {
                result = result.and(archive::tombstone(&store, &node, t).map(|_| ()));
                wrote = true;
            }
        }
        if wrote {
            result = result.and(flush(&store).await);
        }
        if let Err(e) = result {
            // Nothing is acknowledged that was not stored: the senders hear of the failure.
            tracing::error!(room = %self.room.jid, "storing the room failed: {e}");
            out.sends.retain(|(_, el)| el.name() == "presence");
        }
        for req in std::mem::take(&mut out.mam) {
            out.sends.extend(archive::answer(&store, &self.room.jid, &self.index, &req));
        }
        for (iq, owner) in std::mem::take(&mut out.vcards) {
            if let Some(to) = crate::stanza::from(&iq) {
                out.sends.push((to, self.vcard_reply(&iq, &owner)));
            }
        }
        let mut sends = out.sends;
        // Occupants whose session is gone without an unavailable (a client that never
        // sent broadcast presence) are removed, as XEP-0045 §7.2.3 suggests for ghosts.
        for _round in 0..3 {
            let mut gone = Vec::new();
            for (to, el) in sends {
                if !self.deliver(&to, el).await {
                    if let Ok(full) = to.try_into_full() {
                        if self.room.by_session.contains_key(full.as_str()) && !gone.contains(&full) {
                            gone.push(full);
                        }
                    }
                }
            }
            if gone.is_empty() {
                break;
            }
            let mut more = Output::default();
            for g in &gone {
                tracing::debug!(room = %self.room.jid, occupant = %g, "removing an occupant whose session is gone");
                self.room.leave(g, Vec::new(), &mut more);
            }
            sends = more.sends;
        }
    }

    /// The vCard of a local account, as the server itself would answer (XEP-0054).
    fn vcard_reply(&self, iq: &Element, owner: &jid::BareJid) -> Element {
        let stored = match owner.node() {
            Some(user) if owner.domain().as_str() == self.server.domain() => {
                self.server.store.vcards.get::<String>(user.as_str().as_bytes()).ok().flatten()
            }
            _ => None,
        };
        let card = stored
            .and_then(|xml| xml.parse::<Element>().ok())
            .unwrap_or_else(|| Element::bare("vCard", crate::xml::ns::VCARD));
        crate::c2s::negotiation::iq_result(iq, Some(card))
    }

    async fn deliver(&self, to: &Jid, el: Element) -> bool {
        if to.resource().is_some() {
            return crate::modules::message::deliver_to_resource(&self.server, to, el);
        }
        if el.name() == "message" {
            // Invitations to a bare JID: routed like any message (offline storage included).
            return crate::modules::message::route(&self.server, el, to).await.is_ok();
        }
        false
    }

    /// Publish what the service may know without asking this actor (listings, counts, and
    /// the sessions the focus checks calls against). Returns the sessions that were in the
    /// last published snapshot and are not any more: they left, were kicked or banned, or
    /// their connection went away.
    fn publish_summary(&self) -> Vec<String> {
        let r = &self.room;
        let sees_all = r.config.whois_anyone;
        let sessions: HashMap<String, OccupantInfo> = r
            .occupants
            .values()
            .flat_map(|o| {
                let info = OccupantInfo {
                    nick: o.nick.clone(),
                    role: o.role,
                    sees_jids: sees_all || o.role == Role::Moderator,
                };
                o.sessions.iter().map(move |s| (s.to_string(), info.clone()))
            })
            .collect();
        let sessions = Arc::new(sessions);
        let s = Summary {
            name: r.config.name.clone(),
            public: r.config.public && !r.locked,
            persistent: r.config.persistent,
            owners: r.owners(),
            occupants: r.occupants.len(),
            created: r.created,
            sessions: sessions.clone(),
        };
        let old = std::mem::replace(&mut *self.summary.lock().unwrap_or_else(|e| e.into_inner()), s);
        old.sessions.keys().filter(|k| !sessions.contains_key(*k)).cloned().collect()
    }

    /// The room's call follows the room (xep/jingle-conferences.md, "Admission"): a
    /// destroyed room ends it for everyone, a session that left the room leaves the call.
    /// Called by this shell, never by the room core.
    fn tell_focus(&self, destroyed: bool, departed: Vec<String>) {
        let Some(focus) = self.server.focus.as_ref() else { return };
        if destroyed {
            focus.end_call(&self.server, &self.node);
        }
        for jid in departed {
            focus.remove_occupant(&self.server, &self.node, &jid);
        }
    }
}
