//! Sessions: authenticating a presented key, password login (with the forced change of a
//! temporary password and the lockout), single sign-on, logout, whoami.

use crate::audit::Audit;
use crate::caller::Caller;
use crate::error::{AppError, AppResult};
use crate::keys::{self, Issued};
use crate::verified::VerifiedKey;
use crate::{principal_of, App};
use portcullis_core::authz::{actions, Target};
use portcullis_core::names::SYSTEM_ACCOUNT;
use portcullis_core::password::{self, Verified};
use portcullis_core::{AccountState, AccountType, AuditAction, ErrorCode, KeyKind};
use portcullis_store::{now_ms, Account, NewUser, StoreError, User};

/// What the audit log and the server log say instead of a login name that cannot be a
/// username (too long, wrong characters): the name itself is never stored.
pub const INVALID_USERNAME: &str = "<invalid username>";

/// `last_used_at` is written at most this often per key.
const TOUCH_EVERY_MS: i64 = 60_000;

/// The key in an `Authorization` header value, when its scheme is `Bearer` (any case).
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, key) = authorization.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

/// Who presented `presented` (the bearer key): its user, if the key is well formed, known,
/// live, and its account enabled. A user whose password is temporary is accepted only
/// where `while_password_temporary` (logout); elsewhere the answer says to change it.
pub async fn authenticate(
    app: &App,
    presented: Option<&str>,
    while_password_temporary: bool,
) -> AppResult<Caller> {
    authenticate_as(app, presented, while_password_temporary, Presented::Bearer).await
}

/// [`authenticate`] for the two places a browser session's key works: forward-auth checks
/// and logout (a `session` key is accepted there, and only there).
pub async fn authenticate_session(app: &App, presented: Option<&str>) -> AppResult<Caller> {
    authenticate_as(app, presented, false, Presented::SessionCookie).await
}

/// [`authenticate`] for `POST /v1/logout`: a temporary password and a key of any kind but
/// `console` are fine (a key that logs out ends its own life only).
pub async fn authenticate_for_logout(app: &App, presented: Option<&str>) -> AppResult<Caller> {
    authenticate_as(app, presented, true, Presented::Logout).await
}

/// [`authenticate`] for the admin console's cookie: a `console` key, and only that (the
/// caller has already checked that the request is the console's own, not a cross-site one).
pub async fn authenticate_console(app: &App, presented: Option<&str>) -> AppResult<Caller> {
    authenticate_as(app, presented, false, Presented::ConsoleCookie).await
}

/// Where a key came from, which decides the kinds of key accepted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Presented {
    /// `Authorization: Bearer`: every kind but `session` and `console`.
    Bearer,
    /// The forward-auth session cookie (or a bearer key beside it): every kind but `console`.
    SessionCookie,
    /// The console's cookie: `console` keys only.
    ConsoleCookie,
    /// `POST /v1/logout`: every kind but `console` (the console signs out at
    /// `/ui/logout`, [`end_console`]).
    Logout,
}

impl Presented {
    fn accepts(self, kind: KeyKind) -> bool {
        match self {
            Presented::Bearer => !matches!(kind, KeyKind::Session | KeyKind::Console),
            Presented::SessionCookie => kind != KeyKind::Console,
            Presented::ConsoleCookie => kind == KeyKind::Console,
            Presented::Logout => kind != KeyKind::Console,
        }
    }
}

async fn authenticate_as(
    app: &App,
    presented: Option<&str>,
    while_password_temporary: bool,
    via: Presented,
) -> AppResult<Caller> {
    let presented = presented.ok_or_else(AppError::unauthorized)?;
    // Shape and checksum first: garbage never reaches the database.
    let id = portcullis_core::keys::parse(presented).ok_or_else(AppError::unauthorized)?;
    // The epoch is read before the store, so a write that lands in between invalidates
    // what this request caches.
    let epoch = app.store.auth_epoch();
    let verified = match app.verified.key(id, epoch) {
        Some(record) => {
            app.metrics.key_lookups_memory.inc();
            record
        }
        None => {
            app.metrics.key_lookups_store.inc();
            let (key, digest, user) = app
                .store
                .lookup_key(id)
                .await?
                .ok_or_else(AppError::unauthorized)?;
            let principal = principal_of(&user);
            let record = std::sync::Arc::new(VerifiedKey::new(key, digest, user, principal));
            app.verified.put_key(id, record.clone(), epoch);
            record
        }
    };
    let (key, digest, user) = (&verified.key, &verified.digest, &verified.user);
    if !portcullis_core::keys::digest_eq(&portcullis_core::keys::digest(presented), digest) {
        return Err(AppError::unauthorized());
    }
    let now = now_ms();
    if key.revoked_at.is_some() || key.expires_at.is_some_and(|t| t <= now) {
        return Err(AppError::unauthorized());
    }
    if !via.accepts(key.kind) {
        return Err(AppError::unauthorized());
    }
    if user.account_state != AccountState::Enabled {
        return Err(AppError::unauthorized());
    }
    if key.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY_MS) {
        app.verified.touched(&key.id, now);
        let store = app.store.clone();
        let id = key.id.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch_key(&id, now).await {
                tracing::warn!(error = %e, key_id = %id, "could not record key use");
            }
        });
    }
    if user.must_change_password && !while_password_temporary {
        return Err(AppError::password_change_required());
    }
    Ok(Caller { verified, epoch })
}

