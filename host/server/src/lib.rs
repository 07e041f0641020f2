//! The Portcullis server: the only crate that knows axum/hyper. Routes, authentication,
//! bootstrap, configuration; every decision goes through [`state::AppState::decide`].

pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod error;
pub mod routes;
pub mod state;

use anyhow::Context;
use config::Config;
use portcullis_core::authz::Authorizer;
use portcullis_plugin::{Limits, Runtime};
use portcullis_store::Store;
use state::{AppState, SharedState};
use std::future::Future;
use std::net::SocketAddr;
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

/// Load the authorizer named by `[authorizer] plugin` with its settings and limits.
pub async fn load_authorizer(
    runtime: &Runtime,
    config: &Config,
) -> anyhow::Result<Arc<dyn Authorizer>> {
    let spec = &config.authorizer.plugin;
    let bytes = plugin_bytes(spec)?;
    let settings = config.authorizer.settings.to_string();
    let plugin = runtime
        .load(spec, &bytes, &settings, plugin_limits(config))
        .await
        .map_err(|e| anyhow::anyhow!("authorizer.plugin {spec}: {e}"))?;
    tracing::info!(plugin = %spec, digest = %plugin.digest(), "authorizer loaded");
    Ok(Arc::new(plugin))
}

/// Open the store, run bootstrap, and build the shared state.
pub async fn prepare(config: Config) -> anyhow::Result<SharedState> {
    let runtime =
        Runtime::new().map_err(|e| anyhow::anyhow!("starting the plugin runtime: {e}"))?;
    let authorizer = load_authorizer(&runtime, &config).await?;
    if config.database_url.is_empty() {
        bootstrap::ensure_data_dir(&config.data_dir)?;
    }
    let url = config.database_url();
    let store = Store::connect(&url).await.context("opening the database")?;
    let boot = bootstrap::run(&store, &config).await.context("bootstrap")?;
    for name in store.accounts_being_deleted().await? {
        routes::accounts_reaper(store.clone(), name);
    }
    let state = Arc::new(AppState::new(store, config, runtime, authorizer));
    *state.iact_token.write().expect("iact lock") = boot.iact;
    Ok(state)
}

/// Serve on `listener` until `shutdown` resolves, then drain in-flight requests.
pub async fn serve(
    state: SharedState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = routes::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    state.store.close().await;
    Ok(())
}
