//! The HTTP surface: one module per resource, one router. Handlers translate: a request
//! type of [`crate::api`] in, a call of `portcullis_app`, a response type of `crate::api`
//! out.

mod accounts;
mod admin;
mod audit;
mod authzen;
mod csv;
mod decide;
mod forward;
mod health;
pub mod openapi;
mod plugins;
mod policies;
mod session;
mod tokens;
mod users;

use crate::error::ApiError;
use crate::state::SharedState;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts};
use axum::http::Request;
use axum::routing::{get, post, put, MethodRouter};
use axum::Router;
use serde::Serialize;
use tower_http::trace::TraceLayer;

/// `axum::Json` with our error shape (422 naming the field, 413, 415), and the same rules:
/// `Content-Type: application/json` (parameters allowed) or `application/*+json`, the
/// body limit, one JSON value. A body that parses is read once, by plain `serde_json`;
/// only a refused one is read again by axum's extractor, whose message names the failing
/// field's path (tracking that path on every request cost as much as the parse itself:
/// docs/benchmarks.md). A refused body thus costs at most two parses of at most the body
/// limit, and a syntax error stops both at the same byte.
pub struct Json<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        use axum::extract::rejection::{JsonRejection, MissingJsonContentType};
        if !json_content_type(req.headers()) {
            return Err(JsonRejection::from(MissingJsonContentType::default()).into());
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::from(JsonRejection::from(e)))?;
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(Json(value)),
            Err(_) => match axum::Json::<T>::from_bytes(&bytes) {
                Ok(axum::Json(value)) => Ok(Json(value)),
                Err(rejection) => Err(rejection.into()),
            },
        }
    }
}

/// The media types axum's `Json` takes: `application/json` (the common spelling checked
/// without parsing), with parameters, or any `application/*+json`.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE) else {
        return false;
    };
    if value.as_bytes() == b"application/json" {
        return true;
    }
    let Some(mime) = value
        .to_str()
        .ok()
        .and_then(|v| v.parse::<mime::Mime>().ok())
    else {
        return false;
    };
    mime.type_() == "application"
        && (mime.subtype() == "json" || mime.suffix().is_some_and(|name| name == "json"))
}

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

/// A raw body (CSV, a `.wasm` component), not read yet: the handler checks the caller's
/// permission first and then [`RawBody::read`]s it, so nobody without the permission can
/// make the server take in tens of megabytes.
pub struct RawBody(axum::body::Body);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, ApiError> {
        Ok(RawBody(req.into_body()))
    }
}

impl RawBody {
    /// Read at most `limit` bytes: 413 (our error shape) beyond.
    pub async fn read(self, limit: usize) -> Result<Vec<u8>, ApiError> {
        use http_body_util::BodyExt;
        match http_body_util::Limited::new(self.0, limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes().to_vec()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(
                format!("request body is larger than {limit} bytes"),
            )),
            Err(e) => Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                portcullis_core::ErrorCode::InvalidRequest,
                format!(
                    "body: {}",
                    portcullis_core::names::printable(&e.to_string(), 200)
                ),
            )),
        }
    }
}

/// Every route is added through [`Routes::route`], which records its path: the
/// route-coverage test (`tests/api/openapi.rs`) probes each recorded path with every method
/// and checks that what answers is exactly what `/openapi.json` documents.
struct Routes {
    router: Router<SharedState>,
    paths: Vec<&'static str>,
}

impl Routes {
    fn route(mut self, path: &'static str, methods: MethodRouter<SharedState>) -> Self {
        self.paths.push(path);
        self.router = self.router.route(path, methods);
        self
    }
}

