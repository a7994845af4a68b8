//! XEP-0191 Blocking Command: a per-account list of JIDs the account does not talk to.
//!
//! The list lives in the `blocklist` tree and in memory ([`crate::store::SetTable`]), so
//! the checks on every routed stanza are hash lookups; an account that blocks nobody
//! costs one lookup. Matching follows XEP-0016 §2.1 (referenced by XEP-0191 §6): an item
//! is a full JID, a bare JID, `domain/resource` or a domain, and a domain item covers
//! every address at that domain.
//!
//! Enforcement (§3.5 and §3.6): stanzas from a blocked entity are not delivered —
//! presence silently, messages and iq get/set answered with `service-unavailable` (as if
//! the account did not exist), iq results and errors dropped; stanzas the user sends to a
//! blocked entity are refused with `not-acceptable` and `<blocked/>`.

use jid::Jid;
use minidom::Element;
use std::collections::BTreeSet;

use crate::c2s::session::Session;
use crate::error::StanzaError;
use crate::router;
use crate::server::Server;
use crate::xml::{ns, AttrExt, ElementExt};

pub const NS: &str = "urn:xmpp:blocking";
pub const NS_ERRORS: &str = "urn:xmpp:blocking:errors";

pub const FEATURES: &[&str] = &[NS];

/// Most items one account may block (a bound on memory and on a blocklist result).
const MAX_ITEMS: usize = 1000;

/// Whether `item` (a normalised JID string) covers `jid` (XEP-0016 §2.1 order).
pub fn covers(set: &BTreeSet<String>, jid: &Jid) -> bool {
    let domain = jid.domain().as_str();
    if set.contains(domain) || set.contains(jid.to_bare().as_str()) {
        return true;
    }
    // A full JID item covers exactly that address (for `domain/resource` items too: they
    // do not cover `user@domain/resource`).
    jid.resource().is_some() && set.contains(jid.to_string().as_str())
}

/// Whether local account `user` blocks `other`. One hash lookup when it blocks nobody.
pub fn blocks(server: &Server, user: &str, other: &Jid) -> bool {
    server.store.blocklist.get(user).is_some_and(|set| covers(&set, other))
}

/// Whether the stanza's sender is blocked by the local account it is addressed to
/// (`to_user`). Stanzas without a valid `from` are the server's own and pass.
pub fn blocked_inbound(server: &Server, to_user: &str, stanza: &Element) -> bool {
    if server.store.blocklist.get(to_user).is_none() {
        return false;
    }
    crate::stanza::from(stanza).is_some_and(|from| blocks(server, to_user, &from))
}

/// The local account a JID names, if any.
pub fn local_user<'a>(server: &Server, jid: &'a Jid) -> Option<&'a str> {
    (jid.domain().as_str() == server.domain()).then(|| jid.node().map(|n| n.as_str())).flatten()
}

/// §3.6: the user tried to talk to someone it blocks. `true` when refused (the error, if
/// the stanza may be answered, is queued for the client).
pub fn refuse_outbound(session: &mut Session, stanza: &Element, to: &Jid) -> bool {
    if !blocks(&session.server, &session.username, to) {
        return false;
    }
    if crate::stanza::may_bounce(stanza) {
        let mut reply = crate::stanza::error_reply(
            stanza,
            StanzaError::not_acceptable().with_text("you have blocked this address; unblock it first"),
            None,
        );
        if let Some(err) = reply.get_child_mut("error", ns::CLIENT) {
            err.append_child(Element::bare("blocked", NS_ERRORS));
        }
        reply.set("to", session.full_str());
        session.send(reply);
    }
    true
}

/// `<blocklist/>`, `<block/>`, `<unblock/>` to the own account.
pub async fn iq(session: &mut Session, iq: &Element, set: bool) {
    let Some(payload) = iq.children().next() else { return };
    let result = match (payload.name(), set) {
        ("blocklist", false) => {
            let me = session.bare_str();
            session.server.registry.update(&me, session.session_id, |r| r.blocklist = true);
            Ok(Some(list(&session.server, &session.username)))
        }
        ("block", true) => change(session, payload, true).await,
        ("unblock", true) => change(session, payload, false).await,
        _ => Err(StanzaError::bad_request().with_text("expected blocklist (get), block or unblock (set)")),
    };
    match result {
        Ok(p) => {
            let reply = super::iq::reply_to(session, iq, p);
            session.send(reply);
        }
        Err(e) => session.bounce(iq, e),
    }
}

fn list(server: &Server, user: &str) -> Element {
    let mut b = Element::builder("blocklist", NS);
    for item in server.store.blocklist.get(user).iter().flat_map(|s| s.iter()) {
        b = b.append(Element::builder("item", NS).a("jid", item.as_str()).build());
    }
    b.build()
}

