//! Presence fan-out: hubs whose rosters hold 100 contacts, all online. A hub's presence update
//! must reach every contact: measured one hub at a time (time until the last contact has it),
//! then all hubs at once in a closed loop (deliveries per second).
//!
//! The rosters are built through the protocol (mutual subscription requests that every session
//! approves) and left on the server, so a rerun only checks them.

use super::{marker, now_nanos, parse_marker};
use crate::conn::{Error, Result};
use crate::ctx::{close_all, Ctx};
use crate::metrics::{percentile, Better};
use crate::session::{Handler, Session};
use crate::xml;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Options of the `presence` workload.
#[derive(clap::Args, Debug)]
pub struct PresenceArgs {
    /// Accounts whose rosters hold `--contacts` contacts.
    #[arg(long, default_value_t = 10)]
    pub hubs: usize,
    /// Contacts in each hub's roster (each its own account).
    #[arg(long, default_value_t = 100)]
    pub contacts: usize,
    /// Presence updates measured one at a time.
    #[arg(long, default_value_t = 20)]
    pub rounds: usize,
    /// Seconds of the all-hubs phase.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
}

/// Roster accounts have their own prefix: their presence traffic must not disturb other workloads.
const PREFIX: &str = "r";

/// Per-hub arrival counters; the hub is woken when a whole update has arrived.
struct Fan {
    run: String,
    contacts: usize,
    arrivals: Vec<AtomicUsize>,
    done: Vec<Notify>,
    /// While false, updates are not counted (roster set-up sends presence too).
    counting: AtomicBool,
}

/// Every session approves subscription requests; contacts also count the hub's updates.
fn handler(fan: Arc<Fan>, index: usize) -> Handler {
    let group = fan.contacts + 1;
    let (hub, is_contact) = (index / group, index % group != 0);
    Box::new(move |s, w| {
        if xml::name(s) != b"presence" {
            return;
        }
        match xml::attr(s, "type").as_deref() {
            Some("subscribe") => {
                if let Some(from) = xml::attr(s, "from") {
                    w.send(format!("<presence to='{}' type='subscribed'/>", xml::escape(&from)));
                }
            }
            None if is_contact && fan.counting.load(Ordering::Relaxed) => {
                let Some(status) = xml::child_text(s, "status") else {
                    return;
                };
                if parse_marker(&status, &fan.run).is_some() {
                    let n = fan.arrivals[hub].fetch_add(1, Ordering::AcqRel) + 1;
                    if n % fan.contacts == 0 {
                        fan.done[hub].notify_one();
                    }
                }
            }
            _ => {}
        }
    })
}

pub async fn run(ctx: &Ctx, a: &PresenceArgs) -> Result<()> {
    let (hubs, contacts) = (a.hubs.max(1), a.contacts.max(1));
    let group = contacts + 1;
    ctx.ensure_accounts(PREFIX, hubs * group).await?;
    let fan = Arc::new(Fan {
        run: ctx.run_id.clone(),
        contacts,
        arrivals: (0..hubs).map(|_| AtomicUsize::new(0)).collect(),
        done: (0..hubs).map(|_| Notify::new()).collect(),
        counting: AtomicBool::new(false),
    });
    let f = fan.clone();
    let sessions = ctx.sessions(PREFIX, 0..hubs * group, move |i| handler(f.clone(), i)).await?;
    let result = async {
        for h in 0..hubs {
            ensure_roster(ctx, &sessions[h * group..(h + 1) * group]).await?;
        }
        fan.counting.store(true, Ordering::Relaxed);
        measure(ctx, a, &sessions, &fan, hubs, group).await
    }
    .await;
    close_all(sessions, Duration::from_secs(5)).await;
    result
}

/// The hub's roster: subscription state (plus a pending `ask`) per contact JID.
async fn roster(hub: &Session, timeout: Duration) -> Result<HashMap<String, String>> {
    let reply =
        hub.iq(|id| format!("<iq type='get' id='{id}'><query xmlns='jabber:iq:roster'/></iq>"), timeout).await?;
    Ok(roster_states(&reply))
}

fn roster_states(reply: &[u8]) -> HashMap<String, String> {
    memchr::memmem::find_iter(reply, b"<item ")
        .filter_map(|at| {
            let item = &reply[at..];
            let jid = xml::attr(item, "jid")?.into_owned();
            let sub = xml::attr(item, "subscription").unwrap_or(Cow::Borrowed("none"));
            let ask = xml::attr(item, "ask").map(|a| format!("+ask:{a}")).unwrap_or_default();
            Some((jid, format!("{sub}{ask}")))
        })
        .collect()
}

