//! A decision through the native plugin (warm instance; fresh instance) next to the same
//! rules as plain Rust and an equivalent policy evaluated in-process by the Cedar engine
//! (`cedar-policy`, the peer), measured side by side in one run. See docs/benchmarks.md.
//!
//! Run: `cargo bench -p portcullis-plugin --bench decision`

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis_core::authz::{Principal, Request, Target};
use portcullis_core::AccountType;
use portcullis_plugin::{Limits, Runtime};
use std::hint::black_box;

/// A user-account principal reading another user of its own account: the native rules
/// walk past the admin, external and self checks before allowing.
fn request() -> Request {
    Request {
        principal: std::sync::Arc::new(Principal {
            username: "jane".into(),
            account: "acme".into(),
            account_type: AccountType::User,
            roles: vec!["acme:read:*".into()],
            attributes: vec![("team".into(), "red".into())],
            email: None,
        }),
        action: "users.read".into(),
        target: Target::new("user", "joe", Some("acme")),
        context: vec![("portcullis.origin".into(), "management".into())],
    }
}

/// The plain-Rust peer reads the same `Request` the plugin is handed.
#[path = "../tests/common/plain.rs"]
mod common;

fn plain(r: &Request) -> bool {
    common::plain(r).allowed
}

/// The native rules that decide this request, as Cedar policies: admin and service
/// accounts may do everything; a user-account principal may read and list inside its own
/// account; anyone may read itself.
const CEDAR_POLICIES: &str = r#"
permit(principal, action, resource)
when { principal.account_type == "admin" || principal.account_type == "service" };

permit(principal, action in [Action::"users.read", Action::"users.list", Action::"accounts.read"], resource)
when { principal.account_type == "user" && resource has account && resource.account == principal.account };

permit(principal, action == Action::"users.read", resource)
when { resource.kind == "user" && resource.id == principal.username };
"#;

/// One Cedar decision for the same `Request`, built per call as the plugin path marshals
/// per call: principal and resource entities with their attributes, then `is_authorized`.
fn cedar(
    r: &Request,
    policies: &cedar_policy::PolicySet,
    authorizer: &cedar_policy::Authorizer,
) -> bool {
    use cedar_policy::{
        Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
        RestrictedExpression,
    };
    use std::collections::{HashMap, HashSet};
    use std::str::FromStr;
    let uid = |ty: &str, id: &str| {
        EntityUid::from_type_name_and_id(EntityTypeName::from_str(ty).unwrap(), EntityId::new(id))
    };
    let text = |s: &str| RestrictedExpression::new_string(s.to_string());
    let principal_uid = uid("User", &r.principal.username);
    let principal = Entity::new(
        principal_uid.clone(),
        HashMap::from([
            ("username".to_string(), text(&r.principal.username)),
            ("account".to_string(), text(&r.principal.account)),
            (
                "account_type".to_string(),
                text(r.principal.account_type.as_str()),
            ),
        ]),
        HashSet::new(),
    )
    .unwrap();
    let resource_uid = uid("Target", &format!("{}/{}", r.target.kind, r.target.id));
    let mut attrs = HashMap::from([
        ("kind".to_string(), text(&r.target.kind)),
        ("id".to_string(), text(&r.target.id)),
    ]);
    if let Some(account) = &r.target.account {
        attrs.insert("account".to_string(), text(account));
    }
    let resource = Entity::new(resource_uid.clone(), attrs, HashSet::new()).unwrap();
    let entities = Entities::from_entities([principal, resource], None).unwrap();
    let request = cedar_policy::Request::new(
        principal_uid,
        uid("Action", &r.action),
        resource_uid,
        Context::empty(),
        None,
    )
    .unwrap();
    authorizer
        .is_authorized(&request, policies, &entities)
        .decision()
        == Decision::Allow
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime = Runtime::new().unwrap();
    let native = portcullis_plugin::builtin("native").unwrap();
    let warm = rt
        .block_on(runtime.load("builtin:native", native, "{}", Limits::default()))
        .unwrap();
    let fresh = rt
        .block_on(runtime.load(
            "builtin:native",
            native,
            "{}",
            Limits {
                max_calls_per_instance: 1,
                ..Limits::default()
            },
        ))
        .unwrap();
    let req = request();
    assert!(
        rt.block_on(warm.decide(&req)).allowed && plain(&req),
        "both paths allow this request"
    );

    let policies: cedar_policy::PolicySet = CEDAR_POLICIES.parse().unwrap();
    let authorizer = cedar_policy::Authorizer::new();
    assert!(
        cedar(&req, &policies, &authorizer),
        "the Cedar peer allows it too"
    );
    let mut denied = req.clone();
    denied.target = Target::new("user", "joe", Some("globex"));
    assert!(
        !cedar(&denied, &policies, &authorizer)
            && !rt.block_on(warm.decide(&denied)).allowed
            && !plain(&denied),
        "and all three deny another account's user"
    );

    let mut g = c.benchmark_group("decision");
    g.bench_function("plain_rust_rules", |b| b.iter(|| plain(black_box(&req))));
    g.bench_function("cedar_policy_peer", |b| {
        b.iter(|| cedar(black_box(&req), &policies, &authorizer))
    });
    g.bench_function("native_plugin_warm", |b| {
        b.to_async(&rt)
            .iter(|| async { warm.decide(black_box(&req)).await.allowed })
    });
    g.bench_function("native_plugin_fresh_instance", |b| {
        b.to_async(&rt)
            .iter(|| async { fresh.decide(black_box(&req)).await.allowed })
    });
    g.bench_function("native_plugin_warm_batch_100", |b| {
        b.to_async(&rt).iter(|| async {
            let mut allowed = 0;
            for _ in 0..100 {
                allowed += warm.decide(black_box(&req)).await.allowed as u32;
            }
            allowed
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
