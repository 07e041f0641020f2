//! `portcullis policies`: application policies (SPEC §11) — list, put, describe, delete,
//! and `check`, which runs a table of AuthZEN questions against a deployed policy.

use crate::client::Client;
use crate::commands::enc;
use crate::output::{self, Format};
use crate::plugins::{read_settings, CheckFailed};
use crate::Global;
use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum PoliciesCmd {
    /// List the application policies.
    List,
    /// Create or change a policy: the plugin decides for it from now on (or, with
    /// --shadow, runs beside its active plugin). Refused settings change nothing.
    Put {
        /// The policy's name: its AuthZEN endpoints live under /policies/NAME.
        name: String,
        /// `builtin:NAME` or a stored plugin id (`portcullis plugins upload`).
        #[arg(long)]
        plugin: String,
        /// Settings as JSON, or @FILE.
        #[arg(long)]
        settings: Option<String>,
        /// Run the plugin beside the policy's active one, counting disagreements.
        #[arg(long)]
        shadow: bool,
    },
    /// Show one policy: its plugins, decision counts, shadow disagreements.
    Describe {
        /// The policy.
        name: String,
    },
    /// Delete a policy: its AuthZEN endpoints answer 404 from then on.
    Delete {
        /// The policy.
        name: String,
    },
    /// Ask a deployed policy (NAME) every question of a case file and compare the
    /// decisions (exit 1 when one differs); or, with --engine and --policies, run Cedar or
    /// Rego policy files locally, without a server (like `opa test`). The file is
    /// `{"cases": [{"name"?, "request", "expected", "principal"?}]}` or an AuthZEN interop
    /// decision file (`{"evaluation": [{"request", "expected"}]}`): `request` is an
    /// AuthZEN evaluation, `expected` a boolean. Locally, a plugin case table
    /// (`plugins/native/cases.json`) works too.
    Check {
        /// The deployed policy to ask (not with --engine).
        #[arg(required_unless_present = "engine", conflicts_with = "engine")]
        name: Option<String>,
        /// The case file, e.g. `plugins/native/cases.json` or an AuthZEN interop file.
        #[arg(long)]
        cases: PathBuf,
        /// Run the policy files of --policies locally with builtin:cedar or builtin:rego.
        #[arg(long, value_enum, requires = "policies")]
        engine: Option<EngineArg>,
        /// The folder of policy files: *.cedar (+ entities.json, *.cedarschema or
        /// schema.json, linked) or *.rego (+ data.json).
        #[arg(long, requires = "engine")]
        policies: Option<PathBuf>,
        /// Rego: the query that must be true (default data.portcullis.allow).
        #[arg(long, requires = "engine")]
        query: Option<String>,
        /// Rego: the query that gives the reasons (default data.portcullis.reasons).
        #[arg(long, requires = "engine")]
        reasons: Option<String>,
        /// Deadline of one decision (and of parsing the policies), locally.
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
}

const COLUMNS: &[(&str, &str)] = &[
    ("NAME", "name"),
    ("PLUGIN", "plugin"),
    ("SHADOW", "shadow"),
    ("VERSION", "version"),
    ("CHANGED BY", "changed_by"),
    ("BASE PATH", "base_path"),
];

/// A policy as one table row.
fn row(p: &Value) -> Value {
    json!({
        "name": p["name"],
        "plugin": p["authorizer"]["active"]["id"],
        "shadow": p["authorizer"]["shadow"]["id"],
        "version": p["authorizer"]["version"],
        "changed_by": p["changed_by"],
        "base_path": p["base_path"],
    })
}

/// The policy languages `check --engine` runs.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum EngineArg {
    Cedar,
    Rego,
}

