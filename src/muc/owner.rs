//! The `muc#owner` namespace (XEP-0045 §10): the configuration form, instant and reserved
//! room creation (§10.1), and destruction with an alternate venue (§10.9).

use jid::{FullJid, Jid};
use minidom::Element;

use super::affiliation::Affiliation;
use super::ns;
use super::occupant::{ItemExtra, PresenceSpec};
use super::room::{Output, Room};
use crate::error::StanzaError;
use crate::xml::{ns as xns, AttrExt};

impl Room {
    fn require_owner(&self, from: &FullJid) -> Result<(), StanzaError> {
        if self.affiliation(from.to_bare().as_str()) == Affiliation::Owner {
            Ok(())
        } else {
            Err(StanzaError::forbidden().with_text("only owners configure or destroy the room"))
        }
    }

    pub(super) fn owner_get(&self, from: &FullJid) -> Result<Option<Element>, StanzaError> {
        self.require_owner(from)?;
        let form =
            self.config.to_form(&self.owners(), &self.with_affiliation(Affiliation::Admin), self.limits.max_history);
        Ok(Some(Element::builder("query", ns::MUC_OWNER).append(form).build()))
    }

    pub(super) fn owner_set(&mut self, from: &FullJid, query: &Element, out: &mut Output) -> Result<(), StanzaError> {
        self.require_owner(from)?;
        if let Some(d) = query.get_child("destroy", ns::MUC_OWNER) {
            self.destroy(d, out);
            return Ok(());
        }
        let Some(x) = query.get_child("x", xns::DATA_FORMS) else {
            return Err(StanzaError::bad_request().with_text("send a data form or <destroy/>"));
        };
        match x.attr("type") {
            Some("submit") => {}
            Some("cancel") => {
                // §10.1.3: cancelling the initial configuration destroys the new room.
                if self.locked {
                    let d = Element::bare("destroy", ns::MUC_OWNER);
                    self.destroy(&d, out);
                }
                return Ok(());
            }
            _ => return Err(StanzaError::bad_request().with_text("the form's type must be submit or cancel")),
        }
        let was_members_only = self.config.members_only;
        let mut next = self.config.clone();
        let submitted = next.apply_form(x, self.limits.max_history)?;
        next.space.check_members(&self.local_domain)?;
        let unbound = self.config.space.is_bound() && !next.space.is_bound();
        self.config = next;
        if unbound {
            // Whom the space let in stays in: their memberships become ordinary ones the
            // owner may prune, rather than vanishing with the binding.
            self.config.space.granted.clear();
        }
        for (list, a) in [(&submitted.owners, Affiliation::Owner), (&submitted.admins, Affiliation::Admin)] {
            for j in list.iter().flatten().filter(|j| !j.trim().is_empty()) {
                let bare = Jid::new(j.trim())
                    .map_err(|_| StanzaError::jid_malformed().with_text(format!("{j} is not a valid JID")))?
                    .to_bare()
                    .to_string();
                if self.affiliation(&bare) < a {
                    self.apply_affiliation(&bare, a, None, None, out);
                }
            }
        }
        self.history.set_capacity(self.config.history_length.min(self.limits.max_history));
        let was_locked = std::mem::replace(&mut self.locked, false);
        out.save = true;
        if self.config.members_only && !was_members_only {
            // §9.3 note: non-members leave a room that becomes members-only (322).
            let outsiders: Vec<String> = self
                .occupants
                .values()
                .filter(|o| o.affiliation < Affiliation::Member)
                .map(|o| o.nick.clone())
                .collect();
            for nick in outsiders {
                self.remove_occupant(&nick, &[322], &ItemExtra::default(), out);
            }
        }
        if !was_locked && !submitted.codes.is_empty() {
            self.notice(&submitted.codes, out);
        }
        Ok(())
    }

    /// §10.9: every occupant gets its own unavailable carrying `<destroy/>` (with the
    /// alternate venue and reason), then the room is gone.
    pub(super) fn destroy(&mut self, d: &Element, out: &mut Output) {
        let mut b = Element::builder("destroy", ns::MUC_USER);
        if let Some(j) = d.attr("jid") {
            b = b.a("jid", j);
        }
        for (name, _) in [("reason", ()), ("password", ())] {
            if let Some(c) = d.get_child(name, ns::MUC_OWNER) {
                b = b.append(Element::builder(name, ns::MUC_USER).append(c.text()).build());
            }
        }
        let destroy = b.build();
        let extra = ItemExtra::default();
        for occ in self.occupants.values_mut() {
            occ.affiliation = Affiliation::None;
            occ.role = super::affiliation::Role::None;
        }
        for occ in self.occupants.values() {
            let from = self.occupant_jid(&occ.nick);
            let spec =
                PresenceSpec { from: &from, unavailable: true, codes: &[110], extra: &extra, destroy: Some(&destroy) };
            let p = occ.presence(&spec, true);
            for s in &occ.sessions {
                out.send(&Jid::from(s.clone()), p.clone());
            }
        }
        self.occupants.clear();
        self.by_session.clear();
        self.awaiting.clear();
        self.affiliations.clear();
        self.config.space.granted.clear();
        self.created = false;
        self.locked = false;
        self.config.persistent = false;
        out.destroyed = true;
    }

    /// §7.2 / XEP-0045 §14 (service shutdown): every occupant learns it left with 332.
    pub fn shutdown(&mut self, out: &mut Output) {
        let extra = ItemExtra::default();
        for occ in self.occupants.values() {
            let from = self.occupant_jid(&occ.nick);
            let spec =
                PresenceSpec { from: &from, unavailable: true, codes: &[110, 332], extra: &extra, destroy: None };
            let p = occ.presence(&spec, true);
            for s in &occ.sessions {
                out.send(&Jid::from(s.clone()), p.clone());
            }
        }
        self.occupants.clear();
        self.by_session.clear();
        self.awaiting.clear();
    }
}
