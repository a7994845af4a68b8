//! Space-bound rooms ("collaboration spaces", issue 7): a room bound to directory groups,
//! profiles (attribute values of the directory entry) and individual members admits them,
//! and only them, with a default role (moderator unless the owner says participant).
//!
//! ## As standard MUC
//! The binding is part of the room's configuration, edited through the owner's
//! configuration form (XEP-0045 §10.2) with four `amphi#space_*` fields, so any client that
//! shows data forms (Gajim, Converse.js...) can edit it (xep/amphi-spaces.md). A bound room
//! is members-only. Whoever qualifies when they enter is written down as a `member`
//! (and noted in [`Space::granted`]), so clients see
//! them in the member list (muc#admin §9.5) like any other member; whoever no longer
//! qualifies is refused with `registration-required` and that membership is dropped.
//! Owners and admins, and members the owner added by hand, are the owner's own decisions
//! and stay what they are whatever the directory says; members added by hand get the
//! ordinary member role unless they also qualify.
//!
//! ## Decided at each join, from the current entry
//! The room core (here and `join.rs`) never reads a directory: a join that needs the
//! user's entry is parked in the room and [`super::room::Output::lookups`] asks the shell
//! for it; the shell looks the user up (`auth::current_entry`: the LDAP directory itself
//! for LDAP users, the recorded entry for others) and hands back an [`Answer`] through
//! `Room::admit`. Nothing is cached, so a change in the directory, or an owner narrowing
//! the binding, counts at the next join; occupants already inside stay until they leave.
//! Individual members listed in the binding need no lookup.
//!
//! ## Who can never qualify
//! Guests of invitation links (`guest-…`), JIDs of other servers and names that are not
//! accounts here: the form refuses them as individual members, and the shell answers
//! [`Answer::NotLocal`] for them, which qualifies nobody.

use jid::{BareJid, FullJid};
use minidom::Element;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use super::affiliation::{Affiliation, Role};
use super::room::{Output, Room, MAX_AWAITING};
use crate::auth::DirectoryEntry;
use crate::error::StanzaError;

/// Most values in each list of a binding, and the longest value: a form is small.
pub const MAX_ITEMS: usize = 200;
pub const MAX_VALUE_LEN: usize = 512;

/// The role a space's people get on entering.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpaceRole {
    /// Agents of a space run their own meetings: moderator is the default.
    #[default]
    Moderator,
    Participant,
}

impl SpaceRole {
    pub fn role(self) -> Role {
        match self {
            SpaceRole::Moderator => Role::Moderator,
            SpaceRole::Participant => Role::Participant,
        }
    }

    pub fn name(self) -> &'static str {
        self.role().name()
    }

    pub fn parse(s: &str) -> Option<SpaceRole> {
        match s.trim() {
            "moderator" => Some(SpaceRole::Moderator),
            "participant" => Some(SpaceRole::Participant),
            _ => None,
        }
    }
}

/// One profile: an attribute of the directory entry and a value it must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub attribute: String,
    pub value: String,
}

impl Profile {
    /// `attribute=value`, e.g. `departmentNumber=42` or `title=inspecteur`.
    pub fn parse(s: &str) -> Option<Profile> {
        let (attribute, value) = s.split_once('=')?;
        let (attribute, value) = (attribute.trim(), value.trim());
        // RFC 4512 §2.5 attribute descriptions: letters, digits, hyphens (and options).
        let valid = !attribute.is_empty()
            && attribute.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';' || c == '.');
        (valid && !value.is_empty()).then(|| Profile { attribute: attribute.into(), value: value.into() })
    }

    pub fn text(&self) -> String {
        format!("{}={}", self.attribute, self.value)
    }

    /// Attribute names compare case-insensitively (RFC 4512 §2.5); values too, as most
    /// directory string attributes match with caseIgnoreMatch.
    fn matches(&self, entry: &DirectoryEntry) -> bool {
        entry
            .profile
            .iter()
            .filter(|(a, _)| a.eq_ignore_ascii_case(&self.attribute))
            .flat_map(|(_, values)| values)
            .any(|v| same_text(v, &self.value))
    }
}

/// A room's binding. Empty lists everywhere: the room is not bound.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Space {
    /// Group names (`cn`) or full group DNs.
    pub groups: Vec<String>,
    pub profiles: Vec<Profile>,
    /// Bare JIDs of local accounts, normalised.
    pub members: Vec<String>,
    pub role: SpaceRole,
    /// Bare JIDs whose `member` affiliation the binding granted (materialised at a join),
    /// as opposed to one an owner or admin set by hand: only these are dropped when the
    /// user no longer qualifies. Kept with the binding, in the stored room's config, so a
    /// room stored before spaces existed loads with every affiliation explicit. Not part
    /// of the form.
    pub granted: BTreeSet<String>,
}

