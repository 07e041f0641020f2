//! `builtin:native`: SPEC §5.2's rules (Anchore's native authorizer) as a Portcullis
//! plugin. The rules live in `portcullis-native-rules`; this crate only maps the WIT
//! types onto them. Settings: none (`{}`); anything else is refused.

// The export glue that `generate!` writes takes one argument per flattened field of a
// request; that is the canonical ABI, not a design choice of ours.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "authorizer", path: "../../wit/0.1.0" });

use portcullis::authorizer::types::AccountType;
use portcullis_native_rules::{decide, AccountType as A, Input};

struct Native;

impl Guest for Native {
    fn configure(settings: String) -> Result<(), String> {
        match settings.trim() {
            "" | "{}" | "null" => Ok(()),
            other => Err(format!("builtin:native takes no settings, got {other}")),
        }
    }

    fn authorize(r: Request) -> Decision {
        let ctx = |key: &str| {
            r.context
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let input = Input {
            username: &r.principal.username,
            account: &r.principal.account,
            account_type: match r.principal.account_type {
                AccountType::Admin => A::Admin,
                AccountType::User => A::User,
                AccountType::Service => A::Service,
            },
            roles: &r.principal.roles,
            action: &r.action,
            kind: &r.target.kind,
            id: &r.target.id,
            target_account: r.target.account.as_deref(),
            changes: r
                .target
                .attributes
                .iter()
                .find(|(k, _)| k == "changes")
                .map(|(_, v)| v.as_str()),
            sso_linked: r
                .target
                .attributes
                .iter()
                .any(|(k, v)| k == "sso" && v == "linked"),
            external: ctx("portcullis.origin") == Some("external"),
        };
        let out = decide(&input);
        Decision {
            allowed: out.allowed,
            reasons: vec![out.reason],
            ttl_ms: 0,
        }
    }

    fn on_event(_event: Event) -> Result<(), String> {
        Ok(())
    }
}

export!(Native);
