//! The stable names the API and the audit log show: error codes and audit actions. Each is
//! written once, here; clients and log readers may match on them, so a name never changes
//! once released (add new ones instead).

/// Every `error.code` the API answers with. The HTTP status of each is fixed in
/// `portcullis-server` (`error::status_of`, an exhaustive match).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A field of the request is malformed (the message names it).
    InvalidRequest,
    /// No valid API key was presented.
    Unauthorized,
    /// A login with a wrong username or password (one answer for every cause).
    InvalidCredentials,
    /// An SSO ID token was not accepted.
    InvalidToken,
    /// The password is temporary: log in again with `new_password`.
    PasswordChangeRequired,
    /// The authorizer denied the action (the reasons say why).
    Forbidden,
    /// Changing one's own password needs `current_password`.
    CurrentPasswordRequired,
    /// `current_password` does not match.
    InvalidCurrentPassword,
    /// Too many wrong passwords: the user is locked for a while.
    UserLocked,
    NotFound,
    /// `POST /v1/login/oidc` on a server without `[oidc]`.
    SsoNotConfigured,
    AlreadyExists,
    /// A write conflicted with another (retry).
    Conflict,
    /// The resource is not in a state that allows this change.
    InvalidStateTransition,
    /// `[users] default_account` names an account that is not a `user` account.
    InvalidDefaultAccount,
    /// The built-in admin user cannot be deleted.
    ProtectedUser,
    /// The uploaded bytes are not a plugin this server can run.
    InvalidPlugin,
    /// `authorizer.max_stored_plugins` is reached.
    PluginStoreFull,
    /// A plugin failed the activation self-check.
    SelfCheckFailed,
    /// The plugin's `configure` refused the settings.
    PluginConfigureFailed,
    /// The plugin could not be loaded (compiled, instantiated, found).
    PluginLoadFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    /// The password hashing queue is full: retry shortly.
    Busy,
    /// The database does not answer (`database_timeout`): retry shortly.
    StoreUnavailable,
    Internal,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 27] = [
        ErrorCode::InvalidRequest,
        ErrorCode::Unauthorized,
        ErrorCode::InvalidCredentials,
        ErrorCode::InvalidToken,
        ErrorCode::PasswordChangeRequired,
        ErrorCode::Forbidden,
        ErrorCode::CurrentPasswordRequired,
        ErrorCode::InvalidCurrentPassword,
        ErrorCode::UserLocked,
        ErrorCode::NotFound,
        ErrorCode::SsoNotConfigured,
        ErrorCode::AlreadyExists,
        ErrorCode::Conflict,
        ErrorCode::InvalidStateTransition,
        ErrorCode::InvalidDefaultAccount,
        ErrorCode::ProtectedUser,
        ErrorCode::InvalidPlugin,
        ErrorCode::PluginStoreFull,
        ErrorCode::SelfCheckFailed,
        ErrorCode::PluginConfigureFailed,
        ErrorCode::PluginLoadFailed,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::RateLimited,
        ErrorCode::Busy,
        ErrorCode::StoreUnavailable,
        ErrorCode::Internal,
    ];

    /// The snake_case name clients see.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::PasswordChangeRequired => "password_change_required",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::CurrentPasswordRequired => "current_password_required",
            ErrorCode::InvalidCurrentPassword => "invalid_current_password",
            ErrorCode::UserLocked => "user_locked",
            ErrorCode::NotFound => "not_found",
            ErrorCode::SsoNotConfigured => "sso_not_configured",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::Conflict => "conflict",
            ErrorCode::InvalidStateTransition => "invalid_state_transition",
            ErrorCode::InvalidDefaultAccount => "invalid_default_account",
            ErrorCode::ProtectedUser => "protected_user",
            ErrorCode::InvalidPlugin => "invalid_plugin",
            ErrorCode::PluginStoreFull => "plugin_store_full",
            ErrorCode::SelfCheckFailed => "self_check_failed",
            ErrorCode::PluginConfigureFailed => "plugin_configure_failed",
            ErrorCode::PluginLoadFailed => "plugin_load_failed",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Busy => "busy",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an audit entry records was done (`action` column, `GET /v1/audit?action=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    Login,
    LoginOidc,
    Logout,
    AccountsCreate,
    AccountsUpdate,
    AccountsDelete,
    UsersCreate,
    UsersUpdate,
    UsersDelete,
    UsersSetPassword,
    UsersLinkSso,
    UsersRecoverAdmin,
    UsersImport,
    UsersExport,
    KeysCreate,
    KeysDelete,
    AccessTokensRequest,
    AccessTokensGrant,
    AccessTokensRevoke,
    IactCreate,
    IactRedeem,
    PluginsUpload,
    PluginsActivate,
    PoliciesWrite,
    PoliciesDelete,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Login => "login",
            AuditAction::LoginOidc => "login.oidc",
            AuditAction::Logout => "logout",
            AuditAction::AccountsCreate => "accounts.create",
            AuditAction::AccountsUpdate => "accounts.update",
            AuditAction::AccountsDelete => "accounts.delete",
            AuditAction::UsersCreate => "users.create",
            AuditAction::UsersUpdate => "users.update",
            AuditAction::UsersDelete => "users.delete",
            AuditAction::UsersSetPassword => "users.set-password",
            AuditAction::UsersLinkSso => "users.link-sso",
            AuditAction::UsersRecoverAdmin => "users.recover-admin",
            AuditAction::UsersImport => "users.import",
            AuditAction::UsersExport => "users.export",
            AuditAction::KeysCreate => "keys.create",
            AuditAction::KeysDelete => "keys.delete",
            AuditAction::AccessTokensRequest => "access-tokens.request",
            AuditAction::AccessTokensGrant => "access-tokens.grant",
            AuditAction::AccessTokensRevoke => "access-tokens.revoke",
            AuditAction::IactCreate => "iact.create",
            AuditAction::IactRedeem => "iact.redeem",
            AuditAction::PluginsUpload => "plugins.upload",
            AuditAction::PluginsActivate => "plugins.activate",
            AuditAction::PoliciesWrite => "policies.write",
            AuditAction::PoliciesDelete => "policies.delete",
        }
    }
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_distinct_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            let s = c.as_str();
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s}"
            );
            assert!(seen.insert(s), "{s} twice");
        }
    }
}
