//! The plugin store and the active authorizer (§6): upload, list, describe, activate
//! (enforce or shadow, with a self-check), `GET /v1/authorizer`, `GET /v1/decisions`.

use super::openapi;
use super::{timestamp, Json, List, Page, Path, Query, RawBody};
use crate::auth::Caller;
use crate::authorizer::Logged;
use crate::error::{ApiError, ApiResult};
use crate::state::SharedState;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_core::authz::{self, actions, Target, CONTEXT_ORIGIN};
use portcullis_core::names;
use portcullis_plugin::WORLD_VERSION;
use portcullis_store::{now_ms, AuthorizerState, PluginRecord};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

/// The plugins built into the binary, listed beside the stored ones.
const BUILTINS: &[&str] = &["builtin:native"];

fn record_view(r: &PluginRecord) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "digest": r.digest,
        "size": r.size,
        "world_version": r.world_version,
        "created_at": timestamp(r.created_at),
        "created_by": r.created_by,
    })
}

fn builtin_view(id: &str) -> Value {
    let name = id.trim_start_matches("builtin:");
    let bytes = portcullis_plugin::builtin(name).unwrap_or_default();
    json!({
        "id": id,
        "name": id,
        "digest": portcullis_plugin::digest(bytes),
        "size": bytes.len(),
        "world_version": WORLD_VERSION,
        "created_at": null,
        "created_by": "builtin",
    })
}

fn plugin_target(id: &str) -> Target {
    Target::new("plugin", id, None)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// A label for the stored plugin (default: the component's name).
    #[param(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 128
    )]
    name: Option<String>,
}

/// `POST /v1/plugins?name=` with the component's bytes as the body.
#[utoipa::path(post, path = "/v1/plugins", tag = "plugins", params(UploadQuery), request_body(content = openapi::Wasm, content_type = "application/wasm", description = "A WebAssembly component implementing the authorizer world"), responses((status = 201, description = "Stored", body = openapi::PluginRecord), (status = 200, description = "The same component was stored before", body = openapi::PluginRecord), (status = 409, description = "The plugin store is full (`authorizer.max_stored_plugins`)", body = openapi::ErrorBody), (status = 413, description = "Larger than `authorizer.max_plugin_bytes`", body = openapi::ErrorBody)))]
pub async fn upload(
    State(state): State<SharedState>,
    caller: Caller,
    Query(q): Query<UploadQuery>,
    body: RawBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let name = q.name.unwrap_or_else(|| "plugin".into());
    names::validate_label(&name, 128).map_err(|e| ApiError::invalid("name", e))?;
    state
        .require(
            &caller.principal,
            actions::PLUGINS_UPLOAD,
            plugin_target("*"),
        )
        .await?;
    // Read only once the caller may upload.
    let body = body
        .read(state.config.authorizer.max_plugin_bytes as usize)
        .await?;
    if body.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "expected the bytes of a WebAssembly component",
        ));
    }
    let count = state.store.count_plugins().await?;
    let max = state.config.authorizer.max_stored_plugins;
    if count >= max as i64
        && state
            .store
            .get_plugin(&format!("p_{}", &portcullis_plugin::digest(&body)[..16]))
            .await?
            .is_none()
    {
        return Err(ApiError::conflict(
            "plugin_store_full",
            format!("the plugin store holds {count} plugins (authorizer.max_stored_plugins = {max}); raise the limit to upload more"),
        ));
    }
    // Off the async workers, one compile at a time, refused from its headers when it
    // would cost too much to compile (portcullis_plugin::CodeLimits).
    let compiled = state
        .runtime
        .compile_async(std::sync::Arc::from(&body[..]))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_plugin",
                e.to_string(),
            )
        })?;
    let record = PluginRecord {
        id: format!("p_{}", &compiled.digest[..16]),
        name,
        digest: compiled.digest.clone(),
        size: body.len() as i64,
        world_version: WORLD_VERSION.into(),
        created_at: now_ms(),
        created_by: caller.user.username.clone(),
    };
    let (stored, created) = state.store.put_plugin(&record, &body).await?;
    if created {
        state
            .audit(
                &caller.user.username,
                "plugins.upload",
                &stored.id,
                "success",
                &format!("digest {}", stored.digest),
            )
            .await;
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(record_view(&stored))))
}

