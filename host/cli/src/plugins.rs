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
            if g.output == Format::Table {
                eprintln!(
                    "uploading {} ({} bytes); the server compiles and checks it…",
                    file.display(),
                    bytes.len()
                );
            }
            let v = Client::logged_in(&g.server)?.post_bytes(
                &format!("/v1/plugins?name={}", crate::commands::enc(&name)),
                bytes,
            )?;
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
        configure_timeout: Duration::from_millis(args.timeout_ms),
        memory_bytes: (args.memory_limit_mib as usize) * 1024 * 1024,
        ..Limits::default()
    };
    run_local(g, &args.file, &bytes, &settings, table.as_ref(), limits)
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
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let runtime = Runtime::new().map_err(|e| anyhow::anyhow!(e))?;
        if let Some(dir) = precompiled_dir() {
            runtime.keep_precompiled_in(dir);
        }
        if g.output == Format::Table {
            eprintln!("compiling {label} ({} bytes)…", bytes.len());
        }
        let plugin = runtime
            .load(label, bytes, &settings.to_string(), limits)
            .await?;
        let outcomes = match table {
            Some(t) => check::run_table(&plugin, t).await,
            None => Vec::new(),
        };
        let passed = outcomes.iter().filter(|o| o.passed).count();
        let failed = outcomes.len() - passed;
        match g.output {
            Format::Json => output::json(&json!({
                "plugin": label,
                "digest": plugin.digest(),
                "size": plugin.size(),
                "world_version": plugin.world_version(),
                "configure": "ok",
                "passed": passed,
                "failed": failed,
                "cases": outcomes.iter().map(|o| json!({
                    "name": o.name,
                    "expected": if o.expected == Expect::Allow { "allow" } else { "deny" },
                    "decision": if o.decision.allowed { "allow" } else { "deny" },
                    "reasons": o.decision.reasons,
                    "passed": o.passed,
                    "problem": o.problem,
                })).collect::<Vec<_>>(),
            })),
            Format::Table => {
                println!("plugin:    {label}");
                println!("digest:    sha256:{}", plugin.digest());
                println!("world:     {}", plugin.world_version());
                println!("configure: ok ({settings})");
                for o in &outcomes {
                    let verdict = if o.decision.allowed { "allow" } else { "deny" };
                    let why = o.decision.reasons.join("; ");
                    match &o.problem {
                        None => println!("PASS  {}  → {verdict} ({why})", o.name),
                        Some(p) => println!("FAIL  {}  → {p}; reasons: {why}", o.name),
                    }
                }
                if table.is_some() {
                    println!("{passed} passed, {failed} failed");
                }
            }
        }
        if failed > 0 {
            return Err(CheckFailed.into());
        }
        Ok(())
    })
}
