//! XEP-0198 Stream Management: acknowledgements and resumption.
//!
//! [`StreamManagement`] is the sans-IO counter state of one stream: what the client sent
//! (`h_in`), what we sent and it has not acknowledged yet (`unacked`). [`Detached`]
//! sessions wait in [`SmRegistry`] for a client to resume them after its connection
//! dropped; if none does within `c2s.resume_timeout`, they end like any other session.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use minidom::Element;
use tokio::sync::Notify;

use std::time::Duration;

use super::connection::{hex, Connection};
use super::queue;
use super::session::Session;
use crate::error::{StreamCondition, StreamError};
use crate::router::Outbound;
use crate::xml::{ns, write, AttrExt};

pub const NS: &str = "urn:xmpp:sm:3";
/// More unacknowledged stanzas than this and the client is not playing along.
pub const MAX_UNACKED: usize = 5000;
/// Ask for an acknowledgement once this many stanzas are unacknowledged.
const REQUEST_AFTER: usize = 5;

/// Counters of one managed stream.
#[derive(Debug)]
pub struct StreamManagement {
    /// Resumption id, when the client asked for resumption.
    pub id: Option<String>,
    /// Stanzas received from the client.
    pub h_in: u32,
    /// Stanzas sent to the client.
    h_out: u32,
    unacked: VecDeque<Element>,
    requested: bool,
}

pub fn is_stanza(el: &Element) -> bool {
    el.ns() == ns::CLIENT && matches!(el.name(), "message" | "presence" | "iq")
}

impl StreamManagement {
    pub fn new(id: Option<String>) -> StreamManagement {
        StreamManagement { id, h_in: 0, h_out: 0, unacked: VecDeque::new(), requested: false }
    }

    pub fn enabled_element(&self, max_seconds: u64) -> Element {
        let mut b = Element::builder("enabled", NS);
        if let Some(id) = &self.id {
            b = b.a("id", id.as_str()).a("resume", "true").a("max", max_seconds.to_string());
        }
        b.build()
    }

    pub fn received_stanza(&mut self) {
        self.h_in = self.h_in.wrapping_add(1);
    }

    /// We are sending `el`. Returns an `<r/>` to send after it when it is time to ask.
    pub fn sending(&mut self, el: &Element) -> Result<Option<Element>, StreamError> {
        if !is_stanza(el) {
            return Ok(None);
        }
        self.h_out = self.h_out.wrapping_add(1);
        self.unacked.push_back(el.clone());
        if self.unacked.len() > MAX_UNACKED {
            return Err(StreamError::new(StreamCondition::PolicyViolation, "too many unacknowledged stanzas"));
        }
        if self.unacked.len() >= REQUEST_AFTER && !self.requested {
            self.requested = true;
            return Ok(Some(Element::bare("r", NS)));
        }
        Ok(None)
    }

    /// The client acknowledged `h` stanzas in all.
    pub fn acknowledged(&mut self, h: u32) -> Result<(), StreamError> {
        let acked_before = self.h_out.wrapping_sub(self.unacked.len() as u32);
        let newly = h.wrapping_sub(acked_before) as usize;
        if newly > self.unacked.len() {
            return Err(StreamError::new(
                StreamCondition::UndefinedCondition,
                format!("acknowledged {h} stanzas but only {} were sent", self.h_out),
            ));
        }
        self.unacked.drain(..newly);
        self.requested = false;
        Ok(())
    }

    pub fn answer(&self) -> Element {
        Element::builder("a", NS).a("h", self.h_in.to_string()).build()
    }

    /// The stanzas the client has not acknowledged, oldest first.
    pub fn take_unacked(&mut self) -> Vec<Element> {
        let v: Vec<Element> = self.unacked.drain(..).collect();
        self.h_out = self.h_out.wrapping_sub(v.len() as u32);
        v
    }
}

/// A session whose connection dropped, waiting to be resumed.
pub struct Detached {
    pub session: Session,
    pub rx: queue::Receiver<Outbound>,
    pub kill: Arc<Notify>,
    pub sm: StreamManagement,
}