/// The `jid`s of a block/unblock, normalised.
fn items(payload: &Element) -> Result<Vec<String>, StanzaError> {
    payload
        .children()
        .filter(|c| c.is("item", NS))
        .map(|c| {
            let raw = c.attr("jid").ok_or_else(|| StanzaError::bad_request().with_text("an item needs a jid"))?;
            Jid::new(raw.trim()).map(|j| j.to_string()).map_err(|_| StanzaError::jid_malformed())
        })
        .collect()
}

async fn change(session: &mut Session, payload: &Element, block: bool) -> Result<Option<Element>, StanzaError> {
    let server = session.server.clone();
    let user = session.username.clone();
    let items = items(payload)?;
    let store_err = |e: crate::store::StoreError| {
        tracing::error!("blocklist write failed: {e}");
        StanzaError::internal_server_error()
    };
    let changed = if block {
        // §3.3: a block without items is an error; an unblock without items unblocks all.
        if items.is_empty() {
            return Err(StanzaError::bad_request().with_text("name at least one item to block"));
        }
        let current = server.store.blocklist.get(&user).map(|s| s.len()).unwrap_or(0);
        if current + items.len() > MAX_ITEMS {
            return Err(StanzaError::policy_violation().with_text(format!("at most {MAX_ITEMS} blocked addresses")));
        }
        server.store.blocklist.insert(&user, &items).map_err(store_err)?
    } else {
        let all = items.is_empty();
        server.store.blocklist.remove(&user, (!all).then_some(items.as_slice())).map_err(store_err)?
    };
    server.store.flush().await.map_err(store_err)?;
    if !changed.is_empty() {
        presence_change(&server, &user, &session.bare_str(), &changed, block);
    }
    // §3.3/§3.4: push to every resource that asked for the list, this one included.
    let mut push = Element::builder(if block { "block" } else { "unblock" }, NS);
    // An unblock without items (unblock all) is pushed as it came.
    for i in &items {
        push = push.append(Element::builder("item", NS).a("jid", i.as_str()).build());
    }
    let push = push.build();
    let me = session.bare_str();
    for r in server.registry.resources(&me).iter().filter(|r| r.blocklist) {
        let el = Element::builder("iq", ns::CLIENT)
            .a("type", "set")
            .a("id", format!("block-push-{}", crate::stanza::now_secs()))
            .a("to", format!("{me}/{}", r.resource))
            .append(push.clone())
            .build();
        router::send(r, el);
    }
    Ok(None)
}

/// §3.3: contacts that see our presence and are now blocked get unavailable from each
/// available resource; on unblock (§3.4) they get our current presence again.
fn presence_change(server: &Server, user: &str, me: &str, changed: &[String], block: bool) {
    let changed: BTreeSet<String> = changed.iter().cloned().collect();
    let resources: Vec<_> = server.registry.resources(me).into_iter().filter(|r| r.available).collect();
    if resources.is_empty() {
        return;
    }
    for item in super::roster::items(server, user).iter().filter(|i| i.state.subscription().from()) {
        let contact = Jid::from(item.jid.clone());
        if !covers(&changed, &contact) || (!block && blocks(server, user, &contact)) {
            continue;
        }
        for r in &resources {
            let el = if block {
                Element::builder("presence", ns::CLIENT)
                    .a("from", format!("{me}/{}", r.resource))
                    .a("type", "unavailable")
                    .build()
            } else {
                match r.presence.as_ref().and_then(|p| p.element()) {
                    Some(p) => p,
                    None => continue,
                }
            };
            let mut el = el;
            el.set("to", item.jid.to_string());
            if item.jid.domain().as_str() == server.domain() {
                super::presence::deliver_to_bare(server, item.jid.as_str(), &el);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn j(s: &str) -> Jid {
        Jid::new(s).unwrap()
    }

    #[test]
    fn xep0016_matching() {
        let s = set(&["a@x", "b@y/phone", "z", "w/r"]);
        assert!(covers(&s, &j("a@x")));
        assert!(covers(&s, &j("a@x/any")));
        assert!(covers(&s, &j("b@y/phone")));
        assert!(!covers(&s, &j("b@y")), "a full-JID item does not cover the bare JID");
        assert!(!covers(&s, &j("b@y/laptop")));
        assert!(covers(&s, &j("z")));
        assert!(covers(&s, &j("anyone@z/r")), "a domain item covers the whole domain");
        assert!(covers(&s, &j("w/r")));
        assert!(!covers(&s, &j("w")));
        assert!(!covers(&s, &j("u@w/r")), "domain/resource covers only that address");
        assert!(!covers(&s, &j("c@x")));
    }
}
