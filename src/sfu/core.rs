//! The sans-IO SFU: a set of str0m `Rtc`s (one per participant) and the routes between
//! them. Inputs: [`Sfu::command`], [`Sfu::datagram`], [`Sfu::timeout`], each with `now`.
//! Outputs: [`Sfu::poll_transmit`] (datagrams to send), [`Sfu::poll_event`] (news for the
//! focus) and [`Sfu::next_timeout`]. No sockets, no clock: the thread in `thread.rs`, the
//! tests and the benchmark drive it the same way.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::bwe::Bitrate;
use str0m::config::{CryptoProvider, DtlsCert, Fingerprint};
use str0m::media::Mid;
use str0m::net::{Protocol, Receive};
use str0m::rtp::Ssrc;
use str0m::{Candidate, Event as RtcEvent, IceConnectionState, Input, Output, Rtc};

use super::simulcast::Rewriter;
use super::{Command, Event, ParticipantId, PayloadSpec, TrackSpec};

mod media;
mod setup;
#[cfg(test)]
mod tests;

use setup::publish;

/// A participant that has not connected by then is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A connected participant from whom nothing (media, RTCP, ICE consent checks) has
/// arrived for this long has lost its network. Clients send RTCP at least every few
/// seconds and consent checks every ~5 s, so this is well above normal gaps.
const SILENCE_TIMEOUT: Duration = Duration::from_secs(8);
/// How often the dominant speaker is re-evaluated.
const SPEAKER_INTERVAL: Duration = Duration::from_millis(300);
/// Due timers run back to back for one participant before others get their turn. str0m's
/// pacer releases one packet per timeout, so this bounds the packets one subscriber sends
/// in one go: above the most a read batch (`thread.rs`) can forward to it.
const MAX_IMMEDIATE_TIMEOUTS: usize = 1024;
/// A timer this close is run at once: after each packet it releases, str0m's pacer asks to
/// be woken 1 µs after its last input, which a batch handled at one `now` never reaches.
const IMMEDIATE: Duration = Duration::from_micros(1);
/// How often subscribers still waiting for a keyframe are looked at (the repeats
/// themselves back off from 0.5 s, see `simulcast.rs`).
const KEYFRAME_CHECK: Duration = Duration::from_millis(100);
/// The bandwidth estimate a participant starts with, before TWCC feedback refines it:
/// enough for the lowest layers of a few cameras.
const INITIAL_ESTIMATE: Bitrate = Bitrate::kbps(600);

/// A datagram to send (over UDP, or as one RFC 4571 frame on the client's TCP connection).
#[derive(Debug)]
pub struct Transmit {
    pub proto: Protocol,
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
    audio: bool,
    rw: Rewriter,
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
    /// Incoming SSRC → (its track's SSRC, simulcast layer).
    layer_of: HashMap<u32, (u32, usize)>,
    /// Payload bytes received per incoming SSRC since the last rate update, and the rates.
    layer_bytes: HashMap<u32, u64>,
    layer_rates: HashMap<u32, u64>,
    /// The bandwidth estimate towards this participant (bits/s), from TWCC.
    estimate: Option<u64>,
    next_timeout: Instant,
    /// RTP was written to its send streams since its `Rtc` last had a timeout input (it is
    /// in `Sfu::fed`).
    fed: bool,
    /// Smoothed voice loudness (0 = silence, 127 = loudest), from RFC 6464 levels.
    loudness: f32,
}

