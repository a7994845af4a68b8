//! Room configuration (XEP-0045 §10.2): the `muc#roomconfig` form, its defaults, and the
//! status codes a change announces (§10.2.1: 104, 170, 171, 172, 173).
//!
//! Field names are the registered ones (XEP-0045 §15.5.3) plus those Prosody and ejabberd
//! clients already know (`muc#roomconfig_historylength`, `muc#roomconfig_enablearchiving`).

use minidom::Element;
use serde::{Deserialize, Serialize};

use super::form::{self, Field};
use super::ns;
use super::space::Space;
use crate::error::StanzaError;

/// Who may send private messages (`muc#roomconfig_allowpm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllowPm {
    Anyone,
    Participants,
    Moderators,
    None,
}

impl AllowPm {
    fn name(self) -> &'static str {
        match self {
            AllowPm::Anyone => "anyone",
            AllowPm::Participants => "participants",
            AllowPm::Moderators => "moderators",
            AllowPm::None => "none",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoomConfig {
    pub name: String,
    pub description: String,
    pub lang: String,
    pub persistent: bool,
    pub public: bool,
    pub members_only: bool,
    pub moderated: bool,
    /// Everyone sees real JIDs (non-anonymous) rather than moderators only (semi-anonymous).
    pub whois_anyone: bool,
    /// Empty: no password.
    pub password: String,
    pub allow_invites: bool,
    pub allow_pm: AllowPm,
    pub change_subject: bool,
    pub history_length: usize,
    pub archiving: bool,
    /// 0: no limit beyond the service's.
    pub max_users: usize,
    pub allow_voice_requests: bool,
    pub members_by_default: bool,
    pub allow_registration: bool,
    /// Roles whose presence is broadcast (`muc#roomconfig_presencebroadcast`): a large
    /// webinar-style meeting may show only moderators and participants, so hundreds of
    /// silent visitors do not cost everyone a presence each.
    pub presence_broadcast: Vec<String>,
    /// The room's space binding (`space.rs`); rooms stored before it existed load unbound.
    pub space: Space,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            name: String::new(),
            description: String::new(),
            lang: String::new(),
            persistent: false,
            public: true,
            members_only: false,
            moderated: false,
            whois_anyone: false,
            password: String::new(),
            allow_invites: false,
            allow_pm: AllowPm::Anyone,
            change_subject: false,
            history_length: 20,
            archiving: true,
            max_users: 0,
            allow_voice_requests: true,
            members_by_default: true,
            allow_registration: true,
            presence_broadcast: vec!["moderator".into(), "participant".into(), "visitor".into()],
            space: Space::default(),
        }
    }
}

const FORM_TYPE: &str = ns::MUC_ROOMCONFIG;

/// The space binding's fields (xep/amphi-spaces.md). Not registered with the XSF, hence
/// the `amphi#` prefix that keeps them apart from the `muc#roomconfig_` names.
pub const SPACE_GROUPS: &str = "amphi#space_groups";
pub const SPACE_PROFILES: &str = "amphi#space_profiles";
pub const SPACE_MEMBERS: &str = "amphi#space_members";
pub const SPACE_ROLE: &str = "amphi#space_role";

impl RoomConfig {
    /// Whether occupants of this role are shown to the others.
    pub fn broadcasts(&self, role: super::affiliation::Role) -> bool {
        self.presence_broadcast.iter().any(|r| r == role.name())
    }

