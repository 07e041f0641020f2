//! REANA's user management: access tokens (request → grant → revoke) and users created by
//! email with an optional token.

use super::openapi;
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

#[utoipa::path(post, path = "/v1/users/{username}/access-token/request", tag = "access-tokens", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 200, description = "Status `requested` (unchanged when a token is active)", body = openapi::AccessToken)))]
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

#[utoipa::path(post, path = "/v1/users/{username}/access-token/grant", tag = "access-tokens", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 200, description = "The new token, shown once; any earlier one is revoked", body = openapi::AccessToken)))]
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

#[utoipa::path(post, path = "/v1/users/{username}/access-token/revoke", tag = "access-tokens", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 200, description = "Status `revoked`; the token fails at once", body = openapi::AccessToken)))]
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateByEmail {
    #[schema(
        pattern = r"^[!-+\--:<-?A-~]+@([!-+\-/-:<-?A-~]|[!-+\-/-:<-?A-~][!-+\--:<-?A-~]*[!-+\-/-:<-?A-~])$",
        max_length = 254
    )]
    email: String,
    /// Default: `[users] default_account` (a user account, created on first use); for a
    /// caller in a user account, its own account. Never the admin account unless named.
    #[schema(pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")]
    account: Option<String>,
    /// Default: the email.
    #[schema(pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")]
    username: Option<String>,
    #[serde(default)]
    grant_access_token: bool,
}

/// `POST /v1/users`: REANA-style creation by email. The username defaults to the email
/// (lowercased), the account to `[users] default_account` (see [`CreateByEmail`]); the
/// user has no password.
#[utoipa::path(post, path = "/v1/users", tag = "access-tokens", request_body = CreateByEmail, responses((status = 201, description = "Created (REANA shape)", body = openapi::CreatedByEmail), (status = 404, description = "The account does not exist", body = openapi::ErrorBody), (status = 409, description = "The username exists, or the account is not enabled", body = openapi::ErrorBody)))]
pub async fn create_by_email(
    State(state): State<SharedState>,
    caller: Caller,
    Json(body): Json<CreateByEmail>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    names::validate_email(&body.email).map_err(|e| ApiError::invalid("email", e))?;
    let username = body.username.unwrap_or_else(|| body.email.to_lowercase());
    names::validate_username(&username).map_err(|e| ApiError::invalid("username", e))?;
    if let Some(account) = &body.account {
        names::validate_account_name(account).map_err(|e| ApiError::invalid("account", e))?;
    }
    let defaulted = body.account.is_none();
    let account = body
        .account
        .unwrap_or_else(|| super::users::default_account_name(&state, &caller));
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
    // Created on first use — only once the caller may create users there.
    if defaulted {
        super::users::default_account(&state, &caller).await?;
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
