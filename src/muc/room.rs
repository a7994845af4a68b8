//! The sans-IO room core: one room's state and the dispatch of stanzas addressed to it.
//!
//! `Room::handle(stanza, now_ms, &mut out)` reads no clock and touches no socket or store:
//! it appends to [`Output`] what must be sent, stored and archived, and the actor shell
//! (`actor.rs`) carries that out — store writes and flush first, then deliveries, so no
//! one sees a change that a crash could lose. Features live in their own files as further
//! `impl Room` blocks: `join.rs`, `chat.rs`, `admin.rs`, `owner.rs`, `invite.rs`,
//! `register.rs`, `moderation.rs`, `disco.rs`.

use jid::{BareJid, FullJid, Jid};
use minidom::Element;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::affiliation::{Affiliation, Role, Standing};
use super::archive::{Archived, MamRequest, Tombstone};
use super::config::RoomConfig;
use super::history::History;
use super::ns;
use super::occupant::Occupant;
use super::persist::{AffEntry, PersistedRoom, Subject};
use crate::error::StanzaError;
use crate::stanza;
use crate::xml::{ns as xns, AttrExt, ElementExt};

/// Limits the service imposes on every room.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most occupants a room may hold, whatever its own `max_users` says.
    pub max_occupants: usize,
    /// Most messages a room keeps for history on join.
    pub max_history: usize,
    /// Set by the service while the whole service is at its participant capacity
    /// (`http.capacity`): newcomers are refused, people already in meetings stay.
    pub service_full: Arc<AtomicBool>,
}

/// A source of fresh, increasing ids (stanza-ids and archive keys). The shell gives sled's
/// `generate_id`, tests a counter.
pub type IdSource = Box<dyn FnMut() -> u64 + Send + Sync>;

/// What handling one or more stanzas asks the shell to do.
#[derive(Default)]
pub struct Output {
    /// Stanzas to deliver, `to` already set.
    pub sends: Vec<(Jid, Element)>,
    /// The room's durable state (config, affiliations, subject) changed.
    pub save: bool,
    /// Messages to append to the archive (XEP-0313).
    pub archive: Vec<Archived>,
    /// Archive ids whose content was retracted or moderated (XEP-0424/0425).
    pub tombstones: Vec<Tombstone>,
    /// Archive queries to answer once the writes are done.
    pub mam: Vec<MamRequest>,
    /// vCard requests to an occupant JID, answered from the occupant's account (the iq,
    /// already addressed back from the occupant JID, and the account's bare JID).
    pub vcards: Vec<(Element, BareJid)>,
    /// The room was destroyed by its owner: drop its stored state and archive.
    pub destroyed: bool,
    /// Joining sessions whose user's directory entry a space-bound room needs (`space.rs`):
    /// the shell looks each up and answers with [`Room::admit`].
    pub lookups: Vec<FullJid>,
}

impl Output {
    pub fn send(&mut self, to: &Jid, mut el: Element) {
        el.set("to", to.as_str());
        self.sends.push((to.clone(), el));
    }
}

pub struct Room {
    pub jid: BareJid,
    pub config: RoomConfig,
    /// Bare JID → affiliation (only non-`none` entries, or `none` with a reserved nick).
    pub affiliations: BTreeMap<String, AffEntry>,
    /// Nick → occupant.
    pub occupants: HashMap<String, Occupant>,
    /// Real full JID → nick, for every joined session.
    pub by_session: HashMap<String, String>,
    pub subject: Subject,
    pub history: History,
    /// An instant room stays locked until its owner configures it (§10.1.1).
    pub locked: bool,
    /// Whether the room exists: a room is created by the first join (§10.1).
    pub created: bool,
    pub limits: Limits,
    pub(super) secret: Arc<[u8]>,
    pub(super) ids: IdSource,
    /// The server's own domain: only its accounts can belong to a space (`space.rs`).
    /// Empty (not set): nobody is a local account.
    pub local_domain: String,
    /// Joins waiting for the directory (space-bound rooms), by real full JID, with the
    /// presence that asked; at most [`MAX_AWAITING`].
    pub(super) awaiting: HashMap<String, Element>,
}

/// Joins one room keeps waiting for directory answers. Beyond, newcomers are asked to try
/// again: a directory that hangs must not grow a room's memory without limit.
pub const MAX_AWAITING: usize = 256;

