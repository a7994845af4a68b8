//! The SFU core with real str0m clients on an in-memory network: ICE-lite, DTLS-SRTP,
//! forwarding of Opus and VP8 between participants, keyframe requests, departures.

use std::time::Duration;

use amphi::sfu::loopback::Net;
use amphi::sfu::{Command, Event};

const VP8_KEYFRAME: [u8; 12] = [0x90, 0x80, 0x00, 0x00, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01];

#[test]
fn two_participants_receive_each_others_audio_and_video() {
    let mut net = Net::new();
    let a = net.join("call");
    let b = net.join("call");
    assert!(net.client(a).connected && net.client(b).connected, "ICE-lite + DTLS handshake completes");
    assert_eq!(net.sfu.poll_event(), Some(Event::Connected(a)));
    assert_eq!(net.sfu.poll_event(), Some(Event::Connected(b)));
    net.subscribe(a, b);
    net.subscribe(b, a);
    for n in 1..=50 {
        net.send_media(a, n, &VP8_KEYFRAME);
        net.send_media(b, n, &VP8_KEYFRAME);
        net.step(Duration::from_millis(20));
    }
    for (me, other) in [(a, b), (b, a)] {
        let c = net.client(me);
        let audio = c.received.get(&format!("a{other}")).copied().unwrap_or(0);
        let video = c.received.get(&format!("v{other}")).copied().unwrap_or(0);
        assert!(audio >= 45 && video >= 45, "participant {me} got {audio} audio / {video} video packets of {other}");
    }
    // Subscribing requested a keyframe from each publisher.
    assert!(net.client(a).keyframe_requests >= 1 && net.client(b).keyframe_requests >= 1);
    assert!(net.sfu.forwarded >= 190);
}

#[test]
fn nothing_crosses_calls_and_nothing_flows_unsubscribed() {
    let mut net = Net::new();
    let a = net.join("one");
    let b = net.join("two");
    let c = net.join("one");
    net.subscribe(c, a);
    for n in 1..=20 {
        net.send_media(a, n, &VP8_KEYFRAME);
        net.send_media(b, n, &VP8_KEYFRAME);
        net.step(Duration::from_millis(20));
    }
    assert!(net.client(c).received_total() >= 36);
    assert_eq!(net.client(a).received_total(), 0, "a subscribed to nobody");
    assert_eq!(net.client(b).received_total(), 0);
}

#[test]
fn muting_stops_forwarding_and_leaving_stops_everything() {
    let mut net = Net::new();
    let a = net.join("call");
    let b = net.join("call");
    net.subscribe(b, a);
    for n in 1..=10 {
        net.send_media(a, n, &VP8_KEYFRAME);
        net.step(Duration::from_millis(20));
    }
    net.step(Duration::from_millis(100)); // let what is in flight arrive
    let audio_before = net.client(b).received[&format!("a{a}")];
    assert!(audio_before >= 9);
    net.sfu_command(Command::SetForwarding { publisher: a, audio: true, enabled: false });
    for n in 11..=20 {
        net.send_media(a, n, &VP8_KEYFRAME);
        net.step(Duration::from_millis(20));
    }
    assert_eq!(net.client(b).received[&format!("a{a}")], audio_before, "muted audio is not forwarded");
    assert!(net.client(b).received[&format!("v{a}")] >= 18, "video still is");
    net.sfu_command(Command::Leave { participant: a });
    net.step(Duration::from_millis(100));
    let total = net.client(b).received_total();
    for n in 21..=30 {
        net.send_media(a, n, &VP8_KEYFRAME);
        net.step(Duration::from_millis(20));
    }
    assert_eq!(net.client(b).received_total(), total);
    assert_eq!(net.sfu.participant_count(), 1);
}

#[test]
fn a_participant_whose_network_dies_is_gone_within_seconds() {
    let mut net = Net::new();
    let a = net.join("call");
    let b = net.join("call");
    while net.sfu.poll_event().is_some() {}
    // b's network dies: its client is no longer driven.
    let dead = net.clients.iter().position(|c| c.id == b).unwrap();
    let mut gone_after = None;
    let client = net.clients.remove(dead);
    for i in 0..400 {
        net.step(Duration::from_millis(50));
        if let Some(Event::Gone(id)) = net.sfu.poll_event() {
            assert_eq!(id, b);
            gone_after = Some(i * 50);
            break;
        }
    }
    drop(client);
    let ms = gone_after.expect("the SFU noticed the dead participant");
    assert!(ms <= 9_000, "noticed after {ms} ms");
    assert_eq!(net.sfu.participant_count(), 1);
    assert!(net.sfu.is_connected(a));
}

