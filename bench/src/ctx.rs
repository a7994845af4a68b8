//! What every workload shares: the target, the measurement probe, the account cache, and
//! helpers to create accounts and open many sessions with bounded concurrency.

use crate::conn::{self, Error, Registered, Result, Target};
use crate::metrics::{Output, Probe};
use crate::scram::SaltCache;
use crate::session::{Handler, Session};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Everything a workload needs.
pub struct Ctx {
    pub target: Arc<Target>,
    pub probe: Probe,
    pub out: Output,
    /// Template run through `sh -c` to create an account instead of in-band registration.
    pub create_cmd: Option<String>,
    pub setup_concurrency: usize,
    /// Distinguishes this run's messages and rooms from leftovers of earlier runs.
    pub run_id: String,
    pub cache_path: PathBuf,
}

/// What the cache file remembers per server: how many accounts of each prefix exist, and the
/// salted passwords already derived (so reruns skip both the registration and the PBKDF2).
#[derive(Default, Serialize, Deserialize)]
struct CacheFile {
    created: HashMap<String, usize>,
    salted: HashMap<String, String>,
}

/// The account name for index `i` of a prefix.
pub fn user(prefix: &str, i: usize) -> String {
    format!("{prefix}{i}")
}

/// Bench accounts have a password derived from the name, so any run can sign in.
pub fn password(user: &str) -> String {
    format!("pw-{user}")
}

impl Ctx {
    fn load_cache(&self) -> CacheFile {
        std::fs::read(&self.cache_path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// Loads the salted passwords saved by earlier runs.
    pub fn load_salts(path: &PathBuf) -> SaltCache {
        let file: CacheFile =
            std::fs::read(path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        SaltCache::from_saved(file.salted)
    }

    /// Writes the account counts and salted passwords back.
    pub fn save_cache(&self, created: Option<(&str, usize)>) {
        let mut file = self.load_cache();
        if let Some((prefix, n)) = created {
            file.created.insert(prefix.to_owned(), n);
        }
        file.salted = self.target.salts.to_saved();
        if let Some(dir) = self.cache_path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let json = serde_json::to_vec(&file).unwrap_or_default();
        if let Err(e) = std::fs::write(&self.cache_path, json) {
            eprintln!("cannot write account cache {}: {e}", self.cache_path.display());
        }
    }

    /// Makes sure accounts `prefix0 .. prefix{n-1}` exist, creating the missing ones.
    pub async fn ensure_accounts(&self, prefix: &str, n: usize) -> Result<()> {
        let mut have = self.load_cache().created.get(prefix).copied().unwrap_or(0);
        if have > 0 {
            // The server's data may have been wiped since: check one cached account.
            let probe = user(prefix, have.min(n) - 1);
            match conn::establish(&self.target, &probe, &password(&probe)).await {
                Ok((io, _)) => io.close().await,
                Err(e) => {
                    eprintln!("cached account {probe} cannot sign in ({e}); creating all accounts again");
                    have = 0;
                }
            }
        }
        if have >= n {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let t = self.target.clone();
        let cmd = self.create_cmd.clone();
        let prefix_owned = prefix.to_owned();
        let conc = if cmd.is_some() { self.setup_concurrency.min(4) } else { self.setup_concurrency };
        let results = pool(n - have, conc, move |i| {
            let (t, cmd) = (t.clone(), cmd.clone());
            let name = user(&prefix_owned, have + i);
            async move {
                let pw = password(&name);
                match cmd {
                    Some(cmd) => run_create_cmd(&cmd, &name, &t.domain, &pw).await.map(|_| Registered::Created),
                    None => conn::register(&t, &name, &pw).await,
                }
            }
        })
        .await;
        let failed: Vec<&Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        if let Some(e) = failed.first() {
            return Err(Error(format!("{} of {} accounts not created; first error: {e}", failed.len(), n - have)));
        }
        let existed = results.iter().filter(|r| matches!(r, Ok(Registered::AlreadyExists))).count();
        eprintln!(
            "created {} accounts {prefix}{have}..{prefix}{} in {:.1}s ({existed} existed)",
            n - have,
            n - 1,
            started.elapsed().as_secs_f64()
        );
        self.save_cache(Some((prefix, n)));
        Ok(())
    }

    /// Opens sessions for accounts `range` of `prefix`, each with the handler `make(i)` builds.
    pub async fn sessions(
        &self,
        prefix: &str,
        range: std::ops::Range<usize>,
        make: impl Fn(usize) -> Handler + Send + Sync + 'static,
    ) -> Result<Vec<Arc<Session>>> {
        let (t, make, prefix, first) = (self.target.clone(), Arc::new(make), prefix.to_owned(), range.start);
        let results = pool(range.len(), self.setup_concurrency, move |i| {
            let (t, make, name) = (t.clone(), make.clone(), user(&prefix, first + i));
            async move {
                let (io, jid) = conn::establish(&t, &name, &password(&name)).await?;
                Ok(Arc::new(Session::start(io, jid, make(first + i))))
            }
        })
        .await;
        results.into_iter().collect()
    }
}

/// Runs `f(0..n)` on `concurrency` workers; results come back in index order.
pub async fn pool<T, F, Fut>(n: usize, concurrency: usize, f: F) -> Vec<Result<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let f = Arc::new(f);
    let mut workers = Vec::new();
    for _ in 0..concurrency.clamp(1, n.max(1)) {
        let (next, f) = (next.clone(), f.clone());
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return done;
                }
                done.push((i, f(i).await));
            }
        }));
    }
    let mut all = Vec::with_capacity(n);
    for w in workers {
        match w.await {
            Ok(done) => all.extend(done),
            Err(e) => all.push((usize::MAX, Err(Error(format!("worker failed: {e}"))))),
        }
    }
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

/// Runs the account-creation template, e.g. `prosodyctl register {user} {domain} {password}`.
async fn run_create_cmd(template: &str, user: &str, domain: &str, password: &str) -> Result<()> {
    let cmd = template.replace("{user}", user).replace("{domain}", domain).replace("{password}", password);
    let out = tokio::process::Command::new("sh").arg("-c").arg(&cmd).output().await?;
    if !out.status.success() {
        return Err(Error(format!("`{cmd}` failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(())
}

/// Closes sessions concurrently, giving each `timeout` to finish.
pub async fn close_all(sessions: Vec<Arc<Session>>, timeout: Duration) {
    let mut set = tokio::task::JoinSet::new();
    for s in sessions {
        set.spawn(async move { s.close(timeout).await });
    }
    while set.join_next().await.is_some() {}
}