/// What the shell found out about a joining user, for [`Space::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The user's directory entry: read just now, or recorded at their last sign-in.
    Entry(DirectoryEntry),
    /// A local account the directory has nothing on (an internal account, a user gone
    /// from the directory).
    NoEntry,
    /// Not an account of this server: a guest of an invitation link, a remote JID, a name
    /// nobody holds. Never qualifies.
    NotLocal,
    /// The directory could not answer in time.
    Unavailable,
}

/// The outcome for one joining user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Qualifies,
    DoesNotQualify,
    /// The directory could not say.
    Unknown,
}

impl Space {
    pub fn is_bound(&self) -> bool {
        !(self.groups.is_empty() && self.profiles.is_empty() && self.members.is_empty())
    }

    /// Listed by name: qualifies without asking the directory.
    pub fn lists(&self, bare: &str) -> bool {
        self.members.iter().any(|m| m == bare)
    }

    /// Whether `bare` may enter by the binding, given what the shell found.
    pub fn decide(&self, bare: &str, answer: &Answer) -> Verdict {
        match answer {
            Answer::NotLocal => Verdict::DoesNotQualify,
            _ if self.lists(bare) => Verdict::Qualifies,
            Answer::Unavailable => Verdict::Unknown,
            Answer::NoEntry => Verdict::DoesNotQualify,
            Answer::Entry(e) => {
                let in_group = self
                    .groups
                    .iter()
                    .any(|g| e.groups.iter().any(|n| same_text(n, g)) || e.group_dns.iter().any(|dn| same_dn(dn, g)));
                if in_group || self.profiles.iter().any(|p| p.matches(e)) {
                    Verdict::Qualifies
                } else {
                    Verdict::DoesNotQualify
                }
            }
        }
    }

