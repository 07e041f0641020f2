//! Plugins: the plugin store (upload, list, describe), activation (enforce or shadow, with
//! the self-check), loading the stored authorizer state at start, and the poller that
//! follows that state when another server (or `server reset-authorizer`) changes it.

use crate::audit::Audit;
use crate::authorizer::{Active, Logged};
use crate::caller::Caller;
use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::App;
use portcullis_core::authz::{self, actions, Origin, Target, CONTEXT_ORIGIN};
use portcullis_core::{names, AuditAction, ErrorCode};
use portcullis_plugin::{Limits, LoadError, Runtime};
use portcullis_store::{now_ms, AuthorizerState, PluginRecord, Store};
use serde_json::Value;
use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The limits of `[authorizer]`.
pub fn plugin_limits(config: &Config) -> Limits {
    Limits {
        timeout: std::time::Duration::from_millis(config.authorizer.timeout_ms),
        configure_timeout: std::time::Duration::from_millis(config.authorizer.configure_timeout_ms),
        memory_bytes: (config.authorizer.memory_limit_mib as usize) * 1024 * 1024,
        ..Limits::default()
    }
}

/// Why a plugin could not be made the authorizer.
#[derive(Debug, thiserror::Error)]
pub enum LoadFailure {
    /// Its bytes are not to be had: no such built-in, stored plugin or file.
    #[error("{0}")]
    Source(String),
    /// The store could not be read.
    #[error("reading the plugin store: {0}")]
    Store(#[from] portcullis_store::StoreError),
    /// The component did not compile, instantiate or configure.
    #[error("authorizer plugin {id}: {error}")]
    Plugin { id: String, error: LoadError },
}

impl LoadFailure {
    /// The API's code: a refused `configure` is the settings' fault, anything else the
    /// plugin's.
    pub fn code(&self) -> ErrorCode {
        match self {
            LoadFailure::Plugin {
                error: LoadError::Configure(_),
                ..
            } => ErrorCode::PluginConfigureFailed,
            _ => ErrorCode::PluginLoadFailed,
        }
    }
}

impl From<LoadFailure> for AppError {
    fn from(e: LoadFailure) -> Self {
        match e {
            // The database's fault, not the plugin's: 503 when it is away, no details.
            LoadFailure::Store(store) => store.into(),
            other => AppError::new(other.code(), other.to_string()),
        }
    }
}

/// The bytes of a plugin named `builtin:NAME` or by a path to a `.wasm` component.
pub fn plugin_bytes(spec: &str) -> Result<Cow<'static, [u8]>, LoadFailure> {
    if let Some(name) = spec.strip_prefix("builtin:") {
        return portcullis_plugin::builtin(name)
            .map(Cow::Borrowed)
            .ok_or_else(|| {
                LoadFailure::Source(format!(
                    "authorizer.plugin: there is no built-in plugin {name:?} (available: {})",
                    portcullis_plugin::builtin_ids()
                ))
            });
    }
    std::fs::read(spec).map(Cow::Owned).map_err(|e| {
        LoadFailure::Source(format!(
            "authorizer.plugin: reading the component {spec}: {e}"
        ))
    })
}

/// The bytes of a plugin by id: `builtin:NAME`, a stored plugin id, or (from the config
/// file only) a path.
pub async fn plugin_source(store: &Store, id: &str) -> Result<Cow<'static, [u8]>, LoadFailure> {
    if !plugin_source_is_stored(id) {
        return plugin_bytes(id);
    }
    store
        .plugin_wasm(id)
        .await?
        .map(Cow::Owned)
        .ok_or_else(|| LoadFailure::Source(format!("plugin {id} is not in the plugin store")))
}

/// Is `id` a plugin of the plugin store (not `builtin:NAME`, not a file path)?
fn plugin_source_is_stored(id: &str) -> bool {
    !(id.starts_with("builtin:") || id.ends_with(".wasm"))
}

/// Load and configure a plugin as an [`Active`] authorizer.
pub async fn build_active(
    runtime: &Runtime,
    store: &Store,
    config: &Config,
    id: &str,
    settings: &Value,
    since: i64,
) -> Result<Active, LoadFailure> {
    let bytes = plugin_source(store, id).await?;
    // A stored plugin goes by the name it was uploaded with (`GET /v1/authorizer` shows
    // it beside the id); a built-in one or a file by its id.
    let name = match plugin_source_is_stored(id) {
        true => store.get_plugin(id).await?.map(|p| p.name),
        false => None,
    }
    .unwrap_or_else(|| id.to_string());
    let plugin = runtime
        .load(id, &bytes, &settings.to_string(), plugin_limits(config))
        .await
        .map_err(|error| LoadFailure::Plugin {
            id: id.to_string(),
            error,
        })?;
    Ok(Active::new(id.to_string(), plugin, settings.clone(), since).named(name))
}