#[utoipa::path(get, path = "/v1/plugins", tag = "plugins", params(Page), responses((status = 200, description = "Built-in and stored plugins", body = openapi::PluginList)))]
pub async fn list(
    State(state): State<SharedState>,
    caller: Caller,
    Query(page): Query<Page>,
) -> ApiResult<Json<List<Value>>> {
    state
        .require(&caller.principal, actions::PLUGINS_LIST, plugin_target("*"))
        .await?;
    let limit = page.limit()?;
    let stored = state
        .store
        .list_plugins(page.after.as_deref(), limit)
        .await?;
    let list = List::new(stored, limit, |r| r.id.clone());
    let mut items: Vec<Value> = if page.after.is_none() {
        BUILTINS.iter().map(|b| builtin_view(b)).collect()
    } else {
        Vec::new()
    };
    items.extend(list.items.iter().map(record_view));
    Ok(Json(List {
        items,
        next: list.next,
    }))
}

#[utoipa::path(get, path = "/v1/plugins/{id}", tag = "plugins", params(("id" = String, Path, description = "`builtin:NAME` or a stored plugin id")), responses((status = 200, description = "The plugin", body = openapi::PluginDescribed)))]
pub async fn get(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    state
        .require(&caller.principal, actions::PLUGINS_READ, plugin_target(&id))
        .await?;
    let mut view = if BUILTINS.contains(&id.as_str()) {
        builtin_view(&id)
    } else {
        record_view(
            &state
                .store
                .get_plugin(&id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("plugin {id}")))?,
        )
    };
    view["active"] = json!(state.authz.active().id == id);
    view["shadow"] = json!(state.authz.shadow().is_some_and(|s| s.id == id));
    Ok(Json(view))
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Shadow,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Activate {
    /// A JSON object handed to the plugin's `configure` (default `{}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    settings: Option<Value>,
    /// `enforce` (default) or `shadow`.
    #[serde(default)]
    mode: Mode,
}

/// Activate a plugin: `configure(settings)` must succeed, and the new plugin must still let
/// the caller `plugins.activate` (no locking yourself out); otherwise 409 and nothing
/// changes. Enforce swaps atomically; shadow runs the candidate beside the active plugin.
#[utoipa::path(post, path = "/v1/plugins/{id}/activate", tag = "plugins", params(("id" = String, Path, description = "`builtin:NAME` or a stored plugin id")), request_body = Activate, responses((status = 200, description = "Active (or shadowing); the authorizer now", body = openapi::Authorizer), (status = 409, description = "`configure` or the self-check refused: nothing changed", body = openapi::ErrorBody)))]
pub async fn activate(
    State(state): State<SharedState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Activate>,
) -> ApiResult<Json<Value>> {
    let settings = body.settings.unwrap_or_else(|| json!({}));
    if !settings.is_object() {
        return Err(ApiError::invalid("settings", "must be a JSON object"));
    }
    state
        .require(
            &caller.principal,
            actions::PLUGINS_ACTIVATE,
            plugin_target(&id),
        )
        .await?;
    if !BUILTINS.contains(&id.as_str()) && state.store.get_plugin(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("plugin {id}")));
    }
    let now = now_ms();
    let candidate = match crate::build_active(
        &state.runtime,
        &state.store,
        &state.config,
        &id,
        &settings,
        now,
    )
    .await
    {
        Ok(c) => c,
        Err(e) => {
            let text = format!("{e:#}");
            let code = if e
                .chain()
                .any(|c| c.to_string().contains("configure failed"))
            {
                "plugin_configure_failed"
            } else {
                "plugin_load_failed"
            };
            return Err(ApiError::conflict(code, text));
        }
    };
    // Self-check: would the caller still be allowed to activate plugins?
    let probe = authz::Request {
        principal: caller.principal.clone(),
        action: actions::PLUGINS_ACTIVATE.into(),
        target: plugin_target(&id),
        context: vec![(CONTEXT_ORIGIN.into(), "management".into())],
    };
    let verdict = candidate.plugin.decide(&probe).await;
    if !verdict.allowed {
        state
            .audit(
                &caller.user.username,
                "plugins.activate",
                &id,
                "failure",
                "self-check: the plugin would lock the caller out",
            )
            .await;
        let mut e = ApiError::conflict(
            "self_check_failed",
            format!("plugin {id} would not let {} plugins.activate: activating it would lock you out; nothing changed", caller.user.username),
        );
        e.reasons = verdict.reasons;
        return Err(e);
    }
    let active = state.authz.active();
    let mut next = state
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
    match body.mode {
        Mode::Enforce => {
            next.active_id = id.clone();
            next.active_settings = settings.to_string();
            next.active_since = now;
            if next.shadow_id.as_deref() == Some(id.as_str()) {
                next.shadow_id = None;
                next.shadow_settings = None;
                next.shadow_since = None;
            }
        }
        Mode::Shadow => {
            next.shadow_id = Some(id.clone());
            next.shadow_settings = Some(settings.to_string());
            next.shadow_since = Some(now);
        }
    }
    // Persist first: if the database refuses, nothing has changed anywhere.
    let version = state.store.set_authorizer_state(&next).await?;
    match body.mode {
        Mode::Enforce => {
            if next.shadow_id.is_none() {
                state.authz.set_shadow(None);
            }
            state.authz.set_active(candidate);
        }
        Mode::Shadow => state.authz.set_shadow(Some(candidate)),
    }
    state.authz.version.store(version, Ordering::SeqCst);
    let mode = if body.mode == Mode::Enforce {
        "enforce"
    } else {
        "shadow"
    };
    state
        .audit(
            &caller.user.username,
            "plugins.activate",
            &id,
            "success",
            &format!("mode {mode}"),
        )
        .await;
    tracing::info!(plugin = %id, mode, version, by = %caller.user.username, "plugin activated");
    Ok(Json(authorizer_view(&state)))
}

