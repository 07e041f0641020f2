//! Application policies (SPEC §11): one row per named policy, each an authorizer state of
//! its own (active plugin and settings, optional shadow).

use crate::rows::authorizer_state_from_row;
use crate::{AuthorizerState, Result, Store};
use sqlx::Row;

const COLUMNS: &str = "name, version, active_id, active_settings, active_since, shadow_id, shadow_settings, shadow_since, changed_by";

impl Store {
    /// Every policy, by name.
    pub async fn list_policies(&self) -> Result<Vec<(String, AuthorizerState)>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM policies ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, authorizer_state_from_row(r)?)))
            .collect()
    }

    /// One policy.
    pub async fn get_policy(&self, name: &str) -> Result<Option<AuthorizerState>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM policies WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(authorizer_state_from_row).transpose()
    }

    /// How many policies there are.
    pub async fn count_policies(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM policies")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Create or replace a policy, bumping its version; returns the new version.
    pub async fn put_policy(&self, name: &str, s: &AuthorizerState, now: i64) -> Result<i64> {
        let _g = self.write_guard().await;
        let row = sqlx::query(
            "INSERT INTO policies (name, version, active_id, active_settings, active_since, shadow_id, shadow_settings, shadow_since, changed_by, created_at)
             VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (name) DO UPDATE SET version = policies.version + 1, active_id = excluded.active_id,
               active_settings = excluded.active_settings, active_since = excluded.active_since, shadow_id = excluded.shadow_id,
               shadow_settings = excluded.shadow_settings, shadow_since = excluded.shadow_since, changed_by = excluded.changed_by
             RETURNING version",
        )
        .bind(name)
        .bind(&s.active_id)
        .bind(&s.active_settings)
        .bind(s.active_since)
        .bind(s.shadow_id.as_deref())
        .bind(s.shadow_settings.as_deref())
        .bind(s.shadow_since)
        .bind(&s.changed_by)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("version")?)
    }

    /// Delete a policy; whether it existed.
    pub async fn delete_policy(&self, name: &str) -> Result<bool> {
        let _g = self.write_guard().await;
        let r = sqlx::query("DELETE FROM policies WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}
