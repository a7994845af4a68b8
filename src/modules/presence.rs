//! RFC 6121 §4 presence: initial presence and probes, broadcast to subscribers and to the
//! account's own resources, directed presence, and unavailable when a session ends.

use minidom::Element;
use std::sync::Arc;

use super::roster;
use crate::c2s::session::Session;
use crate::roster::{RosterItem, SubscriptionKind};
use crate::router;
use crate::server::Server;
use crate::xml::{ns, AttrExt, ElementExt};

pub async fn outbound(session: &mut Session, presence: Element) {
    let ty = presence.attr("type").unwrap_or("").to_string();
    if let Ok(Some(to)) = crate::stanza::to(&presence) {
        // XEP-0191: not to an address we block (§3.6); silently not to an account that
        // blocks us, subscription requests included (§3.5).
        if super::blocking::refuse_outbound(session, &presence, &to) {
            return;
        }
        if let Some(user) = super::blocking::local_user(&session.server, &to) {
            if user != session.username && super::blocking::blocked_inbound(&session.server, user, &presence) {
                return;
            }
        }
    }
    if let Some(kind) = SubscriptionKind::from_type_attr(&ty) {
        return roster::outbound(session, presence, kind).await;
    }
    match ty.as_str() {
        "" | "unavailable" => {}
        // Clients do not probe (RFC 6121 §4.3): the server does it for them.
        "probe" => return,
        "error" => {
            if let Ok(Some(to)) = crate::stanza::to(&presence) {
                deliver(&session.server, &to, &presence);
            }
            return;
        }
        _ => {
            return session
                .bounce(&presence, crate::error::StanzaError::bad_request().with_text("unknown presence type"));
        }
    }
    let available = ty.is_empty();
    match crate::stanza::to(&presence) {
        Ok(Some(to)) => {
            // Directed presence (§4.6): remembered so the target learns when we leave.
            let key = to.to_string();
            if available {
                session.directed.insert(key);
            } else {
                session.directed.remove(&key);
            }
            deliver(&session.server, &to, &presence);
        }
        _ => broadcast(session, presence, available).await,
    }
}

async fn broadcast(session: &mut Session, mut presence: Element, available: bool) {
    let server = session.server.clone();
    let me = session.bare_str();
    let initial = available && !session.available;
    let was_negative = !session.available || session.priority < 0;
    presence.unset("to");
    let priority =
        presence.get_child("priority", ns::CLIENT).and_then(|p| p.text().trim().parse::<i8>().ok()).unwrap_or(0);
    let stored = available.then(|| router::StoredPresence::new(&presence));
    server.registry.update(&me, session.session_id, |r| {
        r.available = available;
        r.priority = priority;
        r.presence = stored;
    });
    session.available = available;
    session.priority = priority;
    let contacts = roster::items(&server, &session.username);
    let blocked = server.store.blocklist.get(&session.username);
    // §4.2.2 / §4.4.2: to every contact subscribed to us (XEP-0191: unless blocked), and
    // to all our own resources.
    for item in contacts.iter().filter(|i| i.state.subscription().from()) {
        if blocked.as_ref().is_some_and(|b| super::blocking::covers(b, &jid::Jid::from(item.jid.clone()))) {
            continue;
        }
        let mut el = presence.clone();
        el.set("to", item.jid.to_string());
        deliver_to_bare(&server, &item.jid.to_string(), &el);
    }
    for r in server.registry.resources(&me).iter().filter(|r| r.available || r.session_id == session.session_id) {
        let mut el = presence.clone();
        el.set("to", format!("{me}/{}", r.resource));
        router::send(r, el);
    }
    if !available {
        tell_directed(session, &presence);
        return;
    }
    if initial {
        probe_contacts(session, &contacts);
        // Subscription requests that arrived while offline (§3.1.3), then offline
        // messages (XEP-0160) for a resource that accepts messages to the bare JID.
        for req in roster::stored_requests(&server, &session.username) {
            session.send(req);
        }
    }
    // XEP-0160 §2: stored messages go out when the user next sends non-negative
    // available presence, initial or not.
    if priority >= 0 && was_negative {
        let full = session.full_str();
        for mut msg in super::offline::take_all(&server, &session.username).await {
            msg.set("to", full.as_str());
            session.send(msg);
        }
    }
}

