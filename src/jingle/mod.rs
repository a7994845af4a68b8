//! Jingle for RTP calls, as plain data: the elements of XEP-0166 (sessions), XEP-0167 (RTP
//! descriptions, session-info), XEP-0176 (ICE-UDP), XEP-0320 (DTLS-SRTP fingerprints),
//! XEP-0293 (RTCP feedback), XEP-0294 (header extensions), XEP-0338 (BUNDLE grouping) and
//! XEP-0339 (sources and source groups).
//!
//! [`Jingle::parse`] turns a `<jingle/>` element into these types and [`Jingle::to_element`]
//! turns them back; nothing here touches a socket or a clock. The focus ([`crate::focus`])
//! maps them to SFU commands.
//!
//! Why not xmpp-parsers' typed Jingle: in 0.23 the ICE-UDP transport's `ufrag`, `pwd`,
//! candidates and fingerprint are private fields, so a focus can neither read an offer's
//! credentials nor write its own; and its strict parsing refuses the extra attributes real
//! clients put on these elements. These types are small, tolerant of unknown extras, and
//! strict where the media needs it (numbers, addresses, lengths).

mod build;
mod model;
mod parse;

pub use model::*;

/// Namespaces of the Jingle family.
pub mod ns {
    pub const JINGLE: &str = "urn:xmpp:jingle:1";
    pub const ERRORS: &str = "urn:xmpp:jingle:errors:1";
    pub const RTP: &str = "urn:xmpp:jingle:apps:rtp:1";
    pub const RTP_INFO: &str = "urn:xmpp:jingle:apps:rtp:info:1";
    pub const RTP_AUDIO: &str = "urn:xmpp:jingle:apps:rtp:audio";
    pub const RTP_VIDEO: &str = "urn:xmpp:jingle:apps:rtp:video";
    pub const ICE_UDP: &str = "urn:xmpp:jingle:transports:ice-udp:1";
    pub const DTLS: &str = "urn:xmpp:jingle:apps:dtls:0";
    pub const RTCP_FB: &str = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0";
    pub const HDREXT: &str = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0";
    pub const GROUPING: &str = "urn:xmpp:jingle:apps:grouping:0";
    pub const SSMA: &str = "urn:xmpp:jingle:apps:rtp:ssma:0";
    /// XEP-0298 conference information: who a content belongs to.
    pub const COIN: &str = "urn:xmpp:coin:1";
    /// XEP-0521 (Jingle Audio/Video Conferences), announced by the focus.
    pub const AV_CONFERENCES: &str = "urn:xmpp:jingle:av-conferences:0";
}

/// Why a `<jingle/>` element was refused. The text goes back to the sender in the
/// stanza error's `<text/>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JingleError(pub String);

impl JingleError {
    pub fn new(text: impl Into<String>) -> JingleError {
        JingleError(text.into())
    }
}

/// Bounds on what one element may hold; a stanza is already size-limited, these keep the
/// focus's per-participant state small and its loops short.
pub mod limits {
    pub const CONTENTS: usize = 32;
    pub const PAYLOAD_TYPES: usize = 32;
    pub const SOURCES: usize = 16;
    pub const CANDIDATES: usize = 32;
    /// str0m keeps a media id (the content name) in 16 bytes.
    pub const CONTENT_NAME: usize = 16;
}

#[cfg(test)]
pub(crate) mod tests;