pub fn run(g: &Global, cmd: PoliciesCmd) -> anyhow::Result<()> {
    if let PoliciesCmd::Check {
        engine: Some(engine),
        policies: Some(dir),
        cases,
        query,
        reasons,
        timeout_ms,
        ..
    } = &cmd
    {
        return check_locally(
            g,
            *engine,
            dir,
            cases,
            query.as_deref(),
            reasons.as_deref(),
            *timeout_ms,
        );
    }
    let client = Client::logged_in(&g.server)?;
    match cmd {
        PoliciesCmd::List => {
            let v = client.get("/v1/policies")?;
            match g.output {
                Format::Json => output::json(&v),
                Format::Table => {
                    let rows: Vec<Value> = v["items"]
                        .as_array()
                        .map(|items| items.iter().map(row).collect())
                        .unwrap_or_default();
                    output::table(&rows, COLUMNS);
                }
            }
        }
        PoliciesCmd::Put {
            name,
            plugin,
            settings,
            shadow,
        } => {
            let settings = match settings {
                Some(s) => read_settings(&s)?,
                None => json!({}),
            };
            let body = json!({
                "plugin": plugin,
                "settings": settings,
                "mode": if shadow { "shadow" } else { "enforce" },
            });
            let v = client
                .request("PUT", &format!("/v1/policies/{}", enc(&name)), Some(&body))?
                .unwrap_or_default();
            describe(g, &v);
        }
        PoliciesCmd::Describe { name } => {
            let v = client.get(&format!("/v1/policies/{}", enc(&name)))?;
            describe(g, &v);
        }
        PoliciesCmd::Delete { name } => {
            client.request("DELETE", &format!("/v1/policies/{}", enc(&name)), None)?;
            output::done(
                g.output,
                &format!("deleted policy {name}"),
                &json!({"deleted": name}),
            );
        }
        PoliciesCmd::Check { name, cases, .. } => {
            let name = name.context("name the policy to ask, or run it locally with --engine")?;
            check(g, &client, &name, &cases)?
        }
    }
    Ok(())
}

fn describe(g: &Global, v: &Value) {
    match g.output {
        Format::Json => output::json(v),
        Format::Table => {
            println!("policy:  {}", output::cell(&v["name"]));
            println!("base:    {}", output::cell(&v["base_path"]));
            crate::plugins::print_status(g, &v["authorizer"]);
        }
    }
}

/// `policies check --engine E --policies DIR`: the policy files as the settings of
/// `builtin:cedar` or `builtin:rego`, run in a local runtime against the case file.
fn check_locally(
    g: &Global,
    engine: EngineArg,
    dir: &std::path::Path,
    cases: &std::path::Path,
    query: Option<&str>,
    reasons: Option<&str>,
    timeout_ms: u64,
) -> anyhow::Result<()> {
    use portcullis_plugin::check::{policy_settings, Engine};
    let engine = match engine {
        EngineArg::Cedar => Engine::Cedar,
        EngineArg::Rego => Engine::Rego,
    };
    let settings = policy_settings(engine, dir, query, reasons)
        .map_err(|e| anyhow::anyhow!("--policies: {e}"))?;
    let table = crate::plugins::read_table(cases)?;
    let bytes = portcullis_app::plugins::plugin_bytes(engine.plugin())?;
    let timeout = std::time::Duration::from_millis(timeout_ms);
    let limits = portcullis_plugin::Limits {
        timeout,
        configure_timeout: timeout,
        ..portcullis_plugin::Limits::default()
    };
    crate::plugins::run_local(
        g,
        engine.plugin(),
        &bytes,
        &settings,
        Some(&table),
        limits,
        Default::default(),
    )
}

fn check(g: &Global, client: &Client, name: &str, path: &PathBuf) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let Some(cases) = file["cases"]
        .as_array()
        .or_else(|| file["evaluation"].as_array())
    else {
        bail!(
            "{}: expected {{\"cases\": […]}} or {{\"evaluation\": […]}}",
            path.display()
        );
    };
    let endpoint = format!("/policies/{}/access/v1/evaluation", enc(name));
    let mut report = Vec::new();
    let mut failed = 0;
    for (i, case) in cases.iter().enumerate() {
        let Some(expected) = case["expected"].as_bool() else {
            bail!("case {i}: `expected` must be true or false");
        };
        let Some(request) = case["request"].as_object() else {
            bail!("case {i}: `request` must be an AuthZEN evaluation object");
        };
        // `options` asks for the decision's context: its reasons explain a failure.
        let mut request = request.clone();
        request.insert("options".into(), json!({}));
        let v = client.post(&endpoint, &Value::Object(request))?;
        let got = v["decision"].as_bool().unwrap_or(false);
        let label = case["name"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("case {i}"));
        if got != expected {
            failed += 1;
        }
        report.push(json!({
            "case": label,
            "expected": expected,
            "decision": got,
            "passed": got == expected,
            "reasons": v["context"]["reasons"],
        }));
    }
    match g.output {
        Format::Json => output::json(&json!({ "results": report, "failed": failed })),
        Format::Table => {
            for r in &report {
                let mark = if r["passed"] == true { "ok  " } else { "FAIL" };
                println!(
                    "{mark} {} (expected {}, got {}): {}",
                    output::cell(&r["case"]),
                    r["expected"],
                    r["decision"],
                    output::cell(&r["reasons"])
                );
            }
            println!("{} cases, {failed} failed", report.len());
        }
    }
    if failed > 0 {
        return Err(CheckFailed.into());
    }
    Ok(())
}
