//! Rate limiting of login and bootstrap endpoints per client address.

use portcullis_tests::{TestServer, ADMIN_PASSWORD};
use serde_json::json;

async fn login_with_xff(s: &TestServer, xff: Option<&str>) -> (u16, Option<String>) {
    let mut req = s
        .http
        .post(format!("{}/v1/login", s.base))
        .json(&json!({"username": "nobody", "password": "wrong password"}));
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    let r = req.send().await.unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), retry)
}

portcullis_tests::both!(
    async fn login_attempts_are_limited_per_address_and_xff_cannot_dodge_it() {
        let s = TestServer::start_with(|c| {
            c.bootstrap.mode = portcullis_app::config::BootstrapMode::Configured;
            c.bootstrap.admin_password = ADMIN_PASSWORD.into();
            c.rate_limit.login_per_minute = 5;
        })
        .await;
        for _ in 0..5 {
            assert_eq!(login_with_xff(&s, None).await.0, 401);
        }
        let (status, retry) = login_with_xff(&s, None).await;
        assert_eq!(status, 429);
        assert!(retry.unwrap().parse::<u64>().unwrap() >= 1);
        // A forged X-Forwarded-For from an untrusted peer changes nothing.
        for i in 0..5 {
            assert_eq!(
                login_with_xff(&s, Some(&format!("198.51.100.{i}"))).await.0,
                429
            );
        }
        let a = s
            .call(
                "POST",
                "/v1/login",
                None,
                Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
            )
            .await;
        assert_eq!(
            (a.status, a.code()),
            (429, "rate_limited"),
            "even the right password waits"
        );
        // The bootstrap endpoints share the limit and keep their own shape.
        let a = s
            .call(
                "POST",
                "/admin/initial-admin-user?token=x",
                None,
                Some(json!({})),
            )
            .await;
        assert_eq!((a.status, a.body["status"].as_str()), (429, Some("error")));
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn behind_a_trusted_proxy_each_client_has_its_own_quota() {
        let s = TestServer::start_with(|c| {
            c.bootstrap.mode = portcullis_app::config::BootstrapMode::Configured;
            c.bootstrap.admin_password = ADMIN_PASSWORD.into();
            c.rate_limit.login_per_minute = 2;
            c.rate_limit.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        })
        .await;
        for _ in 0..2 {
            assert_eq!(login_with_xff(&s, Some("203.0.113.1")).await.0, 401);
        }
        assert_eq!(login_with_xff(&s, Some("203.0.113.1")).await.0, 429);
        // Another client behind the same proxy is not affected; a client cannot pretend to
        // be another by prepending addresses (the right-most untrusted hop counts).
        assert_eq!(login_with_xff(&s, Some("203.0.113.2")).await.0, 401);
        assert_eq!(
            login_with_xff(&s, Some("203.0.113.2, 203.0.113.1")).await.0,
            429
        );
        s.stop().await;
    }
);
