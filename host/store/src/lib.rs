//! The store: the only crate that knows SQL. One code path serves SQLite and PostgreSQL
//! through sqlx's `Any` driver with runtime queries (`$1` placeholders work on both);
//! each backend has its own migrations under `migrations/<backend>/`.
//!
//! Times are Unix milliseconds. Secrets never reach this crate: callers hand in digests
//! and PHC strings.
//!
//! This file holds the handle ([`Store`]): connecting, migrations, the write lock and the
//! auth epoch, and the helpers the table modules share. Each table (or group of tables)
//! adds its methods to [`Store`] in a module of its own: `accounts`, `users` (with
//! passwords, lockout and the SSO link), `keys`, `tokens` (access tokens), `iact`, `audit`,
//! `plugins` (with the authorizer state), `import` (the CSV export and import) and `schema`
//! (the schema outline). `rows` maps rows to the records of `records`.

mod accounts;
mod audit;
mod changes;
mod iact;
mod import;
mod keys;
mod plugins;
mod policies;
mod records;
mod rows;
mod schema;
mod tokens;
mod users;

pub use changes::PushState;
pub use records::*;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor, Row};
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
    /// The database did not answer within the store's timeout (down, unreachable, or
    /// every connection busy): the caller should fail fast and retry later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Db(sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            // No connection within the acquire timeout, or none could be opened: the
            // database is down or unreachable, not broken.
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            other => StoreError::Db(other),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How long a request waits for a database connection before the store answers
/// [`StoreError::Unavailable`] (`database_timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

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
    /// (see [`Store::auth_epoch`]), and on PostgreSQL whenever another server or process
    /// made such a write (see `changes`).
    epoch: Arc<AtomicU64>,
    /// PostgreSQL: the URL, for the dedicated listening connection of `changes`.
    url: Arc<str>,
    /// What the change listener knows (PostgreSQL only).
    pub(crate) changes: Arc<changes::Changes>,
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

impl Store {
    /// Connect and run migrations. `url` is `sqlite://PATH` or `postgres://…`; a request
    /// waits at most [`DEFAULT_TIMEOUT`] for a connection.
    pub async fn connect(url: &str) -> Result<Store> {
        Self::connect_with(url, DEFAULT_TIMEOUT).await
    }

    /// [`Store::connect`] with another connection timeout.
    pub async fn connect_with(url: &str, timeout: Duration) -> Result<Store> {
        /// How long a start waits for the first connection in all.
        const STARTUP_PATIENCE: Duration = Duration::from_secs(60);
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
        let mut options = AnyPoolOptions::new().acquire_timeout(timeout);
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
        // The first connection may take longer than a request may wait (`timeout`): a
        // database still starting, or a machine busy enough that opening the file takes
        // seconds. A start keeps trying for STARTUP_PATIENCE before it gives up; refusals
        // (a wrong URL, no server listening) still fail at once.
        let started = std::time::Instant::now();
        let pool = loop {
            match options.clone().connect(&url).await {
                Ok(pool) => break pool,
                Err(sqlx::Error::PoolTimedOut) if started.elapsed() < STARTUP_PATIENCE => {
                    tracing::warn!(waited = ?started.elapsed(), "the database has not answered yet; still trying");
                }
                Err(e) => return Err(e.into()),
            }
        };
        let store = Store {
            pool,
            backend,
            write_lock: Arc::new(Mutex::new(())),
            epoch: Arc::new(AtomicU64::new(0)),
            url: Arc::from(url.as_str()),
            changes: Arc::new(changes::Changes::default()),
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

    /// Write a consistent copy of an SQLite database to `path` (`VACUUM INTO`: an online
    /// backup, taken while servers keep writing; the file must not exist yet). PostgreSQL
    /// is backed up with its own tools (`pg_dump`), which this refuses to stand in for.
    pub async fn backup_to(&self, path: &std::path::Path) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                let target = path.to_str().ok_or_else(|| {
                    StoreError::State(format!("{} is not a UTF-8 path", path.display()))
                })?;
                sqlx::query("VACUUM INTO ?")
                    .bind(target)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
            Backend::Postgres => Err(StoreError::State(
                "a PostgreSQL database is backed up with pg_dump (e.g. `pg_dump -Fc -f portcullis.dump $DATABASE_URL`) and restored with pg_restore".into(),
            )),
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
        self.changes.closed.notify_one();
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
}

/// A list of strings (roles) as the JSON text the `roles` column stores.
fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).expect("strings serialize")
}

/// A string map (attributes) as the JSON text the `attributes` column stores.
fn json_map(v: &std::collections::BTreeMap<String, String>) -> String {
    serde_json::to_string(v).expect("strings serialize")
}
