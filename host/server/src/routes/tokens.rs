//! REANA's user management: access tokens (request → grant → revoke) and users created by
//! email with an optional token.

use super::openapi;
use super::Json;
use super::Path;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_app::tokens::{self, ByEmail};
use serde::Deserialize;
use serde_json::{json, Value};

#[utoipa::path(post, path = "/v1/users/{username}/access-token/request", tag = "access-tokens", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 200, description = "Status `requested` (unchanged when a token is active)", body = openapi::AccessToken)))]
pub async fn request(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<Value>> {
    let (username, status) = tokens::request(&state, &caller, &username).await?;
    Ok(Json(
        json!({ "username": username, "access_token_status": status }),
    ))
}

#[utoipa::path(post, path = "/v1/users/{username}/access-token/grant", tag = "access-tokens", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 200, description = "The new token, shown once; any earlier one is revoked", body = openapi::AccessToken)))]
pub async fn grant(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<Value>> {
    let (username, token) = tokens::grant(&state, &caller, &username).await?;
    Ok(Json(
        json!({ "username": username, "access_token_status": "active", "access_token": token }),
    ))
}

#[utoipa::path(post, path = "/v1/users/{username}/access-token/revoke", tag = "access-tokens", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 200, description = "Status `revoked`; the token fails at once", body = openapi::AccessToken)))]
pub async fn revoke(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<Value>> {
    let username = tokens::revoke(&state, &caller, &username).await?;
    Ok(Json(
        json!({ "username": username, "access_token_status": "revoked" }),
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
    let input = ByEmail {
        email: body.email,
        account: body.account,
        username: body.username,
        grant_access_token: body.grant_access_token,
    };
    let (user, token) = tokens::create_by_email(&state, &caller, input).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "id": user.username, "email": user.email, "username": user.username, "account": user.account, "access_token": token }),
        ),
    ))
}
