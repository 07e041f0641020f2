//! The typed audit record: who did what to which target, how it ended, and a detail.
//! Values are escaped (no value can forge a line when the log is printed) and bounded (no
//! client can grow the database by sending long names). Never put a secret in one.

use portcullis_core::names::{printable, SYSTEM_ACCOUNT};
use portcullis_core::{AuditAction, Outcome};
use portcullis_store::{NewAudit, Store};

/// Longest actor/target (characters) an audit entry keeps; names are at most 63.
pub const AUDIT_NAME_CHARS: usize = 128;
/// Longest detail (characters) an audit entry keeps.
pub const AUDIT_DETAIL_CHARS: usize = 512;

/// One audit entry, built with [`Audit::success`] / [`Audit::failure`].
#[derive(Debug, Clone)]
pub struct Audit<'a> {
    pub actor: &'a str,
    pub action: AuditAction,
    pub target: &'a str,
    pub outcome: Outcome,
    pub detail: String,
}

impl<'a> Audit<'a> {
    pub fn success(actor: &'a str, action: AuditAction, target: &'a str) -> Self {
        Audit {
            actor,
            action,
            target,
            outcome: Outcome::Success,
            detail: String::new(),
        }
    }
    pub fn failure(actor: &'a str, action: AuditAction, target: &'a str) -> Self {
        Audit {
            outcome: Outcome::Failure,
            ..Self::success(actor, action, target)
        }
    }
    /// An entry the host itself writes (bootstrap, host-side CLI commands).
    pub fn by_host(action: AuditAction, target: &'a str) -> Self {
        Self::success(SYSTEM_ACCOUNT, action, target)
    }
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// Write it; a failure is logged, never returned (the operation it records happened).
    pub async fn append(self, store: &Store) {
        if let Err(e) = self.try_append(store).await {
            tracing::error!(error = %e, action = self.action.as_str(), "could not append to the audit log");
        }
    }

    /// Write it, returning the store's error (host-side commands report it).
    pub async fn try_append(&self, store: &Store) -> Result<(), portcullis_store::StoreError> {
        let (actor, target, detail) = (
            printable(self.actor, AUDIT_NAME_CHARS),
            printable(self.target, AUDIT_NAME_CHARS),
            printable(&self.detail, AUDIT_DETAIL_CHARS),
        );
        store
            .append_audit(&NewAudit {
                actor: &actor,
                action: self.action.as_str(),
                target: &target,
                outcome: self.outcome.as_str(),
                detail: &detail,
            })
            .await
    }
}

/// Apply `[audit]` retention now: entries older than `audit.retention` go, then the oldest
/// beyond `audit.max_entries`. Returns how many were deleted.
pub async fn prune(app: &crate::App) -> Result<u64, portcullis_store::StoreError> {
    let retention = app.config.audit.retention.as_millis() as i64;
    let before = portcullis_store::now_ms().saturating_sub(retention);
    let gone = app
        .store
        .prune_audit(before, app.config.audit.max_entries as i64)
        .await?;
    if gone > 0 {
        tracing::info!(deleted = gone, "audit retention");
    }
    Ok(gone)
}

/// Which audit entries to show: by actor, by action, from a time (RFC 3339) on.
#[derive(Debug, Default)]
pub struct Query {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<String>,
}

/// A page of the audit log after the entry id `after`; the cursor of the next page when
/// the page is full.
pub async fn list(
    app: &crate::App,
    caller: &crate::caller::Caller,
    query: Query,
    after: i64,
    limit: i64,
) -> crate::AppResult<(Vec<portcullis_store::AuditEntry>, Option<String>)> {
    use portcullis_core::authz::{actions, Target};
    app.require(
        &caller.principal,
        actions::AUDIT_READ,
        Target::new("audit", "*", None),
    )
    .await?;
    let since = match &query.since {
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| {
                    crate::AppError::invalid("since", format!("{t:?} is not an RFC 3339 time: {e}"))
                })?
                .timestamp_millis(),
        ),
        None => None,
    };
    let filter = portcullis_store::AuditFilter {
        actor: query.actor,
        action: query.action,
        since,
    };
    let entries = app.store.list_audit(after, limit, &filter).await?;
    let next = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id.to_string()))
        .flatten();
    Ok((entries, next))
}
