//! Room registration (XEP-0045 §7.10) and reserved-nick discovery (§7.12): registering
//! makes the account a member with a reserved nick that nobody else may use.

use jid::FullJid;
use minidom::Element;

use super::affiliation::Affiliation;
use super::form::{self, Field};
use super::ns;
use super::persist::AffEntry;
use super::room::{Output, Room};
use crate::error::StanzaError;
use crate::xml::{ns as xns, AttrExt};

impl Room {
    /// The nick `bare` reserved, if any.
    pub fn reserved_nick(&self, bare: &str) -> Option<&str> {
        self.affiliations.get(bare).and_then(|e| e.nick.as_deref())
    }

    pub(super) fn register_get(&self, from: &FullJid) -> Result<Option<Element>, StanzaError> {
        let bare = from.to_bare().to_string();
        if self.affiliation(&bare) == Affiliation::Outcast {
            return Err(StanzaError::forbidden().with_text("you are banned from this room"));
        }
        let mut q = Element::builder("query", xns::REGISTER);
        if let Some(nick) = self.reserved_nick(&bare) {
            q = q
                .append(Element::bare("registered", xns::REGISTER))
                .append(Element::builder("username", xns::REGISTER).append(nick).build());
            return Ok(Some(q.build()));
        }
        if !self.config.allow_registration {
            return Err(StanzaError::not_allowed().with_text("this room does not take registrations"));
        }
        let form = form::build(
            "form",
            Some("Register with the room"),
            vec![Field::hidden("FORM_TYPE", ns::MUC_REGISTER), Field::text("muc#register_roomnick", "Nickname", "")],
        );
        Ok(Some(
            q.append(Element::builder("instructions", xns::REGISTER).append("Choose the nickname to reserve").build())
                .append(form)
                .build(),
        ))
    }

    pub(super) fn register_set(
        &mut self,
        from: &FullJid,
        query: &Element,
        out: &mut Output,
    ) -> Result<(), StanzaError> {
        let bare = from.to_bare().to_string();
        let current = self.affiliation(&bare);
        if current == Affiliation::Outcast {
            return Err(StanzaError::forbidden().with_text("you are banned from this room"));
        }
        if query.has_child("remove", xns::REGISTER) {
            if let Some(e) = self.affiliations.get_mut(&bare) {
                e.nick = None;
            }
            if current == Affiliation::Member {
                self.apply_affiliation(&bare, Affiliation::None, None, None, out);
            }
            out.save = true;
            return Ok(());
        }
        if !self.config.allow_registration || (self.config.members_only && current < Affiliation::Member) {
            return Err(StanzaError::not_allowed().with_text("this room does not take registrations"));
        }
        let nick = query
            .get_child("x", xns::DATA_FORMS)
            .and_then(|x| form::value(x, "muc#register_roomnick"))
            .or_else(|| query.get_child("username", xns::REGISTER).map(|u| u.text()))
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| StanzaError::not_acceptable().with_text("muc#register_roomnick is required"))?;
        if jid::ResourcePart::new(&nick).is_err() {
            return Err(StanzaError::jid_malformed().with_text("that nickname is not valid"));
        }
        let taken = self.affiliations.iter().any(|(j, e)| *j != bare && e.nick.as_deref() == Some(nick.as_str()))
            || self.occupants.get(&nick).is_some_and(|o| o.bare.as_str() != bare);
        if taken {
            return Err(StanzaError::conflict().with_text("that nickname is reserved by someone else"));
        }
        if current < Affiliation::Member {
            self.apply_affiliation(&bare, Affiliation::Member, None, None, out);
        }
        let entry = self.affiliations.entry(bare).or_insert(AffEntry {
            affiliation: Affiliation::Member,
            nick: None,
            reason: None,
        });
        entry.nick = Some(nick);
        out.save = true;
        Ok(())
    }
}

/// The identity answering `disco#info` with node `x-roomuser-item` (§7.12).
pub fn reserved_nick_identity(nick: &str) -> Element {
    Element::builder("identity", xns::DISCO_INFO).a("category", "conference").a("type", "text").a("name", nick).build()
}
