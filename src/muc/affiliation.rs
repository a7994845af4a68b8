//! Affiliations and roles (XEP-0045 §5) and who may change them (§5.1.1, §5.2.1, §9, §10).
//!
//! Pure rules: every function answers "may this actor do that to this target" with the
//! exact error the XEP names, so the room core and the unit tests share one table.

use serde::{Deserialize, Serialize};

use crate::error::StanzaError;

/// A long-lived relation between a bare JID and the room (§5.2). Ordered by privilege.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Affiliation {
    Outcast,
    None,
    Member,
    Admin,
    Owner,
}

/// A temporary position of an occupant for this visit (§5.1). Ordered by privilege.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    None,
    Visitor,
    Participant,
    Moderator,
}

impl Affiliation {
    pub fn name(self) -> &'static str {
        match self {
            Affiliation::Outcast => "outcast",
            Affiliation::None => "none",
            Affiliation::Member => "member",
            Affiliation::Admin => "admin",
            Affiliation::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Affiliation> {
        Some(match s {
            "outcast" => Affiliation::Outcast,
            "none" => Affiliation::None,
            "member" => Affiliation::Member,
            "admin" => Affiliation::Admin,
            "owner" => Affiliation::Owner,
            _ => return None,
        })
    }

    /// Admins and owners: may change affiliations, see the lists, enter full rooms.
    pub fn is_admin(self) -> bool {
        self >= Affiliation::Admin
    }

    /// The role an occupant gets on entering (§5.1.2 table).
    pub fn default_role(self, moderated: bool) -> Role {
        match self {
            Affiliation::Owner | Affiliation::Admin => Role::Moderator,
            Affiliation::Member => Role::Participant,
            Affiliation::None if moderated => Role::Visitor,
            Affiliation::None => Role::Participant,
            Affiliation::Outcast => Role::None,
        }
    }
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Visitor => "visitor",
            Role::Participant => "participant",
            Role::Moderator => "moderator",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "none" => Role::None,
            "visitor" => Role::Visitor,
            "participant" => Role::Participant,
            "moderator" => Role::Moderator,
            _ => return None,
        })
    }
}

/// The acting occupant's standing, and the target's.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    pub affiliation: Affiliation,
    pub role: Role,
}

/// May `actor` give the occupant `target` the role `new` (§8.2 kick, §8.3/8.4 voice,
/// §9.6/9.7 moderator)? Errors are the XEP's: `forbidden` when the actor lacks the
/// privilege altogether, `not-allowed` when the target is protected by its affiliation.
pub fn may_set_role(actor: Standing, target: Standing, new: Role) -> Result<(), StanzaError> {
    if actor.role != Role::Moderator {
        return Err(StanzaError::forbidden().with_text("only moderators change roles"));
    }
    let granting_or_revoking_moderator = new == Role::Moderator || target.role == Role::Moderator;
    if granting_or_revoking_moderator && !actor.affiliation.is_admin() {
        return Err(StanzaError::forbidden().with_text("only admins and owners grant or revoke moderator"));
    }
    // §8.2, §8.4, §9.7: an admin or owner cannot be kicked, silenced or demoted by role,
    // and nobody acts on someone of a higher affiliation.
    if new < Role::Moderator && target.affiliation.is_admin() {
        return Err(StanzaError::not_allowed().with_text("admins and owners keep their role"));
    }
    if target.affiliation > actor.affiliation && new < target.role {
        return Err(StanzaError::not_allowed().with_text("the occupant has a higher affiliation"));
    }
    Ok(())
}

/// May `actor` change a JID's affiliation from `current` to `new` (§9, §10)?
/// Admins manage members and outcasts; owners manage everything.
pub fn may_set_affiliation(actor: Affiliation, current: Affiliation, new: Affiliation) -> Result<(), StanzaError> {
    if !actor.is_admin() {
        return Err(StanzaError::forbidden().with_text("only admins and owners change affiliations"));
    }
    if actor == Affiliation::Owner {
        return Ok(());
    }
    if new.is_admin() {
        return Err(StanzaError::forbidden().with_text("only owners grant admin or owner"));
    }
    if current.is_admin() {
        return Err(StanzaError::not_allowed().with_text("only owners change an admin's or owner's affiliation"));
    }
    Ok(())
}

/// Who may read an affiliation list (§9.5, §10.5, §10.8): admins and owners.
pub fn may_read_affiliation_list(actor: Affiliation) -> Result<(), StanzaError> {
    if actor.is_admin() {
        Ok(())
    } else {
        Err(StanzaError::forbidden().with_text("only admins and owners see the affiliation lists"))
    }
}

/// Who may read a role list (§8.5 voice list, §9.8 moderator list): moderators.
pub fn may_read_role_list(actor: Role) -> Result<(), StanzaError> {
    if actor == Role::Moderator {
        Ok(())
    } else {
        Err(StanzaError::forbidden().with_text("only moderators see the role lists"))
    }
}
