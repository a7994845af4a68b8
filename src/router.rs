//! The session registry and local delivery.
//!
//! Every bound resource has an entry holding its outbound queue and its presence. Delivery
//! is a bounded `try_send`: a client that stops reading fills its queue and is disconnected
//! rather than growing the server's memory (DESIGN: backpressure everywhere).
//!
//! The registry lock is a `std::sync::RwLock`; it is never held across an `.await`.

use minidom::Element;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::RwLock;
use tokio::sync::Notify;

use crate::c2s::queue::{self, TrySendError};

use crate::error::{StreamCondition, StreamError};

/// What a session's writer receives.
///
/// Both variants are boxed, so a queued item is a pointer (an `Element` inline is about
/// 120 bytes) and the queue's buffer stays small ([`crate::c2s::queue`]).
#[derive(Debug)]
pub enum Outbound {
    Stanza(Box<Element>),
    /// Close the stream with this error (resource conflict, slow consumer, shutdown).
    Close(Box<StreamError>),
}

/// One bound resource as the rest of the server sees it.
#[derive(Debug, Clone)]
pub struct Resource {
    pub resource: String,
    pub session_id: u64,
    pub tx: queue::Sender<Outbound>,
    /// Wakes the session to disconnect it when its queue is full.
    pub kill: Arc<Notify>,
    /// Sent initial presence and not yet unavailable.
    pub available: bool,
    pub priority: i8,
    /// The last available presence broadcast (for probes), `from` already stamped.
    pub presence: Option<StoredPresence>,
    /// Requested the roster, so gets roster pushes (RFC 6121 §2.1.6 "interested resource").
    pub interested: bool,
    /// Enabled XEP-0280 message carbons.
    pub carbons: bool,
    /// Asked for the XEP-0191 blocklist, so gets blocklist pushes.
    pub blocklist: bool,
}

/// An available presence kept serialised. Every available session holds one for its
/// life but it is read only when a contact comes online (probes) or a subscription or
/// block changes; as a minidom tree (attribute and prefix B-tree nodes) it cost about
/// 1 KiB per idle session, as text about 100 bytes, and parsing it back costs a few µs.
#[derive(Debug, Clone)]
pub struct StoredPresence(Arc<str>);

impl StoredPresence {
    pub fn new(presence: &Element) -> StoredPresence {
        let bytes = crate::xml::write::element_bytes(presence);
        StoredPresence(String::from_utf8_lossy(&bytes).into())
    }

    /// The presence as an element (None only if it was unserialisable, which a stanza
    /// that passed the framer is not).
    pub fn element(&self) -> Option<Element> {
        self.0.parse().ok()
    }
}

#[derive(Default)]
pub struct Registry {
    users: RwLock<HashMap<String, Vec<Resource>>>,
}

impl Registry {
    /// Bind `resource` for `bare`. An existing session with the same resource is told to
    /// close with `conflict` (RFC 6120 §7.7.2.2: the newer session wins).
    pub fn bind(&self, bare: &str, entry: Resource) {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        // Most accounts have one resource: no room for four (what a first push reserves).
        let list = users.entry(bare.to_string()).or_insert_with(|| Vec::with_capacity(1));
        if let Some(pos) = list.iter().position(|r| r.resource == entry.resource) {
            let old = list.remove(pos);
            let _ = old.tx.try_send(Outbound::Close(Box::new(StreamError::new(
                StreamCondition::Conflict,
                "replaced by a new connection with the same resource",
            ))));
        }
        list.push(entry);
    }

    pub fn unbind(&self, bare: &str, resource: &str, session_id: u64) {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = users.get_mut(bare) {
            list.retain(|r| !(r.resource == resource && r.session_id == session_id));
            if list.is_empty() {
                users.remove(bare);
            }
        }
    }

    pub fn is_bound(&self, bare: &str, resource: &str) -> bool {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users.get(bare).is_some_and(|l| l.iter().any(|r| r.resource == resource))
    }

    /// A snapshot of the user's resources.
    pub fn resources(&self, bare: &str) -> Vec<Resource> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users.get(bare).cloned().unwrap_or_default()
    }

    /// Run `f` on the user's resources without copying them: the message hot path, where
    /// a snapshot would cost a `Vec` and a clone of every entry per delivery. `f` runs
    /// under the read lock, so it must not block or touch the registry (a [`send`] is
    /// fine: it never waits).
    pub fn with_resources<R>(&self, bare: &str, f: impl FnOnce(&[Resource]) -> R) -> R {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        f(users.get(bare).map(Vec::as_slice).unwrap_or_default())
    }

    pub fn resource(&self, bare: &str, resource: &str) -> Option<Resource> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users.get(bare).and_then(|l| l.iter().find(|r| r.resource == resource).cloned())
    }

    /// Change the registry entry of one session.
    pub fn update(&self, bare: &str, session_id: u64, f: impl FnOnce(&mut Resource)) {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = users.get_mut(bare).and_then(|l| l.iter_mut().find(|r| r.session_id == session_id)) {
            f(r);
        }
    }

    pub fn session_count(&self) -> usize {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users.values().map(Vec::len).sum()
    }

    /// Tell every session to close (server shutdown).
    pub fn close_all(&self, error: &StreamError) {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        for r in users.values().flatten() {
            let _ = r.tx.try_send(Outbound::Close(Box::new(error.clone())));
        }
    }
}

/// Queue a stanza for a resource. A full queue means the client stopped reading: it is
/// disconnected, and the stanza counts as undelivered.
pub fn send(r: &Resource, el: Element) -> bool {
    match r.tx.try_send(Outbound::Stanza(Box::new(el))) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => {
            tracing::warn!(resource = %r.resource, "send queue full; disconnecting a client that stopped reading");
            // The queue is full, so a close cannot be queued: wake the session directly.
            r.kill.notify_one();
            false
        }
        Err(TrySendError::Closed(_)) => false,
    }
}
