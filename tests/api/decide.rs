//! Decisions for outside applications: `/v1/authorize` and AuthZEN 1.0.

use portcullis_tests::TestServer;
use serde_json::{json, Value};

/// An admin key, and users: rita (acme, role acme:read:*), bob (in a disabled account),
/// jane (acme, no roles).
async fn setup() -> (TestServer, String, String) {
    let s = TestServer::configured().await;
    let k = s.admin_key().await;
    s.account(&k, "acme", "user").await;
    s.account(&k, "off", "user").await;
    s.user(&k, "acme", "rita", "rita passphrase 1", &["acme:read:*"])
        .await;
    let jane = s.user(&k, "acme", "jane", "jane passphrase 1", &[]).await;
    s.user(&k, "off", "bob", "bob passphrase 1", &["*:*:*"])
        .await;
    assert_eq!(
        s.put("/v1/accounts/off/state", &k, json!({"state":"disabled"}))
            .await
            .status,
        200
    );
    (s, k, jane)
}

fn ask(user: &str, action: &str, kind: &str, id: &str, account: &str) -> Value {
    json!({"subject": {"username": user}, "action": action, "resource": {"kind": kind, "id": id, "account": account}})
}

portcullis_tests::both!(
    async fn v1_authorize() {
        let (s, k, jane) = setup().await;
        let a = s
            .post(
                "/v1/authorize",
                &k,
                ask("rita", "read", "document", "1", "acme"),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["decision"], "allow");
        assert!(a.body["reasons"][0]
            .as_str()
            .unwrap()
            .contains("acme:read:*"));
        assert!(a.body["decision_id"].as_str().unwrap().starts_with("dec_"));
        let a = s
            .post(
                "/v1/authorize",
                &k,
                ask("rita", "write", "document", "1", "acme"),
            )
            .await;
        assert_eq!(a.body["decision"], "deny");
        let a = s
            .post(
                "/v1/authorize",
                &k,
                ask("rita", "read", "document", "1", "beta"),
            )
            .await;
        assert_eq!(a.body["decision"], "deny");
        // Unknown subjects and disabled accounts are denied without asking the plugin.
        let a = s
            .post(
                "/v1/authorize",
                &k,
                ask("ghost", "read", "document", "1", "acme"),
            )
            .await;
        assert_eq!(
            (a.body["decision"].as_str(), a.body["reasons"][0].as_str()),
            (Some("deny"), Some("unknown subject ghost"))
        );
        let a = s
            .post(
                "/v1/authorize",
                &k,
                ask("bob", "read", "document", "1", "acme"),
            )
            .await;
        assert_eq!(a.body["decision"], "deny");
        assert!(
            a.body["reasons"][0].as_str().unwrap().contains("disabled"),
            "{}",
            a.text
        );
        let a = s
            .post(
                "/v1/authorize",
                &k,
                ask("system", "read", "document", "1", "acme"),
            )
            .await;
        assert_eq!(a.body["decision"], "deny");
        // The host's context keys cannot be forged: this stays an outside decision, so the
        // management rule "a user reads itself" does not apply.
        let mut forged = ask("jane", "users.read", "user", "jane", "acme");
        forged["context"] = json!({"portcullis.origin": "management"});
        let a = s.post("/v1/authorize", &k, forged).await;
        assert_eq!(a.body["decision"], "deny", "{}", a.text);
        // The caller needs authorize.evaluate.
        let a = s
            .post(
                "/v1/authorize",
                &jane,
                ask("rita", "read", "document", "1", "acme"),
            )
            .await;
        assert_eq!((a.status, a.code()), (403, "forbidden"));
        // Bad input names the field.
        for (bad, field) in [
            (
                json!({"subject": {"username": "rita"}, "action": "read"}),
                "resource",
            ),
            (
                json!({"subject": {"username": "rita"}, "action": "", "resource": {"kind": "d", "id": "1"}}),
                "action",
            ),
            (
                json!({"subject": {"name": "rita"}, "action": "read", "resource": {"kind": "d", "id": "1"}}),
                "name",
            ),
            (
                json!({"subject": {"username": "rita"}, "action": "read", "resource": {"kind": "d", "id": "1"}, "context": {"k": 1}}),
                "context",
            ),
        ] {
            let a = s.post("/v1/authorize", &k, bad.clone()).await;
            assert_eq!(a.status, 422, "{bad}: {}", a.text);
            assert!(a.message().contains(field), "{bad}: {}", a.message());
        }
        s.stop().await;
    }
);

