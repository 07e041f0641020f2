//! REANA's user management: access tokens (request → grant → revoke) and users created by
//! email with an optional token.

use crate::audit::Audit;
use crate::caller::Caller;
use crate::error::{AppError, AppResult};
use crate::keys;
use crate::users::{self, load_user};
use crate::App;
use portcullis_core::authz::{actions, Target};
use portcullis_core::{names, AccessTokenStatus, AuditAction, KeyKind};
use portcullis_store::{NewUser, User};

/// A user's access-token status before a change, as the audit log shows it.
fn status_of(user: &User) -> &'static str {
    user.access_token_status
        .map_or("none", AccessTokenStatus::as_str)
}

/// The user asks for a token (status `requested`, unless one is active); the status.
pub async fn request(
    app: &App,
    caller: &Caller,
    username: &str,
) -> AppResult<(String, AccessTokenStatus)> {
    let user = load_user(app, caller, username, actions::ACCESS_TOKENS_REQUEST).await?;
    let status = app.store.request_access_token(&user.username).await?;
    app.audit(
        Audit::success(
            &caller.user.username,
            AuditAction::AccessTokensRequest,
            &user.username,
        )
        .detail(format!("status {status}")),
    )
    .await;
    Ok((user.username, status))
}

/// Issue a new access token (the secret, shown once), revoking any earlier one.
pub async fn issue(app: &App, username: &str) -> AppResult<String> {
    let issued = keys::issue(
        &app.store,
        username,
        "access-token",
        KeyKind::AccessToken,
        None,
    )
    .await?;
    Ok(issued.secret)
}

/// Grant: a new token for the user (any earlier one is revoked); the username and secret.
pub async fn grant(app: &App, caller: &Caller, username: &str) -> AppResult<(String, String)> {
    let user = load_user(app, caller, username, actions::ACCESS_TOKENS_GRANT).await?;
    let before = status_of(&user);
    let token = issue(app, &user.username).await?;
    app.audit(
        Audit::success(
            &caller.user.username,
            AuditAction::AccessTokensGrant,
            &user.username,
        )
        .detail(format!("status {before} -> active")),
    )
    .await;
    Ok((user.username, token))
}

/// Revoke the user's access token (status `revoked`); the username.
pub async fn revoke(app: &App, caller: &Caller, username: &str) -> AppResult<String> {
    let user = load_user(app, caller, username, actions::ACCESS_TOKENS_REVOKE).await?;
    let before = status_of(&user);
    let n = app.store.revoke_access_token(&user.username).await?;
    app.audit(
        Audit::success(
            &caller.user.username,
            AuditAction::AccessTokensRevoke,
            &user.username,
        )
        .detail(format!("status {before} -> revoked; {n} tokens revoked")),
    )
    .await;
    Ok(user.username)
}

/// A user to create by email (REANA's `POST /v1/users`).
#[derive(Debug, Default)]
pub struct ByEmail {
    pub email: String,
    /// Default: `[users] default_account`, or a `user`-account caller's own account.
    pub account: Option<String>,
    /// Default: the email, lowercased.
    pub username: Option<String>,
    pub grant_access_token: bool,
}

/// Create a user by email, without a password, optionally with an access token (the
/// secret, shown once).
pub async fn create_by_email(
    app: &App,
    caller: &Caller,
    input: ByEmail,
) -> AppResult<(User, Option<String>)> {
    names::validate_email(&input.email).map_err(|e| AppError::invalid("email", e))?;
    let username = input.username.unwrap_or_else(|| input.email.to_lowercase());
    names::validate_username(&username).map_err(|e| AppError::invalid("username", e))?;
    if let Some(account) = &input.account {
        names::validate_account_name(account).map_err(|e| AppError::invalid("account", e))?;
    }
    let defaulted = input.account.is_none();
    let account = input
        .account
        .unwrap_or_else(|| users::default_account_name(app, caller));
    let mut target = Target::new("user", &username, Some(&account));
    target.attributes = vec![("changes".into(), "email".into())];
    app.require(&caller.principal, actions::USERS_CREATE, target)
        .await?;
    if input.grant_access_token {
        app.require(
            &caller.principal,
            actions::ACCESS_TOKENS_GRANT,
            Target::new("user", &username, Some(&account)),
        )
        .await?;
    }
    // Created on first use — only once the caller may create users there.
    if defaulted {
        users::default_account(app, caller).await?;
    }
    users::open_account(app, &account).await?;
    let new = NewUser {
        username,
        account,
        email: Some(input.email),
        ..Default::default()
    };
    let user = users::insert_user(app, &caller.user.username, &new, "by email; ").await?;
    let token = if input.grant_access_token {
        let t = issue(app, &user.username).await?;
        app.audit(
            Audit::success(
                &caller.user.username,
                AuditAction::AccessTokensGrant,
                &user.username,
            )
            .detail("status none -> active"),
        )
        .await;
        Some(t)
    } else {
        None
    };
    Ok((user, token))
}
