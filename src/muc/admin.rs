//! The `muc#admin` lists and changes (XEP-0045 §8 moderator use cases, §9 admin, §10
//! owner affiliation lists): kick, voice, ban, membership, moderator, admin, owner.
//!
//! A set is checked as a whole before anything changes, so a list with one forbidden
//! item changes nothing and the error is the XEP's for that item.

use jid::{BareJid, FullJid};
use minidom::Element;

use super::affiliation::{self, Affiliation, Role};
use super::ns;
use super::occupant::ItemExtra;
use super::room::{Output, Room};
use crate::error::StanzaError;
use crate::xml::AttrExt;

enum Change {
    Role { nick: String, role: Role, reason: Option<String> },
    Affiliation { bare: String, affiliation: Affiliation, reason: Option<String> },
}

impl Room {
    pub(super) fn admin_get(&self, from: &FullJid, query: &Element) -> Result<Option<Element>, StanzaError> {
        let item = query.get_child("item", ns::MUC_ADMIN).ok_or_else(|| {
            StanzaError::bad_request().with_text("ask for a list with <item affiliation='...'/> or <item role='...'/>")
        })?;
        let standing = self.standing(from);
        let mut q = Element::builder("query", ns::MUC_ADMIN);
        if let Some(a) = item.attr("affiliation") {
            let a = Affiliation::parse(a).ok_or_else(|| StanzaError::bad_request().with_text("unknown affiliation"))?;
            let members_see_members = a == Affiliation::Member && standing.affiliation >= Affiliation::Member;
            if !members_see_members {
                affiliation::may_read_affiliation_list(standing.affiliation)?;
            }
            for (jid, e) in self.affiliations.iter().filter(|(_, e)| e.affiliation == a) {
                let mut i = Element::builder("item", ns::MUC_ADMIN).a("affiliation", a.name()).a("jid", jid.as_str());
                if let Some(n) = &e.nick {
                    i = i.a("nick", n.as_str());
                }
                if let Some(r) = &e.reason {
                    i = i.append(Element::builder("reason", ns::MUC_ADMIN).append(r.as_str()).build());
                }
                q = q.append(i.build());
            }
        } else if let Some(r) = item.attr("role") {
            let r = Role::parse(r).ok_or_else(|| StanzaError::bad_request().with_text("unknown role"))?;
            affiliation::may_read_role_list(standing.role)?;
            for o in self.occupants.values().filter(|o| o.role == r) {
                let mut i = Element::builder("item", ns::MUC_ADMIN)
                    .a("role", r.name())
                    .a("nick", o.nick.as_str())
                    .a("affiliation", o.affiliation.name());
                if let Some(s) = o.sessions.first() {
                    i = i.a("jid", s.as_str());
                }
                q = q.append(i.build());
            }
        } else {
            return Err(StanzaError::bad_request().with_text("the item needs an affiliation or a role"));
        }
        Ok(Some(q.build()))
    }