/// The SFU core.
pub struct Sfu {
    participants: HashMap<ParticipantId, Participant>,
    /// Which participant a remote address belongs to, learnt from `Rtc::accepts`.
    by_addr: HashMap<(Protocol, SocketAddr), ParticipantId>,
    routes: HashMap<(ParticipantId, u32), Vec<Route>>,
    /// The address in our ICE candidate: what str0m sees as every datagram's destination.
    local: SocketAddr,
    /// The ICE-TCP passive candidate's address, when TCP is on (see `tcp.rs`).
    local_tcp: Option<SocketAddr>,
    crypto: Arc<CryptoProvider>,
    cert: DtlsCert,
    fingerprint: Fingerprint,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// Participants whose `Rtc` has pending output.
    dirty: Vec<ParticipantId>,
    /// Subscribers with forwarded RTP waiting in their send queues. str0m takes written
    /// packets into its pacer only on a timeout input, so each of these gets one
    /// (`Input::Timeout(now)`) once the incoming datagram, or the whole batch, has been
    /// handled: without it a packet waits for the subscriber's next own timer (5–40 ms).
    /// Once per subscriber and batch, not once per packet.
    fed: Vec<ParticipantId>,
    /// Between [`Sfu::begin_batch`] and [`Sfu::end_batch`]: `fed` subscribers wait for the
    /// end of the batch.
    batching: bool,
    dominant: HashMap<String, ParticipantId>,
    last_speaker_check: Option<Instant>,
    /// When layer bitrates were last computed.
    last_rates: Option<Instant>,
    /// When waiting subscribers' keyframe requests were last looked at.
    last_keyframe_check: Option<Instant>,
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
            local_tcp: None,
            crypto,
            cert,
            fingerprint,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            dirty: Vec::new(),
            fed: Vec::new(),
            batching: false,
            dominant: HashMap::new(),
            last_speaker_check: None,
            last_rates: None,
            last_keyframe_check: None,
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

    /// Offer ICE-TCP too: participants that join from now on get a `tcptype passive` host
    /// candidate at `addr`, and packets given to [`Sfu::receive`] with `Protocol::Tcp`
    /// are addressed to it.
    pub fn set_tcp(&mut self, addr: SocketAddr) {
        self.local_tcp = Some(addr);
    }

