//! `builtin:cedar`: Cedar policies (the `cedar-policy` crate) as a Portcullis plugin of world
//! 0.2.0 (SPEC §12).
//!
//! Settings (a JSON object; anything else is refused with Cedar's own error text):
//!
//! ```json
//! {"policies": "<Cedar policies and templates>",
//!  "entities": [<entities in Cedar's JSON format>],
//!  "schema": "<Cedar schema text>" | {<Cedar JSON schema>},
//!  "template_links": [{"template_id": "t", "link_id": "l",
//!                      "args": {"?principal": "User::\"alice\"", "?resource": {"type": "Doc", "id": "1"}}}],
//!  "ttl_ms": 0}
//! ```
//!
//! A policy or template with an `@id("…")` annotation is known by that id (as the Cedar
//! CLI does): template links name templates by it, and reasons name policies by it.
//!
//! Request mapping:
//! - a Portcullis user (`principal` set by the host) → `Portcullis::User::"<username>"` with
//!   attributes `username`, `account`, `account_type`, `attributes` (a record of strings)
//!   and `email` (when set), and parents `Portcullis::Role::"<role>"` per role and
//!   `Portcullis::Account::"<account>"`;
//! - any other subject `type`/`id` → `type::"id"` (namespaced types allowed);
//! - the action name → `Action::"name"`, or the name itself when it is written as an entity
//!   uid (`Ns::Action::"x"`);
//! - the resource `type`/`id` → `type::"id"`; in a management call (context
//!   `portcullis.origin` = `management`) a `user` or an `account` is the Portcullis user or
//!   account itself (`Portcullis::User`, `Portcullis::Account`), so `resource == principal`
//!   and `principal in resource` say "itself" and "its own account";
//! - properties of the subject and the resource → the attributes of those entities when
//!   `entities` does not list them (the listed ones win), in Cedar's JSON format (`__entity`,
//!   `__extn` and, with a schema, `{"fn", "arg"}` escapes), typed by the schema when there
//!   is one; when the resource is the principal, its properties join the principal's
//!   attributes (the principal's own win);
//! - context → the Cedar context, same format. Without a schema the host's keys
//!   (`portcullis.origin`, …) are in it as strings; with a schema they are removed (the
//!   schema describes the application's context, not the host's).
//!
//! Reasons: the ids of the determining policies, then the evaluation errors; a deny that
//! no policy determined says so.

// The export glue that `generate!` writes takes one argument per flattened field of a
// request; that is the canonical ABI, not a design choice of ours.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ world: "authorizer", path: "../../wit" });

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, PolicyId, PolicySet, Request as CedarRequest, RestrictedExpression, Schema, SlotId,
    ValidationMode, Validator,
};
use portcullis::authorizer::types::{AccountType, Principal};
use portcullis_policy_common::bounded;
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;

/// Candidates the host accepts from one `candidates` call.
const MAX_CANDIDATES: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    policies: String,
    #[serde(default)]
    entities: Option<serde_json::Value>,
    #[serde(default)]
    schema: Option<serde_json::Value>,
    #[serde(default)]
    template_links: Vec<Link>,
    #[serde(default)]
    ttl_ms: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Link {
    template_id: String,
    link_id: String,
    #[serde(default)]
    args: BTreeMap<String, serde_json::Value>,
}

