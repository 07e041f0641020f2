//! Login, logout, whoami (§3.2).

use super::openapi;
use super::{timestamp, Json};
use crate::auth::{AnyCaller, Caller};
use crate::error::{ApiError, ApiResult};
use crate::routes::users::{issue_key, user_view};
use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_core::authz::{actions, Target};
use portcullis_core::password::{self, Verified};
use portcullis_core::{AccountState, KeyKind};
use portcullis_store::now_ms;
use serde::Deserialize;
use serde_json::{json, Value};

/// What the audit log and the server log say instead of a login name that cannot be a
/// username (too long, wrong characters): the name itself is never stored.
pub const INVALID_USERNAME: &str = "<invalid username>";

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
    // A name that cannot be a username touches neither the database nor the audit log
    // under its own spelling: a client sending megabyte "usernames" must not grow either.
    let valid_name = portcullis_core::names::validate_username(&body.username).is_ok();
    let audit_name = if valid_name {
        body.username.clone()
    } else {
        INVALID_USERNAME.to_string()
    };
    let fail = |reason: &'static str| {
        let state = state.clone();
        let name = audit_name.clone();
        async move {
            state.audit(&name, "login", &name, "failure", reason).await;
            state.metrics.login("failure");
            tracing::info!(username = %name, reason, "login failed");
            ApiError::invalid_credentials()
        }
    };
    let user = if valid_name {
        state.store.get_user(&body.username).await?
    } else {
        None
    };
    // Reserve the attempt before any hashing: at most `lockout_threshold` password checks
    // per lock window, however many guesses arrive at once (SPEC §10).
    let (user, locked) = match user {
        Some(u) => {
            let allowed = state
                .store
                .reserve_password_attempt(
                    &u.username,
                    state.config.auth.lockout_threshold as i64,
                    state.config.auth.lockout_duration.as_millis() as i64,
                )
                .await?;
            (Some(u), !allowed)
        }
        None => (None, false),
    };
    // The same hashing work for every outcome (a locked user or an unknown name get the
    // dummy hash), so the time of the answer tells nothing.
    let phc = if locked {
        None
    } else {
        user.as_ref().and_then(|u| u.password_hash.clone())
    };
    let verdict = state
        .verify_password_for(&audit_name, body.password.clone(), phc)
        .await?;
    let Some(user) = user else {
        return Err(fail(if valid_name {
            "unknown user"
        } else {
            "invalid username"
        })
        .await);
    };
    if locked {
        return Err(fail("user locked").await);
    }
    let rehash = match verdict {
        Some(Verified::Match { rehash }) => rehash,
        Some(Verified::Mismatch) => {
            return Err(fail("wrong password").await);
        }
        None => {
            return Err(fail(if user.password_hash.is_some() {
                "stored hash refused"
            } else {
                "no password set"
            })
            .await)
        }
    };
    if user.account_state != AccountState::Enabled {
        return Err(fail("account not enabled").await);
    }
    let mut new_hash = None;
    if let Some(new_password) = body.new_password {
        password::check_policy(&new_password).map_err(|e| ApiError::invalid("new_password", e))?;
        if new_password == body.password {
            return Err(ApiError::invalid(
                "new_password",
                "must differ from the current password",
            ));
        }
        let phc = state.hash_password(&user.username, new_password).await?;
        state
            .store
            .set_password(&user.username, &phc, false, None)
            .await?;
        state
            .audit(
                &user.username,
                "users.set-password",
                &user.username,
                "success",
                "changed at login",
            )
            .await;
        new_hash = Some(());
    } else if user.must_change_password {
        // The password was right: the failure streak ends, but no key is issued.
        state
            .store
            .record_login_success(&user.username, None)
            .await?;
        state
            .audit(
                &user.username,
                "login",
                &user.username,
                "failure",
                "password change required",
            )
            .await;
        state.metrics.login("password_change_required");
        return Err(ApiError::password_change_required());
    }
    let rehashed = if rehash && new_hash.is_none() {
        Some(state.hash_password(&user.username, body.password).await?)
    } else {
        None
    };
    let last_login = state
        .store
        .record_login_success(&user.username, rehashed.as_deref())
        .await?;
    finish_login(&state, &user.username, last_login, "").await
}

