//! The Initial Admin Creation Token (IACT): storing its digest, reading it while unused,
//! and redeeming it exactly once to create the first admin user.

use crate::{json_list, json_map, now_ms, NewUser, RedeemOutcome, Result, Store};
use sqlx::Row;

impl Store {
    /// Store an Initial Admin Creation Token digest unless one exists already (another
    /// server sharing the database may have created it); returns whether this one was
    /// stored.
    pub async fn put_iact(&self, digest: &str) -> Result<bool> {
        let _g = self.write_guard().await;
        let r = sqlx::query("INSERT INTO iact (id, digest, created_at, used_at) VALUES (1, $1, $2, NULL) ON CONFLICT (id) DO NOTHING")
            .bind(digest)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The IACT digest while it is unused.
    pub async fn live_iact(&self) -> Result<Option<String>> {
        let row = sqlx::query("SELECT digest FROM iact WHERE id = 1 AND used_at IS NULL")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("digest")).transpose()?)
    }

    /// Redeem the IACT and create the first admin user, exactly once: the token is marked
    /// used by a conditional UPDATE inside the same transaction that inserts the user, so
    /// of any number of concurrent callers (on any number of servers) one wins.
    pub async fn redeem_iact(&self, digest: &str, new: &NewUser) -> Result<RedeemOutcome> {
        let _g = self.write_guard().await;
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "UPDATE iact SET used_at = $1 WHERE id = 1 AND digest = $2 AND used_at IS NULL",
        )
        .bind(now_ms())
        .bind(digest)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            return Ok(RedeemOutcome::BadToken);
        }
        let users: i64 = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if users > 0 {
            return Ok(RedeemOutcome::UsersExist);
        }
        sqlx::query(
            "INSERT INTO users (username, account, email, roles, attributes, password_hash, must_change_password, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&new.username)
        .bind(&new.account)
        .bind(new.email.as_deref())
        .bind(json_list(&new.roles))
        .bind(json_map(&new.attributes))
        .bind(new.password_hash.as_deref())
        .bind(new.must_change_password as i64)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RedeemOutcome::Created)
    }
}
