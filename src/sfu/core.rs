//! The sans-IO SFU: a set of str0m `Rtc`s (one per participant) and the routes between
//! them. Inputs: [`Sfu::command`], [`Sfu::datagram`], [`Sfu::timeout`], each with `now`.
//! Outputs: [`Sfu::poll_transmit`] (datagrams to send), [`Sfu::poll_event`] (news for the
//! focus) and [`Sfu::next_timeout`]. No sockets, no clock: the thread in `thread.rs`, the
//! tests and the benchmark drive it the same way.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::config::{CryptoProvider, DtlsCert, Fingerprint};
use str0m::format::{Codec as StrCodec, FormatParams};
use str0m::media::{Frequency, KeyframeRequestKind, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, ExtensionMap, ExtensionValues, RtpPacket, RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event as RtcEvent, IceConnectionState, IceCreds, Input, Output, Rtc};

use super::{Codec, Command, Event, JoinSpec, ParticipantId, PayloadSpec, TrackSpec};

/// A participant that has not connected by then is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A connected participant from whom nothing (media, RTCP, ICE consent checks) has
/// arrived for this long has lost its network. Clients send RTCP at least every few
/// seconds and consent checks every ~5 s, so this is well above normal gaps.
const SILENCE_TIMEOUT: Duration = Duration::from_secs(8);
/// How often the dominant speaker is re-evaluated.
const SPEAKER_INTERVAL: Duration = Duration::from_millis(300);
/// First sequence number a subscriber sees of a forwarded stream (leaves room for
/// packets that arrive reordered just before the first one).
const SEQ_START: i64 = 1000;

/// A datagram to send.
#[derive(Debug)]
pub struct Transmit {
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

/// Forwarding of one publisher track to one subscriber content.
#[derive(Debug, Clone)]
struct Route {
    subscriber: ParticipantId,
    mid: Mid,
    /// The SSRC the subscriber knows the stream by (announced in its content-add).
    out_ssrc: u32,
}

struct Subscription {
    publisher: ParticipantId,
    ssrc: u32,
    /// Publisher's extended sequence number mapped to SEQ_START.
    seq_base: Option<i64>,
}

struct Participant {
    rtc: Rtc,
    call: String,
    joined: Instant,
    /// When its last datagram arrived.
    last_heard: Instant,
    connected: bool,
    payloads: Vec<PayloadSpec>,
    tracks: Vec<TrackSpec>,
    forward_audio: bool,
    forward_video: bool,
    subscriptions: HashMap<Mid, Subscription>,
    next_timeout: Instant,
    /// Smoothed voice loudness (0 = silence, 127 = loudest), from RFC 6464 levels.
    loudness: f32,
}

/// The SFU core.
pub struct Sfu {
    participants: HashMap<ParticipantId, Participant>,
    /// Which participant a remote address belongs to, learnt from `Rtc::accepts`.
    by_addr: HashMap<SocketAddr, ParticipantId>,
    routes: HashMap<(ParticipantId, u32), Vec<Route>>,
    /// The address in our ICE candidate: what str0m sees as every datagram's destination.
    local: SocketAddr,
    crypto: Arc<CryptoProvider>,
    cert: DtlsCert,
    fingerprint: Fingerprint,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// Participants whose `Rtc` has pending output.
    dirty: Vec<ParticipantId>,
    dominant: HashMap<String, ParticipantId>,
    last_speaker_check: Option<Instant>,
    /// Packets forwarded (one per subscriber write), for metrics and the benchmark.
    pub forwarded: u64,
    /// Bandwidth estimation (and with it str0m's pacer) for new participants.
    bwe: bool,
    /// Video of only the N most recent speakers of a call is forwarded; 0 = all.
    last_n: usize,
    /// Per call, participants by how recently they were the dominant speaker (then by
    /// joining order): the first `last_n` have their video forwarded.
    recency: HashMap<String, Vec<ParticipantId>>,
}

impl Sfu {
    /// An SFU whose ICE candidate is `local`. One DTLS certificate serves every
    /// participant, so the focus can put its fingerprint in an answer without asking.
    pub fn new(local: SocketAddr, now: Instant) -> std::io::Result<Sfu> {
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| std::io::Error::other("the DTLS provider cannot make a certificate"))?;
        let mut probe = Rtc::builder().set_crypto_provider(crypto.clone()).set_dtls_cert(cert.clone()).build(now);
        let fingerprint = probe.direct_api().local_dtls_fingerprint().clone();
        Ok(Sfu {
            participants: HashMap::new(),
            by_addr: HashMap::new(),
            routes: HashMap::new(),
            local,
            crypto,
            cert,
            fingerprint,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            dirty: Vec::new(),
            dominant: HashMap::new(),
            last_speaker_check: None,
            forwarded: 0,
            bwe: true,
            last_n: 0,
            recency: HashMap::new(),
        })
    }

