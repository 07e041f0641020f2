//! Decisions for outside applications: `POST /v1/authorize` (§5.4) and the OpenID AuthZEN
//! 1.0 Access Evaluation API (`/access/v1/evaluation`, `/access/v1/evaluations`).
//!
//! The host fills in the principal from its own store. An unknown subject, or one whose
//! account is not enabled, is denied without asking the plugin. Context keys starting with
//! `portcullis.` are the host's: a caller's are dropped, and `portcullis.origin` is set to
//! `external`.

use super::Json;
use crate::api::decide::{
    AuthorizeBody, Authorized, ZenBatchAnswer, ZenDecision, ZenDecisions, ZenEvaluation,
    ZenEvaluations,
};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::extract::State;
use portcullis_app::decide::{
    self, answer, check_pairs, check_text, may_evaluate, Question, Semantic, MAX_BATCH,
    MAX_BATCH_BYTES,
};
use portcullis_core::authz::Target;
use serde_json::{Map, Value};

// ------------------------------------------------------------------ /v1/authorize

#[utoipa::path(post, path = "/v1/authorize", tag = "authorization", request_body = AuthorizeBody, responses((status = 200, description = "The plugin's decision", body = Authorized)))]
pub async fn authorize(
    State(state): State<SharedState>,
    caller: Caller,
    Json(body): Json<AuthorizeBody>,
) -> ApiResult<Json<Authorized>> {
    // Permission before any work on the request's contents.
    may_evaluate(&state, &caller).await?;
    let mut target = Target::new(
        &body.resource.kind,
        &body.resource.id,
        body.resource.account.as_deref(),
    );
    target.attributes = body.resource.attributes.into_iter().collect();
    let q = Question {
        username: body.subject.username,
        action: body.action,
        target,
        context: body.context.into_iter().collect(),
    };
    let (d, id) = answer(&state, q.checked()?).await?;
    Ok(Json(Authorized::new(&d, id)))
}

// --------------------------------------------------------------------- AuthZEN 1.0

/// Flatten AuthZEN `properties` / `context` objects into string pairs: strings as they
/// are, everything else as its JSON text.
fn flatten(field: &str, v: Option<&Map<String, Value>>) -> ApiResult<Vec<(String, String)>> {
    let pairs: Vec<(String, String)> = v
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    check_pairs(field, &pairs)?;
    Ok(pairs)
}

/// A member that is there and not `null` (`null` counts as absent, as in most JSON APIs).
fn present<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

fn object<'a>(v: &'a Value, field: &str) -> ApiResult<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| ApiError::invalid(field, "must be an object"))
}

fn string<'a>(m: &'a Map<String, Value>, field: &str, key: &str) -> ApiResult<&'a str> {
    match m.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::invalid(
            &format!("{field}.{key}"),
            "must be a string",
        )),
        None => Err(ApiError::invalid(&format!("{field}.{key}"), "is required")),
    }
}

fn properties<'a>(
    m: &'a Map<String, Value>,
    field: &str,
) -> ApiResult<Option<&'a Map<String, Value>>> {
    match m.get("properties") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => object(v, &format!("{field}.properties")).map(Some),
    }
}

fn only_keys(m: &Map<String, Value>, field: &str, allowed: &[&str]) -> ApiResult<()> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid(field, format!("unknown field `{k}`"))),
        None => Ok(()),
    }
}

/// One AuthZEN evaluation (subject, action, resource, context) as a question.
fn question(
    subject: &Value,
    action: &Value,
    resource: &Value,
    context: Option<&Value>,
    at: &str,
) -> ApiResult<Question> {
    let (username, subject_props) = subject_of(subject, at)?;
    let (name, action_props) = action_of(action, at)?;
    let target = resource_of(resource, at)?;
    let mut ctx = context_of(context, at)?;
    // Subject and action properties reach the plugin as context, prefixed.
    ctx.extend(
        subject_props
            .into_iter()
            .map(|(k, v)| (format!("subject.{k}"), v)),
    );
    ctx.extend(
        action_props
            .into_iter()
            .map(|(k, v)| (format!("action.{k}"), v)),
    );
    Ok(Question {
        username,
        action: name,
        target,
        context: ctx,
    })
}