#[test]
fn last_n_forwards_only_the_recent_speakers_video_and_reports_the_dominant_one() {
    let mut net = Net::new();
    net.sfu.set_last_n(1);
    let ids: Vec<u64> = (0..3).map(|_| net.join("call")).collect();
    let (one, two, three) = (ids[0], ids[1], ids[2]);
    for &s in &ids {
        for &p in &ids {
            if s != p {
                net.subscribe(s, p);
            }
        }
    }
    net.client(one).audio_level = -127;
    net.client(three).audio_level = -127;
    net.client(two).audio_level = -10;
    let mut dominant = None;
    for n in 1..=100 {
        for &id in &ids {
            net.send_media(id, n, &VP8_KEYFRAME);
        }
        net.step(Duration::from_millis(20));
        while let Some(e) = net.sfu.poll_event() {
            if let Event::DominantSpeaker { participant, .. } = e {
                dominant = Some(participant);
            }
        }
    }
    assert_eq!(dominant, Some(two));
    let c1 = net.client(one).received.clone();
    assert!(c1[&format!("v{two}")] >= 80, "the speaker's video reaches the others: {c1:?}");
    assert_eq!(c1.get(&format!("v{three}")), None, "a silent participant outside last-N sends no video: {c1:?}");
    assert!(c1[&format!("a{three}")] >= 95, "audio is never limited: {c1:?}");
}

/// Video lost on either leg is recovered with NACK and RTX: the SFU answers receivers'
/// NACKs from its own RTX cache, and NACKs the publisher for what it did not get.
#[test]
fn lost_video_is_recovered_with_nack_and_rtx_on_both_legs() {
    for leg in ["sfu to receiver", "publisher to sfu"] {
        let mut net = Net::new();
        let a = net.join("call");
        let b = net.join("call");
        net.subscribe(b, a);
        net.step(Duration::from_millis(100));
        // Loss from the 11th to the 190th packet: a receiver cannot ask for a first or last
        // packet it never knew existed.
        for n in 1..=200 {
            let lossy = (11..=190).contains(&n);
            let loss = lossy.then_some(10);
            if leg == "sfu to receiver" {
                net.drop_to = loss.map(|k| (b, k));
            } else {
                net.drop_from = loss.map(|k| (a, k));
            }
            net.send_media(a, n, &VP8_KEYFRAME);
            net.step(Duration::from_millis(20));
        }
        for _ in 0..50 {
            net.step(Duration::from_millis(20));
        }
        let got = net.client(b).received.clone();
        let (audio, video) = (got[&format!("a{a}")], got[&format!("v{a}")]);
        // Audio has no RTX: what is lost stays lost, which shows how much the network took.
        let (lost_audio, lost_video) = (200 - audio, 200 - video);
        assert!(lost_audio >= 10, "{leg}: the loss is real ({lost_audio} audio packets lost)");
        assert!(
            lost_video * 4 <= lost_audio,
            "{leg}: NACK/RTX recovers most video: {lost_video} lost vs {lost_audio} audio"
        );
    }
}

/// Frames of `id`'s simulcast video, one keyframe every 10.
fn run_simulcast(net: &mut Net, id: u64, n: &mut u64, frames: u64) {
    for _ in 0..frames {
        *n += 1;
        net.send_simulcast(id, *n, *n % 10 == 1);
        net.step(Duration::from_millis(20));
    }
}

#[test]
fn simulcast_layer_follows_bandwidth_and_preference_as_one_continuous_stream() {
    let mut net = Net::new();
    let a = net.join_with("call", true);
    let b = net.join("call");
    net.subscribe(b, a);
    net.client(b).record = true;
    let v = format!("v{a}");
    let layer_of = |p: &Vec<u8>| p[7];
    let mut n = 0;
    // Nothing known of b's bandwidth: the lowest layer.
    run_simulcast(&mut net, a, &mut n, 30);
    let seen: Vec<u8> = net.client(b).payloads[&v].iter().map(layer_of).collect();
    assert!(!seen.is_empty() && seen.iter().all(|l| *l == 0), "{seen:?}");
    // Plenty of bandwidth: up to the top layer, at its next keyframe, after asking for one.
    let plis = net.client(a).keyframe_requests;
    net.sfu.set_estimate(b, 10_000_000);
    run_simulcast(&mut net, a, &mut n, 30);
    assert!(net.client(a).keyframe_requests > plis, "a keyframe was requested for the switch");
    assert_eq!(net.client(b).payloads[&v].last().map(layer_of), Some(2));
    // The receiver wants at most the middle layer (a thumbnail).
    net.sfu_command(Command::PreferLayer { subscriber: b, mid: v.clone(), max: 1 });
    run_simulcast(&mut net, a, &mut n, 30);
    assert_eq!(net.client(b).payloads[&v].last().map(layer_of), Some(1));
    // Bandwidth collapses: back to the lowest layer.
    net.sfu.set_estimate(b, 50_000);
    run_simulcast(&mut net, a, &mut n, 30);
    assert_eq!(net.client(b).payloads[&v].last().map(layer_of), Some(0));

    // One stream for the receiver: consecutive sequence numbers and picture ids, although
    // it came from three SSRCs with their own numbering.
    let mut seqs = net.client(b).seqs[&v].clone();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len() as u64, seqs[seqs.len() - 1] - seqs[0] + 1, "no gaps: {seqs:?}");
    let pids: Vec<u16> =
        net.client(b).payloads[&v].iter().map(|p| (u16::from(p[2] & 0x7f) << 8) | u16::from(p[3])).collect();
    assert!(pids.windows(2).all(|w| w[1] == w[0].wrapping_add(1) & 0x7fff), "picture ids: {pids:?}");
    let layers: Vec<u8> = net.client(b).payloads[&v].iter().map(layer_of).collect();
    assert!(layers.contains(&2) && layers.contains(&1), "{layers:?}");
}
