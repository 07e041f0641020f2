//! The HTTP surface: one module per resource, one router.

mod accounts;
mod admin;
mod audit;
mod csv;
mod decide;
mod health;
mod plugins;
mod session;
mod tokens;
mod users;

use crate::error::ApiError;
use crate::state::SharedState;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts};
use axum::http::Request;
use axum::routing::{get, post, put};
use axum::Router;
use serde::{Deserialize, Serialize};
use tower_http::trace::TraceLayer;

/// `axum::Json` with our error shape (422 naming the field, 413, 415).
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// A raw body (CSV, a `.wasm` component) with our error shape for 413.
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(ApiError::from)
    }
}

/// `?limit=&after=` for list endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    pub limit: Option<i64>,
    pub after: Option<String>,
}

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

impl Page {
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            )),
        }
    }
}

/// `{"items":[…],"next":…}`: `next` is the cursor for `?after=` while more may follow.
#[derive(Serialize)]
pub struct List<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> List<T> {
    pub fn new(items: Vec<T>, limit: i64, cursor: impl Fn(&T) -> String) -> Self {
        let next = (items.len() as i64 == limit)
            .then(|| items.last().map(&cursor))
            .flatten();
        List { items, next }
    }
}

pub fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn router(state: SharedState) -> Router {
    let max_body = state.config.max_body_bytes as usize;
    let max_plugin = state.config.authorizer.max_plugin_bytes as usize;
    let max_import = state.config.max_import_bytes as usize;
    let v1 = Router::new()
        .route(
            "/login",
            post(session::login).route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                rate_limited,
            )),
        )
        .route(
            "/login/oidc",
            post(session::login_oidc).route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                rate_limited,
            )),
        )
        .route("/logout", post(session::logout))
        .route("/whoami", get(session::whoami))
        .route("/accounts", get(accounts::list).post(accounts::create))
        .route(
            "/accounts/{name}",
            get(accounts::get).delete(accounts::delete),
        )
        .route("/accounts/{name}/state", put(accounts::set_state))
        .route(
            "/accounts/{name}/users",
            get(users::list_in_account).post(users::create_in_account),
        )
        .route("/users", get(users::list_all).post(tokens::create_by_email))
        .route(
            "/users/{username}/access-token/request",
            post(tokens::request),
        )
        .route("/users/{username}/access-token/grant", post(tokens::grant))
        .route(
            "/users/{username}/access-token/revoke",
            post(tokens::revoke),
        )
        .route("/audit", get(audit::list))
        .route("/users/export", get(csv::export))
        .route(
            "/users/import",
            post(csv::import).layer(DefaultBodyLimit::max(max_import)),
        )
        .route(
            "/users/{username}",
            get(users::describe)
                .patch(users::patch)
                .delete(users::delete),
        )
        .route("/users/{username}/password", put(users::set_password))
        .route(
            "/users/{username}/keys",
            get(users::list_keys).post(users::create_key),
        )
        .route(
            "/users/{username}/keys/{id}",
            axum::routing::delete(users::revoke_key),
        )
        .route("/authorize", post(decide::authorize))
        .route(
            "/plugins",
            get(plugins::list)
                .post(plugins::upload)
                .layer(DefaultBodyLimit::max(max_plugin)),
        )
        .route("/plugins/{id}", get(plugins::get))
        .route("/plugins/{id}/activate", post(plugins::activate))
        .route("/authorizer", get(plugins::authorizer))
        .route("/decisions", get(plugins::decisions));
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/admin/retrieve-iact", get(admin::retrieve_iact).route_layer(axum::middleware::from_fn_with_state(state.clone(), rate_limited)))
        .route("/admin/initial-admin-user", post(admin::initial_admin_user).route_layer(axum::middleware::from_fn_with_state(state.clone(), rate_limited)))
        .route("/access/v1/evaluation", post(decide::evaluation))
        .route("/access/v1/evaluations", post(decide::evaluations))
        .nest("/v1", v1)
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .fallback(|| async { ApiError::not_found("route") })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(
            // Log the path only: query strings may carry the IACT.
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
            }),
        )
        .with_state(state)
}

pub use accounts::spawn_reaper as accounts_reaper;

/// Count and time every routed request by its route template (never the concrete path:
/// usernames stay out of metric labels).
async fn track(
    axum::extract::State(state): axum::extract::State<SharedState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let m = &state.metrics;
    m.http_requests
        .get_or_create(&crate::metrics::HttpLabels {
            method,
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    m.http_latency
        .get_or_create(&crate::metrics::RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// 429 once a client address has used up `rate_limit.login_per_minute`.
async fn rate_limited(
    axum::extract::State(state): axum::extract::State<SharedState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let ip = state.limiter.client_ip(peer.ip(), req.headers());
    match state.limiter.check(ip) {
        Ok(()) => next.run(req).await,
        Err(wait) => {
            let secs = wait.as_secs().max(1);
            tracing::warn!(client = %ip, path = %req.uri().path(), "rate limited");
            let message = format!("too many attempts from this address; retry in {secs} s");
            let body = if req.uri().path().starts_with("/admin/") {
                serde_json::json!({ "status": "error", "error": message })
            } else {
                serde_json::json!({ "error": { "code": "rate_limited", "message": message } })
            };
            (
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                [(axum::http::header::RETRY_AFTER, secs.to_string())],
                axum::Json(body),
            )
                .into_response()
        }
    }
}
