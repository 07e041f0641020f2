//! Every management call is a decision of the active authorizer: swap in one that denies
//! a single action and watch exactly that action fail.

use portcullis_core::authz::{Authorizer, Decision, NativeRules, Request};
use portcullis_tests::TestServer;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct DenyOne {
    action: &'static str,
    asked: AtomicUsize,
}

impl Authorizer for DenyOne {
    fn name(&self) -> String {
        "test:deny-one".into()
    }
    fn authorize(&self, r: &Request) -> Decision {
        self.asked.fetch_add(1, Ordering::SeqCst);
        if r.action == self.action {
            Decision::deny(format!("test plugin denies {}", self.action))
        } else {
            NativeRules.authorize(r)
        }
    }
}

#[tokio::test]
async fn a_denied_action_is_403_naming_it_and_the_rest_works() {
    let s = TestServer::configured().await;
    let k = s.admin_key().await;
    let deny = Arc::new(DenyOne {
        action: "accounts.create",
        asked: AtomicUsize::new(0),
    });
    s.state.set_authorizer(deny.clone());
    let a = s.post("/v1/accounts", &k, json!({"name":"acme"})).await;
    assert_eq!((a.status, a.code()), (403, "forbidden"), "{}", a.text);
    assert!(
        a.message().contains("accounts.create on account/acme"),
        "{}",
        a.message()
    );
    assert_eq!(
        a.body["error"]["reasons"],
        json!(["test plugin denies accounts.create"])
    );
    // Everything else still goes through (and is asked).
    let before = deny.asked.load(Ordering::SeqCst);
    assert_eq!(s.get("/v1/accounts", &k).await.status, 200);
    assert_eq!(s.get("/v1/whoami", &k).await.status, 200);
    assert_eq!(s.get("/v1/users/admin", &k).await.status, 200);
    assert!(deny.asked.load(Ordering::SeqCst) >= before + 3);
    s.stop().await;
}

#[tokio::test]
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
