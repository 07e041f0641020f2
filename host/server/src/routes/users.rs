//! Users, their passwords and their personal API keys (§2, §4).

use super::openapi;
use super::{Json, List, Page, Path, Query};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_app::keys::Lifetime;
use portcullis_app::users::{NewPassword, NewUserInput};
use portcullis_app::{keys, timestamp, users, AppError};
use portcullis_store::{now_ms, ApiKey, SsoLink, User, UserPatch};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub fn user_view(u: &User) -> Value {
    let locked = u.locked_until.is_some_and(|t| t > now_ms());
    json!({
        "username": u.username,
        "account": u.account,
        "email": u.email,
        "roles": u.roles,
        "attributes": u.attributes,
        "created_at": timestamp(u.created_at),
        "last_login_at": u.last_login_at.map(timestamp),
        "must_change_password": u.must_change_password,
        "locked": locked,
        "locked_until": if locked { u.locked_until.map(timestamp) } else { None },
        "access_token_status": u.access_token_status,
        "sso": u.sso.as_ref().map(|l| json!({ "issuer": l.issuer, "subject": l.subject })),
    })
}

pub fn key_view(k: &ApiKey) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "kind": k.kind,
        "created_at": timestamp(k.created_at),
        "last_used_at": k.last_used_at.map(timestamp),
        "expires_at": k.expires_at.map(timestamp),
        "revoked_at": k.revoked_at.map(timestamp),
    })
}

fn page_of_users(users: Vec<User>, limit: i64) -> List<Value> {
    let list = List::new(users, limit, |u| u.username.clone());
    List {
        items: list.items.iter().map(user_view).collect(),
        next: list.next,
    }
}

#[utoipa::path(get, path = "/v1/accounts/{name}/users", tag = "users", params(("name" = String, Path, description = "Account name", pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$"), Page), responses((status = 200, description = "Users of the account", body = openapi::UserList)))]
pub async fn list_in_account(
    State(state): State<SharedState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult<Json<List<Value>>> {
    let limit = page.limit()?;
    let users =
        users::list_in_account(&state, &caller, &name, page.after.as_deref(), limit).await?;
    Ok(Json(page_of_users(users, limit)))
}

/// All users the caller may see: everyone if it may list across accounts, else the users
/// of its own account.
#[utoipa::path(get, path = "/v1/users", tag = "users", params(Page), responses((status = 200, description = "Every user the caller may see", body = openapi::UserList)))]
pub async fn list_all(
    State(state): State<SharedState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult<Json<List<Value>>> {
    let limit = page.limit()?;
    let users = users::list_all(&state, &caller, page.after.as_deref(), limit).await?;
    Ok(Json(page_of_users(users, limit)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// `export` and `import` are reserved.
    #[schema(pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")]
    username: String,
    /// Absent: the user can only use keys, access tokens or single sign-on.
    #[schema(min_length = 8, max_length = 1024)]
    password: Option<String>,
    /// The user must change the password at first login.
    #[serde(default)]
    temporary_password: bool,
    #[schema(
        pattern = r"^[!-+\--:<-?A-~]+@([!-+\-/-:<-?A-~]|[!-+\-/-:<-?A-~][!-+\--:<-?A-~]*[!-+\-/-:<-?A-~])$",
        max_length = 254
    )]
    email: Option<String>,
    #[serde(default)]
    #[schema(schema_with = openapi::roles)]
    roles: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = openapi::attributes)]
    attributes: BTreeMap<String, String>,
}

#[utoipa::path(post, path = "/v1/accounts/{name}/users", tag = "users", params(("name" = String, Path, description = "Account name", pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")), request_body = CreateUser, responses((status = 201, description = "Created", body = openapi::User), (status = 409, description = "The username exists (in any account), or the account is not enabled", body = openapi::ErrorBody), (status = 503, description = "Password hashing is saturated; retry", body = openapi::ErrorBody)))]
pub async fn create_in_account(
    State(state): State<SharedState>,
    caller: Caller,
    Path(account): Path<String>,
    Json(body): Json<CreateUser>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let input = NewUserInput {
        username: body.username,
        password: body.password,
        temporary_password: body.temporary_password,
        email: body.email,
        roles: body.roles,
        attributes: body.attributes,
    };
    let user = users::create_in_account(&state, &caller, &account, input).await?;
    Ok((StatusCode::CREATED, Json(user_view(&user))))
}

/// Describe: the user plus the number of active keys.
#[utoipa::path(get, path = "/v1/users/{username}", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 200, description = "The user", body = openapi::UserDescribed)))]
pub async fn describe(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<Value>> {
    let (user, key_count) = users::describe(&state, &caller, &username).await?;
    let mut view = user_view(&user);
    view["key_count"] = json!(key_count);
    Ok(Json(view))
}

fn double_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    /// Absent: unchanged; `null`: cleared.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, nullable, pattern = r"^[!-+\--:<-?A-~]+@([!-+\-/-:<-?A-~]|[!-+\-/-:<-?A-~][!-+\--:<-?A-~]*[!-+\-/-:<-?A-~])$", max_length = 254)]
    email: Option<Option<String>>,
    #[schema(schema_with = openapi::roles_or_null)]
    roles: Option<Vec<String>>,
    #[schema(schema_with = openapi::attributes_or_null)]
    attributes: Option<BTreeMap<String, String>>,
}

