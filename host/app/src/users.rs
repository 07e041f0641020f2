//! Users: list, create (into a named account or the default one), describe, update,
//! delete, passwords (own and others'), SSO links. Every operation asks the authorizer
//! first; an unknown user is asked about with no account, so a caller who may not see it
//! learns nothing from a 404.

use crate::accounts::visible_account;
use crate::audit::Audit;
use crate::caller::Caller;
use crate::error::{AppError, AppResult};
use crate::{principal_of, App};
use portcullis_core::authz::{actions, Event, Target};
use portcullis_core::names::{self, ADMIN_ACCOUNT, ADMIN_USER, SYSTEM_ACCOUNT};
use portcullis_core::password::{self, Verified};
use portcullis_core::{AccountState, AccountType, AuditAction, ErrorCode};
use portcullis_store::{NewUser, SsoLink, StoreError, User, UserPatch};
use std::collections::BTreeMap;

const MAX_ROLES: usize = 100;
const MAX_ATTRIBUTES: usize = 100;

fn user_target(username: &str, account: Option<&str>) -> Target {
    Target::new("user", username, account)
}

/// Load a user for `action`, asking the authorizer first. An unknown user is asked about
/// with no account, so a caller who may not see it learns nothing from a 404.
pub async fn load_user(
    app: &App,
    caller: &Caller,
    username: &str,
    action: &str,
) -> AppResult<User> {
    match app.store.get_user(username).await? {
        Some(u) if u.account != SYSTEM_ACCOUNT => {
            let mut target = user_target(&u.username, Some(&u.account));
            if u.sso.is_some() {
                // The plugin learns that this user signs in with SSO (the native rules keep
                // fellow members of the account from taking it over).
                target.attributes.push(("sso".into(), "linked".into()));
            }
            app.require(&caller.principal, action, target).await?;
            Ok(u)
        }
        _ => {
            app.require(&caller.principal, action, user_target(username, None))
                .await?;
            Err(AppError::not_found(format!("user {username}")))
        }
    }
}

pub fn check_roles(roles: &[String]) -> AppResult<()> {
    if roles.len() > MAX_ROLES {
        return Err(AppError::invalid(
            "roles",
            format!("at most {MAX_ROLES} roles"),
        ));
    }
    for (i, r) in roles.iter().enumerate() {
        names::validate_label(r, 256).map_err(|e| AppError::invalid(&format!("roles[{i}]"), e))?;
    }
    Ok(())
}

pub fn check_attributes(attributes: &BTreeMap<String, String>) -> AppResult<()> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(AppError::invalid(
            "attributes",
            format!("at most {MAX_ATTRIBUTES} attributes"),
        ));
    }
    for (k, v) in attributes {
        names::validate_label(k, 128)
            .map_err(|e| AppError::invalid("attributes", format!("key {k:?} {e}")))?;
        if v.chars().count() > 1024 || v.chars().any(char::is_control) {
            return Err(AppError::invalid(
                &format!("attributes.{k}"),
                "must be at most 1024 characters, no control characters",
            ));
        }
    }
    Ok(())
}

/// The fields a create or update touches that carry privileges: the authorizer sees them
/// as the target attribute `changes` so a rule can refuse self-promotion.
fn changes(roles: bool, attributes: bool, email: bool) -> Vec<(String, String)> {
    changes_with(roles, attributes, email, false)
}

/// The `changes` target attribute: the comma-separated fields a write touches (`lockout`
/// for an unlock), so a plugin can tell privilege changes from the rest.
fn changes_with(
    roles: bool,
    attributes: bool,
    email: bool,
    lockout: bool,
) -> Vec<(String, String)> {
    let fields: Vec<&str> = [
        ("email", email),
        ("roles", roles),
        ("attributes", attributes),
        ("lockout", lockout),
    ]
    .into_iter()
    .filter_map(|(f, on)| on.then_some(f))
    .collect();
    vec![("changes".to_string(), fields.join(","))]
}

/// A page of an account's users.
pub async fn list_in_account(
    app: &App,
    caller: &Caller,
    account: &str,
    after: Option<&str>,
    limit: i64,
) -> AppResult<Vec<User>> {
    app.require(
        &caller.principal,
        actions::USERS_LIST,
        Target::new("account", account, Some(account)),
    )
    .await?;
    visible_account(app, account).await?;
    Ok(app.store.list_users(Some(account), after, limit).await?)
}

