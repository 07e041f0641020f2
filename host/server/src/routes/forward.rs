//! `/v1/forward-auth[/{policy}]` (SPEC §13): nginx `auth_request`, Caddy `forward_auth`,
//! Traefik `forwardAuth` and Envoy's HTTP `ext_authz` ask here whether the request they hold
//! may pass. This reads the original request from the proxy's convention and
//! `portcullis_app::forward` decides.
//!
//! Only `[forward_auth] trusted_proxies` are answered (403 for anyone else, before any
//! work): a check is a proxy's question about another request.
//!
//! | proxy   | method                | URI                           | host                 |
//! |---------|-----------------------|-------------------------------|----------------------|
//! | Traefik, Caddy | `X-Forwarded-Method` | `X-Forwarded-Uri`     | `X-Forwarded-Host`   |
//! | nginx   | `X-Original-Method` | `X-Original-URI` | `X-Forwarded-Host`, else `Host` |
//! | ingress-nginx | `X-Original-Method` | `X-Original-URL` (`scheme://host/path?query`) | from the URL |
//! | Envoy   | the request's own     | appended: `/v1/forward-auth/{policy}/…` | `Host` |
//!
//! A request that uses two conventions at once is refused (400): proxies pass headers they
//! do not know on, so a client could otherwise add the other convention's header.

use crate::api::errors::ErrorBody;
use crate::error::ApiError;
use crate::state::SharedState;
use axum::extract::{ConnectInfo, OriginalUri, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_app::forward::{self, Outcome, Route};
use portcullis_app::AppError;
use portcullis_core::ErrorCode;
use std::net::SocketAddr;

/// The policy segment that names the default policy (in Envoy's form, where a segment
/// must be there): no policy name can start with `-`.
pub const DEFAULT_POLICY_SEGMENT: &str = "-";

/// Forward auth with the default policy.
#[utoipa::path(method(get, post, put, patch, delete, head, options), path = "/v1/forward-auth", tag = "forward-auth", security((), ("bearer" = [])),
    params(
        ("X-Forwarded-Method" = Option<String>, Header, description = "The original method (Traefik, Caddy); believed from `trusted_proxies` only"),
        ("X-Forwarded-Uri" = Option<String>, Header, description = "The original path and query (Traefik, Caddy)"),
        ("X-Forwarded-Host" = Option<String>, Header, description = "The original host"),
        ("X-Forwarded-Proto" = Option<String>, Header, description = "The original scheme (`http`, `https`)"),
        ("X-Original-URI" = Option<String>, Header, description = "The original path and query (nginx `auth_request`)"),
        ("X-Original-Method" = Option<String>, Header, description = "The original method (nginx)"),
    ),
    responses(
        (status = 200, description = "Allowed: `X-Portcullis-User`, `X-Portcullis-Account`, `X-Portcullis-Roles` (and `[forward_auth] response_headers`) name the user"),
        (status = 400, description = "A trusted proxy's forwarded headers are missing or garbled", body = ErrorBody),
        (status = 401, description = "No valid key or session cookie (`WWW-Authenticate: Bearer`)", body = ErrorBody),
        (status = 403, description = "The policy denies it (reasons in the body), or the peer is not in `[forward_auth] trusted_proxies`", body = ErrorBody),
        (status = 404, description = "No such policy", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ))]
pub async fn check_default(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    check(&state, peer, None, None, method, &uri, &headers).await
}

/// Forward auth with a named policy (`-`: the default).
#[utoipa::path(method(get, post, put, patch, delete, head, options), path = "/v1/forward-auth/{policy}", tag = "forward-auth", security((), ("bearer" = [])),
    params(("policy" = String, Path, pattern = r"^(-|[a-z0-9][a-z0-9._-]{0,62})$", description = "The application policy (`-`: the default)")),
    responses(
        (status = 200, description = "Allowed (headers as for `/v1/forward-auth`)"),
        (status = 400, description = "A trusted proxy's forwarded headers are missing or garbled", body = ErrorBody),
        (status = 401, description = "No valid key or session cookie", body = ErrorBody),
        (status = 403, description = "The policy denies it, or the peer is not a trusted proxy", body = ErrorBody),
        (status = 404, description = "No such policy", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ))]
