//! Liveness and readiness.

use crate::api::health::{Health, NotReady, Ready};
use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[utoipa::path(get, path = "/health", tag = "operations", security(()), responses((status = 200, description = "The process is up", body = Health)))]
pub async fn health() -> axum::Json<Health> {
    axum::Json(Health::ok())
}

/// Ready when the store answers (with the schema this build expects) and an authorizer is
/// loaded.
#[utoipa::path(get, path = "/ready", tag = "operations", security(()), responses((status = 200, description = "The store answers and an authorizer is loaded", body = Ready), (status = 503, description = "The store does not answer", body = NotReady)))]
pub async fn ready(State(state): State<SharedState>) -> Response {
    match state.store.applied_migrations().await {
        Ok(applied) => axum::Json(Ready::new(
            state.store.backend_name(),
            applied.last().copied().unwrap_or(0),
            state.authorizer_name(),
            state.store.push_state(),
        ))
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: store unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(NotReady::unreachable()),
            )
                .into_response()
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
        state.render_metrics(),
    )
}