    /// The form an owner fills in (§10.2), with the current values and the owner/admin lists.
    pub fn to_form(&self, owners: &[String], admins: &[String], max_history: usize) -> Element {
        let fields = vec![
            Field::hidden("FORM_TYPE", FORM_TYPE),
            Field::text("muc#roomconfig_roomname", "Name", &self.name),
            Field::text("muc#roomconfig_roomdesc", "Description", &self.description),
            Field::text("muc#roomconfig_lang", "Language (e.g. en)", &self.lang),
            Field::boolean("muc#roomconfig_persistentroom", "Keep the room when empty", self.persistent),
            Field::boolean("muc#roomconfig_publicroom", "List the room publicly", self.public),
            Field::boolean("muc#roomconfig_membersonly", "Members only", self.members_only),
            Field::boolean("muc#roomconfig_moderatedroom", "Moderated (visitors need voice)", self.moderated),
            Field::list(
                "muc#roomconfig_whois",
                "Who may see real addresses",
                if self.whois_anyone { "anyone" } else { "moderators" },
                &[("moderators", "Moderators only"), ("anyone", "Anyone")],
            ),
            Field::boolean("muc#roomconfig_passwordprotectedroom", "Password protected", !self.password.is_empty()),
            Field::private("muc#roomconfig_roomsecret", "Password", &self.password),
            Field::boolean("muc#roomconfig_allowinvites", "Occupants may invite others", self.allow_invites),
            Field::list(
                "muc#roomconfig_allowpm",
                "Who may send private messages",
                self.allow_pm.name(),
                &[
                    ("anyone", "Anyone"),
                    ("participants", "Participants"),
                    ("moderators", "Moderators"),
                    ("none", "Nobody"),
                ],
            ),
            Field::boolean("muc#roomconfig_changesubject", "Occupants may change the subject", self.change_subject),
            Field::text(
                "muc#roomconfig_historylength",
                &format!("Messages sent on join (at most {max_history})"),
                &self.history_length.to_string(),
            ),
            Field::boolean("muc#roomconfig_enablearchiving", "Archive messages", self.archiving),
            Field::text("muc#roomconfig_maxusers", "Maximum occupants (0: no limit)", &self.max_users.to_string()),
            Field::boolean(
                "muc#roomconfig_allowvoicerequests",
                "Visitors may ask for voice",
                self.allow_voice_requests,
            ),
            Field::boolean("muc#roomconfig_registration", "Users may register with the room", self.allow_registration),
            Field::list_multi(
                "muc#roomconfig_presencebroadcast",
                "Roles whose presence is shown",
                &self.presence_broadcast,
                &[("moderator", "Moderator"), ("participant", "Participant"), ("visitor", "Visitor")],
            ),
            Field::jid_multi("muc#roomconfig_roomowners", "Owners", owners),
            Field::jid_multi("muc#roomconfig_roomadmins", "Admins", admins),
            Field::text_multi(
                SPACE_GROUPS,
                "Space: directory groups whose members may enter (names or DNs; a bound room is members-only)",
                &self.space.groups,
            ),
            Field::text_multi(
                SPACE_PROFILES,
                "Space: profiles that may enter (attribute=value, e.g. departmentNumber=42)",
                &self.space.profiles.iter().map(|p| p.text()).collect::<Vec<_>>(),
            ),
            Field::jid_multi(SPACE_MEMBERS, "Space: individual members", &self.space.members),
            Field::list(
                SPACE_ROLE,
                "Space: role of its members on entering",
                self.space.role.name(),
                &[("moderator", "Moderator"), ("participant", "Participant")],
            ),
        ];
        form::build("form", Some("Room configuration"), fields)
    }