pub async fn check_named(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    super::Path(policy): super::Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    check(&state, peer, Some(&policy), None, method, &uri, &headers).await
}

/// Envoy's HTTP `ext_authz`: the original path appended to `path_prefix`
/// (`/v1/forward-auth/{policy}`), the original method and headers as they were.
#[utoipa::path(method(get, post, put, patch, delete, head, options), path = "/v1/forward-auth/{policy}/{rest}", tag = "forward-auth", security((), ("bearer" = [])),
    params(
        ("policy" = String, Path, pattern = r"^(-|[a-z0-9][a-z0-9._-]{0,62})$", description = "The application policy (`-`: the default)"),
        ("rest" = String, Path, description = "The original path (Envoy appends it); believed from `trusted_proxies` only"),
    ),
    responses(
        (status = 200, description = "Allowed (headers as for `/v1/forward-auth`)"),
        (status = 400, description = "The appended path is garbled", body = ErrorBody),
        (status = 401, description = "No valid key or session cookie", body = ErrorBody),
        (status = 403, description = "The policy denies it, or the peer is not a trusted proxy", body = ErrorBody),
        (status = 404, description = "No such policy", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ))]
pub async fn check_appended(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    super::Path((policy, _rest)): super::Path<(String, String)>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    // The appended path raw, as Envoy sent it (the extracted parameter is decoded).
    let prefix = format!("/v1/forward-auth/{policy}");
    let appended = uri.path().strip_prefix(prefix.as_str()).map(str::to_string);
    check(
        &state,
        peer,
        Some(&policy),
        appended.as_deref(),
        method,
        &uri,
        &headers,
    )
    .await
}

/// Envoy's HTTP `ext_authz` for the application's root: `/v1/forward-auth/{policy}/`.
#[utoipa::path(method(get, post, put, patch, delete, head, options), path = "/v1/forward-auth/{policy}/", tag = "forward-auth", security((), ("bearer" = [])),
    params(("policy" = String, Path, pattern = r"^(-|[a-z0-9][a-z0-9._-]{0,62})$", description = "The application policy (`-`: the default)")),
    responses(
        (status = 200, description = "Allowed (headers as for `/v1/forward-auth`)"),
        (status = 400, description = "A trusted proxy's forwarded headers are missing or garbled", body = ErrorBody),
        (status = 401, description = "No valid key or session cookie", body = ErrorBody),
        (status = 403, description = "The policy denies it, or the peer is not a trusted proxy", body = ErrorBody),
        (status = 404, description = "No such policy", body = ErrorBody),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ))]
pub async fn check_appended_root(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    super::Path(policy): super::Path<String>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Response {
    check(
        &state,
        peer,
        Some(&policy),
        Some("/"),
        method,
        &uri,
        &headers,
    )
    .await
}

async fn check(
    state: &SharedState,
    peer: SocketAddr,
    policy: Option<&str>,
    appended: Option<&str>,
    method: Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> Response {
    let policy = policy.filter(|p| *p != DEFAULT_POLICY_SEGMENT);
    let config = &state.config.forward_auth;
    let trusted = config
        .trusted_proxies
        .iter()
        .any(|n| n.contains(&peer.ip().to_canonical()));
    if !trusted {
        // Only a proxy asks here, and a proxy's check is a GET about another request: one
        // decided as itself would be a `get` of this path for every request the proxy
        // holds. Refused before any work, whatever it carries.
        return ApiError::from(AppError::forbidden(
            "not a trusted proxy",
            vec![format!(
                "{} is not in [forward_auth] trusted_proxies: forward-auth checks are answered for trusted proxies only",
                peer.ip().to_canonical()
            )],
        ))
        .into_response();
    }
    let route = match original(state, peer, appended, &method, uri, headers) {
        Ok(r) => r,
        Err(e) => return ApiError::new(StatusCode::BAD_REQUEST, e.code, e.message).into_response(),
    };
    let presented = credentials(state, headers);
    match forward::decide(state, presented, policy, route).await {
        Ok(Outcome::Allowed {
            headers: granted,
            decision_id,
        }) => {
            let mut response = StatusCode::OK.into_response();
            let out = response.headers_mut();
            for (name, value) in granted {
                if let (Ok(n), Ok(v)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&value),
                ) {
                    out.insert(n, v);
                }
            }
            decision_header(out, &decision_id);
            response
        }
        Ok(Outcome::Denied {
            reasons,
            decision_id,
        }) => {
            let e = ApiError::from(AppError::forbidden("denied by the policy", reasons));
            let mut response = e.into_response();
            decision_header(response.headers_mut(), &decision_id);
            response
        }
        Err(e) => unauthenticated_or(e),
    }
}

fn decision_header(headers: &mut HeaderMap, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        headers.insert("x-portcullis-decision-id", v);
    }
}

