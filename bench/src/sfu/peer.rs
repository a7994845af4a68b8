//! A synthetic WebRTC participant: one str0m `Rtc` in RTP mode on its own UDP socket,
//! driven by a tokio task. Publishers write Opus-sized and VP8-sized RTP packets at fixed
//! rates; every peer counts what it receives and how late it arrived.
//!
//! Both SFUs see the same thing: real ICE, DTLS-SRTP, RTCP and TWCC from str0m, and payloads
//! they forward untouched. Each payload carries its send time ([`stamp`]), which is how
//! latency and loss are measured on the receiving side, whatever the SFU does to sequence
//! numbers, timestamps and SSRCs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::format::{Codec, FormatParams};
use str0m::media::{Frequency, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::work::{nanos_at, now_nanos};

pub const OPUS: u8 = 111;
pub const VP8: u8 = 96;
pub const VP8_RTX: u8 = 97;
/// Marks a stamped payload ("AMPH"), so padding or probes are never mistaken for one.
const MAGIC: u32 = 0x414d_5048;
/// Where the stamp sits in a payload: after the VP8 descriptor and the 10-byte keyframe
/// header, so the SFUs still see valid VP8.
const STAMP_AT: usize = 12;
/// Publishers send a VP8 keyframe this often (the SFUs ask for them with PLI anyway).
const KEYFRAME_EVERY: u64 = 100;
/// Send schedule granularity: packets due are written every tick.
const TICK: Duration = Duration::from_millis(10);

/// What a publisher sends.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub audio_pps: u32,
    pub audio_bytes: usize,
    pub video_pps: u32,
    pub video_bytes: usize,
}

/// The measurement window, shared by every peer: packets sent inside it are counted by
/// their publisher, packets stamped inside it by their receivers.
#[derive(Default)]
pub struct Window {
    start: AtomicU64,
    end: AtomicU64,
    /// Peers whose ICE and DTLS are up.
    pub connected: AtomicU64,
}

impl Window {
    pub fn open(&self) {
        self.end.store(u64::MAX, Ordering::Relaxed);
        self.start.store(now_nanos(), Ordering::Relaxed);
    }
    pub fn close(&self) {
        self.end.store(now_nanos(), Ordering::Relaxed);
    }
    fn contains(&self, nanos: u64) -> bool {
        let start = self.start.load(Ordering::Relaxed);
        start != 0 && nanos >= start && nanos < self.end.load(Ordering::Relaxed)
    }
}

/// What a peer counted, handed back when it stops.
#[derive(Default, Debug)]
pub struct Report {
    pub connected: bool,
    /// Packets written inside the window (publishers).
    pub sent: u64,
    /// Stamped packets received whose stamp is inside the window.
    pub received: u64,
    /// One-way delay of those, microseconds.
    pub latencies_us: Vec<u32>,
    pub keyframe_requests: u64,
}

/// Instructions to a running peer.
pub enum Cmd {
    /// Receive a stream the SFU announced (amphi's content-add): media id, kind, SSRCs.
    ExpectRx {
        mid: String,
        video: bool,
        ssrc: u32,
        rtx: Option<u32>,
    },
    Stop,
}

/// A str0m peer configured like a browser would be for these tests: Opus/111, VP8/96 with
/// RTX/97, the standard header extensions (with TWCC), full ICE.
pub fn new_rtc(now: Instant) -> Rtc {
    let mut cfg = Rtc::builder().set_rtp_mode(true).set_stats_interval(None);
    let codecs = cfg.codec_config();
    codecs.clear();
    codecs.add_config(Pt::from(OPUS), None, Codec::Opus, Frequency::FORTY_EIGHT_KHZ, Some(2), FormatParams::default());
    codecs.add_config(
        Pt::from(VP8),
        Some(Pt::from(VP8_RTX)),
        Codec::Vp8,
        Frequency::NINETY_KHZ,
        None,
        FormatParams::default(),
    );
    cfg.build(now)
}

