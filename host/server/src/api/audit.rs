//! `GET /v1/audit`: its query and its entries.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page.
    pub after: Option<i64>,
    pub actor: Option<String>,
    pub action: Option<String>,
    /// RFC 3339 time; entries at or after it.
    #[param(format = DateTime)]
    pub since: Option<String>,
}

#[derive(Debug, ToSchema, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub time: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
}

impl From<&portcullis_store::AuditEntry> for AuditEntry {
    fn from(e: &portcullis_store::AuditEntry) -> Self {
        AuditEntry {
            id: e.id,
            time: portcullis_app::timestamp(e.at),
            actor: e.actor.clone(),
            action: e.action.clone(),
            target: e.target.clone(),
            outcome: e.outcome.clone(),
            detail: e.detail.clone(),
        }
    }
}

list!(AuditList of AuditEntry);
