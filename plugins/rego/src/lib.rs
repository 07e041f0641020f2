//! `builtin:rego`: Rego policies (OPA's language, evaluated by the `regorus` engine) as a
//! Portcullis plugin of world 0.2.0 (SPEC §12).
//!
//! Settings (a JSON object; a parse error refuses them with file and line):
//!
//! ```json
//! {"modules": {"authz.rego": "package portcullis\n\ndefault allow := false\n…"},
//!  "data": {…},
//!  "query": "data.portcullis.allow",
//!  "reasons": "data.portcullis.reasons",
//!  "ttl_ms": 0}
//! ```
//!
//! `input` is the AuthZEN-shaped request:
//!
//! ```json
//! {"subject": {"type", "id", "properties": {…}},
//!  "action": {"name", "properties": {…}},
//!  "resource": {"type", "id", "properties": {…}},
//!  "context": {…},
//!  "principal": {"username", "account", "account_type", "roles": [], "attributes": {}, "email"?}}
//! ```
//!
//! (`principal` only for Portcullis users). The query must be `true` to allow: undefined,
//! `false` or any other value is a deny. The reasons query, when defined, gives the
//! reasons: a string, or an array or set of strings; anything else is shown as JSON.

// The export glue that `generate!` writes takes one argument per flattened field of a
// request; that is the canonical ABI, not a design choice of ours.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "authorizer", path: "../../wit" });

use portcullis::authorizer::types::{AccountType, Principal};
use portcullis_policy_common::bounded;
use regorus::{Engine, Value};
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write;

const DEFAULT_QUERY: &str = "data.portcullis.allow";
const DEFAULT_REASONS: &str = "data.portcullis.reasons";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    modules: BTreeMap<String, String>,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    reasons: Option<String>,
    #[serde(default)]
    ttl_ms: u32,
}

struct State {
    engine: Engine,
    query: Query,
    reasons: Query,
    /// Whether `reasons` was set: only then is a failure to evaluate it worth a reason
    /// (most policies have no `data.portcullis.reasons`).
    reasons_set: bool,
    ttl_ms: u32,
}

/// A query: a rule's path (`data.pkg.rule`, evaluated with `eval_rule`), or any other
/// Rego expression (evaluated as a query; its first value counts).
enum Query {
    Rule(String),
    Expression(String),
}

impl Query {
    fn new(text: &str) -> Query {
        let is_path = text.starts_with("data.")
            && text.split('.').all(|part| {
                !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
        if is_path {
            Query::Rule(text.to_string())
        } else {
            Query::Expression(text.to_string())
        }
    }

    fn eval(&self, engine: &mut Engine) -> Result<Value, String> {
        match self {
            Query::Rule(path) => engine.eval_rule(path.clone()).map_err(|e| e.to_string()),
            Query::Expression(q) => {
                let results = engine
                    .eval_query(q.clone(), false)
                    .map_err(|e| e.to_string())?;
                Ok(results
                    .result
                    .into_iter()
                    .next()
                    .and_then(|r| r.expressions.into_iter().next())
                    .map(|e| e.value)
                    .unwrap_or(Value::Undefined))
            }
        }
    }

    /// The query, evaluated once: a rule path that is not a rule becomes an expression; an
    /// error refuses the settings.
    fn checked(self, engine: &mut Engine) -> Result<Query, String> {
        let this = match self.eval(engine) {
            Err(e) if e.contains("not a valid rule path") => match self {
                Query::Rule(path) => Query::Expression(path),
                other => other,
            },
            _ => self,
        };
        this.eval(engine)
            .map_err(|e| format!("query {}: {}", this.text(), one_line(&e)))?;
        Ok(this)
    }

    fn text(&self) -> &str {
        match self {
            Query::Rule(t) | Query::Expression(t) => t,
        }
    }
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn configure(settings: &str) -> Result<State, String> {
    let s: Settings = serde_json::from_str(settings).map_err(|e| {
        format!("builtin:rego settings: {e} (expected {{\"modules\", \"data\"?, \"query\"?, \"reasons\"?, \"ttl_ms\"?}})")
    })?;
    if s.modules.is_empty() {
        return Err("builtin:rego settings: modules: at least one Rego module is required".into());
    }
    let mut engine = Engine::new();
    // As OPA: a built-in's error (`time.parse_rfc3339_ns("garbage")`) makes its expression
    // undefined rather than failing the whole evaluation.
    engine.set_strict_builtin_errors(false);
    for (file, text) in &s.modules {
        engine
            .add_policy(file.clone(), text.clone())
            .map_err(|e| format!("modules.{file}: {}", one_line(&e.to_string())))?;
    }
    match s.data {
        None | Some(serde_json::Value::Null) => {}
        Some(data @ serde_json::Value::Object(_)) => {
            let value =
                Value::from_json_str(&data.to_string()).map_err(|e| format!("data: {e}"))?;
            engine.add_data(value).map_err(|e| format!("data: {e}"))?;
        }
        Some(other) => return Err(format!("data: expected a JSON object, got {other}")),
    }
    // The query must at least parse and refer to something that compiles: try it once on
    // an empty input (its value does not matter here). A path that is not a rule (a
    // package, a path into a rule's value) is evaluated as a query instead.
    engine.set_input(Value::new_object());
    let query = Query::new(s.query.as_deref().unwrap_or(DEFAULT_QUERY)).checked(&mut engine)?;
    let reasons = Query::new(s.reasons.as_deref().unwrap_or(DEFAULT_REASONS));
    let reasons = if s.reasons.is_some() {
        reasons.checked(&mut engine)?
    } else {
        reasons
    };
    Ok(State {
        engine,
        query,
        reasons,
        reasons_set: s.reasons.is_some(),
        ttl_ms: s.ttl_ms,
    })
}

/// A regorus error on one line: `--> file:line:col` and `error: what` become
/// `file:line:col: what` (the source excerpt between them is dropped).
fn one_line(text: &str) -> String {
    let location = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .map(str::trim);
    let message = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::trim);
    match (location, message) {
        (Some(at), Some(what)) => format!("{at}: {what}"),
        _ => text.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

fn account_type(t: AccountType) -> &'static str {
    match t {
        AccountType::Admin => "admin",
        AccountType::User => "user",
        AccountType::Service => "service",
    }
}

/// `s` as a JSON string literal.
fn js(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A properties or context text as an object member value: the host sends JSON object
/// text; anything else (never sent) becomes `{}`.
fn object(text: &str) -> &str {
    let t = text.trim();
    if t.starts_with('{') {
        t
    } else {
        "{}"
    }
}

fn principal_json(p: &Principal) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"{{"username":{},"account":{},"account_type":"{}","roles":["#,
        js(&p.username),
        js(&p.account),
        account_type(p.account_type)
    );
    for (i, r) in p.roles.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&js(r));
    }
    out.push_str(r#"],"attributes":{"#);
    for (i, (k, v)) in p.attributes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}:{}", js(k), js(v));
    }
    out.push('}');
    if let Some(email) = &p.email {
        let _ = write!(out, r#","email":{}"#, js(email));
    }
    out.push('}');
    out
}

