//! The authorization seam: the request every decision is asked with, the decision that
//! comes back, the [`Authorizer`] trait, and [`NativeRules`] — §5.2's rules in plain Rust.
//!
//! The shapes mirror the WIT world (`wit/`): a principal, an action, a target, a context.
//! The server builds one [`Request`] per decision and asks the active authorizer; nothing
//! in the server decides on its own.

use crate::model::AccountType;
use serde::{Deserialize, Serialize};

/// Context keys under this prefix are set by the host only; values a client sends under
/// it are dropped.
pub const RESERVED_CONTEXT_PREFIX: &str = "portcullis.";
/// Context key naming where a decision comes from: `management` (a `/v1` call) or
/// `external` (`/v1/authorize`, AuthZEN).
pub const CONTEXT_ORIGIN: &str = "portcullis.origin";

/// The management actions (§5.1). Any other action string is an outside application's.
pub mod actions {
    pub const ACCOUNTS_LIST: &str = "accounts.list";
    pub const ACCOUNTS_READ: &str = "accounts.read";
    pub const ACCOUNTS_CREATE: &str = "accounts.create";
    pub const ACCOUNTS_UPDATE: &str = "accounts.update";
    pub const ACCOUNTS_DELETE: &str = "accounts.delete";
    pub const USERS_LIST: &str = "users.list";
    pub const USERS_READ: &str = "users.read";
    pub const USERS_CREATE: &str = "users.create";
    pub const USERS_UPDATE: &str = "users.update";
    pub const USERS_DELETE: &str = "users.delete";
    pub const USERS_SET_PASSWORD: &str = "users.set-password";
    pub const KEYS_LIST: &str = "keys.list";
    pub const KEYS_CREATE: &str = "keys.create";
    pub const KEYS_DELETE: &str = "keys.delete";
    pub const ACCESS_TOKENS_REQUEST: &str = "access-tokens.request";
    pub const ACCESS_TOKENS_GRANT: &str = "access-tokens.grant";
    pub const ACCESS_TOKENS_REVOKE: &str = "access-tokens.revoke";
    pub const USERS_EXPORT: &str = "users.export";
    pub const USERS_IMPORT: &str = "users.import";
    pub const PLUGINS_LIST: &str = "plugins.list";
    pub const PLUGINS_READ: &str = "plugins.read";
    pub const PLUGINS_UPLOAD: &str = "plugins.upload";
    pub const PLUGINS_ACTIVATE: &str = "plugins.activate";
    pub const DECISIONS_READ: &str = "decisions.read";
    pub const AUDIT_READ: &str = "audit.read";
    pub const AUTHORIZE_EVALUATE: &str = "authorize.evaluate";
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Principal {
    pub username: String,
    pub account: String,
    pub account_type: AccountType,
    pub roles: Vec<String>,
    pub attributes: Vec<(String, String)>,
}

/// What is acted on. `kind` is `account`, `user`, `plugin`, `audit`, … for management
/// calls; anything for outside applications.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    pub kind: String,
    pub id: String,
    pub account: Option<String>,
    pub attributes: Vec<(String, String)>,
}

