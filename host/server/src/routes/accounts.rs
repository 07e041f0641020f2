//! Accounts: create, list, get, set state, delete (§2, §4). The hidden `system` account
//! answers 404 everywhere.

use super::openapi;
use super::{Json, List, Page, Path, Query};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_app::{accounts, timestamp};
use portcullis_core::{AccountState, AccountType};
use portcullis_store::Account;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn account_view(a: &Account) -> Value {
    json!({
        "name": a.name,
        "email": a.email,
        "type": a.kind,
        "state": a.state,
        "created_at": timestamp(a.created_at),
    })
}

#[utoipa::path(get, path = "/v1/accounts", tag = "accounts", params(Page), responses((status = 200, description = "Accounts by name", body = openapi::AccountList)))]
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult<Json<List<Value>>> {
    let limit = page.limit()?;
    let accounts = accounts::list(&state, &caller, page.after.as_deref(), limit).await?;
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
    let account = accounts::create(
        &state,
        &caller,
        &body.name,
        body.email.as_deref(),
        body.kind,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(account_view(&account))))
}

#[utoipa::path(get, path = "/v1/accounts/{name}", tag = "accounts", params(("name" = String, Path, description = "Account name", pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")), responses((status = 200, description = "The account", body = openapi::Account)))]
pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let account = accounts::get(&state, &caller, &name).await?;
    Ok(Json(account_view(&account)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetState {
    #[schema(value_type = openapi::SettableAccountState, inline)]
    state: AccountState,
}

#[utoipa::path(put, path = "/v1/accounts/{name}/state", tag = "accounts", params(("name" = String, Path, description = "Account name", pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")), request_body = SetState, responses((status = 200, description = "The account in its new state (idempotent)", body = openapi::Account), (status = 409, description = "Refused transition (the admin account, or an account being deleted)", body = openapi::ErrorBody)))]
pub async fn set_state(
    State(state): State<SharedState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<SetState>,
) -> ApiResult<Json<Value>> {
    let account = accounts::set_state(&state, &caller, &name, body.state).await?;
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
    accounts::delete(&state, &caller, &name).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "name": name, "state": "deleting" })),
    ))
}
