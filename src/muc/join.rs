//! Entering, leaving, changing nick and presence (XEP-0045 §7.1–§7.7, §10.1 creation).

use jid::{FullJid, Jid};
use minidom::Element;

use super::affiliation::{Affiliation, Role};
use super::history::Request;
use super::ns;
use super::occupant::{presence_payload, ItemExtra, Occupant, PresenceSpec};
use super::room::{Output, Room};
use super::space::{Answer, SpaceStep};
use crate::error::StanzaError;

impl Room {
    pub(super) fn presence(
        &mut self,
        from: FullJid,
        nick: Option<String>,
        presence: Element,
        now_ms: u64,
        out: &mut Output,
    ) {
        let ty = presence.attr("type");
        match (ty, nick) {
            (None, None) => self.error(
                &presence,
                StanzaError::jid_malformed().with_text("join with a nickname: room@service/nick"),
                out,
            ),
            (None, Some(nick)) => {
                let current = self.by_session.get(from.as_str()).cloned();
                match current {
                    None => self.join(from, nick, presence, now_ms, None, out),
                    Some(cur) if cur != nick && self.reserved_nick(from.to_bare().as_str()) != Some(cur.as_str()) => {
                        self.change_nick(cur, nick, presence, out)
                    }
                    Some(_) if presence.has_child("x", ns::MUC) => self.resync(&from, &presence, now_ms, out),
                    Some(cur) => self.update_presence(&cur, &presence, out),
                }
            }
            // A join still waiting for the directory is forgotten: its answer finds nothing.
            (Some("unavailable" | "error"), _) if self.awaiting.contains_key(from.as_str()) => {
                self.awaiting.remove(from.as_str());
            }
            // Any unavailable from a joined session is its exit: the nick it names may be
            // the one it asked for before the room assigned another (210) or an old one.
            (Some("unavailable"), Some(_)) if self.by_session.contains_key(from.as_str()) => {
                let status = presence_payload(&presence);
                self.leave(&from, status, out);
            }
            // An error in answer to something the room sent: the client is gone (§7.2.3
            // "ghost" occupants); treat it as leaving.
            (Some("error"), _) if self.by_session.contains_key(from.as_str()) => {
                self.leave(&from, Vec::new(), out);
            }
            _ => {}
        }
    }

    /// §7.2: the checks, in the order the XEP's error examples give, then the broadcast.
    /// In a space-bound room the binding decides before members-only does; without the
    /// directory's `answer` the join is parked and the shell asked for it (`space.rs`).
    pub(super) fn join(
        &mut self,
        from: FullJid,
        asked: String,
        presence: Element,
        now_ms: u64,
        answer: Option<Answer>,
        out: &mut Output,
    ) {
        let bare = from.to_bare();
        // §7.2.9: an account with a registered nick enters under it, told so by 210.
        let nick = self.reserved_nick(bare.as_str()).map(str::to_string).unwrap_or_else(|| asked.clone());
        let mut codes: Vec<u16> = if nick != asked { vec![210] } else { Vec::new() };
        let muc_x = presence.get_child("x", ns::MUC);
        let creating = !self.created;
        if creating {
            // §10.1.1: the first to enter creates the room and owns it; it stays locked.
            // A client without the MUC extension (groupchat 1.0, §7.2.1 note) cannot
            // configure it, so it gets an instant room at once.
            self.created = true;
            self.locked = muc_x.is_some();
            self.set_affiliation(bare.as_str(), Affiliation::Owner, None);
            // An instant room exists from now on (persistent if that is the default).
            out.save = !self.locked;
        }
        let mut affiliation = self.affiliation(bare.as_str());
        let refuse = |err: StanzaError| Err::<(), _>(err);
        let early = if self.locked && affiliation != Affiliation::Owner {
            refuse(StanzaError::item_not_found().with_text("the room is locked until its owner configures it"))
        } else if affiliation == Affiliation::Outcast {
            refuse(StanzaError::forbidden().with_text("you are banned from this room"))
        } else if self.occupants.get(&nick).is_some_and(|o| o.bare != bare)
            || self.reserved_by_other(&nick, bare.as_str())
        {
            refuse(StanzaError::conflict().with_text("that nickname is in use or reserved"))
        } else {
            Ok(())
        };
        if let Err(e) = early {
            return self.error(&presence, e, out);
        }
        let space_role = if self.config.space.is_bound() && !affiliation.is_admin() {
            match self.space_step(&from, &presence, answer, out) {
                SpaceStep::Parked => return,
                SpaceStep::Refused(e) => return self.error(&presence, e, out),
                SpaceStep::Enter(role) => {
                    if role.is_some() {
                        // Qualified: a member for the members-only check below.
                        affiliation = affiliation.max(Affiliation::Member);
                    }
                    role
                }
            }
        } else {
            None
        };
        let check = if self.config.members_only && affiliation < Affiliation::Member {
            refuse(StanzaError::registration_required().with_text("this room is for members only"))
        } else if !self.config.password.is_empty()
            && affiliation < Affiliation::Admin
            && muc_x.and_then(|x| x.get_child("password", ns::MUC)).map(|p| p.text()).as_deref()
                != Some(self.config.password.as_str())
        {
            refuse(StanzaError::not_authorized().with_text("a password is required to enter"))
        } else if !self.occupants.contains_key(&nick)
            && self.limits.service_full.load(std::sync::atomic::Ordering::Relaxed)
        {
            refuse(StanzaError::service_unavailable().with_type(crate::error::ErrorType::Wait).with_text(
                "Capacité atteinte : le service accueille déjà autant de participants qu'il le peut. \
                 Capacity reached: the service is hosting as many participants as it can; try again later.",
            ))
        } else if !self.occupants.contains_key(&nick) && affiliation < Affiliation::Admin && self.is_full() {
            refuse(
                StanzaError::service_unavailable()
                    .with_type(crate::error::ErrorType::Wait)
                    .with_text("the room is full"),
            )
        } else {
            Ok(())
        };
        if let Err(e) = check {
            return self.error(&presence, e, out);
        }
        if space_role.is_some() && self.affiliation(bare.as_str()) < Affiliation::Member {
            self.materialise(bare.as_str(), out);
        }
        let history = Request::from_join(muc_x);
        if let Some(occ) = self.occupants.get_mut(&nick) {
            // Another session of the same account joins under the same nick.
            occ.sessions.push(from.clone());
            self.by_session.insert(from.to_string(), nick.clone());
            return self.send_state(&from, &nick, &history, &codes, now_ms, out);
        }
        let occupant = Occupant {
            nick: nick.clone(),
            occupant_id: super::occupant_id::occupant_id(&self.secret, self.jid.as_str(), bare.as_str()),
            bare,
            sessions: vec![from.clone()],
            presence: presence_payload(&presence),
            role: space_role.into_iter().fold(affiliation.default_role(self.config.moderated), Role::max),
            affiliation,
        };
        self.occupants.insert(nick.clone(), occupant);
        self.by_session.insert(from.to_string(), nick.clone());
        // Existing occupants learn of the newcomer (one presence each: O(n)).
        self.broadcast_presence(&nick, false, &[], &ItemExtra::default(), Some(&from), out);
        if creating {
            codes.push(201);
        }
        self.send_state(&from, &nick, &history, &codes, now_ms, out);
    }

