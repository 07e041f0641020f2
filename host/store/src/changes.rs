//! Changes made by other servers, pushed (PostgreSQL only).
//!
//! Triggers (migrations 0004, 0005) call `pg_notify('portcullis_auth', <table>)` in the
//! transaction of every write that changes who may do what — keys (revoked, deleted, their
//! expiry), users (created, deleted, roles, attributes, account, password, forced change,
//! SSO link, email), accounts, the authorizer state and the application policies — so the
//! notification leaves with the commit, whichever server or process wrote. Payloads that are not one of those table
//! names are ignored (any database role may `NOTIFY`). [`Store::follow_changes`]
//! listens on a dedicated connection and bumps the store's auth epoch for each one, which
//! invalidates every verified-key, subject and permission cache entry of this process
//! (`portcullis-app`'s `verified`); a change of the authorizer state also wakes the
//! activation poller ([`Store::authorizer_changed`]), and a change of a policy only wakes
//! it (no verified key or subject depends on a policy).
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
    /// Signalled when the store is closed: the listener ends (`notify_one` keeps the permit
    /// if the listener is not waiting at that moment).
    pub(crate) closed: tokio::sync::Notify,
    /// Our heartbeat payload (`heartbeat <random>`), and when it last came back.
    heartbeat: std::sync::OnceLock<String>,
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
        let heartbeat = self
            .changes
            .heartbeat
            .get_or_init(|| format!("heartbeat {}", portcullis_core::keys::random_token(16)))
            .clone();
        let mut backoff = Duration::from_millis(100);
        while !self.is_closed() {
            let connected_at = std::time::Instant::now();
            match self.listen_once(&heartbeat).await {
                Listened::Closed => return,
                Listened::Failed(why) => {
                    tracing::warn!(error = %why, retry_in = ?backoff, "change listener: not listening; caches fall back to auth.key_cache_ttl");
                }
                Listened::Dropped(why) => {
                    self.changes.state.store(1, Ordering::Release);
                    self.invalidate();
                    tracing::warn!(reason = %why, retry_in = ?backoff, "change listener: disconnected; caches fall back to auth.key_cache_ttl until it is back");
                }
            }
            // A connection that held for a while earns a quick retry; one that keeps
            // dropping waits longer each time (no hot loop, no log flood).
            if connected_at.elapsed() > Duration::from_secs(30) {
                backoff = Duration::from_millis(100);
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.changes.closed.notified() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// One listening connection, until it fails. Every `HEARTBEAT` the listener sends
    /// itself a notification through the pool; when one has not come back within
    /// `3 × HEARTBEAT`, the connection is taken for dead (a half-open TCP connection or a
    /// pooler that drops notifications) and replaced.
    async fn listen_once(&self, heartbeat: &str) -> Listened {
        const HEARTBEAT: Duration = Duration::from_secs(5);
        let mut listener = match sqlx::postgres::PgListener::connect(&self.url).await {
            Ok(l) => l,
            Err(e) => return Listened::Failed(e.to_string()),
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            return Listened::Failed(e.to_string());
        }
        // Whatever was written while nobody listened is seen now.
        self.invalidate();
        self.changes.connects.fetch_add(1, Ordering::Relaxed);
        self.changes.state.store(2, Ordering::Release);
        self.changes.authorizer.notify_one();
        tracing::info!(
            channel = CHANNEL,
            "change listener: listening for other servers' changes"
        );
        let mut last_heard = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(n)) => match n.payload() {
                        p if p == heartbeat => last_heard = tokio::time::Instant::now(),
                        // Another server's heartbeat.
                        p if p.starts_with("heartbeat ") => {}
                        // A policy's plugin changed: the poller reloads it; no
                        // verified key or subject depends on it.
                        "policies" => {
                            self.changes.received.fetch_add(1, Ordering::Relaxed);
                            self.changes.authorizer.notify_one();
                        }
                        "authorizer_state" => {
                            self.invalidate();
                            self.changes.received.fetch_add(1, Ordering::Relaxed);
                            self.changes.authorizer.notify_one();
                        }
                        "accounts" | "users" | "api_keys" => {
                            self.invalidate();
                            self.changes.received.fetch_add(1, Ordering::Relaxed);
                        }
                        // Not a payload of ours (anyone may NOTIFY): ignored.
                        _ => {}
                    },
                    // `try_recv` answers `None` when the connection was lost.
                    Ok(None) => return Listened::Dropped("connection lost".into()),
                    Err(e) => return Listened::Dropped(e.to_string()),
                },
                _ = tick.tick() => {
                    if last_heard.elapsed() > 3 * HEARTBEAT {
                        return Listened::Dropped("no heartbeat for 15 s".into());
                    }
                    let sent = sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(CHANNEL)
                        .bind(heartbeat)
                        .execute(&self.pool)
                        .await;
                    if let Err(e) = sent {
                        tracing::debug!(error = %e, "change listener: heartbeat not sent");
                    }
                }
                _ = self.changes.closed.notified() => return Listened::Closed,
            }
        }
    }
}

/// How one listening connection ended.
enum Listened {
    /// The store was closed.
    Closed,
    /// It never started listening.
    Failed(String),
    /// It listened, then dropped (or went silent).
    Dropped(String),
}
