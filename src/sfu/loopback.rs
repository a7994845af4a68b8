//! An in-memory network of str0m clients around one [`Sfu`], with a simulated clock: the
//! SFU's scenario tests and its forwarding benchmark use it. No sockets, no sleeping.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::format::{Codec as StrCodec, FormatParams};
use str0m::media::{Frequency, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event as RtcEvent, IceCreds, Input, Output, Rtc};

use super::{Codec, Command, JoinSpec, ParticipantId, PayloadSpec, Sfu, TrackSpec};

pub const OPUS: u8 = 111;
pub const VP8: u8 = 96;
pub const VP8_RTX: u8 = 97;

/// A participant's client: a full-ICE, controlling str0m peer.
pub struct Client {
    pub id: ParticipantId,
    pub rtc: Rtc,
    pub addr: SocketAddr,
    /// RTP packets received, per media id.
    pub received: HashMap<String, u64>,
    pub keyframe_requests: u64,
    /// Sequence numbers received, per media id.
    pub seqs: HashMap<String, Vec<u64>>,
    /// With `record`, every payload received, per media id.
    pub record: bool,
    pub payloads: HashMap<String, Vec<Vec<u8>>>,
    pub connected: bool,
    /// RFC 6464 level of the audio it sends (-127 silence .. 0 loudest).
    pub audio_level: i8,
    next_timeout: Instant,
}

impl Client {
    pub fn received_total(&self) -> u64 {
        self.received.values().sum()
    }
}

pub struct Net {
    pub sfu: Sfu,
    pub clients: Vec<Client>,
    pub now: Instant,
    /// Datagrams in flight to the SFU: (from, bytes).
    to_sfu: VecDeque<(SocketAddr, Vec<u8>)>,
    /// Time spent inside the SFU's entry points.
    pub sfu_time: Duration,
    /// Loss: drop every n-th datagram from the SFU to this participant...
    pub drop_to: Option<(ParticipantId, u64)>,
    /// ...or from this participant to the SFU.
    pub drop_from: Option<(ParticipantId, u64)>,
    datagrams: u64,
}

impl Net {
    pub fn new() -> Net {
        let now = Instant::now();
        Net {
            sfu: Sfu::new("192.0.2.1:10000".parse().expect("literal address"), now).expect("DTLS certificate"),
            clients: Vec::new(),
            now,
            to_sfu: VecDeque::new(),
            sfu_time: Duration::ZERO,
            drop_to: None,
            drop_from: None,
            datagrams: 0,
        }
    }

    pub fn client(&mut self, id: ParticipantId) -> &mut Client {
        let i = self.clients.iter().position(|c| c.id == id).expect("known client");
        &mut self.clients[i]
    }

    /// A client joins `call`, publishing an audio track with SSRC `10 * id + 1` and a video
    /// track `10 * id + 2` (RTX `10 * id + 3`). Runs the network until it is connected.
    pub fn join(&mut self, call: &str) -> ParticipantId {
        self.join_with(call, false)
    }

    /// SSRCs of the simulcast layers of `id`'s video (low to high).
    pub fn layer_ssrcs(id: ParticipantId) -> [u32; 3] {
        let base = id as u32 * 10;
        [base + 2, base + 4, base + 5]
    }

