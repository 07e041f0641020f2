//! Envoy's gRPC `ext_authz` (`envoy.service.auth.v3.Authorization/Check`) on its own
//! listener, `[forward_auth] grpc_listen` (SPEC §13). A `CheckRequest` is the original
//! request as Envoy saw it, so only `[forward_auth] trusted_proxies` are served: any other
//! peer's connection is closed before a byte of HTTP/2 is read. The decision is
//! `portcullis_app::forward`'s, as for `/v1/forward-auth`; the policy is the route's
//! `context_extensions` entry `policy` (absent: the default policy).
//!
//! Answers: allow → `OK` with the `X-Portcullis-*` headers set on the upstream request
//! (overwriting what the client sent); deny → `PERMISSION_DENIED` with a 403 and the
//! reasons; no valid key → `UNAUTHENTICATED` with a 401 and `WWW-Authenticate`; a request
//! that cannot be read → `INVALID_ARGUMENT` with a 400. None of these is a gRPC error: Envoy
//! shows the client the HTTP answer inside.

use crate::state::SharedState;
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse,
    HeaderAppendAction, HeaderValue, HeaderValueOption, HttpResponse, HttpStatus, HttpStatusCode,
    OkHttpResponse,
};
use envoy_types::pb::google::rpc;
use portcullis_app::forward::{self, Outcome, Route};
use portcullis_app::AppError;
use portcullis_core::ErrorCode;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// The largest `CheckRequest` decoded (headers and all; Envoy sends no body unless told).
const MAX_MESSAGE: usize = 256 * 1024;
/// Connections served at once on the gRPC listener (proxies keep a few each).
const MAX_CONNECTIONS: usize = 256;

/// gRPC status codes (google.rpc.Code).
const OK: i32 = 0;
const INVALID_ARGUMENT: i32 = 3;
const PERMISSION_DENIED: i32 = 7;
const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

struct ExtAuthz {
    state: SharedState,
}

#[tonic::async_trait]
impl Authorization for ExtAuthz {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let peer = request.remote_addr();
        Ok(tonic::Response::new(
            answer(&self.state, peer, request.into_inner()).await,
        ))
    }
}

async fn answer(
    state: &SharedState,
    peer: Option<SocketAddr>,
    check: CheckRequest,
) -> CheckResponse {
    let attributes = check.attributes.unwrap_or_default();
    // `-` or empty: the default policy, as in `/v1/forward-auth/-`.
    let policy = attributes
        .context_extensions
        .get("policy")
        .filter(|p| !p.is_empty() && p.as_str() != "-")
        .cloned();
    let http = attributes.request.and_then(|r| r.http).unwrap_or_default();
    let client_ip = attributes
        .source
        .and_then(|s| s.address)
        .and_then(|a| a.address)
        .and_then(|a| match a {
            envoy_types::ext_authz::v3::pb::Address::SocketAddress(s) => s.address.parse().ok(),
            _ => None,
        })
        .or(peer.map(|p| p.ip()));
    // `encode_raw_headers: true` sends the headers in `header_map` instead, one entry per
    // header line: several lines of one name are joined as Envoy's map form joins them
    // (`; ` for cookies), so a second `X-Tenant` or cookie cannot replace the first.
    let mut headers: HashMap<String, String> = http.headers;
    if headers.is_empty() {
        if let Some(map) = http.header_map {
            for h in map.headers {
                let value = if h.value.is_empty() {
                    String::from_utf8_lossy(&h.raw_value).into_owned()
                } else {
                    h.value
                };
                let name = h.key.to_ascii_lowercase();
                let separator = if name == "cookie" { "; " } else { ", " };
                headers
                    .entry(name)
                    .and_modify(|v| {
                        v.push_str(separator);
                        v.push_str(&value);
                    })
                    .or_insert(value);
            }
        }
    }
    let route = route(
        state,
        &http.method,
        &http.host,
        &http.path,
        &http.scheme,
        &headers,
        client_ip,
    );
    let route = match route {
        Ok(r) => r,
        Err(e) => {
            return denied(
                INVALID_ARGUMENT,
                HttpStatusCode::BadRequest,
                &e.message,
                Vec::new(),
            )
        }
    };
    let presented = forward::presented_key(
        headers.get("authorization").map(String::as_str),
        headers.get("cookie").map(String::as_str),
        &state.config.forward_auth.cookie,
    );
    match forward::decide(state, presented, policy.as_deref(), route).await {
        Ok(Outcome::Allowed {
            headers,
            decision_id,
        }) => {
            let mut ok = OkHttpResponse::default();
            for (key, value) in headers
                .into_iter()
                .chain([("x-portcullis-decision-id".to_string(), decision_id)])
            {
                // An empty value: remove the client's header of that name rather than
                // rely on how the proxy treats an empty one.
                if value.is_empty() {
                    ok.headers_to_remove.push(key);
                    continue;
                }
                ok.headers.push(HeaderValueOption {
                    header: Some(HeaderValue {
                        key,
                        value,
                        ..Default::default()
                    }),
                    append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
                    ..Default::default()
                });
            }
            CheckResponse {
                status: Some(rpc::Status {
                    code: OK,
                    ..Default::default()
                }),
                http_response: Some(HttpResponse::OkResponse(ok)),
                ..Default::default()
            }
        }
        Ok(Outcome::Denied {
            reasons,
            decision_id,
        }) => {
            let body = serde_json::json!({"error": {"code": "forbidden", "message": "denied by the policy", "reasons": reasons}});
            denied(
                PERMISSION_DENIED,
                HttpStatusCode::Forbidden,
                &body.to_string(),
                vec![("x-portcullis-decision-id", decision_id)],
            )
        }
        Err(e) => {
            let (code, status) = match e.code {
                ErrorCode::Unauthorized | ErrorCode::PasswordChangeRequired => {
                    (UNAUTHENTICATED, HttpStatusCode::Unauthorized)
                }
                ErrorCode::NotFound => (INVALID_ARGUMENT, HttpStatusCode::NotFound),
                ErrorCode::InvalidRequest => (INVALID_ARGUMENT, HttpStatusCode::BadRequest),
                _ => (UNAVAILABLE, HttpStatusCode::ServiceUnavailable),
            };
            let body =
                serde_json::json!({"error": {"code": e.code.as_str(), "message": e.message}});
            let mut extra = Vec::new();
            if code == UNAUTHENTICATED {
                extra.push((
                    "www-authenticate",
                    "Bearer realm=\"portcullis\"".to_string(),
                ));
            }
            denied(code, status, &body.to_string(), extra)
        }
    }
}

