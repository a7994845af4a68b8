//! Multi-user chat (XEP-0045): how long the Nth occupant (400th by default) waits for its own
//! presence with status 110 when joining a full room, and how long one message takes to reach
//! every occupant of rooms of 100 and 1000.

use super::{marker, now_nanos, parse_marker};
use crate::conn::{Error, Result};
use crate::ctx::{close_all, pool, Ctx};
use crate::metrics::{percentile, Better};
use crate::session::{Handler, Session};
use crate::xml;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Options of the `muc` workload.
#[derive(clap::Args, Debug)]
pub struct MucArgs {
    /// Occupants in the join test; the last one's join is timed.
    #[arg(long, default_value_t = 400)]
    pub join_size: usize,
    /// Times the last occupant leaves and joins again (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub join_repeats: usize,
    /// Room sizes for the fan-out test.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    pub fanout_sizes: Vec<usize>,
    /// Messages sent per fan-out room (the median time-to-all is reported).
    #[arg(long, default_value_t = 5)]
    pub messages: usize,
    /// Joins in flight while filling a room.
    #[arg(long, default_value_t = 8)]
    pub join_concurrency: usize,
    /// The MUC service; default `conference.` + the domain.
    #[arg(long)]
    pub service: Option<String>,
}

const PREFIX: &str = "u";

/// Fan-out state shared by every occupant's handler.
struct Fan {
    run: String,
    /// The tag of the message being measured; others are ignored.
    tag: AtomicU64,
    arrivals: AtomicUsize,
    latencies_us: Mutex<Vec<f64>>,
}

fn occupant(fan: Arc<Fan>) -> Handler {
    Box::new(move |s, _| {
        if xml::name(s) != b"message" || xml::attr(s, "type").as_deref() != Some("groupchat") {
            return;
        }
        let Some(body) = xml::child_text(s, "body") else {
            return;
        };
        let Some((tag, sent)) = parse_marker(&body, &fan.run) else {
            return;
        };
        if tag == fan.tag.load(Ordering::Relaxed) {
            let us = now_nanos().saturating_sub(sent) as f64 / 1e3;
            fan.latencies_us.lock().unwrap_or_else(|e| e.into_inner()).push(us);
            fan.arrivals.fetch_add(1, Ordering::Release);
        }
    })
}

pub async fn run(ctx: &Ctx, a: &MucArgs) -> Result<()> {
    let service = a.service.clone().unwrap_or_else(|| format!("conference.{}", ctx.target.domain));
    let n = a.fanout_sizes.iter().copied().chain([a.join_size]).max().unwrap_or(0).max(2);
    ctx.ensure_accounts(PREFIX, n).await?;
    let fan = Arc::new(Fan {
        run: ctx.run_id.clone(),
        tag: AtomicU64::new(u64::MAX),
        arrivals: AtomicUsize::new(0),
        latencies_us: Mutex::new(Vec::new()),
    });
    let f = fan.clone();
    let sessions = ctx.sessions(PREFIX, 0..n, move |_| occupant(f.clone())).await?;
    let result = async {
        if a.join_size >= 2 {
            join_time(ctx, a, &service, &sessions).await?;
        }
        for &size in &a.fanout_sizes {
            fan_out(ctx, a, &service, &sessions[..size.max(1)], &fan, size).await?;
        }
        Ok(())
    }
    .await;
    close_all(sessions, Duration::from_secs(5)).await;
    result
}

