//! The rules of the native authorizer (SPEC §5.2, Anchore's native rules), as pure Rust
//! over borrowed inputs. No dependencies and no allocation on the allow path for admins,
//! so the same code runs inside the `builtin:native` WebAssembly plugin and, natively,
//! as the benchmark peer "the same rules as plain Rust".
#![no_std]
extern crate alloc;

use alloc::format;
use alloc::string::String;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountType {
    Admin,
    User,
    Service,
}

/// One request, borrowed from whatever representation the caller has.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub username: &'a str,
    pub account: &'a str,
    pub account_type: AccountType,
    pub roles: &'a [String],
    pub action: &'a str,
    pub kind: &'a str,
    pub id: &'a str,
    pub target_account: Option<&'a str>,
    /// The target attribute `changes` (comma-separated fields a create/update writes).
    pub changes: Option<&'a str>,
    /// The target attribute `sso = linked`: the target user signs in with single sign-on.
    pub sso_linked: bool,
    /// `portcullis.origin = external`: an outside application's decision.
    pub external: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    pub reason: String,
}

fn allow(reason: String) -> Outcome {
    Outcome {
        allowed: true,
        reason,
    }
}
fn deny(reason: String) -> Outcome {
    Outcome {
        allowed: false,
        reason,
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

/// Does permission string `domain:action:target` grant `action` on `kind/id` in `domain`?
/// The target part is matched against `kind/id`; a request without an account only
/// matches the domain `*`.
pub fn permission_grants(
    role: &str,
    domain: Option<&str>,
    action: &str,
    kind: &str,
    id: &str,
) -> bool {
    let mut parts = role.splitn(3, ':');
    let (Some(d), Some(a), Some(t)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let domain_ok = match domain {
        Some(dom) => glob_match(d, dom),
        None => d == "*",
    };
    if !domain_ok || !glob_match(a, action) {
        return false;
    }
    // Match `t` against "kind/id" without allocating.
    match t.split_once('/') {
        Some((tk, ti)) if !tk.contains('*') => tk == kind && glob_match(ti, id),
        _ => glob_match(t, &format!("{kind}/{id}")),
    }
}

const SELF_ACTIONS: &[&str] = &[
    "users.read",
    "users.set-password",
    "keys.list",
    "keys.create",
    "keys.delete",
    "access-tokens.request",
    "access-tokens.revoke",
];
const OWN_ACCOUNT_ON_ACCOUNT: &[&str] = &["accounts.read", "users.list"];
const OWN_ACCOUNT_ON_USER: &[&str] = &[
    "users.read",
    "users.create",
    "users.update",
    "users.delete",
    "users.set-password",
    "keys.list",
    "keys.create",
    "keys.delete",
];

pub fn decide(i: &Input<'_>) -> Outcome {
    match i.account_type {
        AccountType::Admin => return allow(String::from("account type admin may do everything")),
        AccountType::Service => {
            return allow(String::from("account type service may do everything"))
        }
        AccountType::User => {}
    }
    if i.external {
        for role in i.roles {
            if permission_grants(role, i.target_account, i.action, i.kind, i.id) {
                return allow(format!(
                    "role {role} grants {}:{}:{}/{}",
                    i.target_account.unwrap_or("*"),
                    i.action,
                    i.kind,
                    i.id
                ));
            }
        }
        return deny(format!(
            "no role of {} grants {}:{}:{}/{}",
            i.username,
            i.target_account.unwrap_or("*"),
            i.action,
            i.kind,
            i.id
        ));
    }
    let is_self = i.kind == "user" && i.id == i.username;
    if is_self && SELF_ACTIONS.contains(&i.action) {
        return allow(format!("{} may {} itself", i.username, i.action));
    }
    // Users who sign in with single sign-on share one account (`oidc.account`): a fellow
    // member must not mint keys for one, reset its password or delete it (and take its
    // name) — only the user itself or an administrator.
    if i.kind == "user" && !is_self && i.sso_linked && i.action != "users.read" {
        return deny(format!(
            "{} signs in with single sign-on: only an administrator may {} it",
            i.id, i.action
        ));
    }
    if i.target_account == Some(i.account) {
        // Roles and attributes carry privileges: a user account may not hand them out,
        // even inside itself; nor clear a lockout (a stolen key could then guess the
        // password with no lockout to stop it, or unlock a fellow member silently).
        let privileged = i.changes.is_some_and(|c| {
            c.split(',')
                .any(|f| f == "roles" || f == "attributes" || f == "lockout")
        });
        if privileged && (i.action == "users.create" || i.action == "users.update") {
            return deny(format!(
                "account type user may not set roles or attributes, or clear a lockout ({} on {}/{})",
                i.action, i.kind, i.id
            ));
        }
        let allowed = match i.kind {
            "account" => OWN_ACCOUNT_ON_ACCOUNT.contains(&i.action),
            "user" => OWN_ACCOUNT_ON_USER.contains(&i.action),
            _ => false,
        };
        if allowed {
            return allow(format!(
                "{} may {} inside its own account {}",
                i.username, i.action, i.account
            ));
        }
    }
    deny(format!(
        "account type user may not {} on {}/{}",
        i.action, i.kind, i.id
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("doc/*", "doc/42"));
        assert!(!glob_match("doc/*", "img/42"));
        assert!(glob_match("a*c*e", "abcde"));
        assert!(!glob_match("a*c*e", "abcd"));
        assert!(!glob_match("read", "reads"));
    }

    #[test]
    fn permission_strings() {
        assert!(permission_grants(
            "acme:read:*",
            Some("acme"),
            "read",
            "doc",
            "1"
        ));
        assert!(permission_grants(
            "acme:read:doc/*",
            Some("acme"),
            "read",
            "doc",
            "1"
        ));
        assert!(!permission_grants(
            "acme:read:doc/*",
            Some("acme"),
            "read",
            "img",
            "1"
        ));
        assert!(!permission_grants(
            "acme:read:*",
            Some("beta"),
            "read",
            "doc",
            "1"
        ));
        assert!(!permission_grants("acme:read:*", None, "read", "doc", "1"));
        assert!(permission_grants("*:*:*", None, "write", "doc", "1"));
        assert!(permission_grants(
            "acme:*:d*c/1",
            Some("acme"),
            "x",
            "doc",
            "1"
        ));
        assert!(!permission_grants(
            "broken",
            Some("acme"),
            "read",
            "doc",
            "1"
        ));
    }
}
