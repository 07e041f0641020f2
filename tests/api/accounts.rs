//! Accounts and their state machine (§2, §4).

use portcullis_tests::TestServer;
use serde_json::json;

portcullis_tests::both!(
    async fn create_get_list_and_conflicts() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        let a = s
            .post(
                "/v1/accounts",
                &k,
                json!({"name":"acme","email":"ops@acme.io"}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        assert_eq!(a.body["type"], "user");
        assert_eq!(a.body["state"], "enabled");
        let a = s.post("/v1/accounts", &k, json!({"name":"acme"})).await;
        assert_eq!((a.status, a.code()), (409, "already_exists"));
        let a = s
            .post("/v1/accounts", &k, json!({"name":"bots","type":"service"}))
            .await;
        assert_eq!(a.body["type"], "service");
        for (bad, field) in [
            (json!({"name":"Acme"}), "name"),
            (json!({"name":"-x"}), "name"),
            (json!({"name":"ok","type":"root"}), "type"),
            (json!({"name":"ok","email":"nope"}), "email"),
            (json!({"name":"ok","colour":"red"}), "colour"),
            (json!({"email":"a@b.org"}), "name"),
            (json!({"name": 5}), "name"),
        ] {
            let a = s.post("/v1/accounts", &k, bad.clone()).await;
            assert_eq!(a.status, 422, "{bad}: {}", a.text);
            assert!(a.message().contains(field), "{bad}: {}", a.message());
        }
        // A reserved name is taken: 409, like any existing name.
        let a = s.post("/v1/accounts", &k, json!({"name":"admin"})).await;
        assert_eq!((a.status, a.code()), (409, "already_exists"), "{}", a.text);
        assert!(a.message().contains("reserved"), "{}", a.message());
        let one = s.get("/v1/accounts/acme", &k).await;
        assert_eq!(one.body["email"], "ops@acme.io");
        assert_eq!(s.get("/v1/accounts/nope", &k).await.status, 404);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn pagination_walks_every_account_once() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        for i in 0..7 {
            s.account(&k, &format!("acct{i}"), "user").await;
        }
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(a) => format!("/v1/accounts?limit=3&after={a}"),
                None => "/v1/accounts?limit=3".to_string(),
            };
            let page = s.get(&path, &k).await;
            assert_eq!(page.status, 200);
            for item in page.body["items"].as_array().unwrap() {
                seen.push(item["name"].as_str().unwrap().to_string());
            }
            match page.body["next"].as_str() {
                Some(n) => after = Some(n.to_string()),
                None => break,
            }
        }
        let mut expected: Vec<String> = (0..7).map(|i| format!("acct{i}")).collect();
        expected.push("admin".into());
        assert_eq!(seen, expected);
        for bad in ["limit=0", "limit=1001", "limit=x", "page=2"] {
            assert_eq!(
                s.get(&format!("/v1/accounts?{bad}"), &k).await.status,
                422,
                "{bad}"
            );
        }
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn state_machine_with_every_refused_transition() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        let set = |state: &'static str| {
            let s = &s;
            let k = k.clone();
            async move {
                s.put("/v1/accounts/acme/state", &k, json!({"state": state}))
                    .await
            }
        };
        // Delete from enabled: refused with a hint to disable first.
        let a = s.delete("/v1/accounts/acme", &k).await;
        assert_eq!((a.status, a.code()), (409, "invalid_state_transition"));
        assert!(a.message().contains("disable it first"), "{}", a.message());
        // enabled → enabled is idempotent; → disabled; → disabled again; → enabled.
        assert_eq!(set("enabled").await.status, 200);
        let a = set("disabled").await;
        assert_eq!(
            (a.status, a.body["state"].as_str()),
            (200, Some("disabled"))
        );
        assert_eq!(set("disabled").await.status, 200);
        assert_eq!(set("enabled").await.body["state"], "enabled");
        // deleting cannot be set, nor can a made-up state.
        assert_eq!(set("deleting").await.status, 422);
        assert_eq!(set("paused").await.status, 422);
        // The admin account never leaves enabled and is never deleted.
        let a = s
            .put("/v1/accounts/admin/state", &k, json!({"state":"disabled"}))
            .await;
        assert_eq!((a.status, a.code()), (409, "invalid_state_transition"));
        assert_eq!(
            s.put("/v1/accounts/admin/state", &k, json!({"state":"enabled"}))
                .await
                .status,
            200
        );
        assert_eq!(s.delete("/v1/accounts/admin", &k).await.status, 409);
        // Disabled → delete: 202 deleting, then gone; its users are gone at once.
        let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        assert_eq!(set("disabled").await.status, 200);
        let a = s.delete("/v1/accounts/acme", &k).await;
        assert_eq!(
            (a.status, a.body["state"].as_str()),
            (202, Some("deleting")),
            "{}",
            a.text
        );
        assert_eq!(s.get("/v1/users/jane", &k).await.status, 404);
        // While deleting (or once gone), nothing can bring it back.
        let a = set("enabled").await;
        assert!(a.status == 409 || a.status == 404, "{}", a.text);
        portcullis_tests::wait_until(
            "the background task removes the account row",
            portcullis_tests::PATIENCE,
            || async { s.get("/v1/accounts/acme", &k).await.status == 404 },
        )
        .await;
        assert_eq!(s.delete("/v1/accounts/acme", &k).await.status, 404);
        // Enable it again after deletion is impossible, and its old key is dead.
        assert_eq!(s.get("/v1/whoami", &jane).await.status, 401);
        // The name can be used again.
        s.account(&k, "acme", "user").await;
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn a_disabled_accounts_keys_fail_until_enabled_again() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        let personal = s
            .post("/v1/users/jane/keys", &jane, json!({"name":"ci"}))
            .await;
        let personal = personal.body["key"].as_str().unwrap().to_string();
        assert_eq!(s.get("/v1/whoami", &jane).await.status, 200);
        assert_eq!(
            s.put("/v1/accounts/acme/state", &k, json!({"state":"disabled"}))
                .await
                .status,
            200
        );
        assert_eq!(s.get("/v1/whoami", &jane).await.status, 401);
        assert_eq!(s.get("/v1/whoami", &personal).await.status, 401);
        assert_eq!(
            s.put("/v1/accounts/acme/state", &k, json!({"state":"enabled"}))
                .await
                .status,
            200
        );
        assert_eq!(s.get("/v1/whoami", &jane).await.status, 200);
        assert_eq!(s.get("/v1/whoami", &personal).await.status, 200);
        s.stop().await;
    }
);
