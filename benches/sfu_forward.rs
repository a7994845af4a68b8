//! Forwarding throughput of the SFU core: N participants in one call, each publishing Opus
//! (50 packets/s) and VP8 (100 packets/s, 1000-byte payloads) and subscribed to everyone
//! else, on the in-memory network of `amphi::sfu::loopback` with a simulated clock.
//!
//! Only time spent inside the SFU is counted (SRTP decrypt of what arrives, routing,
//! SRTP encrypt of what leaves, RTCP, NACK/RTX bookkeeping); the str0m clients around it
//! are not. Reported: forwarded packets per second of SFU CPU time (= per core, the core
//! is single-threaded), and the SFU time per received packet (its added latency, socket
//! excluded).
//!
//!   cargo bench -p amphi --bench sfu_forward [-- PARTICIPANTS... [--seconds S]]

use std::time::Duration;

use amphi::sfu::loopback::Net;

fn run(participants: usize, seconds: u64) {
    let mut net = Net::new();
    net.sfu.set_bwe(false);
    let ids: Vec<u64> = (0..participants).map(|_| net.join("bench")).collect();
    for &s in &ids {
        for &p in &ids {
            if s != p {
                net.subscribe(s, p);
            }
        }
    }
    net.step(Duration::from_millis(100));
    let (f0, t0) = (net.sfu.forwarded, net.sfu_time);
    let payload = vec![0x90u8; 1000];
    // 10 ms ticks: every publisher sends one video packet per tick and one audio packet
    // every other tick (send_media sends both; the audio rate is then 100/s, fine for load).
    let ticks = seconds * 100;
    for n in 1..=ticks {
        for &id in &ids {
            net.send_media(id, n, &payload);
        }
        net.step(Duration::from_millis(10));
    }
    let forwarded = net.sfu.forwarded - f0;
    let cpu = net.sfu_time - t0;
    let received = ticks * 2 * participants as u64;
    let delivered: u64 = net.clients.iter().map(|c| c.received_total()).sum();
    println!(
        "{participants:>3} participants: {forwarded:>9} forwarded in {:>7.3} s SFU CPU -> {:>9.0} packets/s/core, \
         {:>6.1} us SFU time per received packet, {delivered} decrypted by clients",
        cpu.as_secs_f64(),
        forwarded as f64 / cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / received as f64,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mut seconds = 5;
    let mut sizes = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--seconds" {
            seconds = it.next().and_then(|s| s.parse().ok()).unwrap_or(seconds);
        } else if let Ok(n) = a.parse() {
            sizes.push(n);
        }
    }
    if sizes.is_empty() {
        sizes = vec![2, 5, 10, 20];
    }
    for n in sizes {
        run(n, seconds);
    }
}