fn zen(user: &str, action: &str, id: &str) -> Value {
    json!({
        "subject": {"type": "user", "id": user},
        "action": {"name": action},
        "resource": {"type": "document", "id": id, "properties": {"account": "acme"}},
    })
}

portcullis_tests::both!(
    async fn authzen_single_evaluation() {
        let (s, k, _) = setup().await;
        let a = s
            .post("/access/v1/evaluation", &k, zen("rita", "read", "1"))
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body, json!({"decision": true}), "context only when asked");
        let mut asked = zen("rita", "read", "1");
        asked["options"] = json!({});
        let a = s.post("/access/v1/evaluation", &k, asked).await;
        assert!(a.body["context"]["id"].is_string(), "{}", a.text);
        let a = s
            .post("/access/v1/evaluation", &k, zen("rita", "write", "1"))
            .await;
        assert_eq!(a.body["decision"], false);
        // The management authorizer knows Portcullis users only: another subject type is a
        // deny saying so, not an error.
        let mut other = zen("rita", "read", "1");
        other["subject"]["type"] = json!("group");
        other["options"] = json!({});
        let a = s.post("/access/v1/evaluation", &k, other).await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["decision"], false);
        assert!(a.text.contains("Portcullis users only"), "{}", a.text);
        let mut bad = zen("rita", "read", "1");
        bad["subject"]["type"] = json!(7);
        let a = s.post("/access/v1/evaluation", &k, bad).await;
        assert_eq!(a.status, 400);
        assert!(a.message().contains("subject.type"));
        s.stop().await;
    }
);

