//! Decisions for outside applications: the body of `POST /v1/authorize` (§5.4) and its
//! answer, and the OpenID AuthZEN 1.0 API's requests and answers. The AuthZEN request
//! types are schema only: those bodies are read as free-form JSON (field by field, to
//! ignore unknown members as the standard says, to name what is wrong, and to apply a
//! batch's defaults to each item); the answers are written from these types, member order
//! included (the interop runners compare `{"type","id"}` as text).

use super::schema;
use portcullis_core::authz::Decision;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

// ------------------------------------------------------------------ /v1/authorize

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 254
    )]
    pub username: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 128
    )]
    pub kind: String,
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 1024
    )]
    pub id: String,
    /// The owning account, if any.
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 128
    )]
    pub account: Option<String>,
    #[serde(default)]
    #[schema(schema_with = schema::pairs)]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeBody {
    pub subject: Subject,
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 256
    )]
    pub action: String,
    pub resource: Resource,
    #[serde(default)]
    #[schema(schema_with = schema::pairs)]
    pub context: BTreeMap<String, String>,
    /// Ask this application policy (SPEC §11) instead of the management authorizer
    /// (absent: the management authorizer, whatever `default_policy` says).
    #[schema(pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")]
    pub policy: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Deny,
}

#[derive(Debug, ToSchema, Serialize)]
pub struct Authorized {
    #[schema(inline)]
    pub decision: Verdict,
    pub reasons: Vec<String>,
    /// Find it in `GET /v1/decisions` (`?policy=` for a policy) when a plugin was asked; a
    /// deny the host gives without asking (an unknown or disabled user) is not logged.
    pub decision_id: String,
}

impl Authorized {
    /// The plugin's decision `d`, logged as `decision_id`.
    pub fn new(d: &Decision, decision_id: String) -> Self {
        Authorized {
            decision: if d.allowed {
                Verdict::Allow
            } else {
                Verdict::Deny
            },
            reasons: d.reasons.clone(),
            decision_id,
        }
    }
}

// --------------------------------------------------------------------- AuthZEN 1.0

/// AuthZEN subject. `type` `user` names a Portcullis user (by username, or as `[authzen]
/// subject_lookup` says); any other type goes to the policy's plugin as given. Unknown
/// members are ignored.
#[derive(ToSchema)]
pub struct ZenSubject {
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 128
    )]
    pub r#type: String,
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 1024
    )]
    pub id: String,
    #[schema(schema_with = schema::zen_properties)]
    pub properties: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(ToSchema)]
pub struct ZenAction {
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 256
    )]
    pub name: String,
    #[schema(schema_with = schema::zen_properties)]
    pub properties: Option<BTreeMap<String, serde_json::Value>>,
}

/// AuthZEN resource. For the management authorizer the property `account` names the
/// owning account.
#[derive(ToSchema)]
pub struct ZenResource {
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 128
    )]
    pub r#type: String,
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 1024
    )]
    pub id: String,
    #[schema(schema_with = schema::zen_properties)]
    pub properties: Option<BTreeMap<String, serde_json::Value>>,
}

/// The entity a search looks for: only its `type` counts (an `id`, or anything else, is
/// ignored).
#[derive(ToSchema)]
pub struct ZenSought {
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 128
    )]
    pub r#type: String,
    #[schema(schema_with = schema::zen_properties)]
    pub properties: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(ToSchema)]
pub struct ZenEvaluation {
    pub subject: ZenSubject,
    pub action: ZenAction,
    pub resource: ZenResource,
    #[schema(schema_with = schema::zen_properties)]
    pub context: Option<BTreeMap<String, serde_json::Value>>,
}

