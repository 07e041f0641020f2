//! Decisions for outside applications: `POST /v1/authorize` (§5.4), asked of the
//! management authorizer or, with `"policy"`, of an application policy (§11). AuthZEN is in
//! `super::authzen`.
//!
//! The host fills in the principal from its own store. An unknown subject, or one whose
//! account is not enabled, is denied without asking the plugin. Context keys starting with
//! `portcullis.` are the host's: a caller's are dropped, and `portcullis.origin` is set to
//! `external`.

use super::Json;
use crate::api::decide::{AuthorizeBody, Authorized};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::SharedState;
use axum::extract::State;
use portcullis_app::decide::{self, answer, may_evaluate, Pdp, Question, ZenQuestion};
use portcullis_core::authz::{self, Entity, Target};

// ------------------------------------------------------------------ /v1/authorize

#[utoipa::path(post, path = "/v1/authorize", tag = "authorization", request_body = AuthorizeBody, responses((status = 200, description = "The plugin's decision", body = Authorized), (status = 404, description = "No application policy of that name (`policy`)", body = crate::api::errors::ErrorBody)))]
pub async fn authorize(
    State(state): State<SharedState>,
    caller: Caller,
    Json(body): Json<AuthorizeBody>,
) -> ApiResult<Json<Authorized>> {
    if let Some(name) = body.policy.clone() {
        portcullis_core::names::validate_account_name(&name).map_err(|e| {
            crate::error::ApiError::invalid(
                "policy",
                format!("{e} (omit it to ask the management authorizer)"),
            )
        })?;
        return authorize_with_policy(&state, &caller, &name, body).await;
    }
    // Permission before any work on the request's contents.
    may_evaluate(&state, &caller).await?;
    let (d, id) = answer(&state, question(body).checked()?).await?;
    Ok(Json(Authorized::new(&d, id)))
}

/// The body as the outside question it asks.
fn question(body: AuthorizeBody) -> Question {
    let mut target = Target::new(
        &body.resource.kind,
        &body.resource.id,
        body.resource.account.as_deref(),
    );
    target.attributes = body.resource.attributes.into_iter().collect();
    Question {
        username: body.subject.username,
        action: body.action,
        target,
        context: body.context.into_iter().collect(),
    }
}

/// `/v1/authorize` asked of an application policy: the question as an AuthZEN one (a
/// `user` subject; the resource's attributes, and its account as `account`, as string
/// properties; the context's entries as strings).
async fn authorize_with_policy(
    state: &SharedState,
    caller: &Caller,
    name: &str,
    body: AuthorizeBody,
) -> ApiResult<Json<Authorized>> {
    let pdp = Pdp::named(state, Some(name))?;
    decide::may_evaluate_on(state, caller, &pdp).await?;
    // The same checks as without a policy, on the same fields.
    let checked = question(body).checked()?;
    let strings = |pairs: Vec<(String, String)>| {
        authz::object_text(
            &pairs
                .into_iter()
                .filter(|(k, _)| !k.starts_with("portcullis."))
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect(),
        )
    };
    let mut properties = checked.target.attributes;
    if let Some(account) = checked.target.account {
        properties.push(("account".into(), account));
    }
    let q = ZenQuestion {
        subject: Entity::new(decide::USER_TYPE, &checked.username),
        action: checked.action,
        action_properties: authz::EMPTY_OBJECT.into(),
        resource: Entity {
            kind: checked.target.kind,
            id: checked.target.id,
            properties: strings(properties),
        },
        context: strings(checked.context),
    };
    let (d, id) = decide::answer_zen(state, &pdp, q).await?;
    Ok(Json(Authorized::new(&d, id)))
}
