//! Accounts (§2): what `/v1/accounts` reads and answers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountType {
    Admin,
    User,
    Service,
}

impl From<portcullis_core::AccountType> for AccountType {
    fn from(t: portcullis_core::AccountType) -> Self {
        use portcullis_core::AccountType as T;
        match t {
            T::Admin => AccountType::Admin,
            T::User => AccountType::User,
            T::Service => AccountType::Service,
        }
    }
}

impl From<AccountType> for portcullis_core::AccountType {
    fn from(t: AccountType) -> Self {
        use portcullis_core::AccountType as T;
        match t {
            AccountType::Admin => T::Admin,
            AccountType::User => T::User,
            AccountType::Service => T::Service,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountState {
    Enabled,
    Disabled,
    Deleting,
}

impl From<portcullis_core::AccountState> for AccountState {
    fn from(s: portcullis_core::AccountState) -> Self {
        use portcullis_core::AccountState as S;
        match s {
            S::Enabled => AccountState::Enabled,
            S::Disabled => AccountState::Disabled,
            S::Deleting => AccountState::Deleting,
        }
    }
}

// The states `PUT /v1/accounts/{name}/state` documents. Schema only: the body is read as
// a `portcullis_core::AccountState`, and the application refuses `deleting` itself.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SettableAccountState {
    Enabled,
    Disabled,
}

#[derive(Debug, ToSchema, Serialize)]
pub struct Account {
    pub name: String,
    pub email: Option<String>,
    #[schema(inline)]
    pub r#type: AccountType,
    #[schema(inline)]
    pub state: AccountState,
    /// RFC 3339.
    pub created_at: String,
}

impl From<&portcullis_store::Account> for Account {
    fn from(a: &portcullis_store::Account) -> Self {
        Account {
            name: a.name.clone(),
            email: a.email.clone(),
            r#type: a.kind.into(),
            state: a.state.into(),
            created_at: portcullis_app::timestamp(a.created_at),
        }
    }
}

list!(AccountList of Account);

/// The answer of `DELETE /v1/accounts/{name}` (202).
#[derive(Debug, ToSchema, Serialize)]
pub struct AccountDeleting {
    pub name: String,
    /// `deleting`.
    pub state: String,
}

impl AccountDeleting {
    pub fn new(name: String) -> Self {
        AccountDeleting {
            name,
            state: "deleting".into(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// `admin` and `system` are reserved.
    #[schema(pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")]
    pub name: String,
    #[schema(
        pattern = r"^[!-+\--:<-?A-~]+@([!-+\-/-:<-?A-~]|[!-+\-/-:<-?A-~][!-+\--:<-?A-~]*[!-+\-/-:<-?A-~])$",
        max_length = 254
    )]
    pub email: Option<String>,
    /// Default `user`.
    #[serde(rename = "type")]
    #[schema(inline)]
    pub kind: Option<AccountType>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetState {
    #[schema(value_type = SettableAccountState, inline)]
    pub state: portcullis_core::AccountState,
}
