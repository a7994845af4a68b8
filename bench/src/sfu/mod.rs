//! The SFU workload: P publishers each sending Opus-sized audio and VP8-sized video at fixed
//! packet rates, S subscribers each receiving every publisher's audio and video, through
//! amphi's focus (Jingle, `--sfu amphi`) or a Janus VideoRoom (REST, `--sfu janus`).
//!
//! All peers are str0m clients in this process (real ICE, DTLS-SRTP, RTCP, TWCC) on
//! loopback UDP sockets. Measured over a window after a warm-up: packets delivered per
//! second, the server's CPU (from /proc, all its threads) and so packets per second per
//! core and CPU per forwarded stream, one-way delay through the server (send time carried
//! in each payload), loss, and the generator's own CPU: when the generator nears one core
//! the numbers say more about it than about the server.

mod http;
mod janus;
mod jingle;
mod peer;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::bail;
use crate::conn::Result;
use crate::ctx::{self, Ctx};
use crate::metrics::{percentile, Better};
use peer::{Cmd, Load, Report, Sending, Window};

#[derive(clap::Args, Debug)]
pub struct SfuArgs {
    /// Which SFU: `amphi` (Jingle with focus.<domain>) or `janus` (VideoRoom over HTTP).
    #[arg(long, default_value = "amphi")]
    sfu: String,
    /// Janus's REST transport (host:port, loopback).
    #[arg(long, default_value = "127.0.0.1:18088")]
    janus: String,
    /// Participants that send audio and video (and receive nothing).
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Participants that receive every publisher's audio and video (and send nothing).
    #[arg(long, default_value_t = 20)]
    subscribers: usize,
    /// Audio packets per second per publisher (Opus: one per 20 ms).
    #[arg(long, default_value_t = 50)]
    audio_pps: u32,
    /// Audio payload size.
    #[arg(long, default_value_t = 100)]
    audio_bytes: usize,
    /// Video packets per second per publisher.
    #[arg(long, default_value_t = 150)]
    video_pps: u32,
    /// Video payload size (150 pkt/s of 1100 bytes is about 1.3 Mbit/s).
    #[arg(long, default_value_t = 1100)]
    video_bytes: usize,
    /// Seconds of media before the measurement starts (keyframes, bandwidth estimates).
    #[arg(long, default_value_t = 3.0)]
    warmup_secs: f64,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
}

/// A running participant: its media task and its command channel.
struct Running {
    task: JoinHandle<Report>,
    cmds: mpsc::UnboundedSender<Cmd>,
    publisher: bool,
}