/// Revoke the key used for this call.
#[utoipa::path(post, path = "/v1/logout", tag = "session", responses((status = 204, description = "The calling key is revoked")))]
pub async fn logout(
    State(state): State<SharedState>,
    AnyCaller(caller): AnyCaller,
) -> ApiResult<StatusCode> {
    let target = Target::new("user", &caller.user.username, Some(&caller.user.account));
    if !caller.user.must_change_password {
        state
            .require(&caller.principal, actions::KEYS_DELETE, target)
            .await?;
    }
    state
        .store
        .revoke_key(&caller.user.username, &caller.key.id)
        .await?;
    state
        .audit(
            &caller.user.username,
            "logout",
            &caller.key.id,
            "success",
            "",
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/whoami", tag = "session", responses((status = 200, description = "The caller", body = openapi::WhoAmI)))]
pub async fn whoami(State(state): State<SharedState>, caller: Caller) -> ApiResult<Json<Value>> {
    let u = &caller.user;
    state
        .require(
            &caller.principal,
            actions::USERS_READ,
            Target::new("user", &u.username, Some(&u.account)),
        )
        .await?;
    let account = state
        .store
        .get_account(&u.account)
        .await?
        .ok_or_else(ApiError::internal)?;
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
        "default_account": crate::routes::users::default_account_name(&state, &caller),
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
    let Some(sso) = &state.sso else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "sso_not_configured",
            "single sign-on is not configured on this server ([oidc])",
        ));
    };
    let refused = |reason: String| {
        let state = state.clone();
        async move {
            state
                .audit("anonymous", "login.oidc", "-", "failure", &reason)
                .await;
            state.metrics.login("failure");
            tracing::info!(reason = %reason, "SSO login refused");
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the ID token was not accepted",
            )
        }
    };
    let id = match sso.verify(&body.id_token).await {
        Ok(id) => id,
        Err(r) => return Err(refused(r.to_string()).await),
    };
    // In iact mode nobody may sign in before the first administrator exists: a user
    // created now would make the bootstrap token unredeemable.
    if !state.store.admin_exists().await? {
        return Err(refused("no administrator exists yet (bootstrap not finished)".into()).await);
    }
    // A sign-in is resolved through its link (issuer, sub) only — never by a matching
    // username or email, so an identity provider's user can never become a local user it
    // did not create (or that an administrator did not link to it).
    let user = match state.store.user_by_sso(&id.link).await? {
        Some(u) => u,
        None => match first_sign_in(&state, sso, &id).await {
            Ok(u) => u,
            Err(reason) => return Err(refused(reason).await),
        },
    };
    if user.account == portcullis_core::names::SYSTEM_ACCOUNT {
        return Err(refused(format!("{} is reserved", user.username)).await);
    }
    if user.account_state != AccountState::Enabled {
        return Err(refused(format!("account of {} not enabled", user.username)).await);
    }
    // A password lockout is the password's business: SSO neither checks nor clears it.
    let last_login = state.store.touch_last_login(&user.username).await?;
    finish_login(&state, &user.username, last_login, "oidc").await
}

/// A first sign-in: create the user in `oidc.account` (a `user` account) with its link.
/// `Err` carries the reason for the audit log; the client gets the same 401 as for any
/// refused token.
async fn first_sign_in(
    state: &SharedState,
    sso: &crate::oidc::Sso,
    id: &crate::oidc::Identity,
) -> Result<portcullis_store::User, String> {
    let fail = |e: portcullis_store::StoreError| {
        tracing::error!(error = %e, "SSO first sign-in: store error");
        "store error".to_string()
    };
    if state
        .store
        .get_user(&id.username)
        .await
        .map_err(fail)?
        .is_some()
    {
        return Err(format!(
            "username {} is taken by a user not linked to this identity (an administrator may link them: PUT /v1/users/{}/sso-link)",
            id.username, id.username
        ));
    }
    let account = &sso.config.account;
    match state.store.get_account(account).await.map_err(fail)? {
        Some(a) if a.kind != portcullis_core::AccountType::User => {
            return Err(format!(
                "oidc.account {account} is a {} account; single sign-on creates users only in a user account",
                a.kind
            ))
        }
        Some(_) => {}
        None => {
            if state
                .store
                .ensure_account(account, None, portcullis_core::AccountType::User)
                .await
                .map_err(fail)?
            {
                state
                    .audit(
                        "sso",
                        "accounts.create",
                        account,
                        "success",
                        "first single sign-on into it",
                    )
                    .await;
            }
        }
    }
    let new = portcullis_store::NewUser {
        username: id.username.clone(),
        account: account.clone(),
        email: id.email.clone(),
        sso: Some(id.link.clone()),
        ..Default::default()
    };
    match state.store.create_user(&new).await {
        Ok(u) => {
            state
                .audit(
                    "sso",
                    "users.create",
                    &u.username,
                    "success",
                    &format!("first single sign-on; account {account}"),
                )
                .await;
            state
                .notify(portcullis_core::authz::Event::UserCreated(
                    crate::state::principal_of(&u),
                ))
                .await;
            Ok(u)
        }
        // A concurrent first sign-in of the same identity created it.
        Err(portcullis_store::StoreError::Conflict(m)) => {
            match state.store.user_by_sso(&id.link).await.map_err(fail)? {
                Some(u) => Ok(u),
                None => Err(m),
            }
        }
        Err(e) => Err(fail(e)),
    }
}

/// The end of every successful login: a login key, the audit entry, the answer.
async fn finish_login(
    state: &SharedState,
    username: &str,
    last_login: i64,
    detail: &str,
) -> ApiResult<Json<Value>> {
    let ttl = state.config.auth.login_key_ttl.as_millis() as i64;
    let (secret, key) = issue_key(
        state,
        username,
        "login",
        KeyKind::Login,
        Some(now_ms() + ttl),
    )
    .await?;
    state
        .audit(username, "login", username, "success", detail)
        .await;
    state.metrics.login("success");
    let mut user = state
        .store
        .get_user(username)
        .await?
        .ok_or_else(ApiError::internal)?;
    user.last_login_at = Some(last_login);
    Ok(Json(json!({
        "api_key": secret,
        "expires_at": key.expires_at.map(timestamp),
        "user": user_view(&user),
    })))
}