/// An AuthZEN subject: the username and its properties.
fn subject_of(subject: &Value, at: &str) -> ApiResult<(String, Vec<(String, String)>)> {
    let field = format!("{at}subject");
    let s = object(subject, &field)?;
    only_keys(s, &field, &["type", "id", "properties"])?;
    if string(s, &field, "type")? != "user" {
        return Err(ApiError::invalid(
            &format!("{field}.type"),
            "must be \"user\"",
        ));
    }
    let username = string(s, &field, "id")?.to_string();
    check_text(&format!("{field}.id"), &username, 254)?;
    let props = flatten(&format!("{field}.properties"), properties(s, &field)?)?;
    Ok((username, props))
}

/// An AuthZEN action: its name and properties.
fn action_of(action: &Value, at: &str) -> ApiResult<(String, Vec<(String, String)>)> {
    let field = format!("{at}action");
    let a = object(action, &field)?;
    only_keys(a, &field, &["name", "properties"])?;
    let name = string(a, &field, "name")?.to_string();
    check_text(&format!("{field}.name"), &name, 256)?;
    let props = flatten(&format!("{field}.properties"), properties(a, &field)?)?;
    Ok((name, props))
}

/// An AuthZEN resource as a target; the property `account` names the owning account.
fn resource_of(resource: &Value, at: &str) -> ApiResult<Target> {
    let field = format!("{at}resource");
    let r = object(resource, &field)?;
    only_keys(r, &field, &["type", "id", "properties"])?;
    let rtype = string(r, &field, "type")?;
    let rid = string(r, &field, "id")?;
    check_text(&format!("{field}.type"), rtype, 128)?;
    check_text(&format!("{field}.id"), rid, 1024)?;
    let mut attributes = flatten(&format!("{field}.properties"), properties(r, &field)?)?;
    let account = attributes
        .iter()
        .position(|(k, _)| k == "account")
        .map(|i| attributes.remove(i).1);
    let mut target = Target::new(rtype, rid, account.as_deref());
    target.attributes = attributes;
    Ok(target)
}

fn context_of(context: Option<&Value>, at: &str) -> ApiResult<Vec<(String, String)>> {
    let field = format!("{at}context");
    match context {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => flatten(&field, Some(object(v, &field)?)),
    }
}

#[utoipa::path(post, path = "/access/v1/evaluation", tag = "authorization", request_body = ZenEvaluation, responses((status = 200, description = "AuthZEN 1.0 decision", body = ZenDecision)))]
pub async fn evaluation(
    State(state): State<SharedState>,
    caller: Caller,
    Json(body): Json<Value>,
) -> ApiResult<Json<ZenDecision>> {
    may_evaluate(&state, &caller).await?;
    let m = object(&body, "body")?;
    only_keys(m, "body", &["subject", "action", "resource", "context"])?;
    Ok(Json(single(&state, m).await?))
}

/// One evaluation from the top-level members of a body (`evaluation`, and `evaluations`
/// without items).
async fn single(state: &SharedState, m: &Map<String, Value>) -> ApiResult<ZenDecision> {
    let need = |k: &str| present(m, k).ok_or_else(|| ApiError::invalid(k, "is required"));
    let q = question(
        need("subject")?,
        need("action")?,
        need("resource")?,
        present(m, "context"),
        "",
    )?;
    let (d, id) = answer(state, q).await?;
    Ok(ZenDecision::new(&d, &id))
}

