//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the handlers'
//! `#[utoipa::path]` annotations, the request types' `ToSchema`/`IntoParams` derives and the
//! response shapes below. Two things keep it true: the route-coverage test
//! (`tests/api/openapi.rs`: every routed method and path is documented and vice versa) and
//! schemathesis (`scripts/schemathesis.sh`, in CI), which checks every response against it.
//!
//! Conventions the [`Conventions`] modifier applies to every operation, so the annotations
//! stay short and the error statuses cannot be forgotten:
//! - every operation needs `Authorization: Bearer <key>` unless its annotation says
//!   `security(())` (then it is public), and a secured one may answer 401 and 403;
//! - an operation with a path parameter may answer 404; one with any parameter or a body
//!   may answer 422 naming the field; one with a JSON body may answer 413 and 415.

use super::{accounts, admin, audit, csv, decide, health, plugins, session, tokens, users};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

/// Account and user names: `[a-z0-9][a-z0-9._-]{0,62}`.
pub const NAME_PATTERN: &str = r"^[a-z0-9][a-z0-9._-]{0,62}$";
/// Usernames: the account-name charset plus `@`.
pub const USERNAME_PATTERN: &str = r"^[a-z0-9][a-z0-9._@-]{0,62}$";
/// `local@domain` in printable ASCII, one `@`, the domain not starting or ending with `.`.
pub const EMAIL_PATTERN: &str =
    r"^[!-+\--:<-?A-~]+@([!-+\-/-:<-?A-~]|[!-+\-/-:<-?A-~][!-+\--:<-?A-~]*[!-+\-/-:<-?A-~])$";
/// Free text without control characters (roles, key names, attribute keys).
pub const LABEL_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$";
/// Attribute values: like labels, but may be empty.
pub const VALUE_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]*$";

fn label(max: usize) -> utoipa::openapi::ObjectBuilder {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .pattern(Some(LABEL_PATTERN))
        .max_length(Some(max))
}

/// `roles`: at most 100 labels of at most 256 characters.
pub fn roles() -> utoipa::openapi::Array {
    utoipa::openapi::ArrayBuilder::new()
        .items(label(256))
        .max_items(Some(100))
        .build()
}

/// [`roles`] or `null` (PATCH: unchanged).
pub fn roles_or_null() -> utoipa::openapi::Array {
    let mut a = roles();
    a.schema_type = nullable(utoipa::openapi::Type::Array);
    a
}

/// [`attributes`] or `null` (PATCH: unchanged).
pub fn attributes_or_null() -> utoipa::openapi::Object {
    let mut o = attributes();
    o.schema_type = nullable(utoipa::openapi::Type::Object);
    o
}

fn nullable(t: utoipa::openapi::Type) -> utoipa::openapi::schema::SchemaType {
    utoipa::openapi::schema::SchemaType::from_iter([t, utoipa::openapi::Type::Null])
}

/// `attributes`: at most 100 entries; keys are labels (≤ 128), values at most 1024
/// characters without control characters.
pub fn attributes() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .property_names(Some(label(128)))
        .additional_properties(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::String)
                .pattern(Some(VALUE_PATTERN))
                .max_length(Some(1024)),
        ))
        .max_properties(Some(100))
        .build()
}

/// Key lifetimes in text (see `portcullis_app::keys::parse_lifetime`).
pub const LIFETIME_PATTERN: &str =
    r"^([1-9][0-9]{0,7}s|[1-9][0-9]{0,5}m|[1-9][0-9]{0,3}h|[1-9][0-9]{0,2}d|[1-9][0-9]?w)$";

/// `expires_in`: seconds (1 to ten years) or a duration like `"30d"`; `null` or absent:
/// never expires.
pub fn expires_in() -> utoipa::openapi::Schema {
    use utoipa::openapi::{ObjectBuilder, Type};
    let one_of = utoipa::openapi::schema::OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(10 * 366 * 24 * 3600)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(LIFETIME_PATTERN)),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build();
    utoipa::openapi::Schema::OneOf(one_of)
}

/// AuthZEN `properties` and `context`: at most 64 entries with label keys (≤ 128); values
/// of any JSON type (non-strings reach the plugin as their JSON text, at most 4096
/// characters).
pub fn zen_properties() -> utoipa::openapi::Object {
    let mut o = utoipa::openapi::ObjectBuilder::new()
        .property_names(Some(label(128)))
        .max_properties(Some(64))
        .build();
    o.schema_type = nullable(utoipa::openapi::Type::Object);
    o
}

