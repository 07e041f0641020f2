//! `/health` and `/ready`.

use serde::Serialize;
use utoipa::ToSchema;

/// `{"status":"ok"}`: the process is up.
#[derive(Debug, ToSchema, Serialize)]
pub struct Health {
    pub status: String,
    /// The server's version.
    pub version: String,
}

impl Health {
    pub fn ok() -> Self {
        Health {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

#[derive(Debug, ToSchema, Serialize)]
pub struct Ready {
    /// `ready`.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub store: String,
    /// The latest applied migration.
    pub schema_version: i64,
    /// The active plugin's id.
    pub authorizer: String,
    // No doc comment here: utoipa would wrap the inlined enum in an `allOf` with an object.
    #[schema(inline)]
    pub change_listener: ChangeListener,
}

impl Ready {
    pub fn new(
        store: &str,
        schema_version: i64,
        authorizer: String,
        change_listener: portcullis_store::PushState,
    ) -> Self {
        Ready {
            status: "ready".into(),
            store: store.into(),
            schema_version,
            authorizer,
            change_listener: change_listener.into(),
        }
    }
}

/// Whether other servers' permission changes reach this one at once: `listening`, `down`
/// (caches fall back to `auth.key_cache_ttl` until it reconnects) or `local` (SQLite).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeListener {
    Local,
    Down,
    Listening,
}

impl From<portcullis_store::PushState> for ChangeListener {
    fn from(s: portcullis_store::PushState) -> Self {
        use portcullis_store::PushState as P;
        match s {
            P::Local => ChangeListener::Local,
            P::Down => ChangeListener::Down,
            P::Listening => ChangeListener::Listening,
        }
    }
}

#[derive(Debug, ToSchema, Serialize)]
pub struct NotReady {
    /// `not_ready`.
    pub status: String,
    /// `unreachable`.
    pub store: String,
}

impl NotReady {
    /// The store does not answer.
    pub fn unreachable() -> Self {
        NotReady {
            status: "not_ready".into(),
            store: "unreachable".into(),
        }
    }
}
