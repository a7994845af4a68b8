//! IQ dispatch (RFC 6120 §8.2.3, §10): who answers an iq, by address and payload.

use jid::Jid;
use minidom::Element;

use super::{disco, last, register, roster, vcard, version};
use crate::c2s::session::Session;
use crate::error::StanzaError;
use crate::stanza;
use crate::xml::ns;

/// What an iq is addressed to, from the point of view of its sender's server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// This server (`to` is the domain).
    Server,
    /// The sender's own account (no `to`, or the sender's bare JID).
    OwnAccount,
    /// Another local account's bare JID (`user`).
    Account(String),
    /// A local full JID.
    Resource(Jid),
    /// Another domain.
    Remote,
}

pub fn target(session: &Session, to: Option<&Jid>) -> Target {
    let Some(to) = to else {
        return Target::OwnAccount;
    };
    if to.domain().as_str() != session.server.domain() {
        return Target::Remote;
    }
    match (to.node(), to.resource()) {
        (None, None) => Target::Server,
        (None, Some(_)) => Target::Remote,
        (Some(node), None) if node.as_str() == session.username => Target::OwnAccount,
        (Some(node), None) => Target::Account(node.to_string()),
        (Some(_), Some(_)) => Target::Resource(to.clone()),
    }
}

pub async fn handle(session: &mut Session, iq: Element) {
    let to = stanza::to(&iq).ok().flatten();
    let target = target(session, to.as_ref());
    let ty = iq.attr("type").unwrap_or("");
    if let Some(to) = &to {
        // XEP-0191 §3.6: never to an address we block; §3.5: an account that blocks us
        // answers get/set as if it did not exist, and hears nothing else from us.
        if super::blocking::refuse_outbound(session, &iq, to) {
            return;
        }
        if let Some(user) = super::blocking::local_user(&session.server, to) {
            if user != session.username && super::blocking::blocked_inbound(&session.server, user, &iq) {
                if matches!(ty, "get" | "set") {
                    session.bounce(&iq, StanzaError::service_unavailable());
                }
                return;
            }
        }
    }
    match ty {
        "get" | "set" => {}
        "result" | "error" => {
            // Replies to iqs other entities sent our client: pass them on.
            match (&target, &to) {
                (Target::Resource(to), _) => {
                    super::message::deliver_to_resource(&session.server, to, iq);
                }
                (Target::Remote, Some(to)) => {
                    session.server.route_to_service(to.domain().as_str(), iq);
                }
                _ => {}
            }
            return;
        }
        _ => {
            return session
                .bounce(&iq, StanzaError::bad_request().with_text("iq type must be get, set, result or error"))
        }
    }
    if iq.attr("id").is_none() || iq.children().count() != 1 {
        // RFC 6120 §8.2.3: get/set carry an id and exactly one payload.
        return session
            .bounce(&iq, StanzaError::bad_request().with_text("an iq get/set needs an id and exactly one child"));
    }
    if let Target::Resource(to) = &target {
        if !super::message::deliver_to_resource(&session.server, to, iq.clone()) {
            session.bounce(&iq, StanzaError::service_unavailable());
        }
        return;
    }
    if target == Target::Remote {
        if let Some(to) = &to {
            if session.server.route_to_service(to.domain().as_str(), iq.clone()) {
                return;
            }
        }
        return session.bounce(
            &iq,
            StanzaError::remote_server_not_found().with_text("this server does not federate with other domains yet"),
        );
    }
    let Some(payload) = iq.children().next() else {
        return;
    };
    let set = ty == "set";
    let reply = match (payload.ns().as_str(), payload.name(), &target) {
        (ns::DISCO_INFO, "query", _) if !set => disco::info(session, &target, payload),
        (ns::DISCO_ITEMS, "query", _) if !set => disco::items(session, &target, payload),
        (ns::PING, "ping", Target::Server | Target::OwnAccount) if !set => Ok(None),
        (ns::VERSION, "query", Target::Server) if !set => Ok(Some(version::query())),
        (super::extdisco::NS, "services" | "credentials", Target::Server) if !set => {
            super::extdisco::handle(session, payload)
        }
        (ns::LAST, "query", _) if !set => last::query(session, &target),
        (ns::VCARD, "vCard", _) => vcard::handle(session, &target, set, payload).await,
        (ns::ROSTER, "query", Target::OwnAccount) => return roster::iq(session, &iq, set).await,
        (ns::ROSTER, "query", _) => Err(StanzaError::forbidden().with_text("a roster belongs to its own account")),
        (ns::REGISTER, "query", Target::Server | Target::OwnAccount) => return register::iq(session, &iq, set).await,
        (ns::SESSION, "session", Target::Server | Target::OwnAccount) if set => Ok(None),
        (super::blocking::NS, _, Target::OwnAccount) => return super::blocking::iq(session, &iq, set).await,
        (super::mam::NS, _, Target::OwnAccount) => return super::mam::iq(session, &iq, set),
        (super::carbons::NS, _, Target::OwnAccount) if set => match super::carbons::toggle(payload) {
            Some(on) => {
                session.server.registry.update(&session.bare_str(), session.session_id, |r| r.carbons = on);
                Ok(None)
            }
            None => Err(StanzaError::bad_request()),
        },
        (ns::BIND, "bind", _) => Err(StanzaError::not_allowed().with_text("a resource is already bound")),
        _ => Err(StanzaError::service_unavailable()),
    };
    match reply {
        Ok(payload) => session.send(reply_to(session, &iq, payload)),
        Err(e) => session.bounce(&iq, e),
    }
}

/// A result to our own client's iq.
pub fn reply_to(session: &Session, iq: &Element, payload: Option<Element>) -> Element {
    let mut r = crate::c2s::negotiation::iq_result(iq, payload);
    crate::stanza::readdress(&mut r, iq.attr("to").unwrap_or(&session.bare_str()), Some(&session.full_str()));
    r
}
