//! `builtin:native`: SPEC §5.2's rules (Anchore's native authorizer) as a Portcullis
//! plugin of world 0.2.0. The rules live in `portcullis-native-rules`; this crate only maps
//! the WIT types onto them. Settings: none (`{}`); anything else is refused.
//!
//! The rules are about Portcullis users: a question without a `principal` (an AuthZEN
//! subject of another type than `user`, asked of a policy running this plugin) is denied.
//! The resource's properties `account` (the owning account), `changes` and `sso`, and the
//! context's `portcullis.origin`, are read as strings.

// The export glue that `generate!` writes takes one argument per flattened field of a
// request; that is the canonical ABI, not a design choice of ours.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "authorizer", path: "../../wit" });

use portcullis::authorizer::types::AccountType;
use portcullis_native_rules::{decide, AccountType as A, Input};
use serde::Deserialize;
use std::borrow::Cow;

/// The resource properties the rules read (strings; anything else in the object is
/// skipped without being built). A resource whose `account`, `changes` or `sso` is not a
/// string has none of them.
#[derive(Deserialize, Default)]
struct Properties<'a> {
    #[serde(borrow, default)]
    account: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    changes: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    sso: Option<Cow<'a, str>>,
}

/// The context member the rules read.
#[derive(Deserialize, Default)]
struct Context<'a> {
    #[serde(borrow, default, rename = "portcullis.origin")]
    origin: Option<Cow<'a, str>>,
}

/// A JSON object text as `T` (the default when it is `{}` or does not fit).
fn read<'a, T: Deserialize<'a> + Default>(text: &'a str) -> T {
    if text == "{}" {
        return T::default();
    }
    serde_json::from_str(text).unwrap_or_default()
}

struct Native;

impl Guest for Native {
    fn configure(settings: String) -> Result<(), String> {
        match settings.trim() {
            "" | "{}" | "null" => Ok(()),
            other => Err(format!("builtin:native takes no settings, got {other}")),
        }
    }

    fn authorize(r: Request) -> Decision {
        let Some(p) = &r.principal else {
            return Decision {
                allowed: false,
                reasons: vec![format!(
                    "builtin:native decides about Portcullis users only, not {} subjects",
                    r.subject.type_
                )],
                ttl_ms: 0,
            };
        };
        let properties: Properties = read(&r.resource.properties);
        let context: Context = read(&r.context);
        let input = Input {
            username: &p.username,
            account: &p.account,
            account_type: match p.account_type {
                AccountType::Admin => A::Admin,
                AccountType::User => A::User,
                AccountType::Service => A::Service,
            },
            roles: &p.roles,
            action: &r.action.name,
            kind: &r.resource.type_,
            id: &r.resource.id,
            target_account: properties.account.as_deref(),
            changes: properties.changes.as_deref(),
            sso_linked: properties.sso.as_deref() == Some("linked"),
            external: context.origin.as_deref() == Some("external"),
        };
        let out = decide(&input);
        Decision {
            allowed: out.allowed,
            reasons: vec![out.reason],
            ttl_ms: 0,
        }
    }

    fn candidates(_kind: SearchKind, _of_type: String) -> Option<Vec<String>> {
        // The rules are patterns over roles: there is nothing to enumerate.
        None
    }

    fn on_event(_event: Event) -> Result<(), String> {
        Ok(())
    }
}

export!(Native);