/// A successful login: the new login key (secret shown once) and the user.
pub struct LoggedIn {
    pub issued: Issued,
    pub user: User,
}

/// Password login. Every way it can fail answers the same `invalid_credentials` after the
/// same amount of hashing work; only the audit log says why.
pub async fn login(
    app: &App,
    username: &str,
    password_given: String,
    new_password: Option<String>,
    kind: KeyKind,
) -> AppResult<LoggedIn> {
    // A name that cannot be a username touches neither the database nor the audit log
    // under its own spelling: a client sending megabyte "usernames" must not grow either.
    let valid_name = portcullis_core::names::validate_username(username).is_ok();
    let audit_name = if valid_name {
        username
    } else {
        INVALID_USERNAME
    };
    let fail = |reason: &'static str| async move {
        app.audit(Audit::failure(audit_name, AuditAction::Login, audit_name).detail(reason))
            .await;
        app.metrics.login("failure");
        tracing::info!(username = %audit_name, reason, "login failed");
        AppError::invalid_credentials()
    };
    // A new password that would be refused is refused before the current one is checked:
    // the answer then says nothing about whether the current password was right.
    if let Some(new_password) = &new_password {
        password::check_policy(new_password).map_err(|e| AppError::invalid("new_password", e))?;
        if *new_password == password_given {
            return Err(AppError::invalid(
                "new_password",
                "must differ from the current password",
            ));
        }
    }
    let user = if valid_name {
        app.store.get_user(username).await?
    } else {
        None
    };
    // Reserve the attempt before any hashing: at most `lockout_threshold` password checks
    // per lock window, however many guesses arrive at once (SPEC §10).
    let (user, locked) = match user {
        Some(u) => {
            let allowed = app.reserve_password_attempt(&u.username).await?;
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
    let verdict = app
        .verify_password_for(audit_name, password_given.clone(), phc)
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
        Some(Verified::Mismatch) => return Err(fail("wrong password").await),
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
    let changed = if let Some(new_password) = new_password {
        let phc = app.hash_password(&user.username, new_password).await?;
        app.store
            .set_password(&user.username, &phc, false, None)
            .await?;
        app.audit(
            Audit::success(
                &user.username,
                AuditAction::UsersSetPassword,
                &user.username,
            )
            .detail("changed at login"),
        )
        .await;
        if user.username == portcullis_core::names::ADMIN_USER
            && user.account == portcullis_core::names::ADMIN_ACCOUNT
        {
            crate::bootstrap::forget_initial_password(&app.config);
        }
        true
    } else if user.must_change_password {
        // The password was right: the failure streak ends, but no key is issued.
        app.store.record_login_success(&user.username, None).await?;
        app.audit(
            Audit::failure(&user.username, AuditAction::Login, &user.username)
                .detail("password change required"),
        )
        .await;
        app.metrics.login("password_change_required");
        return Err(AppError::password_change_required());
    } else {
        false
    };
    let rehashed = if rehash && !changed {
        Some(app.hash_password(&user.username, password_given).await?)
    } else {
        None
    };
    let last_login = app
        .store
        .record_login_success(&user.username, rehashed.as_deref())
        .await?;
    finish_login(app, &user.username, last_login, "", kind).await
}

/// Revoke the key used for this call (allowed while the password is temporary).
pub async fn logout(app: &App, caller: &Caller) -> AppResult<()> {
    let target = Target::new("user", &caller.user.username, Some(&caller.user.account));
    if !caller.user.must_change_password {
        app.require(&caller.principal, actions::KEYS_DELETE, target)
            .await?;
    }
    app.store
        .revoke_key(&caller.user.username, &caller.key.id)
        .await?;
    app.audit(Audit::success(
        &caller.user.username,
        AuditAction::Logout,
        &caller.key.id,
    ))
    .await;
    Ok(())
}

/// End the admin console's session whose key is `presented`: revoke it, whatever the
/// state of its user or account (a disabled account's session must not come back when
/// the account is enabled again) and without asking the plugin (a session may always end
/// itself). `Ok(false)` when there is nothing to end (unknown, dead or not a console key).
pub async fn end_console(app: &App, presented: &str) -> AppResult<bool> {
    let Some(id) = portcullis_core::keys::parse(presented) else {
        return Ok(false);
    };
    let Some((key, digest, user)) = app.store.lookup_key(id).await? else {
        return Ok(false);
    };
    if !portcullis_core::keys::digest_eq(&portcullis_core::keys::digest(presented), &digest)
        || key.kind != KeyKind::Console
        || key.revoked_at.is_some()
    {
        return Ok(false);
    }
    app.store.revoke_key(&user.username, &key.id).await?;
    app.audit(Audit::success(&user.username, AuditAction::Logout, &key.id))
        .await;
    Ok(true)
}

/// The caller's own account, and where users it creates without naming one go.
pub async fn whoami(app: &App, caller: &Caller) -> AppResult<(Account, String)> {
    let u = &caller.user;
    app.require(
        &caller.principal,
        actions::USERS_READ,
        Target::new("user", &u.username, Some(&u.account)),
    )
    .await?;
    let account = app
        .store
        .get_account(&u.account)
        .await?
        .ok_or_else(AppError::internal)?;
    Ok((account, crate::users::default_account_name(app, caller)))
}

/// Single sign-on: a verified ID token logs its user in; an identity not linked yet
/// creates its user on the spot in `oidc.account` (REANA's "created on first sign-in").
/// Every refusal is one `invalid_token` answer; the audit log says why.
pub async fn login_oidc(app: &App, id_token: &str) -> AppResult<LoggedIn> {
    let Some(sso) = &app.sso else {
        return Err(AppError::new(
            ErrorCode::SsoNotConfigured,
            "single sign-on is not configured on this server ([oidc])",
        ));
    };
    let refused = |reason: String| async move {
        app.audit(Audit::failure("anonymous", AuditAction::LoginOidc, "-").detail(reason.clone()))
            .await;
        app.metrics.login("failure");
        tracing::info!(reason = %reason, "SSO login refused");
        AppError::new(ErrorCode::InvalidToken, "the ID token was not accepted")
    };
    let id = match sso.verify(id_token).await {
        Ok(id) => id,
        Err(r) => return Err(refused(r.to_string()).await),
    };
    // In iact mode nobody may sign in before the first administrator exists: a user
    // created now would make the bootstrap token unredeemable.
    if !app.store.admin_exists().await? {
        return Err(refused("no administrator exists yet (bootstrap not finished)".into()).await);
    }
    // A sign-in is resolved through its link (issuer, sub) only — never by a matching
    // username or email, so an identity provider's user can never become a local user it
    // did not create (or that an administrator did not link to it).
    let user = match app.store.user_by_sso(&id.link).await? {
        Some(u) => u,
        None => match first_sign_in(app, sso, &id).await {
            Ok(u) => u,
            Err(reason) => return Err(refused(reason).await),
        },
    };
    if user.account == SYSTEM_ACCOUNT {
        return Err(refused(format!("{} is reserved", user.username)).await);
    }
    if user.account_state != AccountState::Enabled {
        return Err(refused(format!("account of {} not enabled", user.username)).await);
    }
    // A password lockout is the password's business: SSO neither checks nor clears it.
    let last_login = app.store.touch_last_login(&user.username).await?;
    finish_login(app, &user.username, last_login, "oidc", KeyKind::Login).await
}

/// A first sign-in: create the user in `oidc.account` (a `user` account) with its link.
/// `Err` carries the reason for the audit log; the client gets the same answer as for any
/// refused token.
async fn first_sign_in(
    app: &App,
    sso: &crate::oidc::Sso,
    id: &crate::oidc::Identity,
) -> Result<User, String> {
    let fail = |e: StoreError| {
        tracing::error!(error = %e, "SSO first sign-in: store error");
        "store error".to_string()
    };
    if app
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
    match app.store.get_account(account).await.map_err(fail)? {
        Some(a) if a.kind != AccountType::User => {
            return Err(format!(
                "oidc.account {account} is a {} account; single sign-on creates users only in a user account",
                a.kind
            ))
        }
        Some(_) => {}
        None => {
            if app
                .store
                .ensure_account(account, None, AccountType::User)
                .await
                .map_err(fail)?
            {
                app.audit(
                    Audit::success("sso", AuditAction::AccountsCreate, account)
                        .detail("first single sign-on into it"),
                )
                .await;
            }
        }
    }
    let new = NewUser {
        username: id.username.clone(),
        account: account.clone(),
        email: id.email.clone(),
        sso: Some(id.link.clone()),
        ..Default::default()
    };
    match crate::users::insert_user(app, "sso", &new, "first single sign-on; ").await {
        Ok(u) => Ok(u),
        // A concurrent first sign-in of the same identity created it.
        Err(e) if e.code == ErrorCode::AlreadyExists => {
            match app.store.user_by_sso(&id.link).await.map_err(fail)? {
                Some(u) => Ok(u),
                None => Err(e.message),
            }
        }
        Err(e) => Err(e.message),
    }
}

/// The end of every successful login: a login key, the audit entry, the answer.
async fn finish_login(
    app: &App,
    username: &str,
    last_login: i64,
    detail: &str,
    kind: KeyKind,
) -> AppResult<LoggedIn> {
    let ttl = app.config.auth.login_key_ttl.as_millis() as i64;
    let issued = keys::issue(
        &app.store,
        username,
        match kind {
            KeyKind::Session => "session",
            KeyKind::Console => "console",
            _ => "login",
        },
        kind,
        Some(now_ms() + ttl),
    )
    .await?;
    app.audit(Audit::success(username, AuditAction::Login, username).detail(detail))
        .await;
    app.metrics.login("success");
    let mut user = app
        .store
        .get_user(username)
        .await?
        .ok_or_else(AppError::internal)?;
    user.last_login_at = Some(last_login);
    Ok(LoggedIn { issued, user })
}