/// Makes the hub (`group[0]`) and each contact subscribe to each other, unless already done.
/// Requests are sent again every two seconds for contacts not yet mutual.
async fn ensure_roster(ctx: &Ctx, group: &[Arc<Session>]) -> Result<()> {
    let (hub, contacts) = (&group[0], &group[1..]);
    let timeout = ctx.target.timeout;
    let started = Instant::now();
    let mut last_sent: Option<Instant> = None;
    loop {
        let states = roster(hub, timeout).await?;
        let pending: Vec<&Arc<Session>> =
            contacts.iter().filter(|c| states.get(c.bare()).map(String::as_str) != Some("both")).collect();
        if pending.is_empty() {
            if last_sent.is_some() {
                let took = started.elapsed().as_secs_f64();
                eprintln!("roster of {} ready ({} mutual contacts) in {took:.1}s", hub.bare(), contacts.len());
            }
            return Ok(());
        }
        if started.elapsed() > timeout {
            let mut summary: HashMap<&str, usize> = HashMap::new();
            for c in &pending {
                *summary.entry(states.get(c.bare()).map_or("absent", String::as_str)).or_default() += 1;
            }
            // What the first stuck contact's own roster says about the hub.
            let seen_by_contact = match roster(pending[0], timeout).await {
                Ok(theirs) => theirs.get(hub.bare()).cloned().unwrap_or_else(|| "absent".into()),
                Err(e) => e.to_string(),
            };
            return Err(Error(format!(
                "roster of {}: {} of {} contacts not mutual after {timeout:?} (states: {summary:?}; \
                 {} has the hub as {seen_by_contact})",
                hub.bare(),
                pending.len(),
                contacts.len(),
                pending[0].bare()
            )));
        }
        if last_sent.is_none_or(|t| t.elapsed() > Duration::from_secs(2)) {
            for c in pending {
                hub.send(format!("<presence to='{}' type='subscribe'/>", c.bare()));
                c.send(format!("<presence to='{}' type='subscribe'/>", hub.bare()));
            }
            last_sent = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn update(run: &str, k: u64) -> String {
    format!("<presence><status>{}</status></presence>", marker(run, k, now_nanos()))
}

async fn measure(
    ctx: &Ctx,
    a: &PresenceArgs,
    sessions: &[Arc<Session>],
    fan: &Arc<Fan>,
    hubs: usize,
    group: usize,
) -> Result<()> {
    let timeout = ctx.target.timeout;
    // One update at a time, hubs in turn.
    let mut times = Vec::new();
    let mark = ctx.probe.mark();
    for k in 0..a.rounds.max(1) {
        let h = k % hubs;
        let t0 = Instant::now();
        sessions[h * group].send(update(&fan.run, k as u64));
        if tokio::time::timeout(timeout, fan.done[h].notified()).await.is_err() {
            return Err(Error(format!(
                "update {k} of hub {h} reached {} of {} contacts",
                fan.arrivals[h].load(Ordering::Relaxed) % fan.contacts,
                fan.contacts
            )));
        }
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let span = ctx.probe.since(&mark);
    times.sort_by(f64::total_cmp);
    let note = format!(
        "{} updates, p99 {:.1} ms, max {:.1} ms",
        times.len(),
        percentile(&times, 99.0),
        times[times.len() - 1]
    );
    let metric = format!("fan-out to {} contacts p50", fan.contacts);
    ctx.out.record("presence", &metric, percentile(&times, 50.0), "ms", Better::Lower, span, &note);

    // All hubs at once, each sending its next update when the previous one has arrived.
    let before: usize = fan.arrivals.iter().map(|a| a.load(Ordering::Relaxed)).sum();
    let end = Instant::now() + Duration::from_secs_f64(a.duration);
    let mark = ctx.probe.mark();
    let mut tasks = Vec::new();
    for h in 0..hubs {
        let (hub, fan) = (sessions[h * group].clone(), fan.clone());
        tasks.push(tokio::spawn(async move {
            let mut k = 1u64 << 32;
            while Instant::now() < end {
                k += 1;
                hub.send(update(&fan.run, k));
                if tokio::time::timeout(timeout, fan.done[h].notified()).await.is_err() {
                    return false;
                }
            }
            true
        }));
    }
    let mut stalled = 0;
    for t in tasks {
        if !matches!(t.await, Ok(true)) {
            stalled += 1;
        }
    }
    let span = ctx.probe.since(&mark);
    let after: usize = fan.arrivals.iter().map(|a| a.load(Ordering::Relaxed)).sum();
    let note = format!("{hubs} hubs × {} contacts, {stalled} hubs stalled", fan.contacts);
    ctx.out.record("presence", "deliveries", (after - before) as f64 / span.wall, "/s", Better::Higher, span, &note);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_roster_states() {
        let reply = b"<iq type='result'><query xmlns='jabber:iq:roster'>\
            <item jid='a@l' subscription='both'/><item subscription=\"to\" jid=\"b@l\" ask='subscribe'/>\
            <item jid='c@l'/></query></iq>";
        let s = roster_states(reply);
        assert_eq!(s.get("a@l").map(String::as_str), Some("both"));
        assert_eq!(s.get("b@l").map(String::as_str), Some("to+ask:subscribe"));
        assert_eq!(s.get("c@l").map(String::as_str), Some("none"));
        assert_eq!(s.len(), 3);
    }
}
