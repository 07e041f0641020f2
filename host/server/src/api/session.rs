//! Login, logout, whoami (§3.2): the login bodies and what a login and `GET /v1/whoami`
//! answer.

use super::accounts::{AccountState, AccountType};
use super::keys::KeyKind;
use super::users::User;
use portcullis_app::timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
    /// Required when the password is temporary: the new one (8 to 1024 characters).
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: Option<String>,
    /// `true`: the login key goes into the `[forward_auth] cookie` (`HttpOnly`) instead of
    /// the answer — a browser session for applications behind a forward-auth proxy.
    #[serde(default)]
    pub session: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcBody {
    pub id_token: String,
}

/// `{"api_key","expires_at","user"}`: the answer of every successful login.
#[derive(Debug, ToSchema, Serialize)]
pub struct LoggedIn {
    /// A login key (shown once). Absent when the login asked for a `session`: the key is
    /// then in the `Set-Cookie` header only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    pub expires_at: Option<String>,
    pub user: User,
}

impl From<&portcullis_app::session::LoggedIn> for LoggedIn {
    fn from(done: &portcullis_app::session::LoggedIn) -> Self {
        LoggedIn {
            api_key: Some(done.issued.secret.clone()),
            expires_at: done.issued.key.expires_at.map(timestamp),
            user: User::from(&done.user),
        }
    }
}

#[derive(Debug, ToSchema, Serialize)]
pub struct WhoAmIAccount {
    pub name: String,
    pub email: Option<String>,
    #[schema(inline)]
    pub r#type: AccountType,
    #[schema(inline)]
    pub state: AccountState,
}

impl From<&portcullis_store::Account> for WhoAmIAccount {
    fn from(a: &portcullis_store::Account) -> Self {
        WhoAmIAccount {
            name: a.name.clone(),
            email: a.email.clone(),
            r#type: a.kind.into(),
            state: a.state.into(),
        }
    }
}

/// The key the caller authenticated with.
#[derive(Debug, ToSchema, Serialize)]
pub struct WhoAmIKey {
    pub id: String,
    #[schema(inline)]
    pub kind: KeyKind,
    pub expires_at: Option<String>,
}

impl From<&portcullis_store::ApiKey> for WhoAmIKey {
    fn from(k: &portcullis_store::ApiKey) -> Self {
        WhoAmIKey {
            id: k.id.clone(),
            kind: k.kind.into(),
            expires_at: k.expires_at.map(timestamp),
        }
    }
}

#[derive(Debug, ToSchema, Serialize)]
pub struct WhoAmI {
    pub username: String,
    pub account: WhoAmIAccount,
    pub roles: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    pub key: WhoAmIKey,
    /// Where users this caller creates without naming an account go: its own account for
    /// a `user`-account member, else `[users] default_account` (never the admin account).
    pub default_account: String,
}

impl WhoAmI {
    /// `caller` in `account` (its own).
    pub fn new(
        caller: &portcullis_app::Caller,
        account: &portcullis_store::Account,
        default_account: String,
    ) -> Self {
        let u = &caller.user;
        WhoAmI {
            username: u.username.clone(),
            account: WhoAmIAccount::from(account),
            roles: u.roles.clone(),
            attributes: u.attributes.clone(),
            key: WhoAmIKey::from(&caller.key),
            default_account,
        }
    }
}
