//! XEP-0313 Message Archive Management for accounts: each account's one-to-one messages,
//! queried at its own bare JID. (Rooms have their own archive in `muc::archive`; query
//! parsing and paging are shared in `crate::archive`.)
//!
//! What is kept: chat and normal messages with a body that the server routes to a local
//! account (the recipient's archive) or from a local client (the sender's archive), unless
//! hinted `no-store`/`no-permanent-store` (XEP-0334) or excluded by the account's
//! preferences (§5.3). The recipient's copy carries a `<stanza-id/>` (XEP-0359) naming
//! its archive id.
//!
//! Storage: `mam_archive`, key `user \0 id(8 bytes BE)`. The id is a microsecond
//! timestamp made unique per account, so a start/end filter is a key range and ids sort
//! in arrival order. Each record carries a per-account sequence number: count = last seq
//! − first seq + 1, so the size cap needs no counting scan. The newest and oldest
//! positions and the preferences of active accounts are held in memory ([`Cached`], in
//! `Store::mam_index`, loaded from sled on first use): archiving a message is one sled
//! write and no read; pruning removes the oldest in one batch, 1% of the cap at a time,
//! so that write is rare too.

use jid::Jid;
use minidom::Element;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::archive::{self, Query};
use crate::c2s::session::Session;
use crate::error::StanzaError;
use crate::server::Server;
use crate::store::pair_prefix;
use crate::xml::{ns, AttrExt, ElementExt};

pub const NS: &str = archive::NS_MAM;
pub const FEATURES: &[&str] = &[NS];

const NS_SID: &str = "urn:xmpp:sid:0";
const NS_HINTS: &str = "urn:xmpp:hints";

/// One archived message.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    /// Per-account sequence number (see the module doc).
    seq: u64,
    /// The other party as addressed (full or bare JID).
    with: String,
    /// Sent by the account (true) or received.
    out: bool,
    /// The message as routed.
    xml: String,
}

/// Only what a `with` filter reads (serde skips the rest).
#[derive(Deserialize)]
struct Head {
    with: String,
}

/// Only the sequence number: what archiving and pruning read of the newest and oldest
/// records, without copying out their messages.
#[derive(Deserialize)]
struct Seq {
    seq: u64,
}

/// §5.3 archiving preferences.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Prefs {
    /// "always", "never" or "roster".
    pub default: String,
    pub always: Vec<String>,
    pub never: Vec<String>,
}

impl Default for Prefs {
    fn default() -> Self {
        Prefs { default: "always".into(), always: Vec::new(), never: Vec::new() }
    }
}

fn key(user: &str, id: u64) -> Vec<u8> {
    let mut k = pair_prefix(user);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn key_id(k: &[u8]) -> u64 {
    let tail = &k[k.len().saturating_sub(8)..];
    tail.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Whether a message belongs in archives at all (§5.1.1, XEP-0334 hints).
pub fn eligible(msg: &Element) -> bool {
    let ty = msg.attr("type").unwrap_or("normal");
    (ty == "chat" || ty == "normal")
        && msg.has_child("body", ns::CLIENT)
        && !msg.has_child("no-store", NS_HINTS)
        && !msg.has_child("no-permanent-store", NS_HINTS)
}

fn prefs(server: &Server, user: &str) -> Prefs {
    server.store.mam_prefs.get::<Prefs>(user.as_bytes()).ok().flatten().unwrap_or_default()
}

/// How many accounts' archive positions [`Store::mam_index`](crate::store::Store) keeps
/// (about 100 bytes each); an account pushed out is read again from sled when next needed.
pub const CACHED_ACCOUNTS: usize = 65_536;

/// What archiving a message needs to know of an account, kept in memory so that the
/// message costs one sled write and no read: its preferences and where its archive
/// starts and ends. Loaded from sled on first use (so right after a restart), changed
/// under the cache's lock as ids are handed out, records pruned and preferences set.
#[derive(Debug, Clone, Default)]
pub struct Cached {
    /// The stored preferences; None when none are stored (archive everything).
    prefs: Option<Arc<Prefs>>,
    /// The newest id and sequence number handed out (0 when the archive is empty).
    last_id: u64,
    last_seq: u64,
    /// The oldest record's id and sequence number; None when the archive is empty.
    first: Option<(u64, u64)>,
    /// Someone is pruning this archive: the others need not.
    pruning: bool,
}

fn load(server: &Server, user: &str) -> crate::store::Result<Cached> {
    let table = &server.store.mam_archive;
    let prefix = pair_prefix(user);
    let prefs = server.store.mam_prefs.get::<Prefs>(user.as_bytes())?.map(Arc::new);
    let (last_id, last_seq) = table.last_in::<Seq>(&prefix)?.map(|(k, r)| (key_id(&k), r.seq)).unwrap_or((0, 0));
    let first = table.first_in::<Seq>(&prefix)?.map(|(k, r)| (key_id(&k), r.seq));
    Ok(Cached { prefs, last_id, last_seq, first, pruning: false })
}

/// Run `f` on `user`'s cached positions; None (logged) when they cannot be loaded.
fn with_cached<R>(server: &Server, user: &str, f: impl FnOnce(&mut Cached) -> R) -> Option<R> {
    match server.store.mam_index.with(user, || load(server, user), f) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(user, "reading the archive's positions failed: {e}");
            None
        }
    }
}

