//! The Jingle focus on `focus.<domain>`: the XMPP side of calls. A participant calls
//! `room@focus.<domain>`; [`conference::Conferences`] (sans-IO) maps its Jingle session to
//! SFU commands and back; this module is the thin shell that feeds it stanzas from the
//! router and events from the SFU thread, and delivers what it returns.

pub mod conference;
pub mod disco;
pub mod negotiate;

use minidom::Element;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::server::Server;
use crate::sfu::{Event, SfuConfig, SfuHandle};
use conference::{Conferences, FocusInfo, Membership, Output, RoomOccupant, Rooms};

/// The focus service.
pub struct FocusService {
    pub domain: String,
    /// Held only while one stanza or event is handled, never across an await.
    state: Mutex<Conferences>,
    sfu: SfuHandle,
    /// The server stanzas are delivered through, learnt from the first routed stanza (a
    /// weak link: the server owns the focus). Shared with [`MucRooms`].
    server: Arc<OnceLock<Weak<Server>>>,
}

/// The MUC service as the focus core sees it: who is in each call's room. The server
/// starts the focus before the MUC service, so it is found through the server at each
/// question rather than held.
struct MucRooms {
    server: Arc<OnceLock<Weak<Server>>>,
}

impl Rooms for MucRooms {
    fn membership(&self, call: &str, jid: &str) -> Membership {
        let Some(server) = self.server.get().and_then(Weak::upgrade) else { return Membership::NoRoom };
        // Without a MUC service there are no rooms, so no calls.
        let Some(muc) = server.muc.as_ref() else { return Membership::NoRoom };
        match muc.occupant(call, jid) {
            crate::muc::Occupancy::NoRoom => Membership::NoRoom,
            crate::muc::Occupancy::Outsider => Membership::Outsider,
            crate::muc::Occupancy::Occupant(o) => Membership::Occupant(RoomOccupant {
                occupant_jid: format!("{call}@{}/{}", muc.domain, o.nick),
                moderator: o.role == crate::muc::affiliation::Role::Moderator,
                sees_jids: o.sees_jids,
            }),
        }
    }
}

impl FocusService {
    /// Start the SFU thread and the task that brings its events back. Must be called
    /// inside the tokio runtime.
    pub fn start(config: &crate::config::Config) -> std::io::Result<Option<Arc<FocusService>>> {
        let Some(domain) = config.focus_domain() else { return Ok(None) };
        let public = config.media.public_ip().ok().flatten();
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let sfu_config = SfuConfig {
            listen: config.media.listen,
            tcp_listen: config.media.tcp_listen,
            public,
            last_n: config.media.last_n,
        };
        let sfu = crate::sfu::spawn(&sfu_config, tx)?;
        let info = FocusInfo {
            domain: domain.clone(),
            candidate: sfu.candidate,
            tcp_candidate: sfu.tcp_candidate,
            fingerprint: sfu.fingerprint.clone(),
            max_participants: config.media.max_participants,
        };
        let random = Box::new(|buf: &mut [u8]| buf.copy_from_slice(&crate::sasl::credentials::random_bytes(buf.len())));
        let server = Arc::new(OnceLock::new());
        let rooms = Box::new(MucRooms { server: server.clone() });
        let focus =
            Arc::new(FocusService { domain, state: Mutex::new(Conferences::new(info, random, rooms)), sfu, server });
        focus.spawn_events(rx);
        Ok(Some(focus))
    }

    /// Carry out what the focus makes of the SFU's events. The task holds the focus
    /// weakly, so it ends with the server.
    fn spawn_events(self: &Arc<Self>, mut rx: tokio::sync::mpsc::Receiver<Event>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let Some(focus) = weak.upgrade() else { break };
                let out = focus.state().handle_event(ev);
                let server = focus.server.get().and_then(Weak::upgrade);
                focus.carry_out(server.as_ref(), out);
            }
        });
    }

    /// The focus's state. Should a handler ever panic while holding it (a bug), later
    /// stanzas still get served instead of every call stopping with it.
    fn state(&self) -> std::sync::MutexGuard<'_, Conferences> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A stanza for `focus.<domain>` or one of its calls. Never blocks.
    pub fn route(&self, server: &Arc<Server>, stanza: Element) {
        let _ = self.server.set(Arc::downgrade(server));
        let out = match (stanza.name(), stanza.attr("type"), stanza.attr("from")) {
            ("iq", _, _) => self.state().handle_iq(&stanza),
            ("presence", Some("unavailable"), Some(from)) => self.state().resource_gone(from),
            _ => return,
        };
        self.carry_out(Some(server), out);
    }

    /// How many sessions the call of room `call` has now.
    pub fn call_size(&self, call: &str) -> usize {
        self.state().call_size(call)
    }

    /// End the call of room `call` for everyone (for the MUC service: room destroyed).
    pub fn end_call(&self, server: &Arc<Server>, call: &str) {
        let _ = self.server.set(Arc::downgrade(server));
        let out = self.state().end_call(call, "the room was destroyed");
        self.carry_out(Some(server), out);
    }

    /// End `jid`'s sessions in the call of room `call` (for the MUC service: the occupant
    /// left or was kicked). A bare JID ends all its devices' sessions.
    pub fn remove_occupant(&self, server: &Arc<Server>, call: &str, jid: &str) {
        let out = self.state().remove_occupant(call, jid);
        self.carry_out(Some(server), out);
    }

    /// Send the stanzas (when the server is known) and pass the commands to the SFU.
    ///
    /// A participant the server can no longer deliver to has left the call: its session
    /// ended without an unavailable presence reaching the focus or the room (a connection
    /// that dropped before the session sent any broadcast presence). Its streams are
    /// removed at the others at once, rather than when the SFU misses its media.
    fn carry_out(&self, server: Option<&Arc<Server>>, out: Vec<Output>) {
        let mut unreachable: Vec<String> = Vec::new();
        for o in out {
            match (o, server) {
                (Output::Send(el), Some(server)) => {
                    if let Ok(Some(to)) = crate::stanza::to(&el) {
                        let name = to.to_string();
                        if !crate::modules::message::deliver_to_resource(server, &to, el)
                            && !unreachable.contains(&name)
                        {
                            unreachable.push(name);
                        }
                    }
                }
                (Output::Send(_), None) => {}
                (Output::Sfu(cmd), _) => {
                    if self.sfu.commands.try_send(cmd).is_err() {
                        tracing::warn!("the SFU is not keeping up with commands; one was dropped");
                    }
                }
            }
        }
        // Each round only sends to those still in a call, so this ends when nobody is left
        // unreachable.
        for jid in unreachable {
            let out = self.state().resource_gone(&jid);
            if !out.is_empty() {
                tracing::debug!(%jid, "a call participant is unreachable: removed from its call");
                self.carry_out(server, out);
            }
        }
    }
}

#[cfg(test)]
mod tests;