/// The original request Envoy describes, checked as `/v1/forward-auth` checks a proxy's
/// headers.
fn route(
    state: &SharedState,
    method: &str,
    host: &str,
    path: &str,
    scheme: &str,
    headers: &HashMap<String, String>,
    client_ip: Option<std::net::IpAddr>,
) -> Result<Route, AppError> {
    let method = forward::check_method("attributes.request.http.method", method)?;
    let host = forward::check_host("attributes.request.http.host", host)?;
    let (path, query) = forward::split_uri(
        "attributes.request.http.path",
        path,
        state.config.forward_auth.encoded_slash,
    )?;
    let scheme = if scheme.is_empty() {
        None
    } else {
        Some(forward::check_scheme(
            "attributes.request.http.scheme",
            scheme,
        )?)
    };
    let shown = forward::shown_headers(&state.config.forward_auth.headers, |name| {
        headers
            .get(name)
            .map(|v| v.as_bytes())
            .into_iter()
            .collect()
    })?;
    Ok(Route {
        method,
        scheme,
        host,
        path,
        query,
        headers: shown,
        client_ip,
    })
}

fn denied(
    code: i32,
    status: HttpStatusCode,
    body: &str,
    headers: Vec<(&str, String)>,
) -> CheckResponse {
    let mut response = DeniedHttpResponse {
        status: Some(HttpStatus {
            code: status as i32,
        }),
        body: body.to_string(),
        ..Default::default()
    };
    for (key, value) in [("content-type", "application/json".to_string())]
        .into_iter()
        .chain(headers)
    {
        response.headers.push(HeaderValueOption {
            header: Some(HeaderValue {
                key: key.to_string(),
                value,
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    CheckResponse {
        status: Some(rpc::Status {
            code,
            message: body.to_string(),
            ..Default::default()
        }),
        http_response: Some(HttpResponse::DeniedResponse(response)),
        ..Default::default()
    }
}

/// Serve `Authorization/Check` on `listener` until `shutdown` resolves: HTTP/2 (what gRPC
/// needs) for trusted peers only, at most [`MAX_CONNECTIONS`] at once, idle connections
/// pinged and dropped when the peer stops answering.
pub async fn serve(
    state: SharedState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let service = AuthorizationServer::new(ExtAuthz {
        state: state.clone(),
    })
    .max_decoding_message_size(MAX_MESSAGE);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let trusted = state.config.forward_auth.trusted_proxies.clone();
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(std::time::Duration::from_secs(30)))
        .max_header_list_size(64 * 1024);
    tokio::pin!(shutdown);
    loop {
        let Some((permit, stream, peer)) =
            crate::accept(&listener, &slots, shutdown.as_mut()).await
        else {
            break;
        };
        if !trusted
            .iter()
            .any(|n| n.contains(&peer.ip().to_canonical()))
        {
            tracing::debug!(%peer, "gRPC ext_authz connection from a peer not in [forward_auth] trusted_proxies: closed");
            continue;
        }
        let service = service.clone();
        let hyper_service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(tonic::transport::server::TcpConnectInfo {
                        local_addr: None,
                        remote_addr: Some(peer),
                    });
                tower::ServiceExt::oneshot(service.clone(), req)
            });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), hyper_service));
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(crate::SHUTDOWN_GRACE, graceful.shutdown()).await;
}