fn settings_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::json!({}))
}

/// The active plugin a stored state names.
pub async fn build_stored_active(
    runtime: &Runtime,
    store: &Store,
    config: &Config,
    s: &AuthorizerState,
) -> Result<Active, LoadFailure> {
    build_active(
        runtime,
        store,
        config,
        &s.active_id,
        &settings_of(&s.active_settings),
        s.active_since,
    )
    .await
}

/// The shadow plugin a stored state names, if it loads here.
pub async fn build_shadow(
    runtime: &Runtime,
    store: &Store,
    config: &Config,
    s: &AuthorizerState,
) -> Option<Active> {
    let id = s.shadow_id.as_deref()?;
    let settings = settings_of(s.shadow_settings.as_deref().unwrap_or("{}"));
    match build_active(
        runtime,
        store,
        config,
        id,
        &settings,
        s.shadow_since.unwrap_or(s.active_since),
    )
    .await
    {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::error!(error = %e, "the shadow plugin does not load here; running without it");
            None
        }
    }
}

/// Make this server run what the stored authorizer state says.
pub async fn apply_state(app: &App, s: &AuthorizerState) -> Result<(), LoadFailure> {
    let active = build_stored_active(&app.runtime, &app.store, &app.config, s).await?;
    let shadow = build_shadow(&app.runtime, &app.store, &app.config, s).await;
    tracing::info!(plugin = %active.id, digest = %active.plugin.digest(), version = s.version, shadow = ?shadow.as_ref().map(|a| a.id.clone()), "authorizer activated");
    app.authz.set_active(active);
    app.authz.set_shadow(shadow);
    app.authz.version.store(s.version, Ordering::SeqCst);
    Ok(())
}