/// §4.3: on initial presence the server learns the presence of the contacts we are
/// subscribed to. For local contacts it answers from the registry at once.
fn probe_contacts(session: &mut Session, contacts: &[RosterItem]) {
    let full = session.full_str();
    for item in contacts.iter().filter(|i| i.state.subscription().to()) {
        let contact = item.jid.to_string();
        if item.jid.domain().as_str() != session.server.domain() {
            continue;
        }
        // XEP-0191: no presence between an account and someone it blocks, either way.
        let contact_jid = jid::Jid::from(item.jid.clone());
        if super::blocking::blocks(&session.server, &session.username, &contact_jid)
            || item.jid.node().is_some_and(|n| {
                super::blocking::blocks(&session.server, n.as_str(), &jid::Jid::from(session.bare.clone()))
            })
        {
            continue;
        }
        for r in session.server.registry.resources(&contact).iter().filter(|r| r.available) {
            if let Some(mut p) = r.presence.as_ref().and_then(|p| p.element()) {
                p.set("to", full.as_str());
                session.send(p);
            }
        }
    }
}

/// The session ended: if it was available, tell everyone it is not (§4.6.3 / §4.5.2).
pub async fn went_offline(session: &mut Session) {
    let server = session.server.clone();
    let unavailable =
        Element::builder("presence", ns::CLIENT).a("from", session.full_str()).a("type", "unavailable").build();
    if session.available {
        broadcast(session, unavailable, false).await;
    } else {
        // A session that never sent broadcast presence may still have joined rooms (or
        // reached anyone) with directed presence: they learn that it left all the same.
        tell_directed(session, &unavailable);
    }
    let me = session.bare_str();
    let others_online =
        server.registry.resources(&me).iter().any(|r| r.session_id != session.session_id && r.available);
    if !others_online {
        let last = super::last::LastActivity { at: crate::stanza::now_secs(), status: String::new() };
        let _ = server.store.last_activity.put(session.username.as_bytes(), &last);
    }
}

/// RFC 6121 §4.6.3: everyone the session sent directed presence to gets `presence`
/// (unavailable) addressed to them; the list is emptied.
fn tell_directed(session: &mut Session, presence: &Element) {
    for target in std::mem::take(&mut session.directed) {
        if let Ok(to) = jid::Jid::new(&target) {
            let mut el = presence.clone();
            el.set("to", target.as_str());
            deliver(&session.server, &to, &el);
        }
    }
}

/// Deliver a presence to a local address: a full JID gets it if bound; a bare JID on
/// all its available resources. Other domains: dropped (no federation yet).
pub fn deliver(server: &Arc<Server>, to: &jid::Jid, presence: &Element) {
    if to.domain().as_str() != server.domain() {
        server.route_to_service(to.domain().as_str(), presence.clone());
        return;
    }
    if to.node().is_none() {
        return;
    }
    match to.resource() {
        Some(_) => {
            if to.node().is_some_and(|n| super::blocking::blocked_inbound(server, n.as_str(), presence)) {
                return;
            }
            super::message::deliver_to_resource(server, to, presence.clone());
        }
        None => deliver_to_bare(server, &to.to_string(), presence),
    }
}

pub fn deliver_to_bare(server: &Server, bare: &str, presence: &Element) {
    // XEP-0191 §3.5: presence from someone the account blocks is dropped silently.
    if bare.split_once('@').is_some_and(|(user, _)| super::blocking::blocked_inbound(server, user, presence)) {
        return;
    }
    for r in server.registry.resources(bare).iter().filter(|r| r.available) {
        let mut el = presence.clone();
        el.set("to", format!("{bare}/{}", r.resource));
        router::send(r, el);
    }
}