impl Room {
    /// A room not yet created: the first available presence creates it.
    pub fn new(jid: BareJid, config: RoomConfig, limits: Limits, secret: Arc<[u8]>, ids: IdSource) -> Room {
        Room {
            jid,
            history: History::new(config.history_length.min(limits.max_history)),
            config,
            affiliations: BTreeMap::new(),
            occupants: HashMap::new(),
            by_session: HashMap::new(),
            subject: Subject::default(),
            locked: false,
            created: false,
            limits,
            secret,
            ids,
            local_domain: String::new(),
            awaiting: HashMap::new(),
        }
    }

    /// Set the server's domain (see [`Room::local_domain`]).
    pub fn with_local_domain(mut self, domain: &str) -> Room {
        self.local_domain = domain.to_string();
        self
    }

    /// A persistent room read back from the store.
    pub fn restore(jid: BareJid, saved: PersistedRoom, limits: Limits, secret: Arc<[u8]>, ids: IdSource) -> Room {
        let mut room = Room::new(jid, saved.config, limits, secret, ids);
        room.affiliations = saved.affiliations;
        room.subject = saved.subject;
        room.created = true;
        room
    }

    /// The durable part of the room.
    pub fn snapshot(&self) -> PersistedRoom {
        PersistedRoom {
            config: self.config.clone(),
            affiliations: self.affiliations.clone(),
            subject: self.subject.clone(),
        }
    }

    /// Nothing left to keep in memory: a temporary room with nobody in it (§10.1: it is
    /// destroyed when the last occupant leaves), or a room that was never created.
    pub fn is_finished(&self) -> bool {
        self.occupants.is_empty() && self.awaiting.is_empty() && (!self.created || !self.config.persistent)
    }

    /// Messages are archived (XEP-0313) in persistent rooms that enable archiving; a
    /// temporary room's history lives only as long as the room.
    pub fn archiving(&self) -> bool {
        self.config.archiving && self.config.persistent
    }

    pub fn node(&self) -> &str {
        self.jid.node().map(|n| n.as_str()).unwrap_or("")
    }

    pub fn affiliation(&self, bare: &str) -> Affiliation {
        self.affiliations.get(bare).map(|e| e.affiliation).unwrap_or(Affiliation::None)
    }

    pub fn owners(&self) -> Vec<String> {
        self.with_affiliation(Affiliation::Owner)
    }

    pub fn with_affiliation(&self, a: Affiliation) -> Vec<String> {
        self.affiliations.iter().filter(|(_, e)| e.affiliation == a).map(|(j, _)| j.clone()).collect()
    }

    /// The occupant a real full JID is joined as.
    pub fn occupant_of(&self, real: &FullJid) -> Option<&Occupant> {
        self.by_session.get(real.as_str()).and_then(|n| self.occupants.get(n))
    }

    /// The sender's affiliation and current role.
    pub fn standing(&self, real: &FullJid) -> Standing {
        let affiliation = self.affiliation(real.to_bare().as_str());
        let role = self.occupant_of(real).map(|o| o.role).unwrap_or(Role::None);
        Standing { affiliation, role }
    }

    /// The occupant JID `room@service/nick`.
    pub fn occupant_jid(&self, nick: &str) -> String {
        format!("{}/{}", self.jid, nick)
    }

    /// Handle one stanza whose `from` the sender's session stamped.
    pub fn handle(&mut self, stanza: Element, now_ms: u64, out: &mut Output) {
        let Some(from) = stanza::from(&stanza).and_then(|j| j.try_into_full().ok()) else {
            return; // Only sessions route here, and they always stamp a full JID.
        };
        let nick = match stanza::to(&stanza) {
            Ok(Some(to)) => to.resource().map(|r| r.to_string()),
            _ => return,
        };
        let joins = stanza.name() == "presence" && stanza.attr("type").is_none() && nick.is_some();
        if !self.created && !joins {
            if stanza.name() != "presence" {
                self.error(&stanza, StanzaError::item_not_found().with_text("no such room"), out);
            }
            return;
        }
        match stanza.name() {
            "presence" => self.presence(from, nick, stanza, now_ms, out),
            "message" => self.message(from, nick, stanza, now_ms, out),
            "iq" => self.iq(from, nick, stanza, now_ms, out),
            _ => {}
        }
    }

