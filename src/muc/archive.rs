//! The room archive (XEP-0313 Message Archive Management for MUC, paged with XEP-0059
//! RSM). Records live in the `muc_archive` tree under `room \0 id(8 bytes BE)`; the id is
//! the message's stanza-id (XEP-0359) in hex, so an id names a record directly and keys
//! sort in arrival order.
//!
//! The room core decides who may query; this file is the shell side that reads the store.
//! Each room's actor keeps an [`Index`] of its archive (id, time, nick, author: no content),
//! read once when the room wakes up, so a query filters in memory and reads from sled only
//! the page it returns. Query parsing and paging are shared with the accounts' archive
//! (`crate::archive`).

use jid::{FullJid, Jid};
use minidom::Element;
use serde::{Deserialize, Serialize};

use super::affiliation::Affiliation;
use super::ns;
use super::room::Room;
use crate::archive::Query;
use crate::error::StanzaError;
use crate::store::{pair_prefix, Store};

/// One archived groupchat message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Archived {
    pub id: u64,
    pub at_ms: u64,
    pub nick: String,
    /// The author's bare JID (for `with` in non-anonymous rooms and author retraction).
    pub real: String,
    pub occupant_id: String,
    /// The message as broadcast, without `to`.
    pub xml: String,
    #[serde(default)]
    pub retracted: bool,
}

/// Replace an archived message by its tombstone (XEP-0424/0425).
#[derive(Debug, Clone)]
pub struct Tombstone {
    pub id: u64,
    /// Only if the archived author is this bare JID (self-retraction); `None`: a moderator.
    pub author: Option<String>,
    pub by: Option<String>,
    pub reason: Option<String>,
}

/// A query the core allowed; the shell answers it after pending writes.
#[derive(Debug, Clone)]
pub struct MamRequest {
    pub iq: Element,
    pub requester: FullJid,
    pub whois: bool,
}

fn key(room: &str, id: u64) -> Vec<u8> {
    let mut k = pair_prefix(room);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

pub fn append(store: &Store, room: &str, a: &Archived) -> crate::store::Result<()> {
    store.muc_archive.put(&key(room, a.id), a)
}

pub fn tombstone(store: &Store, room: &str, t: &Tombstone) -> crate::store::Result<bool> {
    let k = key(room, t.id);
    let Some(mut a) = store.muc_archive.get::<Archived>(&k)? else {
        return Ok(false);
    };
    if t.author.as_ref().is_some_and(|au| *au != a.real) {
        return Ok(false);
    }
    let Ok(orig) = a.xml.parse::<Element>() else {
        return Ok(false);
    };
    let stone = super::moderation::tombstone_of(&orig, t.by.as_deref(), t.reason.as_deref());
    a.xml = String::from_utf8_lossy(&crate::xml::write::element_bytes(&stone)).into_owned();
    a.retracted = true;
    store.muc_archive.put(&k, &a)?;
    Ok(true)
}

pub fn remove_all(store: &Store, room: &str) -> crate::store::Result<usize> {
    store.muc_archive.remove_prefix(&pair_prefix(room))
}

/// What a query filters on, for one archived message (its content stays in the store).
#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub id: u64,
    pub at_ms: u64,
    pub nick: String,
    pub real: String,
}

/// A room's archive in id order, without content.
#[derive(Debug, Default)]
pub struct Index {
    entries: Vec<IndexEntry>,
}

impl Index {
    /// Read the room's archive once (when its actor starts).
    pub fn load(store: &Store, room: &str) -> Index {
        let all: Vec<(Vec<u8>, Archived)> = store.muc_archive.scan(&pair_prefix(room)).unwrap_or_default();
        let mut index = Index { entries: Vec::with_capacity(all.len()) };
        for (_, a) in &all {
            index.push(a);
        }
        index
    }

