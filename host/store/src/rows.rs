//! Row mappers: the one place each record is read out of an [`AnyRow`]. Every query that
//! returns a record selects the columns its mapper names and hands the row to it.

use crate::{
    Account, ApiKey, AuditEntry, AuthorizerState, PluginRecord, Result, SsoLink, StoreError, User,
};
use portcullis_core::KeyKind;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::str::FromStr;

fn parse_enum<T: FromStr<Err = String>>(value: &str, what: &str) -> Result<T> {
    value
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("{what} {value:?}: {e}")))
}

/// An [`Account`] from `name, email, type, state, created_at`.
pub(crate) fn account_from_row(row: &AnyRow) -> Result<Account> {
    Ok(Account {
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        kind: parse_enum(&row.try_get::<String, _>("type")?, "account type")?,
        state: parse_enum(&row.try_get::<String, _>("state")?, "account state")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The columns [`user_from_row`] reads, from `users u JOIN accounts a ON a.name = u.account`.
pub(crate) const USER_COLUMNS: &str = "u.username, u.account, u.email, u.roles, u.attributes, u.password_hash, u.must_change_password, u.failed_logins, u.locked_until, u.last_login_at, u.access_token_status, u.created_at, u.sso_issuer, u.sso_subject, a.type AS account_type, a.state AS account_state";

/// A [`User`] from [`USER_COLUMNS`].
pub(crate) fn user_from_row(row: &AnyRow) -> Result<User> {
    let roles: String = row.try_get("roles")?;
    let attributes: String = row.try_get("attributes")?;
    Ok(User {
        username: row.try_get("username")?,
        account: row.try_get("account")?,
        email: row.try_get("email")?,
        roles: serde_json::from_str(&roles)
            .map_err(|e| StoreError::Corrupt(format!("roles: {e}")))?,
        attributes: serde_json::from_str(&attributes)
            .map_err(|e| StoreError::Corrupt(format!("attributes: {e}")))?,
        password_hash: row.try_get("password_hash")?,
        must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
        failed_logins: row.try_get("failed_logins")?,
        locked_until: row.try_get("locked_until")?,
        last_login_at: row.try_get("last_login_at")?,
        access_token_status: row
            .try_get::<Option<String>, _>("access_token_status")?
            .map(|s| parse_enum(&s, "access token status"))
            .transpose()?,
        created_at: row.try_get("created_at")?,
        account_type: parse_enum(&row.try_get::<String, _>("account_type")?, "account type")?,
        account_state: parse_enum(&row.try_get::<String, _>("account_state")?, "account state")?,
        sso: match (
            row.try_get::<Option<String>, _>("sso_issuer")?,
            row.try_get::<Option<String>, _>("sso_subject")?,
        ) {
            (Some(issuer), Some(subject)) => Some(SsoLink { issuer, subject }),
            _ => None,
        },
    })
}

/// An [`ApiKey`] from `id, username, name, kind, last_used_at, expires_at, revoked_at` and
/// the key's creation time in the column `created_at`: `"created_at"` when the key is read
/// on its own, `"key_created_at"` when it is joined with its user (whose `created_at` is
/// in the same row).
pub(crate) fn api_key_from_row(row: &AnyRow, created_at: &str) -> Result<ApiKey> {
    Ok(ApiKey {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        name: row.try_get("name")?,
        kind: parse_enum::<KeyKind>(&row.try_get::<String, _>("kind")?, "key kind")?,
        created_at: row.try_get(created_at)?,
        last_used_at: row.try_get("last_used_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// An [`AuditEntry`] from `id, at, actor, action, target, outcome, detail`.
pub(crate) fn audit_entry_from_row(r: &AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        outcome: r.try_get("outcome")?,
        detail: r.try_get("detail")?,
    })
}

/// A [`PluginRecord`] from `id, name, digest, size, world_version, created_at, created_by`
/// (never the bytes).
pub(crate) fn plugin_from_row(r: &AnyRow) -> Result<PluginRecord> {
    Ok(PluginRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        digest: r.try_get("digest")?,
        size: r.try_get("size")?,
        world_version: r.try_get("world_version")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

/// An [`AuthorizerState`] from `version, active_id, active_settings, active_since,
/// shadow_id, shadow_settings, shadow_since, changed_by`.
pub(crate) fn authorizer_state_from_row(r: &AnyRow) -> Result<AuthorizerState> {
    Ok(AuthorizerState {
        version: r.try_get("version")?,
        active_id: r.try_get("active_id")?,
        active_settings: r.try_get("active_settings")?,
        active_since: r.try_get("active_since")?,
        shadow_id: r.try_get("shadow_id")?,
        shadow_settings: r.try_get("shadow_settings")?,
        shadow_since: r.try_get("shadow_since")?,
        changed_by: r.try_get("changed_by")?,
    })
}