fn authorizer_view(state: &SharedState) -> Value {
    let c = &state.authz.counts;
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    json!({
        "active": state.authz.active().view(),
        "shadow": state.authz.shadow().map(|s| s.view()),
        "version": state.authz.version.load(Ordering::SeqCst),
        "counts": {
            "allow": n(&c.allow),
            "deny": n(&c.deny),
            "timeout": n(&c.timeout),
            "trap": n(&c.trap),
            "memory_limit": n(&c.memory_limit),
            "malformed": n(&c.malformed),
            "unavailable": n(&c.unavailable),
            "cache_hits": n(&c.cache_hits),
        },
        "shadow_agreements": n(&c.shadow_agreements),
        "shadow_disagreements": n(&c.shadow_disagreements),
        "disagreement_samples": state.authz.samples(),
    })
}

/// `GET /v1/authorizer`: the active plugin, the shadow plugin, counts, disagreements.
#[utoipa::path(get, path = "/v1/authorizer", tag = "plugins", responses((status = 200, description = "The active and shadow plugins with their counts", body = openapi::Authorizer)))]
pub async fn authorizer(
    State(state): State<SharedState>,
    caller: Caller,
) -> ApiResult<Json<Value>> {
    state
        .require(
            &caller.principal,
            actions::PLUGINS_READ,
            plugin_target("active"),
        )
        .await?;
    Ok(Json(authorizer_view(&state)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DecisionQuery {
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next` cursor of the previous page.
    #[param(minimum = 0)]
    after: Option<i64>,
    username: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
}

/// `GET /v1/decisions`: the in-memory decision log, oldest first, `?after=` a cursor.
#[utoipa::path(get, path = "/v1/decisions", tag = "plugins", params(DecisionQuery), responses((status = 200, description = "The decision log, oldest first", body = openapi::DecisionList)))]
pub async fn decisions(
    State(state): State<SharedState>,
    caller: Caller,
    Query(q): Query<DecisionQuery>,
) -> ApiResult<Json<Value>> {
    state
        .require(
            &caller.principal,
            actions::DECISIONS_READ,
            Target::new("decision", "*", None),
        )
        .await?;
    let limit = Page {
        limit: q.limit,
        after: None,
    }
    .limit()? as usize;
    let after = match q.after {
        Some(n) if n < 0 => return Err(ApiError::invalid("after", "must not be negative")),
        n => n.unwrap_or(0) as u64,
    };
    let items: Vec<Logged> = state.authz.logged(after, limit, |e| {
        q.username.as_deref().is_none_or(|u| e.username == u)
            && q.action.as_deref().is_none_or(|a| e.action == a)
            && q.outcome.as_deref().is_none_or(|o| e.outcome == o)
    });
    let next = (items.len() == limit)
        .then(|| items.last().map(|e| e.seq.to_string()))
        .flatten();
    Ok(Json(json!({ "items": items, "next": next })))
}
