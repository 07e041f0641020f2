//! The Portcullis server: the only crate that knows axum/hyper. Routes, authentication,
//! bootstrap, configuration; every decision goes through [`state::AppState::decide`].

pub mod auth;
pub mod authorizer;
pub mod bootstrap;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod hashing;
pub mod metrics;
pub mod oidc;
pub mod ratelimit;
pub mod routes;
pub mod state;
pub mod verified;

use anyhow::Context;
use authorizer::Active;
use config::Config;
use portcullis_plugin::{Limits, Runtime};
use portcullis_store::{AuthorizerState, Store};
use state::{AppState, SharedState};
use std::future::Future;
use std::sync::Arc;

/// The limits of `[authorizer]`.
pub fn plugin_limits(config: &Config) -> Limits {
    Limits {
        timeout: std::time::Duration::from_millis(config.authorizer.timeout_ms),
        memory_bytes: (config.authorizer.memory_limit_mib as usize) * 1024 * 1024,
        ..Limits::default()
    }
}

/// The bytes of a plugin named `builtin:NAME` or by a path to a `.wasm` component.
pub fn plugin_bytes(spec: &str) -> anyhow::Result<std::borrow::Cow<'static, [u8]>> {
    if let Some(name) = spec.strip_prefix("builtin:") {
        return portcullis_plugin::builtin(name)
            .map(std::borrow::Cow::Borrowed)
            .ok_or_else(|| anyhow::anyhow!("authorizer.plugin: there is no built-in plugin {name:?} (available: builtin:native)"));
    }
    std::fs::read(spec)
        .map(std::borrow::Cow::Owned)
        .with_context(|| format!("authorizer.plugin: reading the component {spec}"))
}

/// The bytes of a plugin by id: `builtin:NAME`, a stored plugin id, or (from the config
/// file only) a path.
pub async fn plugin_source(
    store: &Store,
    id: &str,
) -> anyhow::Result<std::borrow::Cow<'static, [u8]>> {
    if id.starts_with("builtin:") || id.ends_with(".wasm") {
        return plugin_bytes(id);
    }
    store
        .plugin_wasm(id)
        .await?
        .map(std::borrow::Cow::Owned)
        .ok_or_else(|| anyhow::anyhow!("plugin {id} is not in the plugin store"))
}

/// Load and configure a plugin as an [`Active`] authorizer.
pub async fn build_active(
    runtime: &Runtime,
    store: &Store,
    config: &Config,
    id: &str,
    settings: &serde_json::Value,
    since: i64,
) -> anyhow::Result<Active> {
    let bytes = plugin_source(store, id).await?;
    let plugin = runtime
        .load(id, &bytes, &settings.to_string(), plugin_limits(config))
        .await
        .map_err(|e| anyhow::anyhow!("authorizer plugin {id}: {e}"))?;
    Ok(Active::new(id.to_string(), plugin, settings.clone(), since))
}

fn settings_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::json!({}))
}

/// The shadow plugin a stored state names, if it loads here.
async fn build_shadow(
    runtime: &Runtime,
    store: &Store,
    config: &Config,
    s: &AuthorizerState,
) -> Option<Active> {
    let id = s.shadow_id.as_deref()?;
    let settings = settings_of(s.shadow_settings.as_deref().unwrap_or("{}"));
    match build_active(
        runtime,
        store,
        config,
        id,
        &settings,
        s.shadow_since.unwrap_or(s.active_since),
    )
    .await
    {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "the shadow plugin does not load here; running without it");
            None
        }
    }
}

/// Make this server run what the stored authorizer state says.
pub async fn apply_state(state: &SharedState, s: &AuthorizerState) -> anyhow::Result<()> {
    let active = build_active(
        &state.runtime,
        &state.store,
        &state.config,
        &s.active_id,
        &settings_of(&s.active_settings),
        s.active_since,
    )
    .await?;
    let shadow = build_shadow(&state.runtime, &state.store, &state.config, s).await;
    tracing::info!(plugin = %active.id, digest = %active.plugin.digest(), version = s.version, shadow = ?shadow.as_ref().map(|a| a.id.clone()), "authorizer activated");
    state.authz.set_active(active);
    state.authz.set_shadow(shadow);
    state
        .authz
        .version
        .store(s.version, std::sync::atomic::Ordering::SeqCst);
    Ok(())
}

