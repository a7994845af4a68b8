//! Messages (XEP-0045 §7.4 groupchat, §7.5 private, §8.1 subject) with stable stanza ids
//! (XEP-0359) and occupant ids (XEP-0421), kept for history and the archive.

use jid::{FullJid, Jid};
use minidom::Element;

use super::affiliation::Role;
use super::archive::{Archived, Tombstone};
use super::config::AllowPm;
use super::ns;
use super::room::{Output, Room};
use crate::error::StanzaError;
use crate::xml::{ns as xns, AttrExt};

impl Room {
    pub(super) fn message(&mut self, from: FullJid, nick: Option<String>, msg: Element, now_ms: u64, out: &mut Output) {
        let ty = msg.attr("type").unwrap_or("normal");
        match (nick, ty) {
            (_, "error") => {}
            (None, "groupchat") => self.groupchat(&from, msg, now_ms, out),
            (None, _) => self.message_to_room(&from, msg, out),
            (Some(_), "groupchat") => self.error(
                &msg,
                StanzaError::bad_request().with_text("send groupchat messages to the room, not to an occupant"),
                out,
            ),
            (Some(nick), _) => self.private_message(&from, &nick, msg, out),
        }
    }

    fn groupchat(&mut self, from: &FullJid, msg: Element, now_ms: u64, out: &mut Output) {
        let Some(sender) = self.occupant_of(from) else {
            return self.error(
                &msg,
                StanzaError::not_acceptable().with_text("join the room before sending to it"),
                out,
            );
        };
        let (nick, role, bare, occupant_id) =
            (sender.nick.clone(), sender.role, sender.bare.to_string(), sender.occupant_id.clone());
        let has_body = msg.has_child("body", xns::CLIENT);
        if let (Some(subject), false) = (msg.get_child("subject", xns::CLIENT), has_body) {
            let may = role == Role::Moderator || (self.config.change_subject && role >= Role::Participant);
            if !may {
                return self.error(&msg, StanzaError::forbidden().with_text("you may not change the subject"), out);
            }
            self.subject = super::persist::Subject { text: subject.text(), nick };
            out.save = true;
            let m = self.subject_message();
            return self.to_all(&m, out);
        }
        if role < Role::Participant {
            return self.error(&msg, StanzaError::forbidden().with_text("you need voice to speak in this room"), out);
        }
        let id = (self.ids)();
        let stanza_id = format!("{id:016x}");
        let mut b = Element::builder("message", xns::CLIENT).a("from", self.occupant_jid(&nick)).a("type", "groupchat");
        if let Some(i) = msg.attr("id") {
            b = b.a("id", i);
        }
        let room = self.jid.to_string();
        let m = b
            .append_all(msg.children().filter(|c| !self.added_by_room(c)).cloned())
            .append(Element::builder("stanza-id", ns::SID).a("id", stanza_id.as_str()).a("by", room.as_str()).build())
            .append(Element::builder("occupant-id", ns::OCCUPANT_ID).a("id", occupant_id.as_str()).build())
            .build();
        self.to_all(&m, out);
        // XEP-0424: the author retracts an earlier message of theirs.
        if let Some(r) = msg.get_child("retract", ns::RETRACT).and_then(|r| r.attr("id")) {
            if let Ok(target) = u64::from_str_radix(r, 16) {
                let mine = |m: &Element| {
                    let oid = m.get_child("occupant-id", ns::OCCUPANT_ID).and_then(|o| o.attr("id"));
                    (oid == Some(occupant_id.as_str())).then(|| super::moderation::tombstone_of(m, None, None))
                };
                self.history.replace(r, mine);
                out.tombstones.push(Tombstone { id: target, author: Some(bare.clone()), by: None, reason: None });
            }
        }
        if !has_body {
            return; // Chat states and receipts are not history.
        }
        self.history.push(m.clone(), now_ms);
        if self.archiving() {
            out.archive.push(Archived {
                id,
                at_ms: now_ms,
                nick,
                real: bare,
                occupant_id,
                xml: String::from_utf8_lossy(&crate::xml::write::element_bytes(&m)).into_owned(),
                retracted: false,
            });
        }
    }

    /// Children a client may not forge: the room's own stanza-id, occupant-ids, muc#user.
    fn added_by_room(&self, c: &Element) -> bool {
        (c.is("stanza-id", ns::SID) && c.attr("by") == Some(self.jid.as_str()))
            || c.is("occupant-id", ns::OCCUPANT_ID)
            || c.is("x", ns::MUC_USER)
    }

    /// The subject as sent on join and on change (§8.1): always present, empty if unset.
    pub(super) fn subject_message(&self) -> Element {
        let from =
            if self.subject.nick.is_empty() { self.jid.to_string() } else { self.occupant_jid(&self.subject.nick) };
        Element::builder("message", xns::CLIENT)
            .a("from", from)
            .a("type", "groupchat")
            .a("id", format!("subject-{}", self.history.len()))
            .append(Element::builder("subject", xns::CLIENT).append(self.subject.text.as_str()).build())
            .build()
    }

    /// §7.5: to one occupant, from our occupant JID; permitted by `allowpm`.
    fn private_message(&mut self, from: &FullJid, nick: &str, msg: Element, out: &mut Output) {
        let Some(sender) = self.occupant_of(from) else {
            return self.error(
                &msg,
                StanzaError::not_acceptable().with_text("join the room to send private messages"),
                out,
            );
        };
        let allowed = match self.config.allow_pm {
            AllowPm::Anyone => true,
            AllowPm::Participants => sender.role >= Role::Participant,
            AllowPm::Moderators => sender.role == Role::Moderator,
            AllowPm::None => false,
        };
        if !allowed {
            return self.error(
                &msg,
                StanzaError::not_allowed().with_text("private messages are not allowed here"),
                out,
            );
        }
        let Some(target) = self.occupants.get(nick) else {
            return self.error(&msg, StanzaError::item_not_found().with_text("no occupant with that nick"), out);
        };
        let mut b = Element::builder("message", xns::CLIENT)
            .a("from", self.occupant_jid(&sender.nick))
            .a("type", msg.attr("type").unwrap_or("chat"));
        if let Some(i) = msg.attr("id") {
            b = b.a("id", i);
        }
        let m = b
            .append_all(msg.children().filter(|c| !self.added_by_room(c)).cloned())
            .append(Element::bare("x", ns::MUC_USER))
            .append(Element::builder("occupant-id", ns::OCCUPANT_ID).a("id", sender.occupant_id.as_str()).build())
            .build();
        for s in &target.sessions {
            out.send(&Jid::from(s.clone()), m.clone());
        }
    }

    /// A non-groupchat message to the room itself: invitations, declines, voice requests.
    fn message_to_room(&mut self, from: &FullJid, msg: Element, out: &mut Output) {
        if let Some(x) = msg.get_child("x", ns::MUC_USER) {
            if x.has_child("invite", ns::MUC_USER) {
                return self.invite(from, &msg, out);
            }
            if x.has_child("decline", ns::MUC_USER) {
                return self.decline(from, &msg, out);
            }
        }
        if let Some(form) = msg.get_child("x", xns::DATA_FORMS) {
            if super::form::form_type(form).as_deref() == Some(ns::MUC_REQUEST) {
                return self.voice_request(from, &msg, form, out);
            }
        }
        self.error(&msg, StanzaError::bad_request().with_text("messages to the room itself must be groupchat"), out);
    }
}