/// 401 with `WWW-Authenticate: Bearer` for every way of not being signed in (a temporary
/// password included: the key cannot be used until it is changed); other errors as usual.
fn unauthenticated_or(e: AppError) -> Response {
    let unauthenticated = matches!(
        e.code,
        ErrorCode::Unauthorized | ErrorCode::PasswordChangeRequired
    );
    let mut api = ApiError::from(e);
    if !unauthenticated {
        return api.into_response();
    }
    api.status = StatusCode::UNAUTHORIZED;
    let mut response = api.into_response();
    response.headers_mut().insert(
        axum::http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"portcullis\""),
    );
    response
}

/// The end user's key: `Authorization: Bearer`, else the configured session cookie.
fn credentials<'h>(state: &SharedState, headers: &'h HeaderMap) -> Option<&'h str> {
    forward::presented_key(
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        headers
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        &state.config.forward_auth.cookie,
    )
}

/// One header's value as text: `Ok(None)` when absent; 400 when sent twice or not text.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, AppError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AppError::invalid(name_of(name), "sent more than once"));
    }
    first
        .to_str()
        .map(|s| Some(s.trim()))
        .map_err(|_| AppError::invalid(name_of(name), "not visible ASCII"))
}

/// The header's usual spelling, for messages.
fn name_of(lower: &str) -> &'static str {
    match lower {
        "x-forwarded-method" => "X-Forwarded-Method",
        "x-forwarded-uri" => "X-Forwarded-Uri",
        "x-forwarded-host" => "X-Forwarded-Host",
        "x-forwarded-proto" => "X-Forwarded-Proto",
        "x-original-uri" => "X-Original-URI",
        "x-original-method" => "X-Original-Method",
        "x-original-url" => "X-Original-URL",
        "host" => "Host",
        _ => "header",
    }
}

