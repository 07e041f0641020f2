//! Access tokens: a user's request for one, granting it (at most one active per user) and
//! revoking it. The tokens themselves are API keys of kind `access-token`.

use crate::{now_ms, ApiKey, NewKeyRecord, Result, Store, StoreError};
use portcullis_core::{AccessTokenStatus, KeyKind};

impl Store {
    /// A user asks for an access token: status `requested` unless one is active.
    /// Returns the status after the call.
    pub async fn request_access_token(&self, username: &str) -> Result<AccessTokenStatus> {
        let _g = self.write_guard().await;
        let r = sqlx::query(
            "UPDATE users SET access_token_status = 'requested' WHERE username = $1 AND (access_token_status IS NULL OR access_token_status <> 'active')",
        )
        .bind(username)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 && self.get_user(username).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let user = self.get_user(username).await?.ok_or(StoreError::NotFound)?;
        user.access_token_status.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "{username}: no access token status after a request"
            ))
        })
    }

    /// Grant an access token: in one transaction, lock the user row (its status update
    /// comes first, so a concurrent grant on any server waits), revoke every active
    /// access-token key of the user, insert the new one. At most one stays active.
    pub async fn grant_access_token(&self, key: &NewKeyRecord<'_>) -> Result<ApiKey> {
        let _g = self.write_guard().await;
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("UPDATE users SET access_token_status = 'active' WHERE username = $1")
            .bind(key.username)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE username = $2 AND kind = 'access-token' AND revoked_at IS NULL")
            .bind(now)
            .bind(key.username)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO api_keys (id, username, name, kind, digest, created_at, expires_at) VALUES ($1, $2, $3, 'access-token', $4, $5, $6)")
            .bind(key.id)
            .bind(key.username)
            .bind(key.name)
            .bind(key.digest)
            .bind(now)
            .bind(key.expires_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ApiKey {
            id: key.id.into(),
            username: key.username.into(),
            name: key.name.into(),
            kind: KeyKind::AccessToken,
            created_at: now,
            last_used_at: None,
            expires_at: key.expires_at,
            revoked_at: None,
        })
    }

    /// Revoke the user's access token: status `revoked`, every access-token key revoked.
    /// Returns the number of keys revoked.
    pub async fn revoke_access_token(&self, username: &str) -> Result<u64> {
        let _g = self.write_guard().await;
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query("UPDATE users SET access_token_status = 'revoked' WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let n = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE username = $2 AND kind = 'access-token' AND revoked_at IS NULL")
            .bind(now)
            .bind(username)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }
}