#[derive(Default)]
pub struct SmRegistry {
    detached: Mutex<HashMap<String, Detached>>,
    /// Live resumable streams: a notifier that makes the connection detach at once, for
    /// a client that resumes before we noticed its old connection was dead.
    active: Mutex<HashMap<String, Arc<Notify>>>,
}

impl SmRegistry {
    pub fn register_active(&self, id: &str) -> Arc<Notify> {
        let n = Arc::new(Notify::new());
        self.active.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_string(), n.clone());
        n
    }

    pub fn unregister_active(&self, id: &str) {
        self.active.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    /// Ask a live connection holding `id` to detach; true if there was one.
    pub fn take_over(&self, id: &str) -> bool {
        match self.active.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
            Some(n) => {
                n.notify_one();
                true
            }
            None => false,
        }
    }

    pub fn park(&self, id: String, d: Detached) {
        self.detached.lock().unwrap_or_else(|e| e.into_inner()).insert(id, d);
    }

    pub fn take(&self, id: &str) -> Option<Detached> {
        self.detached.lock().unwrap_or_else(|e| e.into_inner()).remove(id)
    }
}

/// The XEP-0198 part of a client connection.
impl Connection {
    /// The connection is over: park a resumable session whose transport died, or end
    /// the session as a session must (presence, unbind) and route again what the client
    /// never acknowledged.
    pub(super) async fn end_session(mut self) {
        let resumable = self.sm.as_ref().and_then(|sm| sm.id.clone());
        if let Some(id) = &resumable {
            self.server.sm.unregister_active(id);
        }
        match (resumable, self.dropped, self.session.take(), self.rx.take(), self.kill.take(), self.sm.take()) {
            (Some(id), true, Some(session), Some(rx), Some(kill), Some(sm)) => {
                tracing::debug!(peer = %self.peer, jid = %session.full_str(), "connection lost; session kept for resumption");
                self.server.sm.park(id.clone(), Detached { session, rx, kill, sm });
                let server = self.server.clone();
                let timeout = server.config.c2s.resume_timeout;
                tokio::spawn(async move {
                    tokio::time::sleep(timeout).await;
                    if let Some(d) = server.sm.take(&id) {
                        end_detached(d).await;
                    }
                });
            }
            (_, _, Some(mut session), rx, _, sm) => {
                session.close().await;
                let mut unacked = sm.map(|mut sm| sm.take_unacked()).unwrap_or_default();
                if let Some(mut rx) = rx {
                    while let Ok(Outbound::Stanza(el)) = rx.try_recv() {
                        unacked.push(*el);
                    }
                }
                reroute(&session, unacked).await;
            }
            _ => {}
        }
    }

    /// XEP-0198 nonzas: enable, r, a, resume.
    pub(super) async fn stream_management(&mut self, el: Element) {
        let failed =
            |condition: &str| Element::builder("failed", NS).append(Element::bare(condition, ns::STANZAS_ERR)).build();
        match el.name() {
            "enable" => {
                if self.rx.is_none() || self.sm.is_some() {
                    return self.out.push(write::element_bytes(&failed("unexpected-request")));
                }
                let timeout = self.server.config.c2s.resume_timeout;
                let resume = matches!(el.attr("resume"), Some("true" | "1")) && !timeout.is_zero();
                let id = resume.then(|| hex(&crate::sasl::credentials::random_bytes(16)));
                if let Some(id) = &id {
                    self.takeover = Some(self.server.sm.register_active(id));
                }
                let sm = StreamManagement::new(id);
                self.out.push(write::element_bytes(&sm.enabled_element(timeout.as_secs())));
                self.sm = Some(sm);
            }
            "r" => {
                if let Some(sm) = &self.sm {
                    let a = sm.answer();
                    self.out.push(write::element_bytes(&a));
                }
            }
            "a" => {
                let h = el.attr("h").and_then(|h| h.parse::<u32>().ok());
                let result = match (self.sm.as_mut(), h) {
                    (Some(sm), Some(h)) => sm.acknowledged(h),
                    (Some(_), None) => Err(StreamError::new(StreamCondition::BadFormat, "<a/> needs a numeric 'h'")),
                    (None, _) => Ok(()),
                };
                if let Err(e) = result {
                    self.close(Some(e));
                }
            }
            "resume" => self.resume(&el).await,
            _ => self.out.push(write::element_bytes(&failed("feature-not-implemented"))),
        }
    }

