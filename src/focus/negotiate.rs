//! Offer/answer on Jingle data: which payload types, feedback and header extensions of a
//! participant's offer the SFU accepts, what it sends back, and the descriptions of the
//! streams it forwards to a participant. Pure functions over [`crate::jingle`] types.

use crate::jingle::{
    Candidate, Content, Creator, Fingerprint, HdrExt, IceTransport, JingleError, Media, PayloadType, RtcpFb,
    RtpDescription, Senders, Source, SsrcGroup,
};
use crate::sfu::{Codec, PayloadSpec, TrackSpec};

/// Header extensions the SFU understands (RFC 8285 URIs as in XEP-0294).
pub const EXTENSIONS: &[&str] = &[
    "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
    "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "urn:ietf:params:rtp-hdrext:sdes:mid",
    "urn:3gpp:video-orientation",
];

/// RTCP feedback the SFU answers to (XEP-0293).
fn feedback_supported(f: &RtcpFb) -> bool {
    matches!(
        (f.kind.as_str(), f.subtype.as_deref()),
        ("nack", None) | ("nack", Some("pli")) | ("ccm", Some("fir")) | ("transport-cc", None) | ("goog-remb", None)
    )
}

/// The part of a content's offer the SFU accepts: payload types it can forward (and
/// their RTX), the feedback and extensions it supports.
pub fn accept_description(offer: &RtpDescription) -> Result<RtpDescription, JingleError> {
    let mut d = RtpDescription::new(offer.media);
    for pt in &offer.payload_types {
        let keep = match Codec::from_name(&pt.name) {
            Some(c) => c.is_audio() == (offer.media == Media::Audio),
            None => false,
        };
        if keep {
            let mut pt = pt.clone();
            pt.rtcp_fbs.retain(feedback_supported);
            d.payload_types.push(pt);
        }
    }
    let kept: Vec<u8> = d.payload_types.iter().map(|p| p.id).collect();
    for pt in offer.payload_types.iter().filter(|p| p.name.eq_ignore_ascii_case("rtx")) {
        if pt.parameter("apt").and_then(|a| a.parse::<u8>().ok()).is_some_and(|apt| kept.contains(&apt)) {
            d.payload_types.push(pt.clone());
        }
    }
    if kept.is_empty() {
        return Err(JingleError::new(format!(
            "no codec the conference forwards for {} (it forwards Opus, VP8, VP9, H264, AV1)",
            offer.media.as_str()
        )));
    }
    d.rtcp_fbs = offer.rtcp_fbs.iter().filter(|f| feedback_supported(f)).cloned().collect();
    d.hdrexts = offer.hdrexts.iter().filter(|h| EXTENSIONS.contains(&h.uri.as_str())).cloned().collect();
    d.rtcp_mux = true;
    Ok(d)
}

/// The SFU's view of an accepted description's payload types.
pub fn payload_specs(d: &RtpDescription) -> Vec<PayloadSpec> {
    let rtx_for = |id: u8| {
        d.payload_types
            .iter()
            .find(|p| {
                p.name.eq_ignore_ascii_case("rtx") && p.parameter("apt").and_then(|a| a.parse::<u8>().ok()) == Some(id)
            })
            .map(|p| p.id)
    };
    d.payload_types
        .iter()
        .filter_map(|p| Codec::from_name(&p.name).map(|codec| PayloadSpec { pt: p.id, rtx: rtx_for(p.id), codec }))
        .collect()
}

/// The track a content sends: its first primary source and that source's RTX, or with a
/// XEP-0339 `SIM` group, the simulcast layers it lists (low to high), each with its RTX.
pub fn track(content: &Content, d: &RtpDescription) -> Option<TrackSpec> {
    let audio = d.media == Media::Audio;
    let sim = d.ssrc_groups.iter().find(|g| g.semantics == "SIM" && g.ssrcs.len() > 1);
    if let (Some(g), false) = (sim, audio) {
        let layers: Vec<(u32, Option<u32>)> = g.ssrcs.iter().take(4).map(|s| (*s, d.rtx_of(*s))).collect();
        let (ssrc, rtx) = layers[0];
        return Some(TrackSpec { mid: content.name.clone(), audio, ssrc, rtx, layers });
    }
    let src = d.primary_sources().next()?;
    Some(TrackSpec { mid: content.name.clone(), audio, ssrc: src.ssrc, rtx: d.rtx_of(src.ssrc), layers: Vec::new() })
}

