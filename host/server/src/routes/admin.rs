//! Terraform Enterprise's initial admin bootstrap (§3.1, `iact` mode). These endpoints
//! keep PTFE's own response shapes rather than the `/v1` error shape.

use crate::api::bootstrap::{IactCreated, InitialAdmin};
use crate::api::errors::PtfeError;
use crate::error::ApiError;
use crate::state::SharedState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_app::bootstrap;
use portcullis_core::ErrorCode;
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
    let mut response = (e.status, axum::Json(PtfeError::new(message))).into_response();
    if let Some(secs) = e.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, secs.into());
    }
    response
}

/// The IACT as text/plain, to clients in `iact_subnets` while the time limit since this
/// server started has not passed and the token is still live; 404 otherwise.
#[utoipa::path(get, path = "/admin/retrieve-iact", tag = "bootstrap", security(()), responses((status = 200, description = "The IACT, to clients in `iact_subnets` within the time limit", content_type = "text/plain", body = String), (status = 404, description = "No live token, or the client is outside the subnets or the time limit", body = PtfeError), (status = 429, description = "Rate limited", body = PtfeError)))]
pub async fn retrieve_iact(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
) -> Response {
    // The client's address as resolved through trusted proxies: a proxy on an allowed
    // subnet must not hand the token to whoever it forwards for.
    let ip = state.limiter.client_ip(peer.ip(), &headers);
    match bootstrap::retrievable_iact(&state, ip).await {
        Ok(Some(token)) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token).into_response()
        }
        Ok(None) => ptfe_response(ApiError::not_found("token")),
        Err(e) => ptfe_response(e.into()),
    }
}

/// `POST /admin/initial-admin-user?token=IACT`. The token is checked before the body so
/// nothing about the body is revealed to a caller without it.
#[utoipa::path(post, path = "/admin/initial-admin-user", tag = "bootstrap", security(()), params(("token" = String, Query, description = "The IACT")), request_body = InitialAdmin, responses((status = 200, description = "The first admin was created; its API key", body = IactCreated), (status = 404, description = "Missing, wrong or dead token, or an admin exists already", body = PtfeError), (status = 429, description = "Rate limited", body = PtfeError), (status = 503, description = "Password hashing is saturated; retry", body = PtfeError)))]
pub async fn initial_admin_user(
    State(state): State<SharedState>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let redeemed = async {
        let token = query.get("token").map(String::as_str);
        let ticket = bootstrap::check_iact(&state, token).await?;
        let input: InitialAdmin = serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidRequest,
                format!("body: {e}"),
            )
        })?;
        Ok::<_, ApiError>(bootstrap::redeem_iact(&state, ticket, input.into()).await?)
    };
    match redeemed.await {
        Ok(secret) => (StatusCode::OK, axum::Json(IactCreated::new(secret))).into_response(),
        Err(e) => ptfe_response(e),
    }
}
