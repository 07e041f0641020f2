//! Bulk user transfer for the CSV export and import: every user with its password hash,
//! and the all-or-nothing import.

use crate::rows::{user_from_row, USER_COLUMNS};
use crate::{
    json_list, now_ms, reserved_username, ImportReport, ImportRow, OnConflict, Result, RowError,
    Store, User,
};
use sqlx::Row;

impl Store {
    /// Every user with its password hash, ordered by username (for the CSV export).
    pub async fn all_users(&self) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u JOIN accounts a ON a.name = u.account WHERE a.name <> 'system' ORDER BY u.username");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(user_from_row).collect()
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