impl Target {
    pub fn new(kind: &str, id: &str, account: Option<&str>) -> Self {
        Target {
            kind: kind.into(),
            id: id.into(),
            account: account.map(Into::into),
            attributes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Request {
    pub principal: Principal,
    pub action: String,
    pub target: Target,
    pub context: Vec<(String, String)>,
}

impl Request {
    pub fn context_value(&self, key: &str) -> Option<&str> {
        self.context
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allowed: bool,
    pub reasons: Vec<String>,
    /// How long the host may reuse this decision for an identical request.
    pub ttl_ms: u32,
}

impl Decision {
    pub fn allow(reason: impl Into<String>) -> Self {
        Decision {
            allowed: true,
            reasons: vec![reason.into()],
            ttl_ms: 0,
        }
    }
    pub fn deny(reason: impl Into<String>) -> Self {
        Decision {
            allowed: false,
            reasons: vec![reason.into()],
            ttl_ms: 0,
        }
    }
}

/// Lifecycle notifications for the authorizer (Anchore's domain/principal events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    AccountCreated(String),
    AccountDeleted(String),
    UserCreated(Principal),
    UserDeleted(String),
}

/// The one seam every decision goes through. Implementations must never panic; a failure
/// inside the authorizer is a deny whose reason says what failed.
pub trait Authorizer: Send + Sync {
    /// A short name for logs and `GET /v1/authorizer` (e.g. `builtin:native`).
    fn name(&self) -> String;
    fn authorize(&self, request: &Request) -> Decision;
    /// Tell the authorizer about a lifecycle event; failures are the authorizer's to log.
    fn notify(&self, _event: &Event) {}
}

/// §5.2's rules (Anchore's native authorizer) in plain Rust.
#[derive(Debug, Default, Clone, Copy)]
pub struct NativeRules;

impl Authorizer for NativeRules {
    fn name(&self) -> String {
        "builtin:native".into()
    }
    fn authorize(&self, request: &Request) -> Decision {
        native_decide(request)
    }
}

/// `*` matches any run of characters (including none); everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None, 0usize);
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Anchore-style permission strings `domain:action:target` from the principal's roles.
/// `domain` matches the target's account (`*` when it has none), `action` the requested
/// action, `target` the string `kind/id`.
fn permission_match(request: &Request) -> Option<String> {
    let domain = request.target.account.as_deref().unwrap_or("");
    let target = format!("{}/{}", request.target.kind, request.target.id);
    request.principal.roles.iter().find_map(|role| {
        let mut parts = role.splitn(3, ':');
        let (d, a, t) = (parts.next()?, parts.next()?, parts.next()?);
        let domain_ok = if domain.is_empty() {
            d == "*"
        } else {
            glob_match(d, domain)
        };
        (domain_ok && glob_match(a, &request.action) && glob_match(t, &target)).then(|| {
            format!(
                "role {role} permits {}:{}:{target}",
                if domain.is_empty() { "*" } else { domain },
                request.action
            )
        })
    })
}

pub fn native_decide(request: &Request) -> Decision {
    use actions::*;
    let p = &request.principal;
    let t = &request.target;
    let action = request.action.as_str();

    if matches!(p.account_type, AccountType::Admin | AccountType::Service) {
        return Decision::allow(format!("account type {} may do everything", p.account_type));
    }

    if request.context_value(CONTEXT_ORIGIN) == Some("external") {
        return match permission_match(request) {
            Some(reason) => Decision::allow(reason),
            None => Decision::deny(format!(
                "no role of {} grants {}:{action}:{}/{}",
                p.username,
                t.account.as_deref().unwrap_or("*"),
                t.kind,
                t.id
            )),
        };
    }

    let is_self = t.kind == "user" && t.id == p.username;
    let own_account = t.account.as_deref() == Some(p.account.as_str());

    // Anyone: read itself, change its own password, manage its own keys, request (and
    // give up) its own access token.
    if is_self
        && matches!(
            action,
            USERS_READ
                | USERS_SET_PASSWORD
                | KEYS_LIST
                | KEYS_CREATE
                | KEYS_DELETE
                | ACCESS_TOKENS_REQUEST
                | ACCESS_TOKENS_REVOKE
        )
    {
        return Decision::allow(format!("{} may {action} itself", p.username));
    }

    // A user account acts on its own account and on the users and keys inside it, but
    // does not change account state, delete accounts, grant tokens, manage plugins, or
    // read the audit log.
    if own_account {
        // Roles and attributes carry privileges (permission strings, plugin inputs): a
        // user account may not hand them out, even inside itself.
        let privileged = t.attributes.iter().any(|(k, v)| {
            k == "changes" && v.split(',').any(|f| f == "roles" || f == "attributes")
        });
        if privileged && matches!(action, USERS_CREATE | USERS_UPDATE) {
            return Decision::deny(format!(
                "account type user may not set roles or attributes ({action} on {}/{})",
                t.kind, t.id
            ));
        }
        let allowed = match t.kind.as_str() {
            "account" => matches!(action, ACCOUNTS_READ | USERS_LIST),
            "user" => matches!(
                action,
                USERS_READ
                    | USERS_CREATE
                    | USERS_UPDATE
                    | USERS_DELETE
                    | USERS_SET_PASSWORD
                    | KEYS_LIST
                    | KEYS_CREATE
                    | KEYS_DELETE
            ),
            _ => false,
        };
        if allowed {
            return Decision::allow(format!(
                "{} may {action} inside its own account {}",
                p.username, p.account
            ));
        }
    }

    Decision::deny(format!(
        "account type user may not {action} on {}/{}",
        t.kind, t.id
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "abc"));
        assert!(glob_match("doc/*", "doc/42"));
        assert!(!glob_match("doc/*", "img/42"));
        assert!(glob_match("a*c*e", "abcde"));
        assert!(!glob_match("a*c*e", "abcd"));
        assert!(glob_match("read", "read"));
        assert!(!glob_match("read", "reads"));
    }
}
