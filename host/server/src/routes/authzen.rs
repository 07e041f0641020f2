//! OpenID AuthZEN 1.0 (SPEC §11): evaluation, evaluations, subject/resource/action search
//! and PDP metadata, at the root (the policy `[authorizer] default_policy` names, or the
//! management authorizer) and under `/policies/{name}` for each application policy.
//!
//! What the standard and its certification scenario ask of a receiver, and how:
//! - bodies are read here as free-form JSON: unknown members are ignored at every level,
//!   `null` counts as absent, a known member of the wrong type or a missing required one is
//!   400 naming it (so is a body that is not JSON, is empty, or is not sent as
//!   `application/json`): never 415 or 422;
//! - permission (`authorize.evaluate` on `authorize/*` or `policy/NAME`) is checked before
//!   the body is read; the body is bounded by `max_body_bytes`, and what a batch comes to
//!   once defaults are applied to its items by [`MAX_ZEN_BYTES`] (413 beyond);
//! - a batch item that cannot be built answers `false` with the reason in its `context`;
//!   every other answer carries `context` only when asked for (an `options` member, or the
//!   header `Portcullis-Explain: true`), so items are exactly `{"decision":…}`;
//! - `X-Request-ID` is echoed by a layer on every route (`super::echo_request_id`).

use super::{Path, RawBody};
use crate::api::decide::{
    ZenActionSearch, ZenActionSearchAnswer, ZenBatchAnswer, ZenDecision, ZenDecisions,
    ZenEvaluation, ZenEvaluations, ZenFound, ZenFoundAction, ZenMetadata, ZenPage,
    ZenResourceSearch, ZenSearchAnswer, ZenSubjectSearch,
};
use crate::api::errors::ErrorBody;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use portcullis_app::decide::{
    self, Pdp, Search, Semantic, ZenQuestion, MAX_BATCH, MAX_ZEN_BYTES, SEARCH_PAGE,
};
use portcullis_core::authz::{self, Entity, SearchKind};
use portcullis_core::{names, ErrorCode};
use serde_json::{Map, Value};

/// The header that asks for every decision's `context` (decision id and reasons).
pub const EXPLAIN_HEADER: &str = "portcullis-explain";

/// A malformed AuthZEN request: 400, the message naming the member.
fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidRequest,
        message.into(),
    )
}

/// AuthZEN answers every malformed request with 400: the shared checks' 422 becomes that.
fn zen_status(mut e: ApiError) -> ApiError {
    if e.status == StatusCode::UNPROCESSABLE_ENTITY {
        e.status = StatusCode::BAD_REQUEST;
    }
    e
}

/// What every AuthZEN POST starts with: the PDP (404 for an unknown policy), the caller's
/// permission on it, then — only then — the body, read as one JSON object.
struct Admitted {
    pdp: Pdp,
    body: Map<String, Value>,
    /// `Portcullis-Explain: true`.
    explain: bool,
}

async fn admit(
    state: &SharedState,
    caller: &Caller,
    headers: &HeaderMap,
    policy: Option<&str>,
    body: RawBody,
) -> ApiResult<Admitted> {
    let pdp = match pdp(state, policy) {
        Ok(pdp) => pdp,
        Err(missing) => {
            // Whether a policy exists is told only to who may evaluate it.
            if let Some(name) = policy.filter(|n| portcullis_app::policies::check_name(n).is_ok()) {
                decide::may_evaluate_missing(state, caller, name).await?;
            }
            return Err(missing);
        }
    };
    decide::may_evaluate_on(state, caller, &pdp).await?;
    if !crate::api::content_type_is_json(headers) {
        return Err(bad("Content-Type must be application/json"));
    }
    let bytes = body
        .read(state.config.max_body_bytes as usize)
        .await
        .map_err(zen_status)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("body: is empty; expected a JSON object"));
    }
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(bad("body: must be a JSON object")),
        Err(e) => {
            return Err(bad(format!(
                "body: not JSON: {}",
                names::printable(&e.to_string(), 200)
            )))
        }
    };
    let explain = headers
        .get(EXPLAIN_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    Ok(Admitted { pdp, body, explain })
}

/// The PDP of a route: the root's default, or the policy in the path (a name that cannot
/// be a policy's is as unknown as one that is not there: 404).
fn pdp(state: &SharedState, policy: Option<&str>) -> ApiResult<Pdp> {
    if let Some(name) = policy {
        if portcullis_app::policies::check_name(name).is_err() {
            return Err(ApiError::not_found(format!(
                "policy {}",
                names::printable(name, 64)
            )));
        }
    }
    Ok(Pdp::named(state, policy)?)
}

