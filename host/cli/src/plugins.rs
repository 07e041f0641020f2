//! `portcullis plugins check`: run a plugin locally, without a server, against a table of
//! requests and expected decisions — the plugin author's test harness.

use crate::output::{self, Format};
use crate::Global;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use portcullis_plugin::check::{self, Expect, Table};
use portcullis_plugin::{Limits, Runtime};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Subcommand)]
pub enum PluginsCmd {
    /// Load a plugin locally and run it against a case table (no server needed).
    Check(CheckArgs),
    /// List the plugins in the server's store (and the built-in ones).
    List,
    /// Upload a .wasm component; the server checks it implements the world.
    Upload {
        /// The component, built for wasm32-wasip2 (`target/wasm32-wasip2/release/NAME.wasm`).
        file: PathBuf,
        /// A name to show in listings (default: the file's).
        #[arg(long)]
        name: Option<String>,
    },
    /// Show one plugin.
    Describe {
        /// `builtin:NAME` or a stored plugin's id.
        id: String,
    },
    /// Activate a plugin (enforce), or run it beside the active one (--shadow).
    Activate {
        /// `builtin:NAME` or a stored plugin's id, e.g. `builtin:cedar`.
        id: String,
        /// Settings as JSON, or @FILE.
        #[arg(long)]
        settings: Option<String>,
        /// Run it beside the active plugin and count disagreements, without deciding.
        #[arg(long)]
        shadow: bool,
    },
    /// The active and shadow plugins, decision counts, shadow disagreements.
    Status,
}

const PLUGIN_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("SIZE", "size"),
    ("DIGEST", "digest"),
    ("CREATED", "created_at"),
];

#[derive(Args)]
pub struct CheckArgs {
    /// The plugin: a .wasm component, or builtin:NAME.
    file: String,
    /// Settings as JSON, or @FILE to read them from a file (default: the case table's
    /// `settings`, else {}).
    #[arg(long)]
    settings: Option<String>,
    /// A case table (see docs/writing-plugins.md); without it the plugin is only loaded
    /// and configured.
    #[arg(long)]
    cases: Option<PathBuf>,
    /// Deadline of one call, as the server's authorizer.timeout_ms.
    #[arg(long, default_value_t = 50)]
    timeout_ms: u64,
    /// Memory cap of one instance, as the server's authorizer.memory_limit_mib.
    #[arg(long, default_value_t = 64)]
    memory_limit_mib: u64,
    /// Print the plugin's log lines (its `host.log` calls) under the case, or the
    /// `configure` call, that wrote them.
    #[arg(long)]
    show_logs: bool,
    /// Ask each case this many times and show the median time (the verdict is the first
    /// answer's; every answer must agree).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    repeat: u32,
}

/// A check that ran but did not pass: exit non-zero without an `error:` line (the report
/// already says what failed).
#[derive(Debug)]
pub struct CheckFailed;
impl std::fmt::Display for CheckFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("some cases failed")
    }
}
impl std::error::Error for CheckFailed {}

pub fn read_settings(arg: &str) -> anyhow::Result<serde_json::Value> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading settings from {path}"))?,
        None => arg.to_string(),
    };
    let v: serde_json::Value = serde_json::from_str(&text).context("--settings must be JSON")?;
    if !v.is_object() {
        bail!("--settings must be a JSON object");
    }
    Ok(v)
}