/// A bound socket and its Rtc with the socket's host candidate added.
pub async fn bind(rtc: &mut Rtc) -> std::io::Result<(UdpSocket, SocketAddr)> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let addr = socket.local_addr()?;
    let cand = Candidate::host(addr, "udp").map_err(|e| std::io::Error::other(e.to_string()))?;
    rtc.add_local_candidate(cand);
    Ok((socket, addr))
}

/// What to send: the audio and video send streams by SSRC (None: the peer only receives).
#[derive(Clone, Copy, Debug)]
pub struct Sending {
    pub audio: Ssrc,
    pub video: Ssrc,
    pub load: Load,
}

/// A publisher's send schedule: packets due since its first tick, written every [`TICK`].
struct Schedule {
    s: Sending,
    started: Option<Instant>,
    next_tick: Instant,
    audio_sent: u64,
    video_sent: u64,
}

impl Schedule {
    /// Writes the audio and video packets due by `now`.
    fn send_due(&mut self, rtc: &mut Rtc, now: Instant, window: &Window, report: &mut Report) {
        let load = self.s.load;
        let secs = now.duration_since(*self.started.get_or_insert(now)).as_secs_f64();
        let due_audio = (secs * f64::from(load.audio_pps)) as u64 + 1;
        let due_video = (secs * f64::from(load.video_pps)) as u64 + 1;
        let mut api = rtc.direct_api();
        while self.audio_sent < due_audio {
            self.audio_sent += 1;
            let n = self.audio_sent;
            if let Some(tx) = api.stream_tx(&self.s.audio) {
                let ext = ExtensionValues { audio_level: Some(-30), voice_activity: Some(true), ..Default::default() };
                let p = payload(load.audio_bytes, None, window, report);
                tx.write_rtp(RtpWrite::new(Pt::from(OPUS), SeqNo::from(n), (n * 960) as u32, now, p).ext_vals(ext));
            }
        }
        while self.video_sent < due_video {
            self.video_sent += 1;
            let n = self.video_sent;
            if let Some(tx) = api.stream_tx(&self.s.video) {
                let p = payload(load.video_bytes, Some(n % KEYFRAME_EVERY == 1), window, report);
                let ts = (n * 90_000 / u64::from(load.video_pps.max(1))) as u32;
                let rtp = RtpWrite::new(Pt::from(VP8), SeqNo::from(n), ts, now, p).marker(true).nackable(true);
                tx.write_rtp(rtp);
            }
        }
        self.next_tick = (self.next_tick + TICK).max(now);
    }
}

