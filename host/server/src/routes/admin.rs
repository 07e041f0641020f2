//! Terraform Enterprise's initial admin bootstrap (§3.1, `iact` mode). These endpoints
//! keep PTFE's own response shapes rather than the `/v1` error shape.

use super::openapi;
use crate::config::TimeLimit;
use crate::state::SharedState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_core::names::ADMIN_ACCOUNT;
use portcullis_core::{keys, names, password, KeyKind};
use portcullis_store::{NewKeyRecord, NewUser, RedeemOutcome};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({ "status": "error", "error": "not found" })),
    )
        .into_response()
}

fn ptfe_error(status: StatusCode, message: String) -> Response {
    (
        status,
        axum::Json(json!({ "status": "error", "error": message })),
    )
        .into_response()
}

/// The IACT as text/plain, to clients in `iact_subnets` while the time limit since this
/// server started has not passed and the token is still live; 404 otherwise.
#[utoipa::path(get, path = "/admin/retrieve-iact", tag = "bootstrap", security(()), responses((status = 200, description = "The IACT, to clients in `iact_subnets` within the time limit", content_type = "text/plain", body = String), (status = 404, description = "No live token, or the client is outside the subnets or the time limit", body = openapi::PtfeError), (status = 429, description = "Rate limited", body = openapi::PtfeError)))]
pub async fn retrieve_iact(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
) -> Response {
    let boot = &state.config.bootstrap;
    // The client's address as resolved through trusted proxies: a proxy on an allowed
    // subnet must not hand the token to whoever it forwards for.
    let ip = state.limiter.client_ip(peer.ip(), &headers);
    if !boot.iact_subnets.iter().any(|net| net.contains(&ip)) {
        return not_found();
    }
    if let TimeLimit::Minutes(m) = boot.iact_time_limit_minutes {
        if state.started.elapsed().as_secs() >= m * 60 {
            return not_found();
        }
    }
    let token = state.iact_token.read().expect("iact lock").clone();
    let Some(token) = token else {
        return not_found();
    };
    // A token is served only while it can still be redeemed: live, and no user yet.
    let redeemable = match state.store.count_users().await {
        Ok(n) => n == 0,
        Err(e) => {
            tracing::error!(error = %e, "retrieve-iact: store error");
            false
        }
    };
    if !redeemable {
        return not_found();
    }
    match state.store.live_iact().await {
        Ok(Some(live)) if keys::digest_eq(&keys::digest(&token), &live) => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token).into_response()
        }
        Ok(_) => not_found(),
        Err(e) => {
            tracing::error!(error = %e, "retrieve-iact: store error");
            ptfe_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal server error".into(),
            )
        }
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
    let Some(token) = query.get("token") else {
        return not_found();
    };
    let digest = keys::digest(token);
    match state.store.live_iact().await {
        Ok(Some(live)) if keys::digest_eq(&digest, &live) => {}
        Ok(_) => {
            state
                .audit(
                    "anonymous",
                    "iact.redeem",
                    ADMIN_ACCOUNT,
                    "failure",
                    "wrong or dead token",
                )
                .await;
            return not_found();
        }
        Err(e) => {
            tracing::error!(error = %e, "initial-admin-user: store error");
            return ptfe_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal server error".into(),
            );
        }
    }
    match state.store.count_users().await {
        Ok(0) => {}
        Ok(_) => return not_found(),
        Err(_) => {
            return ptfe_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal server error".into(),
            )
        }
    }
    let input: InitialAdmin = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return ptfe_error(StatusCode::UNPROCESSABLE_ENTITY, format!("body: {e}")),
    };
    if let Err(e) = names::validate_username(&input.username) {
        return ptfe_error(StatusCode::UNPROCESSABLE_ENTITY, format!("username: {e}"));
    }
    if let Err(e) = names::validate_email(&input.email) {
        return ptfe_error(StatusCode::UNPROCESSABLE_ENTITY, format!("email: {e}"));
    }
    if let Err(e) = password::check_policy(&input.password) {
        return ptfe_error(StatusCode::UNPROCESSABLE_ENTITY, format!("password: {e}"));
    }
    let phc = match state
        .hash_password(&format!("iact:{}", input.username), input.password)
        .await
    {
        Ok(phc) => phc,
        Err(e) => return ptfe_error(e.status, e.message),
    };
    let new = NewUser {
        username: input.username.clone(),
        account: ADMIN_ACCOUNT.into(),
        email: Some(input.email),
        password_hash: Some(phc),
        ..Default::default()
    };
    match state.store.redeem_iact(&digest, &new).await {
        Ok(RedeemOutcome::Created) => {}
        Ok(_) => return not_found(),
        Err(e) => {
            tracing::error!(error = %e, "initial-admin-user: store error");
            return ptfe_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal server error".into(),
            );
        }
    }
    state.iact_token.write().expect("iact lock").take();
    let key = keys::generate();
    let record = NewKeyRecord {
        id: &key.id,
        username: &new.username,
        name: "initial-admin-user",
        kind: KeyKind::Personal,
        digest: &key.digest,
        expires_at: None,
    };
    if let Err(e) = state.store.insert_key(&record).await {
        tracing::error!(error = %e, "initial-admin-user: could not issue a key");
        return ptfe_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal server error".into(),
        );
    }
    let _ = std::fs::remove_file(crate::bootstrap::iact_path(&state.config));
    state
        .audit(
            "anonymous",
            "iact.redeem",
            &new.username,
            "success",
            "initial admin user created",
        )
        .await;
    tracing::info!(username = %new.username, "initial admin user created with the IACT; the token is now dead");
    (
        StatusCode::OK,
        axum::Json(json!({ "status": "created", "token": key.secret })),
    )
        .into_response()
}
