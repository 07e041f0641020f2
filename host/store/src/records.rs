//! Plain records the store reads and writes.

use portcullis_core::{AccountState, AccountType, KeyKind};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub email: Option<String>,
    pub kind: AccountType,
    pub state: AccountState,
    pub created_at: i64,
}

/// A user row joined with its account's type and state.
#[derive(Debug, Clone)]
pub struct User {
    pub username: String,
    pub account: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    /// argon2 PHC string; `None` for users who only use keys, tokens or SSO.
    pub password_hash: Option<String>,
    pub must_change_password: bool,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub last_login_at: Option<i64>,
    pub access_token_status: Option<portcullis_core::AccessTokenStatus>,
    pub created_at: i64,
    pub account_type: AccountType,
    pub account_state: AccountState,
    /// The single sign-on identity this user signs in as, if any.
    pub sso: Option<SsoLink>,
}

/// An SSO identity: the ID token's `iss` and `sub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoLink {
    pub issuer: String,
    pub subject: String,
}

#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub account: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    pub password_hash: Option<String>,
    pub must_change_password: bool,
    /// Set on users created by a single sign-on (their link).
    pub sso: Option<SsoLink>,
}

/// `None` leaves a field as it is; `Some(None)` clears the email.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub email: Option<Option<String>>,
    pub roles: Option<Vec<String>>,
    pub attributes: Option<BTreeMap<String, String>>,
    /// Clear a lockout (failed logins and the lock) without touching the password.
    pub unlock: bool,
}

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: String,
    pub username: String,
    pub name: String,
    pub kind: KeyKind,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

pub struct NewKeyRecord<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub name: &'a str,
    pub kind: KeyKind,
    pub digest: &'a str,
    pub expires_at: Option<i64>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RedeemOutcome {
    Created,
    BadToken,
    UsersExist,
}

pub struct NewAudit<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub outcome: &'a str,
    pub detail: &'a str,
}

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
}

/// An uploaded plugin (without its bytes).
#[derive(Debug, Clone)]
pub struct PluginRecord {
    pub id: String,
    pub name: String,
    pub digest: String,
    pub size: i64,
    pub world_version: String,
    pub created_at: i64,
    pub created_by: String,
}

/// Which plugin every server sharing the database should run. `active_id` is a stored
/// plugin id or `builtin:NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerState {
    pub version: i64,
    pub active_id: String,
    pub active_settings: String,
    pub active_since: i64,
    pub shadow_id: Option<String>,
    pub shadow_settings: Option<String>,
    pub shadow_since: Option<i64>,
    pub changed_by: String,
}

/// Filters of `GET /v1/audit`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<i64>,
}

/// One row of a user import, already validated.
#[derive(Debug, Clone)]
pub struct ImportRow {
    /// The row's line number in the file (the header is row 1).
    pub row: usize,
    pub username: String,
    pub email: Option<String>,
    pub account: String,
    pub roles: Vec<String>,
    pub created_at: Option<i64>,
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    Fail,
    Skip,
    Update,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct ImportReport {
    pub created: u64,
    pub skipped: u64,
    pub updated: u64,
    pub accounts_created: Vec<String>,
    pub errors: Vec<RowError>,
    /// What was read but not imported, by row (the import still happened).
    pub notes: Vec<RowError>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RowError {
    pub row: usize,
    pub error: String,
}