// ------------------------------------------------------------------------ reading

/// A member that is there and not `null`.
fn present<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

/// A required string member of `field`, checked as a label of at most `max` characters
/// (the message is only written for a problem: this runs for every member of every item).
fn text(m: &Map<String, Value>, field: &str, key: &str, max: usize) -> Result<String, String> {
    match present(m, key) {
        Some(Value::String(s)) => match names::validate_label(s, max) {
            Ok(()) => Ok(s.clone()),
            Err(problem) => Err(format!("{field}.{key}: {problem}")),
        },
        Some(_) => Err(format!("{field}.{key}: must be a string")),
        None => Err(format!("{field}.{key}: is required")),
    }
}

/// A `context` member as sorted JSON text without the host's `portcullis.` keys (`{}`
/// when absent).
fn context_text(v: Option<&Value>, at: &str) -> Result<String, String> {
    match v {
        None => Ok(authz::EMPTY_OBJECT.into()),
        Some(Value::Object(o)) => {
            if o.keys().any(|k| k.starts_with("portcullis.")) {
                let mut o = o.clone();
                o.retain(|k, _| !k.starts_with("portcullis."));
                Ok(authz::object_text(&o))
            } else {
                Ok(authz::object_text(o))
            }
        }
        Some(_) => Err(format!("{at}context: must be an object")),
    }
}

/// An optional object member (`properties`) as sorted JSON text (`{}` when absent).
fn object(m: &Map<String, Value>, field: &str, key: &str) -> Result<String, String> {
    match present(m, key) {
        None => Ok(authz::EMPTY_OBJECT.into()),
        Some(Value::Object(o)) => Ok(authz::object_text(o)),
        Some(_) => Err(format!("{field}.{key}: must be an object")),
    }
}

/// A subject or resource; `with_id` false for the entity a search looks for (its `id`,
/// if any, is ignored).
fn entity(v: Option<&Value>, field: &str, with_id: bool) -> Result<Entity, String> {
    let m = match v {
        Some(Value::Object(m)) => m,
        Some(_) => return Err(format!("{field}: must be an object")),
        None => return Err(format!("{field}: is required")),
    };
    Ok(Entity {
        kind: text(m, field, "type", 128)?,
        id: if with_id {
            text(m, field, "id", 1024)?
        } else {
            String::new()
        },
        properties: object(m, field, "properties")?,
    })
}

/// An action: its name and properties.
fn action(v: Option<&Value>, field: &str) -> Result<(String, String), String> {
    match v {
        Some(Value::Object(m)) => Ok((
            text(m, field, "name", 256)?,
            object(m, field, "properties")?,
        )),
        Some(_) => Err(format!("{field}: must be an object")),
        None => Err(format!("{field}: is required")),
    }
}

/// One evaluation: each member from `item` where it has it (whole), else from `defaults`.
fn question(
    item: &Map<String, Value>,
    defaults: &Map<String, Value>,
    at: &str,
) -> Result<ZenQuestion, String> {
    let pick = |k: &str| present(item, k).or_else(|| present(defaults, k));
    // Field names for messages: `subject`, or `evaluations[3].subject` in a batch.
    let field = |name: &'static str| -> std::borrow::Cow<'static, str> {
        if at.is_empty() {
            name.into()
        } else {
            format!("{at}{name}").into()
        }
    };
    let (action, action_properties) = action(pick("action"), &field("action"))?;
    let context = context_text(pick("context"), at)?;
    Ok(ZenQuestion {
        subject: entity(pick("subject"), &field("subject"), true)?,
        action,
        action_properties,
        resource: entity(pick("resource"), &field("resource"), true)?,
        context,
    })
}

fn too_large(field: &str) -> ApiError {
    ApiError::too_large(format!(
        "{field}: the request's types, ids, names, properties and context come to more than {MAX_ZEN_BYTES} bytes (once a batch's defaults are applied to each item)"
    ))
}

// --------------------------------------------------------------------- evaluation

async fn evaluation(
    state: SharedState,
    caller: Caller,
    headers: HeaderMap,
    policy: Option<&str>,
    body: RawBody,
) -> ApiResult<Json<ZenDecision>> {
    let a = admit(&state, &caller, &headers, policy, body).await?;
    let explain = a.explain || present(&a.body, "options").is_some();
    Ok(Json(single(&state, &a.pdp, &a.body, explain).await?))
}

