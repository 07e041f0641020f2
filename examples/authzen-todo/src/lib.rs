//! The OpenID AuthZEN interop **Todo** application's policy, and the medium-grained policy
//! its **API gateways** enforce, as one Portcullis plugin of world 0.2.0. docs/authzen.md
//! walks through it; `settings.json` beside this file is the configuration the interop
//! decision sets pass with.
//!
//! Who the subject is:
//! - `user`: a Portcullis user the host found (by username, email or SSO subject, as
//!   `[authzen] subject_lookup` says); its roles and email come with the request as the
//!   `principal`. An unknown user never reaches the plugin: the host denies.
//! - `identity` (what the API gateways send): looked up in the settings' `identities`,
//!   `{"<id>": {"email": "…", "roles": ["…"]}}`.
//! - any other type: unknown, denied.
//!
//! The Todo actions (`can_read_user`, `can_read_todos`, `can_create_todo`,
//! `can_update_todo`, `can_delete_todo`) decide from the roles and, for update and delete,
//! the todo's `ownerID` property (the PDP never looks a todo up). The gateway's questions
//! (`resource.type` `route`, `action.name` an HTTP method) are decided by the settings'
//! `routes`: `[{"method": "PUT", "route": "/todos/{todoId}", "roles": ["editor"]}]`, where
//! a route without `roles` is open to every known subject.

// The export glue that `generate!` writes takes one argument per flattened field of a
// request; that is the canonical ABI, not a design choice of ours.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "authorizer", path: "../../wit" });

use portcullis::authorizer::types::Entity;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Subjects of type `identity`, by id.
    #[serde(default)]
    identities: BTreeMap<String, Identity>,
    /// The gateway's route rules.
    #[serde(default)]
    routes: Vec<Route>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Route {
    method: String,
    route: String,
    /// Who may; absent: every known subject.
    #[serde(default)]
    roles: Option<Vec<String>>,
}

thread_local! {
    static SETTINGS: RefCell<Settings> = RefCell::new(Settings::default());
}

/// The Todo application's actions, in the order its UI asks them.
const TODO_ACTIONS: [&str; 5] = [
    "can_read_user",
    "can_read_todos",
    "can_create_todo",
    "can_update_todo",
    "can_delete_todo",
];

/// The subject type of the gateways' callers.
const IDENTITY: &str = "identity";

/// Roles that may edit their own todos ("editor and above").
const EDITORS: [&str; 3] = ["editor", "admin", "evil_genius"];

fn answer(allowed: bool, reason: String) -> Decision {
    Decision {
        allowed,
        reasons: vec![reason],
        ttl_ms: 0,
    }
}

/// A JSON object text's members (none when it is not an object).
fn members(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Who the subject is: its email and roles, or why it is not known.
fn identify(r: &Request, settings: &Settings) -> Result<Identity, String> {
    match &r.principal {
        Some(p) => Ok(Identity {
            email: p.email.clone(),
            roles: p.roles.clone(),
        }),
        None if r.subject.type_ == IDENTITY => settings
            .identities
            .get(&r.subject.id)
            .cloned()
            .ok_or_else(|| format!("unknown {IDENTITY} {}", r.subject.id)),
        None => Err(format!("unknown subject type {}", r.subject.type_)),
    }
}

fn has_any(roles: &[String], wanted: &[&str]) -> bool {
    roles.iter().any(|r| wanted.contains(&r.as_str()))
}

/// The Todo application's rules.
fn todo(action: &str, resource: &Entity, who: &Identity) -> Decision {
    let owner = members(&resource.properties)
        .get("ownerID")
        .and_then(Value::as_str)
        .map(str::to_string);
    let owns = owner.is_some() && owner == who.email;
    let roles = &who.roles;
    match action {
        "can_read_user" | "can_read_todos" => answer(true, format!("{action}: every known user")),
        "can_create_todo" => {
            let ok = has_any(roles, &["admin", "editor"]);
            answer(ok, format!("{action}: needs the role admin or editor"))
        }
        "can_update_todo" => {
            if has_any(roles, &["evil_genius"]) {
                answer(true, format!("{action}: evil_genius updates any todo"))
            } else {
                let ok = owns && has_any(roles, &EDITORS);
                answer(
                    ok,
                    format!("{action}: an editor (or above) updates their own todos"),
                )
            }
        }
        "can_delete_todo" => {
            if has_any(roles, &["admin"]) {
                answer(true, format!("{action}: admin deletes any todo"))
            } else {
                let ok = owns && has_any(roles, &EDITORS);
                answer(
                    ok,
                    format!("{action}: an editor (or above) deletes their own todos"),
                )
            }
        }
        other => answer(false, format!("unknown action {other}")),
    }
}

/// The gateway's rules: the first route rule for this method and route template.
fn gateway(method: &str, route: &str, who: &Identity, settings: &Settings) -> Decision {
    match settings
        .routes
        .iter()
        .find(|r| r.method == method && r.route == route)
    {
        None => answer(false, format!("no rule for {method} {route}")),
        Some(Route { roles: None, .. }) => {
            answer(true, format!("{method} {route}: every known subject"))
        }
        Some(Route {
            roles: Some(wanted),
            ..
        }) => {
            let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
            answer(
                has_any(&who.roles, &wanted),
                format!(
                    "{method} {route}: needs one of the roles {}",
                    wanted.join(", ")
                ),
            )
        }
    }
}

struct Todo;

impl Guest for Todo {
    fn configure(settings: String) -> Result<(), String> {
        let parsed: Settings = serde_json::from_str(&settings).map_err(|e| e.to_string())?;
        SETTINGS.with(|s| *s.borrow_mut() = parsed);
        Ok(())
    }

    fn authorize(r: Request) -> Decision {
        SETTINGS.with(|s| {
            let settings = s.borrow();
            let who = match identify(&r, &settings) {
                Ok(who) => who,
                Err(reason) => return answer(false, reason),
            };
            if r.resource.type_ == "route" {
                gateway(&r.action.name, &r.resource.id, &who, &settings)
            } else {
                todo(&r.action.name, &r.resource, &who)
            }
        })
    }

    fn candidates(kind: SearchKind, of_type: String) -> Option<Vec<String>> {
        SETTINGS.with(|s| {
            let settings = s.borrow();
            let unique = |mut v: Vec<String>| {
                v.sort();
                v.dedup();
                v
            };
            match (kind, of_type.as_str()) {
                (SearchKind::Action, "route") => Some(unique(
                    settings.routes.iter().map(|r| r.method.clone()).collect(),
                )),
                (SearchKind::Action, "todo" | "user") => {
                    Some(TODO_ACTIONS.iter().map(|a| a.to_string()).collect())
                }
                (SearchKind::Resource, "route") => Some(unique(
                    settings.routes.iter().map(|r| r.route.clone()).collect(),
                )),
                (SearchKind::Subject, IDENTITY) => {
                    Some(settings.identities.keys().cloned().collect())
                }
                // Todos live in the application: this policy cannot list them.
                _ => None,
            }
        })
    }

    fn on_event(_event: Event) -> Result<(), String> {
        Ok(())
    }
}

export!(Todo);