/// The AuthZEN-shaped input, written as JSON text (the properties and context are JSON
/// object text already) and parsed once.
fn input(r: &Request) -> Result<Value, String> {
    let mut text = String::with_capacity(
        256 + r.subject.properties.len() + r.resource.properties.len() + r.context.len(),
    );
    let _ = write!(
        text,
        r#"{{"subject":{{"type":{},"id":{},"properties":{}}},"action":{{"name":{},"properties":{}}},"resource":{{"type":{},"id":{},"properties":{}}},"context":{}"#,
        js(&r.subject.type_),
        js(&r.subject.id),
        object(&r.subject.properties),
        js(&r.action.name),
        object(&r.action.properties),
        js(&r.resource.type_),
        js(&r.resource.id),
        object(&r.resource.properties),
        object(&r.context),
    );
    if let Some(p) = &r.principal {
        let _ = write!(text, r#","principal":{}"#, principal_json(p));
    }
    text.push('}');
    Value::from_json_str(&text).map_err(|e| format!("input: {e}"))
}

fn reason_texts(v: &Value) -> Vec<String> {
    match v {
        Value::Undefined | Value::Null => Vec::new(),
        Value::String(s) => vec![s.to_string()],
        Value::Array(items) => items.iter().flat_map(reason_texts).collect(),
        Value::Set(items) => items.iter().flat_map(reason_texts).collect(),
        other => vec![other.to_json_str().unwrap_or_else(|_| format!("{other:?}"))],
    }
}

fn decide(state: &mut State, r: &Request) -> Result<Decision, String> {
    state.engine.set_input(input(r)?);
    let verdict = state
        .query
        .eval(&mut state.engine)
        .map_err(|e| format!("query {}: {e}", state.query.text()))?;
    let allowed = verdict == Value::Bool(true);
    let mut reasons = match state.reasons.eval(&mut state.engine) {
        Ok(v) => reason_texts(&v),
        Err(e) if state.reasons_set => vec![format!("reasons {}: {e}", state.reasons.text())],
        Err(_) => Vec::new(),
    };
    if reasons.is_empty() {
        reasons.push(match &verdict {
            Value::Bool(true) => format!("{} is true", state.query.text()),
            Value::Undefined => format!("{} is undefined", state.query.text()),
            other => format!(
                "{} is {}",
                state.query.text(),
                other.to_json_str().unwrap_or_default()
            ),
        });
    }
    Ok(Decision {
        allowed,
        reasons: bounded(reasons),
        ttl_ms: state.ttl_ms,
    })
}

struct Rego;

impl Guest for Rego {
    fn configure(settings: String) -> Result<(), String> {
        let state = configure(&settings)?;
        STATE.with(|s| *s.borrow_mut() = Some(state));
        Ok(())
    }

    fn authorize(r: Request) -> Decision {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            let Some(state) = s.as_mut() else {
                return Decision {
                    allowed: false,
                    reasons: vec!["builtin:rego was not configured".into()],
                    ttl_ms: 0,
                };
            };
            decide(state, &r).unwrap_or_else(|reason| Decision {
                allowed: false,
                reasons: bounded(vec![reason]),
                ttl_ms: 0,
            })
        })
    }

    /// Rego rules are not enumerable: a search through a Rego policy finds nothing beyond
    /// the Portcullis users the host enumerates itself.
    fn candidates(_kind: SearchKind, _of_type: String) -> Option<Vec<String>> {
        None
    }

    fn on_event(_event: Event) -> Result<(), String> {
        Ok(())
    }
}

export!(Rego);
