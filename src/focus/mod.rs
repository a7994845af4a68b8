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
use crate::sfu::{Command, Event, SfuConfig, SfuHandle};
use conference::{Conferences, FocusInfo, Output};

/// The focus service.
pub struct FocusService {
    pub domain: String,
    /// Held only while one stanza or event is handled, never across an await.
    state: Mutex<Conferences>,
    sfu: SfuHandle,
    /// The server stanzas are delivered through, learnt from the first routed stanza (a
    /// weak link: the server owns the focus).
    server: OnceLock<Weak<Server>>,
}

impl FocusService {
    /// Start the SFU thread and the task that brings its events back. Must be called
    /// inside the tokio runtime.
    pub fn start(config: &crate::config::Config) -> std::io::Result<Option<Arc<FocusService>>> {
        let Some(domain) = config.focus_domain() else { return Ok(None) };
        let public = config.media.public_ip().ok().flatten();
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let sfu =
            crate::sfu::spawn(&SfuConfig { listen: config.media.listen, public, last_n: config.media.last_n }, tx)?;
        let info = FocusInfo {
            domain: domain.clone(),
            candidate: sfu.candidate,
            fingerprint: sfu.fingerprint.clone(),
            max_participants: config.media.max_participants,
        };
        let random = Box::new(|buf: &mut [u8]| {
            if aws_lc_rs::rand::fill(buf).is_err() {
                buf.fill(0);
            }
        });
        let focus = Arc::new(FocusService {
            domain,
            state: Mutex::new(Conferences::new(info, random)),
            sfu,
            server: OnceLock::new(),
        });
        Ok(Some(focus)).inspect(|f| {
            if let Some(f) = f {
                f.clone().spawn_events(rx);
            }
        })
    }

    /// Carry out what the focus makes of the SFU's events.
    fn spawn_events(self: Arc<Self>, mut rx: tokio::sync::mpsc::Receiver<Event>) {
        let weak = Arc::downgrade(&self);
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let Some(focus) = weak.upgrade() else { break };
                let out = match focus.state.lock() {
                    Ok(mut s) => s.handle_event(ev),
                    Err(_) => break,
                };
                if let Some(server) = focus.server.get().and_then(Weak::upgrade) {
                    focus.carry_out(&server, out);
                }
            }
        });
    }

    /// A stanza for `focus.<domain>` or one of its calls. Never blocks.
    pub fn route(&self, server: &Arc<Server>, stanza: Element) {
        let _ = self.server.set(Arc::downgrade(server));
        let out = match stanza.name() {
            "iq" => match self.state.lock() {
                Ok(mut s) => s.handle_iq(&stanza),
                Err(_) => return,
            },
            "presence" if stanza.attr("type") == Some("unavailable") => {
                match (self.state.lock(), stanza.attr("from")) {
                    (Ok(mut s), Some(from)) => s.resource_gone(from),
                    _ => return,
                }
            }
            _ => return,
        };
        self.carry_out(server, out);
    }

    fn carry_out(&self, server: &Arc<Server>, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Send(el) => {
                    if let Ok(Some(to)) = crate::stanza::to(&el) {
                        crate::modules::message::deliver_to_resource(server, &to, el);
                    }
                }
                Output::Sfu(cmd) => self.command(cmd),
            }
        }
    }

    fn command(&self, cmd: Command) {
        if self.sfu.commands.try_send(cmd).is_err() {
            tracing::warn!("the SFU is not keeping up with commands; one was dropped");
        }
    }
}

#[cfg(test)]
mod tests;
