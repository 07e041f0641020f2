//! Accounts: create, list, get, set state, delete (§2, §4). The hidden `system` account
//! answers 404 everywhere.

use super::openapi;
use super::{timestamp, Json, List, Page, Path, Query};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_core::authz::{actions, Target};
use portcullis_core::model::TransitionError;
use portcullis_core::names::{self, RESERVED_ACCOUNT_NAMES, SYSTEM_ACCOUNT};
use portcullis_core::{AccountState, AccountType};
use portcullis_store::{Account, Store};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

pub fn account_view(a: &Account) -> Value {
    json!({
        "name": a.name,
        "email": a.email,
        "type": a.kind,
        "state": a.state,
        "created_at": timestamp(a.created_at),
    })
}

fn target(name: &str) -> Target {
    Target::new("account", name, Some(name))
}

/// An account that clients may see: never `system`.
pub async fn visible_account(state: &SharedState, name: &str) -> ApiResult<Account> {
    if name == SYSTEM_ACCOUNT {
        return Err(ApiError::not_found(format!("account {name}")));
    }
    state
        .store
        .get_account(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("account {name}")))
}

#[utoipa::path(get, path = "/v1/accounts", tag = "accounts", params(Page), responses((status = 200, description = "Accounts by name", body = openapi::AccountList)))]
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult<Json<List<Value>>> {
    state
        .require(
            &caller.principal,
            actions::ACCOUNTS_LIST,
            Target::new("account", "*", None),
        )
        .await?;
    let limit = page.limit()?;
    let accounts = state
        .store
        .list_accounts(page.after.as_deref(), limit, SYSTEM_ACCOUNT)
        .await?;
    let list = List::new(accounts, limit, |a| a.name.clone());
    Ok(Json(List {
        items: list.items.iter().map(account_view).collect(),
        next: list.next,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// `admin` and `system` are reserved.
    #[schema(pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")]
    name: String,
    #[schema(
        pattern = r"^[!-+\--:<-?A-~]+@([!-+\-/-:<-?A-~]|[!-+\-/-:<-?A-~][!-+\--:<-?A-~]*[!-+\-/-:<-?A-~])$",
        max_length = 254
    )]
    email: Option<String>,
    /// Default `user`.
    #[serde(rename = "type")]
    #[schema(value_type = Option<openapi::AccountType>, inline)]
    kind: Option<AccountType>,
}

#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = CreateAccount, responses((status = 201, description = "Created", body = openapi::Account), (status = 409, description = "The name exists", body = openapi::ErrorBody)))]
pub async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    Json(body): Json<CreateAccount>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    names::validate_account_name(&body.name).map_err(|e| ApiError::invalid("name", e))?;
    if let Some(email) = &body.email {
        names::validate_email(email).map_err(|e| ApiError::invalid("email", e))?;
    }
    state
        .require(
            &caller.principal,
            actions::ACCOUNTS_CREATE,
            target(&body.name),
        )
        .await?;
    // The reserved names are taken (by built-in accounts): a conflict, not a bad request.
    if RESERVED_ACCOUNT_NAMES.contains(&body.name.as_str()) {
        return Err(ApiError::conflict(
            "already_exists",
            format!("name: {} is reserved", body.name),
        ));
    }
    let kind = body.kind.unwrap_or(AccountType::User);
    let account = state
        .store
        .create_account(&body.name, body.email.as_deref(), kind)
        .await
        .map_err(|e| match e {
            portcullis_store::StoreError::Conflict(m) => ApiError::conflict("already_exists", m),
            other => other.into(),
        })?;
    state
        .audit(
            &caller.user.username,
            "accounts.create",
            &account.name,
            "success",
            kind.as_str(),
        )
        .await;
    state
        .notify(portcullis_core::authz::Event::AccountCreated(
            account.name.clone(),
        ))
        .await;
    Ok((StatusCode::CREATED, Json(account_view(&account))))
}

#[utoipa::path(get, path = "/v1/accounts/{name}", tag = "accounts", params(("name" = String, Path, description = "Account name", pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")), responses((status = 200, description = "The account", body = openapi::Account)))]
pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    state
        .require(&caller.principal, actions::ACCOUNTS_READ, target(&name))
        .await?;
    let account = visible_account(&state, &name).await?;
    Ok(Json(account_view(&account)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetState {
    #[schema(value_type = openapi::SettableAccountState, inline)]
    state: AccountState,
}

fn transition_error(e: TransitionError) -> ApiError {
    ApiError::conflict("invalid_state_transition", e.to_string())
}

#[utoipa::path(put, path = "/v1/accounts/{name}/state", tag = "accounts", params(("name" = String, Path, description = "Account name", pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")), request_body = SetState, responses((status = 200, description = "The account in its new state (idempotent)", body = openapi::Account), (status = 409, description = "Refused transition (the admin account, or an account being deleted)", body = openapi::ErrorBody)))]
pub async fn set_state(
    State(state): State<SharedState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<SetState>,
) -> ApiResult<Json<Value>> {
    state
        .require(&caller.principal, actions::ACCOUNTS_UPDATE, target(&name))
        .await?;
    let account = visible_account(&state, &name).await?;
    if body.state == AccountState::Deleting {
        return Err(ApiError::invalid(
            "state",
            "must be enabled or disabled (use DELETE to delete)",
        ));
    }
    account
        .state
        .check_set(&name, body.state)
        .map_err(transition_error)?;
    if account.state != body.state {
        state.store.set_account_state(&name, body.state).await?;
        state
            .audit(
                &caller.user.username,
                "accounts.update",
                &name,
                "success",
                &format!("state {} -> {}", account.state, body.state),
            )
            .await;
    }
    let account = visible_account(&state, &name).await?;
    Ok(Json(account_view(&account)))
}

/// Delete a disabled account: its users and their keys go at once (202), a background
/// task removes the rest and the account row.
#[utoipa::path(delete, path = "/v1/accounts/{name}", tag = "accounts", params(("name" = String, Path, description = "Account name", pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")), responses((status = 202, description = "Users and keys are gone; the rest is removed in the background", body = openapi::AccountDeleting), (status = 409, description = "Only a disabled account can be deleted", body = openapi::ErrorBody)))]
pub async fn delete(
    State(state): State<SharedState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    state
        .require(&caller.principal, actions::ACCOUNTS_DELETE, target(&name))
        .await?;
    let account = visible_account(&state, &name).await?;
    account
        .state
        .check_delete(&name)
        .map_err(transition_error)?;
    let removed = state.store.begin_delete_account(&name).await?;
    state
        .audit(
            &caller.user.username,
            "accounts.delete",
            &name,
            "success",
            &format!("{} users removed", removed.len()),
        )
        .await;
    for username in removed {
        state
            .notify(portcullis_core::authz::Event::UserDeleted(username))
            .await;
    }
    state
        .notify(portcullis_core::authz::Event::AccountDeleted(name.clone()))
        .await;
    spawn_reaper(state.store.clone(), name.clone());
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "name": name, "state": "deleting" })),
    ))
}

/// Finish deleting an account in the background, retrying until it is gone.
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
