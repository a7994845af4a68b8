//! Message moderation (XEP-0425) and retraction (XEP-0424): a moderator removes a message
//! from everyone's view, history and the archive, which keeps a tombstone.
//!
//! Requests in both the current (`message-moderate:1`) and the earlier fastening-based
//! (`message-moderate:0`) form are accepted; the broadcast carries both, so clients of
//! either generation show the removal.

use jid::FullJid;
use minidom::Element;

use super::affiliation::Role;
use super::archive::{Archived, Tombstone};
use super::ns;
use super::room::{Output, Room};
use crate::error::StanzaError;
use crate::xml::{ns as xns, AttrExt};

impl Room {
    /// `<moderate id='…' xmlns='urn:xmpp:message-moderate:1'><retract/><reason/></moderate>`.
    pub(super) fn moderate(
        &mut self,
        from: &FullJid,
        m: &Element,
        now_ms: u64,
        out: &mut Output,
    ) -> Result<(), StanzaError> {
        if !m.has_child("retract", ns::RETRACT) {
            return Err(StanzaError::bad_request().with_text("only retraction is supported"));
        }
        let id = m.attr("id").ok_or_else(|| StanzaError::bad_request().with_text("name the message's stanza-id"))?;
        let reason = m.get_child("reason", ns::MODERATE).map(|r| r.text());
        self.apply_moderation(from, id, reason, now_ms, out)
    }

    /// The earlier form: `<apply-to id='…' xmlns='urn:xmpp:fasten:0'><moderate xmlns=':0'>…`.
    pub(super) fn moderate_legacy(
        &mut self,
        from: &FullJid,
        a: &Element,
        now_ms: u64,
        out: &mut Output,
    ) -> Result<(), StanzaError> {
        let Some(m) = a.get_child("moderate", ns::MODERATE_0) else {
            return Err(StanzaError::service_unavailable());
        };
        if !m.has_child("retract", ns::RETRACT_0) {
            return Err(StanzaError::bad_request().with_text("only retraction is supported"));
        }
        let id = a.attr("id").ok_or_else(|| StanzaError::bad_request().with_text("name the message's stanza-id"))?;
        let reason = m.get_child("reason", ns::MODERATE_0).map(|r| r.text());
        self.apply_moderation(from, id, reason, now_ms, out)
    }

    fn apply_moderation(
        &mut self,
        from: &FullJid,
        id: &str,
        reason: Option<String>,
        now_ms: u64,
        out: &mut Output,
    ) -> Result<(), StanzaError> {
        let Some(moderator) = self.occupant_of(from).filter(|o| o.role == Role::Moderator) else {
            return Err(StanzaError::forbidden().with_text("only moderators moderate messages"));
        };
        let key =
            u64::from_str_radix(id, 16).map_err(|_| StanzaError::item_not_found().with_text("no such message"))?;
        let by = self.occupant_jid(&moderator.nick);
        let (mod_nick, mod_oid, mod_bare) =
            (moderator.nick.clone(), moderator.occupant_id.clone(), moderator.bare.to_string());
        let r = reason.as_deref();
        self.history.replace(id, |orig| Some(tombstone_of(orig, Some(&by), r)));
        out.tombstones.push(Tombstone { id: key, author: None, by: Some(by.clone()), reason: reason.clone() });
        let mut retract = Element::builder("retract", ns::RETRACT).a("id", id).append(
            Element::builder("moderated", ns::MODERATE)
                .a("by", by.as_str())
                .append(Element::builder("occupant-id", ns::OCCUPANT_ID).a("id", mod_oid.as_str()).build())
                .build(),
        );
        let mut legacy_mod = Element::builder("moderated", ns::MODERATE_0)
            .a("by", by.as_str())
            .append(Element::bare("retract", ns::RETRACT_0));
        if let Some(r) = &reason {
            retract = retract.append(Element::builder("reason", ns::RETRACT).append(r.as_str()).build());
            legacy_mod = legacy_mod.append(Element::builder("reason", ns::MODERATE_0).append(r.as_str()).build());
        }
        let seq = (self.ids)();
        let stanza_id = format!("{seq:016x}");
        let msg = Element::builder("message", xns::CLIENT)
            .a("from", self.jid.as_str())
            .a("type", "groupchat")
            .a("id", format!("retract-{id}"))
            .append(retract.build())
            .append(Element::builder("apply-to", ns::FASTEN).a("id", id).append(legacy_mod.build()).build())
            .append(
                Element::builder("stanza-id", ns::SID).a("id", stanza_id.as_str()).a("by", self.jid.as_str()).build(),
            )
            .build();
        self.to_all(&msg, out);
        if self.archiving() {
            out.archive.push(Archived {
                id: seq,
                at_ms: now_ms,
                nick: mod_nick,
                real: mod_bare,
                occupant_id: mod_oid,
                xml: String::from_utf8_lossy(&crate::xml::write::element_bytes(&msg)).into_owned(),
                retracted: false,
            });
        }
        Ok(())
    }
}

/// What remains of a retracted message (XEP-0424 §5 tombstone): its addresses and ids,
/// and `<retracted/>` saying by whom; the content is gone.
pub fn tombstone_of(orig: &Element, by: Option<&str>, reason: Option<&str>) -> Element {
    let mut b = Element::builder("message", xns::CLIENT).a("type", "groupchat");
    for a in ["from", "id"] {
        if let Some(v) = orig.attr(a) {
            b = b.a(a, v);
        }
    }
    let mut retracted = Element::builder("retracted", ns::RETRACT);
    if let Some(by) = by {
        retracted = retracted.append(Element::builder("moderated", ns::MODERATE).a("by", by).build());
    }
    if let Some(r) = reason {
        retracted = retracted.append(Element::builder("reason", ns::RETRACT).append(r).build());
    }
    b.append(retracted.build())
        .append_all(
            orig.children().filter(|c| c.is("stanza-id", ns::SID) || c.is("occupant-id", ns::OCCUPANT_ID)).cloned(),
        )
        .build()
}
