//! Login rate: sessions per second at saturation, each a distinct account doing TCP, STARTTLS,
//! SASL, bind, initial presence and a ping round trip (so the presence was processed), then
//! closing the stream.

use crate::conn::{self, Error, Result};
use crate::ctx::{self, pool, Ctx};
use crate::metrics::{percentile, Better};
use std::time::Instant;

/// Options of the `login` workload.
#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// Sign-ins to measure, one per distinct account.
    #[arg(long, default_value_t = 2000)]
    pub count: usize,
    /// Sign-ins in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

const PREFIX: &str = "u";

pub async fn run(ctx: &Ctx, a: &LoginArgs) -> Result<()> {
    ctx.ensure_accounts(PREFIX, a.count).await?;
    warm_up(ctx, a).await?;

    let t = ctx.target.clone();
    let mark = ctx.probe.mark();
    let results = pool(a.count, a.concurrency, move |i| {
        let t = t.clone();
        async move {
            let name = ctx::user(PREFIX, i);
            let started = Instant::now();
            let (io, _jid) = conn::establish(&t, &name, &ctx::password(&name)).await?;
            let took = started.elapsed().as_secs_f64() * 1e3;
            io.close().await;
            Ok(took)
        }
    })
    .await;
    let span = ctx.probe.since(&mark);

    let mut lat: Vec<f64> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
    let errors: Vec<&Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    if lat.is_empty() {
        return Err(Error(format!("every sign-in failed; first: {}", errors[0])));
    }
    lat.sort_by(f64::total_cmp);
    let note = format!(
        "{} sign-ins, {} concurrent, {} failed{}; latency p50 {:.1} ms p99 {:.1} ms",
        a.count,
        a.concurrency,
        errors.len(),
        errors.first().map(|e| format!(" (first: {e})")).unwrap_or_default(),
        percentile(&lat, 50.0),
        percentile(&lat, 99.0)
    );
    ctx.out.record("login", "sign-ins/s", lat.len() as f64 / span.wall, "/s", Better::Higher, span, &note);
    Ok(())
}

/// Signs in once with every account whose salted password is not cached yet, so the measured
/// pass does not spend the generator's CPU on PBKDF2 (a real client caches it too).
async fn warm_up(ctx: &Ctx, a: &LoginArgs) -> Result<()> {
    let known = ctx.target.salts.users();
    let missing: Vec<String> = (0..a.count).map(|i| ctx::user(PREFIX, i)).filter(|u| !known.contains(u)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let (t, missing) = (ctx.target.clone(), std::sync::Arc::new(missing));
    let n = missing.len();
    let results = pool(n, a.concurrency, move |i| {
        let (t, missing) = (t.clone(), missing.clone());
        async move {
            let (io, _) = conn::establish(&t, &missing[i], &ctx::password(&missing[i])).await?;
            io.close().await;
            Ok(())
        }
    })
    .await;
    ctx.save_cache(None);
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        return Err(Error(format!("warm-up sign-in failed: {e}")));
    }
    eprintln!("warmed up {n} accounts in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}
