//! Users, their passwords and their personal API keys (§2, §4).

use super::accounts::visible_account;
use super::openapi;
use super::{timestamp, Json, List, Page, Path, Query};
use crate::auth::Caller;
use crate::bootstrap::ADMIN_USER;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_core::authz::{actions, Target};
use portcullis_core::names::{self, SYSTEM_ACCOUNT};
use portcullis_core::password::{self, Verified};
use portcullis_core::{keys, AccountState, KeyKind};
use portcullis_store::{now_ms, ApiKey, NewKeyRecord, NewUser, StoreError, User, UserPatch};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const MAX_ROLES: usize = 100;
const MAX_ATTRIBUTES: usize = 100;

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

/// Create a key for `username`; returns the secret (to show once) and the record.
pub async fn issue_key(
    state: &SharedState,
    username: &str,
    name: &str,
    kind: KeyKind,
    expires_at: Option<i64>,
) -> ApiResult<(String, ApiKey)> {
    let key = keys::generate();
    let record = NewKeyRecord {
        id: &key.id,
        username,
        name,
        kind,
        digest: &key.digest,
        expires_at,
    };
    let stored = state.store.insert_key(&record).await?;
    Ok((key.secret, stored))
}

fn user_target(username: &str, account: Option<&str>) -> Target {
    Target::new("user", username, account)
}

/// Load a user for `action`, asking the authorizer first. An unknown user is asked about
/// with no account, so a caller who may not see it learns nothing from a 404.
pub(crate) async fn load_user(
    state: &SharedState,
    caller: &Caller,
    username: &str,
    action: &str,
) -> ApiResult<User> {
    match state.store.get_user(username).await? {
        Some(u) if u.account != SYSTEM_ACCOUNT => {
            let mut target = user_target(&u.username, Some(&u.account));
            if u.sso.is_some() {
                // The plugin learns that this user signs in with SSO (the native rules keep
                // fellow members of the account from taking it over).
                target.attributes.push(("sso".into(), "linked".into()));
            }
            state.require(&caller.principal, action, target).await?;
            Ok(u)
        }
        _ => {
            state
                .require(&caller.principal, action, user_target(username, None))
                .await?;
            Err(ApiError::not_found(format!("user {username}")))
        }
    }
}

fn check_roles(roles: &[String]) -> ApiResult<()> {
    if roles.len() > MAX_ROLES {
        return Err(ApiError::invalid(
            "roles",
            format!("at most {MAX_ROLES} roles"),
        ));
    }
    for (i, r) in roles.iter().enumerate() {
        names::validate_label(r, 256).map_err(|e| ApiError::invalid(&format!("roles[{i}]"), e))?;
    }
    Ok(())
}

