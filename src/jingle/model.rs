//! The Jingle types: one struct per element, fields named as in the XEPs.

use std::net::IpAddr;

/// XEP-0166 §7.2 actions (the ones an RTP session uses, plus whatever else arrives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    ContentAccept,
    ContentAdd,
    ContentModify,
    ContentReject,
    ContentRemove,
    DescriptionInfo,
    SessionAccept,
    SessionInfo,
    SessionInitiate,
    SessionTerminate,
    TransportInfo,
    /// Any other action (security-info, transport-replace, ...): answered with
    /// feature-not-implemented by the focus.
    Other(String),
}

impl Action {
    pub fn as_str(&self) -> &str {
        match self {
            Action::ContentAccept => "content-accept",
            Action::ContentAdd => "content-add",
            Action::ContentModify => "content-modify",
            Action::ContentReject => "content-reject",
            Action::ContentRemove => "content-remove",
            Action::DescriptionInfo => "description-info",
            Action::SessionAccept => "session-accept",
            Action::SessionInfo => "session-info",
            Action::SessionInitiate => "session-initiate",
            Action::SessionTerminate => "session-terminate",
            Action::TransportInfo => "transport-info",
            Action::Other(s) => s,
        }
    }

    pub fn from_name(s: &str) -> Action {
        match s {
            "content-accept" => Action::ContentAccept,
            "content-add" => Action::ContentAdd,
            "content-modify" => Action::ContentModify,
            "content-reject" => Action::ContentReject,
            "content-remove" => Action::ContentRemove,
            "description-info" => Action::DescriptionInfo,
            "session-accept" => Action::SessionAccept,
            "session-info" => Action::SessionInfo,
            "session-initiate" => Action::SessionInitiate,
            "session-terminate" => Action::SessionTerminate,
            "transport-info" => Action::TransportInfo,
            other => Action::Other(other.to_string()),
        }
    }
}

/// `<jingle/>`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Jingle {
    pub action: Option<Action>,
    pub sid: String,
    pub initiator: Option<String>,
    pub responder: Option<String>,
    pub contents: Vec<Content>,
    /// XEP-0338 `<group semantics="BUNDLE">`: the bundled content names.
    pub bundle: Vec<String>,
    /// XEP-0166 §7.4 reason condition (`success`, `gone`, `connectivity-error`, ...).
    pub reason: Option<String>,
    /// XEP-0167 §7 session-info payloads (`mute`, `unmute`, `active`, ...).
    pub info: Vec<SessionInfo>,
    /// XEP-0298 `<conference-info><users><user entity/>`: who the contents belong to.
    pub users: Vec<String>,
}

/// A XEP-0167 informational message; `name` is the content it is about, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub kind: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Creator {
    #[default]
    Initiator,
    Responder,
}

/// Who sends media on a content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Senders {
    #[default]
    Both,
    Initiator,
    Responder,
    None,
}

impl Senders {
    pub fn as_str(self) -> &'static str {
        match self {
            Senders::Both => "both",
            Senders::Initiator => "initiator",
            Senders::Responder => "responder",
            Senders::None => "none",
        }
    }

    /// Whether the initiator sends media.
    pub fn initiator_sends(self) -> bool {
        matches!(self, Senders::Both | Senders::Initiator)
    }
}

/// `<content/>`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Content {
    pub creator: Creator,
    pub name: String,
    pub senders: Senders,
    pub description: Option<RtpDescription>,
    pub transport: Option<IceTransport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Media {
    Audio,
    Video,
}

impl Media {
    pub fn as_str(self) -> &'static str {
        match self {
            Media::Audio => "audio",
            Media::Video => "video",
        }
    }
}

/// XEP-0167 `<description media=.../>` with its XEP-0293/0294/0339 children.
#[derive(Debug, Clone, PartialEq)]
pub struct RtpDescription {
    pub media: Media,
    pub payload_types: Vec<PayloadType>,
    pub rtcp_mux: bool,
    /// XEP-0293 feedback for every payload type of the description.
    pub rtcp_fbs: Vec<RtcpFb>,
    pub hdrexts: Vec<HdrExt>,
    pub sources: Vec<Source>,
    pub ssrc_groups: Vec<SsrcGroup>,
}

