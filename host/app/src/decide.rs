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
use std::sync::Arc;

/// Most evaluations one batch may carry.
pub const MAX_BATCH: usize = 1000;
/// Most entries of one context or attribute map.
pub const MAX_CONTEXT_ENTRIES: usize = 64;
/// Most bytes of types, ids, names, properties and context one AuthZEN request may come to
/// once built (a batch's top-level defaults counted in every item that uses them): 1 MiB
/// (SPEC §11), 413 beyond.
pub const MAX_ZEN_BYTES: usize = 1024 * 1024;

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

/// A search candidate: its id, and the principal when it is a Portcullis user.
type Candidate = (String, Option<Arc<authz::Principal>>);

/// When a batch stops early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantic {
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

// ------------------------------------------------------------ application policies, AuthZEN

/// Who answers an outside question: the management authorizer, or an application policy.
#[derive(Clone)]
pub enum Pdp {
    Management,
    Policy(std::sync::Arc<crate::policies::Policy>),
}

impl Pdp {
    /// The PDP a policy name selects (`None` or empty: `[authorizer] default_policy`, and
    /// when that is empty too, the management authorizer). 404 for an unknown policy.
    pub fn named(app: &App, name: Option<&str>) -> AppResult<Pdp> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => n,
            None if app.config.authorizer.default_policy.is_empty() => return Ok(Pdp::Management),
            None => app.config.authorizer.default_policy.as_str(),
        };
        crate::policies::check_name(name)?;
        app.policies
            .get(name)
            .map(Pdp::Policy)
            .ok_or_else(|| AppError::not_found(format!("policy {name}")))
    }

    /// The policy's name (`None` for the management authorizer).
    pub fn name(&self) -> Option<&str> {
        match self {
            Pdp::Management => None,
            Pdp::Policy(p) => Some(&p.name),
        }
    }
}

/// The caller may ask the policy `name`, which does not exist: checked anyway, so that
/// only a caller who may evaluate it learns that it is not there (else 403, as for one
/// that exists).
pub async fn may_evaluate_missing(app: &App, caller: &Caller, name: &str) -> AppResult<()> {
    app.require(
        &caller.principal,
        actions::AUTHORIZE_EVALUATE,
        Target::new("policy", name, None),
    )
    .await
}

/// The caller may ask `pdp` (`authorize.evaluate` on `authorize/*`, or on `policy/NAME`).
/// Asked before any work on a request's contents; an allow is remembered on the caller's
/// verified key record for that PDP and activation (see [`may_evaluate`]).
pub async fn may_evaluate_on(app: &App, caller: &Caller, pdp: &Pdp) -> AppResult<()> {
    let Pdp::Policy(policy) = pdp else {
        return may_evaluate(app, caller).await;
    };
    let generation = app.authz.active().generation;
    if caller.verified.may_evaluate_policy(&policy.name) == Some(generation) {
        return Ok(());
    }
    app.require(
        &caller.principal,
        actions::AUTHORIZE_EVALUATE,
        Target::new("policy", &policy.name, None),
    )
    .await?;
    caller
        .verified
        .remember_may_evaluate_policy(&policy.name, generation);
    Ok(())
}

/// One AuthZEN question as the client sent it (entities complete, `portcullis.` context
/// keys already dropped, JSON members sorted: see [`authz::object_text`]).
#[derive(Debug, Clone)]
pub struct ZenQuestion {
    pub subject: authz::Entity,
    pub action: String,
    pub action_properties: String,
    pub resource: authz::Entity,
    pub context: String,
}

impl ZenQuestion {
    /// The bytes of types, ids, names, properties and context it holds (what
    /// [`MAX_ZEN_BYTES`] and [`MAX_SEARCH_QUESTION_BYTES`] bound).
    pub fn size(&self) -> usize {
        self.subject.kind.len()
            + self.subject.id.len()
            + self.subject.properties.len()
            + self.action.len()
            + self.action_properties.len()
            + self.resource.kind.len()
            + self.resource.id.len()
            + self.resource.properties.len()
            + self.context.len()
    }
}

