//! The cross-check table: scenario × server → pass/fail, judged against recorded deviations.
//!
//! Each server's run leaves a results file (one `name<TAB>pass|fail<TAB>ms<TAB>reason` line per
//! scenario). A reference server may fail a scenario only if `expectations.toml` lists that
//! scenario for that server with a reason citing the spec; servers named with `--strict`
//! (amphi) must pass everything. A listed deviation that passes is reported as stale but is not
//! an error, so upgrading a reference server never breaks the build.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

/// One recorded deviation of a reference server.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Deviation {
    pub scenario: String,
    pub server: String,
    pub reason: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    #[serde(default)]
    pub deviation: Vec<Deviation>,
}

impl Expectations {
    pub fn load(path: &Path) -> Result<Expectations, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn find(&self, scenario: &str, server: &str) -> Option<&Deviation> {
        self.deviation.iter().find(|d| d.scenario == scenario && d.server == server)
    }
}

/// Parses a results file into scenario -> passed.
pub fn parse_results(text: &str) -> BTreeMap<String, bool> {
    text.lines()
        .filter_map(|line| {
            let mut cols = line.split('\t');
            let name = cols.next()?.trim();
            let status = cols.next()?.trim();
            (!name.is_empty()).then(|| (name.to_string(), status == "pass"))
        })
        .collect()
}

/// Verdict of one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Pass,
    /// Failed and not excused: makes the cross-check fail.
    Fail,
    /// Failed, listed in the expectations.
    ExpectedFail,
    /// Listed in the expectations, but passed: the entry is stale.
    UnexpectedPass,
    /// No result (the server did not run the scenario): counts as a failure.
    Missing,
}

impl Cell {
    fn label(self) -> &'static str {
        match self {
            Cell::Pass => "pass",
            Cell::Fail => "FAIL",
            Cell::ExpectedFail => "xfail",
            Cell::UnexpectedPass => "xpass",
            Cell::Missing => "MISSING",
        }
    }
}

/// The judged table and its rendering.
pub struct Table {
    pub servers: Vec<String>,
    pub rows: Vec<(String, Vec<Cell>)>,
    pub notes: Vec<String>,
}

impl Table {
    /// Judges `results` (server, scenario -> passed); `expected` names scenarios every server
    /// should have run, in addition to those found in the results.
    pub fn build(
        results: &[(String, BTreeMap<String, bool>)],
        expected: &[String],
        expectations: &Expectations,
        strict: &BTreeSet<String>,
    ) -> Table {
        let servers: Vec<String> = results.iter().map(|(s, _)| s.clone()).collect();
        let scenarios: BTreeSet<&String> = results.iter().flat_map(|(_, r)| r.keys()).chain(expected).collect();
        let mut notes = Vec::new();
        let mut rows = Vec::new();
        for scenario in scenarios {
            let mut cells = Vec::new();
            for (server, result) in results {
                let excused = (!strict.contains(server)).then(|| expectations.find(scenario, server)).flatten();
                let cell = match (result.get(scenario), excused) {
                    (None, _) => Cell::Missing,
                    (Some(true), None) => Cell::Pass,
                    (Some(true), Some(_)) => {
                        notes.push(format!("stale expectation: {server} now passes {scenario}; remove its entry"));
                        Cell::UnexpectedPass
                    }
                    (Some(false), None) => Cell::Fail,
                    (Some(false), Some(d)) => {
                        notes.push(format!("{server} fails {scenario} as recorded: {}", d.reason));
                        Cell::ExpectedFail
                    }
                };
                cells.push(cell);
            }
            rows.push((scenario.clone(), cells));
        }
        for d in &expectations.deviation {
            if strict.contains(&d.server) {
                notes.push(format!(
                    "ignored expectation for {} ({}): it must pass every scenario",
                    d.server, d.scenario
                ));
            }
        }
        Table { servers, rows, notes }
    }