    pub(super) fn admin_set(&mut self, from: &FullJid, query: &Element, out: &mut Output) -> Result<(), StanzaError> {
        let actor = self.standing(from);
        let actor_nick = self.occupant_of(from).map(|o| o.nick.clone());
        let mut changes = Vec::new();
        for item in query.children().filter(|c| c.is("item", ns::MUC_ADMIN)) {
            let reason = item.get_child("reason", ns::MUC_ADMIN).map(|r| r.text());
            if let Some(a) = item.attr("affiliation") {
                let new =
                    Affiliation::parse(a).ok_or_else(|| StanzaError::bad_request().with_text("unknown affiliation"))?;
                let bare = match (item.attr("jid"), item.attr("nick")) {
                    (Some(j), _) => BareJid::new(j)
                        .or_else(|_| jid::Jid::new(j).map(|j| j.to_bare()))
                        .map_err(|_| StanzaError::jid_malformed().with_text("the item's jid is not a valid JID"))?
                        .to_string(),
                    (None, Some(n)) => self
                        .occupants
                        .get(n)
                        .map(|o| o.bare.to_string())
                        .ok_or_else(|| StanzaError::item_not_found().with_text("no occupant with that nick"))?,
                    (None, None) => return Err(StanzaError::bad_request().with_text("the item needs a jid")),
                };
                affiliation::may_set_affiliation(actor.affiliation, self.affiliation(&bare), new)?;
                changes.push(Change::Affiliation { bare, affiliation: new, reason });
            } else if let Some(r) = item.attr("role") {
                let role = Role::parse(r).ok_or_else(|| StanzaError::bad_request().with_text("unknown role"))?;
                let nick = item
                    .attr("nick")
                    .ok_or_else(|| StanzaError::bad_request().with_text("a role change names a nick"))?;
                let target = self
                    .occupants
                    .get(nick)
                    .ok_or_else(|| StanzaError::item_not_found().with_text("no occupant with that nick"))?;
                let ts = affiliation::Standing { affiliation: target.affiliation, role: target.role };
                affiliation::may_set_role(actor, ts, role)?;
                changes.push(Change::Role { nick: nick.to_string(), role, reason });
            } else {
                return Err(StanzaError::bad_request().with_text("each item needs an affiliation or a role"));
            }
        }
        if changes.is_empty() {
            return Err(StanzaError::bad_request().with_text("no item to change"));
        }
        // §10.6 / §10.7: the room must keep an owner.
        let mut owners: Vec<String> = self.owners();
        for c in &changes {
            if let Change::Affiliation { bare, affiliation, .. } = c {
                owners.retain(|o| o != bare);
                if *affiliation == Affiliation::Owner {
                    owners.push(bare.clone());
                }
            }
        }
        if owners.is_empty() {
            return Err(StanzaError::conflict().with_text("the room must keep at least one owner"));
        }
        for c in changes {
            match c {
                Change::Role { nick, role, reason } => self.apply_role(&nick, role, actor_nick.clone(), reason, out),
                Change::Affiliation { bare, affiliation, reason } => {
                    self.apply_affiliation(&bare, affiliation, actor_nick.clone(), reason, out)
                }
            }
        }
        Ok(())
    }

    /// Give occupant `nick` a role; `Role::None` kicks it (§8.2, status 307).
    pub(super) fn apply_role(
        &mut self,
        nick: &str,
        role: Role,
        actor: Option<String>,
        reason: Option<String>,
        out: &mut Output,
    ) {
        let extra = ItemExtra { nick: None, actor, reason };
        if role == Role::None {
            return self.remove_occupant(nick, &[307], &extra, out);
        }
        if let Some(o) = self.occupants.get_mut(nick) {
            o.role = role;
        }
        self.broadcast_presence(nick, false, &[], &extra, None, out);
    }

    /// Change a JID's affiliation and what it means for it if present (§9.1 ban: 301,
    /// §9.4 removed from a members-only room: 321).
    pub(super) fn apply_affiliation(
        &mut self,
        bare: &str,
        a: Affiliation,
        actor: Option<String>,
        reason: Option<String>,
        out: &mut Output,
    ) {
        self.set_affiliation(bare, a, reason.clone());
        out.save = true;
        let present: Vec<String> =
            self.occupants.values().filter(|o| o.bare.as_str() == bare).map(|o| o.nick.clone()).collect();
        if present.is_empty() {
            self.notify_absent_change(bare, a, out);
        }
        let extra = ItemExtra { nick: None, actor, reason };
        for nick in present {
            if a == Affiliation::Outcast {
                self.remove_occupant(&nick, &[301], &extra, out);
            } else if self.config.members_only && a < Affiliation::Member {
                self.remove_occupant(&nick, &[321], &extra, out);
            } else {
                let role = a.default_role(self.config.moderated);
                if let Some(o) = self.occupants.get_mut(&nick) {
                    // Keep voice granted by a moderator when the affiliation does not decide.
                    o.role = if o.role == Role::Participant && role == Role::Visitor { o.role } else { role };
                }
                self.broadcast_presence(&nick, false, &[], &extra, None, out);
            }
        }
    }

    /// §9.x note: when the affiliation of someone not in the room changes, those who may
    /// see real JIDs (moderators, or everyone in a non-anonymous room) are told by message.
    fn notify_absent_change(&self, bare: &str, a: Affiliation, out: &mut Output) {
        let mut x = Element::builder("x", ns::MUC_USER)
            .append(Element::builder("item", ns::MUC_USER).a("affiliation", a.name()).a("jid", bare).build());
        if a == Affiliation::Outcast {
            x = x.append(Element::builder("status", ns::MUC_USER).a("code", "301").build());
        }
        let msg =
            Element::builder("message", crate::xml::ns::CLIENT).a("from", self.jid.as_str()).append(x.build()).build();
        for occ in self.occupants.values().filter(|o| self.config.whois_anyone || o.role == Role::Moderator) {
            for s in &occ.sessions {
                out.send(&jid::Jid::from(s.clone()), msg.clone());
            }
        }
    }
}
