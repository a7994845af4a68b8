//! ICE-TCP (RFC 6544): a participant whose network lets no UDP through reaches the SFU
//! thread over its one TCP port (RFC 4571 framing) and exchanges media with a UDP
//! participant. The TCP client is a str0m peer with a TCP candidate only and no UDP
//! socket at all.

#[path = "support/sfu_peer.rs"]
mod sfu_peer;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use amphi::sfu::tcp::Framer;
use amphi::sfu::{spawn, Event, SfuConfig};
use sfu_peer::{audio_both_ways, udp_link, Link};

#[tokio::test]
async fn a_tcp_only_participant_exchanges_media_with_a_udp_one() {
    let (tx, mut events) = tokio::sync::mpsc::channel(64);
    let config = SfuConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tcp_listen: Some("127.0.0.1:0".parse().unwrap()),
        public: None,
        last_n: 0,
    };
    let sfu = spawn(&config, tx).unwrap();
    let tcp_addr = sfu.tcp_candidate.expect("a TCP candidate when tcp_listen is set");
    assert_eq!(tcp_addr.ip().to_string(), "127.0.0.1");

    let stream = TcpStream::connect(tcp_addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(2))).unwrap();
    stream.set_nodelay(true).unwrap();
    let links = [(Link::Tcp(stream, Framer::default()), tcp_addr), (udp_link(), sfu.candidate)];
    let peers = audio_both_ways(&sfu, links);
    assert!(peers.iter().all(|p| p.connected), "ICE (over TCP for one) and DTLS complete");
    let got: Vec<u64> = peers.iter().map(|p| p.received).collect();
    assert!(got.iter().all(|r| *r >= 25), "audio forwarded between TCP and UDP, both ways: {got:?}");
    let mut connected = 0;
    while let Ok(e) = events.try_recv() {
        connected += usize::from(matches!(e, Event::Connected(_)));
    }
    assert_eq!(connected, 2);
}

#[tokio::test]
async fn a_tcp_stranger_is_disconnected() {
    let (tx, _events) = tokio::sync::mpsc::channel(64);
    let config = SfuConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tcp_listen: Some("127.0.0.1:0".parse().unwrap()),
        public: None,
        last_n: 0,
    };
    let sfu = spawn(&config, tx).unwrap();
    let tcp_addr = sfu.tcp_candidate.unwrap();
    // A frame no participant accepts: the connection is closed.
    let mut s = TcpStream::connect(tcp_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&[0, 4, 1, 2, 3, 4]).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)), "closed after a packet nobody takes");
    // A frame longer than any packet: closed as well.
    let mut s = TcpStream::connect(tcp_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&[0xff, 0xff, 0]).unwrap();
    assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)), "closed after an oversized frame");
}
