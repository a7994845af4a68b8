//! Participants coming and going: an `Rtc` per participant from its [`JoinSpec`], the
//! streams it sends, and the subscriptions between participants.

use std::collections::HashMap;
use std::time::Instant;

use str0m::config::Fingerprint;
use str0m::format::{Codec as StrCodec, FormatParams};
use str0m::media::{Frequency, MediaKind, Mid, Pt};
use str0m::net::TcpType;
use str0m::rtp::{Extension, ExtensionMap, Ssrc};
use str0m::{Candidate, IceCreds, Rtc};

use super::{Participant, Route, Sfu, Subscription};
use crate::sfu::simulcast::Rewriter;
use crate::sfu::{Codec, JoinSpec, ParticipantId, TrackSpec};

impl Sfu {
    pub(super) fn join(&mut self, now: Instant, spec: JoinSpec) {
        let mut codecs = str0m::format::CodecConfig::empty();
        for p in &spec.payloads {
            let (codec, clock, channels) = match p.codec {
                Codec::Opus => (StrCodec::Opus, Frequency::FORTY_EIGHT_KHZ, Some(2)),
                Codec::Vp8 => (StrCodec::Vp8, Frequency::NINETY_KHZ, None),
                Codec::Vp9 => (StrCodec::Vp9, Frequency::NINETY_KHZ, None),
                Codec::H264 => (StrCodec::H264, Frequency::NINETY_KHZ, None),
                Codec::Av1 => (StrCodec::Av1, Frequency::NINETY_KHZ, None),
            };
            codecs.add_config(Pt::from(p.pt), p.rtx.map(Pt::from), codec, clock, channels, FormatParams::default());
        }
        let mut exts = ExtensionMap::empty();
        for (id, uri) in &spec.extensions {
            if let Some(e) = extension(uri) {
                exts.set(*id, e);
            }
        }
        let mut cfg = Rtc::builder()
            .set_rtp_mode(true)
            .set_ice_lite(true)
            .set_crypto_provider(self.crypto.clone())
            .set_dtls_cert(self.cert.clone())
            .set_extension_map(exts)
            .set_local_ice_credentials(IceCreds { ufrag: spec.local_ufrag.clone(), pass: spec.local_pwd.clone() });
        if self.bwe {
            // `enable_bwe(None)` would turn it off: str0m wants the starting estimate.
            cfg = cfg.enable_bwe(Some(super::INITIAL_ESTIMATE));
        }
        *cfg.codec_config() = codecs;
        let mut rtc = cfg.build(now);
        match Candidate::host(self.local, "udp") {
            Ok(c) => {
                rtc.add_local_candidate(c);
            }
            Err(e) => tracing::warn!("the SFU's own address is not a usable candidate: {e}"),
        }
        if let Some(tcp) = self.local_tcp {
            match Candidate::builder().tcp().host(tcp).tcptype(TcpType::Passive).build() {
                Ok(c) => {
                    rtc.add_local_candidate(c);
                }
                Err(e) => tracing::warn!("the SFU's TCP address is not a usable candidate: {e}"),
            }
        }
        for c in &spec.candidates {
            if let Ok(c) = Candidate::from_sdp_string(c) {
                rtc.add_remote_candidate(c);
            }
        }
        {
            let mut api = rtc.direct_api();
            api.set_remote_ice_credentials(IceCreds {
                ufrag: spec.remote_ufrag.clone(),
                pass: spec.remote_pwd.clone(),
            });
            api.set_remote_fingerprint(Fingerprint {
                hash_func: spec.remote_fingerprint.0.clone(),
                bytes: spec.remote_fingerprint.1.clone(),
            });
            api.set_ice_controlling(false);
            api.enable_twcc_feedback();
            if let Err(e) = api.start_dtls(!spec.remote_is_dtls_client) {
                tracing::warn!(participant = spec.participant, "cannot start DTLS: {e}");
                return;
            }
            for (mid, audio) in &spec.medias {
                api.declare_media(Mid::from(mid.as_str()), kind(*audio));
            }
        }
        let mut p = Participant {
            rtc,
            call: spec.call,
            joined: now,
            last_heard: now,
            connected: false,
            payloads: spec.payloads,
            tracks: Vec::new(),
            forward_audio: true,
            forward_video: true,
            subscriptions: HashMap::new(),
            layer_of: HashMap::new(),
            layer_bytes: HashMap::new(),
            layer_rates: HashMap::new(),
            estimate: None,
            next_timeout: now,
            fed: false,
            loudness: 0.0,
        };
        for t in spec.tracks {
            publish(&mut p, t);
        }
        self.recency.entry(p.call.clone()).or_default().push(spec.participant);
        if let Some(old) = self.participants.insert(spec.participant, p) {
            drop(old);
            tracing::warn!(participant = spec.participant, "participant id reused; the old one was replaced");
        }
        self.dirty.push(spec.participant);
    }