/// Follow the authorizer state in the database: an activation on another server, or
/// `server reset-authorizer`, takes effect here within about a second. (The same loop
/// trims the rate limiter's memory once a minute.)
fn spawn_state_poller(state: std::sync::Weak<state::AppState>) {
    tokio::spawn(async move {
        let mut ticks: u64 = 0;
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let Some(state) = state.upgrade() else { return };
            if state.store.is_closed() {
                return;
            }
            ticks += 1;
            if ticks.is_multiple_of(120) {
                state.limiter.forget_idle();
            }
            // Audit retention: at the first tick, then hourly.
            if ticks % 7200 == 1 {
                if let Err(e) = prune_audit(&state).await {
                    tracing::warn!(error = %e, "audit retention failed; will retry in an hour");
                }
            }
            let applied = state
                .authz
                .version
                .load(std::sync::atomic::Ordering::SeqCst);
            let current = match state.store.authorizer_version().await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the authorizer state");
                    continue;
                }
            };
            if current == applied {
                continue;
            }
            match state.store.authorizer_state().await {
                Ok(Some(s)) => {
                    if let Err(e) = apply_state(&state, &s).await {
                        // Remember the version anyway: retrying every second would only
                        // repeat the error; the old plugin keeps deciding.
                        tracing::error!(error = %format!("{e:#}"), version = s.version, "could not switch to the stored authorizer; keeping the current one");
                        state
                            .authz
                            .version
                            .store(s.version, std::sync::atomic::Ordering::SeqCst);
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not read the authorizer state"),
            }
        }
    });
}

/// Apply `[audit]` retention now: entries older than `audit.retention` go, then the oldest
/// beyond `audit.max_entries`. Returns how many were deleted.
pub async fn prune_audit(state: &state::AppState) -> anyhow::Result<u64> {
    let retention = state.config.audit.retention.as_millis() as i64;
    let before = portcullis_store::now_ms().saturating_sub(retention);
    let gone = state
        .store
        .prune_audit(before, state.config.audit.max_entries as i64)
        .await?;
    if gone > 0 {
        tracing::info!(deleted = gone, "audit retention");
    }
    Ok(gone)
}

/// Open the store, run bootstrap, and build the shared state.
pub async fn prepare(config: Config) -> anyhow::Result<SharedState> {
    let runtime =
        Runtime::new().map_err(|e| anyhow::anyhow!("starting the plugin runtime: {e}"))?;
    if config.database_url.is_empty() {
        bootstrap::ensure_data_dir(&config.data_dir)?;
    }
    let url = config.database_url();
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        if !path.is_empty() && !path.starts_with(':') {
            bootstrap::ensure_private_file(std::path::Path::new(path))?;
        }
    }
    let store = Store::connect(&url).await.context("opening the database")?;
    let boot = bootstrap::run(&store, &config).await.context("bootstrap")?;
    for name in store.accounts_being_deleted().await? {
        routes::accounts_reaper(store.clone(), name);
    }
    // The stored authorizer state (set through the API or reset-authorizer) wins over the
    // config file, which only names the plugin to start with.
    let stored = store.authorizer_state().await?;
    let now = portcullis_store::now_ms();
    let initial = match &stored {
        Some(s) => build_active(
            &runtime,
            &store,
            &config,
            &s.active_id,
            &settings_of(&s.active_settings),
            s.active_since,
        )
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{e:#}; run `portcullis server reset-authorizer` to return to builtin:native"
            )
        })?,
        None => {
            build_active(
                &runtime,
                &store,
                &config,
                &config.authorizer.plugin.clone(),
                &config.authorizer.settings.clone(),
                now,
            )
            .await?
        }
    };
    tracing::info!(plugin = %initial.id, digest = %initial.plugin.digest(), "authorizer loaded");
    let shadow = match &stored {
        Some(s) => build_shadow(&runtime, &store, &config, s).await,
        None => None,
    };
    let sso = config.oidc.clone().map(oidc::Sso::new).transpose()?;
    let mut state = AppState::new(store, config, runtime, initial);
    state.sso = sso;
    let state = Arc::new(state);
    state.authz.set_shadow(shadow);
    if let Some(s) = &stored {
        state
            .authz
            .version
            .store(s.version, std::sync::atomic::Ordering::SeqCst);
    }
    *state.iact_token.write().expect("iact lock") = boot.iact;
    spawn_state_poller(Arc::downgrade(&state));
    Ok(state)
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
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // A free slot first, then a connection: past the cap, clients wait in the backlog
        // instead of costing the server memory and file descriptors.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, don't spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
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
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = conn.await;
            open.dec();
            drop(permit);
        });
    }
    drop(listener);
    // In-flight requests finish (within SHUTDOWN_GRACE); idle connections close.
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?SHUTDOWN_GRACE, "connections still open at shutdown; closing them");
    }
    state.store.close().await;
    Ok(())
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
