//! Micro-benchmarks of the per-stanza hot paths, without sockets: XML framing of incoming
//! stanzas, serialisation of outgoing ones, local delivery through the session registry,
//! and a MUC room core fanning one message out to its occupants.
//!
//! Plain timing loops (warm-up, then the median of 7 runs) instead of criterion, to keep the
//! dependency tree and CI build time small; numbers are per operation on one core.
//!
//!   cargo bench -p amphi --bench hot_paths

use std::sync::Arc;
use std::time::{Duration, Instant};

use amphi::muc::config::RoomConfig;
use amphi::muc::room::{Limits, Output, Room};
use amphi::router::{self, Registry, Resource};
use amphi::xml::{write, Framer, FramerEvent, Limits as XmlLimits};
use minidom::Element;

const MESSAGE: &str = "<message to='juliet@localhost/balcony' type='chat' id='m1'>\
    <body>Wherefore art thou Romeo? Deny thy father and refuse thy name.</body>\
    <active xmlns='http://jabber.org/protocol/chatstates'/></message>";

/// Median time per operation of `f` run `n` times, over 7 runs after a warm-up.
fn measure(n: u64, mut f: impl FnMut()) -> Duration {
    for _ in 0..n / 10 + 1 {
        f();
    }
    let mut runs: Vec<Duration> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed() / n as u32
        })
        .collect();
    runs.sort();
    runs[3]
}

fn report(name: &str, per_op: Duration) {
    let per_sec = 1.0 / per_op.as_secs_f64();
    println!("{name:<44} {:>9.2} µs/op {:>12.0} ops/s", per_op.as_secs_f64() * 1e6, per_sec);
}

fn framing() {
    let header = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
                  to='localhost' version='1.0'>";
    let batch: String = MESSAGE.repeat(100);
    let per_batch = measure(200, || {
        let mut f = Framer::new(XmlLimits::default());
        f.feed(header.as_bytes());
        f.feed(batch.as_bytes());
        let mut n = 0;
        while let Ok(Some(ev)) = f.next_event() {
            if matches!(ev, FramerEvent::Element(_)) {
                n += 1;
            }
        }
        assert_eq!(n, 100);
    });
    report("framing: one chat message parsed", per_batch / 100);

    // An idle session's framer is parked (parser dropped); this is what waking it costs,
    // on top of parsing the message that woke it.
    let mut f = Framer::new(XmlLimits::default());
    f.feed(header.as_bytes());
    while let Ok(Some(_)) = f.next_event() {}
    report(
        "framing: park, wake, one chat message parsed",
        measure(20_000, || {
            assert!(f.park());
            f.feed(MESSAGE.as_bytes());
            assert!(matches!(f.next_event(), Ok(Some(FramerEvent::Element(_)))));
            while let Ok(Some(_)) = f.next_event() {}
        }),
    );
    let mut f = Framer::new(XmlLimits::default());
    f.feed(header.as_bytes());
    while let Ok(Some(_)) = f.next_event() {}
    report(
        "framing: one chat message, framer kept awake",
        measure(20_000, || {
            f.feed(MESSAGE.as_bytes());
            assert!(matches!(f.next_event(), Ok(Some(FramerEvent::Element(_)))));
            while let Ok(Some(_)) = f.next_event() {}
        }),
    );
}

fn serialising() {
    let el: Element = MESSAGE.replacen("<message ", "<message xmlns='jabber:client' ", 1).parse().unwrap();
    report(
        "serialising: one chat message written",
        measure(20_000, || {
            std::hint::black_box(write::element_bytes(&el));
        }),
    );
}

fn delivery() {
    let registry = Registry::default();
    let (tx, mut rx) = amphi::c2s::queue::queue(1024);
    for i in 0..1000 {
        let (t, _r) = amphi::c2s::queue::queue(1);
        std::mem::forget(_r);
        registry.bind(&format!("user{i}@localhost"), resource("r", i, t));
    }
    registry.bind("juliet@localhost", resource("balcony", 5000, tx));
    let el: Element = MESSAGE.replacen("<message ", "<message xmlns='jabber:client' ", 1).parse().unwrap();
    report(
        "delivery: lookup + queue to a bound resource",
        measure(20_000, || {
            for r in registry.resources("juliet@localhost").iter().filter(|r| r.resource == "balcony") {
                router::send(r, el.clone());
            }
            let _ = rx.try_recv();
        }),
    );
}

fn resource(name: &str, id: u64, tx: amphi::c2s::queue::Sender<router::Outbound>) -> Resource {
    Resource {
        resource: name.into(),
        session_id: id,
        tx,
        kill: Default::default(),
        available: true,
        priority: 0,
        presence: None,
        interested: false,
        carbons: false,
        blocklist: false,
    }
}

fn muc_fan_out(occupants: usize) {
    let mut n = 0u64;
    let mut room = Room::new(
        jid::BareJid::new("bench@conference.localhost").unwrap(),
        RoomConfig::default(),
        Limits { max_occupants: 10_000, max_history: 20, service_full: Default::default() },
        Arc::from(&b"bench secret"[..]),
        Box::new(move || {
            n += 1;
            n
        }),
    );
    for i in 0..occupants {
        let join: Element =
            format!("<presence xmlns='jabber:client' from='u{i}@localhost/r' to='bench@conference.localhost/n{i}'/>")
                .parse()
                .unwrap();
        room.handle(join, 1, &mut Output::default());
    }
    let msg: Element = "<message xmlns='jabber:client' from='u0@localhost/r' to='bench@conference.localhost' \
                        type='groupchat'><body>hello everyone</body></message>"
        .parse()
        .unwrap();
    let per = measure(200, || {
        let mut out = Output::default();
        room.handle(msg.clone(), 2, &mut out);
        assert_eq!(out.sends.len(), occupants);
    });
    report(&format!("muc: one message to {occupants} occupants"), per);
    report("muc: per recipient", per / occupants as u32);
}

fn main() {
    framing();
    serialising();
    delivery();
    muc_fan_out(100);
    muc_fan_out(1000);
}