    pub(super) fn subscribe(
        &mut self,
        sub: ParticipantId,
        mid: &str,
        track: (ParticipantId, u32),
        out_ssrc: u32,
        out_rtx: Option<u32>,
    ) {
        let (publisher, ssrc) = track;
        let Some((audio, layers)) = self
            .participants
            .get(&publisher)
            .and_then(|p| p.tracks.iter().find(|t| t.ssrc == ssrc))
            .map(|t| (t.audio, t.layers.len()))
        else {
            return;
        };
        let Some(s) = self.participants.get_mut(&sub) else { return };
        let mid = Mid::from(mid);
        if s.subscriptions.contains_key(&mid) {
            return;
        }
        let mut api = s.rtc.direct_api();
        api.declare_media(mid, kind(audio));
        if api.stream_tx(&Ssrc::from(out_ssrc)).is_some() {
            tracing::warn!(subscriber = sub, out_ssrc, "SSRC already used towards this participant; not forwarding");
            api.remove_media(mid);
            return;
        }
        // Forwarded media is not paced (str0m leaves audio unpaced already; this is for
        // video): the publisher paced it, and str0m's pacer, on with BWE, holds video to
        // the bandwidth estimate, which starts low and grows only with feedback, so a
        // call's first seconds queued up to 2 s of video. BWE still runs on the TWCC
        // feedback for what is sent and probes with padding: the estimate that picks
        // simulcast layers keeps coming, and a lower layer is how the rate comes down.
        api.declare_stream_tx(Ssrc::from(out_ssrc), out_rtx.map(Ssrc::from), mid, None).set_unpaced(true);
        s.subscriptions.insert(mid, Subscription { publisher, ssrc, audio, rw: Rewriter::new(layers) });
        self.routes.entry((publisher, ssrc)).or_default().push(Route { subscriber: sub, mid, out_ssrc });
        if !audio {
            self.request_keyframes(publisher, Some(ssrc));
        }
    }

    pub(super) fn unsubscribe(&mut self, sub: ParticipantId, mid: Mid) {
        let Some(s) = self.participants.get_mut(&sub) else { return };
        let Some(subscription) = s.subscriptions.remove(&mid) else { return };
        s.rtc.direct_api().remove_media(mid);
        if let Some(routes) = self.routes.get_mut(&(subscription.publisher, subscription.ssrc)) {
            routes.retain(|r| !(r.subscriber == sub && r.mid == mid));
        }
    }

    pub(super) fn remove(&mut self, id: ParticipantId) {
        let Some(mut p) = self.participants.remove(&id) else { return };
        p.rtc.disconnect();
        if let Some(order) = self.recency.get_mut(&p.call) {
            order.retain(|x| *x != id);
            if order.is_empty() {
                self.recency.remove(&p.call);
            }
        }
        self.by_addr.retain(|_, v| *v != id);
        self.routes.retain(|(publisher, _), _| *publisher != id);
        for routes in self.routes.values_mut() {
            routes.retain(|r| r.subscriber != id);
        }
        // Forget subscriptions others had to this participant's tracks.
        for other in self.participants.values_mut() {
            let gone: Vec<Mid> =
                other.subscriptions.iter().filter(|(_, s)| s.publisher == id).map(|(m, _)| *m).collect();
            for m in gone {
                other.subscriptions.remove(&m);
                other.rtc.direct_api().remove_media(m);
            }
        }
    }
}

pub(super) fn publish(p: &mut Participant, t: TrackSpec) {
    let mid = Mid::from(t.mid.as_str());
    if p.rtc.media(mid).is_none() {
        p.rtc.direct_api().declare_media(mid, kind(t.audio));
    }
    let single = [(t.ssrc, t.rtx)];
    let layers = if t.layers.is_empty() { &single[..] } else { &t.layers[..] };
    for (i, (ssrc, rtx)) in layers.iter().enumerate() {
        p.rtc.direct_api().expect_stream_rx(Ssrc::from(*ssrc), rtx.map(Ssrc::from), mid, None);
        p.layer_of.insert(*ssrc, (t.ssrc, i));
    }
    p.tracks.retain(|x| x.ssrc != t.ssrc);
    p.tracks.push(t);
}

pub(super) fn kind(audio: bool) -> MediaKind {
    if audio {
        MediaKind::Audio
    } else {
        MediaKind::Video
    }
}

/// str0m's extension for a XEP-0294 / RFC 8285 URI.
fn extension(uri: &str) -> Option<Extension> {
    [
        Extension::AudioLevel,
        Extension::TransportSequenceNumber,
        Extension::AbsoluteSendTime,
        Extension::RtpMid,
        Extension::VideoOrientation,
        Extension::TransmissionTimeOffset,
    ]
    .into_iter()
    .find(|e| e.as_uri() == uri)
}
