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
use portcullis_core::authz::{Authorizer, NativeRules};
use portcullis_store::Store;
use state::{AppState, SharedState};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// The authorizer named by `[authorizer] plugin`.
pub fn load_authorizer(config: &Config) -> anyhow::Result<Arc<dyn Authorizer>> {
    match config.authorizer.plugin.as_str() {
        "builtin:native" => Ok(Arc::new(NativeRules)),
        other => anyhow::bail!(
            "authorizer.plugin: {other:?} is not available; this build provides builtin:native"
        ),
    }
}

/// Open the store, run bootstrap, and build the shared state.
pub async fn prepare(config: Config) -> anyhow::Result<SharedState> {
    let authorizer = load_authorizer(&config)?;
    if config.database_url.is_empty() {
        bootstrap::ensure_data_dir(&config.data_dir)?;
    }
    let url = config.database_url();
    let store = Store::connect(&url).await.context("opening the database")?;
    let boot = bootstrap::run(&store, &config).await.context("bootstrap")?;
    for name in store.accounts_being_deleted().await? {
        routes::accounts_reaper(store.clone(), name);
    }
    let state = Arc::new(AppState::new(store, config, authorizer));
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
