//! Login, logout, whoami (§3.2).

use super::openapi;
use super::Json;
use crate::auth::{AnyCaller, Caller};
use crate::error::ApiResult;
use crate::routes::users::user_view;
use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_app::session::{self, LoggedIn};
use portcullis_app::timestamp;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
    /// Required when the password is temporary: the new one (8 to 1024 characters).
    #[schema(min_length = 8, max_length = 1024)]
    new_password: Option<String>,
}

/// Every way a login can fail answers the same 401 after the same amount of hashing work;
/// only the audit log says why.
#[utoipa::path(post, path = "/v1/login", tag = "session", security(()), request_body = LoginBody, responses((status = 200, description = "A login key for the user", body = openapi::LoggedIn), (status = 401, description = "Invalid username or password (the same answer for every cause)", body = openapi::ErrorBody), (status = 403, description = "The password is temporary: log in again with `new_password`", body = openapi::ErrorBody), (status = 429, description = "Rate limited per client address", body = openapi::ErrorBody), (status = 503, description = "Password hashing is saturated; retry", body = openapi::ErrorBody)))]
pub async fn login(
    State(state): State<SharedState>,
    Json(body): Json<LoginBody>,
) -> ApiResult<Json<Value>> {
    let done = session::login(&state, &body.username, body.password, body.new_password).await?;
    Ok(Json(logged_in_view(&done)))
}

/// `{"api_key","expires_at","user"}`: the answer of every successful login.
fn logged_in_view(done: &LoggedIn) -> Value {
    json!({
        "api_key": done.issued.secret,
        "expires_at": done.issued.key.expires_at.map(timestamp),
        "user": user_view(&done.user),
    })
}

/// Revoke the key used for this call.
#[utoipa::path(post, path = "/v1/logout", tag = "session", responses((status = 204, description = "The calling key is revoked")))]
pub async fn logout(
    State(state): State<SharedState>,
    AnyCaller(caller): AnyCaller,
) -> ApiResult<StatusCode> {
    session::logout(&state, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/whoami", tag = "session", responses((status = 200, description = "The caller", body = openapi::WhoAmI)))]
pub async fn whoami(State(state): State<SharedState>, caller: Caller) -> ApiResult<Json<Value>> {
    let (account, default_account) = session::whoami(&state, &caller).await?;
    let u = &caller.user;
    Ok(Json(json!({
        "username": u.username,
        "account": {
            "name": account.name,
            "email": account.email,
            "type": account.kind,
            "state": account.state,
        },
        "roles": u.roles,
        "attributes": u.attributes,
        "key": {
            "id": caller.key.id,
            "kind": caller.key.kind,
            "expires_at": caller.key.expires_at.map(timestamp),
        },
        "default_account": default_account,
    })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcBody {
    id_token: String,
}

/// `POST /v1/login/oidc`: a verified ID token logs its user in; a user who does not exist
/// yet is created on the spot in `oidc.account` (REANA's "created on first sign-in").
#[utoipa::path(post, path = "/v1/login/oidc", tag = "session", security(()), request_body = OidcBody, responses((status = 200, description = "A login key for the (possibly new) user", body = openapi::LoggedIn), (status = 401, description = "The ID token is not valid", body = openapi::ErrorBody), (status = 404, description = "Single sign-on is not configured", body = openapi::ErrorBody), (status = 429, description = "Rate limited per client address", body = openapi::ErrorBody)))]
pub async fn login_oidc(
    State(state): State<SharedState>,
    Json(body): Json<OidcBody>,
) -> ApiResult<Json<Value>> {
    let done = session::login_oidc(&state, &body.id_token).await?;
    Ok(Json(logged_in_view(&done)))
}
