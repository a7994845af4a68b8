//! Message routing for local accounts (RFC 6121 §8.5) and offline storage (XEP-0160).

use jid::Jid;
use minidom::Element;
use std::sync::Arc;

use crate::c2s::session::Session;
use crate::error::StanzaError;
use crate::router::{self, Resource};
use crate::server::Server;

pub async fn outbound(session: &mut Session, mut msg: Element) {
    let to = match crate::stanza::to(&msg) {
        Ok(Some(to)) => to,
        // RFC 6120 §10.3.1: no 'to' means the sender's own bare JID.
        _ => Jid::from(session.bare.clone()),
    };
    if super::blocking::refuse_outbound(session, &msg, &to) {
        return;
    }
    // A client may not forge the recipient's archive id (XEP-0359 §5).
    super::mam::strip_ids(&mut msg, to.to_bare().as_str());
    // One copy kept for what follows routing (the sender's carbons and archive, or the
    // error reply); the original is routed.
    let kept = msg.clone();
    match route(&session.server, msg, &to).await {
        Ok(()) => {
            // The sender's own copy; a message to our own bare JID is delivered already.
            if to.to_bare() != session.bare {
                let me = session.bare_str();
                let skip = [session.resource()];
                session.server.registry.with_resources(&me, |rs| {
                    // Who enabled carbons is one flag per resource; eligibility reads the
                    // stanza, so it is asked second.
                    if rs.iter().any(|r| r.carbons) && super::carbons::eligible(&kept) {
                        super::carbons::copy_to(rs, &me, &kept, "sent", &skip);
                    }
                });
            }
            super::mam::outgoing(session, &to, &kept);
        }
        Err(e) => session.bounce(&kept, e),
    }
}

/// Route a message whose `from` is already set. `Err` is the error to return to the sender.
pub async fn route(server: &Arc<Server>, mut msg: Element, to: &Jid) -> Result<(), StanzaError> {
    let ty = msg.attr("type").unwrap_or("normal").to_string();
    if to.domain().as_str() != server.domain() {
        if server.route_to_service(to.domain().as_str(), msg) {
            return Ok(());
        }
        return Err(
            StanzaError::remote_server_not_found().with_text("this server does not federate with other domains yet")
        );
    }
    let Some(node) = to.node() else {
        // To the server itself: nothing handles messages here.
        return match ty.as_str() {
            "error" | "headline" | "groupchat" => Ok(()),
            _ => Err(StanzaError::service_unavailable()),
        };
    };
    let user = node.to_string();
    if !crate::accounts::exists(&server.store, &user) {
        // RFC 6121 §8.5.1: no such account.
        return match ty.as_str() {
            "error" | "headline" => Ok(()),
            _ => Err(StanzaError::service_unavailable()),
        };
    }
    // XEP-0191 §3.5: from someone the recipient blocks: answered as if no such account.
    if super::blocking::blocked_inbound(server, &user, &msg) {
        return match ty.as_str() {
            "error" | "headline" | "groupchat" => Ok(()),
            _ => Err(StanzaError::service_unavailable()),
        };
    }
    msg.set_attr(
        rxml::Namespace::NONE,
        rxml::NcName::try_from("to").map_err(|_| StanzaError::internal_server_error())?,
        to.to_string(),
    );
    let bare = format!("{user}@{}", server.domain());
    // XEP-0313: the recipient's archive, and its stanza-id on what it receives.
    super::mam::incoming(server, &user, &bare, &mut msg);
    // Decided under the registry's read lock (no snapshot of the resources per message);
    // offline storage waits on the store, so it happens after the lock is released.
    match server.registry.with_resources(&bare, |resources| deliver(resources, &bare, to, &ty, msg)) {
        Delivery::Done(result) => result,
        Delivery::Offline(msg) => {
            if super::offline::store(server, &user, msg).await {
                Ok(())
            } else {
                Err(StanzaError::service_unavailable().with_text("the recipient's offline storage is full"))
            }
        }
    }
}

