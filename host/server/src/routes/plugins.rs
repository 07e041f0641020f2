//! The plugin store and the active authorizer (§6): upload, list, describe, activate
//! (enforce or shadow, with a self-check), `GET /v1/authorizer`, `GET /v1/decisions`.

use super::openapi;
use super::{Json, List, Page, Path, Query, RawBody};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_app::plugins::{self, DecisionFilter, Listed, Mode};
use portcullis_app::timestamp;
use portcullis_plugin::WORLD_VERSION;
use portcullis_store::PluginRecord;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

fn record_view(r: &PluginRecord) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "digest": r.digest,
        "size": r.size,
        "world_version": r.world_version,
        "created_at": timestamp(r.created_at),
        "created_by": r.created_by,
    })
}

fn listed_view(listed: &Listed) -> Value {
    match listed {
        Listed::Stored(r) => record_view(r),
        Listed::Builtin { id, digest, size } => json!({
            "id": id,
            "name": id,
            "digest": digest,
            "size": size,
            "world_version": WORLD_VERSION,
            "created_at": null,
            "created_by": "builtin",
        }),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// A label for the stored plugin (default: the component's name).
    #[param(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 128
    )]
    name: Option<String>,
}

/// `POST /v1/plugins?name=` with the component's bytes as the body.
#[utoipa::path(post, path = "/v1/plugins", tag = "plugins", params(UploadQuery), request_body(content = openapi::Wasm, content_type = "application/wasm", description = "A WebAssembly component implementing the authorizer world"), responses((status = 201, description = "Stored", body = openapi::PluginRecord), (status = 200, description = "The same component was stored before", body = openapi::PluginRecord), (status = 409, description = "The plugin store is full (`authorizer.max_stored_plugins`)", body = openapi::ErrorBody), (status = 413, description = "Larger than `authorizer.max_plugin_bytes`", body = openapi::ErrorBody)))]
pub async fn upload(
    State(state): State<SharedState>,
    caller: Caller,
    Query(q): Query<UploadQuery>,
    body: RawBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let ticket = plugins::may_upload(&state, &caller, q.name).await?;
    // Read only once the caller may upload.
    let body = body.read(ticket.max_bytes).await?;
    let (stored, created) = plugins::upload(&state, &caller, ticket, &body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(record_view(&stored))))
}

#[utoipa::path(get, path = "/v1/plugins", tag = "plugins", params(Page), responses((status = 200, description = "Built-in and stored plugins", body = openapi::PluginList)))]
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult<Json<List<Value>>> {
    let limit = page.limit()?;
    let (items, next) = plugins::list(&state, &caller, page.after.as_deref(), limit).await?;
    Ok(Json(List {
        items: items.iter().map(listed_view).collect(),
        next,
    }))
}

#[utoipa::path(get, path = "/v1/plugins/{id}", tag = "plugins", params(("id" = String, Path, description = "`builtin:NAME` or a stored plugin id")), responses((status = 200, description = "The plugin", body = openapi::PluginDescribed)))]
pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (listed, active, shadow) = plugins::get(&state, &caller, &id).await?;
    let mut view = listed_view(&listed);
    view["active"] = json!(active);
    view["shadow"] = json!(shadow);
    Ok(Json(view))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Activate {
    /// A JSON object handed to the plugin's `configure` (default `{}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    settings: Option<Value>,
    /// `enforce` (default) or `shadow`.
    #[serde(default)]
    #[schema(value_type = ActivationMode)]
    mode: Mode,
}

/// The schema of [`Mode`] (documentation only; the app's type is deserialized).
#[derive(utoipa::ToSchema)]
#[schema(as = Mode)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum ActivationMode {
    Enforce,
    Shadow,
}

/// Activate a plugin: `configure(settings)` must succeed, and the new plugin must still let
/// the caller `plugins.activate` (no locking yourself out); otherwise 409 and nothing
/// changes. Enforce swaps atomically; shadow runs the candidate beside the active plugin.
#[utoipa::path(post, path = "/v1/plugins/{id}/activate", tag = "plugins", params(("id" = String, Path, description = "`builtin:NAME` or a stored plugin id")), request_body = Activate, responses((status = 200, description = "Active (or shadowing); the authorizer now", body = openapi::Authorizer), (status = 409, description = "`configure` or the self-check refused: nothing changed", body = openapi::ErrorBody)))]
pub async fn activate(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Activate>,
) -> ApiResult<Json<Value>> {
    plugins::activate(&state, &caller, &id, body.settings, body.mode).await?;
    Ok(Json(authorizer_view(&state)))
}

fn authorizer_view(state: &SharedState) -> Value {
    let c = &state.authz.counts;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    json!({
        "active": state.authz.active().view(),
        "shadow": state.authz.shadow().map(|s| s.view()),
        "version": state.authz.version.load(Ordering::SeqCst),
        "counts": {
            "allow": n(&c.allow),
            "deny": n(&c.deny),
            "timeout": n(&c.timeout),
            "trap": n(&c.trap),
            "memory_limit": n(&c.memory_limit),
            "malformed": n(&c.malformed),
            "unavailable": n(&c.unavailable),
            "cache_hits": n(&c.cache_hits),
        },
        "shadow_agreements": n(&c.shadow_agreements),
        "shadow_disagreements": n(&c.shadow_disagreements),
        "disagreement_samples": state.authz.samples(),
    })
}

/// `GET /v1/authorizer`: the active plugin, the shadow plugin, counts, disagreements.
#[utoipa::path(get, path = "/v1/authorizer", tag = "plugins", responses((status = 200, description = "The active and shadow plugins with their counts", body = openapi::Authorizer)))]
pub async fn authorizer(
    State(state): State<SharedState>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    plugins::read_authorizer(&state, &caller).await?;
    Ok(Json(authorizer_view(&state)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DecisionQuery {
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next` cursor of the previous page.
    #[param(minimum = 0)]
    after: Option<i64>,
    username: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
}

/// `GET /v1/decisions`: the in-memory decision log, oldest first, `?after=` a cursor.
#[utoipa::path(get, path = "/v1/decisions", tag = "plugins", params(DecisionQuery), responses((status = 200, description = "The decision log, oldest first", body = openapi::DecisionList)))]
pub async fn decisions(
    State(state): State<SharedState>,
    caller: Caller,
    Query(q): Query<DecisionQuery>,
) -> ApiResult<Json<Value>> {
    let limit = Page {
        limit: q.limit,
        after: None,
    }
    .limit()? as usize;
    let after = match q.after {
        Some(n) if n < 0 => return Err(ApiError::invalid("after", "must not be negative")),
        n => n.unwrap_or(0) as u64,
    };
    let filter = DecisionFilter {
        username: q.username,
        action: q.action,
        outcome: q.outcome,
    };
    let (items, next) = plugins::decisions(&state, &caller, &filter, after, limit).await?;
    Ok(Json(json!({ "items": items, "next": next })))
}