    pub fn local_tcp_addr(&self) -> Option<SocketAddr> {
        self.local_tcp
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
                    let layers: Vec<u32> =
                        p.layer_of.iter().filter(|(_, (track, _))| *track == ssrc).map(|(l, _)| *l).collect();
                    for l in layers {
                        p.layer_of.remove(&l);
                        p.rtc.direct_api().remove_stream_rx(Ssrc::from(l));
                    }
                }
                self.routes.remove(&(participant, ssrc));
            }
            Command::PreferLayer { subscriber, mid, max } => {
                tracing::debug!(subscriber, %mid, max, "layer ceiling");
                if let Some(s) = self.participants.get_mut(&subscriber) {
                    if let Some(sub) = s.subscriptions.get_mut(&Mid::from(mid.as_str())) {
                        sub.rw.max = max;
                    }
                }
                self.choose_layers();
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

    /// A datagram arrived at the SFU's socket from `source`.
    pub fn datagram(&mut self, now: Instant, source: SocketAddr, data: &[u8]) {
        self.receive(now, Protocol::Udp, source, data);
    }

    /// A packet arrived from `source`: a UDP datagram, or one de-framed packet of a TCP
    /// connection. `false` when no participant takes it.
    pub fn receive(&mut self, now: Instant, proto: Protocol, source: SocketAddr, data: &[u8]) -> bool {
        let local = match proto {
            Protocol::Udp => self.local,
            _ => match self.local_tcp {
                Some(a) => a,
                None => return false,
            },
        };
        let Ok(recv) = Receive::new(proto, source, local, data) else {
            return false;
        };
        let input = Input::Receive(now, recv);
        let id = match self.by_addr.get(&(proto, source)) {
            Some(id) if self.participants.get(id).is_some_and(|p| p.rtc.accepts(&input)) => *id,
            _ => match self.participants.iter().find(|(_, p)| p.rtc.accepts(&input)) {
                Some((id, _)) => {
                    self.by_addr.insert((proto, source), *id);
                    *id
                }
                None => return false,
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
        true
    }

    /// Datagrams given from now until [`Sfu::end_batch`] are forwarded together: each
    /// subscriber's `Rtc` is run once for all the packets it got, rather than once per
    /// packet. For an IO loop that reads what the socket holds in one go.
    pub fn begin_batch(&mut self) {
        self.batching = true;
    }

    /// Send what the datagrams since [`Sfu::begin_batch`] brought (then
    /// [`Sfu::poll_transmit`]).
    pub fn end_batch(&mut self, now: Instant) {
        self.batching = false;
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
        if self.last_keyframe_check.is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_CHECK) {
            self.last_keyframe_check = Some(now);
            self.retry_keyframes(now);
            self.drive(now);
        }
        if self.last_speaker_check.is_none_or(|t| now.saturating_duration_since(t) >= SPEAKER_INTERVAL) {
            self.last_speaker_check = Some(now);
            self.dominant_speakers();
            self.update_rates(now);
            self.choose_layers();
            self.drive(now);
        }
    }

    fn gone(&mut self, id: ParticipantId) {
        if self.participants.contains_key(&id) {
            self.remove(id);
            self.events.push_back(Event::Gone(id));
        }
    }

    /// Poll every dirty `Rtc` until it has nothing more to say, acting on its events, then
    /// (outside a batch) give every subscriber that was forwarded RTP its timeout input and
    /// poll it too, until nothing is left.
    fn drive(&mut self, now: Instant) {
        loop {
            self.drive_dirty(now);
            if self.batching || self.fed.is_empty() {
                return;
            }
            for id in std::mem::take(&mut self.fed) {
                let Some(p) = self.participants.get_mut(&id) else { continue };
                p.fed = false;
                if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                    tracing::debug!(participant = id, "str0m timeout: {e}");
                }
                self.dirty.push(id);
            }
        }
    }

    /// Poll every dirty `Rtc` until it has nothing more to say, acting on its events
    /// (forwarding RTP feeds other participants in turn, see `Sfu::fed`).
    fn drive_dirty(&mut self, now: Instant) {
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
            let mut immediate = 0;
            // Whether anything came out since the last timer run: a timer that yields
            // nothing is not run again at the same `now`.
            let mut progress = true;
            loop {
                match p.rtc.poll_output() {
                    // A timer due now (str0m's pacer asks for one after every packet it
                    // releases): run it at once rather than one packet per trip through
                    // the socket loop. Always at `now`, never at `t`: str0m ignores inputs
                    // older than its latest, so time must not run ahead of the caller's.
                    // Bounded, so one participant cannot hold the thread.
                    Ok(Output::Timeout(t))
                        if t <= now + IMMEDIATE && progress && immediate < MAX_IMMEDIATE_TIMEOUTS =>
                    {
                        immediate += 1;
                        progress = false;
                        if let Err(e) = p.rtc.handle_input(Input::Timeout(now)) {
                            tracing::debug!(participant = id, "str0m timeout: {e}");
                        }
                    }
                    Ok(Output::Timeout(t)) => {
                        p.next_timeout = t;
                        break;
                    }
                    Ok(Output::Transmit(t)) => {
                        progress = true;
                        self.transmits.push_back(Transmit {
                            proto: t.proto,
                            destination: t.destination,
                            // str0m hands over its buffer: no copy.
                            contents: t.contents.into(),
                        })
                    }
                    Ok(Output::Event(e)) => {
                        progress = true;
                        events.push(e)
                    }
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
            RtcEvent::EgressBitrateEstimate(str0m::bwe::BweKind::Twcc { estimate, .. }) => {
                if let Some(p) = self.participants.get_mut(&id) {
                    p.estimate = Some(estimate.as_u64());
                }
            }
            RtcEvent::KeyframeRequest(req) => {
                let target = self
                    .participants
                    .get(&id)
                    .and_then(|p| p.subscriptions.get(&req.mid))
                    .map(|s| (s.publisher, s.ssrc, s.rw.layer.unwrap_or(s.rw.target)));
                if let Some((publisher, ssrc, layer)) = target {
                    self.request_layer_keyframes(publisher, Some(ssrc), Some(layer), req.kind);
                }
            }
            _ => {}
        }
    }
}
