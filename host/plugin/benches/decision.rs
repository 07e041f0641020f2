//! A decision through the native plugin (warm instance; fresh instance) next to the same
//! rules as plain Rust, measured side by side in one run. See docs/benchmarks.md.
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
        principal: Principal {
            username: "jane".into(),
            account: "acme".into(),
            account_type: AccountType::User,
            roles: vec!["acme:read:*".into()],
            attributes: vec![("team".into(), "red".into())],
        },
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

    let mut g = c.benchmark_group("decision");
    g.bench_function("plain_rust_rules", |b| b.iter(|| plain(black_box(&req))));
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
