//! The store: the only crate that knows SQL. One code path serves SQLite and PostgreSQL
//! through sqlx's `Any` driver with runtime queries (`$1` placeholders work on both);
//! each backend has its own migrations under `migrations/<backend>/`.
//!
//! Times are Unix milliseconds. Secrets never reach this crate: callers hand in digests
//! and PHC strings.

mod records;

pub use records::*;

use portcullis_core::{AccountState, AccountType, KeyKind};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{Mutex, MutexGuard};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("invalid state: {0}")]
    State(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time and answers "database is locked" when a read
    /// transaction tries to become a write transaction; serialising our own write
    /// transactions in-process avoids that. PostgreSQL needs no such lock.
    write_lock: Arc<Mutex<()>>,
    /// Bumped after every write that may change who a key belongs to or whether it works
    /// (see [`Store::auth_epoch`]).
    epoch: Arc<AtomicU64>,
}

/// Held for the length of a write; on drop (after the write committed or failed) it bumps
/// the store's auth epoch, so a cache entry read before the write can never outlive it.
struct WriteGuard<'a> {
    _lock: Option<MutexGuard<'a, ()>>,
    epoch: Option<&'a AtomicU64>,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if let Some(epoch) = self.epoch {
            epoch.fetch_add(1, Ordering::Release);
        }
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation()
                || d.code().as_deref() == Some("2067")
                || d.code().as_deref() == Some("1555")
                || d.code().as_deref() == Some("23505")
        }
        _ => false,
    }
}

/// The username `admin` belongs to the admin account only (SPEC §10): nobody can squat it
/// in another account where `recover-admin-user` or an operator would mistake it.
fn reserved_username(username: &str, account: &str) -> Result<()> {
    if username == portcullis_core::names::ADMIN_USER
        && account != portcullis_core::names::ADMIN_ACCOUNT
    {
        return Err(StoreError::Conflict(format!(
            "the username {username} is reserved for the admin account"
        )));
    }
    Ok(())
}

fn parse_enum<T: FromStr<Err = String>>(value: &str, what: &str) -> Result<T> {
    value
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("{what} {value:?}: {e}")))
}

