//! REANA's user management: access tokens (request → grant → revoke) and users created by
//! email with an optional token.

use super::{Json, Path};
use crate::api::errors::ErrorBody;
use crate::api::tokens::{AccessToken, CreateByEmail, CreatedByEmail};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_app::tokens;

#[utoipa::path(post, path = "/v1/users/{username}/access-token/request", tag = "access-tokens", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 200, description = "Status `requested` (unchanged when a token is active)", body = AccessToken)))]
pub async fn request(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<AccessToken>> {
    let (username, status) = tokens::request(&state, &caller, &username).await?;
    Ok(Json(AccessToken::requested(username, status)))
}

#[utoipa::path(post, path = "/v1/users/{username}/access-token/grant", tag = "access-tokens", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 200, description = "The new token, shown once; any earlier one is revoked", body = AccessToken)))]
pub async fn grant(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<AccessToken>> {
    let (username, token) = tokens::grant(&state, &caller, &username).await?;
    Ok(Json(AccessToken::granted(username, token)))
}

#[utoipa::path(post, path = "/v1/users/{username}/access-token/revoke", tag = "access-tokens", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 200, description = "Status `revoked`; the token fails at once", body = AccessToken)))]
pub async fn revoke(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<AccessToken>> {
    let username = tokens::revoke(&state, &caller, &username).await?;
    Ok(Json(AccessToken::revoked(username)))
}

/// `POST /v1/users`: REANA-style creation by email. The username defaults to the email
/// (lowercased), the account to `[users] default_account` (see [`CreateByEmail`]); the
/// user has no password.
#[utoipa::path(post, path = "/v1/users", tag = "access-tokens", request_body = CreateByEmail, responses((status = 201, description = "Created (REANA shape)", body = CreatedByEmail), (status = 404, description = "The account does not exist", body = ErrorBody), (status = 409, description = "The username exists, or the account is not enabled", body = ErrorBody)))]
pub async fn create_by_email(
    State(state): State<SharedState>,
    caller: Caller,
    Json(body): Json<CreateByEmail>,
) -> ApiResult<(StatusCode, Json<CreatedByEmail>)> {
    let (user, token) = tokens::create_by_email(&state, &caller, body.into()).await?;
    Ok((StatusCode::CREATED, Json(CreatedByEmail::new(&user, token))))
}
