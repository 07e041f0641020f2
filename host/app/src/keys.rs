//! Personal API keys: issue (the one place a key is made: login keys, personal keys,
//! access tokens and the first admin's key all come from [`issue`]), list, create with a
//! lifetime, revoke.

use crate::audit::Audit;
use crate::caller::Caller;
use crate::error::{AppError, AppResult};
use crate::users::load_user;
use crate::App;
use portcullis_core::authz::actions;
use portcullis_core::{keys, names, AuditAction, KeyKind};
use portcullis_store::{now_ms, ApiKey, NewKeyRecord, Store, StoreError};

/// The longest lifetime a personal key may be given.
pub const MAX_KEY_LIFETIME_MS: i64 = 10 * 366 * 24 * 3600 * 1000;

/// A new key: the secret (shown once, never stored) and its record.
pub struct Issued {
    pub secret: String,
    pub key: ApiKey,
}

/// Create a key of `kind` for `username` and store its digest. An access token replaces
/// the user's earlier one (and sets its status `active`).
pub async fn issue(
    store: &Store,
    username: &str,
    name: &str,
    kind: KeyKind,
    expires_at: Option<i64>,
) -> AppResult<Issued> {
    let key = keys::generate();
    let record = NewKeyRecord {
        id: &key.id,
        username,
        name,
        kind,
        digest: &key.digest,
        expires_at,
    };
    let stored = match kind {
        KeyKind::AccessToken => store.grant_access_token(&record).await?,
        _ => store.insert_key(&record).await?,
    };
    Ok(Issued {
        secret: key.secret,
        key: stored,
    })
}

/// How long a new key lives, as a client may give it.
#[derive(Debug, Clone)]
pub enum Lifetime {
    Seconds(u64),
    /// JSON has one number type: `86400.0` is an integer too; a fraction is refused.
    Float(f64),
    /// A duration such as `"30d"`.
    Text(String),
}

/// A key lifetime in text: digits and one unit, `s`, `m`, `h`, `d` or `w` (`"30d"`), in
/// milliseconds. Exactly what the OpenAPI document's lifetime pattern states (the number
/// of digits per unit keeps every match within ten years); longer lifetimes are given in
/// seconds.
pub fn parse_lifetime(text: &str) -> Option<i64> {
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

/// The lifetime in milliseconds, between 1 second and [`MAX_KEY_LIFETIME_MS`].
pub fn lifetime_ms(lifetime: Option<Lifetime>) -> AppResult<Option<i64>> {
    let ms = match lifetime {
        None => return Ok(None),
        Some(Lifetime::Seconds(s)) => s.saturating_mul(1000).min(i64::MAX as u64) as i64,
        Some(Lifetime::Float(f)) if f.fract() == 0.0 && f >= 0.0 => (f.min(1e15) * 1000.0) as i64,
        Some(Lifetime::Float(_)) => {
            return Err(AppError::invalid(
                "expires_in",
                "must be a whole number of seconds",
            ))
        }
        Some(Lifetime::Text(t)) => parse_lifetime(&t).ok_or_else(|| {
            AppError::invalid(
                "expires_in",
                format!("{t:?} is not a duration like \"30d\" (a number and one of s, m, h, d, w)"),
            )
        })?,
    };
    if !(1000..=MAX_KEY_LIFETIME_MS).contains(&ms) {
        return Err(AppError::invalid(
            "expires_in",
            "must be between 1 second and 10 years",
        ));
    }
    Ok(Some(ms))
}

/// A user's keys (never their secrets).
pub async fn list(app: &App, caller: &Caller, username: &str) -> AppResult<Vec<ApiKey>> {
    let user = load_user(app, caller, username, actions::KEYS_LIST).await?;
    Ok(app.store.list_keys(&user.username).await?)
}

/// A personal key for `username`, named `name`, living `lifetime` (or forever).
pub async fn create(
    app: &App,
    caller: &Caller,
    username: &str,
    name: &str,
    lifetime: Option<Lifetime>,
) -> AppResult<Issued> {
    names::validate_label(name, 128).map_err(|e| AppError::invalid("name", e))?;
    let ttl_ms = lifetime_ms(lifetime)?;
    let user = load_user(app, caller, username, actions::KEYS_CREATE).await?;
    let expires_at = ttl_ms.map(|ms| now_ms() + ms);
    let issued = issue(
        &app.store,
        &user.username,
        name,
        KeyKind::Personal,
        expires_at,
    )
    .await?;
    let target = format!("{}/{}", user.username, issued.key.id);
    app.audit(Audit::success(
        &caller.user.username,
        AuditAction::KeysCreate,
        &target,
    ))
    .await;
    Ok(issued)
}

/// Revoke one of a user's keys: it fails from the next request on.
pub async fn revoke(app: &App, caller: &Caller, username: &str, id: &str) -> AppResult<()> {
    let user = load_user(app, caller, username, actions::KEYS_DELETE).await?;
    app.store
        .revoke_key(&user.username, id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AppError::not_found(format!("key {id}")),
            other => other.into(),
        })?;
    let target = format!("{}/{id}", user.username);
    app.audit(Audit::success(
        &caller.user.username,
        AuditAction::KeysDelete,
        &target,
    ))
    .await;
    Ok(())
}
