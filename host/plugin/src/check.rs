//! Case tables: a plugin, its settings, and a list of (request, expected decision). The
//! same format drives `portcullis plugins check --cases FILE` and the test that every
//! plugin in the repository passes its own table.
//!
//! ```json
//! {
//!   "settings": {},
//!   "cases": [{
//!     "name": "admins may create accounts",
//!     "principal": {"username": "root", "account": "admin", "account_type": "admin",
//!                   "roles": [], "attributes": {}},
//!     "action": "accounts.create",
//!     "target": {"kind": "account", "id": "acme", "account": "acme", "attributes": {}},
//!     "context": {"portcullis.origin": "management"},
//!     "expect": "allow",
//!     "reason": "optional substring of one of the reasons"
//!   }]
//! }
//! ```
//!
//! `context` defaults to `{"portcullis.origin": "management"}` when it does not name an
//! origin.

use crate::Plugin;
use portcullis_core::authz::{self, Decision, CONTEXT_ORIGIN};
use portcullis_core::AccountType;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    #[serde(default)]
    pub settings: Option<serde_json::Value>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub principal: PrincipalSpec,
    pub action: String,
    pub target: TargetSpec,
    #[serde(default)]
    pub context: BTreeMap<String, String>,
    pub expect: Expect,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalSpec {
    pub username: String,
    pub account: String,
    pub account_type: AccountType,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub kind: String,
    pub id: String,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Allow,
    Deny,
}

impl Case {
    pub fn request(&self) -> authz::Request {
        let mut context: Vec<(String, String)> = self
            .context
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !self.context.contains_key(CONTEXT_ORIGIN) {
            context.push((CONTEXT_ORIGIN.into(), "management".into()));
        }
        authz::Request {
            principal: std::sync::Arc::new(authz::Principal {
                username: self.principal.username.clone(),
                account: self.principal.account.clone(),
                account_type: self.principal.account_type,
                roles: self.principal.roles.clone(),
                attributes: self
                    .principal
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                email: self.principal.email.clone(),
            }),
            action: self.action.clone(),
            target: authz::Target {
                kind: self.target.kind.clone(),
                id: self.target.id.clone(),
                account: self.target.account.clone(),
                attributes: self
                    .target
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            },
            context,
        }
    }
}

/// The result of one case.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub expected: Expect,
    pub decision: Decision,
    pub passed: bool,
    /// Why it failed, in one line.
    pub problem: Option<String>,
    /// How long the plugin took to answer (the call as the server makes it: a warm
    /// instance, the request marshalled in and the decision out).
    pub duration: Duration,
}

/// Run every case against `plugin`.
pub async fn run(plugin: &Plugin, cases: &[Case]) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(cases.len());
    for case in cases {
        outcomes.push(run_case(plugin, case).await);
    }
    outcomes
}

/// Ask `plugin` one case of a plugin case table.
pub async fn run_case(plugin: &Plugin, case: &Case) -> Outcome {
    let request = case.request();
    let start = Instant::now();
    let decision = plugin.decide(&request).await;
    let duration = start.elapsed();
    let got = if decision.allowed {
        Expect::Allow
    } else {
        Expect::Deny
    };
    let mut problem = None;
    if got != case.expect {
        problem = Some(format!("expected {:?}, got {:?}", case.expect, got).to_lowercase());
    } else if let Some(want) = &case.reason {
        if !decision.reasons.iter().any(|r| r.contains(want.as_str())) {
            problem = Some(format!("no reason contains {want:?}"));
        }
    }
    Outcome {
        name: case.name.clone(),
        expected: case.expect,
        passed: problem.is_none(),
        decision,
        problem,
        duration,
    }
}

/// One AuthZEN question of a case file (`{"cases": [{"name"?, "request", "expected"}]}` or
/// an interop file's `{"evaluation": [{"request", "expected"}]}`), asked of a policy
/// locally. `principal` stands for the Portcullis user a `user` subject names (no store
/// is asked locally).
#[derive(Debug, Clone, Deserialize)]
pub struct ZenCase {
    #[serde(default)]
    pub name: Option<String>,
    pub request: serde_json::Value,
    pub expected: bool,
    #[serde(default)]
    pub principal: Option<PrincipalSpec>,
}

