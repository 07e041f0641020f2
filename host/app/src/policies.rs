//! Application policies (SPEC §11): named plugins, each activated on its own, that answer
//! outside applications' questions (`/v1/authorize` with `policy`, AuthZEN at
//! `/policies/{name}`). The management authorizer never asks them, so one application's
//! rules can neither lock administrators out nor change another application's answers.
//!
//! Each policy is an [`Authz<Query>`]: its own active and shadow plugin, decision cache,
//! decision log, counters and `portcullis_decisions_total{policy=…}` series. The stored
//! rows (`policies` table) are the truth: a write here is stored first and then run, and
//! the state poller makes every server run what the store says (within a second; at once
//! on PostgreSQL, where a trigger notifies the others).

use crate::authorizer::{Active, Authz};
use crate::caller::Caller;
use crate::error::{AppError, AppResult};
use crate::plugins::{build_active, build_shadow, build_stored_active, LoadFailure, Mode};
use crate::{App, Audit};
use portcullis_core::authz::{actions, Query, Target};
use portcullis_core::{names, AuditAction, ErrorCode};
use portcullis_plugin::LoadError;
use portcullis_store::{now_ms, AuthorizerState};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};

/// One application policy as this server runs it.
pub struct Policy {
    pub name: String,
    pub authz: Arc<Authz<Query>>,
    /// The stored row it runs (version, plugin ids, settings, since, changed by).
    pub state: Mutex<AuthorizerState>,
}

impl Policy {
    pub fn state(&self) -> AuthorizerState {
        self.state.lock().expect("policy state lock").clone()
    }
}

/// The policies this server runs, by name.
#[derive(Default)]
pub struct Policies {
    map: RwLock<BTreeMap<String, Arc<Policy>>>,
    /// Held by whoever changes what runs (a write here, the poller applying the store's).
    switching: tokio::sync::Mutex<()>,
    /// Stored rows that did not load here, so they are not retried (and logged) every
    /// tick until they change.
    failed: Mutex<BTreeMap<String, AuthorizerState>>,
}

impl Policies {
    /// The policy named `name`, if this server runs it.
    pub fn get(&self, name: &str) -> Option<Arc<Policy>> {
        self.map.read().expect("policies lock").get(name).cloned()
    }

    /// Every policy, by name.
    pub fn all(&self) -> Vec<Arc<Policy>> {
        self.map
            .read()
            .expect("policies lock")
            .values()
            .cloned()
            .collect()
    }

    fn insert(&self, policy: Arc<Policy>) {
        self.map
            .write()
            .expect("policies lock")
            .insert(policy.name.clone(), policy);
    }

    fn remove(&self, name: &str) {
        self.map.write().expect("policies lock").remove(name);
    }
}

fn policy_target(name: &str) -> Target {
    Target::new("policy", name, None)
}

/// A policy name: like an account name (`[a-z0-9][a-z0-9._-]{0,62}`).
pub fn check_name(name: &str) -> AppResult<()> {
    names::validate_account_name(name).map_err(|e| AppError::invalid("name", e))
}

/// What `PUT /v1/policies/{name}` asks for.
#[derive(Debug, Clone)]
pub struct PutPolicy {
    /// `builtin:NAME` or a stored plugin id.
    pub plugin: String,
    pub settings: Option<Value>,
    pub mode: Mode,
}

/// Every policy (`policies.list`).
pub async fn list(app: &App, caller: &Caller) -> AppResult<Vec<Arc<Policy>>> {
    app.require(
        &caller.principal,
        actions::POLICIES_LIST,
        policy_target("*"),
    )
    .await?;
    Ok(app.policies.all())
}

/// One policy (`policies.read`).
pub async fn get(app: &App, caller: &Caller, name: &str) -> AppResult<Arc<Policy>> {
    check_name(name)?;
    app.require(
        &caller.principal,
        actions::POLICIES_READ,
        policy_target(name),
    )
    .await?;
    app.policies
        .get(name)
        .ok_or_else(|| AppError::not_found(format!("policy {name}")))
}