fn check_attributes(attributes: &BTreeMap<String, String>) -> ApiResult<()> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(ApiError::invalid(
            "attributes",
            format!("at most {MAX_ATTRIBUTES} attributes"),
        ));
    }
    for (k, v) in attributes {
        names::validate_label(k, 128)
            .map_err(|e| ApiError::invalid("attributes", format!("key {k:?} {e}")))?;
        if v.chars().count() > 1024 || v.chars().any(char::is_control) {
            return Err(ApiError::invalid(
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
    let fields: Vec<&str> = [
        ("email", email),
        ("roles", roles),
        ("attributes", attributes),
    ]
    .into_iter()
    .filter_map(|(f, on)| on.then_some(f))
    .collect();
    vec![("changes".to_string(), fields.join(","))]
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
    state
        .require(
            &caller.principal,
            actions::USERS_LIST,
            Target::new("account", &name, Some(&name)),
        )
        .await?;
    visible_account(&state, &name).await?;
    let limit = page.limit()?;
    let users = state
        .store
        .list_users(Some(&name), page.after.as_deref(), limit)
        .await?;
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
    let everyone = state
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
        state
            .require(
                &caller.principal,
                actions::USERS_LIST,
                Target::new("account", &own, Some(&own)),
            )
            .await?;
        Some(own)
    };
    let users = state
        .store
        .list_users(account.as_deref(), page.after.as_deref(), limit)
        .await?;
    let users = users
        .into_iter()
        .filter(|u| u.account != SYSTEM_ACCOUNT)
        .collect();
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
    names::validate_username(&body.username).map_err(|e| ApiError::invalid("username", e))?;
    if let Some(email) = &body.email {
        names::validate_email(email).map_err(|e| ApiError::invalid("email", e))?;
    }
    check_roles(&body.roles)?;
    check_attributes(&body.attributes)?;
    if let Some(p) = &body.password {
        password::check_policy(p).map_err(|e| ApiError::invalid("password", e))?;
    } else if body.temporary_password {
        return Err(ApiError::invalid("temporary_password", "needs a password"));
    }
    let mut t = user_target(&body.username, Some(&account));
    t.attributes = changes(
        !body.roles.is_empty(),
        !body.attributes.is_empty(),
        body.email.is_some(),
    );
    state
        .require(&caller.principal, actions::USERS_CREATE, t)
        .await?;
    // The default user account exists from its first use on (`whoami` names it).
    if account == default_account_name(&state, &caller) {
        default_account(&state, &caller).await?;
    }
    open_account(&state, &account).await?;
    let password_hash = match body.password {
        Some(p) => Some(state.hash_password(&caller.user.username, p).await?),
        None => None,
    };
    let new = NewUser {
        username: body.username,
        account,
        email: body.email,
        roles: body.roles,
        attributes: body.attributes,
        password_hash,
        must_change_password: body.temporary_password,
        sso: None,
    };
    let user = insert_user(&state, &caller.user.username, &new, "").await?;
    Ok((StatusCode::CREATED, Json(user_view(&user))))
}

/// The account a new user goes into must be visible and not being deleted.
pub(crate) async fn open_account(state: &SharedState, account: &str) -> ApiResult<()> {
    let acct = visible_account(state, account).await?;
    if acct.state == AccountState::Deleting {
        return Err(ApiError::conflict(
            "invalid_state_transition",
            format!("account {account} is being deleted"),
        ));
    }
    Ok(())
}

/// The account a user goes into when the caller names none: a `user`-account member's
/// own account, otherwise `[users] default_account` — never the admin account, so a user
/// created without `--account` can never become an administrator by accident.
pub(crate) fn default_account_name(state: &SharedState, caller: &Caller) -> String {
    if caller.user.account_type == portcullis_core::AccountType::User {
        caller.user.account.clone()
    } else {
        state.config.users.default_account.clone()
    }
}

/// [`default_account_name`], created (type `user`) on first use; 409 when an account of
/// that name exists with another type.
pub(crate) async fn default_account(state: &SharedState, caller: &Caller) -> ApiResult<String> {
    let name = default_account_name(state, caller);
    if caller.user.account_type == portcullis_core::AccountType::User {
        return Ok(name);
    }
    if state
        .store
        .ensure_account(&name, None, portcullis_core::AccountType::User)
        .await?
    {
        state
            .audit(
                &caller.user.username,
                "accounts.create",
                &name,
                "success",
                "users.default_account, on first use",
            )
            .await;
    }
    match state.store.get_account(&name).await? {
        Some(a) if a.kind == portcullis_core::AccountType::User => Ok(name),
        Some(a) => Err(ApiError::conflict(
            "invalid_default_account",
            format!(
                "users.default_account {name} is a {} account; name an account explicitly or configure a user account",
                a.kind
            ),
        )),
        None => Err(ApiError::not_found(format!("account {name}"))),
    }
}

/// Insert a user (409 when the name is taken anywhere), audit it and tell the plugin.
pub(crate) async fn insert_user(
    state: &SharedState,
    actor: &str,
    new: &NewUser,
    how: &str,
) -> ApiResult<User> {
    let user = state.store.create_user(new).await.map_err(|e| match e {
        StoreError::Conflict(m) => ApiError::conflict("already_exists", m),
        StoreError::NotFound => ApiError::not_found(format!("account {}", new.account)),
        other => other.into(),
    })?;
    state
        .audit(
            actor,
            "users.create",
            &user.username,
            "success",
            &format!("{how}account {}", user.account),
        )
        .await;
    state
        .notify(portcullis_core::authz::Event::UserCreated(
            crate::state::principal_of(&user),
        ))
        .await;
    Ok(user)
}

/// Describe: the user plus the number of active keys.
#[utoipa::path(get, path = "/v1/users/{username}", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 200, description = "The user", body = openapi::UserDescribed)))]
pub async fn describe(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = load_user(&state, &caller, &username, actions::USERS_READ).await?;
    let mut view = user_view(&user);
    view["key_count"] = json!(state.store.count_active_keys(&user.username).await?);
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
    if let Some(Some(email)) = &body.email {
        names::validate_email(email).map_err(|e| ApiError::invalid("email", e))?;
    }
    if let Some(r) = &body.roles {
        check_roles(r)?;
    }
    if let Some(a) = &body.attributes {
        check_attributes(a)?;
    }
    let user = state.store.get_user(&username).await?;
    let account = user
        .as_ref()
        .filter(|u| u.account != SYSTEM_ACCOUNT)
        .map(|u| u.account.clone());
    let mut t = user_target(&username, account.as_deref());
    t.attributes = changes(
        body.roles.is_some(),
        body.attributes.is_some(),
        body.email.is_some(),
    );
    state
        .require(&caller.principal, actions::USERS_UPDATE, t)
        .await?;
    if account.is_none() {
        return Err(ApiError::not_found(format!("user {username}")));
    }
    let patch = UserPatch {
        email: body.email,
        roles: body.roles,
        attributes: body.attributes,
    };
    state.store.update_user(&username, &patch).await?;
    state
        .audit(
            &caller.user.username,
            "users.update",
            &username,
            "success",
            "",
        )
        .await;
    let user = state
        .store
        .get_user(&username)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {username}")))?;
    Ok(Json(user_view(&user)))
}

#[utoipa::path(delete, path = "/v1/users/{username}", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 204, description = "The user and all its keys are gone"), (status = 409, description = "The built-in admin user cannot be deleted", body = openapi::ErrorBody)))]
pub async fn delete(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    let user = load_user(&state, &caller, &username, actions::USERS_DELETE).await?;
    if user.username == ADMIN_USER && user.account == portcullis_core::names::ADMIN_ACCOUNT {
        return Err(ApiError::conflict(
            "protected_user",
            "the admin user cannot be deleted (it is the recovery path: `portcullis server recover-admin-user`)",
        ));
    }
    state.store.delete_user(&user.username).await?;
    state
        .audit(
            &caller.user.username,
            "users.delete",
            &user.username,
            "success",
            "user and all its keys deleted",
        )
        .await;
    state
        .notify(portcullis_core::authz::Event::UserDeleted(
            user.username.clone(),
        ))
        .await;
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
    let user = load_user(&state, &caller, &username, actions::USERS_SET_PASSWORD).await?;
    let is_self = user.username == caller.user.username;
    let client = state.limiter.client_ip(peer.ip(), &headers);
    password::check_policy(&body.password).map_err(|e| ApiError::invalid("password", e))?;
    if is_self {
        if body.temporary {
            // Not a malformed request: a permission the caller lacks on itself.
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "temporary: you cannot make your own password temporary",
            ));
        }
        let current = body.current_password.ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "current_password_required",
                "current_password: is required to change your own password",
            )
        })?;
        // The current password is a guess like a login's: rate-limited per client address,
        // reserved against the lockout before hashing, refused while the user is locked.
        if let Err(wait) = state.limiter.check(client) {
            return Err(ApiError::rate_limited(wait));
        }
        let allowed = state
            .store
            .reserve_password_attempt(
                &user.username,
                state.config.auth.lockout_threshold as i64,
                state.config.auth.lockout_duration.as_millis() as i64,
            )
            .await?;
        if !allowed {
            state
                .audit(
                    &caller.user.username,
                    "users.set-password",
                    &user.username,
                    "failure",
                    "user locked",
                )
                .await;
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "user_locked",
                "current_password: too many wrong passwords; try again after the lockout (auth.lockout_duration)",
            ));
        }
        let verdict = state
            .verify_password_for(
                &caller.user.username,
                current.clone(),
                user.password_hash.clone(),
            )
            .await?;
        if !matches!(verdict, Some(Verified::Match { .. })) {
            state
                .audit(
                    &caller.user.username,
                    "users.set-password",
                    &user.username,
                    "failure",
                    "wrong current password",
                )
                .await;
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_current_password",
                "current_password: does not match",
            ));
        }
        if current == body.password {
            return Err(ApiError::invalid(
                "password",
                "must differ from the current password",
            ));
        }
    }
    let phc = state
        .hash_password(&caller.user.username, body.password)
        .await?;
    let keep = is_self.then_some(caller.key.id.as_str());
    let revoked = state
        .store
        .set_password(&user.username, &phc, body.temporary, keep)
        .await?;
    state
        .audit(
            &caller.user.username,
            "users.set-password",
            &user.username,
            "success",
            &format!("{revoked} keys revoked; temporary={}", body.temporary),
        )
        .await;
    Ok(Json(
        json!({ "username": user.username, "must_change_password": body.temporary, "keys_revoked": revoked }),
    ))
}

