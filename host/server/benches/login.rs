//! Login timing and throughput, side by side in one run (docs/security.md,
//! docs/benchmarks.md):
//!
//! - `login_failure/*`: the four failure kinds of §3.2 — unknown user, wrong password,
//!   disabled account, locked user — through the real router (no socket). They must take
//!   the same time within noise: each does one argon2 verification.
//! - `login_vs_argon2/*`: a successful login next to a raw argon2id verification.
//! - `login_throughput/*`: 4 × cores successful logins at once (the server's hashing pool:
//!   one thread per core) next to as many raw verifications on a pool of as many threads —
//!   the time per batch gives the throughput ratio (SPEC §9: login ≥ 90 % of raw argon2).
//! - `key_verification/*`: `POST /v1/authorize` with a recently verified key and subject
//!   served from memory, next to the same request on a server with the cache off
//!   (`auth.key_cache_ttl = 0s`: two database round trips).
//!
//! Run: `cargo bench -p portcullis-server --bench login`

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::Request;
use criterion::{criterion_group, criterion_main, Criterion};
use portcullis_app::config::{BootstrapMode, Config};
use portcullis_core::{password, AccountState, AccountType};
use portcullis_store::NewUser;
use std::net::SocketAddr;
use std::time::Duration;
use tower::ServiceExt;

const PASSWORD: &str = "benchmark passphrase";

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (router, phc) = rt.block_on(async {
        let mut config = Config::load(None, Vec::new(), Vec::new()).unwrap();
        config.data_dir = dir.path().join("data");
        config.bootstrap.mode = BootstrapMode::Configured;
        config.bootstrap.admin_password = PASSWORD.into();
        config.auth.lockout_threshold = u32::MAX;
        config.rate_limit.login_per_minute = u32::MAX;
        let state = portcullis_server::prepare(config).await.unwrap();
        let store = &state.store;
        store
            .create_account("acme", None, AccountType::User)
            .await
            .unwrap();
        store
            .create_account("off", None, AccountType::User)
            .await
            .unwrap();
        let phc = password::hash(PASSWORD);
        for (name, account) in [("jane", "acme"), ("locked", "acme"), ("bob", "off")] {
            let new = NewUser {
                username: name.into(),
                account: account.into(),
                password_hash: Some(phc.clone()),
                ..Default::default()
            };
            store.create_user(&new).await.unwrap();
        }
        store
            .set_account_state("off", AccountState::Disabled)
            .await
            .unwrap();
        store
            .reserve_password_attempt("locked", 1, 24 * 3600 * 1000)
            .await
            .unwrap();
        let router = portcullis_server::routes::router(state)
            .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
        (router, phc)
    });
    let login = |user: &'static str, pass: &'static str| {
        let router = router.clone();
        async move {
            let body = serde_json::json!({ "username": user, "password": pass }).to_string();
            let req = Request::post("/v1/login")
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            router.oneshot(req).await.unwrap().status().as_u16()
        }
    };
    assert_eq!(rt.block_on(login("jane", PASSWORD)), 200);
    for (u, p) in [
        ("nobody", PASSWORD),
        ("jane", "wrong password"),
        ("bob", PASSWORD),
        ("locked", PASSWORD),
    ] {
        assert_eq!(rt.block_on(login(u, p)), 401, "{u}");
    }

    let mut g = c.benchmark_group("login_failure");
    g.sample_size(30).measurement_time(Duration::from_secs(8));
    g.bench_function("unknown_user", |b| {
        b.to_async(&rt).iter(|| login("nobody", PASSWORD))
    });
    g.bench_function("wrong_password", |b| {
        b.to_async(&rt).iter(|| login("jane", "wrong password"))
    });
    g.bench_function("disabled_account", |b| {
        b.to_async(&rt).iter(|| login("bob", PASSWORD))
    });
    g.bench_function("locked_user", |b| {
        b.to_async(&rt).iter(|| login("locked", PASSWORD))
    });
    g.finish();

    let mut g = c.benchmark_group("login_vs_argon2");
    g.sample_size(30).measurement_time(Duration::from_secs(8));
    g.bench_function("raw_argon2id_verify", |b| {
        b.iter(|| password::verify(PASSWORD, &phc).unwrap())
    });
    g.bench_function("login_success", |b| {
        b.to_async(&rt).iter(|| login("jane", PASSWORD))
    });
    g.finish();

    let batch = 4 * cores;
    let raw_pool = portcullis_app::hashing::HashPool::new(cores, usize::MAX, usize::MAX);
    let mut g = c.benchmark_group("login_throughput");
    g.sample_size(20).measurement_time(Duration::from_secs(15));
    g.bench_function(
        format!("raw_argon2id_verify_x{batch}_on_{cores}_threads"),
        |b| {
            b.to_async(&rt).iter(|| async {
                let jobs = (0..batch).map(|_| {
                    let phc = phc.clone();
                    raw_pool.run("bench", move || password::verify(PASSWORD, &phc).is_ok())
                });
                futures::future::join_all(jobs).await
            })
        },
    );
    g.bench_function(format!("login_x{batch}_concurrent"), |b| {
        b.to_async(&rt).iter(|| async {
            futures::future::join_all((0..batch).map(|_| login("jane", PASSWORD))).await
        })
    });
    g.finish();

    // Two servers, the same data: one verifies keys from memory, one never caches.
    let authorize_router = |ttl: Duration| {
        let dir = tempfile::tempdir().unwrap();
        rt.block_on(async move {
            let mut config = Config::load(None, Vec::new(), Vec::new()).unwrap();
            config.data_dir = dir.path().join("data");
            config.bootstrap.mode = BootstrapMode::Configured;
            config.bootstrap.admin_password = PASSWORD.into();
            config.auth.key_cache_ttl = ttl;
            let state = portcullis_server::prepare(config).await.unwrap();
            state
                .store
                .create_account("acme", None, AccountType::User)
                .await
                .unwrap();
            let rita = NewUser {
                username: "rita".into(),
                account: "acme".into(),
                roles: vec!["acme:read:*".into()],
                ..Default::default()
            };
            state.store.create_user(&rita).await.unwrap();
            let router = portcullis_server::routes::router(state)
                .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
            let body = serde_json::json!({ "username": "admin", "password": PASSWORD });
            let req = Request::post("/v1/login")
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap();
            let res = router.clone().oneshot(req).await.unwrap();
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            let key = v["api_key"].as_str().unwrap().to_string();
            (router, key, dir)
        })
    };
    let authorize = |router: &axum::Router, key: &str| {
        let req = Request::post("/v1/authorize")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::from(
                r#"{"subject":{"username":"rita"},"action":"read","resource":{"kind":"document","id":"42","account":"acme"}}"#,
            ))
            .unwrap();
        let router = router.clone();
        async move { router.oneshot(req).await.unwrap().status().as_u16() }
    };
    let (cached, cached_key, _d1) = authorize_router(Duration::from_secs(2));
    let (uncached, uncached_key, _d2) = authorize_router(Duration::ZERO);
    assert_eq!(rt.block_on(authorize(&cached, &cached_key)), 200);
    assert_eq!(rt.block_on(authorize(&uncached, &uncached_key)), 200);
    let mut g = c.benchmark_group("key_verification");
    g.bench_function("authorize_key_and_subject_from_memory", |b| {
        b.to_async(&rt).iter(|| authorize(&cached, &cached_key))
    });
    g.bench_function("authorize_key_and_subject_from_the_store", |b| {
        b.to_async(&rt).iter(|| authorize(&uncached, &uncached_key))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