struct State {
    policies: PolicySet,
    entities: Entities,
    schema: Option<Schema>,
    ttl_ms: u32,
    authorizer: Authorizer,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

/// An entity uid from a link argument or an `__entity` escape: `Type::"id"` text, or
/// `{"type", "id"}`, or `{"__entity": {"type", "id"}}`.
fn uid_from_json(v: &serde_json::Value) -> Result<EntityUid, String> {
    match v {
        serde_json::Value::String(s) => {
            EntityUid::from_str(s).map_err(|e| format!("{s:?} is not an entity uid: {e}"))
        }
        other => EntityUid::from_json(other.clone())
            .map_err(|e| format!("{other} is not an entity uid: {e}")),
    }
}

/// `type::"id"` from an AuthZEN type and id.
fn uid(kind: &str, id: &str) -> Result<EntityUid, String> {
    let t = EntityTypeName::from_str(kind)
        .map_err(|e| format!("{kind:?} is not a Cedar entity type: {e}"))?;
    Ok(EntityUid::from_type_name_and_id(t, EntityId::new(id)))
}

/// Policies and templates renamed after their `@id` annotation (as the Cedar CLI does).
fn renamed(text: &str) -> Result<PolicySet, String> {
    let parsed = PolicySet::from_str(text).map_err(|e| format!("policies: {}", full(&e)))?;
    let mut set = PolicySet::new();
    for t in parsed.templates() {
        let t = match t.annotation("id") {
            Some(id) => t.new_id(PolicyId::new(id)),
            None => t.clone(),
        };
        set.add_template(t)
            .map_err(|e| format!("policies: {}", full(&e)))?;
    }
    for p in parsed.policies() {
        let p = match p.annotation("id") {
            Some(id) => p.new_id(PolicyId::new(id)),
            None => p.clone(),
        };
        set.add(p).map_err(|e| format!("policies: {}", full(&e)))?;
    }
    Ok(set)
}

/// An error with its causes and help, as Cedar's CLI would print them on one line.
fn full(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn configure(settings: &str) -> Result<State, String> {
    let s: Settings = serde_json::from_str(settings).map_err(|e| {
        format!("builtin:cedar settings: {e} (expected {{\"policies\", \"entities\"?, \"schema\"?, \"template_links\"?, \"ttl_ms\"?}})")
    })?;
    let schema = match &s.schema {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(text)) if text.trim_start().starts_with('{') => {
            Some(Schema::from_json_str(text).map_err(|e| format!("schema: {}", full(&e)))?)
        }
        Some(serde_json::Value::String(text)) => Some(
            Schema::from_cedarschema_str(text)
                .map_err(|e| format!("schema: {}", full(&e)))?
                .0,
        ),
        Some(json @ serde_json::Value::Object(_)) => Some(
            Schema::from_json_value(json.clone()).map_err(|e| format!("schema: {}", full(&e)))?,
        ),
        Some(other) => {
            return Err(format!(
                "schema: expected Cedar schema text or a JSON schema object, got {other}"
            ))
        }
    };
    let mut policies = renamed(&s.policies)?;
    for (i, link) in s.template_links.iter().enumerate() {
        let mut values = HashMap::new();
        for (slot, v) in &link.args {
            let slot_id = match slot.as_str() {
                "?principal" => SlotId::principal(),
                "?resource" => SlotId::resource(),
                other => {
                    return Err(format!(
                        "template_links[{i}].args: unknown slot {other:?} (expected ?principal or ?resource)"
                    ))
                }
            };
            let value =
                uid_from_json(v).map_err(|e| format!("template_links[{i}].args.{slot}: {e}"))?;
            values.insert(slot_id, value);
        }
        policies
            .link(
                PolicyId::new(&link.template_id),
                PolicyId::new(&link.link_id),
                values,
            )
            .map_err(|e| format!("template_links[{i}]: {}", full(&e)))?;
    }
    if let Some(schema) = &schema {
        let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !result.validation_passed() {
            let errors: Vec<String> = result.validation_errors().map(|e| full(e)).collect();
            return Err(format!(
                "the policies do not validate against the schema: {}",
                errors.join("; ")
            ));
        }
    }
    let entities = match s.entities {
        None | Some(serde_json::Value::Null) => Entities::empty(),
        Some(v) => Entities::from_json_value(v, schema.as_ref())
            .map_err(|e| format!("entities: {}", full(&e)))?,
    };
    Ok(State {
        policies,
        entities,
        schema,
        ttl_ms: s.ttl_ms,
        authorizer: Authorizer::new(),
    })
}

fn account_type(t: AccountType) -> &'static str {
    match t {
        AccountType::Admin => "admin",
        AccountType::User => "user",
        AccountType::Service => "service",
    }
}