/// The request a trusted proxy describes.
fn original(
    state: &SharedState,
    peer: SocketAddr,
    appended: Option<&str>,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> Result<Route, AppError> {
    let forwarded_uri = single(headers, "x-forwarded-uri")?;
    let mut original_uri = single(headers, "x-original-uri")?;
    let original_url = single(headers, "x-original-url")?;
    // ingress-nginx sends X-Original-URI beside X-Original-URL (with `auth-method`): the
    // same request when it is the URL's path and query, a second description otherwise.
    let url_parts = original_url.and_then(split_url);
    if let (Some(uri), Some((_, _, target))) = (original_uri, url_parts) {
        if !target.is_empty() && target == uri {
            original_uri = None;
        }
    }
    // Exactly one convention: a client that adds the other proxy's header to its request
    // (proxies pass unknown headers on) gets a 400, never a say in the decision.
    let conventions = [
        appended.map(|_| "an appended path (Envoy)"),
        forwarded_uri.map(|_| "X-Forwarded-Uri"),
        original_uri.map(|_| "X-Original-URI"),
        original_url.map(|_| "X-Original-URL"),
    ];
    let given: Vec<&str> = conventions.iter().flatten().copied().collect();
    if given.len() > 1 {
        return Err(AppError::invalid(
            given[1],
            format!(
                "sent with {}: the proxy must describe the request one way only (clear the other header in its configuration)",
                given[0]
            ),
        ));
    }
    // nginx's auth_request subrequest is always a GET: the method must be forwarded.
    let original_method = || {
        single(headers, "x-original-method")?.ok_or_else(|| {
            AppError::invalid(
                "X-Original-Method",
                "missing (nginx: proxy_set_header X-Original-Method $request_method)",
            )
        })
    };
    // (method, request target, the field it came from, host and scheme if it names them)
    let (method, target, target_field, url_host, url_scheme) = if let Some(path) = appended {
        // Envoy: the original method and path; the query is the request's own.
        let target = match uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        };
        (method.as_str().to_string(), target, "path", None, None)
    } else if let Some(target) = forwarded_uri {
        let m = single(headers, "x-forwarded-method")?.ok_or_else(|| {
            AppError::invalid(
                "X-Forwarded-Method",
                "missing (a proxy that sends X-Forwarded-Uri sends the method with it)",
            )
        })?;
        (
            m.to_string(),
            target.to_string(),
            "X-Forwarded-Uri",
            None,
            None,
        )
    } else if let Some(target) = original_uri {
        let m = original_method()?;
        (
            m.to_string(),
            target.to_string(),
            "X-Original-URI",
            None,
            None,
        )
    } else if original_url.is_some() {
        // Kubernetes ingress-nginx: the whole URL, `$scheme://$http_host$request_uri`.
        let m = original_method()?;
        let (scheme, authority, target) = url_parts.ok_or_else(|| {
            AppError::invalid("X-Original-URL", "not an absolute URL (scheme://host/path)")
        })?;
        let scheme = forward::check_scheme("X-Original-URL", scheme)?;
        let host = forward::check_host("X-Original-URL", authority)?;
        let target = match target {
            "" => "/".to_string(),
            t if t.starts_with('?') => format!("/{t}"),
            t => t.to_string(),
        };
        (
            m.to_string(),
            target,
            "X-Original-URL",
            Some(host),
            Some(scheme),
        )
    } else {
        return Err(AppError::invalid(
            "X-Forwarded-Uri",
            "missing: a trusted proxy says which request it holds with X-Forwarded-Method and X-Forwarded-Uri (Traefik, Caddy), X-Original-Method and X-Original-URI or X-Original-URL (nginx, ingress-nginx), or by appending the path (Envoy: path_prefix /v1/forward-auth/<policy>)",
        ));
    };
    let method = forward::check_method(
        if target_field == "X-Forwarded-Uri" {
            "X-Forwarded-Method"
        } else {
            "X-Original-Method"
        },
        &method,
    )?;
    let (path, query) = forward::split_uri(
        target_field,
        &target,
        state.config.forward_auth.encoded_slash,
    )?;
    // Envoy sends the original Host and never sets X-Forwarded-Host: one there came from
    // the client (through `allowed_headers`), so it is not read.
    let forwarded_host = match appended {
        Some(_) => None,
        None => single(headers, "x-forwarded-host")?,
    };
    let host = match (url_host, forwarded_host) {
        (Some(h), _) => h,
        (None, Some(h)) => forward::check_host("X-Forwarded-Host", h)?,
        (None, None) => own_host(headers)?,
    };
    let scheme = match (url_scheme, single(headers, "x-forwarded-proto")?) {
        (Some(s), _) => Some(s),
        (None, Some(p)) => Some(forward::check_scheme("X-Forwarded-Proto", p)?),
        (None, None) => None,
    };
    Ok(Route {
        method,
        scheme,
        host,
        path,
        query,
        headers: shown_headers(state, headers)?,
        client_ip: Some(crate::ratelimit::client_ip(
            &state.config.forward_auth.trusted_proxies,
            peer.ip(),
            headers,
        )),
    })
}

/// An absolute URL as (scheme, authority, path and query as written — empty when none).
fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let cut = rest.find(['/', '?']).unwrap_or(rest.len());
    Some((scheme, &rest[..cut], &rest[cut..]))
}

fn own_host(headers: &HeaderMap) -> Result<String, AppError> {
    let host = single(headers, "host")?.ok_or_else(|| AppError::invalid("Host", "missing"))?;
    forward::check_host("Host", host)
}

/// The headers `[forward_auth] headers` lists, as the request carries them.
fn shown_headers(
    state: &SharedState,
    headers: &HeaderMap,
) -> Result<Vec<(String, String)>, AppError> {
    forward::shown_headers(&state.config.forward_auth.headers, |name| {
        headers.get_all(name).iter().map(|v| v.as_bytes()).collect()
    })
}