/// The subject type that names a Portcullis user.
pub const USER_TYPE: &str = "user";

/// The Portcullis user an AuthZEN subject of type `user` names (`[authzen]
/// subject_lookup`), or why it is denied: unknown, ambiguous, a system user, or an account
/// that is not enabled.
async fn resolve_user(app: &App, id: &str) -> AppResult<Result<Arc<Subject>, String>> {
    use crate::config::SubjectLookup;
    let epoch = app.store.auth_epoch();
    for lookup in &app.config.authzen.subject_lookup {
        let key = match lookup {
            SubjectLookup::Username => {
                let username = id.to_lowercase();
                if names::validate_username(&username).is_err() {
                    continue;
                }
                username
            }
            SubjectLookup::Email => format!("email:{}", id.to_lowercase()),
            SubjectLookup::SsoSubject => format!("sso:{id}"),
        };
        // Remembered (found or not) until the epoch changes; asked of the store otherwise.
        let found = match app.verified.subject(&key, epoch) {
            Some(hit) => hit,
            None => {
                let found = match lookup {
                    SubjectLookup::Username => app.store.get_user(&key).await?.map(subject_of),
                    SubjectLookup::Email => only(app.store.users_by_email(id, 2).await?),
                    SubjectLookup::SsoSubject => {
                        // The configured identity provider's subjects only (an identity
                        // an administrator linked for another issuer is not this one).
                        let issuer = app.config.oidc.as_ref().map(|o| o.issuer.as_str());
                        only(app.store.users_by_sso_subject(id, issuer, 2).await?)
                    }
                };
                app.verified.put_subject(&key, found.clone(), epoch);
                found
            }
        };
        if let Some(subject) = found {
            return Ok(usable(subject));
        }
    }
    Ok(Err(format!(
        "unknown subject user/{}",
        names::printable(id, 256)
    )))
}

fn subject_of(user: portcullis_store::User) -> Arc<Subject> {
    let principal = principal_of(&user);
    Arc::new(Subject { user, principal })
}

/// The one user of a lookup; none when no user or several match (ambiguous).
fn only(mut users: Vec<portcullis_store::User>) -> Option<Arc<Subject>> {
    (users.len() == 1).then(|| subject_of(users.remove(0)))
}

/// A found user may be asked about unless it is a system user or its account is not enabled.
fn usable(subject: Arc<Subject>) -> Result<Arc<Subject>, String> {
    let user = &subject.user;
    if user.account == names::SYSTEM_ACCOUNT {
        return Err(format!("unknown subject user/{}", user.username));
    }
    if user.account_state != AccountState::Enabled {
        return Err(format!(
            "the account {} of {} is {}",
            user.account, user.username, user.account_state
        ));
    }
    Ok(subject)
}

/// Answer one AuthZEN question with `pdp`; the decision and its id. A subject of type
/// `user` is looked up (an unknown or disabled user is denied without asking the plugin);
/// any other subject goes to the plugin as given. The management authorizer knows
/// Portcullis users only.
pub async fn answer_zen(app: &App, pdp: &Pdp, q: ZenQuestion) -> AppResult<(Decision, String)> {
    let principal = if q.subject.kind == USER_TYPE {
        match resolve_user(app, &q.subject.id).await? {
            Ok(s) => Some(s.principal.clone()),
            Err(reason) => return Ok((Decision::deny(reason), crate::authorizer::decision_id())),
        }
    } else {
        None
    };
    Ok(ask_zen(app, pdp, q, principal).await)
}