/// A refused `configure` is the settings' fault: 422 naming `settings`, with the plugin's
/// text. Anything else keeps its code.
fn load_error(e: LoadFailure) -> AppError {
    match e {
        LoadFailure::Plugin {
            error: LoadError::Configure(text),
            id,
        } => AppError::invalid("settings", format!("the plugin {id} refused them: {text}")),
        other => other.into(),
    }
}

/// Create or change a policy. Enforce makes the plugin decide (an atomic swap, as for the
/// management authorizer); shadow runs it beside the policy's active plugin. Stored first:
/// if anything fails, nothing changed anywhere, and the previous plugin keeps deciding.
pub async fn put(
    app: &App,
    caller: &Caller,
    name: &str,
    req: PutPolicy,
) -> AppResult<(Arc<Policy>, bool)> {
    check_name(name)?;
    let settings = req.settings.unwrap_or_else(|| serde_json::json!({}));
    if !settings.is_object() {
        return Err(AppError::invalid("settings", "must be a JSON object"));
    }
    names::validate_label(&req.plugin, 128).map_err(|e| AppError::invalid("plugin", e))?;
    app.require(
        &caller.principal,
        actions::POLICIES_WRITE,
        policy_target(name),
    )
    .await?;
    if !portcullis_plugin::is_builtin(&req.plugin)
        && (req.plugin.ends_with(".wasm") || app.store.get_plugin(&req.plugin).await?.is_none())
    {
        return Err(AppError::not_found(format!("plugin {}", req.plugin)));
    }
    let _switching = app.policies.switching.lock().await;
    let stored = app.store.get_policy(name).await?;
    let now = now_ms();
    let mut next = match (&stored, req.mode) {
        (Some(s), _) => s.clone(),
        (None, Mode::Shadow) => {
            return Err(AppError::invalid_state(format!(
                "policy {name} does not exist: put it with mode enforce first, then shadow candidates beside it"
            )))
        }
        (None, Mode::Enforce) => {
            let count = app.store.count_policies().await?;
            let max = app.config.authorizer.max_policies;
            if count as u64 >= max {
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    format!("there are {count} policies (authorizer.max_policies = {max}); delete one or raise the limit"),
                ));
            }
            AuthorizerState {
                version: 0,
                active_id: req.plugin.clone(),
                active_settings: settings.to_string(),
                active_since: now,
                shadow_id: None,
                shadow_settings: None,
                shadow_since: None,
                changed_by: caller.user.username.clone(),
            }
        }
    };
    let candidate = build_active(
        &app.runtime,
        &app.store,
        &app.config,
        &req.plugin,
        &settings,
        now,
    )
    .await
    .map_err(load_error)?;
    next.changed_by = caller.user.username.clone();
    match req.mode {
        Mode::Enforce => {
            next.active_id = req.plugin.clone();
            next.active_settings = settings.to_string();
            next.active_since = now;
            if next.shadow_id.as_deref() == Some(req.plugin.as_str()) {
                next.shadow_id = None;
                next.shadow_settings = None;
                next.shadow_since = None;
            }
        }
        Mode::Shadow => {
            next.shadow_id = Some(req.plugin.clone());
            next.shadow_settings = Some(settings.to_string());
            next.shadow_since = Some(now);
        }
    }
    next.version = app.store.put_policy(name, &next, now).await?;
    let created = stored.is_none();
    let policy = match app.policies.get(name) {
        Some(p) => {
            match req.mode {
                Mode::Enforce => {
                    if next.shadow_id.is_none() {
                        p.authz.set_shadow(None);
                    }
                    p.authz.set_active(candidate);
                }
                Mode::Shadow => p.authz.set_shadow(Some(candidate)),
            }
            *p.state.lock().expect("policy state lock") = next.clone();
            p
        }
        None => {
            let p = new_policy(app, name, candidate, next.clone());
            app.policies.insert(p.clone());
            p
        }
    };
    set_version(&policy, next.version);
    app.audit(
        Audit::success(&caller.user.username, AuditAction::PoliciesWrite, name).detail(format!(
            "plugin {} mode {}",
            req.plugin,
            req.mode.as_str()
        )),
    )
    .await;
    tracing::info!(policy = %name, plugin = %req.plugin, mode = req.mode.as_str(), version = next.version, by = %caller.user.username, "policy written");
    Ok((policy, created))
}

