//! Application policies (SPEC §11): `GET /v1/policies`, `GET|PUT|DELETE
//! /v1/policies/{name}`. The use cases live in `portcullis_app::policies`.

use super::{Json, Path};
use crate::api::errors::ErrorBody;
use crate::api::policies::{PolicyList, PolicyRecord, PutPolicy};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_app::policies;

#[utoipa::path(get, path = "/v1/policies", tag = "policies", responses((status = 200, description = "Every application policy", body = PolicyList)))]
pub async fn list(State(state): State<SharedState>, caller: Caller) -> ApiResult<Json<PolicyList>> {
    let all = policies::list(&state, &caller).await?;
    Ok(Json(PolicyList {
        items: all.iter().map(|p| PolicyRecord::from(&**p)).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/policies/{name}", tag = "policies", params(("name" = String, Path, description = "The policy's name", pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")), responses((status = 200, description = "The policy", body = PolicyRecord)))]
pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<PolicyRecord>> {
    let policy = policies::get(&state, &caller, &name).await?;
    Ok(Json(PolicyRecord::from(&*policy)))
}

#[utoipa::path(put, path = "/v1/policies/{name}", tag = "policies", params(("name" = String, Path, description = "The policy's name", pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")), request_body = PutPolicy, responses((status = 201, description = "Created: the plugin decides for the new policy", body = PolicyRecord), (status = 200, description = "Changed: the new plugin decides (or shadows) from now on", body = PolicyRecord), (status = 409, description = "The plugin could not be loaded, or `authorizer.max_policies` is reached", body = ErrorBody)))]
pub async fn put(
    State(state): State<SharedState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<PutPolicy>,
) -> ApiResult<(StatusCode, Json<PolicyRecord>)> {
    let (policy, created) = policies::put(&state, &caller, &name, body.into()).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(PolicyRecord::from(&*policy))))
}

#[utoipa::path(delete, path = "/v1/policies/{name}", tag = "policies", params(("name" = String, Path, description = "The policy's name", pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")), responses((status = 204, description = "Deleted: its AuthZEN endpoints answer 404")))]
pub async fn delete(
    State(state): State<SharedState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    policies::delete(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
