//! Idle memory: the server's resident memory per connected, authenticated, available and idle
//! session, as the slope between sizes (1k, 5k, 10k by default) so fixed costs cancel out.

use crate::conn::{Error, Result};
use crate::ctx::{close_all, Ctx};
use crate::metrics::{rss_kib, Better};
use crate::session;
use std::time::Duration;

/// Options of the `idle` workload.
#[derive(clap::Args, Debug)]
pub struct IdleArgs {
    /// Session counts at which the server's memory is read.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000")]
    pub sizes: Vec<usize>,
    /// Seconds to wait after each step before reading memory.
    #[arg(long, default_value_t = 5.0)]
    pub settle_secs: f64,
}

const PREFIX: &str = "u";

pub async fn run(ctx: &Ctx, a: &IdleArgs) -> Result<()> {
    let Some(pid) = ctx.probe.server_pid else {
        return Err(Error("the idle workload needs --server-pid to read the server's memory".into()));
    };
    let mut sizes = a.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let Some(&max) = sizes.last() else {
        return Err(Error("--sizes is empty".into()));
    };
    ctx.ensure_accounts(PREFIX, max).await?;
    let settle = Duration::from_secs_f64(a.settle_secs);

    let mark = ctx.probe.mark();
    tokio::time::sleep(settle).await;
    let mut points = vec![(0usize, read_rss(pid, settle).await?)];
    let mut sessions = Vec::with_capacity(max);
    for &size in &sizes {
        let more = ctx.sessions(PREFIX, sessions.len()..size, |_| session::ignore()).await;
        match more {
            Ok(more) => sessions.extend(more),
            Err(e) => {
                close_all(sessions, Duration::from_secs(5)).await;
                return Err(e);
            }
        }
        tokio::time::sleep(settle).await;
        points.push((size, read_rss(pid, settle).await?));
    }
    let span = ctx.probe.since(&mark);
    let alive = sessions.iter().filter(|s| s.alive()).count();
    close_all(sessions, Duration::from_secs(5)).await;

    // Slope from the first measured size to the last (or from zero with a single size).
    let from = if points.len() > 2 { points[1] } else { points[0] };
    let to = points[points.len() - 1];
    let slope = (to.1 as f64 - from.1 as f64) / (to.0 - from.0) as f64;
    let segments: Vec<String> = points
        .windows(2)
        .map(|w| format!("{}→{}: {:.1}", w[0].0, w[1].0, (w[1].1 as f64 - w[0].1 as f64) / (w[1].0 - w[0].0) as f64))
        .collect();
    let rss: Vec<String> = points.iter().map(|(n, kib)| format!("{n}: {kib}")).collect();
    let note = format!(
        "RSS KiB at sessions {}; KiB/session per step {}; {alive}/{max} alive at the end",
        rss.join(", "),
        segments.join(", ")
    );
    ctx.out.record("idle", "KiB/session", slope, "KiB", Better::Lower, span, &note);
    Ok(())
}

/// Median of three readings spread over a fraction of the settle time (allocators and garbage
/// collectors move memory in steps).
async fn read_rss(pid: u32, settle: Duration) -> Result<u64> {
    let mut v = Vec::new();
    for _ in 0..3 {
        v.push(rss_kib(pid).ok_or_else(|| Error(format!("cannot read /proc/{pid}/status")))?);
        tokio::time::sleep(settle / 10).await;
    }
    v.sort_unstable();
    Ok(v[1])
}
