//! An AuthZEN evaluation through an application policy next to the same decision asked of
//! `POST /v1/authorize` (SPEC §11, docs/benchmarks.md: ≤ 1.2×), side by side in one run,
//! through the real router (no socket). Both servers' plugin is `builtin:native` and the
//! question is the same: may `rita` (role `acme:read:*`) read `document/42` of `acme`.
//!
//! - `authzen/v1_authorize`: `POST /v1/authorize` (the management authorizer);
//! - `authzen/policy_evaluation`: `POST /policies/docs/access/v1/evaluation`, the policy
//!   `docs` running `builtin:native`;
//! - `authzen/root_evaluation`: `POST /access/v1/evaluation` (the management authorizer
//!   through AuthZEN).
//!
//! Run: `cargo bench -p portcullis-server --bench authzen`

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::Request;
use criterion::{criterion_group, criterion_main, Criterion};
use portcullis_app::config::{BootstrapMode, Config};
use portcullis_core::AccountType;
use portcullis_store::NewUser;
use std::net::SocketAddr;
use tower::ServiceExt;

const PASSWORD: &str = "benchmark passphrase";

async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    key: &str,
    body: &str,
) -> (u16, String) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (router, key) = rt.block_on(async {
        let mut config = Config::load(None, Vec::new(), Vec::new()).unwrap();
        config.data_dir = dir.path().join("data");
        config.bootstrap.mode = BootstrapMode::Configured;
        config.bootstrap.admin_password = PASSWORD.into();
        let state = portcullis_server::prepare(config).await.unwrap();
        state
            .store
            .create_account("acme", None, AccountType::User)
            .await
            .unwrap();
        state
            .store
            .create_user(&NewUser {
                username: "rita".into(),
                account: "acme".into(),
                roles: vec!["acme:read:*".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        let router = portcullis_server::routes::router(state)
            .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
        let login = serde_json::json!({ "username": "admin", "password": PASSWORD }).to_string();
        let (_, text) = call(&router, "POST", "/v1/login", "", &login).await;
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let key = v["api_key"].as_str().unwrap().to_string();
        let (status, text) = call(
            &router,
            "PUT",
            "/v1/policies/docs",
            &key,
            r#"{"plugin":"builtin:native"}"#,
        )
        .await;
        assert_eq!(status, 201, "{text}");
        (router, key)
    });
    let authorize = r#"{"subject":{"username":"rita"},"action":"read","resource":{"kind":"document","id":"42","account":"acme"}}"#;
    let zen = r#"{"subject":{"type":"user","id":"rita"},"action":{"name":"read"},"resource":{"type":"document","id":"42","properties":{"account":"acme"}}}"#;
    // The same decision on every path.
    let (s, t) = rt.block_on(call(&router, "POST", "/v1/authorize", &key, authorize));
    assert!(s == 200 && t.contains("\"allow\""), "{t}");
    for path in [
        "/policies/docs/access/v1/evaluation",
        "/access/v1/evaluation",
    ] {
        let (s, t) = rt.block_on(call(&router, "POST", path, &key, zen));
        assert_eq!((s, t.as_str()), (200, r#"{"decision":true}"#), "{path}");
    }
    let mut g = c.benchmark_group("authzen");
    g.bench_function("v1_authorize", |b| {
        b.to_async(&rt)
            .iter(|| call(&router, "POST", "/v1/authorize", &key, authorize))
    });
    g.bench_function("policy_evaluation", |b| {
        b.to_async(&rt).iter(|| {
            call(
                &router,
                "POST",
                "/policies/docs/access/v1/evaluation",
                &key,
                zen,
            )
        })
    });
    g.bench_function("root_evaluation", |b| {
        b.to_async(&rt)
            .iter(|| call(&router, "POST", "/access/v1/evaluation", &key, zen))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
