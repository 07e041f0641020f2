//! Liveness and readiness.

use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

pub async fn health() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// Ready when the store answers (with the schema this build expects) and an authorizer is
/// loaded.
pub async fn ready(State(state): State<SharedState>) -> impl IntoResponse {
    match state.store.applied_migrations().await {
        Ok(applied) => (
            StatusCode::OK,
            axum::Json(json!({
                "status": "ready",
                "store": state.store.backend_name(),
                "schema_version": applied.last().copied().unwrap_or(0),
                "authorizer": state.authorizer_name(),
            })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: store unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "status": "not_ready", "store": "unreachable" })),
            )
        }
    }
}

/// Prometheus text. Unauthenticated like `/health`: it carries counts, never names or
/// secrets; keep it off public networks.
pub async fn metrics(State(state): State<SharedState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