/// A case file: a plugin case table (management requests) or AuthZEN questions.
#[derive(Debug)]
pub enum Table {
    Plugin(CaseFile),
    Zen(Vec<ZenCase>),
}

impl Table {
    /// Read either kind of case file, told apart by its shape.
    pub fn parse(text: &str) -> Result<Table, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let zen = |items: &serde_json::Value| -> Result<Table, String> {
            serde_json::from_value(items.clone())
                .map(Table::Zen)
                .map_err(|e| format!("an AuthZEN case: {e}"))
        };
        if let Some(items) = v.get("evaluation") {
            return zen(items);
        }
        let first_is_zen = v["cases"]
            .as_array()
            .and_then(|c| c.first())
            .is_some_and(|c| c.get("request").is_some());
        if first_is_zen {
            return zen(&v["cases"]);
        }
        serde_json::from_value(v)
            .map(Table::Plugin)
            .map_err(|e| e.to_string())
    }

    /// How many cases the file holds.
    pub fn len(&self) -> usize {
        match self {
            Table::Plugin(f) => f.cases.len(),
            Table::Zen(cases) => cases.len(),
        }
    }

    /// Whether the file holds no case.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ask `plugin` the `i`th case (`i < len()`).
    pub async fn run_case(&self, plugin: &Plugin, i: usize) -> Outcome {
        match self {
            Table::Plugin(f) => run_case(plugin, &f.cases[i]).await,
            Table::Zen(cases) => run_zen_case(plugin, i, &cases[i]).await,
        }
    }

    /// The settings a plugin case table carries.
    pub fn settings(&self) -> Option<serde_json::Value> {
        match self {
            Table::Plugin(f) => f.settings.clone(),
            Table::Zen(_) => None,
        }
    }
}

impl ZenCase {
    /// The question as an application policy is asked it.
    pub fn query(&self) -> Result<authz::Query, String> {
        let r = &self.request;
        let text = |v: &serde_json::Value, what: &str| -> Result<String, String> {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("{what} must be a string"))
        };
        let object = |v: Option<&serde_json::Value>, what: &str| -> Result<String, String> {
            match v {
                None | Some(serde_json::Value::Null) => Ok(authz::EMPTY_OBJECT.into()),
                Some(o @ serde_json::Value::Object(_)) => Ok(o.to_string()),
                Some(_) => Err(format!("{what} must be an object")),
            }
        };
        let entity = |e: &serde_json::Value, what: &str| -> Result<authz::Entity, String> {
            Ok(authz::Entity {
                kind: text(&e["type"], &format!("{what}.type"))?,
                id: text(&e["id"], &format!("{what}.id"))?,
                properties: object(e.get("properties"), &format!("{what}.properties"))?,
            })
        };
        // The client's context, without the host's keys (the host adds its own).
        let context = match r.get("context") {
            Some(serde_json::Value::Object(m)) => {
                let kept: serde_json::Map<String, serde_json::Value> = m
                    .iter()
                    .filter(|(k, _)| !k.starts_with("portcullis."))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                serde_json::Value::Object(kept).to_string()
            }
            other => object(other, "request.context")?,
        };
        Ok(authz::Query {
            subject: entity(&r["subject"], "request.subject")?,
            principal: self
                .principal
                .as_ref()
                .map(|p| std::sync::Arc::new(p.principal())),
            action: text(&r["action"]["name"], "request.action.name")?,
            action_properties: object(r["action"].get("properties"), "request.action.properties")?,
            resource: entity(&r["resource"], "request.resource")?,
            context,
            policy: "check".into(),
            decision_id: "check".into(),
        })
    }
}

impl PrincipalSpec {
    pub fn principal(&self) -> authz::Principal {
        authz::Principal {
            username: self.username.clone(),
            account: self.account.clone(),
            account_type: self.account_type,
            roles: self.roles.clone(),
            attributes: self
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            email: self.email.clone(),
        }
    }
}

