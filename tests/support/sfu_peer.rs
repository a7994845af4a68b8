//! A str0m peer for the SFU thread's socket tests, over UDP or ICE-TCP (RFC 4571 framing),
//! and the two-participant audio exchange those tests share.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use amphi::sfu::tcp::{frame, Framer};
use amphi::sfu::{Codec, Command, JoinSpec, PayloadSpec, SfuHandle, TrackSpec};
use str0m::format::{Codec as StrCodec, FormatParams};
use str0m::media::{Frequency, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::rtp::{RtpWrite, SeqNo, Ssrc};
use str0m::{Candidate, Event as RtcEvent, IceCreds, Input, Output, Rtc};

pub enum Link {
    Udp(UdpSocket),
    Tcp(TcpStream, Framer),
}

pub struct Peer {
    pub rtc: Rtc,
    link: Link,
    addr: SocketAddr,
    pub received: u64,
    pub connected: bool,
}

impl Peer {
    /// A controlling str0m peer talking to the SFU's candidate `sfu` over `link`.
    pub fn new(link: Link, sfu: SocketAddr, fp: &(String, Vec<u8>), ufrag: &str, pwd: &str) -> (Peer, JoinSpec) {
        let addr = match &link {
            Link::Udp(s) => s.local_addr().unwrap(),
            Link::Tcp(s, _) => s.local_addr().unwrap(),
        };
        let mut cfg = Rtc::builder().set_rtp_mode(true);
        cfg.codec_config().clear();
        cfg.codec_config().add_config(
            Pt::from(111),
            None,
            StrCodec::Opus,
            Frequency::FORTY_EIGHT_KHZ,
            Some(2),
            FormatParams::default(),
        );
        let mut rtc = cfg.build(Instant::now());
        if matches!(link, Link::Tcp(..)) {
            let tcp = |a, t| Candidate::builder().tcp().host(a).tcptype(t).build().unwrap();
            rtc.add_local_candidate(tcp(addr, TcpType::Active));
            rtc.add_remote_candidate(tcp(sfu, TcpType::Passive));
        } else {
            rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
            rtc.add_remote_candidate(Candidate::host(sfu, "udp").unwrap());
        }
        let mut api = rtc.direct_api();
        let creds = api.local_ice_credentials();
        let mine = api.local_dtls_fingerprint().clone();
        api.set_remote_ice_credentials(IceCreds { ufrag: ufrag.into(), pass: pwd.into() });
        api.set_remote_fingerprint(str0m::config::Fingerprint { hash_func: fp.0.clone(), bytes: fp.1.clone() });
        api.set_ice_controlling(true);
        api.start_dtls(true).unwrap();
        let spec = JoinSpec {
            participant: 0,
            call: "c".into(),
            local_ufrag: ufrag.into(),
            local_pwd: pwd.into(),
            remote_ufrag: creds.ufrag,
            remote_pwd: creds.pass,
            remote_fingerprint: (mine.hash_func, mine.bytes),
            remote_is_dtls_client: true,
            payloads: vec![PayloadSpec { pt: 111, rtx: None, codec: Codec::Opus }],
            extensions: Vec::new(),
            medias: vec![("a".into(), true)],
            tracks: Vec::new(),
            candidates: Vec::new(),
        };
        (Peer { rtc, link, addr, received: 0, connected: false }, spec)
    }

    /// Send what str0m wants sent and feed it what arrived, for about `ms` milliseconds.
    pub fn pump(&mut self, ms: u64) {
        let until = Instant::now() + Duration::from_millis(ms);
        let mut buf = [0u8; 4096];
        loop {
            while let Ok(out) = self.rtc.poll_output() {
                match out {
                    Output::Timeout(_) => break,
                    Output::Transmit(t) => match &mut self.link {
                        Link::Udp(s) => {
                            s.send_to(&t.contents, t.destination).unwrap();
                        }
                        Link::Tcp(s, _) => {
                            assert_eq!(t.proto, Protocol::Tcp, "a TCP-only peer sends nothing else");
                            let mut framed = Vec::new();
                            assert!(frame(&t.contents, &mut framed));
                            s.write_all(&framed).unwrap();
                        }
                    },
                    Output::Event(RtcEvent::Connected) => self.connected = true,
                    Output::Event(RtcEvent::RtpPacket(_)) => self.received += 1,
                    Output::Event(_) => {}
                }
            }
            if Instant::now() >= until {
                return;
            }
            let mut packets = Vec::new();
            let proto = match &mut self.link {
                Link::Udp(s) => {
                    if let Ok((n, from)) = s.recv_from(&mut buf) {
                        packets.push((from, buf[..n].to_vec()));
                    }
                    Protocol::Udp
                }
                Link::Tcp(s, framer) => {
                    match s.read(&mut buf) {
                        Ok(0) => panic!("the SFU closed the TCP connection"),
                        Ok(n) => framer.push(&buf[..n]),
                        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                        Err(e) => panic!("TCP read: {e}"),
                    }
                    let from = s.peer_addr().unwrap();
                    while let Some(p) = framer.next_packet().unwrap() {
                        packets.push((from, p));
                    }
                    Protocol::Tcp
                }
            };
            for (from, p) in &packets {
                let r = Receive::new(proto, *from, self.addr, p).unwrap();
                self.rtc.handle_input(Input::Receive(Instant::now(), r)).unwrap();
            }
            if packets.is_empty() {
                self.rtc.handle_input(Input::Timeout(Instant::now())).unwrap();
            }
        }
    }
}

/// Two participants on `links` (each with the SFU candidate it talks to) join call "c",
/// each publishes Opus on mid "a" and subscribes to the other's on mid "in"; audio is sent
/// until both received 25 packets or 10 s passed. The peers come back for the assertions.
pub fn audio_both_ways(sfu: &SfuHandle, links: [(Link, SocketAddr); 2]) -> Vec<Peer> {
    let mut peers = Vec::new();
    for (i, (link, sfu_addr)) in links.into_iter().enumerate() {
        let id = i as u64 + 1;
        let (ufrag, pwd) = (format!("u{id}"), format!("password-of-participant-{id}"));
        let (mut peer, mut spec) = Peer::new(link, sfu_addr, &sfu.fingerprint, &ufrag, &pwd);
        let (ssrc, other) = (id as u32 * 100, (3 - id) as u32 * 100);
        let mut api = peer.rtc.direct_api();
        api.declare_media(Mid::from("a"), MediaKind::Audio);
        api.declare_stream_tx(Ssrc::from(ssrc), None, Mid::from("a"), None);
        api.declare_media(Mid::from("in"), MediaKind::Audio);
        api.expect_stream_rx(Ssrc::from(other), None, Mid::from("in"), None);
        spec.participant = id;
        spec.tracks = vec![TrackSpec { mid: "a".into(), audio: true, ssrc, rtx: None, layers: Vec::new() }];
        sfu.commands.send(Command::Join(Box::new(spec))).unwrap();
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
    while Instant::now() < deadline && !peers.iter().all(|p| p.received >= 25) {
        n += 1;
        for p in &mut peers {
            if p.connected {
                let mut api = p.rtc.direct_api();
                let tx = api.stream_tx_by_mid(Mid::from("a"), None).unwrap();
                let pkt =
                    RtpWrite::new(Pt::from(111), SeqNo::from(n), (n * 960) as u32, Instant::now(), vec![0xfc; 60]);
                tx.write_rtp(pkt);
            }
            p.pump(10);
        }
    }
    peers
}

/// A UDP socket on loopback for a peer, reading with a short timeout.
pub fn udp_link() -> Link {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(2))).unwrap();
    Link::Udp(udp)
}