/// One evaluation of a body's top level (`evaluation`, and `evaluations` without items).
async fn single(
    state: &SharedState,
    pdp: &Pdp,
    body: &Map<String, Value>,
    explain: bool,
) -> ApiResult<ZenDecision> {
    let q = question(body, &Map::new(), "").map_err(bad)?;
    if q.size() > MAX_ZEN_BYTES {
        return Err(too_large("body"));
    }
    let (d, id) = decide::answer_zen(state, pdp, q).await?;
    Ok(ZenDecision::new(&d, &id, explain))
}

async fn evaluations(
    state: SharedState,
    caller: Caller,
    headers: HeaderMap,
    policy: Option<&str>,
    body: RawBody,
) -> ApiResult<Json<ZenBatchAnswer>> {
    // Permission before any item is built: a caller without `authorize.evaluate` must not
    // make the server expand a batch at all.
    let a = admit(&state, &caller, &headers, policy, body).await?;
    let m = &a.body;
    let explain = a.explain || present(m, "options").is_some();
    let semantic = match present(m, "options") {
        None => Semantic::ExecuteAll,
        Some(Value::Object(o)) => match present(o, "evaluations_semantic") {
            None => Semantic::ExecuteAll,
            Some(Value::String(s)) if s == "execute_all" => Semantic::ExecuteAll,
            Some(Value::String(s)) if s == "deny_on_first_deny" => Semantic::DenyOnFirstDeny,
            Some(Value::String(s)) if s == "permit_on_first_permit" => {
                Semantic::PermitOnFirstPermit
            }
            Some(_) => {
                return Err(bad(
                    "options.evaluations_semantic: must be execute_all, deny_on_first_deny or permit_on_first_permit",
                ))
            }
        },
        Some(_) => return Err(bad("options: must be an object")),
    };
    let items: &[Value] = match present(m, "evaluations") {
        None => &[],
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad("evaluations: must be an array")),
    };
    if items.len() > MAX_BATCH {
        return Err(bad(format!("evaluations: at most {MAX_BATCH} items")));
    }
    // Without items the request is one evaluation of the top level (AuthZEN §7.1).
    if items.is_empty() {
        return Ok(Json(ZenBatchAnswer::Single(
            single(&state, &a.pdp, m, explain).await?,
        )));
    }
    // A default that is there must be well-formed, even where every item replaces it: a
    // malformed request is the whole request's problem.
    if let Some(v) = present(m, "subject") {
        entity(Some(v), "subject", true).map_err(bad)?;
    }
    if let Some(v) = present(m, "resource") {
        entity(Some(v), "resource", true).map_err(bad)?;
    }
    if let Some(v) = present(m, "action") {
        action(Some(v), "action").map_err(bad)?;
    }
    if !matches!(present(m, "context"), None | Some(Value::Object(_))) {
        return Err(bad("context: must be an object"));
    }
    // A member an item has must be well-formed (else the request is malformed: 400);
    // an item that lacks one with no default to take it from is answered `false` saying
    // so (AuthZEN: a per-item failure, not a failed batch).
    for (i, item) in items.iter().enumerate() {
        let Value::Object(e) = item else {
            return Err(bad(format!("evaluations[{i}]: must be an object")));
        };
        let at = |k: &str| format!("evaluations[{i}].{k}");
        if let Some(v) = present(e, "subject") {
            entity(Some(v), &at("subject"), true).map_err(bad)?;
        }
        if let Some(v) = present(e, "resource") {
            entity(Some(v), &at("resource"), true).map_err(bad)?;
        }
        if let Some(v) = present(e, "action") {
            action(Some(v), &at("action")).map_err(bad)?;
        }
        if !matches!(present(e, "context"), None | Some(Value::Object(_))) {
            return Err(bad(format!("{}: must be an object", at("context"))));
        }
    }
    // Build every item before any decision; the batch as built is bounded as a whole, and
    // building stops as soon as it is past the bound (defaults are copied into each item).
    let mut built = 0usize;
    let mut questions: Vec<Result<ZenQuestion, String>> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let q = match item {
            Value::Object(e) => question(e, m, &format!("evaluations[{i}].")),
            _ => Err(format!("evaluations[{i}]: must be an object")),
        };
        built += q.as_ref().map(ZenQuestion::size).unwrap_or(0);
        if built > MAX_ZEN_BYTES {
            return Err(too_large("evaluations"));
        }
        questions.push(q);
    }
    let evaluations = decide::answer_zen_all(&state, &a.pdp, questions, semantic)
        .await?
        .into_iter()
        .map(|answer| match answer {
            Ok((d, id)) => ZenDecision::new(&d, &id, explain),
            Err(problem) => ZenDecision::failed(problem),
        })
        .collect();
    Ok(Json(ZenBatchAnswer::Batch(ZenDecisions { evaluations })))
}

