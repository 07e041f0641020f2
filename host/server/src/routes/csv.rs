//! `GET /v1/users/export` and `POST /v1/users/import`: the CSV workflow of
//! `portcullis_app::import`, over HTTP (the import body is read only once the caller may
//! import).

use super::{Json, Query, RawBody};
use crate::api::csv::{ExportQuery, ImportQuery, ImportRejected, ImportReport};
use crate::api::errors::ErrorBody;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::SharedState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_app::import;

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

#[utoipa::path(post, path = "/v1/users/import", tag = "users", params(ImportQuery), request_body(content = String, content_type = "text/csv", description = "CSV with the export's header row"), responses((status = 200, description = "Every row applied", body = ImportReport), (status = 413, description = "The body is larger than `max_import_bytes`", body = ErrorBody), (status = 422, description = "Nothing written: the report names each bad row (or a query field is invalid: the usual error body)", body = ImportRejected), (status = 503, description = "Password hashing is saturated; retry", body = ErrorBody)))]
pub async fn import(
    State(state): State<SharedState>,
    caller: Caller,
    Query(q): Query<ImportQuery>,
    body: RawBody,
) -> ApiResult<(StatusCode, Json<ImportReport>)> {
    let ticket = import::may_import(&state, &caller, q.on_conflict.as_deref()).await?;
    let body = body.read(ticket.max_bytes).await?;
    let report = import::import(&state, &caller, ticket, &body).await?;
    let status = if report.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(ImportReport::from(&report))))
}
