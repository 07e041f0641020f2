//! The authorization vocabulary: the request every decision is asked with and the
//! decision that comes back. The rules themselves live in plugins (`plugins/`); the host
//! only ever asks (`portcullis-plugin` runs them, `portcullis-server` asks through
//! `AppState::decide`).
//!
//! The shapes mirror the WIT world (`wit/`): a principal, an action, a target, a context.
//! The server builds one [`Request`] per decision and asks the active authorizer; nothing
//! in the server decides on its own.

use crate::model::AccountType;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Context keys under this prefix are set by the host only; values a client sends under
/// it are dropped.
pub const RESERVED_CONTEXT_PREFIX: &str = "portcullis.";
/// Context key naming where a decision comes from: `management` (a `/v1` call) or
/// `external` (`/v1/authorize`, AuthZEN).
pub const CONTEXT_ORIGIN: &str = "portcullis.origin";
/// Context key carrying the decision's id (as in the decision log), for outside decisions.
pub const CONTEXT_DECISION_ID: &str = "portcullis.decision-id";

/// Where a decision comes from: the value of [`CONTEXT_ORIGIN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A `/v1` management call asked about its caller.
    Management,
    /// `/v1/authorize` or AuthZEN: an outside application's question.
    External,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Management => "management",
            Origin::External => "external",
        }
    }
    /// The origin a context value names, if any.
    pub fn parse(value: &str) -> Option<Origin> {
        match value {
            "management" => Some(Origin::Management),
            "external" => Some(Origin::External),
            _ => None,
        }
    }
}

/// Why a plugin call gave no answer. The call still ends in a deny (decisions never fail);
/// this says which failure it was, for metrics and the decision log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginFailure {
    /// No answer within `authorizer.timeout_ms`.
    Timeout,
    /// The plugin tried to grow its memory past `authorizer.memory_limit_mib`.
    MemoryLimit,
    StackOverflow,
    Trap,
    /// The plugin called `exit`.
    Exit,
    /// Any other error of the call.
    Error,
    /// The answer broke the contract (too many or too long reasons).
    Malformed,
    /// No instance could be made.
    Unavailable,
}

impl PluginFailure {
    /// The code the deny reason starts with (`plugin_timeout: …`).
    pub fn code(self) -> &'static str {
        match self {
            PluginFailure::Timeout => "plugin_timeout",
            PluginFailure::MemoryLimit => "plugin_memory_limit",
            PluginFailure::StackOverflow => "plugin_stack_overflow",
            PluginFailure::Trap => "plugin_trap",
            PluginFailure::Exit => "plugin_exit",
            PluginFailure::Error => "plugin_error",
            PluginFailure::Malformed => "plugin_malformed",
            PluginFailure::Unavailable => "plugin_unavailable",
        }
    }
    /// The decision outcome label (metrics, decision log): traps of every kind are `trap`.
    pub fn outcome(self) -> &'static str {
        match self {
            PluginFailure::Timeout => "timeout",
            PluginFailure::MemoryLimit => "memory_limit",
            PluginFailure::Malformed => "malformed",
            PluginFailure::Unavailable => "unavailable",
            PluginFailure::StackOverflow
            | PluginFailure::Trap
            | PluginFailure::Exit
            | PluginFailure::Error => "trap",
        }
    }
}

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
    /// Link (or unlink) a single sign-on identity to a user: an administrator's power,
    /// since the identity then signs in as that user.
    pub const USERS_LINK_SSO: &str = "users.link-sso";
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
    /// Evaluate outside questions: on target `authorize/*` for the management authorizer,
    /// on `policy/NAME` for an application policy.
    pub const AUTHORIZE_EVALUATE: &str = "authorize.evaluate";
    pub const POLICIES_LIST: &str = "policies.list";
    pub const POLICIES_READ: &str = "policies.read";
    pub const POLICIES_WRITE: &str = "policies.write";
    pub const POLICIES_DELETE: &str = "policies.delete";
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Principal {
    pub username: String,
    pub account: String,
    pub account_type: AccountType,
    pub roles: Vec<String>,
    pub attributes: Vec<(String, String)>,
    /// The user's email address (plugins of world 0.2.0 see it).
    #[serde(default)]
    pub email: Option<String>,
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
    /// Shared with the verified-key and subject caches: a request never copies it.
    pub principal: Arc<Principal>,
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
    /// Set when the plugin gave no answer (the decision is then a deny).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<PluginFailure>,
}

