//! Application policies (SPEC §11): named, independently activated plugins, each an
//! AuthZEN PDP at `/policies/{name}`, that can never change a management answer.

use portcullis_tests::{TestServer, ADMIN_PASSWORD};
use serde_json::{json, Value};

fn configured(c: &mut portcullis_app::config::Config) {
    c.bootstrap.mode = portcullis_app::config::BootstrapMode::Configured;
    c.bootstrap.admin_password = ADMIN_PASSWORD.into();
}

/// Upload the rbac example (world 0.2.0).
async fn rbac_id(s: &TestServer, k: &str) -> String {
    let a = s
        .upload_plugin(k, portcullis_plugin::programs::paths::RBAC, "rbac")
        .await;
    assert!(a.status == 201 || a.status == 200, "{}", a.text);
    a.body["id"].as_str().unwrap().to_string()
}

fn readers() -> Value {
    json!({"roles": {"reader": ["read:document/*"]}, "admins": false})
}

fn question(user: &str, action: &str) -> Value {
    json!({
        "subject": {"type": "user", "id": user},
        "action": {"name": action},
        "resource": {"type": "document", "id": "1"},
    })
}

async fn decision(s: &TestServer, k: &str, path: &str, body: Value) -> bool {
    let a = s.post(path, k, body).await;
    assert_eq!(a.status, 200, "{path}: {}", a.text);
    a.body["decision"].as_bool().unwrap()
}

