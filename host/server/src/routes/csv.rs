//! `GET /v1/users/export` and `POST /v1/users/import`: the CSV workflow of
//! `portcullis_app::import`, over HTTP (the import body is read only once the caller may
//! import).

use super::openapi;
use super::{Query, RawBody};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::SharedState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_app::import;
use serde::Deserialize;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Add a `password_hash` column (admins only).
    #[serde(default)]
    include_password_hashes: bool,
}

#[utoipa::path(get, path = "/v1/users/export", tag = "users", params(ExportQuery), responses((status = 200, description = "CSV: username,email,account,roles,created_at,access_token_status[,password_hash]", content_type = "text/csv", body = String)))]
pub async fn export(
    State(state): State<SharedState>,
    caller: Caller,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let body = import::export(&state, &caller, q.include_password_hashes).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"users.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// `fail` (default), `skip` or `update`.
    #[param(pattern = "^(fail|skip|update)$")]
    on_conflict: Option<String>,
}

#[utoipa::path(post, path = "/v1/users/import", tag = "users", params(ImportQuery), request_body(content = String, content_type = "text/csv", description = "CSV with the export's header row"), responses((status = 200, description = "Every row applied", body = openapi::ImportReport), (status = 413, description = "The body is larger than `max_import_bytes`", body = openapi::ErrorBody), (status = 422, description = "Nothing written: the report names each bad row (or a query field is invalid: the usual error body)", body = openapi::ImportRejected), (status = 503, description = "Password hashing is saturated; retry", body = openapi::ErrorBody)))]
pub async fn import(
    State(state): State<SharedState>,
    caller: Caller,
    Query(q): Query<ImportQuery>,
    body: RawBody,
) -> ApiResult<Response> {
    let ticket = import::may_import(&state, &caller, q.on_conflict.as_deref()).await?;
    let body = body.read(ticket.max_bytes).await?;
    let report = import::import(&state, &caller, ticket, &body).await?;
    let status = if report.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, axum::Json(report)).into_response())
}
