//! Bad input: unknown fields, wrong types, oversized bodies, wrong content types.

use portcullis_tests::TestServer;
use serde_json::json;

portcullis_tests::both!(
    async fn unknown_fields_wrong_types_and_big_bodies() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        let a = s
            .call(
                "POST",
                "/v1/login",
                None,
                Some(json!({"username":"admin","password":"x","remember":true})),
            )
            .await;
        assert_eq!((a.status, a.code()), (422, "invalid_request"));
        assert!(a.message().contains("remember"), "{}", a.message());
        let a = s
            .call("POST", "/v1/login", None, Some(json!({"username":"admin"})))
            .await;
        assert!(a.message().contains("password"), "{}", a.message());
        let a = s
            .call("POST", "/v1/login", None, Some(json!(["admin"])))
            .await;
        assert_eq!(a.status, 422);
        // Not JSON at all.
        let r = s
            .http
            .post(format!("{}/v1/accounts", s.base))
            .bearer_auth(&k)
            .header("content-type", "application/json")
            .body("{nope")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let r = s
            .http
            .post(format!("{}/v1/accounts", s.base))
            .bearer_auth(&k)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415);
        // Over 1 MiB: 413.
        let big = json!({"name": "x".repeat(1024 * 1024 + 10)});
        let a = s.post("/v1/accounts", &k, big).await;
        assert_eq!(
            (a.status, a.code()),
            (413, "payload_too_large"),
            "{}",
            a.text
        );
        // Unknown routes.
        let a = s.get("/v1/nothing", &k).await;
        assert_eq!((a.status, a.code()), (404, "not_found"));
        // Health and readiness.
        let a = s.call("GET", "/health", None, None).await;
        assert_eq!(a.body["status"], "ok");
        let a = s.call("GET", "/ready", None, None).await;
        assert_eq!(a.body["status"], "ready");
        s.stop().await;
    }
);
