//! Renders result records as one Markdown table: a row per metric, a column per server, and
//! amphi's ratio to each peer (how many times better or worse, whatever the metric's direction).
//! Under each workload a row gives the CPU seconds used while measuring by the generator, by
//! the server and by anything else on the machine, so a saturated generator or a busy
//! neighbour is visible.

use crate::metrics::{Better, Record};
use std::collections::HashMap;

/// The table for `records`, with servers as columns in the given order; the first server is
/// the one compared against the others.
pub fn render(records: &[Record], servers: &[String]) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut cells: HashMap<(String, String, String), &Record> = HashMap::new();
    for r in records {
        let key = (r.workload.clone(), r.metric.clone());
        if !rows.contains(&key) {
            rows.push(key.clone());
        }
        // A later record (a rerun) replaces an earlier one.
        cells.insert((key.0, key.1, r.server.clone()), r);
    }
    let (base, peers) = match servers.split_first() {
        Some((b, p)) => (b.clone(), p.to_vec()),
        None => return String::new(),
    };
    let mut head = vec!["workload".to_owned(), "metric".to_owned()];
    head.extend(servers.iter().cloned());
    head.extend(peers.iter().map(|p| format!("{base} vs {p}")));
    let mut out = vec![head.clone(), head.iter().map(|_| "---".to_owned()).collect()];
    let mut last_workload = String::new();
    for (i, (workload, metric)) in rows.iter().enumerate() {
        let get = |s: &str| cells.get(&(workload.clone(), metric.clone(), s.to_owned())).copied();
        let mut row = vec![workload.clone(), metric.clone()];
        row.extend(servers.iter().map(|s| get(s).map_or("—".to_owned(), |r| format!("{} {}", num(r.value), r.unit))));
        row.extend(peers.iter().map(|p| ratio(get(&base), get(p))));
        out.push(row);
        last_workload.clone_from(workload);
        let workload_ends = rows.get(i + 1).is_none_or(|(w, _)| w != workload);
        if workload_ends {
            let chosen: Vec<&Record> = cells.values().copied().filter(|r| &r.workload == workload).collect();
            out.push(cpu_row(&chosen, &last_workload, servers, peers.len()));
        }
    }
    let widths: Vec<usize> =
        (0..head.len()).map(|c| out.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    out.iter()
        .map(|r| {
            let cols: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            format!("| {} |", cols.join(" | "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// CPU seconds over one workload's measured spans (of the records shown in the table).
fn cpu_row(records: &[&Record], workload: &str, servers: &[String], peers: usize) -> Vec<String> {
    let mut row = vec![String::new(), "cpu s: generator / server / other".to_owned()];
    for s in servers {
        let rs = records.iter().filter(|r| r.workload == workload && &r.server == s);
        // Several metrics of a workload may share one span: count each span once.
        let mut seen = Vec::new();
        let (mut g, mut v, mut o, mut any) = (0.0, 0.0, 0.0, false);
        for r in rs {
            let span = (r.wall_s.to_bits(), r.gen_cpu_s.to_bits());
            if seen.contains(&span) {
                continue;
            }
            seen.push(span);
            g += r.gen_cpu_s;
            v += r.server_cpu_s.unwrap_or(f64::NAN);
            o += r.other_cpu_s.unwrap_or(f64::NAN);
            any = true;
        }
        row.push(if any { format!("{g:.1} / {v:.1} / {o:.1}") } else { "—".to_owned() });
    }
    row.extend((0..peers).map(|_| String::new()));
    row
}

fn ratio(base: Option<&Record>, peer: Option<&Record>) -> String {
    let (Some(b), Some(p)) = (base, peer) else {
        return "—".to_owned();
    };
    let r = match b.better {
        Better::Higher => b.value / p.value,
        Better::Lower => p.value / b.value,
    };
    if !r.is_finite() || r <= 0.0 {
        "—".to_owned()
    } else if r >= 1.0 {
        format!("{r:.1}× better")
    } else {
        format!("{:.1}× worse", 1.0 / r)
    }
}

/// A number with sensible precision and thousands separators.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v.abs() >= 100.0 {
        let s = format!("{:.0}", v.abs());
        let mut out = String::new();
        for (i, ch) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        if v < 0.0 {
            format!("-{out}")
        } else {
            out
        }
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(server: &str, metric: &str, value: f64, better: Better) -> Record {
        Record {
            server: server.into(),
            workload: "w".into(),
            metric: metric.into(),
            value,
            unit: "u".into(),
            better,
            wall_s: 1.0,
            gen_cpu_s: 0.5,
            server_cpu_s: Some(0.9),
            other_cpu_s: Some(0.0),
            note: String::new(),
        }
    }

    #[test]
    fn ratios_follow_the_metric_direction() {
        let recs = vec![
            rec("amphi", "rate", 3000.0, Better::Higher),
            rec("prosody", "rate", 1000.0, Better::Higher),
            rec("amphi", "mem", 20.0, Better::Lower),
            rec("prosody", "mem", 10.0, Better::Lower),
        ];
        let t = render(&recs, &["amphi".into(), "prosody".into(), "ejabberd".into()]);
        assert!(t.contains("3,000 u"), "{t}");
        assert!(t.contains("3.0× better"), "{t}");
        assert!(t.contains("2.0× worse"), "{t}");
        assert!(t.contains("0.5 / 0.9 / 0.0"), "{t}");
        assert_eq!(t.lines().count(), 5, "{t}");
        assert!(t.lines().all(|l| l.chars().count() == t.lines().next().map_or(0, |f| f.chars().count())));
    }

    #[test]
    fn a_rerun_replaces_earlier_records_and_their_cpu() {
        let mut again = rec("amphi", "rate", 4000.0, Better::Higher);
        again.gen_cpu_s = 0.25;
        let recs = vec![rec("amphi", "rate", 3000.0, Better::Higher), again];
        let t = render(&recs, &["amphi".into()]);
        assert!(t.contains("4,000 u") && !t.contains("3,000"), "{t}");
        assert!(t.contains("0.2 / 0.9 / 0.0"), "{t}");
    }

    #[test]
    fn numbers_are_readable() {
        assert_eq!(num(1234567.4), "1,234,567");
        assert_eq!(num(123.0), "123");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(1.234), "1.23");
    }
}
