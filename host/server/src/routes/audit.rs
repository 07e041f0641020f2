//! `GET /v1/audit`: the audit log, filtered by actor, action and time, paginated by id.

use super::{Json, Query};
use crate::api::audit::{AuditList, AuditQuery};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::SharedState;
use axum::extract::State;
use portcullis_app::audit;

#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, description = "Audit entries, oldest first", body = AuditList)))]
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<AuditList>> {
    let limit = crate::api::page_size(q.limit)?;
    let query = audit::Query {
        actor: q.actor,
        action: q.action,
        since: q.since,
    };
    let (entries, next) = audit::list(&state, &caller, query, q.after.unwrap_or(0), limit).await?;
    Ok(Json(AuditList {
        items: entries.iter().map(Into::into).collect(),
        next,
    }))
}