pub async fn run(ctx: &Ctx, a: &SfuArgs) -> Result<()> {
    let load =
        Load { audio_pps: a.audio_pps, audio_bytes: a.audio_bytes, video_pps: a.video_pps, video_bytes: a.video_bytes };
    let window = Arc::new(Window::default());
    let setup = std::time::Instant::now();
    let peers = match a.sfu.as_str() {
        "amphi" => join_amphi(ctx, a, load, &window).await?,
        "janus" => join_janus(ctx, a, load, &window).await?,
        other => bail!("unknown SFU {other} (amphi or janus)"),
    };
    let total = peers.len() as u64;
    eprintln!("{} participants signalled in {:.1}s; waiting for ICE and DTLS", total, setup.elapsed().as_secs_f64());
    let deadline = tokio::time::Instant::now() + ctx.target.timeout;
    while window.connected.load(Ordering::Relaxed) < total {
        if tokio::time::Instant::now() > deadline {
            bail!(
                "only {} of {total} peers connected within {:?}",
                window.connected.load(Ordering::Relaxed),
                ctx.target.timeout
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs_f64(a.warmup_secs)).await;

    let mark = ctx.probe.mark();
    window.open();
    tokio::time::sleep(Duration::from_secs_f64(a.duration)).await;
    window.close();
    let span = ctx.probe.since(&mark);
    // Packets stamped before the window closed may still be on their way.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut reports = Vec::new();
    for p in &peers {
        let _ = p.cmds.send(Cmd::Stop);
    }
    for p in peers {
        match p.task.await {
            Ok(r) => reports.push((p.publisher, r)),
            Err(e) => bail!("a peer task failed: {e}"),
        }
    }
    let received = summarise(ctx, a, &reports, span);
    if received == 0 {
        bail!("no packet reached any subscriber: see the server's log");
    }
    Ok(())
}

/// Records the run's numbers; returns the packets subscribers received in the window.
fn summarise(ctx: &Ctx, a: &SfuArgs, reports: &[(bool, Report)], span: crate::metrics::Span) -> u64 {
    let sent: u64 = reports.iter().filter(|(p, _)| *p).map(|(_, r)| r.sent).sum();
    let received: u64 = reports.iter().filter(|(p, _)| !*p).map(|(_, r)| r.received).sum();
    let expected = sent * a.subscribers as u64;
    let mut lat: Vec<f64> =
        reports.iter().flat_map(|(_, r)| r.latencies_us.iter().map(|us| f64::from(*us) / 1000.0)).collect();
    lat.sort_by(f64::total_cmp);
    let wall = span.wall.max(1e-9);
    let pps = received as f64 / wall;
    let loss = if expected == 0 { 100.0 } else { (1.0 - received as f64 / expected as f64).max(0.0) * 100.0 };
    let server_cores = span.srv_cpu.map(|c| c / wall);
    let streams = (a.publishers * 2 * a.subscribers) as f64;
    let note = format!(
        "{} publishers x ({} audio + {} video pkt/s) -> {} subscribers; offered {:.0} pkt/s",
        a.publishers,
        a.audio_pps,
        a.video_pps,
        a.subscribers,
        expected as f64 / wall
    );
    let out = &ctx.out;
    // The size in the workload's name keeps runs of several sizes apart in one table.
    let w = &format!("sfu {}x{}", a.publishers, a.subscribers);
    out.record(w, "forwarded packets/s", pps, "pkt/s", Better::Higher, span, &note);
    if let Some(cores) = server_cores {
        out.record(w, "server CPU", cores, "cores", Better::Lower, span, "");
        out.record(w, "forwarded pkt/s per server core", pps / cores, "pkt/s", Better::Higher, span, "");
        out.record(w, "server CPU per forwarded stream", cores * 1000.0 / streams, "mcore", Better::Lower, span, "");
    }
    out.record(w, "added latency p50", percentile(&lat, 50.0), "ms", Better::Lower, span, "");
    out.record(w, "added latency p99", percentile(&lat, 99.0), "ms", Better::Lower, span, "");
    out.record(w, "loss", loss, "%", Better::Lower, span, &format!("{received} of {expected} expected"));
    out.record(w, "generator CPU", span.gen_cpu / wall, "cores", Better::Lower, span, "");
    let no_kf: usize = reports.iter().filter(|(p, r)| *p && r.keyframe_requests == 0).count();
    if no_kf > 0 {
        eprintln!("note: {no_kf} publishers got no keyframe request");
    }
    received
}

/// Spawns a peer's media task.
fn start(
    rtc: str0m::Rtc,
    socket: tokio::net::UdpSocket,
    local: std::net::SocketAddr,
    sending: Option<Sending>,
    window: &Arc<Window>,
) -> Running {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(peer::run(rtc, socket, local, sending, window.clone(), rx));
    Running { task, cmds: tx, publisher: sending.is_some() }
}

async fn join_amphi(ctx: &Ctx, a: &SfuArgs, load: Load, window: &Arc<Window>) -> Result<Vec<Running>> {
    let n = a.publishers + a.subscribers;
    ctx.ensure_accounts("sfu", n).await?;
    let domain = &ctx.target.domain;
    let room_name = format!("sfu-{}", ctx.run_id);
    let room = format!("{room_name}@conference.{domain}");
    let call = format!("{room_name}@focus.{domain}");
    let mut peers = Vec::new();
    for i in 0..n {
        let publisher = i < a.publishers;
        let user = ctx::user("sfu", i);
        let mut sig = jingle::Signal::sign_in(&ctx.target, &user, &ctx::password(&user)).await?;
        sig.enter_room(&room, &user, i == 0).await?;
        let mut rtc = peer::new_rtc(std::time::Instant::now());
        let (socket, local) = peer::bind(&mut rtc).await.map_err(|e| crate::conn::Error(format!("UDP socket: {e}")))?;
        let sources = publisher.then(|| jingle::ssrcs(i));
        if let Some(s) = sources {
            jingle::declare_sending(&mut rtc, s);
        } else {
            rtc.direct_api().enable_twcc_feedback();
        }
        let sid = format!("b{}s{i}", ctx.run_id);
        let focus = sig.initiate(&call, &sid, &mut rtc, local.port(), sources).await?;
        jingle::connect(&mut rtc, focus)?;
        let sending = sources.map(|(au, vi, _)| Sending { audio: au.into(), video: vi.into(), load });
        let running = start(rtc, socket, local, sending, window);
        tokio::spawn(sig.serve(call.clone(), sid, !publisher, running.cmds.clone()));
        peers.push(running);
    }
    Ok(peers)
}

async fn join_janus(ctx: &Ctx, a: &SfuArgs, load: Load, window: &Arc<Window>) -> Result<Vec<Running>> {
    let timeout = ctx.target.timeout;
    let room = 1000 + u64::from(u32::from_str_radix(&ctx.run_id, 16).unwrap_or(0) % 1_000_000);
    let admin = janus::create_room(&a.janus, room, a.publishers, timeout).await?;
    let mut peers = Vec::new();
    let mut feeds = Vec::new();
    let mut handles = vec![admin];
    for i in 0..a.publishers {
        let mut rtc = peer::new_rtc(std::time::Instant::now());
        let (socket, local) = peer::bind(&mut rtc).await.map_err(|e| crate::conn::Error(format!("UDP socket: {e}")))?;
        let (h, feed, audio, video) = janus::publish(&a.janus, room, &format!("p{i}"), &mut rtc, timeout).await?;
        feeds.push(feed);
        handles.push(h);
        peers.push(start(rtc, socket, local, Some(Sending { audio, video, load }), window));
    }
    // Janus offers a feed to subscribers only once its publisher's PeerConnection is up.
    let deadline = tokio::time::Instant::now() + timeout;
    while window.connected.load(Ordering::Relaxed) < a.publishers as u64 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..a.subscribers {
        let mut rtc = peer::new_rtc(std::time::Instant::now());
        let (socket, local) = peer::bind(&mut rtc).await.map_err(|e| crate::conn::Error(format!("UDP socket: {e}")))?;
        let h = janus::subscribe(&a.janus, room, &feeds, &mut rtc, timeout).await?;
        handles.push(h);
        peers.push(start(rtc, socket, local, None, window));
    }
    // Janus sessions live until they time out (the generated config disables that) or
    // the server stops; the run's room is unique.
    drop(handles);
    Ok(peers)
}