#[utoipa::path(post, path = "/access/v1/evaluations", tag = "authorization", request_body = ZenEvaluations, responses((status = 200, description = "AuthZEN 1.0 batch decisions (one decision when `evaluations` is absent or empty)", body = ZenBatchAnswer)))]
pub async fn evaluations(
    State(state): State<SharedState>,
    caller: Caller,
    Json(body): Json<Value>,
) -> ApiResult<Json<ZenBatchAnswer>> {
    // Permission before any item is built: a caller without `authorize.evaluate` must not
    // make the server expand a batch at all.
    may_evaluate(&state, &caller).await?;
    let m = object(&body, "body")?;
    only_keys(
        m,
        "body",
        &[
            "subject",
            "action",
            "resource",
            "context",
            "evaluations",
            "options",
        ],
    )?;
    let semantic = match m.get("options") {
        None | Some(Value::Null) => Semantic::ExecuteAll,
        Some(o) => {
            let o = object(o, "options")?;
            only_keys(o, "options", &["evaluations_semantic"])?;
            match present(o, "evaluations_semantic") {
                None => Semantic::ExecuteAll,
                Some(Value::String(s)) if s == "execute_all" => Semantic::ExecuteAll,
                Some(Value::String(s)) if s == "deny_on_first_deny" => Semantic::DenyOnFirstDeny,
                Some(Value::String(s)) if s == "permit_on_first_permit" => {
                    Semantic::PermitOnFirstPermit
                }
                Some(_) => {
                    return Err(ApiError::invalid(
                        "options.evaluations_semantic",
                        "must be execute_all, deny_on_first_deny or permit_on_first_permit",
                    ))
                }
            }
        }
    };
    let items: &[Value] = match m.get("evaluations") {
        None | Some(Value::Null) => &[],
        Some(Value::Array(a)) => a,
        Some(_) => return Err(ApiError::invalid("evaluations", "must be an array")),
    };
    if items.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "evaluations",
            format!("at most {MAX_BATCH} evaluations"),
        ));
    }
    // Without an `evaluations` array the request is a single evaluation (AuthZEN §7.1).
    if items.is_empty() {
        return Ok(Json(ZenBatchAnswer::Single(single(&state, m).await?)));
    }
    // Parse everything first: a malformed item rejects the batch before any decision, and
    // a malformed default at the top level does too, even where every item overrides it.
    if let Some(v) = present(m, "subject") {
        subject_of(v, "")?;
    }
    if let Some(v) = present(m, "action") {
        action_of(v, "")?;
    }
    if let Some(v) = present(m, "resource") {
        resource_of(v, "")?;
    }
    context_of(present(m, "context"), "")?;
    // Parse everything first: a malformed item rejects the batch before any decision.
    // Defaults are copied into every item that uses them, so the batch as built is
    // bounded as a whole (`MAX_BATCH_BYTES`), not only the body as sent.
    let mut questions = Vec::with_capacity(items.len());
    let mut built = 0usize;
    for (i, item) in items.iter().enumerate() {
        let at = format!("evaluations[{i}].");
        let e = object(item, &format!("evaluations[{i}]"))?;
        only_keys(
            e,
            &format!("evaluations[{i}]"),
            &["subject", "action", "resource", "context"],
        )?;
        let pick = |k: &str| {
            present(e, k).or_else(|| present(m, k)).ok_or_else(|| {
                ApiError::invalid(
                    &format!("{at}{k}"),
                    "is required (here or at the top level)",
                )
            })
        };
        let context = present(e, "context").or_else(|| present(m, "context"));
        let q = question(
            pick("subject")?,
            pick("action")?,
            pick("resource")?,
            context,
            &at,
        )?;
        built += q.size();
        if built > MAX_BATCH_BYTES {
            return Err(ApiError::invalid(
                "evaluations",
                format!(
                    "the batch's items come to more than {MAX_BATCH_BYTES} bytes of names, properties and context once top-level defaults are applied to each item"
                ),
            ));
        }
        questions.push(q);
    }
    let evaluations = decide::answer_all(&state, questions, semantic)
        .await?
        .iter()
        .map(|(d, id)| ZenDecision::new(d, id))
        .collect();
    Ok(Json(ZenBatchAnswer::Batch(ZenDecisions { evaluations })))
}