#[utoipa::path(get, path = "/v1/users/{username}/keys", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), responses((status = 200, description = "The user's keys (never their secrets)", body = openapi::KeyList)))]
pub async fn list_keys(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
) -> ApiResult<Json<List<Value>>> {
    let user = load_user(&state, &caller, &username, actions::KEYS_LIST).await?;
    let keys = state.store.list_keys(&user.username).await?;
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

const MAX_KEY_LIFETIME_MS: i64 = 10 * 366 * 24 * 3600 * 1000;

/// A key lifetime in text: digits and one unit, `s`, `m`, `h`, `d` or `w` (`"30d"`), in
/// milliseconds. Exactly what `openapi::LIFETIME_PATTERN` states (the number of digits per
/// unit keeps every match within ten years); longer lifetimes are given in seconds.
fn parse_lifetime(text: &str) -> Option<i64> {
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    let (max_digits, unit_ms) = match unit {
        "s" => (8, 1_000),
        "m" => (6, 60_000),
        "h" => (4, 3_600_000),
        "d" => (3, 86_400_000),
        "w" => (2, 604_800_000),
        _ => return None,
    };
    let well_formed = !digits.is_empty()
        && digits.len() <= max_digits
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit());
    well_formed.then(|| digits.parse::<i64>().ok().map(|n| n * unit_ms))?
}

