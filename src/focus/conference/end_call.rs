//! Ending a call for everyone while its room stays: the XEP-0050 ad-hoc command
//! `end-call` on the call's JID (`room@focus.<domain>`), for the room's moderators, and
//! the end that comes from the room itself (destroyed). See xep/jingle-conferences.md,
//! "Ending the call for everyone".
//!
//! An ad-hoc command rather than a Jingle action: `session-terminate` ends only the
//! sender's own session, and any client with XEP-0050 (Gajim, Psi, Movim, Converse.js...)
//! can list and run a command without knowing amphi. The command has two stages: a
//! confirmation form, then the end. The confirmation holds no state on the focus (who may
//! end the call is checked again when it is confirmed), so any session id is accepted.

use minidom::Element;

use super::{error, Conferences, Membership, Output, Outs};
use crate::error::StanzaError;
use crate::jingle::{ns, Action, Jingle};
use crate::xml::AttrExt;

/// XEP-0050 ad-hoc commands.
pub const NS_COMMANDS: &str = "http://jabber.org/protocol/commands";
/// The node of the command that ends a call for everyone.
pub const END_CALL: &str = "end-call";
/// amphi's call namespace: in a session-terminate's `<reason/>`, `<ended-by-moderator
/// by="room@conference.<domain>/Nick"/>` tells clients a moderator ended the call for
/// everyone, so they can say so in their user's language.
pub const NS_CALL: &str = "urn:amphi:call:0";

/// The text of the session-terminate when a moderator ends the call.
pub const ENDED_BY_MODERATOR: &str = "the moderator ended the call";

impl Conferences {
    /// End a call for everyone (its room was destroyed): each participant gets
    /// session-terminate `<success/>` with `text` saying why.
    pub fn end_call(&mut self, call: &str, text: &str) -> Outs {
        self.end_all(call, text, None)
    }

    /// Terminate every session of `call`; `by` is the moderator who asked, if one did.
    fn end_all(&mut self, call: &str, text: &str, by: Option<&str>) -> Outs {
        let ids = self.calls.get(call).cloned().unwrap_or_default();
        // Everyone goes: nobody is left to be told of the others' streams (no content-remove);
        // the SFU drops the subscriptions with each participant.
        for id in &ids {
            if let Some(p) = self.participants.get_mut(id) {
                p.forwarded.clear();
            }
        }
        let mut out = Vec::new();
        for id in ids {
            let Some(p) = self.participants.get(&id) else { continue };
            let (sid, jid, focus_jid) = (p.sid.clone(), p.jid.clone(), p.focus_jid.clone());
            self.leave(id, None, &mut out);
            let mut el = Jingle {
                action: Some(Action::SessionTerminate),
                sid,
                reason: Some("success".into()),
                ..Jingle::default()
            }
            .to_element();
            if let Some(r) = el.get_child_mut("reason", ns::JINGLE) {
                r.append_child(Element::builder("text", ns::JINGLE).append(text).build());
                if let Some(by) = by {
                    r.append_child(Element::builder("ended-by-moderator", NS_CALL).a("by", by).build());
                }
            }
            out.push(Output::Send(self.iq_set(&focus_jid, &jid, el)));
        }
        out
    }

    /// An ad-hoc command (XEP-0050) sent to the focus or one of its calls.
    pub(super) fn command(&mut self, iq: &Element, from: &str, to: &str, cmd: &Element) -> Outs {
        if cmd.attr("node") != Some(END_CALL) {
            return vec![error(iq, StanzaError::item_not_found().with_text("no such command"), None)];
        }
        let Some(call) = self.call_of(to) else {
            let text = "end-call is a command of a call: send it to room@focus-domain";
            return vec![error(iq, StanzaError::item_not_found().with_text(text), None)];
        };
        let moderator = match self.rooms.membership(&call, from) {
            Membership::NoRoom => {
                let text = format!("there is no room {call}, so no call either");
                return vec![error(iq, StanzaError::item_not_found().with_text(text), None)];
            }
            Membership::Occupant(o) if o.moderator => o.occupant_jid,
            _ => {
                let text = format!("only the moderators of room {call} may end its call");
                return vec![error(iq, StanzaError::forbidden().with_text(text), None)];
            }
        };
        let action = cmd.attr("action").unwrap_or("execute");
        let reply = |status: &str, sessionid: &str, children: Vec<Element>| {
            let c = Element::builder("command", NS_COMMANDS)
                .a("node", END_CALL)
                .a("sessionid", sessionid)
                .a("status", status)
                .append_all(children)
                .build();
            Output::Send(crate::c2s::negotiation::iq_result(iq, Some(c)))
        };
        let size = self.call_size(&call);
        match (cmd.attr("sessionid"), action) {
            (Some(s), "cancel") => vec![reply("canceled", s, Vec::new())],
            (None, "execute" | "complete") => {
                // Stage one: ask for confirmation.
                let sessionid = format!("end-call-{}", self.token(12));
                let question = match size {
                    0 => format!("There is no call in room {call} now."),
                    n => format!("End the call of room {call} for its {n} participant(s)? The room and its chat stay."),
                };
                let actions = Element::builder("actions", NS_COMMANDS)
                    .a("execute", "complete")
                    .append(Element::bare("complete", NS_COMMANDS))
                    .build();
                let form = Element::builder("x", crate::xml::ns::DATA_FORMS)
                    .a("type", "form")
                    .append(Element::builder("title", crate::xml::ns::DATA_FORMS).append("End the call for everyone"))
                    .append(Element::builder("instructions", crate::xml::ns::DATA_FORMS).append(question))
                    .build();
                vec![reply("executing", &sessionid, vec![actions, form])]
            }
            (Some(s), "execute" | "complete") => {
                let mut out = self.end_all(&call, ENDED_BY_MODERATOR, Some(&moderator));
                let text = match size {
                    0 => format!("There was no call in room {call}."),
                    n => format!("The call of room {call} was ended for its {n} participant(s)."),
                };
                let note = Element::builder("note", NS_COMMANDS).a("type", "info").append(text).build();
                out.insert(0, reply("completed", s, vec![note]));
                out
            }
            _ => {
                let mut e = crate::stanza::error_reply(iq, StanzaError::bad_request(), None);
                if let Some(err) = e.children_mut().find(|c| c.name() == "error") {
                    err.append_child(Element::bare("bad-action", NS_COMMANDS));
                }
                vec![Output::Send(e)]
            }
        }
    }

    /// The command list of a call (XEP-0050 §2.2, disco#items on the commands node): the
    /// room's moderators see `end-call`, others nothing.
    pub(super) fn command_items(&self, from: &str, to: &str) -> Vec<Element> {
        let Some(call) = self.call_of(to) else { return Vec::new() };
        if !self.is_moderator(&call, from) {
            return Vec::new();
        }
        let jid = to.split('/').next().unwrap_or(to).to_string();
        vec![Element::builder("item", crate::xml::ns::DISCO_ITEMS)
            .a("jid", jid)
            .a("node", END_CALL)
            .a("name", "End the call for everyone")
            .build()]
    }

    /// The call a JID of the focus names (`room@focus.<domain>`), lower-cased as room names
    /// are; None for the focus itself or another domain.
    pub(super) fn call_of(&self, to: &str) -> Option<String> {
        match to.split_once('@') {
            Some((node, rest)) if !node.is_empty() && rest.split('/').next() == Some(self.info.domain.as_str()) => {
                Some(node.to_lowercase())
            }
            _ => None,
        }
    }
}
