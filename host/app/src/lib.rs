//! The use cases of Portcullis, between the HTTP adapter (`portcullis-server`) and the
//! CLI on one side and the store and plugin runtime on the other. Each operation a client
//! can ask for lives here once — bootstrap and recovery, sessions, accounts, users, keys,
//! access tokens, import/export, plugin activation, outside decisions — as a function over
//! an [`App`], returning [`AppResult`].
//!
//! This crate knows neither HTTP nor SQL nor WebAssembly (a test in `tests/tidy.rs`
//! holds it to that): it speaks the domain types of `portcullis-core`, the records of
//! `portcullis-store` and the plugin handles of `portcullis-plugin`. Every permission is
//! asked of the active authorizer through [`App::require`]; no use case decides on its own.

pub mod accounts;
pub mod audit;
pub mod authorizer;
pub mod bootstrap;
pub mod caller;
pub mod config;
pub mod decide;
pub mod error;
pub mod forward;
#[doc(hidden)]
pub mod fuzzing;
pub mod hashing;
pub mod import;
pub mod keys;
pub mod metrics;
pub mod oidc;
pub mod plugins;
pub mod policies;
mod poller;
pub mod session;
pub mod tokens;
pub mod users;
pub mod verified;

pub use audit::Audit;
pub use caller::Caller;
pub use error::{AppError, AppResult};

use authorizer::{Active, Authz};
use config::Config;
use metrics::Metrics;
use portcullis_core::authz::{self, Decision, Origin, Principal, Target, CONTEXT_ORIGIN};
use portcullis_core::password;
use portcullis_store::{Store, User};
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// How many password hashes may wait per core before new ones are refused (`busy`).
pub const HASH_QUEUE_PER_CORE: usize = 128;

/// Most keys (and, separately, subjects) kept verified in memory.
const VERIFIED_ENTRIES: usize = 100_000;

/// Everything a use case works with: the store, the configuration, the plugin runtime and
/// the active authorizer, the password hashing pool, the verified-key cache.
pub struct App {
    pub store: Store,
    pub config: Arc<Config>,
    /// The plugin runtime (engine, compiled-component cache).
    pub runtime: portcullis_plugin::Runtime,
    /// The active (and shadow) plugin, decision cache, decision log and counters.
    pub authz: Arc<Authz>,
    pub metrics: Metrics,
    pub started: Instant,
    /// argon2 work runs here: one thread per core, a bounded queue (see `hashing`).
    hashing: hashing::HashPool,
    /// The plaintext IACT this server created or loaded at start (iact mode only), served
    /// while it is still live in the store.
    pub iact_token: RwLock<Option<String>>,
    /// Single sign-on, when `[oidc]` is configured.
    pub sso: Option<oidc::Sso>,
    /// Recently verified keys and subjects (`auth.key_cache_ttl`).
    pub verified: verified::Verified,
    /// The application policies this server runs.
    pub policies: policies::Policies,
}