pub fn run(g: &Global, cmd: PluginsCmd) -> anyhow::Result<()> {
    use crate::client::Client;
    match cmd {
        PluginsCmd::Check(args) => check_cmd(g, args),
        PluginsCmd::List => {
            let v = Client::logged_in(&g.server)?.get("/v1/plugins?limit=1000")?;
            match g.output {
                Format::Json => output::json(&v),
                Format::Table => output::table(
                    v["items"].as_array().map(Vec::as_slice).unwrap_or_default(),
                    PLUGIN_COLUMNS,
                ),
            }
            Ok(())
        }
        PluginsCmd::Upload { file, name } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let name = name.unwrap_or_else(|| {
                file.file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_else(|| "plugin".into())
            });
            let progress = g.output == Format::Table;
            if progress {
                eprintln!("uploading {} ({} bytes)…", file.display(), bytes.len());
            }
            let started = std::time::Instant::now();
            let v = Client::logged_in(&g.server)?.post_bytes(
                &format!("/v1/plugins?name={}", crate::commands::enc(&name)),
                bytes,
                progress,
            )?;
            if progress {
                eprintln!(
                    "stored, checked and compiled in {}",
                    human_duration(started.elapsed())
                );
            }
            match g.output {
                Format::Json => output::json(&v),
                Format::Table => output::table(std::slice::from_ref(&v), PLUGIN_COLUMNS),
            }
            Ok(())
        }
        PluginsCmd::Describe { id } => {
            let v = Client::logged_in(&g.server)?
                .get(&format!("/v1/plugins/{}", crate::commands::enc(&id)))?;
            match g.output {
                Format::Json => output::json(&v),
                Format::Table => output::record(
                    &v,
                    &[
                        ("id", "id"),
                        ("name", "name"),
                        ("digest", "digest"),
                        ("size", "size"),
                        ("world", "world_version"),
                        ("created", "created_at"),
                        ("created by", "created_by"),
                        ("active", "active"),
                        ("shadow", "shadow"),
                    ],
                ),
            }
            Ok(())
        }
        PluginsCmd::Activate {
            id,
            settings,
            shadow,
        } => {
            let settings = match settings {
                Some(s) => read_settings(&s)?,
                None => json!({}),
            };
            let body =
                json!({ "settings": settings, "mode": if shadow { "shadow" } else { "enforce" } });
            let v = Client::logged_in(&g.server)?.post(
                &format!("/v1/plugins/{}/activate", crate::commands::enc(&id)),
                &body,
            )?;
            print_status(g, &v);
            Ok(())
        }
        PluginsCmd::Status => {
            let v = Client::logged_in(&g.server)?.get("/v1/authorizer")?;
            print_status(g, &v);
            Ok(())
        }
    }
}

pub fn print_status(g: &Global, v: &serde_json::Value) {
    match g.output {
        Format::Json => output::json(v),
        Format::Table => {
            let a = &v["active"];
            println!(
                "active:  {} ({}) since {}",
                output::cell(&a["id"]),
                output::cell(&a["digest"]),
                output::cell(&a["since"])
            );
            match v["shadow"].as_object() {
                Some(_) => println!(
                    "shadow:  {} ({})",
                    output::cell(&v["shadow"]["id"]),
                    output::cell(&v["shadow"]["digest"])
                ),
                None => println!("shadow:  -"),
            }
            println!("counts:  {}", output::cell(&v["counts"]));
            println!(
                "shadow disagreements: {} (agreements {})",
                output::cell(&v["shadow_disagreements"]),
                output::cell(&v["shadow_agreements"])
            );
        }
    }
}

fn check_cmd(g: &Global, args: CheckArgs) -> anyhow::Result<()> {
    let bytes = portcullis_app::plugins::plugin_bytes(&args.file)?;
    let table = match &args.cases {
        Some(path) => Some(read_table(path)?),
        None => None,
    };
    let settings = match (&args.settings, table.as_ref().and_then(Table::settings)) {
        (Some(s), _) => read_settings(s)?,
        (None, Some(s)) => s,
        (None, None) => json!({}),
    };
    let limits = Limits {
        timeout: Duration::from_millis(args.timeout_ms),
        // As the server: `configure` (where a JavaScript or Python plugin starts its
        // interpreter) gets authorizer.configure_timeout_ms's default, or the deadline of a
        // call when that is longer.
        configure_timeout: Limits::default()
            .configure_timeout
            .max(Duration::from_millis(args.timeout_ms)),
        memory_bytes: (args.memory_limit_mib as usize) * 1024 * 1024,
        ..Limits::default()
    };
    let options = CheckOptions {
        show_logs: args.show_logs,
        repeat: args.repeat,
    };
    run_local(
        g,
        &args.file,
        &bytes,
        &settings,
        table.as_ref(),
        limits,
        options,
    )
}