    /// Apply a submitted form. Fields absent from the form keep their value (§10.2: a
    /// client may submit only what it changed). Returns the owner/admin lists if present.
    pub fn apply_form(&mut self, x: &Element, max_history: usize) -> Result<Submitted, StanzaError> {
        let values = form::values(x);
        if let Some(t) = values.get("FORM_TYPE").and_then(|v| v.first()) {
            if t != FORM_TYPE {
                return Err(StanzaError::bad_request().with_text("FORM_TYPE must be muc#roomconfig"));
            }
        }
        let mut next = self.clone();
        let mut submitted = Submitted::default();
        let mut password_protected = None;
        for (var, vals) in &values {
            let one = vals.first().map(String::as_str).unwrap_or("");
            let flag = || form::parse_bool(one).ok_or_else(|| bad(var));
            match var.as_str() {
                "FORM_TYPE" => {}
                "muc#roomconfig_roomname" => next.name = one.to_string(),
                "muc#roomconfig_roomdesc" => next.description = one.to_string(),
                "muc#roomconfig_lang" => next.lang = one.to_string(),
                "muc#roomconfig_persistentroom" => next.persistent = flag()?,
                "muc#roomconfig_publicroom" => next.public = flag()?,
                "muc#roomconfig_membersonly" => next.members_only = flag()?,
                "muc#roomconfig_moderatedroom" => next.moderated = flag()?,
                "muc#roomconfig_whois" => {
                    next.whois_anyone = match one {
                        "anyone" => true,
                        "moderators" => false,
                        _ => return Err(bad(var)),
                    }
                }
                "muc#roomconfig_passwordprotectedroom" => password_protected = Some(flag()?),
                "muc#roomconfig_roomsecret" => next.password = one.to_string(),
                "muc#roomconfig_allowinvites" => next.allow_invites = flag()?,
                "muc#roomconfig_allowpm" => {
                    next.allow_pm = match one {
                        "anyone" => AllowPm::Anyone,
                        "participants" => AllowPm::Participants,
                        "moderators" => AllowPm::Moderators,
                        "none" => AllowPm::None,
                        _ => return Err(bad(var)),
                    }
                }
                "muc#roomconfig_changesubject" => next.change_subject = flag()?,
                "muc#roomconfig_historylength" | "muc#maxhistoryfetch" => {
                    let n: usize = one.trim().parse().map_err(|_| bad(var))?;
                    next.history_length = n.min(max_history);
                }
                "muc#roomconfig_enablearchiving" | "muc#roomconfig_enablelogging" => next.archiving = flag()?,
                "muc#roomconfig_maxusers" => {
                    next.max_users = if one.trim() == "none" { 0 } else { one.trim().parse().map_err(|_| bad(var))? }
                }
                "muc#roomconfig_allowvoicerequests" => next.allow_voice_requests = flag()?,
                "muc#roomconfig_registration" => next.allow_registration = flag()?,
                "muc#roomconfig_presencebroadcast" => {
                    if vals.iter().any(|v| !matches!(v.as_str(), "moderator" | "participant" | "visitor")) {
                        return Err(bad(var));
                    }
                    next.presence_broadcast = vals.clone();
                }
                SPACE_GROUPS | SPACE_PROFILES | SPACE_MEMBERS | SPACE_ROLE => {} // below, together
                "muc#roomconfig_roomowners" => submitted.owners = Some(vals.clone()),
                "muc#roomconfig_roomadmins" => submitted.admins = Some(vals.clone()),
                // Unknown fields are ignored, as clients send fields of other servers' forms.
                _ => {}
            }
        }
        let field = |var: &str| values.get(var).map(Vec::as_slice);
        next.space = self.space.from_form(
            field(SPACE_GROUPS),
            field(SPACE_PROFILES),
            field(SPACE_MEMBERS),
            field(SPACE_ROLE).map(|v| v.first().map(String::as_str).unwrap_or("")),
        )?;
        if next.space.is_bound() {
            // A bound room admits its space and nobody else: members-only, whatever the
            // form said about that (space.rs).
            next.members_only = true;
        }
        if password_protected == Some(false) {
            next.password.clear();
        }
        if password_protected == Some(true) && next.password.is_empty() {
            return Err(StanzaError::not_acceptable().with_text("a password-protected room needs a password"));
        }
        submitted.codes = change_codes(self, &next);
        *self = next;
        Ok(submitted)
    }
}

fn bad(var: &str) -> StanzaError {
    StanzaError::bad_request().with_text(format!("invalid value for {var}"))
}

/// What a submitted form carried beyond the config itself.
#[derive(Debug, Default)]
pub struct Submitted {
    pub owners: Option<Vec<String>>,
    pub admins: Option<Vec<String>>,
    /// Status codes to announce to the occupants (§10.2.1).
    pub codes: Vec<u16>,
}

/// §10.2.1: 104 for any change, 170/171 logging on/off, 172/173 non-/semi-anonymous.
pub fn change_codes(old: &RoomConfig, new: &RoomConfig) -> Vec<u16> {
    let mut codes = Vec::new();
    if old == new {
        return codes;
    }
    codes.push(104);
    if !old.archiving && new.archiving {
        codes.push(170);
    }
    if old.archiving && !new.archiving {
        codes.push(171);
    }
    if !old.whois_anyone && new.whois_anyone {
        codes.push(172);
    }
    if old.whois_anyone && !new.whois_anyone {
        codes.push(173);
    }
    codes
}