/// All users the caller may see: everyone if it may list across accounts, else the users
/// of its own account.
pub async fn list_all(
    app: &App,
    caller: &Caller,
    after: Option<&str>,
    limit: i64,
) -> AppResult<Vec<User>> {
    let everyone = app
        .decide(
            &caller.principal,
            actions::USERS_LIST,
            Target::new("account", "*", None),
        )
        .await;
    let account = if everyone.allowed {
        None
    } else {
        let own = caller.user.account.clone();
        app.require(
            &caller.principal,
            actions::USERS_LIST,
            Target::new("account", &own, Some(&own)),
        )
        .await?;
        Some(own)
    };
    let users = app
        .store
        .list_users(account.as_deref(), after, limit)
        .await?;
    Ok(users
        .into_iter()
        .filter(|u| u.account != SYSTEM_ACCOUNT)
        .collect())
}

/// A user to create in a named account. (No `Debug`: it holds a password.)
#[derive(Default)]
pub struct NewUserInput {
    pub username: String,
    /// Absent: the user can only use keys, access tokens or single sign-on.
    pub password: Option<String>,
    /// The user must change the password at first login.
    pub temporary_password: bool,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub attributes: BTreeMap<String, String>,
}

/// Create a user in `account` (409 when the name is taken in any account, or the account
/// is being deleted).
pub async fn create_in_account(
    app: &App,
    caller: &Caller,
    account: &str,
    input: NewUserInput,
) -> AppResult<User> {
    names::validate_username(&input.username).map_err(|e| AppError::invalid("username", e))?;
    if let Some(email) = &input.email {
        names::validate_email(email).map_err(|e| AppError::invalid("email", e))?;
    }
    check_roles(&input.roles)?;
    check_attributes(&input.attributes)?;
    if let Some(p) = &input.password {
        password::check_policy(p).map_err(|e| AppError::invalid("password", e))?;
    } else if input.temporary_password {
        return Err(AppError::invalid("temporary_password", "needs a password"));
    }
    let mut t = user_target(&input.username, Some(account));
    t.attributes = changes(
        !input.roles.is_empty(),
        !input.attributes.is_empty(),
        input.email.is_some(),
    );
    app.require(&caller.principal, actions::USERS_CREATE, t)
        .await?;
    // The default user account exists from its first use on (`whoami` names it).
    if account == default_account_name(app, caller) {
        default_account(app, caller).await?;
    }
    open_account(app, account).await?;
    let password_hash = match input.password {
        Some(p) => Some(app.hash_password(&caller.user.username, p).await?),
        None => None,
    };
    let new = NewUser {
        username: input.username,
        account: account.to_string(),
        email: input.email,
        roles: input.roles,
        attributes: input.attributes,
        password_hash,
        must_change_password: input.temporary_password,
        sso: None,
    };
    insert_user(app, &caller.user.username, &new, "").await
}

/// The account a new user goes into must be visible and not being deleted.
pub async fn open_account(app: &App, account: &str) -> AppResult<()> {
    let acct = visible_account(app, account).await?;
    if acct.state == AccountState::Deleting {
        return Err(AppError::invalid_state(format!(
            "account {account} is being deleted"
        )));
    }
    Ok(())
}

/// The account a user goes into when the caller names none: a `user`-account member's
/// own account, otherwise `[users] default_account` — never the admin account, so a user
/// created without `--account` can never become an administrator by accident.
pub fn default_account_name(app: &App, caller: &Caller) -> String {
    if caller.user.account_type == AccountType::User {
        caller.user.account.clone()
    } else {
        app.config.users.default_account.clone()
    }
}

/// [`default_account_name`], created (type `user`) on first use; 409 when an account of
/// that name exists with another type.
pub async fn default_account(app: &App, caller: &Caller) -> AppResult<String> {
    let name = default_account_name(app, caller);
    if caller.user.account_type == AccountType::User {
        return Ok(name);
    }
    if app
        .store
        .ensure_account(&name, None, AccountType::User)
        .await?
    {
        app.audit(
            Audit::success(&caller.user.username, AuditAction::AccountsCreate, &name)
                .detail("users.default_account, on first use"),
        )
        .await;
    }
    match app.store.get_account(&name).await? {
        Some(a) if a.kind == AccountType::User => Ok(name),
        Some(a) => Err(AppError::new(
            ErrorCode::InvalidDefaultAccount,
            format!(
                "users.default_account {name} is a {} account; name an account explicitly or configure a user account",
                a.kind
            ),
        )),
        None => Err(AppError::not_found(format!("account {name}"))),
    }
}