/// What delivery to an account's connected resources decided.
enum Delivery {
    Done(Result<(), StanzaError>),
    /// No resource takes it: XEP-0160 offline storage.
    Offline(Element),
}

/// RFC 6121 §8.5.2 and §8.5.3 for a local account whose resources are `resources`.
fn deliver(resources: &[Resource], bare: &str, to: &Jid, ty: &str, msg: Element) -> Delivery {
    if let Some(resource) = to.resource() {
        // RFC 6121 §8.5.3.1: a connected resource gets it, whatever its priority.
        if let Some(r) = resources.iter().find(|r| r.resource == resource.as_str()) {
            if resources.iter().any(|r| r.carbons) && super::carbons::eligible(&msg) {
                super::carbons::copy_to(resources, bare, &msg, "received", &[resource.as_str()]);
            }
            router::send(r, msg);
            return Delivery::Done(Ok(()));
        }
        // §8.5.3.2.1: no such resource.
        match ty {
            "normal" | "chat" => {}
            "groupchat" => return Delivery::Done(Err(StanzaError::service_unavailable())),
            _ => return Delivery::Done(Ok(())),
        }
    }
    // §8.5.2.1.1: an error message to the bare JID is silently ignored.
    if ty == "error" && to.resource().is_none() {
        return Delivery::Done(Ok(()));
    }
    // §8.5.2: to the bare JID, or a full JID treated as one.
    // §8.5.2.1.1 (a): the "most available" resources, those of highest non-negative
    // priority; the others see it only if they opted in (carbons, below).
    let top = resources.iter().filter(|r| r.available && r.priority >= 0).map(|r| r.priority).max();
    // §8.5.2.1.2: headlines go to every non-negative resource.
    let targets: Vec<&Resource> = resources
        .iter()
        .filter(|r| r.available && r.priority >= 0 && (ty == "headline" || Some(r.priority) == top))
        .collect();
    match ty {
        "groupchat" => Delivery::Done(Err(StanzaError::service_unavailable())),
        "error" | "headline" if targets.is_empty() => Delivery::Done(Ok(())),
        _ if !targets.is_empty() => {
            if resources.iter().any(|r| r.carbons) && super::carbons::eligible(&msg) {
                let delivered: Vec<&str> = targets.iter().map(|r| r.resource.as_str()).collect();
                super::carbons::copy_to(resources, bare, &msg, "received", &delivered);
            }
            // The last target takes the message itself, the others a copy.
            if let Some((last, others)) = targets.split_last() {
                for r in others {
                    router::send(r, msg.clone());
                }
                router::send(last, msg);
            }
            Delivery::Done(Ok(()))
        }
        "normal" | "chat" | "" => Delivery::Offline(msg),
        _ => Delivery::Done(Err(StanzaError::bad_request().with_text("unknown message type"))),
    }
}

/// Deliver a stanza to one local full JID if that resource is bound. Guests are
/// reachable only from their room.
pub fn deliver_to_resource(server: &Server, to: &Jid, stanza: Element) -> bool {
    let (Some(node), Some(resource)) = (to.node(), to.resource()) else {
        return false;
    };
    if crate::guests::Guests::is_guest(node.as_str()) {
        // The room (MUC) and its call (focus) may reach a guest; nobody else.
        let from_service = crate::stanza::from(&stanza).is_some_and(|f| {
            let d = f.domain().as_str();
            server.muc.as_ref().is_some_and(|m| d == m.domain) || server.focus.as_ref().is_some_and(|fo| d == fo.domain)
        });
        if !from_service {
            return false;
        }
    }
    let bare = format!("{node}@{}", to.domain());
    match server.registry.resource(&bare, resource.as_str()) {
        Some(r) => router::send(&r, stanza),
        None => false,
    }
}
