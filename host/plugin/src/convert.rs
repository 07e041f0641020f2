//! The host's requests in each version of the world's types.
//!
//! - A management call or `/v1/authorize` ([`authz::Request`]) reaches a 0.1.0 plugin as
//!   it is; a 0.2.0 plugin sees it AuthZEN-shaped: subject `user`/username with the
//!   principal, resource `kind`/`id` with properties `account` and the target's
//!   attributes (string values; `account` wins over an attribute of that name), context as
//!   a JSON object of strings.
//! - An application policy's question ([`authz::Query`]) reaches a 0.2.0 plugin as it is;
//!   a 0.1.0 plugin (only for Portcullis users) sees the resource's `account` property as
//!   the target's account and every other property, and every context member, as a string
//!   attribute: strings as they are, other JSON values as their JSON text. Action
//!   properties have no place in 0.1.0 and are not passed.

use crate::sandbox::bindings::{v1, v2};
use portcullis_core::authz::{self, Decision, EMPTY_OBJECT};
use portcullis_core::AccountType;

use v1::portcullis::authorizer::types as w1;
use v2::portcullis::authorizer::types as w2;

pub(crate) fn principal_to_v1(p: &authz::Principal) -> w1::Principal {
    w1::Principal {
        username: p.username.clone(),
        account: p.account.clone(),
        account_type: match p.account_type {
            AccountType::Admin => w1::AccountType::Admin,
            AccountType::User => w1::AccountType::User,
            AccountType::Service => w1::AccountType::Service,
        },
        roles: p.roles.clone(),
        attributes: p.attributes.clone(),
    }
}

pub(crate) fn principal_to_v2(p: &authz::Principal) -> w2::Principal {
    w2::Principal {
        username: p.username.clone(),
        account: p.account.clone(),
        account_type: match p.account_type {
            AccountType::Admin => w2::AccountType::Admin,
            AccountType::User => w2::AccountType::User,
            AccountType::Service => w2::AccountType::Service,
        },
        roles: p.roles.clone(),
        attributes: p.attributes.clone(),
        email: p.email.clone(),
    }
}

pub(crate) fn request_to_v1(r: &authz::Request) -> w1::Request {
    w1::Request {
        principal: principal_to_v1(&r.principal),
        action: r.action.clone(),
        target: w1::Target {
            kind: r.target.kind.clone(),
            id: r.target.id.clone(),
            account: r.target.account.clone(),
            attributes: r.target.attributes.clone(),
        },
        context: r.context.clone(),
    }
}

/// String pairs as the text of a JSON object, members sorted (later pairs win), as the
/// host writes every object a plugin sees.
fn object_text<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let map: std::collections::BTreeMap<&str, &str> = pairs.into_iter().collect();
    if map.is_empty() {
        return EMPTY_OBJECT.into();
    }
    serde_json::to_string(&map).unwrap_or_else(|_| EMPTY_OBJECT.into())
}

pub(crate) fn request_to_v2(r: &authz::Request) -> w2::Request {
    let attributes = r
        .target
        .attributes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(r.target.account.as_deref().map(|a| ("account", a)));
    w2::Request {
        subject: w2::Entity {
            type_: "user".into(),
            id: r.principal.username.clone(),
            properties: EMPTY_OBJECT.into(),
        },
        principal: Some(principal_to_v2(&r.principal)),
        action: w2::Action {
            name: r.action.clone(),
            properties: EMPTY_OBJECT.into(),
        },
        resource: w2::Entity {
            type_: r.target.kind.clone(),
            id: r.target.id.clone(),
            properties: object_text(attributes),
        },
        context: object_text(r.context.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    }
}

pub(crate) fn query_to_v1(
    q: &authz::Query,
    principal: &std::sync::Arc<authz::Principal>,
) -> w1::Request {
    request_to_v1(&q.to_request(principal))
}

pub(crate) fn query_to_v2(q: &authz::Query) -> w2::Request {
    w2::Request {
        subject: w2::Entity {
            type_: q.subject.kind.clone(),
            id: q.subject.id.clone(),
            properties: q.subject.properties.clone(),
        },
        principal: q.principal.as_deref().map(principal_to_v2),
        action: w2::Action {
            name: q.action.clone(),
            properties: q.action_properties.clone(),
        },
        resource: w2::Entity {
            type_: q.resource.kind.clone(),
            id: q.resource.id.clone(),
            properties: q.resource.properties.clone(),
        },
        context: q.plugin_context(),
    }
}

pub(crate) fn decision_v1(d: w1::Decision) -> Decision {
    Decision {
        allowed: d.allowed,
        reasons: d.reasons,
        ttl_ms: d.ttl_ms,
        failure: None,
    }
}

pub(crate) fn decision_v2(d: w2::Decision) -> Decision {
    Decision {
        allowed: d.allowed,
        reasons: d.reasons,
        ttl_ms: d.ttl_ms,
        failure: None,
    }
}

pub(crate) fn event_v1(e: &authz::Event) -> w1::Event {
    match e {
        authz::Event::AccountCreated(n) => w1::Event::AccountCreated(n.clone()),
        authz::Event::AccountDeleted(n) => w1::Event::AccountDeleted(n.clone()),
        authz::Event::UserCreated(p) => w1::Event::UserCreated(principal_to_v1(p)),
        authz::Event::UserDeleted(n) => w1::Event::UserDeleted(n.clone()),
    }
}

pub(crate) fn event_v2(e: &authz::Event) -> w2::Event {
    match e {
        authz::Event::AccountCreated(n) => w2::Event::AccountCreated(n.clone()),
        authz::Event::AccountDeleted(n) => w2::Event::AccountDeleted(n.clone()),
        authz::Event::UserCreated(p) => w2::Event::UserCreated(principal_to_v2(p)),
        authz::Event::UserDeleted(n) => w2::Event::UserDeleted(n.clone()),
    }
}
