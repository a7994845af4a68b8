//! The SFU thread on a real UDP socket (loopback), with two str0m clients on their own
//! sockets: ICE-lite, DTLS, and Opus forwarded through the thread, commanded by channel.

#[path = "support/sfu_peer.rs"]
mod sfu_peer;

use amphi::sfu::{spawn, Event, SfuConfig};
use sfu_peer::{audio_both_ways, udp_link};

#[tokio::test]
async fn media_flows_through_the_sfu_thread_over_udp() {
    let (tx, mut events) = tokio::sync::mpsc::channel(64);
    let sfu =
        spawn(&SfuConfig { listen: "127.0.0.1:0".parse().unwrap(), tcp_listen: None, public: None, last_n: 0 }, tx)
            .unwrap();
    assert_eq!(sfu.candidate.ip().to_string(), "127.0.0.1");
    let peers = audio_both_ways(&sfu, [(udp_link(), sfu.candidate), (udp_link(), sfu.candidate)]);
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
