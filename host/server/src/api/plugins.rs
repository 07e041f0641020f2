//! The plugin store and the active authorizer (§6): what `/v1/plugins…`,
//! `GET /v1/authorizer` and `GET /v1/decisions` read and answer.

use portcullis_app::authorizer::{Active, Ask, Authz, Counts, Disagreement, Logged};
use portcullis_app::plugins::Listed;
use portcullis_app::timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use utoipa::ToSchema;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// A label for the stored plugin (default: the component's name).
    #[param(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 128
    )]
    pub name: Option<String>,
}

/// A WebAssembly component (binary).
// Schema only: the handler reads the body as bytes (`routes::RawBody`).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Wasm(pub Vec<u8>);

/// A plugin as listed: a stored one, or one built into the binary.
#[derive(Debug, ToSchema, Serialize)]
pub struct PluginRecord {
    /// `builtin:NAME` or a stored plugin's id.
    pub id: String,
    pub name: String,
    /// SHA-256 of the component.
    pub digest: String,
    pub size: i64,
    pub world_version: String,
    pub created_at: Option<String>,
    pub created_by: String,
}

impl From<&portcullis_store::PluginRecord> for PluginRecord {
    fn from(r: &portcullis_store::PluginRecord) -> Self {
        PluginRecord {
            id: r.id.clone(),
            name: r.name.clone(),
            digest: r.digest.clone(),
            size: r.size,
            world_version: r.world_version.clone(),
            created_at: Some(timestamp(r.created_at)),
            created_by: r.created_by.clone(),
        }
    }
}

impl From<&Listed> for PluginRecord {
    fn from(listed: &Listed) -> Self {
        match listed {
            Listed::Stored(r) => PluginRecord::from(r),
            Listed::Builtin {
                id,
                digest,
                size,
                world_version,
            } => PluginRecord {
                id: id.to_string(),
                name: id.to_string(),
                digest: digest.clone(),
                size: *size as i64,
                world_version: world_version.to_string(),
                created_at: None,
                created_by: "builtin".into(),
            },
        }
    }
}

/// `GET /v1/plugins/{id}`: the plugin, and whether it is the active or the shadow one.
#[derive(Debug, ToSchema, Serialize)]
pub struct PluginDescribed {
    #[schema(inline)]
    #[serde(flatten)]
    pub record: PluginRecord,
    pub active: bool,
    pub shadow: bool,
}

list!(PluginList of PluginRecord);

// How an activated plugin runs (`portcullis_app::plugins::Mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Shadow,
}

impl From<Mode> for portcullis_app::plugins::Mode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Enforce => portcullis_app::plugins::Mode::Enforce,
            Mode::Shadow => portcullis_app::plugins::Mode::Shadow,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Activate {
    /// A JSON object handed to the plugin's `configure` (default `{}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub settings: Option<Value>,
    /// `enforce` (default) or `shadow`.
    #[serde(default)]
    pub mode: Mode,
}

/// A loaded plugin and what it was activated with.
#[derive(Debug, ToSchema, Serialize)]
pub struct LoadedPlugin {
    pub id: String,
    pub name: String,
    pub digest: String,
    /// The JSON handed to `configure`.
    pub settings: Value,
    pub since: String,
}

impl From<&Active> for LoadedPlugin {
    fn from(a: &Active) -> Self {
        LoadedPlugin {
            id: a.id.clone(),
            name: a.name.clone(),
            digest: a.plugin.digest().to_string(),
            settings: a.settings.clone(),
            since: timestamp(a.since),
        }
    }
}

#[derive(Debug, ToSchema, Serialize)]
pub struct DecisionCounts {
    pub allow: u64,
    pub deny: u64,
    pub timeout: u64,
    pub trap: u64,
    pub memory_limit: u64,
    pub malformed: u64,
    pub unavailable: u64,
    pub cache_hits: u64,
}

fn load(n: &AtomicU64) -> u64 {
    n.load(Ordering::Relaxed)
}

impl From<&Counts> for DecisionCounts {
    fn from(c: &Counts) -> Self {
        DecisionCounts {
            allow: load(&c.allow),
            deny: load(&c.deny),
            timeout: load(&c.timeout),
            trap: load(&c.trap),
            memory_limit: load(&c.memory_limit),
            malformed: load(&c.malformed),
            unavailable: load(&c.unavailable),
            cache_hits: load(&c.cache_hits),
        }
    }
}

/// `GET /v1/authorizer` (and the answer of an activation).
#[derive(Debug, ToSchema, Serialize)]
pub struct Authorizer {
    pub active: LoadedPlugin,
    pub shadow: Option<LoadedPlugin>,
    /// Bumped by every activation; servers sharing a database converge on it.
    pub version: i64,
    pub counts: DecisionCounts,
    pub shadow_agreements: u64,
    pub shadow_disagreements: u64,
    pub disagreement_samples: Vec<Disagreement>,
}

impl<Q: Ask> From<&Authz<Q>> for Authorizer {
    fn from(authz: &Authz<Q>) -> Self {
        Authorizer {
            active: LoadedPlugin::from(&*authz.active()),
            shadow: authz.shadow().map(|s| LoadedPlugin::from(&*s)),
            version: authz.version.load(Ordering::SeqCst),
            counts: DecisionCounts::from(&authz.counts),
            shadow_agreements: load(&authz.counts.shadow_agreements),
            shadow_disagreements: load(&authz.counts.shadow_disagreements),
            disagreement_samples: authz.samples(),
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DecisionQuery {
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Read this application policy's log (default: the management authorizer's).
    #[param(pattern = r"^[a-z0-9][a-z0-9._-]{0,62}$")]
    pub policy: Option<String>,
    pub username: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
}

list!(DecisionList of Logged);
