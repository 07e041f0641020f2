//! REANA's user management: access tokens (`/v1/users/{username}/access-token/…`) and
//! `POST /v1/users`, a user created by email with an optional token.

use portcullis_app::tokens::ByEmail;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// The schema of `portcullis_core::AccessTokenStatus` (a doc comment here would repeat
// itself in every field that inlines it).
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum AccessTokenStatus {
    Requested,
    Active,
    Revoked,
}

/// The answer of request, grant and revoke.
#[derive(Debug, ToSchema, Serialize)]
pub struct AccessToken {
    pub username: String,
    #[schema(value_type = AccessTokenStatus, inline)]
    pub access_token_status: portcullis_core::AccessTokenStatus,
    /// The token, shown once (grant only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
}

impl AccessToken {
    /// Requested: `status` is what the user's token is now (`requested`, or still
    /// `active`).
    pub fn requested(username: String, status: portcullis_core::AccessTokenStatus) -> Self {
        AccessToken {
            username,
            access_token_status: status,
            access_token: None,
        }
    }

    /// Granted: the new token.
    pub fn granted(username: String, token: String) -> Self {
        AccessToken {
            username,
            access_token_status: portcullis_core::AccessTokenStatus::Active,
            access_token: Some(token),
        }
    }

    pub fn revoked(username: String) -> Self {
        AccessToken {
            username,
            access_token_status: portcullis_core::AccessTokenStatus::Revoked,
            access_token: None,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateByEmail {
    #[schema(
        pattern = r"^[!-+\--:<-?A-~]+@([!-+\-/-:<-?A-~]|[!-+\-/-:<-?A-~][!-+\--:<-?A-~]*[!-+\-/-:<-?A-~])$",
        max_length = 254
    )]
    pub email: String,
    /// Default: `[users] default_account` (a user account, created on first use); for a
    /// caller in a user account, its own account. Never the admin account unless named.
    #[schema(pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")]
    pub account: Option<String>,
    /// Default: the email.
    #[schema(pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")]
    pub username: Option<String>,
    #[serde(default)]
    pub grant_access_token: bool,
}

impl From<CreateByEmail> for ByEmail {
    fn from(body: CreateByEmail) -> Self {
        ByEmail {
            email: body.email,
            account: body.account,
            username: body.username,
            grant_access_token: body.grant_access_token,
        }
    }
}

/// The REANA shape of a user created by email.
#[derive(Debug, ToSchema, Serialize)]
pub struct CreatedByEmail {
    /// The username (REANA's `id`).
    pub id: String,
    pub email: String,
    pub username: String,
    pub account: String,
    /// Present when `grant_access_token` was true.
    pub access_token: Option<String>,
}

impl CreatedByEmail {
    /// `user` as created by email (so it has one), with the token granted, if any.
    pub fn new(user: &portcullis_store::User, access_token: Option<String>) -> Self {
        CreatedByEmail {
            id: user.username.clone(),
            email: user.email.clone().unwrap_or_default(),
            username: user.username.clone(),
            account: user.account.clone(),
            access_token,
        }
    }
}