/// The Portcullis user as a Cedar entity (built without the schema: it comes from the
/// host's store, not from the application), with `own` properties when the request is
/// about the user itself.
fn user_entity(p: &Principal, own: Option<&str>) -> Result<Entity, String> {
    let mut attrs = HashMap::new();
    if let Some(text) = own.filter(|t| t.trim() != "{}") {
        let props: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| format!("resource properties: {e}"))?;
        for (k, v) in props {
            let expr = RestrictedExpression::from_str(&cedar_literal(&v)?)
                .map_err(|e| format!("resource properties.{k}: {e}"))?;
            attrs.insert(k, expr);
        }
    }
    attrs.insert(
        "username".to_string(),
        RestrictedExpression::new_string(p.username.clone()),
    );
    attrs.insert(
        "account".to_string(),
        RestrictedExpression::new_string(p.account.clone()),
    );
    attrs.insert(
        "account_type".to_string(),
        RestrictedExpression::new_string(account_type(p.account_type).to_string()),
    );
    let record = RestrictedExpression::new_record(
        p.attributes
            .iter()
            .map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone()))),
    )
    .map_err(|e| format!("user attributes: {e}"))?;
    attrs.insert("attributes".to_string(), record);
    if let Some(email) = &p.email {
        attrs.insert(
            "email".to_string(),
            RestrictedExpression::new_string(email.clone()),
        );
    }
    let mut parents = HashSet::new();
    for role in &p.roles {
        parents.insert(uid("Portcullis::Role", role)?);
    }
    parents.insert(uid("Portcullis::Account", &p.account)?);
    Entity::new(uid("Portcullis::User", &p.username)?, attrs, parents)
        .map_err(|e| format!("user {}: {e}", p.username))
}

/// A JSON value as a Cedar restricted expression (strings, numbers, booleans, arrays and
/// objects; Cedar's escapes are not read here).
fn cedar_literal(v: &serde_json::Value) -> Result<String, String> {
    Ok(match v {
        serde_json::Value::String(s) => serde_json::Value::String(s.clone()).to_string(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Number(n) if n.is_i64() => n.to_string(),
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(cedar_literal)
                .collect::<Result<Vec<_>, _>>()?
                .join(", ")
        ),
        serde_json::Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| Ok(format!(
                    "{}: {}",
                    serde_json::Value::String(k.clone()),
                    cedar_literal(v)?
                )))
                .collect::<Result<Vec<_>, String>>()?
                .join(", ")
        ),
        other => return Err(format!("{other} has no Cedar value")),
    })
}

/// The entity `uid` with `properties` as attributes, unless the settings list it.
fn property_entity(
    state: &State,
    uid: &EntityUid,
    properties: &str,
    what: &str,
) -> Result<Option<Entity>, String> {
    if properties.trim() == "{}" || state.entities.get(uid).is_some() {
        return Ok(None);
    }
    let attrs: serde_json::Value =
        serde_json::from_str(properties).map_err(|e| format!("{what} properties: {e}"))?;
    let json = serde_json::json!({
        "uid": {"type": uid.type_name().to_string(), "id": uid.id().unescaped()},
        "attrs": attrs,
        "parents": [],
    });
    Entity::from_json_value(json, state.schema.as_ref())
        .map(Some)
        .map_err(|e| format!("{what} properties: {}", full(&e)))
}

/// The resource's type: as given, but in a management call (the host asking about its own
/// objects) a `user` or an `account` is a Portcullis user or account, the same entities as
/// the principal and its parents (`resource == principal`, `principal in resource`).
fn resource_type(r: &Request, management: bool) -> &str {
    match r.resource.type_.as_str() {
        "user" if management => "Portcullis::User",
        "account" if management => "Portcullis::Account",
        other => other,
    }
}

/// Whether the request is a management call (context `portcullis.origin` = `management`).
fn is_management(context: &serde_json::Value) -> bool {
    context.get("portcullis.origin").and_then(|v| v.as_str()) == Some("management")
}

