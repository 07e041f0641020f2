//! Attribute matching: a user may act on a resource when they share the value of one
//! attribute (by default `department`). Administrators manage Portcullis; everyone may
//! read themselves. See docs/writing-plugins.md, which builds this file step by step.

// The export glue that `generate!` writes takes one argument per flattened field of a
// request; that is the canonical ABI, not a design choice of ours.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "authorizer", path: "../../wit/0.1.0" });

use portcullis::authorizer::host::{log, Level};
use portcullis::authorizer::types::AccountType;
use std::cell::RefCell;

thread_local! {
    /// The attribute to compare, from the settings (`{"attribute": "team"}`).
    static ATTRIBUTE: RefCell<String> = RefCell::new("department".to_string());
}

fn lookup<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn decision(allowed: bool, reason: String) -> Decision {
    Decision {
        allowed,
        reasons: vec![reason],
        ttl_ms: 0,
    }
}

struct Tutorial;

impl Guest for Tutorial {
    fn configure(settings: String) -> Result<(), String> {
        // A tiny hand-written parser keeps the tutorial free of dependencies: accept `{}`
        // or `{"attribute": "NAME"}`.
        let s = settings.trim();
        if s == "{}" {
            return Ok(());
        }
        let name = s
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .and_then(|s| s.trim().strip_prefix("\"attribute\""))
            .and_then(|s| s.trim().strip_prefix(':'))
            .map(|s| s.trim().trim_matches('"'))
            .filter(|s| !s.is_empty() && !s.contains('"'))
            .ok_or_else(|| format!("expected {{\"attribute\": \"NAME\"}}, got {s}"))?;
        ATTRIBUTE.with(|a| *a.borrow_mut() = name.to_string());
        log(
            Level::Info,
            &format!("plugin-tutorial compares attribute {name}"),
        );
        Ok(())
    }

    fn authorize(r: Request) -> Decision {
        let p = &r.principal;
        let external = lookup(&r.context, "portcullis.origin") == Some("external");
        if !external {
            if p.account_type == AccountType::Admin {
                return decision(true, "administrators manage Portcullis".into());
            }
            if r.action == "users.read" && r.target.kind == "user" && r.target.id == p.username {
                return decision(true, "everyone may read themselves".into());
            }
            return decision(false, format!("only administrators may {}", r.action));
        }
        let attribute = ATTRIBUTE.with(|a| a.borrow().clone());
        match (
            lookup(&p.attributes, &attribute),
            lookup(&r.target.attributes, &attribute),
        ) {
            (Some(mine), Some(theirs)) if mine == theirs => {
                decision(true, format!("{attribute} {mine} matches the resource's"))
            }
            (Some(mine), Some(theirs)) => decision(
                false,
                format!("{attribute} {mine} differs from the resource's {theirs}"),
            ),
            (None, _) => decision(
                false,
                format!("{} has no {attribute} attribute", p.username),
            ),
            (_, None) => decision(false, format!("the resource has no {attribute} attribute")),
        }
    }

    fn on_event(_event: Event) -> Result<(), String> {
        Ok(())
    }
}

export!(Tutorial);
