//! Terraform Enterprise's initial admin bootstrap (§3.1, `iact` mode). These endpoints
//! keep PTFE's own response shapes rather than the `/v1` error shape.

use super::openapi;
use crate::error::ApiError;
use crate::state::SharedState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_app::bootstrap::{self, FirstAdmin};
use portcullis_core::ErrorCode;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;

/// An error in PTFE's shape, `{"status":"error","error":"…"}`: "not found" for every
/// refusal that must not tell why, the message otherwise (never details of a 5xx).
pub fn ptfe_response(e: ApiError) -> Response {
    let message = match e.code {
        ErrorCode::NotFound => "not found".to_string(),
        ErrorCode::Internal => "internal server error".to_string(),
        _ => e.message,
    };
    let mut response = (
        e.status,
        axum::Json(json!({ "status": "error", "error": message })),
    )
        .into_response();
    if let Some(secs) = e.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.into());
    }
    response
}

fn ptfe<T>(r: Result<T, portcullis_app::AppError>) -> Result<T, Response> {
    r.map_err(|e| ptfe_response(e.into()))
}

#[utoipa::path(get, path = "/admin/retrieve-iact", tag = "bootstrap", security(()), responses((status = 200, description = "The IACT, to clients in `iact_subnets` within the time limit", content_type = "text/plain", body = String), (status = 404, description = "No live token, or the client is outside the subnets or the time limit", body = openapi::PtfeError), (status = 429, description = "Rate limited", body = openapi::PtfeError)))]
pub async fn retrieve_iact(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
) -> Response {
    // The client's address as resolved through trusted proxies: a proxy on an allowed
    // subnet must not hand the token to whoever it forwards for.
    let ip = state.limiter.client_ip(peer.ip(), &headers);
    match ptfe(bootstrap::retrievable_iact(&state, ip).await) {
        Ok(Some(token)) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token).into_response()
        }
        Ok(None) => ptfe_response(ApiError::not_found("token")),
        Err(response) => response,
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InitialAdmin {
    #[schema(pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")]
    username: String,
    #[schema(
        pattern = r"^[!-+\--:<-?A-~]+@([!-+\-/-:<-?A-~]|[!-+\-/-:<-?A-~][!-+\--:<-?A-~]*[!-+\-/-:<-?A-~])$",
        max_length = 254
    )]
    email: String,
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
}

/// `POST /admin/initial-admin-user?token=IACT`. The token is checked before the body so
/// nothing about the body is revealed to a caller without it.
#[utoipa::path(post, path = "/admin/initial-admin-user", tag = "bootstrap", security(()), params(("token" = String, Query, description = "The IACT")), request_body = InitialAdmin, responses((status = 200, description = "The first admin was created; its API key", body = openapi::IactCreated), (status = 404, description = "Missing, wrong or dead token, or an admin exists already", body = openapi::PtfeError), (status = 429, description = "Rate limited", body = openapi::PtfeError), (status = 503, description = "Password hashing is saturated; retry", body = openapi::PtfeError)))]
pub async fn initial_admin_user(
    State(state): State<SharedState>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let redeemed = async {
        let token = query.get("token").map(String::as_str);
        let ticket = ptfe(bootstrap::check_iact(&state, token).await)?;
        let input: InitialAdmin = serde_json::from_slice(&body).map_err(|e| {
            ptfe_response(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidRequest,
                format!("body: {e}"),
            ))
        })?;
        let first = FirstAdmin {
            username: input.username,
            email: input.email,
            password: input.password,
        };
        ptfe(bootstrap::redeem_iact(&state, ticket, first).await)
    };
    match redeemed.await {
        Ok(secret) => (
            StatusCode::OK,
            axum::Json(json!({ "status": "created", "token": secret })),
        )
            .into_response(),
        Err(response) => response,
    }
}