// ------------------------------------------------------------------------- search

async fn search(
    state: SharedState,
    caller: Caller,
    headers: HeaderMap,
    policy: Option<&str>,
    body: RawBody,
    kind: SearchKind,
) -> ApiResult<Response> {
    let a = admit(&state, &caller, &headers, policy, body).await?;
    let m = &a.body;
    let subject = entity(
        present(m, "subject"),
        "subject",
        kind != SearchKind::Subject,
    );
    let resource = entity(
        present(m, "resource"),
        "resource",
        kind != SearchKind::Resource,
    );
    // Action search has no action (one sent is ignored).
    let (action, action_properties) = match kind {
        SearchKind::Action => (String::new(), authz::EMPTY_OBJECT.to_string()),
        _ => action(present(m, "action"), "action").map_err(bad)?,
    };
    let context = context_text(present(m, "context"), "").map_err(bad)?;
    let (token, limit) = match present(m, "page") {
        None => (String::new(), SEARCH_PAGE),
        Some(Value::Object(p)) => {
            let token = match present(p, "token") {
                None => String::new(),
                Some(Value::String(t)) => t.clone(),
                Some(_) => return Err(bad("page.token: must be a string")),
            };
            let limit = match present(p, "limit") {
                None => SEARCH_PAGE,
                Some(v) => match v.as_u64() {
                    Some(0) => SEARCH_PAGE,
                    Some(n) if n <= decide::MAX_SEARCH_PAGE as u64 => n as usize,
                    _ => {
                        return Err(bad(format!(
                            "page.limit: must be an integer from 0 to {}",
                            decide::MAX_SEARCH_PAGE
                        )))
                    }
                },
            };
            (token, limit)
        }
        Some(_) => return Err(bad("page: must be an object")),
    };
    let question = ZenQuestion {
        subject: subject.map_err(bad)?,
        action,
        action_properties,
        resource: resource.map_err(bad)?,
        context,
    };
    if question.size() > decide::MAX_SEARCH_QUESTION_BYTES {
        return Err(ApiError::too_large(format!(
            "body: a search's ids, properties and context may come to at most {} bytes (each candidate is asked with them)",
            decide::MAX_SEARCH_QUESTION_BYTES
        )));
    }
    let sought_type = match kind {
        SearchKind::Subject => question.subject.kind.clone(),
        _ => question.resource.kind.clone(),
    };
    let paged = present(m, "page").is_some();
    let found = decide::search(
        &state,
        &a.pdp,
        Search {
            kind,
            question,
            token,
            limit,
        },
    )
    .await?;
    let page = (paged || !found.next_token.is_empty()).then_some(ZenPage {
        next_token: found.next_token,
    });
    Ok(match kind {
        SearchKind::Action => Json(ZenActionSearchAnswer {
            results: found
                .ids
                .into_iter()
                .map(|name| ZenFoundAction { name })
                .collect(),
            page,
        })
        .into_response(),
        _ => Json(ZenSearchAnswer {
            results: found
                .ids
                .into_iter()
                .map(|id| ZenFound {
                    r#type: sought_type.clone(),
                    id,
                })
                .collect(),
            page,
        })
        .into_response(),
    })
}

// ----------------------------------------------------------------------- metadata

/// The metadata of a PDP: its base URL (`[authzen] base_url`, else `http://` and the
/// request's `Host`) and its endpoints.
fn metadata(
    state: &SharedState,
    headers: &HeaderMap,
    policy: Option<&str>,
) -> ApiResult<Json<ZenMetadata>> {
    pdp(state, policy)?;
    let configured = state.config.authzen.base_url.trim_end_matches('/');
    let origin = if configured.is_empty() {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.len() <= 255
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
            .ok_or_else(|| bad("Host: missing or not a host name"))?;
        format!("http://{host}")
    } else {
        configured.to_string()
    };
    let pdp = match policy {
        Some(name) => format!("{origin}/policies/{name}"),
        None => origin,
    };
    Ok(Json(ZenMetadata {
        access_evaluation_endpoint: format!("{pdp}/access/v1/evaluation"),
        access_evaluations_endpoint: format!("{pdp}/access/v1/evaluations"),
        search_subject_endpoint: format!("{pdp}/access/v1/search/subject"),
        search_resource_endpoint: format!("{pdp}/access/v1/search/resource"),
        search_action_endpoint: format!("{pdp}/access/v1/search/action"),
        policy_decision_point: pdp,
    }))
}