    /// Read the binding from the configuration form's values. `None` for a field means
    /// "not in the submitted form": keep the current value (§10.2).
    pub fn from_form(
        &self,
        groups: Option<&[String]>,
        profiles: Option<&[String]>,
        members: Option<&[String]>,
        role: Option<&str>,
    ) -> Result<Space, StanzaError> {
        let mut next = self.clone();
        if let Some(v) = groups {
            next.groups = lines(v, "amphi#space_groups")?;
        }
        if let Some(v) = profiles {
            next.profiles = lines(v, "amphi#space_profiles")?
                .iter()
                .map(|l| {
                    Profile::parse(l).ok_or_else(|| {
                        StanzaError::bad_request().with_text(format!(
                            "amphi#space_profiles: {l:?} is not attribute=value (e.g. departmentNumber=42)"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?;
            next.profiles.dedup();
        }
        if let Some(v) = members {
            let mut list = Vec::new();
            for m in lines(v, "amphi#space_members")? {
                let bare = BareJid::new(&m).map_err(|_| {
                    StanzaError::jid_malformed().with_text(format!("amphi#space_members: {m} is not a bare JID"))
                })?;
                let bare = bare.to_string();
                if !list.contains(&bare) {
                    list.push(bare);
                }
            }
            next.members = list;
        }
        if let Some(r) = role {
            next.role = SpaceRole::parse(r)
                .ok_or_else(|| StanzaError::bad_request().with_text("amphi#space_role: moderator or participant"))?;
        }
        Ok(next)
    }

    /// Individual members must be accounts of this server, never guests (see the module
    /// docs): checked when the form is submitted, with the room's knowledge of its domain.
    pub fn check_members(&self, local_domain: &str) -> Result<(), StanzaError> {
        for m in &self.members {
            if !is_local_account(m, local_domain) {
                return Err(StanzaError::not_acceptable().with_text(format!(
                    "amphi#space_members: {m} is not an account of {local_domain} \
                     (guests and other servers' users cannot be space members)"
                )));
            }
        }
        Ok(())
    }
}

/// A bare JID that may be an account here: a localpart, this server's domain, not a guest.
pub fn is_local_account(bare: &str, local_domain: &str) -> bool {
    match BareJid::new(bare) {
        Ok(j) => {
            !local_domain.is_empty()
                && j.domain().as_str() == local_domain
                && j.node().is_some_and(|n| !crate::guests::Guests::is_guest(n.as_str()))
        }
        Err(_) => false,
    }
}

/// The non-empty lines of a multi-value field (a client may send one value holding
/// newlines), trimmed, without duplicates, within [`MAX_ITEMS`] and [`MAX_VALUE_LEN`].
fn lines(values: &[String], var: &str) -> Result<Vec<String>, StanzaError> {
    let mut out: Vec<String> = Vec::new();
    for l in values.iter().flat_map(|v| v.lines()).map(str::trim).filter(|l| !l.is_empty()) {
        if l.len() > MAX_VALUE_LEN {
            return Err(StanzaError::not_acceptable().with_text(format!("{var}: a value is too long")));
        }
        if !out.iter().any(|o| o == l) {
            out.push(l.to_string());
        }
    }
    if out.len() > MAX_ITEMS {
        return Err(StanzaError::not_acceptable().with_text(format!("{var}: at most {MAX_ITEMS} values")));
    }
    Ok(out)
}

fn same_text(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// DNs compare without case and without spaces after the separators
/// ("cn=Agents, ou=groups" is "cn=agents,ou=groups"); good enough for the usual spellings.
fn same_dn(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.split(',').map(|p| p.trim().to_lowercase()).collect::<Vec<_>>().join(",");
    b.contains('=') && norm(a) == norm(b)
}

/// The refusal of someone the binding does not (or no longer) admit, in both languages the
/// service is used in.
pub fn refused() -> StanzaError {
    StanzaError::registration_required().with_text(
        "Ce salon est réservé aux membres de son espace ; l'annuaire ne vous y rattache pas (ou plus). \
         This room is reserved for the members of its space; the directory does not (or no longer) list you.",
    )
}

/// The refusal when the directory cannot say, so nobody waits on a hung join.
pub fn directory_unavailable() -> StanzaError {
    StanzaError::service_unavailable().with_type(crate::error::ErrorType::Wait).with_text(
        "L'annuaire ne répond pas : impossible de vérifier votre accès à ce salon, réessayez plus tard. \
         The directory is not answering: your access to this room cannot be checked; try again later.",
    )
}

/// What a space binding says about one join (see [`Room::space_step`]).
pub(super) enum SpaceStep {
    Parked,
    Refused(StanzaError),
    Enter(Option<Role>),
}

/// The binding's hook into joins (`join.rs` calls it before the members-only check).
impl Room {
    /// The directory's answer for a join parked by a space-bound room ([`Output::lookups`]):
    /// the join goes through every check again, the room having maybe changed meanwhile.
    /// Nothing happens if the session gave up (unavailable) or the room was reset.
    pub fn admit(&mut self, session: &FullJid, answer: Answer, now_ms: u64, out: &mut Output) {
        let Some(presence) = self.awaiting.remove(session.as_str()) else {
            return;
        };
        let nick = match crate::stanza::to(&presence) {
            Ok(Some(to)) => to.resource().map(|r| r.to_string()),
            _ => None,
        };
        if let Some(nick) = nick {
            if !self.by_session.contains_key(session.as_str()) {
                self.join(session.clone(), nick, presence, now_ms, Some(answer), out);
            }
        }
    }

    /// The space binding's say on a join (see the module docs): `Enter(Some(role))` for someone
    /// it qualifies, `Enter(None)` for a member the owner added by hand whom it does not
    /// (an ordinary member then), a refusal, or `Parked` while the directory is asked.
    pub(super) fn space_step(
        &mut self,
        from: &FullJid,
        presence: &Element,
        answer: Option<Answer>,
        out: &mut Output,
    ) -> SpaceStep {
        let bare = from.to_bare().to_string();
        let answer = match answer {
            Some(a) => a,
            // Listed by name: no directory needed (the form only takes local accounts).
            None if self.config.space.lists(&bare) && is_local_account(&bare, &self.local_domain) => Answer::NoEntry,
            None => {
                if !self.awaiting.contains_key(from.as_str()) {
                    if self.awaiting.len() >= MAX_AWAITING {
                        return SpaceStep::Refused(
                            StanzaError::resource_constraint()
                                .with_type(crate::error::ErrorType::Wait)
                                .with_text("too many people are entering this room at once; try again"),
                        );
                    }
                    out.lookups.push(from.clone());
                }
                // A repeated join while waiting only replaces the presence that will enter.
                self.awaiting.insert(from.to_string(), presence.clone());
                return SpaceStep::Parked;
            }
        };
        let member = self.affiliation(&bare) == Affiliation::Member;
        let granted_by_space = member && self.config.space.granted.contains(&bare);
        let by_hand = member && !granted_by_space;
        match self.config.space.decide(&bare, &answer) {
            Verdict::Qualifies => SpaceStep::Enter(Some(self.config.space.role.role())),
            Verdict::DoesNotQualify if by_hand => SpaceStep::Enter(None),
            Verdict::DoesNotQualify => {
                if granted_by_space {
                    // No longer in the space: the membership it granted goes (§9.4 321
                    // for any other session of theirs still inside a members-only room).
                    self.apply_affiliation(&bare, Affiliation::None, None, None, out);
                }
                SpaceStep::Refused(refused())
            }
            Verdict::Unknown if by_hand => SpaceStep::Enter(None),
            Verdict::Unknown => SpaceStep::Refused(directory_unavailable()),
        }
    }

    /// Write down a member the space qualified, so clients see it in the member list.
    pub(super) fn materialise(&mut self, bare: &str, out: &mut Output) {
        self.set_affiliation(bare, Affiliation::Member, None);
        self.config.space.granted.insert(bare.to_string());
        out.save = true;
    }
}
