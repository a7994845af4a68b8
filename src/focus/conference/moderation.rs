//! Mute (XEP-0167 §7 session-info) for oneself and by moderators, layer preferences, and
//! occupants removed from a call by its room (the end of a whole call: `end_call.rs`).

use minidom::Element;

use super::{error, Conferences, Output, Outs};
use crate::error::StanzaError;
use crate::jingle::{Action, Jingle, Media, SessionInfo};
use crate::sfu::{Command, ParticipantId};

/// amphi's session-info payload for a receiver's simulcast preference:
/// `<layer xmlns="urn:amphi:jingle:layer:0" name="CONTENT" max="0"/>` (0 = lowest layer).
pub const NS_LAYER: &str = "urn:amphi:jingle:layer:0";

impl Conferences {
    /// session-info from a participant. `mute`/`unmute` naming one of its own contents are
    /// relayed to everyone receiving it; naming a stream it *receives* they are a moderator
    /// action on that stream's publisher: forwarding stops (or resumes) and the publisher
    /// and the other receivers are told. `<layer/>` sets the receiver's simulcast ceiling.
    pub(super) fn session_info(&mut self, iq: &Element, id: ParticipantId, jingle: &Jingle) -> Outs {
        let Some(p) = self.participants.get(&id) else { return Vec::new() };
        let mut own = Vec::new();
        let mut moderated: Vec<(ParticipantId, String, String)> = Vec::new();
        for i in jingle.info.iter().filter(|i| i.kind == "mute" || i.kind == "unmute") {
            match &i.name {
                Some(n) if p.forwarded.contains_key(n) => {
                    let f = &p.forwarded[n];
                    moderated.push((f.publisher, f.content.clone(), i.kind.clone()));
                }
                _ => own.push(i.clone()),
            }
        }
        if !moderated.is_empty() && !self.is_moderator(&p.call, &p.jid) {
            return vec![error(iq, StanzaError::forbidden().with_text("only moderators may mute others"), None)];
        }
        let mut out = vec![Output::Send(crate::c2s::negotiation::iq_result(iq, None))];
        let layer_el = iq.get_child("jingle", crate::jingle::ns::JINGLE).into_iter().flat_map(|j| j.children());
        for l in layer_el.filter(|c| c.is("layer", NS_LAYER)) {
            if let (Some(name), Some(max)) = (l.attr("name"), l.attr("max").and_then(|m| m.parse::<usize>().ok())) {
                if p.forwarded.contains_key(name) {
                    out.push(Output::Sfu(Command::PreferLayer { subscriber: id, mid: name.to_string(), max }));
                }
            }
        }
        self.relay(id, &own, &mut out);
        for (publisher, content, kind) in moderated {
            let audio = self.media_of(publisher, &content) == Some(Media::Audio);
            out.push(Output::Sfu(Command::SetForwarding { publisher, audio, enabled: kind == "unmute" }));
            let info = SessionInfo { kind: kind.clone(), name: Some(content.clone()) };
            if let Some(target) = self.participants.get(&publisher) {
                let j = Jingle {
                    action: Some(Action::SessionInfo),
                    sid: target.sid.clone(),
                    initiator: Some(target.jid.clone()),
                    info: vec![info.clone()],
                    ..Jingle::default()
                };
                let (from, to) = (target.focus_jid.clone(), target.jid.clone());
                out.push(Output::Send(self.iq_set(&from, &to, j.to_element())));
            }
            self.relay(publisher, &[info], &mut out);
        }
        out
    }

    fn media_of(&self, publisher: ParticipantId, content: &str) -> Option<Media> {
        let p = self.participants.get(&publisher)?;
        p.own.get(content).map(|d| d.media)
    }

    /// Tell everyone receiving `publisher`'s contents about `infos` (named by the
    /// publisher's content), each with its own content name.
    fn relay(&mut self, publisher: ParticipantId, infos: &[SessionInfo], out: &mut Outs) {
        if infos.is_empty() {
            return;
        }
        let subs: Vec<ParticipantId> = self.participants.keys().copied().filter(|k| *k != publisher).collect();
        for sub in subs {
            let Some(p) = self.participants.get(&sub) else { continue };
            let mut j = Jingle {
                action: Some(Action::SessionInfo),
                sid: p.sid.clone(),
                initiator: Some(p.jid.clone()),
                ..Jingle::default()
            };
            for i in infos {
                for (name, f) in p.forwarded.iter().filter(|(_, f)| f.publisher == publisher) {
                    if i.name.as_ref().is_none_or(|n| *n == f.content) {
                        j.info.push(SessionInfo { kind: i.kind.clone(), name: Some(name.clone()) });
                    }
                }
            }
            if !j.info.is_empty() {
                j.info.sort_by(|a, b| a.name.cmp(&b.name));
                let (from, to) = (p.focus_jid.clone(), p.jid.clone());
                out.push(Output::Send(self.iq_set(&from, &to, j.to_element())));
            }
        }
    }

    /// An occupant left the call's room or was removed from it: end its sessions there.
    /// `jid` is a full JID, or a bare JID for all its devices.
    pub fn remove_occupant(&mut self, call: &str, jid: &str) -> Outs {
        let ids: Vec<ParticipantId> = self
            .participants
            .iter()
            .filter(|(_, p)| p.call == call && (p.jid == jid || p.jid.split('/').next() == Some(jid)))
            .map(|(k, _)| *k)
            .collect();
        let mut out = Vec::new();
        for id in ids {
            self.leave(id, Some(("gone", Some("you are no longer in the room"))), &mut out);
        }
        out
    }
}
