//! `conformance`: plays scansion scenarios against any XMPP server.
//!
//! ```text
//! conformance run --host 127.0.0.1 --port 5222 --domain localhost conformance/scenarios
//! conformance check conformance/scenarios      # parse only, no server needed
//! conformance list conformance/scenarios       # name and title of every scenario
//! ```
//! `run` prints one line per scenario, the failures in detail, and ends with
//! `N passed, M failed`; its exit code is non-zero when anything failed.

#![forbid(unsafe_code)]

mod client;
mod compliance;
mod discover;
mod framer;
mod matcher;
mod pretty;
mod report;
mod runner;
mod scenario;
mod template;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use client::sasl::Mechanism;
use client::ServerOpts;
use discover::{discover, load};
use runner::{AccountMode, Failure, RunOpts};

#[derive(Parser)]
#[command(version, about = "Plays scansion (.scs) scenarios against an XMPP server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios against a server.
    Run(RunArgs),
    /// Parse scenarios and report syntax errors, without contacting a server.
    Check {
        /// Scenario files or directories (searched recursively for *.scs).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print which XEP-0479 (Compliance Suites 2023) server requirements a DOAP file
    /// claims, per category and level.
    Compliance {
        /// The project's DOAP file (XEP-0453), e.g. xep/doap.xml.
        #[arg(long, default_value = "xep/doap.xml")]
        doap: PathBuf,
    },
    /// Print the name and title of every scenario.
    List {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the scenario × server table from results files and judge it against the recorded
    /// deviations; exits non-zero on any unexcused failure.
    Table {
        /// Recorded deviations of reference servers.
        #[arg(long)]
        expectations: PathBuf,
        /// Servers that must pass every scenario (expectations do not apply to them).
        #[arg(long, default_value = "amphi")]
        strict: Vec<String>,
        /// Scenario files or directories that every server should have run; a scenario with
        /// no result for a server is MISSING (a failure).
        #[arg(long, num_args = 1..)]
        scenarios: Vec<PathBuf>,
        /// SERVER=RESULTS_FILE, as written by `run --results`.
        #[arg(required = true)]
        results: Vec<String>,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Address to connect to.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Client port (STARTTLS, or direct TLS with --direct-tls).
    #[arg(long, default_value_t = 5222)]
    port: u16,
    /// XMPP domain of the server; scenario JIDs @localhost are rewritten to it.
    #[arg(long, default_value = "localhost")]
    domain: String,
    /// Use direct TLS (XEP-0368) instead of STARTTLS.
    #[arg(long)]
    direct_tls: bool,
    /// How accounts come to exist: `ibr` registers fresh unique ones, `none` uses them as written.
    #[arg(long, value_enum, default_value = "ibr")]
    create_accounts: AccountMode,
    /// Keep the accounts registered by `ibr` instead of removing them after each scenario.
    #[arg(long)]
    keep_accounts: bool,
    /// Seconds to wait for each expected stanza (and for each negotiation step).
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
    /// Seconds `receives: nothing` listens before passing.
    #[arg(long, default_value_t = 1.0)]
    quiet_period: f64,
    /// Force a SASL mechanism (SCRAM-SHA-256, SCRAM-SHA-1, PLAIN) instead of the strongest.
    #[arg(long)]
    mechanism: Option<String>,
    /// Domain the scenarios are written for.
    #[arg(long, default_value = "localhost")]
    scenario_domain: String,
    /// Scenarios run at once (each uses its own accounts; always 1 with --create-accounts none).
    #[arg(long, short, default_value_t = 4)]
    jobs: usize,
    /// Print every stanza sent and received to stderr (use with --jobs 1 for a readable log).
    #[arg(long)]
    trace: bool,
    /// Write one tab-separated line per scenario: name, pass|fail, milliseconds, reason.
    #[arg(long)]
    results: Option<PathBuf>,
    /// Scenario files or directories (searched recursively for *.scs).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

fn check(paths: &[PathBuf], list: bool) -> ExitCode {
    let entries = match discover(paths) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut bad = 0;
    for entry in &entries {
        match load(entry) {
            Ok(s) if list => println!("{}\t{}", entry.name, s.title),
            Ok(_) => {}
            Err(e) => {
                eprintln!("{e}");
                bad += 1;
            }
        }
    }
    if !list {
        println!("{} passed, {bad} failed", entries.len() - bad);
    }
    if bad > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn run_opts(args: &RunArgs) -> Result<RunOpts, String> {
    let secs = |v: f64, flag: &str| {
        if v.is_finite() && v > 0.0 && v < 3600.0 {
            Ok(Duration::from_secs_f64(v))
        } else {
            Err(format!("--{flag} must be a number of seconds between 0 and 3600"))
        }
    };
    let mechanism = match &args.mechanism {
        None => None,
        Some(m) => Some(
            Mechanism::from_name(&m.to_ascii_uppercase())
                .ok_or_else(|| format!("--mechanism {m}: use SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN"))?,
        ),
    };
    let timeout = secs(args.timeout, "timeout")?;
    Ok(RunOpts {
        server: ServerOpts {
            host: args.host.clone(),
            port: args.port,
            domain: args.domain.clone(),
            direct_tls: args.direct_tls,
            timeout,
            mechanism,
        },
        accounts: args.create_accounts,
        step_timeout: timeout,
        quiet_period: secs(args.quiet_period, "quiet-period")?,
        scenario_domain: args.scenario_domain.clone(),
        keep_accounts: args.keep_accounts,
        trace: args.trace,
    })
}

fn report_line(name: &str, elapsed: Duration, result: &Result<(), Failure>) -> String {
    match result {
        Ok(()) => format!("PASS {name} ({:.2}s)", elapsed.as_secs_f64()),
        Err(f) => {
            let mut text = format!("FAIL {name} ({:.2}s)\n", elapsed.as_secs_f64());
            if f.step == 0 {
                text.push_str(&format!("  {}:\n", f.header));
            } else {
                text.push_str(&format!("  step {} (line {}): {}\n", f.step, f.line, f.header));
            }
            for line in f.detail.lines() {
                text.push_str(&format!("  {line}\n"));
            }
            text.trim_end().to_string()
        }
    }
}

async fn run(args: RunArgs) -> ExitCode {
    let opts = match run_opts(&args) {
        Ok(o) => Arc::new(o),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let entries = match discover(&args.paths) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Accounts used as written are shared by every scenario: running them at once would mix
    // their rosters and presence, so that mode runs one scenario at a time.
    let jobs = match opts.accounts {
        AccountMode::Ibr => args.jobs.max(1),
        AccountMode::None => 1,
    };
    let limit = Arc::new(tokio::sync::Semaphore::new(jobs));
    let mut handles = Vec::new();
    for entry in &entries {
        let loaded = load(entry);
        let (opts, limit) = (opts.clone(), limit.clone());
        handles.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await;
            let started = Instant::now();
            let result = match loaded {
                Ok(scenario) => runner::run_scenario(&scenario, &opts).await,
                Err(e) => Err(Failure { step: 0, line: 0, header: "scenario file".into(), detail: e }),
            };
            (started.elapsed(), result)
        }));
    }
    let (mut passed, mut failed) = (0, 0);
    let mut rows = String::new();
    for (entry, handle) in entries.iter().zip(handles) {
        let (elapsed, result) = match handle.await {
            Ok(r) => r,
            Err(e) => (
                Duration::ZERO,
                Err(Failure {
                    step: 0,
                    line: 0,
                    header: "runner".into(),
                    detail: format!("scenario task failed: {e}"),
                }),
            ),
        };
        println!("{}", report_line(&entry.name, elapsed, &result));
        let (status, reason) = match &result {
            Ok(()) => {
                passed += 1;
                ("pass", String::new())
            }
            Err(f) => {
                failed += 1;
                ("fail", f.summary().replace(['\t', '\n'], " "))
            }
        };
        rows.push_str(&format!("{}\t{status}\t{}\t{reason}\n", entry.name, elapsed.as_millis()));
    }
    if let Some(path) = &args.results {
        if let Err(e) = std::fs::write(path, rows) {
            eprintln!("error: cannot write {}: {e}", path.display());
            failed += 1;
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn table(expectations: &Path, strict: &[String], scenarios: &[PathBuf], results: &[String]) -> ExitCode {
    let expected_names: Vec<String> = if scenarios.is_empty() {
        Vec::new()
    } else {
        match discover(scenarios) {
            Ok(entries) => entries.into_iter().map(|e| e.name).collect(),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let expectations = match report::Expectations::load(expectations) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut columns = Vec::new();
    for arg in results {
        let Some((server, file)) = arg.split_once('=') else {
            eprintln!("error: {arg:?}: expected SERVER=RESULTS_FILE");
            return ExitCode::from(2);
        };
        // A server that did not run leaves no file: every scenario is then missing for it.
        let text = std::fs::read_to_string(file).unwrap_or_default();
        columns.push((server.to_string(), report::parse_results(&text)));
    }
    let strict = strict.iter().cloned().collect();
    let table = report::Table::build(&columns, &expected_names, &expectations, &strict);
    print!("{}", table.render());
    for note in &table.notes {
        println!("note: {note}");
    }
    if table.ok() {
        ExitCode::SUCCESS
    } else {
        println!("cross-check failed: see FAIL/MISSING cells above");
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { paths } => check(&paths, false),
        Command::List { paths } => check(&paths, true),
        Command::Compliance { doap } => match compliance::read_doap(&doap) {
            Ok(specs) => {
                println!("XEP-0479 Compliance Suites 2023, server side, from {}", doap.display());
                let met = compliance::report(&specs);
                println!("\nmet: {}", if met.is_empty() { "none".to_string() } else { met.join(", ") });
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Table { expectations, strict, scenarios, results } => {
            table(&expectations, &strict, &scenarios, &results)
        }
        Command::Run(args) => {
            let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::from(2);
                }
            };
            runtime.block_on(run(args))
        }
    }
}