/// Whether preferences `p` (None: none stored) keep messages with `with`.
fn wanted(server: &Server, user: &str, with: &Jid, p: Option<&Prefs>) -> bool {
    let Some(p) = p else { return true };
    let bare = with.to_bare().to_string();
    if p.never.contains(&bare) {
        return false;
    }
    if p.always.contains(&bare) {
        return true;
    }
    match p.default.as_str() {
        "never" => false,
        "roster" => super::roster::load_item(server, user, &bare).is_some(),
        _ => true,
    }
}

/// Archive `msg` for local account `user` (the other party is `with`). Returns the
/// archive id, or None when not archived (disabled, preferences, store error).
pub fn archive(server: &Server, user: &str, with: &Jid, out: bool, msg: &Element) -> Option<u64> {
    let cfg = &server.config.archive;
    if !cfg.enabled {
        return None;
    }
    let prefs = with_cached(server, user, |c| c.prefs.clone())?;
    if !wanted(server, user, with, prefs.as_deref()) {
        return None;
    }
    let table = &server.store.mam_archive;
    let xml = String::from_utf8_lossy(&crate::xml::write::element_bytes(msg)).into_owned();
    let mut rec = Record { seq: 0, with: with.to_string(), out, xml };
    for _ in 0..8 {
        // The id and sequence number are handed out under the lock, so concurrent
        // deliveries to one account never pick the same.
        let (id, seq) = with_cached(server, user, |c| {
            c.last_id = now_us().max(c.last_id + 1);
            c.last_seq += 1;
            if c.first.is_none() {
                c.first = Some((c.last_id, c.last_seq));
            }
            (c.last_id, c.last_seq)
        })?;
        rec.seq = seq;
        match table.insert_new(&key(user, id), &rec) {
            Ok(true) => {
                prune(server, user, cfg.max_messages_per_user, cfg.expire_after_days);
                return Some(id);
            }
            // Taken (the positions were stale, e.g. reloaded while another delivery was
            // between choosing its id and writing): read them again from sled.
            Ok(false) => server.store.mam_index.invalidate(user),
            Err(e) => {
                server.store.mam_index.invalidate(user);
                tracing::error!(user, "archiving a message failed: {e}");
                return None;
            }
        }
    }
    None
}

/// Keep the archive within its size cap and age, removing the oldest first. Whether
/// anything is due is decided from memory; when it is, the oldest records go in one
/// batch, down to 99% of the cap, so the next prune is max/100 messages away.
fn prune(server: &Server, user: &str, max: u64, expire_days: u32) {
    let cutoff = (expire_days > 0).then(|| now_us().saturating_sub(u64::from(expire_days) * 86_400 * 1_000_000));
    let due = with_cached(server, user, |c| {
        let (first_id, first_seq) = c.first?;
        let count = (c.last_seq + 1).saturating_sub(first_seq);
        let over = if max > 0 && count > max { (count - max + max / 100) as usize } else { 0 };
        let expired = cutoff.is_some_and(|cut| first_id < cut);
        if c.pruning || (over == 0 && !expired) {
            return None;
        }
        c.pruning = true;
        Some(over)
    })
    .flatten();
    let Some(over) = due else { return };
    let table = &server.store.mam_archive;
    let prefix = pair_prefix(user);
    let mut doomed = match cutoff {
        Some(cut) => table.keys_between(&key(user, 0), &key(user, cut)).unwrap_or_default(),
        None => Vec::new(),
    };
    if over > doomed.len() {
        doomed = table.first_keys(&prefix, over).unwrap_or_default();
    }
    if !doomed.is_empty() {
        if let Err(e) = table.remove_many(&doomed) {
            tracing::error!(user, "pruning the archive failed: {e}");
        }
    }
    // The new oldest record: one read per prune, not per message.
    match table.first_in::<Seq>(&prefix) {
        Ok(first) => server.store.mam_index.update_if_cached(user, |c| {
            c.first = first.map(|(k, r)| (key_id(&k), r.seq));
            c.pruning = false;
        }),
        Err(e) => {
            tracing::error!(user, "reading the archive failed: {e}");
            server.store.mam_index.invalidate(user);
        }
    }
}

