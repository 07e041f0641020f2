//! The audit log: appending entries, retention (pruning), and listing with filters.

use crate::rows::audit_entry_from_row;
use crate::{now_ms, AuditEntry, AuditFilter, NewAudit, Result, Store};
use sqlx::Row;

impl Store {
    pub async fn append_audit(&self, e: &NewAudit<'_>) -> Result<()> {
        let _g = self.quiet_write_guard().await;
        sqlx::query("INSERT INTO audit (at, actor, action, target, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(now_ms())
            .bind(e.actor)
            .bind(e.action)
            .bind(e.target)
            .bind(e.outcome)
            .bind(e.detail)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Audit retention: delete entries older than `before` (Unix ms), then the oldest
    /// beyond the newest `keep` entries. Returns how many went.
    pub async fn prune_audit(&self, before: i64, keep: i64) -> Result<u64> {
        // Everything to delete is at or below one id: the newer of "older than `before`"
        // and "beyond the newest `keep`" (ids grow with time).
        let newest: Option<i64> = sqlx::query("SELECT MAX(id) AS id FROM audit")
            .fetch_one(&self.pool)
            .await?
            .try_get("id")?;
        let Some(newest) = newest else { return Ok(0) };
        let by_age: Option<i64> = sqlx::query("SELECT MAX(id) AS id FROM audit WHERE at < $1")
            .bind(before)
            .fetch_one(&self.pool)
            .await?
            .try_get("id")?;
        let upto = by_age.unwrap_or(0).max(newest - keep);
        // In batches, each its own short write: a large backlog (an upgrade, a flood)
        // never holds the write lock for long, and logins go on between batches.
        const BATCH: i64 = 5_000;
        let mut gone = 0;
        loop {
            let _g = self.quiet_write_guard().await;
            let n = sqlx::query(
                "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE id <= $1 ORDER BY id LIMIT $2)",
            )
            .bind(upto)
            .bind(BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected();
            gone += n;
            if (n as i64) < BATCH {
                return Ok(gone);
            }
        }
    }

    /// Audit entries in order, after id `after`, matching the filter.
    pub async fn list_audit(
        &self,
        after: i64,
        limit: i64,
        f: &AuditFilter,
    ) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target, outcome, detail FROM audit
             WHERE id > $1 AND ($2 = '' OR actor = $2) AND ($3 = '' OR action = $3) AND at >= $4
             ORDER BY id LIMIT $5",
        )
        .bind(after)
        .bind(f.actor.as_deref().unwrap_or(""))
        .bind(f.action.as_deref().unwrap_or(""))
        .bind(f.since.unwrap_or(0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_entry_from_row).collect()
    }
}