    fn iq(&mut self, from: FullJid, nick: Option<String>, iq: Element, now_ms: u64, out: &mut Output) {
        let ty = iq.attr("type").unwrap_or("");
        if let Some(nick) = nick {
            return self.iq_to_occupant(from, nick, iq, out);
        }
        if ty != "get" && ty != "set" {
            return;
        }
        let Some(payload) = iq.children().next().cloned() else {
            return self.error(&iq, StanzaError::bad_request(), out);
        };
        let set = ty == "set";
        let ns = payload.ns();
        let reply = match (ns.as_str(), payload.name(), set) {
            (xns::DISCO_INFO, "query", false) => self.disco_info(&from, &payload),
            (xns::DISCO_ITEMS, "query", false) => self.disco_items(&from, &payload),
            (ns::MUC_ADMIN, "query", false) => self.admin_get(&from, &payload),
            (ns::MUC_ADMIN, "query", true) => self.admin_set(&from, &payload, out).map(|()| None),
            (ns::MUC_OWNER, "query", false) => self.owner_get(&from),
            (ns::MUC_OWNER, "query", true) => self.owner_set(&from, &payload, out).map(|()| None),
            (xns::REGISTER, "query", false) => self.register_get(&from),
            (xns::REGISTER, "query", true) => self.register_set(&from, &payload, out).map(|()| None),
            (ns::MAM, "query", false) => Ok(Some(super::archive::query_fields())),
            (ns::MAM, "query", true) => match self.may_read_archive(&from) {
                Ok(()) => {
                    out.mam.push(MamRequest { iq: iq.clone(), requester: from.clone(), whois: self.sees_jids(&from) });
                    return;
                }
                Err(e) => Err(e),
            },
            (ns::MODERATE, "moderate", true) => self.moderate(&from, &payload, now_ms, out).map(|()| None),
            (ns::FASTEN, "apply-to", true) => self.moderate_legacy(&from, &payload, now_ms, out).map(|()| None),
            (xns::PING, "ping", false) => Ok(None),
            _ => Err(StanzaError::service_unavailable()),
        };
        match reply {
            Ok(payload) => out.send(&Jid::from(from), crate::c2s::negotiation::iq_result(&iq, payload)),
            Err(e) => self.error(&iq, e, out),
        }
    }

    /// XEP-0410 self-ping, and iq forwarding between occupants (§7.5 vCard and the like).
    fn iq_to_occupant(&mut self, from: FullJid, nick: String, mut iq: Element, out: &mut Output) {
        let Some(sender) = self.occupant_of(&from) else {
            // XEP-0410 §3: a client that is not joined learns so from not-acceptable.
            return self.error(&iq, StanzaError::not_acceptable().with_text("you are not in this room"), out);
        };
        let sender_nick = sender.nick.clone();
        let is_get = iq.attr("type") == Some("get");
        if is_get && iq.has_child("ping", xns::PING) && sender_nick == nick {
            return out.send(&Jid::from(from), crate::c2s::negotiation::iq_result(&iq, None));
        }
        let Some(target) = self.occupants.get(&nick) else {
            return self.error(&iq, StanzaError::item_not_found().with_text("no occupant with that nick"), out);
        };
        if is_get && iq.has_child("vCard", xns::VCARD) {
            // Avatars (XEP-0153): the account's vCard answers, as the client itself seldom
            // does; the requester still learns nothing but the occupant JID.
            return out.vcards.push((iq, target.bare.clone()));
        }
        let Some(to) = target.sessions.first().cloned() else {
            return;
        };
        iq.set("from", self.occupant_jid(&sender_nick));
        out.send(&Jid::from(to), iq);
    }

    /// Answer `stanza` with an error from the address it was sent to.
    pub(super) fn error(&self, stanza: &Element, err: StanzaError, out: &mut Output) {
        if !stanza::may_bounce(stanza) {
            return;
        }
        let reply = stanza::error_reply(stanza, err, None);
        if let Some(to) = stanza::from(stanza) {
            out.sends.push((to, reply));
        }
    }

    /// Whether `viewer` may see occupants' real JIDs (§5: moderators in semi-anonymous rooms).
    pub fn sees_jids(&self, viewer: &FullJid) -> bool {
        self.config.whois_anyone || self.occupant_of(viewer).is_some_and(|o| o.role == Role::Moderator)
    }

    /// A message from the room itself (status-code notices, §10.2.1).
    pub(super) fn notice(&self, codes: &[u16], out: &mut Output) {
        let mut x = Element::builder("x", ns::MUC_USER);
        for c in codes {
            x = x.append(Element::builder("status", ns::MUC_USER).a("code", c.to_string()).build());
        }
        let msg = Element::builder("message", xns::CLIENT)
            .a("from", self.jid.as_str())
            .a("type", "groupchat")
            .a("id", format!("notice-{:x}", self.history.len()))
            .append(x.build())
            .build();
        self.to_all(&msg, out);
    }

    /// The same stanza to every session of every occupant.
    pub(super) fn to_all(&self, el: &Element, out: &mut Output) {
        for occ in self.occupants.values() {
            for s in &occ.sessions {
                out.send(&Jid::from(s.clone()), el.clone());
            }
        }
    }
}
