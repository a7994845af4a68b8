//! amphi-bench: a lean XMPP load generator that runs the same workloads against any server
//! (amphi, Prosody, ejabberd...) and reports the numbers with both processes' CPU use.
//!
//! ```text
//! amphi-bench --port 15222 --server-pid $(cat prosody.pid) --label prosody login --count 2000
//! amphi-bench table results.jsonl --servers amphi,prosody,ejabberd
//! ```
#![forbid(unsafe_code)]

mod conn;
mod ctx;
mod metrics;
mod scram;
mod session;
mod sfu;
mod table;
mod tls;
mod work;
mod xml;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(version, about = "XMPP load generator: the same workloads against any server")]
struct Cli {
    /// Server address (loopback only: this tool is for local benchmarks).
    #[arg(long, global = true, default_value = "127.0.0.1")]
    host: String,
    /// Client-to-server port (STARTTLS).
    #[arg(long, global = true, default_value_t = 5222)]
    port: u16,
    /// XMPP domain of the accounts.
    #[arg(long, global = true, default_value = "localhost")]
    domain: String,
    /// PID of the server process, to read its CPU time and resident memory.
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// Name of the server in the results.
    #[arg(long, global = true, default_value = "server")]
    label: String,
    /// SASL mechanism (SCRAM-SHA-256, SCRAM-SHA-1, PLAIN); default: the strongest both sides have.
    #[arg(long, global = true)]
    mech: Option<String>,
    /// Create accounts with this shell command instead of in-band registration, e.g.
    /// "prosodyctl register {user} {domain} {password}".
    #[arg(long, global = true)]
    create_cmd: Option<String>,
    /// Account cache (created accounts, salted passwords); default per server under .amphi-bench/.
    #[arg(long, global = true)]
    cache: Option<PathBuf>,
    /// Append result records (JSON lines) to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Generator threads; 1 runs everything on one thread, leaving the other core to the server.
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    /// Seconds any single network step may take.
    #[arg(long, global = true, default_value_t = 30)]
    timeout_secs: u64,
    /// Seconds after which the whole workload is abandoned.
    #[arg(long, global = true, default_value_t = 600)]
    max_secs: u64,
    /// Connections opened at once while setting up accounts and sessions.
    #[arg(long, global = true, default_value_t = 32)]
    setup_concurrency: usize,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Sign-ins per second at saturation.
    Login(work::login::LoginArgs),
    /// Server memory per idle authenticated session.
    Idle(work::idle::IdleArgs),
    /// 1:1 message throughput and latency.
    Message(work::message::MessageArgs),
    /// MUC join time and message fan-out.
    Muc(work::muc::MucArgs),
    /// Presence fan-out to rosters of online contacts.
    Presence(work::presence::PresenceArgs),
    /// SFU forwarding: synthetic WebRTC publishers and subscribers through amphi's focus or
    /// a Janus VideoRoom (bench/sfu.sh runs both).
    Sfu(sfu::SfuArgs),
    /// Sign in once with the first account and print how long each step took.
    Probe,
    /// Print the comparison table from result files.
    Table {
        /// Result files (JSON lines) written with --json.
        files: Vec<PathBuf>,
        /// Server columns in order; the first is compared with each of the others.
        #[arg(long, value_delimiter = ',', default_value = "amphi,prosody,ejabberd")]
        servers: Vec<String>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Cmd::Table { files, servers } = &cli.cmd {
        return print_table(files, servers);
    }
    let rt = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(cli.threads).enable_all().build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> conn::Result<()> {
    let mech = match cli.mech.as_deref() {
        None => None,
        Some(m) => Some(scram::Mech::parse(m).ok_or_else(|| conn::Error(format!("unknown mechanism {m}")))?),
    };
    let cache_path = cli.cache.clone().unwrap_or_else(|| {
        PathBuf::from(".amphi-bench").join(format!("{}-{}-{}.json", cli.domain, cli.host, cli.port))
    });
    let target = conn::Target {
        host: cli.host.clone(),
        port: cli.port,
        domain: cli.domain.clone(),
        mech,
        tls: tls::client_config()?,
        timeout: Duration::from_secs(cli.timeout_secs),
        salts: Arc::new(ctx::Ctx::load_salts(&cache_path)),
    };
    let mut raw = [0u8; 4];
    let _ = aws_lc_rs::rand::fill(&mut raw);
    let ctx = ctx::Ctx {
        target: Arc::new(target),
        probe: metrics::Probe { server_pid: cli.server_pid },
        out: metrics::Output { server: cli.label.clone(), json: cli.json.clone() },
        create_cmd: cli.create_cmd.clone(),
        setup_concurrency: cli.setup_concurrency,
        run_id: raw.iter().map(|b| format!("{b:02x}")).collect(),
        cache_path,
    };
    let work = async {
        let waited = ctx.probe.wait_quiet(Duration::from_secs(cli.max_secs / 2)).await;
        if waited > Duration::from_secs(2) {
            eprintln!("waited {:.1}s for the server to go quiet", waited.as_secs_f64());
        }
        match &cli.cmd {
            Cmd::Login(a) => work::login::run(&ctx, a).await,
            Cmd::Idle(a) => work::idle::run(&ctx, a).await,
            Cmd::Message(a) => work::message::run(&ctx, a).await,
            Cmd::Muc(a) => work::muc::run(&ctx, a).await,
            Cmd::Presence(a) => work::presence::run(&ctx, a).await,
            Cmd::Sfu(a) => sfu::run(&ctx, a).await,
            Cmd::Probe => probe(&ctx).await,
            Cmd::Table { .. } => Ok(()),
        }
    };
    let limit = Duration::from_secs(cli.max_secs);
    let result = match tokio::time::timeout(limit, work).await {
        Ok(r) => r,
        Err(_) => Err(conn::Error(format!("workload abandoned after {limit:?} (--max-secs)"))),
    };
    ctx.save_cache(None);
    result
}

/// Times each step of one sign-in: a quick check of a server and of the generator's client.
async fn probe(ctx: &ctx::Ctx) -> conn::Result<()> {
    ctx.ensure_accounts("u", 1).await?;
    let (user, password) = (ctx::user("u", 0), ctx::password(&ctx::user("u", 0)));
    for _ in 0..3 {
        let mut last = std::time::Instant::now();
        let mut steps = Vec::new();
        let (io, jid) = conn::establish_traced(&ctx.target, &user, &password, &mut |name| {
            steps.push(format!("{name} {:.1} ms", last.elapsed().as_secs_f64() * 1e3));
            last = std::time::Instant::now();
        })
        .await?;
        println!("{jid}: {}", steps.join(", "));
        io.close().await;
    }
    Ok(())
}

fn print_table(files: &[PathBuf], servers: &[String]) -> std::process::ExitCode {
    let mut records = Vec::new();
    for f in files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("cannot read {}: {e}", f.display());
                return std::process::ExitCode::FAILURE;
            }
        };
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            match serde_json::from_str::<metrics::Record>(line) {
                Ok(r) => records.push(r),
                Err(e) => eprintln!("{}:{}: skipped ({e})", f.display(), n + 1),
            }
        }
    }
    println!("{}", table::render(&records, servers));
    std::process::ExitCode::SUCCESS
}