    /// True when no cell is a failure or missing.
    pub fn ok(&self) -> bool {
        self.rows.iter().all(|(_, cells)| cells.iter().all(|c| !matches!(c, Cell::Fail | Cell::Missing)))
    }

    pub fn render(&self) -> String {
        let width = self.rows.iter().map(|(n, _)| n.len()).max().unwrap_or(8).max(8);
        let mut out = format!("{:width$}", "scenario");
        for s in &self.servers {
            out.push_str(&format!("  {s:>9}"));
        }
        out.push('\n');
        for (name, cells) in &self.rows {
            out.push_str(&format!("{name:width$}"));
            for c in cells {
                out.push_str(&format!("  {:>9}", c.label()));
            }
            out.push('\n');
        }
        out.push_str(&format!("{:width$}", "passed"));
        for i in 0..self.servers.len() {
            let passed = self.rows.iter().filter(|(_, c)| matches!(c[i], Cell::Pass | Cell::UnexpectedPass)).count();
            out.push_str(&format!("  {:>9}", format!("{passed}/{}", self.rows.len())));
        }
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results() -> Vec<(String, BTreeMap<String, bool>)> {
        vec![
            ("prosody".into(), parse_results("a.scs\tpass\t1\t\nb.scs\tfail\t2\twhy\n")),
            ("amphi".into(), parse_results("a.scs\tpass\t1\t\nb.scs\tfail\t2\twhy\n")),
        ]
    }

    fn expectations(server: &str) -> Expectations {
        Expectations {
            deviation: vec![Deviation {
                scenario: "b.scs".into(),
                server: server.into(),
                reason: "RFC says so".into(),
            }],
        }
    }

    #[test]
    fn listed_reference_failures_are_excused_but_strict_servers_are_not() {
        let strict: BTreeSet<String> = ["amphi".to_string()].into();
        let t = Table::build(&results(), &[], &expectations("prosody"), &strict);
        assert_eq!(t.rows[1].1, vec![Cell::ExpectedFail, Cell::Fail]);
        assert!(!t.ok(), "amphi failing must fail the cross-check");
        let t = Table::build(&results()[..1], &[], &expectations("prosody"), &strict);
        assert!(t.ok());
        let t = Table::build(&results()[..1], &[], &Expectations::default(), &strict);
        assert!(!t.ok(), "unlisted reference failure must fail");
        let t = Table::build(&results(), &[], &expectations("amphi"), &strict);
        assert_eq!(t.rows[1].1[1], Cell::Fail, "expectations cannot excuse amphi");
    }

    #[test]
    fn missing_and_stale_entries() {
        let mut r = results();
        r[0].1.remove("a.scs");
        let strict = BTreeSet::new();
        let mut e = expectations("prosody");
        e.deviation.push(Deviation { scenario: "a.scs".into(), server: "amphi".into(), reason: "x".into() });
        let t = Table::build(&r, &[], &e, &strict);
        assert_eq!(t.rows[0].1, vec![Cell::Missing, Cell::UnexpectedPass]);
        assert!(!t.ok());
        assert!(t.notes.iter().any(|n| n.contains("stale")));
        assert!(t.render().contains("passed"));
        // A server that produced no results at all still gets MISSING cells.
        let empty = vec![("amphi".to_string(), BTreeMap::new())];
        let t = Table::build(&empty, &["a.scs".to_string()], &Expectations::default(), &strict);
        assert_eq!(t.rows[0].1, vec![Cell::Missing]);
        assert!(!t.ok());
    }

    #[test]
    fn expectations_file_rejects_unknown_keys() {
        let ok: Expectations = toml::from_str("[[deviation]]\nscenario='a'\nserver='b'\nreason='c'\n").unwrap();
        assert_eq!(ok.deviation.len(), 1);
        assert!(toml::from_str::<Expectations>("[[deviation]]\nscenario='a'\nwho='b'\n").is_err());
    }
}
