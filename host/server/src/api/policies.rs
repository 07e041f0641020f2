//! Application policies (SPEC §11): what `/v1/policies…` read and answer.

use super::plugins::{Authorizer, Mode};
use portcullis_app::policies::Policy;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `PUT /v1/policies/{name}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPolicy {
    /// `builtin:NAME` or a stored plugin id.
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 128
    )]
    pub plugin: String,
    /// A JSON object handed to the plugin's `configure` (default `{}`); refused settings
    /// are 422 with the plugin's text, and the previous plugin keeps deciding.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
    /// `enforce` (default): the plugin decides. `shadow`: it runs beside the policy's
    /// active plugin and disagreements are counted (the policy must exist).
    #[serde(default)]
    pub mode: Mode,
}

impl From<PutPolicy> for portcullis_app::policies::PutPolicy {
    fn from(body: PutPolicy) -> Self {
        portcullis_app::policies::PutPolicy {
            plugin: body.plugin,
            settings: body.settings,
            mode: body.mode.into(),
        }
    }
}

/// An application policy: its name, its AuthZEN base path and what runs it.
#[derive(Debug, ToSchema, Serialize)]
pub struct PolicyRecord {
    pub name: String,
    /// The policy's AuthZEN PDP base path (`/policies/NAME`): `…/access/v1/evaluation`,
    /// `…/evaluations`, `…/search/subject|resource|action`.
    pub base_path: String,
    /// Who last changed it.
    pub changed_by: String,
    pub authorizer: Authorizer,
}

impl From<&Policy> for PolicyRecord {
    fn from(p: &Policy) -> Self {
        PolicyRecord {
            name: p.name.clone(),
            base_path: format!("/policies/{}", p.name),
            changed_by: p.state().changed_by,
            authorizer: Authorizer::from(&*p.authz),
        }
    }
}

/// Every policy, by name (at most `authorizer.max_policies`).
#[derive(Debug, ToSchema, Serialize)]
pub struct PolicyList {
    pub items: Vec<PolicyRecord>,
}