    /// Forward the video of only the `n` most recent speakers of each call (0 = all).
    pub fn set_last_n(&mut self, n: usize) {
        self.last_n = n;
    }

    /// Turn bandwidth estimation (TWCC-driven, with pacing) off for participants that join
    /// from now on: the benchmark measures bare forwarding with it off.
    pub fn set_bwe(&mut self, on: bool) {
        self.bwe = on;
    }

    /// The certificate fingerprint every participant sees: hash name and digest.
    pub fn fingerprint(&self) -> (String, Vec<u8>) {
        (self.fingerprint.hash_func.clone(), self.fingerprint.bytes.clone())
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn participant_count(&self) -> usize {
        self.participants.len()
    }

    pub fn is_connected(&self, p: ParticipantId) -> bool {
        self.participants.get(&p).is_some_and(|p| p.connected)
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Sfu::timeout`] must next be called.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.participants.values().map(|p| p.next_timeout).min()
    }

    pub fn command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Join(spec) => self.join(now, *spec),
            Command::Candidate { participant, candidate } => {
                if let Some(p) = self.participants.get_mut(&participant) {
                    match Candidate::from_sdp_string(&candidate) {
                        Ok(c) => p.rtc.add_remote_candidate(c),
                        Err(e) => tracing::debug!(participant, "ignoring a bad candidate: {e}"),
                    }
                }
            }
            Command::Publish { participant, track } => {
                if let Some(p) = self.participants.get_mut(&participant) {
                    publish(p, track);
                    self.dirty.push(participant);
                }
            }
            Command::Unpublish { participant, ssrc } => {
                if let Some(p) = self.participants.get_mut(&participant) {
                    p.tracks.retain(|t| t.ssrc != ssrc);
                    p.rtc.direct_api().remove_stream_rx(Ssrc::from(ssrc));
                }
                self.routes.remove(&(participant, ssrc));
            }
            Command::Subscribe { subscriber, mid, publisher, ssrc, out_ssrc, out_rtx } => {
                self.subscribe(subscriber, &mid, (publisher, ssrc), out_ssrc, out_rtx)
            }
            Command::Unsubscribe { subscriber, mid } => self.unsubscribe(subscriber, Mid::from(mid.as_str())),
            Command::SetForwarding { publisher, audio, enabled } => {
                if let Some(p) = self.participants.get_mut(&publisher) {
                    if audio {
                        p.forward_audio = enabled;
                    } else {
                        p.forward_video = enabled;
                    }
                }
                if enabled && !audio {
                    self.request_keyframes(publisher, None);
                }
            }
            Command::Leave { participant } => self.remove(participant),
        }
        self.drive(now);
    }

    fn join(&mut self, now: Instant, spec: JoinSpec) {
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
            cfg = cfg.enable_bwe(None);
        }
        *cfg.codec_config() = codecs;
        let mut rtc = cfg.build(now);
        match Candidate::host(self.local, "udp") {
            Ok(c) => {
                rtc.add_local_candidate(c);
            }
            Err(e) => tracing::warn!("the SFU's own address is not a usable candidate: {e}"),
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
            next_timeout: now,
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

    fn subscribe(
        &mut self,
        sub: ParticipantId,
        mid: &str,
        track: (ParticipantId, u32),
        out_ssrc: u32,
        out_rtx: Option<u32>,
    ) {
        let (publisher, ssrc) = track;
        let Some(audio) =
            self.participants.get(&publisher).and_then(|p| p.tracks.iter().find(|t| t.ssrc == ssrc)).map(|t| t.audio)
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
        api.declare_stream_tx(Ssrc::from(out_ssrc), out_rtx.map(Ssrc::from), mid, None);
        s.subscriptions.insert(mid, Subscription { publisher, ssrc, seq_base: None });
        self.routes.entry((publisher, ssrc)).or_default().push(Route { subscriber: sub, mid, out_ssrc });
        if !audio {
            self.request_keyframes(publisher, Some(ssrc));
        }
    }

    fn unsubscribe(&mut self, sub: ParticipantId, mid: Mid) {
        let Some(s) = self.participants.get_mut(&sub) else { return };
        let Some(subscription) = s.subscriptions.remove(&mid) else { return };
        s.rtc.direct_api().remove_media(mid);
        if let Some(routes) = self.routes.get_mut(&(subscription.publisher, subscription.ssrc)) {
            routes.retain(|r| !(r.subscriber == sub && r.mid == mid));
        }
    }

    fn remove(&mut self, id: ParticipantId) {
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

    fn request_keyframes(&mut self, publisher: ParticipantId, ssrc: Option<u32>) {
        let Some(p) = self.participants.get_mut(&publisher) else { return };
        for t in p.tracks.iter().filter(|t| !t.audio && ssrc.is_none_or(|s| s == t.ssrc)) {
            if let Some(rx) = p.rtc.direct_api().stream_rx(&Ssrc::from(t.ssrc)) {
                rx.request_keyframe(KeyframeRequestKind::Pli);
            }
        }
        self.dirty.push(publisher);
    }

    /// A datagram arrived at the SFU's socket from `source`.
    pub fn datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        let Ok(recv) = Receive::new(Protocol::Udp, source, self.local, data) else {
            return;
        };
        let input = Input::Receive(now, recv);
        let id = match self.by_addr.get(&source) {
            Some(id) if self.participants.get(id).is_some_and(|p| p.rtc.accepts(&input)) => *id,
            _ => match self.participants.iter().find(|(_, p)| p.rtc.accepts(&input)) {
                Some((id, _)) => {
                    self.by_addr.insert(source, *id);
                    *id
                }
                None => return,
            },
        };
        if let Some(p) = self.participants.get_mut(&id) {
            p.last_heard = now;
            if let Err(e) = p.rtc.handle_input(input) {
                tracing::debug!(participant = id, "str0m refused a datagram: {e}");
            }
            self.dirty.push(id);
        }
        self.drive(now);
    }

    /// Time has passed: run every participant whose timer is due.
    pub fn timeout(&mut self, now: Instant) {
        let mut expired = Vec::new();
        for (id, p) in self.participants.iter_mut() {
            let silent = p.connected && now.saturating_duration_since(p.last_heard) > SILENCE_TIMEOUT;
            if silent || (!p.connected && now.saturating_duration_since(p.joined) > CONNECT_TIMEOUT) {
                expired.push(*id);
                continue;
            }
            if p.next_timeout <= now {
                if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                    tracing::debug!(participant = id, "str0m timeout: {e}");
                }
                self.dirty.push(*id);
            }
        }
        for id in expired {
            self.gone(id);
        }
        self.drive(now);
        if self.last_speaker_check.is_none_or(|t| now.saturating_duration_since(t) >= SPEAKER_INTERVAL) {
            self.last_speaker_check = Some(now);
            self.dominant_speakers();
            self.drive(now);
        }
    }

    fn gone(&mut self, id: ParticipantId) {
        if self.participants.contains_key(&id) {
            self.remove(id);
            self.events.push_back(Event::Gone(id));
        }
    }

    /// Poll every dirty `Rtc` until it has nothing more to say, acting on its events
    /// (forwarding RTP makes other participants dirty in turn).
    fn drive(&mut self, now: Instant) {
        let mut rounds = 0;
        while let Some(id) = self.dirty.pop() {
            rounds += 1;
            if rounds > 100_000 {
                tracing::error!("SFU drive loop did not settle; dropping pending work");
                self.dirty.clear();
                break;
            }
            let mut events = Vec::new();
            let Some(p) = self.participants.get_mut(&id) else { continue };
            loop {
                match p.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => {
                        p.next_timeout = t;
                        break;
                    }
                    Ok(Output::Transmit(t)) => {
                        self.transmits.push_back(Transmit { destination: t.destination, contents: t.contents.to_vec() })
                    }
                    Ok(Output::Event(e)) => events.push(e),
                    Err(e) => {
                        tracing::debug!(participant = id, "str0m: {e}");
                        p.next_timeout = now + Duration::from_millis(100);
                        break;
                    }
                }
            }
            let alive = p.rtc.is_alive();
            for e in events {
                self.on_rtc_event(now, id, e);
            }
            if !alive {
                self.gone(id);
            }
            self.dirty.dedup();
        }
    }

    fn on_rtc_event(&mut self, now: Instant, id: ParticipantId, e: RtcEvent) {
        match e {
            RtcEvent::RtpPacket(pkt) => self.forward(now, id, pkt),
            RtcEvent::Connected => {
                if let Some(p) = self.participants.get_mut(&id) {
                    p.connected = true;
                }
                self.events.push_back(Event::Connected(id));
                // A subscriber that just connected needs a picture from everyone it watches.
                let publishers: Vec<(ParticipantId, u32)> = self
                    .participants
                    .get(&id)
                    .map(|p| p.subscriptions.values().map(|s| (s.publisher, s.ssrc)).collect())
                    .unwrap_or_default();
                for (publisher, ssrc) in publishers {
                    self.request_keyframes(publisher, Some(ssrc));
                }
            }
            RtcEvent::IceConnectionStateChange(IceConnectionState::Disconnected) => self.gone(id),
            RtcEvent::KeyframeRequest(req) => {
                let target = self
                    .participants
                    .get(&id)
                    .and_then(|p| p.subscriptions.get(&req.mid))
                    .map(|s| (s.publisher, s.ssrc));
                if let Some((publisher, ssrc)) = target {
                    if let Some(p) = self.participants.get_mut(&publisher) {
                        if let Some(rx) = p.rtc.direct_api().stream_rx(&Ssrc::from(ssrc)) {
                            rx.request_keyframe(req.kind);
                        }
                        self.dirty.push(publisher);
                    }
                }
            }
            _ => {}
        }
    }

    /// Write one received RTP packet to every subscriber of its track.
    fn forward(&mut self, now: Instant, publisher: ParticipantId, pkt: RtpPacket) {
        let ssrc = *pkt.header.ssrc;
        let Some(p) = self.participants.get_mut(&publisher) else { return };
        let Some(track) = p.tracks.iter().find(|t| t.ssrc == ssrc) else { return };
        let audio = track.audio;
        if audio {
            if let Some(level) = pkt.header.ext_vals.audio_level {
                let loud = (127 + i32::from(level).clamp(-127, 0)) as f32;
                p.loudness = p.loudness * 0.9 + loud * 0.1;
            }
        }
        if (audio && !p.forward_audio) || (!audio && !p.forward_video) {
            return;
        }
        if !audio && self.last_n > 0 {
            let rank = self.recency.get(&p.call).and_then(|o| o.iter().position(|x| *x == publisher));
            if rank.is_none_or(|r| r >= self.last_n) {
                return;
            }
        }
        let Some(codec) = p.payloads.iter().find(|s| s.pt == *pkt.header.payload_type).map(|s| s.codec) else {
            return;
        };
        let Some(routes) = self.routes.get(&(publisher, ssrc)) else { return };
        let ext = ExtensionValues {
            audio_level: pkt.header.ext_vals.audio_level,
            voice_activity: pkt.header.ext_vals.voice_activity,
            video_orientation: pkt.header.ext_vals.video_orientation,
            ..ExtensionValues::default()
        };
        let seq = *pkt.seq_no as i64;
        for r in routes {
            let Some(s) = self.participants.get_mut(&r.subscriber) else { continue };
            if !s.connected {
                continue;
            }
            let Some(pt) = s.payloads.iter().find(|x| x.codec == codec).map(|x| x.pt) else { continue };
            let Some(sub) = s.subscriptions.get_mut(&r.mid) else { continue };
            let base = *sub.seq_base.get_or_insert(seq);
            let out = seq - base + SEQ_START;
            if out < 0 {
                continue;
            }
            let mut api = s.rtc.direct_api();
            let Some(tx) = api.stream_tx(&Ssrc::from(r.out_ssrc)) else { continue };
            tx.write_rtp(
                RtpWrite::new(Pt::from(pt), SeqNo::from(out as u64), pkt.header.timestamp, now, pkt.payload.clone())
                    .marker(pkt.header.marker)
                    .ext_vals(ext.clone())
                    .nackable(!audio),
            );
            self.forwarded += 1;
            self.dirty.push(r.subscriber);
        }
    }

    /// Tell the focus when a call's loudest participant changes.
    fn dominant_speakers(&mut self) {
        let mut loudest: HashMap<&str, (ParticipantId, f32)> = HashMap::new();
        for (id, p) in &self.participants {
            let e = loudest.entry(p.call.as_str()).or_insert((*id, -1.0));
            if p.loudness > e.1 {
                *e = (*id, p.loudness);
            }
        }
        let mut changes = Vec::new();
        for (call, (id, level)) in loudest {
            if level > 20.0 && self.dominant.get(call) != Some(&id) {
                changes.push((call.to_string(), id));
            }
        }
        for (call, id) in changes {
            self.dominant.insert(call.clone(), id);
            let order = self.recency.entry(call.clone()).or_default();
            let was = order.iter().position(|x| *x == id);
            order.retain(|x| *x != id);
            order.insert(0, id);
            if self.last_n > 0 && was.is_none_or(|r| r >= self.last_n) {
                // Its video starts flowing again: subscribers need a keyframe to show it.
                self.request_keyframes(id, None);
            }
            self.events.push_back(Event::DominantSpeaker { call, participant: id });
        }
    }
}

fn publish(p: &mut Participant, t: TrackSpec) {
    let mid = Mid::from(t.mid.as_str());
    if p.rtc.media(mid).is_none() {
        p.rtc.direct_api().declare_media(mid, kind(t.audio));
    }
    p.rtc.direct_api().expect_stream_rx(Ssrc::from(t.ssrc), t.rtx.map(Ssrc::from), mid, None);
    p.tracks.retain(|x| x.ssrc != t.ssrc);
    p.tracks.push(t);
}

fn kind(audio: bool) -> MediaKind {
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
