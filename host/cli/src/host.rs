//! `portcullis server …`: run the server, or work on its data directory / database from
//! the host (recover the admin user, print the IACT).

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use portcullis_app::bootstrap;
use portcullis_app::config::{Config, LogFormat, Overrides};
use portcullis_core::password;
use portcullis_store::Store;
use std::io::BufRead;
use std::path::PathBuf;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServerArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Reset the password of user `admin` (alias of the `recover-admin-user` subcommand).
    #[arg(long)]
    recover_admin_user: bool,
    /// With --recover-admin-user: read the new password from one line of stdin.
    #[arg(long, requires = "recover_admin_user")]
    password_stdin: bool,
    #[command(subcommand)]
    command: Option<HostCmd>,
}

#[derive(Args, Clone, Default)]
pub struct CommonArgs {
    /// TOML config file.
    #[arg(long, env = "PORTCULLIS_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8700.
    #[arg(long)]
    listen: Option<String>,
    /// Directory for the SQLite database and bootstrap files.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://…
    #[arg(long)]
    database_url: Option<String>,
    /// text or json.
    #[arg(long)]
    log_format: Option<String>,
}

#[derive(Subcommand)]
enum HostCmd {
    /// Reset the password of user `admin`: clears lockout and forced change, revokes all
    /// of its keys. Works while a server runs on the same database.
    RecoverAdminUser {
        #[command(flatten)]
        common: CommonArgs,
        /// Read the new password from one line of stdin instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
        /// The administrator to recover, when it is not `admin` (after an IACT bootstrap
        /// the first administrator has the name it was given).
        #[arg(long, value_name = "USERNAME")]
        user: Option<String>,
        /// Create a user `admin` when there is none, even though the admin account has
        /// other users.
        #[arg(long, conflicts_with = "user")]
        create: bool,
    },
    /// Print the initial admin creation token (iact mode) and nothing else.
    RetrieveIact {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Make builtin:native the active authorizer (the way out of a plugin that denies
    /// everything). Running servers on the same database switch within seconds.
    ResetAuthorizer {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Check the database: integrity (SQLite) and schema version. Exit non-zero on trouble.
    CheckDb {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Check the configuration (file, PORTCULLIS_* variables, flags) without starting:
    /// every key, the TLS certificate and key, the data directory. Prints what the server
    /// would run with (secrets hidden); exit 2 on the first problem.
    CheckConfig {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Write a consistent copy of the SQLite database to FILE while servers keep running
    /// (restore: stop the server, put the file at <data_dir>/portcullis.db). PostgreSQL:
    /// use pg_dump.
    Backup {
        #[command(flatten)]
        common: CommonArgs,
        /// Where to write the copy (must not exist).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
}

fn load_config(args: &CommonArgs) -> anyhow::Result<Config> {
    let mut flags: Overrides = Vec::new();
    let mut flag = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            flags.push((String::new(), k.to_string(), v));
        }
    };
    flag("listen", args.listen.clone());
    flag(
        "data_dir",
        args.data_dir.as_ref().map(|p| p.display().to_string()),
    );
    flag("database_url", args.database_url.clone());
    flag("log_format", args.log_format.clone());
    Config::load(args.config.as_deref(), std::env::vars(), flags)
}

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colours only for a terminal: a log file or a pipe gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    match args.command {
        Some(HostCmd::RecoverAdminUser {
            common,
            password_stdin,
            user,
            create,
        }) => recover_admin_user(&common, password_stdin, user.as_deref(), create),
        Some(HostCmd::RetrieveIact { common }) => retrieve_iact(&common),
        Some(HostCmd::ResetAuthorizer { common }) => reset_authorizer(&common),
        Some(HostCmd::CheckDb { common }) => check_db(&common),
        Some(HostCmd::CheckConfig { common }) => check_config(&common),
        Some(HostCmd::Backup { common, to }) => backup(&common, &to),
        None if args.recover_admin_user => {
            recover_admin_user(&args.common, args.password_stdin, None, false)
        }
        None => serve(&args.common),
    }
}

/// A fatal error the log already has (as a JSON line): `main` exits 2 without printing it
/// again as an `error:` line.
#[derive(Debug)]
pub struct Reported;
impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("reported in the log")
    }
}
impl std::error::Error for Reported {}

/// Whether JSON logs were asked for on the command line or in the environment (what can
/// be known before the configuration is read).
fn asked_for_json(args: &CommonArgs) -> bool {
    let env = std::env::var("PORTCULLIS_LOG_FORMAT").ok();
    args.log_format.as_deref().or(env.as_deref()) == Some("json")
}

/// A fatal start-up error as one JSON log line (the shape of the server's other lines).
fn fatal_json(e: &anyhow::Error) {
    let line = serde_json::json!({
        "timestamp": humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
        "level": "ERROR",
        "fields": {"message": "portcullis cannot start", "error": format!("{e:#}")},
        "target": "portcullis",
    });
    eprintln!("{line}");
}

fn serve(args: &CommonArgs) -> anyhow::Result<()> {
    let config = match load_config(args) {
        Ok(c) => c,
        Err(e) if asked_for_json(args) => {
            fatal_json(&e);
            return Err(Reported.into());
        }
        Err(e) => return Err(e),
    };
    init_logging(config.log_format);
    let json = config.log_format == LogFormat::Json;
    let result = run_server(config);
    match result {
        Err(e) if json => {
            fatal_json(&e);
            Err(Reported.into())
        }
        other => other,
    }
}

fn run_server(config: Config) -> anyhow::Result<()> {
    portcullis_server::raise_file_limit();
    // jemalloc returns a thread's freed memory to the OS only when that thread allocates
    // again, unless a background thread purges. Compiling a large plugin (Cranelift, on
    // wasmtime's worker threads, which then sit idle) frees hundreds of MiB: without this
    // the server kept ~300 MiB of RSS after one JavaScript plugin's upload.
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::debug!(error = %e, "jemalloc background purging unavailable");
    }
    runtime()?.block_on(async move {
        let listen = config.listen.clone();
        let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        let state = portcullis_server::prepare(config).await?;
        let tls = state.config.tls.enabled();
        if !tls && !addr.ip().is_loopback() {
            tracing::warn!(%addr, "serving plain HTTP on a non-loopback address: passwords and keys cross the network in clear; set [tls] cert_file and key_file, or put a TLS-terminating proxy in front");
        }
        tracing::info!(%addr, tls, database = %state.store.backend_name(), authorizer = %state.authorizer_name(), "portcullis listening");
        portcullis_server::serve(state, listener, shutdown_signal()).await?;
        tracing::info!("portcullis stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Read a new password: one line of stdin, or twice on the terminal with echo off.
pub fn read_new_password(
    from_stdin: bool,
    lines: &mut dyn Iterator<Item = std::io::Result<String>>,
    prompt: &str,
) -> anyhow::Result<String> {
    if from_stdin {
        let line = lines.next().context("expected a password on stdin")??;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    const NO_TERMINAL: &str =
        "reading the password from the terminal (without one, pass --password-stdin and write the password on stdin)";
    let first = rpassword::prompt_password(format!("{prompt}: ")).context(NO_TERMINAL)?;
    let second = rpassword::prompt_password(format!("Repeat {}: ", prompt.to_lowercase()))
        .context(NO_TERMINAL)?;
    if first != second {
        bail!("the passwords do not match");
    }
    Ok(first)
}

/// The database the configuration names, for a host-side command: an SQLite file must
/// exist already (a command run with the wrong `--data-dir` would otherwise create an empty
/// database and act on it), and every error names the database (a PostgreSQL URL without
/// its password).
async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let url = config.database_url();
    let shown = match url.strip_prefix("sqlite://") {
        Some(path) => {
            let file = path.split('?').next().unwrap_or(path);
            if !std::path::Path::new(file).exists() {
                bail!(
                    "there is no database at {file}: give the server's --data-dir (or data_dir, or --database-url) to this command"
                );
            }
            file.to_string()
        }
        None => redact_url(&url),
    };
    Store::connect_with(&url, config.database_timeout)
        .await
        .with_context(|| format!("opening the database {shown}"))
}

/// A database URL with its password (in the authority or a `password=` parameter)
/// replaced by `***`.
fn redact_url(url: &str) -> String {
    let url = redact_authority(url);
    match url.split_once('?') {
        Some((base, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_string(),
                })
                .collect();
            format!("{base}?{}", params.join("&"))
        }
        None => url,
    }
}

fn redact_authority(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn recover_admin_user(
    args: &CommonArgs,
    password_stdin: bool,
    user: Option<&str>,
    create: bool,
) -> anyhow::Result<()> {
    let config = load_config(args)?;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let new_password = read_new_password(password_stdin, &mut lines, "New admin password")?;
    if let Err(e) = password::check_policy(&new_password) {
        bail!("password {e}");
    }
    runtime()?.block_on(async move {
        let store = open_store(&config).await?;
        let done = bootstrap::recover_admin(&store, &new_password, user, create).await;
        store.close().await;
        let done = done?;
        bootstrap::forget_initial_password(&config);
        if done.created {
            println!(
                "user {} created in the admin account with the new password",
                done.username
            );
        } else {
            let keys = if done.revoked == 1 { "key" } else { "keys" };
            println!(
                "user {} recovered: password set, lockout cleared, {} {keys} revoked",
                done.username, done.revoked
            );
        }
        Ok(())
    })
}

fn retrieve_iact(args: &CommonArgs) -> anyhow::Result<()> {
    let config = load_config(args)?;
    runtime()?.block_on(async move {
        let store = open_store(&config).await?;
        let token = bootstrap::live_iact_from_file(&store, &config).await?;
        store.close().await;
        match token {
            Some(t) => {
                println!("{t}");
                Ok(())
            }
            None => bail!("no initial admin creation token is live (an admin exists already, or the server is not in iact mode)"),
        }
    })
}

fn reset_authorizer(args: &CommonArgs) -> anyhow::Result<()> {
    let config = load_config(args)?;
    runtime()?.block_on(async move {
        let store = open_store(&config).await?;
        let version = portcullis_app::plugins::reset_authorizer(&store).await;
        store.close().await;
        let version = version?;
        println!("{} is the active authorizer (state version {version}); running servers switch within 2 seconds", portcullis_plugin::DEFAULT_PLUGIN);
        Ok(())
    })
}

fn check_config(args: &CommonArgs) -> anyhow::Result<()> {
    let config = load_config(args)?;
    if config.tls.enabled() {
        portcullis_server::tls::server_config(
            std::path::Path::new(&config.tls.cert_file),
            std::path::Path::new(&config.tls.key_file),
        )?;
    }
    if config.database_url.is_empty() && config.data_dir.exists() && !config.data_dir.is_dir() {
        bail!("data_dir: {} is not a directory", config.data_dir.display());
    }
    let listen: std::net::SocketAddr = config.listen.parse()?;
    println!("configuration ok");
    println!(
        "listen:      {listen} ({})",
        if config.tls.enabled() {
            "https"
        } else {
            "http"
        }
    );
    println!("data_dir:    {}", config.data_dir.display());
    println!("database:    {}", redact_url(&config.database_url()));
    println!("authorizer:  {}", config.authorizer.plugin);
    println!("bootstrap:   {:?}", config.bootstrap.mode);
    println!("log_format:  {:?}", config.log_format);
    if !config.tls.enabled() && !listen.ip().is_loopback() {
        eprintln!("warning: plain HTTP on a non-loopback address: set [tls] cert_file and key_file, or put a TLS-terminating proxy in front");
    }
    Ok(())
}

fn backup(args: &CommonArgs, to: &std::path::Path) -> anyhow::Result<()> {
    let config = load_config(args)?;
    // Made here, new (no file or symbolic link may be there already) and private (0600:
    // the copy holds password hashes and key digests); VACUUM INTO fills an empty file.
    {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        o.open(to).with_context(|| {
            format!(
                "--to: creating {} (a backup never overwrites a file)",
                to.display()
            )
        })?;
    }
    runtime()?.block_on(async move {
        let store = open_store(&config).await?;
        let done = store.backup_to(to).await;
        store.close().await;
        done.with_context(|| format!("backing up to {}", to.display()))?;
        println!("backed up to {}", to.display());
        Ok(())
    })
}

fn check_db(args: &CommonArgs) -> anyhow::Result<()> {
    let config = load_config(args)?;
    runtime()?.block_on(async move {
        let store = open_store(&config).await?;
        let report = store.integrity_check().await?;
        let applied = store.applied_migrations().await?;
        let known = store.known_migrations();
        store.close().await;
        println!("integrity: {report}");
        println!(
            "schema: {} of {} migrations applied",
            applied.len(),
            known.len()
        );
        if report != "ok" {
            bail!("the database failed its integrity check");
        }
        Ok(())
    })
}
