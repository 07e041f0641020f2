//! Accounts: create, list, get, enable/disable, delete (disabled first; the users and
//! their keys go at once, the rest in the background). The hidden `system` account is
//! never shown.

use crate::audit::Audit;
use crate::caller::Caller;
use crate::error::{AppError, AppResult};
use crate::App;
use portcullis_core::authz::{actions, Event, Target};
use portcullis_core::names::{self, RESERVED_ACCOUNT_NAMES, SYSTEM_ACCOUNT};
use portcullis_core::{AccountState, AccountType, AuditAction};
use portcullis_store::{Account, Store, StoreError};
use std::time::Duration;

fn target(name: &str) -> Target {
    Target::new("account", name, Some(name))
}

/// An account that clients may see: never `system`.
pub async fn visible_account(app: &App, name: &str) -> AppResult<Account> {
    if name == SYSTEM_ACCOUNT {
        return Err(AppError::not_found(format!("account {name}")));
    }
    app.store
        .get_account(name)
        .await?
        .ok_or_else(|| AppError::not_found(format!("account {name}")))
}

/// A page of accounts (never `system`).
pub async fn list(
    app: &App,
    caller: &Caller,
    after: Option<&str>,
    limit: i64,
) -> AppResult<Vec<Account>> {
    app.require(
        &caller.principal,
        actions::ACCOUNTS_LIST,
        Target::new("account", "*", None),
    )
    .await?;
    Ok(app
        .store
        .list_accounts(after, limit, SYSTEM_ACCOUNT)
        .await?)
}

/// Create an account (type `user` unless named).
pub async fn create(
    app: &App,
    caller: &Caller,
    name: &str,
    email: Option<&str>,
    kind: Option<AccountType>,
) -> AppResult<Account> {
    names::validate_account_name(name).map_err(|e| AppError::invalid("name", e))?;
    if let Some(email) = email {
        names::validate_email(email).map_err(|e| AppError::invalid("email", e))?;
    }
    app.require(&caller.principal, actions::ACCOUNTS_CREATE, target(name))
        .await?;
    // The reserved names are taken (by built-in accounts): a conflict, not a bad request.
    if RESERVED_ACCOUNT_NAMES.contains(&name) {
        return Err(AppError::already_exists(format!(
            "name: {name} is reserved"
        )));
    }
    let kind = kind.unwrap_or(AccountType::User);
    let account = app
        .store
        .create_account(name, email, kind)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => AppError::already_exists(m),
            other => other.into(),
        })?;
    app.audit(
        Audit::success(
            &caller.user.username,
            AuditAction::AccountsCreate,
            &account.name,
        )
        .detail(kind.as_str()),
    )
    .await;
    app.notify(Event::AccountCreated(account.name.clone()))
        .await;
    Ok(account)
}

pub async fn get(app: &App, caller: &Caller, name: &str) -> AppResult<Account> {
    app.require(&caller.principal, actions::ACCOUNTS_READ, target(name))
        .await?;
    visible_account(app, name).await
}

/// Enable or disable an account (`deleting` only through [`delete`]).
pub async fn set_state(
    app: &App,
    caller: &Caller,
    name: &str,
    state: AccountState,
) -> AppResult<Account> {
    app.require(&caller.principal, actions::ACCOUNTS_UPDATE, target(name))
        .await?;
    let account = visible_account(app, name).await?;
    if state == AccountState::Deleting {
        return Err(AppError::invalid(
            "state",
            "must be enabled or disabled (use DELETE to delete)",
        ));
    }
    account
        .state
        .check_set(name, state)
        .map_err(|e| AppError::invalid_state(e.to_string()))?;
    if account.state != state {
        app.store.set_account_state(name, state).await?;
        app.audit(
            Audit::success(&caller.user.username, AuditAction::AccountsUpdate, name)
                .detail(format!("state {} -> {state}", account.state)),
        )
        .await;
    }
    visible_account(app, name).await
}

/// Delete a disabled account: its users and their keys go at once, a background task
/// removes the rest and the account row.
pub async fn delete(app: &App, caller: &Caller, name: &str) -> AppResult<()> {
    app.require(&caller.principal, actions::ACCOUNTS_DELETE, target(name))
        .await?;
    let account = visible_account(app, name).await?;
    account
        .state
        .check_delete(name)
        .map_err(|e| AppError::invalid_state(e.to_string()))?;
    let removed = app.store.begin_delete_account(name).await?;
    app.audit(
        Audit::success(&caller.user.username, AuditAction::AccountsDelete, name)
            .detail(format!("{} users removed", removed.len())),
    )
    .await;
    for username in removed {
        app.notify(Event::UserDeleted(username)).await;
    }
    app.notify(Event::AccountDeleted(name.to_string())).await;
    spawn_reaper(app.store.clone(), name.to_string());
    Ok(())
}

/// Finish deleting an account in the background, retrying until it is gone. At start, the
/// server resumes every deletion an earlier process left unfinished.
pub fn spawn_reaper(store: Store, name: String) {
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(50);
        loop {
            tokio::time::sleep(delay).await;
            match store.finish_delete_account(&name).await {
                Ok(()) => {
                    tracing::info!(account = %name, "account deleted");
                    return;
                }
                Err(e) => {
                    tracing::warn!(account = %name, error = %e, "finishing account deletion failed; will retry");
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    });
}