impl Store {
    /// Connect and run migrations. `url` is `sqlite://PATH` or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Db(sqlx::Error::Configuration(
                "database_url must start with sqlite:// or postgres://".into(),
            )));
        };
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let url = if backend == Backend::Sqlite {
            options = options.max_connections(8).after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL for concurrent readers; NORMAL sync is durable against process
                    // crashes (kill -9) in WAL mode; wait rather than fail on a busy lock
                    // (another process, e.g. `server --recover-admin-user`).
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;")
                        .await?;
                    Ok(())
                })
            });
            if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            }
        } else {
            options = options.max_connections(16);
            url.to_string()
        };
        let pool = options.connect(&url).await?;
        let store = Store {
            pool,
            backend,
            write_lock: Arc::new(Mutex::new(())),
            epoch: Arc::new(AtomicU64::new(0)),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// SQLite: `PRAGMA integrity_check` (returns its report, `ok` when sound); PostgreSQL:
    /// the server answers (its own checks are the server's business).
    pub async fn integrity_check(&self) -> Result<String> {
        match self.backend {
            Backend::Sqlite => {
                let rows = sqlx::query("PRAGMA integrity_check")
                    .fetch_all(&self.pool)
                    .await?;
                let lines: Vec<String> = rows
                    .iter()
                    .map(|r| r.try_get::<String, _>(0))
                    .collect::<Result<_, _>>()?;
                Ok(lines.join("\n"))
            }
            Backend::Postgres => {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok("ok".into())
            }
        }
    }

    /// The migrations applied to this database, in order.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>> {
        let rows =
            sqlx::query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("version"))
            .collect::<Result<_, _>>()?)
    }

    /// The migrations this build carries for its backend (the latest schema).
    pub fn known_migrations(&self) -> Vec<i64> {
        let m = match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        m.iter().map(|m| m.version).collect()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// A counter that changes after every write made through this `Store` (this process)
    /// to accounts, users or keys, except `last_used_at` and the audit log. Caches of
    /// verified keys and subjects remember the epoch they read at and are valid only while it
    /// is unchanged: revocation, deletion, disabling and role changes are seen on the next
    /// request. Read the epoch *before* reading the store.
    pub fn auth_epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    async fn write_guard(&self) -> WriteGuard<'_> {
        WriteGuard {
            _lock: self.write_lock_for_backend().await,
            epoch: Some(&self.epoch),
        }
    }

    /// A write that changes nothing a key's verification depends on (`last_used_at`, audit).
    async fn quiet_write_guard(&self) -> WriteGuard<'_> {
        WriteGuard {
            _lock: self.write_lock_for_backend().await,
            epoch: None,
        }
    }

    async fn write_lock_for_backend(&self) -> Option<MutexGuard<'_, ()>> {
        match self.backend {
            Backend::Sqlite => Some(self.write_lock.lock().await),
            Backend::Postgres => None,
        }
    }

    // ----------------------------------------------------------------- accounts

    /// Create an account unless one of that name exists; returns whether it was created.
    pub async fn ensure_account(
        &self,
        name: &str,
        email: Option<&str>,
        kind: AccountType,
    ) -> Result<bool> {
        let _g = self.write_guard().await;
        let r = sqlx::query(
            "INSERT INTO accounts (name, email, type, state, created_at) VALUES ($1, $2, $3, 'enabled', $4) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(email)
        .bind(kind.as_str())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn create_account(
        &self,
        name: &str,
        email: Option<&str>,
        kind: AccountType,
    ) -> Result<Account> {
        let _g = self.write_guard().await;
        let now = now_ms();
        let r = sqlx::query("INSERT INTO accounts (name, email, type, state, created_at) VALUES ($1, $2, $3, 'enabled', $4)")
            .bind(name)
            .bind(email)
            .bind(kind.as_str())
            .bind(now)
            .execute(&self.pool)
            .await;
        match r {
            Ok(_) => Ok(Account {
                name: name.into(),
                email: email.map(Into::into),
                kind,
                state: AccountState::Enabled,
                created_at: now,
            }),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "account {name} already exists"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    fn account_from_row(row: &AnyRow) -> Result<Account> {
        Ok(Account {
            name: row.try_get("name")?,
            email: row.try_get("email")?,
            kind: parse_enum(&row.try_get::<String, _>("type")?, "account type")?,
            state: parse_enum(&row.try_get::<String, _>("state")?, "account state")?,
            created_at: row.try_get("created_at")?,
        })
    }

    pub async fn get_account(&self, name: &str) -> Result<Option<Account>> {
        let row = sqlx::query(
            "SELECT name, email, type, state, created_at FROM accounts WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::account_from_row).transpose()
    }

    /// Accounts ordered by name, after `after`, hiding `hidden` (the system account).
    pub async fn list_accounts(
        &self,
        after: Option<&str>,
        limit: i64,
        hidden: &str,
    ) -> Result<Vec<Account>> {
        let rows = sqlx::query(
            "SELECT name, email, type, state, created_at FROM accounts WHERE name > $1 AND name <> $2 ORDER BY name LIMIT $3",
        )
        .bind(after.unwrap_or(""))
        .bind(hidden)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(Self::account_from_row).collect()
    }

    /// Set the state of an account (`enabled`/`disabled`). The caller has checked the
    /// transition; the `state <> 'deleting'` guard keeps a racing delete from being undone.
    pub async fn set_account_state(&self, name: &str, state: AccountState) -> Result<()> {
        let _g = self.write_guard().await;
        let r =
            sqlx::query("UPDATE accounts SET state = $1 WHERE name = $2 AND state <> 'deleting'")
                .bind(state.as_str())
                .bind(name)
                .execute(&self.pool)
                .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::State(format!(
                "account {name} is being deleted or is gone"
            )));
        }
        Ok(())
    }

    /// First half of account deletion, in one transaction: `disabled` → `deleting`, and
    /// every user of the account and every key of those users is removed. Returns the
    /// usernames removed.
    pub async fn begin_delete_account(&self, name: &str) -> Result<Vec<String>> {
        let _g = self.write_guard().await;
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE accounts SET state = 'deleting' WHERE name = $1 AND state = 'disabled'",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::State(format!("account {name} is not disabled")));
        }
        let users: Vec<String> = sqlx::query("SELECT username FROM users WHERE account = $1")
            .bind(name)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("username"))
            .collect::<Result<_, _>>()?;
        sqlx::query("DELETE FROM api_keys WHERE username IN (SELECT username FROM users WHERE account = $1)")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM users WHERE account = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(users)
    }

    /// Second half: remove whatever is left (users created by a racing request) and the
    /// account row itself. Safe to run again after a crash.
    pub async fn finish_delete_account(&self, name: &str) -> Result<()> {
        let _g = self.write_guard().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM api_keys WHERE username IN (SELECT u.username FROM users u JOIN accounts a ON a.name = u.account WHERE a.name = $1 AND a.state = 'deleting')",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM users WHERE account IN (SELECT name FROM accounts WHERE name = $1 AND state = 'deleting')")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM accounts WHERE name = $1 AND state = 'deleting'")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn accounts_being_deleted(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM accounts WHERE state = 'deleting'")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("name"))
            .collect::<Result<_, _>>()?)
    }

    // -------------------------------------------------------------------- users

    /// Number of users outside `except_account` (the hidden system account).
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

    const USER_COLUMNS: &'static str = "u.username, u.account, u.email, u.roles, u.attributes, u.password_hash, u.must_change_password, u.failed_logins, u.locked_until, u.last_login_at, u.access_token_status, u.created_at, u.sso_issuer, u.sso_subject, a.type AS account_type, a.state AS account_state";

    fn user_from_row(row: &AnyRow) -> Result<User> {
        let roles: String = row.try_get("roles")?;
        let attributes: String = row.try_get("attributes")?;
        Ok(User {
            username: row.try_get("username")?,
            account: row.try_get("account")?,
            email: row.try_get("email")?,
            roles: serde_json::from_str(&roles)
                .map_err(|e| StoreError::Corrupt(format!("roles: {e}")))?,
            attributes: serde_json::from_str(&attributes)
                .map_err(|e| StoreError::Corrupt(format!("attributes: {e}")))?,
            password_hash: row.try_get("password_hash")?,
            must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
            failed_logins: row.try_get("failed_logins")?,
            locked_until: row.try_get("locked_until")?,
            last_login_at: row.try_get("last_login_at")?,
            access_token_status: row.try_get("access_token_status")?,
            created_at: row.try_get("created_at")?,
            account_type: parse_enum(&row.try_get::<String, _>("account_type")?, "account type")?,
            account_state: parse_enum(
                &row.try_get::<String, _>("account_state")?,
                "account state",
            )?,
            sso: match (
                row.try_get::<Option<String>, _>("sso_issuer")?,
                row.try_get::<Option<String>, _>("sso_subject")?,
            ) {
                (Some(issuer), Some(subject)) => Some(SsoLink { issuer, subject }),
                _ => None,
            },
        })
    }

    /// The user an SSO identity is linked to.
    pub async fn user_by_sso(&self, link: &SsoLink) -> Result<Option<User>> {
        let sql = format!(
            "SELECT {} FROM users u JOIN accounts a ON a.name = u.account WHERE u.sso_issuer = $1 AND u.sso_subject = $2",
            Self::USER_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(&link.issuer)
            .bind(&link.subject)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::user_from_row).transpose()
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
        let revoked = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE username = $2 AND kind = 'login' AND revoked_at IS NULL")
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

    pub async fn get_user(&self, username: &str) -> Result<Option<User>> {
        let sql = format!(
            "SELECT {} FROM users u JOIN accounts a ON a.name = u.account WHERE u.username = $1",
            Self::USER_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::user_from_row).transpose()
    }

    /// Users ordered by username; only those of `account` when given.
    pub async fn list_users(
        &self,
        account: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<User>> {
        let sql = format!(
            "SELECT {} FROM users u JOIN accounts a ON a.name = u.account WHERE u.username > $1 AND ($2 = '' OR u.account = $2) ORDER BY u.username LIMIT $3",
            Self::USER_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(after.unwrap_or(""))
            .bind(account.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::user_from_row).collect()
    }

    pub async fn update_user(&self, username: &str, patch: &UserPatch) -> Result<()> {
        let _g = self.write_guard().await;
        let r = sqlx::query(
            "UPDATE users SET
               email = CASE WHEN $1 = 1 THEN $2 ELSE email END,
               roles = COALESCE($3, roles),
               attributes = COALESCE($4, attributes)
             WHERE username = $5",
        )
        .bind(patch.email.is_some() as i64)
        .bind(patch.email.clone().flatten())
        .bind(patch.roles.as_ref().map(|r| json_list(r)))
        .bind(patch.attributes.as_ref().map(json_map))
        .bind(username)
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

    // --------------------------------------------------------------------- keys

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

    fn key_from_row(row: &AnyRow) -> Result<ApiKey> {
        Ok(ApiKey {
            id: row.try_get("id")?,
            username: row.try_get("username")?,
            name: row.try_get("name")?,
            kind: parse_enum::<KeyKind>(&row.try_get::<String, _>("kind")?, "key kind")?,
            created_at: row.try_get("created_at")?,
            last_used_at: row.try_get("last_used_at")?,
            expires_at: row.try_get("expires_at")?,
            revoked_at: row.try_get("revoked_at")?,
        })
    }

    /// Everything needed to authenticate a request, in one query: the key, its digest,
    /// its user and the user's account.
    pub async fn lookup_key(&self, id: &str) -> Result<Option<(ApiKey, String, User)>> {
        let sql = format!(
            "SELECT k.id, k.username, k.name, k.kind, k.digest, k.created_at AS key_created_at, k.last_used_at, k.expires_at, k.revoked_at, {}
             FROM api_keys k JOIN users u ON u.username = k.username JOIN accounts a ON a.name = u.account WHERE k.id = $1",
            Self::USER_COLUMNS
        );
        let Some(row) = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let key = ApiKey {
            id: row.try_get("id")?,
            username: row.try_get("username")?,
            name: row.try_get("name")?,
            kind: parse_enum::<KeyKind>(&row.try_get::<String, _>("kind")?, "key kind")?,
            created_at: row.try_get("key_created_at")?,
            last_used_at: row.try_get("last_used_at")?,
            expires_at: row.try_get("expires_at")?,
            revoked_at: row.try_get("revoked_at")?,
        };
        let digest: String = row.try_get("digest")?;
        Ok(Some((key, digest, Self::user_from_row(&row)?)))
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
        rows.iter().map(Self::key_from_row).collect()
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

    // --------------------------------------------------------------------- IACT

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

    // -------------------------------------------------------------------- audit

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
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    outcome: r.try_get("outcome")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    // ------------------------------------------------------------ access tokens

    /// A user asks for an access token: status `requested` unless one is active.
    /// Returns the status after the call.
    pub async fn request_access_token(&self, username: &str) -> Result<String> {
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
        Ok(user.access_token_status.unwrap_or_default())
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

    /// Every user with its password hash, ordered by username (for the CSV export).
    pub async fn all_users(&self) -> Result<Vec<User>> {
        let sql = format!("SELECT {} FROM users u JOIN accounts a ON a.name = u.account WHERE a.name <> 'system' ORDER BY u.username", Self::USER_COLUMNS);
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(Self::user_from_row).collect()
    }

    /// Import users all-or-nothing: every row is applied in one transaction; any row error
    /// rolls everything back and is reported with its row number.
    pub async fn import_users(&self, rows: &[ImportRow], mode: OnConflict) -> Result<ImportReport> {
        let _g = self.write_guard().await;
        let now = now_ms();
        let mut report = ImportReport::default();
        let mut tx = self.pool.begin().await?;
        let mut known_accounts: std::collections::HashMap<String, String> =
            std::collections::HashMap::new();
        for row in rows {
            let state = match known_accounts.get(&row.account) {
                Some(s) => s.clone(),
                None => {
                    let found: Option<String> =
                        sqlx::query("SELECT state FROM accounts WHERE name = $1")
                            .bind(&row.account)
                            .fetch_optional(&mut *tx)
                            .await?
                            .map(|r| r.try_get("state"))
                            .transpose()?;
                    let state = match found {
                        Some(s) => s,
                        None => {
                            sqlx::query("INSERT INTO accounts (name, email, type, state, created_at) VALUES ($1, NULL, 'user', 'enabled', $2)")
                                .bind(&row.account)
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                            report.accounts_created.push(row.account.clone());
                            "enabled".to_string()
                        }
                    };
                    known_accounts.insert(row.account.clone(), state.clone());
                    state
                }
            };
            if let Err(e) = reserved_username(&row.username, &row.account) {
                report.errors.push(RowError {
                    row: row.row,
                    error: e.to_string(),
                });
                continue;
            }
            if state == "deleting" {
                report.errors.push(RowError {
                    row: row.row,
                    error: format!("account {} is being deleted", row.account),
                });
                continue;
            }
            let existing: Option<String> =
                sqlx::query("SELECT account FROM users WHERE username = $1")
                    .bind(&row.username)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.try_get("account"))
                    .transpose()?;
            match (existing, mode) {
                (None, _) => {
                    sqlx::query(
                        "INSERT INTO users (username, account, email, roles, attributes, password_hash, must_change_password, created_at)
                         VALUES ($1, $2, $3, $4, '{}', $5, 0, $6)",
                    )
                    .bind(&row.username)
                    .bind(&row.account)
                    .bind(row.email.as_deref())
                    .bind(json_list(&row.roles))
                    .bind(row.password_hash.as_deref())
                    .bind(row.created_at.unwrap_or(now))
                    .execute(&mut *tx)
                    .await?;
                    report.created += 1;
                }
                (Some(_), OnConflict::Fail) => {
                    report.errors.push(RowError {
                        row: row.row,
                        error: format!("username {} already exists", row.username),
                    });
                }
                (Some(_), OnConflict::Skip) => report.skipped += 1,
                (Some(account), OnConflict::Update) if account != row.account => {
                    report.errors.push(RowError {
                        row: row.row,
                        error: format!("username {} belongs to account {account}; an import does not move users", row.username),
                    });
                }
                (Some(_), OnConflict::Update) => {
                    sqlx::query("UPDATE users SET email = $1, roles = $2, password_hash = COALESCE($3, password_hash) WHERE username = $4")
                        .bind(row.email.as_deref())
                        .bind(json_list(&row.roles))
                        .bind(row.password_hash.as_deref())
                        .bind(&row.username)
                        .execute(&mut *tx)
                        .await?;
                    report.updated += 1;
                }
            }
        }
        if report.errors.is_empty() {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
            report.created = 0;
            report.updated = 0;
            report.skipped = 0;
            report.accounts_created.clear();
        }
        Ok(report)
    }
}

impl Store {
    // ------------------------------------------------------------------ plugins

    fn plugin_from_row(r: &AnyRow) -> Result<PluginRecord> {
        Ok(PluginRecord {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            digest: r.try_get("digest")?,
            size: r.try_get("size")?,
            world_version: r.try_get("world_version")?,
            created_at: r.try_get("created_at")?,
            created_by: r.try_get("created_by")?,
        })
    }

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
        row.as_ref().map(Self::plugin_from_row).transpose()
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
        row.as_ref().map(Self::plugin_from_row).transpose()
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
        rows.iter().map(Self::plugin_from_row).collect()
    }

    pub async fn authorizer_state(&self) -> Result<Option<AuthorizerState>> {
        let row = sqlx::query(
            "SELECT version, active_id, active_settings, active_since, shadow_id, shadow_settings, shadow_since, changed_by FROM authorizer_state WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(AuthorizerState {
                version: r.try_get("version")?,
                active_id: r.try_get("active_id")?,
                active_settings: r.try_get("active_settings")?,
                active_since: r.try_get("active_since")?,
                shadow_id: r.try_get("shadow_id")?,
                shadow_settings: r.try_get("shadow_settings")?,
                shadow_since: r.try_get("shadow_since")?,
                changed_by: r.try_get("changed_by")?,
            })
        })
        .transpose()
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

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).expect("strings serialize")
}

fn json_map(v: &std::collections::BTreeMap<String, String>) -> String {
    serde_json::to_string(v).expect("strings serialize")
}
