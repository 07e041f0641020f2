//! Liveness and readiness.

use super::openapi;
use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

#[utoipa::path(get, path = "/health", tag = "operations", security(()), responses((status = 200, description = "The process is up", body = openapi::Health)))]
pub async fn health() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// Ready when the store answers (with the schema this build expects) and an authorizer is
/// loaded.
#[utoipa::path(get, path = "/ready", tag = "operations", security(()), responses((status = 200, description = "The store answers and an authorizer is loaded", body = openapi::Ready), (status = 503, description = "The store does not answer", body = openapi::NotReady)))]
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
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()), responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<SharedState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
