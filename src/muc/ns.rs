//! Namespaces of the MUC service and the XEPs its rooms speak.

pub const MUC: &str = "http://jabber.org/protocol/muc";
pub const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
pub const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
pub const MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
pub const MUC_ROOMCONFIG: &str = "http://jabber.org/protocol/muc#roomconfig";
pub const MUC_ROOMINFO: &str = "http://jabber.org/protocol/muc#roominfo";
pub const MUC_REQUEST: &str = "http://jabber.org/protocol/muc#request";
pub const MUC_REGISTER: &str = "http://jabber.org/protocol/muc#register";
pub const MUC_UNIQUE: &str = "http://jabber.org/protocol/muc#unique";
pub const MUC_STABLE_ID: &str = "http://jabber.org/protocol/muc#stable_id";
pub const MUC_SELF_PING: &str = "http://jabber.org/protocol/muc#self-ping-optimization";
pub const SID: &str = "urn:xmpp:sid:0";
pub const OCCUPANT_ID: &str = "urn:xmpp:occupant-id:0";
pub const MAM: &str = "urn:xmpp:mam:2";
pub const MAM_EXTENDED: &str = "urn:xmpp:mam:2#extended";
pub const RSM: &str = "http://jabber.org/protocol/rsm";
pub const FORWARD: &str = "urn:xmpp:forward:0";
pub const RETRACT: &str = "urn:xmpp:message-retract:1";
pub const MODERATE: &str = "urn:xmpp:message-moderate:1";
pub const RETRACT_0: &str = "urn:xmpp:message-retract:0";
pub const MODERATE_0: &str = "urn:xmpp:message-moderate:0";
pub const FASTEN: &str = "urn:xmpp:fasten:0";
pub const CONFERENCE: &str = "jabber:x:conference";
