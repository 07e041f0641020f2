//! `records`: the policies the OpenID AuthZEN conformance material describes for resources
//! of type `record`, as a plugin of world 0.2.0. A test fixture (`tests/api/authzen.rs`),
//! and an example of a policy that reads JSON properties and enumerates for search.
//!
//! Settings: `{"rules": "search" | "certification", "records": {"<id>": {…properties}},
//! "writers": ["alice"]}`. Subjects are Portcullis users: their attributes are the stored
//! subject properties, overlaid by the request's `subject.properties`; a record's stored
//! properties are overlaid by `resource.properties` the same way.
//!
//! - `search` (interop search and IdP sets): `view` when the user owns the record, shares
//!   its `department`, or has `role` `manager`; `edit` when the user owns it, or shares its
//!   department as a manager; `delete` when the user owns it.
//! - `certification` (the scenario's fixture C-1): `read` for any known user on a known
//!   record; `write` on an `archived` record for `role` `admin`, otherwise for `writers`;
//!   `delete` for `writers` when `action.properties.soft` is `true`.

// The export glue that `generate!` writes takes one argument per flattened field of a
// request; that is the canonical ABI, not a design choice of ours.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "authorizer", path: "../../wit" });

use serde::Deserialize;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Rules {
    #[default]
    Search,
    Certification,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    rules: Rules,
    #[serde(default)]
    records: BTreeMap<String, Map<String, Value>>,
    #[serde(default)]
    writers: Vec<String>,
}

thread_local! {
    static SETTINGS: RefCell<Settings> = RefCell::new(Settings::default());
}

fn answer(allowed: bool, reason: impl Into<String>) -> Decision {
    Decision {
        allowed,
        reasons: vec![reason.into()],
        ttl_ms: 0,
    }
}

fn members(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

/// `base` overlaid by the members of the JSON object text `sent`.
fn overlay(mut base: Map<String, Value>, sent: &str) -> Map<String, Value> {
    base.extend(members(sent));
    base
}

fn text<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

fn decide(r: &Request, s: &Settings) -> Decision {
    let Some(p) = &r.principal else {
        return answer(
            false,
            format!("unknown subject {}/{}", r.subject.type_, r.subject.id),
        );
    };
    if r.resource.type_ != "record" {
        return answer(false, format!("unknown resource type {}", r.resource.type_));
    }
    let Some(stored) = s.records.get(&r.resource.id) else {
        return answer(false, format!("unknown record {}", r.resource.id));
    };
    let record = overlay(stored.clone(), &r.resource.properties);
    let user = overlay(
        p.attributes
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
        &r.subject.properties,
    );
    let me = p.username.as_str();
    let owns = text(&record, "owner") == me;
    let same_department = !text(&user, "department").is_empty()
        && text(&user, "department") == text(&record, "department");
    let manager = text(&user, "role") == "manager";
    let writer = s.writers.iter().any(|w| w == me);
    let action = r.action.name.as_str();
    match (s.rules, action) {
        (Rules::Search, "view") => answer(
            owns || same_department || manager,
            "view: the owner, the record's department, or a manager",
        ),
        (Rules::Search, "edit") => answer(
            owns || (same_department && manager),
            "edit: the owner, or a manager of the record's department",
        ),
        (Rules::Search, "delete") => answer(owns, "delete: the owner"),
        (Rules::Certification, "read") => answer(true, "read: every known user"),
        (Rules::Certification, "write") => {
            if text(&record, "status") == "archived" {
                answer(
                    text(&user, "role") == "admin",
                    "write on an archived record: role admin",
                )
            } else {
                answer(writer, "write: the writers")
            }
        }
        (Rules::Certification, "delete") => {
            let soft = members(&r.action.properties).get("soft") == Some(&Value::Bool(true));
            answer(writer && soft, "delete: the writers, and only soft")
        }
        _ => answer(false, format!("unknown action {action}")),
    }
}

struct Records;

impl Guest for Records {
    fn configure(settings: String) -> Result<(), String> {
        let parsed: Settings = serde_json::from_str(&settings).map_err(|e| e.to_string())?;
        SETTINGS.with(|s| *s.borrow_mut() = parsed);
        Ok(())
    }

    fn authorize(r: Request) -> Decision {
        SETTINGS.with(|s| decide(&r, &s.borrow()))
    }

    fn candidates(kind: SearchKind, of_type: String) -> Option<Vec<String>> {
        if of_type != "record" {
            return None;
        }
        SETTINGS.with(|s| {
            let s = s.borrow();
            match kind {
                SearchKind::Resource => Some(s.records.keys().cloned().collect()),
                SearchKind::Action => Some(
                    match s.rules {
                        Rules::Search => ["view", "edit", "delete"],
                        Rules::Certification => ["read", "write", "delete"],
                    }
                    .iter()
                    .map(|a| a.to_string())
                    .collect(),
                ),
                // Subjects are Portcullis users: the host enumerates them.
                SearchKind::Subject => None,
            }
        })
    }

    fn on_event(_event: Event) -> Result<(), String> {
        Ok(())
    }
}

export!(Records);
