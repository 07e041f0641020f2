//! API keys: issuing, the one-query lookup that authenticates a request, use stamps,
//! listing, counting and revocation. (Access tokens, a kind of key with a per-user status,
//! are in `tokens`.)

use crate::rows::{api_key_from_row, user_from_row, USER_COLUMNS};
use crate::{now_ms, ApiKey, NewKeyRecord, Result, Store, StoreError, User};
use sqlx::Row;

impl Store {
    pub async fn insert_key(&self, key: &NewKeyRecord<'_>) -> Result<ApiKey> {
        let _g = self.write_guard().await;
        let now = now_ms();
        let r = sqlx::query(
            "INSERT INTO api_keys (id, username, name, kind, digest, created_at, expires_at)
             SELECT $1, username, $2, $3, $4, $5, $6 FROM users WHERE username = $7",
        )
        .bind(key.id)
        .bind(key.name)
        .bind(key.kind.as_str())
        .bind(key.digest)
        .bind(now)
        .bind(key.expires_at)
        .bind(key.username)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(ApiKey {
            id: key.id.into(),
            username: key.username.into(),
            name: key.name.into(),
            kind: key.kind,
            created_at: now,
            last_used_at: None,
            expires_at: key.expires_at,
            revoked_at: None,
        })
    }

    /// Everything needed to authenticate a request, in one query: the key, its digest,
    /// its user and the user's account.
    pub async fn lookup_key(&self, id: &str) -> Result<Option<(ApiKey, String, User)>> {
        let sql = format!(
            "SELECT k.id, k.username, k.name, k.kind, k.digest, k.created_at AS key_created_at, k.last_used_at, k.expires_at, k.revoked_at, {USER_COLUMNS}
             FROM api_keys k JOIN users u ON u.username = k.username JOIN accounts a ON a.name = u.account WHERE k.id = $1"
        );
        let Some(row) = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let key = api_key_from_row(&row, "key_created_at")?;
        let digest: String = row.try_get("digest")?;
        Ok(Some((key, digest, user_from_row(&row)?)))
    }

    /// Record use of a key; callers throttle this to once a minute per key.
    pub async fn touch_key(&self, id: &str, at: i64) -> Result<()> {
        let _g = self.quiet_write_guard().await;
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Keys of a user (revoked ones included), newest first.
    pub async fn list_keys(&self, username: &str) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(
            "SELECT id, username, name, kind, created_at, last_used_at, expires_at, revoked_at FROM api_keys WHERE username = $1 ORDER BY created_at DESC, id",
        )
        .bind(username)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| api_key_from_row(r, "created_at"))
            .collect()
    }

    /// Active (not revoked, not expired) keys of a user.
    pub async fn count_active_keys(&self, username: &str) -> Result<i64> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM api_keys WHERE username = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(username)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?)
    }

    /// Revoke one key of a user; NotFound when the user has no such key.
    pub async fn revoke_key(&self, username: &str, id: &str) -> Result<()> {
        let _g = self.write_guard().await;
        let r = sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND username = $3")
            .bind(now_ms())
            .bind(id)
            .bind(username)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
