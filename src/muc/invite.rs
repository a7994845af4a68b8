//! Mediated invitations and declines (XEP-0045 §7.8.2, members-only rooms §7.8.2 note), and voice
//! requests with their approval by a moderator (§7.13, §8.6).
//!
//! Direct invitations (XEP-0249) go from client to client; the room has nothing to do
//! with them beyond advertising `jabber:x:conference`.

use jid::{FullJid, Jid};
use minidom::Element;

use super::affiliation::{Affiliation, Role};
use super::form::{self, Field};
use super::ns;
use super::room::{Output, Room};
use crate::error::StanzaError;
use crate::xml::{ns as xns, AttrExt};

impl Room {
    pub(super) fn invite(&mut self, from: &FullJid, msg: &Element, out: &mut Output) {
        let Some(sender) = self.occupant_of(from) else {
            return self.error(msg, StanzaError::not_acceptable().with_text("join the room to invite others"), out);
        };
        let (nick, role, affiliation) = (sender.nick.clone(), sender.role, sender.affiliation);
        if !(self.config.allow_invites || role == Role::Moderator || affiliation.is_admin()) {
            return self.error(msg, StanzaError::forbidden().with_text("only moderators may invite to this room"), out);
        }
        let Some(x) = msg.get_child("x", ns::MUC_USER) else {
            return;
        };
        let mut invitees = Vec::new();
        for inv in x.children().filter(|c| c.is("invite", ns::MUC_USER)) {
            match inv.attr("to").map(Jid::new) {
                Some(Ok(j)) => invitees.push((j, inv.get_child("reason", ns::MUC_USER).map(|r| r.text()))),
                _ => {
                    return self.error(msg, StanzaError::jid_malformed().with_text("invite to a valid JID"), out);
                }
            }
        }
        for (to, reason) in invitees {
            // §7.8.2: in a members-only room an admin's invitation makes the invitee a member.
            if self.config.members_only
                && affiliation.is_admin()
                && self.affiliation(to.to_bare().as_str()) == Affiliation::None
            {
                self.apply_affiliation(to.to_bare().as_str(), Affiliation::Member, Some(nick.clone()), None, out);
            }
            let mut invite = Element::builder("invite", ns::MUC_USER).a("from", from.to_bare().as_str());
            if let Some(r) = &reason {
                invite = invite.append(Element::builder("reason", ns::MUC_USER).append(r.as_str()).build());
            }
            let mut x = Element::builder("x", ns::MUC_USER).append(invite.build());
            if !self.config.password.is_empty() {
                x = x.append(Element::builder("password", ns::MUC_USER).append(self.config.password.as_str()).build());
            }
            let body = format!("{} invites you to the room {}", from.to_bare(), self.jid);
            let mut m = Element::builder("message", xns::CLIENT).a("from", self.jid.as_str());
            if let Some(id) = msg.attr("id") {
                m = m.a("id", id);
            }
            let m = m.append(x.build()).append(Element::builder("body", xns::CLIENT).append(body).build()).build();
            out.send(&to, m);
        }
    }

    /// §7.8.2: the invitee declines; the inviter hears it from the room.
    pub(super) fn decline(&mut self, from: &FullJid, msg: &Element, out: &mut Output) {
        let Some(d) = msg.get_child("x", ns::MUC_USER).and_then(|x| x.get_child("decline", ns::MUC_USER)) else {
            return;
        };
        let Some(Ok(to)) = d.attr("to").map(Jid::new) else {
            return self.error(msg, StanzaError::jid_malformed().with_text("decline to a valid JID"), out);
        };
        let mut decline = Element::builder("decline", ns::MUC_USER).a("from", from.to_bare().as_str());
        if let Some(r) = d.get_child("reason", ns::MUC_USER) {
            decline = decline.append(Element::builder("reason", ns::MUC_USER).append(r.text()).build());
        }
        let m = Element::builder("message", xns::CLIENT)
            .a("from", self.jid.as_str())
            .append(Element::builder("x", ns::MUC_USER).append(decline.build()).build())
            .build();
        out.send(&to, m);
    }

    /// §7.13 a visitor asks for voice (the form goes to every moderator); §8.6 a moderator
    /// answers with the same form and `muc#request_allow`.
    pub(super) fn voice_request(&mut self, from: &FullJid, msg: &Element, x: &Element, out: &mut Output) {
        let Some(sender) = self.occupant_of(from) else {
            return self.error(msg, StanzaError::not_acceptable().with_text("join the room first"), out);
        };
        let (nick, role) = (sender.nick.clone(), sender.role);
        if role == Role::Moderator {
            let Some(allow) = form::value(x, "muc#request_allow") else {
                return;
            };
            if form::parse_bool(&allow) != Some(true) {
                return;
            }
            let Some(target) = form::value(x, "muc#roomnick") else {
                return self.error(msg, StanzaError::bad_request().with_text("muc#roomnick is missing"), out);
            };
            if self.occupants.get(&target).is_some_and(|o| o.role == Role::Visitor) {
                self.apply_role(&target, Role::Participant, Some(nick), None, out);
            }
            return;
        }
        if !self.config.allow_voice_requests {
            return self.error(msg, StanzaError::forbidden().with_text("voice requests are disabled here"), out);
        }
        if role != Role::Visitor {
            return; // Already has voice.
        }
        let request = form::build(
            "form",
            Some("Voice request"),
            vec![
                Field::hidden("FORM_TYPE", ns::MUC_REQUEST),
                Field::list("muc#role", "Requested role", "participant", &[("participant", "Participant")]),
                Field::jid("muc#jid", "User ID", from.as_str()),
                Field::text("muc#roomnick", "Room nickname", &nick),
                Field::boolean("muc#request_allow", "Grant voice to this person?", false),
            ],
        );
        let m = Element::builder("message", xns::CLIENT)
            .a("from", self.jid.as_str())
            .append(
                Element::builder("body", xns::CLIENT)
                    .append(format!("{nick} asks for voice; submit the form to grant it"))
                    .build(),
            )
            .append(request)
            .build();
        for occ in self.occupants.values().filter(|o| o.role == Role::Moderator) {
            for s in &occ.sessions {
                out.send(&Jid::from(s.clone()), m.clone());
            }
        }
    }
}