    /// A newly archived message (ids only grow, so the order holds).
    pub fn push(&mut self, a: &Archived) {
        self.entries.push(IndexEntry { id: a.id, at_ms: a.at_ms, nick: a.nick.clone(), real: a.real.clone() });
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn contains(&self, id: u64) -> bool {
        self.entries.binary_search_by_key(&id, |e| e.id).is_ok()
    }
}

fn fetch(store: &Store, room: &str, id: u64) -> Option<Archived> {
    store.muc_archive.get::<Archived>(&key(room, id)).ok().flatten()
}

/// The last `n` messages, to refill history when a persistent room wakes up.
pub fn tail(store: &Store, room: &str, index: &Index, n: usize) -> Vec<(Element, u64)> {
    let skip = index.entries.len().saturating_sub(n);
    index.entries[skip..]
        .iter()
        .filter_map(|e| fetch(store, room, e.id))
        .filter(|a| !a.retracted)
        .filter_map(|a| a.xml.parse::<Element>().ok().map(|e| (e, a.at_ms)))
        .collect()
}

/// The form fields a client may filter on (XEP-0313 §4.1.1).
pub fn query_fields() -> Element {
    crate::archive::query_fields()
}

impl Room {
    /// Outcasts never; members-only rooms only to members (XEP-0313 §5).
    pub(super) fn may_read_archive(&self, from: &FullJid) -> Result<(), StanzaError> {
        let a = self.affiliation(from.to_bare().as_str());
        if a == Affiliation::Outcast || (self.config.members_only && a < Affiliation::Member) {
            return Err(StanzaError::forbidden().with_text("only members may read this room's archive"));
        }
        Ok(())
    }
}

/// Answer a query: the result messages, then the iq result with `<fin/>`.
pub fn answer(store: &Store, room: &jid::BareJid, index: &Index, req: &MamRequest) -> Vec<(Jid, Element)> {
    let to = Jid::from(req.requester.clone());
    let mut out = Vec::new();
    match run(store, room, index, req) {
        Ok((items, fin)) => {
            out.extend(items.into_iter().map(|m| (to.clone(), m)));
            let mut result = crate::c2s::negotiation::iq_result(&req.iq, Some(fin));
            crate::xml::ElementExt::set(&mut result, "from", room.as_str());
            out.push((to, result));
        }
        Err(e) => {
            out.push((to, crate::stanza::error_reply(&req.iq, e, None)));
        }
    }
    out
}

fn run(
    store: &Store,
    room: &jid::BareJid,
    index: &Index,
    req: &MamRequest,
) -> Result<(Vec<Element>, Element), StanzaError> {
    let q = req.iq.get_child("query", ns::MAM).ok_or_else(StanzaError::bad_request)?;
    let q = Query::parse(q)?;
    let node = room.node().map(|n| n.as_str()).unwrap_or("");
    for id in [q.after, q.before].into_iter().flatten() {
        if !index.contains(id) {
            return Err(StanzaError::item_not_found().with_text("no message with that id in the archive"));
        }
    }
    let matching: Vec<u64> = index
        .entries
        .iter()
        .filter(|a| q.in_time(a.at_ms))
        .filter(|a| match &q.with {
            None => true,
            Some(w) if w.resource().is_some() => {
                w.to_bare() == *room && w.resource().map(|r| r.as_str()) == Some(a.nick.as_str())
            }
            Some(w) => req.whois && w.to_bare().as_str() == a.real,
        })
        .map(|a| a.id)
        .collect();
    let p = crate::archive::page(&matching, &q);
    let ids = &matching[p.start..p.end];
    let ordered: Vec<u64> = if q.flip { ids.iter().rev().copied().collect() } else { ids.to_vec() };
    let mut items = Vec::with_capacity(ordered.len());
    for id in ordered {
        let Some(a) = fetch(store, node, id) else { continue };
        let Ok(orig) = a.xml.parse::<Element>() else { continue };
        items.push(crate::archive::result_message(room.as_str(), &q, a.id, a.at_ms, orig));
    }
    Ok((items, crate::archive::fin(&q, &matching, &p)))
}
