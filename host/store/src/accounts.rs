//! Accounts: creation, lookup, listing, state changes, and the two-step account deletion
//! (which also removes the account's users and their keys).

use crate::rows::account_from_row;
use crate::{is_unique_violation, now_ms, Account, Result, Store, StoreError};
use portcullis_core::{AccountState, AccountType};
use sqlx::Row;

impl Store {
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
    pub async fn get_account(&self, name: &str) -> Result<Option<Account>> {
        let row = sqlx::query(
            "SELECT name, email, type, state, created_at FROM accounts WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from_row).transpose()
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
        rows.iter().map(account_from_row).collect()
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
}
