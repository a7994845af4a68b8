//! An authenticated client session: resource binding, then every stanza the client sends.
//!
//! The session runs inside its connection's task. Replies to its own client go to `out`;
//! stanzas for others go through the registry (bounded queues).

use jid::{BareJid, FullJid};
use minidom::Element;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::Notify;

use super::queue;
use crate::error::{StanzaError, StreamCondition, StreamError};
use crate::modules;
use crate::router::{Outbound, Resource};
use crate::server::Server;
use crate::stanza::{self, Kind};
use crate::xml::{ns, AttrExt, ElementExt};

pub struct Session {
    pub server: Arc<Server>,
    pub username: String,
    pub bare: BareJid,
    /// Set once a resource is bound.
    pub full: Option<FullJid>,
    pub session_id: u64,
    /// Whether this resource has sent available presence (RFC 6121 §4.2).
    pub available: bool,
    /// The priority of its last available presence.
    pub priority: i8,
    /// JIDs we sent directed presence to, who must get our unavailable (RFC 6121 §4.6.3).
    pub directed: HashSet<String>,
    /// Stanzas for our own client.
    pub out: Vec<Element>,
    /// For a guest (invitation link): the one room this session may talk to.
    pub guest_room: Option<BareJid>,
    /// XEP-0352: the client said it is not in use.
    pub inactive: bool,
}

/// XEP-0352 Client State Indication.
pub const NS_CSI: &str = "urn:xmpp:csi:0";

/// What binding hands back to the connection: the queue it must read from.
pub struct Bound {
    pub rx: queue::Receiver<Outbound>,
    pub kill: Arc<Notify>,
}

impl Session {
    pub fn new(server: Arc<Server>, username: String, session_id: u64) -> Result<Session, StreamError> {
        let bare = BareJid::new(&format!("{username}@{}", server.domain()))
            .map_err(|_| StreamError::new(StreamCondition::InternalServerError, "cannot form the account's address"))?;
        Ok(Session {
            server,
            username,
            bare,
            full: None,
            session_id,
            available: false,
            priority: 0,
            directed: HashSet::new(),
            out: Vec::new(),
            guest_room: None,
            inactive: false,
        })
    }

    pub fn full_str(&self) -> String {
        self.full.as_ref().map(|f| f.to_string()).unwrap_or_else(|| self.bare.to_string())
    }

    pub fn bare_str(&self) -> String {
        self.bare.to_string()
    }

    pub fn resource(&self) -> &str {
        self.full.as_ref().map(|f| f.resource().as_str()).unwrap_or("")
    }

    /// Queue a stanza for our own client.
    pub fn send(&mut self, el: Element) {
        self.out.push(el);
    }

    /// Answer `stanza` with an error, unless the rules forbid answering it.
    pub fn bounce(&mut self, stanza: &Element, error: StanzaError) {
        if stanza::may_bounce(stanza) {
            let mut reply = stanza::error_reply(stanza, error, None);
            reply.set("to", self.full_str());
            self.send(reply);
        }
    }

    /// A stanza from our client. `Ok(Some(bound))` when this bound a resource.
    pub async fn handle(&mut self, mut el: Element) -> Result<Option<Bound>, StreamError> {
        if el.ns() == NS_CSI && matches!(el.name(), "active" | "inactive") {
            // XEP-0352: accepted; delivery is not delayed (an optimisation left for later).
            self.inactive = el.name() == "inactive";
            return Ok(None);
        }
        let Some(kind) = stanza::kind(&el) else {
            return Err(StreamError::new(
                StreamCondition::UnsupportedStanzaType,
                format!("<{} xmlns='{}'/> is not a stanza this server handles", el.name(), el.ns()),
            ));
        };
        if self.full.is_none() {
            if kind == Kind::Iq && el.has_child("bind", ns::BIND) {
                return Ok(self.bind(&el));
            }
            // RFC 6120 §7.1: no stanzas before a resource is bound.
            return Err(StreamError::new(StreamCondition::NotAuthorized, "bind a resource before sending stanzas"));
        }
        self.server.stanzas_in.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // RFC 6120 §8.1.2.1: the server stamps the full JID of the sender.
        el.set("from", self.full_str());
        let to = match stanza::to(&el) {
            Ok(to) => to,
            Err(_) => {
                self.bounce(&el, StanzaError::jid_malformed().with_text("the 'to' address is not a valid JID"));
                return Ok(None);
            }
        };
        if let Some(room) = &self.guest_room {
            let focus = self.server.focus.as_ref().map(|f| f.domain.as_str());
            if !guest_may_send(room, self.server.domain(), focus, kind, &el, to.as_ref()) {
                self.bounce(
                    &el,
                    StanzaError::forbidden().with_text("guests can only take part in the meeting they were invited to"),
                );
                return Ok(None);
            }
        }
        match kind {
            Kind::Iq => modules::iq::handle(self, el).await,
            Kind::Message => modules::message::outbound(self, el).await,
            Kind::Presence => modules::presence::outbound(self, el).await,
        }
        Ok(None)
    }

