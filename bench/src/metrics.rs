//! Measurements: CPU time of the generator and of the server, the server's resident memory,
//! percentiles, and the result records that `table` turns into the comparison.
//!
//! Both CPU figures come from `/proc/PID/stat` (`utime + stime`), the same accounting that
//! getrusage(2) reads, so generator and server are measured alike and no unsafe FFI is needed.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Linux reports `/proc` CPU times in USER_HZ ticks, fixed at 100 on the supported ABIs.
const TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds (user + system, all threads) of `pid`, or of this process for `None`.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name, which may itself contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SEC)
}

/// Resident set size of `pid` in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds all processes on the machine ran (`/proc/stat`: user, nice and system time).
///
/// Interrupt and softirq time is left out: loopback networking runs there for every server
/// alike and belongs to no process, so only other programs remain as "other".
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<f64> = line.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    // Columns: user nice system idle iowait irq softirq steal (guest time is inside user).
    Some((v.first()? + v.get(1)? + v.get(2)?) / TICKS_PER_SEC)
}

/// A point in time with the CPU counters of both processes and of the machine.
#[derive(Clone, Copy)]
pub struct Mark {
    at: Instant,
    gen: f64,
    srv: Option<f64>,
    machine: Option<f64>,
}

/// Wall time and CPU use between two marks.
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    pub wall: f64,
    pub gen_cpu: f64,
    pub srv_cpu: Option<f64>,
    /// CPU used by other processes on the machine: a busy neighbour makes numbers doubtful.
    pub other_cpu: Option<f64>,
}

/// Reads the counters of this process and of the server under test.
#[derive(Clone, Copy)]
pub struct Probe {
    pub server_pid: Option<u32>,
}

impl Probe {
    pub fn mark(&self) -> Mark {
        Mark {
            at: Instant::now(),
            gen: cpu_seconds(None).unwrap_or(0.0),
            srv: self.server_pid.and_then(|p| cpu_seconds(Some(p))),
            machine: machine_busy_seconds(),
        }
    }

    /// Waits until the server uses less than a tenth of a core (up to `max`), so a workload
    /// does not start while the server still digests the previous one (e.g. a thousand
    /// occupants leaving a room). Returns the time waited.
    pub async fn wait_quiet(&self, max: std::time::Duration) -> std::time::Duration {
        let started = Instant::now();
        let Some(pid) = self.server_pid else { return started.elapsed() };
        // Three quiet half-seconds in a row: a busy server can pause (garbage collection).
        let window = std::time::Duration::from_millis(500);
        let mut quiet = 0;
        while quiet < 3 && started.elapsed() < max {
            let Some(before) = cpu_seconds(Some(pid)) else { break };
            tokio::time::sleep(window).await;
            let Some(after) = cpu_seconds(Some(pid)) else { break };
            quiet = if (after - before) / window.as_secs_f64() < 0.1 { quiet + 1 } else { 0 };
        }
        started.elapsed()
    }

    pub fn since(&self, m: &Mark) -> Span {
        let now = self.mark();
        let gen_cpu = now.gen - m.gen;
        let srv_cpu = now.srv.zip(m.srv).map(|(a, b)| a - b);
        let machine = now.machine.zip(m.machine).map(|(a, b)| a - b);
        Span {
            wall: now.at.duration_since(m.at).as_secs_f64(),
            gen_cpu,
            srv_cpu,
            other_cpu: machine.map(|busy| (busy - gen_cpu - srv_cpu.unwrap_or(0.0)).max(0.0)),
        }
    }
}

/// The `p`-th percentile (0..=100) of sorted samples, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Which direction of a metric is good.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
}

/// One measured number, as written to the results file (one JSON object per line).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub server: String,
    pub workload: String,
    pub metric: String,
    pub value: f64,
    pub unit: String,
    pub better: Better,
    pub wall_s: f64,
    pub gen_cpu_s: f64,
    pub server_cpu_s: Option<f64>,
    #[serde(default)]
    pub other_cpu_s: Option<f64>,
    #[serde(default)]
    pub note: String,
}

/// Prints records and appends them to the results file.
pub struct Output {
    pub server: String,
    pub json: Option<PathBuf>,
}

impl Output {
    #[allow(clippy::too_many_arguments)]
    pub fn record(&self, workload: &str, metric: &str, value: f64, unit: &str, better: Better, span: Span, note: &str) {
        let r = Record {
            server: self.server.clone(),
            workload: workload.to_owned(),
            metric: metric.to_owned(),
            value,
            unit: unit.to_owned(),
            better,
            wall_s: span.wall,
            gen_cpu_s: span.gen_cpu,
            server_cpu_s: span.srv_cpu,
            other_cpu_s: span.other_cpu,
            note: note.to_owned(),
        };
        let srv = r.server_cpu_s.map_or("?".to_owned(), |s| format!("{s:.2}"));
        let other = r.other_cpu_s.map_or("?".to_owned(), |s| format!("{s:.2}"));
        println!(
            "[{}] {workload}: {metric} = {value:.2} {unit}  (wall {:.2}s, cpu generator {:.2}s server {srv}s other {other}s){}",
            r.server,
            r.wall_s,
            r.gen_cpu_s,
            if note.is_empty() { String::new() } else { format!("  {note}") }
        );
        if let Some(path) = &self.json {
            let line = serde_json::to_string(&r).unwrap_or_default();
            let file = std::fs::OpenOptions::new().create(true).append(true).open(path);
            if let Err(e) = file.and_then(|mut f| writeln!(f, "{line}")) {
                eprintln!("cannot append to {}: {e}", path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn reads_own_cpu_and_memory() {
        let cpu = cpu_seconds(None).expect("own /proc/self/stat");
        assert!(cpu >= 0.0);
        assert!(rss_kib(std::process::id()).expect("own VmRSS") > 0);
        assert_eq!(rss_kib(u32::MAX), None);
        assert!(machine_busy_seconds().expect("/proc/stat") >= cpu);
    }
}