/// `/v1/authorize` resource attributes and context: at most 64 entries; keys are labels
/// (≤ 128), values any text up to 4096 characters.
pub fn pairs() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .property_names(Some(label(128)))
        .additional_properties(Some(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::Type::String)
                .max_length(Some(4096)),
        ))
        .max_properties(Some(64))
        .build()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis",
        description = "Identity (accounts, users, passwords, API keys, access tokens) with every \
                       authorization decision made by a WebAssembly plugin. Errors are \
                       `{\"error\":{\"code\",\"message\"}}` with a stable snake_case code; the \
                       Terraform-style `/admin` endpoints keep their own shape.",
    ),
    paths(
        health::health,
        health::ready,
        health::metrics,
        openapi_json,
        admin::retrieve_iact,
        admin::initial_admin_user,
        session::login,
        session::login_oidc,
        session::logout,
        session::whoami,
        accounts::list,
        accounts::create,
        accounts::get,
        accounts::delete,
        accounts::set_state,
        users::list_in_account,
        users::create_in_account,
        users::list_all,
        tokens::create_by_email,
        tokens::request,
        tokens::grant,
        tokens::revoke,
        csv::export,
        csv::import,
        users::describe,
        users::patch,
        users::delete,
        users::set_password,
        users::link_sso,
        users::unlink_sso,
        users::list_keys,
        users::create_key,
        users::revoke_key,
        audit::list,
        decide::authorize,
        decide::evaluation,
        decide::evaluations,
        plugins::list,
        plugins::upload,
        plugins::get,
        plugins::activate,
        plugins::authorizer,
        plugins::decisions,
    ),
    components(schemas(ErrorBody, PtfeError)),
    modifiers(&Conventions),
    tags(
        (name = "operations", description = "Health, readiness, metrics and this document."),
        (name = "bootstrap", description = "Initial Admin Creation Token (Terraform Enterprise shapes)."),
        (name = "session", description = "Login, logout, whoami."),
        (name = "accounts", description = "Accounts and their states."),
        (name = "users", description = "Users, passwords, personal API keys, CSV export/import."),
        (name = "access-tokens", description = "REANA-style access tokens."),
        (name = "authorization", description = "Decisions for outside applications (`/v1/authorize`, AuthZEN 1.0)."),
        (name = "plugins", description = "The plugin store, the active authorizer, the decision log."),
        (name = "audit", description = "The audit log."),
    )
)]
pub struct ApiDoc;

/// The document, built once per process.
pub fn document() -> &'static serde_json::Value {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
        refine(&mut doc);
        doc
    })
}

/// Rules JSON Schema can state but utoipa's attributes cannot (`if`/`then`).
fn refine(doc: &mut serde_json::Value) {
    use serde_json::json;
    let schemas = &mut doc["components"]["schemas"];
    // A temporary password needs a password.
    schemas["CreateUser"]["if"] = json!({
        "properties": { "temporary_password": { "const": true } },
        "required": ["temporary_password"],
    });
    schemas["CreateUser"]["then"] = json!({
        "required": ["password"],
        "properties": { "password": { "type": "string" } },
    });
    // AuthZEN batches: without items the top level is the one evaluation, so it needs all
    // three; with items, each takes what it lacks from the top level.
    let zen = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
    let mut rules = vec![json!({
        "if": { "required": ["evaluations"], "properties": { "evaluations": { "type": "array", "minItems": 1 } } },
        "else": {
            "required": ["subject", "action", "resource"],
            "properties": { "subject": zen("ZenSubject"), "action": zen("ZenAction"), "resource": zen("ZenResource") },
        },
    })];
    for (key, name) in [
        ("subject", "ZenSubject"),
        ("action", "ZenAction"),
        ("resource", "ZenResource"),
    ] {
        rules.push(json!({
            "if": { "required": [key], "properties": { key: zen(name) } },
            "else": {
                "properties": { "evaluations": { "items": { "required": [key], "properties": { key: zen(name) } } } },
            },
        }));
    }
    schemas["ZenEvaluations"]["allOf"] = json!(rules);
    // Without a username the lowercased email becomes it, so it must fit a username.
    schemas["CreateByEmail"]["if"] = json!({
        "not": { "required": ["username"], "properties": { "username": { "type": "string" } } },
    });
    schemas["CreateByEmail"]["then"] = json!({
        "properties": { "email": { "pattern": "^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$" } },
    });
}

/// This OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> axum::Json<&'static serde_json::Value> {
    axum::Json(document())
}

const BEARER: &str = "bearer";

struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("pcs_…")
                    .description(Some(
                        "An API key, a login key (from `POST /v1/login`) or an access token.",
                    ))
                    .build(),
            ),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            let ptfe = path.starts_with("/admin/");
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                conventions(op, ptfe);
            }
        }
    }
}

fn conventions(op: &mut Operation, ptfe: bool) {
    // `security(())` in an annotation marks a public operation: no requirement at all.
    let public = op
        .security
        .as_ref()
        .is_some_and(|s| s.iter().all(|r| *r == SecurityRequirement::default()));
    if public {
        op.security = Some(Vec::new());
    } else {
        op.security = Some(vec![SecurityRequirement::new::<_, _, &str>(BEARER, [])]);
    }
    let params = op.parameters.as_deref().unwrap_or_default();
    let has_path = params.iter().any(|p| match p {
        RefOr::T(p) => p.parameter_in == ParameterIn::Path,
        RefOr::Ref(_) => false,
    });
    let json_body = op.request_body.as_ref().is_some_and(|b| match b {
        RefOr::T(b) => b.content.contains_key("application/json"),
        RefOr::Ref(_) => false,
    });
    let has_input = !params.is_empty() || op.request_body.is_some();
    let mut add = |status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error_response(description, ptfe));
    };
    if !public {
        add(
            "401",
            "No valid key: missing, malformed, unknown, expired or revoked, or its account is disabled",
        );
        add(
            "403",
            "The authorizer denied the call (the message names the action and target), or the caller must change its password first",
        );
    }
    if has_path {
        add(
            "404",
            "The resource does not exist or is not visible to the caller",
        );
    }
    if has_input {
        add("422", "A field is missing or invalid; the message names it");
    }
    if json_body {
        add("413", "The body is larger than the configured limit");
        add("415", "The body is not `Content-Type: application/json`");
    }
}

fn error_response(description: &str, ptfe: bool) -> RefOr<Response> {
    let schema = if ptfe { "PtfeError" } else { "ErrorBody" };
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                Content::new(Some(utoipa::openapi::Ref::from_schema_name(schema))),
            )
            .build(),
    )
}

// ------------------------------------------------------------------------------ shapes
//
// Response bodies the handlers build with `json!`. Schemathesis checks every response
// against these, so a drift fails CI.

/// `{"error":{"code","message","reasons"?}}`.
#[derive(ToSchema, Serialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(ToSchema, Serialize)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `invalid_request`, `forbidden`, `not_found`.
    pub code: String,
    /// Human-readable; names the offending field for 422.
    pub message: String,
    /// The authorizer's reasons, on a 403 decision.
    pub reasons: Option<Vec<String>>,
}

/// The Terraform Enterprise error shape of the `/admin` endpoints.
#[derive(ToSchema, Serialize)]
pub struct PtfeError {
    /// Always `error`.
    pub status: String,
    pub error: String,
}

#[derive(ToSchema, Serialize)]
#[schema(rename_all = "lowercase")]
pub enum AccountType {
    Admin,
    User,
    Service,
}

#[derive(ToSchema, Serialize)]
#[schema(rename_all = "lowercase")]
pub enum AccountState {
    Enabled,
    Disabled,
    Deleting,
}

#[derive(ToSchema, Serialize)]
#[schema(rename_all = "lowercase")]
pub enum SettableAccountState {
    Enabled,
    Disabled,
}

#[derive(ToSchema, Serialize)]
#[schema(rename_all = "lowercase")]
pub enum AccessTokenStatus {
    Requested,
    Active,
    Revoked,
}

#[derive(ToSchema, Serialize)]
pub struct Health {
    pub status: String,
}

#[derive(ToSchema, Serialize)]
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

#[derive(ToSchema, Serialize)]
pub struct NotReady {
    /// `not_ready`.
    pub status: String,
    pub store: String,
}

#[derive(ToSchema, Serialize)]
pub struct IactCreated {
    /// `created`.
    pub status: String,
    /// The new admin's API key (shown once).
    pub token: String,
}

#[derive(ToSchema, Serialize)]
pub struct Account {
    pub name: String,
    pub email: Option<String>,
    #[schema(inline)]
    pub r#type: AccountType,
    #[schema(inline)]
    pub state: AccountState,
    /// RFC 3339.
    pub created_at: String,
}

#[derive(ToSchema, Serialize)]
pub struct AccountList {
    pub items: Vec<Account>,
    /// Cursor for `?after=` while more may follow.
    pub next: Option<String>,
}

#[derive(ToSchema, Serialize)]
pub struct AccountDeleting {
    pub name: String,
    /// `deleting`.
    pub state: String,
}

