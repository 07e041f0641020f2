//! Login, logout, whoami (§3.2).

use super::Json;
use crate::api::errors::ErrorBody;
use crate::api::session::{LoggedIn, LoginBody, OidcBody, WhoAmI};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_app::session;

/// Every way a login can fail answers the same 401 after the same amount of hashing work;
/// only the audit log says why.
#[utoipa::path(post, path = "/v1/login", tag = "session", security(()), request_body = LoginBody, responses((status = 200, description = "A login key for the user (with `\"session\": true`, in a `Set-Cookie` header instead)", body = LoggedIn), (status = 401, description = "Invalid username or password (the same answer for every cause)", body = ErrorBody), (status = 403, description = "The password is temporary: log in again with `new_password`", body = ErrorBody), (status = 429, description = "Rate limited per client address", body = ErrorBody), (status = 503, description = "Password hashing is saturated; retry", body = ErrorBody)))]
pub async fn login(
    State(state): State<SharedState>,
    Json(body): Json<LoginBody>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let cookie = &state.config.forward_auth;
    if body.session && cookie.cookie.is_empty() {
        return Err(crate::error::ApiError::invalid(
            "session",
            "no session cookie is configured ([forward_auth] cookie)",
        ));
    }
    let kind = if body.session {
        portcullis_core::KeyKind::Session
    } else {
        portcullis_core::KeyKind::Login
    };
    let done = session::login(
        &state,
        &body.username,
        body.password,
        body.new_password,
        kind,
    )
    .await?;
    let mut answer = LoggedIn::from(&done);
    if !body.session {
        return Ok(Json(answer).into_response());
    }
    let secret = answer.api_key.take().unwrap_or_default();
    let mut attributes = format!("{}={secret}; Path=/; HttpOnly", cookie.cookie);
    if let Some(expires) = done.issued.key.expires_at {
        let seconds = (expires - portcullis_store::now_ms()).max(0) / 1000;
        attributes.push_str(&format!("; Max-Age={seconds}"));
    }
    attributes.push_str(match cookie.cookie_same_site {
        portcullis_app::config::SameSite::Strict => "; SameSite=Strict",
        portcullis_app::config::SameSite::Lax => "; SameSite=Lax",
    });
    if cookie.cookie_secure {
        attributes.push_str("; Secure");
    }
    if !cookie.cookie_domain.is_empty() {
        attributes.push_str(&format!("; Domain={}", cookie.cookie_domain));
    }
    let mut response = Json(answer).into_response();
    let value = axum::http::HeaderValue::from_str(&attributes)
        .map_err(|_| crate::error::ApiError::internal())?;
    response
        .headers_mut()
        .insert(axum::http::header::SET_COOKIE, value);
    Ok(response)
}

/// Revoke the key used for this call.
/// With no `Authorization` header, the `[forward_auth] cookie` of a browser session is the
/// key revoked, and the cookie is cleared.
#[utoipa::path(post, path = "/v1/logout", tag = "session", responses((status = 204, description = "The calling key (or the session cookie's) is revoked")))]
pub async fn logout(
    State(state): State<SharedState>,
    headers: axum::http::HeaderMap,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let name = &state.config.forward_auth.cookie;
    let bearer = crate::auth::bearer_of(&headers);
    let from_cookie = match bearer {
        Some(_) => None,
        None if name.is_empty() => None,
        None => portcullis_app::forward::cookie(
            headers
                .get_all(axum::http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
            name,
        ),
    };
    let caller = session::authenticate_for_logout(&state, bearer.or(from_cookie)).await?;
    session::logout(&state, &caller).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if from_cookie.is_some() {
        let mut clear = format!("{name}=; Path=/; HttpOnly; Max-Age=0");
        if state.config.forward_auth.cookie_secure {
            clear.push_str("; Secure");
        }
        if !state.config.forward_auth.cookie_domain.is_empty() {
            clear.push_str(&format!(
                "; Domain={}",
                state.config.forward_auth.cookie_domain
            ));
        }
        if let Ok(v) = axum::http::HeaderValue::from_str(&clear) {
            response
                .headers_mut()
                .insert(axum::http::header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

#[utoipa::path(get, path = "/v1/whoami", tag = "session", responses((status = 200, description = "The caller", body = WhoAmI)))]
pub async fn whoami(State(state): State<SharedState>, caller: Caller) -> ApiResult<Json<WhoAmI>> {
    let (account, default_account) = session::whoami(&state, &caller).await?;
    Ok(Json(WhoAmI::new(&caller, &account, default_account)))
}

/// `POST /v1/login/oidc`: a verified ID token logs its user in; a user who does not exist
/// yet is created on the spot in `oidc.account` (REANA's "created on first sign-in").
#[utoipa::path(post, path = "/v1/login/oidc", tag = "session", security(()), request_body = OidcBody, responses((status = 200, description = "A login key for the (possibly new) user", body = LoggedIn), (status = 401, description = "The ID token is not valid", body = ErrorBody), (status = 404, description = "Single sign-on is not configured", body = ErrorBody), (status = 429, description = "Rate limited per client address", body = ErrorBody)))]
pub async fn login_oidc(
    State(state): State<SharedState>,
    Json(body): Json<OidcBody>,
) -> ApiResult<Json<LoggedIn>> {
    let done = session::login_oidc(&state, &body.id_token).await?;
    Ok(Json(LoggedIn::from(&done)))
}
