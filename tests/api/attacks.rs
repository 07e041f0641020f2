//! Regression tests for the attacks of the security review (docs/security.md, threat
//! model): each is named after the attack it pins and fails on a server without the fix.

use portcullis_server::config::BootstrapMode;
use portcullis_tests::{TestServer, ADMIN_PASSWORD};
use serde_json::json;

fn configured(c: &mut portcullis_server::config::Config) {
    c.bootstrap.mode = BootstrapMode::Configured;
    c.bootstrap.admin_password = ADMIN_PASSWORD.into();
}

portcullis_tests::both!(
    async fn made_up_http_methods_create_no_metric_series() {
        let s = TestServer::configured().await;
        for i in 0..30 {
            let method = reqwest::Method::from_bytes(format!("XABC{i}").as_bytes()).unwrap();
            let r = s
                .http
                .request(method, format!("{}/health", s.base))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_client_error(), "{}", r.status());
        }
        let metrics = s.call("GET", "/metrics", None, None).await.text;
        assert!(!metrics.contains("XABC"), "{metrics}");
        let series = metrics
            .lines()
            .filter(|l| l.starts_with("portcullis_http_requests_total{"))
            .count();
        assert!(series <= 4, "{series} series: {metrics}");
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn iact_through_a_trusted_proxy_is_not_handed_to_a_forwarded_outside_client() {
        let s = TestServer::start_with(|c| {
            c.bootstrap.mode = BootstrapMode::Iact;
            c.rate_limit.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        })
        .await;
        let ask = |xff: Option<&'static str>| {
            let mut r = s.http.get(format!("{}/admin/retrieve-iact", s.base));
            if let Some(x) = xff {
                r = r.header("x-forwarded-for", x);
            }
            async move { r.send().await.unwrap().status().as_u16() }
        };
        // The proxy forwards for a client outside `iact_subnets`: no token.
        assert_eq!(ask(Some("203.0.113.9")).await, 404);
        // The proxy's own request (a client on the allowed subnet) still gets it.
        assert_eq!(ask(None).await, 200);
        assert_eq!(ask(Some("127.0.0.1")).await, 200);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn re_activation_with_a_deny_rule_is_not_undone_by_the_decision_cache() {
        let s = TestServer::start_with(configured).await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        s.user(&k, "acme", "rita", "rita passphrase 1", &[]).await;
        let bytes = std::fs::read(portcullis_plugin::programs::paths::HOSTILE).unwrap();
        let up = s
            .http
            .post(format!("{}/v1/plugins?name=hostile", s.base))
            .bearer_auth(&k)
            .body(bytes)
            .send()
            .await
            .unwrap();
        let id = up.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let path = format!("/v1/plugins/{id}/activate");
        let activate =
            |settings: serde_json::Value| s.post(&path, &k, json!({ "settings": settings }));
        // `ttl` mode allows with ttl-ms 60 000: the answer is cached.
        assert_eq!(activate(json!({"mode": "ttl"})).await.status, 200);
        let ask = json!({"subject": {"username": "rita"}, "action": "read", "resource": {"kind": "document", "id": "1"}});
        for _ in 0..2 {
            let a = s.post("/v1/authorize", &k, ask.clone()).await;
            assert_eq!(a.body["decision"], "allow", "{}", a.text);
        }
        // The same component, re-activated with an emergency deny rule: denied at once.
        let a = activate(json!({"mode": "allow", "deny_actions": ["read"]})).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let a = s.post("/v1/authorize", &k, ask.clone()).await;
        assert_eq!(a.body["decision"], "deny", "{}", a.text);
        s.stop().await;
    }
);
