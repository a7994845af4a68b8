//! XEP-0160 offline messages: kept in the store while the account has no available
//! resource, delivered once (then deleted) when it sends initial presence.

use minidom::Element;

use crate::server::Server;
use crate::stanza::{datetime, now_secs};
use crate::store::{pair_key, pair_prefix};
use crate::xml::{ns, write, AttrExt};

pub const FEATURES: &[&str] = &[ns::OFFLINE];

/// Most messages kept for one account; further ones are refused.
pub const MAX_PER_ACCOUNT: usize = 1000;

/// Store `msg` for `user`. False when the account's store is full.
pub async fn store(server: &Server, user: &str, mut msg: Element) -> bool {
    let store = &server.store;
    let prefix = pair_prefix(user);
    if store.offline.count_prefix(&prefix) >= MAX_PER_ACCOUNT {
        return false;
    }
    // XEP-0203: mark when the message reached the server.
    msg.append_child(
        Element::builder("delay", ns::DELAY)
            .a("from", server.domain())
            .a("stamp", datetime(now_secs()))
            .append("Offline storage")
            .build(),
    );
    let Ok(id) = store.next_id() else {
        return false;
    };
    let xml = String::from_utf8_lossy(&write::element_bytes(&msg)).into_owned();
    let key = pair_key(user, &format!("{id:020}"));
    if store.offline.put(&key, &xml).is_err() {
        return false;
    }
    store.flush().await.is_ok()
}

/// Take every stored message of `user`, oldest first, deleting them.
pub async fn take_all(server: &Server, user: &str) -> Vec<Element> {
    let store = &server.store;
    let prefix = pair_prefix(user);
    let Ok(stored) = store.offline.scan::<String>(&prefix) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(stored.len());
    for (key, xml) in stored {
        if let Ok(el) = xml.parse::<Element>() {
            out.push(el);
        }
        let _ = store.offline.remove(&key);
    }
    if !out.is_empty() {
        let _ = store.flush().await;
    }
    out
}