/// Apply the authorizer state the store holds if it is newer than what runs here (an
/// activation on another server, or `server reset-authorizer`); called by the state
/// poller (`crate::poller`).
pub async fn follow_stored_state(app: &App) {
    let _switching = app.authz.switching.lock().await;
    let applied = app.authz.version.load(Ordering::SeqCst);
    let current = match app.store.authorizer_version().await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the authorizer state");
            return;
        }
    };
    if current == applied {
        return;
    }
    match app.store.authorizer_state().await {
        Ok(Some(s)) => {
            if let Err(e) = apply_state(app, &s).await {
                // Remember the version anyway: retrying every second would only repeat
                // the error; the old plugin keeps deciding.
                tracing::error!(error = %e, version = s.version, "could not switch to the stored authorizer; keeping the current one");
                app.authz.version.store(s.version, Ordering::SeqCst);
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the authorizer state"),
    }
}

/// The state `server reset-authorizer` writes: the default plugin, no shadow.
pub async fn reset_authorizer(store: &Store) -> AppResult<i64> {
    let state = AuthorizerState {
        version: 0,
        active_id: portcullis_plugin::DEFAULT_PLUGIN.into(),
        active_settings: "{}".into(),
        active_since: now_ms(),
        shadow_id: None,
        shadow_settings: None,
        shadow_since: None,
        changed_by: names::SYSTEM_ACCOUNT.into(),
    };
    let version = store.set_authorizer_state(&state).await?;
    Audit::by_host(
        AuditAction::PluginsActivate,
        portcullis_plugin::DEFAULT_PLUGIN,
    )
    .detail("host-side reset-authorizer")
    .try_append(store)
    .await?;
    Ok(version)
}

fn plugin_target(id: &str) -> Target {
    Target::new("plugin", id, None)
}

/// A plugin as listed: a stored one, or one built into the binary.
pub enum Listed {
    Stored(PluginRecord),
    Builtin {
        id: &'static str,
        digest: String,
        size: usize,
        world_version: &'static str,
    },
}

fn builtin_listed(id: &'static str, bytes: &[u8], world_version: &'static str) -> Listed {
    Listed::Builtin {
        id,
        digest: portcullis_plugin::digest(bytes),
        size: bytes.len(),
        world_version,
    }
}

/// The stored plugin id of a component: `p_` and the first 16 hex digits of its digest.
fn stored_id(digest: &str) -> String {
    format!("p_{}", &digest[..16])
}

/// Permission to upload, checked before the body is read: nobody without it can make the
/// server take in tens of megabytes. Only [`may_upload`] makes one.
pub struct UploadTicket {
    name: String,
    /// Read at most this many bytes of the body.
    pub max_bytes: usize,
}

/// Check the label and the caller's permission to upload.
pub async fn may_upload(
    app: &App,
    caller: &Caller,
    name: Option<String>,
) -> AppResult<UploadTicket> {
    let name = name.unwrap_or_else(|| "plugin".into());
    names::validate_label(&name, 128).map_err(|e| AppError::invalid("name", e))?;
    app.require(
        &caller.principal,
        actions::PLUGINS_UPLOAD,
        plugin_target("*"),
    )
    .await?;
    Ok(UploadTicket {
        name,
        max_bytes: app.config.authorizer.max_plugin_bytes as usize,
    })
}

/// Store a component (`true` when it is new; the same bytes again answer the stored
/// record).
pub async fn upload(
    app: &App,
    caller: &Caller,
    ticket: UploadTicket,
    body: &[u8],
) -> AppResult<(PluginRecord, bool)> {
    let name = ticket.name;
    if body.is_empty() {
        return Err(AppError::invalid(
            "body",
            "expected the bytes of a WebAssembly component",
        ));
    }
    let count = app.store.count_plugins().await?;
    let max = app.config.authorizer.max_stored_plugins;
    if count >= max as i64
        && app
            .store
            .get_plugin(&stored_id(&portcullis_plugin::digest(body)))
            .await?
            .is_none()
    {
        return Err(AppError::new(
            ErrorCode::PluginStoreFull,
            format!("the plugin store holds {count} plugins (authorizer.max_stored_plugins = {max}); raise the limit to upload more"),
        ));
    }
    // Off the async workers, one compile at a time, refused from its headers when it
    // would cost too much to compile (portcullis_plugin::CodeLimits).
    let compiled = app
        .runtime
        .compile_async(Arc::from(body))
        .await
        .map_err(|e| AppError::new(ErrorCode::InvalidPlugin, e.to_string()))?;
    let record = PluginRecord {
        id: stored_id(&compiled.digest),
        name,
        digest: compiled.digest.clone(),
        size: body.len() as i64,
        world_version: compiled.world_version().into(),
        created_at: now_ms(),
        created_by: caller.user.username.clone(),
    };
    let (stored, created) = app.store.put_plugin(&record, body).await?;
    if created {
        app.audit(
            Audit::success(
                &caller.user.username,
                AuditAction::PluginsUpload,
                &stored.id,
            )
            .detail(format!("digest {}", stored.digest)),
        )
        .await;
    }
    Ok((stored, created))
}

/// The built-in plugins (first page only) and a page of stored ones; the cursor is the
/// last stored id.
pub async fn list(
    app: &App,
    caller: &Caller,
    after: Option<&str>,
    limit: i64,
) -> AppResult<(Vec<Listed>, Option<String>)> {
    app.require(&caller.principal, actions::PLUGINS_LIST, plugin_target("*"))
        .await?;
    let stored = app.store.list_plugins(after, limit).await?;
    let next = (stored.len() as i64 == limit)
        .then(|| stored.last().map(|r| r.id.clone()))
        .flatten();
    let mut items: Vec<Listed> = if after.is_none() {
        portcullis_plugin::BUILTINS
            .iter()
            .map(|(id, bytes, world)| builtin_listed(id, bytes(), world))
            .collect()
    } else {
        Vec::new()
    };
    items.extend(stored.into_iter().map(Listed::Stored));
    Ok((items, next))
}

/// One plugin, and whether it is the active / the shadow authorizer.
pub async fn get(app: &App, caller: &Caller, id: &str) -> AppResult<(Listed, bool, bool)> {
    app.require(&caller.principal, actions::PLUGINS_READ, plugin_target(id))
        .await?;
    let listed = match portcullis_plugin::BUILTINS
        .iter()
        .find(|(b, _, _)| *b == id)
    {
        Some((b, bytes, world)) => builtin_listed(b, bytes(), world),
        None => Listed::Stored(
            app.store
                .get_plugin(id)
                .await?
                .ok_or_else(|| AppError::not_found(format!("plugin {id}")))?,
        ),
    };
    let active = app.authz.active().id == id;
    let shadow = app.authz.shadow().is_some_and(|s| s.id == id);
    Ok((listed, active, shadow))
}

/// How an activated plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// It decides.
    #[default]
    Enforce,
    /// It answers beside the active plugin; disagreements are counted and sampled.
    Shadow,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
        }
    }
}

