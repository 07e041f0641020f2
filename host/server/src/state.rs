//! Shared server state and the authorization seam every handler goes through.

use crate::authorizer::{Active, Authz};
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use axum::http::StatusCode;
use portcullis_core::authz::{self, Decision, Principal, Target};
use portcullis_core::password;
use portcullis_store::{NewAudit, Store, User};
use std::sync::{Arc, RwLock};
use std::time::Instant;

pub type SharedState = Arc<AppState>;

/// How many password hashes may wait per core before new ones are refused with 503.
pub const HASH_QUEUE_PER_CORE: usize = 128;

/// Longest actor/target (characters) an audit entry keeps; names are at most 63.
pub const AUDIT_NAME_CHARS: usize = 128;
/// Longest detail (characters) an audit entry keeps.
pub const AUDIT_DETAIL_CHARS: usize = 512;

/// Most keys (and, separately, subjects) kept verified in memory.
const VERIFIED_ENTRIES: usize = 100_000;

pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    /// The plugin runtime (engine, compiled-component cache).
    pub runtime: portcullis_plugin::Runtime,
    /// The active (and shadow) plugin, decision cache, decision log and counters.
    pub authz: Arc<Authz>,
    pub metrics: Metrics,
    pub started: Instant,
    /// argon2 work runs here: one thread per core, a bounded queue (see `hashing`).
    hashing: crate::hashing::HashPool,
    /// The plaintext IACT this server created or loaded at start (iact mode only), served
    /// by `GET /admin/retrieve-iact` while it is still live in the store.
    pub iact_token: RwLock<Option<String>>,
    /// Single sign-on, when `[oidc]` is configured.
    pub sso: Option<crate::oidc::Sso>,
    pub limiter: crate::ratelimit::Limiter,
    /// Recently verified keys and subjects (`auth.key_cache_ttl`).
    pub verified: crate::verified::Verified,
}

impl AppState {
    pub fn new(
        store: Store,
        config: Config,
        runtime: portcullis_plugin::Runtime,
        active: Active,
    ) -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let log_size = config.authorizer.decision_log_size as usize;
        let cache_size = config.authorizer.cache_entries as usize;
        let max_cache_ttl = std::time::Duration::from_millis(config.authorizer.max_cache_ttl_ms);
        let verified = crate::verified::Verified::new(config.auth.key_cache_ttl, VERIFIED_ENTRIES);
        let limiter = crate::ratelimit::Limiter::new(
            config.rate_limit.login_per_minute,
            config.rate_limit.trusted_proxies.clone(),
        );
        AppState {
            store,
            config: Arc::new(config),
            authz: Arc::new(Authz::new(active, log_size, cache_size, max_cache_ttl)),
            runtime,
            metrics: Metrics::default(),
            started: Instant::now(),
            // One username may hold an eighth of the queue: enough for a burst of its own
            // logins, never enough to starve everyone else's.
            hashing: crate::hashing::HashPool::new(
                cores,
                cores * HASH_QUEUE_PER_CORE,
                cores * HASH_QUEUE_PER_CORE / 8,
            ),
            iact_token: RwLock::new(None),
            sso: None,
            limiter,
            verified,
        }
    }

    /// The id of the active plugin (`builtin:native`, a stored plugin id, or a path).
    pub fn authorizer_name(&self) -> String {
        self.authz.active().id.clone()
    }

    /// Make `plugin` the active authorizer of this server only (not persisted; the
    /// activation endpoint persists). Calls in flight finish on the old plugin.
    pub fn set_authorizer(&self, plugin: portcullis_plugin::Plugin) {
        let id = plugin.name().to_string();
        self.authz.set_active(Active::new(
            id,
            plugin,
            serde_json::json!({}),
            portcullis_store::now_ms(),
        ));
    }

    /// Ask the active authorizer about one management action. The single decision path:
    /// no handler decides on its own.
    pub async fn decide(&self, principal: &Principal, action: &str, target: Target) -> Decision {
        let request = authz::Request {
            principal: principal.clone(),
            action: action.to_string(),
            target,
            context: vec![(authz::CONTEXT_ORIGIN.to_string(), "management".to_string())],
        };
        let decision = self.authz.evaluate(&request, &self.metrics).await;
        tracing::debug!(
            user = %principal.username, action, kind = %request.target.kind, id = %request.target.id,
            allowed = decision.allowed, "decision"
        );
        decision
    }

    /// Ask the active authorizer one fully formed request (outside decisions).
    pub async fn decide_request(&self, request: &authz::Request) -> Decision {
        self.authz.evaluate(request, &self.metrics).await
    }

    /// Tell the active authorizer about a lifecycle event.
    pub async fn notify(&self, event: authz::Event) {
        let active = self.authz.active();
        active.plugin.notify(&event).await;
    }

    /// `decide`, turning a deny into `403 forbidden` with the plugin's reasons.
    pub async fn require(
        &self,
        principal: &Principal,
        action: &str,
        target: Target,
    ) -> ApiResult<()> {
        let label = format!("{}/{}", target.kind, target.id);
        let decision = self.decide(principal, action, target).await;
        if decision.allowed {
            Ok(())
        } else {
            let mut e = ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("{} requires {action} on {label}", principal.username),
            );
            e.reasons = decision.reasons;
            Err(e)
        }
    }

    fn busy() -> ApiError {
        tracing::warn!("password hashing queue full; refusing");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many password checks in progress; retry shortly",
        )
    }

    /// Hash a password on the hashing pool, for `owner` (the user it is for).
    pub async fn hash_password(&self, owner: &str, plain: String) -> ApiResult<String> {
        self.hashing
            .run(owner, move || password::hash(&plain))
            .await
            .map_err(|_| Self::busy())
    }

    /// Verify a password (or, with `phc = None`, spend the same time on a dummy hash) for
    /// `owner` (the username tried; one owner gets a bounded share of the hashing pool).
    pub async fn verify_password_for(
        &self,
        owner: &str,
        plain: String,
        phc: Option<String>,
    ) -> ApiResult<Option<password::Verified>> {
        self.hashing
            .run(owner, move || match phc {
                Some(phc) => match password::verify(&plain, &phc) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        tracing::warn!(error = %e, "stored password hash refused");
                        password::dummy_verify(&plain);
                        None
                    }
                },
                None => {
                    password::dummy_verify(&plain);
                    None
                }
            })
            .await
            .map_err(|_| Self::busy())
    }

    /// Append to the audit log. Values are escaped (no value can forge a line when the log
    /// is printed) and bounded (no client can grow the database by sending long names):
    /// actor and target to [`AUDIT_NAME_CHARS`], detail to [`AUDIT_DETAIL_CHARS`]. Never
    /// pass a secret here.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        outcome: &str,
        detail: &str,
    ) {
        use portcullis_core::names::printable;
        let (actor, target, detail) = (
            printable(actor, AUDIT_NAME_CHARS),
            printable(target, AUDIT_NAME_CHARS),
            printable(detail, AUDIT_DETAIL_CHARS),
        );
        let entry = NewAudit {
            actor: &actor,
            action,
            target: &target,
            outcome,
            detail: &detail,
        };
        if let Err(e) = self.store.append_audit(&entry).await {
            tracing::error!(error = %e, action, "could not append to the audit log");
        }
    }
}

pub fn principal_of(user: &User) -> Principal {
    Principal {
        username: user.username.clone(),
        account: user.account.clone(),
        account_type: user.account_type,
        roles: user.roles.clone(),
        attributes: user
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}
