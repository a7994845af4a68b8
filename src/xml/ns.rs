//! Namespace names used across the server, in one place so a typo cannot hide.

pub const STREAM: &str = "http://etherx.jabber.org/streams";
pub const CLIENT: &str = "jabber:client";
pub const STREAMS_ERR: &str = "urn:ietf:params:xml:ns:xmpp-streams";
pub const STANZAS_ERR: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
pub const SASL_CB: &str = "urn:xsf:sasl-cb:0";
pub const ROSTER: &str = "jabber:iq:roster";
pub const ROSTER_VER: &str = "urn:xmpp:features:rosterver";
pub const PRE_APPROVAL: &str = "urn:xmpp:features:pre-approval";
pub const REGISTER: &str = "jabber:iq:register";
pub const REGISTER_FEATURE: &str = "http://jabber.org/features/iq-register";
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
pub const CAPS: &str = "http://jabber.org/protocol/caps";
pub const PING: &str = "urn:xmpp:ping";
pub const VERSION: &str = "jabber:iq:version";
pub const LAST: &str = "jabber:iq:last";
pub const VCARD: &str = "vcard-temp";
pub const DATA_FORMS: &str = "jabber:x:data";
pub const DELAY: &str = "urn:xmpp:delay";
pub const OFFLINE: &str = "msgoffline";
pub const SERVERINFO: &str = "http://jabber.org/network/serverinfo";
