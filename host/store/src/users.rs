//! Users: creation, lookup, listing, patching and deletion; passwords (setting one, the
//! lockout counter, login bookkeeping); and the single sign-on link of a user.

use crate::rows::{user_from_row, USER_COLUMNS};
use crate::{
    is_unique_violation, json_list, json_map, now_ms, reserved_username, NewUser, Result, SsoLink,
    Store, StoreError, User, UserPatch,
};
use sqlx::Row;

impl Store {
    /// Number of users (the built-in ones included).
    pub async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    pub async fn create_user(&self, new: &NewUser) -> Result<User> {
        reserved_username(&new.username, &new.account)?;
        let _g = self.write_guard().await;
        // The account must exist and be enabled (not being deleted) at insert time.
        let now = now_ms();
        let r = sqlx::query(
            "INSERT INTO users (username, account, email, roles, attributes, password_hash, must_change_password, created_at, sso_issuer, sso_subject)
             SELECT $1, name, $2, $3, $4, $5, $6, $7, $9, $10 FROM accounts WHERE name = $8 AND state <> 'deleting'",
        )
        .bind(&new.username)
        .bind(new.email.as_deref())
        .bind(json_list(&new.roles))
        .bind(json_map(&new.attributes))
        .bind(new.password_hash.as_deref())
        .bind(new.must_change_password as i64)
        .bind(now)
        .bind(&new.account)
        .bind(new.sso.as_ref().map(|l| l.issuer.as_str()))
        .bind(new.sso.as_ref().map(|l| l.subject.as_str()))
        .execute(&self.pool)
        .await;
        match r {
            Ok(r) if r.rows_affected() == 1 => {}
            Ok(_) => return Err(StoreError::NotFound),
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(match &new.sso {
                    Some(_) if self.get_user(&new.username).await?.is_none() => {
                        "this single sign-on identity is already linked to another user".to_string()
                    }
                    _ => format!("username {} already exists", new.username),
                }))
            }
            Err(e) => return Err(e.into()),
        }
        drop(_g);
        self.get_user(&new.username)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// The user an SSO identity is linked to.
    pub async fn user_by_sso(&self, link: &SsoLink) -> Result<Option<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN accounts a ON a.name = u.account WHERE u.sso_issuer = $1 AND u.sso_subject = $2"
        );
        let row = sqlx::query(&sql)
            .bind(&link.issuer)
            .bind(&link.subject)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Link (or, with `None`, unlink) an SSO identity to a user. `Conflict` when the
    /// identity is linked to another user already. The user's login keys are revoked in
    /// the same transaction (an identity unlinked because it was compromised keeps no
    /// session); returns how many.
    pub async fn set_sso_link(&self, username: &str, link: Option<&SsoLink>) -> Result<u64> {
        let _g = self.write_guard().await;
        let mut tx = self.pool.begin().await?;
        let r =
            sqlx::query("UPDATE users SET sso_issuer = $1, sso_subject = $2 WHERE username = $3")
                .bind(link.map(|l| l.issuer.as_str()))
                .bind(link.map(|l| l.subject.as_str()))
                .bind(username)
                .execute(&mut *tx)
                .await;
        match r {
            Ok(r) if r.rows_affected() == 1 => {}
            Ok(_) => return Err(StoreError::NotFound),
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(
                    "this single sign-on identity is already linked to another user".into(),
                ))
            }
            Err(e) => return Err(e.into()),
        }
        let revoked = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE username = $2 AND kind IN ('login', 'session', 'console') AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(username)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(revoked)
    }

    /// Whether any user of the `admin` account exists (SSO waits for the first admin).
    pub async fn admin_exists(&self) -> Result<bool> {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE account = $1")
            .bind(portcullis_core::names::ADMIN_ACCOUNT)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(n > 0)
    }

    /// Up to `limit` users whose email is `email`, compared case-insensitively.
    pub async fn users_by_email(&self, email: &str, limit: i64) -> Result<Vec<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN accounts a ON a.name = u.account WHERE LOWER(u.email) = LOWER($1) ORDER BY u.username LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(email)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Up to `limit` users linked to an SSO identity with subject `subject`, of the issuer
    /// `issuer` (any issuer when `None`).
    pub async fn users_by_sso_subject(
        &self,
        subject: &str,
        issuer: Option<&str>,
        limit: i64,
    ) -> Result<Vec<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN accounts a ON a.name = u.account WHERE u.sso_subject = $1 AND ($2 = '' OR u.sso_issuer = $2) ORDER BY u.username LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(subject)
            .bind(issuer.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    pub async fn get_user(&self, username: &str) -> Result<Option<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN accounts a ON a.name = u.account WHERE u.username = $1"
        );
        let row = sqlx::query(&sql)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Users ordered by username; only those of `account` when given.
    pub async fn list_users(
        &self,
        account: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN accounts a ON a.name = u.account WHERE u.username > $1 AND ($2 = '' OR u.account = $2) ORDER BY u.username LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(after.unwrap_or(""))
            .bind(account.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    pub async fn update_user(&self, username: &str, patch: &UserPatch) -> Result<()> {
        let _g = self.write_guard().await;
        let r = sqlx::query(
            "UPDATE users SET
               email = CASE WHEN $1 = 1 THEN $2 ELSE email END,
               roles = COALESCE($3, roles),
               attributes = COALESCE($4, attributes),
               failed_logins = CASE WHEN $6 = 1 THEN 0 ELSE failed_logins END,
               locked_until = CASE WHEN $6 = 1 THEN NULL ELSE locked_until END
             WHERE username = $5",
        )
        .bind(patch.email.is_some() as i64)
        .bind(patch.email.clone().flatten())
        .bind(patch.roles.as_ref().map(|r| json_list(r)))
        .bind(patch.attributes.as_ref().map(json_map))
        .bind(username)
        .bind(patch.unlock as i64)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Delete a user and every key of it, in one transaction.
    pub async fn delete_user(&self, username: &str) -> Result<()> {
        let _g = self.write_guard().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM api_keys WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM users WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Set a password hash, the forced-change flag, clear lockout, and revoke every key
    /// of the user except `keep_key` — all in one transaction. Returns the number of keys
    /// revoked.
    pub async fn set_password(
        &self,
        username: &str,
        phc: &str,
        must_change: bool,
        keep_key: Option<&str>,
    ) -> Result<u64> {
        let _g = self.write_guard().await;
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE users SET password_hash = $1, must_change_password = $2, failed_logins = 0, locked_until = NULL WHERE username = $3",
        )
        .bind(phc)
        .bind(must_change as i64)
        .bind(username)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let revoked = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE username = $2 AND revoked_at IS NULL AND id <> $3")
            .bind(now)
            .bind(username)
            .bind(keep_key.unwrap_or(""))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if revoked > 0 {
            sqlx::query("UPDATE users SET access_token_status = 'revoked' WHERE username = $1 AND access_token_status = 'active' AND NOT EXISTS (SELECT 1 FROM api_keys WHERE username = $1 AND kind = 'access-token' AND revoked_at IS NULL)")
                .bind(username)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(revoked)
    }

    /// Reserve one password check for `username` *before* hashing: counts it as a
    /// failure up front (a success resets the count) and locks the user for `lock_ms`
    /// once `threshold` checks in a row are reserved. `false` while the user is locked:
    /// the caller must not check the password at all. One conditional statement, so a
    /// burst of parallel guesses — on one server or several — gets at most `threshold`
    /// checks per lock window.
    pub async fn reserve_password_attempt(
        &self,
        username: &str,
        threshold: i64,
        lock_ms: i64,
    ) -> Result<bool> {
        let _g = self.write_guard().await;
        let now = now_ms();
        // A row that passes the WHERE with `locked_until` set holds an expired lock: its
        // streak starts again from zero.
        let row = sqlx::query(
            "UPDATE users SET
               failed_logins = (CASE WHEN locked_until IS NULL THEN failed_logins ELSE 0 END) + 1,
               locked_until = CASE WHEN (CASE WHEN locked_until IS NULL THEN failed_logins ELSE 0 END) + 1 >= $1
                                   THEN $2 ELSE NULL END
             WHERE username = $3 AND (locked_until IS NULL OR locked_until <= $4)
             RETURNING failed_logins",
        )
        .bind(threshold)
        .bind(now + lock_ms)
        .bind(username)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Stamp `last_login_at` without touching the password streak or a lock (SSO).
    pub async fn touch_last_login(&self, username: &str) -> Result<i64> {
        let _g = self.quiet_write_guard().await;
        let now = now_ms();
        sqlx::query("UPDATE users SET last_login_at = $1 WHERE username = $2")
            .bind(now)
            .bind(username)
            .execute(&self.pool)
            .await?;
        Ok(now)
    }

    /// A successful login: reset the failure counter, set `last_login_at`, and store a
    /// re-hashed password when the old parameters were weaker.
    pub async fn record_login_success(&self, username: &str, rehash: Option<&str>) -> Result<i64> {
        let _g = self.write_guard().await;
        let now = now_ms();
        sqlx::query(
            "UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = $1, password_hash = COALESCE($2, password_hash) WHERE username = $3",
        )
        .bind(now)
        .bind(rehash)
        .bind(username)
        .execute(&self.pool)
        .await?;
        Ok(now)
    }
}
