//! Accounts: create, list, get, set state, delete (§2, §4). The hidden `system` account
//! answers 404 everywhere.

use super::{Json, Path, Query};
use crate::api::accounts::{Account, AccountDeleting, AccountList, CreateAccount, SetState};
use crate::api::errors::ErrorBody;
use crate::api::Page;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_app::accounts;

#[utoipa::path(get, path = "/v1/accounts", tag = "accounts", params(Page), responses((status = 200, description = "Accounts by name", body = AccountList)))]
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult<Json<AccountList>> {
    let limit = page.limit()?;
    let accounts = accounts::list(&state, &caller, page.after.as_deref(), limit).await?;
    let list = AccountList::page(&accounts, limit, |a| a.name.clone());
    Ok(Json(list))
}

#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = CreateAccount, responses((status = 201, description = "Created", body = Account), (status = 409, description = "The name exists", body = ErrorBody)))]
pub async fn create(
    State(state): State<SharedState>,
    caller: Caller,
    Json(body): Json<CreateAccount>,
) -> ApiResult<(StatusCode, Json<Account>)> {
    let account = accounts::create(
        &state,
        &caller,
        &body.name,
        body.email.as_deref(),
        body.kind.map(Into::into),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(Account::from(&account))))
}

#[utoipa::path(get, path = "/v1/accounts/{name}", tag = "accounts", params(("name" = String, Path, description = "Account name", pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")), responses((status = 200, description = "The account", body = Account)))]
pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Account>> {
    let account = accounts::get(&state, &caller, &name).await?;
    Ok(Json(Account::from(&account)))
}

#[utoipa::path(put, path = "/v1/accounts/{name}/state", tag = "accounts", params(("name" = String, Path, description = "Account name", pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")), request_body = SetState, responses((status = 200, description = "The account in its new state (idempotent)", body = Account), (status = 409, description = "Refused transition (the admin account, or an account being deleted)", body = ErrorBody)))]
pub async fn set_state(
    State(state): State<SharedState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<SetState>,
) -> ApiResult<Json<Account>> {
    let account = accounts::set_state(&state, &caller, &name, body.state).await?;
    Ok(Json(Account::from(&account)))
}

/// Delete a disabled account: its users and their keys go at once (202), a background
/// task removes the rest and the account row.
#[utoipa::path(delete, path = "/v1/accounts/{name}", tag = "accounts", params(("name" = String, Path, description = "Account name", pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")), responses((status = 202, description = "Users and keys are gone; the rest is removed in the background", body = AccountDeleting), (status = 409, description = "Only a disabled account can be deleted", body = ErrorBody)))]
pub async fn delete(
    State(state): State<SharedState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<AccountDeleting>)> {
    accounts::delete(&state, &caller, &name).await?;
    Ok((StatusCode::ACCEPTED, Json(AccountDeleting::new(name))))
}