/// Ask `pdp` a question whose subject is resolved (`principal`: the Portcullis user of a
/// `user` subject; `None` for other subjects).
pub(crate) async fn ask_zen(
    app: &App,
    pdp: &Pdp,
    q: ZenQuestion,
    principal: Option<Arc<authz::Principal>>,
) -> (Decision, String) {
    let id = crate::authorizer::decision_id();
    let query = authz::Query {
        subject: q.subject,
        principal,
        action: q.action,
        action_properties: q.action_properties,
        resource: q.resource,
        context: q.context,
        policy: pdp.name().unwrap_or_default().to_string(),
        decision_id: id.clone(),
    };
    let decision = match pdp {
        Pdp::Policy(policy) => policy.authz.evaluate(&query, &app.metrics).await,
        Pdp::Management => match &query.principal {
            Some(p) => {
                let mut request = query.to_request(p);
                request
                    .context
                    .retain(|(k, _)| k != authz::CONTEXT_POLICY);
                app.decide_request(&request).await
            }
            None => Decision::deny(format!(
                "the management authorizer decides about Portcullis users only (subject type {USER_TYPE}); ask an application policy about {} subjects",
                names::printable(&query.subject.kind, 128)
            )),
        },
    };
    tracing::debug!(decision_id = %id, policy = pdp.name(), action = %query.action, allowed = decision.allowed, "outside decision");
    (decision, id)
}

/// Answer AuthZEN questions in order, stopping as `semantic` says. An item that could not
/// be built (`Err(message)`) is a deny carrying that message, and counts as a deny.
pub async fn answer_zen_all(
    app: &App,
    pdp: &Pdp,
    items: Vec<Result<ZenQuestion, String>>,
    semantic: Semantic,
) -> AppResult<Vec<Result<(Decision, String), String>>> {
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let answer = match item {
            Ok(q) => Ok(answer_zen(app, pdp, q).await?),
            Err(problem) => Err(problem),
        };
        let allowed = matches!(&answer, Ok((d, _)) if d.allowed);
        results.push(answer);
        let stop = match semantic {
            Semantic::ExecuteAll => false,
            Semantic::DenyOnFirstDeny => !allowed,
            Semantic::PermitOnFirstPermit => allowed,
        };
        if stop {
            break;
        }
    }
    Ok(results)
}

/// Most store users one subject search looks at before it answers with a page token.
pub const SEARCH_SCAN: usize = 1000;
/// Results per search page when the request names no `page.limit`, and the most it may.
pub const SEARCH_PAGE: usize = 100;
pub const MAX_SEARCH_PAGE: usize = 1000;
/// Most bytes of ids, properties and context a search's question may come to: it is
/// copied into every evaluation the search makes (up to [`SEARCH_SCAN`]).
pub const MAX_SEARCH_QUESTION_BYTES: usize = 64 * 1024;

/// An AuthZEN search: the question with the searched-for entity's id (or action name) left
/// open, and where the previous page ended.
#[derive(Debug, Clone)]
pub struct Search {
    pub kind: authz::SearchKind,
    /// The question; the searched-for member's id (or, for action search, name) is
    /// replaced by each candidate.
    pub question: ZenQuestion,
    /// The previous page's `next_token` (empty: from the start).
    pub token: String,
    pub limit: usize,
}

/// One page of search results: the ids (action names) allowed, and the token of the next
/// page (empty on the last).
pub struct Found {
    pub ids: Vec<String>,
    pub next_token: String,
}

