//! Authentication of `/v1` calls: `Authorization: Bearer <key>` → the calling user.

use crate::error::ApiError;
use crate::state::{principal_of, SharedState};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use portcullis_core::authz::Principal;
use portcullis_core::{keys, AccountState};
use portcullis_store::{now_ms, ApiKey, User};

/// `last_used_at` is written at most this often per key.
const TOUCH_EVERY_MS: i64 = 60_000;

/// An authenticated caller: the key used and its user (with the account's type and state).
#[derive(Debug, Clone)]
pub struct Caller {
    pub key: ApiKey,
    pub user: User,
    pub principal: Principal,
}

/// Like [`Caller`], but also accepted while the user must change its password (logout).
#[derive(Debug, Clone)]
pub struct AnyCaller(pub Caller);

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

async fn authenticate(parts: &Parts, state: &SharedState) -> Result<Caller, ApiError> {
    let presented = bearer(parts).ok_or_else(ApiError::unauthorized)?;
    // Shape and checksum first: garbage never reaches the database.
    let id = keys::parse(presented).ok_or_else(ApiError::unauthorized)?;
    // The epoch is read before the store, so a write that lands in between invalidates
    // what this request caches.
    let epoch = state.store.auth_epoch();
    let (key, digest, user) = match state.verified.key(id, epoch) {
        Some(record) => {
            state.metrics.key_lookups_memory.inc();
            record
        }
        None => {
            state.metrics.key_lookups_store.inc();
            let record = state
                .store
                .lookup_key(id)
                .await?
                .ok_or_else(ApiError::unauthorized)?;
            state.verified.put_key(id, record.clone(), epoch);
            record
        }
    };
    if !keys::digest_eq(&keys::digest(presented), &digest) {
        return Err(ApiError::unauthorized());
    }
    let now = now_ms();
    if key.revoked_at.is_some() || key.expires_at.is_some_and(|t| t <= now) {
        return Err(ApiError::unauthorized());
    }
    if user.account_state != AccountState::Enabled {
        return Err(ApiError::unauthorized());
    }
    if key.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY_MS) {
        state.verified.touched(&key.id, now);
        let store = state.store.clone();
        let id = key.id.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch_key(&id, now).await {
                tracing::warn!(error = %e, key_id = %id, "could not record key use");
            }
        });
    }
    let principal = principal_of(&user);
    Ok(Caller {
        key,
        user,
        principal,
    })
}

impl FromRequestParts<SharedState> for AnyCaller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        authenticate(parts, state).await.map(AnyCaller)
    }
}

impl FromRequestParts<SharedState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let caller = authenticate(parts, state).await?;
        if caller.user.must_change_password {
            return Err(ApiError::password_change_required());
        }
        Ok(caller)
    }
}
