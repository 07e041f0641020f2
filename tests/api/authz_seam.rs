//! Every management call is a decision of the active authorizer: swap in one that denies
//! a single action and watch exactly that action fail.

use portcullis_plugin::programs::paths;
use portcullis_tests::TestServer;
use serde_json::json;

/// Swap the active authorizer for the hostile fixture in its `allow` mode with one denied
/// action.
async fn deny_one(s: &TestServer, action: &str) {
    let bytes = std::fs::read(paths::HOSTILE).unwrap();
    let settings = json!({"mode": "allow", "deny_actions": [action]}).to_string();
    let plugin = s
        .state
        .runtime
        .load(
            "hostile",
            &bytes,
            &settings,
            portcullis_app::plugins::plugin_limits(&s.state.config),
        )
        .await
        .unwrap();
    s.state.set_authorizer(plugin);
}

portcullis_tests::both!(
    async fn a_denied_action_is_403_naming_it_and_the_rest_works() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        deny_one(&s, "accounts.create").await;
        let a = s.post("/v1/accounts", &k, json!({"name":"acme"})).await;
        assert_eq!((a.status, a.code()), (403, "forbidden"), "{}", a.text);
        assert!(
            a.message().contains("accounts.create on account/acme"),
            "{}",
            a.message()
        );
        assert_eq!(
            a.body["error"]["reasons"],
            json!(["hostile plugin denies accounts.create"])
        );
        assert_eq!(s.get("/v1/accounts", &k).await.status, 200);
        assert_eq!(s.get("/v1/whoami", &k).await.status, 200);
        assert_eq!(s.get("/v1/users/admin", &k).await.status, 200);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn the_plugin_decides_not_the_host() {
        // Under builtin:native a user account may not create accounts; under a plugin that
        // allows everything it may: the host has no opinion of its own.
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        assert_eq!(
            s.post("/v1/accounts", &jane, json!({"name":"mine"}))
                .await
                .status,
            403
        );
        deny_one(&s, "nothing.at.all").await;
        assert_eq!(
            s.post("/v1/accounts", &jane, json!({"name":"mine"}))
                .await
                .status,
            201
        );
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn native_rules_for_user_accounts() {
        let s = TestServer::configured().await;
        let k = s.admin_key().await;
        s.account(&k, "acme", "user").await;
        s.account(&k, "beta", "user").await;
        let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
        s.user(&k, "beta", "bob", "bob passphrase 1", &[]).await;
        // Own account and its users: yes.
        assert_eq!(s.get("/v1/accounts/acme", &jane).await.status, 200);
        let a = s
            .post(
                "/v1/accounts/acme/users",
                &jane,
                json!({"username":"joe","password":"joe passphrase 1"}),
            )
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        assert_eq!(s.get("/v1/users/joe", &jane).await.status, 200);
        let list = s.get("/v1/users", &jane).await;
        let names: Vec<_> = list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["jane", "joe"]);
        // Not: other accounts, account state, deleting accounts, creating accounts,
        // promoting users through roles.
        for (method, path, body) in [
            ("GET", "/v1/accounts/beta", None),
            ("GET", "/v1/users/bob", None),
            ("GET", "/v1/accounts", None),
            ("POST", "/v1/accounts", Some(json!({"name":"mine"}))),
            (
                "PUT",
                "/v1/accounts/acme/state",
                Some(json!({"state":"disabled"})),
            ),
            ("DELETE", "/v1/accounts/acme", None),
            (
                "POST",
                "/v1/accounts/acme/users",
                Some(json!({"username":"boss","roles":["*:*:*"]})),
            ),
            ("PATCH", "/v1/users/jane", Some(json!({"roles":["*:*:*"]}))),
            ("GET", "/v1/users/ghost", None),
        ] {
            let a = s.call(method, path, Some(&jane), body).await;
            assert_eq!(
                (a.status, a.code()),
                (403, "forbidden"),
                "{method} {path}: {}",
                a.text
            );
        }
        // Email of a user in its own account: yes.
        let a = s
            .call(
                "PATCH",
                "/v1/users/joe",
                Some(&jane),
                Some(json!({"email":"joe@acme.io"})),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        s.stop().await;
    }
);