/// Joins `room` as `nick`; creates and unlocks the room (instant room) if the join created it.
/// Returns the arrival time of the self-presence.
async fn join(s: &Session, room: &str, nick: &str, timeout: Duration) -> Result<Instant> {
    let full = format!("{room}/{nick}");
    let f = full.clone();
    let rx = s.expect(move |st| {
        xml::name(st) == b"presence"
            && xml::attr(st, "from").as_deref() == Some(f.as_str())
            && (xml::attr(st, "type").as_deref() == Some("error") || has_status(st, "110"))
    });
    s.send(format!("<presence to='{full}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    let (at, st) = match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(got)) => got,
        _ => return Err(Error(format!("{}: no self-presence from {full} within {timeout:?}", s.jid))),
    };
    if xml::attr(&st, "type").as_deref() == Some("error") {
        return Err(Error(format!("join {full} refused: {}", String::from_utf8_lossy(&st))));
    }
    if has_status(&st, "201") {
        let reply = s
            .iq(
                |id| {
                    format!(
                        "<iq type='set' id='{id}' to='{room}'><query xmlns='http://jabber.org/protocol/muc#owner'>\
                         <x xmlns='jabber:x:data' type='submit'/></query></iq>"
                    )
                },
                timeout,
            )
            .await?;
        if xml::attr(&reply, "type").as_deref() != Some("result") {
            return Err(Error(format!("instant room {room} refused: {}", String::from_utf8_lossy(&reply))));
        }
    }
    Ok(at)
}

fn has_status(stanza: &[u8], code: &str) -> bool {
    xml::contains(stanza, format!("code='{code}'").as_bytes())
        || xml::contains(stanza, format!("code=\"{code}\"").as_bytes())
}

/// Fills a room with `sessions` (the first creates it), `concurrency` joins at a time.
async fn fill(room: &str, sessions: &[Arc<Session>], concurrency: usize, timeout: Duration) -> Result<()> {
    let Some(first) = sessions.first() else {
        return Ok(());
    };
    join(first, room, "n0", timeout).await?;
    let rest: Arc<Vec<Arc<Session>>> = Arc::new(sessions[1..].to_vec());
    let room = room.to_owned();
    let results = pool(rest.len(), concurrency, move |i| {
        let (rest, room) = (rest.clone(), room.clone());
        async move { join(&rest[i], &room, &format!("n{}", i + 1), timeout).await.map(|_| ()) }
    })
    .await;
    results.into_iter().collect()
}

async fn join_time(ctx: &Ctx, a: &MucArgs, service: &str, sessions: &[Arc<Session>]) -> Result<()> {
    let timeout = ctx.target.timeout;
    let room = format!("join{}@{service}", ctx.run_id);
    let (last, others) = sessions[..a.join_size].split_last().ok_or_else(|| Error("no sessions".into()))?;
    let started = Instant::now();
    fill(&room, others, a.join_concurrency, timeout).await?;
    let filled = started.elapsed().as_secs_f64();
    let nick = format!("n{}", a.join_size - 1);
    let mut times = Vec::new();
    let mark = ctx.probe.mark();
    for round in 0..a.join_repeats.max(1) {
        if round > 0 {
            leave(last, &room, &nick, timeout).await?;
        }
        let t0 = Instant::now();
        let at = join(last, &room, &nick, timeout).await?;
        times.push(at.duration_since(t0).as_secs_f64() * 1e3);
    }
    let span = ctx.probe.since(&mark);
    let all: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
    times.sort_by(f64::total_cmp);
    let note = format!("joins (ms): {}; filling {} occupants took {filled:.1}s", all.join(", "), a.join_size - 1);
    let metric = format!("join of occupant #{}", a.join_size);
    ctx.out.record("muc", &metric, percentile(&times, 50.0), "ms", Better::Lower, span, &note);
    Ok(())
}

async fn leave(s: &Session, room: &str, nick: &str, timeout: Duration) -> Result<()> {
    let full = format!("{room}/{nick}");
    let f = full.clone();
    let rx = s.expect(move |st| {
        xml::name(st) == b"presence"
            && xml::attr(st, "from").as_deref() == Some(f.as_str())
            && xml::attr(st, "type").as_deref() == Some("unavailable")
    });
    s.send(format!("<presence to='{full}' type='unavailable'/>"));
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(_)) => Ok(()),
        _ => Err(Error(format!("no unavailable self-presence from {full}"))),
    }
}

async fn fan_out(
    ctx: &Ctx,
    a: &MucArgs,
    service: &str,
    sessions: &[Arc<Session>],
    fan: &Fan,
    size: usize,
) -> Result<()> {
    let timeout = ctx.target.timeout;
    let room = format!("fan{size}x{}@{service}", ctx.run_id);
    fill(&room, sessions, a.join_concurrency, timeout).await?;
    let mut to_all = Vec::new();
    let mut per_recipient = Vec::new();
    let mark = ctx.probe.mark();
    for m in 0..a.messages.max(1) {
        let tag = (size * 1000 + m) as u64;
        fan.latencies_us.lock().unwrap_or_else(|e| e.into_inner()).clear();
        fan.arrivals.store(0, Ordering::Release);
        fan.tag.store(tag, Ordering::Relaxed);
        let body = marker(&fan.run, tag, now_nanos());
        sessions[0].send(format!("<message to='{room}' type='groupchat'><body>{body}</body></message>"));
        let deadline = Instant::now() + timeout;
        while fan.arrivals.load(Ordering::Acquire) < size && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut lat = std::mem::take(&mut *fan.latencies_us.lock().unwrap_or_else(|e| e.into_inner()));
        if lat.len() < size {
            return Err(Error(format!("room of {size}: only {} of {size} occupants got message {m}", lat.len())));
        }
        lat.sort_by(f64::total_cmp);
        to_all.push(lat[lat.len() - 1] / 1e3);
        per_recipient.extend(lat.iter().map(|us| us / 1e3));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let span = ctx.probe.since(&mark);
    let all: Vec<String> = to_all.iter().map(|t| format!("{t:.1}")).collect();
    to_all.sort_by(f64::total_cmp);
    per_recipient.sort_by(f64::total_cmp);
    let note = format!(
        "time to last occupant (ms): {}; per-recipient p50 {:.1} ms",
        all.join(", "),
        percentile(&per_recipient, 50.0)
    );
    let metric = format!("fan-out to {size} occupants");
    ctx.out.record("muc", &metric, percentile(&to_all, 50.0), "ms", Better::Lower, span, &note);
    Ok(())
}