/// Remove `<stanza-id/>`s claiming to be `by`'s (XEP-0359 §5: only `by` adds them).
pub fn strip_ids(msg: &mut Element, by: &str) {
    let ours = |c: &Element| c.is("stanza-id", NS_SID) && c.attr("by") == Some(by);
    if !msg.children().any(ours) {
        return;
    }
    let mut clean = Element::builder(msg.name(), ns::CLIENT).build();
    for ((attr_ns, name), value) in msg.attrs() {
        clean.set_attr(attr_ns.clone(), name.clone(), value.clone());
    }
    for c in msg.children().filter(|c| !ours(c)) {
        clean.append_child(c.clone());
    }
    *msg = clean;
}

/// A message to local account `user` (bare `bare`): archive it and add our stanza-id.
/// One that already carries an id of ours naming its own record is being routed again
/// (XEP-0198 unacknowledged messages of a session that ended): kept as is, not archived
/// twice. Any other id in our name is forged and removed.
pub fn incoming(server: &Server, user: &str, bare: &str, msg: &mut Element) {
    let existing = msg
        .children()
        .find(|c| c.is("stanza-id", NS_SID) && c.attr("by") == Some(bare))
        .and_then(|c| c.attr("id"))
        .and_then(|id| u64::from_str_radix(id, 16).ok());
    if let (Some(id), Some(from)) = (existing, crate::stanza::from(msg)) {
        let record = server.store.mam_archive.get::<Record>(&key(user, id)).ok().flatten();
        if record.is_some_and(|r| !r.out && r.with == from.to_string()) {
            return;
        }
    }
    strip_ids(msg, bare);
    // Checked before reading the stanza: this runs for every message routed.
    if !server.config.archive.enabled || !eligible(msg) {
        return;
    }
    let Some(from) = crate::stanza::from(msg) else { return };
    if let Some(id) = archive(server, user, &from, false, msg) {
        msg.append_child(Element::builder("stanza-id", NS_SID).a("id", archive::id_str(id)).a("by", bare).build());
    }
}

/// A message our client sent was routed: keep it in its own archive.
pub fn outgoing(session: &Session, to: &Jid, msg: &Element) {
    if !session.server.config.archive.enabled || !eligible(msg) || to.to_bare() == session.bare {
        return;
    }
    // Private messages through a room are the room's business.
    if session.server.muc.as_ref().is_some_and(|m| to.domain().as_str() == m.domain) {
        return;
    }
    archive(&session.server, &session.username, to, true, msg);
}

/// `<query/>` (get: the form; set: a query) and `<prefs/>` at the own account.
pub fn iq(session: &mut Session, iq: &Element, set: bool) {
    let Some(payload) = iq.children().next() else { return };
    let result = match (payload.name(), set) {
        ("query", false) => Ok(Some(archive::query_fields())),
        ("query", true) => match query(session, payload) {
            Ok(fin) => Ok(Some(fin)),
            Err(e) => Err(e),
        },
        ("prefs", false) => Ok(Some(prefs_element(&prefs(&session.server, &session.username)))),
        ("prefs", true) => set_prefs(session, payload).map(Some),
        _ => Err(StanzaError::bad_request()),
    };
    match result {
        Ok(p) => {
            let reply = super::iq::reply_to(session, iq, p);
            session.send(reply);
        }
        Err(e) => session.bounce(iq, e),
    }
}