async fn batch(s: &TestServer, k: &str, semantic: Option<&str>) -> Vec<bool> {
    // allow, deny, allow, deny
    let mut body = json!({
        "subject": {"type": "user", "id": "rita"},
        "resource": {"type": "document", "id": "1", "properties": {"account": "acme"}},
        "evaluations": [
            {"action": {"name": "read"}},
            {"action": {"name": "write"}},
            {"action": {"name": "read"}, "resource": {"type": "document", "id": "2", "properties": {"account": "acme"}}},
            {"action": {"name": "read"}, "subject": {"type": "user", "id": "jane"}},
        ],
    });
    if let Some(sem) = semantic {
        body["options"] = json!({"evaluations_semantic": sem});
    }
    let a = s.post("/access/v1/evaluations", k, body).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.body["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["decision"].as_bool().unwrap())
        .collect()
}

portcullis_tests::both!(
    async fn authzen_batch_semantics() {
        let (s, k, _) = setup().await;
        assert_eq!(batch(&s, &k, None).await, vec![true, false, true, false]);
        assert_eq!(
            batch(&s, &k, Some("execute_all")).await,
            vec![true, false, true, false]
        );
        assert_eq!(
            batch(&s, &k, Some("deny_on_first_deny")).await,
            vec![true, false]
        );
        assert_eq!(
            batch(&s, &k, Some("permit_on_first_permit")).await,
            vec![true]
        );
        // An item that cannot be built is a `false` naming what it lacks; the rest are
        // answered.
        let a = s
        .post("/access/v1/evaluations", &k, json!({"evaluations": [zen("rita", "read", "1"), {"subject": {"type": "user", "id": "rita"}}]}))
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["evaluations"][0], json!({"decision": true}));
        assert_eq!(a.body["evaluations"][1]["decision"], false);
        let error = a.body["evaluations"][1]["context"]["error"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(error.contains("evaluations[1].action"), "{}", a.text);
        // A member an item has but of the wrong shape is a malformed request: 400.
        let a = s
            .post(
                "/access/v1/evaluations",
                &k,
                json!({"evaluations": [zen("rita", "read", "1"), {"subject": "rita"}]}),
            )
            .await;
        assert_eq!(a.status, 400, "{}", a.text);
        assert!(a.message().contains("evaluations[1].subject"), "{}", a.text);
        let a = s.post("/access/v1/evaluations", &k, json!({"evaluations": [], "subject": {"type":"user","id":"rita"}, "action": {"name":"read"}, "resource": {"type":"document","id":"1","properties":{"account":"acme"}}})).await;
        assert_eq!(
            a.body["decision"], true,
            "no evaluations array: a single evaluation"
        );
        let a = s.post("/access/v1/evaluations", &k, json!({"options": {"evaluations_semantic": "sometimes"}, "evaluations": [zen("rita", "read", "1")]})).await;
        assert_eq!(a.status, 400);
        s.stop().await;
    }
);

/// Make `settings` of the rbac example the active authorizer of `s` (this server only).
async fn rbac(s: &TestServer, settings: Value) {
    let bytes = std::fs::read(portcullis_plugin::programs::paths::RBAC).unwrap();
    let plugin = s
        .state
        .runtime
        .load(
            "rbac",
            &bytes,
            &settings.to_string(),
            portcullis_app::plugins::plugin_limits(&s.state.config),
        )
        .await
        .unwrap();
    s.state.set_authorizer(plugin);
}

portcullis_tests::both!(
    async fn a_revoked_evaluate_role_is_refused_on_the_next_decision() {
        // `authorize.evaluate` is remembered per key after an allow (one plugin call per
        // decision instead of two); taking the role away must end that at once, not after
        // the key cache's TTL.
        let (s, k, _) = setup().await;
        rbac(
            &s,
            json!({"roles": {"evaluator": ["authorize.evaluate"]}, "admins": true}),
        )
        .await;
        let app = s
            .user(
                &k,
                "acme",
                "gateway",
                "gateway passphrase 1",
                &["evaluator"],
            )
            .await;
        let question = ask("rita", "read", "document", "1", "acme");
        for _ in 0..3 {
            let a = s.post("/v1/authorize", &app, question.clone()).await;
            assert_eq!(a.status, 200, "{}", a.text);
        }
        let p = s
            .call(
                "PATCH",
                "/v1/users/gateway",
                Some(&k),
                Some(json!({"roles": []})),
            )
            .await;
        assert_eq!(p.status, 200, "{}", p.text);
        let a = s.post("/v1/authorize", &app, question.clone()).await;
        assert_eq!((a.status, a.code()), (403, "forbidden"), "{}", a.text);
        s.stop().await;
    }
);

portcullis_tests::both!(
    async fn a_remembered_evaluate_permission_ends_with_the_plugin_that_gave_it() {
        let (s, k, _) = setup().await;
        let question = ask("rita", "read", "document", "1", "acme");
        for _ in 0..3 {
            assert_eq!(
                s.post("/v1/authorize", &k, question.clone()).await.status,
                200
            );
        }
        // A plugin that lets admins do everything but ask outside questions.
        rbac(
            &s,
            json!({"deny": [{"action": "authorize.evaluate", "reason": "no outside decisions"}]}),
        )
        .await;
        let a = s.post("/v1/authorize", &k, question).await;
        assert_eq!((a.status, a.code()), (403, "forbidden"), "{}", a.text);
        assert_eq!(
            a.body["error"]["reasons"],
            json!(["deny rule authorize.evaluate: no outside decisions"])
        );
        s.stop().await;
    }
);
