//! The call's room, as the focus sees it: admission (only occupants join), moderation
//! (only moderators mute others) and how a stream's owner is named to each receiver
//! (xep/jingle-conferences.md, "Admission"). The answers come from the MUC service
//! through [`Rooms`]; the focus never reads the room itself.

use super::{Conferences, ParticipantId};

/// What the focus asks about a call's room, the MUC room with the call's node
/// (`call@conference.<domain>`). The shell answers from the MUC service's snapshot; tests
/// answer from a table. A query, not IO: no waiting, no clock.
pub trait Rooms: Send {
    /// The session `jid` (a real full JID) in the room of `call`.
    fn membership(&self, call: &str, jid: &str) -> Membership;
}

/// A session's place in a call's room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// There is no such room.
    NoRoom,
    /// The room exists; the session is not in it.
    Outsider,
    Occupant(RoomOccupant),
}

/// An occupant of a call's room, as far as the call cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomOccupant {
    /// `room@conference.<domain>/nick`: how others name it where real JIDs are hidden.
    pub occupant_jid: String,
    /// MUC role moderator: may mute others in the call.
    pub moderator: bool,
    /// May see other occupants' real JIDs (non-anonymous room, or a moderator).
    pub sees_jids: bool,
}

impl Conferences {
    /// Whether `jid` is a moderator of the room of `call` now (a role can change mid-call).
    pub(super) fn is_moderator(&self, call: &str, jid: &str) -> bool {
        matches!(self.rooms.membership(call, jid), Membership::Occupant(o) if o.moderator)
    }

    /// The XEP-0298 entity naming `publisher`'s streams at `receiver`: the real bare JID
    /// for a receiver that may see real JIDs in the room, else the occupant JID (§5
    /// semi-anonymous rooms). None when the room no longer knows the publisher: better no
    /// name than a real JID to someone who may not see it.
    pub(super) fn owner_entity(&self, publisher: ParticipantId, receiver: ParticipantId) -> Option<String> {
        let (p, r) = (self.participants.get(&publisher)?, self.participants.get(&receiver)?);
        if matches!(self.rooms.membership(&r.call, &r.jid), Membership::Occupant(o) if o.sees_jids) {
            return Some(p.owner_uri());
        }
        match self.rooms.membership(&p.call, &p.jid) {
            Membership::Occupant(o) => Some(occupant_uri(&o.occupant_jid)),
            _ => None,
        }
    }
}

/// `xmpp:` URI of an occupant JID (RFC 5122): the nick is percent-encoded where a URI
/// does not allow its ASCII characters (spaces, `/`, `?`, `#`, `%`...); other Unicode
/// stays as it is (an IRI).
fn occupant_uri(occupant_jid: &str) -> String {
    let (room, nick) = occupant_jid.split_once('/').unwrap_or((occupant_jid, ""));
    let mut uri = format!("xmpp:{room}/");
    for c in nick.chars() {
        let plain = !c.is_ascii() || c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@".contains(c);
        if plain {
            uri.push(c);
        } else {
            uri.push_str(&format!("%{:02X}", c as u32));
        }
    }
    uri
}
