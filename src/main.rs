//! The `amphi` command: run the server, manage accounts, check a config file.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use amphi::config::{Config, LogFormat};
use amphi::server::Server;
use amphi::store::Store;

/// amphi — a conferencing server that speaks XMPP.
///
/// With no command, runs the server. Without --config it reads ./config.toml if there is
/// one, else the built-in default (localhost, data in ./data, sign-up open).
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    /// Configuration file (TOML). See config.toml in the source tree for every key.
    #[arg(short, long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage accounts. Passwords are read from the terminal or, when piped, from the
    /// first line of standard input — never from the command line.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Check the configuration file and exit: prints what is wrong, with the key to fix.
    CheckConfig,
}

#[derive(Subcommand)]
enum UserAction {
    /// Create an account, e.g. `amphi user add alice@localhost`.
    Add { jid: String },
    /// Change an account's password.
    Passwd { jid: String },
    /// Delete an account with its roster, offline messages and vCard.
    Remove { jid: String },
    /// List the accounts.
    List,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = cli.config.clone().or_else(|| {
        let local = PathBuf::from("config.toml");
        local.exists().then_some(local)
    });
    let config = match Config::load(path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("amphi: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            println!(
                "{}: OK (domain {}, data in {})",
                path.map(|p| p.display().to_string()).unwrap_or_else(|| "built-in default".into()),
                config.server.domain,
                config.server.data_dir.display()
            );
            ExitCode::SUCCESS
        }
        Command::Serve => serve(config),
        Command::User { action } => user(config, action),
    }
}

fn init_logs(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.server.log_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    match config.server.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn serve(config: Config) -> ExitCode {
    init_logs(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("amphi: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let server = match Server::new(config) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("amphi: {e}");
                return ExitCode::FAILURE;
            }
        };
        let listeners = match server.bind().await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("amphi: {e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(domain = server.domain(), version = env!("CARGO_PKG_VERSION"), "amphi started");
        server.run(listeners).await;
        ExitCode::SUCCESS
    })
}

fn user(config: Config, action: UserAction) -> ExitCode {
    let store = match Store::open(&config.server.data_dir.join("db")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "amphi: cannot open the database in {}: {e}. Is the server running? Stop it first, or use in-band registration.",
                config.server.data_dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("amphi: {e}");
            return ExitCode::FAILURE;
        }
    };
    let username = |jid: &str| -> Result<String, String> {
        let (node, domain) = match jid.split_once('@') {
            Some((n, d)) => (n, d),
            None => (jid, config.server.domain.as_str()),
        };
        if domain != config.server.domain {
            return Err(format!("{jid}: this server serves {}, not {domain}", config.server.domain));
        }
        amphi::sasl::normalize_username(node).ok_or_else(|| format!("{jid}: not a valid user name"))
    };
    let iterations = config.auth.scram_iterations;
    let result: Result<String, String> = runtime.block_on(async {
        match action {
            UserAction::List => {
                let users = amphi::accounts::list(&store).map_err(|e| e.to_string())?;
                Ok(users
                    .iter()
                    .map(|u| format!("{u}@{}\n", config.server.domain))
                    .collect::<String>()
                    .trim_end()
                    .to_string())
            }
            UserAction::Add { jid } => {
                let user = username(&jid)?;
                let password = read_password()?;
                match amphi::accounts::create(&store, &user, &password, iterations).await {
                    Ok(true) => Ok(format!("created {user}@{}", config.server.domain)),
                    Ok(false) => Err(format!(
                        "{user}@{} already exists; use `amphi user passwd` to change its password",
                        config.server.domain
                    )),
                    Err(e) => Err(e.to_string()),
                }
            }
            UserAction::Passwd { jid } => {
                let user = username(&jid)?;
                let password = read_password()?;
                match amphi::accounts::set_password(&store, &user, &password, iterations).await {
                    Ok(true) => Ok(format!("password changed for {user}@{}", config.server.domain)),
                    Ok(false) => Err(format!("no account {user}@{}", config.server.domain)),
                    Err(e) => Err(e.to_string()),
                }
            }
            UserAction::Remove { jid } => {
                let user = username(&jid)?;
                match amphi::accounts::remove(&store, &user).await {
                    Ok(true) => Ok(format!("removed {user}@{}", config.server.domain)),
                    Ok(false) => Err(format!("no account {user}@{}", config.server.domain)),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    });
    match result {
        Ok(msg) => {
            if !msg.is_empty() {
                println!("{msg}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("amphi: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Read a password: from the terminal without echo, or the first line of a pipe.
fn read_password() -> Result<String, String> {
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    if interactive {
        eprint!("Password: ");
        let _ = std::io::stderr().flush();
        set_echo(false);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if interactive {
        set_echo(true);
        eprintln!();
    }
    read.map_err(|e| format!("cannot read the password: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err("the password is empty; type it at the prompt or pipe it on standard input".into());
    }
    Ok(password)
}

#[cfg(unix)]
fn set_echo(on: bool) {
    let _ = std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .status();
}

#[cfg(not(unix))]
fn set_echo(_on: bool) {}