/// Activate a plugin: `configure(settings)` must succeed, and the new plugin must still let
/// the caller `plugins.activate` (no locking yourself out); otherwise nothing changes.
/// Enforce swaps atomically; shadow runs the candidate beside the active plugin. The new
/// state is stored first, so every server sharing the database follows.
pub async fn activate(
    app: &App,
    caller: &Caller,
    id: &str,
    settings: Option<Value>,
    mode: Mode,
) -> AppResult<()> {
    let settings = settings.unwrap_or_else(|| serde_json::json!({}));
    if !settings.is_object() {
        return Err(AppError::invalid("settings", "must be a JSON object"));
    }
    app.require(
        &caller.principal,
        actions::PLUGINS_ACTIVATE,
        plugin_target(id),
    )
    .await?;
    if !portcullis_plugin::is_builtin(id) && app.store.get_plugin(id).await?.is_none() {
        return Err(AppError::not_found(format!("plugin {id}")));
    }
    let now = now_ms();
    let candidate = build_active(&app.runtime, &app.store, &app.config, id, &settings, now).await?;
    // Self-check: would the caller still be allowed to activate plugins?
    let probe = authz::Request {
        principal: caller.principal.clone(),
        action: actions::PLUGINS_ACTIVATE.into(),
        target: plugin_target(id),
        context: vec![(CONTEXT_ORIGIN.into(), Origin::Management.as_str().into())],
    };
    let verdict = candidate.plugin.decide(&probe).await;
    if !verdict.allowed {
        app.audit(
            Audit::failure(&caller.user.username, AuditAction::PluginsActivate, id)
                .detail("self-check: the plugin would lock the caller out"),
        )
        .await;
        let mut e = AppError::new(
            ErrorCode::SelfCheckFailed,
            format!("plugin {id} would not let {} plugins.activate: activating it would lock you out; nothing changed", caller.user.username),
        );
        e.reasons = verdict.reasons;
        return Err(e);
    }
    // From reading the stored state to running it, nothing else switches this server.
    let _switching = app.authz.switching.lock().await;
    let active = app.authz.active();
    let mut next = app
        .store
        .authorizer_state()
        .await?
        .unwrap_or(AuthorizerState {
            version: 0,
            active_id: active.id.clone(),
            active_settings: active.settings.to_string(),
            active_since: active.since,
            shadow_id: None,
            shadow_settings: None,
            shadow_since: None,
            changed_by: caller.user.username.clone(),
        });
    next.changed_by = caller.user.username.clone();
    match mode {
        Mode::Enforce => {
            next.active_id = id.to_string();
            next.active_settings = settings.to_string();
            next.active_since = now;
            if next.shadow_id.as_deref() == Some(id) {
                next.shadow_id = None;
                next.shadow_settings = None;
                next.shadow_since = None;
            }
        }
        Mode::Shadow => {
            next.shadow_id = Some(id.to_string());
            next.shadow_settings = Some(settings.to_string());
            next.shadow_since = Some(now);
        }
    }
    // Persist first: if the database refuses, nothing has changed anywhere.
    let version = app.store.set_authorizer_state(&next).await?;
    match mode {
        Mode::Enforce => {
            if next.shadow_id.is_none() {
                app.authz.set_shadow(None);
            }
            app.authz.set_active(candidate);
        }
        Mode::Shadow => app.authz.set_shadow(Some(candidate)),
    }
    app.authz.version.store(version, Ordering::SeqCst);
    app.audit(
        Audit::success(&caller.user.username, AuditAction::PluginsActivate, id)
            .detail(format!("mode {}", mode.as_str())),
    )
    .await;
    tracing::info!(plugin = %id, mode = mode.as_str(), version, by = %caller.user.username, "plugin activated");
    Ok(())
}

/// `GET /v1/authorizer`'s permission: reading the active authorizer's state.
pub async fn read_authorizer(app: &App, caller: &Caller) -> AppResult<()> {
    app.require(
        &caller.principal,
        actions::PLUGINS_READ,
        plugin_target("active"),
    )
    .await
}

/// Which decisions of the log to show.
#[derive(Debug, Default)]
pub struct DecisionFilter {
    /// An application policy's log instead of the management authorizer's.
    pub policy: Option<String>,
    pub username: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
}

/// A page of the in-memory decision log, oldest first, after the cursor `after`; the
/// cursor of the next page when the page is full.
pub async fn decisions(
    app: &App,
    caller: &Caller,
    filter: &DecisionFilter,
    after: u64,
    limit: usize,
) -> AppResult<(Vec<Logged>, Option<String>)> {
    app.require(
        &caller.principal,
        actions::DECISIONS_READ,
        Target::new("decision", "*", None),
    )
    .await?;
    let keep = |e: &crate::authorizer::Entry| {
        filter.username.as_deref().is_none_or(|u| e.username == u)
            && filter.action.as_deref().is_none_or(|a| e.action == a)
            && filter.outcome.as_deref().is_none_or(|o| e.outcome == o)
    };
    let items: Vec<Logged> = match filter.policy.as_deref() {
        None => app.authz.logged(after, limit, keep),
        Some(name) => {
            names::validate_account_name(name)
                .map_err(|_| AppError::invalid("policy", "not a policy name"))?;
            app.policies
                .get(name)
                .ok_or_else(|| AppError::not_found(format!("policy {name}")))?
                .authz
                .logged(after, limit, keep)
        }
    };
    let next = (items.len() == limit)
        .then(|| items.last().map(|e| e.seq.to_string()))
        .flatten();
    Ok((items, next))
}
