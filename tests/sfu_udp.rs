//! The SFU thread on a real UDP socket (loopback), with two str0m clients on their own
//! sockets: ICE-lite, DTLS, and Opus forwarded through the thread, commanded by channel.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use amphi::sfu::{spawn, Codec, Command, Event, JoinSpec, PayloadSpec, SfuConfig, TrackSpec};
use str0m::format::{Codec as StrCodec, FormatParams};
use str0m::media::{Frequency, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event as RtcEvent, IceCreds, Input, Output, Rtc};

struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    received: u64,
    connected: bool,
}

impl Peer {
    fn new(
        sfu: SocketAddr,
        fingerprint: &(String, Vec<u8>),
        ufrag: &str,
        pwd: &str,
    ) -> (Peer, IceCreds, (String, Vec<u8>)) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(2))).unwrap();
        let addr = socket.local_addr().unwrap();
        let mut cfg = Rtc::builder().set_rtp_mode(true);
        let codecs = cfg.codec_config();
        codecs.clear();
        codecs.add_config(
            Pt::from(111),
            None,
            StrCodec::Opus,
            Frequency::FORTY_EIGHT_KHZ,
            Some(2),
            FormatParams::default(),
        );
        let mut rtc = cfg.build(Instant::now());
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        rtc.add_remote_candidate(Candidate::host(sfu, "udp").unwrap());
        let mut api = rtc.direct_api();
        let creds = api.local_ice_credentials();
        let fp = api.local_dtls_fingerprint().clone();
        api.set_remote_ice_credentials(IceCreds { ufrag: ufrag.into(), pass: pwd.into() });
        api.set_remote_fingerprint(str0m::config::Fingerprint {
            hash_func: fingerprint.0.clone(),
            bytes: fingerprint.1.clone(),
        });
        api.set_ice_controlling(true);
        api.start_dtls(true).unwrap();
        (Peer { rtc, socket, addr, received: 0, connected: false }, creds, (fp.hash_func, fp.bytes))
    }

    /// Send what str0m wants sent, read what arrived, until `until`.
    fn pump(&mut self, until: Instant) {
        let mut buf = [0u8; 2000];
        loop {
            loop {
                match self.rtc.poll_output().unwrap() {
                    Output::Timeout(_) => break,
                    Output::Transmit(t) => {
                        self.socket.send_to(&t.contents, t.destination).unwrap();
                    }
                    Output::Event(RtcEvent::Connected) => self.connected = true,
                    Output::Event(RtcEvent::RtpPacket(_)) => self.received += 1,
                    Output::Event(_) => {}
                }
            }
            let now = Instant::now();
            if now >= until {
                return;
            }
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let r = Receive::new(Protocol::Udp, from, self.addr, &buf[..n]).unwrap();
                    self.rtc.handle_input(Input::Receive(Instant::now(), r)).unwrap();
                }
                Err(_) => self.rtc.handle_input(Input::Timeout(Instant::now())).unwrap(),
            }
        }
    }
}

#[tokio::test]
async fn media_flows_through_the_sfu_thread_over_udp() {
    let (tx, mut events) = tokio::sync::mpsc::channel(64);
    let sfu =
        spawn(&SfuConfig { listen: "127.0.0.1:0".parse().unwrap(), tcp_listen: None, public: None, last_n: 0 }, tx)
            .unwrap();
    assert_eq!(sfu.candidate.ip().to_string(), "127.0.0.1");
    let mut peers = Vec::new();
    for id in 1..=2u64 {
        let (ufrag, pwd) = (format!("u{id}"), format!("password-of-participant-{id}"));
        let (mut peer, creds, fp) = Peer::new(sfu.candidate, &sfu.fingerprint, &ufrag, &pwd);
        let ssrc = id as u32 * 100;
        let mut api = peer.rtc.direct_api();
        api.declare_media(Mid::from("a"), MediaKind::Audio);
        api.declare_stream_tx(Ssrc::from(ssrc), None, Mid::from("a"), None);
        let other = (3 - id) as u32 * 100;
        api.declare_media(Mid::from("in"), MediaKind::Audio);
        api.expect_stream_rx(Ssrc::from(other), None, Mid::from("in"), None);
        sfu.commands
            .send(Command::Join(Box::new(JoinSpec {
                participant: id,
                call: "c".into(),
                local_ufrag: ufrag,
                local_pwd: pwd,
                remote_ufrag: creds.ufrag,
                remote_pwd: creds.pass,
                remote_fingerprint: fp,
                remote_is_dtls_client: true,
                payloads: vec![PayloadSpec { pt: 111, rtx: None, codec: Codec::Opus }],
                extensions: Vec::new(),
                medias: vec![("a".into(), true)],
                tracks: vec![TrackSpec { mid: "a".into(), audio: true, ssrc, rtx: None, layers: Vec::new() }],
                candidates: Vec::new(),
            })))
            .unwrap();
        peers.push(peer);
    }
    for (sub, publisher) in [(1u64, 2u64), (2, 1)] {
        let ssrc = publisher as u32 * 100;
        let cmd =
            Command::Subscribe { subscriber: sub, mid: "in".into(), publisher, ssrc, out_ssrc: ssrc, out_rtx: None };
        sfu.commands.send(cmd).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0u64;
    while Instant::now() < deadline && !(peers.iter().all(|p| p.received >= 25)) {
        n += 1;
        for p in &mut peers {
            if p.connected {
                let now = Instant::now();
                let mut api = p.rtc.direct_api();
                let tx = api.stream_tx_by_mid(Mid::from("a"), None).unwrap();
                tx.write_rtp(RtpWrite::new(Pt::from(111), SeqNo::from(n), (n * 960) as u32, now, vec![0xfc; 60]));
            }
            p.pump(Instant::now() + Duration::from_millis(10));
        }
    }
    assert!(peers.iter().all(|p| p.connected), "ICE and DTLS over real sockets");
    let got: Vec<u64> = peers.iter().map(|p| p.received).collect();
    assert!(got.iter().all(|r| *r >= 25), "audio forwarded both ways: {got:?}");
    let mut connected = 0;
    while let Ok(e) = events.try_recv() {
        if matches!(e, Event::Connected(_)) {
            connected += 1;
        }
    }
    assert_eq!(connected, 2, "the focus hears of both connections");
}