fn decide(state: &State, r: &Request) -> Result<Decision, String> {
    let mut context: serde_json::Value =
        serde_json::from_str(&r.context).map_err(|e| format!("context: {e}"))?;
    let management = is_management(&context);
    let resource =
        uid(resource_type(r, management), &r.resource.id).map_err(|e| format!("resource: {e}"))?;
    let mut extra = Vec::new();
    let principal = match &r.principal {
        Some(p) => {
            // A management call about the caller itself: the resource's properties
            // (`changes`, `sso`, …) join the principal's attributes (which win).
            let own = (management && r.resource.type_ == "user" && r.resource.id == p.username)
                .then_some(r.resource.properties.as_str());
            let e = user_entity(p, own)?;
            let id = e.uid();
            if state.entities.get(&id).is_none() {
                extra.push(e);
            }
            id
        }
        None => {
            let id = uid(&r.subject.type_, &r.subject.id).map_err(|e| format!("subject: {e}"))?;
            extra.extend(property_entity(
                state,
                &id,
                &r.subject.properties,
                "subject",
            )?);
            id
        }
    };
    let action = if r.action.name.contains("::\"") {
        EntityUid::from_str(&r.action.name)
            .map_err(|e| format!("action {:?}: {e}", r.action.name))?
    } else {
        uid("Action", &r.action.name)?
    };
    if resource != principal {
        extra.extend(property_entity(
            state,
            &resource,
            &r.resource.properties,
            "resource",
        )?);
    }
    if state.schema.is_some() {
        if let serde_json::Value::Object(map) = &mut context {
            map.retain(|k, _| !k.starts_with("portcullis."));
        }
    }
    let context = Context::from_json_value(context, state.schema.as_ref().map(|s| (s, &action)))
        .map_err(|e| format!("context: {}", full(&e)))?;
    let request = CedarRequest::new(principal, action, resource, context, state.schema.as_ref())
        .map_err(|e| format!("request: {}", full(&e)))?;
    let answer = if extra.is_empty() {
        state
            .authorizer
            .is_authorized(&request, &state.policies, &state.entities)
    } else {
        let entities = state
            .entities
            .clone()
            .add_entities(extra, None)
            .map_err(|e| format!("entities: {}", full(&e)))?;
        state
            .authorizer
            .is_authorized(&request, &state.policies, &entities)
    };
    let allowed = answer.decision() == CedarDecision::Allow;
    let mut reasons: Vec<String> = answer
        .diagnostics()
        .reason()
        .map(|id| id.to_string())
        .collect();
    reasons.sort();
    if reasons.is_empty() && !allowed {
        reasons.push("no Cedar policy permits the request".to_string());
    }
    reasons.extend(
        answer
            .diagnostics()
            .errors()
            .map(|e| format!("evaluation error: {}", full(e))),
    );
    Ok(Decision {
        allowed,
        reasons: bounded(reasons),
        ttl_ms: state.ttl_ms,
    })
}

struct Cedar;

impl Guest for Cedar {
    fn configure(settings: String) -> Result<(), String> {
        let state = configure(&settings)?;
        STATE.with(|s| *s.borrow_mut() = Some(state));
        Ok(())
    }

    fn authorize(r: Request) -> Decision {
        STATE.with(|s| {
            let s = s.borrow();
            let Some(state) = s.as_ref() else {
                return Decision {
                    allowed: false,
                    reasons: vec!["builtin:cedar was not configured".into()],
                    ttl_ms: 0,
                };
            };
            decide(state, &r).unwrap_or_else(|reason| Decision {
                allowed: false,
                reasons: bounded(vec![reason]),
                ttl_ms: 0,
            })
        })
    }

    /// Subjects and resources: the ids of the listed entities of that type. Actions: the
    /// schema's actions (the host keeps those allowed; none without a schema).
    fn candidates(kind: SearchKind, of_type: String) -> Option<Vec<String>> {
        STATE.with(|s| {
            let s = s.borrow();
            let state = s.as_ref()?;
            let ids: Vec<String> = match kind {
                SearchKind::Subject | SearchKind::Resource => state
                    .entities
                    .iter()
                    .filter(|e| e.uid().type_name().to_string() == of_type)
                    .map(|e| e.uid().id().unescaped().to_string())
                    .take(MAX_CANDIDATES)
                    .collect(),
                // The host asks `authorize` about each one, so an action that does not
                // apply to the type is simply not returned.
                SearchKind::Action => state
                    .schema
                    .as_ref()?
                    .actions()
                    .map(|a| a.id().unescaped().to_string())
                    .take(MAX_CANDIDATES)
                    .collect(),
            };
            Some(ids)
        })
    }

    fn on_event(_event: Event) -> Result<(), String> {
        Ok(())
    }
}

export!(Cedar);
