//! `/health` and `/ready`.

use serde::Serialize;
use utoipa::ToSchema;

/// `{"status":"ok"}`: the process is up.
#[derive(Debug, ToSchema, Serialize)]
pub struct Health {
    pub status: String,
}

impl Health {
    pub fn ok() -> Self {
        Health {
            status: "ok".into(),
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
}

impl Ready {
    pub fn new(store: &str, schema_version: i64, authorizer: String) -> Self {
        Ready {
            status: "ready".into(),
            store: store.into(),
            schema_version,
            authorizer,
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