fn routes(state: &SharedState) -> Routes {
    let max_plugin = state.config.authorizer.max_plugin_bytes as usize;
    let max_import = state.config.max_import_bytes as usize;
    let limited = || axum::middleware::from_fn_with_state(state.clone(), rate_limited);
    Routes {
        router: Router::new(),
        paths: Vec::new(),
    }
    .route("/health", get(health::health))
    .route("/ready", get(health::ready))
    .route("/metrics", get(health::metrics))
    .route("/openapi.json", get(openapi::openapi_json))
    .route(
        "/admin/retrieve-iact",
        get(admin::retrieve_iact).route_layer(limited()),
    )
    .route(
        "/admin/initial-admin-user",
        post(admin::initial_admin_user).route_layer(limited()),
    )
    .route(
        "/.well-known/authzen-configuration",
        get(authzen::metadata_root),
    )
    .route(
        "/.well-known/authzen-configuration/policies/{name}",
        get(authzen::metadata_named),
    )
    .route("/access/v1/evaluation", post(authzen::evaluation_root))
    .route("/access/v1/evaluations", post(authzen::evaluations_root))
    .route(
        "/access/v1/search/subject",
        post(authzen::search_subject_root),
    )
    .route(
        "/access/v1/search/resource",
        post(authzen::search_resource_root),
    )
    .route(
        "/access/v1/search/action",
        post(authzen::search_action_root),
    )
    .route(
        "/policies/{name}/access/v1/evaluation",
        post(authzen::evaluation_named),
    )
    .route(
        "/policies/{name}/access/v1/evaluations",
        post(authzen::evaluations_named),
    )
    .route(
        "/policies/{name}/access/v1/search/subject",
        post(authzen::search_subject_named),
    )
    .route(
        "/policies/{name}/access/v1/search/resource",
        post(authzen::search_resource_named),
    )
    .route(
        "/policies/{name}/access/v1/search/action",
        post(authzen::search_action_named),
    )
    .route("/v1/login", post(session::login).route_layer(limited()))
    .route(
        "/v1/login/oidc",
        post(session::login_oidc).route_layer(limited()),
    )
    .route("/v1/logout", post(session::logout))
    .route("/v1/whoami", get(session::whoami))
    .route("/v1/accounts", get(accounts::list).post(accounts::create))
    .route(
        "/v1/accounts/{name}",
        get(accounts::get).delete(accounts::delete),
    )
    .route("/v1/accounts/{name}/state", put(accounts::set_state))
    .route(
        "/v1/accounts/{name}/users",
        get(users::list_in_account).post(users::create_in_account),
    )
    .route(
        "/v1/users",
        get(users::list_all).post(tokens::create_by_email),
    )
    .route(
        "/v1/users/{username}/access-token/request",
        post(tokens::request),
    )
    .route(
        "/v1/users/{username}/access-token/grant",
        post(tokens::grant),
    )
    .route(
        "/v1/users/{username}/access-token/revoke",
        post(tokens::revoke),
    )
    .route("/v1/audit", get(audit::list))
    .route("/v1/users/export", get(csv::export))
    .route(
        "/v1/users/import",
        post(csv::import).layer(DefaultBodyLimit::max(max_import)),
    )
    .route(
        "/v1/users/{username}",
        get(users::describe)
            .patch(users::patch)
            .delete(users::delete),
    )
    .route("/v1/users/{username}/password", put(users::set_password))
    .route(
        "/v1/users/{username}/sso-link",
        put(users::link_sso).delete(users::unlink_sso),
    )
    .route(
        "/v1/users/{username}/keys",
        get(users::list_keys).post(users::create_key),
    )
    .route(
        "/v1/users/{username}/keys/{id}",
        axum::routing::delete(users::revoke_key),
    )
    .route("/v1/authorize", post(decide::authorize))
    .route(
        "/v1/plugins",
        get(plugins::list)
            .post(plugins::upload)
            .layer(DefaultBodyLimit::max(max_plugin)),
    )
    .route("/v1/plugins/{id}", get(plugins::get))
    .route("/v1/plugins/{id}/activate", post(plugins::activate))
    .route("/v1/authorizer", get(plugins::authorizer))
    .route("/v1/policies", get(policies::list))
    .route(
        "/v1/policies/{name}",
        get(policies::get)
            .put(policies::put)
            .delete(policies::delete),
    )
    .route("/v1/decisions", get(plugins::decisions))
    .route("/v1/forward-auth", forward_methods(forward::check_default))
    .route(
        "/v1/forward-auth/{policy}",
        forward_methods(forward::check_named),
    )
    .route(
        "/v1/forward-auth/{policy}/",
        forward_methods(forward::check_appended_root),
    )
    .route(
        "/v1/forward-auth/{policy}/{*rest}",
        forward_methods(forward::check_appended),
    )
}

