//! The built-in SFU: every participant's media arrives on one UDP socket, is routed to that
//! participant's str0m [`Rtc`](str0m::Rtc) (RTP mode, ICE-lite, DTLS-SRTP), and each RTP
//! packet is written, untouched apart from its payload type and sequence numbers, to the
//! send streams of the participants subscribed to it.
//!
//! - [`core::Sfu`] is sans-IO: commands, datagrams and time in; datagrams and events out.
//! - [`thread`] owns the socket and runs the core on its own OS thread, never on the tokio
//!   runtime; the focus talks to it only through bounded channels ([`Command`] in,
//!   [`Event`] out), so media never crosses the XMPP router and a busy SFU cannot stall it.
//!
//! str0m does the per-stream work itself: SRTP, NACK responses from its RTX cache,
//! receiver-side NACK generation, RTCP reports, TWCC feedback and bandwidth estimation.

pub mod core;
pub mod loopback;
pub mod simulcast;
pub mod tcp;
pub mod thread;
pub mod udp;

use std::net::SocketAddr;

pub use self::core::Sfu;
pub use thread::{spawn, SfuHandle};

/// A participant of a call, one per Jingle session; chosen by the focus.
pub type ParticipantId = u64;

/// Codecs the SFU forwards. Both ends of a forwarded stream must have negotiated the codec;
/// the payload type is rewritten from the publisher's number to the subscriber's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Opus,
    Vp8,
    Vp9,
    H264,
    Av1,
}

impl Codec {
    /// The codec of an RTP payload-type name (case-insensitive, RFC 4855).
    pub fn from_name(name: &str) -> Option<Codec> {
        match name.to_ascii_lowercase().as_str() {
            "opus" => Some(Codec::Opus),
            "vp8" => Some(Codec::Vp8),
            "vp9" => Some(Codec::Vp9),
            "h264" => Some(Codec::H264),
            "av1" => Some(Codec::Av1),
            _ => None,
        }
    }

    pub fn is_audio(self) -> bool {
        self == Codec::Opus
    }
}

/// One negotiated payload type of a participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadSpec {
    pub pt: u8,
    /// The RTX payload type paired with it (RFC 4588 `apt`), if any.
    pub rtx: Option<u8>,
    pub codec: Codec,
}

/// A stream a participant sends (one primary SSRC, optionally its RTX SSRC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSpec {
    /// The content (BUNDLE media id) it is sent on.
    pub mid: String,
    pub audio: bool,
    pub ssrc: u32,
    pub rtx: Option<u32>,
    /// Simulcast layers (SSRC, RTX) from low to high, the first being `ssrc`/`rtx`; empty
    /// when the track has one layer.
    pub layers: Vec<(u32, Option<u32>)>,
}

/// Everything the SFU needs to set up a participant's transport, from its session-initiate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinSpec {
    pub participant: ParticipantId,
    /// The call (room) it joins; media is forwarded only within a call.
    pub call: String,
    pub local_ufrag: String,
    pub local_pwd: String,
    pub remote_ufrag: String,
    pub remote_pwd: String,
    /// The remote DTLS fingerprint (hash name as in SDP, e.g. "sha-256").
    pub remote_fingerprint: (String, Vec<u8>),
    /// Whether the remote is the DTLS client (it answered/offered `setup=active`/`actpass`).
    pub remote_is_dtls_client: bool,
    pub payloads: Vec<PayloadSpec>,
    /// Header extensions by id and URI, as negotiated.
    pub extensions: Vec<(u8, String)>,
    /// The contents it sends on: media id and whether it is audio.
    pub medias: Vec<(String, bool)>,
    pub tracks: Vec<TrackSpec>,
    /// Remote ICE candidates as SDP `candidate:` lines (ICE-lite needs none, but takes them).
    pub candidates: Vec<String>,
}

/// Instructions from the focus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Join(Box<JoinSpec>),
    /// A trickled candidate (transport-info).
    Candidate {
        participant: ParticipantId,
        candidate: String,
    },
    /// A new content or source the participant sends (content-add, description-info).
    Publish {
        participant: ParticipantId,
        track: TrackSpec,
    },
    Unpublish {
        participant: ParticipantId,
        ssrc: u32,
    },
    /// Start forwarding a publisher's track (`publisher`, `ssrc`) to a subscriber on the
    /// subscriber's content `mid`, as `out_ssrc`/`out_rtx`: the SSRCs announced to the
    /// subscriber in the content-add (unique within its session, chosen by the focus).
    Subscribe {
        subscriber: ParticipantId,
        mid: String,
        publisher: ParticipantId,
        ssrc: u32,
        out_ssrc: u32,
        out_rtx: Option<u32>,
    },
    /// The highest simulcast layer a subscriber wants of a stream (0 = lowest), e.g. low
    /// for a thumbnail, high for the large tile or a screen share.
    PreferLayer {
        subscriber: ParticipantId,
        mid: String,
        max: usize,
    },
    Unsubscribe {
        subscriber: ParticipantId,
        mid: String,
    },
    /// Stop or resume forwarding a publisher's tracks (moderator mute).
    SetForwarding {
        publisher: ParticipantId,
        audio: bool,
        enabled: bool,
    },
    Leave {
        participant: ParticipantId,
    },
}

/// News for the focus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// ICE and DTLS are up: media flows.
    Connected(ParticipantId),
    /// The participant's network is gone (ICE disconnected, or never connected in time);
    /// the SFU has already dropped it.
    Gone(ParticipantId),
    /// The loudest participant of a call changed (RFC 6464 audio levels).
    DominantSpeaker { call: String, participant: ParticipantId },
}

/// Where the SFU listens and what it tells clients.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    pub listen: SocketAddr,
    /// ICE-TCP (RFC 6544 passive, RFC 4571 framing) on this address as well; `None` = UDP only.
    pub tcp_listen: Option<SocketAddr>,
    /// The ICE host candidate announced to clients (public address); `None` = the bound address.
    pub public: Option<SocketAddr>,
    /// Video of only the N most recent speakers is forwarded; 0 = all.
    pub last_n: usize,
}
