//! Users and their passwords (§2, §4): what `/v1/users…` and `/v1/accounts/{name}/users`
//! read and answer (keys are [`super::keys`], REANA's access tokens [`super::tokens`]).

use super::schema;
use super::tokens::AccessTokenStatus;
use portcullis_app::timestamp;
use portcullis_app::users::{NewPassword, NewUserInput};
use portcullis_store::{now_ms, SsoLink, UserPatch};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Debug, ToSchema, Serialize)]
pub struct User {
    pub username: String,
    pub account: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    pub created_at: String,
    pub last_login_at: Option<String>,
    pub must_change_password: bool,
    pub locked: bool,
    pub locked_until: Option<String>,
    #[schema(value_type = Option<AccessTokenStatus>, inline)]
    pub access_token_status: Option<portcullis_core::AccessTokenStatus>,
    /// The single sign-on identity that signs in as this user (created by a first
    /// sign-in, or linked by an administrator); `null` when none.
    pub sso: Option<SsoLinkView>,
}

impl From<&portcullis_store::User> for User {
    fn from(u: &portcullis_store::User) -> Self {
        // A lock that has run out is no lock: `locked_until` only while it holds.
        let locked = u.locked_until.is_some_and(|t| t > now_ms());
        User {
            username: u.username.clone(),
            account: u.account.clone(),
            email: u.email.clone(),
            roles: u.roles.clone(),
            attributes: u.attributes.clone(),
            created_at: timestamp(u.created_at),
            last_login_at: u.last_login_at.map(timestamp),
            must_change_password: u.must_change_password,
            locked,
            locked_until: if locked {
                u.locked_until.map(timestamp)
            } else {
                None
            },
            access_token_status: u.access_token_status,
            sso: u.sso.as_ref().map(SsoLinkView::from),
        }
    }
}

#[derive(Debug, ToSchema, Serialize)]
pub struct SsoLinkView {
    /// The ID token's `iss`.
    pub issuer: String,
    /// The ID token's `sub`.
    pub subject: String,
}

impl From<&SsoLink> for SsoLinkView {
    fn from(l: &SsoLink) -> Self {
        SsoLinkView {
            issuer: l.issuer.clone(),
            subject: l.subject.clone(),
        }
    }
}

/// `GET /v1/users/{username}`: the user and its number of live keys.
#[derive(Debug, ToSchema, Serialize)]
pub struct UserDescribed {
    #[schema(inline)]
    #[serde(flatten)]
    pub user: User,
    /// Live (unrevoked, unexpired) keys of the user.
    pub key_count: i64,
}

impl UserDescribed {
    pub fn new(user: &portcullis_store::User, key_count: i64) -> Self {
        UserDescribed {
            user: User::from(user),
            key_count,
        }
    }
}

list!(UserList of User);

#[derive(Debug, ToSchema, Serialize)]
pub struct PasswordSet {
    pub username: String,
    pub must_change_password: bool,
    pub keys_revoked: i64,
}

impl From<&portcullis_app::users::PasswordSet> for PasswordSet {
    fn from(set: &portcullis_app::users::PasswordSet) -> Self {
        PasswordSet {
            username: set.username.clone(),
            must_change_password: set.must_change_password,
            keys_revoked: i64::try_from(set.keys_revoked).unwrap_or(i64::MAX),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// `export` and `import` are reserved.
    #[schema(pattern = r"^[a-z0-9][a-z0-9._@-]{0,62}$")]
    pub username: String,
    /// Absent: the user can only use keys, access tokens or single sign-on.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: Option<String>,
    /// The user must change the password at first login.
    #[serde(default)]
    pub temporary_password: bool,
    #[schema(
        pattern = r"^[!-+\--:<-?A-~]+@([!-+\-/-:<-?A-~]|[!-+\-/-:<-?A-~][!-+\--:<-?A-~]*[!-+\-/-:<-?A-~])$",
        max_length = 254
    )]
    pub email: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schema::roles)]
    pub roles: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = schema::attributes)]
    pub attributes: BTreeMap<String, String>,
}

impl From<CreateUser> for NewUserInput {
    fn from(body: CreateUser) -> Self {
        NewUserInput {
            username: body.username,
            password: body.password,
            temporary_password: body.temporary_password,
            email: body.email,
            roles: body.roles,
            attributes: body.attributes,
        }
    }
}

/// Absent → `None` (unchanged), `null` → `Some(None)` (cleared), a value → `Some(Some)`.
fn double_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    /// Absent: unchanged; `null`: cleared.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, nullable, pattern = r"^[!-+\--:<-?A-~]+@([!-+\-/-:<-?A-~]|[!-+\-/-:<-?A-~][!-+\--:<-?A-~]*[!-+\-/-:<-?A-~])$", max_length = 254)]
    pub email: Option<Option<String>>,
    #[schema(schema_with = schema::roles_or_null)]
    pub roles: Option<Vec<String>>,
    #[schema(schema_with = schema::attributes_or_null)]
    pub attributes: Option<BTreeMap<String, String>>,
    /// `true`: clear a lockout (failed logins and the lock) without touching the password.
    #[serde(default)]
    pub unlock: bool,
}

impl From<PatchUser> for UserPatch {
    fn from(body: PatchUser) -> Self {
        UserPatch {
            email: body.email,
            roles: body.roles,
            attributes: body.attributes,
            unlock: body.unlock,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// Required when changing one's own password.
    pub current_password: Option<String>,
    /// An admin setting another user's password: force a change at next login.
    #[serde(default)]
    pub temporary: bool,
}

impl From<SetPassword> for NewPassword {
    fn from(body: SetPassword) -> Self {
        NewPassword {
            password: body.password,
            current_password: body.current_password,
            temporary: body.temporary,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoLinkBody {
    /// The identity provider's `iss` (as in its ID tokens).
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$"
    )]
    pub issuer: String,
    /// The user's `sub` at that provider.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$"
    )]
    pub subject: String,
}

impl From<SsoLinkBody> for SsoLink {
    fn from(body: SsoLinkBody) -> Self {
        SsoLink {
            issuer: body.issuer,
            subject: body.subject,
        }
    }
}
