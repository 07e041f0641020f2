//! Changes made by other servers, pushed (PostgreSQL only).
//!
//! Triggers (migration 0004) call `pg_notify('portcullis_auth', <table>)` in the
//! transaction of every write that changes who may do what — keys (created, revoked,
//! deleted, their expiry), users (created, deleted, roles, attributes, account, password,
//! forced change, SSO link), accounts, and the authorizer state — so the notification
//! leaves with the commit, whichever server or process wrote. [`Store::follow_changes`]
//! listens on a dedicated connection and bumps the store's auth epoch for each one, which
//! invalidates every verified-key, subject and permission cache entry of this process
//! (`portcullis-app`'s `verified`); a change of the authorizer state also wakes the
//! activation poller ([`Store::authorizer_changed`]).
//!
//! When the listening connection drops, the caches fall back to their TTL
//! (`auth.key_cache_ttl`): the listener reconnects with a backoff and bumps the epoch once
//! more when it is back, so nothing written while it was away outlives the reconnection.
//! [`Store::push_state`] says which it is (`/ready`, `/metrics`).

use crate::{Backend, Store};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

/// The notification channel the triggers send on.
pub const CHANNEL: &str = "portcullis_auth";

/// Whether other servers' changes reach this process at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushState {
    /// SQLite: one server, nothing to hear (this server's own writes bump the epoch).
    Local,
    /// Not listening yet, or the listening connection is down: the TTL applies.
    Down,
    /// Listening: other servers' changes arrive within milliseconds.
    Listening,
}

impl PushState {
    pub fn as_str(self) -> &'static str {
        match self {
            PushState::Local => "local",
            PushState::Down => "down",
            PushState::Listening => "listening",
        }
    }
}

#[derive(Default)]
pub(crate) struct Changes {
    /// 0 = not following, 1 = down, 2 = listening.
    state: AtomicU8,
    /// Notifications received.
    pub(crate) received: AtomicU64,
    /// Times the listening connection was (re)established.
    pub(crate) connects: AtomicU64,
    /// Woken when another server changed the authorizer state.
    authorizer: tokio::sync::Notify,
    /// Woken when the store is closed: the listener ends.
    pub(crate) closed: tokio::sync::Notify,
}

impl Store {
    /// Listen for other servers' changes (PostgreSQL; nothing on SQLite), until the store
    /// is closed. Call once per process that serves requests.
    pub fn follow_changes(&self) {
        if self.backend != Backend::Postgres {
            return;
        }
        let store = self.clone();
        store.changes.state.store(1, Ordering::Release);
        tokio::spawn(async move { store.listen_loop().await });
    }

    /// See [`PushState`].
    pub fn push_state(&self) -> PushState {
        match (self.backend, self.changes.state.load(Ordering::Acquire)) {
            (Backend::Sqlite, _) => PushState::Local,
            (_, 2) => PushState::Listening,
            _ => PushState::Down,
        }
    }

    /// Notifications received from other servers and times the listening connection was
    /// established (for `/metrics`).
    pub fn push_counts(&self) -> (u64, u64) {
        (
            self.changes.received.load(Ordering::Relaxed),
            self.changes.connects.load(Ordering::Relaxed),
        )
    }

    /// Resolves when another server changes the authorizer state (never on SQLite).
    pub async fn authorizer_changed(&self) {
        self.changes.authorizer.notified().await
    }

    /// Every cached verification is stale from now on.
    fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::Release);
    }

    async fn listen_loop(&self) {
        let mut backoff = Duration::from_millis(100);
        while !self.is_closed() {
            let mut listener = match sqlx::postgres::PgListener::connect(&self.url).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "change listener: cannot connect; caches fall back to auth.key_cache_ttl");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if let Err(e) = listener.listen(CHANNEL).await {
                tracing::warn!(error = %e, "change listener: LISTEN failed");
                tokio::time::sleep(backoff).await;
                continue;
            }
            // Whatever was written while nobody listened is seen now.
            self.invalidate();
            self.changes.connects.fetch_add(1, Ordering::Relaxed);
            self.changes.state.store(2, Ordering::Release);
            self.changes.authorizer.notify_one();
            backoff = Duration::from_millis(100);
            tracing::info!(
                channel = CHANNEL,
                "change listener: listening for other servers' changes"
            );
            loop {
                // `try_recv` answers `None` when the connection was lost (it would
                // reconnect silently on the next call; we reconnect ourselves, to know).
                let received = tokio::select! {
                    r = listener.try_recv() => r,
                    _ = self.changes.closed.notified() => return,
                };
                match received {
                    Ok(Some(n)) => {
                        self.invalidate();
                        self.changes.received.fetch_add(1, Ordering::Relaxed);
                        if n.payload() == "authorizer_state" {
                            self.changes.authorizer.notify_one();
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "change listener: connection lost");
                        break;
                    }
                }
                if self.is_closed() {
                    return;
                }
            }
            self.changes.state.store(1, Ordering::Release);
            self.invalidate();
            tracing::warn!("change listener: disconnected; caches fall back to auth.key_cache_ttl until it is back");
        }
    }
}