impl Decision {
    pub fn allow(reason: impl Into<String>) -> Self {
        Decision {
            allowed: true,
            reasons: vec![reason.into()],
            ttl_ms: 0,
            failure: None,
        }
    }
    pub fn deny(reason: impl Into<String>) -> Self {
        Decision {
            allowed: false,
            reasons: vec![reason.into()],
            ttl_ms: 0,
            failure: None,
        }
    }
    /// A plugin failure, as a deny whose reason is `<code>: <detail>`.
    pub fn failed(failure: PluginFailure, detail: impl std::fmt::Display) -> Self {
        Decision {
            allowed: false,
            reasons: vec![format!("{}: {detail}", failure.code())],
            ttl_ms: 0,
            failure: Some(failure),
        }
    }
    /// `allow`, `deny`, or the failure it was ([`PluginFailure::outcome`]).
    pub fn outcome(&self) -> &'static str {
        match (self.allowed, self.failure) {
            (true, _) => "allow",
            (false, None) => "deny",
            (false, Some(f)) => f.outcome(),
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

/// Context key naming the application policy an outside decision was asked of (absent for
/// the management authorizer). Set by the host only.
pub const CONTEXT_POLICY: &str = "portcullis.policy";

/// An AuthZEN subject or resource. `properties` is the text of one JSON object (`{}` when
/// there are none), serialized once by the host with its members sorted ([`object_text`]),
/// so equal properties are equal texts (the decision cache compares them as strings).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entity {
    /// AuthZEN `type`.
    pub kind: String,
    pub id: String,
    pub properties: String,
}

impl Entity {
    pub fn new(kind: &str, id: &str) -> Entity {
        Entity {
            kind: kind.into(),
            id: id.into(),
            properties: EMPTY_OBJECT.into(),
        }
    }
}

/// The JSON text of an empty object.
pub const EMPTY_OBJECT: &str = "{}";

/// An application policy's question (SPEC §11): AuthZEN-shaped, JSON values kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Query {
    pub subject: Entity,
    /// The Portcullis user the subject names (`subject.type` `user`, found and enabled).
    pub principal: Option<Arc<Principal>>,
    pub action: String,
    /// JSON object text.
    pub action_properties: String,
    pub resource: Entity,
    /// The client's context: JSON object text, `portcullis.` keys already dropped.
    pub context: String,
    /// The policy asked ([`CONTEXT_POLICY`]).
    pub policy: String,
    /// The decision's id ([`CONTEXT_DECISION_ID`]); differs on every request, so the
    /// decision cache ignores it.
    pub decision_id: String,
}

impl Query {
    /// The context a plugin sees: the client's, plus the host's keys (`portcullis.origin`
    /// `external`, `portcullis.decision-id`, `portcullis.policy`), as JSON object text.
    pub fn plugin_context(&self) -> String {
        // Written directly (the keys are sorted already): this runs for every decision.
        let quoted = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
        let host = format!(
            "{{\"{CONTEXT_DECISION_ID}\":{},\"{CONTEXT_ORIGIN}\":\"{}\",\"{CONTEXT_POLICY}\":{}}}",
            quoted(&self.decision_id),
            Origin::External.as_str(),
            quoted(&self.policy),
        );
        // Both texts are serialized objects and the client's holds no `portcullis.` key:
        // joining their member lists is the merged object.
        match self.context.trim() {
            "" | EMPTY_OBJECT => host,
            client => format!("{},{}", &host[..host.len() - 1], &client[1..]),
        }
    }

