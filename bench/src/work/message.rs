//! 1:1 messages between pairs of sessions: throughput at saturation (each pair keeps a window
//! of messages in flight), then latency at a fixed offered rate (open loop: each message carries
//! its scheduled send time, so a stalled server shows up as latency, not as fewer samples).

use super::{marker, nanos_at, now_nanos, parse_marker};
use crate::conn::{Error, Result};
use crate::ctx::{close_all, Ctx};
use crate::metrics::{percentile, Better};
use crate::session::{Handler, Session};
use crate::xml;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Options of the `message` workload.
#[derive(clap::Args, Debug)]
pub struct MessageArgs {
    /// Sender/receiver pairs (two sessions each).
    #[arg(long, default_value_t = 50)]
    pub pairs: usize,
    /// Messages in flight per pair in the saturation phase.
    #[arg(long, default_value_t = 32)]
    pub window: usize,
    /// Seconds of the saturation phase (after one second of warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Offered rate for the latency phase, messages per second over all pairs.
    #[arg(long, default_value_t = 2000.0)]
    pub rate: f64,
    /// Seconds of the latency phase.
    #[arg(long, default_value_t = 10.0)]
    pub latency_duration: f64,
}

const PREFIX: &str = "u";

/// Shared by the receivers' handlers and the senders.
struct Stats {
    run: String,
    received: AtomicU64,
    record: AtomicBool,
    latencies_us: Mutex<Vec<f64>>,
    windows: Vec<Arc<Semaphore>>,
}

fn receiver(stats: Arc<Stats>, pair: usize) -> Handler {
    Box::new(move |s, _| {
        if xml::name(s) != b"message" {
            return;
        }
        let Some(body) = xml::child_text(s, "body") else {
            return;
        };
        let Some((_, sent)) = parse_marker(&body, &stats.run) else {
            return;
        };
        stats.received.fetch_add(1, Ordering::Relaxed);
        stats.windows[pair].add_permits(1);
        if stats.record.load(Ordering::Relaxed) {
            let us = now_nanos().saturating_sub(sent) as f64 / 1e3;
            stats.latencies_us.lock().unwrap_or_else(|e| e.into_inner()).push(us);
        }
    })
}

fn message(run: &str, to: &str, seq: u64, nanos: u64) -> Vec<u8> {
    format!("<message to='{to}' type='chat' id='m{seq}'><body>{}</body></message>", marker(run, seq, nanos))
        .into_bytes()
}

pub async fn run(ctx: &Ctx, a: &MessageArgs) -> Result<()> {
    let pairs = a.pairs.max(1);
    ctx.ensure_accounts(PREFIX, 2 * pairs).await?;
    let stats = Arc::new(Stats {
        run: ctx.run_id.clone(),
        received: AtomicU64::new(0),
        record: AtomicBool::new(false),
        latencies_us: Mutex::new(Vec::new()),
        windows: (0..pairs).map(|_| Arc::new(Semaphore::new(0))).collect(),
    });
    let st = stats.clone();
    let sessions =
        ctx.sessions(PREFIX, 0..2 * pairs, move |i| {
            if i % 2 == 1 {
                receiver(st.clone(), i / 2)
            } else {
                crate::session::ignore()
            }
        })
        .await?;
    let result = measure(ctx, a, pairs, &sessions, &stats).await;
    close_all(sessions, Duration::from_secs(5)).await;
    result
}

async fn measure(
    ctx: &Ctx,
    a: &MessageArgs,
    pairs: usize,
    sessions: &[Arc<Session>],
    stats: &Arc<Stats>,
) -> Result<()> {
    // Saturation: each pair keeps `window` messages in flight.
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for p in 0..pairs {
        let (tx, to) = (sessions[2 * p].clone(), sessions[2 * p + 1].bare().to_owned());
        let (win, sent, stop, run) = (stats.windows[p].clone(), sent.clone(), stop.clone(), stats.run.clone());
        win.add_permits(a.window.max(1));
        tasks.push(tokio::spawn(async move {
            let mut seq = 0;
            while !stop.load(Ordering::Relaxed) {
                let Ok(Ok(permit)) = tokio::time::timeout(Duration::from_millis(200), win.acquire()).await else {
                    continue;
                };
                permit.forget();
                seq += 1;
                sent.fetch_add(1, Ordering::Relaxed);
                if !tx.send(message(&run, &to, seq, now_nanos())) {
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (mark, before) = (ctx.probe.mark(), stats.received.load(Ordering::Relaxed));
    tokio::time::sleep(Duration::from_secs_f64(a.duration)).await;
    let (span, after) = (ctx.probe.since(&mark), stats.received.load(Ordering::Relaxed));
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let lost = drain(stats, sent.load(Ordering::Relaxed)).await;
    let rate = (after - before) as f64 / span.wall;
    if after == before {
        return Err(Error("no message was delivered in the saturation phase".into()));
    }
    let note = format!("{pairs} pairs, window {}, {lost} undelivered after 10 s drain", a.window);
    ctx.out.record("message", "throughput", rate, "msg/s", Better::Higher, span, &note);

    // Latency at a fixed offered rate, spread evenly over the pairs.
    let sent_before = sent.load(Ordering::Relaxed);
    stats.received.store(sent_before, Ordering::Relaxed);
    stats.record.store(true, Ordering::Relaxed);
    let period = Duration::from_secs_f64(pairs as f64 / a.rate);
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + Duration::from_secs_f64(a.latency_duration);
    let mark = ctx.probe.mark();
    let mut tasks = Vec::new();
    for p in 0..pairs {
        let (tx, to, sent, run) =
            (sessions[2 * p].clone(), sessions[2 * p + 1].bare().to_owned(), sent.clone(), stats.run.clone());
        let first = start + period.mul_f64(p as f64 / pairs as f64);
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(first.into(), period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut seq = 1u64 << 32;
            loop {
                let at = tick.tick().await.into_std();
                if at >= end {
                    return;
                }
                seq += 1;
                sent.fetch_add(1, Ordering::Relaxed);
                tx.send(message(&run, &to, seq, nanos_at(at)));
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let lost = drain(stats, sent.load(Ordering::Relaxed)).await;
    let span = ctx.probe.since(&mark);
    let mut lat = std::mem::take(&mut *stats.latencies_us.lock().unwrap_or_else(|e| e.into_inner()));
    if lat.is_empty() {
        return Err(Error("no message was delivered in the latency phase".into()));
    }
    lat.sort_by(f64::total_cmp);
    let offered = format!("@{} msg/s", a.rate);
    let note =
        format!("{} samples, max {:.1} ms, {lost} undelivered after 10 s drain", lat.len(), lat[lat.len() - 1] / 1e3);
    for (name, p) in [("p50", 50.0), ("p99", 99.0)] {
        let metric = format!("latency {name} {offered}");
        ctx.out.record("message", &metric, percentile(&lat, p) / 1e3, "ms", Better::Lower, span, &note);
    }
    Ok(())
}

/// Waits (up to 10 s) until everything sent has arrived; returns how many did not.
async fn drain(stats: &Stats, sent: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.received.load(Ordering::Relaxed) < sent && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sent.saturating_sub(stats.received.load(Ordering::Relaxed))
}