/// Insert a user (409 when the name is taken anywhere), audit it and tell the plugin.
/// `how` starts the audit detail (`"by email; "`, `"first single sign-on; "`).
pub async fn insert_user(app: &App, actor: &str, new: &NewUser, how: &str) -> AppResult<User> {
    let user = app.store.create_user(new).await.map_err(|e| match e {
        StoreError::Conflict(m) => AppError::already_exists(m),
        StoreError::NotFound => AppError::not_found(format!("account {}", new.account)),
        other => other.into(),
    })?;
    app.audit(
        Audit::success(actor, AuditAction::UsersCreate, &user.username)
            .detail(format!("{how}account {}", user.account)),
    )
    .await;
    app.notify(Event::UserCreated(std::sync::Arc::unwrap_or_clone(
        principal_of(&user),
    )))
    .await;
    Ok(user)
}

/// A user and the number of its active keys.
pub async fn describe(app: &App, caller: &Caller, username: &str) -> AppResult<(User, i64)> {
    let user = load_user(app, caller, username, actions::USERS_READ).await?;
    let keys = app.store.count_active_keys(&user.username).await?;
    Ok((user, keys))
}

/// Change a user's email, roles or attributes (absent fields stay).
pub async fn update(
    app: &App,
    caller: &Caller,
    username: &str,
    patch: UserPatch,
) -> AppResult<User> {
    if let Some(Some(email)) = &patch.email {
        names::validate_email(email).map_err(|e| AppError::invalid("email", e))?;
    }
    if let Some(r) = &patch.roles {
        check_roles(r)?;
    }
    if let Some(a) = &patch.attributes {
        check_attributes(a)?;
    }
    let user = app.store.get_user(username).await?;
    let account = user
        .as_ref()
        .filter(|u| u.account != SYSTEM_ACCOUNT)
        .map(|u| u.account.clone());
    let mut t = user_target(username, account.as_deref());
    t.attributes = changes_with(
        patch.roles.is_some(),
        patch.attributes.is_some(),
        patch.email.is_some(),
        patch.unlock,
    );
    app.require(&caller.principal, actions::USERS_UPDATE, t)
        .await?;
    if account.is_none() {
        return Err(AppError::not_found(format!("user {username}")));
    }
    app.store.update_user(username, &patch).await?;
    let audit = Audit::success(&caller.user.username, AuditAction::UsersUpdate, username);
    let audit = if patch.unlock {
        audit.detail("lockout cleared")
    } else {
        audit
    };
    app.audit(audit).await;
    app.store
        .get_user(username)
        .await?
        .ok_or_else(|| AppError::not_found(format!("user {username}")))
}

/// Delete a user and all its keys. The built-in admin user cannot be deleted: it is the
/// recovery path.
pub async fn delete(app: &App, caller: &Caller, username: &str) -> AppResult<()> {
    let user = load_user(app, caller, username, actions::USERS_DELETE).await?;
    if user.username == ADMIN_USER && user.account == ADMIN_ACCOUNT {
        return Err(AppError::new(
            ErrorCode::ProtectedUser,
            "the admin user cannot be deleted (it is the recovery path: `portcullis server recover-admin-user`)",
        ));
    }
    app.store.delete_user(&user.username).await?;
    app.audit(
        Audit::success(
            &caller.user.username,
            AuditAction::UsersDelete,
            &user.username,
        )
        .detail("user and all its keys deleted"),
    )
    .await;
    app.notify(Event::UserDeleted(user.username.clone())).await;
    Ok(())
}

/// A new password for a user.
pub struct NewPassword {
    pub password: String,
    /// Required when changing one's own password.
    pub current_password: Option<String>,
    /// An administrator setting another user's password: force a change at next login.
    pub temporary: bool,
}

/// What a password change did.
pub struct PasswordSet {
    pub username: String,
    pub must_change_password: bool,
    pub keys_revoked: u64,
}

