//! The plugin store and the active authorizer (§6): upload, list, describe, activate
//! (enforce or shadow, with a self-check), `GET /v1/authorizer`, `GET /v1/decisions`.

use super::{Json, Path, Query, RawBody};
use crate::api::errors::ErrorBody;
use crate::api::plugins::{
    Activate, Authorizer, DecisionList, DecisionQuery, PluginDescribed, PluginList, PluginRecord,
    UploadQuery, Wasm,
};
use crate::api::Page;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_app::plugins::{self, DecisionFilter};

/// `POST /v1/plugins?name=` with the component's bytes as the body.
#[utoipa::path(post, path = "/v1/plugins", tag = "plugins", params(UploadQuery), request_body(content = Wasm, content_type = "application/wasm", description = "A WebAssembly component implementing the authorizer world"), responses((status = 201, description = "Stored", body = PluginRecord), (status = 200, description = "The same component was stored before", body = PluginRecord), (status = 409, description = "The plugin store is full (`authorizer.max_stored_plugins`)", body = ErrorBody), (status = 413, description = "Larger than `authorizer.max_plugin_bytes`", body = ErrorBody)))]
pub async fn upload(
    State(state): State<SharedState>,
    caller: Caller,
    Query(q): Query<UploadQuery>,
    body: RawBody,
) -> ApiResult<(StatusCode, Json<PluginRecord>)> {
    let ticket = plugins::may_upload(&state, &caller, q.name).await?;
    // Read only once the caller may upload.
    let body = body.read(ticket.max_bytes).await?;
    let (stored, created) = plugins::upload(&state, &caller, ticket, &body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(PluginRecord::from(&stored))))
}

#[utoipa::path(get, path = "/v1/plugins", tag = "plugins", params(Page), responses((status = 200, description = "Built-in and stored plugins", body = PluginList)))]
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult<Json<PluginList>> {
    let limit = page.limit()?;
    let (items, next) = plugins::list(&state, &caller, page.after.as_deref(), limit).await?;
    Ok(Json(PluginList {
        items: items.iter().map(Into::into).collect(),
        next,
    }))
}

#[utoipa::path(get, path = "/v1/plugins/{id}", tag = "plugins", params(("id" = String, Path, description = "`builtin:NAME` or a stored plugin id")), responses((status = 200, description = "The plugin", body = PluginDescribed)))]
pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<PluginDescribed>> {
    let (listed, active, shadow) = plugins::get(&state, &caller, &id).await?;
    Ok(Json(PluginDescribed {
        record: PluginRecord::from(&listed),
        active,
        shadow,
    }))
}

/// Activate a plugin: `configure(settings)` must succeed, and the new plugin must still let
/// the caller `plugins.activate` (no locking yourself out); otherwise 409 and nothing
/// changes. Enforce swaps atomically; shadow runs the candidate beside the active plugin.
#[utoipa::path(post, path = "/v1/plugins/{id}/activate", tag = "plugins", params(("id" = String, Path, description = "`builtin:NAME` or a stored plugin id")), request_body = Activate, responses((status = 200, description = "Active (or shadowing); the authorizer now", body = Authorizer), (status = 409, description = "`configure` or the self-check refused: nothing changed", body = ErrorBody)))]
pub async fn activate(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Activate>,
) -> ApiResult<Json<Authorizer>> {
    plugins::activate(&state, &caller, &id, body.settings, body.mode.into()).await?;
    Ok(Json(Authorizer::from(&*state.authz)))
}

/// `GET /v1/authorizer`: the active plugin, the shadow plugin, counts, disagreements.
#[utoipa::path(get, path = "/v1/authorizer", tag = "plugins", responses((status = 200, description = "The active and shadow plugins with their counts", body = Authorizer)))]
pub async fn authorizer(
    State(state): State<SharedState>,
    caller: Caller,
) -> ApiResult<Json<Authorizer>> {
    plugins::read_authorizer(&state, &caller).await?;
    Ok(Json(Authorizer::from(&*state.authz)))
}

/// `GET /v1/decisions`: the in-memory decision log, oldest first, `?after=` a cursor.
#[utoipa::path(get, path = "/v1/decisions", tag = "plugins", params(DecisionQuery), responses((status = 200, description = "The decision log, oldest first", body = DecisionList), (status = 404, description = "No application policy of that name (`policy`)", body = ErrorBody)))]
pub async fn decisions(
    State(state): State<SharedState>,
    caller: Caller,
    Query(q): Query<DecisionQuery>,
) -> ApiResult<Json<DecisionList>> {
    let limit = crate::api::page_size(q.limit)? as usize;
    let after = match q.after {
        Some(n) if n < 0 => return Err(ApiError::invalid("after", "must not be negative")),
        n => n.unwrap_or(0) as u64,
    };
    let filter = DecisionFilter {
        policy: q.policy,
        username: q.username,
        action: q.action,
        outcome: q.outcome,
    };
    let (items, next) = plugins::decisions(&state, &caller, &filter, after, limit).await?;
    Ok(Json(DecisionList { items, next }))
}