    /// The question for a plugin of world 0.1.0 or the management authorizer, which know
    /// only Portcullis users (`principal`): the resource's `account` property (a string)
    /// is the target's account, every other property and every context member a string
    /// attribute (strings as they are, other JSON values as their JSON text); action
    /// properties have no place there.
    pub fn to_request(&self, principal: &Arc<Principal>) -> Request {
        let account = self.resource_account();
        let attributes = pairs(&self.resource.properties)
            .into_iter()
            .filter(|(k, _)| !(k == "account" && account.is_some()))
            .collect();
        // The host's keys, then the client's (which hold none of them).
        let mut context = vec![
            (CONTEXT_DECISION_ID.to_string(), self.decision_id.clone()),
            (
                CONTEXT_ORIGIN.to_string(),
                Origin::External.as_str().to_string(),
            ),
            (CONTEXT_POLICY.to_string(), self.policy.clone()),
        ];
        context.extend(pairs(&self.context));
        Request {
            principal: principal.clone(),
            action: self.action.clone(),
            target: Target {
                kind: self.resource.kind.clone(),
                id: self.resource.id.clone(),
                account,
                attributes,
            },
            context,
        }
    }

    /// The `account` property of the resource, when it is a string (the permission-string
    /// domain of `/v1/authorize`, the owning account of a management target).
    pub fn resource_account(&self) -> Option<String> {
        if !self.resource.properties.contains("\"account\"") {
            return None;
        }
        // Only the one member is read (a decision log entry asks for it every time).
        #[derive(Deserialize)]
        struct Account<'a> {
            #[serde(borrow)]
            account: Option<std::borrow::Cow<'a, str>>,
        }
        serde_json::from_str::<Account>(&self.resource.properties)
            .ok()?
            .account
            .map(|a| a.into_owned())
    }
}

/// What an AuthZEN search looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchKind {
    Subject,
    Resource,
    Action,
}

/// The members of a JSON object text as string pairs: strings as they are, other values as
/// their JSON text. Not an object: no pairs.
pub fn pairs(text: &str) -> Vec<(String, String)> {
    if text == EMPTY_OBJECT {
        return Vec::new();
    }
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) {
        Ok(map) => map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// A JSON object's text with its members sorted by key (nested values as they are): the
/// one spelling of equal properties, so the decision cache sees them as equal.
pub fn object_text(map: &serde_json::Map<String, serde_json::Value>) -> String {
    if map.is_empty() {
        return EMPTY_OBJECT.into();
    }
    let sorted: std::collections::BTreeMap<&String, &serde_json::Value> = map.iter().collect();
    serde_json::to_string(&sorted).unwrap_or_else(|_| EMPTY_OBJECT.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(properties: &str, context: &str) -> Query {
        Query {
            subject: Entity::new("user", "rita"),
            principal: None,
            action: "read".into(),
            action_properties: EMPTY_OBJECT.into(),
            resource: Entity {
                kind: "document".into(),
                id: "1".into(),
                properties: properties.into(),
            },
            context: context.into(),
            policy: "docs\"x".into(),
            decision_id: "d-1".into(),
        }
    }

    #[test]
    fn the_plugin_context_is_one_json_object_with_the_host_keys_first() {
        let text = query("{}", r#"{"ip":"10.0.0.1","n":[1,{"a":true}]}"#).plugin_context();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v[CONTEXT_DECISION_ID], "d-1");
        assert_eq!(v[CONTEXT_ORIGIN], "external");
        assert_eq!(v[CONTEXT_POLICY], "docs\"x", "escaped: {text}");
        assert_eq!(v["n"][1]["a"], true);
        let alone: serde_json::Value =
            serde_json::from_str(&query("{}", "{}").plugin_context()).unwrap();
        assert_eq!(alone.as_object().unwrap().len(), 3);
    }

    #[test]
    fn only_a_string_account_property_is_the_resource_account() {
        assert_eq!(
            query(r#"{"account":"acme","x":1}"#, "{}").resource_account(),
            Some("acme".into())
        );
        assert_eq!(query(r#"{"account":5}"#, "{}").resource_account(), None);
        assert_eq!(query(r#"{"x":"account"}"#, "{}").resource_account(), None);
        let principal = Arc::new(Principal {
            username: "rita".into(),
            account: "acme".into(),
            account_type: AccountType::User,
            roles: vec![],
            attributes: vec![],
            email: None,
        });
        // A non-string account stays an attribute (its JSON text).
        let r = query(r#"{"account":5}"#, "{}").to_request(&principal);
        assert_eq!(r.target.account, None);
        assert_eq!(r.target.attributes, vec![("account".into(), "5".into())]);
    }
}