/// Self: needs the current password (a guess like a login's: `check_rate` is the
/// per-client-address limit, asked only then), keeps the calling key. Another user: sets
/// it, optionally as temporary. Every other key of the user is revoked.
pub async fn set_password(
    app: &App,
    caller: &Caller,
    username: &str,
    input: NewPassword,
    check_rate: impl FnOnce() -> AppResult<()>,
) -> AppResult<PasswordSet> {
    let user = load_user(app, caller, username, actions::USERS_SET_PASSWORD).await?;
    let is_self = user.username == caller.user.username;
    password::check_policy(&input.password).map_err(|e| AppError::invalid("password", e))?;
    if is_self {
        if input.temporary {
            // Not a malformed request: a permission the caller lacks on itself.
            return Err(AppError::new(
                ErrorCode::Forbidden,
                "temporary: you cannot make your own password temporary",
            ));
        }
        let current = input.current_password.ok_or_else(|| {
            AppError::new(
                ErrorCode::CurrentPasswordRequired,
                "current_password: is required to change your own password",
            )
        })?;
        // Rate-limited per client address, reserved against the lockout before hashing,
        // refused while the user is locked.
        check_rate()?;
        let allowed = app.reserve_password_attempt(&user.username).await?;
        let failed = |detail: &'static str| {
            Audit::failure(
                &caller.user.username,
                AuditAction::UsersSetPassword,
                &user.username,
            )
            .detail(detail)
        };
        if !allowed {
            app.audit(failed("user locked")).await;
            return Err(AppError::new(
                ErrorCode::UserLocked,
                "current_password: too many wrong passwords; try again after the lockout (auth.lockout_duration)",
            ));
        }
        let verdict = app
            .verify_password_for(
                &caller.user.username,
                current.clone(),
                user.password_hash.clone(),
            )
            .await?;
        if !matches!(verdict, Some(Verified::Match { .. })) {
            app.audit(failed("wrong current password")).await;
            return Err(AppError::new(
                ErrorCode::InvalidCurrentPassword,
                "current_password: does not match",
            ));
        }
        if current == input.password {
            return Err(AppError::invalid(
                "password",
                "must differ from the current password",
            ));
        }
    }
    let phc = app
        .hash_password(&caller.user.username, input.password)
        .await?;
    let keep = is_self.then_some(caller.key.id.as_str());
    let revoked = app
        .store
        .set_password(&user.username, &phc, input.temporary, keep)
        .await?;
    app.audit(
        Audit::success(
            &caller.user.username,
            AuditAction::UsersSetPassword,
            &user.username,
        )
        .detail(format!(
            "{revoked} keys revoked; temporary={}",
            input.temporary
        )),
    )
    .await;
    Ok(PasswordSet {
        username: user.username,
        must_change_password: input.temporary,
        keys_revoked: revoked,
    })
}

/// Link an SSO identity to an existing user (an administrator's explicit decision: from
/// then on that identity signs in as this user; the user's login keys are revoked). 409
/// when the identity is linked to another user.
pub async fn link_sso(
    app: &App,
    caller: &Caller,
    username: &str,
    link: SsoLink,
) -> AppResult<User> {
    names::validate_label(&link.issuer, 1024).map_err(|e| AppError::invalid("issuer", e))?;
    names::validate_label(&link.subject, 255).map_err(|e| AppError::invalid("subject", e))?;
    let user = load_user(app, caller, username, actions::USERS_LINK_SSO).await?;
    let revoked = app.store.set_sso_link(&user.username, Some(&link)).await?;
    app.audit(
        Audit::success(
            &caller.user.username,
            AuditAction::UsersLinkSso,
            &user.username,
        )
        .detail(format!(
            "issuer {} subject {}; {revoked} login keys revoked",
            link.issuer, link.subject
        )),
    )
    .await;
    app.store
        .get_user(&user.username)
        .await?
        .ok_or_else(AppError::internal)
}

/// Remove a user's SSO link: that identity no longer signs in as the user, and the user's
/// login keys are revoked (sessions an SSO sign-in opened end too).
pub async fn unlink_sso(app: &App, caller: &Caller, username: &str) -> AppResult<()> {
    let user = load_user(app, caller, username, actions::USERS_LINK_SSO).await?;
    let revoked = app.store.set_sso_link(&user.username, None).await?;
    app.audit(
        Audit::success(
            &caller.user.username,
            AuditAction::UsersLinkSso,
            &user.username,
        )
        .detail(format!("unlinked; {revoked} login keys revoked")),
    )
    .await;
    Ok(())
}
