//! XEP-0198 Stream Management: acknowledgements and resumption.
//!
//! [`StreamManagement`] is the sans-IO counter state of one stream: what the client sent
//! (`h_in`), what we sent and it has not acknowledged yet (`unacked`). [`Detached`]
//! sessions wait in [`SmRegistry`] for a client to resume them after its connection
//! dropped; if none does within `c2s.resume_timeout`, they end like any other session.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use minidom::Element;
use tokio::sync::{mpsc, Notify};

use super::session::Session;
use crate::error::{StreamCondition, StreamError};
use crate::router::Outbound;
use crate::xml::{ns, AttrExt};

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
    pub rx: mpsc::Receiver<Outbound>,
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