/// Forward auth answers every method: the method is data there (Envoy passes the original
/// one on, WebDAV's PROPFIND and REPORT included). OpenAPI documents the usual seven.
fn forward_methods<H, T>(handler: H) -> MethodRouter<SharedState>
where
    H: axum::handler::Handler<T, SharedState>,
    T: 'static,
{
    axum::routing::any(handler)
}

/// The path templates of every route (for the route-coverage test).
pub fn route_paths(state: &SharedState) -> Vec<&'static str> {
    routes(state).paths
}

pub fn router(state: SharedState) -> Router {
    let max_body = state.config.max_body_bytes as usize;
    let console = {
        use crate::console;
        let limited = axum::middleware::from_fn_with_state(state.clone(), rate_limited);
        Router::new()
            .route("/", get(console::root))
            .route("/ui", get(console::ui_slash))
            .route("/ui/", get(console::index))
            .route("/ui/login", post(console::login).route_layer(limited))
            .route("/ui/session", get(console::current))
            .route("/ui/logout", post(console::logout))
            .route("/ui/{file}", get(console::asset))
    };
    routes(&state)
        .router
        .merge(console)
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .fallback(|| async { ApiError::not_found("route") })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(echo_request_id))
        .layer(
            // Log the path only: query strings may carry the IACT.
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
            }),
        )
        .with_state(state)
}

/// Answer with the request's `X-Request-ID`, byte for byte (AuthZEN §transport; useful to
/// every client that correlates logs), when it is at most 128 printable ASCII characters.
async fn echo_request_id(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    // Echoed only when it looks like an id: at most 128 visible ASCII characters.
    let id = req
        .headers()
        .get("x-request-id")
        .filter(|v| v.len() <= 128 && v.as_bytes().iter().all(|b| (0x20..0x7f).contains(b)))
        .cloned();
    let mut response = next.run(req).await;
    if let Some(id) = id {
        response.headers_mut().insert("x-request-id", id);
    }
    response
}

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
    let method = method_label(req.method()).to_string();
    // An answer to a call with the console's cookie is the user's own: no cache may keep
    // it (shared caches skip `Authorization` requests, not cookie ones). Forward-auth
    // answers, whose session cookie is another, stay cacheable by the proxy.
    let with_cookie = req
        .headers()
        .get_all(axum::http::header::COOKIE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.contains("portcullis-console=")));
    let started = std::time::Instant::now();
    let mut response = next.run(req).await;
    if with_cookie {
        let headers = response.headers_mut();
        headers.insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        headers.append(
            axum::http::header::VARY,
            axum::http::HeaderValue::from_static("cookie"),
        );
    }
    let m = &state.metrics;
    m.http_requests
        .get_or_create(&portcullis_app::metrics::HttpLabels {
            method,
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    m.http_latency
        .get_or_create(&portcullis_app::metrics::RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The `method` label: the standard methods by name, anything else as `other`, so a client
/// making up methods cannot create metric series.
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
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
            if let Some(unlogged) = state.limiter.log_refusal(ip) {
                tracing::warn!(client = %ip, path = %req.uri().path(), unlogged, "rate limited (one line a minute per address; `unlogged` refusals since the last)");
            }
            let error = ApiError::from(portcullis_app::AppError::rate_limited(wait));
            if req.uri().path().starts_with("/admin/") {
                admin::ptfe_response(error)
            } else {
                error.into_response()
            }
        }
    }
}