#[utoipa::path(post, path = "/v1/users/{username}/keys", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")), request_body = CreateKey, responses((status = 201, description = "The key; `key` is the secret, shown once", body = openapi::KeyCreated)))]
pub async fn create_key(
    State(state): State<SharedState>,
    caller: Caller,
    Path(username): Path<String>,
    Json(body): Json<CreateKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    names::validate_label(&body.name, 128).map_err(|e| ApiError::invalid("name", e))?;
    let ttl_ms = match body.expires_in {
        None => None,
        Some(ExpiresIn::Seconds(s)) => Some(s.saturating_mul(1000).min(i64::MAX as u64) as i64),
        Some(ExpiresIn::Float(f)) if f.fract() == 0.0 && f >= 0.0 => {
            Some((f.min(1e15) * 1000.0) as i64)
        }
        Some(ExpiresIn::Float(_)) => {
            return Err(ApiError::invalid(
                "expires_in",
                "must be a whole number of seconds",
            ))
        }
        Some(ExpiresIn::Text(t)) => Some(parse_lifetime(&t).ok_or_else(|| {
            ApiError::invalid(
                "expires_in",
                format!("{t:?} is not a duration like \"30d\" (a number and one of s, m, h, d, w)"),
            )
        })?),
    };
    if let Some(ms) = ttl_ms {
        if !(1000..=MAX_KEY_LIFETIME_MS).contains(&ms) {
            return Err(ApiError::invalid(
                "expires_in",
                "must be between 1 second and 10 years",
            ));
        }
    }
    let user = load_user(&state, &caller, &username, actions::KEYS_CREATE).await?;
    let expires_at = ttl_ms.map(|ms| now_ms() + ms);
    let (secret, key) = issue_key(
        &state,
        &user.username,
        &body.name,
        KeyKind::Personal,
        expires_at,
    )
    .await?;
    state
        .audit(
            &caller.user.username,
            "keys.create",
            &format!("{}/{}", user.username, key.id),
            "success",
            "",
        )
        .await;
    let mut view = key_view(&key);
    view["key"] = json!(secret);
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(delete, path = "/v1/users/{username}/keys/{id}", tag = "users", params(("username" = String, Path, description = "Username", pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$"), ("id" = String, Path, description = "Key id")), responses((status = 204, description = "Revoked; it fails from the next request on")))]
pub async fn revoke_key(
    State(state): State<SharedState>,
    caller: Caller,
    Path((username, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let user = load_user(&state, &caller, &username, actions::KEYS_DELETE).await?;
    state
        .store
        .revoke_key(&user.username, &id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found(format!("key {id}")),
            other => other.into(),
        })?;
    state
        .audit(
            &caller.user.username,
            "keys.delete",
            &format!("{}/{id}", user.username),
            "success",
            "",
        )
        .await;
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
    names::validate_label(&body.issuer, 1024).map_err(|e| ApiError::invalid("issuer", e))?;
    names::validate_label(&body.subject, 255).map_err(|e| ApiError::invalid("subject", e))?;
    let user = load_user(&state, &caller, &username, actions::USERS_LINK_SSO).await?;
    let link = portcullis_store::SsoLink {
        issuer: body.issuer,
        subject: body.subject,
    };
    let revoked = state
        .store
        .set_sso_link(&user.username, Some(&link))
        .await?;
    state
        .audit(
            &caller.user.username,
            "users.link-sso",
            &user.username,
            "success",
            &format!(
                "issuer {} subject {}; {revoked} login keys revoked",
                link.issuer, link.subject
            ),
        )
        .await;
    let user = state
        .store
        .get_user(&user.username)
        .await?
        .ok_or_else(ApiError::internal)?;
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
    let user = load_user(&state, &caller, &username, actions::USERS_LINK_SSO).await?;
    let revoked = state.store.set_sso_link(&user.username, None).await?;
    state
        .audit(
            &caller.user.username,
            "users.link-sso",
            &user.username,
            "success",
            &format!("unlinked; {revoked} login keys revoked"),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}