#[tokio::test]
async fn policies_are_managed_and_a_failed_change_leaves_the_previous_one_deciding() {
    let s = TestServer::start_with(configured).await;
    let k = s.admin_key().await;
    s.account(&k, "acme", "user").await;
    let rita = s
        .user(&k, "acme", "rita", "rita passphrase 1", &["reader"])
        .await;
    let id = rbac_id(&s, &k).await;

    // Created: 201, listed, described.
    let a = s
        .put(
            "/v1/policies/docs",
            &k,
            json!({"plugin": id, "settings": readers()}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["base_path"], "/policies/docs");
    assert_eq!(a.body["authorizer"]["active"]["id"], json!(id));
    let a = s.get("/v1/policies", &k).await;
    assert_eq!(a.body["items"][0]["name"], "docs", "{}", a.text);
    assert_eq!(s.get("/v1/policies/docs", &k).await.status, 200);
    let ev = "/policies/docs/access/v1/evaluation";
    assert!(decision(&s, &k, ev, question("rita", "read")).await);
    assert!(!decision(&s, &k, ev, question("rita", "write")).await);

    // Refused settings: 422 naming them, and the previous plugin keeps deciding.
    let a = s
        .put(
            "/v1/policies/docs",
            &k,
            json!({"plugin": id, "settings": {"roles": 5}}),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert!(a.message().starts_with("settings:"), "{}", a.text);
    assert!(decision(&s, &k, ev, question("rita", "read")).await);
    let a = s
        .put(
            "/v1/policies/docs",
            &k,
            json!({"plugin": "no-such-plugin", "settings": {}}),
        )
        .await;
    assert!(a.status == 404 || a.status == 422, "{}", a.text);
    assert!(decision(&s, &k, ev, question("rita", "read")).await);
    let a = s.get("/v1/policies/docs", &k).await;
    assert_eq!(
        a.body["authorizer"]["active"]["id"],
        json!(id),
        "{}",
        a.text
    );

    // Bad names and unknown policies.
    let a = s
        .put("/v1/policies/Not_A_Name", &k, json!({"plugin": id}))
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    let a = s
        .post(
            "/policies/nope/access/v1/evaluation",
            &k,
            question("rita", "read"),
        )
        .await;
    assert_eq!(a.status, 404, "{}", a.text);
    let (a, _) = s
        .raw(
            "GET",
            "/.well-known/authzen-configuration/policies/nope",
            &[],
            None,
        )
        .await;
    assert_eq!(a.status, 404, "{}", a.text);
    // A new policy cannot start in shadow mode: there is nothing to shadow.
    let a = s
        .put(
            "/v1/policies/fresh",
            &k,
            json!({"plugin": id, "mode": "shadow"}),
        )
        .await;
    assert_eq!(a.status, 409, "{}", a.text);
    assert_eq!(s.get("/v1/policies/fresh", &k).await.status, 404);

    // A member of a user account may neither write policies nor ask them.
    let a = s
        .put("/v1/policies/mine", &rita, json!({"plugin": id}))
        .await;
    assert_eq!(a.status, 403, "{}", a.text);
    let a = s.post(ev, &rita, question("rita", "read")).await;
    assert_eq!(a.status, 403, "{}", a.text);

    // `/v1/authorize` may ask a policy.
    let a = s
        .post(
            "/v1/authorize",
            &k,
            json!({"subject": {"username": "rita"}, "action": "read",
                   "resource": {"kind": "document", "id": "1"}, "policy": "docs"}),
        )
        .await;
    assert_eq!(
        (a.status, &a.body["decision"]),
        (200, &json!("allow")),
        "{}",
        a.text
    );

    // Its decisions are logged apart from the management authorizer's.
    let a = s.get("/v1/decisions?policy=docs&action=write", &k).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let logged = a.body["items"].as_array().unwrap();
    assert!(!logged.is_empty(), "{}", a.text);
    assert!(logged.iter().all(|e| e["action"] == "write"), "{}", a.text);
    let a = s.get("/v1/decisions?action=write", &k).await;
    assert_eq!(a.body["items"], json!([]), "{}", a.text);
    assert_eq!(s.get("/v1/decisions?policy=nope", &k).await.status, 404);

    // Deleted: its endpoints answer 404.
    assert_eq!(s.delete("/v1/policies/docs", &k).await.status, 204);
    assert_eq!(s.post(ev, &k, question("rita", "read")).await.status, 404);
    assert_eq!(s.delete("/v1/policies/docs", &k).await.status, 404);
    s.stop().await;
}

/// What the admin sees of the management API, and the management authorizer's AuthZEN
/// answer about the admin.
async fn management(s: &TestServer, k: &str) -> Vec<Value> {
    let mut answers = Vec::new();
    for path in ["/v1/accounts", "/v1/whoami"] {
        let a = s.get(path, k).await;
        answers.push(json!([a.status, a.body]));
    }
    let a = s
        .post(
            "/access/v1/evaluation",
            k,
            question("admin", "accounts.list"),
        )
        .await;
    answers.push(json!([a.status, a.body]));
    answers
}

#[tokio::test]
async fn a_plugin_of_world_0_1_0_runs_as_a_policy() {
    let s = TestServer::start_with(configured).await;
    let k = s.admin_key().await;
    s.account(&k, "acme", "user").await;
    s.user(&k, "acme", "rita", "rita passphrase 1", &[]).await;
    let auth = format!("Bearer {k}");
    let a = s
        .upload_plugin(&k, portcullis_plugin::programs::paths::HOSTILE, "hostile")
        .await;
    assert_eq!(
        a.body["world_version"], "portcullis:authorizer@0.1.0",
        "{}",
        a.text
    );
    let id = a.body["id"].as_str().unwrap();
    // `deny` mode answers every question with a deny naming the action.
    let a = s
        .put(
            "/v1/policies/old",
            &k,
            json!({"plugin": id, "settings": {"mode": "deny"}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let mut ask = question("rita", "read");
    ask["options"] = json!({});
    let a = s.post("/policies/old/access/v1/evaluation", &k, ask).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["decision"], false);
    assert!(
        !a.body["context"]["reasons"][0].as_str().unwrap().is_empty(),
        "{}",
        a.text
    );
    // A subject of another type has no place in 0.1.0: the host denies, saying so.
    let mut other = question("rita", "read");
    other["subject"] = json!({"type": "service", "id": "billing"});
    let (a, _) = s
        .raw(
            "POST",
            "/policies/old/access/v1/evaluation",
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
                ("portcullis-explain", "true"),
            ],
            Some(other.to_string().into_bytes()),
        )
        .await;
    assert_eq!(a.body["decision"], false, "{}", a.text);
    assert!(a.text.contains("0.1.0"), "{}", a.text);
    s.stop().await;
}

#[tokio::test]
async fn a_deny_all_policy_changes_no_management_answer() {
    let s = TestServer::start_with(configured).await;
    let k = s.admin_key().await;
    s.account(&k, "acme", "user").await;
    s.user(&k, "acme", "rita", "rita passphrase 1", &[]).await;
    let id = rbac_id(&s, &k).await;
    let before = management(&s, &k).await;
    // Denies everything, administrators included.
    let a = s
        .put(
            "/v1/policies/deny-all",
            &k,
            json!({"plugin": id, "settings": {"admins": false}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let ev = "/policies/deny-all/access/v1/evaluation";
    assert!(!decision(&s, &k, ev, question("admin", "accounts.list")).await);
    assert!(!decision(&s, &k, ev, question("rita", "read")).await);
    assert_eq!(management(&s, &k).await, before);
    assert!(
        decision(
            &s,
            &k,
            "/access/v1/evaluation",
            question("admin", "accounts.list")
        )
        .await
    );
    s.stop().await;
}

#[tokio::test]
async fn the_root_endpoints_serve_the_default_policy() {
    let s = TestServer::start_with(|c| {
        configured(c);
        c.authorizer.default_policy = "docs".into();
    })
    .await;
    let k = s.admin_key().await;
    s.account(&k, "acme", "user").await;
    s.user(&k, "acme", "rita", "rita passphrase 1", &["reader"])
        .await;
    // Not there yet: the root PDP is unknown.
    let a = s
        .post("/access/v1/evaluation", &k, question("rita", "read"))
        .await;
    assert_eq!(a.status, 404, "{}", a.text);
    let id = rbac_id(&s, &k).await;
    let a = s
        .put(
            "/v1/policies/docs",
            &k,
            json!({"plugin": id, "settings": readers()}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert!(decision(&s, &k, "/access/v1/evaluation", question("rita", "read")).await);
    assert!(!decision(&s, &k, "/access/v1/evaluation", question("rita", "write")).await);
    // `/v1/authorize` without a policy still asks the management authorizer.
    let a = s
        .post(
            "/v1/authorize",
            &k,
            json!({"subject": {"username": "rita"}, "action": "read",
                   "resource": {"kind": "document", "id": "1"}}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let (a, _) = s
        .raw(
            "GET",
            "/.well-known/authzen-configuration",
            &[("host", "pdp.example:8443")],
            None,
        )
        .await;
    assert_eq!(
        a.body["policy_decision_point"], "http://pdp.example:8443",
        "{}",
        a.text
    );
    s.stop().await;
}

#[tokio::test]
async fn policy_existence_is_not_told_to_a_caller_who_may_not_evaluate() {
    let s = TestServer::start_with(configured).await;
    let k = s.admin_key().await;
    s.account(&k, "acme", "user").await;
    let rita = s.user(&k, "acme", "rita", "rita passphrase 1", &[]).await;
    let id = rbac_id(&s, &k).await;
    let a = s
        .put(
            "/v1/policies/docs",
            &k,
            json!({"plugin": id, "settings": readers()}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    // The same answer for a policy that exists and one that does not.
    for name in ["docs", "nope"] {
        let a = s
            .post(
                &format!("/policies/{name}/access/v1/evaluation"),
                &rita,
                question("rita", "read"),
            )
            .await;
        assert_eq!(a.status, 403, "{name}: {}", a.text);
    }
    // Who may evaluate learns that it is not there.
    let a = s
        .post(
            "/policies/nope/access/v1/evaluation",
            &k,
            question("rita", "read"),
        )
        .await;
    assert_eq!(a.status, 404, "{}", a.text);
    s.stop().await;
}

#[tokio::test]
async fn a_search_asks_at_most_search_scan_candidates_per_request() {
    // A plugin that enumerates more candidates than one request may ask, all denied: the
    // answer is an empty page with a token, not every candidate asked at once.
    let s = TestServer::start_with(configured).await;
    let k = s.admin_key().await;
    s.account(&k, "acme", "user").await;
    s.user(&k, "acme", "rita", "rita passphrase 1", &[]).await;
    let scan = portcullis_app::decide::SEARCH_SCAN;
    let records: serde_json::Map<String, Value> = (0..scan + 500)
        .map(|i| (format!("r{i:05}"), json!({"owner": "someone-else"})))
        .collect();
    let up = s
        .upload_plugin(&k, portcullis_plugin::programs::paths::RECORDS, "records")
        .await;
    let id = up.body["id"].as_str().unwrap();
    let a = s
        .put(
            "/v1/policies/records",
            &k,
            json!({"plugin": id, "settings": {"rules": "search", "records": records}}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let ask = |token: &str| {
        json!({"subject": {"type": "user", "id": "rita"}, "action": {"name": "delete"},
               "resource": {"type": "record"}, "page": {"token": token}})
    };
    let path = "/policies/records/access/v1/search/resource";
    let a = s.post(path, &k, ask("")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["results"], json!([]));
    let token = a.body["page"]["next_token"].as_str().unwrap().to_string();
    assert!(!token.is_empty(), "the rest is the next page: {}", a.text);
    let a = s.post(path, &k, ask(&token)).await;
    assert_eq!(a.body["results"], json!([]));
    assert_eq!(a.body["page"]["next_token"], "", "{}", a.text);
    // A search's question is copied into every evaluation: it is bounded more tightly.
    let mut big = ask("");
    big["context"] = json!({"pad": "x".repeat(portcullis_app::decide::MAX_SEARCH_QUESTION_BYTES)});
    assert_eq!(s.post(path, &k, big).await.status, 413);
    s.stop().await;
}

#[tokio::test]
async fn an_oversized_or_unprintable_request_id_is_not_echoed() {
    let s = TestServer::start_with(configured).await;
    let long = "a".repeat(129);
    let (_, headers) = s
        .raw("GET", "/health", &[("x-request-id", long.as_str())], None)
        .await;
    assert!(headers.get("x-request-id").is_none());
    let (_, headers) = s
        .raw("GET", "/health", &[("x-request-id", "req-1")], None)
        .await;
    assert_eq!(headers.get("x-request-id").unwrap(), "req-1");
    s.stop().await;
}