// ------------------------------------------------------------------------- routes

/// The five POST endpoints.
#[derive(Clone, Copy)]
enum Endpoint {
    Evaluation,
    Evaluations,
    Search(SearchKind),
}

async fn dispatch(
    endpoint: Endpoint,
    state: SharedState,
    caller: Caller,
    headers: HeaderMap,
    policy: Option<&str>,
    body: RawBody,
) -> ApiResult<Response> {
    Ok(match endpoint {
        Endpoint::Evaluation => evaluation(state, caller, headers, policy, body)
            .await?
            .into_response(),
        Endpoint::Evaluations => evaluations(state, caller, headers, policy, body)
            .await?
            .into_response(),
        Endpoint::Search(kind) => search(state, caller, headers, policy, body, kind).await?,
    })
}

/// The routes' handlers: one pair per endpoint (the root, and a policy by name), each
/// documented.
macro_rules! zen_routes {
    ($(
        $root:ident, $named:ident, $path:literal, $body:ty, $answer:ty, $what:literal, $endpoint:expr;
    )*) => {$(
        #[utoipa::path(post, path = concat!("/access/v1/", $path), tag = "authzen", request_body = $body, responses((status = 200, description = $what, body = $answer), (status = 400, description = "Malformed: not JSON, not `application/json`, a required member missing or of the wrong type (the message names it)", body = ErrorBody), (status = 413, description = "Larger than `max_body_bytes`, or more than 1 MiB of ids, properties and context once defaults are applied", body = ErrorBody)))]
        pub async fn $root(
            State(state): State<SharedState>,
            caller: Caller,
            headers: HeaderMap,
            body: RawBody,
        ) -> ApiResult<Response> {
            dispatch($endpoint, state, caller, headers, None, body).await
        }

        #[utoipa::path(post, path = concat!("/policies/{name}/access/v1/", $path), tag = "authzen", params(("name" = String, Path, description = "The application policy", pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")), request_body = $body, responses((status = 200, description = $what, body = $answer), (status = 400, description = "Malformed: not JSON, not `application/json`, a required member missing or of the wrong type (the message names it)", body = ErrorBody), (status = 413, description = "Larger than `max_body_bytes`, or more than 1 MiB of ids, properties and context once defaults are applied", body = ErrorBody)))]
        pub async fn $named(
            State(state): State<SharedState>,
            caller: Caller,
            headers: HeaderMap,
            Path(name): Path<String>,
            body: RawBody,
        ) -> ApiResult<Response> {
            dispatch($endpoint, state, caller, headers, Some(&name), body).await
        }
    )*};
}

zen_routes! {
    evaluation_root, evaluation_named, "evaluation", ZenEvaluation, ZenDecision,
        "The decision (`context` only when asked for)", Endpoint::Evaluation;
    evaluations_root, evaluations_named, "evaluations", ZenEvaluations, ZenBatchAnswer,
        "The decisions in request order (one decision when the request has no items)",
        Endpoint::Evaluations;
    search_subject_root, search_subject_named, "search/subject", ZenSubjectSearch, ZenSearchAnswer,
        "The subjects the policy allows", Endpoint::Search(SearchKind::Subject);
    search_resource_root, search_resource_named, "search/resource", ZenResourceSearch, ZenSearchAnswer,
        "The resources the policy allows", Endpoint::Search(SearchKind::Resource);
    search_action_root, search_action_named, "search/action", ZenActionSearch,
        ZenActionSearchAnswer, "The actions the policy allows",
        Endpoint::Search(SearchKind::Action);
}

/// PDP metadata of the root PDP.
#[utoipa::path(get, path = "/.well-known/authzen-configuration", tag = "authzen", security(()), responses((status = 200, description = "AuthZEN PDP metadata", body = ZenMetadata), (status = 400, description = "No usable `Host` header and no `[authzen] base_url`", body = ErrorBody)))]
pub async fn metadata_root(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> ApiResult<Json<ZenMetadata>> {
    metadata(&state, &headers, None)
}

/// PDP metadata of an application policy (RFC 8414-style: the well-known segment is
/// inserted before the base URL's path).
#[utoipa::path(get, path = "/.well-known/authzen-configuration/policies/{name}", tag = "authzen", security(()), params(("name" = String, Path, description = "The application policy", pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")), responses((status = 200, description = "AuthZEN PDP metadata", body = ZenMetadata), (status = 400, description = "No usable `Host` header and no `[authzen] base_url`", body = ErrorBody)))]
pub async fn metadata_named(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<ZenMetadata>> {
    metadata(&state, &headers, Some(&name))
}
