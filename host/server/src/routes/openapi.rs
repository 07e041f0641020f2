//! `GET /openapi.json`: the OpenAPI 3.1 document, assembled here from the handlers'
//! `#[utoipa::path]` annotations and the `ToSchema`/`IntoParams` derives of the request and
//! response types in [`crate::api`] (the types the handlers read and write, so a field
//! cannot be documented otherwise than it is sent). Two things keep it true: the
//! route-coverage test (`tests/api/openapi.rs`: every routed method and path is documented
//! and vice versa) and schemathesis (`scripts/schemathesis.sh`, in CI), which checks every
//! response against it.
//!
//! Conventions the [`Conventions`] modifier applies to every operation, so the annotations
//! stay short and the error statuses cannot be forgotten:
//! - every operation needs `Authorization: Bearer <key>` unless its annotation says
//!   `security(())` (then it is public), and a secured one may answer 401 and 403;
//! - an operation with a path parameter may answer 404; one with any parameter or a body
//!   may answer 422 naming the field; one with a JSON body may answer 413 and 415.

use super::{
    accounts, admin, audit, authzen, csv, decide, forward, health, plugins, policies, session,
    tokens, users,
};
use crate::api::errors::{ErrorBody, PtfeError};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

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
        forward::check_default,
        forward::check_named,
        forward::check_appended,
        forward::check_appended_root,
        authzen::evaluation_root,
        authzen::evaluations_root,
        authzen::search_subject_root,
        authzen::search_resource_root,
        authzen::search_action_root,
        authzen::evaluation_named,
        authzen::evaluations_named,
        authzen::search_subject_named,
        authzen::search_resource_named,
        authzen::search_action_named,
        authzen::metadata_root,
        authzen::metadata_named,
        policies::list,
        policies::get,
        policies::put,
        policies::delete,
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
        (name = "authorization", description = "Decisions for outside applications (`/v1/authorize`)."),
        (name = "forward-auth", description = "Reverse proxies ask whether the request they hold may pass (nginx `auth_request`, Caddy `forward_auth`, Traefik `forwardAuth`, Envoy `ext_authz`): `docs/proxies.md`."),
        (name = "authzen", description = "OpenID AuthZEN 1.0 at the root (`[authorizer] default_policy`) and for each application policy at `/policies/{name}`: unknown members are ignored, malformed requests are 400."),
        (name = "policies", description = "Application policies: named, independently activated plugins."),
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
    let rules = vec![json!({
        "if": { "required": ["evaluations"], "properties": { "evaluations": { "type": "array", "minItems": 1 } } },
        "else": {
            "required": ["subject", "action", "resource"],
            "properties": { "subject": zen("ZenSubject"), "action": zen("ZenAction"), "resource": zen("ZenResource") },
        },
    })];
    // With items, an item may lack a member the top level does not give either: that item
    // is answered `false` with the reason (AuthZEN: a per-item failure), so the document
    // does not refuse such a request.
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
            let zen = path.contains("/access/v1/") || path.starts_with("/.well-known/");
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
            ]
            .into_iter()
            .flatten()
            {
                conventions(op, ptfe, zen);
            }
        }
    }
}

/// `zen`: an AuthZEN operation, whose malformed requests are 400 (never 415 or 422).
fn conventions(op: &mut Operation, ptfe: bool, zen: bool) {
    // `security(())` in an annotation marks a public operation: no requirement at all;
    // `security((), ("bearer" = []))` one where the key is optional (forward auth: a
    // session cookie instead, and a proxy's check is answered 403 or 400 before the key
    // is looked at).
    let anonymous = |s: &Vec<SecurityRequirement>| {
        s.iter()
            .filter(|r| **r == SecurityRequirement::default())
            .count()
    };
    let public = op
        .security
        .as_ref()
        .is_some_and(|s| anonymous(s) == s.len());
    let optional = op
        .security
        .as_ref()
        .is_some_and(|s| anonymous(s) > 0 && anonymous(s) < s.len());
    if public {
        op.security = Some(Vec::new());
    } else if optional {
        op.security = Some(vec![
            SecurityRequirement::default(),
            SecurityRequirement::new::<_, _, &str>(BEARER, []),
        ]);
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
    if zen {
        add(
            "400",
            "Malformed: not JSON, not `application/json`, a required member missing or of the wrong type",
        );
        if op.request_body.is_some() {
            add("413", "The body is larger than the configured limit");
        }
        return;
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
