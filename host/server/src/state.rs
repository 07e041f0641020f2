//! The state every handler gets: the application ([`portcullis_app::App`], reached through
//! `Deref`) and what only HTTP needs (the per-address rate limiter).

use crate::ratelimit::Limiter;
use portcullis_app::App;
use std::sync::Arc;

pub type SharedState = Arc<AppState>;

pub struct AppState {
    pub app: Arc<App>,
    /// Login attempts per client address (`rate_limit.login_per_minute`).
    pub limiter: Limiter,
    /// Where the gRPC `ext_authz` listener is bound, once it is (`[forward_auth]
    /// grpc_listen`; a port of 0 picks one).
    pub grpc_addr: std::sync::OnceLock<std::net::SocketAddr>,
}

impl AppState {
    pub fn new(app: Arc<App>) -> Self {
        let limiter = Limiter::new(
            app.config.rate_limit.login_per_minute,
            app.config.rate_limit.trusted_proxies.clone(),
        );
        AppState {
            app,
            limiter,
            grpc_addr: std::sync::OnceLock::new(),
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}