impl App {
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
        let verified = verified::Verified::new(config.auth.key_cache_ttl, VERIFIED_ENTRIES);
        App {
            store,
            config: Arc::new(config),
            authz: Arc::new(Authz::new(active, log_size, cache_size, max_cache_ttl)),
            runtime,
            metrics: Metrics::default(),
            started: Instant::now(),
            // One username may hold an eighth of the queue: enough for a burst of its own
            // logins, never enough to starve everyone else's.
            hashing: hashing::HashPool::new(
                cores,
                cores * HASH_QUEUE_PER_CORE,
                cores * HASH_QUEUE_PER_CORE / 8,
            ),
            iact_token: RwLock::new(None),
            sso: None,
            verified,
            policies: policies::Policies::default(),
        }
    }

    /// The id of the active plugin (`builtin:native`, a stored plugin id, or a path).
    pub fn authorizer_name(&self) -> String {
        self.authz.active().id.clone()
    }

    /// Make `plugin` the active authorizer of this server only (not persisted; activation
    /// through [`plugins::activate`] persists). Calls in flight finish on the old plugin.
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
    /// no use case decides on its own.
    pub async fn decide(
        &self,
        principal: &Arc<Principal>,
        action: &str,
        target: Target,
    ) -> Decision {
        let request = authz::Request {
            principal: principal.clone(),
            action: action.to_string(),
            target,
            context: vec![(
                CONTEXT_ORIGIN.to_string(),
                Origin::Management.as_str().to_string(),
            )],
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

    /// [`App::decide`], a deny becoming [`AppError::forbidden`] with the plugin's reasons.
    pub async fn require(
        &self,
        principal: &Arc<Principal>,
        action: &str,
        target: Target,
    ) -> AppResult<()> {
        let label = format!("{}/{}", target.kind, target.id);
        let decision = self.decide(principal, action, target).await;
        if decision.allowed {
            Ok(())
        } else {
            Err(AppError::forbidden(
                format!("{} requires {action} on {label}", principal.username),
                decision.reasons,
            ))
        }
    }

    /// Hash a password on the hashing pool, for `owner` (the user it is for).
    pub async fn hash_password(&self, owner: &str, plain: String) -> AppResult<String> {
        self.hashing
            .run(owner, move || password::hash(&plain))
            .await
            .map_err(|_| AppError::busy())
    }

    /// Verify a password (or, with `phc = None`, spend the same time on a dummy hash) for
    /// `owner` (the username tried; one owner gets a bounded share of the hashing pool).
    pub async fn verify_password_for(
        &self,
        owner: &str,
        plain: String,
        phc: Option<String>,
    ) -> AppResult<Option<password::Verified>> {
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
            .map_err(|_| AppError::busy())
    }

    /// Count a password guess against `username`'s lockout before any hashing: at most
    /// `auth.lockout_threshold` checks per lock window, however many arrive at once (SPEC
    /// §10). `false` while the user is locked.
    pub async fn reserve_password_attempt(&self, username: &str) -> AppResult<bool> {
        Ok(self
            .store
            .reserve_password_attempt(
                username,
                self.config.auth.lockout_threshold as i64,
                self.config.auth.lockout_duration.as_millis() as i64,
            )
            .await?)
    }

    /// `/metrics` in Prometheus text, with the change listener's state read now.
    pub fn render_metrics(&self) -> String {
        let m = &self.metrics;
        m.change_listener_up
            .set((self.store.push_state() == portcullis_store::PushState::Listening) as i64);
        let (received, connects) = self.store.push_counts();
        let catch_up = |c: &prometheus_client::metrics::counter::Counter, total: u64| {
            c.inc_by(total.saturating_sub(c.get()));
        };
        catch_up(&m.change_notifications, received);
        catch_up(&m.change_listener_connects, connects);
        m.render()
    }

    /// Append to the audit log (see [`Audit`]: escaped and bounded). Failures are logged:
    /// an audit entry that cannot be written never fails the operation it records.
    pub async fn audit(&self, entry: Audit<'_>) {
        entry.append(&self.store).await;
    }
}

/// The principal the authorizer sees for a user.
pub fn principal_of(user: &User) -> Arc<Principal> {
    Arc::new(Principal {
        username: user.username.clone(),
        account: user.account.clone(),
        account_type: user.account_type,
        roles: user.roles.clone(),
        attributes: user
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        email: user.email.clone(),
    })
}

/// A time as the API shows it: RFC 3339 in UTC with milliseconds.
pub fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The folder of the data directory where the compiled code of built-in plugins is kept.
pub const PRECOMPILED_DIR: &str = "precompiled";

/// Open the store (creating a private data directory for SQLite), run bootstrap, resume
/// unfinished account deletions, load the authorizer the stored state names (or, the first
/// time, the one the configuration names) and start following the stored state.
///
/// `runtime` may be shared: a process that runs several apps (the tests) compiles each
/// plugin once.
pub async fn start(
    config: Config,
    runtime: portcullis_plugin::Runtime,
) -> anyhow::Result<Arc<App>> {
    use anyhow::Context;
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
    let store = Store::connect_with(&url, config.database_timeout)
        .await
        .context("opening the database")?;
    let boot = bootstrap::run(&store, &config).await.context("bootstrap")?;
    for name in store.accounts_being_deleted().await? {
        accounts::spawn_reaper(store.clone(), name);
    }
    // The stored authorizer state (set through the API or reset-authorizer) wins over the
    // config file, which only names the plugin to start with.
    let stored = store.authorizer_state().await?;
    // Compiled built-in plugins (`builtin:cedar` takes seconds to compile) are kept here
    // for the next start; a runtime shared by test servers keeps the first one it was given.
    runtime.keep_precompiled_in(config.data_dir.join(PRECOMPILED_DIR));
    let initial = match &stored {
        Some(s) => plugins::build_stored_active(&runtime, &store, &config, s)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "{e}; run `portcullis server reset-authorizer` to return to {}",
                    portcullis_plugin::DEFAULT_PLUGIN
                )
            })?,
        None => {
            plugins::build_active(
                &runtime,
                &store,
                &config,
                &config.authorizer.plugin.clone(),
                &config.authorizer.settings.clone(),
                portcullis_store::now_ms(),
            )
            .await?
        }
    };
    tracing::info!(plugin = %initial.id, digest = %initial.plugin.digest(), "authorizer loaded");
    let shadow = match &stored {
        Some(s) => plugins::build_shadow(&runtime, &store, &config, s).await,
        None => None,
    };
    let sso = config.oidc.clone().map(oidc::Sso::new).transpose()?;
    let mut app = App::new(store, config, runtime, initial);
    app.sso = sso;
    let app = Arc::new(app);
    app.authz.set_shadow(shadow);
    if let Some(s) = &stored {
        app.authz
            .version
            .store(s.version, std::sync::atomic::Ordering::SeqCst);
    }
    *app.iact_token.write().expect("iact lock") = boot.iact;
    if let Err(e) = policies::sync(&app).await {
        tracing::warn!(error = %e, "could not read the application policies; the poller retries");
    }
    poller::spawn_state_poller(Arc::downgrade(&app));
    // Other servers' permission changes reach this one at once (PostgreSQL).
    app.store.follow_changes();
    Ok(app)
}
