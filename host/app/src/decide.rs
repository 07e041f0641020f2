//! Decisions for outside applications (`/v1/authorize`, AuthZEN): the host fills in the
//! principal from its own store. An unknown subject, or one whose account is not enabled,
//! is denied without asking the plugin. Context keys starting with `portcullis.` are the
//! host's: a caller's are dropped, `portcullis.origin` is set to `external` and
//! `portcullis.decision-id` to the decision's id.

use crate::caller::Caller;
use crate::error::{AppError, AppResult};
use crate::verified::Subject;
use crate::{principal_of, App};
use portcullis_core::authz::{
    self, actions, Decision, Origin, Target, CONTEXT_DECISION_ID, CONTEXT_ORIGIN,
    RESERVED_CONTEXT_PREFIX,
};
use portcullis_core::{names, AccountState};
use std::sync::atomic::Ordering;

/// Most evaluations one batch may carry.
pub const MAX_BATCH: usize = 1000;
/// Most entries of one context or attribute map.
pub const MAX_CONTEXT_ENTRIES: usize = 64;
/// Most bytes a whole batch may come to once built (names, properties, context, with
/// top-level defaults counted in every item that uses them): 4× the largest body.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// One outside question before the principal is known.
#[derive(Debug, Clone)]
pub struct Question {
    pub username: String,
    pub action: String,
    pub target: Target,
    pub context: Vec<(String, String)>,
}

impl Question {
    /// The question if every field is within bounds (`/v1/authorize`'s field names).
    pub fn checked(self) -> AppResult<Question> {
        check_text("subject.username", &self.username, 254)?;
        check_text("action", &self.action, 256)?;
        check_text("resource.kind", &self.target.kind, 128)?;
        check_text("resource.id", &self.target.id, 1024)?;
        if let Some(a) = &self.target.account {
            check_text("resource.account", a, 128)?;
        }
        check_pairs("resource.attributes", &self.target.attributes)?;
        check_pairs("context", &self.context)?;
        Ok(self)
    }

    /// The bytes of text it holds (what a batch's bound counts).
    pub fn size(&self) -> usize {
        let pairs =
            |p: &[(String, String)]| p.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        self.username.len()
            + self.action.len()
            + self.target.kind.len()
            + self.target.id.len()
            + self.target.account.as_ref().map_or(0, |a| a.len())
            + pairs(&self.target.attributes)
            + pairs(&self.context)
    }
}

/// A printable label of at most `max` characters, or an error naming `field`.
pub fn check_text(field: &str, value: &str, max: usize) -> AppResult<()> {
    names::validate_label(value, max).map_err(|e| AppError::invalid(field, e))
}

/// At most [`MAX_CONTEXT_ENTRIES`] pairs, keys printable labels, values ≤ 4096 characters.
pub fn check_pairs(field: &str, pairs: &[(String, String)]) -> AppResult<()> {
    if pairs.len() > MAX_CONTEXT_ENTRIES {
        return Err(AppError::invalid(
            field,
            format!("at most {MAX_CONTEXT_ENTRIES} entries"),
        ));
    }
    for (k, v) in pairs {
        check_text(&format!("{field} key"), k, 128)?;
        if v.chars().count() > 4096 {
            return Err(AppError::invalid(
                &format!("{field}.{k}"),
                "at most 4096 characters",
            ));
        }
    }
    Ok(())
}

/// The caller may ask outside questions (`authorize.evaluate`). Asked before any work on
/// a request's contents. An allow is remembered on the caller's verified key record
/// (`VerifiedKey::may_evaluate`), so it lasts exactly as long as that record (nothing
/// written on this server, a pushed change from another, the key cache's TTL) and the same
/// plugin activation: a revocation, a role change or a plugin swap asks again.
pub async fn may_evaluate(app: &App, caller: &Caller) -> AppResult<()> {
    let generation = app.authz.active().generation;
    if caller.verified.may_evaluate.load(Ordering::Acquire) == generation {
        return Ok(());
    }
    app.require(
        &caller.principal,
        actions::AUTHORIZE_EVALUATE,
        Target::new("authorize", "*", None),
    )
    .await?;
    caller
        .verified
        .may_evaluate
        .store(generation, Ordering::Release);
    Ok(())
}

/// Answer one question; the decision and its id (as in the decision log).
pub async fn answer(app: &App, q: Question) -> AppResult<(Decision, String)> {
    let id = crate::authorizer::decision_id();
    let epoch = app.store.auth_epoch();
    let subject = match app.verified.subject(&q.username, epoch) {
        Some(subject) => subject,
        None => {
            let subject = app.store.get_user(&q.username).await?.map(|user| {
                let principal = principal_of(&user);
                std::sync::Arc::new(Subject { user, principal })
            });
            app.verified
                .put_subject(&q.username, subject.clone(), epoch);
            subject
        }
    };
    let subject = match subject {
        Some(s) if s.user.account != names::SYSTEM_ACCOUNT => s,
        _ => {
            return Ok((
                Decision::deny(format!("unknown subject {}", q.username)),
                id,
            ))
        }
    };
    let user = &subject.user;
    if user.account_state != AccountState::Enabled {
        return Ok((
            Decision::deny(format!(
                "the account {} of {} is {}",
                user.account, user.username, user.account_state
            )),
            id,
        ));
    }
    let mut context: Vec<(String, String)> = q
        .context
        .into_iter()
        .filter(|(k, _)| !k.starts_with(RESERVED_CONTEXT_PREFIX))
        .collect();
    context.push((CONTEXT_ORIGIN.into(), Origin::External.as_str().into()));
    context.push((CONTEXT_DECISION_ID.into(), id.clone()));
    let request = authz::Request {
        principal: subject.principal.clone(),
        action: q.action,
        target: q.target,
        context,
    };
    let decision = app.decide_request(&request).await;
    tracing::debug!(decision_id = %id, subject = %user.username, action = %request.action, allowed = decision.allowed, "outside decision");
    Ok((decision, id))
}

/// When a batch stops early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantic {
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

/// Answer a batch in order, stopping as `semantic` says.
pub async fn answer_all(
    app: &App,
    questions: Vec<Question>,
    semantic: Semantic,
) -> AppResult<Vec<(Decision, String)>> {
    let mut results = Vec::with_capacity(questions.len());
    for q in questions {
        let (d, id) = answer(app, q).await?;
        let stop = match semantic {
            Semantic::ExecuteAll => false,
            Semantic::DenyOnFirstDeny => !d.allowed,
            Semantic::PermitOnFirstPermit => d.allowed,
        };
        results.push((d, id));
        if stop {
            break;
        }
    }
    Ok(results)
}