    /// [`Net::join`], with the video in three simulcast layers ([`Net::layer_ssrcs`]) when
    /// `simulcast`.
    pub fn join_with(&mut self, call: &str, simulcast: bool) -> ParticipantId {
        let id = self.clients.len() as ParticipantId + 1;
        let addr: SocketAddr = format!("10.0.0.{id}:5000").parse().expect("literal address");
        let mut cfg = Rtc::builder().set_rtp_mode(true);
        let codecs = cfg.codec_config();
        codecs.clear();
        codecs.add_config(
            Pt::from(OPUS),
            None,
            StrCodec::Opus,
            Frequency::FORTY_EIGHT_KHZ,
            Some(2),
            FormatParams::default(),
        );
        codecs.add_config(
            Pt::from(VP8),
            Some(Pt::from(VP8_RTX)),
            StrCodec::Vp8,
            Frequency::NINETY_KHZ,
            None,
            FormatParams::default(),
        );
        let mut rtc = cfg.build(self.now);
        let host = Candidate::host(addr, "udp").expect("host candidate");
        rtc.add_local_candidate(host);
        let sfu_candidate = Candidate::host(self.sfu.local_addr(), "udp").expect("sfu candidate");
        rtc.add_remote_candidate(sfu_candidate);
        let (ufrag, pwd) = (format!("sfu{id}"), format!("sfupassword{id:020}"));
        let (fp_hash, fp_bytes) = self.sfu.fingerprint();
        let (audio, video, rtx) = (id as u32 * 10 + 1, id as u32 * 10 + 2, id as u32 * 10 + 3);
        let creds;
        let client_fp;
        {
            let mut api = rtc.direct_api();
            creds = api.local_ice_credentials();
            client_fp = api.local_dtls_fingerprint().clone();
            api.set_remote_ice_credentials(IceCreds { ufrag: ufrag.clone(), pass: pwd.clone() });
            api.set_remote_fingerprint(str0m::config::Fingerprint { hash_func: fp_hash, bytes: fp_bytes });
            api.set_ice_controlling(true);
            api.start_dtls(true).expect("dtls");
            api.declare_media(Mid::from("a"), MediaKind::Audio);
            api.declare_stream_tx(Ssrc::from(audio), None, Mid::from("a"), None);
            api.declare_media(Mid::from("v"), MediaKind::Video);
            // str0m sends one stream per (mid, rid): simulcast layers get rids of their own
            // here (the SFU tells them apart by SSRC, as with a XEP-0339 SIM group).
            let rid = simulcast.then(|| "l0".into());
            api.declare_stream_tx(Ssrc::from(video), Some(Ssrc::from(rtx)), Mid::from("v"), rid);
            if simulcast {
                for (l, rid) in Self::layer_ssrcs(id)[1..].iter().zip(["l1", "l2"]) {
                    api.declare_stream_tx(Ssrc::from(*l), None, Mid::from("v"), Some(rid.into()));
                }
            }
        }
        let layers = if simulcast {
            let [l0, l1, l2] = Self::layer_ssrcs(id);
            vec![(l0, Some(rtx)), (l1, None), (l2, None)]
        } else {
            Vec::new()
        };
        let spec = JoinSpec {
            participant: id,
            call: call.into(),
            local_ufrag: ufrag,
            local_pwd: pwd,
            remote_ufrag: creds.ufrag,
            remote_pwd: creds.pass,
            remote_fingerprint: (client_fp.hash_func, client_fp.bytes),
            remote_is_dtls_client: true,
            payloads: vec![
                PayloadSpec { pt: OPUS, rtx: None, codec: Codec::Opus },
                PayloadSpec { pt: VP8, rtx: Some(VP8_RTX), codec: Codec::Vp8 },
            ],
            extensions: vec![(1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level".into())],
            medias: vec![("a".into(), true), ("v".into(), false)],
            tracks: vec![
                TrackSpec { mid: "a".into(), audio: true, ssrc: audio, rtx: None, layers: vec![] },
                TrackSpec { mid: "v".into(), audio: false, ssrc: video, rtx: Some(rtx), layers },
            ],
            candidates: Vec::new(),
        };
        self.clients.push(Client {
            id,
            rtc,
            addr,
            received: HashMap::new(),
            keyframe_requests: 0,
            seqs: HashMap::new(),
            record: false,
            payloads: HashMap::new(),
            connected: false,
            audio_level: -30,
            next_timeout: self.now,
        });
        self.sfu_command(Command::Join(Box::new(spec)));
        for _ in 0..2000 {
            if self.client(id).connected && self.sfu.is_connected(id) {
                break;
            }
            self.step(Duration::from_millis(5));
        }
        id
    }

    /// `sub` receives `publisher`'s audio on its media "a{publisher}" and video on "v{publisher}".
    pub fn subscribe(&mut self, sub: ParticipantId, publisher: ParticipantId) {
        let (audio, video, rtx) = (publisher as u32 * 10 + 1, publisher as u32 * 10 + 2, publisher as u32 * 10 + 3);
        let (am, vm) = (format!("a{publisher}"), format!("v{publisher}"));
        {
            let c = self.client(sub);
            let mut api = c.rtc.direct_api();
            api.declare_media(Mid::from(am.as_str()), MediaKind::Audio);
            api.expect_stream_rx(Ssrc::from(audio), None, Mid::from(am.as_str()), None);
            api.declare_media(Mid::from(vm.as_str()), MediaKind::Video);
            api.expect_stream_rx(Ssrc::from(video), Some(Ssrc::from(rtx)), Mid::from(vm.as_str()), None);
        }
        self.sfu_command(Command::Subscribe {
            subscriber: sub,
            mid: am,
            publisher,
            ssrc: audio,
            out_ssrc: audio,
            out_rtx: None,
        });
        self.sfu_command(Command::Subscribe {
            subscriber: sub,
            mid: vm,
            publisher,
            ssrc: video,
            out_ssrc: video,
            out_rtx: Some(rtx),
        });
    }

    pub fn sfu_command(&mut self, cmd: Command) {
        let t = Instant::now();
        self.sfu.command(self.now, cmd);
        self.sfu_time += t.elapsed();
    }

    /// The client writes one audio and one video packet (`n` numbers them).
    pub fn send_media(&mut self, id: ParticipantId, n: u64, video_payload: &[u8]) {
        let now = self.now;
        let c = self.client(id);
        let (audio, video) = (id as u32 * 10 + 1, id as u32 * 10 + 2);
        let level = c.audio_level;
        let mut api = c.rtc.direct_api();
        if let Some(tx) = api.stream_tx(&Ssrc::from(audio)) {
            let ext = ExtensionValues { audio_level: Some(level), voice_activity: Some(true), ..Default::default() };
            tx.write_rtp(
                RtpWrite::new(Pt::from(OPUS), SeqNo::from(n), (n * 960) as u32, now, vec![0xfc; 80]).ext_vals(ext),
            );
        }
        if let Some(tx) = api.stream_tx(&Ssrc::from(video)) {
            tx.write_rtp(
                RtpWrite::new(Pt::from(VP8), SeqNo::from(n), (n * 3000) as u32, now, video_payload.to_vec())
                    .marker(true)
                    .nackable(true),
            );
        }
    }

    /// A simulcast client sends frame `n` on each of its three layers: a VP8 payload whose
    /// picture id counts frames per layer (from 1000 * layer), then the layer's index, then
    /// padding (100, 300, 900 bytes: low, mid, high bitrate).
    pub fn send_simulcast(&mut self, id: ParticipantId, n: u64, keyframe: bool) {
        let now = self.now;
        let c = self.client(id);
        let mut api = c.rtc.direct_api();
        for (layer, ssrc) in Self::layer_ssrcs(id).into_iter().enumerate() {
            let pid = (n as u16).wrapping_add(1000 * layer as u16) & 0x7fff;
            let mut payload = vec![0x90, 0xe0, 0x80 | (pid >> 8) as u8, pid as u8, n as u8, 0x00];
            payload.push(if keyframe { 0x00 } else { 0x01 });
            payload.push(layer as u8);
            payload.resize([100, 300, 900][layer], 0);
            if let Some(tx) = api.stream_tx(&Ssrc::from(ssrc)) {
                tx.write_rtp(
                    RtpWrite::new(
                        Pt::from(VP8),
                        SeqNo::from(n + 10_000 * layer as u64),
                        (n * 3000) as u32,
                        now,
                        payload,
                    )
                    .marker(true)
                    .nackable(true),
                );
            }
        }
    }

    /// Deliver everything in flight, then advance the clock by `dt` and fire timers.
    pub fn step(&mut self, dt: Duration) {
        self.pump();
        self.now += dt;
        let t = Instant::now();
        self.sfu.timeout(self.now);
        self.sfu_time += t.elapsed();
        for c in &mut self.clients {
            if c.next_timeout <= self.now {
                let _ = c.rtc.handle_input(Input::Timeout(self.now));
            }
        }
        self.pump();
    }

    /// Move datagrams until the network is quiet (no clock change).
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            for c in &mut self.clients {
                drain(c, &mut self.to_sfu);
            }
            let mut moved = false;
            let t = Instant::now();
            while let Some((from, data)) = self.to_sfu.pop_front() {
                moved = true;
                self.datagrams += 1;
                if let Some((id, n)) = self.drop_from {
                    if self.clients.iter().any(|c| c.id == id && c.addr == from) && self.datagrams % n == 0 {
                        continue;
                    }
                }
                self.sfu.datagram(self.now, from, &data);
            }
            self.sfu_time += t.elapsed();
            let local = self.sfu.local_addr();
            while let Some(t) = self.sfu.poll_transmit() {
                if let Some(c) = self.clients.iter_mut().find(|c| c.addr == t.destination) {
                    self.datagrams += 1;
                    if self.drop_to.is_some_and(|(id, n)| id == c.id && self.datagrams % n == 0) {
                        continue;
                    }
                    if let Ok(r) = Receive::new(Protocol::Udp, local, c.addr, &t.contents) {
                        let _ = c.rtc.handle_input(Input::Receive(self.now, r));
                    }
                    // str0m's contract: drain the outputs after every input.
                    drain(c, &mut self.to_sfu);
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
    }
}

/// Poll a client until it has nothing more to say.
fn drain(c: &mut Client, to_sfu: &mut VecDeque<(SocketAddr, Vec<u8>)>) {
    loop {
        match c.rtc.poll_output() {
            Ok(Output::Timeout(t)) => {
                c.next_timeout = t;
                break;
            }
            Ok(Output::Transmit(t)) => to_sfu.push_back((c.addr, t.contents.to_vec())),
            Ok(Output::Event(e)) => match e {
                RtcEvent::Connected => c.connected = true,
                RtcEvent::RtpPacket(p) => {
                    let mid =
                        c.rtc.direct_api().stream_rx(&p.header.ssrc).map(|s| s.mid().to_string()).unwrap_or_default();
                    c.seqs.entry(mid.clone()).or_default().push(*p.seq_no);
                    if c.record {
                        c.payloads.entry(mid.clone()).or_default().push(p.payload.to_vec());
                    }
                    *c.received.entry(mid).or_default() += 1;
                }
                RtcEvent::KeyframeRequest(_) => c.keyframe_requests += 1,
                _ => {}
            },
            Err(_) => break,
        }
    }
}

impl Default for Net {
    fn default() -> Self {
        Net::new()
    }
}