/// Runs a peer until [`Cmd::Stop`] (or its command sender is dropped).
pub async fn run(
    mut rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    sending: Option<Sending>,
    window: Arc<Window>,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
) -> Report {
    let mut report = Report::default();
    let mut buf = vec![0u8; 2048];
    let mut schedule =
        sending.map(|s| Schedule { s, started: None, next_tick: Instant::now(), audio_sent: 0, video_sent: 0 });
    while let Some(timeout) = drain(&mut rtc, &socket, &window, &mut report) {
        let wake = match &schedule {
            Some(s) if report.connected => timeout.min(s.next_tick),
            _ => timeout,
        };
        tokio::select! {
            biased;
            cmd = cmds.recv() => match cmd {
                Some(Cmd::ExpectRx { mid, video, ssrc, rtx }) => {
                    let mut api = rtc.direct_api();
                    let mid = Mid::from(mid.as_str());
                    api.declare_media(mid, if video { MediaKind::Video } else { MediaKind::Audio });
                    api.expect_stream_rx(Ssrc::from(ssrc), rtx.map(Ssrc::from), mid, None);
                }
                Some(Cmd::Stop) | None => break,
            },
            r = socket.recv_from(&mut buf) => {
                let mut next = r.ok();
                // Take everything already queued: one wake-up per burst, not per datagram.
                while let Some((n, from)) = next {
                    if let Ok(recv) = Receive::new(Protocol::Udp, from, local, &buf[..n]) {
                        let _ = rtc.handle_input(Input::Receive(Instant::now(), recv));
                    }
                    if drain(&mut rtc, &socket, &window, &mut report).is_none() {
                        return report;
                    }
                    next = socket.try_recv_from(&mut buf).ok();
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                match &mut schedule {
                    Some(s) if report.connected && now >= s.next_tick => s.send_due(&mut rtc, now, &window, &mut report),
                    _ => {}
                }
                let _ = rtc.handle_input(Input::Timeout(now));
            }
        }
    }
    report
}

/// Polls the Rtc until it has nothing to send; returns when to wake it, None once it died.
fn drain(rtc: &mut Rtc, socket: &UdpSocket, window: &Window, report: &mut Report) -> Option<Instant> {
    loop {
        match rtc.poll_output() {
            Ok(Output::Timeout(t)) => return Some(t),
            Ok(Output::Transmit(t)) => {
                // A full socket buffer drops the datagram, as a congested network would.
                let _ = socket.try_send_to(&t.contents, t.destination);
            }
            Ok(Output::Event(e)) => match e {
                Event::Connected => {
                    report.connected = true;
                    window.connected.fetch_add(1, Ordering::Relaxed);
                }
                Event::RtpPacket(p) => {
                    if let Some(sent) = read_stamp(&p.payload) {
                        if window.contains(sent) {
                            report.received += 1;
                            let delay = nanos_at(p.timestamp).saturating_sub(sent) / 1000;
                            report.latencies_us.push(delay.min(u64::from(u32::MAX)) as u32);
                        }
                    }
                }
                Event::KeyframeRequest(_) => report.keyframe_requests += 1,
                _ => {}
            },
            Err(_) => return None,
        }
    }
}

/// A payload of `len` bytes (at least 24) that looks like what a codec would emit: for
/// video (`Some(keyframe)`) a VP8 descriptor and frame header, with a keyframe's start code
/// and size when `keyframe`; for audio (`None`) an Opus TOC byte. Then the stamp at
/// [`STAMP_AT`]: magic and send time in nanoseconds.
fn payload(len: usize, video: Option<bool>, window: &Window, report: &mut Report) -> Vec<u8> {
    let mut p = vec![0u8; len.max(STAMP_AT + 12)];
    match video {
        // VP8 descriptor (S=1, partition 0), frame tag with P=0, start code, 640x360.
        Some(true) => p[..10].copy_from_slice(&[0x10, 0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68]),
        Some(false) => p[..4].copy_from_slice(&[0x10, 0x51, 0x02, 0x00]),
        None => p[0] = 0xfc,
    }
    let now = now_nanos();
    p[STAMP_AT..STAMP_AT + 4].copy_from_slice(&MAGIC.to_be_bytes());
    p[STAMP_AT + 4..STAMP_AT + 12].copy_from_slice(&now.to_be_bytes());
    if window.contains(now) {
        report.sent += 1;
    }
    p
}

/// The send time stamped in a payload, if it carries one.
pub fn read_stamp(p: &[u8]) -> Option<u64> {
    let magic = u32::from_be_bytes(p.get(STAMP_AT..STAMP_AT + 4)?.try_into().ok()?);
    if magic != MAGIC {
        return None;
    }
    Some(u64::from_be_bytes(p.get(STAMP_AT + 4..STAMP_AT + 12)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_count_inside_the_window() {
        let w = Window::default();
        let mut r = Report::default();
        let p = payload(100, Some(true), &w, &mut r);
        assert_eq!(r.sent, 0, "no window open yet");
        assert_eq!(&p[4..7], &[0x9d, 0x01, 0x2a], "a VP8 keyframe start code");
        assert_eq!(p.len(), 100);
        w.open();
        let p = payload(30, None, &w, &mut r);
        assert_eq!(r.sent, 1);
        let t = read_stamp(&p).expect("stamp");
        assert!(w.contains(t));
        w.close();
        assert!(!w.contains(now_nanos() + 1));
        assert_eq!(read_stamp(&[0u8; 40]), None);
        assert_eq!(read_stamp(&[0u8; 5]), None);
    }
}