/// How `run_local` reports.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Print the plugin's log lines.
    pub show_logs: bool,
    /// Ask each case this many times (the median time is shown).
    pub repeat: u32,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            show_logs: false,
            repeat: 1,
        }
    }
}

/// The plugin's log lines (the tracing target `plugin`, where the sandbox writes what a
/// plugin passes to `host.log`), collected so `--show-logs` can print them under the call
/// that wrote them.
#[derive(Clone, Default)]
struct PluginLogs(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl PluginLogs {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("log lines"))
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PluginLogs {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        if event.metadata().target() != "plugin" {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let level = event.metadata().level().as_str().to_lowercase();
        self.0
            .lock()
            .expect("log lines")
            .push(format!("{level}: {}", message.0));
    }
}

/// A duration as a person reads it: `850 ns`, `12 µs`, `3.4 ms`, `1.20 s`.
pub fn human_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=99_999 => format!("{:.1} µs", ns as f64 / 1e3),
        100_000..=999_999 => format!("{} µs", ns / 1_000),
        1_000_000..=999_999_999 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", d.as_secs_f64()),
    }
}

/// Ask case `i` `repeat` times: the first outcome, with the median duration (an answer
/// that differs from the first is a failure of the case: plugins must be deterministic),
/// and the log lines of the first call (the others' are dropped as they come).
async fn repeated(
    plugin: &portcullis_plugin::Plugin,
    table: &Table,
    i: usize,
    repeat: u32,
    logs: &PluginLogs,
) -> (check::Outcome, Vec<String>) {
    let mut first = table.run_case(plugin, i).await;
    let lines = logs.take();
    if repeat <= 1 {
        return (first, lines);
    }
    let mut times = vec![first.duration];
    for _ in 1..repeat {
        let o = table.run_case(plugin, i).await;
        logs.take();
        times.push(o.duration);
        if first.problem.is_none()
            && (o.decision.allowed != first.decision.allowed
                || o.decision.reasons != first.decision.reasons)
        {
            first.problem = Some(format!(
                "answers differ between calls: {} ({}) then {} ({})",
                if first.decision.allowed {
                    "allow"
                } else {
                    "deny"
                },
                first.decision.reasons.join("; "),
                if o.decision.allowed { "allow" } else { "deny" },
                o.decision.reasons.join("; ")
            ));
            first.passed = false;
        }
    }
    times.sort();
    first.duration = times[times.len() / 2];
    (first, lines)
}

/// A case file of either kind (`check::Table`), with its path in the error.
pub fn read_table(path: &std::path::Path) -> anyhow::Result<Table> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Table::parse(&text).map_err(|e| anyhow::anyhow!("{} is not a case table: {e}", path.display()))
}

/// Where the CLI keeps compiled built-in plugins between runs (`builtin:cedar` and
/// `builtin:rego` take seconds to compile): `$XDG_CACHE_HOME/portcullis/precompiled`, else
/// `~/.cache/portcullis/precompiled` (created private; a folder other users can write is
/// not read from).
fn precompiled_dir() -> Option<std::path::PathBuf> {
    // A relative XDG_CACHE_HOME is to be ignored (the XDG base directory specification).
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))?;
    Some(base.join("portcullis").join("precompiled"))
}