/// Answer a search: every candidate the PDP may return (Portcullis users for subject type
/// `user`; otherwise what the plugin's `candidates` enumerates), each asked as an
/// evaluation, allowed ones returned in order. Bounded: at most [`SEARCH_SCAN`] users or
/// plugin candidates are asked per request (the rest is the next page), each with a
/// question of at most [`MAX_SEARCH_QUESTION_BYTES`].
pub async fn search(app: &App, pdp: &Pdp, s: Search) -> AppResult<Found> {
    let nothing = || Found {
        ids: Vec::new(),
        next_token: String::new(),
    };
    let of_type = match s.kind {
        authz::SearchKind::Subject => s.question.subject.kind.clone(),
        authz::SearchKind::Resource => s.question.resource.kind.clone(),
        authz::SearchKind::Action => s.question.resource.kind.clone(),
    };
    let limit = s.limit.clamp(1, MAX_SEARCH_PAGE);
    let users = s.kind == authz::SearchKind::Subject && of_type == USER_TYPE;
    // The subject of a resource or action search is the same for every candidate: found
    // once. An unknown or disabled user may do nothing.
    let fixed = if s.kind != authz::SearchKind::Subject && s.question.subject.kind == USER_TYPE {
        match resolve_user(app, &s.question.subject.id).await? {
            Ok(subject) => Some(subject.principal.clone()),
            Err(_) => return Ok(nothing()),
        }
    } else {
        None
    };
    // Plugin candidates are paged by offset (`o:N`), users by the last username looked at
    // (`u:NAME`): a token of the other form starts from the beginning.
    let offset: usize = s
        .token
        .strip_prefix("o:")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    // The candidates from where the token says (with the principal of each user), and the
    // next page's token when the store has users beyond this scan.
    let (candidates, beyond_scan): (Vec<Candidate>, Option<String>) = if users {
        let after = s.token.strip_prefix("u:").unwrap_or("");
        let listed = app
            .store
            .list_users(None, Some(after), SEARCH_SCAN as i64)
            .await?;
        let beyond = (listed.len() == SEARCH_SCAN)
            .then(|| listed.last().map(|u| format!("u:{}", u.username)))
            .flatten();
        // Each listed user is its own subject: system users and users of accounts that
        // are not enabled are never found.
        let usable: Vec<Candidate> = listed
            .into_iter()
            .filter_map(|u| usable(subject_of(u)).ok())
            .map(|subject| {
                (
                    subject.user.username.clone(),
                    Some(subject.principal.clone()),
                )
            })
            .collect();
        (usable, beyond)
    } else {
        let plugin = match pdp {
            Pdp::Policy(p) => p.authz.active().plugin.clone(),
            Pdp::Management => app.authz.active().plugin.clone(),
        };
        let listed = match plugin.candidates(s.kind, &of_type).await {
            Ok(listed) => listed.unwrap_or_default(),
            Err(failed) => {
                // As a plugin that cannot enumerate: nothing found (logged, not hidden).
                tracing::warn!(policy = pdp.name(), kind = ?s.kind, of_type = %names::printable(&of_type, 128), reasons = ?failed.reasons, "the plugin failed to enumerate search candidates");
                Vec::new()
            }
        };
        // At most SEARCH_SCAN candidates are asked per request; the rest is the next
        // page.
        let total = listed.len();
        let listed = listed
            .into_iter()
            .skip(offset)
            .take(SEARCH_SCAN)
            .map(|c| (c, fixed.clone()))
            .collect();
        let beyond = (total > offset.saturating_add(SEARCH_SCAN))
            .then(|| format!("o:{}", offset + SEARCH_SCAN));
        (listed, beyond)
    };
    let mut ids = Vec::new();
    let mut next_token = beyond_scan.unwrap_or_default();
    for (i, (candidate, principal)) in candidates.iter().enumerate() {
        if ids.len() == limit {
            // Candidates 0..i were asked: the next page starts at candidate i.
            next_token = if users {
                format!("u:{}", candidates[i - 1].0)
            } else {
                format!("o:{}", offset + i)
            };
            break;
        }
        let mut q = s.question.clone();
        match s.kind {
            authz::SearchKind::Subject => q.subject.id = candidate.clone(),
            authz::SearchKind::Resource => q.resource.id = candidate.clone(),
            authz::SearchKind::Action => q.action = candidate.clone(),
        }
        // A subject of another type than `user` goes to the plugin as given.
        let principal = if q.subject.kind == USER_TYPE {
            match principal {
                Some(p) => Some(p.clone()),
                None => continue,
            }
        } else {
            None
        };
        let (d, _) = ask_zen(app, pdp, q, principal).await;
        if d.allowed {
            ids.push(candidate.clone());
        }
    }
    Ok(Found { ids, next_token })
}
