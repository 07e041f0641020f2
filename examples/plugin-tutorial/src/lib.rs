//! Attribute matching: a user may act on a resource when they share the value of one
//! attribute (by default `department`). Administrators manage Portcullis; everyone may
//! read themselves. See docs/writing-plugins.md, which builds this file step by step.

// The export glue that `generate!` writes takes one argument per flattened field of a
// request; that is the canonical ABI, not a design choice of ours.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "authorizer", path: "../../wit" });

use portcullis::authorizer::host::{log, Level};
use portcullis::authorizer::types::AccountType;
use serde_json::{Map, Value};
use std::cell::RefCell;

thread_local! {
    /// The attribute to compare, from the settings (`{"attribute": "team"}`).
    static ATTRIBUTE: RefCell<String> = RefCell::new("department".to_string());
}

/// Properties and context arrive as the text of one JSON object.
fn members(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
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
        // `{}` or `{"attribute": "NAME"}`.
        let settings: Map<String, Value> = serde_json::from_str(&settings)
            .map_err(|e| format!("settings must be a JSON object: {e}"))?;
        if let Some(name) = settings.get("attribute") {
            let name = name
                .as_str()
                .filter(|n| !n.is_empty())
                .ok_or("attribute must be a non-empty string")?;
            ATTRIBUTE.with(|a| *a.borrow_mut() = name.to_string());
        }
        let name = ATTRIBUTE.with(|a| a.borrow().clone());
        log(
            Level::Info,
            &format!("plugin-tutorial compares attribute {name}"),
        );
        Ok(())
    }

    fn authorize(r: Request) -> Decision {
        // Only Portcullis users have attributes: other subjects are denied.
        let Some(p) = &r.principal else {
            return decision(
                false,
                format!("{} subjects have no attributes", r.subject.type_),
            );
        };
        let context = members(&r.context);
        let external = context.get("portcullis.origin").and_then(Value::as_str) == Some("external");
        if !external {
            if p.account_type == AccountType::Admin {
                return decision(true, "administrators manage Portcullis".into());
            }
            if r.action.name == "users.read"
                && r.resource.type_ == "user"
                && r.resource.id == p.username
            {
                return decision(true, "everyone may read themselves".into());
            }
            return decision(false, format!("only administrators may {}", r.action.name));
        }
        let attribute = ATTRIBUTE.with(|a| a.borrow().clone());
        let mine = p
            .attributes
            .iter()
            .find(|(k, _)| *k == attribute)
            .map(|(_, v)| v.as_str());
        let properties = members(&r.resource.properties);
        let theirs = properties.get(&attribute).and_then(Value::as_str);
        match (mine, theirs) {
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

    fn candidates(_kind: SearchKind, _of_type: String) -> Option<Vec<String>> {
        // Resources live in the application: nothing to enumerate.
        None
    }

    fn on_event(_event: Event) -> Result<(), String> {
        Ok(())
    }
}

export!(Tutorial);
