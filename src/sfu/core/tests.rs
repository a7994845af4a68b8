//! When forwarded packets leave the SFU: at once, and at the publisher's rate, with
//! bandwidth estimation on (the default). On the in-memory network of `loopback.rs`.

use std::time::Duration;

use str0m::Input;

use crate::sfu::loopback::Net;

/// A VP8 keyframe's first bytes (descriptor, frame tag, start code), padded to `len`.
fn vp8(len: usize) -> Vec<u8> {
    let mut p = vec![0x90, 0x80, 0x00, 0x00, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01];
    p.resize(len, 0);
    p
}

fn connected_pair() -> (Net, u64, u64) {
    let mut net = Net::new();
    let a = net.join("call");
    let b = net.join("call");
    net.subscribe(b, a);
    for n in 1..=5 {
        net.send_media(a, n, &vp8(100));
        net.step(Duration::from_millis(20));
    }
    (net, a, b)
}

#[test]
fn a_forwarded_packet_leaves_with_the_datagram_that_brought_it() {
    let (mut net, a, b) = connected_pair();
    for n in 6..=30 {
        let before = net.client(b).received_total();
        net.send_media(a, n, &vp8(100));
        // The publisher sends what it wrote; the SFU gets no timer call, only the datagrams.
        let now = net.now;
        let _ = net.client(a).rtc.handle_input(Input::Timeout(now));
        net.pump();
        assert_eq!(net.client(b).received_total(), before + 2, "packet {n}: audio and video forwarded at once");
        net.now += Duration::from_millis(1);
    }
}

#[test]
fn video_above_the_bandwidth_estimate_is_forwarded_at_the_publishers_rate() {
    let (mut net, a, b) = connected_pair();
    let video = format!("v{a}");
    let start = net.client(b).received[&video];
    // 500 packets of 1100 bytes a second: 4.4 Mbit/s, seven times the starting estimate.
    for n in 6..506 {
        net.send_media(a, n, &vp8(1100));
        net.step(Duration::from_millis(2));
    }
    let got = net.client(b).received[&video] - start;
    assert!(got >= 495, "{got} of 500 video packets arrived within the second they were sent");
}
