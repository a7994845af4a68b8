//! An occupant (XEP-0045 §5.1) and the presence the room broadcasts for it (§7.2.3).

use jid::{BareJid, FullJid};
use minidom::Element;

use super::affiliation::{Affiliation, Role};
use super::ns;
use crate::xml::{ns as xns, AttrExt};

/// One nick in the room. Several sessions of the same account may share it (as Prosody
/// allows: a phone and a desktop joined under one nick), so `sessions` is a list.
#[derive(Debug, Clone)]
pub struct Occupant {
    pub nick: String,
    pub bare: BareJid,
    pub sessions: Vec<FullJid>,
    /// The client's last presence payload (show, status, caps...), MUC elements removed.
    pub presence: Vec<Element>,
    pub role: Role,
    pub affiliation: Affiliation,
    /// XEP-0421: stable per account and room, opaque to others.
    pub occupant_id: String,
}

/// Extra content of the `<item/>` in a presence (§9.6 actor and reason, §7.6 new nick).
#[derive(Debug, Clone, Default)]
pub struct ItemExtra {
    pub nick: Option<String>,
    pub actor: Option<String>,
    pub reason: Option<String>,
}

/// What a broadcast presence says about an occupant.
pub struct PresenceSpec<'a> {
    pub from: &'a str,
    pub unavailable: bool,
    pub codes: &'a [u16],
    pub extra: &'a ItemExtra,
    /// §10.9: the `<destroy/>` child telling occupants the room went away.
    pub destroy: Option<&'a Element>,
}

impl Occupant {
    /// The presence `viewer` gets about this occupant. `show_jid` adds the real JID to the
    /// item (moderators in semi-anonymous rooms, everyone in non-anonymous ones, oneself).
    pub fn presence(&self, spec: &PresenceSpec, show_jid: bool) -> Element {
        let mut b = Element::builder("presence", xns::CLIENT).a("from", spec.from);
        if spec.unavailable {
            b = b.a("type", "unavailable");
            b = b.append_all(self.presence.iter().filter(|c| c.is("status", xns::CLIENT)).cloned());
        } else {
            b = b.append_all(self.presence.iter().cloned());
        }
        let mut item = Element::builder("item", ns::MUC_USER)
            .a("affiliation", self.affiliation.name())
            .a("role", if spec.unavailable && spec.extra.nick.is_none() { "none" } else { self.role.name() });
        if show_jid {
            if let Some(s) = self.sessions.first() {
                item = item.a("jid", s.as_str());
            }
        }
        if let Some(n) = &spec.extra.nick {
            item = item.a("nick", n.as_str());
        }
        if let Some(a) = &spec.extra.actor {
            item = item.append(Element::builder("actor", ns::MUC_USER).a("nick", a.as_str()).build());
        }
        if let Some(r) = &spec.extra.reason {
            item = item.append(Element::builder("reason", ns::MUC_USER).append(r.as_str()).build());
        }
        let mut x = Element::builder("x", ns::MUC_USER).append(item.build());
        if let Some(d) = spec.destroy {
            x = x.append(d.clone());
        }
        for c in spec.codes {
            x = x.append(Element::builder("status", ns::MUC_USER).a("code", c.to_string()).build());
        }
        b.append(x.build())
            .append(Element::builder("occupant-id", ns::OCCUPANT_ID).a("id", self.occupant_id.as_str()).build())
            .build()
    }
}

/// The client's presence payload without what the room adds itself: MUC join elements,
/// forged muc#user items and occupant-ids (XEP-0421 §4: the room strips them).
pub fn presence_payload(presence: &Element) -> Vec<Element> {
    presence
        .children()
        .filter(|c| {
            !(c.is("x", ns::MUC)
                || c.is("x", ns::MUC_USER)
                || c.is("occupant-id", ns::OCCUPANT_ID)
                || c.is("error", xns::CLIENT))
        })
        .cloned()
        .collect()
}
