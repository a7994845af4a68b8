//! A simulcast receiver must get a picture even when the publisher ignores the SFU's
//! keyframe request. libwebrtc honours at most one request per 300 ms and sends no
//! keyframes unprompted; a receiver whose request falls in that window used to wait
//! forever (nothing is forwarded to it before a keyframe, so it never asks itself).

use std::time::{Duration, Instant};

use amphi::sfu::loopback::Net;

/// A publisher that answers keyframe requests like libwebrtc: at most one keyframe per
/// 300 ms of requests, none otherwise.
struct Throttled {
    seen: u64,
    last: Option<Instant>,
    n: u64,
}

impl Throttled {
    /// One simulcast frame on every layer, a keyframe if a request is honoured now.
    fn frame(&mut self, net: &mut Net, id: u64) {
        let requests = net.client(id).keyframe_requests;
        let mut keyframe = false;
        if requests > self.seen {
            self.seen = requests;
            if self.last.is_none_or(|t| net.now.duration_since(t) >= Duration::from_millis(300)) {
                self.last = Some(net.now);
                keyframe = true;
            }
        }
        self.n += 1;
        net.send_simulcast(id, self.n, keyframe);
        net.step(Duration::from_millis(20));
    }
}

fn video_packets(net: &mut Net, receiver: u64, publisher: u64) -> u64 {
    net.client(receiver).received.get(&format!("v{publisher}")).copied().unwrap_or(0)
}

#[test]
fn a_receiver_whose_keyframe_request_was_ignored_still_gets_the_picture() {
    let mut net = Net::new();
    let a = net.join_with("call", true);
    let b = net.join("call");
    let c = net.join("call");
    let mut pub_a = Throttled { seen: net.client(a).keyframe_requests, last: None, n: 0 };
    // b subscribes: a keyframe follows its request.
    net.subscribe(b, a);
    for _ in 0..5 {
        pub_a.frame(&mut net, a);
    }
    assert!(video_packets(&mut net, b, a) > 0, "b gets a's video at once");
    // c subscribes 100 ms later: its request falls in the publisher's 300 ms window and
    // is ignored; the keyframe b got is gone.
    net.subscribe(c, a);
    let asked = net.client(a).keyframe_requests;
    for _ in 0..5 {
        pub_a.frame(&mut net, a);
    }
    assert!(net.client(a).keyframe_requests > asked, "c's subscription asked for a keyframe");
    assert_eq!(video_packets(&mut net, c, a), 0, "the request was ignored: nothing yet");
    // The SFU asks again (after 0.5 s), and c's picture starts.
    for _ in 0..40 {
        pub_a.frame(&mut net, a);
    }
    assert!(video_packets(&mut net, c, a) >= 10, "c gets a's video: {}", video_packets(&mut net, c, a));
    // Once the picture flows the SFU stops asking: no keyframe storm.
    let settled = net.client(a).keyframe_requests;
    for _ in 0..100 {
        pub_a.frame(&mut net, a);
    }
    assert_eq!(net.client(a).keyframe_requests, settled, "no requests while every receiver has its layer");
}