    fn is_full(&self) -> bool {
        let room_max = if self.config.max_users == 0 { usize::MAX } else { self.config.max_users };
        self.occupants.len() >= room_max.min(self.limits.max_occupants)
    }

    fn reserved_by_other(&self, nick: &str, bare: &str) -> bool {
        self.affiliations.iter().any(|(j, e)| j != bare && e.nick.as_deref() == Some(nick))
    }

    /// What a joining session gets (§7.2.3–§7.2.16): everyone's presence, its own with the
    /// status codes, the history, then the subject.
    fn send_state(
        &self,
        to: &FullJid,
        nick: &str,
        history: &Request,
        extra_codes: &[u16],
        now_ms: u64,
        out: &mut Output,
    ) {
        let dest = Jid::from(to.clone());
        let sees = self.config.whois_anyone || self.occupants.get(nick).is_some_and(|o| o.role == Role::Moderator);
        let none = ItemExtra::default();
        for occ in self.occupants.values().filter(|o| o.nick != nick && self.config.broadcasts(o.role)) {
            let from = self.occupant_jid(&occ.nick);
            let spec = PresenceSpec { from: &from, unavailable: false, codes: &[], extra: &none, destroy: None };
            out.send(&dest, occ.presence(&spec, sees));
        }
        let mut codes = vec![110];
        if self.config.whois_anyone {
            codes.push(100);
        }
        if self.archiving() {
            codes.push(170);
        }
        codes.extend_from_slice(extra_codes);
        if let Some(me) = self.occupants.get(nick) {
            let from = self.occupant_jid(nick);
            let spec = PresenceSpec { from: &from, unavailable: false, codes: &codes, extra: &none, destroy: None };
            out.send(&dest, me.presence(&spec, true));
        }
        for m in self.history.select(history, now_ms, self.jid.as_str()) {
            out.send(&dest, m);
        }
        out.send(&dest, self.subject_message());
    }

    /// A client that is joined and joins again (it lost track, e.g. after a reconnect
    /// with the same resource): send it the room again, as if it had just joined.
    fn resync(&mut self, from: &FullJid, presence: &Element, now_ms: u64, out: &mut Output) {
        let Some(nick) = self.by_session.get(from.as_str()).cloned() else {
            return;
        };
        if let Some(o) = self.occupants.get_mut(&nick) {
            o.presence = presence_payload(presence);
        }
        let history = Request::from_join(presence.get_child("x", ns::MUC));
        self.send_state(from, &nick, &history, &[], now_ms, out);
    }

    fn update_presence(&mut self, nick: &str, presence: &Element, out: &mut Output) {
        if let Some(o) = self.occupants.get_mut(nick) {
            o.presence = presence_payload(presence);
        }
        self.broadcast_presence(nick, false, &[], &ItemExtra::default(), None, out);
    }