/// Runs the query, queues the result messages, returns `<fin/>`.
fn query(session: &mut Session, payload: &Element) -> Result<Element, StanzaError> {
    let q = Query::parse(payload)?;
    let server = session.server.clone();
    let user = session.username.clone();
    let table = &server.store.mam_archive;
    let internal = |e: crate::store::StoreError| {
        tracing::error!("reading the archive failed: {e}");
        StanzaError::internal_server_error()
    };
    for id in [q.after, q.before].into_iter().flatten() {
        if !table.contains(&key(&user, id)).map_err(internal)? {
            return Err(StanzaError::item_not_found().with_text("no message with that id in the archive"));
        }
    }
    let expire = server.config.archive.expire_after_days;
    let cutoff = if expire > 0 { now_us().saturating_sub(u64::from(expire) * 86_400 * 1_000_000) } else { 0 };
    let lo = q.start_ms.map(|s| s.saturating_mul(1000)).unwrap_or(0).max(cutoff);
    let hi = q.end_ms.map(|e| e.saturating_mul(1000) + 999).unwrap_or(u64::MAX);
    let (lo, hi) = (key(&user, lo), key(&user, hi));
    let matching: Vec<u64> = match &q.with {
        None => table.keys_between(&lo, &hi).map_err(internal)?.iter().map(|k| key_id(k)).collect(),
        Some(w) => {
            let full = w.resource().is_some();
            table
                .scan_between::<Head>(&lo, &hi)
                .map_err(internal)?
                .into_iter()
                .filter(|(_, h)| match Jid::new(&h.with) {
                    Ok(j) if full => j == *w,
                    Ok(j) => j.to_bare() == w.to_bare(),
                    Err(_) => false,
                })
                .map(|(k, _)| key_id(&k))
                .collect()
        }
    };
    let p = archive::page(&matching, &q);
    let ids = &matching[p.start..p.end];
    let ordered: Vec<u64> = if q.flip { ids.iter().rev().copied().collect() } else { ids.to_vec() };
    let me = session.bare_str();
    let full = session.full_str();
    for id in ordered {
        let Ok(Some(rec)) = table.get::<Record>(&key(&user, id)) else { continue };
        let Ok(orig) = rec.xml.parse::<Element>() else { continue };
        let mut m = archive::result_message(&me, &q, id, id / 1000, orig);
        m.set("to", full.as_str());
        session.send(m);
    }
    Ok(archive::fin(&q, &matching, &p))
}

fn prefs_element(p: &Prefs) -> Element {
    let list = |name: &str, jids: &[String]| {
        let mut b = Element::builder(name, NS);
        for j in jids {
            b = b.append(Element::builder("jid", NS).append(j.as_str()).build());
        }
        b.build()
    };
    Element::builder("prefs", NS)
        .a("default", p.default.as_str())
        .append(list("always", &p.always))
        .append(list("never", &p.never))
        .build()
}

fn set_prefs(session: &Session, payload: &Element) -> Result<Element, StanzaError> {
    let default = payload.attr("default").unwrap_or("always");
    if !matches!(default, "always" | "never" | "roster") {
        return Err(StanzaError::bad_request().with_text("default must be always, never or roster"));
    }
    let list = |name: &str| -> Result<Vec<String>, StanzaError> {
        let mut out: Vec<String> = Vec::new();
        for j in payload.get_child(name, NS).iter().flat_map(|l| l.children()).filter(|c| c.is("jid", NS)) {
            let jid = Jid::new(j.text().trim()).map_err(|_| StanzaError::jid_malformed())?;
            out.push(jid.to_bare().to_string());
        }
        if out.len() > 1000 {
            return Err(StanzaError::policy_violation().with_text("at most 1000 addresses per list"));
        }
        out.sort();
        out.dedup();
        Ok(out)
    };
    let p = Prefs { default: default.to_string(), always: list("always")?, never: list("never")? };
    session.server.store.mam_prefs.put(session.username.as_bytes(), &p).map_err(|e| {
        tracing::error!("storing archive preferences failed: {e}");
        StanzaError::internal_server_error()
    })?;
    let cached = Arc::new(p.clone());
    session.server.store.mam_index.update_if_cached(&session.username, |c| c.prefs = Some(cached));
    Ok(prefs_element(&p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_id_and_round_trip() {
        assert!(key("a", 1) < key("a", 256));
        assert_eq!(key_id(&key("alice", 0x0102_0304)), 0x0102_0304);
        assert!(key("a", u64::MAX) < pair_prefix("a\u{1}"));
    }

    #[test]
    fn eligibility() {
        let m = |s: &str| s.parse::<Element>().unwrap();
        assert!(eligible(&m("<message xmlns='jabber:client' type='chat'><body>x</body></message>")));
        assert!(eligible(&m("<message xmlns='jabber:client'><body>x</body></message>")));
        assert!(!eligible(&m("<message xmlns='jabber:client' type='chat'/>")));
        assert!(!eligible(&m("<message xmlns='jabber:client' type='groupchat'><body>x</body></message>")));
        assert!(!eligible(&m(
            "<message xmlns='jabber:client' type='chat'><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>"
        )));
    }
}