/// The focus's transport: its ICE credentials, certificate, its UDP host candidate and,
/// when ICE-TCP is on, a `tcptype passive` TCP host candidate (RFC 6544) for clients
/// whose network lets no UDP through.
pub fn focus_transport(
    ufrag: &str,
    pwd: &str,
    fp: &(String, Vec<u8>),
    setup: &str,
    addr: std::net::SocketAddr,
    tcp: Option<std::net::SocketAddr>,
) -> IceTransport {
    let mut candidates = vec![Candidate {
        component: 1,
        foundation: "1".into(),
        generation: 0,
        id: "sfu1".into(),
        ip: addr.ip(),
        port: addr.port(),
        // RFC 8445 §5.1.2.1 host candidate priority for component 1.
        priority: 2_130_706_431,
        protocol: "udp".into(),
        kind: "host".into(),
        rel_addr: None,
        rel_port: None,
        tcptype: None,
    }];
    if let Some(tcp) = tcp {
        candidates.push(Candidate {
            foundation: "2".into(),
            id: "sfu2".into(),
            ip: tcp.ip(),
            port: tcp.port(),
            // RFC 6544 §4.2: type preference below UDP's host (90 < 126), direction
            // preference 4 for a passive host candidate, component 1.
            priority: 90 * (1 << 24) + ((4 << 13) + 8191) * (1 << 8) + 255,
            protocol: "tcp".into(),
            tcptype: Some("passive".into()),
            ..candidates[0].clone()
        });
    }
    IceTransport {
        ufrag: Some(ufrag.into()),
        pwd: Some(pwd.into()),
        fingerprint: Some(Fingerprint { hash: fp.0.clone(), setup: setup.into(), value: fp.1.clone() }),
        candidates,
    }
}

/// What the focus tells a subscriber about a stream it forwards: a content the focus
/// (the responder) sends, using the subscriber's own payload types for the codec family
/// when it offered any, else the publisher's.
#[allow(clippy::too_many_arguments)]
pub fn forwarded_content(
    name: &str,
    media: Media,
    subscriber: Option<&RtpDescription>,
    publisher: &RtpDescription,
    ssrc: u32,
    rtx: Option<u32>,
    msid: &str,
    cname: &str,
    transport: IceTransport,
) -> Content {
    let base = subscriber.unwrap_or(publisher);
    let mut d = RtpDescription::new(media);
    let pub_codecs: Vec<Codec> = payload_specs(publisher).iter().map(|p| p.codec).collect();
    let sub_specs = payload_specs(base);
    d.payload_types = base
        .payload_types
        .iter()
        .filter(|p| match Codec::from_name(&p.name) {
            Some(c) => pub_codecs.contains(&c),
            None => sub_specs.iter().any(|s| Some(p.id) == s.rtx && pub_codecs.contains(&s.codec)),
        })
        .cloned()
        .collect::<Vec<PayloadType>>();
    d.rtcp_fbs = base.rtcp_fbs.clone();
    d.hdrexts = base.hdrexts.clone();
    let params =
        |_: u32| vec![("cname".to_string(), Some(cname.to_string())), ("msid".to_string(), Some(msid.to_string()))];
    d.sources.push(Source { ssrc, parameters: params(ssrc) });
    if let Some(r) = rtx {
        d.sources.push(Source { ssrc: r, parameters: params(r) });
        d.ssrc_groups.push(SsrcGroup { semantics: "FID".into(), ssrcs: vec![ssrc, r] });
    }
    Content {
        creator: Creator::Responder,
        name: name.into(),
        senders: Senders::Responder,
        description: Some(d),
        transport: Some(transport),
    }
}

/// Extensions of an accepted description, as the SFU's (id, URI) pairs.
pub fn extension_specs(d: &RtpDescription) -> Vec<(u8, String)> {
    d.hdrexts.iter().map(|HdrExt { id, uri }| (*id, uri.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jingle::{Action, Jingle};

    #[test]
    fn the_transport_offers_a_passive_tcp_candidate_below_udp_when_tcp_is_on() {
        let fp = ("sha-256".to_string(), vec![1, 2]);
        let udp = "192.0.2.1:10000".parse().unwrap();
        let only_udp = focus_transport("u", "p", &fp, "passive", udp, None);
        assert_eq!(only_udp.candidates.len(), 1);
        let both = focus_transport("u", "p", &fp, "passive", udp, Some("192.0.2.1:4443".parse().unwrap()));
        let tcp = &both.candidates[1];
        assert_eq!((tcp.protocol.as_str(), tcp.port, tcp.tcptype.as_deref()), ("tcp", 4443, Some("passive")));
        assert!(tcp.priority < both.candidates[0].priority, "UDP is preferred");
        assert_eq!(tcp.to_sdp(), format!("candidate:2 1 tcp {} 192.0.2.1 4443 typ host tcptype passive", tcp.priority));
        // Jingle keeps the attribute both ways.
        let j = Jingle {
            action: Some(Action::SessionAccept),
            sid: "s".into(),
            contents: vec![Content {
                creator: Creator::Initiator,
                name: "0".into(),
                senders: Senders::Both,
                description: None,
                transport: Some(both.clone()),
            }],
            ..Jingle::default()
        };
        let back = Jingle::parse(&j.to_element()).unwrap();
        assert_eq!(back.contents[0].transport.as_ref().map(|t| &t.candidates), Some(&both.candidates));
    }
}