impl RtpDescription {
    pub fn new(media: Media) -> RtpDescription {
        RtpDescription {
            media,
            payload_types: Vec::new(),
            rtcp_mux: true,
            rtcp_fbs: Vec::new(),
            hdrexts: Vec::new(),
            sources: Vec::new(),
            ssrc_groups: Vec::new(),
        }
    }

    /// The retransmission SSRC paired with `ssrc` by an `FID` group (RFC 5576 §4.2).
    pub fn rtx_of(&self, ssrc: u32) -> Option<u32> {
        self.ssrc_groups
            .iter()
            .find(|g| g.semantics == "FID" && g.ssrcs.first() == Some(&ssrc))
            .and_then(|g| g.ssrcs.get(1).copied())
    }

    /// Primary sources: those that are not the second member of an FID group.
    pub fn primary_sources(&self) -> impl Iterator<Item = &Source> {
        self.sources
            .iter()
            .filter(|s| !self.ssrc_groups.iter().any(|g| g.semantics == "FID" && g.ssrcs.get(1) == Some(&s.ssrc)))
    }
}

/// `<payload-type/>`.
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadType {
    pub id: u8,
    pub name: String,
    pub clockrate: u32,
    pub channels: u8,
    /// `<parameter name value/>` (SDP fmtp).
    pub parameters: Vec<(String, String)>,
    pub rtcp_fbs: Vec<RtcpFb>,
}

impl PayloadType {
    pub fn new(id: u8, name: &str, clockrate: u32, channels: u8) -> PayloadType {
        PayloadType { id, name: name.to_string(), clockrate, channels, parameters: Vec::new(), rtcp_fbs: Vec::new() }
    }

    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// XEP-0293 `<rtcp-fb type subtype/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpFb {
    pub kind: String,
    pub subtype: Option<String>,
}

impl RtcpFb {
    pub fn new(kind: &str, subtype: Option<&str>) -> RtcpFb {
        RtcpFb { kind: kind.into(), subtype: subtype.map(Into::into) }
    }
}

/// XEP-0294 `<rtp-hdrext id uri/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HdrExt {
    pub id: u8,
    pub uri: String,
}

/// XEP-0339 `<source ssrc/>` and its parameters (`cname`, `msid`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub ssrc: u32,
    pub parameters: Vec<(String, Option<String>)>,
}

impl Source {
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
    }
}

/// XEP-0339 `<ssrc-group semantics/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrcGroup {
    pub semantics: String,
    pub ssrcs: Vec<u32>,
}

/// XEP-0176 `<transport/>` with the XEP-0320 fingerprint.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IceTransport {
    pub ufrag: Option<String>,
    pub pwd: Option<String>,
    pub fingerprint: Option<Fingerprint>,
    pub candidates: Vec<Candidate>,
}

/// XEP-0320 `<fingerprint hash setup>AB:CD:..</fingerprint>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub hash: String,
    pub setup: String,
    /// The digest's bytes (the text is colon-separated hex).
    pub value: Vec<u8>,
}

/// XEP-0176 `<candidate/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub component: u8,
    pub foundation: String,
    pub generation: u8,
    pub id: String,
    pub ip: IpAddr,
    pub port: u16,
    pub priority: u32,
    pub protocol: String,
    pub kind: String,
    pub rel_addr: Option<IpAddr>,
    pub rel_port: Option<u16>,
    /// RFC 6544 TCP role (`active`, `passive`, `so`) of a `tcp` candidate: the `tcptype`
    /// attribute, which XEP-0176 lacks and Jitsi's Jingle carries the same way.
    pub tcptype: Option<String>,
}

impl Candidate {
    /// The SDP `candidate:` line (RFC 8839 §5.1) for ICE libraries that parse those.
    pub fn to_sdp(&self) -> String {
        let mut s = format!(
            "candidate:{} {} {} {} {} {} typ {}",
            self.foundation, self.component, self.protocol, self.priority, self.ip, self.port, self.kind
        );
        if let (Some(a), Some(p)) = (self.rel_addr, self.rel_port) {
            s.push_str(&format!(" raddr {a} rport {p}"));
        }
        if let Some(t) = &self.tcptype {
            s.push_str(&format!(" tcptype {t}"));
        }
        s
    }
}
