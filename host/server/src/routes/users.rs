//! Users, their passwords and their personal API keys (§2, §4).

use super::{Json, Path, Query};
use crate::api::errors::ErrorBody;
use crate::api::keys::{CreateKey, KeyCreated, KeyList};
use crate::api::users::{
    CreateUser, PasswordSet, PatchUser, SetPassword, SsoLinkBody, User, UserDescribed, UserList,
};
use crate::api::Page;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_app::{keys, users, AppError};

#[utoipa::path(get, path = "/v1/accounts/{name}/users", tag = "users", params(("name" = String, Path, description = "Account name", pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$"), Page), responses((status = 200, description = "Users of the account", body = UserList)))]
pub async fn list_in_account(
    State(state): State<SharedState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<UserList>> {
    let limit = page.limit()?;
    let users =
        users::list_in_account(&state, &caller, &name, page.after.as_deref(), limit).await?;
    Ok(Json(UserList::page(&users, limit, |u| u.username.clone())))
}

/// All users the caller may see: everyone if it may list across accounts, else the users
/// of its own account.
#[utoipa::path(get, path = "/v1/users", tag = "users", params(Page), responses((status = 200, description = "Every user the caller may see", body = UserList)))]
pub async fn list_all(
    State(state): State<SharedState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult<Json<UserList>> {
    let limit = page.limit()?;
    let users = users::list_all(&state, &caller, page.after.as_deref(), limit).await?;
    Ok(Json(UserList::page(&users, limit, |u| u.username.clone())))
}

#[utoipa::path(post, path = "/v1/accounts/{name}/users", tag = "users", params(("name" = String, Path, description = "Account name", pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")), request_body = CreateUser, responses((status = 201, description = "Created", body = User), (status = 409, description = "The username exists (in any account), or the account is not enabled", body = ErrorBody), (status = 503, description = "Password hashing is saturated; retry", body = ErrorBody)))]
pub async fn create_in_account(
    State(state): State<SharedState>,
    caller: Caller,
    Path(account): Path<String>,
    Json(body): Json<CreateUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let user = users::create_in_account(&state, &caller, &account, body.into()).await?;
    Ok((StatusCode::CREATED, Json(User::from(&user))))
}

/// Describe: the user plus the number of active keys.
#[utoipa::path(get, path = "/v1/users/{username}", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 200, description = "The user", body = UserDescribed)))]
pub async fn describe(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<UserDescribed>> {
    let (user, key_count) = users::describe(&state, &caller, &username).await?;
    Ok(Json(UserDescribed::new(&user, key_count)))
}

#[utoipa::path(patch, path = "/v1/users/{username}", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), request_body = PatchUser, responses((status = 200, description = "The updated user", body = User)))]
pub async fn patch(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
    Json(body): Json<PatchUser>,
) -> ApiResult<Json<User>> {
    let user = users::update(&state, &caller, &username, body.into()).await?;
    Ok(Json(User::from(&user)))
}

#[utoipa::path(delete, path = "/v1/users/{username}", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 204, description = "The user and all its keys are gone"), (status = 409, description = "The built-in admin user cannot be deleted", body = ErrorBody)))]
pub async fn delete(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    users::delete(&state, &caller, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Self: needs the current password, keeps the calling key. Another user (admin): sets
/// it, optionally as temporary. Every other key of the user is revoked.
#[utoipa::path(put, path = "/v1/users/{username}/password", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), request_body = SetPassword, responses((status = 200, description = "Set; the user's other keys are revoked", body = PasswordSet), (status = 429, description = "Changing your own password: too many attempts from this client address", body = ErrorBody), (status = 503, description = "Password hashing is saturated; retry", body = ErrorBody)))]
pub async fn set_password(
    State(state): State<SharedState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: axum::http::HeaderMap,
    caller: Caller,
    Path(username): Path<String>,
    Json(body): Json<SetPassword>,
) -> ApiResult<Json<PasswordSet>> {
    let client = state.limiter.client_ip(peer.ip(), &headers);
    let check_rate = || state.limiter.check(client).map_err(AppError::rate_limited);
    let set = users::set_password(&state, &caller, &username, body.into(), check_rate).await?;
    Ok(Json(PasswordSet::from(&set)))
}

#[utoipa::path(get, path = "/v1/users/{username}/keys", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 200, description = "The user's keys (never their secrets)", body = KeyList)))]
pub async fn list_keys(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<KeyList>> {
    let keys = keys::list(&state, &caller, &username).await?;
    Ok(Json(KeyList {
        items: keys.iter().map(Into::into).collect(),
        next: None,
    }))
}

#[utoipa::path(post, path = "/v1/users/{username}/keys", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), request_body = CreateKey, responses((status = 201, description = "The key; `key` is the secret, shown once", body = KeyCreated)))]
pub async fn create_key(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
    Json(body): Json<CreateKey>,
) -> ApiResult<(StatusCode, Json<KeyCreated>)> {
    let lifetime = body.expires_in.map(Into::into);
    let issued = keys::create(&state, &caller, &username, &body.name, lifetime).await?;
    Ok((StatusCode::CREATED, Json(KeyCreated::from(&issued))))
}

#[utoipa::path(delete, path = "/v1/users/{username}/keys/{id}", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$"), ("id" = String, Path, description = "Key id")), responses((status = 204, description = "Revoked; it fails from the next request on")))]
pub async fn revoke_key(
    State(state): State<SharedState>,
    caller: Caller,
    Path((username, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    keys::revoke(&state, &caller, &username, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Link an SSO identity to an existing user (an administrator's explicit decision: from
/// then on that identity signs in as this user). 409 when the identity is linked to
/// another user.
#[utoipa::path(put, path = "/v1/users/{username}/sso-link", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), request_body = SsoLinkBody, responses((status = 200, description = "Linked: the user, with its `sso`", body = User), (status = 409, description = "The identity is linked to another user", body = ErrorBody)))]
pub async fn link_sso(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
    Json(body): Json<SsoLinkBody>,
) -> ApiResult<Json<User>> {
    let user = users::link_sso(&state, &caller, &username, body.into()).await?;
    Ok(Json(User::from(&user)))
}

/// Remove a user's SSO link: that identity no longer signs in as the user, and the user's
/// login keys are revoked (sessions an SSO sign-in opened end too).
#[utoipa::path(delete, path = "/v1/users/{username}/sso-link", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 204, description = "Unlinked (also when there was no link)")))]
pub async fn unlink_sso(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    users::unlink_sso(&state, &caller, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}