#[utoipa::path(patch, path = "/v1/users/{username}", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), request_body = PatchUser, responses((status = 200, description = "The updated user", body = openapi::User)))]
pub async fn patch(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
    Json(body): Json<PatchUser>,
) -> ApiResult<Json<Value>> {
    let patch = UserPatch {
        email: body.email,
        roles: body.roles,
        attributes: body.attributes,
    };
    let user = users::update(&state, &caller, &username, patch).await?;
    Ok(Json(user_view(&user)))
}

#[utoipa::path(delete, path = "/v1/users/{username}", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 204, description = "The user and all its keys are gone"), (status = 409, description = "The built-in admin user cannot be deleted", body = openapi::ErrorBody)))]
pub async fn delete(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    users::delete(&state, &caller, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
    /// Required when changing one's own password.
    current_password: Option<String>,
    /// An admin setting another user's password: force a change at next login.
    #[serde(default)]
    temporary: bool,
}

/// Self: needs the current password, keeps the calling key. Another user (admin): sets
/// it, optionally as temporary. Every other key of the user is revoked.
#[utoipa::path(put, path = "/v1/users/{username}/password", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), request_body = SetPassword, responses((status = 200, description = "Set; the user's other keys are revoked", body = openapi::PasswordSet), (status = 429, description = "Changing your own password: too many attempts from this client address", body = openapi::ErrorBody), (status = 503, description = "Password hashing is saturated; retry", body = openapi::ErrorBody)))]
pub async fn set_password(
    State(state): State<SharedState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: axum::http::HeaderMap,
    caller: Caller,
    Path(username): Path<String>,
    Json(body): Json<SetPassword>,
) -> ApiResult<Json<Value>> {
    let client = state.limiter.client_ip(peer.ip(), &headers);
    let input = NewPassword {
        password: body.password,
        current_password: body.current_password,
        temporary: body.temporary,
    };
    let check_rate = || state.limiter.check(client).map_err(AppError::rate_limited);
    let set = users::set_password(&state, &caller, &username, input, check_rate).await?;
    Ok(Json(
        json!({ "username": set.username, "must_change_password": set.must_change_password, "keys_revoked": set.keys_revoked }),
    ))
}

#[utoipa::path(get, path = "/v1/users/{username}/keys", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 200, description = "The user's keys (never their secrets)", body = openapi::KeyList)))]
pub async fn list_keys(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<List<Value>>> {
    let keys = keys::list(&state, &caller, &username).await?;
    Ok(Json(List {
        items: keys.iter().map(key_view).collect(),
        next: None,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ExpiresIn {
    Seconds(u64),
    /// JSON has one number type: `86400.0` is an integer too; a fraction is refused.
    Float(f64),
    /// A duration such as `"30d"` or `"12h 30m"`.
    Text(String),
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 128
    )]
    name: String,
    /// Seconds, or a duration like `"30d"`; absent = never expires.
    #[schema(schema_with = openapi::expires_in)]
    expires_in: Option<ExpiresIn>,
}

#[utoipa::path(post, path = "/v1/users/{username}/keys", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), request_body = CreateKey, responses((status = 201, description = "The key; `key` is the secret, shown once", body = openapi::KeyCreated)))]
pub async fn create_key(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
    Json(body): Json<CreateKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let lifetime = body.expires_in.map(|e| match e {
        ExpiresIn::Seconds(s) => Lifetime::Seconds(s),
        ExpiresIn::Float(f) => Lifetime::Float(f),
        ExpiresIn::Text(t) => Lifetime::Text(t),
    });
    let issued = keys::create(&state, &caller, &username, &body.name, lifetime).await?;
    let mut view = key_view(&issued.key);
    view["key"] = json!(issued.secret);
    Ok((StatusCode::CREATED, Json(view)))
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoLinkBody {
    /// The identity provider's `iss` (as in its ID tokens).
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$"
    )]
    issuer: String,
    /// The user's `sub` at that provider.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$"
    )]
    subject: String,
}

/// Link an SSO identity to an existing user (an administrator's explicit decision: from
/// then on that identity signs in as this user). 409 when the identity is linked to
/// another user.
#[utoipa::path(put, path = "/v1/users/{username}/sso-link", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), request_body = SsoLinkBody, responses((status = 200, description = "Linked: the user, with its `sso`", body = openapi::User), (status = 409, description = "The identity is linked to another user", body = openapi::ErrorBody)))]
pub async fn link_sso(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
    Json(body): Json<SsoLinkBody>,
) -> ApiResult<Json<Value>> {
    let link = SsoLink {
        issuer: body.issuer,
        subject: body.subject,
    };
    let user = users::link_sso(&state, &caller, &username, link).await?;
    Ok(Json(user_view(&user)))
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
