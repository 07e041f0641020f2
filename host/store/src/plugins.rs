//! The plugin store (uploaded WebAssembly components, by digest) and the authorizer state:
//! which plugin every server sharing the database should run, versioned so servers notice.

use crate::rows::{authorizer_state_from_row, plugin_from_row};
use crate::{is_unique_violation, AuthorizerState, PluginRecord, Result, Store, StoreError};
use sqlx::Row;

impl Store {
    /// Store a plugin unless one with the same digest exists; returns the record and
    /// whether it was created.
    pub async fn put_plugin(
        &self,
        rec: &PluginRecord,
        wasm: &[u8],
    ) -> Result<(PluginRecord, bool)> {
        let _g = self.write_guard().await;
        let r = sqlx::query(
            "INSERT INTO plugins (id, name, digest, size, world_version, wasm, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (digest) DO NOTHING",
        )
        .bind(&rec.id)
        .bind(&rec.name)
        .bind(&rec.digest)
        .bind(rec.size)
        .bind(&rec.world_version)
        .bind(wasm)
        .bind(rec.created_at)
        .bind(&rec.created_by)
        .execute(&self.pool)
        .await;
        let created = match r {
            Ok(r) => r.rows_affected() == 1,
            // The same id from another digest cannot happen (ids are digest prefixes) unless
            // two uploads race on one digest: then the row is there either way.
            Err(e) if is_unique_violation(&e) => false,
            Err(e) => return Err(e.into()),
        };
        drop(_g);
        let stored = self
            .get_plugin_by_digest(&rec.digest)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok((stored, created))
    }

    async fn get_plugin_by_digest(&self, digest: &str) -> Result<Option<PluginRecord>> {
        let row = sqlx::query("SELECT id, name, digest, size, world_version, created_at, created_by FROM plugins WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(plugin_from_row).transpose()
    }

    pub async fn count_plugins(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM plugins")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    pub async fn get_plugin(&self, id: &str) -> Result<Option<PluginRecord>> {
        let row = sqlx::query("SELECT id, name, digest, size, world_version, created_at, created_by FROM plugins WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(plugin_from_row).transpose()
    }

    pub async fn plugin_wasm(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT wasm FROM plugins WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("wasm")).transpose()?)
    }

    pub async fn list_plugins(&self, after: Option<&str>, limit: i64) -> Result<Vec<PluginRecord>> {
        let rows = sqlx::query(
            "SELECT id, name, digest, size, world_version, created_at, created_by FROM plugins WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(plugin_from_row).collect()
    }

    pub async fn authorizer_state(&self) -> Result<Option<AuthorizerState>> {
        let row = sqlx::query(
            "SELECT version, active_id, active_settings, active_since, shadow_id, shadow_settings, shadow_since, changed_by FROM authorizer_state WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(authorizer_state_from_row).transpose()
    }

    /// The version of the authorizer state (0 when never set): servers poll this.
    pub async fn authorizer_version(&self) -> Result<i64> {
        let row = sqlx::query("SELECT version FROM authorizer_state WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("version")).transpose()?.unwrap_or(0))
    }

    /// Write the authorizer state, bumping its version; returns the new version.
    pub async fn set_authorizer_state(&self, s: &AuthorizerState) -> Result<i64> {
        let _g = self.write_guard().await;
        let row = sqlx::query(
            "INSERT INTO authorizer_state (id, version, active_id, active_settings, active_since, shadow_id, shadow_settings, shadow_since, changed_by)
             VALUES (1, 1, $1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET version = authorizer_state.version + 1, active_id = excluded.active_id,
               active_settings = excluded.active_settings, active_since = excluded.active_since, shadow_id = excluded.shadow_id,
               shadow_settings = excluded.shadow_settings, shadow_since = excluded.shadow_since, changed_by = excluded.changed_by
             RETURNING version",
        )
        .bind(&s.active_id)
        .bind(&s.active_settings)
        .bind(s.active_since)
        .bind(s.shadow_id.as_deref())
        .bind(s.shadow_settings.as_deref())
        .bind(s.shadow_since)
        .bind(&s.changed_by)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("version")?)
    }
}
