//! Decisions for outside applications: the body of `POST /v1/authorize` (§5.4) and its
//! answer, and the OpenID AuthZEN 1.0 Access Evaluation API's requests and answers. The
//! AuthZEN request types are schema only: those bodies are read as free-form JSON (field by
//! field, to name what is wrong, and to merge a batch's defaults into each item).

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
    /// Find it in `GET /v1/decisions`.
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

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ZenSubjectType {
    User,
}

/// AuthZEN subject: `type` is `user`, `id` the username. Properties reach the plugin as
/// context entries `subject.NAME` (strings as they are, other values as JSON text).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZenSubject {
    #[schema(inline)]
    pub r#type: ZenSubjectType,
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 254
    )]
    pub id: String,
    #[schema(schema_with = schema::zen_properties)]
    pub properties: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZenAction {
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 256
    )]
    pub name: String,
    #[schema(schema_with = schema::zen_properties)]
    pub properties: Option<BTreeMap<String, serde_json::Value>>,
}

/// AuthZEN resource; the property `account` names the owning account.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
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

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZenEvaluation {
    pub subject: ZenSubject,
    pub action: ZenAction,
    pub resource: ZenResource,
    #[schema(schema_with = schema::zen_properties)]
    pub context: Option<BTreeMap<String, serde_json::Value>>,
}

/// One item of a batch; what it omits comes from the request's top level.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZenItem {
    pub subject: Option<ZenSubject>,
    pub action: Option<ZenAction>,
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

#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZenOptions {
    #[schema(inline)]
    pub evaluations_semantic: Option<ZenSemantic>,
}

/// Top-level `subject`/`action`/`resource`/`context` are defaults for every item; without
/// items (absent or empty) the request is one evaluation of the top level.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZenEvaluations {
    pub subject: Option<ZenSubject>,
    pub action: Option<ZenAction>,
    pub resource: Option<ZenResource>,
    #[schema(schema_with = schema::zen_properties)]
    pub context: Option<BTreeMap<String, serde_json::Value>>,
    #[schema(max_items = 1000)]
    pub evaluations: Option<Vec<ZenItem>>,
    pub options: Option<ZenOptions>,
}

#[derive(Debug, ToSchema, Serialize)]
pub struct ZenContext {
    pub id: String,
    pub reasons: Vec<String>,
}

/// `{"decision":bool,"context":{"id","reasons"}}`.
#[derive(Debug, ToSchema, Serialize)]
pub struct ZenDecision {
    pub decision: bool,
    pub context: ZenContext,
}

impl ZenDecision {
    /// The plugin's decision `d`, logged as `id`.
    pub fn new(d: &Decision, id: &str) -> Self {
        ZenDecision {
            decision: d.allowed,
            context: ZenContext {
                id: id.to_string(),
                reasons: d.reasons.clone(),
            },
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
