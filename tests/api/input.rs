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
        // The JSON media types axum takes, and no other: with parameters, `+json`.
        for (content_type, status) in [
            ("application/json; charset=utf-8", 201),
            ("application/vnd.acme+json", 201),
            ("text/json", 415),
            ("application/jsonx", 415),
        ] {
            let r = s
                .http
                .post(format!("{}/v1/accounts", s.base))
                .bearer_auth(&k)
                .header("content-type", content_type)
                .body(format!(r#"{{"name":"ct{status}{}"}}"#, content_type.len()))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), status, "{content_type}");
        }
        // A refused body's message names the field's whole path.
        let a = s
            .post(
                "/v1/authorize",
                &k,
                json!({"subject": {"username": 7}, "action": "read", "resource": {"kind": "doc", "id": "1"}}),
            )
            .await;
        assert_eq!((a.status, a.code()), (422, "invalid_request"));
        assert!(a.message().contains("subject.username"), "{}", a.message());
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

portcullis_tests::both!(
    async fn raw_bodies_over_their_limits_get_413_in_our_shape() {
        let s = TestServer::start_with(|c| {
            c.bootstrap.mode = portcullis_app::config::BootstrapMode::Configured;
            c.bootstrap.admin_password = portcullis_tests::ADMIN_PASSWORD.into();
            c.max_import_bytes = 1000;
            c.authorizer.max_plugin_bytes = 1000;
        })
        .await;
        let k = s.admin_key().await;
        for path in ["/v1/users/import", "/v1/plugins?name=big"] {
            let r = s
                .http
                .post(format!("{}{path}", s.base))
                .bearer_auth(&k)
                .body(vec![b'a'; 5000])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 413, "{path}");
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "payload_too_large", "{path}");
        }
        s.stop().await;
    }
);