/// One item of a batch; what it omits (or sends as `null`) comes from the request's top
/// level (a member it has replaces the default whole).
#[derive(ToSchema)]
pub struct ZenItem {
    #[schema(nullable)]
    pub subject: Option<ZenSubject>,
    #[schema(nullable)]
    pub action: Option<ZenAction>,
    #[schema(nullable)]
    pub resource: Option<ZenResource>,
    #[schema(schema_with = schema::zen_properties)]
    pub context: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ZenSemantic {
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

/// Batch options; unknown members are ignored. Sending `options` at all asks for each
/// answer's `context` (decision id, reasons).
#[derive(ToSchema)]
pub struct ZenOptions {
    #[schema(inline)]
    pub evaluations_semantic: Option<ZenSemantic>,
}

/// Top-level `subject`/`action`/`resource`/`context` are defaults for every item; without
/// items (absent or empty) the request is one evaluation of the top level.
#[derive(ToSchema)]
pub struct ZenEvaluations {
    #[schema(nullable)]
    pub subject: Option<ZenSubject>,
    #[schema(nullable)]
    pub action: Option<ZenAction>,
    #[schema(nullable)]
    pub resource: Option<ZenResource>,
    #[schema(schema_with = schema::zen_properties)]
    pub context: Option<BTreeMap<String, serde_json::Value>>,
    #[schema(max_items = 1000)]
    pub evaluations: Option<Vec<ZenItem>>,
    pub options: Option<ZenOptions>,
}

/// Why a batch item could not be evaluated (it answers `false`).
#[derive(Debug, ToSchema, Serialize)]
pub struct ZenItemError {
    pub status: u16,
    pub message: String,
}

/// A decision's `context`: sent when the request asks (`options`, `Portcullis-Explain:
/// true`), and on a batch item that could not be evaluated.
#[derive(Debug, Default, ToSchema, Serialize)]
pub struct ZenContext {
    /// Find it in `GET /v1/decisions` (`?policy=` for a policy) when a plugin was asked; a
    /// deny the host gives without asking (an unknown or disabled user) is not logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ZenItemError>,
}

/// `{"decision":bool}`, with `context` only when asked for or on an error.
#[derive(Debug, ToSchema, Serialize)]
pub struct ZenDecision {
    pub decision: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<ZenContext>,
}

impl ZenDecision {
    /// The plugin's decision `d`, logged as `id`; its context only if `explain`.
    pub fn new(d: &Decision, id: &str, explain: bool) -> Self {
        ZenDecision {
            decision: d.allowed,
            context: explain.then(|| ZenContext {
                id: Some(id.to_string()),
                reasons: Some(d.reasons.clone()),
                error: None,
            }),
        }
    }

    /// A batch item that could not be evaluated: `false`, saying why.
    pub fn failed(message: String) -> Self {
        ZenDecision {
            decision: false,
            context: Some(ZenContext {
                error: Some(ZenItemError {
                    status: 400,
                    message,
                }),
                ..ZenContext::default()
            }),
        }
    }
}

#[derive(Debug, ToSchema, Serialize)]
pub struct ZenDecisions {
    pub evaluations: Vec<ZenDecision>,
}

/// `/access/v1/evaluations` answers a batch, or one decision when the request has no
/// items.
#[derive(Debug, ToSchema, Serialize)]
#[serde(untagged)]
pub enum ZenBatchAnswer {
    Batch(ZenDecisions),
    Single(ZenDecision),
}

/// Search paging: `token` from the previous answer's `page.next_token`, `limit` results
/// per page (0 or absent: 100; more than 1000 is refused).
#[derive(ToSchema)]
pub struct ZenPageRequest {
    pub token: Option<String>,
    #[schema(minimum = 0, maximum = 1000)]
    pub limit: Option<u64>,
}

/// `POST …/access/v1/search/subject`: the sought subject has only a `type`.
#[derive(ToSchema)]
pub struct ZenSubjectSearch {
    pub subject: ZenSought,
    pub action: ZenAction,
    pub resource: ZenResource,
    #[schema(schema_with = schema::zen_properties)]
    pub context: Option<BTreeMap<String, serde_json::Value>>,
    pub page: Option<ZenPageRequest>,
}

/// `POST …/access/v1/search/resource`: the sought resource has only a `type`.
#[derive(ToSchema)]
pub struct ZenResourceSearch {
    pub subject: ZenSubject,
    pub action: ZenAction,
    pub resource: ZenSought,
    #[schema(schema_with = schema::zen_properties)]
    pub context: Option<BTreeMap<String, serde_json::Value>>,
    pub page: Option<ZenPageRequest>,
}

/// `POST …/access/v1/search/action`: no `action`.
#[derive(ToSchema)]
pub struct ZenActionSearch {
    pub subject: ZenSubject,
    pub resource: ZenResource,
    #[schema(schema_with = schema::zen_properties)]
    pub context: Option<BTreeMap<String, serde_json::Value>>,
    pub page: Option<ZenPageRequest>,
}

/// Where the next page starts (`""`: this was the last).
#[derive(Debug, ToSchema, Serialize)]
pub struct ZenPage {
    pub next_token: String,
}

/// A subject or resource found.
#[derive(Debug, ToSchema, Serialize)]
pub struct ZenFound {
    pub r#type: String,
    pub id: String,
}

#[derive(Debug, ToSchema, Serialize)]
pub struct ZenFoundAction {
    pub name: String,
}

/// A subject or resource search's answer; `page` when the request had one or more
/// results follow.
#[derive(Debug, ToSchema, Serialize)]
pub struct ZenSearchAnswer {
    pub results: Vec<ZenFound>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<ZenPage>,
}

#[derive(Debug, ToSchema, Serialize)]
pub struct ZenActionSearchAnswer {
    pub results: Vec<ZenFoundAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<ZenPage>,
}

/// AuthZEN PDP metadata (`/.well-known/authzen-configuration`).
#[derive(Debug, ToSchema, Serialize)]
pub struct ZenMetadata {
    pub policy_decision_point: String,
    pub access_evaluation_endpoint: String,
    pub access_evaluations_endpoint: String,
    pub search_subject_endpoint: String,
    pub search_resource_endpoint: String,
    pub search_action_endpoint: String,
}
