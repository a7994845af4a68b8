//! Service discovery of a room (XEP-0045 §6.4 with the `muc#roominfo` form, §7.12
//! reserved nick) and of the service itself (§6.1, §6.3 public rooms).

use jid::FullJid;
use minidom::Element;

use super::form::{self, Field};
use super::ns;
use super::room::Room;
use crate::error::StanzaError;
use crate::xml::{ns as xns, AttrExt};

/// XEP-0045 §6.4 / §15.6 features of a room, chosen by its configuration.
pub fn room_features(room: &Room) -> Vec<&'static str> {
    let c = &room.config;
    let mut f = vec![
        ns::MUC,
        xns::DISCO_INFO,
        xns::DISCO_ITEMS,
        if c.public { "muc_public" } else { "muc_hidden" },
        if c.persistent { "muc_persistent" } else { "muc_temporary" },
        if c.members_only { "muc_membersonly" } else { "muc_open" },
        if c.moderated { "muc_moderated" } else { "muc_unmoderated" },
        if c.whois_anyone { "muc_nonanonymous" } else { "muc_semianonymous" },
        if c.password.is_empty() { "muc_unsecured" } else { "muc_passwordprotected" },
        ns::MUC_STABLE_ID,
        ns::SID,
        ns::OCCUPANT_ID,
        ns::MUC_SELF_PING,
        ns::MODERATE,
        ns::MODERATE_0,
        ns::RETRACT,
        ns::MUC_REQUEST,
        xns::REGISTER,
        xns::PING,
    ];
    if room.archiving() {
        f.push(ns::MAM);
        // before-id / after-id form fields (XEP-0313 §4.1.1.2).
        f.push(ns::MAM_EXTENDED);
    }
    f.sort_unstable();
    f
}

impl Room {
    pub(super) fn disco_info(&self, from: &FullJid, query: &Element) -> Result<Option<Element>, StanzaError> {
        let mut q = Element::builder("query", xns::DISCO_INFO);
        match query.attr("node") {
            None => {}
            Some("x-roomuser-item") => {
                q = q.a("node", "x-roomuser-item");
                if let Some(nick) = self.reserved_nick(from.to_bare().as_str()) {
                    q = q.append(super::register::reserved_nick_identity(nick));
                }
                return Ok(Some(q.build()));
            }
            Some(_) => return Err(StanzaError::item_not_found().with_text("no such node")),
        }
        let name = if self.config.name.is_empty() { self.node() } else { self.config.name.as_str() };
        q = q.append(
            Element::builder("identity", xns::DISCO_INFO)
                .a("category", "conference")
                .a("type", "text")
                .a("name", name)
                .build(),
        );
        for f in room_features(self) {
            q = q.append(Element::builder("feature", xns::DISCO_INFO).a("var", f).build());
        }
        let c = &self.config;
        let info = form::build(
            "result",
            None,
            vec![
                Field::hidden("FORM_TYPE", ns::MUC_ROOMINFO),
                Field::value("muc#roomconfig_roomname", "Name", name),
                Field::value("muc#roominfo_description", "Description", &c.description),
                Field::value("muc#roominfo_occupants", "Occupants", &self.occupants.len().to_string()),
                Field::value("muc#roominfo_subject", "Subject", &self.subject.text),
                Field::value(
                    "muc#roominfo_subjectmod",
                    "Occupants may change the subject",
                    if c.change_subject { "1" } else { "0" },
                ),
                Field::value("muc#roominfo_lang", "Language", &c.lang),
                Field::value(
                    "muc#roomconfig_allowinvites",
                    "Occupants may invite",
                    if c.allow_invites { "1" } else { "0" },
                ),
                Field::value("muc#maxhistoryfetch", "Messages sent on join", &c.history_length.to_string()),
            ],
        );
        Ok(Some(q.append(info).build()))
    }

    pub(super) fn disco_items(&self, _from: &FullJid, query: &Element) -> Result<Option<Element>, StanzaError> {
        if query.attr("node").is_some() {
            return Err(StanzaError::item_not_found().with_text("no such node"));
        }
        // §6.5: listing occupants is optional; semi-anonymous rooms keep them to occupants.
        Ok(Some(Element::bare("query", xns::DISCO_ITEMS)))
    }
}

/// Features of the service JID (§6.1).
pub const SERVICE_FEATURES: &[&str] = &[
    ns::MUC,
    ns::MUC_UNIQUE,
    xns::DISCO_INFO,
    xns::DISCO_ITEMS,
    ns::MUC_STABLE_ID,
    ns::OCCUPANT_ID,
    ns::MUC_SELF_PING,
    ns::CONFERENCE,
    xns::PING,
];

pub fn service_info(query: &Element) -> Result<Element, StanzaError> {
    if query.attr("node").is_some() {
        return Err(StanzaError::item_not_found().with_text("no such node"));
    }
    let mut q = Element::builder("query", xns::DISCO_INFO).append(
        Element::builder("identity", xns::DISCO_INFO)
            .a("category", "conference")
            .a("type", "text")
            .a("name", "Chatrooms")
            .build(),
    );
    for f in SERVICE_FEATURES {
        q = q.append(Element::builder("feature", xns::DISCO_INFO).a("var", *f).build());
    }
    Ok(q.build())
}