#[derive(ToSchema, Serialize)]
pub struct User {
    pub username: String,
    pub account: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    pub created_at: String,
    pub last_login_at: Option<String>,
    pub must_change_password: bool,
    pub locked: bool,
    pub locked_until: Option<String>,
    #[schema(inline)]
    pub access_token_status: Option<AccessTokenStatus>,
    /// The single sign-on identity that signs in as this user (created by a first
    /// sign-in, or linked by an administrator); `null` when none.
    pub sso: Option<SsoLinkView>,
}

#[derive(ToSchema, Serialize)]
pub struct SsoLinkView {
    /// The ID token's `iss`.
    pub issuer: String,
    /// The ID token's `sub`.
    pub subject: String,
}

#[derive(ToSchema, Serialize)]
pub struct UserDescribed {
    #[schema(inline)]
    #[serde(flatten)]
    pub user: User,
    /// Live (unrevoked, unexpired) keys of the user.
    pub key_count: i64,
}

#[derive(ToSchema, Serialize)]
pub struct UserList {
    pub items: Vec<User>,
    pub next: Option<String>,
}

#[derive(ToSchema, Serialize)]
pub struct PasswordSet {
    pub username: String,
    pub must_change_password: bool,
    pub keys_revoked: i64,
}

#[derive(ToSchema, Serialize)]
#[schema(rename_all = "kebab-case")]
pub enum KeyKind {
    Personal,
    Login,
    AccessToken,
}

#[derive(ToSchema, Serialize)]
pub struct Key {
    pub id: String,
    pub name: String,
    #[schema(inline)]
    pub kind: KeyKind,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

#[derive(ToSchema, Serialize)]
pub struct KeyCreated {
    #[schema(inline)]
    #[serde(flatten)]
    pub record: Key,
    /// The secret, shown once.
    pub key: String,
}

#[derive(ToSchema, Serialize)]
pub struct KeyList {
    pub items: Vec<Key>,
    pub next: Option<String>,
}

#[derive(ToSchema, Serialize)]
pub struct LoggedIn {
    /// A login key (shown once).
    pub api_key: String,
    pub expires_at: Option<String>,
    pub user: User,
}

#[derive(ToSchema, Serialize)]
pub struct WhoAmIAccount {
    pub name: String,
    pub email: Option<String>,
    #[schema(inline)]
    pub r#type: AccountType,
    #[schema(inline)]
    pub state: AccountState,
}

#[derive(ToSchema, Serialize)]
pub struct WhoAmIKey {
    pub id: String,
    #[schema(inline)]
    pub kind: KeyKind,
    pub expires_at: Option<String>,
}

#[derive(ToSchema, Serialize)]
pub struct WhoAmI {
    pub username: String,
    pub account: WhoAmIAccount,
    pub roles: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    pub key: WhoAmIKey,
    /// Where users this caller creates without naming an account go: its own account for
    /// a `user`-account member, else `[users] default_account` (never the admin account).
    pub default_account: String,
}

#[derive(ToSchema, Serialize)]
pub struct AccessToken {
    pub username: String,
    #[schema(inline)]
    pub access_token_status: AccessTokenStatus,
    /// The token, shown once (grant only).
    pub access_token: Option<String>,
}

#[derive(ToSchema, Serialize)]
pub struct CreatedByEmail {
    /// The username (REANA's `id`).
    pub id: String,
    pub email: String,
    pub username: String,
    pub account: String,
    /// Present when `grant_access_token` was true.
    pub access_token: Option<String>,
}

#[derive(ToSchema, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub time: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
}

#[derive(ToSchema, Serialize)]
pub struct AuditList {
    pub items: Vec<AuditEntry>,
    pub next: Option<String>,
}

#[derive(ToSchema, Serialize)]
#[schema(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Deny,
}

#[derive(ToSchema, Serialize)]
pub struct Authorized {
    #[schema(inline)]
    pub decision: Verdict,
    pub reasons: Vec<String>,
    /// Find it in `GET /v1/decisions`.
    pub decision_id: String,
}

#[derive(ToSchema, Serialize)]
#[schema(rename_all = "lowercase")]
pub enum ZenSubjectType {
    User,
}

/// AuthZEN subject: `type` is `user`, `id` the username. Properties reach the plugin as
/// context entries `subject.NAME` (strings as they are, other values as JSON text).
#[derive(ToSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZenSubject {
    #[schema(inline)]
    pub r#type: ZenSubjectType,
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 254
    )]
    pub id: String,
    #[schema(schema_with = zen_properties)]
    pub properties: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(ToSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZenAction {
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 256
    )]
    pub name: String,
    #[schema(schema_with = zen_properties)]
    pub properties: Option<BTreeMap<String, serde_json::Value>>,
}

