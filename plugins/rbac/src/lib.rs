//! `rbac`: an example authorizer whose settings map role names to permission patterns.
//!
//! ```json
//! {
//!   "roles": {
//!     "auditor": ["audit.read", "decisions.read", "users.list", "users.read", "accounts.read"],
//!     "doc-reader": ["read:document/*"]
//!   },
//!   "deny": [{ "action": "accounts.delete", "reason": "accounts are archived, never deleted" }],
//!   "admins": true,
//!   "ttl_ms": 0
//! }
//! ```
//!
//! - A pattern is `ACTION` or `ACTION:KIND/ID`, each side with `*` wildcards.
//! - `deny` rules are checked first and win; each may also name a `target` pattern.
//! - `admins: true` (default) lets principals of `admin`-type accounts do everything not
//!   denied, so an operator cannot lock themselves out by forgetting a role.
//! - Every decision says which role, pattern or rule decided it.

// The export glue that `generate!` writes takes one argument per flattened field of a
// request; that is the canonical ABI, not a design choice of ours.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "authorizer", path: "../../wit" });

use portcullis::authorizer::types::AccountType;
use portcullis_native_rules::glob_match;
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::BTreeMap;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    roles: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    deny: Vec<DenyRule>,
    #[serde(default = "yes")]
    admins: bool,
    #[serde(default)]
    ttl_ms: u32,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyRule {
    action: String,
    #[serde(default)]
    target: Option<String>,
    reason: String,
}

thread_local! {
    static SETTINGS: RefCell<Settings> = RefCell::new(Settings::default());
}

fn matches(pattern: &str, action: &str, target: &str) -> bool {
    match pattern.split_once(':') {
        Some((a, t)) => glob_match(a, action) && glob_match(t, target),
        None => glob_match(pattern, action),
    }
}

struct Rbac;

impl Guest for Rbac {
    fn configure(settings: String) -> Result<(), String> {
        let parsed: Settings =
            serde_json::from_str(&settings).map_err(|e| format!("rbac settings: {e}"))?;
        for (role, patterns) in &parsed.roles {
            if patterns.iter().any(|p| p.is_empty()) {
                return Err(format!("rbac settings: role {role} has an empty pattern"));
            }
        }
        SETTINGS.with(|s| *s.borrow_mut() = parsed);
        Ok(())
    }

    fn authorize(r: Request) -> Decision {
        SETTINGS.with(|s| {
            let s = s.borrow();
            let target = format!("{}/{}", r.resource.type_, r.resource.id);
            let action = r.action.name.as_str();
            let decision = |allowed: bool, reason: String| Decision {
                allowed,
                reasons: vec![reason],
                ttl_ms: s.ttl_ms,
            };
            for rule in &s.deny {
                if glob_match(&rule.action, action)
                    && rule
                        .target
                        .as_deref()
                        .is_none_or(|t| glob_match(t, &target))
                {
                    return decision(false, format!("deny rule {}: {}", rule.action, rule.reason));
                }
            }
            // Roles belong to Portcullis users: another AuthZEN subject has none.
            let Some(principal) = &r.principal else {
                return decision(false, format!("{} subjects have no roles", r.subject.type_));
            };
            if s.admins && principal.account_type == AccountType::Admin {
                return decision(true, "admin accounts may do everything not denied".into());
            }
            for role in &principal.roles {
                if let Some(patterns) = s.roles.get(role) {
                    if let Some(p) = patterns.iter().find(|p| matches(p, action, &target)) {
                        return decision(true, format!("role {role} grants {p}"));
                    }
                }
            }
            decision(
                false,
                format!(
                    "no role of {} grants {action} on {target}",
                    principal.username
                ),
            )
        })
    }

    fn candidates(_kind: SearchKind, _of_type: String) -> Option<Vec<String>> {
        // Patterns, not lists: nothing to enumerate.
        None
    }

    fn on_event(_event: Event) -> Result<(), String> {
        Ok(())
    }
}

export!(Rbac);