    fn bind(&mut self, iq: &Element) -> Option<Bound> {
        if iq.attr("type") != Some("set") {
            self.send(stanza::error_reply(iq, StanzaError::bad_request(), None));
            return None;
        }
        let requested = iq
            .get_child("bind", ns::BIND)
            .and_then(|b| b.get_child("resource", ns::BIND))
            .map(|r| r.text())
            .filter(|r| !r.trim().is_empty());
        let resource = match requested {
            Some(r) => match jid::ResourcePart::new(r.trim()) {
                Ok(r) => r.to_string(),
                Err(_) => {
                    self.send(stanza::error_reply(iq, StanzaError::bad_request().with_text("invalid resource"), None));
                    return None;
                }
            },
            None => generated_resource(),
        };
        let Ok(full) = self.bare.with_resource_str(&resource) else {
            self.send(stanza::error_reply(iq, StanzaError::bad_request().with_text("invalid resource"), None));
            return None;
        };
        let (tx, rx) = queue::queue(self.server.config.c2s.send_queue);
        let kill = Arc::new(Notify::new());
        self.server.registry.bind(
            &self.bare_str(),
            Resource {
                resource: resource.clone(),
                session_id: self.session_id,
                tx,
                kill: kill.clone(),
                available: false,
                priority: 0,
                presence: None,
                interested: false,
                carbons: false,
                blocklist: false,
            },
        );
        tracing::info!(jid = %full, "resource bound");
        let result = Element::builder("iq", ns::CLIENT)
            .a("type", "result")
            .a("id", iq.attr("id").unwrap_or_default())
            .append(
                Element::builder("bind", ns::BIND)
                    .append(Element::builder("jid", ns::BIND).append(full.to_string()).build())
                    .build(),
            )
            .build();
        self.full = Some(full);
        self.send(result);
        Some(Bound { rx, kill })
    }

    /// The stream ended (cleanly or not): leave as RFC 6121 §4.6 says.
    pub async fn close(&mut self) {
        if self.full.is_some() {
            modules::presence::went_offline(self).await;
            self.server.registry.unbind(&self.bare_str(), self.resource(), self.session_id);
        }
        if self.guest_room.is_some() {
            self.server.guests.remove(&self.username);
        }
    }
}

/// What a guest session may send: anything to its room (and the room's occupants) and to
/// the room's call on the focus, and pings and service discovery to the server. Nothing
/// else: no roster, no other users, no other rooms.
fn guest_may_send(
    room: &BareJid,
    domain: &str,
    focus: Option<&str>,
    kind: Kind,
    el: &Element,
    to: Option<&jid::Jid>,
) -> bool {
    let Some(to) = to else {
        // Presence broadcast goes to an empty roster; iqs to the own account are refused.
        return kind == Kind::Presence;
    };
    if to.to_bare() == *room {
        return true;
    }
    let call = focus.is_some_and(|f| to.domain().as_str() == f) && to.node() == room.node();
    if call && kind == Kind::Iq {
        return true;
    }
    let server_iq = kind == Kind::Iq
        && to.node().is_none()
        && to.resource().is_none()
        && to.domain().as_str() == domain
        && el.children().next().is_some_and(|p| {
            // Ping, discovery, and STUN/TURN credentials for the meeting's call.
            p.is("ping", ns::PING) || p.ns() == ns::DISCO_INFO || p.ns() == crate::modules::extdisco::NS
        });
    server_iq || (kind == Kind::Iq && el.attr("type").is_some_and(|t| t == "result" || t == "error"))
}

/// A random resource for clients that do not ask for one (RFC 6120 §7.6.2.1).
fn generated_resource() -> String {
    use base64::Engine;
    let bytes = crate::sasl::credentials::random_bytes(9);
    format!("amphi-{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}