    /// §7.6: unavailable with 303 and the new nick, then available under the new nick.
    fn change_nick(&mut self, old: String, new: String, presence: Element, out: &mut Output) {
        let Some(occ) = self.occupants.get(&old) else {
            return;
        };
        let bare = occ.bare.to_string();
        if self.occupants.contains_key(&new) || self.reserved_by_other(&new, &bare) {
            return self.error(
                &presence,
                StanzaError::conflict().with_text("that nickname is in use or reserved"),
                out,
            );
        }
        let extra = ItemExtra { nick: Some(new.clone()), ..Default::default() };
        self.broadcast_presence(&old, true, &[303], &extra, None, out);
        let Some(mut occ) = self.occupants.remove(&old) else {
            return;
        };
        occ.nick = new.clone();
        occ.presence = presence_payload(&presence);
        for s in &occ.sessions {
            self.by_session.insert(s.to_string(), new.clone());
        }
        self.occupants.insert(new.clone(), occ);
        self.broadcast_presence(&new, false, &[], &ItemExtra::default(), None, out);
    }

    /// One session leaves; the occupant leaves with its last session (§7.14).
    pub(super) fn leave(&mut self, from: &FullJid, status: Vec<Element>, out: &mut Output) {
        let Some(nick) = self.by_session.remove(from.as_str()) else {
            return;
        };
        let Some(occ) = self.occupants.get_mut(&nick) else {
            return;
        };
        occ.sessions.retain(|s| s != from);
        if !occ.sessions.is_empty() {
            // Only the leaving session hears that it left.
            let mut one = occ.clone();
            one.sessions = vec![from.clone()];
            let room_nick = self.occupant_jid(&nick);
            let none = ItemExtra::default();
            let spec = PresenceSpec { from: &room_nick, unavailable: true, codes: &[110], extra: &none, destroy: None };
            return out.send(&Jid::from(from.clone()), one.presence(&spec, true));
        }
        occ.sessions.push(from.clone());
        occ.presence = status;
        self.remove_occupant(&nick, &[], &ItemExtra::default(), out);
    }

    /// Broadcast an occupant's unavailable (with `codes`, e.g. 307 kicked) and forget it.
    pub(super) fn remove_occupant(&mut self, nick: &str, codes: &[u16], extra: &ItemExtra, out: &mut Output) {
        self.broadcast_presence(nick, true, codes, extra, None, out);
        if let Some(occ) = self.occupants.remove(nick) {
            for s in &occ.sessions {
                self.by_session.remove(s.as_str());
            }
        }
    }

    /// The presence of occupant `nick` to everyone in the room, built at most four times
    /// (with or without the real JID, self or others) and cloned per recipient: a join is
    /// O(occupants). `skip` leaves out one session (the newcomer, served by `send_state`).
    pub(super) fn broadcast_presence(
        &self,
        nick: &str,
        unavailable: bool,
        codes: &[u16],
        extra: &ItemExtra,
        skip: Option<&FullJid>,
        out: &mut Output,
    ) {
        let Some(subject) = self.occupants.get(nick) else {
            return;
        };
        let from = self.occupant_jid(nick);
        let spec = PresenceSpec { from: &from, unavailable, codes, extra, destroy: None };
        let mut self_codes = vec![110];
        self_codes.extend_from_slice(codes);
        let self_spec = PresenceSpec { from: &from, unavailable, codes: &self_codes, extra, destroy: None };
        let own = subject.presence(&self_spec, true);
        // A role that is not broadcast is seen only by itself (roles change with voice and
        // kicks, so an unavailable still goes to everyone: it may end a shown presence).
        if !unavailable && !self.config.broadcasts(subject.role) {
            for s in subject.sessions.iter().filter(|s| Some(*s) != skip) {
                out.send(&Jid::from(s.clone()), own.clone());
            }
            return;
        }
        let plain = subject.presence(&spec, false);
        let with_jid = subject.presence(&spec, true);
        for occ in self.occupants.values() {
            let el = if occ.nick == nick {
                &own
            } else if self.config.whois_anyone || occ.role == Role::Moderator {
                &with_jid
            } else {
                &plain
            };
            for s in occ.sessions.iter().filter(|s| Some(*s) != skip) {
                out.send(&Jid::from(s.clone()), el.clone());
            }
        }
    }

    /// Set (or clear, with `None` affiliation) a JID's affiliation, keeping a reserved nick.
    pub(super) fn set_affiliation(&mut self, bare: &str, a: Affiliation, reason: Option<String>) {
        let entry = self.affiliations.entry(bare.to_string()).or_insert(super::persist::AffEntry {
            affiliation: a,
            nick: None,
            reason: None,
        });
        entry.affiliation = a;
        entry.reason = reason;
        // Whoever sets an affiliation by hand makes it theirs, no longer the space's.
        self.config.space.granted.remove(bare);
        if a == Affiliation::None && entry.nick.is_none() {
            self.affiliations.remove(bare);
        }
        for occ in self.occupants.values_mut().filter(|o| o.bare.as_str() == bare) {
            occ.affiliation = a;
        }
    }
}