fn set_version(policy: &Policy, version: i64) {
    policy.authz.version.store(version, Ordering::SeqCst);
}

fn new_policy(app: &App, name: &str, active: Active, state: AuthorizerState) -> Arc<Policy> {
    let c = &app.config.authorizer;
    let mut authz = Authz::new(
        active,
        c.decision_log_size as usize,
        c.cache_entries as usize,
        std::time::Duration::from_millis(c.max_cache_ttl_ms),
    );
    authz.policy = Some(Arc::from(name));
    let authz = Arc::new(authz);
    authz.version.store(state.version, Ordering::SeqCst);
    Arc::new(Policy {
        name: name.to_string(),
        authz,
        state: Mutex::new(state),
    })
}

/// Delete a policy: its endpoints answer 404 from now on (on every server within a second).
pub async fn delete(app: &App, caller: &Caller, name: &str) -> AppResult<()> {
    check_name(name)?;
    app.require(
        &caller.principal,
        actions::POLICIES_DELETE,
        policy_target(name),
    )
    .await?;
    let _switching = app.policies.switching.lock().await;
    if !app.store.delete_policy(name).await? {
        return Err(AppError::not_found(format!("policy {name}")));
    }
    app.policies.remove(name);
    app.audit(Audit::success(
        &caller.user.username,
        AuditAction::PoliciesDelete,
        name,
    ))
    .await;
    tracing::info!(policy = %name, by = %caller.user.username, "policy deleted");
    Ok(())
}

/// Make this server run the policies the store holds: load new and changed ones, drop
/// deleted ones. A policy whose plugin does not load here is logged and left out (its
/// endpoints answer 404 here) until its row changes again.
pub async fn sync(app: &App) -> Result<(), portcullis_store::StoreError> {
    // Read under the lock a write holds: a PUT or DELETE on this server that finishes
    // while we read would otherwise be undone here until the next tick.
    let _switching = app.policies.switching.lock().await;
    let stored = app.store.list_policies().await?;
    let names: std::collections::BTreeSet<&str> = stored.iter().map(|(n, _)| n.as_str()).collect();
    app.policies
        .failed
        .lock()
        .expect("failed lock")
        .retain(|n, _| names.contains(n.as_str()));
    for p in app.policies.all() {
        if !names.contains(p.name.as_str()) {
            app.policies.remove(&p.name);
            tracing::info!(policy = %p.name, "policy deleted elsewhere; dropped");
        }
    }
    for (name, s) in &stored {
        let current = app.policies.get(name);
        if current.as_ref().is_some_and(|p| p.state() == *s)
            || app.policies.failed.lock().expect("failed lock").get(name) == Some(s)
        {
            continue;
        }
        let active = match build_stored_active(&app.runtime, &app.store, &app.config, s).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(policy = %name, error = %e, "the stored policy does not load here; the previous plugin (if any) keeps deciding");
                app.policies
                    .failed
                    .lock()
                    .expect("failed lock")
                    .insert(name.clone(), s.clone());
                continue;
            }
        };
        let shadow = build_shadow(&app.runtime, &app.store, &app.config, s).await;
        match current {
            Some(p) => {
                p.authz.set_active(active);
                p.authz.set_shadow(shadow);
                *p.state.lock().expect("policy state lock") = s.clone();
                set_version(&p, s.version);
            }
            None => {
                let p = new_policy(app, name, active, s.clone());
                p.authz.set_shadow(shadow);
                app.policies.insert(p);
            }
        }
        tracing::info!(policy = %name, plugin = %s.active_id, version = s.version, "policy loaded");
    }
    Ok(())
}
