//! The HTTP adapter of Portcullis: the only crate that knows axum/hyper. Routes translate
//! a request into a call of `portcullis-app` and its answer (or [`error::ApiError`]) into a
//! response; the connection bounds of `[http]`, the per-address rate limiter, the OpenAPI
//! document and the request metrics live here. No business rule does.

pub mod api;
pub mod auth;
pub mod console;
pub mod error;
pub mod grpc;
pub mod ratelimit;
pub mod routes;
pub mod state;
pub mod tls;

use portcullis_app::config::Config;
use portcullis_plugin::Runtime;
use state::{AppState, SharedState};
use std::future::Future;
use std::sync::Arc;

/// [`prepare_with`] with a runtime of its own.
pub async fn prepare(config: Config) -> anyhow::Result<SharedState> {
    prepare_with(config, Runtime::new()?).await
}

/// Start the application (`portcullis_app::start`) on `runtime` and wrap it for HTTP.
pub async fn prepare_with(config: Config, runtime: Runtime) -> anyhow::Result<SharedState> {
    let app = portcullis_app::start(config, runtime).await?;
    let state = Arc::new(AppState::new(app));
    spawn_limiter_trim(Arc::downgrade(&state));
    Ok(state)
}

/// Forget idle client addresses of the rate limiter once a minute; ends with the state.
fn spawn_limiter_trim(state: std::sync::Weak<AppState>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            let Some(state) = state.upgrade() else { return };
            if state.store.is_closed() {
                return;
            }
            state.limiter.forget_idle();
        }
    });
}

/// Serve on `listener` until `shutdown` resolves, then drain in-flight requests.
///
/// HTTP/1.1 through hyper's connection builder rather than `axum::serve`, for the bounds an
/// unauthenticated client must not get past (SPEC §10, `[http]`): at most
/// `http.max_connections` connections are served at once (further ones wait in the
/// kernel's backlog); a connection must send its first byte, and then a request's complete
/// headers, within `http.header_read_timeout`; a stalled body is cut off after
/// `http.body_read_timeout`, a whole request after `http.request_timeout`. (HTTP/2 is not
/// served: its idle streams would need bounds of their own.) At shutdown, requests in
/// flight get `SHUTDOWN_GRACE` to finish.
pub async fn serve(
    state: SharedState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let http = state.config.http.clone();
    let app = routes::router(state.clone()).layer((
        tower_http::timeout::RequestBodyTimeoutLayer::new(http.body_read_timeout),
        tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            http.request_timeout,
        ),
    ));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_read_timeout)
        .max_buf_size(64 * 1024);
    let slots = Arc::new(tokio::sync::Semaphore::new(connection_slots(
        http.max_connections as u64,
    )));
    let tls = tls::Tls::load(&state.config.tls)?;
    if state.config.console.enabled && tls.is_none() && !state.config.console.secure_cookie {
        tracing::warn!("[console] secure_cookie = false: the console's session cookie also travels over plain HTTP, where anyone on the path can take it");
    }
    match &tls {
        Some(t) => t.reload_on_sighup(),
        // SIGHUP must not stop a server without TLS (`systemctl reload`).
        None => tls::ignore_sighup(),
    }
    // Envoy's gRPC ext_authz on its own listener, stopped with this one.
    let (grpc_stop, grpc_stopped) = tokio::sync::oneshot::channel::<()>();
    let grpc = match state.config.forward_auth.grpc_listen.as_str() {
        "" => None,
        address => {
            let grpc_listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|e| anyhow::anyhow!("forward_auth.grpc_listen: binding {address}: {e}"))?;
            let bound = grpc_listener.local_addr()?;
            let _ = state.grpc_addr.set(bound);
            if state.config.forward_auth.trusted_proxies.is_empty() {
                tracing::warn!(%bound, "gRPC ext_authz listens, but [forward_auth] trusted_proxies is empty: every connection will be closed");
            } else {
                tracing::info!(%bound, "gRPC ext_authz listening");
            }
            Some(tokio::spawn(grpc::serve(
                state.clone(),
                grpc_listener,
                async {
                    let _ = grpc_stopped.await;
                },
            )))
        }
    };
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let Some((permit, stream, peer)) = accept(&listener, &slots, shutdown.as_mut()).await
        else {
            break;
        };
        let open = state.metrics.connections.clone();
        open.inc();
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
        // hyper starts its header timer whenever it waits for a request, idle or not: a
        // client that connects and sends nothing is dropped after the same time.
        match &tls {
            None => {
                let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    let _ = conn.await;
                    open.dec();
                    drop(permit);
                });
            }
            Some(tls) => {
                // The handshake runs in the connection's task (a slow client holds only
                // its own slot), bounded like the headers that follow it.
                let acceptor = tls.acceptor();
                let watcher = graceful.watcher();
                let builder = builder.clone();
                let handshake = http.header_read_timeout;
                tokio::spawn(async move {
                    match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let conn = watcher
                                .watch(builder.serve_connection(TokioIo::new(stream), service));
                            let _ = conn.await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                    open.dec();
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    let _ = grpc_stop.send(());
    // In-flight requests on both listeners finish within one SHUTDOWN_GRACE, drained
    // together; idle connections close.
    let grpc_done = async {
        if let Some(task) = grpc {
            let _ = task.await;
        }
    };
    let (http, _) = tokio::join!(
        tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()),
        grpc_done
    );
    if http.is_err() {
        tracing::warn!(grace = ?SHUTDOWN_GRACE, "connections still open at shutdown; closing them");
    }
    state.store.close().await;
    Ok(())
}

/// The next connection, once a slot is free; `None` when `shutdown` resolves first. A free
/// slot comes first: past the cap, clients wait in the kernel's backlog instead of costing
/// the server memory and file descriptors. A failed accept (out of file descriptors and
/// the like) is logged and retried after a pause, never spun on.
pub(crate) async fn accept(
    listener: &tokio::net::TcpListener,
    slots: &Arc<tokio::sync::Semaphore>,
    mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Option<(
    tokio::sync::OwnedSemaphorePermit,
    tokio::net::TcpStream,
    std::net::SocketAddr,
)> {
    let permit = tokio::select! {
        p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        _ = shutdown.as_mut() => return None,
    };
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => return Some((permit, stream, peer)),
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.as_mut() => return None,
        }
    }
}

/// How long requests in flight may take to finish at shutdown.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// `http.max_connections`, but never more than the open-file limit allows with room for
/// the database, plugins and logs: past the descriptors, accepting fails and even
/// `/health` could not be answered.
fn connection_slots(configured: u64) -> usize {
    const RESERVED_FDS: u64 = 256;
    let soft = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    let room = soft.saturating_sub(RESERVED_FDS).max(16);
    if configured > room {
        tracing::warn!(
            configured,
            serving = room,
            open_file_limit = soft,
            "http.max_connections is above what the open-file limit allows; serving fewer (raise `ulimit -n`)"
        );
    }
    configured.min(room) as usize
}

/// Raise the soft limit on open files to the hard limit, so `http.max_connections`
/// rather than a default of 1 024 descriptors decides how many clients are served.
pub fn raise_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}