/// AuthZEN resource; the property `account` names the owning account.
#[derive(ToSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZenResource {
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 128
    )]
    pub r#type: String,
    #[schema(
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]+$",
        max_length = 1024
    )]
    pub id: String,
    #[schema(schema_with = zen_properties)]
    pub properties: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(ToSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZenEvaluation {
    pub subject: ZenSubject,
    pub action: ZenAction,
    pub resource: ZenResource,
    #[schema(schema_with = zen_properties)]
    pub context: Option<BTreeMap<String, serde_json::Value>>,
}

/// One item of a batch; what it omits comes from the request's top level.
#[derive(ToSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZenItem {
    pub subject: Option<ZenSubject>,
    pub action: Option<ZenAction>,
    pub resource: Option<ZenResource>,
    #[schema(schema_with = zen_properties)]
    pub context: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(ToSchema, Serialize)]
#[schema(rename_all = "snake_case")]
pub enum ZenSemantic {
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

#[derive(ToSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZenOptions {
    #[schema(inline)]
    pub evaluations_semantic: Option<ZenSemantic>,
}

/// Top-level `subject`/`action`/`resource`/`context` are defaults for every item; without
/// items (absent or empty) the request is one evaluation of the top level.
#[derive(ToSchema, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ZenEvaluations {
    pub subject: Option<ZenSubject>,
    pub action: Option<ZenAction>,
    pub resource: Option<ZenResource>,
    #[schema(schema_with = zen_properties)]
    pub context: Option<BTreeMap<String, serde_json::Value>>,
    #[schema(max_items = 1000)]
    pub evaluations: Option<Vec<ZenItem>>,
    pub options: Option<ZenOptions>,
}

#[derive(ToSchema, Serialize)]
pub struct ZenContext {
    pub id: String,
    pub reasons: Vec<String>,
}

#[derive(ToSchema, Serialize)]
pub struct ZenDecision {
    pub decision: bool,
    pub context: ZenContext,
}

#[derive(ToSchema, Serialize)]
pub struct ZenDecisions {
    pub evaluations: Vec<ZenDecision>,
}

#[derive(ToSchema, Serialize)]
#[serde(untagged)]
pub enum ZenBatchAnswer {
    Batch(ZenDecisions),
    Single(ZenDecision),
}

#[derive(ToSchema, Serialize)]
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

#[derive(ToSchema, Serialize)]
pub struct PluginDescribed {
    #[schema(inline)]
    #[serde(flatten)]
    pub record: PluginRecord,
    pub active: bool,
    pub shadow: bool,
}

#[derive(ToSchema, Serialize)]
pub struct PluginList {
    pub items: Vec<PluginRecord>,
    pub next: Option<String>,
}

#[derive(ToSchema, Serialize)]
pub struct LoadedPlugin {
    pub id: String,
    pub name: String,
    pub digest: String,
    /// The JSON handed to `configure`.
    pub settings: serde_json::Value,
    pub since: String,
}

#[derive(ToSchema, Serialize)]
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

#[derive(ToSchema, Serialize)]
pub struct Authorizer {
    pub active: LoadedPlugin,
    pub shadow: Option<LoadedPlugin>,
    /// Bumped by every activation; servers sharing a database converge on it.
    pub version: i64,
    pub counts: DecisionCounts,
    pub shadow_agreements: u64,
    pub shadow_disagreements: u64,
    pub disagreement_samples: Vec<portcullis_app::authorizer::Disagreement>,
}

#[derive(ToSchema, Serialize)]
pub struct DecisionList {
    pub items: Vec<portcullis_app::authorizer::Logged>,
    pub next: Option<String>,
}

#[derive(ToSchema, Serialize)]
pub struct ImportReport {
    pub created: u64,
    pub skipped: u64,
    pub updated: u64,
    /// Accounts the import created for rows that named a new one.
    pub accounts_created: Vec<String>,
    pub errors: Vec<RowError>,
}

#[derive(ToSchema, Serialize)]
#[serde(untagged)]
pub enum ImportRejected {
    Report(ImportReport),
    Error(ErrorBody),
}

/// A WebAssembly component (binary).
#[derive(ToSchema, Serialize)]
#[schema(value_type = String, format = Binary)]
pub struct Wasm(Vec<u8>);

#[derive(ToSchema, Serialize)]
pub struct RowError {
    /// 1 is the header row.
    pub row: u64,
    pub error: String,
}