/// Ask `plugin` the AuthZEN question `case` (the `i`th of its file, for its name).
pub async fn run_zen_case(plugin: &Plugin, i: usize, case: &ZenCase) -> Outcome {
    let name = case.name.clone().unwrap_or_else(|| format!("case {i}"));
    let expected = if case.expected {
        Expect::Allow
    } else {
        Expect::Deny
    };
    let start = Instant::now();
    let (decision, problem) = match case.query() {
        Ok(q) => {
            let d = plugin.evaluate(&q).await;
            let problem = (d.allowed != case.expected)
                .then(|| format!("expected {}, got {}", case.expected, d.allowed));
            (d, problem)
        }
        Err(e) => (
            Decision::deny(format!("malformed request: {e}")),
            Some(format!("malformed request: {e}")),
        ),
    };
    Outcome {
        name,
        expected,
        passed: problem.is_none(),
        decision,
        problem,
        duration: start.elapsed(),
    }
}

/// Run a case file of either kind.
pub async fn run_table(plugin: &Plugin, table: &Table) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(table.len());
    for i in 0..table.len() {
        outcomes.push(table.run_case(plugin, i).await);
    }
    outcomes
}

/// The policy languages `portcullis policies check --engine` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Cedar,
    Rego,
}

impl Engine {
    /// The built-in plugin that runs the language.
    pub fn plugin(self) -> &'static str {
        match self {
            Engine::Cedar => "builtin:cedar",
            Engine::Rego => "builtin:rego",
        }
    }
}

/// The settings of a policy kept as files in `dir`:
///
/// - Cedar: every `*.cedar` file (in name order) → `policies`; `entities.json` →
///   `entities`; `*.cedarschema` (or `schema.json`, Cedar's JSON schema) → `schema`;
///   `linked` or `template_links.json` → `template_links`.
/// - Rego: every `*.rego` file → `modules` (by file name); `data.json` → `data`; `query`
///   and `reasons` as given.
pub fn policy_settings(
    engine: Engine,
    dir: &std::path::Path,
    query: Option<&str>,
    reasons: Option<&str>,
) -> Result<serde_json::Value, String> {
    use serde_json::{json, Value};
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))
    };
    let json_file = |p: &std::path::Path| -> Result<Value, String> {
        serde_json::from_str(&read(p)?).map_err(|e| format!("{}: {e}", p.display()))
    };
    let named = |name: &str| {
        files
            .iter()
            .find(|p| p.file_name().is_some_and(|n| n == name))
    };
    let with_ext = |ext: &str| -> Vec<&std::path::PathBuf> {
        files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect()
    };
    match engine {
        Engine::Cedar => {
            let sources = with_ext("cedar");
            if sources.is_empty() {
                return Err(format!("{}: no *.cedar file", dir.display()));
            }
            let mut policies = String::new();
            for p in sources {
                policies.push_str(&format!("// {}\n", p.display()));
                policies.push_str(&read(p)?);
                policies.push('\n');
            }
            let mut s = json!({ "policies": policies });
            if let Some(p) = named("entities.json") {
                s["entities"] = json_file(p)?;
            }
            let schemas = with_ext("cedarschema");
            match (schemas.as_slice(), named("schema.json")) {
                ([], None) => {}
                ([one], None) => s["schema"] = json!(read(one)?),
                ([], Some(p)) => s["schema"] = json_file(p)?,
                _ => {
                    return Err(format!(
                        "{}: more than one schema (*.cedarschema, schema.json)",
                        dir.display()
                    ))
                }
            }
            if let Some(p) = named("linked").or_else(|| named("template_links.json")) {
                s["template_links"] = json_file(p)?;
            }
            Ok(s)
        }
        Engine::Rego => {
            let mut modules = serde_json::Map::new();
            for p in with_ext("rego") {
                let name = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                modules.insert(name, json!(read(p)?));
            }
            if modules.is_empty() {
                return Err(format!("{}: no *.rego file", dir.display()));
            }
            let mut s = json!({ "modules": modules });
            if let Some(p) = named("data.json") {
                s["data"] = json_file(p)?;
            }
            if let Some(q) = query {
                s["query"] = json!(q);
            }
            if let Some(r) = reasons {
                s["reasons"] = json!(r);
            }
            Ok(s)
        }
    }
}