/// Load a plugin with `settings` in a local runtime, run `table` against it and report
/// (exit 1 when a case fails).
pub fn run_local(
    g: &Global,
    label: &str,
    bytes: &[u8],
    settings: &serde_json::Value,
    table: Option<&Table>,
    limits: Limits,
    options: CheckOptions,
) -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The plugin's calls run on this thread (a current-thread runtime): a thread-local
    // subscriber sees every line it logs.
    let logs = PluginLogs::default();
    let _logging = options.show_logs.then(|| {
        tracing::subscriber::set_default(tracing_subscriber::registry().with(logs.clone()))
    });
    rt.block_on(async move {
        let runtime = Runtime::new().map_err(|e| anyhow::anyhow!(e))?;
        if let Some(dir) = precompiled_dir() {
            runtime.keep_precompiled_in(dir);
        }
        if g.output == Format::Table {
            eprintln!("compiling {label} ({} bytes)…", bytes.len());
        }
        let started = std::time::Instant::now();
        let plugin = runtime
            .load(label, bytes, &settings.to_string(), limits)
            .await?;
        let loaded = started.elapsed();
        let configure_logs = logs.take();
        let mut outcomes = Vec::new();
        let mut case_logs = Vec::new();
        if let Some(t) = table {
            for i in 0..t.len() {
                let (outcome, lines) = repeated(&plugin, t, i, options.repeat, &logs).await;
                outcomes.push(outcome);
                case_logs.push(lines);
            }
        }
        let passed = outcomes.iter().filter(|o| o.passed).count();
        let failed = outcomes.len() - passed;
        let mut times: Vec<Duration> = outcomes.iter().map(|o| o.duration).collect();
        times.sort();
        let median = times.get(times.len() / 2).copied().unwrap_or_default();
        let slowest = outcomes.iter().max_by_key(|o| o.duration);
        match g.output {
            Format::Json => output::json(&json!({
                "plugin": label,
                "digest": plugin.digest(),
                "size": plugin.size(),
                "world_version": plugin.world_version(),
                "configure": "ok",
                "load_ms": loaded.as_secs_f64() * 1e3,
                "configure_logs": options.show_logs.then_some(&configure_logs),
                "passed": passed,
                "failed": failed,
                "median_us": median.as_secs_f64() * 1e6,
                "repeat": options.repeat,
                "cases": outcomes.iter().zip(&case_logs).map(|(o, lines)| json!({
                    "name": o.name,
                    "expected": if o.expected == Expect::Allow { "allow" } else { "deny" },
                    "decision": if o.decision.allowed { "allow" } else { "deny" },
                    "reasons": o.decision.reasons,
                    "passed": o.passed,
                    "problem": o.problem,
                    "duration_us": o.duration.as_secs_f64() * 1e6,
                    "logs": options.show_logs.then_some(lines),
                })).collect::<Vec<_>>(),
            })),
            Format::Table => {
                let show = |lines: &[String]| {
                    for line in lines {
                        println!("      log {line}");
                    }
                };
                println!("plugin:    {label}");
                println!("digest:    sha256:{}", plugin.digest());
                println!("world:     {}", plugin.world_version());
                println!(
                    "configure: ok ({settings}); compiled and configured in {}",
                    human_duration(loaded)
                );
                show(&configure_logs);
                for (o, lines) in outcomes.iter().zip(&case_logs) {
                    let verdict = if o.decision.allowed { "allow" } else { "deny" };
                    let why = o.decision.reasons.join("; ");
                    let took = human_duration(o.duration);
                    match &o.problem {
                        None => println!("PASS  {}  → {verdict} ({why})  [{took}]", o.name),
                        Some(p) => println!("FAIL  {}  → {p}; reasons: {why}  [{took}]", o.name),
                    }
                    show(lines);
                }
                if table.is_some_and(Table::is_empty) {
                    println!("0 passed, 0 failed: the case table is empty");
                }
                if let Some(slowest) = slowest {
                    let per = if options.repeat > 1 {
                        format!(" (median of {} calls per case)", options.repeat)
                    } else {
                        String::new()
                    };
                    println!(
                        "{passed} passed, {failed} failed; decisions: median {}, slowest {} ({}){per}",
                        human_duration(median),
                        human_duration(slowest.duration),
                        slowest.name
                    );
                }
            }
        }
        if failed > 0 {
            return Err(CheckFailed.into());
        }
        Ok(())
    })
}
