//! `GET /v1/audit`: the audit log, filtered by actor, action and time, paginated by id.

use super::openapi;
use super::{Json, Query};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::SharedState;
use axum::extract::State;
use portcullis_app::{audit, timestamp};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next` cursor of the previous page.
    after: Option<i64>,
    actor: Option<String>,
    action: Option<String>,
    /// RFC 3339 time; entries at or after it.
    #[param(format = DateTime)]
    since: Option<String>,
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, description = "Audit entries, oldest first", body = openapi::AuditList)))]
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Value>> {
    let limit = super::Page {
        limit: q.limit,
        after: None,
    }
    .limit()?;
    let query = audit::Query {
        actor: q.actor,
        action: q.action,
        since: q.since,
    };
    let (entries, next) = audit::list(&state, &caller, query, q.after.unwrap_or(0), limit).await?;
    let items: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "time": timestamp(e.at),
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "outcome": e.outcome,
                "detail": e.detail,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items, "next": next })))
}
