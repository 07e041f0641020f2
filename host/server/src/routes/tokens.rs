//! REANA's user management: access tokens (request → grant → revoke) and users created by
//! email with an optional token.

use super::users::load_user;
use super::Json;
use super::Path;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_core::authz::{actions, Target};
use portcullis_core::{keys, names};
use portcullis_store::{NewKeyRecord, NewUser};
use serde::Deserialize;
use serde_json::{json, Value};

pub async fn request(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = load_user(&state, &caller, &username, actions::ACCESS_TOKENS_REQUEST).await?;
    let status = state.store.request_access_token(&user.username).await?;
    state
        .audit(
            &caller.user.username,
            "access-tokens.request",
            &user.username,
            "success",
            &format!("status {status}"),
        )
        .await;
    Ok(Json(
        json!({ "username": user.username, "access_token_status": status }),
    ))
}

/// Issue a new access token (shown once), revoking any earlier one.
pub async fn issue(state: &SharedState, username: &str) -> ApiResult<String> {
    let key = keys::generate();
    let record = NewKeyRecord {
        id: &key.id,
        username,
        name: "access-token",
        kind: portcullis_core::KeyKind::AccessToken,
        digest: &key.digest,
        expires_at: None,
    };
    state.store.grant_access_token(&record).await?;
    Ok(key.secret)
}

pub async fn grant(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = load_user(&state, &caller, &username, actions::ACCESS_TOKENS_GRANT).await?;
    let before = user
        .access_token_status
        .clone()
        .unwrap_or_else(|| "none".into());
    let token = issue(&state, &user.username).await?;
    state
        .audit(
            &caller.user.username,
            "access-tokens.grant",
            &user.username,
            "success",
            &format!("status {before} -> active"),
        )
        .await;
    Ok(Json(
        json!({ "username": user.username, "access_token_status": "active", "access_token": token }),
    ))
}

pub async fn revoke(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = load_user(&state, &caller, &username, actions::ACCESS_TOKENS_REVOKE).await?;
    let before = user
        .access_token_status
        .clone()
        .unwrap_or_else(|| "none".into());
    let n = state.store.revoke_access_token(&user.username).await?;
    state
        .audit(
            &caller.user.username,
            "access-tokens.revoke",
            &user.username,
            "success",
            &format!("status {before} -> revoked; {n} tokens revoked"),
        )
        .await;
    Ok(Json(
        json!({ "username": user.username, "access_token_status": "revoked" }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateByEmail {
    email: String,
    account: Option<String>,
    username: Option<String>,
    #[serde(default)]
    grant_access_token: bool,
}

/// `POST /v1/users`: REANA-style creation by email. The username defaults to the email
/// (lowercased), the account to the caller's; the user has no password.
pub async fn create_by_email(
    State(state): State<SharedState>,
    caller: Caller,
    Json(body): Json<CreateByEmail>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    names::validate_email(&body.email).map_err(|e| ApiError::invalid("email", e))?;
    let username = body.username.unwrap_or_else(|| body.email.to_lowercase());
    names::validate_username(&username).map_err(|e| ApiError::invalid("username", e))?;
    let account = body.account.unwrap_or_else(|| caller.user.account.clone());
    let mut target = Target::new("user", &username, Some(&account));
    target.attributes = vec![("changes".into(), "email".into())];
    state
        .require(&caller.principal, actions::USERS_CREATE, target)
        .await?;
    if body.grant_access_token {
        state
            .require(
                &caller.principal,
                actions::ACCESS_TOKENS_GRANT,
                Target::new("user", &username, Some(&account)),
            )
            .await?;
    }
    super::users::open_account(&state, &account).await?;
    let new = NewUser {
        username: username.clone(),
        account,
        email: Some(body.email.clone()),
        ..Default::default()
    };
    let user = super::users::insert_user(&state, &caller.user.username, &new, "by email; ").await?;
    let token = if body.grant_access_token {
        let t = issue(&state, &user.username).await?;
        state
            .audit(
                &caller.user.username,
                "access-tokens.grant",
                &user.username,
                "success",
                "status none -> active",
            )
            .await;
        Some(t)
    } else {
        None
    };
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "id": user.username, "email": body.email, "username": user.username, "account": user.account, "access_token": token }),
        ),
    ))
}