    /// Take over a detached (or still attached, dying) session.
    async fn resume(&mut self, el: &Element) {
        let failed =
            |condition: &str| Element::builder("failed", NS).append(Element::bare(condition, ns::STANZAS_ERR)).build();
        let (Some(previd), Some(h)) = (el.attr("previd"), el.attr("h").and_then(|h| h.parse::<u32>().ok())) else {
            return self.out.push(write::element_bytes(&failed("bad-request")));
        };
        let username = self.session.as_ref().map(|s| s.username.clone());
        if self.rx.is_some() || username.is_none() {
            return self.out.push(write::element_bytes(&failed("unexpected-request")));
        }
        let mut found = self.server.sm.take(previd);
        if found.is_none() && self.server.sm.take_over(previd) {
            // The old connection is still open (its client moved networks): wait for it
            // to hand the session over.
            for _ in 0..40 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                found = self.server.sm.take(previd);
                if found.is_some() {
                    break;
                }
            }
        }
        let Some(mut d) = found else {
            return self.out.push(write::element_bytes(&failed("item-not-found")));
        };
        if Some(&d.session.username) != username.as_ref() {
            // Someone else's session id: put it back untouched.
            self.server.sm.park(previd.to_string(), d);
            return self.out.push(write::element_bytes(&failed("item-not-found")));
        }
        if let Err(e) = d.sm.acknowledged(h) {
            self.server.sm.park(previd.to_string(), d);
            return self.close(Some(e));
        }
        let unacked = d.sm.take_unacked();
        let resumed = Element::builder("resumed", NS).a("previd", previd).a("h", d.sm.h_in.to_string()).build();
        tracing::info!(peer = %self.peer, jid = %d.session.full_str(), "session resumed");
        self.session = Some(d.session);
        self.rx = Some(d.rx);
        self.kill = Some(d.kill);
        self.sm = Some(d.sm);
        self.takeover = Some(self.server.sm.register_active(previd));
        self.out.push(write::element_bytes(&resumed));
        for stanza in &unacked {
            self.push(stanza);
        }
    }
}

/// A detached session nobody resumed: it ends like any other, and what it never
/// acknowledged goes back through routing (to other resources or offline storage).
async fn end_detached(mut d: Detached) {
    tracing::debug!(jid = %d.session.full_str(), "resumable session expired");
    d.session.close().await;
    let mut pending = d.sm.take_unacked();
    while let Ok(Outbound::Stanza(el)) = d.rx.try_recv() {
        pending.push(*el);
    }
    reroute(&d.session, pending).await;
}

/// Messages the client may never have seen: route them again to the account's bare JID
/// (other resources, or offline storage). Only after the session is unbound.
async fn reroute(session: &Session, stanzas: Vec<Element>) {
    let bare = jid::Jid::from(session.bare.clone());
    for mut msg in stanzas {
        let ty = msg.attr("type").unwrap_or("normal");
        let is_message =
            msg.name() == "message" && matches!(ty, "chat" | "normal") && msg.has_child("body", ns::CLIENT);
        if !is_message || !crate::modules::carbons::eligible(&msg) {
            continue;
        }
        msg.attrs_mut().remove(&rxml::Namespace::NONE, "to");
        let _ = crate::modules::message::route(&session.server, msg, &bare).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Element {
        Element::builder("message", ns::CLIENT).build()
    }

    #[test]
    fn counts_requests_and_acks() {
        let mut sm = StreamManagement::new(Some("x".into()));
        for i in 0..4 {
            assert_eq!(sm.sending(&msg()).unwrap(), None, "{i}");
        }
        assert!(sm.sending(&msg()).unwrap().is_some(), "asks after five");
        assert!(sm.sending(&msg()).unwrap().is_none(), "one request at a time");
        sm.acknowledged(4).unwrap();
        assert_eq!(sm.take_unacked().len(), 2);
        assert!(sm.acknowledged(9).is_err(), "more than sent");
        sm.received_stanza();
        assert_eq!(sm.answer().attr("h"), Some("1"));
        assert_eq!(sm.sending(&Element::bare("r", NS)).unwrap(), None, "nonzas are not counted");
    }
}
